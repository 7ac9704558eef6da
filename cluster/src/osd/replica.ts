/**
 * The replica side of the OSD data path: what a primary's peer messages do on this OSD
 * (query, activate, sub-op REPOP, push, pull / local read, scan). docs/replication.md §1, §4, §5.
 *
 * Owns: creating a PG record on first contact (a stray answers queries too) and each PG's
 * `seenInterval`.
 * Invariants it relies on:
 * - A message of an older interval than one already seen for the PG is refused (EPOCH_STALE):
 *   a deposed primary's late sub-op must not apply after the new primary peered.
 * - A sub-op or push for an object that our map's pgNum puts in another PG is refused
 *   (EPOCH_STALE): its sender's map predates a split (`movedOut`).
 * - Sub-ops arrive in version order (the primary's session is FIFO) and are applied in the same
 *   store transaction the primary built; the reply goes out only after the local commit.
 * - A query or activation is handled only once this OSD's map has reached the sender's interval
 *   (it waits up to MAP_WAIT_MS): that map may split the PG (pg-split.ts), and an unsplit parent
 *   or a not-yet-created child must never answer for the new interval.
 * - The in-memory log mirrors the primary's: the entry appended, and exactly the entries the
 *   primary's transaction removes trimmed (its bound depends on whether the PG is clean, which
 *   only the primary knows). The info record is persisted at activation only (pg.ts `loadPg`
 *   recomputes the rest).
 */
import { giveBulk } from '../common/bulk-pool.js';
import { ClusterError } from '../common/errors.js';
import type { ObjectName, PoolId } from '../common/ids.js';
import type { InboundMessage, Session } from '../msg/session.js';
import { INFO_KEY, encodeInfo, isLogKey, logKey } from '../pg/pg-log.js';
import { Transaction } from '../store/types.js';
import { installCopy, localScan, readCopy } from './object-copy.js';
import type { OsdContext } from './osd-context.js';
import { compareVersion } from './osd-protocol.js';
import {
  decodeObjectRef, decodePgActivate, decodePgQuery, decodePush, decodeRepOp, decodePgScan,
  encodeObjectCopy, encodePgQueryReply, encodeScanReply, joinChunks,
} from './osd-peer-protocol.js';
import { Pg, errOf, parsePgKey, pgKeyOf } from './pg.js';
import { objectToPg } from '../placement/placement.js';

/** What the replica side uses from the rest of the OSD. */
export type ReplicaContext = Pick<OsdContext, 'env' | 'log' | 'store' | 'stats' | 'pgs' | 'map' | 'adoptLog' | 'stepDown'>;

/** How long a peer message waits for the map of its interval before it is refused. */
const MAP_WAIT_MS = 5000;

export class Replica {
  /** Peer messages waiting for a map at least as new as `epoch`. */
  private mapWaits: { epoch: number; run: () => void; fail: () => void; untilMs: number }[] = [];
  private mapWaitTimer = false;

  constructor(private readonly c: ReplicaContext) {}

  /** A new map: runs the peer messages it was waited for (osd-core.ts `handleMap`). */
  mapArrived(epoch: number): void {
    if (this.mapWaits.length === 0) return;
    const ready = this.mapWaits.filter((w) => w.epoch <= epoch);
    this.mapWaits = this.mapWaits.filter((w) => w.epoch > epoch);
    for (const w of ready) w.run();
  }

  /**
   * Runs `run` once our map has reached `epoch` (at once when it has); `fail` after
   * MAP_WAIT_MS without it (the sender retries or treats us as not answering).
   */
  private afterMap(epoch: number, run: () => void, fail: () => void): void {
    if ((this.c.map()?.epoch ?? 0) >= epoch) { run(); return; }
    this.mapWaits.push({ epoch, run, fail, untilMs: this.c.env.nowMs() + MAP_WAIT_MS });
    this.c.log.debug({ epoch, mapEpoch: this.c.map()?.epoch }, 'peer message waits for our map to reach its interval');
    if (this.mapWaitTimer) return;
    this.mapWaitTimer = true;
    const expire = (): void => {
      const now = this.c.env.nowMs();
      const late = this.mapWaits.filter((w) => w.untilMs <= now);
      this.mapWaits = this.mapWaits.filter((w) => w.untilMs > now);
      for (const w of late) w.fail();
      if (this.mapWaits.length > 0) this.c.env.setTimeout(expire, 500); else this.mapWaitTimer = false;
    };
    this.c.env.setTimeout(expire, 500);
  }

  private replicaPg(key: string, interval: number): Pg | ClusterError {
    let pg = this.c.pgs.get(key);
    if (pg === undefined) {
      const k = parsePgKey(key);
      if (k === undefined) return errOf('CLU_ERR_INVALID', `pg ${key}`);
      pg = new Pg(key, k.pool, k.seed);
      pg.pgNum = this.c.map()?.pools.get(k.pool)?.pgNum ?? 0;
      this.c.pgs.set(key, pg);
    }
    if (interval < pg.seenInterval) return errOf('CLU_ERR_EPOCH_STALE', `pg ${key} interval ${interval} < ${pg.seenInterval}`);
    pg.seenInterval = interval;
    // Why: our map still makes us primary of an older interval; a write now would take a
    // version older than the log the newer primary is about to hand us (sim seed 0xfc40ecc7b210e577).
    if (interval > pg.interval && pg.role === 'primary') this.c.stepDown(pg);
    return pg;
  }

  /**
   * EPOCH_STALE when `object` does not map to `pg` under our map's pgNum: the sender built the
   * sub-op or push on a map from before a split. Why: applied to the parent, it would put a
   * child's object (with an older version) into the parent's log, the parent's next peering
   * would recover it from that log and overwrite the child's newer copy (the store keeps objects
   * per pool, not per PG) — sim seed 0x33e7e92f0b82100a: a REPOP held up by a partition reached
   * the replica just after its split map and before any message of the parent's new interval.
   */
  private movedOut(pg: Pg, object: string): ClusterError | null {
    const pool = this.c.map()?.pools.get(pg.pool);
    if (pool === undefined) return null;
    const owner = objectToPg(pool, object).seed as number;
    if (owner === pg.seed) return null;
    return errOf('CLU_ERR_EPOCH_STALE', `pg ${pg.key}: object ${object} is in pg ${pgKeyOf(pg.pool, owner)} since pgNum ${pool.pgNum}`);
  }

  onQuery(req: InboundMessage, s: Session): void {
    const q = decodePgQuery(req.payload);
    this.afterMap(q.interval, () => this.query(q, req, s), () => s.replyError(req, errOf('CLU_ERR_UNAVAILABLE', `pg ${q.pg}: no map of epoch ${q.interval} yet`)));
  }

  private query(q: ReturnType<typeof decodePgQuery>, req: InboundMessage, s: Session): void {
    const pg = this.replicaPg(q.pg, q.interval);
    if (pg instanceof ClusterError) { s.replyError(req, pg); return; }
    const hasInfo = pg.log.entries.length > 0 || pg.info.sameIntervalSince > 0;
    const info = { ...pg.info, lastUpdate: pg.log.head, logTail: pg.log.tail };
    s.reply(req, { type: req.type, payload: encodePgQueryReply({ hasInfo, info, tail: pg.log.tail, entries: pg.log.entries }) });
  }

  onActivate(req: InboundMessage, s: Session): void {
    const a = decodePgActivate(req.payload);
    this.afterMap(a.interval, () => this.activate(a, req, s), () => s.replyError(req, errOf('CLU_ERR_UNAVAILABLE', `pg ${a.pg}: no map of epoch ${a.interval} yet`)));
  }

  private activate(a: ReturnType<typeof decodePgActivate>, req: InboundMessage, s: Session): void {
    const pg = this.replicaPg(a.pg, a.interval);
    if (pg instanceof ClusterError) { s.replyError(req, pg); return; }
    const done = (err: ClusterError | null): void => { if (err !== null) s.replyError(req, err); else s.reply(req, { type: req.type }); };
    if (a.mode === 2) {
      pg.info = { ...pg.info, lastComplete: pg.log.head, backfilling: false };
      this.c.store.submit(new Transaction().pgPut(pg.key, INFO_KEY, encodeInfo(pg.info)), done);
      return;
    }
    this.c.adoptLog(pg, a.info, a.entries, a.tail, done);
  }

  onRepOp(req: InboundMessage, s: Session): void {
    const m = decodeRepOp(req.payload, req.data);
    const pg = this.replicaPg(m.pg, m.interval);
    if (pg instanceof ClusterError) { s.replyError(req, pg); return; }
    const moved = this.movedOut(pg, m.entry.object);
    if (moved !== null) { s.replyError(req, moved); return; }
    const txn = new Transaction();
    txn.ops.push(...m.ops);
    txn.handOff = true; // views of the received frame, never modified
    if (compareVersion(m.entry.version, pg.log.head) > 0) {
      const complete = compareVersion(pg.info.lastComplete, pg.info.lastUpdate) === 0;
      pg.log.add(m.entry);
      pg.info.lastUpdate = m.entry.version;
      if (complete) pg.info.lastComplete = m.entry.version;
    }
    // The in-memory log mirrors exactly the entries the primary's transaction removes.
    let trimTo: string | undefined;
    for (const op of m.ops) if (op.op === 'pgrm' && op.pg === pg.key && isLogKey(op.key) && (trimTo === undefined || op.key > trimTo)) trimTo = op.key;
    if (trimTo !== undefined) {
      while (pg.log.entries.length > 0 && logKey(pg.log.entries[0]!.version) <= trimTo) pg.log.trimOne();
      pg.info.logTail = pg.log.tail;
    }
    this.c.store.submit(txn, (err) => {
      if (err !== null) { s.replyError(req, err); return; }
      s.reply(req, { type: req.type });
      // Committed: the store copied the data (journal record, resident blocks) or wrote it to the
      // data file (direct writes complete before the commit), and keeps no view of it.
      for (const d of req.data) giveBulk(d);
    });
  }

  onPush(req: InboundMessage, s: Session): void {
    const m = decodePush(req.payload);
    const pg = this.replicaPg(m.pg, m.interval);
    if (pg instanceof ClusterError) { s.replyError(req, pg); return; }
    const moved = this.movedOut(pg, m.copy.name);
    if (moved !== null) { s.replyError(req, moved); return; }
    const data = joinChunks(req.data);
    this.c.stats.pushesReceived++;
    this.c.stats.pushBytesReceived += data.length;
    installCopy(this.c.store, m.copy, data, (err) => { if (err !== null) s.replyError(req, err); else s.reply(req, { type: req.type }); });
  }

  onLocalRead(req: InboundMessage, s: Session): void {
    const ref = decodeObjectRef(req.payload);
    readCopy(this.c.store, this.c.env, { pool: ref.pool as PoolId, name: ref.name as ObjectName }, (err, copy, data) => {
      if (err !== null || copy === undefined) { s.replyError(req, err ?? errOf('CLU_ERR_IO', 'read')); return; }
      s.reply(req, data !== undefined && data.length > 0 ? { type: req.type, payload: encodeObjectCopy(copy), data: [data] } : { type: req.type, payload: encodeObjectCopy(copy) });
    });
  }

  onScan(req: InboundMessage, s: Session): void {
    const m = decodePgScan(req.payload);
    localScan(this.c.store, m.pool, m.seed, m.pgNum, m.withCrc, (err, list) => {
      if (err !== null) s.replyError(req, err); else s.reply(req, { type: req.type, payload: encodeScanReply(list) });
    });
  }
}
