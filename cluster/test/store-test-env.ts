/**
 * Helpers for object-store tests on TestEnv's in-memory disk: open, commit, read by driving
 * the simulated clock until the callback runs (each throws if it never does).
 */
import type { ObjectName, PoolId } from '../src/common/ids.js';
import { ObjectStore } from '../src/store/object-store.js';
import type { Transaction } from '../src/store/types.js';
import type { ObjectId, ObjectStoreOptions } from '../src/store/types.js';
import type { TestEnv } from './sim-env.js';

export const STORE_DIR = '/osd';

export const oid = (name: string, pool = 1): ObjectId => ({ pool: pool as PoolId, name: name as ObjectName });

/** Deterministic test bytes: `n` bytes from `seed`. */
export const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + 1) & 0xff);

export function openStore(env: TestEnv, opts: Partial<ObjectStoreOptions> = {}): ObjectStore {
  let out: ObjectStore | undefined;
  let error: Error | null = null;
  ObjectStore.open(env, { dir: STORE_DIR, ...opts }, (err, s) => { error = err; out = s; });
  for (let i = 0; i < 100 && out === undefined && error === null; i++) env.advance(1);
  if (error !== null) throw error;
  if (out === undefined) throw new Error('open did not finish');
  return out;
}

export function commitTxn(env: TestEnv, store: ObjectStore, txn: Transaction): Error | null {
  let res: Error | null | undefined;
  store.submit(txn, (e) => { res = e; });
  for (let i = 0; i < 100 && res === undefined; i++) env.advance(1);
  if (res === undefined) throw new Error('commit did not finish');
  return res;
}

export function readStore(env: TestEnv, store: ObjectStore, obj: ObjectId, off: number, len: number): Uint8Array | Error {
  let res: Uint8Array | Error | undefined;
  store.read(obj, off, len, (e, d) => { res = e ?? d; });
  for (let i = 0; i < 100 && res === undefined; i++) env.advance(1);
  if (res === undefined) throw new Error('read did not finish');
  return res;
}

/** A seeded pseudo-random source in [0, 1) (mulberry32): random walks that replay from their seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x ^= x + Math.imul(x ^ (x >>> 7), 61 | x);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}
