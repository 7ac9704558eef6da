/**
 * Data-file block allocation, and the rule for when a freed block may be reused.
 *
 * Why freed blocks are not reused at once: after a crash the store rebuilds from the last
 * durable checkpoint plus the journal. A block dropped by transaction T is still referenced
 * by that checkpoint (and DIRECT records before T name it and are verified by crc at replay),
 * so overwriting it before a *newer* checkpoint is durable could corrupt what replay rebuilds.
 * Hence: `release` parks a block; the checkpoint that starts next takes the parked set
 * (`takeParked`) and, once its meta file is durable, and once every read that might still be
 * reading the old contents has finished (`InflightGate`), hands it to `makeReusable`.
 *
 * Capacity: the data file grows on demand (blocks past `highWater` are allocated by
 * extending it); `heldBlocks` counts parked blocks so the store can bound live + parked.
 */
import { assert } from '../common/assert.js';

/** Free-block bookkeeping for the data file. */
export class BlockAllocator {
  private free: number[] = [];
  private parked: number[] = [];
  /** Blocks [0, highWater) have been handed out at least once. */
  private highWater = 0;
  /** Released blocks not yet reusable (parked or inside a running checkpoint's batch). */
  heldBlocks = 0;

  /** A free block (reuses freed ones first; extends the file otherwise). */
  alloc(): number {
    const b = this.free.pop();
    if (b !== undefined) return b;
    return this.highWater++;
  }

  /** Parks a block that live state no longer references. */
  release(block: number): void {
    assert(block >= 0 && block < this.highWater, `release of unknown block ${block}`);
    this.parked.push(block);
    this.heldBlocks++;
  }

  /** Takes the parked set at a checkpoint's snapshot point. */
  takeParked(): number[] {
    const batch = this.parked;
    this.parked = [];
    return batch;
  }

  /** Makes a batch reusable (its checkpoint is durable and no read can still see it). */
  makeReusable(batch: readonly number[]): void {
    for (const b of batch) this.free.push(b);
    this.heldBlocks -= batch.length;
    assert(this.heldBlocks >= 0, 'held block count');
  }

  /**
   * Rebuilds from the set of referenced blocks (at open): everything below the high-water
   * mark that nobody references is free.
   */
  rebuild(forEachUsed: (fn: (block: number) => void) => void): void {
    const used = new Set<number>();
    let high = 0;
    forEachUsed((b) => {
      used.add(b);
      if (b + 1 > high) high = b + 1;
    });
    this.highWater = high;
    this.free = [];
    this.parked = [];
    this.heldBlocks = 0;
    // Why descending: `alloc` pops, so low blocks are reused first and the file stays compact.
    for (let b = high - 1; b >= 0; b--) if (!used.has(b)) this.free.push(b);
  }

  /** Blocks the data file spans. */
  get highWaterBlocks(): number { return this.highWater; }
  /** Free blocks below the high-water mark. */
  get freeBlocks(): number { return this.free.length; }
}

/**
 * Tracks operations in flight by generation, so a caller can wait for "everything that
 * started before now" without waiting for operations that start later (no starvation under
 * a steady load).
 */
export class InflightGate {
  private gen = 0;
  private readonly counts = new Map<number, number>();
  private waiters: { gen: number; cb: () => void }[] = [];

  /** Marks an operation started; pass the result to `leave`. */
  enter(): number {
    this.counts.set(this.gen, (this.counts.get(this.gen) ?? 0) + 1);
    return this.gen;
  }

  /** Marks an operation finished. */
  leave(gen: number): void {
    const n = this.counts.get(gen);
    assert(n !== undefined && n > 0, 'gate leave without enter');
    if (n === 1) this.counts.delete(gen);
    else this.counts.set(gen, n - 1);
    this.wake();
  }

  /**
   * Calls `cb` once every operation entered before this call has left. May call it
   * synchronously when none is in flight (internal use only).
   */
  afterCurrent(cb: () => void): void {
    const gen = this.gen++;
    this.waiters.push({ gen, cb });
    this.wake();
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    let oldest = Infinity;
    for (const g of this.counts.keys()) if (g < oldest) oldest = g;
    const ready = this.waiters.filter((w) => w.gen < oldest);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.gen >= oldest);
    for (const w of ready) w.cb();
  }
}
