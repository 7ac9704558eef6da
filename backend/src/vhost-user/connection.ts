/**
 * One vhost-user connection: owns the Unix socket fd, reads with `recvMsg` under a native
 * poller, frames messages incrementally (pg-protocol style) and sends replies.
 *
 * File descriptors: the kernel attaches SCM_RIGHTS fds to the first byte of the sendmsg
 * that carried them, and recvmsg never merges data across such a boundary. We record each
 * batch of fds with the stream offset of the first byte received with it; a message takes
 * the batches whose offset lies inside its own bytes. Anything else is "unexpected fds".
 */
import fs from 'node:fs';
import { EventEmitter } from 'eventemitter3';
import type { Logger } from 'pino';
import * as native from '../../../native/index.js';
import { ProtocolError } from './errors.js';
import { HEADER_SIZE, MAX_PAYLOAD_SIZE, VHOST_USER_VERSION, VHOST_USER_VERSION_MASK, decodeHeader, type MessageHeader } from './message.js';

export interface IncomingMessage {
  header: MessageHeader;
  payload: Uint8Array;
  fds: number[];
}

interface ConnectionEvents {
  close: [err: Error | undefined];
}

const MAX_FDS_PER_RECV = 32;
const RECV_SCRATCH_BYTES = 64 * 1024;

export class VhostUserConnection extends EventEmitter<ConnectionEvents> {
  private readonly poller: native.Poller;
  private readonly scratch = new Uint8Array(RECV_SCRATCH_BYTES);
  private pending = new Uint8Array(0);
  /** Stream offset of pending[0]. */
  private pendingOffset = 0;
  private fdBatches: { offset: number; fds: number[] }[] = [];
  private outbox: { bytes: Uint8Array; fds: number[] }[] = [];
  private paused = false;
  private closed = false;
  private onMessage: (msg: IncomingMessage) => void = () => {};

  constructor(
    readonly fd: number,
    private readonly log: Logger,
  ) {
    super();
    this.poller = new native.Poller(fd, (status, events) => this.onEvents(status, events));
  }

  /** Starts reading; `onMessage` gets each complete message in order. */
  start(onMessage: (msg: IncomingMessage) => void): void {
    this.onMessage = onMessage;
    this.poller.start(native.READABLE | native.DISCONNECT);
  }

  /** Stops dispatching (a reply is deferred); bytes keep being read so EOF is seen. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (!this.closed) this.dispatch();
  }

  /** Sends a message with optional fds; queues on EAGAIN. */
  send(bytes: Uint8Array, fds: number[] = []): void {
    if (this.closed) return;
    this.outbox.push({ bytes, fds });
    if (this.outbox.length === 1) this.flushOutbox();
  }

  private flushOutbox(): void {
    while (this.outbox.length > 0) {
      const head = this.outbox[0]!;
      let sent: number | null;
      try {
        sent = native.sendMsg(this.fd, head.bytes, head.fds);
      } catch (err) {
        return this.close(new ProtocolError('VHU_ERR_SOCKET', 'send failed', { cause: err }));
      }
      if (sent === null) {
        this.poller.start(native.READABLE | native.WRITABLE | native.DISCONNECT);
        return;
      }
      if (sent < head.bytes.length) {
        // Why: the fds went with the first byte; the rest is plain data.
        this.outbox[0] = { bytes: head.bytes.subarray(sent), fds: [] };
        continue;
      }
      this.outbox.shift();
    }
    this.poller.start(native.READABLE | native.DISCONNECT);
  }

  private onEvents(status: number, events: number): void {
    if (this.closed) return;
    if (status < 0) return this.close(new ProtocolError('VHU_ERR_SOCKET', `poll error ${status}`));
    if (events & native.WRITABLE) this.flushOutbox();
    if (events & (native.READABLE | native.DISCONNECT)) this.readAvailable();
  }

  private readAvailable(): void {
    for (;;) {
      let r: native.RecvResult | null;
      try {
        r = native.recvMsg(this.fd, this.scratch, MAX_FDS_PER_RECV);
      } catch (err) {
        return this.close(new ProtocolError('VHU_ERR_SOCKET', 'recvmsg failed', { cause: err }));
      }
      if (r === null) break;
      if (r.bytes === 0) {
        for (const b of this.fdBatches) closeAll(b.fds);
        this.fdBatches = [];
        return this.close(undefined);
      }
      const arrivalOffset = this.pendingOffset + this.pending.length;
      if (r.fds.length > 0) this.fdBatches.push({ offset: arrivalOffset, fds: [...r.fds] });
      const next = new Uint8Array(this.pending.length + r.bytes);
      next.set(this.pending);
      next.set(this.scratch.subarray(0, r.bytes), this.pending.length);
      this.pending = next;
      if (r.bytes < this.scratch.length) break;
    }
    this.dispatch();
  }

  private dispatch(): void {
    while (!this.paused && !this.closed && this.pending.length >= HEADER_SIZE) {
      const header = decodeHeader(this.pending, 0);
      if ((header.flags & VHOST_USER_VERSION_MASK) !== VHOST_USER_VERSION) {
        return this.close(new ProtocolError('VHU_ERR_BAD_HEADER', `bad version in flags 0x${header.flags.toString(16)}`));
      }
      if (header.size > MAX_PAYLOAD_SIZE) {
        return this.close(new ProtocolError('VHU_ERR_BAD_SIZE', `payload of ${header.size} bytes exceeds ${MAX_PAYLOAD_SIZE}`));
      }
      const total = HEADER_SIZE + header.size;
      if (this.pending.length < total) return;
      const payload = this.pending.slice(HEADER_SIZE, total);
      const end = this.pendingOffset + total;
      const fds: number[] = [];
      while (this.fdBatches.length > 0 && this.fdBatches[0]!.offset < end) fds.push(...this.fdBatches.shift()!.fds);
      this.pending = this.pending.subarray(total);
      this.pendingOffset = end;
      this.onMessage({ header, payload, fds });
    }
  }

  /** Closes the connection once; `close` is emitted with the reason (undefined on EOF). */
  close(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.poller.close();
    for (const b of this.fdBatches) closeAll(b.fds);
    this.fdBatches = [];
    for (const m of this.outbox) closeAll(m.fds);
    this.outbox = [];
    try {
      fs.closeSync(this.fd);
    } catch (e) {
      this.log.warn({ err: e }, 'closing the vhost-user socket failed');
    }
    this.emit('close', err);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

function closeAll(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      // Why: best effort; the fd may already be gone.
    }
  }
}
