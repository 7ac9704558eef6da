/**
 * `OsdCore`: the OSD data path (issue #5) — PG registry, primary-copy replication, peering,
 * recovery/backfill and scrub — over an `ObjectStore` and a `Messenger`, driven by maps.
 *
 * Everything runs to completion on callbacks (GUIDE principle 9): the bin wires real I/O, the
 * simulator can drive the same code with its Env. docs/replication.md explains the design.
 *
 *   client ─MSG_OSD_OP─► primary: checks (caps, epoch, role) ─► PG queue (peering / min_size)
 *        ─► per-object order (missing? wait + recover first; read/conditional? wait for in-flight)
 *        ─► version (epoch, seq) ─► ONE txn (data + version + log entry [+ trim])
 *        ─► store.submit ‖ MSG_OSD_REPOP to every other acting OSD ─► all committed ─► reply
 *
 *   map change touching a PG ─► new interval ─► primary: wait local commits, requeue in-flight
 *        ─► QUERY acting ∪ previous acting ∪ up members of the PG history sets
 *        ─► prior set: a member of every history set answered? no ─► DOWN (retry: map / timer)
 *        ─► authoritative log ─► missing sets / backfill
 *        ─► ACTIVATE peers (log + info) ‖ monitor records acting in the PG history
 *        ─► active ─► pull own missing, push peers' missing
 *        ─► ACTIVATE(mode 2) each completed peer ─► active+clean ─► history reset to [acting]
 */
import type { Logger } from 'pino';
import { capsAllow } from '../auth/caps.js';
import { crc32c } from '../common/crc32c.js';
import { ClusterError, clusterErrorFromWire, clusterErrorToWire } from '../common/errors.js';
import type { ClusterErrorCode } from '../common/errors.js';
import { stableMod } from '../common/hash.js';
import type { ObjectName, OsdId, PoolId } from '../common/ids.js';
import { NO_OSD, pgSeed } from '../common/ids.js';
import type { Env, TimerHandle } from '../env/env.js';
import type { ClusterMap, PoolInfo } from '../map/cluster-map.js';
import type { Messenger } from '../msg/messenger.js';
import type { InboundMessage, Session } from '../msg/session.js';
import { historyHasSet, sameHistorySet } from '../map/incremental.js';
import { MsgType } from '../msg/types.js';
import { objectHash, pgToOsds } from '../placement/placement.js';
import { INFO_KEY, LogOp, PG_LOG_MAX, PgLog, decodeInfo, decodeLogEntry, emptyInfo, encodeInfo, encodeLogEntry, isLogKey, logKey } from '../pg/pg-log.js';
import type { PgInfo, PgLogEntry } from '../pg/pg-log.js';
import { PgState, checkTransition, pgStateString } from '../pg/pg-state.js';
import type { ObjectStore } from '../store/object-store.js';
import { assert } from '../common/assert.js';
import { StoreLimits, Transaction } from '../store/types.js';
import type { ObjectId, TxnOp } from '../store/types.js';
import {
  ASSERT_F_ABSENT, LOCK_ATTR_PREFIX, OP_MAP_WAIT_MS, OP_QUEUE_TIMEOUT_MS, OSD_FLAG_FAILOK, ZERO_VERSION, compareVersion,
  decodeLockState, decodeOsdOpRequest, encodeLockState, encodeOsdOpReply, isWriteOp,
} from './osd-protocol.js';
import type { EVersion, LockState, OsdOpOut, OsdOpRequest } from './osd-protocol.js';
import {
  decodeObjectCopy, decodeObjectRef, decodePgActivate, decodePgQuery, decodePgQueryReply, decodePgScan, decodePush, decodeRepOp,
  decodeScanReply, decodeScrubRequest, encodeObjectCopy, encodeObjectRef, encodePgActivate, encodePgQuery, encodePgQueryReply,
  encodePgScan, encodePush, encodeRepOp, encodeScanReply, joinChunks,
} from './osd-peer-protocol.js';
import type { ObjectCopy, PgQueryReply, ScanEntry } from './osd-peer-protocol.js';

/** Construction options. */
export interface OsdCoreOptions {
  env: Env;
  log: Logger;
  id: OsdId;
  store: ObjectStore;
  msgr: Messenger;
  /** Sends the primary PG states to the monitor (MonClient.reportPgStates). */
  reportPgStates: (states: Record<string, string>) => void;
  /**
   * Records a PG-history change with the monitor (MonClient.pgHistory): `add` the acting set
   * before a new interval accepts writes, `reset` to it once active+clean at full size. `cb`
   * fires after the monitor committed it (or with its error; the OSD retries).
   */
  recordPgHistory: (pgKey: string, op: 'add' | 'reset', set: readonly OsdId[], cb: (err: ClusterError | null) => void) => void;
  /** A peer refused our connection (it is gone): report it to the monitor. */
  reportFailure?: (osd: OsdId) => void;
  /** Periodic scrub of one PG every N ms (0 = off, the default). */
  scrubIntervalMs?: number;
  /** Sub-op / peering request timeout (default 10 s). */
  peerTimeoutMs?: number;
  /** Objects recovered concurrently per PG (default 4). */
  recoveryConcurrency?: number;
}

/** Counters (bench, tests, logs). */
export interface OsdCoreStats {
  clientOps: number;
  repops: number;
  recoveredObjects: number;
  recoveredBytes: number;
  pushesReceived: number;
  pushBytesReceived: number;
}

type Need = { readonly version: EVersion | undefined };

interface ClientOp {
  readonly req: InboundMessage;
  readonly s: Session;
  readonly q: OsdOpRequest;
  readonly data: Uint8Array;
  readonly arrivedMs: number;
  readonly write: boolean;
  replied: boolean;
}

interface InflightWrite {
  readonly op: ClientOp;
  readonly entry: PgLogEntry;
  readonly outs: OsdOpOut[];
  waiting: Set<number>; // OSD ids not yet committed (self included)
  failed: boolean;
}

const PEER_ENTITY = /^osd\.\d+$/;

function pgKeyOf(pool: number, seed: number): string { return `${pool}.${seed.toString(16)}`; }
function vKey(v: EVersion): string { return `${v.epoch}.${v.seq}`; }
function maxV(a: EVersion, b: EVersion): EVersion { return compareVersion(a, b) >= 0 ? a : b; }
function parseAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}
function errOf(code: ClusterErrorCode, msg: string): ClusterError { return new ClusterError(code, msg); }

/** One placement group as this OSD holds it (any role). */
class Pg {
  readonly log = new PgLog();
  info: PgInfo = emptyInfo();
  role: 'primary' | 'replica' | 'stray' = 'stray';
  acting: OsdId[] = [];
  prevActing: OsdId[] = [];
  interval = 0;
  /** Highest interval seen in peer messages (replica side): older sub-ops are refused. */
  seenInterval = 0;
  state = 0;
  poolSize = 0;
  minSize = 0;
  nextSeq = 1;
  peeringGen = 0;
  /** Prior-set block: the history sets none of whose members answered peering (state DOWN). */
  blockedSets: OsdId[][] | undefined;
  /** Interval whose history reset the monitor acknowledged; a reset is in flight when 'inflight'. */
  historyReset: number | 'inflight' = 0;
  /** Earliest time of the next reset attempt after a refused one. */
  historyResetRetryMs = 0;
  // Primary-side state.
  readonly queue: ClientOp[] = [];
  readonly objWait = new Map<string, ClientOp[]>();
  readonly inflightByObj = new Map<string, number>();
  readonly inflight = new Map<string, InflightWrite>(); // by reqKey
  localPending = 0;
  selfMissing = new Map<string, Need>();
  peerMissing = new Map<OsdId, Map<string, Need>>();
  /** Peers that answered peering this interval, with their info (recovery sources). */
  peerInfos = new Map<OsdId, PgQueryReply>();
  backfillPending = new Set<OsdId>();
  incompletePeers = new Set<OsdId>();
  recovering = new Set<string>();
  inconsistent = false;
  scrubbing = false;
  recoveredObjects = 0;
  recoveredBytes = 0;
  recoveryStartMs = 0;

  constructor(readonly key: string, readonly pool: PoolId, readonly seed: number) {}

  missingAnywhere(name: string): boolean {
    if (this.selfMissing.has(name)) return true;
    for (const m of this.peerMissing.values()) if (m.has(name)) return true;
    return false;
  }
  missingCount(): number {
    let n = this.selfMissing.size;
    for (const m of this.peerMissing.values()) n += m.size;
    return n;
  }
}

/** The OSD's data path. */
// Log adoption must fit one store transaction (see adoptLog).
assert(2 * PG_LOG_MAX + 2 <= StoreLimits.opsPerTxnMax, 'PG log adoption would exceed the store transaction limit');

export class OsdCore {
  private map: ClusterMap | undefined;
  private readonly pgs = new Map<string, Pg>();
  private readonly peers = new Map<OsdId, { addr: string; upFrom: number; session: Session }>();
  private readonly mapWait: ClientOp[] = [];
  private tickTimer: TimerHandle | undefined;
  private scrubTimer: TimerHandle | undefined;
  private scrubCursor = 0;
  private reportScheduled = false;
  private stopped = false;
  readonly stats: OsdCoreStats = { clientOps: 0, repops: 0, recoveredObjects: 0, recoveredBytes: 0, pushesReceived: 0, pushBytesReceived: 0 };
  private readonly env: Env;
  private readonly log: Logger;
  private readonly store: ObjectStore;
  private readonly peerTimeoutMs: number;
  private readonly recoveryConcurrency: number;

  constructor(private readonly o: OsdCoreOptions) {
    this.env = o.env;
    this.log = o.log;
    this.store = o.store;
    this.peerTimeoutMs = o.peerTimeoutMs ?? 10_000;
    this.recoveryConcurrency = o.recoveryConcurrency ?? 4;
    const m = o.msgr;
    m.handle(MsgType.MSG_OSD_OP, (req, s) => this.onClientOp(req, s));
    m.handle(MsgType.MSG_OSD_REPOP, (req, s) => this.peerOnly(req, s, () => this.onRepOp(req, s)));
    m.handle(MsgType.MSG_OSD_PG_QUERY, (req, s) => this.peerOnly(req, s, () => this.onQuery(req, s)));
    m.handle(MsgType.MSG_OSD_PG_ACTIVATE, (req, s) => this.peerOnly(req, s, () => this.onActivate(req, s)));
    m.handle(MsgType.MSG_OSD_PG_PUSH, (req, s) => this.peerOnly(req, s, () => this.onPush(req, s)));
    m.handle(MsgType.MSG_OSD_PG_PULL, (req, s) => this.peerOnly(req, s, () => this.onLocalRead(req, s)));
    m.handle(MsgType.MSG_OSD_PG_SCAN, (req, s) => this.peerOnly(req, s, () => this.onScan(req, s)));
    m.handle(MsgType.MSG_OSD_LOCAL_READ, (req, s) => this.adminOnly(req, s, () => this.onLocalRead(req, s)));
    m.handle(MsgType.MSG_OSD_PG_SCRUB, (req, s) => this.adminOnly(req, s, () => this.onScrubRequest(req, s)));
    this.loadPgs();
    this.tick();
    if ((o.scrubIntervalMs ?? 0) > 0) this.scheduleScrub();
  }

  /** Stops timers and closes peer sessions (the store is the caller's). */
  stop(): void {
    this.stopped = true;
    if (this.tickTimer !== undefined) this.env.clearTimeout(this.tickTimer);
    if (this.scrubTimer !== undefined) this.env.clearTimeout(this.scrubTimer);
    for (const p of this.peers.values()) p.session.close();
    this.peers.clear();
  }

  /** PG states of the PGs this OSD is primary for (tests, status). */
  pgStates(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const pg of this.pgs.values()) if (pg.role === 'primary') out[pg.key] = pgStateString(pg.state);
    return out;
  }

  // ------------------------------------------------------------------ loading

  private loadPgs(): void {
    for (const key of this.store.pgKeys()) {
      const [poolText, seedText] = key.split('.');
      const pool = Number(poolText);
      const seed = parseInt(seedText ?? '', 16);
      if (!Number.isInteger(pool) || !Number.isInteger(seed)) continue;
      const pg = new Pg(key, pool as PoolId, seed);
      const recs = this.store.pgList(key);
      const entries: PgLogEntry[] = [];
      let tail = ZERO_VERSION;
      for (const [k, v] of recs) {
        if (isLogKey(k)) entries.push(decodeLogEntry(v));
        else if (k === INFO_KEY) pg.info = decodeInfo(v);
        else if (k === 'tail') tail = decodeInfo(v).logTail;
      }
      pg.log.reset(entries, maxV(tail, pg.info.logTail));
      pg.info.logTail = pg.log.tail;
      // The info is written at activation; writes applied after it while complete kept it complete.
      const wasComplete = compareVersion(pg.info.lastComplete, pg.info.lastUpdate) === 0 && !pg.info.backfilling;
      pg.info.lastUpdate = maxV(pg.log.head, pg.info.lastUpdate);
      if (wasComplete) pg.info.lastComplete = pg.info.lastUpdate;
      pg.nextSeq = pg.info.lastUpdate.seq + 1;
      pg.seenInterval = pg.info.sameIntervalSince;
      this.pgs.set(key, pg);
    }
    this.log.info({ pgs: this.pgs.size }, 'loaded pgs');
  }

  // ------------------------------------------------------------------ maps

  /** Applies a new map: recomputes every PG's acting set; new intervals start peering. */
  handleMap(map: ClusterMap): void {
    if (this.map !== undefined && map.epoch <= this.map.epoch) return;
    this.map = map;
    for (const [id, p] of this.peers) {
      const o = map.osds.get(id);
      if (o === undefined || !o.up || o.addr !== p.addr || o.upFrom !== p.upFrom) { p.session.close(); this.peers.delete(id); }
    }
    const me = map.osds.get(this.o.id);
    const iAmUp = me !== undefined && me.up;
    const touched = new Set<string>();
    for (const pool of map.pools.values()) {
      for (let seed = 0; seed < pool.pgNum; seed++) {
        const key = pgKeyOf(pool.id, seed);
        const mapping = pgToOsds(map, { pool: pool.id, seed: pgSeed(seed) });
        const inActing = iAmUp && mapping.acting.includes(this.o.id);
        let pg = this.pgs.get(key);
        if (pg === undefined && !inActing) continue;
        if (pg === undefined) { pg = new Pg(key, pool.id, seed); this.pgs.set(key, pg); }
        touched.add(key);
        this.updatePg(pg, pool, mapping.acting as OsdId[], mapping.primary, map.epoch, inActing);
      }
    }
    for (const pg of this.pgs.values()) {
      if (!touched.has(pg.key) && pg.role !== 'stray') this.updatePg(pg, undefined, [], NO_OSD, map.epoch, false);
    }
    // A PG blocked by its prior set retries on every map: a waited-for OSD may be up now.
    for (const pg of this.pgs.values()) if (pg.blockedSets !== undefined) this.retryBlocked(pg);
    // Ops that waited for this map.
    const waiting = this.mapWait.splice(0);
    for (const op of waiting) this.dispatchOp(op);
    this.scheduleReport();
  }

  private updatePg(pg: Pg, pool: PoolInfo | undefined, acting: OsdId[], primary: number, epoch: number, inActing: boolean): void {
    const changed = pg.interval === 0 || acting.length !== pg.acting.length || acting.some((x, i) => pg.acting[i] !== x);
    if (pool !== undefined) { pg.poolSize = pool.size; pg.minSize = pool.minSize; }
    if (!changed) return;
    const wasPrimary = pg.role === 'primary';
    if (pg.acting.length > 0) pg.prevActing = pg.acting;
    pg.acting = acting;
    pg.interval = epoch;
    pg.peeringGen++;
    pg.role = !inActing ? 'stray' : primary === this.o.id ? 'primary' : 'replica';
    if (wasPrimary) this.requeueInflight(pg);
    pg.selfMissing.clear(); pg.peerMissing.clear(); pg.peerInfos.clear(); pg.backfillPending.clear(); pg.incompletePeers.clear();
    pg.inconsistent = false;
    pg.blockedSets = undefined;
    pg.historyReset = 0;
    if (pg.role === 'primary') {
      // Sub-ops of an older interval (a deposed primary's late REPOP) must not apply here.
      pg.seenInterval = Math.max(pg.seenInterval, epoch);
      pg.state = pg.state === 0 ? checkTransition(0, PgState.PEERING) : checkTransition(pg.state, PgState.PEERING);
      this.startPeering(pg);
    } else {
      pg.state = 0;
      // Not primary any more: queued client ops go back to the client (resend to the new primary).
      for (const op of pg.queue.splice(0)) this.replyErr(op, 'CLU_ERR_WRONG_TARGET');
      for (const list of pg.objWait.values()) for (const op of list) this.replyErr(op, 'CLU_ERR_WRONG_TARGET');
      pg.objWait.clear();
    }
  }

  /** In-flight client writes of a dead interval go back to the queue; dedup answers them later. */
  private requeueInflight(pg: Pg): void {
    const ops: ClientOp[] = [];
    for (const w of pg.inflight.values()) if (!w.op.replied) ops.push(w.op);
    pg.inflight.clear();
    pg.inflightByObj.clear();
    const waiting: ClientOp[] = [];
    for (const list of pg.objWait.values()) waiting.push(...list);
    pg.objWait.clear();
    pg.queue.unshift(...ops, ...waiting);
  }

  // ------------------------------------------------------------------ peer sessions

  private peer(id: OsdId): Session | undefined {
    // Why: timers and late callbacks may still run after stop(); the messenger is shut down.
    if (this.stopped) return undefined;
    const p = this.peers.get(id);
    if (p !== undefined) return p.session;
    const o = this.map?.osds.get(id);
    if (o === undefined || !o.up || o.addr === '') return undefined;
    const session = this.o.msgr.connect(parseAddr(o.addr));
    session.on('connectFailed', (err) => {
      if (err.details?.['errno'] === 'ECONNREFUSED') this.o.reportFailure?.(id);
    });
    this.peers.set(id, { addr: o.addr, upFrom: o.upFrom, session });
    return session;
  }

  private peerRequest(id: OsdId, type: number, payload: Uint8Array, data: Uint8Array[] | undefined, cb: (err: ClusterError | null, reply?: InboundMessage) => void): void {
    const s = this.peer(id);
    if (s === undefined) { this.env.setImmediate(() => cb(errOf('CLU_ERR_UNAVAILABLE', `osd.${id} not up`))); return; }
    const msg = data === undefined ? { type, payload, epoch: this.map?.epoch ?? 0 } : { type, payload, data, epoch: this.map?.epoch ?? 0 };
    s.request(msg, { timeoutMs: this.peerTimeoutMs }, cb);
  }

  private peerOnly(req: InboundMessage, s: Session, f: () => void): void {
    if (!PEER_ENTITY.test(s.peer?.entity ?? '')) { s.replyError(req, errOf('CLU_ERR_PERM', 'osd peers only')); return; }
    try { f(); } catch (e) { s.replyError(req, new ClusterError('CLU_ERR_DECODE', 'bad peer message', { cause: e })); }
  }

  private adminOnly(req: InboundMessage, s: Session, f: () => void): void {
    const peer = s.peer;
    const ok = peer !== null && (PEER_ENTITY.test(peer.entity) || peer.caps.mon === 'rw');
    if (!ok) { s.replyError(req, errOf('CLU_ERR_PERM', 'admin only')); return; }
    try { f(); } catch (e) { s.replyError(req, new ClusterError('CLU_ERR_DECODE', 'bad request', { cause: e })); }
  }

  // ------------------------------------------------------------------ client ops

  private onClientOp(req: InboundMessage, s: Session): void {
    let q: OsdOpRequest;
    try {
      q = decodeOsdOpRequest(req.payload);
    } catch (e) {
      s.replyError(req, new ClusterError('CLU_ERR_DECODE', 'bad osd op', { cause: e }));
      return;
    }
    const write = q.ops.some(isWriteOp);
    const data = joinChunks(req.data);
    let need = 0;
    for (const op of q.ops) if (op.op === 'write' || op.op === 'writefull') need += op.length;
    if (need !== data.length) { s.replyError(req, errOf('CLU_ERR_DECODE', `data ${data.length} != ${need}`)); return; }
    const map = this.map;
    const pool = map?.pools.get(q.pool as PoolId);
    const peer = s.peer;
    if (pool !== undefined && (peer === null || !capsAllow(peer.caps, { pool: pool.name, objectName: q.objectName, write }))) {
      s.replyError(req, errOf('CLU_ERR_PERM', `${peer?.entity ?? 'peer'} may not ${write ? 'write' : 'read'} pool ${pool.name}`));
      return;
    }
    this.stats.clientOps++;
    this.dispatchOp({ req, s, q, data, arrivedMs: this.env.nowMs(), write, replied: false });
  }

  private dispatchOp(op: ClientOp): void {
    const map = this.map;
    if (map === undefined || op.q.mapEpoch > map.epoch) {
      if (this.env.nowMs() - op.arrivedMs < OP_MAP_WAIT_MS) { this.mapWait.push(op); return; }
      if (map === undefined) { this.replyErr(op, 'CLU_ERR_UNAVAILABLE'); return; }
    }
    const pool = map.pools.get(op.q.pool as PoolId);
    if (pool === undefined) { this.replyErr(op, 'CLU_ERR_NOT_FOUND'); return; }
    const seed = stableMod(objectHash(op.q.objectName), pool.pgNum);
    const pg = this.pgs.get(pgKeyOf(pool.id, seed));
    if (pg === undefined || pg.role !== 'primary') { this.replyErr(op, 'CLU_ERR_WRONG_TARGET'); return; }
    if (op.q.mapEpoch < pg.interval) { this.replyErr(op, 'CLU_ERR_EPOCH_STALE'); return; }
    pg.queue.push(op);
    this.runQueue(pg);
  }

  private isActive(pg: Pg): boolean {
    return (pg.state & PgState.ACTIVE) !== 0 && pg.acting.length >= pg.minSize;
  }

  /** Moves ops from the PG queue to their objects, in order, while the PG is active. */
  private runQueue(pg: Pg): void {
    if (!this.isActive(pg)) return;
    while (pg.queue.length > 0) {
      const op = pg.queue.shift()!;
      const name = op.q.objectName;
      const w = pg.objWait.get(name);
      if (w !== undefined) { w.push(op); continue; }
      if (!this.tryOp(pg, op)) pg.objWait.set(name, [op]);
    }
  }

  /** Retries the ops waiting on one object, in order, until one blocks. */
  private runObject(pg: Pg, name: string): void {
    const list = pg.objWait.get(name);
    if (list === undefined || !this.isActive(pg)) return;
    while (list.length > 0) {
      if (!this.tryOp(pg, list[0]!)) return;
      list.shift();
    }
    pg.objWait.delete(name);
  }

  /** Retries every waiting object (after a backfill scan unblocked the PG). */
  private kickAll(pg: Pg): void {
    for (const name of [...pg.objWait.keys()]) this.runObject(pg, name);
  }

  /** Executes `op` now if nothing blocks it; false = must wait. */
  private tryOp(pg: Pg, op: ClientOp): boolean {
    if (op.replied) return true;
    const name = op.q.objectName;
    // A backfill scan is pending: every object of the target is untrusted until the scan's
    // diff is known, and no write may be in flight while both sides are listed.
    if (pg.backfillPending.size > 0) return false;
    if (pg.missingAnywhere(name)) { this.recoverSoon(pg, name); return false; }
    const busy = (pg.inflightByObj.get(name) ?? 0) > 0;
    if (op.write) {
      const prev = pg.log.findReq(op.q.reqId.client, op.q.reqId.tid);
      const key = PgLog.reqKey(op.q.reqId.client, op.q.reqId.tid);
      if (prev !== undefined && !pg.inflight.has(key)) {
        if (busy) return false;
        this.reply(op, prev.result, prev.version, op.q.ops.map(() => ({ kind: 'none', result: 0 }) as OsdOpOut), []);
        return true;
      }
      if (pg.inflight.has(key)) return false; // a resend of an op still in flight: answer when it completes
      const conditional = op.q.ops.some((x) => x.op === 'create' || x.op === 'assert_version' || x.op === 'assert_attr' || x.op === 'lock' || x.op === 'unlock' || x.op === 'break_lock');
      if (conditional && busy) return false;
      this.doWrite(pg, op);
      return true;
    }
    if (busy) return false;
    this.doRead(pg, op);
    return true;
  }

  private doRead(pg: Pg, op: ClientOp): void {
    const obj: ObjectId = { pool: pg.pool, name: op.q.objectName as ObjectName };
    const st = this.store.stat(obj);
    const version = st?.version ?? ZERO_VERSION;
    const outs: OsdOpOut[] = [];
    const data: Uint8Array[] = [];
    const failok = (op.q.flags & OSD_FLAG_FAILOK) !== 0;
    const NF = clusterErrorToWire('CLU_ERR_NOT_FOUND');
    let i = 0;
    let firstErr = 0;
    const next = (): void => {
      while (i < op.q.ops.length) {
        const x = op.q.ops[i++]!;
        let r = 0;
        switch (x.op) {
          case 'read':
            if (st === undefined) { r = NF; outs.push({ kind: 'read', result: r, length: 0 }); break; }
            this.store.read(obj, x.offset, x.length, (err, bytes) => {
              const rr = err === null ? 0 : clusterErrorToWire(err.code);
              outs.push({ kind: 'read', result: rr, length: err === null ? bytes.length : 0 });
              if (err === null) data.push(bytes);
              else if (firstErr === 0) firstErr = rr;
              next();
            });
            return;
          case 'stat':
            if (st === undefined) r = NF;
            outs.push({ kind: 'stat', result: r, size: st?.sizeBytes ?? 0, version });
            break;
          case 'getattr': {
            const v = st === undefined ? undefined : this.store.getAttr(obj, x.name);
            if (v === undefined) r = NF;
            outs.push({ kind: 'attr', result: r, value: v ?? new Uint8Array(0) });
            break;
          }
          case 'getattrs':
            if (st === undefined) r = NF;
            outs.push({ kind: 'attr', result: r, value: new TextEncoder().encode(this.store.listAttrs(obj).join('\n')) });
            break;
          case 'assert_version':
            if (compareVersion(version, x) !== 0) r = clusterErrorToWire('CLU_ERR_CANCELLED');
            outs.push({ kind: 'none', result: r });
            break;
          case 'assert_attr': {
            const v = st === undefined ? undefined : this.store.getAttr(obj, x.name);
            if (!attrMatches(v, x.value, x.mode)) r = clusterErrorToWire('CLU_ERR_CANCELLED');
            outs.push({ kind: 'none', result: r });
            break;
          }
          default:
            outs.push({ kind: 'none', result: 0 });
        }
        if (r !== 0 && firstErr === 0) firstErr = r;
      }
      const result = failok && firstErr === NF ? 0 : firstErr;
      this.reply(op, result, version, outs, result === 0 || failok ? data : []);
    };
    next();
  }

  /** Builds the store ops of a write vector; returns an error wire code instead when an op fails. */
  private buildWrite(pg: Pg, op: ClientOp, obj: ObjectId): { ops: TxnOp[]; removed: boolean; outs: OsdOpOut[] } | number {
    let st = this.store.stat(obj);
    let exists = st !== undefined;
    let removed = false;
    const ops: TxnOp[] = [];
    const outs: OsdOpOut[] = [];
    let dataPos = 0;
    const attrs = new Map<string, Uint8Array | undefined>();
    const getAttr = (k: string): Uint8Array | undefined => (attrs.has(k) ? attrs.get(k) : exists ? this.store.getAttr(obj, k) : undefined);
    const now = this.env.wallMs();
    for (const x of op.q.ops) {
      switch (x.op) {
        case 'write': ops.push({ op: 'write', obj, offset: x.offset, data: op.data.subarray(dataPos, dataPos + x.length) }); dataPos += x.length; exists = true; removed = false; break;
        case 'writefull':
          ops.push({ op: 'truncate', obj, sizeBytes: 0 });
          if (x.length > 0) ops.push({ op: 'write', obj, offset: 0, data: op.data.subarray(dataPos, dataPos + x.length) });
          else ops.push({ op: 'touch', obj });
          dataPos += x.length; exists = true; removed = false; break;
        case 'zero': if (exists) ops.push({ op: 'zero', obj, offset: x.offset, length: x.length }); break;
        case 'truncate': ops.push({ op: 'truncate', obj, sizeBytes: x.size }); exists = true; removed = false; break;
        case 'remove':
          if (!exists) return clusterErrorToWire('CLU_ERR_NOT_FOUND');
          ops.push({ op: 'remove', obj }); exists = false; removed = true; attrs.clear(); st = undefined; break;
        case 'create':
          if (exists && x.exclusive) return clusterErrorToWire('CLU_ERR_EXISTS');
          ops.push({ op: 'touch', obj }); exists = true; removed = false; break;
        case 'setattr': ops.push({ op: 'setattr', obj, key: x.name, value: x.value }); attrs.set(x.name, x.value); exists = true; removed = false; break;
        case 'rmattr': if (exists) { ops.push({ op: 'rmattr', obj, key: x.name }); attrs.set(x.name, undefined); } break;
        case 'assert_version':
          if (compareVersion(st?.version ?? ZERO_VERSION, x) !== 0) return clusterErrorToWire('CLU_ERR_CANCELLED');
          break;
        case 'assert_attr':
          if (!attrMatches(getAttr(x.name), x.value, x.mode)) return clusterErrorToWire('CLU_ERR_CANCELLED');
          break;
        case 'lock': case 'unlock': case 'break_lock': {
          const k = LOCK_ATTR_PREFIX + x.name;
          const cur = getAttr(k);
          let state: LockState = { exclusive: true, holders: [] };
          if (cur !== undefined) { try { state = decodeLockState(cur); } catch { /* a corrupt lock attr reads as unlocked */ } }
          const live = state.holders.filter((h) => h.expiresMs === 0 || h.expiresMs > now);
          const client = op.q.reqId.client;
          let holders = live;
          if (x.op === 'lock') {
            const others = live.filter((h) => !(h.client === client && h.cookie === x.cookie));
            if (others.length > 0 && (x.exclusive || state.exclusive)) return clusterErrorToWire('CLU_ERR_BUSY');
            holders = [...others, { client, cookie: x.cookie, expiresMs: x.durationMs === 0 ? 0 : now + x.durationMs }];
            state = { exclusive: x.exclusive, holders };
          } else if (x.op === 'unlock') {
            if (!live.some((h) => h.client === client && h.cookie === x.cookie)) return clusterErrorToWire('CLU_ERR_NOT_FOUND');
            state = { exclusive: state.exclusive, holders: live.filter((h) => !(h.client === client && h.cookie === x.cookie)) };
          } else {
            if (!live.some((h) => h.client === x.client && h.cookie === x.cookie)) return clusterErrorToWire('CLU_ERR_NOT_FOUND');
            state = { exclusive: state.exclusive, holders: live.filter((h) => !(h.client === x.client && h.cookie === x.cookie)) };
          }
          const v = encodeLockState(state);
          ops.push({ op: 'setattr', obj, key: k, value: v }); attrs.set(k, v); exists = true; removed = false;
          break;
        }
        default: break; // reads inside a write vector: answered as 'none' (not supported mixed)
      }
      outs.push({ kind: 'none', result: 0 });
    }
    return { ops, removed, outs };
  }

  private doWrite(pg: Pg, op: ClientOp): void {
    const map = this.map!;
    const obj: ObjectId = { pool: pg.pool, name: op.q.objectName as ObjectName };
    const built = this.buildWrite(pg, op, obj);
    if (typeof built === 'number') { this.reply(op, built, this.store.stat(obj)?.version ?? ZERO_VERSION, [], []); return; }
    const version: EVersion = { epoch: map.epoch, seq: pg.nextSeq++ };
    const entry: PgLogEntry = { version, object: op.q.objectName, op: built.removed ? LogOp.delete : LogOp.modify, client: op.q.reqId.client, tid: op.q.reqId.tid, result: 0 };
    const ops = built.ops;
    if (!built.removed) ops.push({ op: 'version', obj, version });
    this.appendLog(pg, entry, ops);
    const w: InflightWrite = { op, entry, outs: built.outs, waiting: new Set(pg.acting), failed: false };
    const reqKey = PgLog.reqKey(op.q.reqId.client, op.q.reqId.tid);
    pg.inflight.set(reqKey, w);
    pg.inflightByObj.set(op.q.objectName, (pg.inflightByObj.get(op.q.objectName) ?? 0) + 1);
    const gen = pg.peeringGen;
    const done = (osd: OsdId, err: ClusterError | null): void => {
      if (pg.peeringGen !== gen || pg.inflight.get(reqKey) !== w) return; // interval changed: requeued
      if (err !== null) {
        if (!w.failed) {
          w.failed = true;
          this.log.warn({ pg: pg.key, osd, err: err.code }, 'sub-op failed; re-peering');
          this.repeer(pg);
        }
        return;
      }
      w.waiting.delete(osd);
      if (w.waiting.size > 0) return;
      pg.inflight.delete(reqKey);
      const n = (pg.inflightByObj.get(op.q.objectName) ?? 1) - 1;
      if (n === 0) pg.inflightByObj.delete(op.q.objectName); else pg.inflightByObj.set(op.q.objectName, n);
      this.reply(op, 0, version, w.outs, []);
      this.runObject(pg, op.q.objectName);
    };
    const txn = new Transaction();
    txn.ops.push(...ops);
    // The data are views of the received frame, only ever read (here and by the repop sends).
    txn.handOff = true;
    pg.localPending++;
    this.store.submit(txn, (err) => {
      pg.localPending--;
      if (err !== null) this.log.error({ pg: pg.key, err }, 'local commit failed');
      done(this.o.id, err);
      if (pg.localPending === 0 && pg.state === (PgState.PEERING as number)) this.startPeering(pg);
    });
    const enc = encodeRepOp({ pg: pg.key, interval: pg.interval, entry, ops });
    for (const osd of pg.acting) {
      if (osd === this.o.id) continue;
      this.stats.repops++;
      this.peerRequest(osd, MsgType.MSG_OSD_REPOP, enc.payload, enc.data, (err) => done(osd, err));
    }
  }

  /** Adds a log entry (and trims) to `ops` and to the in-memory log. */
  private appendLog(pg: Pg, entry: PgLogEntry, ops: TxnOp[]): void {
    ops.push({ op: 'pgput', pg: pg.key, key: logKey(entry.version), value: encodeLogEntry(entry) });
    const complete = compareVersion(pg.info.lastComplete, pg.info.lastUpdate) === 0;
    pg.log.add(entry);
    pg.info.lastUpdate = entry.version;
    if (complete) pg.info.lastComplete = entry.version;
    if (pg.log.entries.length > PG_LOG_MAX) {
      const old = pg.log.trimOne()!;
      ops.push({ op: 'pgrm', pg: pg.key, key: logKey(old.version) });
      pg.info.logTail = pg.log.tail;
      ops.push({ op: 'pgput', pg: pg.key, key: 'tail', value: encodeInfo({ ...emptyInfo(), logTail: pg.log.tail }) });
    }
  }

  private reply(op: ClientOp, result: number, version: EVersion, outs: OsdOpOut[], data: Uint8Array[]): void {
    if (op.replied) return;
    op.replied = true;
    const payload = encodeOsdOpReply({ result, version, mapEpoch: this.map?.epoch ?? 0, outs });
    op.s.reply(op.req, data.length === 0 ? { type: MsgType.MSG_OSD_OP, payload, epoch: this.map?.epoch ?? 0 } : { type: MsgType.MSG_OSD_OP, payload, data, epoch: this.map?.epoch ?? 0 });
  }

  private replyErr(op: ClientOp, code: ClusterErrorCode): void {
    this.reply(op, clusterErrorToWire(code), ZERO_VERSION, [], []);
  }

  /** Periodic: queued ops time out (UNAVAILABLE), map waits expire, states are re-reported. */
  private tick(): void {
    if (this.stopped) return;
    this.tickTimer = this.env.setTimeout(() => this.tick(), 1000);
    const now = this.env.nowMs();
    const expired = (op: ClientOp): boolean => {
      if (op.replied) return true;
      if (now - op.arrivedMs < OP_QUEUE_TIMEOUT_MS) return false;
      this.replyErr(op, 'CLU_ERR_UNAVAILABLE');
      return true;
    };
    for (const pg of this.pgs.values()) {
      if (pg.queue.length > 0) { const keep = pg.queue.filter((op) => !expired(op)); pg.queue.length = 0; pg.queue.push(...keep); }
      for (const [name, list] of pg.objWait) {
        const keep = list.filter((op) => !expired(op));
        if (keep.length === 0) pg.objWait.delete(name); else pg.objWait.set(name, keep);
      }
    }
    const mw = this.mapWait.splice(0);
    for (const op of mw) this.dispatchOp(op);
    for (const pg of this.pgs.values()) this.maybeResetHistory(pg);
    this.scheduleReport();
  }

  // ------------------------------------------------------------------ state reports

  private setState(pg: Pg, s: number): void {
    if (pg.state === s) return;
    pg.state = checkTransition(pg.state, s);
    this.scheduleReport();
    if ((s & PgState.CLEAN) !== 0) this.maybeResetHistory(pg);
  }

  /**
   * Active+clean at full size: every acting member holds everything, so the PG history can
   * shrink to the acting set (the monitor checks we are still the primary for exactly it).
   * Fire and forget: a refused or lost reset is retried from `tick` (at most every 5 s).
   */
  private maybeResetHistory(pg: Pg): void {
    if (pg.role !== 'primary' || (pg.state & PgState.CLEAN) === 0 || pg.acting.length !== pg.poolSize || this.map === undefined) return;
    if (pg.historyReset === 'inflight' || pg.historyReset === pg.interval || this.env.nowMs() < pg.historyResetRetryMs) return;
    const hist = this.map.pgHistory.get(pg.key);
    const acting = [...pg.acting];
    if (hist !== undefined && hist.length === 1 && sameHistorySet(hist[0] ?? [], acting)) { pg.historyReset = pg.interval; return; }
    const interval = pg.interval;
    pg.historyReset = 'inflight';
    this.o.recordPgHistory(pg.key, 'reset', acting, (err) => {
      if (pg.historyReset !== 'inflight') return; // a new interval started meanwhile
      if (err !== null) {
        pg.historyReset = 0;
        pg.historyResetRetryMs = this.env.nowMs() + 5000;
        this.log.info({ pg: pg.key, acting, code: err.code, err: err.message }, 'pg history reset refused; will retry');
        return;
      }
      pg.historyReset = interval;
      this.log.debug({ pg: pg.key, acting }, 'pg history reset to the clean acting set');
    });
  }

  private scheduleReport(): void {
    if (this.reportScheduled || this.stopped) return;
    this.reportScheduled = true;
    this.env.setImmediate(() => {
      this.reportScheduled = false;
      const st = this.pgStates();
      if (Object.keys(st).length > 0) this.o.reportPgStates(st);
    });
  }

  /** ACTIVE plus modifiers from the recovery bookkeeping. */
  private activeState(pg: Pg): number {
    let s: number = PgState.ACTIVE;
    const undersized = pg.acting.length < pg.poolSize;
    if (undersized) s |= PgState.UNDERSIZED | PgState.DEGRADED;
    if (pg.missingCount() > 0 || pg.incompletePeers.size > 0 || pg.backfillPending.size > 0) {
      s |= PgState.DEGRADED;
      if (pg.backfillPending.size > 0) s |= PgState.BACKFILLING; else s |= PgState.RECOVERING;
    }
    if (pg.inconsistent) s |= PgState.INCONSISTENT;
    if (pg.scrubbing) s |= PgState.SCRUBBING;
    if ((s & ~(PgState.INCONSISTENT | PgState.SCRUBBING)) === PgState.ACTIVE) s |= PgState.CLEAN;
    return s;
  }

  // ------------------------------------------------------------------ peering (primary)

  private repeer(pg: Pg): void {
    if (pg.role !== 'primary') return;
    pg.peeringGen++;
    this.requeueInflight(pg);
    pg.selfMissing.clear(); pg.peerMissing.clear(); pg.peerInfos.clear(); pg.backfillPending.clear(); pg.incompletePeers.clear();
    this.setState(pg, PgState.PEERING);
    this.env.setTimeout(() => { if (pg.role === 'primary' && (pg.state & PgState.PEERING) !== 0) this.startPeering(pg); }, 200);
  }

  private startPeering(pg: Pg): void {
    if (pg.role !== 'primary' || this.map === undefined) return;
    if (pg.localPending > 0) return; // resumed from the last local commit callback
    const gen = ++pg.peeringGen;
    const map = this.map;
    const peers = new Set<OsdId>();
    const history = map.pgHistory.get(pg.key) ?? [];
    for (const x of [...pg.acting, ...pg.prevActing, ...history.flat()]) if (x !== this.o.id && map.osds.get(x)?.up === true) peers.add(x);
    const replies = new Map<OsdId, PgQueryReply>();
    let left = peers.size;
    let failedActing = false;
    const finish = (): void => {
      if (pg.peeringGen !== gen) return;
      if (failedActing) {
        this.env.setTimeout(() => { if (pg.peeringGen === gen) this.startPeering(pg); }, 500);
        return;
      }
      this.choose(pg, replies, gen);
    };
    if (left === 0) { finish(); return; }
    const payload = encodePgQuery(pg.key, pg.interval);
    for (const osd of peers) {
      this.peerRequest(osd, MsgType.MSG_OSD_PG_QUERY, payload, undefined, (err, reply) => {
        if (pg.peeringGen !== gen) return;
        if (err === null && reply !== undefined) {
          try { replies.set(osd, decodePgQueryReply(reply.payload)); } catch { if (pg.acting.includes(osd)) failedActing = true; }
        } else if (pg.acting.includes(osd)) {
          failedActing = true;
        }
        if (--left === 0) finish();
      });
    }
  }

  /** Picks the authoritative log, computes missing sets, activates the acting set. */
  private choose(pg: Pg, replies: Map<OsdId, PgQueryReply>, gen: number): void {
    const self: PgQueryReply = { hasInfo: true, info: { ...pg.info, lastUpdate: pg.log.head, logTail: pg.log.tail }, tail: pg.log.tail, entries: pg.log.entries };
    const all = new Map<OsdId, PgQueryReply>([[this.o.id, self], ...replies]);
    let authId: OsdId = this.o.id;
    let auth = self;
    let authUsable = self.hasInfo && !self.info.backfilling;
    for (const [id, r] of all) {
      if (id === this.o.id || !r.hasInfo || r.info.backfilling) continue;
      // Newest last_update wins; on a tie the longer log (older tail); on a full tie, self.
      const c = compareVersion(r.info.lastUpdate, auth.info.lastUpdate);
      if (!authUsable || c > 0 || (c === 0 && compareVersion(r.tail, auth.tail) < 0)) { authId = id; auth = r; authUsable = true; }
    }
    pg.peerInfos = replies;
    if (pg.acting.length < pg.minSize) {
      this.setState(pg, PgState.DOWN);
      return;
    }
    if (!this.priorSetAnswered(pg, replies, gen)) return;
    const authHead = auth.entries[auth.entries.length - 1]?.version ?? auth.tail;
    const authLatest = new Map<string, PgLogEntry>();
    const authVersions = new Set<string>();
    for (const e of auth.entries) { authLatest.set(e.object, e); authVersions.add(vKey(e.version)); }
    const backfillNeeded = new Set<OsdId>();
    const missingOf = (id: OsdId, r: PgQueryReply | undefined): Map<string, Need> | 'backfill' => {
      if (id === authId) {
        // The authoritative holder may itself still miss objects newer than its last_complete.
        const m = new Map<string, Need>();
        if (r !== undefined && compareVersion(r.info.lastComplete, r.info.lastUpdate) < 0) {
          if (compareVersion(r.info.lastComplete, auth.tail) < 0) return 'backfill';
          for (const e of auth.entries) if (compareVersion(e.version, r.info.lastComplete) > 0) m.set(e.object, { version: authLatest.get(e.object)!.version });
        }
        return m;
      }
      if (r === undefined || !r.hasInfo || r.info.backfilling) return auth.tail.epoch === 0 && auth.tail.seq === 0 ? logMissing(ZERO_VERSION, []) : 'backfill';
      const from = compareVersion(r.info.lastComplete, r.info.lastUpdate) < 0 ? r.info.lastComplete : r.info.lastUpdate;
      if (compareVersion(from, auth.tail) < 0) return 'backfill';
      return logMissing(from, r.entries);
    };
    const logMissing = (from: EVersion, entries: readonly PgLogEntry[]): Map<string, Need> => {
      const m = new Map<string, Need>();
      for (const e of auth.entries) if (compareVersion(e.version, from) > 0) m.set(e.object, { version: authLatest.get(e.object)!.version });
      for (const e of entries) {
        if (compareVersion(e.version, auth.tail) > 0 && !authVersions.has(vKey(e.version))) {
          // Divergent: this OSD applied a write the authoritative history never had.
          m.set(e.object, { version: authLatest.get(e.object)?.version });
        }
      }
      return m;
    };
    const selfM = missingOf(this.o.id, self);
    // The primary's own need, then each acting peer's.
    pg.selfMissing = new Map();
    if (selfM === 'backfill') backfillNeeded.add(this.o.id);
    else {
      const srcOk = authId !== this.o.id;
      for (const [k, v] of selfM) if (srcOk || v.version !== undefined) pg.selfMissing.set(k, v);
    }
    pg.peerMissing = new Map();
    pg.incompletePeers = new Set();
    for (const osd of pg.acting) {
      if (osd === this.o.id) continue;
      const m = missingOf(osd, replies.get(osd));
      if (m === 'backfill') { backfillNeeded.add(osd); pg.incompletePeers.add(osd); continue; }
      pg.peerMissing.set(osd, m);
      if (m.size > 0) pg.incompletePeers.add(osd);
    }
    // Adopt the authoritative log locally (replacing divergent entries).
    const entries = auth.entries;
    const tail = auth.tail;
    const selfIncomplete = pg.selfMissing.size > 0 || backfillNeeded.has(this.o.id);
    const newInfo: PgInfo = {
      lastUpdate: authHead, lastComplete: selfIncomplete ? (selfM === 'backfill' ? ZERO_VERSION : minComplete(self)) : authHead,
      logTail: tail, sameIntervalSince: pg.interval, lastEpochStarted: this.map?.epoch ?? 0, backfilling: backfillNeeded.has(this.o.id),
    };
    this.log.info({ pg: pg.key, auth: authId, authHead: vKey(authHead), acting: pg.acting, selfMissing: pg.selfMissing.size,
      peerMissing: [...pg.peerMissing].map(([k, v]) => [k, v.size]), backfill: [...backfillNeeded] }, 'peering chose authoritative log');
    // The acting set goes into the PG history before this interval accepts a write (in
    // parallel with the log adoption and peer activation: only client I/O waits for both).
    let historyRecorded = false;
    let peersActivated = false;
    let activated = (): void => undefined;
    this.recordActingHistory(pg, gen, () => { historyRecorded = true; if (peersActivated) activated(); });
    this.adoptLog(pg, newInfo, entries, tail, (err) => {
      if (pg.peeringGen !== gen) return;
      if (err !== null) { this.log.error({ pg: pg.key, err }, 'adopting log failed'); return; }
      pg.nextSeq = Math.max(pg.nextSeq, authHead.seq + 1);
      // Activate each acting peer.
      const targets = pg.acting.filter((x) => x !== this.o.id);
      let left = targets.length;
      let failed = false;
      const peersDone = (): void => {
        if (pg.peeringGen !== gen) return;
        if (failed) { this.repeer(pg); return; }
        peersActivated = true;
        if (historyRecorded) activated();
      };
      activated = (): void => {
        if (pg.peeringGen !== gen) return;
        pg.backfillPending = new Set([...backfillNeeded]);
        pg.recoveryStartMs = this.env.nowMs();
        pg.recoveredBytes = 0; pg.recoveredObjects = 0;
        this.setState(pg, this.activeState(pg));
        this.log.info({ pg: pg.key, state: pgStateString(pg.state) }, 'pg activated');
        this.runQueue(pg);
        this.recover(pg);
      };
      if (left === 0) { peersDone(); return; }
      for (const osd of targets) {
        const r = replies.get(osd);
        const bf = backfillNeeded.has(osd);
        const m = pg.peerMissing.get(osd);
        const lc = bf ? ZERO_VERSION : m !== undefined && m.size > 0 ? minComplete(r) : authHead;
        const info: PgInfo = { lastUpdate: authHead, lastComplete: lc, logTail: tail, sameIntervalSince: pg.interval, lastEpochStarted: this.map?.epoch ?? 0, backfilling: bf };
        this.peerRequest(osd, MsgType.MSG_OSD_PG_ACTIVATE, encodePgActivate({ pg: pg.key, interval: pg.interval, mode: 1, info, tail, entries }), undefined, (e) => {
          if (e !== null) failed = true;
          if (--left === 0) peersDone();
        });
      }
    });
  }

  /**
   * The prior-set rule (Ceph's past intervals, Vitastor's PG history): every acting set in the
   * PG's history may have acknowledged writes that only its members hold, so peering goes on
   * only when, for each set, some member is this OSD or answered the query. Otherwise the PG
   * is DOWN (no I/O) and peering is retried on every new map and every 2 s. An admin who knows
   * those OSDs are gone for good declares their data lost with `osd rm` (drops them from the
   * history). Returns true when peering may go on.
   */
  private priorSetAnswered(pg: Pg, replies: ReadonlyMap<OsdId, PgQueryReply>, gen: number): boolean {
    const history = this.map?.pgHistory.get(pg.key) ?? [];
    const blocked = history.filter((set) => !set.some((x) => x === this.o.id || replies.has(x))).map((set) => [...set]);
    if (blocked.length === 0) {
      if (pg.blockedSets !== undefined) this.log.info({ pg: pg.key, acting: pg.acting }, 'pg prior set complete; peering goes on');
      pg.blockedSets = undefined;
      return true;
    }
    const waitingFor = [...new Set(blocked.flat())].sort((a, b) => a - b);
    const changed = pg.blockedSets === undefined || JSON.stringify(pg.blockedSets) !== JSON.stringify(blocked);
    pg.blockedSets = blocked;
    const fields = { pg: pg.key, acting: pg.acting, waitingFor, blockedSets: blocked, answered: [...replies.keys()] };
    if (changed) this.log.info(fields, 'pg down: no member of an earlier acting set answered (prior set); waiting for one of them');
    else this.log.debug(fields, 'pg still down on its prior set');
    this.setState(pg, PgState.DOWN);
    this.env.setTimeout(() => { if (pg.peeringGen === gen) this.retryBlocked(pg); }, 2000);
    return false;
  }

  /** Peering again for a PG blocked on its prior set (new map or timer). */
  private retryBlocked(pg: Pg): void {
    if (pg.role !== 'primary' || pg.blockedSets === undefined || (pg.state & PgState.DOWN) === 0) return;
    this.setState(pg, PgState.PEERING);
    this.startPeering(pg);
  }

  /**
   * Calls `done` once the monitor's PG history lists the acting set (at once when our map's
   * does). A refused or failed request is retried every second while the interval lasts; a
   * new interval or re-peer (peeringGen) drops it.
   */
  private recordActingHistory(pg: Pg, gen: number, done: () => void): void {
    const acting = [...pg.acting];
    if (historyHasSet(this.map?.pgHistory.get(pg.key), acting)) { done(); return; }
    const startMs = this.env.nowMs();
    this.o.recordPgHistory(pg.key, 'add', acting, (err) => {
      if (pg.peeringGen !== gen) return;
      if (err !== null) {
        this.log.info({ pg: pg.key, acting, code: err.code, err: err.message }, 'recording the acting set in the pg history failed; retrying');
        this.env.setTimeout(() => { if (pg.peeringGen === gen) this.recordActingHistory(pg, gen, done); }, 1000);
        return;
      }
      this.log.debug({ pg: pg.key, acting, ms: Math.round(this.env.nowMs() - startMs) }, 'acting set recorded in the pg history');
      done();
    });
  }

  /**
   * Persists `info` and the log `entries` (replacing the current log) in one transaction.
   * Bounded by 2 × PG_LOG_MAX + 2 ops, within StoreLimits.opsPerTxnMax (asserted at load).
   */
  private adoptLog(pg: Pg, info: PgInfo, entries: readonly PgLogEntry[], tail: EVersion, cb: (err: ClusterError | null) => void): void {
    const txn = new Transaction();
    const want = new Set(entries.map((e) => logKey(e.version)));
    const have = new Set(pg.log.entries.map((e) => logKey(e.version)));
    for (const e of pg.log.entries) { const k = logKey(e.version); if (!want.has(k)) txn.pgRemove(pg.key, k); }
    for (const e of entries) { const k = logKey(e.version); if (!have.has(k)) txn.pgPut(pg.key, k, encodeLogEntry(e)); }
    txn.pgPut(pg.key, INFO_KEY, encodeInfo(info));
    txn.pgPut(pg.key, 'tail', encodeInfo({ ...emptyInfo(), logTail: tail }));
    if (entries !== pg.log.entries) pg.log.reset(entries, tail);
    pg.info = { ...info };
    this.store.submit(txn, cb);
  }

  // ------------------------------------------------------------------ recovery (primary)

  private recoverSoon(pg: Pg, name: string): void {
    if (!pg.recovering.has(name) && this.isActive(pg)) this.recoverObject(pg, name, pg.peeringGen);
  }

  /** Runs recovery work up to the concurrency bound; backfill scans first. */
  private recover(pg: Pg): void {
    if (pg.role !== 'primary' || !this.isActive(pg)) return;
    const gen = pg.peeringGen;
    // Backfill: the primary first (from the authoritative peer), then peers (from the primary).
    if (pg.backfillPending.size > 0) {
      if (pg.backfillPending.has(this.o.id)) { this.backfillSelf(pg, gen); return; }
      if (pg.selfMissing.size === 0) for (const osd of [...pg.backfillPending]) this.backfillPeer(pg, osd, gen);
    }
    const names: string[] = [];
    for (const k of pg.selfMissing.keys()) names.push(k);
    for (const m of pg.peerMissing.values()) for (const k of m.keys()) names.push(k);
    for (const name of names) {
      if (pg.recovering.size >= this.recoveryConcurrency) break;
      if (!pg.recovering.has(name)) this.recoverObject(pg, name, gen);
    }
    this.checkRecoveryDone(pg);
  }

  private checkRecoveryDone(pg: Pg): void {
    if (pg.role !== 'primary' || !this.isActive(pg)) return;
    // Peers whose missing set is empty (and not backfilling) are told they are complete.
    for (const osd of [...pg.incompletePeers]) {
      if (pg.backfillPending.has(osd) || (pg.peerMissing.get(osd)?.size ?? 0) > 0) continue;
      pg.incompletePeers.delete(osd);
      const gen = pg.peeringGen;
      const info: PgInfo = { ...pg.info, lastUpdate: pg.log.head, lastComplete: pg.log.head, backfilling: false };
      this.peerRequest(osd, MsgType.MSG_OSD_PG_ACTIVATE, encodePgActivate({ pg: pg.key, interval: pg.interval, mode: 2, info, tail: pg.log.tail, entries: [] }), undefined, (e) => {
        if (pg.peeringGen !== gen) return;
        if (e !== null) { this.repeer(pg); return; }
        this.setState(pg, this.activeState(pg));
        this.maybeLogRecovered(pg);
      });
    }
    if (pg.selfMissing.size === 0 && !pg.backfillPending.has(this.o.id) && compareVersion(pg.info.lastComplete, pg.log.head) < 0 && pg.recovering.size === 0) {
      pg.info = { ...pg.info, lastComplete: pg.log.head, backfilling: false };
      const txn = new Transaction().pgPut(pg.key, INFO_KEY, encodeInfo(pg.info));
      this.store.submit(txn, () => undefined);
    }
    this.setState(pg, this.activeState(pg));
    this.maybeLogRecovered(pg);
  }

  private maybeLogRecovered(pg: Pg): void {
    if ((pg.state & PgState.CLEAN) !== 0 && pg.recoveryStartMs > 0 && pg.recoveredObjects > 0) {
      this.log.info({ pg: pg.key, objects: pg.recoveredObjects, bytes: pg.recoveredBytes, ms: Math.round(this.env.nowMs() - pg.recoveryStartMs) }, 'pg recovered');
      pg.recoveryStartMs = 0;
    }
  }

  /** Brings one object up to date on the primary (pull) and on every peer missing it (push). */
  private recoverObject(pg: Pg, name: string, gen: number): void {
    if (pg.recovering.has(name)) return;
    if ((pg.inflightByObj.get(name) ?? 0) > 0) return; // retried when the write completes (runObject)
    pg.recovering.add(name);
    const obj: ObjectId = { pool: pg.pool, name: name as ObjectName };
    const fin = (ok: boolean): void => {
      pg.recovering.delete(name);
      if (pg.peeringGen !== gen) return;
      if (!ok) { this.repeer(pg); return; }
      this.runObject(pg, name);
      this.recover(pg);
    };
    const pushAll = (): void => {
      const targets = [...pg.peerMissing].filter(([, m]) => m.has(name)).map(([osd]) => osd);
      if (targets.length === 0) { fin(true); return; }
      this.readCopy(obj, (err, copy, dataOrNone) => {
        const data = dataOrNone ?? new Uint8Array(0);
        if (pg.peeringGen !== gen) { pg.recovering.delete(name); return; }
        if (err !== null || copy === undefined) { this.log.error({ pg: pg.key, name, err }, 'recovery read failed'); fin(false); return; }
        let left = targets.length;
        let ok = true;
        const payload = encodePush(pg.key, pg.interval, copy);
        for (const osd of targets) {
          this.peerRequest(osd, MsgType.MSG_OSD_PG_PUSH, payload, data.length > 0 ? [data] : undefined, (e) => {
            if (e === null) {
              pg.peerMissing.get(osd)?.delete(name);
              pg.recoveredObjects++; pg.recoveredBytes += data.length;
              this.stats.recoveredObjects++; this.stats.recoveredBytes += data.length;
            } else ok = false;
            if (--left === 0) fin(ok);
          });
        }
      });
    };
    if (!pg.selfMissing.has(name)) { pushAll(); return; }
    // Pull from a peer that has it: the authoritative one first, any complete peer otherwise.
    const src = this.sourceFor(pg, name);
    if (src === undefined) {
      this.log.error({ pg: pg.key, name }, 'no recovery source');
      pg.recovering.delete(name);
      return;
    }
    this.peerRequest(src, MsgType.MSG_OSD_PG_PULL, encodeObjectRef(pg.pool, name), undefined, (err, reply) => {
      if (pg.peeringGen !== gen) { pg.recovering.delete(name); return; }
      if (err !== null || reply === undefined) { fin(false); return; }
      const copy = decodeObjectCopy(reply.payload);
      const data = joinChunks(reply.data);
      this.installCopy(copy, data, (e) => {
        if (e !== null) { fin(false); return; }
        pg.selfMissing.delete(name);
        pg.recoveredObjects++; pg.recoveredBytes += data.length;
        this.stats.recoveredObjects++; this.stats.recoveredBytes += data.length;
        pushAll();
      });
    });
  }

  private sourceFor(pg: Pg, name: string): OsdId | undefined {
    let best: OsdId | undefined;
    let bestV: EVersion | undefined;
    for (const [osd, r] of pg.peerInfos) {
      if (!r.hasInfo || r.info.backfilling) continue;
      if (pg.peerMissing.get(osd)?.has(name) === true) continue;
      if (this.map?.osds.get(osd)?.up !== true) continue;
      if (bestV === undefined || compareVersion(r.info.lastUpdate, bestV) > 0) { best = osd; bestV = r.info.lastUpdate; }
    }
    return best;
  }

  /** Whole object (data + attrs + version) from the local store. */
  private readCopy(obj: ObjectId, cb: (err: ClusterError | null, copy?: ObjectCopy, data?: Uint8Array) => void): void {
    const st = this.store.stat(obj);
    if (st === undefined) { this.env.setImmediate(() => cb(null, { pool: obj.pool, name: obj.name, exists: false, version: ZERO_VERSION, size: 0, attrs: [] }, new Uint8Array(0))); return; }
    const attrs: [string, Uint8Array][] = this.store.listAttrs(obj).map((k) => [k, this.store.getAttr(obj, k)!]);
    this.store.read(obj, 0, st.sizeBytes, (err, data) => {
      if (err !== null) { cb(err); return; }
      cb(null, { pool: obj.pool, name: obj.name, exists: true, version: st.version ?? ZERO_VERSION, size: st.sizeBytes, attrs }, data);
    });
  }

  /** Replaces the local object with `copy` atomically. */
  private installCopy(copy: ObjectCopy, data: Uint8Array, cb: (err: ClusterError | null) => void): void {
    const obj: ObjectId = { pool: copy.pool as PoolId, name: copy.name as ObjectName };
    const txn = new Transaction().remove(obj);
    if (copy.exists) {
      txn.touch(obj);
      if (data.length > 0) txn.write(obj, 0, data);
      txn.truncate(obj, copy.size);
      for (const [k, v] of copy.attrs) txn.setAttr(obj, k, v);
      txn.setVersion(obj, copy.version);
    }
    this.store.submit(txn, cb);
  }

  private pgOfName(pool: PoolInfo | undefined, name: string): number {
    return pool === undefined ? -1 : stableMod(objectHash(name), pool.pgNum);
  }

  private localScan(pool: number, seed: number, pgNum: number, withCrc: boolean, cb: (err: ClusterError | null, list: ScanEntry[]) => void): void {
    const ids = this.store.listObjects(pool, (o) => stableMod(objectHash(o.name), pgNum) === seed);
    const out: ScanEntry[] = [];
    let i = 0;
    const next = (): void => {
      while (i < ids.length) {
        const id = ids[i++]!;
        const st = this.store.stat(id);
        if (st === undefined) continue;
        if (!withCrc) { out.push({ name: id.name, version: st.version ?? ZERO_VERSION, size: st.sizeBytes, crc: 0 }); continue; }
        this.store.read(id, 0, st.sizeBytes, (err, data) => {
          let crc = err === null ? crc32c(data) : 0xffffffff;
          if (err === null) for (const k of this.store.listAttrs(id)) crc = crc32c(this.store.getAttr(id, k)!, crc32c(new TextEncoder().encode(k), crc));
          out.push({ name: id.name, version: st.version ?? ZERO_VERSION, size: st.sizeBytes, crc: err === null ? crc >>> 0 : 0xffffffff });
          next();
        });
        return;
      }
      cb(null, out);
    };
    next();
  }

  private scanPeer(pg: Pg, osd: OsdId, withCrc: boolean, cb: (err: ClusterError | null, list?: ScanEntry[]) => void): void {
    const pool = this.map?.pools.get(pg.pool);
    if (pool === undefined) { cb(errOf('CLU_ERR_NOT_FOUND', 'pool')); return; }
    if (osd === this.o.id) { this.localScan(pg.pool, pg.seed, pool.pgNum, withCrc, cb); return; }
    this.peerRequest(osd, MsgType.MSG_OSD_PG_SCAN, encodePgScan({ pg: pg.key, interval: pg.interval, pool: pg.pool, seed: pg.seed, pgNum: pool.pgNum, withCrc }), undefined, (err, reply) => {
      if (err !== null || reply === undefined) { cb(err ?? errOf('CLU_ERR_IO', 'scan')); return; }
      cb(null, decodeScanReply(reply.payload));
    });
  }

  /** Diff of `src` (authoritative) against `dst`: what dst must receive or delete. */
  private diff(src: ScanEntry[], dst: ScanEntry[]): Map<string, Need> {
    const m = new Map<string, Need>();
    const d = new Map(dst.map((e) => [e.name, e]));
    for (const e of src) {
      const x = d.get(e.name);
      if (x === undefined || compareVersion(x.version, e.version) !== 0 || x.size !== e.size) m.set(e.name, { version: e.version });
      d.delete(e.name);
    }
    for (const name of d.keys()) m.set(name, { version: undefined });
    return m;
  }

  private backfillSelf(pg: Pg, gen: number): void {
    if (pg.recovering.has('\0backfill-self')) return;
    const src = this.sourceFor(pg, '\0none');
    if (src === undefined) { this.log.error({ pg: pg.key }, 'no backfill source for the primary'); return; }
    pg.recovering.add('\0backfill-self');
    this.scanPeer(pg, src, false, (err, theirs) => {
      if (pg.peeringGen !== gen) { pg.recovering.delete('\0backfill-self'); return; }
      this.scanPeer(pg, this.o.id, false, (err2, mine) => {
        pg.recovering.delete('\0backfill-self');
        if (pg.peeringGen !== gen) return;
        if (err !== null || err2 !== null || theirs === undefined || mine === undefined) { this.repeer(pg); return; }
        const m = this.diff(theirs, mine);
        pg.selfMissing = m;
        pg.backfillPending.delete(this.o.id);
        this.log.info({ pg: pg.key, src, objects: m.size }, 'primary backfill scan');
        this.recover(pg);
        this.kickAll(pg);
      });
    });
  }

  private backfillPeer(pg: Pg, osd: OsdId, gen: number): void {
    const tag = `\0backfill-${osd}`;
    if (pg.recovering.has(tag)) return;
    pg.recovering.add(tag);
    this.scanPeer(pg, osd, false, (err, theirs) => {
      if (pg.peeringGen !== gen) { pg.recovering.delete(tag); return; }
      this.scanPeer(pg, this.o.id, false, (err2, mine) => {
        pg.recovering.delete(tag);
        if (pg.peeringGen !== gen) return;
        if (err !== null || err2 !== null || theirs === undefined || mine === undefined) { this.repeer(pg); return; }
        const m = this.diff(mine, theirs);
        // Objects with a write in flight are current on the peer once it commits (the sub-op
        // went out before this scan answered); re-pushing them anyway is harmless.
        pg.peerMissing.set(osd, m);
        pg.backfillPending.delete(osd);
        this.log.info({ pg: pg.key, osd, objects: m.size }, 'backfill scan');
        this.recover(pg);
        this.kickAll(pg);
      });
    });
  }

  // ------------------------------------------------------------------ replica side

  private replicaPg(key: string, interval: number): Pg | ClusterError {
    let pg = this.pgs.get(key);
    if (pg === undefined) {
      const [poolText, seedText] = key.split('.');
      const pool = Number(poolText); const seed = parseInt(seedText ?? '', 16);
      if (!Number.isInteger(pool) || !Number.isInteger(seed)) return errOf('CLU_ERR_INVALID', `pg ${key}`);
      pg = new Pg(key, pool as PoolId, seed);
      this.pgs.set(key, pg);
    }
    if (interval < pg.seenInterval) return errOf('CLU_ERR_EPOCH_STALE', `pg ${key} interval ${interval} < ${pg.seenInterval}`);
    pg.seenInterval = interval;
    return pg;
  }

  private onQuery(req: InboundMessage, s: Session): void {
    const q = decodePgQuery(req.payload);
    const pg = this.replicaPg(q.pg, q.interval);
    if (pg instanceof ClusterError) { s.replyError(req, pg); return; }
    const hasInfo = pg.log.entries.length > 0 || pg.info.sameIntervalSince > 0;
    const info = { ...pg.info, lastUpdate: pg.log.head, logTail: pg.log.tail };
    s.reply(req, { type: req.type, payload: encodePgQueryReply({ hasInfo, info, tail: pg.log.tail, entries: pg.log.entries }) });
  }

  private onActivate(req: InboundMessage, s: Session): void {
    const a = decodePgActivate(req.payload);
    const pg = this.replicaPg(a.pg, a.interval);
    if (pg instanceof ClusterError) { s.replyError(req, pg); return; }
    const done = (err: ClusterError | null): void => { if (err !== null) s.replyError(req, err); else s.reply(req, { type: req.type }); };
    if (a.mode === 2) {
      pg.info = { ...pg.info, lastComplete: pg.log.head, backfilling: false };
      this.store.submit(new Transaction().pgPut(pg.key, INFO_KEY, encodeInfo(pg.info)), done);
      return;
    }
    this.adoptLog(pg, a.info, a.entries, a.tail, done);
  }

  private onRepOp(req: InboundMessage, s: Session): void {
    const m = decodeRepOp(req.payload, req.data);
    const pg = this.replicaPg(m.pg, m.interval);
    if (pg instanceof ClusterError) { s.replyError(req, pg); return; }
    const txn = new Transaction();
    txn.ops.push(...m.ops);
    txn.handOff = true; // views of the received frame, never modified
    if (compareVersion(m.entry.version, pg.log.head) > 0) {
      const complete = compareVersion(pg.info.lastComplete, pg.info.lastUpdate) === 0;
      pg.log.add(m.entry);
      pg.info.lastUpdate = m.entry.version;
      if (complete) pg.info.lastComplete = m.entry.version;
      while (pg.log.entries.length > PG_LOG_MAX) pg.log.trimOne();
      pg.info.logTail = pg.log.tail;
    }
    this.store.submit(txn, (err) => { if (err !== null) s.replyError(req, err); else s.reply(req, { type: req.type }); });
  }

  private onPush(req: InboundMessage, s: Session): void {
    const m = decodePush(req.payload);
    const pg = this.replicaPg(m.pg, m.interval);
    if (pg instanceof ClusterError) { s.replyError(req, pg); return; }
    const data = joinChunks(req.data);
    this.stats.pushesReceived++;
    this.stats.pushBytesReceived += data.length;
    this.installCopy(m.copy, data, (err) => { if (err !== null) s.replyError(req, err); else s.reply(req, { type: req.type }); });
  }

  private onLocalRead(req: InboundMessage, s: Session): void {
    const ref = decodeObjectRef(req.payload);
    this.readCopy({ pool: ref.pool as PoolId, name: ref.name as ObjectName }, (err, copy, data) => {
      if (err !== null || copy === undefined) { s.replyError(req, err ?? errOf('CLU_ERR_IO', 'read')); return; }
      s.reply(req, data !== undefined && data.length > 0 ? { type: req.type, payload: encodeObjectCopy(copy), data: [data] } : { type: req.type, payload: encodeObjectCopy(copy) });
    });
  }

  private onScan(req: InboundMessage, s: Session): void {
    const m = decodePgScan(req.payload);
    this.localScan(m.pool, m.seed, m.pgNum, m.withCrc, (err, list) => {
      if (err !== null) s.replyError(req, err); else s.reply(req, { type: req.type, payload: encodeScanReply(list) });
    });
  }

  // ------------------------------------------------------------------ scrub

  private onScrubRequest(req: InboundMessage, s: Session): void {
    const m = decodeScrubRequest(req.payload);
    const pg = this.pgs.get(pgKeyOf(m.pool, m.seed));
    if (pg === undefined || pg.role !== 'primary') { s.replyError(req, errOf('CLU_ERR_WRONG_TARGET', `not primary for ${m.pool}.${m.seed.toString(16)}`)); return; }
    this.scrub(pg, m.repair, (err, result) => {
      if (err !== null) s.replyError(req, err);
      else s.reply(req, { type: req.type, payload: new TextEncoder().encode(JSON.stringify(result)) });
    });
  }

  /** Scrub result (JSON to the CLI). */
  scrub(pg: Pg, repair: boolean, cb: (err: ClusterError | null, result?: ScrubResult) => void): void {
    if (!this.isActive(pg) || (pg.state & PgState.CLEAN) === 0 && !pg.inconsistent) { cb(errOf('CLU_ERR_BUSY', `pg ${pg.key} is ${pgStateString(pg.state)}; scrub needs active+clean`)); return; }
    if (pg.scrubbing) { cb(errOf('CLU_ERR_BUSY', 'scrub in progress')); return; }
    const gen = pg.peeringGen;
    pg.scrubbing = true;
    this.setState(pg, this.activeState(pg));
    const lists = new Map<OsdId, ScanEntry[]>();
    let left = pg.acting.length;
    let failed: ClusterError | null = null;
    const end = (err: ClusterError | null, r?: ScrubResult): void => {
      pg.scrubbing = false;
      if (pg.peeringGen === gen) this.setState(pg, this.activeState(pg));
      cb(err, r);
    };
    for (const osd of pg.acting) {
      this.scanPeer(pg, osd, true, (err, list) => {
        if (err !== null) failed = err; else lists.set(osd, list!);
        if (--left > 0) return;
        if (pg.peeringGen !== gen) { end(errOf('CLU_ERR_CANCELLED', 'interval changed during scrub')); return; }
        if (failed !== null) { end(failed); return; }
        const inconsistent: { object: string; osd: number; reason: string }[] = [];
        const mine = new Map(lists.get(this.o.id)!.map((e) => [e.name, e]));
        const names = new Set<string>();
        for (const l of lists.values()) for (const e of l) names.add(e.name);
        const repairs = new Map<OsdId, Set<string>>();
        for (const name of [...names].sort()) {
          const a = mine.get(name);
          for (const osd of pg.acting) {
            if (osd === this.o.id) { if (a !== undefined && a.crc === 0xffffffff) inconsistent.push({ object: name, osd, reason: 'read_error' }); continue; }
            const b = lists.get(osd)!.find((e) => e.name === name);
            let reason = '';
            if (a === undefined) reason = 'extra';
            else if (b === undefined) reason = 'missing';
            else if (compareVersion(a.version, b.version) !== 0) reason = 'version';
            else if (a.size !== b.size) reason = 'size';
            else if (a.crc !== b.crc) reason = b.crc === 0xffffffff ? 'read_error' : 'checksum';
            if (reason !== '') {
              inconsistent.push({ object: name, osd, reason });
              if (!repairs.has(osd)) repairs.set(osd, new Set());
              repairs.get(osd)!.add(name);
            }
          }
        }
        pg.inconsistent = inconsistent.length > 0;
        const result: ScrubResult = { pg: pg.key, objects: mine.size, inconsistent, repaired: 0 };
        this.log.info({ pg: pg.key, objects: mine.size, inconsistent: inconsistent.length, repair }, 'scrub done');
        const primaryBad = inconsistent.some((x) => x.osd === this.o.id);
        if (!repair || inconsistent.length === 0 || primaryBad) { end(null, result); return; }
        // Repair: the primary's copy is authoritative; reuse the recovery push path.
        for (const [osd, set] of repairs) {
          const m = pg.peerMissing.get(osd) ?? new Map<string, Need>();
          for (const name of set) m.set(name, { version: mine.get(name)?.version });
          pg.peerMissing.set(osd, m);
          pg.incompletePeers.add(osd);
        }
        result.repaired = inconsistent.length;
        pg.inconsistent = false;
        this.recover(pg);
        end(null, result);
      });
    }
  }

  private scheduleScrub(): void {
    const every = this.o.scrubIntervalMs ?? 0;
    this.scrubTimer = this.env.setTimeout(() => {
      if (this.stopped) return;
      const prim = [...this.pgs.values()].filter((p) => p.role === 'primary' && (p.state & PgState.CLEAN) !== 0);
      if (prim.length > 0) {
        const pg = prim[this.scrubCursor++ % prim.length]!;
        this.scrub(pg, false, (err, r) => {
          if (err !== null) this.log.debug({ pg: pg.key, err: err.code }, 'periodic scrub skipped');
          else if (r !== undefined && r.inconsistent.length > 0) this.log.warn({ pg: pg.key, inconsistent: r.inconsistent.length }, 'periodic scrub found inconsistencies');
        });
      }
      this.scheduleScrub();
    }, every);
  }

  /** For tests: the PG object by key. */
  pgForTest(key: string): { state: string; role: string; logLength: number; head: EVersion; waitingFor: OsdId[] } | undefined {
    const pg = this.pgs.get(key);
    const waitingFor = [...new Set((pg?.blockedSets ?? []).flat())].sort((a, b) => a - b);
    return pg === undefined ? undefined : { state: pgStateString(pg.state), role: pg.role, logLength: pg.log.entries.length, head: pg.log.head, waitingFor };
  }

  /** Scrubs a PG by key (the admin path without a session). */
  scrubPg(key: string, repair: boolean, cb: (err: ClusterError | null, result?: ScrubResult) => void): void {
    const pg = this.pgs.get(key);
    if (pg === undefined || pg.role !== 'primary') { cb(errOf('CLU_ERR_WRONG_TARGET', `not primary for ${key}`)); return; }
    this.scrub(pg, repair, cb);
  }
}

/** Result of one scrub. */
export interface ScrubResult {
  pg: string;
  objects: number;
  inconsistent: { object: string; osd: number; reason: string }[];
  repaired: number;
}

function attrMatches(have: Uint8Array | undefined, want: Uint8Array, mode: number): boolean {
  if ((mode & ASSERT_F_ABSENT) !== 0) return have === undefined;
  if (have === undefined || have.length !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (have[i] !== want[i]) return false;
  return true;
}

function minComplete(r: PgQueryReply | undefined): EVersion {
  if (r === undefined) return ZERO_VERSION;
  return compareVersion(r.info.lastComplete, r.info.lastUpdate) < 0 ? r.info.lastComplete : r.info.lastUpdate;
}

/** Wire result → code (for clients and tests). */
export function resultCode(result: number): ClusterErrorCode | 'OK' | 'UNKNOWN' {
  return result === 0 ? 'OK' : clusterErrorFromWire(result) ?? 'UNKNOWN';
}
