/**
 * `Net` over `node:net` (TCP). With `env/real.ts`, the only cluster file allowed to import
 * `node:net` (test/boundaries.test.ts enforces it).
 *
 * - `setNoDelay(true)`: frames are written whole (header, payload and data in one corked
 *   batch), so Nagle would only add latency to small replies.
 * - `write(chunks)` corks the socket (once per event-loop turn), writes each chunk (no
 *   concatenation) and uncorks in `process.nextTick`, i.e. when the current callback returns
 *   and before control goes back to the event loop. Every frame written during one callback
 *   (the replies of a group commit, the repops of a burst of client ops) therefore leaves in a
 *   single `writev`: fewer system calls here and fewer wake-ups of the receiver. The frames
 *   leave no later than they would have (nothing waits for a timer). It returns false once Node's writable buffer is above its high-water mark
 *   (`writableNeedDrain`), and `onDrain` fires when it empties: the messenger then resumes.
 * - Events from Node are already asynchronous, which keeps the no-Zalgo rule of `Net`.
 */
import * as net from 'node:net';
import type { Net, NetError, NetServer, NetSocket } from './net.js';

/** Grace for a graceful `close()` before the socket is destroyed anyway. */
const CLOSE_GRACE_MS = 2000;
/** Node's writable high-water mark for cluster sockets (bytes queued in user space). */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;

class RealNetSocket implements NetSocket {
  readonly remoteAddress: string;
  private lastError: Error | undefined;
  private closing = false;
  /** Corked, with an uncork scheduled for the end of this turn. */
  private corked = false;
  private readonly flush = (): void => {
    this.corked = false;
    this.sock.uncork();
  };

  constructor(private readonly sock: net.Socket) {
    this.remoteAddress = `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? 0}`;
    sock.setNoDelay(true);
    // Why always listen for 'error': an unhandled 'error' event would crash the process; the
    // error is reported through `onClose` instead, which always follows it.
    sock.on('error', (err) => { this.lastError = err; });
  }

  write(chunks: readonly Uint8Array[]): boolean {
    const sock = this.sock;
    if (sock.destroyed) return false;
    if (!this.corked) {
      this.corked = true;
      sock.cork();
      process.nextTick(this.flush);
    }
    for (const c of chunks) sock.write(c);
    return !sock.writableNeedDrain;
  }

  onData(cb: (chunk: Uint8Array) => void): void {
    // Why a plain Uint8Array view: on a Buffer, `slice()` is a view, not a copy; code that copies
    // received bytes with `slice()` (protocol decoders) must get a copy, not a pin on the chunk.
    this.sock.on('data', (chunk: Buffer) => cb(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
  }

  onDrain(cb: () => void): void {
    this.sock.on('drain', cb);
  }

  onClose(cb: (err: Error | undefined) => void): void {
    this.sock.on('close', () => cb(this.lastError));
  }

  close(): void {
    if (this.closing || this.sock.destroyed) return;
    this.closing = true;
    this.sock.end();
    const timer = setTimeout(() => this.sock.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    this.sock.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.sock.destroy();
  }
}

/** The production `Net`. */
export class RealNet implements Net {
  listen(
    host: string,
    port: number,
    onConnection: (socket: NetSocket) => void,
    cb: (err: Error | null, server?: NetServer) => void,
  ): void {
    const srv = net.createServer({ noDelay: true, highWaterMark: HIGH_WATER_BYTES } as net.ServerOpts, (sock) => {
      onConnection(new RealNetSocket(sock));
    });
    let listening = false;
    srv.on('error', (err) => {
      if (!listening) cb(err);
    });
    srv.listen(port, host, () => {
      listening = true;
      const addr = srv.address();
      const boundPort = typeof addr === 'object' && addr !== null ? addr.port : port;
      cb(null, { port: boundPort, close: () => srv.close() });
    });
  }

  connect(host: string, port: number, cb: (err: NetError | null, socket?: NetSocket) => void): void {
    const sock = net.connect({ host, port, noDelay: true, highWaterMark: HIGH_WATER_BYTES } as net.NetConnectOpts);
    let done = false;
    const onError = (err: NetError): void => {
      if (done) return;
      done = true;
      sock.destroy();
      cb(err);
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      if (done) return;
      done = true;
      sock.off('error', onError);
      cb(null, new RealNetSocket(sock));
    });
  }
}
