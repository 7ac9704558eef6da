/**
 * Turns a caller's `Transaction` into resolved ops (absolute block images, holes, sizes; see
 * resolved-ops.ts) and applies them to the index, op by op, so later ops of the same
 * transaction see earlier ones.
 *
 * Three phases, so that a transaction either applies completely or not at all:
 * 1. `baseReadsNeeded` — blocks that a partial write/zero/truncate must read-modify-write
 *    and that are only on the data file (the store reads and crc-checks them first);
 * 2. `checkTxn` — every check that can fail (limits, object size, space) before any change;
 * 3. `resolveAndApply` — cannot fail; returns the ops to journal and the direct data writes.
 */
import { copyBytes } from '../common/codec.js';
import { crc32c, crc32cBlocks } from '../common/crc32c.js';
import { ClusterError } from '../common/errors.js';
import type { ObjectIndex, ObjState } from './object-index.js';
import { NO_LOC } from './object-index.js';
import { OpType } from './resolved-ops.js';
import type { ResolvedOp } from './resolved-ops.js';
import { BLOCK_BYTES, StoreLimits, objectKey } from './types.js';
import type { ObjectId, Transaction, TxnOp } from './types.js';

const ZERO_BLOCK = new Uint8Array(BLOCK_BYTES);
const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** A block read from the data file for read-modify-write, keyed by `baseKey`. */
export interface BaseBlock { readonly loc: number; readonly data: Uint8Array }
/** Key of a base block. */
export const baseKey = (obj: ObjectId, b: number): string => `${objectKey(obj)}#${b}`;

/** A data-file write produced by a direct write. */
export interface DataWrite {
  readonly loc: number;
  readonly bytes: Uint8Array;
  readonly obj: ObjState;
  readonly first: number;
  /** The per-block views the index caches until the pwrite lands (identity matters). */
  readonly bufs: readonly Uint8Array[];
}

/** Settings the resolver needs from the store. */
export interface ResolveContext {
  readonly index: ObjectIndex;
  readonly directWriteBytes: number;
  readonly objectBytesMax: number;
  readonly alloc: () => number;
  readonly bases: ReadonlyMap<string, BaseBlock>;
  /** Copies a direct write's bytes the store will own (aligned when it writes O_DIRECT). */
  readonly copyDirect: (bytes: Uint8Array) => Uint8Array;
}

/** Partial block ranges an op touches: the blocks whose old content matters. */
function partialBlocks(op: TxnOp): number[] {
  const edges = (start: number, end: number): number[] => {
    const out: number[] = [];
    if (end <= start) return out;
    if (start % BLOCK_BYTES !== 0) out.push(Math.floor(start / BLOCK_BYTES));
    if (end % BLOCK_BYTES !== 0) out.push(Math.floor(end / BLOCK_BYTES));
    return out;
  };
  switch (op.op) {
    case 'write': return edges(op.offset, op.offset + op.data.length);
    case 'zero': return edges(op.offset, op.offset + op.length);
    // Why not only when shrinking: an earlier op of the same transaction may grow the object
    // first (seed 24553 of store-crash-sim found it); reading one block too many is harmless.
    case 'truncate': return op.sizeBytes % BLOCK_BYTES !== 0 ? [Math.floor(op.sizeBytes / BLOCK_BYTES)] : [];
    default: return [];
  }
}

/** Blocks (object, index, data-file location) to read before this transaction can apply. */
export function baseReadsNeeded(index: ObjectIndex, txn: Transaction, have: ReadonlyMap<string, BaseBlock>): { obj: ObjState; b: number; loc: number; crc: number }[] {
  const out: { obj: ObjState; b: number; loc: number; crc: number }[] = [];
  for (const op of txn.ops) {
    if (!('obj' in op)) continue;
    const o = index.get(op.obj);
    if (o === undefined) continue;
    for (const b of partialBlocks(op)) {
      const loc = o.locOf(b);
      if (loc === NO_LOC || o.mem.has(b)) continue;
      if (have.get(baseKey(o.id, b))?.loc === loc) continue;
      out.push({ obj: o, b, loc, crc: o.crc[b]! });
    }
  }
  return out;
}

function invalid(message: string): ClusterError {
  return new ClusterError('CLU_ERR_INVALID', message);
}

/** Input checks that do not depend on state (done at submit). */
export function checkTxnShape(txn: Transaction, objectBytesMax: number): ClusterError | null {
  if (txn.ops.length === 0 || txn.ops.length > StoreLimits.opsPerTxnMax) return invalid(`transaction has ${txn.ops.length} ops`);
  for (const op of txn.ops) {
    const e = checkOpShape(op, objectBytesMax);
    if (e !== null) return e;
  }
  return null;
}

function checkOpShape(op: TxnOp, objectBytesMax: number): ClusterError | null {
  const intIn = (v: number, max: number): boolean => Number.isSafeInteger(v) && v >= 0 && v <= max;
  switch (op.op) {
    case 'write': return intIn(op.offset, objectBytesMax - op.data.length) ? null : invalid(`write past object size limit: ${op.offset}+${op.data.length}`);
    case 'zero': return intIn(op.offset, Number.MAX_SAFE_INTEGER) && intIn(op.length, Number.MAX_SAFE_INTEGER) ? null : invalid('bad zero range');
    case 'truncate': return intIn(op.sizeBytes, objectBytesMax) ? null : invalid(`bad truncate size ${op.sizeBytes}`);
    case 'setattr':
      if (utf8Bytes(op.key) > StoreLimits.attrKeyBytesMax || op.key.length === 0) return invalid('bad attribute key');
      return op.value.length <= StoreLimits.attrValueBytesMax ? null : invalid(`attribute value of ${op.value.length} bytes`);
    case 'version': return intIn(op.version.epoch, 0xffff_ffff) && intIn(op.version.seq, Number.MAX_SAFE_INTEGER) ? null : invalid('bad version');
    case 'pgput':
      if (utf8Bytes(op.key) > StoreLimits.attrKeyBytesMax || utf8Bytes(op.pg) > StoreLimits.attrKeyBytesMax) return invalid('bad pg key');
      return op.value.length <= StoreLimits.pgValueBytesMax ? null : invalid(`pg value of ${op.value.length} bytes`);
    default: return null;
  }
}

/** Blocks a write sends straight to the data file: the aligned middle, when long enough. */
export function directRange(offset: number, length: number, directWriteBytes: number): { first: number; count: number } {
  const first = Math.ceil(offset / BLOCK_BYTES);
  const end = Math.floor((offset + length) / BLOCK_BYTES);
  const count = end - first;
  return count > 0 && count * BLOCK_BYTES >= directWriteBytes ? { first, count } : { first, count: 0 };
}

/** Upper bound of the journal payload and of new data blocks the transaction needs. */
export function txnBounds(txn: Transaction, directWriteBytes: number): { payloadBytes: number; newBlocks: number } {
  let payloadBytes = 2;
  let newBlocks = 0;
  for (const op of txn.ops) {
    const keyBytes = 'obj' in op ? 16 + utf8Bytes(op.obj.name) : 0;
    if (op.op === 'write') {
      const blocks = Math.ceil((op.offset % BLOCK_BYTES + op.data.length) / BLOCK_BYTES);
      const direct = directRange(op.offset, op.data.length, directWriteBytes).count;
      payloadBytes += 3 * (keyBytes + 16) + (blocks - direct) * (BLOCK_BYTES + 4) + direct * 8 + 32;
      newBlocks += blocks;
    } else if (op.op === 'zero' || op.op === 'truncate') {
      payloadBytes += 4 * (keyBytes + 16) + 2 * (BLOCK_BYTES + 4);
    } else if (op.op === 'setattr') {
      payloadBytes += keyBytes + 16 + utf8Bytes(op.key) + op.value.length;
    } else if (op.op === 'pgput' || op.op === 'pgrm') {
      payloadBytes += 16 + utf8Bytes(op.pg) + utf8Bytes(op.key) + (op.op === 'pgput' ? op.value.length : 0);
    } else {
      payloadBytes += keyBytes + 32 + ('key' in op ? utf8Bytes(op.key) : 0);
    }
  }
  return { payloadBytes, newBlocks };
}

/** Checks that depend on state: attribute counts (space is checked by the store). */
export function checkTxnState(index: ObjectIndex, txn: Transaction): ClusterError | null {
  const added = new Map<string, Set<string>>();
  for (const op of txn.ops) {
    if (op.op !== 'setattr') continue;
    const o = index.get(op.obj);
    if (o?.attrs.has(op.key) === true) continue;
    const k = objectKey(op.obj);
    const s = added.get(k) ?? new Set<string>();
    s.add(op.key);
    added.set(k, s);
    if ((o?.attrs.size ?? 0) + s.size > StoreLimits.attrsPerObjectMax) return invalid(`more than ${StoreLimits.attrsPerObjectMax} attributes`);
  }
  return null;
}

/** True when `v` is the whole of its buffer (nothing else can be pinned through it). */
function ownsBuffer(v: Uint8Array): boolean {
  return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength;
}

/** Applies the transaction; returns the resolved ops (for the journal) and direct data writes. */
export function resolveAndApply(ctx: ResolveContext, txn: Transaction): { ops: ResolvedOp[]; dataWrites: DataWrite[] } {
  const ops: ResolvedOp[] = [];
  const dataWrites: DataWrite[] = [];
  const emit = (op: ResolvedOp): void => { ctx.index.apply(op); ops.push(op); };
  // A handed-off value that is a whole buffer of its own is kept as is; a view into a larger
  // buffer (a received frame, a slab) is copied, never pinned.
  const keep = (v: Uint8Array): Uint8Array => (txn.handOff && ownsBuffer(v) ? v : copyBytes(v));
  for (const op of txn.ops) {
    switch (op.op) {
      case 'write': resolveWrite(ctx, op.obj, op.offset, op.data, emit, dataWrites, txn.handOff); break;
      case 'zero': resolveZero(ctx, op.obj, op.offset, op.length, emit); break;
      case 'truncate': resolveTruncate(ctx, op.obj, op.sizeBytes, emit); break;
      case 'remove': emit({ t: OpType.REMOVE, obj: op.obj }); break;
      case 'touch': emit({ t: OpType.TOUCH, obj: op.obj }); break;
      case 'setattr': emit({ t: OpType.ATTR, obj: op.obj, name: op.key, value: keep(op.value) }); break;
      case 'rmattr': emit({ t: OpType.ATTR, obj: op.obj, name: op.key, value: null }); break;
      case 'version': emit({ t: OpType.VERSION, obj: op.obj, version: { epoch: op.version.epoch, seq: op.version.seq } }); break;
      // Not kept: the index stores PG records as strings (pg-records.ts), so any view will do.
      case 'pgput': emit({ t: OpType.PG, pg: op.pg, key: op.key, value: op.value }); break;
      case 'pgrm': emit({ t: OpType.PG, pg: op.pg, key: op.key, value: null }); break;
    }
  }
  return { ops, dataWrites };
}

/** The current 4 KiB image of block `b` (a copy the caller may modify). */
function baseImage(ctx: ResolveContext, o: ObjState | undefined, b: number): Uint8Array {
  if (o === undefined || o.isHole(b)) return new Uint8Array(BLOCK_BYTES);
  const m = o.mem.get(b);
  if (m !== undefined) return copyBytes(m);
  const base = ctx.bases.get(baseKey(o.id, b));
  if (base === undefined || base.loc !== o.locOf(b)) throw new Error(`resolver: base block ${b} of ${o.id.name} was not read`);
  return copyBytes(base.data);
}

/** Emits BLOCKS ops for images of consecutive blocks starting at `first`. */
function emitBlocks(obj: ObjectId, first: number, images: Uint8Array[], emit: (op: ResolvedOp) => void): void {
  if (images.length === 0) return;
  emit({ t: OpType.BLOCKS, obj, first, blocks: images, crcs: images.map((i) => crc32c(i)) });
}

function resolveWrite(ctx: ResolveContext, obj: ObjectId, offset: number, data: Uint8Array, emit: (op: ResolvedOp) => void, out: DataWrite[], handOff: boolean): void {
  const end = offset + data.length;
  const o = ctx.index.get(obj);
  if (data.length > 0) {
    const direct = directRange(offset, data.length, ctx.directWriteBytes);
    const firstBlock = Math.floor(offset / BLOCK_BYTES);
    const lastBlock = Math.ceil(end / BLOCK_BYTES) - 1;
    let run: Uint8Array[] = [];
    let runFirst = firstBlock;
    for (let b = firstBlock; b <= lastBlock; b++) {
      if (b === direct.first && direct.count > 0) {
        emitBlocks(obj, runFirst, run, emit);
        emitDirect(ctx, obj, data.subarray(b * BLOCK_BYTES - offset, (b + direct.count) * BLOCK_BYTES - offset), b, emit, out, handOff);
        b += direct.count - 1;
        run = [];
        runFirst = b + 1;
        continue;
      }
      const blockStart = b * BLOCK_BYTES;
      const from = Math.max(offset, blockStart);
      const to = Math.min(end, blockStart + BLOCK_BYTES);
      // A whole block is a view of the data: the index copies it into its pool and the journal
      // encodes it before the caller gets control back, so nothing keeps the view.
      const image = to - from === BLOCK_BYTES ? data.subarray(from - offset, to - offset) : baseImage(ctx, o, b);
      if (to - from !== BLOCK_BYTES) image.set(data.subarray(from - offset, to - offset), from - blockStart);
      run.push(image);
    }
    emitBlocks(obj, runFirst, run, emit);
  }
  const size = Math.max(ctx.index.get(obj)?.sizeBytes ?? 0, end);
  emit({ t: OpType.SIZE, obj, sizeBytes: size });
}

function emitDirect(ctx: ResolveContext, obj: ObjectId, bytes: Uint8Array, first: number, emit: (op: ResolvedOp) => void, out: DataWrite[], handOff: boolean): void {
  // Why copy unless handed off: the bytes are read again by the pwrite and by reads until it settles.
  const copy = handOff ? bytes : ctx.copyDirect(bytes);
  const count = copy.length / BLOCK_BYTES;
  const locs: number[] = [];
  const crcs = Array.from(crc32cBlocks(copy, BLOCK_BYTES)); // one native call for all blocks
  const bufs: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    locs.push(ctx.alloc());
    bufs.push(copy.subarray(i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES));
  }
  emit({ t: OpType.DIRECT, obj, first, locs, crcs, bufs });
  const o = ctx.index.get(obj)!;
  // Coalesce runs of consecutive data blocks into one pwrite each.
  let i = 0;
  while (i < count) {
    let j = i + 1;
    while (j < count && locs[j] === locs[j - 1]! + 1) j++;
    out.push({ loc: locs[i]!, bytes: copy.subarray(i * BLOCK_BYTES, j * BLOCK_BYTES), obj: o, first: first + i, bufs: bufs.slice(i, j) });
    i = j;
  }
}

function resolveZero(ctx: ResolveContext, obj: ObjectId, offset: number, length: number, emit: (op: ResolvedOp) => void): void {
  const o = ctx.index.get(obj);
  if (o === undefined || length === 0) return;
  const end = offset + length;
  const firstFull = Math.ceil(offset / BLOCK_BYTES);
  const endFull = Math.floor(end / BLOCK_BYTES);
  const edge = (b: number): void => {
    if (o.isHole(b)) return;
    const image = baseImage(ctx, o, b);
    const blockStart = b * BLOCK_BYTES;
    image.fill(0, Math.max(offset, blockStart) - blockStart, Math.min(end, blockStart + BLOCK_BYTES) - blockStart);
    emitBlocks(obj, b, [image], emit);
  };
  if (endFull < firstFull) return edge(Math.floor(offset / BLOCK_BYTES));
  if (offset % BLOCK_BYTES !== 0) edge(firstFull - 1);
  const holeEnd = Math.min(endFull, o.mapBlocks);
  if (holeEnd > firstFull) emit({ t: OpType.HOLE, obj, first: firstFull, count: holeEnd - firstFull });
  if (end % BLOCK_BYTES !== 0) edge(endFull);
}

function resolveTruncate(ctx: ResolveContext, obj: ObjectId, sizeBytes: number, emit: (op: ResolvedOp) => void): void {
  const o = ctx.index.get(obj);
  if (o !== undefined && sizeBytes < o.sizeBytes) {
    const keep = Math.ceil(sizeBytes / BLOCK_BYTES);
    if (sizeBytes % BLOCK_BYTES !== 0 && !o.isHole(keep - 1)) {
      // Why zero the tail: a later extension must read zeros there, not old bytes.
      const image = baseImage(ctx, o, keep - 1);
      image.fill(0, sizeBytes % BLOCK_BYTES);
      emitBlocks(obj, keep - 1, [image], emit);
    }
    if (o.mapBlocks > keep) emit({ t: OpType.HOLE, obj, first: keep, count: o.mapBlocks - keep });
  }
  emit({ t: OpType.SIZE, obj, sizeBytes });
}

/** True when a partial edge or block image is all zeros (helper for tests). */
export function isZeroBlock(b: Uint8Array): boolean {
  return Buffer.compare(b, ZERO_BLOCK) === 0;
}
