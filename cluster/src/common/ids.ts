/**
 * Branded identifier types. Why brands: an `OsdId` and a `PoolId` are both small integers, and
 * swapping them is a silent placement bug; the brand makes the compiler catch it at zero runtime
 * cost. Constructors assert the numeric range once, at the boundary (decode, CLI, messages).
 */
import { assert, assertIntInRange } from './assert.js';

/** An OSD number, 0 ≤ id < 2^31 (Ceph's `osd.N`). */
export type OsdId = number & { readonly __brand: 'OsdId' };
/** A pool number, 0 ≤ id < 2^31. */
export type PoolId = number & { readonly __brand: 'PoolId' };
/** A cluster map epoch; 0 means "no map yet", the first real map is epoch 1. */
export type Epoch = number & { readonly __brand: 'Epoch' };
/** A PG's seed within its pool: 0 ≤ seed < pgNum (Ceph's `ps`). */
export type PgSeed = number & { readonly __brand: 'PgSeed' };
/** A RADOS object name inside a pool (UTF-8, at most `OBJECT_NAME_MAX_BYTES`). */
export type ObjectName = string & { readonly __brand: 'ObjectName' };

/** The "no OSD" marker in acting sets and `primary` (Ceph's CRUSH_ITEM_NONE / -1). */
export const NO_OSD = -1;
/** Largest OSD/pool id we accept. */
export const ID_MAX = 0x7fff_ffff;
/** Largest object name, in UTF-8 bytes (Ceph's default osd_max_object_name_len is 2048). */
export const OBJECT_NAME_MAX_BYTES = 2048;

/** Asserts and brands an OSD id. */
export function osdId(n: number): OsdId {
  assertIntInRange(n, 0, ID_MAX, 'osd id');
  return n as OsdId;
}

/** Asserts and brands a pool id. */
export function poolId(n: number): PoolId {
  assertIntInRange(n, 0, ID_MAX, 'pool id');
  return n as PoolId;
}

/** Asserts and brands an epoch (u32). */
export function epoch(n: number): Epoch {
  assertIntInRange(n, 0, 0xffff_ffff, 'epoch');
  return n as Epoch;
}

/** Asserts and brands a PG seed. */
export function pgSeed(n: number): PgSeed {
  assertIntInRange(n, 0, 0xffff_ffff, 'pg seed');
  return n as PgSeed;
}

/** Brands an object name after checking its length. */
export function objectName(s: string): ObjectName {
  assert(s.length > 0, 'empty object name');
  assert(Buffer.byteLength(s, 'utf8') <= OBJECT_NAME_MAX_BYTES, 'object name too long');
  return s as ObjectName;
}

/** A placement group: a pool plus a seed. Value type; compare with `pgIdEquals`. */
export interface PgId {
  readonly pool: PoolId;
  readonly seed: PgSeed;
}

/** Builds a PgId. */
export function pgId(pool: PoolId, seed: PgSeed): PgId {
  return { pool, seed };
}

/** Ceph's text form: `<pool>.<seed in hex>`, e.g. `1.2a`. */
export function pgIdToString(pg: PgId): string {
  return `${pg.pool}.${pg.seed.toString(16)}`;
}

/** Parses `pgIdToString` output; returns undefined when malformed. */
export function parsePgId(s: string): PgId | undefined {
  const m = /^(\d{1,10})\.([0-9a-f]{1,8})$/.exec(s);
  if (m === null) return undefined;
  const pool = Number(m[1]);
  const seed = parseInt(m[2] ?? '', 16);
  if (pool > ID_MAX) return undefined;
  return { pool: pool as PoolId, seed: seed as PgSeed };
}

/** Value equality of two PG ids. */
export function pgIdEquals(a: PgId, b: PgId): boolean {
  return a.pool === b.pool && a.seed === b.seed;
}
