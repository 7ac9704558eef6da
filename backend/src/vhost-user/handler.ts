/**
 * The vhost-user back-end state machine for one connection: size and fd checks first
 * (rust-vmm `check_attached_files`), then one flat dispatch where each case decodes, acts
 * and replies (libvhost-user `vu_process_message`).
 *
 * Outcomes of a message (GUIDE §6): a reply payload; an ACK/NACK when REPLY_ACK asked for
 * one; a deferred reply (GET_VRING_BASE waits for the ring's in-flight requests); or a
 * `ProtocolError`, which closes the connection with one clear log line. Nothing the
 * front-end sends can throw past this file.
 */
import type { Logger } from 'pino';
import type { BlkDevice } from '../blk/device.js';
import { closeFds, mapRegion, MemoryTable, unmapRegion } from '../memory/mapping.js';
import type { MappedRegion } from '../memory/guest-memory.js';
import * as native from '../../../native/index.js';
import { queueRegionBytes, recoverRing } from '../virtio/inflight.js';
import { SplitQueue } from '../virtio/split-queue.js';
import { Vring } from '../virtio/vring.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import type { IncomingMessage, VhostUserConnection } from './connection.js';
import { ProtocolError } from './errors.js';
import * as f from './features.js';
import {
  BackendReq,
  FrontendReq as R,
  VHOST_USER_MAX_RAM_SLOTS,
  VHOST_USER_NEED_REPLY_MASK,
  VHOST_USER_VRING_IDX_MASK,
  VHOST_USER_VRING_NOFD_MASK,
  decodeConfig,
  decodeInflight,
  encodeInflight,
  encodeRequest,
  decodeMemRegMsg,
  decodeMemTable,
  decodeU64,
  decodeVringAddr,
  decodeVringState,
  encodeConfig,
  encodeReply,
  encodeU64,
  encodeVringState,
  requestName,
  type MemoryRegionDesc,
} from './message.js';

/** What handling a message produced. */
type Outcome =
  | { kind: 'reply'; payload: Uint8Array }
  | { kind: 'reply-fd'; payload: Uint8Array; fd: number }
  | { kind: 'ack'; ok: boolean }
  | { kind: 'deferred'; run: (reply: (payload: Uint8Array) => void) => void }
  | { kind: 'deferred-outcome'; run: (done: (outcome: Outcome) => void) => void }
  | ProtocolError;

const ACK_OK: Outcome = { kind: 'ack', ok: true };
const ACK_FAIL: Outcome = { kind: 'ack', ok: false };
const reply = (payload: Uint8Array): Outcome => ({ kind: 'reply', payload });

/** Protocol features we offer. */
export const OFFERED_PROTOCOL_FEATURES =
  f.VHOST_USER_PROTOCOL_F_MQ |
  f.VHOST_USER_PROTOCOL_F_REPLY_ACK |
  f.VHOST_USER_PROTOCOL_F_BACKEND_REQ |
  f.VHOST_USER_PROTOCOL_F_CONFIG |
  f.VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD |
  f.VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS;

/** The shared inflight region (GET/SET_INFLIGHT_FD), mapped here. */
interface InflightRegion {
  bytes: Uint8Array;
  mapping: ArrayBuffer;
  numQueues: number;
  queueSize: number;
  queueRegionBytes: number;
}

/** How long GET_VRING_BASE waits for in-flight requests before answering anyway. */
const DRAIN_TIMEOUT_MS = 30_000;

/** Requests that carry exactly one fd. */
const ONE_FD_REQUESTS = new Set<number>([R.ADD_MEM_REG, R.SET_INFLIGHT_FD, R.SET_BACKEND_REQ_FD]);

/** Requests that carry exactly one fd unless the NOFD bit says otherwise. */
const VRING_FD_REQUESTS = new Set<number>([R.SET_VRING_KICK, R.SET_VRING_CALL, R.SET_VRING_ERR]);

export class VhostUserBackend {
  readonly memory = new MemoryTable();
  readonly vrings: Vring[];
  private ackedFeatures = 0n;
  private ackedProtocolFeatures = 0n;
  private regions: MappedRegion[] = [];
  private inflightRegion: InflightRegion | null = null;
  private backendReqFd = -1;

  constructor(
    private readonly conn: VhostUserConnection,
    private readonly device: BlkDevice,
    private readonly log: Logger,
    /** Queue workers (--workers ≥ 2); null runs every queue on this thread. */
    private readonly workers: WorkerPool | null = null,
  ) {
    this.vrings = Array.from({ length: device.numQueues }, (_, i) => new Vring(i));
    device.attach(this.memory);
  }

  start(): void {
    this.conn.start((msg) => this.onMessage(msg));
  }

  /** Requests in flight on every ring. */
  get inflight(): number {
    return this.vrings.reduce((n, v) => n + v.inflight, 0) + (this.workers?.stats().inflight ?? 0);
  }

  /** After the connection closed: stop rings, wait for in-flight requests, drop memory. */
  teardown(cb: () => void): void {
    const workers = this.workers;
    const inWorkers = this.vrings.filter((v) => v.inWorker);
    if (workers !== null && (inWorkers.length > 0 || this.regions.length > 0)) {
      let pending = inWorkers.length + 1;
      const next = (): void => {
        if (--pending === 0) workers.reset(() => this.teardownLocal(cb));
      };
      for (const v of inWorkers) {
        workers.stopRing(v.index, (_nextAvail, callFd) => {
          v.inWorker = false;
          v.callFd = callFd; // back to us; reset() closes it
          next();
        });
      }
      return next();
    }
    this.teardownLocal(cb);
  }

  private teardownLocal(cb: () => void): void {
    for (const v of this.vrings) v.stop();
    let waiting = this.vrings.length;
    const oneIdle = (): void => {
      if (--waiting > 0) return;
      for (const v of this.vrings) v.reset();
      this.memory.clear();
      this.regions = [];
      if (this.inflightRegion !== null) native.unmap(this.inflightRegion.mapping);
      this.inflightRegion = null;
      this.setBackendReqFd(-1);
      cb();
    };
    for (const v of this.vrings) v.whenIdle(oneIdle);
  }

  private onMessage(msg: IncomingMessage): void {
    const { header } = msg;
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ request: requestName(header.request), size: header.size, fds: msg.fds.length }, 'message');
    }
    let outcome: Outcome;
    try {
      outcome = this.checkFds(msg) ?? this.handle(msg);
    } catch (err) {
      outcome = new ProtocolError('VHU_ERR_BAD_STATE', `${requestName(header.request)} failed`, { cause: err });
    }
    if (outcome instanceof ProtocolError) {
      closeFds(msg.fds);
      this.log.warn({ request: requestName(header.request), code: outcome.code, reason: outcome.message, cause: outcome.cause }, 'vhost-user message rejected; closing the connection');
      return this.conn.close(outcome);
    }
    this.finish(header.request, header.flags, outcome);
  }

  private finish(request: number, flags: number, outcome: Exclude<Outcome, ProtocolError>): void {
    const needReply = (flags & VHOST_USER_NEED_REPLY_MASK) !== 0 && f.hasFeature(this.ackedProtocolFeatures, f.VHOST_USER_PROTOCOL_F_REPLY_ACK);
    switch (outcome.kind) {
      case 'reply':
        return this.conn.send(encodeReply(request, outcome.payload));
      case 'reply-fd':
        // Why close: sendmsg duplicates the fd into QEMU; our mapping stays valid without it.
        return this.conn.send(encodeReply(request, outcome.payload), [outcome.fd], { closeFdsAfterSend: true });
      case 'ack':
        if (!outcome.ok) this.log.warn({ request: requestName(request) }, 'request refused');
        if (needReply) this.conn.send(encodeReply(request, encodeU64(outcome.ok ? 0n : 1n)));
        return;
      case 'deferred':
        this.conn.pause();
        return outcome.run((payload) => {
          this.conn.send(encodeReply(request, payload));
          this.conn.resume();
        });
      case 'deferred-outcome':
        this.conn.pause();
        return outcome.run((final) => {
          this.conn.resume();
          if (final instanceof ProtocolError) {
            this.log.warn({ request: requestName(request), code: final.code, reason: final.message }, 'vhost-user request failed; closing the connection');
            return this.conn.close(final);
          }
          this.finish(request, flags, final);
        });
    }
  }

  /** Fd-count check before any decoding (rust-vmm check_attached_files). */
  private checkFds(msg: IncomingMessage): ProtocolError | null {
    const { request } = msg.header;
    const n = msg.fds.length;
    let expected: number | 'any-of-0-1' | 'payload';
    if (VRING_FD_REQUESTS.has(request)) expected = 'payload';
    else if (request === R.SET_MEM_TABLE) return n >= 1 ? null : new ProtocolError('VHU_ERR_MISSING_FD', 'SET_MEM_TABLE without fds');
    else if (ONE_FD_REQUESTS.has(request)) expected = 1;
    else if (request === R.REM_MEM_REG) expected = 'any-of-0-1';
    else expected = 0;
    if (expected === 'payload') {
      const word = msg.payload.length === 8 ? new DataView(msg.payload.buffer, msg.payload.byteOffset).getUint32(0, true) : 0;
      expected = word & VHOST_USER_VRING_NOFD_MASK ? 0 : 1;
    }
    if (expected === 'any-of-0-1') return n <= 1 ? null : new ProtocolError('VHU_ERR_UNEXPECTED_FDS', `${n} fds with REM_MEM_REG`);
    if (n > expected) return new ProtocolError('VHU_ERR_UNEXPECTED_FDS', `${requestName(request)} carried ${n} fds, expected ${expected}`);
    if (n < expected) return new ProtocolError('VHU_ERR_MISSING_FD', `${requestName(request)} carried ${n} fds, expected ${expected}`);
    return null;
  }

  private vring(index: number): Vring | ProtocolError {
    const v = this.vrings[index];
    return v ?? new ProtocolError('VHU_ERR_BAD_QUEUE_INDEX', `queue index ${index} >= ${this.vrings.length}`);
  }

  private handle(msg: IncomingMessage): Outcome {
    const p = msg.payload;
    switch (msg.header.request) {
      case R.GET_FEATURES:
        return reply(encodeU64(this.device.deviceFeatures | f.VHOST_USER_F_PROTOCOL_FEATURES));
      case R.SET_FEATURES:
        return this.setFeatures(decodeU64(p));
      case R.GET_PROTOCOL_FEATURES:
        return reply(encodeU64(OFFERED_PROTOCOL_FEATURES));
      case R.SET_PROTOCOL_FEATURES:
        return this.setProtocolFeatures(decodeU64(p));
      case R.SET_OWNER:
        return ACK_OK;
      case R.RESET_OWNER:
        for (const v of this.vrings) v.stop();
        return ACK_OK;
      case R.GET_QUEUE_NUM:
        return reply(encodeU64(BigInt(this.vrings.length)));
      case R.GET_MAX_MEM_SLOTS:
        return reply(encodeU64(BigInt(VHOST_USER_MAX_RAM_SLOTS)));
      case R.SET_MEM_TABLE:
        return this.setMemTable(p, msg.fds);
      case R.ADD_MEM_REG:
        return this.addMemReg(p, msg.fds);
      case R.REM_MEM_REG:
        return this.remMemReg(p, msg.fds);
      case R.SET_VRING_NUM:
        return this.setVringNum(p);
      case R.SET_VRING_ADDR:
        return this.setVringAddr(p);
      case R.SET_VRING_BASE:
        return this.setVringBase(p);
      case R.GET_VRING_BASE:
        return this.getVringBase(p);
      case R.SET_VRING_KICK:
      case R.SET_VRING_CALL:
      case R.SET_VRING_ERR:
        return this.setVringFd(msg.header.request, p, msg.fds);
      case R.SET_VRING_ENABLE:
        return this.setVringEnable(p);
      case R.GET_INFLIGHT_FD:
        return this.getInflightFd(p);
      case R.SET_INFLIGHT_FD:
        return this.setInflightFd(p, msg.fds);
      case R.SET_BACKEND_REQ_FD:
        this.setBackendReqFd(msg.fds[0]!);
        return ACK_OK;
      case R.GET_CONFIG:
        return this.getConfig(p);
      case R.SET_CONFIG:
        return this.setConfig(p);
      default:
        return new ProtocolError('VHU_ERR_UNKNOWN_REQUEST', `unsupported request ${requestName(msg.header.request)}`);
    }
  }

  private setFeatures(v: bigint | ProtocolError): Outcome {
    if (v instanceof ProtocolError) return v;
    const offered = this.device.deviceFeatures | f.VHOST_USER_F_PROTOCOL_FEATURES;
    if ((v & ~offered) !== 0n) return new ProtocolError('VHU_ERR_FEATURES', `front-end acked features not offered: 0x${(v & ~offered).toString(16)}`);
    this.ackedFeatures = v;
    this.device.setFeatures(v);
    this.workers?.broadcast({ kind: 'features', features: v.toString() });
    // vhost-user.rst "Ring states": without PROTOCOL_FEATURES rings start enabled.
    if (!f.hasFeature(v, f.VHOST_USER_F_PROTOCOL_FEATURES)) for (const ring of this.vrings) ring.enabled = true;
    for (const ring of this.vrings) if (ring.queue) ring.queue.eventIdx = f.hasFeature(v, f.VIRTIO_RING_F_EVENT_IDX);
    this.log.info({ features: `0x${v.toString(16)}` }, 'features negotiated');
    return ACK_OK;
  }

  private setProtocolFeatures(v: bigint | ProtocolError): Outcome {
    if (v instanceof ProtocolError) return v;
    if ((v & ~OFFERED_PROTOCOL_FEATURES) !== 0n) return new ProtocolError('VHU_ERR_FEATURES', `protocol features not offered: 0x${(v & ~OFFERED_PROTOCOL_FEATURES).toString(16)}`);
    this.ackedProtocolFeatures = v;
    return ACK_OK;
  }

  /**
   * Installs a new memory generation and re-translates every configured ring in it. A ring
   * the new table does not cover is an error (libvhost-user vu_set_mem_table_exec panics):
   * its queue would otherwise keep views into the retired generation, which is unmapped
   * (its ArrayBuffers detached) as soon as no request pins it, and the next kick would throw.
   */
  private installRegions(regions: MappedRegion[]): ProtocolError | null {
    this.regions = regions;
    const mem = this.memory.replace(regions);
    this.log.info({ regions: regions.length, totalBytes: mem.totalBytes, generation: mem.generation }, 'mem table set');
    for (const v of this.vrings) {
      if (v.frontendAddrs === null || v.queue === null) continue;
      const err = this.bindQueue(v);
      if (err !== null) {
        v.queue.unbind();
        return new ProtocolError(err.code, `queue ${v.index} after the memory table change: ${err.message}`);
      }
    }
    return null;
  }

  private setMemTable(p: Uint8Array, fds: number[]): Outcome {
    const descs = decodeMemTable(p);
    if (descs instanceof ProtocolError) return descs;
    if (descs.length !== fds.length) return new ProtocolError('VHU_ERR_UNEXPECTED_FDS', `${descs.length} regions but ${fds.length} fds`);
    const mapped: MappedRegion[] = [];
    for (let i = 0; i < descs.length; i++) {
      const r = mapRegion(fds[i]!, descs[i]!);
      if (r instanceof ProtocolError) {
        for (const m of mapped) unmapRegion(m);
        return r;
      }
      mapped.push(r);
    }
    return this.installAndShare(mapped, new Map(mapped.map((r, i) => [r, fds[i]!])));
  }

  /**
   * Installs the regions here and, with workers, has every worker map them from the same
   * fds before the request is acknowledged (a later SET_VRING_KICK may start a ring there).
   * The fds are closed once nobody needs them: our mappings keep the memory.
   */
  private installAndShare(regions: MappedRegion[], newFds: Map<MappedRegion, number>): Outcome {
    const err = this.installRegions(regions);
    const workers = this.workers;
    const mem = this.memory.current;
    if (err !== null || workers === null || mem === null) {
      closeFds([...newFds.values()]);
      return err ?? ACK_OK;
    }
    const message = { kind: 'memory' as const, generation: mem.generation, regions: regions.map((r) => ({ gpaStart: r.gpaStart, sizeBytes: r.sizeBytes, frontendVaStart: r.frontendVaStart, mmapOffset: r.mmapOffset, fd: newFds.get(r) ?? -1 })) };
    return {
      kind: 'deferred-outcome',
      run: (done) =>
        workers.mapMemory(message, (errors) => {
          closeFds([...newFds.values()]);
          done(errors.length === 0 ? ACK_OK : new ProtocolError('VHU_ERR_MEMORY', `queue workers could not map guest memory: ${errors.join('; ')}`));
        }),
    };
  }

  private addMemReg(p: Uint8Array, fds: number[]): Outcome {
    const desc = decodeMemRegMsg(p);
    if (desc instanceof ProtocolError) return desc;
    if (this.regions.length >= VHOST_USER_MAX_RAM_SLOTS) return new ProtocolError('VHU_ERR_MEMORY', 'no free memory slot');
    const r = mapRegion(fds[0]!, desc);
    if (r instanceof ProtocolError) {
      closeFds(fds);
      return r;
    }
    return this.installAndShare([...this.regions, r], new Map([[r, fds[0]!]]));
  }

  private remMemReg(p: Uint8Array, fds: number[]): Outcome {
    closeFds(fds);
    const desc = decodeMemRegMsg(p);
    if (desc instanceof ProtocolError) return desc;
    const same = (r: MemoryRegionDesc): boolean => r.gpaStart === desc.gpaStart && r.sizeBytes === desc.sizeBytes && r.frontendVaStart === desc.frontendVaStart;
    const keep = this.regions.filter((r) => !same(r));
    if (keep.length === this.regions.length) return ACK_FAIL;
    return this.installAndShare(keep, new Map());
  }

  private setVringNum(p: Uint8Array): Outcome {
    const s = decodeVringState(p);
    if (s instanceof ProtocolError) return s;
    const v = this.vring(s.index);
    if (v instanceof ProtocolError) return v;
    const n = s.num;
    if (n === 0 || n > this.device.maxQueueSize || (n & (n - 1)) !== 0) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `queue size ${n} is not a power of 2 in [1, ${this.device.maxQueueSize}]`);
    v.size = n;
    return ACK_OK;
  }

  private setVringAddr(p: Uint8Array): Outcome {
    const a = decodeVringAddr(p);
    if (a instanceof ProtocolError) return a;
    const v = this.vring(a.index);
    if (v instanceof ProtocolError) return v;
    if (v.size === 0) return new ProtocolError('VHU_ERR_BAD_STATE', 'SET_VRING_ADDR before SET_VRING_NUM');
    v.frontendAddrs = { desc: a.descFrontendVa, avail: a.availFrontendVa, used: a.usedFrontendVa };
    v.queue = new SplitQueue(v.size);
    v.queue.eventIdx = f.hasFeature(this.ackedFeatures, f.VIRTIO_RING_F_EVENT_IDX);
    v.queue.nextAvail = v.base;
    const err = this.bindQueue(v);
    if (err) return err;
    // libvhost-user: the used index continues from what the ring shows (a reconnect).
    v.queue.nextUsed = v.queue.usedRingIdx();
    return ACK_OK;
  }

  /** Translates the ring's front-end addresses and binds the queue's views. */
  private bindQueue(v: Vring): ProtocolError | null {
    const mem = this.memory.current;
    const fa = v.frontendAddrs!;
    if (mem === null) return new ProtocolError('VHU_ERR_BAD_STATE', 'ring address before SET_MEM_TABLE');
    const descGpa = mem.frontendVaToGpa(fa.desc);
    const availGpa = mem.frontendVaToGpa(fa.avail);
    const usedGpa = mem.frontendVaToGpa(fa.used);
    if (descGpa === null || availGpa === null || usedGpa === null) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', 'ring address outside guest memory');
    v.addrs = { descGpa, availGpa, usedGpa };
    const err = v.queue!.bind(mem, v.addrs);
    if (err !== null) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', err.message);
    return null;
  }

  private setVringBase(p: Uint8Array): Outcome {
    const s = decodeVringState(p);
    if (s instanceof ProtocolError) return s;
    const v = this.vring(s.index);
    if (v instanceof ProtocolError) return v;
    if (s.num > 0xffff) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `split ring base ${s.num} > 0xffff`);
    v.base = s.num;
    if (v.queue !== null) v.queue.nextAvail = s.num;
    return ACK_OK;
  }

  private getVringBase(p: Uint8Array): Outcome {
    const s = decodeVringState(p);
    if (s instanceof ProtocolError) return s;
    const v = this.vring(s.index);
    if (v instanceof ProtocolError) return v;
    const workers = this.workers;
    if (v.inWorker && workers !== null) {
      return {
        kind: 'deferred',
        run: (send) =>
          workers.stopRing(v.index, (nextAvail, callFd) => {
            v.inWorker = false;
            v.started = false;
            v.callFd = callFd;
            v.kickFd = -1; // the worker closed it
            if (nextAvail >= 0) v.base = nextAvail;
            if (v.queue !== null) v.queue.nextAvail = v.base;
            send(encodeVringState({ index: s.index, num: v.base }));
          }),
      };
    }
    v.stop();
    return {
      kind: 'deferred',
      run: (send) => {
        let answered = false;
        const answer = (): void => {
          if (answered) return;
          answered = true;
          clearTimeout(timer);
          const queue = v.queue;
          if (queue !== null && queue.bound && queue.needsNotification()) v.signalCall();
          v.setFd('kick', -1);
          v.base = queue?.nextAvail ?? v.base;
          send(encodeVringState({ index: s.index, num: v.base }));
        };
        const timer = setTimeout(() => {
          this.log.error({ queue: s.index, inflight: v.inflight }, 'GET_VRING_BASE: requests still in flight after the drain timeout');
          answer();
        }, DRAIN_TIMEOUT_MS);
        v.whenIdle(answer);
      },
    };
  }

  private setVringFd(request: number, p: Uint8Array, fds: number[]): Outcome {
    const word = decodeU64(p);
    if (word instanceof ProtocolError) return word;
    const index = Number(word & BigInt(VHOST_USER_VRING_IDX_MASK));
    const v = this.vring(index);
    if (v instanceof ProtocolError) return v;
    const fd = fds[0] ?? -1;
    if (v.inWorker && this.workers !== null && request !== R.SET_VRING_ERR) {
      if (request === R.SET_VRING_KICK) {
        this.log.warn({ queue: index }, 'SET_VRING_KICK on a running ring without GET_VRING_BASE; ignored');
        closeFds(fds);
      } else this.workers.send(this.workers.workerOf(index), { kind: 'set-call', index, fd });
      return ACK_OK;
    }
    if (request === R.SET_VRING_CALL) v.setFd('call', fd);
    else if (request === R.SET_VRING_ERR) v.setFd('err', fd);
    else this.startRing(v, fd);
    return ACK_OK;
  }

  /** SET_VRING_KICK: the ring starts (vhost-user.rst "Starting and stopping rings"). */
  private startRing(v: Vring, kickFd: number): void {
    v.setFd('kick', kickFd);
    if (kickFd < 0) {
      this.log.warn({ queue: v.index }, 'kick without fd (polling mode) is not supported; ring stays stopped');
      return;
    }
    if (this.workers !== null) {
      v.started = true;
      if (v.enabled) this.startInWorker(v);
      return;
    }
    const resubmit = this.recoverInflight(v);
    if (resubmit instanceof Error) {
      this.log.error({ queue: v.index, err: resubmit }, 'inflight region does not match the ring; not tracking this ring');
    }
    v.started = true;
    v.startPolling(() => {
      v.drainKick();
      this.device.processQueue(v);
    });
    if (Array.isArray(resubmit) && resubmit.length > 0) {
      this.log.info({ queue: v.index, requests: resubmit.length }, 'resubmitting requests in flight before the reconnect');
      this.device.resubmit(v, resubmit);
    }
    this.device.processQueue(v);
  }

  /**
   * Hands a started, enabled ring to its worker, with its kick and call fds (the worker owns
   * them until it stops the ring). Inflight recovery and resubmission happen in the worker.
   */
  private startInWorker(v: Vring): void {
    const workers = this.workers!;
    const queue = v.queue;
    if (queue === null || !queue.bound || v.addrs === null) {
      this.log.warn({ queue: v.index }, 'ring started before its addresses were set; not started');
      return;
    }
    workers.send(workers.workerOf(v.index), {
      kind: 'start',
      index: v.index,
      size: queue.size,
      ...v.addrs,
      nextAvail: queue.nextAvail,
      nextUsed: queue.nextUsed,
      eventIdx: queue.eventIdx,
      kickFd: v.kickFd,
      callFd: v.callFd,
      resubmit: [],
    });
    v.kickFd = -1;
    v.callFd = -1;
    v.inWorker = true;
  }

  /**
   * Attaches the ring's part of the inflight region and reconciles it with the used ring
   * (libvhost-user vu_check_queue_inflights): next avail = used idx + heads still in flight.
   */
  private recoverInflight(v: Vring): number[] | Error {
    const region = this.inflightRegion;
    const queue = v.queue;
    if (region === null || queue === null || !queue.bound) return [];
    if (v.index >= region.numQueues || queue.size > region.queueSize) return new Error('ring does not fit the inflight region');
    const start = v.index * region.queueRegionBytes;
    const r = recoverRing(queue, region.bytes.subarray(start, start + region.queueRegionBytes));
    if (r instanceof Error) return r;
    v.inflightState = r.state;
    return r.pending;
  }

  /** GET_INFLIGHT_FD: we allocate the region in a memfd and hand QEMU the fd to keep. */
  private getInflightFd(p: Uint8Array): Outcome {
    const m = decodeInflight(p);
    if (m instanceof ProtocolError) return m;
    if (m.numQueues === 0 || m.numQueues > this.vrings.length || m.queueSize === 0 || m.queueSize > this.device.maxQueueSize) {
      return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `inflight region for ${m.numQueues} queues of ${m.queueSize}`);
    }
    const perQueue = queueRegionBytes(m.queueSize);
    const mmapSize = perQueue * m.numQueues;
    const fd = native.memfdCreate('strata-inflight', mmapSize);
    this.mapInflight(fd, mmapSize, 0, m.numQueues, m.queueSize);
    const answer: Outcome = { kind: 'reply-fd', payload: encodeInflight({ mmapSize, mmapOffset: 0, numQueues: m.numQueues, queueSize: m.queueSize }), fd };
    return this.shareInflight(fd, mmapSize, 0, m.numQueues, m.queueSize, answer, false);
  }

  /** With workers, each maps the inflight region too before `answer` goes out. */
  private shareInflight(fd: number, mmapSize: number, mmapOffset: number, numQueues: number, queueSize: number, answer: Outcome, closeAfter: boolean): Outcome {
    const workers = this.workers;
    if (workers === null) {
      if (closeAfter) closeFds([fd]);
      return answer;
    }
    const message = { kind: 'inflight' as const, fd, mmapSize, mmapOffset, numQueues, queueSize, queueRegionBytes: queueRegionBytes(queueSize) };
    return {
      kind: 'deferred-outcome',
      run: (done) =>
        workers.mapInflight(message, (errors) => {
          if (closeAfter) closeFds([fd]);
          done(errors.length === 0 ? answer : new ProtocolError('VHU_ERR_MEMORY', `queue workers could not map the inflight region: ${errors.join('; ')}`));
        }),
    };
  }

  /** SET_INFLIGHT_FD: the region a previous back-end (or this one) created, from QEMU. */
  private setInflightFd(p: Uint8Array, fds: number[]): Outcome {
    const m = decodeInflight(p);
    if (m instanceof ProtocolError) return m;
    const fd = fds[0]!;
    const perQueue = queueRegionBytes(m.queueSize);
    if (m.numQueues === 0 || m.queueSize === 0 || m.mmapSize < perQueue * m.numQueues || m.mmapOffset % 4096 !== 0) {
      return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `inflight region of ${m.mmapSize} bytes for ${m.numQueues}×${m.queueSize}`);
    }
    try {
      this.mapInflight(fd, m.mmapSize, m.mmapOffset, m.numQueues, m.queueSize);
    } catch (err) {
      closeFds(fds);
      return new ProtocolError('VHU_ERR_MEMORY', 'mapping the inflight region failed', { cause: err });
    }
    return this.shareInflight(fd, m.mmapSize, m.mmapOffset, m.numQueues, m.queueSize, ACK_OK, true);
  }

  private mapInflight(fd: number, mmapSize: number, mmapOffset: number, numQueues: number, queueSize: number): void {
    if (this.inflightRegion !== null) native.unmap(this.inflightRegion.mapping);
    const mapping = native.mapShared(fd, mmapSize, mmapOffset);
    this.inflightRegion = { bytes: new Uint8Array(mapping), mapping, numQueues, queueSize, queueRegionBytes: queueRegionBytes(queueSize) };
  }

  private setBackendReqFd(fd: number): void {
    if (this.backendReqFd >= 0) closeFds([this.backendReqFd]);
    this.backendReqFd = fd;
  }

  /**
   * Tells QEMU the config space changed (VHOST_USER_BACKEND_CONFIG_CHANGE_MSG on the backend
   * channel); QEMU re-reads it with GET_CONFIG and raises a config interrupt in the guest.
   * Returns false when no backend channel was negotiated.
   */
  notifyConfigChange(): boolean {
    if (this.backendReqFd < 0) return false;
    try {
      const sent = native.sendMsg(this.backendReqFd, encodeRequest(BackendReq.CONFIG_CHANGE_MSG, new Uint8Array(0)), []);
      return sent !== null;
    } catch (err) {
      this.log.warn({ err }, 'config change notification failed');
      return false;
    }
  }

  private setVringEnable(p: Uint8Array): Outcome {
    const s = decodeVringState(p);
    if (s instanceof ProtocolError) return s;
    const v = this.vring(s.index);
    if (v instanceof ProtocolError) return v;
    if (s.num > 1) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `SET_VRING_ENABLE ${s.num}`);
    v.enabled = s.num === 1;
    // Why no stop on disable in worker mode: QEMU disables rings right before GET_VRING_BASE,
    // which stops and drains them; a few requests processed in between are harmless.
    if (this.workers !== null) {
      if (v.enabled && v.started && !v.inWorker) this.startInWorker(v);
      return ACK_OK;
    }
    if (v.enabled) this.device.processQueue(v);
    return ACK_OK;
  }

  private getConfig(p: Uint8Array): Outcome {
    const c = decodeConfig(p);
    if (c instanceof ProtocolError) return c;
    return reply(encodeConfig({ offset: c.offset, size: c.size, flags: c.flags, payload: this.device.getConfig(c.offset, c.size) }));
  }

  private setConfig(p: Uint8Array): Outcome {
    const c = decodeConfig(p);
    if (c instanceof ProtocolError) return c;
    if (!this.device.setConfig(c.offset, c.payload)) return ACK_FAIL;
    this.workers?.broadcast({ kind: 'writeback', on: this.device.writebackEnabled });
    return ACK_OK;
  }
}
