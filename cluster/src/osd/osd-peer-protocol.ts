/**
 * OSD ↔ OSD messages (0x0300 range; docs/replication.md §5): replicated transactions, peering
 * queries, activation, recovery pushes/pulls, scans for backfill and scrub. Pure codecs.
 *
 * Every payload starts with a version byte (1) and the PG key ("<pool>.<seed hex>") and the
 * primary's interval epoch (`same_interval_since`); a receiver drops messages of an interval
 * older than the newest it has seen for the PG, so a slow sub-op from a dead interval can never
 * land after the new primary's activation.
 */
import { bulkBytes } from '../common/aligned.js';
import { CodecError, Reader, Writer } from '../common/codec.js';
import type { PoolId, ObjectName } from '../common/ids.js';
import type { TxnOp } from '../store/types.js';
import type { PgInfo, PgLogEntry } from '../pg/pg-log.js';
import { readInfo, readLogEntry, writeInfo, writeLogEntry } from '../pg/pg-log.js';
import type { EVersion } from './osd-protocol.js';

const V = 1;

function header(w: Writer, pg: string, interval: number): void { w.u8(V).str(pg).u32(interval); }
function readHeader(r: Reader): { pg: string; interval: number } {
  const v = r.u8();
  if (v !== V) throw new CodecError(`peer msg version ${v}`);
  return { pg: r.str(64), interval: r.u32() };
}
function wv(w: Writer, v: EVersion): void { w.u32(v.epoch).u64(v.seq); }
function rv(r: Reader): EVersion { return { epoch: r.u32(), seq: r.u64() }; }

const T = { write: 1, zero: 2, truncate: 3, remove: 4, touch: 5, setattr: 6, rmattr: 7, version: 8, pgput: 9, pgrm: 10 } as const;

/** Encodes store ops; write bytes go to `data` (in op order, no copy). */
function writeTxnOps(w: Writer, ops: readonly TxnOp[], data: Uint8Array[]): void {
  w.u16(ops.length);
  for (const op of ops) {
    w.u8(T[op.op]);
    if (op.op === 'pgput' || op.op === 'pgrm') {
      w.str(op.pg).str(op.key);
      if (op.op === 'pgput') w.bytes(op.value);
      continue;
    }
    w.u32(op.obj.pool).str(op.obj.name);
    switch (op.op) {
      case 'write': w.u64(op.offset).u32(op.data.length); data.push(op.data); break;
      case 'zero': w.u64(op.offset).u64(op.length); break;
      case 'truncate': w.u64(op.sizeBytes); break;
      case 'remove': case 'touch': break;
      case 'setattr': w.str(op.key).bytes(op.value); break;
      case 'rmattr': w.str(op.key); break;
      case 'version': wv(w, op.version); break;
    }
  }
}

/** Decodes store ops; write bytes are sliced from the concatenated bulk `data`. */
function readTxnOps(r: Reader, data: Uint8Array): TxnOp[] {
  const n = r.u16();
  const ops: TxnOp[] = [];
  let dataPos = 0;
  for (let i = 0; i < n; i++) {
    const code = r.u8();
    if (code === T.pgput || code === T.pgrm) {
      const pg = r.str(64); const key = r.str(256);
      ops.push(code === T.pgput ? { op: 'pgput', pg, key, value: r.bytes(256 * 1024) } : { op: 'pgrm', pg, key });
      continue;
    }
    const obj = { pool: r.u32() as PoolId, name: r.str(4096) as ObjectName };
    switch (code) {
      case T.write: {
        const offset = r.u64(); const len = r.u32();
        if (dataPos + len > data.length) throw new CodecError('repop data short');
        ops.push({ op: 'write', obj, offset, data: data.subarray(dataPos, dataPos + len) });
        dataPos += len;
        break;
      }
      case T.zero: ops.push({ op: 'zero', obj, offset: r.u64(), length: r.u64() }); break;
      case T.truncate: ops.push({ op: 'truncate', obj, sizeBytes: r.u64() }); break;
      case T.remove: ops.push({ op: 'remove', obj }); break;
      case T.touch: ops.push({ op: 'touch', obj }); break;
      case T.setattr: ops.push({ op: 'setattr', obj, key: r.str(256), value: r.bytes(64 * 1024) }); break;
      case T.rmattr: ops.push({ op: 'rmattr', obj, key: r.str(256) }); break;
      case T.version: ops.push({ op: 'version', obj, version: rv(r) }); break;
      default: throw new CodecError(`txn op ${code}`);
    }
  }
  if (dataPos !== data.length) throw new CodecError('repop data long');
  return ops;
}

/**
 * Concatenates bulk chunks (a received frame's data may be split). Copies only when split;
 * a big result is 4096-aligned (common/aligned.ts), so the store can write it O_DIRECT as is.
 */
export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = bulkBytes(n);
  let p = 0;
  for (const c of chunks) { out.set(c, p); p += c.length; }
  return out;
}

// --- MSG_OSD_REPOP ---
export interface RepOp { pg: string; interval: number; entry: PgLogEntry; ops: TxnOp[] }
export function encodeRepOp(m: RepOp): { payload: Uint8Array; data: Uint8Array[] } {
  // Why 512: a 4k write's repop is ~300 bytes (log entry, object name twice); 128 grew twice.
  const w = new Writer(512);
  const data: Uint8Array[] = [];
  header(w, m.pg, m.interval);
  writeLogEntry(w, m.entry);
  writeTxnOps(w, m.ops, data);
  return { payload: w.finish(), data };
}
export function decodeRepOp(payload: Uint8Array, data: readonly Uint8Array[]): RepOp {
  const r = new Reader(payload);
  const h = readHeader(r);
  const entry = readLogEntry(r);
  const ops = readTxnOps(r, joinChunks(data));
  r.end();
  return { ...h, entry, ops };
}

// --- MSG_OSD_PG_QUERY (request: header only; reply: info + log) ---
export interface PgQueryReply { hasInfo: boolean; info: PgInfo; tail: EVersion; entries: PgLogEntry[] }
export function encodePgQuery(pg: string, interval: number): Uint8Array { const w = new Writer(32); header(w, pg, interval); return w.finish(); }
export function decodePgQuery(b: Uint8Array): { pg: string; interval: number } { const r = new Reader(b); const h = readHeader(r); r.end(); return h; }
/** Info, log tail and log entries: the body shared by the query reply and ACTIVATE. */
function writeLog(w: Writer, m: { info: PgInfo; tail: EVersion; entries: readonly PgLogEntry[] }): void {
  writeInfo(w, m.info);
  wv(w, m.tail);
  w.u32(m.entries.length);
  for (const e of m.entries) writeLogEntry(w, e);
}
function readLog(r: Reader): { info: PgInfo; tail: EVersion; entries: PgLogEntry[] } {
  const info = readInfo(r);
  const tail = rv(r);
  const n = r.u32();
  if (n > 100_000) throw new CodecError('log too long');
  const entries: PgLogEntry[] = [];
  for (let i = 0; i < n; i++) entries.push(readLogEntry(r));
  return { info, tail, entries };
}
export function encodePgQueryReply(m: PgQueryReply): Uint8Array {
  const w = new Writer(256 + m.entries.length * 64);
  w.u8(V).bool(m.hasInfo);
  writeLog(w, m);
  return w.finish();
}
export function decodePgQueryReply(b: Uint8Array): PgQueryReply {
  const r = new Reader(b);
  if (r.u8() !== V) throw new CodecError('query reply version');
  const hasInfo = r.bool();
  const { info, tail, entries } = readLog(r);
  r.end();
  return { hasInfo, info, tail, entries };
}

// --- MSG_OSD_PG_ACTIVATE ---
/** mode 1: adopt `info` + the whole log; mode 2: recovery into you finished (lastComplete = lastUpdate). */
export interface PgActivate { pg: string; interval: number; mode: 1 | 2; info: PgInfo; tail: EVersion; entries: PgLogEntry[] }
export function encodePgActivate(m: PgActivate): Uint8Array {
  const w = new Writer(256 + m.entries.length * 64);
  header(w, m.pg, m.interval);
  w.u8(m.mode);
  writeLog(w, m);
  return w.finish();
}
export function decodePgActivate(b: Uint8Array): PgActivate {
  const r = new Reader(b);
  const h = readHeader(r);
  const mode = r.u8();
  if (mode !== 1 && mode !== 2) throw new CodecError(`activate mode ${mode}`);
  const { info, tail, entries } = readLog(r);
  r.end();
  return { ...h, mode, info, tail, entries };
}

// --- Whole-object copies: MSG_OSD_PG_PUSH request, MSG_OSD_PG_PULL / MSG_OSD_LOCAL_READ reply ---
export interface ObjectCopy { pool: number; name: string; exists: boolean; version: EVersion; size: number; attrs: [string, Uint8Array][] }
function writeCopy(w: Writer, c: ObjectCopy): void {
  w.u32(c.pool).str(c.name).bool(c.exists);
  wv(w, c.version);
  w.u64(c.size).u16(c.attrs.length);
  for (const [k, v] of c.attrs) w.str(k).bytes(v);
}
function readCopy(r: Reader): ObjectCopy {
  const pool = r.u32(); const name = r.str(4096); const exists = r.bool(); const version = rv(r); const size = r.u64();
  const n = r.u16();
  const attrs: [string, Uint8Array][] = [];
  for (let i = 0; i < n; i++) attrs.push([r.str(256), r.bytes(64 * 1024).slice()]);
  return { pool, name, exists, version, size, attrs };
}
export function encodePush(pg: string, interval: number, c: ObjectCopy): Uint8Array { const w = new Writer(128); header(w, pg, interval); writeCopy(w, c); return w.finish(); }
export function decodePush(b: Uint8Array): { pg: string; interval: number; copy: ObjectCopy } { const r = new Reader(b); const h = readHeader(r); const copy = readCopy(r); r.end(); return { ...h, copy }; }
export function encodeObjectCopy(c: ObjectCopy): Uint8Array { const w = new Writer(128); w.u8(V); writeCopy(w, c); return w.finish(); }
export function decodeObjectCopy(b: Uint8Array): ObjectCopy { const r = new Reader(b); if (r.u8() !== V) throw new CodecError('copy version'); const c = readCopy(r); r.end(); return c; }
/** Pull / local-read request: which object. */
export function encodeObjectRef(pool: number, name: string): Uint8Array { return new Writer(32).u8(V).u32(pool).str(name).finish(); }
export function decodeObjectRef(b: Uint8Array): { pool: number; name: string } { const r = new Reader(b); if (r.u8() !== V) throw new CodecError('ref version'); const o = { pool: r.u32(), name: r.str(4096) }; r.end(); return o; }

// --- MSG_OSD_PG_SCAN ---
export interface ScanEntry { name: string; version: EVersion; size: number; crc: number }
export interface PgScanRequest { pg: string; interval: number; pool: number; seed: number; pgNum: number; withCrc: boolean }
export function encodePgScan(m: PgScanRequest): Uint8Array { const w = new Writer(48); header(w, m.pg, m.interval); w.u32(m.pool).u32(m.seed).u32(m.pgNum).bool(m.withCrc); return w.finish(); }
export function decodePgScan(b: Uint8Array): PgScanRequest { const r = new Reader(b); const h = readHeader(r); const m = { ...h, pool: r.u32(), seed: r.u32(), pgNum: r.u32(), withCrc: r.bool() }; r.end(); return m; }
export function encodeScanReply(list: readonly ScanEntry[]): Uint8Array {
  const w = new Writer(64 + list.length * 48);
  w.u8(V).u32(list.length);
  for (const e of list) { w.str(e.name); wv(w, e.version); w.u64(e.size).u32(e.crc); }
  return w.finish();
}
export function decodeScanReply(b: Uint8Array): ScanEntry[] {
  const r = new Reader(b);
  if (r.u8() !== V) throw new CodecError('scan version');
  const n = r.u32();
  const out: ScanEntry[] = [];
  for (let i = 0; i < n; i++) out.push({ name: r.str(4096), version: rv(r), size: r.u64(), crc: r.u32() });
  r.end();
  return out;
}

// --- MSG_OSD_PG_SCRUB (admin → primary) ---
export function encodeScrubRequest(pool: number, seed: number, repair: boolean): Uint8Array { return new Writer(16).u8(V).u32(pool).u32(seed).bool(repair).finish(); }
export function decodeScrubRequest(b: Uint8Array): { pool: number; seed: number; repair: boolean } { const r = new Reader(b); if (r.u8() !== V) throw new CodecError('scrub version'); const m = { pool: r.u32(), seed: r.u32(), repair: r.bool() }; r.end(); return m; }
