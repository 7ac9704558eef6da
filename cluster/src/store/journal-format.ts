/**
 * On-disk format of the write-ahead journal (pure encode/decode; docs/journal-format.md draws
 * the same layouts). The journal is one preallocated file: a 4 KiB header, then a ring of
 * 512-byte-aligned records.
 *
 * Journal file:
 *   0        4096                                                     journalBytes
 *   ┌────────┬───────────────────────────────────────────────────────┐
 *   │ header │ ring: rec rec rec … WRAP │ (stale records of older laps) │
 *   └────────┴───────────────────────────────────────────────────────┘
 *
 * Header (little-endian, rest of the 4 KiB zero):
 *   0 u32 magic 'SJHD' | 4 u16 version | 6 u16 recordAlign | 8 u32 blockBytes
 *   12 u64 journalBytes | 20 u8[16] storeUuid | 36 u32 crc32c(bytes 0..36)
 *
 * Record (512-byte aligned, zero padded):
 *   ┌─────────┬──────────┬─────────┬─────────┬──────────┬────────────┬──────────┬──────────┐
 *   │u32 magic│u32 crc32c│ u64 seq │ u32 gen │ u16 kind │ u16 flags  │u32 paylen│u32 rsvd  │ payload…
 *   └─────────┴──────────┴─────────┴─────────┴──────────┴────────────┴──────────┴──────────┘
 *   0         4          8         16        20         22           24         28        32
 *   crc32c covers bytes 8..32+paylen (everything after the crc field, payload included), so a
 *   torn length or seq cannot make garbage look valid.
 *
 * Replay accepts a record only when magic, crc, length, `seq == expected` and `gen == the
 * checkpoint's gen` all hold. Why `gen`: every open bumps it (through a checkpoint), so
 * records left behind a torn tail by an earlier incarnation can never be mistaken for new
 * ones that happen to land at the same offset with the same seq.
 */
import { CodecError, copyBytes } from '../common/codec.js';
import { crc32c } from '../common/crc32c.js';

/** 'SJRN' little-endian. */
export const RECORD_MAGIC = 0x4e524a53;
/** 'SJHD'. */
export const HEADER_MAGIC = 0x44484a53;
export const HEADER_VERSION = 1;
export const HEADER_BYTES = 4096;
export const RECORD_ALIGN = 512;
export const RECORD_HEADER_BYTES = 32;

/** Record kinds. */
export const RecordKind = {
  /** A resolved transaction (payload: ops, see resolved-ops.ts). */
  TXN: 1,
  /** End of lap: the next record starts at the ring start. */
  WRAP: 2,
} as const;

/** Rounds up to the record alignment. */
export function alignRecord(n: number): number {
  return Math.ceil(n / RECORD_ALIGN) * RECORD_ALIGN;
}

/** Bytes a record with `payloadBytes` occupies in the ring. */
export function recordBytes(payloadBytes: number): number {
  return alignRecord(RECORD_HEADER_BYTES + payloadBytes);
}

/** The journal file header. */
export interface JournalHeader {
  readonly journalBytes: number;
  readonly blockBytes: number;
  readonly storeUuid: Uint8Array;
}

/** Encodes the 4 KiB header block. */
export function encodeJournalHeader(h: JournalHeader): Uint8Array {
  const buf = new Uint8Array(HEADER_BYTES);
  const v = new DataView(buf.buffer);
  v.setUint32(0, HEADER_MAGIC, true);
  v.setUint16(4, HEADER_VERSION, true);
  v.setUint16(6, RECORD_ALIGN, true);
  v.setUint32(8, h.blockBytes, true);
  v.setBigUint64(12, BigInt(h.journalBytes), true);
  buf.set(h.storeUuid.subarray(0, 16), 20);
  v.setUint32(36, crc32c(buf.subarray(0, 36)), true);
  return buf;
}

/** Decodes and checks the header; throws CodecError when it is not ours or is damaged. */
export function decodeJournalHeader(buf: Uint8Array): JournalHeader {
  if (buf.length < 40) throw new CodecError('journal header truncated');
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (v.getUint32(0, true) !== HEADER_MAGIC) throw new CodecError('bad journal header magic');
  if (v.getUint32(36, true) !== crc32c(buf.subarray(0, 36))) throw new CodecError('journal header crc mismatch');
  if (v.getUint16(4, true) !== HEADER_VERSION) throw new CodecError('unsupported journal version');
  if (v.getUint16(6, true) !== RECORD_ALIGN) throw new CodecError('unexpected record alignment');
  return {
    blockBytes: v.getUint32(8, true),
    journalBytes: Number(v.getBigUint64(12, true)),
    storeUuid: copyBytes(buf, 20, 36),
  };
}

/**
 * Completes a record whose payload is already in place at `rec[RECORD_HEADER_BYTES..]`
 * (`rec` is exactly `recordBytes(payloadBytes)` long): header fields, zeroed padding, crc.
 * Why in place: the journal encodes a transaction straight into its staging memory.
 */
export function sealRecord(rec: Uint8Array, seq: number, gen: number, kind: number, payloadBytes: number): void {
  const end = RECORD_HEADER_BYTES + payloadBytes;
  if (rec.length !== recordBytes(payloadBytes)) throw new RangeError(`record view of ${rec.length} bytes for a ${payloadBytes}-byte payload`);
  const v = new DataView(rec.buffer, rec.byteOffset, RECORD_HEADER_BYTES);
  v.setUint32(0, RECORD_MAGIC, true);
  v.setBigUint64(8, BigInt(seq), true);
  v.setUint32(16, gen, true);
  v.setUint16(20, kind, true);
  v.setUint16(22, 0, true);
  v.setUint32(24, payloadBytes, true);
  rec.fill(0, 28, RECORD_HEADER_BYTES);
  rec.fill(0, end);
  v.setUint32(4, crc32c(rec.subarray(8, end)), true);
}

/** Why a record was rejected (for logs and tests). */
export type RecordReject = 'magic' | 'length' | 'crc' | 'seq' | 'gen' | 'kind' | 'short';

/** A parsed record, or the reason there is none at this offset. */
export type ParsedRecord =
  | { readonly ok: true; readonly kind: number; readonly seq: number; readonly payload: Uint8Array; readonly totalBytes: number }
  | { readonly ok: false; readonly reason: RecordReject; readonly needBytes?: number };

/**
 * Parses the record at the start of `buf`, expecting `seq`/`gen`. When `buf` holds only part
 * of a plausible record, answers `short` with the byte count to read (the caller re-reads);
 * `maxPayload` bounds that count so a torn length cannot make us read the whole ring.
 */
export function parseRecord(buf: Uint8Array, expect: { seq: number; gen: number; maxPayload: number }): ParsedRecord {
  if (buf.length < RECORD_HEADER_BYTES) return { ok: false, reason: 'short', needBytes: RECORD_ALIGN };
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (v.getUint32(0, true) !== RECORD_MAGIC) return { ok: false, reason: 'magic' };
  const payloadBytes = v.getUint32(24, true);
  if (payloadBytes > expect.maxPayload) return { ok: false, reason: 'length' };
  const total = recordBytes(payloadBytes);
  if (buf.length < RECORD_HEADER_BYTES + payloadBytes) return { ok: false, reason: 'short', needBytes: total };
  const crc = crc32c(buf.subarray(8, RECORD_HEADER_BYTES + payloadBytes));
  if (crc !== v.getUint32(4, true)) return { ok: false, reason: 'crc' };
  // Checked after the crc: an intact record from another lap or incarnation is "the end".
  const seq = Number(v.getBigUint64(8, true));
  if (seq !== expect.seq) return { ok: false, reason: 'seq' };
  if (v.getUint32(16, true) !== expect.gen) return { ok: false, reason: 'gen' };
  const kind = v.getUint16(20, true);
  if (kind !== RecordKind.TXN && kind !== RecordKind.WRAP) return { ok: false, reason: 'kind' };
  return { ok: true, kind, seq, payload: buf.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + payloadBytes), totalBytes: total };
}
