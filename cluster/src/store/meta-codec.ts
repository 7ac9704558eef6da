/**
 * The checkpoint file `meta`: the whole index as of one journal position, replaced atomically
 * (meta.tmp → fdatasync → rename → fsync dir). Replay starts at `journalStart` expecting
 * `nextSeq` and `gen`.
 *
 *   ┌───────────┬────────────┬───────────────┬──────────────┬──────────────┐
 *   │ u32 magic │ u16 version│ u16 reserved  │ u32 crc(body)│ u64 bodyLen  │ body…
 *   └───────────┴────────────┴───────────────┴──────────────┴──────────────┘
 *   body = u8[16] storeUuid | u32 gen | u64 journalStart | u64 nextSeq
 *        | u32 nObjects | object* | u32 nPgs | pg*
 *   object = u32 pool | str name | u64 size | u8 hasVersion [u32 epoch u64 seq]
 *          | u16 nAttrs (str key, bytes value)* | u32 nBlocks (u32 index, u32 dataBlock, u32 crc)*
 *   pg = str pg | u32 n (str key, bytes value)*
 *
 * Every block in the file is on the data file: the checkpoint flushes journal-resident blocks
 * first and passes their new locations in `flushed`.
 */
import { CodecError, Reader, Writer, copyBytes } from '../common/codec.js';
import { crc32c } from '../common/crc32c.js';
import type { ObjectName, PoolId } from '../common/ids.js';
import type { ObjectIndex, ObjState } from './object-index.js';
import { NO_LOC } from './object-index.js';
import { PgRecords } from './pg-records.js';

const META_MAGIC = 0x41544d53; // 'SMTA'
const META_VERSION = 1;
const META_HEADER_BYTES = 20;

/** Where replay resumes, and which incarnation's records it accepts. */
export interface MetaPosition {
  readonly storeUuid: Uint8Array;
  readonly gen: number;
  readonly journalStart: number;
  readonly nextSeq: number;
}

/** Per object, block index → data block chosen by the checkpoint's flush. */
export type FlushMap = Map<ObjState, Map<number, number>>;

function encodeObject(w: Writer, o: ObjState, flushed: Map<number, number> | undefined): void {
  w.u32(o.id.pool).str(o.id.name).u64(o.sizeBytes);
  w.bool(o.version !== undefined);
  if (o.version !== undefined) w.u32(o.version.epoch).u64(o.version.seq);
  w.u16(o.attrs.size);
  for (const [k, v] of o.attrs) w.str(k).bytes(v);
  w.u32(o.usedBlocks);
  let n = 0;
  for (let b = 0; b < o.mapBlocks; b++) {
    const loc = o.loc[b] !== NO_LOC ? o.loc[b]! : (flushed?.get(b) ?? NO_LOC);
    if (loc === NO_LOC) continue;
    w.u32(b).u32(loc).u32(o.crc[b]!);
    n++;
  }
  if (n !== o.usedBlocks) throw new Error(`meta: ${o.id.name} has ${o.usedBlocks} used blocks, encoded ${n}`);
}

/** Encodes the index plus `flushed` (blocks resident in the journal get those locations). */
export function encodeMeta(pos: MetaPosition, index: ObjectIndex, flushed: FlushMap): Uint8Array {
  const w = new Writer(64 * 1024);
  w.raw(pos.storeUuid).u32(pos.gen).u64(pos.journalStart).u64(pos.nextSeq);
  w.u32(index.objects.size);
  for (const o of index.objects.values()) encodeObject(w, o, flushed.get(o));
  w.u32(index.pgs.size);
  for (const [pg, m] of index.pgs) {
    w.str(pg).u32(m.size);
    for (const [k, v] of m.latin1Entries()) w.str(k).latin1(v);
  }
  const body = w.finish();
  const out = new Uint8Array(META_HEADER_BYTES + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, META_MAGIC, true);
  v.setUint16(4, META_VERSION, true);
  v.setUint32(8, crc32c(body), true);
  v.setBigUint64(12, BigInt(body.length), true);
  out.set(body, META_HEADER_BYTES);
  return out;
}

function decodeObject(r: Reader, index: ObjectIndex): void {
  const pool = r.u32() as PoolId;
  const name = r.str(4096) as ObjectName;
  const o = index.getOrCreate({ pool, name });
  o.sizeBytes = r.u64();
  if (r.bool()) o.version = { epoch: r.u32(), seq: r.u64() };
  for (let n = r.u16(); n > 0; n--) o.attrs.set(r.str(), copyBytes(r.bytes()));
  const nBlocks = r.u32();
  for (let i = 0; i < nBlocks; i++) {
    const b = r.u32();
    const loc = r.u32();
    const crc = r.u32();
    o.ensure(b);
    if (o.loc[b] !== NO_LOC) throw new CodecError(`meta: block ${b} of ${name} listed twice`);
    o.loc[b] = loc;
    o.crc[b] = crc;
  }
  o.usedBlocks = nBlocks;
  index.liveBlocks += nBlocks;
}

/** Decodes `meta` into an empty `index`; returns the replay position. Throws CodecError. */
export function decodeMeta(buf: Uint8Array, index: ObjectIndex): MetaPosition {
  if (buf.length < META_HEADER_BYTES) throw new CodecError('meta truncated');
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (v.getUint32(0, true) !== META_MAGIC) throw new CodecError('bad meta magic');
  if (v.getUint16(4, true) !== META_VERSION) throw new CodecError('unsupported meta version');
  const bodyLen = Number(v.getBigUint64(12, true));
  if (bodyLen !== buf.length - META_HEADER_BYTES) throw new CodecError('meta length mismatch');
  const body = buf.subarray(META_HEADER_BYTES);
  if (crc32c(body) !== v.getUint32(8, true)) throw new CodecError('meta crc mismatch');
  const r = new Reader(body);
  const storeUuid = copyBytes(r.raw(16));
  const gen = r.u32();
  const journalStart = r.u64();
  const nextSeq = r.u64();
  for (let n = r.u32(); n > 0; n--) decodeObject(r, index);
  for (let n = r.u32(); n > 0; n--) {
    const pg = r.str();
    const m = new PgRecords();
    for (let k = r.u32(); k > 0; k--) m.setLatin1(r.str(), r.latin1());
    index.pgs.set(pg, m);
  }
  r.end();
  return { storeUuid, gen, journalStart, nextSeq };
}
