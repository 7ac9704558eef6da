/**
 * Measurements of placement quality, shared by `scripts/placement-report.ts` (prints the table
 * in docs/placement.md) and the placement tests (assert bounds). Pure.
 *
 * - Uniformity: replicas per OSD against the weight-proportional expectation.
 * - Movement: replica slots whose OSD changed between two maps, against the ideal — the
 *   weight share of the added/removed OSD.
 */
import type { OsdId } from '../common/ids.js';
import type { ClusterMap, PoolInfo } from '../map/cluster-map.js';
import { pgSeed } from '../common/ids.js';
import { mapAllPgs, pgPlacementSeed, pgToOsds } from './placement.js';
import { crushRawSet } from './crush-firstn.js';

/** Replica-count spread over the `in` OSDs. Percentages are of the expected count. */
export interface Uniformity {
  readonly osdCount: number;
  readonly pgCount: number;
  readonly replicaCount: number;
  /** Expected replicas on a weight-1.0 OSD. */
  readonly meanPerOsd: number;
  /** max over OSDs of (count - expected) / expected, in percent (≥ 0: the most loaded). */
  readonly maxOverPct: number;
  /** max over OSDs of (expected - count) / expected, in percent (the least loaded). */
  readonly maxUnderPct: number;
  /** Standard deviation of count/expected, in percent. */
  readonly stddevPct: number;
  /** PGs that got fewer than `size` OSDs (retries exhausted). */
  readonly shortPgs: number;
}

/** Measures how evenly `pool`'s replicas spread over the `in` OSDs of `map`. */
export function measureUniformity(map: ClusterMap, pool: PoolInfo): Uniformity {
  const counts = new Map<OsdId, number>();
  let totalWeight = 0;
  for (const o of map.osds.values()) {
    if (!o.in || o.weight === 0) continue;
    counts.set(o.id, 0);
    totalWeight += o.weight;
  }
  let replicaCount = 0;
  let shortPgs = 0;
  for (const m of mapAllPgs(map, pool)) {
    if (m.raw.length < pool.size) shortPgs++;
    for (const id of m.raw) {
      counts.set(id, (counts.get(id) ?? 0) + 1);
      replicaCount++;
    }
  }
  let maxOver = 0;
  let maxUnder = 0;
  let sumSq = 0;
  for (const [id, n] of counts) {
    const w = map.osds.get(id)?.weight ?? 0;
    const expected = (replicaCount * w) / totalWeight;
    const rel = n / expected - 1;
    maxOver = Math.max(maxOver, rel);
    maxUnder = Math.max(maxUnder, -rel);
    sumSq += rel * rel;
  }
  const osdCount = counts.size;
  return {
    osdCount,
    pgCount: pool.pgNum,
    replicaCount,
    meanPerOsd: replicaCount / Math.max(1, osdCount),
    maxOverPct: 100 * maxOver,
    maxUnderPct: 100 * maxUnder,
    stddevPct: 100 * Math.sqrt(sumSq / Math.max(1, osdCount)),
    shortPgs,
  };
}

/** How much data a map change moved. */
export interface Movement {
  readonly replicaCount: number;
  /** Replica slots (pg, osd) present after but not before: data that must be copied. */
  readonly movedReplicas: number;
  readonly movedFraction: number;
  /** PGs whose OSD set changed at all. */
  readonly changedPgs: number;
  /**
   * Moved replicas beyond the one per PG that the changed OSD forces (a replica landing on it,
   * or leaving it). 0 means minimal movement.
   */
  readonly collateralReplicas: number;
  /**
   * Replicas the changed OSD held before or after (whichever is larger): the true lower bound
   * on movement for this layout, whereas 1/N is only the bound for a perfectly even layout.
   */
  readonly changedOsdReplicas: number;
}

/** Raw set of one PG; defaults to the authoritative `pgToOsds`. */
export type RawMapper = (map: ClusterMap, pool: PoolInfo, seed: number) => readonly OsdId[];

const defaultMapper: RawMapper = (map, pool, seed) => pgToOsds(map, { pool: pool.id, seed: pgSeed(seed) }).raw;

/** Compares the raw sets of every PG of `pool` between `before` and `after`. */
export function measureMovement(
  before: ClusterMap,
  after: ClusterMap,
  pool: PoolInfo,
  options: { changedOsd?: number; mapper?: RawMapper } = {},
): Movement {
  const mapper = options.mapper ?? defaultMapper;
  let moved = 0;
  let total = 0;
  let changedPgs = 0;
  let collateral = 0;
  let onChangedBefore = 0;
  let onChangedAfter = 0;
  for (let seed = 0; seed < pool.pgNum; seed++) {
    const old = new Set(mapper(before, pool, seed));
    const now = mapper(after, pool, seed);
    const added = now.filter((id) => !old.has(id));
    const nowSet = new Set(now);
    const removed = [...old].filter((id) => !nowSet.has(id));
    total += now.length;
    moved += added.length;
    if (added.length > 0 || removed.length > 0) changedPgs++;
    const forced = options.changedOsd !== undefined && (added.includes(options.changedOsd as OsdId) || removed.includes(options.changedOsd as OsdId)) ? 1 : 0;
    collateral += Math.max(0, added.length - forced);
    if (old.has(options.changedOsd as OsdId)) onChangedBefore++;
    if (nowSet.has(options.changedOsd as OsdId)) onChangedAfter++;
  }
  return { replicaCount: total, movedReplicas: moved, movedFraction: moved / Math.max(1, total), changedPgs, collateralReplicas: collateral, changedOsdReplicas: Math.max(onChangedBefore, onChangedAfter) };
}

/** The CRUSH-descent baseline as a `RawMapper` (for comparison tables and tests). */
export const crushBaselineMapper: RawMapper = (map, pool, seed) => crushRawSet(map, pool, pgPlacementSeed({ pool: pool.id, seed: pgSeed(seed) }));
