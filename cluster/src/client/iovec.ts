/**
 * A caller's scatter list (`Uint8Array[]`, e.g. views of guest memory) addressed as one
 * contiguous buffer: `slice` gives views of a range without copying (the write path hands
 * them to the messenger), `copyIn` copies received chunks into a range (the read path's one
 * copy), `zero` fills a range. Lookup is a binary search over cumulative offsets.
 */
import { assert } from '../common/assert.js';

export class IoVec {
  readonly length: number;
  private readonly starts: number[] = [];

  constructor(readonly views: readonly Uint8Array[]) {
    let n = 0;
    for (const v of views) { this.starts.push(n); n += v.length; }
    this.length = n;
  }

  /** Index of the view holding byte `pos` (pos < length). */
  private find(pos: number): number {
    let lo = 0;
    let hi = this.views.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= pos) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  /** Views of [offset, offset + len) (no copy). */
  slice(offset: number, len: number): Uint8Array[] {
    assert(offset >= 0 && offset + len <= this.length, 'iovec slice out of range');
    const out: Uint8Array[] = [];
    if (len === 0) return out;
    let i = this.find(offset);
    let pos = offset;
    let left = len;
    while (left > 0) {
      const v = this.views[i]!;
      const inView = pos - this.starts[i]!;
      const n = Math.min(left, v.length - inView);
      if (n > 0) out.push(v.subarray(inView, inView + n));
      pos += n; left -= n; i++;
    }
    return out;
  }

  /** Copies `src` chunks (at most `len` bytes) to [offset, …); returns bytes copied. */
  copyIn(offset: number, src: readonly Uint8Array[], len: number): number {
    let copied = 0;
    let si = 0;
    let sOff = 0;
    for (const dst of this.slice(offset, len)) {
      let dOff = 0;
      while (dOff < dst.length && si < src.length) {
        const s = src[si]!;
        const n = Math.min(dst.length - dOff, s.length - sOff);
        dst.set(s.subarray(sOff, sOff + n), dOff);
        dOff += n; sOff += n; copied += n;
        if (sOff === s.length) { si++; sOff = 0; }
      }
      if (si >= src.length) break;
    }
    return copied;
  }

  /** Zero-fills [offset, offset + len). */
  zero(offset: number, len: number): void {
    for (const v of this.slice(offset, len)) v.fill(0);
  }
}
