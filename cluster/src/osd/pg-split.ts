/**
 * PG split on the OSD (docs/replication.md §4 "PG split"): when a map grows a pool's pgNum,
 * every local PG of the pool hands each of its children (placement/pg-split.ts) the log
 * entries of the child's objects and a copy of its info, before the map is applied to the PGs.
 *
 *   parent p (log split for pgNum old)                         child c (new record)
 *     entries of objects that map to c under the new pgNum ──►   those entries, same tail
 *     info ─────────────────────────────────────────────────►   info copy (complete only as far
 *                                                                 as p was; backfilling if p was)
 *
 * The objects themselves do not move: the store keeps objects per pool, a PG's objects are
 * those whose hash maps to its seed. So a parent's OSD answers the child's peering query with
 * the child's part of the log and holds the child's objects; the child's history (copied by
 * the monitor) makes the child's primary query it.
 *
 * Invariants:
 * - Each child is written in ONE transaction that also removes its entries from the parent
 *   (≤ 2 × PG_LOG_MAX + 3 ops), and the parent's new pgNum record is written last: after a
 *   crash in between, the restart splits again and skips the children already in the store.
 * - Runs synchronously in `handleMap`, before any PG sees the map, and before any peer
 *   message of the new interval is handled (replica.ts waits for the map of the sender's
 *   interval), so no query or activation ever sees an unsplit parent or a missing child.
 */
import { stableMod } from '../common/hash.js';
import type { ClusterMap } from '../map/cluster-map.js';
import { INFO_KEY, emptyInfo, encodeInfo, encodeLogEntry, logKey } from '../pg/pg-log.js';
import type { PgInfo } from '../pg/pg-log.js';
import { objectHash } from '../placement/placement.js';
import { splitChildren } from '../placement/pg-split.js';
import { Transaction } from '../store/types.js';
import type { OsdContext } from './osd-context.js';
import { compareVersion } from './osd-protocol.js';
import type { EVersion } from './osd-protocol.js';
import { PGNUM_KEY, Pg, encodePgNum, pgKeyOf } from './pg.js';

export type SplitContext = Pick<OsdContext, 'log' | 'store' | 'pgs'>;

/** Splits every local PG whose pool grew in `map`; records the pgNum of PGs that had none. */
export function splitLocalPgs(c: SplitContext, map: ClusterMap): void {
  for (const pg of [...c.pgs.values()]) {
    const pool = map.pools.get(pg.pool);
    if (pool === undefined) continue;
    // A PG record from before pgNum was persisted: assume it matches this map.
    if (pg.pgNum === 0) { pg.pgNum = pool.pgNum; continue; }
    if (pg.pgNum < pool.pgNum) splitPg(c, pg, pool.pgNum);
  }
}

/** After a split: `info` for a log whose head is now `head` (complete as far as before). */
function splitInfo(info: PgInfo, head: EVersion): PgInfo {
  const complete = compareVersion(info.lastComplete, info.lastUpdate) >= 0 && !info.backfilling;
  // Objects newer than lastComplete may be missing; entries that left the log change nothing
  // about the ones that stayed, so only clamp to the new head.
  const lastComplete = complete || compareVersion(info.lastComplete, head) > 0 ? head : info.lastComplete;
  return { ...info, lastUpdate: head, lastComplete };
}

function splitPg(c: SplitContext, parent: Pg, newPgNum: number): void {
  const oldPgNum = parent.pgNum;
  const seedOf = (object: string): number => stableMod(objectHash(object), newPgNum);
  const moved: Record<string, number> = {};
  for (const seed of splitChildren(parent.seed, oldPgNum, newPgNum)) {
    const key = pgKeyOf(parent.pool, seed);
    if (c.pgs.has(key)) continue; // split before a restart: its entries already left the parent
    const entries = parent.log.entries.filter((e) => seedOf(e.object) === seed);
    const child = new Pg(key, parent.pool, seed);
    child.pgNum = newPgNum;
    child.log.reset(entries, parent.log.tail);
    child.info = splitInfo({ ...parent.info, logTail: parent.log.tail }, child.log.head);
    child.nextSeq = parent.nextSeq;
    child.seenInterval = parent.seenInterval;
    const txn = new Transaction();
    for (const e of entries) {
      const k = logKey(e.version);
      txn.pgRemove(parent.key, k);
      txn.pgPut(key, k, encodeLogEntry(e));
    }
    txn.pgPut(key, INFO_KEY, encodeInfo(child.info));
    txn.pgPut(key, 'tail', encodeInfo({ ...emptyInfo(), logTail: child.log.tail }));
    txn.pgPut(key, PGNUM_KEY, encodePgNum(newPgNum));
    c.pgs.set(key, child);
    moved[key] = entries.length;
    c.store.submit(txn, (err) => { if (err !== null) c.log.error({ pg: key, parent: parent.key, err }, 'pg split: writing the child failed'); });
  }
  const kept = parent.log.entries.filter((e) => seedOf(e.object) === parent.seed);
  parent.log.reset(kept, parent.log.tail);
  parent.info = splitInfo(parent.info, parent.log.head);
  parent.pgNum = newPgNum;
  const txn = new Transaction().pgPut(parent.key, INFO_KEY, encodeInfo(parent.info)).pgPut(parent.key, PGNUM_KEY, encodePgNum(newPgNum));
  c.store.submit(txn, (err) => { if (err !== null) c.log.error({ pg: parent.key, err }, 'pg split: writing the parent failed'); });
  c.log.info({ pg: parent.key, pgNum: oldPgNum, newPgNum, children: moved, kept: kept.length }, 'pg split');
}
