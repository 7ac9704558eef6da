/**
 * The upmap balancer (Ceph's `OSDMap::calc_pg_upmaps`, our own code): hashing alone leaves
 * OSDs ±√(replicas per OSD) from their share (docs/placement.md: 33 % over at 64 OSDs with
 * 1024 PGs); the balancer writes `pg_upmap_items` exceptions into the map that move single
 * replicas from the fullest OSDs to the emptiest, until every OSD is within `maxDeviation`
 * replicas of its weight-proportional target.
 *
 * Pure and deterministic: a map in, map ops out (one `pg-upmap-items-set`/`-remove` per
 * changed PG). The monitor applies them as one epoch; clients and OSDs see the effect through
 * `pgToOsds`, which applies the items.
 *
 * Per pool (pools hold different data, so each pool is balanced on its own, as Ceph's
 * upmap mode does), in ascending pool id:
 *  1. Cleanup: pairs that no longer take effect (an OSD out or at weight 0, a `from` no longer
 *     in the placement, a host conflict) are dropped. Dropping a pair that does not apply
 *     changes no mapping, so cleanup moves no data.
 *  2. Greedy moves, one PG-replica each: the most over-full OSD (count − target, ties by
 *     lower id) first. For it, first try to UNDO an existing exception (a PG where it holds a
 *     replica only because of a pair `y → it`: reverting to `y` removes the pair); then, for
 *     the most under-full OSDs in order, a PG on it whose replica can move there, preferring
 *     PGs where the move rewrites an existing pair over PGs that need a new one. A move is
 *     only taken when it strictly lowers Σ(count − target)² (source − destination > 1 replica),
 *     so the loop cannot cycle; it stops at `maxChanges` moves or when no OSD deviates by more
 *     than `maxDeviation`, or when no valid move is left (e.g. a host rule makes the targets
 *     unreachable).
 *  3. Validity by construction: a candidate PG's new item list is derived from its placement
 *     and the wanted set, then run through `applyUpmapItems` — the function every client
 *     uses — and kept only if it yields exactly the wanted set with every pair taking effect.
 *     So the balancer can never produce a mapping that breaks the failure domain, and never
 *     writes a dead pair.
 *
 * Targets: replicas of the pool × weight / Σ weights over OSDs that are in with weight > 0
 * (up or not: a down-but-in OSD keeps its data and its share).
 */
import type { OsdId, PgId, PoolId } from '../common/ids.js';
import { pgIdToString, pgSeed } from '../common/ids.js';
import { UPMAP_ITEMS_MAX } from '../map/cluster-map.js';
import type { ClusterMap, PoolInfo, UpmapItem } from '../map/cluster-map.js';
import type { MapOp } from '../map/incremental.js';
import { applyUpmapItems, pgPlacement, pgToOsds } from './placement.js';

/** Options of a balancer run. */
export interface BalancerOptions {
  /** Done when every OSD is within this many replicas of its target (Ceph upmap_max_deviation). Default 1. */
  readonly maxDeviation?: number;
  /** Most replica moves per run, over all pools (cleanup is not counted). Default 1000. */
  readonly maxChanges?: number;
  /** Only these pools; default every pool. */
  readonly pools?: readonly PoolId[];
  /**
   * Where the data is now: a map whose PG mappings are what the OSDs hold (in the monitor,
   * the last map the balancer left; Ceph only balances clean PGs for the same reason). When
   * given, each move is chosen to add as little data movement relative to it as possible:
   * send a replica back where it was (−1), or redirect a replica that is moving anyway (0),
   * before moving one that had settled (+1). Without it every move counts +1.
   */
  readonly reference?: ClusterMap;
}

export const BALANCER_DEFAULT_MAX_DEVIATION = 1;
export const BALANCER_DEFAULT_MAX_CHANGES = 1000;

/** Per-OSD replica count of one pool against its target. */
export interface OsdBalance {
  readonly osd: OsdId;
  readonly count: number;
  /** Weight-proportional expected count. */
  readonly target: number;
}

/** One pool's balance. */
export interface PoolBalance {
  readonly pool: PoolId;
  readonly name: string;
  readonly osds: readonly OsdBalance[];
  /** max |count − target| in replicas. */
  readonly maxDeviation: number;
  /** max |count − target| / target, percent. */
  readonly maxDeviationPct: number;
  /** PGs of the pool that carry upmap items. */
  readonly upmappedPgs: number;
}

/** What a run decided. */
export interface BalancerResult {
  /** Map ops in PG order; empty when nothing changes. */
  readonly ops: MapOp[];
  /** Replica moves (each moves one PG replica's data). */
  readonly moves: number;
  /** PGs whose dead pairs were dropped (no data moves). */
  readonly cleaned: number;
  /** Balance of every considered pool before and after the ops. */
  readonly before: readonly PoolBalance[];
  readonly after: readonly PoolBalance[];
}

/** Working state of one PG. */
interface PgState {
  readonly pg: PgId;
  readonly placed: readonly OsdId[];
  items: readonly UpmapItem[];
  raw: readonly OsdId[];
  /** Items as they are in the map (to know whether an op is needed). */
  readonly original: readonly UpmapItem[];
  /** The PG's OSDs in the reference map (where its data is), if one was given. */
  readonly ref: ReadonlySet<OsdId> | undefined;
}

/** OSDs that take a share: in, weight > 0. Sorted by id. */
function eligibleOsds(map: ClusterMap): { id: OsdId; weight: number }[] {
  return [...map.osds.values()].filter((o) => o.in && o.weight > 0).sort((a, b) => a.id - b.id).map((o) => ({ id: o.id, weight: o.weight }));
}

function poolPgs(map: ClusterMap, pool: PoolInfo, reference?: ClusterMap): PgState[] {
  const out: PgState[] = [];
  for (let s = 0; s < pool.pgNum; s++) {
    const pg: PgId = { pool: pool.id, seed: pgSeed(s) };
    const placed = pgPlacement(map, pg);
    const items = map.pgUpmapItems.get(pgIdToString(pg)) ?? [];
    const ref = reference === undefined ? undefined : new Set(pgToOsds(reference, pg).raw);
    out.push({ pg, placed, items, original: items, raw: applyUpmapItems(map, pool, placed, items), ref });
  }
  return out;
}

/** Data movement a src → dst move adds relative to the reference (see BalancerOptions). */
function movementDelta(p: PgState, src: OsdId, dst: OsdId): number {
  if (p.ref === undefined) return 1;
  return (p.ref.has(dst) ? 0 : 1) - (p.ref.has(src) ? 0 : 1);
}

function targetsOf(map: ClusterMap, pgs: readonly PgState[]): Map<OsdId, number> {
  const eligible = eligibleOsds(map);
  let total = 0;
  for (const p of pgs) total += p.raw.length;
  let weight = 0;
  for (const o of eligible) weight += o.weight;
  const targets = new Map<OsdId, number>();
  for (const o of eligible) targets.set(o.id, weight === 0 ? 0 : (total * o.weight) / weight);
  return targets;
}

function countsOf(targets: ReadonlyMap<OsdId, number>, pgs: readonly PgState[]): Map<OsdId, number> {
  const counts = new Map<OsdId, number>();
  for (const id of targets.keys()) counts.set(id, 0);
  for (const p of pgs) for (const id of p.raw) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

function summarize(pool: PoolInfo, targets: ReadonlyMap<OsdId, number>, counts: ReadonlyMap<OsdId, number>, upmappedPgs: number): PoolBalance {
  const osds: OsdBalance[] = [];
  let maxDev = 0;
  let maxPct = 0;
  for (const [osd, target] of [...targets].sort((a, b) => a[0] - b[0])) {
    const count = counts.get(osd) ?? 0;
    osds.push({ osd, count, target });
    maxDev = Math.max(maxDev, Math.abs(count - target));
    if (target > 0) maxPct = Math.max(maxPct, (100 * Math.abs(count - target)) / target);
  }
  return { pool: pool.id, name: pool.name, osds, maxDeviation: maxDev, maxDeviationPct: maxPct, upmappedPgs };
}

/** Per-pool balance of `map` as it is (for `strata balancer status`). */
export function poolBalances(map: ClusterMap): PoolBalance[] {
  return [...map.pools.values()].sort((a, b) => a.id - b.id).map((pool) => {
    const pgs = poolPgs(map, pool);
    const targets = targetsOf(map, pgs);
    return summarize(pool, targets, countsOf(targets, pgs), pgs.filter((p) => p.items.length > 0).length);
  });
}

/** The pairs of `items` that take effect on `placed`, in order (the rest are dead). */
function livePairs(map: ClusterMap, pool: PoolInfo, placed: readonly OsdId[], items: readonly UpmapItem[]): UpmapItem[] {
  const live: UpmapItem[] = [];
  let cur = placed;
  for (const item of items) {
    const next = applyUpmapItems(map, pool, cur, [item]);
    if (next !== cur) live.push(item);
    cur = next;
  }
  return live;
}

const sameItems = (a: readonly UpmapItem[], b: readonly UpmapItem[]): boolean =>
  a.length === b.length && a.every((p, i) => p[0] === b[i]?.[0] && p[1] === b[i]?.[1]);

/**
 * Items that turn `p.placed` into `p.raw` with `src` replaced by `dst`, or undefined when no
 * valid list does. Existing pairs whose from leaves and whose to stays are kept (so a move
 * rewrites rather than stacks pairs); the rest pair up in position order.
 */
function itemsForMove(map: ClusterMap, pool: PoolInfo, p: PgState, src: OsdId, dst: OsdId): { items: UpmapItem[]; raw: readonly OsdId[] } | undefined {
  const wanted = p.raw.map((id) => (id === src ? dst : id));
  const wantedSet = new Set(wanted);
  const placedSet = new Set(p.placed);
  const outs = p.placed.filter((id) => !wantedSet.has(id));
  const ins = wanted.filter((id) => !placedSet.has(id));
  if (outs.length !== ins.length || outs.length > UPMAP_ITEMS_MAX) return undefined;
  const items: UpmapItem[] = [];
  const usedFrom = new Set<OsdId>();
  const usedTo = new Set<OsdId>();
  for (const [f, t] of p.items) {
    if (outs.includes(f) && ins.includes(t) && !usedFrom.has(f) && !usedTo.has(t)) {
      items.push([f, t]);
      usedFrom.add(f);
      usedTo.add(t);
    }
  }
  const restOut = outs.filter((id) => !usedFrom.has(id));
  const restIn = ins.filter((id) => !usedTo.has(id));
  restOut.forEach((f, i) => { const t = restIn[i]; if (t !== undefined) items.push([f, t]); });
  const raw = applyUpmapItems(map, pool, p.placed, items);
  if (raw.length !== wanted.length || !raw.every((id) => wantedSet.has(id))) return undefined;
  if (livePairs(map, pool, p.placed, items).length !== items.length) return undefined;
  return { items, raw };
}

/** Computes the ops that balance `map`'s pools; see the module comment. */
export function computeUpmaps(map: ClusterMap, options: BalancerOptions = {}): BalancerResult {
  const maxDeviation = options.maxDeviation ?? BALANCER_DEFAULT_MAX_DEVIATION;
  let budget = options.maxChanges ?? BALANCER_DEFAULT_MAX_CHANGES;
  const ops: MapOp[] = [];
  const before: PoolBalance[] = [];
  const after: PoolBalance[] = [];
  let moves = 0;
  let cleaned = 0;
  const pools = [...map.pools.values()].filter((p) => options.pools === undefined || options.pools.includes(p.id)).sort((a, b) => a.id - b.id);
  for (const pool of pools) {
    const pgs = poolPgs(map, pool, options.reference);
    const targets = targetsOf(map, pgs);
    const counts = countsOf(targets, pgs);
    before.push(summarize(pool, targets, counts, pgs.filter((p) => p.items.length > 0).length));
    // 1. Cleanup of dead pairs (no mapping changes).
    for (const p of pgs) {
      if (p.items.length === 0) continue;
      const live = livePairs(map, pool, p.placed, p.items);
      if (live.length !== p.items.length) {
        p.items = live;
        cleaned++;
      }
    }
    // 2. Greedy moves.
    const r = balancePool(map, pool, pgs, targets, counts, maxDeviation, budget);
    moves += r;
    budget -= r;
    for (const p of pgs) {
      if (sameItems(p.items, p.original)) continue;
      ops.push(p.items.length === 0 ? { op: 'pg-upmap-items-remove', pg: p.pg } : { op: 'pg-upmap-items-set', pg: p.pg, items: p.items });
    }
    after.push(summarize(pool, targets, counts, pgs.filter((p) => p.items.length > 0).length));
  }
  return { ops, moves, cleaned, before, after };
}

/** The greedy loop of one pool; mutates `pgs` and `counts`; returns the number of moves. */
function balancePool(
  map: ClusterMap, pool: PoolInfo, pgs: PgState[], targets: ReadonlyMap<OsdId, number>, counts: Map<OsdId, number>,
  maxDeviation: number, budget: number,
): number {
  const dev = (id: OsdId): number => (counts.get(id) ?? 0) - (targets.get(id) ?? 0);
  const ids = [...targets.keys()];
  // Why the epsilon: a move must lower Σ dev² strictly (src − dst > 1) for the loop to end;
  // float targets must not let a move of exactly one replica's worth through.
  const improves = (src: OsdId, dst: OsdId): boolean => dev(src) - dev(dst) > 1 + 1e-9;
  const worthIt = (src: OsdId, dst: OsdId): boolean => dev(src) > maxDeviation + 1e-9 || dev(dst) < -maxDeviation - 1e-9;
  const apply = (p: PgState, src: OsdId, dst: OsdId, next: { items: UpmapItem[]; raw: readonly OsdId[] }): void => {
    p.items = next.items;
    p.raw = next.raw;
    counts.set(src, (counts.get(src) ?? 0) - 1);
    counts.set(dst, (counts.get(dst) ?? 0) + 1);
  };
  let moves = 0;
  while (moves < budget) {
    const maxAbs = Math.max(0, ...ids.map((id) => Math.abs(dev(id))));
    if (maxAbs <= maxDeviation + 1e-9) break;
    const bySurplus = [...ids].sort((a, b) => (dev(b) - dev(a)) || (a - b));
    const byDeficit = [...bySurplus].reverse().sort((a, b) => (dev(a) - dev(b)) || (a - b));
    if (!tryOneMove(map, pool, pgs, bySurplus, byDeficit, improves, worthIt, dev, apply)) break;
    moves++;
  }
  return moves;
}

function tryOneMove(
  map: ClusterMap, pool: PoolInfo, pgs: PgState[], bySurplus: readonly OsdId[], byDeficit: readonly OsdId[],
  improves: (s: OsdId, d: OsdId) => boolean, worthIt: (s: OsdId, d: OsdId) => boolean, dev: (id: OsdId) => number,
  apply: (p: PgState, s: OsdId, d: OsdId, next: { items: UpmapItem[]; raw: readonly OsdId[] }) => void,
): boolean {
  for (const src of bySurplus) {
    if (!byDeficit.some((dst) => improves(src, dst) && worthIt(src, dst))) continue;
    // a. Undo an exception that put a replica on src: the pair `y → src` goes away.
    let undo: { p: PgState; dst: OsdId; next: { items: UpmapItem[]; raw: readonly OsdId[] } } | undefined;
    for (const p of pgs) {
      if (!p.raw.includes(src) || p.placed.includes(src)) continue;
      for (const [from, to] of p.items) {
        if (to !== src || p.raw.includes(from) || !improves(src, from) || !worthIt(src, from)) continue;
        if (movementDelta(p, src, from) > 0 && p.ref !== undefined) continue; // Left to b., where cost decides.
        if (undo !== undefined && (dev(from) - dev(undo.dst) || from - undo.dst) >= 0) continue;
        const next = itemsForMove(map, pool, p, src, from);
        if (next !== undefined && next.items.length < p.items.length) undo = { p, dst: from, next };
      }
    }
    if (undo !== undefined) {
      apply(undo.p, src, undo.dst, undo.next);
      return true;
    }
    // b. Move a replica to the most under-full OSD that can take one; least added data
    //    movement (with a reference), then fewest new pairs, first.
    for (const dst of byDeficit) {
      if (!improves(src, dst) || !worthIt(src, dst)) continue;
      let best: { p: PgState; next: { items: UpmapItem[]; raw: readonly OsdId[] }; cost: number } | undefined;
      for (const p of pgs) {
        if (!p.raw.includes(src) || p.raw.includes(dst)) continue;
        const delta = movementDelta(p, src, dst);
        if (best !== undefined && 4 * delta - 1 >= best.cost) continue; // Cannot beat best.
        const next = itemsForMove(map, pool, p, src, dst);
        if (next === undefined) continue;
        const cost = 4 * delta + (next.items.length - p.items.length);
        if (best === undefined || cost < best.cost) best = { p, next, cost };
        if (cost <= -5) break; // Movement −1 and one pair fewer: nothing is better.
      }
      if (best !== undefined) {
        apply(best.p, src, dst, best.next);
        return true;
      }
    }
  }
  return false;
}
