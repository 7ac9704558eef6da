/**
 * The classic CRUSH descent (Ceph `crush_choose_firstn` + chooseleaf, tunables vary_r=1,
 * stable=1): at each level straw2 picks one child with attempt number r; a collision (same
 * host as an earlier replica) or an out leaf retries the replica with r' = r + 1.
 *
 * Kept as a measured BASELINE only (scripts/placement-report.ts, docs/placement.md): the
 * retry chain makes one replica's change cascade into the next ones, and the two-level choice
 * moves data between a host's old OSDs when the host's weight changes, so adding an OSD moves
 * 1.4–2.1× the ideal. `placement.ts` uses the rank-and-skip straw2 instead.
 */
import type { OsdId } from '../common/ids.js';
import type { ClusterMap, CrushBucket, CrushLeaf, FailureDomain, PoolInfo } from '../map/cluster-map.js';
import { CHOOSE_TRIES_MAX } from './placement.js';
import { straw2Choose } from './straw2.js';

/**
 * Descends from the root to the failure-domain bucket (host) or straight to a leaf (osd rule),
 * using the same `r` at every level (Ceph chooseleaf with vary_r=1, stable=1).
 * Returns the domain key (bucket hash id or osd id) and the leaf.
 */
function descend(root: CrushBucket, x: number, r: number, domain: FailureDomain): { key: number; leaf: CrushLeaf } | undefined {
  let node: CrushBucket = root;
  let domainKey: number | undefined;
  // Depth is bounded by the tree shape (root → rack → host → osd); 8 guards a malformed tree.
  for (let depth = 0; depth < 8; depth++) {
    if (domain === 'host' && node.type === 'host') domainKey = node.hashId;
    const child = straw2Choose(node, x, r);
    if (child === undefined) return undefined;
    if (child.type === 'osd') return { key: domainKey ?? child.id, leaf: child };
    node = child;
  }
  return undefined;
}

/** CRUSH chooseleaf firstn: `size` leaves on distinct domains, each retried up to the bound. */
export function crushChooseFirstn(map: ClusterMap, x: number, size: number, domain: FailureDomain): OsdId[] {
  const chosen: OsdId[] = [];
  const usedKeys = new Set<number>();
  for (let rep = 0; rep < size; rep++) {
    for (let ftotal = 0; ftotal < CHOOSE_TRIES_MAX; ftotal++) {
      const pick = descend(map.tree, x, rep + ftotal, domain);
      if (pick === undefined) continue;
      if (usedKeys.has(pick.key)) continue; // Collision: same host (or OSD) as an earlier replica.
      if (map.osds.get(pick.leaf.id)?.in !== true) continue; // Out: rejected, retry elsewhere.
      usedKeys.add(pick.key);
      chosen.push(pick.leaf.id);
      break;
    }
  }
  return chosen;
}


/** The baseline's raw set for one PG (for comparisons; placement.ts is authoritative). */
export function crushRawSet(map: ClusterMap, pool: PoolInfo, x: number): OsdId[] {
  return crushChooseFirstn(map, x, pool.size, pool.failureDomain);
}
