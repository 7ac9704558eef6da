/**
 * The Objecter (Ceph's `osdc/Objecter`, split as GUIDE §4 asks: targeting in op-target.ts,
 * sessions in session-table.ts): sends one object's op vector (`MSG_OSD_OP`,
 * docs/osd-protocol.md) to its PG's primary and keeps it alive across map changes, session
 * resets, stale epochs and timeouts until it gets a final answer. Run to completion, callbacks
 * only, time through `env` (the simulator drives it); `submitAsync` is the Promise facade for
 * CLI callers.
 *
 * ```
 *  submit ─► throttled ──(ops/bytes budget)──► waiting ◄──────────────────────────┐
 *                                               │ map has a primary, |acting| ≥ min_size
 *                                               ▼                                 │
 *                                           inflight ── reply ok / final error ─► done
 *                                               │ new map: NEED_RESEND | OSD_DOWN  │
 *                                               │ CONN_CLOSED, attempt timeout      │
 *                                               │ EPOCH_STALE/WRONG_TARGET (wait    │
 *                                               │   for map ≥ reply.mapEpoch)       │
 *                                               └───────────────────────────────────┘
 *  any state ── deadline (opTimeoutMs) or attempts > maxAttempts ──► done (CLU_ERR_TIMEOUT)
 * ```
 *
 * Resend rules (docs/client.md):
 * - Every new map recomputes each op's target (`recalcTarget`): NEED_RESEND sends again to
 *   the new primary, OSD_DOWN (no primary, or the acting set below min_size) holds the op
 *   client-side until a map fixes it — it WAITS, it does not fail, until the op's deadline.
 *   POOL_DNE fails it with `CLU_ERR_NOT_FOUND`.
 * - A resend keeps the reqId `{client, tid}` (only `attempt` grows), so the primary's PG log
 *   dedup answers an already-applied write with its original result: nothing applies twice,
 *   even when the old and new attempts race. Replies to superseded attempts are ignored.
 * - `CLU_ERR_CONN_CLOSED` (session reset), attempt timeouts and `CLU_ERR_UNAVAILABLE` (the OSD
 *   queued it too long) resend; `CLU_ERR_AUTH` refetches the ticket first.
 * - Bounded: `maxAttempts` sends and `opTimeoutMs` overall, with the last error in the final
 *   one. In-flight ops and bytes are bounded; more ops queue in submission order.
 *
 * Blocklisting (docs/cluster-map.md §Blocklist): a reply `OSD_RESULT_BLOCKLISTED`, or a map
 * that lists our `clientId`, makes this Objecter dead for data: every op, in flight or later,
 * fails at once with `CLU_ERR_PERM` reason `blocklisted` (Ceph: a blocklisted librados
 * instance gets EBLOCKLISTED forever; the process must reconnect as a new instance).
 * `requireEpoch(e)` holds every op until our map is at epoch ≥ e, so OSDs (which make an op
 * wait for its `mapEpoch`) have seen e before they execute it: the image lock's takeover.
 *
 * Bulk data: write data views go to the messenger as they are (no copy); read data comes back
 * as views of the received chunks (`ObjecterResult.data`).
 */
import type { Logger } from 'pino';
import type { ClientCredentials } from '../auth/handshake.js';
import type { TicketCredentials } from '../auth/ticket.js';
import { ClusterError, clusterErrorFromWire } from '../common/errors.js';
import type { OsdId, PoolId } from '../common/ids.js';
import { NO_OSD } from '../common/ids.js';
import type { Env, TimerHandle } from '../env/env.js';
import { isBlocklisted } from '../map/cluster-map.js';
import type { ClusterMap } from '../map/cluster-map.js';
import type { Messenger } from '../msg/messenger.js';
import type { ReplySink } from '../msg/frame.js';
import type { InboundMessage } from '../msg/session.js';
import { MsgType } from '../msg/types.js';
import {
  OSD_FLAG_READ, OSD_FLAG_WRITE, decodeOsdOpReply, encodeOsdOpRequest, isWriteOp, osdResultError, requestDataBytes,
} from '../osd/osd-protocol.js';
import type { OsdOp, OsdOpReply } from '../osd/osd-protocol.js';
import { recalcTarget } from './op-target.js';
import type { OpTarget } from './op-target.js';
import { SessionTable } from './session-table.js';
import type { OsdSession } from './session-table.js';

/** What the Objecter needs from the monitor client (MonClient fits; the simulator may fake it). */
export interface ObjecterMon {
  map(): ClusterMap | undefined;
  on(event: 'map', fn: (map: ClusterMap) => void): unknown;
  off(event: 'map', fn: (map: ClusterMap) => void): unknown;
  currentTicket(): TicketCredentials | undefined;
  ticket(cb: (err: ClusterError | null, creds?: TicketCredentials) => void): void;
  /** Admin command to the monitor (MonClient.command); needed by `blocklist`. */
  command?(cmd: Readonly<Record<string, unknown>>, cb: (err: ClusterError | null, result?: Record<string, unknown>) => void): void;
}

/** Limits and timeouts (GUIDE principle 6). */
export interface ObjecterLimits {
  /** Ops admitted (waiting or in flight) at once; more queue. */
  maxInflightOps: number;
  /** Bytes (write data + read lengths) admitted at once; more queue. */
  maxInflightBytes: number;
  /** Whole-op deadline, including time waiting for a primary or min_size. */
  opTimeoutMs: number;
  /** Deadline of one send; then the op is resent. */
  attemptTimeoutMs: number;
  /** Sends per op before it fails. */
  maxAttempts: number;
  /** How long to wait for a newer map an OSD told us about before resending anyway. */
  mapWaitMs: number;
}

export const DEFAULT_OBJECTER_LIMITS: Readonly<ObjecterLimits> = {
  maxInflightOps: 1024,
  maxInflightBytes: 128 * 1024 * 1024,
  opTimeoutMs: 60_000,
  attemptTimeoutMs: 15_000,
  maxAttempts: 40,
  mapWaitMs: 2_000,
};

/** Options of an Objecter. */
export interface ObjecterOptions {
  env: Env;
  /** Messenger for OSD sessions (the MonClient's own is fine). */
  msgr: Messenger;
  mon: ObjecterMon;
  /** Our entity, e.g. `client.vm1`; a random instance suffix makes reqIds unique per process. */
  entity: string;
  limits?: Partial<ObjecterLimits>;
}

/** One object's op vector. */
export interface ObjectOpRequest {
  pool: PoolId;
  objectName: string;
  ops: readonly OsdOp[];
  /** Bytes of the write/writefull ops, in op order (views; never copied). */
  data?: readonly Uint8Array[];
  /** Extra request flags (e.g. OSD_FLAG_FAILOK); READ/WRITE are derived from the ops. */
  flags?: number;
  /**
   * For a request of one `read` op: where its bytes go (e.g. views of guest memory, at least
   * the read's length). The messenger copies the reply's data straight there from the socket
   * (`ObjecterResult.inPlace`); nothing is written to them once `submit`'s callback has run.
   */
  readInto?: readonly Uint8Array[];
}

/** A decoded reply and the read bytes (views of the received frame). */
export interface ObjecterResult {
  reply: OsdOpReply;
  data: Uint8Array[];
  /** The data is already in `readInto` (`data` are views of it), from its first byte. */
  inPlace?: true;
}

/**
 * Completion callback. On a result error from the OSD (`NOT_FOUND`, `CANCELLED`, `BUSY` of a
 * lock, …) `res` carries the reply too.
 */
export type ObjecterCallback = (err: ClusterError | null, res?: ObjecterResult) => void;

type OpState = 'throttled' | 'waiting' | 'inflight' | 'done';

interface Op {
  readonly tid: number;
  readonly req: ObjectOpRequest;
  readonly flags: number;
  readonly bytes: number;
  readonly cb: ObjecterCallback;
  readonly hasLock: boolean;
  state: OpState;
  target: OpTarget | undefined;
  attempt: number;
  sendToken: number;
  waitEpoch: number;
  timer: TimerHandle | null;
  retryTimer: TimerHandle | null;
  lastError: ClusterError | null;
  /** The current attempt's reply sink (`readInto`); revoked when the attempt is superseded or the op ends. */
  sink: ReplySink | null;
}

/** Counters for tests and `strata bench`. */
export interface ObjecterStats {
  submitted: number;
  completed: number;
  resends: number;
  mapResends: number;
  inflightOps: number;
  inflightBytes: number;
  queuedOps: number;
}

/** The Objecter. */
export class Objecter {
  readonly clientId: string;
  private readonly env: Env;
  private readonly log: Logger;
  private readonly limits: ObjecterLimits;
  private readonly sessions: SessionTable;
  private readonly ops = new Map<number, Op>();
  private throttled: Op[] = [];
  private nextTid = 1;
  private admittedBytes = 0;
  private closed = false;
  private readonly onMapBound = (map: ClusterMap): void => this.onMap(map);
  private readonly statsValue = { submitted: 0, completed: 0, resends: 0, mapResends: 0 };
  /** Set once we learn we are blocklisted: every op fails with it. */
  private blocklistedErr: ClusterError | null = null;
  /** No op is sent before our map reaches this epoch (`requireEpoch`). */
  private minEpoch = 0;

  constructor(private readonly o: ObjecterOptions) {
    this.env = o.env;
    this.limits = { ...DEFAULT_OBJECTER_LIMITS, ...o.limits };
    const nonce = Buffer.from(o.env.rng.bytes(4)).toString('hex');
    this.clientId = `${o.entity}/${nonce}`;
    this.log = o.env.log.child({ component: 'objecter', client: this.clientId });
    // The nonce also goes into every OSD session's handshake: the OSD binds the session to
    // this instance and refuses ops naming another (docs/cluster-protocol.md §3).
    this.sessions = new SessionTable(o.msgr, () => this.credentials(), (s) => this.onSessionReset(s), nonce);
    o.mon.on('map', this.onMapBound);
  }

  /** Submits an op vector; `cb` is called exactly once, never synchronously. */
  submit(req: ObjectOpRequest, cb: ObjecterCallback): void {
    if (this.closed) { this.env.setImmediate(() => cb(new ClusterError('CLU_ERR_CANCELLED', 'objecter closed'))); return; }
    const bad = validate(req) ?? this.blocklistedErr;
    if (bad !== null) { this.env.setImmediate(() => cb(bad)); return; }
    let flags = req.flags ?? 0;
    let bytes = requestDataBytes(req.ops);
    for (const op of req.ops) {
      flags |= isWriteOp(op) ? OSD_FLAG_WRITE : OSD_FLAG_READ;
      if (op.op === 'read') bytes += op.length;
    }
    const op: Op = {
      tid: this.nextTid++, req, flags, bytes, cb, hasLock: req.ops.some((x) => x.op === 'lock'),
      state: 'throttled', target: undefined, attempt: 0, sendToken: 0, waitEpoch: 0, timer: null, retryTimer: null, lastError: null, sink: null,
    };
    this.statsValue.submitted++;
    op.timer = this.env.setTimeout(() => this.onDeadline(op), this.limits.opTimeoutMs);
    this.throttled.push(op);
    this.drainThrottle();
  }

  /** Promise facade for CLI callers (the core stays callback-driven). */
  submitAsync(req: ObjectOpRequest): Promise<ObjecterResult> {
    return new Promise((resolve, reject) => {
      this.submit(req, (err, res) => { if (err !== null || res === undefined) reject(err ?? new Error('no result')); else resolve(res); });
    });
  }

  /**
   * Blocklists another client instance (`osd blocklist add` through the monitor); `cb` gets
   * the epoch that lists it. Needs mon caps `allow rw` or `profile rbd`.
   */
  blocklist(instance: string, cb: (err: ClusterError | null, epoch?: number) => void): void {
    const command = this.o.mon.command?.bind(this.o.mon);
    if (command === undefined) { this.env.setImmediate(() => cb(new ClusterError('CLU_ERR_UNSUPPORTED', 'no monitor command channel'))); return; }
    command({ prefix: 'osd blocklist add', instance }, (err, r) => {
      const epoch = r?.['epoch'];
      if (err !== null || typeof epoch !== 'number') { cb(err ?? new ClusterError('CLU_ERR_IO', 'blocklist add: no epoch in the reply')); return; }
      this.log.info({ instance, epoch }, 'blocklisted another client instance');
      cb(null, epoch);
    });
  }

  /** Holds every op (queued or later) until our map is at `epoch` or newer. */
  requireEpoch(epoch: number): void {
    if (epoch > this.minEpoch) this.minEpoch = epoch;
  }

  /** `cb` once our map is at `epoch` or newer (CLU_ERR_TIMEOUT after `opTimeoutMs`). */
  waitForEpoch(epoch: number, cb: (err: ClusterError | null) => void): void {
    if ((this.o.mon.map()?.epoch ?? 0) >= epoch) { this.env.setImmediate(() => cb(null)); return; }
    let timer: TimerHandle | null = null;
    const onMap = (map: ClusterMap): void => {
      if (map.epoch < epoch) return;
      this.o.mon.off('map', onMap);
      if (timer !== null) this.env.clearTimeout(timer);
      cb(null);
    };
    timer = this.env.setTimeout(() => {
      this.o.mon.off('map', onMap);
      cb(new ClusterError('CLU_ERR_TIMEOUT', `map epoch ${epoch} did not arrive within ${this.limits.opTimeoutMs} ms`));
    }, this.limits.opTimeoutMs);
    this.o.mon.on('map', onMap);
  }

  /** Our instance was blocklisted: fail everything now and later (see the module comment). */
  private becomeBlocklisted(why: string): void {
    if (this.blocklistedErr !== null) return;
    this.blocklistedErr = new ClusterError('CLU_ERR_PERM', `client instance ${this.clientId} is blocklisted (${why})`, { details: { reason: 'blocklisted' } });
    this.log.error({ why }, 'this client instance is blocklisted; failing all ops');
    for (const op of [...this.throttled, ...this.ops.values()]) this.finish(op, this.blocklistedErr);
  }

  /** Current counters. */
  stats(): ObjecterStats {
    return {
      ...this.statsValue, inflightOps: this.ops.size, inflightBytes: this.admittedBytes, queuedOps: this.throttled.length,
    };
  }

  /** Open OSD sessions (tests). */
  get sessionCount(): number { return this.sessions.size; }

  /** Fails every op with `CLU_ERR_CANCELLED` and closes the OSD sessions. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.o.mon.off('map', this.onMapBound);
    const err = new ClusterError('CLU_ERR_CANCELLED', 'objecter closed');
    for (const op of [...this.throttled, ...this.ops.values()]) this.finish(op, err);
    this.sessions.closeAll();
  }

  // ----- Admission (throttle). -----

  private drainThrottle(): void {
    let i = 0;
    while (i < this.throttled.length) {
      const op = this.throttled[i]!;
      if (op.state !== 'throttled') { i++; continue; }
      const overOps = this.ops.size >= this.limits.maxInflightOps;
      // Why "or nothing admitted": an op larger than the byte budget must still run, alone.
      const overBytes = this.ops.size > 0 && this.admittedBytes + op.bytes > this.limits.maxInflightBytes;
      if (overOps || overBytes) break;
      i++;
      op.state = 'waiting';
      this.ops.set(op.tid, op);
      this.admittedBytes += op.bytes;
      this.route(op);
    }
    this.throttled = this.throttled.slice(i).filter((op) => op.state === 'throttled');
  }

  // ----- Targeting and sending. -----

  /** Sends `op` if the current map allows it, else leaves it waiting. */
  private route(op: Op): void {
    if (op.state !== 'waiting') return;
    const map = this.o.mon.map();
    if (map === undefined || map.epoch < op.waitEpoch || map.epoch < this.minEpoch) return; // onMap resumes it.
    const r = recalcTarget(map, op.req.pool, op.req.objectName, undefined);
    op.target = r.next;
    if (r.result === 'POOL_DNE') { this.finish(op, new ClusterError('CLU_ERR_NOT_FOUND', `pool ${op.req.pool} does not exist at epoch ${map.epoch}`)); return; }
    if (r.result === 'OSD_DOWN') {
      op.lastError = new ClusterError('CLU_ERR_UNAVAILABLE', `pg ${describePg(r.next)} has no primary or is below min_size at epoch ${map.epoch}`);
      return;
    }
    this.send(op, map);
  }

  private send(op: Op, map: ClusterMap): void {
    const t = op.target!;
    const s = this.sessions.get(t.primary as OsdId, t.primaryAddr, t.primaryUpFrom);
    if (s === undefined) { op.lastError = new ClusterError('CLU_ERR_UNAVAILABLE', `bad address '${t.primaryAddr}' for osd.${t.primary}`); return; }
    if (op.attempt >= this.limits.maxAttempts) {
      this.finish(op, new ClusterError('CLU_ERR_TIMEOUT', `${op.req.objectName}: gave up after ${op.attempt} attempts (last: ${op.lastError?.message ?? 'none'})`, {
        cause: op.lastError, details: { attempts: op.attempt },
      }));
      return;
    }
    if (op.attempt > 0) this.statsValue.resends++;
    op.attempt++;
    op.state = 'inflight';
    const token = ++op.sendToken;
    revokeSink(op);
    if (op.req.readInto !== undefined) op.sink = { views: op.req.readInto, active: true };
    const payload = encodeOsdOpRequest({
      pool: op.req.pool, objectName: op.req.objectName, pgSeed: t.pg.seed, mapEpoch: map.epoch,
      reqId: { client: this.clientId, tid: op.tid, attempt: op.attempt - 1 }, flags: op.flags, ops: op.req.ops,
    });
    if (this.log.isLevelEnabled('trace')) this.log.trace({ tid: op.tid, obj: op.req.objectName, osd: t.primary, attempt: op.attempt }, 'op send');
    const opts = op.sink === null ? { timeoutMs: this.limits.attemptTimeoutMs } : { timeoutMs: this.limits.attemptTimeoutMs, replySink: op.sink };
    s.session.request({ type: MsgType.MSG_OSD_OP, payload, data: op.req.data ?? [], epoch: map.epoch }, opts, (err, reply) => {
      if (op.state !== 'inflight' || op.sendToken !== token) return; // Superseded attempt.
      op.state = 'waiting';
      this.onReply(op, map, err, reply);
    });
  }

  private onReply(op: Op, sentMap: ClusterMap, err: ClusterError | null, frame: InboundMessage | undefined): void {
    if (err !== null || frame === undefined) { this.onSendError(op, err ?? new ClusterError('CLU_ERR_IO', 'empty reply')); return; }
    let reply: OsdOpReply;
    try {
      reply = decodeOsdOpReply(frame.payload);
    } catch (e) {
      this.finish(op, new ClusterError('CLU_ERR_DECODE', `bad MSG_OSD_OP reply for ${op.req.objectName}`, { cause: e }));
      return;
    }
    if (reply.result === 0) {
      this.finish(op, null, frame.dataInSink === true ? { reply, data: frame.data, inPlace: true } : { reply, data: frame.data });
      return;
    }
    const code = clusterErrorFromWire(reply.result) ?? 'CLU_ERR_IO';
    const rErr = osdResultError(reply.result, `${op.req.objectName}: ${code} from osd.${op.target?.primary ?? '?'}`, { osdEpoch: reply.mapEpoch, epoch: sentMap.epoch });
    if (rErr.details?.['reason'] === 'blocklisted') {
      this.becomeBlocklisted(`osd.${op.target?.primary ?? '?'} at epoch ${reply.mapEpoch}`);
      this.finish(op, this.blocklistedErr ?? rErr);
      return;
    }
    op.lastError = rErr;
    switch (code) {
      case 'CLU_ERR_EPOCH_STALE': case 'CLU_ERR_WRONG_TARGET': this.waitForMap(op, reply.mapEpoch, sentMap.epoch); return;
      case 'CLU_ERR_UNAVAILABLE': this.retryLater(op, 100); return;
      case 'CLU_ERR_BUSY':
        if (op.hasLock) break; // A lock held by another owner is an answer, not congestion.
        this.retryLater(op, 20);
        return;
      default: break;
    }
    this.finish(op, rErr, { reply, data: frame.data });
  }

  /** Messenger-level failures of one send. */
  private onSendError(op: Op, err: ClusterError): void {
    op.lastError = err;
    switch (err.code) {
      case 'CLU_ERR_CONN_CLOSED': case 'CLU_ERR_CANCELLED': case 'CLU_ERR_TIMEOUT': case 'CLU_ERR_UNAVAILABLE':
        this.retryLater(op, err.code === 'CLU_ERR_CONN_CLOSED' ? 0 : 50);
        return;
      case 'CLU_ERR_BUSY': this.retryLater(op, 20); return;
      case 'CLU_ERR_AUTH':
        this.o.mon.ticket(() => this.retryLater(op, 50));
        return;
      default:
        this.finish(op, err);
    }
  }

  /** EPOCH_STALE / WRONG_TARGET: resend once our map is at least as new as the OSD's. */
  private waitForMap(op: Op, osdEpoch: number, sentEpoch: number): void {
    const have = this.o.mon.map()?.epoch ?? 0;
    if (osdEpoch > have) {
      op.waitEpoch = osdEpoch;
      // Why a fallback: if the push never comes (lost subscription), resend anyway; attempts are bounded.
      this.retryLater(op, this.limits.mapWaitMs, true);
      return;
    }
    // The OSD is not ahead of us: our newer map (or its catching up) decides; retry shortly.
    this.retryLater(op, have > sentEpoch ? 0 : 50);
  }

  private retryLater(op: Op, delayMs: number, clearWait = false): void {
    if (op.retryTimer !== null) this.env.clearTimeout(op.retryTimer);
    op.retryTimer = this.env.setTimeout(() => {
      op.retryTimer = null;
      if (clearWait) op.waitEpoch = 0;
      this.route(op);
    }, delayMs);
  }

  // ----- Map changes and session resets. -----

  private onMap(map: ClusterMap): void {
    if (isBlocklisted(map, this.clientId)) this.becomeBlocklisted(`map epoch ${map.epoch}`);
    this.sessions.prune(map);
    for (const op of [...this.ops.values()]) {
      if (op.state === 'waiting') {
        if (op.retryTimer === null || (op.waitEpoch !== 0 && map.epoch >= op.waitEpoch)) {
          if (op.retryTimer !== null) { this.env.clearTimeout(op.retryTimer); op.retryTimer = null; }
          this.route(op);
        }
        continue;
      }
      if (op.state !== 'inflight') continue;
      const r = recalcTarget(map, op.req.pool, op.req.objectName, op.target);
      if (r.result === 'NO_ACTION') continue;
      op.sendToken++; // The reply of the current attempt, if any, is now ignored.
      revokeSink(op); // …and its data, if it is arriving, no longer lands in readInto.
      op.state = 'waiting';
      this.statsValue.mapResends++;
      if (r.result === 'POOL_DNE') { this.finish(op, new ClusterError('CLU_ERR_NOT_FOUND', `pool ${op.req.pool} deleted`)); continue; }
      this.route(op);
    }
  }

  private onSessionReset(s: OsdSession): void {
    // Requests already written fail with CLU_ERR_CONN_CLOSED and are resent by onSendError;
    // unsent ones stay queued in the session for the reconnect. Nothing else to do here.
    this.log.debug({ osd: s.osd, addr: s.addr }, 'osd session reset');
  }

  private credentials(): ClientCredentials {
    const t = this.o.mon.currentTicket();
    return t === undefined ? { method: 'none' } : { method: 'ticket', ticket: t.ticket, sessionKey: t.sessionKey };
  }

  // ----- Completion. -----

  private onDeadline(op: Op): void {
    op.timer = null;
    if (op.state === 'done') return;
    const waiting = op.state === 'throttled' ? 'queued behind the in-flight bound' : op.state === 'inflight' ? `in flight to osd.${op.target?.primary ?? '?'}` : 'waiting for a usable map';
    this.log.warn({ tid: op.tid, obj: op.req.objectName, attempts: op.attempt, err: op.lastError }, 'op timed out');
    this.finish(op, new ClusterError('CLU_ERR_TIMEOUT', `${op.req.objectName}: no answer after ${this.limits.opTimeoutMs} ms (${waiting}, ${op.attempt} attempts; last: ${op.lastError?.message ?? 'none'})`, {
      cause: op.lastError, details: { attempts: op.attempt, state: op.state },
    }));
  }

  private finish(op: Op, err: ClusterError | null, res?: ObjecterResult): void {
    if (op.state === 'done') return;
    const admitted = op.state !== 'throttled';
    op.state = 'done';
    revokeSink(op); // Before the callback: the caller may hand readInto back at once.
    if (op.timer !== null) { this.env.clearTimeout(op.timer); op.timer = null; }
    if (op.retryTimer !== null) { this.env.clearTimeout(op.retryTimer); op.retryTimer = null; }
    if (admitted) {
      this.ops.delete(op.tid);
      this.admittedBytes -= op.bytes;
    }
    this.statsValue.completed++;
    if (!this.closed) this.drainThrottle();
    op.cb(err, res);
  }
}

function revokeSink(op: Op): void {
  if (op.sink !== null) { op.sink.active = false; op.sink = null; }
}

function describePg(t: OpTarget | undefined): string {
  if (t === undefined) return '?';
  return `${t.pg.pool}.${t.pg.seed.toString(16)} (primary ${t.primary === NO_OSD ? 'none' : `osd.${t.primary}`}, acting [${t.acting.join(',')}])`;
}

function validate(req: ObjectOpRequest): ClusterError | null {
  if (req.ops.length === 0 || req.ops.length > 64) return new ClusterError('CLU_ERR_INVALID', `op count ${req.ops.length} not in 1..64`);
  if (req.objectName.length === 0) return new ClusterError('CLU_ERR_INVALID', 'empty object name');
  let dataBytes = 0;
  for (const d of req.data ?? []) dataBytes += d.length;
  if (dataBytes !== requestDataBytes(req.ops)) return new ClusterError('CLU_ERR_INVALID', `data carries ${dataBytes} bytes, ops need ${requestDataBytes(req.ops)}`);
  if (req.readInto !== undefined) {
    const only = req.ops.length === 1 ? req.ops[0] : undefined;
    let room = 0;
    for (const v of req.readInto) room += v.length;
    if (only?.op !== 'read' || room < only.length || req.readInto.length === 0) return new ClusterError('CLU_ERR_INVALID', 'readInto needs exactly one read op and room for its length');
  }
  return null;
}
