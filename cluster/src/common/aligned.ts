/**
 * Page-aligned byte buffers for O_DIRECT data writes (docs/object-store.md, "Data I/O").
 *
 * O_DIRECT needs the buffer address, file offset and length aligned to the device block
 * (4096 covers every device we run on). V8 cannot allocate an aligned ArrayBuffer, so a large
 * bulk buffer (a received write's data, joined from socket chunks) is an ordinary V8 buffer
 * 4095 bytes longer than asked, and the caller gets the view that starts at its first 4096
 * boundary (backing stores never move). Why not posix_memalign'd external buffers (tried
 * first): 1 MiB alloc + copy cost 0.7-3 ms against 0.22-0.35 ms (fresh pages each time, and
 * only a mark-compact frees them: 53 mark-compacts per 2 GiB allocated against 7).
 */
import { alignmentOf } from '../../../native/index.js';

/** The alignment O_DIRECT I/O uses (address, offset and length). */
export const DIRECT_ALIGN_BYTES = 4096;
/** From this size on, `bulkBytes` allocates aligned (the store's smallest direct write). */
export const ALIGNED_MIN_BYTES = 64 * 1024;

/** An uninitialised 4096-aligned view of `n` bytes (its buffer is 4095 bytes longer). */
export function alignedBytes(n: number): Uint8Array {
  // Why allocUnsafeSlow: no zero fill (every caller overwrites it all), and not from Node's
  // shared 8 KiB pool (the buffer is ours alone).
  const b = Buffer.allocUnsafeSlow(n + DIRECT_ALIGN_BYTES - 1);
  const raw = new Uint8Array(b.buffer, b.byteOffset, b.length);
  const skip = (DIRECT_ALIGN_BYTES - alignmentOf(raw)) % DIRECT_ALIGN_BYTES;
  return raw.subarray(skip, skip + n);
}

/** An uninitialised buffer of `n` bytes, 4096-aligned when `n` ≥ ALIGNED_MIN_BYTES. */
export function bulkBytes(n: number): Uint8Array {
  return n >= ALIGNED_MIN_BYTES ? alignedBytes(n) : new Uint8Array(n);
}

/** A 4096-aligned copy of `src`. */
export function alignedCopy(src: Uint8Array): Uint8Array {
  const out = alignedBytes(src.length);
  out.set(src);
  return out;
}

/** True when `b` can be written with O_DIRECT as is: aligned start, whole blocks. */
export function isDirectAligned(b: Uint8Array): boolean {
  return b.length > 0 && b.length % DIRECT_ALIGN_BYTES === 0 && alignmentOf(b) === 0;
}
