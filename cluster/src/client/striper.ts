/**
 * The striper (pure): maps a byte range of an image (Ceph calls it the "file") onto RADOS
 * objects, with Ceph's `file_layout_t` semantics (src/osdc/Striper.cc `file_to_extents`,
 * `extent_to_file`, `object_truncate_size`, `get_num_objects`). Names follow Ceph so `grep`
 * finds both.
 *
 * A layout is `{objectSize, stripeUnit, stripeCount}`. The file is cut into blocks of
 * `stripeUnit` bytes dealt round-robin over `stripeCount` objects (one "stripe" = one row of
 * stripeCount blocks); when those objects are full (`objectSize / stripeUnit` stripes), the
 * next "object set" of stripeCount objects begins. With the RBD defaults (stripeUnit =
 * objectSize, stripeCount = 1) object N simply holds bytes [N·objectSize, (N+1)·objectSize).
 *
 * ```
 *  stripeUnit su = 64K, stripeCount sc = 4, objectSize os = 256K (4 stripes per object)
 *                obj 0    obj 1    obj 2    obj 3      ← object set 0
 *  stripe 0  | blk 0  | blk 1  | blk 2  | blk 3  |
 *  stripe 1  | blk 4  | blk 5  | blk 6  | blk 7  |
 *  stripe 2  | blk 8  | blk 9  | blk 10 | blk 11 |
 *  stripe 3  | blk 12 | blk 13 | blk 14 | blk 15 |
 *                obj 4    obj 5    obj 6    obj 7      ← object set 1
 *  stripe 4  | blk 16 | …
 * ```
 *
 * Numbers are JS numbers (offsets < 2^53, asserted); integer division goes through `divFloor`,
 * which corrects the rare off-by-one of a floating-point quotient above 2^51.
 */
import { assert, assertIntInRange } from '../common/assert.js';

/** A file layout (Ceph's `file_layout_t`, trimmed to what RBD uses). */
export interface FileLayout {
  /** Bytes per object; a multiple of `stripeUnit`. */
  readonly objectSize: number;
  /** Bytes per block written to one object before moving to the next. */
  readonly stripeUnit: number;
  /** Objects a stripe spans. */
  readonly stripeCount: number;
}

/** RBD defaults: 4 MiB objects, stripe_unit = object_size, stripe_count 1. */
export const DEFAULT_LAYOUT: FileLayout = { objectSize: 4 * 1024 * 1024, stripeUnit: 4 * 1024 * 1024, stripeCount: 1 };

/** Largest object size we accept (RBD's order 25 = 32 MiB). */
export const OBJECT_SIZE_MAX = 32 * 1024 * 1024;
/** Smallest object size (RBD's order 12 = 4 KiB). */
export const OBJECT_SIZE_MIN = 4096;

/** A piece of the caller's buffer: `length` bytes at `bufferOffset` (= fileOffset − range start). */
export interface BufferExtent {
  /** Offset in the image (file) of this piece. */
  readonly fileOffset: number;
  /** Offset in the caller's buffer (0 = the start of the requested range). */
  readonly bufferOffset: number;
  readonly length: number;
}

/** A contiguous byte range of one object and the buffer pieces that map onto it, in order. */
export interface ObjectExtent {
  readonly objectNo: number;
  readonly offsetInObject: number;
  readonly length: number;
  readonly bufferExtents: readonly BufferExtent[];
}

/** Integer floor division for non-negative safe integers (exact above 2^51 too). */
export function divFloor(a: number, b: number): number {
  let q = Math.floor(a / b);
  // Why: a / b is rounded to the nearest double; near 2^53 that can round up across an integer.
  if (q * b > a) q--;
  else if ((q + 1) * b <= a) q++;
  return q;
}

/** Returns an error message for an invalid layout, or null when valid. */
export function layoutError(l: FileLayout): string | null {
  if (!Number.isInteger(l.objectSize) || l.objectSize < OBJECT_SIZE_MIN || l.objectSize > OBJECT_SIZE_MAX) {
    return `object size must be an integer in [${OBJECT_SIZE_MIN}, ${OBJECT_SIZE_MAX}], got ${l.objectSize}`;
  }
  if (!Number.isInteger(l.stripeUnit) || l.stripeUnit < 512 || l.stripeUnit % 512 !== 0) {
    return `stripe unit must be a positive multiple of 512, got ${l.stripeUnit}`;
  }
  if (l.objectSize % l.stripeUnit !== 0) return `object size ${l.objectSize} is not a multiple of stripe unit ${l.stripeUnit}`;
  if (!Number.isInteger(l.stripeCount) || l.stripeCount < 1 || l.stripeCount > 4096) {
    return `stripe count must be an integer in [1, 4096], got ${l.stripeCount}`;
  }
  return null;
}

function assertLayout(l: FileLayout): void {
  const e = layoutError(l);
  assert(e === null, e ?? '');
}

/**
 * Ceph's `file_to_extents`: the object extents covering `[offset, offset + length)`, sorted
 * by object number, each with the buffer pieces it receives in buffer order. Extents of one
 * object that touch are merged, so a contiguous range gives at most one extent per object.
 */
export function fileToExtents(layout: FileLayout, offset: number, length: number): ObjectExtent[] {
  assertLayout(layout);
  assertIntInRange(offset, 0, Number.MAX_SAFE_INTEGER, 'offset');
  assertIntInRange(length, 0, Number.MAX_SAFE_INTEGER - offset, 'length');
  const su = layout.stripeUnit;
  const sc = layout.stripeCount;
  const stripesPerObject = layout.objectSize / su;
  // objectNo → extents of that object (mutable while building).
  const byObject = new Map<number, { objectNo: number; offsetInObject: number; length: number; bufferExtents: BufferExtent[] }[]>();
  let cur = offset;
  let left = length;
  while (left > 0) { // Bounded: each pass consumes at least one byte, at most one block.
    const blockNo = divFloor(cur, su);
    const stripeNo = divFloor(blockNo, sc);
    const stripePos = blockNo % sc;
    const objectSetNo = divFloor(stripeNo, stripesPerObject);
    const objectNo = objectSetNo * sc + stripePos;
    const blockStart = (stripeNo % stripesPerObject) * su;
    const blockOff = cur % su;
    const xLen = Math.min(left, su - blockOff);
    const xOffset = blockStart + blockOff;
    let list = byObject.get(objectNo);
    if (list === undefined) { list = []; byObject.set(objectNo, list); }
    const last = list[list.length - 1];
    const piece: BufferExtent = { fileOffset: cur, bufferOffset: cur - offset, length: xLen };
    if (last !== undefined && last.offsetInObject + last.length === xOffset) {
      last.length += xLen;
      last.bufferExtents.push(piece);
    } else {
      list.push({ objectNo, offsetInObject: xOffset, length: xLen, bufferExtents: [piece] });
    }
    left -= xLen;
    cur += xLen;
  }
  const out: ObjectExtent[] = [];
  for (const no of [...byObject.keys()].sort((a, b) => a - b)) out.push(...byObject.get(no)!);
  return out;
}

/** A range of the file (image). */
export interface FileExtent {
  readonly offset: number;
  readonly length: number;
}

/** Ceph's `extent_to_file`: the file ranges that `[off, off + len)` of object `objectNo` hold. */
export function extentToFile(layout: FileLayout, objectNo: number, off: number, len: number): FileExtent[] {
  assertLayout(layout);
  assertIntInRange(objectNo, 0, Number.MAX_SAFE_INTEGER, 'objectNo');
  assertIntInRange(off, 0, layout.objectSize, 'off');
  assertIntInRange(len, 0, layout.objectSize - off, 'len');
  const su = layout.stripeUnit;
  const sc = layout.stripeCount;
  const stripesPerObject = layout.objectSize / su;
  const stripePos = objectNo % sc;
  const objectSetNo = divFloor(objectNo, sc);
  const out: FileExtent[] = [];
  let offInBlock = off % su;
  while (len > 0) {
    const stripeNo = divFloor(off, su) + objectSetNo * stripesPerObject;
    const blockNo = stripeNo * sc + stripePos;
    const extentOff = blockNo * su + offInBlock;
    const extentLen = Math.min(len, su - offInBlock);
    out.push({ offset: extentOff, length: extentLen });
    off += extentLen;
    len -= extentLen;
    offInBlock = 0;
  }
  return out;
}

/**
 * Ceph's `object_truncate_size`: how many bytes object `objectNo` holds when the file is
 * `fileSize` bytes long (used by shrink to remove or truncate objects past the new end).
 */
export function objectTruncateSize(layout: FileLayout, objectNo: number, fileSize: number): number {
  assertLayout(layout);
  if (fileSize === 0) return 0;
  const { objectSize, stripeUnit: su, stripeCount: sc } = layout;
  const stripesPerObject = objectSize / su;
  const objectSetNo = divFloor(objectNo, sc);
  const truncObjectSetNo = divFloor(divFloor(fileSize, objectSize), sc);
  if (objectSetNo > truncObjectSetNo) return 0;
  if (objectSetNo < truncObjectSetNo) return objectSize;
  const truncBlockNo = divFloor(fileSize, su);
  const truncStripeNo = divFloor(truncBlockNo, sc);
  const truncStripePos = truncBlockNo % sc;
  const truncObjectNo = truncObjectSetNo * sc + truncStripePos;
  const stripeInObject = truncStripeNo % stripesPerObject;
  if (objectNo < truncObjectNo) return (stripeInObject + 1) * su;
  if (objectNo > truncObjectNo) return stripeInObject * su;
  return stripeInObject * su + (fileSize % su);
}

/** Ceph's `get_num_objects`: how many objects a file of `fileSize` bytes spans. */
export function numObjects(layout: FileLayout, fileSize: number): number {
  assertLayout(layout);
  const period = layout.stripeCount * layout.objectSize;
  const numPeriods = divFloor(fileSize + period - 1, period);
  const remainderBytes = fileSize % period;
  let remainderObjs = 0;
  if (remainderBytes > 0 && remainderBytes < layout.stripeCount * layout.stripeUnit) {
    remainderObjs = layout.stripeCount - divFloor(remainderBytes + layout.stripeUnit - 1, layout.stripeUnit);
  }
  return numPeriods * layout.stripeCount - remainderObjs;
}
