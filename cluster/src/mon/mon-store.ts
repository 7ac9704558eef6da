/**
 * The monitor's durable state behind one interface, so the embedded file store
 * (file-mon-store.ts) and a later etcd-backed store are interchangeable.
 *
 * Contract:
 * - Reads are synchronous from an in-memory copy (the map and a window of incrementals are
 *   small), so the monitor's state machine never waits to answer a query.
 * - `commit` is atomic and durable: when its callback reports success, the transaction
 *   survives kill -9 and power loss; on failure nothing of it is visible. Commits apply in
 *   call order.
 * - Every persisted key is on the allow-list below (Vitastor's etcd_schema idea): a typo'd key
 *   is a bug caught at the call, not a stray record.
 *
 * An etcd store implements the same interface: `commit` becomes one etcd transaction
 * (`If(mod_revision("map/epoch") == expected) Then(put map/inc/<epoch>, put map/epoch, kv…)`),
 * `open` loads the latest full map + incrementals and starts a watch that refreshes the
 * in-memory copy, so several monitors can share it (only the holder of an etcd lease proposes).
 */
import type { Epoch } from '../common/ids.js';
import type { ClusterMap } from '../map/cluster-map.js';
import type { Incremental } from '../map/incremental.js';

/** Key prefixes the monitor may persist besides the map (auth entities, config). */
export const MON_KV_PREFIXES = ['auth/', 'config/'] as const;

/** True when `key` is on the allow-list. */
export function isAllowedMonKey(key: string): boolean {
  return MON_KV_PREFIXES.some((p) => key.startsWith(p) && key.length > p.length && key.length <= 256);
}

/** One atomic change. */
export interface MonStoreTxn {
  /** The next map epoch (must be latest + 1). */
  readonly incremental?: Incremental;
  readonly kvPut?: ReadonlyArray<readonly [string, Uint8Array]>;
  readonly kvDelete?: readonly string[];
}

/** Durable monitor state. */
export interface MonStore {
  /** Loads (and repairs a torn tail). Call once, before anything else. */
  open(cb: (err: Error | null) => void): void;
  /** The latest committed map; undefined before the first incremental. */
  latestMap(): ClusterMap | undefined;
  /**
   * Incrementals with epoch > `sinceEpoch`, ascending, up to the latest; undefined when the
   * store no longer holds all of them (the caller sends a full map instead).
   */
  incrementalsSince(sinceEpoch: Epoch): readonly Incremental[] | undefined;
  kvGet(key: string): Uint8Array | undefined;
  /** Keys starting with `prefix`, sorted. */
  kvKeys(prefix: string): string[];
  /** Atomically and durably applies `txn`; see the contract above. */
  commit(txn: MonStoreTxn, cb: (err: Error | null) => void): void;
  close(cb: (err: Error | null) => void): void;
}
