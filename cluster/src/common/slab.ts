/**
 * Small byte buffers carved from shared 32 KiB slabs (as Node's own 8 KiB Buffer pool does).
 *
 * Why: a `new Uint8Array(n)` above 64 bytes is an ArrayBuffer with a malloc'd backing store,
 * which V8 tracks and sweeps one by one. An OSD made several per replicated 4k write (frame
 * payloads of ~200 bytes, message encoders), and malloc, free and the ArrayBuffer sweeper
 * were ~15 % of its CPU (perf, docs/benchmarks.md). A view of a slab is only a typed-array
 * object; the slab is freed when its last view is.
 *
 * A slab is never reused, so views never alias; a view kept for long pins its slab (32 KiB at
 * most): code that keeps bytes copies them (`copyBytes`), as it already must for views of
 * received frames. Views are zero-filled and 8-byte aligned.
 */

/** Largest request served from a slab; above it, a buffer of its own. */
export const SMALL_BYTES_MAX = 2048;
const SLAB_BYTES = 32 * 1024;

let slab = new Uint8Array(SLAB_BYTES);
let slabPos = 0;

/** A zero-filled view of `n` bytes: from the current slab when `n ≤ SMALL_BYTES_MAX`. */
export function smallBytes(n: number): Uint8Array {
  if (n > SMALL_BYTES_MAX || n <= 0) return new Uint8Array(n);
  const step = (n + 7) & ~7;
  if (slabPos + step > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabPos = 0;
  }
  const v = slab.subarray(slabPos, slabPos + n);
  slabPos += step;
  return v;
}
