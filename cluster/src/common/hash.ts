/**
 * Fixed, documented hashes. Every function here is part of the on-disk/on-wire contract:
 * changing one moves every object in the cluster, so they are pinned by golden vectors in
 * `cluster/test/hash.test.ts`.
 *
 * - `strHashRjenkins`: Bob Jenkins' lookup2 hash as Ceph's `ceph_str_hash_rjenkins`
 *   (src/common/ceph_hash.cc). Object name → 32-bit placement hash.
 * - `crushHash32_2/3`: Ceph's `crush_hash32_rjenkins1_2/3` (src/crush/hash.c), used for
 *   pps (PG seed mixed with pool) and for straw2 draws.
 * - `stableMod`: Ceph's `ceph_stable_mod` (src/include/rados.h): splitting a PG when pgNum
 *   grows moves only objects of the PG being split.
 *
 * All arithmetic is on u32 via `>>> 0` and `Math.imul`-free add/sub (which wrap exactly under
 * `| 0` / `>>> 0` because operands are < 2^32 and JS doubles hold 2^53 exactly).
 */

const textEncoder = new TextEncoder();

/** Jenkins' 96-bit mix on u32s. Returns [a, b, c]. Shared by both rjenkins variants. */
function mix(a: number, b: number, c: number): [number, number, number] {
  a = (a - b - c) >>> 0; a = (a ^ (c >>> 13)) >>> 0;
  b = (b - c - a) >>> 0; b = (b ^ (a << 8)) >>> 0;
  c = (c - a - b) >>> 0; c = (c ^ (b >>> 13)) >>> 0;
  a = (a - b - c) >>> 0; a = (a ^ (c >>> 12)) >>> 0;
  b = (b - c - a) >>> 0; b = (b ^ (a << 16)) >>> 0;
  c = (c - a - b) >>> 0; c = (c ^ (b >>> 5)) >>> 0;
  a = (a - b - c) >>> 0; a = (a ^ (c >>> 3)) >>> 0;
  b = (b - c - a) >>> 0; b = (b ^ (a << 10)) >>> 0;
  c = (c - a - b) >>> 0; c = (c ^ (b >>> 15)) >>> 0;
  return [a, b, c];
}

function le32(k: Uint8Array, i: number): number {
  return ((k[i] ?? 0) | ((k[i + 1] ?? 0) << 8) | ((k[i + 2] ?? 0) << 16) | ((k[i + 3] ?? 0) << 24)) >>> 0;
}

/** Ceph's `ceph_str_hash_rjenkins` over raw bytes. */
export function bytesHashRjenkins(k: Uint8Array): number {
  const length = k.length;
  let a = 0x9e3779b9;
  let b = a;
  let c = 0;
  let i = 0;
  let len = length;
  while (len >= 12) {
    a = (a + le32(k, i)) >>> 0;
    b = (b + le32(k, i + 4)) >>> 0;
    c = (c + le32(k, i + 8)) >>> 0;
    [a, b, c] = mix(a, b, c);
    i += 12;
    len -= 12;
  }
  c = (c + length) >>> 0;
  // Why the byte-by-byte tail: lookup2 reserves the low byte of c for the length.
  const at = (j: number): number => k[i + j] ?? 0;
  if (len >= 11) c = (c + (at(10) << 24)) >>> 0;
  if (len >= 10) c = (c + (at(9) << 16)) >>> 0;
  if (len >= 9) c = (c + (at(8) << 8)) >>> 0;
  if (len >= 8) b = (b + (at(7) << 24)) >>> 0;
  if (len >= 7) b = (b + (at(6) << 16)) >>> 0;
  if (len >= 6) b = (b + (at(5) << 8)) >>> 0;
  if (len >= 5) b = (b + at(4)) >>> 0;
  if (len >= 4) a = (a + (at(3) << 24)) >>> 0;
  if (len >= 3) a = (a + (at(2) << 16)) >>> 0;
  if (len >= 2) a = (a + (at(1) << 8)) >>> 0;
  if (len >= 1) a = (a + at(0)) >>> 0;
  [a, b, c] = mix(a, b, c);
  return c;
}

/** Ceph's `ceph_str_hash_rjenkins` of the UTF-8 bytes of `s`. */
export function strHashRjenkins(s: string): number {
  return bytesHashRjenkins(textEncoder.encode(s));
}

const CRUSH_HASH_SEED = 1315423911;

/** Ceph's `crush_hash32_rjenkins1_2(a, b)`. */
export function crushHash32_2(a: number, b: number): number {
  a >>>= 0; b >>>= 0;
  let h = (CRUSH_HASH_SEED ^ a ^ b) >>> 0;
  let x = 231232;
  let y = 1232;
  [a, b, h] = mix(a, b, h);
  [x, a, h] = mix(x, a, h);
  [b, y, h] = mix(b, y, h);
  return h;
}

/** Ceph's `crush_hash32_rjenkins1_3(a, b, c)`. */
export function crushHash32_3(a: number, b: number, c: number): number {
  a >>>= 0; b >>>= 0; c >>>= 0;
  let h = (CRUSH_HASH_SEED ^ a ^ b ^ c) >>> 0;
  let x = 231232;
  let y = 1232;
  [a, b, h] = mix(a, b, h);
  [c, x, h] = mix(c, x, h);
  [y, a, h] = mix(y, a, h);
  [b, x, h] = mix(b, x, h);
  [y, c, h] = mix(y, c, h);
  return h;
}

/** Smallest mask 2^k - 1 ≥ n - 1 (Ceph's `pg_num_mask`, from `cbits(pg_num - 1)`). */
export function stableModMask(n: number): number {
  let mask = 0;
  while (mask < n - 1) mask = mask * 2 + 1;
  return mask;
}

/**
 * Ceph's `ceph_stable_mod(x, b, bmask)`: like `x % b` but when `b` grows from 2^k toward
 * 2^(k+1) each new bucket takes objects from exactly one old bucket (PG split).
 */
export function stableMod(x: number, b: number, bmask = stableModMask(b)): number {
  const low = (x >>> 0) & bmask;
  if (low < b) return low;
  return (x >>> 0) & (bmask >>> 1);
}
