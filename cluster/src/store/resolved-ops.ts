/**
 * Resolved ops: what a transaction becomes after read-modify-write, and what a journal TXN
 * record carries. Every op states an absolute result ("block 7 of obj now holds these 4096
 * bytes", "size is now N"), never a delta, so applying a record is deterministic and replay
 * needs no reads (except to verify direct writes). The same `ObjectIndex.apply` runs live and
 * at replay.
 *
 * TXN payload: u16 opCount, then per op u8 type and its fields (little-endian):
 *   BLOCKS  1: key, u32 firstBlock, u32 count, count × u32 crc, count × 4096 data
 *   DIRECT  2: key, u32 firstBlock, u32 count, count × (u32 dataBlock, u32 crc)
 *   HOLE    3: key, u32 firstBlock, u32 count
 *   SIZE    4: key, u64 sizeBytes
 *   REMOVE  5: key
 *   ATTR    6: key, str name, u8 present, [bytes value]
 *   VERSION 7: key, u32 epoch, u64 seq
 *   PG      8: str pg, str key, u8 present, [bytes value]
 *   TOUCH   9: key
 * where key = u32 pool, str name.
 */
import { CodecError, Reader, Writer, copyBytes } from '../common/codec.js';
import type { ObjectName, PoolId } from '../common/ids.js';
import { BLOCK_BYTES } from './types.js';
import type { ObjectId, ObjectVersion } from './types.js';

export const OpType = { BLOCKS: 1, DIRECT: 2, HOLE: 3, SIZE: 4, REMOVE: 5, ATTR: 6, VERSION: 7, PG: 8, TOUCH: 9 } as const;

/** A resolved op (see the module comment). */
export type ResolvedOp =
  | { readonly t: 1; readonly obj: ObjectId; readonly first: number; readonly blocks: readonly Uint8Array[]; readonly crcs: readonly number[] }
  | { readonly t: 2; readonly obj: ObjectId; readonly first: number; readonly locs: readonly number[]; readonly crcs: readonly number[]; readonly bufs?: readonly Uint8Array[] }
  | { readonly t: 3; readonly obj: ObjectId; readonly first: number; readonly count: number }
  | { readonly t: 4; readonly obj: ObjectId; readonly sizeBytes: number }
  | { readonly t: 5; readonly obj: ObjectId }
  | { readonly t: 6; readonly obj: ObjectId; readonly name: string; readonly value: Uint8Array | null }
  | { readonly t: 7; readonly obj: ObjectId; readonly version: ObjectVersion }
  | { readonly t: 8; readonly pg: string; readonly key: string; readonly value: Uint8Array | null }
  | { readonly t: 9; readonly obj: ObjectId };

const VALUE_MAX = 1 << 20;

function writeKey(w: Writer, obj: ObjectId): void {
  w.u32(obj.pool).str(obj.name);
}

function readKey(r: Reader): ObjectId {
  const pool = r.u32() as PoolId;
  const name = r.str(4096) as ObjectName;
  return { pool, name };
}

/** Upper bound of the encoded size of an op; used to size buffers before encoding. */
export function encodedOpBound(op: ResolvedOp): number {
  const keyBytes = 'obj' in op ? 8 + op.obj.name.length * 3 : 0;
  switch (op.t) {
    case OpType.BLOCKS: return 16 + keyBytes + op.blocks.length * (4 + BLOCK_BYTES);
    case OpType.DIRECT: return 16 + keyBytes + op.locs.length * 8;
    case OpType.ATTR: return 16 + keyBytes + op.name.length * 3 + (op.value?.length ?? 0);
    case OpType.PG: return 16 + (op.pg.length + op.key.length) * 3 + (op.value?.length ?? 0);
    default: return 24 + keyBytes;
  }
}

/** Appends one op. */
export function encodeOp(w: Writer, op: ResolvedOp): void {
  w.u8(op.t);
  switch (op.t) {
    case OpType.BLOCKS:
      writeKey(w, op.obj);
      w.u32(op.first).u32(op.blocks.length);
      for (const c of op.crcs) w.u32(c);
      for (const b of op.blocks) w.raw(b);
      return;
    case OpType.DIRECT:
      writeKey(w, op.obj);
      w.u32(op.first).u32(op.locs.length);
      for (let i = 0; i < op.locs.length; i++) w.u32(op.locs[i]!).u32(op.crcs[i]!);
      return;
    case OpType.HOLE: writeKey(w, op.obj); w.u32(op.first).u32(op.count); return;
    case OpType.SIZE: writeKey(w, op.obj); w.u64(op.sizeBytes); return;
    case OpType.REMOVE: writeKey(w, op.obj); return;
    case OpType.TOUCH: writeKey(w, op.obj); return;
    case OpType.ATTR:
      writeKey(w, op.obj);
      w.str(op.name).bool(op.value !== null);
      if (op.value !== null) w.bytes(op.value);
      return;
    case OpType.VERSION: writeKey(w, op.obj); w.u32(op.version.epoch).u64(op.version.seq); return;
    case OpType.PG:
      w.str(op.pg).str(op.key).bool(op.value !== null);
      if (op.value !== null) w.bytes(op.value);
      return;
  }
}

/** Upper bound of the encoded length of a TXN payload of `ops`. */
export function txnPayloadBound(ops: readonly ResolvedOp[]): number {
  let bound = 2;
  for (const op of ops) bound += encodedOpBound(op);
  return bound;
}

/**
 * Encodes a whole TXN payload into `target` (at least `txnPayloadBound(ops)` long) and answers
 * the view of `target` it occupies (a buffer of its own only if the bound was wrong).
 */
export function encodeTxnPayloadInto(ops: readonly ResolvedOp[], target: Uint8Array): Uint8Array {
  const w = Writer.into(target);
  w.u16(ops.length);
  for (const op of ops) encodeOp(w, op);
  return w.finish();
}

function decodeOp(r: Reader): ResolvedOp {
  const t = r.u8();
  switch (t) {
    case OpType.BLOCKS: {
      const obj = readKey(r);
      const first = r.u32();
      const count = r.u32();
      if (count > 1 << 16) throw new CodecError('too many blocks in op');
      const crcs: number[] = [];
      for (let i = 0; i < count; i++) crcs.push(r.u32());
      // Why slice: the record buffer is a big read chunk; do not pin it.
      const blocks: Uint8Array[] = [];
      for (let i = 0; i < count; i++) blocks.push(copyBytes(r.raw(BLOCK_BYTES)));
      return { t, obj, first, blocks, crcs };
    }
    case OpType.DIRECT: {
      const obj = readKey(r);
      const first = r.u32();
      const count = r.u32();
      if (count > 1 << 16) throw new CodecError('too many blocks in op');
      const locs: number[] = [];
      const crcs: number[] = [];
      for (let i = 0; i < count; i++) { locs.push(r.u32()); crcs.push(r.u32()); }
      return { t, obj, first, locs, crcs };
    }
    case OpType.HOLE: { const obj = readKey(r); return { t, obj, first: r.u32(), count: r.u32() }; }
    case OpType.SIZE: { const obj = readKey(r); return { t, obj, sizeBytes: r.u64() }; }
    case OpType.REMOVE: return { t, obj: readKey(r) };
    case OpType.TOUCH: return { t, obj: readKey(r) };
    case OpType.ATTR: {
      const obj = readKey(r);
      const name = r.str();
      return { t, obj, name, value: r.bool() ? copyBytes(r.bytes(VALUE_MAX)) : null };
    }
    case OpType.VERSION: { const obj = readKey(r); return { t, obj, version: { epoch: r.u32(), seq: r.u64() } }; }
    case OpType.PG: {
      const pg = r.str();
      const key = r.str();
      return { t, pg, key, value: r.bool() ? copyBytes(r.bytes(VALUE_MAX)) : null };
    }
    default: throw new CodecError(`unknown resolved op ${t}`);
  }
}

/** Decodes a TXN payload; throws CodecError on malformed input. */
export function decodeTxnPayload(payload: Uint8Array): ResolvedOp[] {
  const r = new Reader(payload);
  const n = r.u16();
  const ops: ResolvedOp[] = [];
  for (let i = 0; i < n; i++) ops.push(decodeOp(r));
  r.end();
  return ops;
}
