/**
 * PG split (`pgNum` growth) — the pure part shared by the monitor and the OSD
 * (docs/replication.md §4 "PG split", docs/cluster-map.md).
 *
 * With Ceph's stable_mod, growing a pool from `oldPgNum` to `newPgNum` PGs moves every object
 * of a new seed c (oldPgNum ≤ c < newPgNum) out of exactly one old seed, its parent
 * `stableMod(c, oldPgNum)` (Ceph's `pg_t::get_ancestor`); no object moves between old seeds.
 *
 *   pool set pgNum N ─► monitor: ONE incremental = pool-set + for every child c, the parent's
 *     PG-history sets (or the parent's acting set when it has no history) as c's history
 *   OSD, on the first map with the larger pgNum: each local parent PG hands the log entries of
 *     the child's objects (and a copy of its info) to the child PG, then every PG of the pool
 *     starts a new interval (osd/pg-split.ts)
 *
 * Why the history copy: the child's objects are on the parent's OSDs only; the child's primary
 * may be elsewhere. With the parent's sets as the child's history, the prior-set rule queries
 * the parent's OSDs (or waits for them), their split-off log is authoritative, and recovery or
 * backfill copies the objects to the child's acting set.
 */
import { stableMod } from '../common/hash.js';
import { pgIdToString, pgSeed } from '../common/ids.js';
import type { PoolId } from '../common/ids.js';
import type { ClusterMap } from '../map/cluster-map.js';
import type { MapOp } from '../map/incremental.js';
import { pgToOsds } from './placement.js';

/** The seed of `seed`'s ancestor when the pool had `oldPgNum` PGs. */
export function splitParent(seed: number, oldPgNum: number): number {
  return stableMod(seed, oldPgNum);
}

/** Seeds in [oldPgNum, newPgNum) whose objects came from `parent` (empty when nothing grew). */
export function splitChildren(parent: number, oldPgNum: number, newPgNum: number): number[] {
  const out: number[] = [];
  for (let c = oldPgNum; c < newPgNum; c++) if (splitParent(c, oldPgNum) === parent) out.push(c);
  return out;
}

/**
 * The PG-history ops that give every child of a pgNum growth of `pool` (to `newPgNum`) its
 * parent's history as of `map` (the map the growth is applied on): the parent's sets, or its
 * acting set when it has none (a PG that never recorded one; nothing when unmapped).
 * To be applied in the same incremental, after the `pool-set`.
 */
export function splitHistoryOps(map: ClusterMap, pool: PoolId, newPgNum: number): MapOp[] {
  const p = map.pools.get(pool);
  if (p === undefined || newPgNum <= p.pgNum) return [];
  const ops: MapOp[] = [];
  for (let c = p.pgNum; c < newPgNum; c++) {
    const parent = { pool, seed: pgSeed(splitParent(c, p.pgNum)) };
    const sets = map.pgHistory.get(pgIdToString(parent)) ?? [pgToOsds(map, parent).acting];
    for (const set of sets) if (set.length > 0) ops.push({ op: 'pg-history-add', pg: { pool, seed: pgSeed(c) }, set: [...set] });
  }
  return ops;
}
