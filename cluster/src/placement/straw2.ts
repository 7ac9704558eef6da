/**
 * straw2 (Ceph's bucket_straw2_choose, src/crush/mapper.c): every item of a bucket draws a
 * "straw" `ln(u) / weight` with `u` a uniform hash of (x, item, r) in (0, 1], and the longest
 * straw (largest draw, since ln(u) ≤ 0) wins. This is an exponential race, so item i wins with
 * probability exactly weight_i / Σ weights, and — the property that makes CRUSH useful —
 * changing one item's weight only moves inputs to or from that item: every other item's draw
 * is unchanged.
 *
 * Deviation from Ceph, on purpose: Ceph takes 16 bits of the hash and a fixed-point `crush_ln`
 * table so that C kernels and userspace agree bit-for-bit. We use all 32 bits and `Math.log`.
 * Why that is deterministic: V8 implements Math.log with its own port of fdlibm
 * (src/base/ieee754.cc) rather than the platform libm, so the result is the same double on
 * every OS/CPU for a given Node major; the draw is a single division of that double by an
 * integer. Our placement is therefore algorithmically CRUSH straw2, not bit-compatible with
 * Ceph; the fixed vectors in `cluster/test/placement.test.ts` pin it, so a Node upgrade that
 * changed Math.log would fail loudly there rather than silently move data.
 */
import { crushHash32_3 } from '../common/hash.js';
import type { CrushBucket, CrushNode } from '../map/cluster-map.js';

const TWO_POW_32 = 4294967296;

/** The straw length of one item: larger wins. `-Infinity` for weight 0 (never chosen). */
export function straw2Draw(x: number, hashId: number, r: number, weight: number): number {
  if (weight <= 0) return -Infinity;
  const u = crushHash32_3(x, hashId, r);
  // (u + 1) / 2^32 lies in (0, 1], so ln is finite and ≤ 0.
  return Math.log((u + 1) / TWO_POW_32) / weight;
}

/**
 * Chooses one child of `bucket` for input `x` and replica attempt `r`. Returns undefined when
 * every child has weight 0. Ties keep the first child in canonical order.
 */
export function straw2Choose(bucket: CrushBucket, x: number, r: number): CrushNode | undefined {
  let best: CrushNode | undefined;
  let bestDraw = -Infinity;
  for (const child of bucket.children) {
    const draw = straw2Draw(x, child.hashId, r, child.weight);
    if (draw > bestDraw) {
      best = child;
      bestDraw = draw;
    }
  }
  return best;
}
