/**
 * Reusable 4096-aligned buffers for large received frame data (≥ 64 KiB), handed back
 * explicitly by the code that knows nobody reads them any more.
 *
 * Why: an OSD under 1 MiB writes receives ~240 MiB/s; each frame's data was a fresh
 * `alignedBytes` buffer (malloc, fresh pages to fault in) that only a V8 GC frees, so the malloc
 * heap held tens of MiB of dead buffers between mark-compacts and the OSD's RSS peaked near
 * 200 MiB (docs/benchmarks.md, "Session 6"). A buffer given back is reused by the next frame of
 * its size class: no allocation, no page faults, nothing for the GC.
 *
 * Safety: `giveBulk` is an optimisation, never required — a buffer not given back is collected
 * as before. It must only be called once nothing can read or write the buffer again (the OSD
 * calls it when a write op is committed everywhere and was executed exactly once, and when a
 * replica's sub-op is committed: docs/cluster-protocol.md §6, "Reused data buffers"). Sizes are rounded up to a power of
 * two; buffers above CLASS_MAX_BYTES are never pooled. Over the cap on free bytes, the class
 * taken from least recently loses its free buffers first.
 */
import { ALIGNED_MIN_BYTES, alignedBytes, bulkBytes } from './aligned.js';
import { assert } from './assert.js';

const CLASS_MIN_LOG2 = 16; // 64 KiB = ALIGNED_MIN_BYTES
const CLASS_MAX_LOG2 = 22; // 4 MiB: the frame decoder's largest preallocation
/** Largest buffer the pool keeps. */
export const CLASS_MAX_BYTES = 1 << CLASS_MAX_LOG2;
/** Free buffers kept at most (bytes, over all classes); beyond it, given buffers go to the GC. */
export const BULK_FREE_BYTES_MAX = 16 << 20;

interface Entry {
  /** The whole class-sized aligned view. */
  readonly full: Uint8Array;
  readonly cls: number;
  free: boolean;
}

const entries = new WeakMap<ArrayBufferLike, Entry>();
const freeLists: Uint8Array[][] = Array.from({ length: CLASS_MAX_LOG2 + 1 }, () => []);
/** When each class was last taken from (a counter of takes): the cap evicts the stalest class. */
const lastTake: number[] = Array.from({ length: CLASS_MAX_LOG2 + 1 }, () => 0);
let takes = 0;
let freeBytes = 0;

/** Counters (tests, benchmarks). */
export const bulkStats = { taken: 0, reused: 0, given: 0, dropped: 0 };

function classOf(n: number): number {
  let c = CLASS_MIN_LOG2;
  while (1 << c < n) c++;
  return c;
}

/**
 * An uninitialised buffer of `n` bytes, 4096-aligned when `n` ≥ 64 KiB (like `bulkBytes`):
 * a reused one when the pool has one of its class.
 */
export function takeBulk(n: number): Uint8Array {
  if (n < ALIGNED_MIN_BYTES || n > CLASS_MAX_BYTES) return bulkBytes(n);
  bulkStats.taken++;
  const cls = classOf(n);
  lastTake[cls] = ++takes;
  const reused = freeLists[cls]!.pop();
  if (reused !== undefined) {
    const e = entries.get(reused.buffer)!;
    e.free = false;
    freeBytes -= reused.length;
    bulkStats.reused++;
    return reused.subarray(0, n);
  }
  const full = alignedBytes(1 << cls);
  entries.set(full.buffer, { full, cls, free: false });
  return full.subarray(0, n);
}

/**
 * Hands back a buffer from `takeBulk` (any view of it) for reuse; other buffers are ignored.
 * The caller guarantees nothing will read or write it again.
 */
export function giveBulk(view: Uint8Array): void {
  const e = entries.get(view.buffer);
  if (e === undefined) return;
  assert(!e.free, 'bulk pool: buffer given back twice');
  bulkStats.given++;
  e.free = true;
  freeLists[e.cls]!.push(e.full);
  freeBytes += e.full.length;
  // Over the cap: forget free buffers of the class taken from least recently (a 4 MiB class
  // left over from a prefill must not crowd out the 1 MiB buffers of the writes that follow).
  while (freeBytes > BULK_FREE_BYTES_MAX) {
    let victim = e.cls;
    for (let c = CLASS_MIN_LOG2; c <= CLASS_MAX_LOG2; c++) {
      if (freeLists[c]!.length > 0 && lastTake[c]! < lastTake[victim]!) victim = c;
    }
    forgetOne(victim);
  }
}

/** Drops one free buffer of class `c` from the pool: a later give of it is ignored, the GC frees it. */
function forgetOne(c: number): void {
  const v = freeLists[c]!.pop()!;
  entries.delete(v.buffer);
  freeBytes -= v.length;
  bulkStats.dropped++;
}

let takesAtTrim = 0;

/**
 * Forgets the free buffers of every class not taken from since the previous call. Called
 * periodically (the OSD's 1 s tick): a class in use keeps its buffers, one the load moved away
 * from (a 4 MiB prefill followed by 4 KiB writes) gives its memory back.
 */
export function trimIdleBulk(): void {
  for (let c = CLASS_MIN_LOG2; c <= CLASS_MAX_LOG2; c++) {
    if (lastTake[c]! > takesAtTrim) continue;
    while (freeLists[c]!.length > 0) forgetOne(c);
  }
  takesAtTrim = takes;
}

/** Bytes of free buffers the pool holds. */
export function bulkFreeBytes(): number {
  return freeBytes;
}
