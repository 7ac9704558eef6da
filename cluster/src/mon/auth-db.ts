/**
 * The monitor's auth database: every entity's secret key and caps, persisted in the
 * `MonStore` KV under `auth/<entity>` (the store's allow-list), so `strata auth add/rm/caps`
 * survive restarts exactly like the map and a later etcd store carries them too.
 *
 * Value layout: `u8 version=1 | bytes key[32] | str capsMon | str capsOsd`.
 *
 * Reads are synchronous from the store's memory copy (decoded entries are cached); writes
 * are one store commit each and are visible only after it is durable.
 */
import { Reader, Writer } from '../common/codec.js';
import { ClusterError } from '../common/errors.js';
import type { Rng } from '../env/env.js';
import { OSD_SERVICE_ENTITY, generateKey, makeKeyringEntry } from '../auth/keyring.js';
import type { Keyring, KeyringEntry } from '../auth/keyring.js';
import type { MonStore } from './mon-store.js';

const PREFIX = 'auth/';
const VERSION = 1;

/** Entities that `auth rm` refuses to delete: the cluster cannot work without them. */
export const PROTECTED_ENTITIES: readonly string[] = ['mon.', OSD_SERVICE_ENTITY];

function encodeEntry(e: KeyringEntry): Uint8Array {
  return new Writer(96).u8(VERSION).bytes(e.key).str(e.capsText.mon).str(e.capsText.osd).finish();
}

function decodeEntry(entity: string, bytes: Uint8Array): KeyringEntry {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== VERSION) throw new ClusterError('CLU_ERR_DECODE', `auth entry ${entity}: version ${version}`);
  const key = Uint8Array.from(r.bytes(64));
  const mon = r.str();
  const osd = r.str();
  r.end();
  const entry = makeKeyringEntry(entity, key, { mon, osd });
  if (entry instanceof ClusterError) throw new ClusterError('CLU_ERR_DECODE', `auth entry ${entity}: ${entry.message}`);
  return entry;
}

/** Entities and caps over a MonStore. */
export class AuthDb {
  private readonly cache = new Map<string, { bytes: Uint8Array; entry: KeyringEntry }>();

  constructor(private readonly store: MonStore, private readonly rng: Rng) {}

  /** The entry of `entity`, or undefined. */
  get(entity: string): KeyringEntry | undefined {
    const bytes = this.store.kvGet(PREFIX + entity);
    if (bytes === undefined) return undefined;
    const hit = this.cache.get(entity);
    if (hit !== undefined && hit.bytes === bytes) return hit.entry;
    const entry = decodeEntry(entity, bytes);
    this.cache.set(entity, { bytes, entry });
    return entry;
  }

  /** Entity names, sorted. */
  list(): string[] {
    return this.store.kvKeys(PREFIX).map((k) => k.slice(PREFIX.length));
  }

  /** The OSD service secret (tickets are sealed with it). */
  serviceSecret(): Uint8Array | undefined {
    return this.get(OSD_SERVICE_ENTITY)?.key;
  }

  /** Creates an entity with a fresh key; `CLU_ERR_EXISTS` when present. */
  add(entity: string, caps: { mon: string; osd: string }, cb: (err: ClusterError | null, entry?: KeyringEntry) => void): void {
    if (this.get(entity) !== undefined) { cb(new ClusterError('CLU_ERR_EXISTS', `entity ${entity} exists`)); return; }
    const entry = makeKeyringEntry(entity, generateKey(this.rng), caps);
    if (entry instanceof ClusterError) { cb(entry); return; }
    this.put([entry], (err) => (err ? cb(err) : cb(null, entry)));
  }

  /** Replaces an entity's caps; `CLU_ERR_NOT_FOUND` when absent. */
  setCaps(entity: string, caps: { mon: string; osd: string }, cb: (err: ClusterError | null, entry?: KeyringEntry) => void): void {
    const cur = this.get(entity);
    if (cur === undefined) { cb(new ClusterError('CLU_ERR_NOT_FOUND', `entity ${entity}`)); return; }
    const entry = makeKeyringEntry(entity, cur.key, caps);
    if (entry instanceof ClusterError) { cb(entry); return; }
    this.put([entry], (err) => (err ? cb(err) : cb(null, entry)));
  }

  /** Deletes an entity; refuses the protected ones. */
  remove(entity: string, cb: (err: ClusterError | null) => void): void {
    if (PROTECTED_ENTITIES.includes(entity)) { cb(new ClusterError('CLU_ERR_INVALID', `${entity} cannot be removed`)); return; }
    if (this.get(entity) === undefined) { cb(new ClusterError('CLU_ERR_NOT_FOUND', `entity ${entity}`)); return; }
    this.store.commit({ kvDelete: [PREFIX + entity] }, (err) => {
      this.cache.delete(entity);
      cb(err === null ? null : asIo(err));
    });
  }

  /** Imports a bootstrap keyring (mkfs): every entry, keys included, in one commit. */
  importKeyring(ring: Keyring, cb: (err: ClusterError | null) => void): void {
    this.put([...ring.values()], cb);
  }

  private put(entries: KeyringEntry[], cb: (err: ClusterError | null) => void): void {
    const kvPut = entries.map((e) => [PREFIX + e.entity, encodeEntry(e)] as const);
    this.store.commit({ kvPut }, (err) => cb(err === null ? null : asIo(err)));
  }
}

function asIo(err: Error): ClusterError {
  return err instanceof ClusterError ? err : new ClusterError('CLU_ERR_IO', err.message, { cause: err });
}
