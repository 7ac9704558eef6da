/**
 * The client op path on the primary (docs/replication.md §1): decode and check `MSG_OSD_OP`,
 * queue it on its PG, order it per object, execute reads, build and replicate writes, reply.
 *
 * Owns: `mapWait` (ops from a newer map than ours), and on each primary PG the queue, the
 * per-object wait lists, the in-flight writes and the version counter (`nextSeq`).
 * Invariants it relies on:
 * - A PG's queue moves only while the PG is active (`isActive`); peering re-runs it (`runQueue`).
 * - Per object: a read or a conditional op waits for the object's in-flight writes; blind writes
 *   are pipelined (store and sessions are FIFO, so every OSD applies them in version order).
 * - An object missing on any acting OSD waits and is recovered first (recovery.ts).
 * - Dedup by reqId (client, tid) in the PG log: a resend of an applied write gets the original
 *   version; a resend of one in flight waits for it. Every op is answered at most once (`replied`).
 * - A failed sub-op re-peers the PG; in-flight writes go back to the queue (`requeueInflight`).
 * - Client identity (docs/cluster-protocol.md §3): an op's `reqId.client` must be the
 *   `<entity>/<instance>` its session authenticated (handshake protocol 2), else CLU_ERR_PERM
 *   `instance-mismatch`: a client cannot speak for another instance, nor shed a blocklisted
 *   one, without a new session (and a new instance is still its entity: entity-wide entries).
 * - Client blocklist (docs/cluster-map.md §Blocklist): an op whose `reqId.client` the map lists
 *   is answered `OSD_RESULT_BLOCKLISTED` when dispatched (on arrival, after a map wait) and right before it
 *   executes (`tryOp`), so nothing of a blocklisted instance starts executing once this OSD has
 *   the epoch; a new map answers such queued ops and closes their sessions (`onNewMap`).
 * - An op with a newer `mapEpoch` than ours never runs on our older map: it waits for that
 *   map (a client that waited for a blocklist epoch relies on it), then gets UNAVAILABLE.
 */
import { capsAllow } from '../auth/caps.js';
import { ClusterError, clusterErrorToWire } from '../common/errors.js';
import type { ClusterErrorCode } from '../common/errors.js';
import { stableMod } from '../common/hash.js';
import type { ObjectName, OsdId, PoolId } from '../common/ids.js';
import { isBlocklisted } from '../map/cluster-map.js';
import type { InboundMessage, Session } from '../msg/session.js';
import { MsgType } from '../msg/types.js';
import { objectHash } from '../placement/placement.js';
import { LogOp, PG_LOG_MAX, PG_LOG_MIN, PG_LOG_TRIM_PER_WRITE, PgLog, emptyInfo, encodeInfo, encodeLogEntry, logKey } from '../pg/pg-log.js';
import type { PgLogBounds } from '../pg/pg-log.js';
import type { PgLogEntry } from '../pg/pg-log.js';
import { PgState } from '../pg/pg-state.js';
import { Transaction } from '../store/types.js';
import type { ObjectId, TxnOp } from '../store/types.js';
import type { OsdContext } from './osd-context.js';
import {
  ASSERT_F_ABSENT, LOCK_ATTR_PREFIX, OP_MAP_WAIT_MS, OP_QUEUE_TIMEOUT_MS, OSD_FLAG_FAILOK, OSD_RESULT_BLOCKLISTED, ZERO_VERSION, compareVersion,
  decodeLockState, decodeOsdOpRequest, encodeLockState, encodeOsdOpReply, isWriteOp,
} from './osd-protocol.js';
import type { EVersion, LockState, OsdOpOut, OsdOpRequest } from './osd-protocol.js';
import { encodeRepOp, joinChunks } from './osd-peer-protocol.js';
import { giveBulk } from '../common/bulk-pool.js';
import { activeState, errOf, isActive, pgKeyOf } from './pg.js';
import type { ClientOp, InflightWrite, Pg } from './pg.js';

/** What the client op path uses from the rest of the OSD. */
export type ClientOpsContext = Pick<OsdContext,
  'id' | 'env' | 'log' | 'store' | 'stats' | 'pgs' | 'map' | 'peerRequest' | 'recoverSoon' | 'repeer' | 'startPeering'>;

export class ClientOps {
  private readonly mapWait: ClientOp[] = [];
  /** Client instance → its sessions that sent ops (closed when the instance is blocklisted). */
  private readonly instanceSessions = new Map<string, Set<Session>>();
  private readonly boundBySession = new WeakMap<Session, string | null>();
  /** The blocklist table last enforced (maps share it between epochs that do not change it). */
  private enforcedBlocklist: ReadonlyMap<string, number> | undefined;
  /** Sessions already logged for an instance mismatch (logged once per session). */
  private readonly mismatchLogged = new WeakSet<Session>();

  /** Log bounds: `min` entries while active+clean, `max` while degraded (OsdCoreOptions.pgLogBounds). */
  constructor(private readonly c: ClientOpsContext, private readonly logBounds: PgLogBounds = { min: PG_LOG_MIN, max: PG_LOG_MAX }) {}

  onClientOp(req: InboundMessage, s: Session): void {
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
    const peer = s.peer;
    const bound = this.boundInstance(s);
    if (q.reqId.client !== bound) { this.refuseMismatch(req, s, q.reqId.client, bound); return; }
    const map = this.c.map();
    const pool = map?.pools.get(q.pool as PoolId);
    if (pool !== undefined && (peer === null || !capsAllow(peer.caps, { pool: pool.name, objectName: q.objectName, write }))) {
      s.replyError(req, errOf('CLU_ERR_PERM', `${peer?.entity ?? 'peer'} may not ${write ? 'write' : 'read'} pool ${pool.name}`));
      return;
    }
    this.c.stats.clientOps++;
    const op: ClientOp = { req, s, q, data, arrivedMs: this.c.env.nowMs(), write, replied: false, executions: 0 };
    this.trackSession(q.reqId.client, s);
    this.dispatchOp(op);
  }

  private dispatchOp(op: ClientOp): void {
    const map = this.c.map();
    if (map === undefined || op.q.mapEpoch > map.epoch) {
      if (this.c.env.nowMs() - op.arrivedMs < OP_MAP_WAIT_MS) { this.mapWait.push(op); return; }
      // Why not run it on our older map: the client may have waited for a newer epoch (a
      // blocklist) precisely so that we refuse someone else's ops before we run its own.
      this.replyErr(op, 'CLU_ERR_UNAVAILABLE');
      return;
    }
    if (isBlocklisted(map, op.q.reqId.client)) { this.replyBlocklisted(op); return; }
    const pool = map.pools.get(op.q.pool as PoolId);
    if (pool === undefined) { this.replyErr(op, 'CLU_ERR_NOT_FOUND'); return; }
    const seed = stableMod(objectHash(op.q.objectName), pool.pgNum);
    const pg = this.c.pgs.get(pgKeyOf(pool.id, seed));
    if (pg === undefined || pg.role !== 'primary') { this.replyErr(op, 'CLU_ERR_WRONG_TARGET'); return; }
    if (op.q.mapEpoch < pg.interval) { this.replyErr(op, 'CLU_ERR_EPOCH_STALE'); return; }
    pg.queue.push(op);
    this.runQueue(pg);
  }

  /** Moves ops from the PG queue to their objects, in order, while the PG is active. */
  runQueue(pg: Pg): void {
    if (!isActive(pg)) return;
    while (pg.queue.length > 0) {
      const op = pg.queue.shift()!;
      const name = op.q.objectName;
      // Queued before this interval: a PG split may have moved the object to a child PG.
      if (op.q.mapEpoch < pg.interval && !this.stillOurs(pg, name)) { this.replyErr(op, 'CLU_ERR_EPOCH_STALE'); continue; }
      const w = pg.objWait.get(name);
      if (w !== undefined) { w.push(op); continue; }
      if (!this.tryOp(pg, op)) pg.objWait.set(name, [op]);
    }
  }

  /** Whether `name` still maps to `pg` under our map's pgNum (false after a split moved it). */
  private stillOurs(pg: Pg, name: string): boolean {
    const pool = this.c.map()?.pools.get(pg.pool);
    return pool === undefined || stableMod(objectHash(name), pool.pgNum) === pg.seed;
  }

  /** Retries the ops waiting on one object, in order, until one blocks. */
  runObject(pg: Pg, name: string): void {
    const list = pg.objWait.get(name);
    if (list === undefined || !isActive(pg)) return;
    while (list.length > 0) {
      if (!this.tryOp(pg, list[0]!)) return;
      list.shift();
    }
    pg.objWait.delete(name);
  }

  /** Retries every waiting object (after a backfill scan unblocked the PG). */
  kickAll(pg: Pg): void {
    for (const name of [...pg.objWait.keys()]) this.runObject(pg, name);
  }

  /** Executes `op` now if nothing blocks it; false = must wait. */
  private tryOp(pg: Pg, op: ClientOp): boolean {
    if (op.replied) return true;
    const map = this.c.map();
    if (map !== undefined && isBlocklisted(map, op.q.reqId.client)) { this.replyBlocklisted(op); return true; }
    const name = op.q.objectName;
    // A backfill scan is pending: every object of the target is untrusted until the scan's
    // diff is known, and no write may be in flight while both sides are listed.
    if (pg.backfillPending.size > 0) return false;
    if (pg.missingAnywhere(name)) { this.c.recoverSoon(pg, name); return false; }
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
    const st = this.c.store.stat(obj);
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
            this.c.store.read(obj, x.offset, x.length, (err, bytes) => {
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
            const v = st === undefined ? undefined : this.c.store.getAttr(obj, x.name);
            if (v === undefined) r = NF;
            outs.push({ kind: 'attr', result: r, value: v ?? new Uint8Array(0) });
            break;
          }
          case 'getattrs':
            if (st === undefined) r = NF;
            outs.push({ kind: 'attr', result: r, value: new TextEncoder().encode(this.c.store.listAttrs(obj).join('\n')) });
            break;
          case 'assert_version':
            if (compareVersion(version, x) !== 0) r = clusterErrorToWire('CLU_ERR_CANCELLED');
            outs.push({ kind: 'none', result: r });
            break;
          case 'assert_attr': {
            const v = st === undefined ? undefined : this.c.store.getAttr(obj, x.name);
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
    let st = this.c.store.stat(obj);
    let exists = st !== undefined;
    let removed = false;
    const ops: TxnOp[] = [];
    const outs: OsdOpOut[] = [];
    let dataPos = 0;
    const attrs = new Map<string, Uint8Array | undefined>();
    const getAttr = (k: string): Uint8Array | undefined => (attrs.has(k) ? attrs.get(k) : exists ? this.c.store.getAttr(obj, k) : undefined);
    const now = this.c.env.wallMs();
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
            // break_lock (an operator stopping a holder, images.md §Breaking a lock): the named
            // holder goes whether its lease is live or lapsed but still recorded.
            if (!state.holders.some((h) => h.client === x.client && h.cookie === x.cookie)) return clusterErrorToWire('CLU_ERR_NOT_FOUND');
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
    const map = this.c.map()!;
    const obj: ObjectId = { pool: pg.pool, name: op.q.objectName as ObjectName };
    op.executions++;
    const built = this.buildWrite(pg, op, obj);
    if (typeof built === 'number') { this.reply(op, built, this.c.store.stat(obj)?.version ?? ZERO_VERSION, [], []); return; }
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
          this.c.log.warn({ pg: pg.key, osd, err: err.code }, 'sub-op failed; re-peering');
          this.c.repeer(pg);
        }
        return;
      }
      w.waiting.delete(osd);
      if (w.waiting.size > 0) return;
      pg.inflight.delete(reqKey);
      const n = (pg.inflightByObj.get(op.q.objectName) ?? 1) - 1;
      if (n === 0) pg.inflightByObj.delete(op.q.objectName); else pg.inflightByObj.set(op.q.objectName, n);
      this.reply(op, 0, version, w.outs, []);
      // Committed here and on every replica, by this one execution: the local store wrote or
      // copied the data, and each replica's ack means it read the whole sub-op frame (our socket
      // holds none of it). A requeued op may still have an earlier execution's sub-ops queued
      // on a socket, so its buffer is left to the GC.
      if (op.executions === 1) giveBulk(op.data);
      this.runObject(pg, op.q.objectName);
    };
    const txn = new Transaction();
    txn.ops.push(...ops);
    // The data are views of the received frame, only ever read (here and by the repop sends).
    txn.handOff = true;
    pg.localPending++;
    this.c.store.submit(txn, (err) => {
      pg.localPending--;
      if (err !== null) this.c.log.error({ pg: pg.key, err }, 'local commit failed');
      done(this.c.id, err);
      if (pg.localPending === 0 && pg.state === (PgState.PEERING as number)) this.c.startPeering(pg);
    });
    // The data needs no CRC on the way: peer sessions are signed, and the GMAC covers it.
    const enc = encodeRepOp({ pg: pg.key, interval: pg.interval, entry, ops });
    for (const osd of pg.acting) {
      if (osd === this.c.id) continue;
      this.c.stats.repops++;
      this.c.peerRequest(osd, MsgType.MSG_OSD_REPOP, enc.payload, enc.data, (err) => done(osd, err));
    }
  }

  /** Adds a log entry (and trims) to `ops` and to the in-memory log. */
  private appendLog(pg: Pg, entry: PgLogEntry, ops: TxnOp[]): void {
    ops.push({ op: 'pgput', pg: pg.key, key: logKey(entry.version), value: encodeLogEntry(entry) });
    const complete = compareVersion(pg.info.lastComplete, pg.info.lastUpdate) === 0;
    pg.log.add(entry);
    pg.info.lastUpdate = entry.version;
    if (complete) pg.info.lastComplete = entry.version;
    // Trim to PG_LOG_MIN while clean, PG_LOG_MAX while degraded; replicas mirror the removals.
    const bound = (activeState(pg) & PgState.CLEAN) !== 0 ? this.logBounds.min : this.logBounds.max;
    let trimmed = 0;
    while (pg.log.entries.length > bound && trimmed < PG_LOG_TRIM_PER_WRITE) {
      const old = pg.log.trimOne()!;
      ops.push({ op: 'pgrm', pg: pg.key, key: logKey(old.version) });
      trimmed++;
    }
    if (trimmed > 0) {
      pg.info.logTail = pg.log.tail;
      ops.push({ op: 'pgput', pg: pg.key, key: 'tail', value: encodeInfo({ ...emptyInfo(), logTail: pg.log.tail }) });
    }
  }

  private reply(op: ClientOp, result: number, version: EVersion, outs: OsdOpOut[], data: Uint8Array[]): void {
    if (op.replied) return;
    op.replied = true;
    const payload = encodeOsdOpReply({ result, version, mapEpoch: this.c.map()?.epoch ?? 0, outs });
    op.s.reply(op.req, data.length === 0 ? { type: MsgType.MSG_OSD_OP, payload, epoch: this.c.map()?.epoch ?? 0 } : { type: MsgType.MSG_OSD_OP, payload, data, epoch: this.c.map()?.epoch ?? 0 });
  }

  replyErr(op: ClientOp, code: ClusterErrorCode): void {
    this.reply(op, clusterErrorToWire(code), ZERO_VERSION, [], []);
  }

  private replyBlocklisted(op: ClientOp): void {
    if (!op.replied) this.c.log.info({ client: op.q.reqId.client, obj: op.q.objectName, epoch: this.c.map()?.epoch }, 'op of a blocklisted client refused');
    this.reply(op, OSD_RESULT_BLOCKLISTED, ZERO_VERSION, [], []);
  }

  /** An op naming another client instance than its session's: CLU_ERR_PERM, logged once. */
  private refuseMismatch(req: InboundMessage, s: Session, claimed: string, bound: string | null): void {
    if (!this.mismatchLogged.has(s)) {
      this.mismatchLogged.add(s);
      this.c.log.warn({ claimed, session: bound, peer: s.peer?.entity, remote: s.remoteAddress }, 'client op names another instance than its session; refused');
    }
    s.replyError(req, new ClusterError('CLU_ERR_PERM', `instance-mismatch: op of ${claimed} on a session of ${bound ?? 'no client instance'}`, {
      details: { reason: 'instance-mismatch' },
    }));
  }

  /** `<entity>/<instance>` the session authenticated (null: no client instance), built once per session. */
  private boundInstance(s: Session): string | null {
    let b = this.boundBySession.get(s);
    if (b === undefined) {
      const peer = s.peer;
      b = peer === null || peer.instance === null ? null : `${peer.entity}/${peer.instance}`;
      // Why cached: a per-op template string (and its flattening at the compare) on the hot path.
      if (peer !== null) this.boundBySession.set(s, b);
    }
    return b;
  }

  private trackSession(instance: string, s: Session): void {
    let set = this.instanceSessions.get(instance);
    if (set === undefined) { set = new Set(); this.instanceSessions.set(instance, set); }
    if (set.has(s)) return;
    set.add(s);
    s.once('closed', () => {
      set.delete(s);
      if (set.size === 0 && this.instanceSessions.get(instance) === set) this.instanceSessions.delete(instance);
    });
  }

  /**
   * A new map (called from `retryMapWaits`, which OsdCore runs on every map): when the
   * blocklist changed, answers the queued ops of listed instances and closes their sessions.
   */
  private onNewMap(): void {
    const map = this.c.map();
    if (map === undefined || map.blocklist === this.enforcedBlocklist) return;
    this.enforcedBlocklist = map.blocklist;
    if (map.blocklist.size === 0) return;
    const listed = (op: ClientOp): boolean => isBlocklisted(map, op.q.reqId.client);
    for (const pg of this.c.pgs.values()) {
      for (const op of pg.queue) if (listed(op)) this.replyBlocklisted(op);
      for (const list of pg.objWait.values()) for (const op of list) if (listed(op)) this.replyBlocklisted(op);
    }
    for (const [instance, sessions] of [...this.instanceSessions]) {
      if (!isBlocklisted(map, instance)) continue;
      this.c.log.warn({ client: instance, sessions: sessions.size, epoch: map.epoch }, 'client blocklisted; closing its sessions');
      this.instanceSessions.delete(instance);
      for (const s of [...sessions]) s.close();
    }
  }

  /** In-flight client writes of a dead interval go back to the queue; dedup answers them later. */
  requeueInflight(pg: Pg): void {
    const ops: ClientOp[] = [];
    for (const w of pg.inflight.values()) if (!w.op.replied) ops.push(w.op);
    pg.inflight.clear();
    pg.inflightByObj.clear();
    const waiting: ClientOp[] = [];
    for (const list of pg.objWait.values()) waiting.push(...list);
    pg.objWait.clear();
    pg.queue.unshift(...ops, ...waiting);
  }

  /** Not primary any more: queued client ops go back to the client (resend to the new primary). */
  refuseQueued(pg: Pg): void {
    for (const op of pg.queue.splice(0)) this.replyErr(op, 'CLU_ERR_WRONG_TARGET');
    for (const list of pg.objWait.values()) for (const op of list) this.replyErr(op, 'CLU_ERR_WRONG_TARGET');
    pg.objWait.clear();
  }

  /** Ops that waited for a newer map (or whose wait expired) are dispatched again. */
  retryMapWaits(): void {
    this.onNewMap();
    const waiting = this.mapWait.splice(0);
    for (const op of waiting) this.dispatchOp(op);
  }

  /** Periodic: queued ops older than OP_QUEUE_TIMEOUT_MS are answered UNAVAILABLE. */
  expireQueued(): void {
    const now = this.c.env.nowMs();
    const expired = (op: ClientOp): boolean => {
      if (op.replied) return true;
      if (now - op.arrivedMs < OP_QUEUE_TIMEOUT_MS) return false;
      this.replyErr(op, 'CLU_ERR_UNAVAILABLE');
      return true;
    };
    for (const pg of this.c.pgs.values()) {
      if (pg.queue.length > 0) { const keep = pg.queue.filter((op) => !expired(op)); pg.queue.length = 0; pg.queue.push(...keep); }
      for (const [name, list] of pg.objWait) {
        const keep = list.filter((op) => !expired(op));
        if (keep.length === 0) pg.objWait.delete(name); else pg.objWait.set(name, keep);
      }
    }
  }
}

function attrMatches(have: Uint8Array | undefined, want: Uint8Array, mode: number): boolean {
  if ((mode & ASSERT_F_ABSENT) !== 0) return have === undefined;
  if (have === undefined || have.length !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (have[i] !== want[i]) return false;
  return true;
}
