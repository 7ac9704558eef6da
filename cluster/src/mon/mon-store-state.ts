/**
 * The in-memory image of a `MonStore` (latest map, a window of incrementals, key/values),
 * shared by every store implementation. Two-phase: `stage` validates a transaction and
 * computes its result without changing anything; `install` makes it visible after the store
 * made it durable. `apply` = stage + install, for replay.
 */
import { ClusterError } from '../common/errors.js';
import type { Epoch } from '../common/ids.js';
import { emptyMap } from '../map/cluster-map.js';
import type { ClusterMap } from '../map/cluster-map.js';
import { applyIncremental } from '../map/incremental.js';
import type { Incremental } from '../map/incremental.js';
import { isAllowedMonKey } from './mon-store.js';
import type { MonStoreTxn } from './mon-store.js';

/** Result of `stage`, consumed by `install`. */
export interface StagedTxn {
  readonly txn: MonStoreTxn;
  readonly map: ClusterMap | undefined;
}

/** In-memory store state. */
export class MonStoreState {
  map: ClusterMap | undefined;
  incrementals: Incremental[] = [];
  readonly kv = new Map<string, Uint8Array>();

  constructor(private readonly keepIncrementals: number) {}

  /** Replaces everything (snapshot load). */
  load(map: ClusterMap | undefined, incs: Incremental[], kv: Map<string, Uint8Array>): void {
    this.map = map;
    this.incrementals = incs;
    this.kv.clear();
    for (const [k, v] of kv) this.kv.set(k, v);
  }

  /** Validates `txn` against the current state; throws ClusterError when it cannot apply. */
  stage(txn: MonStoreTxn): StagedTxn {
    for (const [k] of txn.kvPut ?? []) if (!isAllowedMonKey(k)) throw new ClusterError('CLU_ERR_INVALID', `key not on the allow-list: ${k}`);
    for (const k of txn.kvDelete ?? []) if (!isAllowedMonKey(k)) throw new ClusterError('CLU_ERR_INVALID', `key not on the allow-list: ${k}`);
    const inc = txn.incremental;
    if (inc === undefined) return { txn, map: this.map };
    // The first incremental (epoch 1) applies to the empty map of its own fsid.
    const base = this.map ?? emptyMap(inc.fsid, inc.modifiedMs);
    return { txn, map: applyIncremental(base, inc) };
  }

  /** Makes a staged transaction visible. */
  install(staged: StagedTxn): void {
    this.map = staged.map;
    const inc = staged.txn.incremental;
    if (inc !== undefined) {
      this.incrementals.push(inc);
      if (this.incrementals.length > this.keepIncrementals) this.incrementals.splice(0, this.incrementals.length - this.keepIncrementals);
    }
    for (const [k, v] of staged.txn.kvPut ?? []) this.kv.set(k, v);
    for (const k of staged.txn.kvDelete ?? []) this.kv.delete(k);
  }

  apply(txn: MonStoreTxn): void {
    this.install(this.stage(txn));
  }

  incrementalsSince(sinceEpoch: Epoch): readonly Incremental[] | undefined {
    const latest = this.map?.epoch ?? 0;
    if (sinceEpoch >= latest) return [];
    const first = this.incrementals[0];
    if (first === undefined || first.epoch > sinceEpoch + 1) return undefined;
    return this.incrementals.slice(sinceEpoch + 1 - first.epoch);
  }

  kvKeys(prefix: string): string[] {
    return [...this.kv.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
}
