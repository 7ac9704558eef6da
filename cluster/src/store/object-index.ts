/**
 * The in-memory index of the store: every object's size, version, attributes and block map,
 * plus the per-PG metadata records. It is rebuilt at open from the checkpoint (`meta`) and the
 * journal, and `apply` is the single place where state changes — live and at replay.
 *
 * A block of an object is in one of three states:
 *
 *   hole ──write(small)──► journal-resident ──checkpoint──► on-disk
 *     ▲   (loc -1, no mem)   (loc -1, mem = 4 KiB image)     (loc ≥ 0, crc)
 *     │                                                      ▲
 *     └──zero/truncate/remove── any ──write(direct)──────────┘ (mem caches the data
 *                                                              until its pwrite lands)
 *
 * Every state carries the block's crc32c (for holes it is unused). A data block that stops
 * being referenced is handed to `release`, never reused directly (see allocator.ts for when
 * it may be).
 */
import { assert } from '../common/assert.js';
import { BlockPool } from './block-pool.js';
import { PgRecords } from './pg-records.js';
import { OpType } from './resolved-ops.js';
import type { ResolvedOp } from './resolved-ops.js';
import { BLOCK_BYTES, objectKey } from './types.js';
import type { ObjectId, ObjectVersion } from './types.js';

/** No data block. */
export const NO_LOC = -1;

/** One object's state. */
export class ObjState {
  sizeBytes = 0;
  version: ObjectVersion | undefined = undefined;
  readonly attrs = new Map<string, Uint8Array>();
  /** Data-file block per object block, NO_LOC when none. */
  loc = new Int32Array(0);
  /** crc32c of each block's 4 KiB image. */
  crc = new Uint32Array(0);
  /**
   * Block images held in memory: journal-resident blocks (slots of the index's BlockPool), and
   * direct writes in flight (the write's own data).
   */
  readonly mem = new Map<number, Uint8Array>();
  /** Blocks that hold data (not holes). */
  usedBlocks = 0;

  constructor(readonly id: ObjectId) {}

  /** Number of entries of the block map (blocks past it are holes). */
  get mapBlocks(): number { return this.loc.length; }

  /** Grows the block map to cover block `b`. */
  ensure(b: number): void {
    if (b < this.loc.length) return;
    let n = Math.max(16, this.loc.length * 2);
    while (n <= b) n *= 2;
    const loc = new Int32Array(n).fill(NO_LOC);
    loc.set(this.loc);
    const crc = new Uint32Array(n);
    crc.set(this.crc);
    this.loc = loc;
    this.crc = crc;
  }

  /** True when block `b` holds no data. */
  isHole(b: number): boolean {
    return b >= this.loc.length || (this.loc[b] === NO_LOC && !this.mem.has(b));
  }

  /** The data block of `b`, or NO_LOC. */
  locOf(b: number): number {
    return b < this.loc.length ? this.loc[b]! : NO_LOC;
  }
}

/** Callbacks `apply` uses to hand back freed data blocks. */
export type ReleaseFn = (dataBlock: number) => void;

/** Objects and PG metadata, keyed for fast lookup and sorted listing. */
export class ObjectIndex {
  readonly objects = new Map<string, ObjState>();
  readonly pgs = new Map<string, PgRecords>();
  /** Objects with at least one journal-resident block (what a checkpoint must flush). */
  readonly dirty = new Set<ObjState>();
  /** Blocks holding data over all objects (journal-resident or on disk). */
  liveBlocks = 0;
  /** Bytes of journal-resident block images (bounded by the journal size). */
  residentBlocks = 0;

  /** `pool`: where journal-resident images are kept (each OSD store has its own). */
  constructor(private readonly release: ReleaseFn, readonly pool = new BlockPool()) {}

  get(obj: ObjectId): ObjState | undefined {
    return this.objects.get(objectKey(obj));
  }

  /** Returns the object, creating it (size 0) when missing. */
  getOrCreate(obj: ObjectId): ObjState {
    const key = objectKey(obj);
    let o = this.objects.get(key);
    if (o === undefined) {
      o = new ObjState(obj);
      this.objects.set(key, o);
    }
    return o;
  }

  /** Applies one resolved op (live or at replay). */
  apply(op: ResolvedOp): void {
    switch (op.t) {
      case OpType.BLOCKS: {
        const o = this.getOrCreate(op.obj);
        for (let i = 0; i < op.blocks.length; i++) this.setResident(o, op.first + i, op.blocks[i]!, op.crcs[i]!);
        return;
      }
      case OpType.DIRECT: {
        const o = this.getOrCreate(op.obj);
        for (let i = 0; i < op.locs.length; i++) this.setOnDisk(o, op.first + i, op.locs[i]!, op.crcs[i]!, op.bufs?.[i]);
        return;
      }
      case OpType.HOLE: {
        const o = this.get(op.obj);
        if (o === undefined) return;
        const end = Math.min(op.first + op.count, o.mapBlocks);
        for (let b = op.first; b < end; b++) this.setHole(o, b);
        return;
      }
      case OpType.SIZE: this.getOrCreate(op.obj).sizeBytes = op.sizeBytes; return;
      case OpType.TOUCH: this.getOrCreate(op.obj); return;
      case OpType.REMOVE: this.remove(op.obj); return;
      case OpType.ATTR: {
        const o = this.getOrCreate(op.obj);
        if (op.value === null) o.attrs.delete(op.name);
        else o.attrs.set(op.name, op.value);
        return;
      }
      case OpType.VERSION: this.getOrCreate(op.obj).version = op.version; return;
      case OpType.PG: this.applyPg(op.pg, op.key, op.value); return;
    }
  }

  private applyPg(pg: string, key: string, value: Uint8Array | null): void {
    let m = this.pgs.get(pg);
    if (value === null) {
      m?.delete(key);
      if (m !== undefined && m.size === 0) this.pgs.delete(pg);
      return;
    }
    if (m === undefined) {
      m = new PgRecords();
      this.pgs.set(pg, m);
    }
    m.set(key, value);
  }

  private dropBlock(o: ObjState, b: number): void {
    if (o.isHole(b)) return;
    const loc = o.loc[b]!;
    if (loc !== NO_LOC) this.release(loc);
    else {
      this.residentBlocks--;
      this.pool.free(o.mem.get(b)!);
    }
    o.loc[b] = NO_LOC;
    o.mem.delete(b);
    o.usedBlocks--;
    this.liveBlocks--;
  }

  private setResident(o: ObjState, b: number, image: Uint8Array, crc: number): void {
    assert(image.length === BLOCK_BYTES, 'block image size');
    o.ensure(b);
    this.dropBlock(o, b);
    o.mem.set(b, this.pool.copyIn(image));
    o.crc[b] = crc;
    o.usedBlocks++;
    this.liveBlocks++;
    this.residentBlocks++;
    this.dirty.add(o);
  }

  private setOnDisk(o: ObjState, b: number, loc: number, crc: number, buf: Uint8Array | undefined): void {
    assert(loc >= 0, 'direct block location');
    o.ensure(b);
    this.dropBlock(o, b);
    o.loc[b] = loc;
    o.crc[b] = crc;
    if (buf !== undefined) o.mem.set(b, buf);
    o.usedBlocks++;
    this.liveBlocks++;
  }

  private setHole(o: ObjState, b: number): void {
    this.dropBlock(o, b);
  }

  private remove(obj: ObjectId): void {
    const o = this.get(obj);
    if (o === undefined) return;
    for (let b = 0; b < o.mapBlocks; b++) this.dropBlock(o, b);
    this.dirty.delete(o);
    this.objects.delete(objectKey(obj));
  }

  /**
   * After a checkpoint wrote block `b` of `o` (journal-resident image `image`) to `loc`:
   * switches it to on-disk when nothing changed it since; returns false when it was
   * superseded (the caller then releases `loc`).
   */
  settleFlushed(o: ObjState, b: number, image: Uint8Array, loc: number): boolean {
    if (this.objects.get(objectKey(o.id)) !== o) return false;
    if (o.locOf(b) !== NO_LOC || o.mem.get(b) !== image) return false;
    o.loc[b] = loc;
    o.mem.delete(b);
    this.residentBlocks--;
    this.pool.free(image);
    return true;
  }

  /** Drops the in-memory copy of a direct write once its pwrite landed (if still current). */
  settleDirect(o: ObjState, b: number, buf: Uint8Array, loc: number): void {
    if (o.locOf(b) === loc && o.mem.get(b) === buf) o.mem.delete(b);
  }

  /** Recomputes `dirty` membership of `o` after flushes. */
  refreshDirty(o: ObjState): void {
    for (const b of o.mem.keys()) {
      if (o.locOf(b) === NO_LOC) return;
    }
    this.dirty.delete(o);
  }

  /** Every data block referenced by live state (for rebuilding the allocator). */
  forEachLoc(fn: (loc: number) => void): void {
    for (const o of this.objects.values()) {
      for (let b = 0; b < o.mapBlocks; b++) if (o.loc[b]! !== NO_LOC) fn(o.loc[b]!);
    }
  }
}
