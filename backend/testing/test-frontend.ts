/**
 * A minimal vhost-user front-end (the QEMU side) for integration tests: connects to the
 * daemon's socket, shares a memfd as guest RAM, negotiates like QEMU's vhost-user-blk does,
 * sets up rings with eventfds, and drives requests through `MockSplitQueue`.
 */
import fs from 'node:fs';
import * as native from '../../native/index.js';
import { VHOST_USER_F_PROTOCOL_FEATURES, VHOST_USER_PROTOCOL_F_CONFIG, VHOST_USER_PROTOCOL_F_MQ, VHOST_USER_PROTOCOL_F_REPLY_ACK } from '../src/vhost-user/features.js';
import { FrontendReq as R, encodeRequest } from '../src/vhost-user/message.js';
import { MockGuest, MockSplitQueue } from './mock-driver.js';
import { MessageReader, memTablePayload, u32pair, u64, vringAddrPayload, type GuestLayout } from './vhost-wire.js';

export const GUEST_GPA_BASE = 0x100000;
export const FRONTEND_VA_BASE = 0x7f1200000000;

export interface Reply {
  request: number;
  flags: number;
  payload: Uint8Array;
  /** Fds that came with the reply (GET_INFLIGHT_FD); the caller owns them. */
  fds: number[];
}

export class TestFrontend {
  readonly guest: MockGuest;
  readonly memfd: number;
  readonly memBytes: number;
  queues: MockSplitQueue[] = [];
  kickFds: number[] = [];
  callFds: number[] = [];
  private readonly poller: native.Poller;
  private readonly reader: MessageReader;
  private waiters: ((r: Reply | null) => void)[] = [];
  private receivedFds: number[] = [];
  closed = false;

  private ownsMemory = true;

  private constructor(readonly fd: number, memBytes: number, previous?: TestFrontend) {
    this.memBytes = memBytes;
    if (previous !== undefined) {
      previous.ownsMemory = false; // Why: this session now owns the shared memfd.
      this.memfd = previous.memfd;
      this.guest = previous.guest;
      this.queues = previous.queues;
    } else {
      this.memfd = native.memfdCreate('test-guest-ram', memBytes);
      this.guest = new MockGuest(native.mapShared(this.memfd, memBytes, 0), GUEST_GPA_BASE);
    }
    this.reader = new MessageReader(fd);
    this.poller = new native.Poller(fd, () => this.onReadable());
    this.poller.start(native.READABLE | native.DISCONNECT);
  }

  static connect(socketPath: string, memBytes = 16 << 20): TestFrontend {
    return new TestFrontend(native.unixConnect(socketPath), memBytes);
  }

  /** A second front-end session over the same guest RAM and rings (QEMU after a reconnect). */
  static reconnect(socketPath: string, previous: TestFrontend): TestFrontend {
    return new TestFrontend(native.unixConnect(socketPath), previous.memBytes, previous);
  }

  /** Guest RAM as this front-end shares it. */
  private get layout(): GuestLayout {
    return { gpaBase: GUEST_GPA_BASE, vaBase: FRONTEND_VA_BASE, memBytes: this.memBytes };
  }

  private onReadable(): void {
    const messages = this.reader.read((fds) => this.receivedFds.push(...fds));
    if (messages === null) {
      this.closed = true;
      this.poller.stop();
      for (const w of this.waiters.splice(0)) w(null);
      return;
    }
    for (const { header: h, payload } of messages) {
      const fds = this.receivedFds;
      this.receivedFds = [];
      this.waiters.shift()?.({ request: h.request, flags: h.flags, payload, fds });
    }
  }

  /** Sends raw bytes (hostile-input tests). */
  sendRaw(bytes: Uint8Array, fds: number[] = []): void {
    const sent = native.sendMsg(this.fd, bytes, fds);
    if (sent !== bytes.length) throw new Error(`short send ${sent}`);
  }

  send(request: number, payload: Uint8Array, fds: number[] = [], needReply = false): void {
    this.sendRaw(encodeRequest(request, payload, needReply), fds);
  }

  /** Waits for the next reply; null if the back-end closed the connection first. */
  nextReply(timeoutMs = 5000): Promise<Reply | null> {
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  async call(request: number, payload: Uint8Array = new Uint8Array(0), fds: number[] = []): Promise<Reply> {
    const p = this.nextReply();
    this.send(request, payload, fds);
    const r = await p;
    if (r === null) throw new Error('connection closed by the back-end');
    return r;
  }

  /** Sends with NEED_REPLY and returns the REPLY_ACK value (0 = success). */
  async callAck(request: number, payload: Uint8Array, fds: number[] = []): Promise<bigint> {
    const p = this.nextReply();
    this.send(request, payload, fds, true);
    const r = await p;
    if (r === null) throw new Error('connection closed by the back-end');
    return new DataView(r.payload.buffer, r.payload.byteOffset).getBigUint64(0, true);
  }

  /** Waits until the back-end closes the connection (bounded). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.closed;
  }

  /**
   * The negotiation QEMU's vhost-user-blk performs, then ring setup for `numQueues`. With
   * `inflight`, the region is set (SET_INFLIGHT_FD, a reconnect) or fetched (GET_INFLIGHT_FD)
   * before the rings, as QEMU does.
   */
  async negotiate(opts: { numQueues: number; queueSize: number; features?: bigint; inflight?: 'get' | { fd: number; mmapSize: number }; protocolFeatures?: bigint; queues?: MockSplitQueue[] }): Promise<{ features: bigint; config: Uint8Array; inflightFd?: number; inflightSize?: number }> {
    const offered = new DataView((await this.call(R.GET_FEATURES)).payload.buffer).getBigUint64(0, true);
    const features = opts.features ?? offered;
    // Why no ACK: REPLY_ACK is not negotiated yet (vhost-user.rst REPLY_ACK).
    this.send(R.SET_FEATURES, u64(features | VHOST_USER_F_PROTOCOL_FEATURES));
    await this.call(R.GET_PROTOCOL_FEATURES);
    this.send(R.SET_PROTOCOL_FEATURES, u64(opts.protocolFeatures ?? (VHOST_USER_PROTOCOL_F_MQ | VHOST_USER_PROTOCOL_F_REPLY_ACK | VHOST_USER_PROTOCOL_F_CONFIG)));
    await this.callAck(R.SET_OWNER, new Uint8Array(0));
    const cfgReq = new Uint8Array(12 + 60);
    new DataView(cfgReq.buffer).setUint32(4, 60, true);
    const config = (await this.call(R.GET_CONFIG, cfgReq)).payload.subarray(12);
    await this.setMemTable();
    let inflight: { inflightFd?: number; inflightSize?: number } = {};
    const req = new Uint8Array(24);
    const dv = new DataView(req.buffer);
    dv.setUint16(16, opts.numQueues, true);
    dv.setUint16(18, opts.queueSize, true);
    if (opts.inflight === 'get') {
      const r = await this.call(R.GET_INFLIGHT_FD, req);
      const size = Number(new DataView(r.payload.buffer, r.payload.byteOffset).getBigUint64(0, true));
      inflight = { inflightFd: r.fds[0]!, inflightSize: size };
    } else if (opts.inflight !== undefined) {
      dv.setBigUint64(0, BigInt(opts.inflight.mmapSize), true);
      await this.callAck(R.SET_INFLIGHT_FD, req, [opts.inflight.fd]);
    }
    for (let q = 0; q < opts.numQueues; q++) await this.setupQueue(q, opts.queueSize, opts.queues?.[q]);
    return { features, config, ...inflight };
  }

  async setMemTable(): Promise<bigint> {
    return this.callAck(R.SET_MEM_TABLE, memTablePayload(this.layout), [this.memfd]);
  }

  /** Sets up ring `q`; `existing` re-uses rings already in guest memory (a reconnect). */
  async setupQueue(q: number, size: number, existing?: MockSplitQueue, base = 0): Promise<void> {
    const mq = existing ?? this.queues[q] ?? new MockSplitQueue(this.guest, size);
    this.queues[q] = mq;
    await this.callAck(R.SET_VRING_NUM, u32pair(q, size));
    await this.callAck(R.SET_VRING_BASE, u32pair(q, base));
    await this.callAck(R.SET_VRING_ADDR, vringAddrPayload(this.layout, q, mq));
    const kick = native.eventfd(0, true);
    const call = native.eventfd(0, true);
    this.kickFds[q] = kick;
    this.callFds[q] = call;
    await this.callAck(R.SET_VRING_KICK, u64(BigInt(q)), [kick]);
    await this.callAck(R.SET_VRING_CALL, u64(BigInt(q)), [call]);
    await this.callAck(R.SET_VRING_ENABLE, u32pair(q, 1));
  }

  kick(q: number): void {
    fs.writeSync(this.kickFds[q]!, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
  }

  /** Reads and resets the call eventfd; returns how many signals were counted. */
  takeCalls(q: number): number {
    const b = Buffer.alloc(8);
    try {
      fs.readSync(this.callFds[q]!, b, 0, 8, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
      throw err;
    }
    return Number(b.readBigUInt64LE(0));
  }

  /** Waits until queue `q`'s used.idx reaches `target` (bounded, fails loudly). */
  async waitUsed(q: number, target: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const mq = this.queues[q]!;
    while (mq.usedIdx() !== (target & 0xffff)) {
      if (Date.now() > deadline) throw new Error(`queue ${q}: used.idx ${mq.usedIdx()} did not reach ${target} in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Closes the connection but keeps guest RAM, for a later `reconnect` (QEMU's view of a crash). */
  disconnect(): void {
    this.ownsMemory = false;
    this.close();
    this.ownsMemory = true;
  }

  close(): void {
    if (!this.closed) this.poller.stop();
    this.poller.close();
    this.closed = true;
    for (const fd of [this.fd, ...(this.ownsMemory ? [this.memfd] : []), ...this.kickFds, ...this.callFds]) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}
