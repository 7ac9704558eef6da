/**
 * Public types of the OSD object store: object addresses, versions, the `Transaction` builder
 * and the limits every input is checked against. The PG layer (issue #5, later) builds one
 * `Transaction` per client write — data ops, the object's new version and its PG-log entry —
 * and the store applies it atomically (all or nothing, across crashes).
 */
import type { ObjectName, PoolId } from '../common/ids.js';

/** Size of a data block: the unit of allocation, of checksums and of journal block images. */
export const BLOCK_BYTES = 4096;

/** Bounds on caller input (GUIDE principle 6: a limit on everything). */
export const StoreLimits = {
  /** Largest attribute or PG-metadata key, in UTF-8 bytes. */
  attrKeyBytesMax: 256,
  /** Largest attribute value (Ceph keeps xattrs small too; big values belong in omap). */
  attrValueBytesMax: 64 * 1024,
  /** Attributes per object. */
  attrsPerObjectMax: 64,
  /** Largest PG-metadata value (a PG-log entry or the PG info). */
  pgValueBytesMax: 256 * 1024,
  /**
   * Ops in one transaction. Why 8192: a replica adopting the authoritative PG log during
   * peering replaces up to the whole log atomically — up to PG_LOG_MAX (3000) removals plus
   * as many insertions plus the info (osd-core.ts asserts the bound). 1024 left such PGs
   * stuck peering after an OSD was killed under load (seen in the cluster VM tests).
   */
  opsPerTxnMax: 8192,
} as const;

/**
 * An object's version: an opaque (epoch, seq) pair chosen by the caller (the PG primary).
 * The store only persists it; ordering rules belong to the PG layer.
 */
export interface ObjectVersion {
  readonly epoch: number;
  readonly seq: number;
}

/** Where an object lives: pool and name (the PG is derived by placement, not stored). */
export interface ObjectId {
  readonly pool: PoolId;
  readonly name: ObjectName;
}

/** Result of `stat`. */
export interface ObjectStat {
  /** Logical size in bytes (reads past it are short). */
  readonly sizeBytes: number;
  readonly version: ObjectVersion | undefined;
  /** Bytes of blocks that hold data (journal-resident or on the data file); holes are free. */
  readonly allocatedBytes: number;
}

/** One op of a transaction, as the caller wrote it (before read-modify-write resolution). */
export type TxnOp =
  | { readonly op: 'write'; readonly obj: ObjectId; readonly offset: number; readonly data: Uint8Array }
  | { readonly op: 'zero'; readonly obj: ObjectId; readonly offset: number; readonly length: number }
  | { readonly op: 'truncate'; readonly obj: ObjectId; readonly sizeBytes: number }
  | { readonly op: 'remove'; readonly obj: ObjectId }
  | { readonly op: 'touch'; readonly obj: ObjectId }
  | { readonly op: 'setattr'; readonly obj: ObjectId; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'rmattr'; readonly obj: ObjectId; readonly key: string }
  | { readonly op: 'version'; readonly obj: ObjectId; readonly version: ObjectVersion }
  | { readonly op: 'pgput'; readonly pg: string; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'pgrm'; readonly pg: string; readonly key: string };

/**
 * A group of ops applied atomically, in order. Writes, truncates, attributes and versions
 * create the object when missing; `remove` of a missing object and `zero` on a missing
 * object are no-ops (idempotent, which recovery relies on). Buffers are copied when the
 * transaction is submitted, so the caller may reuse them after `submit` returns — unless the
 * caller sets `handOff`.
 */
export class Transaction {
  readonly ops: TxnOp[] = [];
  /**
   * The caller hands its data buffers to the store: it will never modify them after `submit`
   * (e.g. bytes just received from the network), so the store keeps references instead of
   * copying — a queued transaction is not copied, and a direct (large) write is written from
   * the caller's bytes, and an attribute or PG value that is a whole buffer of its own is kept.
   * Small writes are still copied into 4 KiB block images and values that are views into a
   * larger buffer are copied, so a received chunk is never retained beyond a direct pwrite.
   */
  handOff = false;

  /** Writes `data` at `offset` (sparse: the gap before it reads as zeros). */
  write(obj: ObjectId, offset: number, data: Uint8Array): this {
    this.ops.push({ op: 'write', obj, offset, data });
    return this;
  }
  /** Zeroes a range and frees the whole blocks inside it (discard); never extends the object. */
  zero(obj: ObjectId, offset: number, length: number): this {
    this.ops.push({ op: 'zero', obj, offset, length });
    return this;
  }
  /** Sets the size; shrinking frees the blocks past the end and zeroes the tail of the last. */
  truncate(obj: ObjectId, sizeBytes: number): this {
    this.ops.push({ op: 'truncate', obj, sizeBytes });
    return this;
  }
  /** Deletes the object, its data, attributes and version. */
  remove(obj: ObjectId): this {
    this.ops.push({ op: 'remove', obj });
    return this;
  }
  /** Creates the object (size 0) when missing. */
  touch(obj: ObjectId): this {
    this.ops.push({ op: 'touch', obj });
    return this;
  }
  /** Sets a small attribute. */
  setAttr(obj: ObjectId, key: string, value: Uint8Array): this {
    this.ops.push({ op: 'setattr', obj, key, value });
    return this;
  }
  /** Removes an attribute (no-op when absent). */
  rmAttr(obj: ObjectId, key: string): this {
    this.ops.push({ op: 'rmattr', obj, key });
    return this;
  }
  /** Records the object's version (stored with the object, returned by `stat`). */
  setVersion(obj: ObjectId, version: ObjectVersion): this {
    this.ops.push({ op: 'version', obj, version });
    return this;
  }
  /** Puts an opaque per-PG record (a PG-log entry, the PG info) under `pg`/`key`. */
  pgPut(pg: string, key: string, value: Uint8Array): this {
    this.ops.push({ op: 'pgput', pg, key, value });
    return this;
  }
  /** Removes a per-PG record (log trimming). */
  pgRemove(pg: string, key: string): this {
    this.ops.push({ op: 'pgrm', pg, key });
    return this;
  }
}

/** Tunables of `ObjectStore`. */
/** How durable journal batches are issued (ObjectStoreOptions.journalIo). */
export type JournalIo = 'pool' | 'inline' | 'auto';

export interface ObjectStoreOptions {
  /** Directory holding `journal`, `data` and `meta`. */
  dir: string;
  /** Journal file size (ring + 4 KiB header); default 64 MiB. Fixed at creation. */
  journalBytes?: number;
  /** Writes whose aligned middle is at least this long go to the data file directly. Default 128 KiB. */
  directWriteBytes?: number;
  /** Start a checkpoint when the journal is this full (0..1); default 0.5. */
  checkpointFill?: number;
  /** Refuse new data once live + not-yet-reusable blocks reach this; default 1 TiB. */
  dataBytesMax?: number;
  /** Largest object; default 64 MiB. */
  objectBytesMax?: number;
  /** Bytes of submitted-but-unapplied transactions before `submit` answers CLU_ERR_BUSY; default 64 MiB. */
  queueBytesMax?: number;
  /**
   * How durable journal writes are issued: 'pool' (default) through the disk's asynchronous
   * `pwrite` (libuv's thread pool: the event loop keeps running during the device write), or
   * 'inline' on the event loop's thread when the disk offers `pwriteInline` and O_DSYNC
   * (no thread hand-offs; the loop blocks for the device's write latency), or 'auto': inline
   * for a batch of one record (a lone write: nothing else waits on the loop), the pool for
   * larger batches (a loaded OSD keeps receiving while the device writes). See
   * docs/object-store.md, "Journal I/O".
   */
  journalIo?: JournalIo;
  /**
   * How direct writes (the aligned middle of a big write) reach the data file: 'direct'
   * (default) with O_DIRECT through a second fd when the disk and file system allow it (no
   * copy into the page cache; a buffer that is not 4096-aligned is copied into an aligned one
   * first), else 'buffered' pwrites. Reads and checkpoints always use the buffered fd. See
   * docs/object-store.md, "Data I/O".
   */
  dataIo?: 'direct' | 'buffered';
}

/** Text key of an object in maps: `<pool>/<name>`. */
export function objectKey(obj: ObjectId): string {
  return `${obj.pool}/${obj.name}`;
}
