/**
 * The journal's staging memory: one 4096-aligned buffer that records are encoded into in
 * place, handed out and given back in FIFO order (a record lives from `append` until its batch
 * is durable, and batches complete in order).
 *
 * Why: a record used to be three buffers (the encoded transaction, the record around it, and
 * an aligned copy of the batch for the O_DIRECT write), each one allocation and one copy of
 * the data per write. In the ring the transaction is encoded once, where the record goes, and
 * a batch of adjacent records is one view of the ring, written as is.
 *
 *   [ free | live: records queued or being written | free ]
 *          ^ head - used                           ^ head
 *
 * An allocation is contiguous: when the bytes before the buffer's end are too few it skips
 * them (they count as used until the allocation is given back) and starts at 0.
 */
import { alignedBytes } from '../common/aligned.js';

/** A piece of the ring; `cost` is what `release` must give back (the piece plus any skipped end). */
export interface Staged {
  readonly view: Uint8Array;
  readonly cost: number;
}

export class StagingRing {
  readonly buf: Uint8Array;
  private head = 0;
  private used = 0;

  constructor(bytes: number) {
    this.buf = alignedBytes(bytes);
  }

  /** Bytes handed out and not given back (for tests). */
  get usedBytes(): number { return this.used; }

  /** `n` contiguous bytes (uninitialised), or null when the ring has no room for them now. */
  alloc(n: number): Staged | null {
    const size = this.buf.length;
    let start = this.head;
    let skip = 0;
    if (start + n > size) {
      skip = size - start;
      start = 0;
    }
    if (n <= 0 || this.used + skip + n > size) return null;
    this.used += skip + n;
    this.head = start + n === size ? 0 : start + n;
    return { view: this.buf.subarray(start, start + n), cost: skip + n };
  }

  /**
   * Gives back the last `by` bytes of the latest allocation `s` (nothing was allocated since):
   * a record sized by an upper bound keeps only what its encoding used. `by` may be all of it.
   */
  shrinkLast(s: Staged, by: number): Staged {
    const start = s.view.byteOffset - this.buf.byteOffset;
    const skip = s.cost - s.view.length;
    if (by === s.view.length) {
      // Undo the allocation entirely, the skipped end included: the live bytes end where they did.
      this.used -= s.cost;
      this.head = skip > 0 ? this.buf.length - skip : start;
      return { view: s.view.subarray(0, 0), cost: 0 };
    }
    const end = start + s.view.length - by;
    this.used -= by;
    this.head = end === this.buf.length ? 0 : end;
    return { view: s.view.subarray(0, s.view.length - by), cost: s.cost - by };
  }

  /** Gives back `cost` bytes, the oldest first (FIFO). */
  release(cost: number): void {
    this.used -= cost;
  }

  /** True when `v` is a piece of this ring. */
  holds(v: Uint8Array): boolean {
    return v.buffer === this.buf.buffer;
  }
}
