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
 * - Reads go into one reused buffer (Node's `onread` option), not a fresh Buffer per read
 *   through the stream machinery: the receiver (msg/frame.ts `FrameDecoder`) copies what it
 *   keeps into the frame's own buffers, straight into the 4096-aligned buffer a big write's data
 *   is written from. Before, every read allocated a backing store (16 per MiB received), and
 *   their turnover drove V8's full GCs. One buffer serves every socket: a read's callback runs to
 *   completion on the main thread before libuv performs the next read.
 *   A receiver may name its own read target instead (`onData`'s `readTarget`): while a big
 *   frame's data arrives, the decoder offers the rest of that frame's buffer, so those bytes go
 *   from the kernel straight to where the store writes them from (no copy out of the shared
 *   buffer: 7 % of an OSD's CPU under 1 MiB writes).
 *   Accepted sockets: `net.Server` has no `onread` option, so the server pauses each new socket
 *   before its first read (`pauseOnConnect`) and wraps its handle in a `net.Socket` that has one
 *   (`handle` is the option Node's own cluster and child_process use to pass sockets); the
 *   first wrapper is detached and destroyed, which also keeps the server's connection count.
 * - Events from Node are already asynchronous, which keeps the no-Zalgo rule of `Net`.
 */
import * as net from 'node:net';
import type { Net, NetError, NetServer, NetSocket } from './net.js';

/** Grace for a graceful `close()` before the socket is destroyed anyway. */
const CLOSE_GRACE_MS = 2000;
/** Node's writable high-water mark for cluster sockets (bytes queued in user space). */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** The reused read buffer: the most one read() takes (Node's own default is 64 KiB). */
const READ_BUFFER_BYTES = 256 * 1024;
const READ_BUFFER = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);

/**
 * Where a socket's reads go: the data handler once `onData` set it; until then (bytes that
 * arrive before the owner registered, possible on an accepted socket) copies are queued.
 */
class ReadSink {
  cb: ((chunk: Uint8Array) => void) | null = null;
  target: (() => Uint8Array | null) | null = null;
  early: Uint8Array[] = [];
  readonly onread = {
    // Asked by Node before every read (the function form of `onread.buffer`).
    buffer: (): Uint8Array => (this.target !== null ? this.target() : null) ?? READ_BUFFER,
    callback: (nread: number, buf: Uint8Array): boolean => {
      const view = new Uint8Array(buf.buffer, buf.byteOffset, nread);
      if (this.cb !== null) this.cb(view); else this.early.push(view.slice());
      return true;
    },
  };
}

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

  constructor(private readonly sock: net.Socket, private readonly sink: ReadSink) {
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

  onData(cb: (chunk: Uint8Array) => void, readTarget?: () => Uint8Array | null): void {
    // The chunk is a view of the shared read buffer, valid during `cb` only (see the header),
    // or of the receiver's own read target.
    const early = this.sink.early;
    this.sink.early = [];
    this.sink.cb = cb;
    this.sink.target = readTarget ?? null;
    // Why a later turn for early bytes: `Net` callbacks never run inside the registering call.
    if (early.length > 0) process.nextTick(() => { for (const c of early) cb(c); });
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
    const srv = net.createServer({ noDelay: true, pauseOnConnect: true, highWaterMark: HIGH_WATER_BYTES } as net.ServerOpts, (first) => {
      const handle = (first as unknown as { _handle: unknown })._handle;
      if (handle === null || handle === undefined) { first.destroy(); return; }
      (first as unknown as { _handle: unknown })._handle = null;
      first.destroy();
      const sink = new ReadSink();
      const sock = new net.Socket({ handle, readable: true, writable: true, highWaterMark: HIGH_WATER_BYTES, onread: sink.onread } as net.SocketConstructorOpts);
      onConnection(new RealNetSocket(sock, sink));
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
    const sink = new ReadSink();
    const sock = net.connect({ host, port, noDelay: true, highWaterMark: HIGH_WATER_BYTES, onread: sink.onread } as net.NetConnectOpts);
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
      cb(null, new RealNetSocket(sock, sink));
    });
  }
}
