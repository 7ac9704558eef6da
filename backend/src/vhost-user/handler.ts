/**
 * The vhost-user back-end state machine for one connection: size and fd checks first
 * (rust-vmm `check_attached_files`, fd-check.ts), then one flat dispatch where each case
 * decodes, acts and replies (libvhost-user `vu_process_message`). The cases live with what
 * they own: feature-negotiation.ts, memory-table.ts, vring-setup.ts, vring-lifecycle.ts,
 * inflight-fd.ts, device-config.ts; they share the connection's state (`BackendSession`,
 * outcome.ts).
 *
 * Outcomes of a message (GUIDE §6): a reply payload; an ACK/NACK when REPLY_ACK asked for
 * one; a deferred reply (GET_VRING_BASE waits for the ring's in-flight requests); or a
 * `ProtocolError`, which closes the connection with one clear log line. Nothing the
 * front-end sends can throw past this file.
 */
import type { Logger } from 'pino';
import type { BlkDevice } from '../blk/device.js';
import { closeFds, MemoryTable } from '../memory/mapping.js';
import { Vring } from '../virtio/vring.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import type { IncomingMessage, VhostUserConnection } from './connection.js';
import { getConfig, notifyConfigChange, setBackendReqFd, setConfig } from './device-config.js';
import { ProtocolError } from './errors.js';
import { checkFds } from './fd-check.js';
import { getFeatures, getProtocolFeatures, setFeatures, setProtocolFeatures } from './feature-negotiation.js';
import * as f from './features.js';
import { getInflightFd, setInflightFd, unmapInflight } from './inflight-fd.js';
import { addMemReg, remMemReg, setMemTable } from './memory-table.js';
import { FrontendReq as R, VHOST_USER_MAX_RAM_SLOTS, VHOST_USER_NEED_REPLY_MASK, encodeReply, encodeU64, requestName } from './message.js';
import { ACK_OK, reply, type BackendSession, type Outcome } from './outcome.js';
import { getVringBase, setVringEnable, setVringFd } from './vring-lifecycle.js';
import { setVringAddr, setVringBase, setVringNum } from './vring-setup.js';

export { OFFERED_PROTOCOL_FEATURES } from './feature-negotiation.js';

export class VhostUserBackend {
  readonly memory = new MemoryTable();
  readonly vrings: Vring[];
  private readonly s: BackendSession;

  constructor(
    private readonly conn: VhostUserConnection,
    device: BlkDevice,
    private readonly log: Logger,
    /** Queue workers (--workers ≥ 2); null runs every queue on this thread. */
    private readonly workers: WorkerPool | null = null,
  ) {
    this.vrings = Array.from({ length: device.numQueues }, (_, i) => new Vring(i));
    this.s = { memory: this.memory, vrings: this.vrings, device, log, workers, ackedFeatures: 0n, ackedProtocolFeatures: 0n, regions: [], inflightRegion: null, backendReqFd: -1 };
    device.attach(this.memory);
  }

  start(): void {
    this.conn.start((msg) => this.onMessage(msg));
  }

  /** Requests in flight on every ring. */
  get inflight(): number {
    return this.vrings.reduce((n, v) => n + v.inflight, 0) + (this.workers?.stats().inflight ?? 0);
  }

  /**
   * Graceful stop while still connected: no ring takes new requests, and `cb` runs once every
   * request in flight has completed and been signalled (or after `timeoutMs`, with what is left
   * logged). Why before the disconnect: QEMU restores a ring it cannot query from its used
   * index, so a completion written after it saw the socket close would be processed again by
   * the next back-end, and a second completion of the same head breaks the guest's
   * virtqueue (a SIGTERM restart hung the guest's I/O that way under load).
   */
  quiesce(timeoutMs: number, cb: () => void): void {
    let pending = 1;
    let done = false;
    const timer = setTimeout(() => {
      this.log.error({ inflight: this.inflight }, 'shutdown: requests still in flight after the drain timeout; disconnecting anyway');
      finish();
    }, timeoutMs);
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const v of this.vrings) if (v.notifyPending && v.callFd >= 0) v.signalCall();
      cb();
    };
    const one = (): void => {
      if (--pending === 0) finish();
    };
    const workers = this.workers;
    for (const v of this.vrings) {
      pending++;
      if (v.inWorker && workers !== null) {
        workers.stopRing(v.index, (_nextAvail, callFd) => {
          v.backFromWorker(callFd);
          one();
        });
      } else {
        v.stop();
        v.whenIdle(one);
      }
    }
    one();
  }

  /** After the connection closed: stop rings, wait for in-flight requests, drop memory. */
  teardown(cb: () => void): void {
    const workers = this.workers;
    const inWorkers = this.vrings.filter((v) => v.inWorker);
    if (workers !== null && (inWorkers.length > 0 || this.s.regions.length > 0)) {
      let pending = inWorkers.length + 1;
      const next = (): void => {
        if (--pending === 0) workers.reset(() => this.teardownLocal(cb));
      };
      for (const v of inWorkers) {
        workers.stopRing(v.index, (_nextAvail, callFd) => {
          v.backFromWorker(callFd); // reset() closes the call fd
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
      this.s.regions = [];
      unmapInflight(this.s);
      setBackendReqFd(this.s, -1);
      cb();
    };
    for (const v of this.vrings) v.whenIdle(oneIdle);
  }

  /**
   * Tells QEMU the config space changed (VHOST_USER_BACKEND_CONFIG_CHANGE_MSG on the backend
   * channel). Returns false when no backend channel was negotiated.
   */
  notifyConfigChange(): boolean {
    return notifyConfigChange(this.s);
  }

  private onMessage(msg: IncomingMessage): void {
    const { header } = msg;
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ request: requestName(header.request), size: header.size, fds: msg.fds.length }, 'message');
    }
    let outcome: Outcome;
    try {
      outcome = checkFds(msg) ?? this.handle(msg);
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
    const needReply = (flags & VHOST_USER_NEED_REPLY_MASK) !== 0 && f.hasFeature(this.s.ackedProtocolFeatures, f.VHOST_USER_PROTOCOL_F_REPLY_ACK);
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

  private handle(msg: IncomingMessage): Outcome {
    const s = this.s;
    const p = msg.payload;
    switch (msg.header.request) {
      case R.GET_FEATURES:
        return getFeatures(s);
      case R.SET_FEATURES:
        return setFeatures(s, p);
      case R.GET_PROTOCOL_FEATURES:
        return getProtocolFeatures();
      case R.SET_PROTOCOL_FEATURES:
        return setProtocolFeatures(s, p);
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
        return setMemTable(s, p, msg.fds);
      case R.ADD_MEM_REG:
        return addMemReg(s, p, msg.fds);
      case R.REM_MEM_REG:
        return remMemReg(s, p, msg.fds);
      case R.SET_VRING_NUM:
        return setVringNum(s, p);
      case R.SET_VRING_ADDR:
        return setVringAddr(s, p);
      case R.SET_VRING_BASE:
        return setVringBase(s, p);
      case R.GET_VRING_BASE:
        return getVringBase(s, p);
      case R.SET_VRING_KICK:
      case R.SET_VRING_CALL:
      case R.SET_VRING_ERR:
        return setVringFd(s, msg.header.request, p, msg.fds);
      case R.SET_VRING_ENABLE:
        return setVringEnable(s, p);
      case R.GET_INFLIGHT_FD:
        return getInflightFd(s, p);
      case R.SET_INFLIGHT_FD:
        return setInflightFd(s, p, msg.fds);
      case R.SET_BACKEND_REQ_FD:
        setBackendReqFd(s, msg.fds[0]!);
        return ACK_OK;
      case R.GET_CONFIG:
        return getConfig(s, p);
      case R.SET_CONFIG:
        return setConfig(s, p);
      default:
        return new ProtocolError('VHU_ERR_UNKNOWN_REQUEST', `unsupported request ${requestName(msg.header.request)}`);
    }
  }
}
