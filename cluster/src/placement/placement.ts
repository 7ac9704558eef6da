/**
 * Object → PG → OSDs, computed by every client and OSD from the map alone (no central lookup
 * on the data path). The pipeline:
 *
 *   name ──rjenkins──► hash ──stable_mod(pgNum)──► PG seed                (Ceph, unchanged)
 *   (seed, pool) ──crush_hash32_2──► x ("pps": equal seeds of two pools place differently)
 *   x ──straw2 draw for every in OSD, rank, skip used hosts──► placement
 *   placement ──pg_upmap_items of the PG, each pair if valid──► raw set
 *   raw ──drop down OSDs, keep order──► up
 *   pg_temp of the PG minus down OSDs, when not empty ──► acting, else acting = up;
 *   primary = acting[0]
 *
 * Rank-and-skip straw2 (why not Ceph's descent, see crush-firstn.ts for the baseline):
 * every `in` OSD draws `ln(u(x, osd)) / weight`; OSDs are ranked by draw (ties: lower id),
 * and the walk takes each OSD whose failure domain (host, or the OSD itself) is not yet used,
 * until `size` are taken. The first pick is exactly weight-proportional (straw2), and later
 * picks are weight-proportional among the remaining domains — the same distribution as
 * choosing `size` distinct hosts and then one OSD in each. But adding, removing or marking
 * out one OSD only inserts/removes that OSD in every PG's ranking, so each PG changes by at
 * most one replica, to or from that OSD: the minimal movement CRUSH approximates with
 * retries. Measured: ≈1.0× the ideal, against 1.4–2.1× for the descent.
 *
 * Replica semantics (Ceph, replicated pools):
 * - An `out` OSD is not ranked, so its PGs are remapped elsewhere (data moves).
 * - A `down` but `in` OSD stays in the raw set and is dropped from up/acting: the PG runs
 *   degraded with a hole (fewer replicas, order of the others kept), and no data moves until
 *   the monitor marks it out.
 * - The walk is bounded by the OSD count (every candidate is visited at most once); when
 *   there are fewer usable domains than `size`, the set is shorter rather than looping.
 * Cost: O(osds · log osds) per PG (one hash + one log per OSD); callers cache per epoch.
 *
 * pg_upmap_items (Ceph's balancer exceptions, written by placement/balancer.ts): each pair
 * `[from, to]` of the PG, in order, replaces `from` by `to` in the set when `from` is in it,
 * `to` is not, `to` exists, is in and has weight > 0, and — rule `host` — no OTHER member of
 * the set is on `to`'s host. Otherwise the pair is ignored, so an exception can never break
 * the failure domain nor place data on an out OSD. Deliberately NOT required: `to` being up
 * (Ceph does not either). A down `to` is a hole like any down raw member; requiring up would
 * make every OSD restart move its upmapped PGs away and back.
 *
 * pg_temp (Ceph's, docs/replication.md §4 step 5a): a temporary acting set the monitor keeps
 * while a PG's up members backfill — [a complete OSD, ...up], so the complete OSD is primary
 * and serves I/O. Down members are filtered out (order kept); an entry with no member up is
 * ignored (acting = up), as Ceph's `_get_temp_osds`. `up` never depends on pg_temp: it is
 * where the PG is going, acting is who serves it now.
 */
import { crushHash32_2, stableMod, strHashRjenkins } from '../common/hash.js';
import { NO_OSD, pgIdToString, pgSeed } from '../common/ids.js';
import type { OsdId, PgId } from '../common/ids.js';
import type { ClusterMap, CrushBucket, CrushNode, FailureDomain, PoolInfo, UpmapItem } from '../map/cluster-map.js';
import { straw2Draw } from './straw2.js';

/** Ceph's choose_total_tries; bounds the retry loop of the CRUSH baseline (crush-firstn.ts). */
export const CHOOSE_TRIES_MAX = 50;

/** Result of mapping one PG. */
export interface PgMapping {
  /** Placement output after pg_upmap_items: `in` OSDs on distinct failure domains, up or not. */
  readonly raw: readonly OsdId[];
  /** `raw` minus down OSDs, order kept. */
  readonly up: readonly OsdId[];
  /** The OSDs serving the PG: the PG's pg_temp minus down OSDs when that is not empty, else `up`. */
  readonly acting: readonly OsdId[];
  /** `acting[0]`, or NO_OSD (-1) when the PG has no live OSD. */
  readonly primary: OsdId | typeof NO_OSD;
}

const EMPTY_MAPPING: PgMapping = { raw: [], up: [], acting: [], primary: NO_OSD };

/** The 32-bit placement hash of an object name (Ceph's ceph_str_hash_rjenkins). */
export function objectHash(name: string): number {
  return strHashRjenkins(name);
}

/** Maps an object name to its PG in `pool`. */
export function objectToPg(pool: PoolInfo, name: string): PgId {
  return { pool: pool.id, seed: pgSeed(stableMod(objectHash(name), pool.pgNum)) };
}

/** The placement input for a PG (Ceph's raw_pg_to_pps with FLAG_HASHPSPOOL). */
export function pgPlacementSeed(pg: PgId): number {
  return crushHash32_2(pg.seed, pg.pool);
}

/** Computes the raw, up and acting sets of `pg`. An unknown pool or seed maps to nothing. */
export function pgToOsds(map: ClusterMap, pg: PgId): PgMapping {
  const pool = map.pools.get(pg.pool);
  if (pool === undefined || pg.seed >= pool.pgNum) return EMPTY_MAPPING;
  const placed = rankAndSkip(map, pgPlacementSeed(pg), pool.size, pool.failureDomain);
  const raw = map.pgUpmapItems.size === 0 ? placed : applyUpmapItems(map, pool, placed, map.pgUpmapItems.get(pgIdToString(pg)));
  const up = raw.filter((id) => map.osds.get(id)?.up === true);
  const temp = map.pgTemp.size === 0 ? undefined : map.pgTemp.get(pgIdToString(pg))?.filter((id) => map.osds.get(id)?.up === true);
  const acting = temp !== undefined && temp.length > 0 ? temp : up;
  return { raw, up, acting, primary: acting[0] ?? NO_OSD };
}

/**
 * The placement of `pg` BEFORE its pg_upmap_items (what the hash alone gives). The balancer
 * needs it to rewrite items; everyone else uses `pgToOsds`. Unknown pool or seed: [].
 */
export function pgPlacement(map: ClusterMap, pg: PgId): readonly OsdId[] {
  const pool = map.pools.get(pg.pool);
  if (pool === undefined || pg.seed >= pool.pgNum) return [];
  return rankAndSkip(map, pgPlacementSeed(pg), pool.size, pool.failureDomain);
}

/** Whether `to` may receive an upmapped replica: exists, in, weight > 0 (up is not required). */
export function upmapTargetUsable(map: ClusterMap, to: OsdId): boolean {
  const o = map.osds.get(to);
  return o !== undefined && o.in && o.weight > 0;
}

/**
 * Applies a PG's pg_upmap_items to its placement `placed`; see the module comment for when
 * a pair is valid. Pure; returns `placed` itself when no pair applies.
 */
export function applyUpmapItems(map: ClusterMap, pool: PoolInfo, placed: readonly OsdId[], items: readonly UpmapItem[] | undefined): readonly OsdId[] {
  if (items === undefined) return placed;
  let cur = placed;
  for (const [from, to] of items) {
    const i = cur.indexOf(from);
    if (i < 0 || cur.includes(to) || !upmapTargetUsable(map, to)) continue;
    if (pool.failureDomain === 'host') {
      const host = map.osds.get(to)?.location.host;
      if (cur.some((id, j) => j !== i && map.osds.get(id)?.location.host === host)) continue;
    }
    const next = [...cur];
    next[i] = to;
    cur = next;
  }
  return cur;
}

/** A leaf with its host key, flattened from the tree once per tree object. */
interface RankLeaf {
  readonly id: OsdId;
  readonly hashId: number;
  readonly weight: number;
  readonly hostKey: number;
}

// Why a WeakMap on the tree: the tree object changes exactly when weights or locations change
// (applyIncremental rebuilds it only then), so the cache is never stale and never leaks.
const leafCache = new WeakMap<CrushBucket, readonly RankLeaf[]>();

function leavesOf(tree: CrushBucket): readonly RankLeaf[] {
  const cached = leafCache.get(tree);
  if (cached !== undefined) return cached;
  const out: RankLeaf[] = [];
  const walk = (node: CrushNode, hostKey: number): void => {
    if (node.type === 'osd') {
      out.push({ id: node.id, hashId: node.hashId, weight: node.weight, hostKey });
      return;
    }
    const key = node.type === 'host' ? node.hashId : hostKey;
    for (const c of node.children) walk(c, key);
  };
  walk(tree, 0);
  leafCache.set(tree, out);
  return out;
}

/** Straw2 rank-and-skip; see the module comment. */
function rankAndSkip(map: ClusterMap, x: number, size: number, domain: FailureDomain): OsdId[] {
  const ranked: { id: OsdId; key: number; draw: number }[] = [];
  for (const leaf of leavesOf(map.tree)) {
    if (map.osds.get(leaf.id)?.in !== true || leaf.weight === 0) continue; // Out: never chosen.
    const key = domain === 'host' ? leaf.hostKey : leaf.id;
    ranked.push({ id: leaf.id, key, draw: straw2Draw(x, leaf.hashId, 0, leaf.weight) });
  }
  ranked.sort((a, b) => (b.draw - a.draw) || (a.id - b.id));
  const chosen: OsdId[] = [];
  const usedKeys = new Set<number>();
  for (const c of ranked) {
    if (chosen.length === size) break;
    if (usedKeys.has(c.key)) continue; // Same failure domain as a better-ranked replica.
    usedKeys.add(c.key);
    chosen.push(c.id);
  }
  return chosen;
}

/** Maps every PG of a pool (tools, tests, the monitor's PG summary). */
export function mapAllPgs(map: ClusterMap, pool: PoolInfo): PgMapping[] {
  const out: PgMapping[] = [];
  for (let seed = 0; seed < pool.pgNum; seed++) out.push(pgToOsds(map, { pool: pool.id, seed: pgSeed(seed) }));
  return out;
}
