/**
 * One vhost-user connection: owns the Unix socket fd, reads with `recvMsg` under a native
 * poller and sends replies.
 *
 * File descriptors: on a Unix stream socket the kernel may hand back, in one recvmsg, the
 * bytes of several sendmsg calls together with the fds of the last of them (seen with QEMU:
 * SET_FEATURES arrives glued to SET_MEM_TABLE and its fds). So we never read past a message
 * boundary: first exactly the 12-byte header, then exactly `size` payload bytes, as
 * libvhost-user does. Every fd received while reading a message's bytes is that message's.
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

export class VhostUserConnection extends EventEmitter<ConnectionEvents> {
  private readonly poller: native.Poller;
  private readonly header = new Uint8Array(HEADER_SIZE);
  private headerBytes = 0;
  private payload: Uint8Array | null = null;
  private payloadBytes = 0;
  private fds: number[] = [];
  private outbox: { bytes: Uint8Array; fds: number[]; closeFds: boolean }[] = [];
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
    this.watch();
  }

  private watch(): void {
    if (this.closed) return;
    let events = this.paused ? 0 : native.READABLE | native.DISCONNECT;
    if (this.outbox.length > 0) events |= native.WRITABLE;
    if (events === 0) this.poller.stop();
    else this.poller.start(events);
  }

  /** Stops reading messages (a reply is deferred) until resume(). */
  pause(): void {
    this.paused = true;
    this.watch();
  }

  resume(): void {
    this.paused = false;
    this.watch();
    if (!this.closed) this.readAvailable();
  }

  /** Sends a message with optional fds; queues on EAGAIN. */
  send(bytes: Uint8Array, fds: number[] = [], opts: { closeFdsAfterSend?: boolean } = {}): void {
    const closeFds = opts.closeFdsAfterSend ?? false;
    if (this.closed) {
      if (closeFds) closeAll(fds);
      return;
    }
    this.outbox.push({ bytes, fds, closeFds });
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
      if (sent === null) break;
      if (sent < head.bytes.length) {
        // Why: the fds went with the first byte; the rest is plain data.
        if (head.closeFds) closeAll(head.fds);
        this.outbox[0] = { bytes: head.bytes.subarray(sent), fds: [], closeFds: false };
        continue;
      }
      if (head.closeFds) closeAll(head.fds);
      this.outbox.shift();
    }
    this.watch();
  }

  private onEvents(status: number, events: number): void {
    if (this.closed) return;
    if (status < 0) return this.close(new ProtocolError('VHU_ERR_SOCKET', `poll error ${status}`));
    if (events & native.WRITABLE) this.flushOutbox();
    if (events & (native.READABLE | native.DISCONNECT)) this.readAvailable();
  }

  /** Reads into `target` (the rest of the header or payload); false on EAGAIN or close. */
  private recvInto(target: Uint8Array): number | null {
    let r: native.RecvResult | null;
    try {
      r = native.recvMsg(this.fd, target, MAX_FDS_PER_RECV);
    } catch (err) {
      this.close(new ProtocolError('VHU_ERR_SOCKET', 'recvmsg failed', { cause: err }));
      return null;
    }
    if (r === null) return null;
    for (const fd of r.fds) this.fds.push(fd);
    if (r.bytes === 0) {
      this.close(undefined);
      return null;
    }
    return r.bytes;
  }

  private readAvailable(): void {
    while (!this.paused && !this.closed) {
      if (this.headerBytes < HEADER_SIZE) {
        const n = this.recvInto(this.header.subarray(this.headerBytes));
        if (n === null) return;
        this.headerBytes += n;
        if (this.headerBytes < HEADER_SIZE) continue;
        const err = this.startPayload();
        if (err) return this.close(err);
      }
      const payload = this.payload!;
      if (this.payloadBytes < payload.length) {
        const n = this.recvInto(payload.subarray(this.payloadBytes));
        if (n === null) return;
        this.payloadBytes += n;
        if (this.payloadBytes < payload.length) continue;
      }
      const msg: IncomingMessage = { header: decodeHeader(this.header, 0), payload, fds: this.fds };
      this.headerBytes = 0;
      this.payload = null;
      this.payloadBytes = 0;
      this.fds = [];
      this.onMessage(msg);
    }
  }

  private startPayload(): ProtocolError | null {
    const header = decodeHeader(this.header, 0);
    if ((header.flags & VHOST_USER_VERSION_MASK) !== VHOST_USER_VERSION) {
      return new ProtocolError('VHU_ERR_BAD_HEADER', `bad version in flags 0x${header.flags.toString(16)}`);
    }
    if (header.size > MAX_PAYLOAD_SIZE) {
      return new ProtocolError('VHU_ERR_BAD_SIZE', `payload of ${header.size} bytes exceeds ${MAX_PAYLOAD_SIZE}`);
    }
    this.payload = new Uint8Array(header.size);
    this.payloadBytes = 0;
    return null;
  }

  /** Closes the connection once; `close` is emitted with the reason (undefined on EOF). */
  close(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.poller.close();
    closeAll(this.fds);
    this.fds = [];
    for (const m of this.outbox) if (m.closeFds) closeAll(m.fds);
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
