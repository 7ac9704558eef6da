/**
 * On-cluster format of images (docs/images.md): object names and the header codec.
 *
 * ```
 *  strata_directory                 attrs  name.<image name> = <id>,  id.<id> = <image name>
 *  strata_header.<id>               attrs  meta  = header (below)
 *                                          fence = u64 LE fencing epoch (bumped by every lock take)
 *                                          lock.strata_lock = OSD lock state (osd-protocol.ts)
 *  strata_data.<id>.<objectNo:016x> bytes  the image data (striper.ts layout)
 *                                   attrs  fence = epoch of the last writer that stamped it
 *
 *  meta v1: u8 version=1 | u64 sizeBytes | u32 objectSize | u32 stripeUnit | u32 stripeCount
 *           | u64 features | u64 createdMs
 * ```
 */
import { CodecError, Reader, Writer } from '../common/codec.js';
import type { FileLayout } from './striper.js';

/** The pool's image directory object (RBD's rbd_directory). */
export const DIRECTORY_OBJECT = 'strata_directory';
/** Header object of image `id`. */
export function headerObject(id: string): string { return `strata_header.${id}`; }
/** Data object `objectNo` of image `id` (RBD's rbd_data.<id>.<016x>). */
export function dataObject(id: string, objectNo: number): string {
  return `strata_data.${id}.${objectNo.toString(16).padStart(16, '0')}`;
}
/** Directory attribute names. */
export function dirNameAttr(name: string): string { return `name.${name}`; }
export function dirIdAttr(id: string): string { return `id.${id}`; }
/** Header attribute names. */
export const META_ATTR = 'meta';
export const FENCE_ATTR = 'fence';
/** The exclusive lock's name on the header (stored by the OSD as `lock.strata_lock`). */
export const LOCK_NAME = 'strata_lock';

/** Feature bits (RBD-like; none changes the format yet). */
export const FEATURE_EXCLUSIVE_LOCK = 0x4;
export const FEATURE_STRIPING = 0x2;

/** Largest image name in bytes. */
export const IMAGE_NAME_MAX_BYTES = 200;

/** Image metadata kept in the header's `meta` attr. */
export interface ImageMeta {
  readonly sizeBytes: number;
  readonly layout: FileLayout;
  readonly features: number;
  readonly createdMs: number;
}

export function encodeMeta(m: ImageMeta): Uint8Array {
  const w = new Writer(48);
  w.u8(1).u64(m.sizeBytes).u32(m.layout.objectSize).u32(m.layout.stripeUnit).u32(m.layout.stripeCount).u64(m.features).u64(m.createdMs);
  return w.finish();
}

export function decodeMeta(b: Uint8Array): ImageMeta {
  const r = new Reader(b);
  const v = r.u8();
  if (v !== 1) throw new CodecError(`image meta version ${v}`);
  const sizeBytes = r.u64();
  const layout = { objectSize: r.u32(), stripeUnit: r.u32(), stripeCount: r.u32() };
  const features = r.u64();
  const createdMs = r.u64();
  r.end();
  return { sizeBytes, layout, features, createdMs };
}

/** Fencing epochs are u64 LE in 8 bytes, compared numerically. */
export function encodeFence(epoch: number): Uint8Array {
  const w = new Writer(8);
  w.u64(epoch);
  return w.finish();
}

export function decodeFence(b: Uint8Array): number {
  const r = new Reader(b);
  const n = r.u64();
  r.end();
  return n;
}

/** Valid image names: 1..200 bytes, no '/', '@' or whitespace (they separate pool/image@snap). */
export function imageNameError(name: string): string | null {
  if (name.length === 0) return 'image name is empty';
  if (Buffer.byteLength(name, 'utf8') > IMAGE_NAME_MAX_BYTES) return `image name longer than ${IMAGE_NAME_MAX_BYTES} bytes`;
  if (/[/@\s]/.test(name)) return `image name '${name}' contains '/', '@' or whitespace`;
  return null;
}
