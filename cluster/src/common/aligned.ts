/**
 * Page-aligned byte buffers for O_DIRECT data writes (docs/object-store.md, "Data I/O").
 *
 * O_DIRECT needs the buffer address, file offset and length aligned to the device block
 * (4096 covers every device we run on). V8 cannot allocate an aligned ArrayBuffer, so large
 * bulk buffers (a received write's data, joined from socket chunks) come from the native
 * shim's posix_memalign allocator; they are ordinary Uint8Arrays to everyone else, freed by
 * the GC. Small buffers stay on V8's allocator: an external buffer costs a native call and a
 * finalizer, which only pays when the buffer may go to the disk with O_DIRECT.
 */
import { alignmentOf, allocAligned } from '../../../native/index.js';

/** The alignment O_DIRECT I/O uses (address, offset and length). */
export const DIRECT_ALIGN_BYTES = 4096;
/** From this size on, `bulkBytes` allocates aligned (the store's smallest direct write). */
export const ALIGNED_MIN_BYTES = 64 * 1024;

/** An uninitialised buffer of `n` bytes, 4096-aligned when `n` ≥ ALIGNED_MIN_BYTES. */
export function bulkBytes(n: number): Uint8Array {
  return n >= ALIGNED_MIN_BYTES ? new Uint8Array(allocAligned(n)) : new Uint8Array(n);
}

/** A 4096-aligned copy of `src` (non-empty). */
export function alignedCopy(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(allocAligned(Math.max(1, src.length)));
  out.set(src);
  return src.length === out.length ? out : out.subarray(0, src.length);
}

/** True when `b` can be written with O_DIRECT as is: aligned start, whole blocks. */
export function isDirectAligned(b: Uint8Array): boolean {
  return b.length > 0 && b.length % DIRECT_ALIGN_BYTES === 0 && alignmentOf(b) === 0;
}
