/**
 * Whole-object copies and PG object listings on the local store: what recovery pushes and pulls
 * (`readCopy`, `installCopy`) and what backfill and scrub compare (`localScan`).
 *
 * Invariants: `installCopy` replaces the object as remove + rewrite in ONE transaction, so
 * installing the same copy twice is harmless (a push may be resent after a re-peer). A scan
 * entry with crc 0xffffffff means the store failed to read the object (scrub: read_error).
 */
import { crc32c } from '../common/crc32c.js';
import type { ClusterError } from '../common/errors.js';
import { stableMod } from '../common/hash.js';
import type { ObjectName, PoolId } from '../common/ids.js';
import type { Env } from '../env/env.js';
import { objectHash } from '../placement/placement.js';
import type { ObjectStore } from '../store/object-store.js';
import { Transaction } from '../store/types.js';
import type { ObjectId } from '../store/types.js';
import { ZERO_VERSION } from './osd-protocol.js';
import type { ObjectCopy, ScanEntry } from './osd-peer-protocol.js';

/** Whole object (data + attrs + version) from the local store. */
export function readCopy(store: ObjectStore, env: Env, obj: ObjectId, cb: (err: ClusterError | null, copy?: ObjectCopy, data?: Uint8Array) => void): void {
  const st = store.stat(obj);
  if (st === undefined) { env.setImmediate(() => cb(null, { pool: obj.pool, name: obj.name, exists: false, version: ZERO_VERSION, size: 0, attrs: [] }, new Uint8Array(0))); return; }
  const attrs: [string, Uint8Array][] = store.listAttrs(obj).map((k) => [k, store.getAttr(obj, k)!]);
  store.read(obj, 0, st.sizeBytes, (err, data) => {
    if (err !== null) { cb(err); return; }
    cb(null, { pool: obj.pool, name: obj.name, exists: true, version: st.version ?? ZERO_VERSION, size: st.sizeBytes, attrs }, data);
  });
}

/** Replaces the local object with `copy` atomically. */
export function installCopy(store: ObjectStore, copy: ObjectCopy, data: Uint8Array, cb: (err: ClusterError | null) => void): void {
  const obj: ObjectId = { pool: copy.pool as PoolId, name: copy.name as ObjectName };
  const txn = new Transaction().remove(obj);
  if (copy.exists) {
    txn.touch(obj);
    if (data.length > 0) txn.write(obj, 0, data);
    txn.truncate(obj, copy.size);
    for (const [k, v] of copy.attrs) txn.setAttr(obj, k, v);
    txn.setVersion(obj, copy.version);
  }
  store.submit(txn, cb);
}

/** The objects of PG `seed` of `pool` in the local store, with versions (and checksums when asked). */
export function localScan(store: ObjectStore, pool: number, seed: number, pgNum: number, withCrc: boolean, cb: (err: ClusterError | null, list: ScanEntry[]) => void): void {
  const ids = store.listObjects(pool, (o) => stableMod(objectHash(o.name), pgNum) === seed);
  const out: ScanEntry[] = [];
  let i = 0;
  const next = (): void => {
    while (i < ids.length) {
      const id = ids[i++]!;
      const st = store.stat(id);
      if (st === undefined) continue;
      if (!withCrc) { out.push({ name: id.name, version: st.version ?? ZERO_VERSION, size: st.sizeBytes, crc: 0 }); continue; }
      store.read(id, 0, st.sizeBytes, (err, data) => {
        let crc = err === null ? crc32c(data) : 0xffffffff;
        if (err === null) for (const k of store.listAttrs(id)) crc = crc32c(store.getAttr(id, k)!, crc32c(new TextEncoder().encode(k), crc));
        out.push({ name: id.name, version: st.version ?? ZERO_VERSION, size: st.sizeBytes, crc: err === null ? crc >>> 0 : 0xffffffff });
        next();
      });
      return;
    }
    cb(null, out);
  };
  next();
}
