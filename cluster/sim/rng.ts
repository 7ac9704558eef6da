/**
 * Seeded randomness for the simulator. Everything random in a run — options, fault choices,
 * network delays, disk latencies, each process's `env.rng` — comes from one 64-bit seed,
 * split into named, independent streams (`derive`), so that adding a draw in one stream (say,
 * one more network delay) does not shift the draws of another (say, the fault schedule).
 *
 * Generator: xoshiro128** (Blackman & Vigna), seeded through splitmix32. Stream names are
 * hashed with FNV-1a. No Math.random, no clock.
 */

/** FNV-1a 32-bit over a string, continued from `h`. */
export function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** splitmix32 step: a well-mixed u32 from a u32 state. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) >>> 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** A seeded PRNG stream with the helpers the simulator needs. */
export class SimRng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `lo`/`hi`: the two halves of a 64-bit seed (or any two u32s). */
  constructor(lo: number, hi: number) {
    let x = (lo ^ Math.imul(hi, 0x27d4eb2d)) >>> 0;
    this.s0 = x = splitmix32(x);
    this.s1 = x = splitmix32(x ^ hi);
    this.s2 = x = splitmix32(x);
    this.s3 = splitmix32(x ^ lo);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniformly random u32. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0; this.s1 >>>= 0; this.s2 >>>= 0; this.s3 >>>= 0;
    return result;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  /** Exponentially distributed with the given mean. */
  exponential(mean: number): number {
    if (mean <= 0) return 0;
    return -Math.log(1 - this.float()) * mean;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const v = items[this.int(items.length)];
    if (v === undefined) throw new Error('pick from an empty array');
    return v;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const x = this.u32();
      out[i] = x & 0xff;
      if (i + 1 < n) out[i + 1] = (x >>> 8) & 0xff;
      if (i + 2 < n) out[i + 2] = (x >>> 16) & 0xff;
      if (i + 3 < n) out[i + 3] = x >>> 24;
    }
    return out;
  }

  /** An independent stream named `name` (hash of this stream's next draws and the name). */
  fork(name: string): SimRng {
    return new SimRng(fnv1a(name, this.u32()), this.u32());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A 64-bit seed as two u32 halves, with its canonical text form. */
export interface Seed {
  readonly lo: number;
  readonly hi: number;
  readonly text: string;
}

/** Parses `0x…` (hex, up to 16 digits) or a decimal seed. */
export function parseSeed(text: string): Seed {
  const t = text.trim().toLowerCase();
  let v: bigint;
  if (/^0x[0-9a-f]{1,16}$/.test(t)) v = BigInt(t);
  else if (/^[0-9]{1,20}$/.test(t)) v = BigInt(t);
  else throw new Error(`bad seed '${text}': expected 0x<hex> or a decimal number`);
  v &= 0xffff_ffff_ffff_ffffn;
  return seedFromBigInt(v);
}

/** The seed for a 64-bit value. */
export function seedFromBigInt(v: bigint): Seed {
  const lo = Number(v & 0xffff_ffffn);
  const hi = Number((v >> 32n) & 0xffff_ffffn);
  return { lo, hi, text: '0x' + v.toString(16) };
}

/** Derives the named stream of a seed: the same (seed, name) always gives the same stream. */
export function derive(seed: Seed, name: string): SimRng {
  return new SimRng(fnv1a(name, seed.lo ^ 0x811c9dc5), fnv1a(name, seed.hi ^ 0x5bd1e995));
}
