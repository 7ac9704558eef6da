/**
 * Little-endian binary codec used by every cluster wire and disk format (map encoding,
 * message payloads, journal records). Why hand-written: the formats are fixed-layout and
 * versioned by us; a schema library would add copies on the hot path.
 *
 * `Writer` grows a buffer; `Reader` reads from a view and throws `CodecError` (code
 * `CLU_ERR_DECODE`) on truncation, so a corrupt payload from the network is a clean error.
 */
import { smallBytes } from './slab.js';

/** Thrown by `Reader` when input is truncated or malformed. */
export class CodecError extends Error {
  readonly code = 'CLU_ERR_DECODE';
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A copy of `src[start, end)` in a fresh, exactly sized `Uint8Array`. Why not `src.slice()`:
 * on a Node `Buffer` (socket chunks, fs reads) `slice` is a *view* (Buffer's legacy alias of
 * `subarray`), so a "copy" kept in an index would pin the whole 64 KiB chunk it came from and
 * change when that memory is reused.
 */
export function copyBytes(src: Uint8Array, start = 0, end = src.length): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(src.subarray(start, end));
  return out;
}

const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;

/** `bytes` as a one-byte string, char code = byte value, so any bytes round-trip (latin1). */
export function bytesToLatin1(bytes: Uint8Array): string {
  return latin1Slice.call(bytes, 0, bytes.length);
}

const latin1Write = Buffer.prototype.latin1Write as (this: Uint8Array, s: string, offset: number, length: number) => number;

/** The bytes of a string made by `bytesToLatin1` (every char code < 256), in a fresh exact array. */
export function latin1ToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  latin1Write.call(out, s, 0, s.length);
  return out;
}

/** Appends little-endian fields to a growing buffer. */
export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialSizeBytes = 256, target?: Uint8Array) {
    this.buf = target ?? smallBytes(initialSizeBytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /**
   * A writer that encodes into `target` (from its start). Should the bytes outgrow it, the
   * writer moves to a buffer of its own as usual: callers check `finish()` is still in `target`.
   */
  static into(target: Uint8Array): Writer {
    return new Writer(0, target);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = Math.max(this.buf.length * 2, 64);
    while (size < this.pos + n) size *= 2;
    const next = smallBytes(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  u8(v: number): this { this.reserve(1); this.view.setUint8(this.pos, v); this.pos += 1; return this; }
  u16(v: number): this { this.reserve(2); this.view.setUint16(this.pos, v, true); this.pos += 2; return this; }
  u32(v: number): this { this.reserve(4); this.view.setUint32(this.pos, v, true); this.pos += 4; return this; }
  i32(v: number): this { this.reserve(4); this.view.setInt32(this.pos, v, true); this.pos += 4; return this; }
  /** A non-negative safe integer stored as u64. */
  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64 out of range: ${v}`);
    this.reserve(8);
    this.view.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
    return this;
  }
  u64n(v: bigint): this { this.reserve(8); this.view.setBigUint64(this.pos, v, true); this.pos += 8; return this; }
  bool(v: boolean): this { return this.u8(v ? 1 : 0); }
  /** u32 length prefix + raw bytes. */
  bytes(v: Uint8Array): this { this.u32(v.length); this.reserve(v.length); this.buf.set(v, this.pos); this.pos += v.length; return this; }
  /** Raw bytes with no length prefix. */
  raw(v: Uint8Array): this { this.reserve(v.length); this.buf.set(v, this.pos); this.pos += v.length; return this; }
  /** u32 length prefix + UTF-8, encoded in place (no intermediate buffer). */
  str(v: string): this {
    // Why in place: a TextEncoder.encode() per string was one ArrayBuffer per object name per frame.
    // Why byteLength when the worst case (3 bytes per UTF-16 unit) does not fit: growing for
    // it doubled the buffer (a second allocation) for names that were plain ASCII.
    if (this.pos + 4 + v.length * 3 > this.buf.length) this.reserve(4 + Buffer.byteLength(v, 'utf8'));
    const { written } = textEncoder.encodeInto(v, this.buf.subarray(this.pos + 4));
    this.view.setUint32(this.pos, written, true);
    this.pos += 4 + written;
    return this;
  }
  /** u32 length prefix + the char codes of a `bytesToLatin1` string: the same bytes `bytes()` writes. */
  latin1(v: string): this {
    this.u32(v.length);
    this.reserve(v.length);
    for (let i = 0; i < v.length; i++) this.buf[this.pos + i] = v.charCodeAt(i);
    this.pos += v.length;
    return this;
  }

  get length(): number { return this.pos; }
  /** A view of the bytes written so far (shares memory with the writer). */
  finish(): Uint8Array { return this.buf.subarray(0, this.pos); }
}

/** Reads little-endian fields; every read is bounds-checked. */
export class Reader {
  private readonly view: DataView;
  private pos = 0;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new CodecError(`truncated: need ${n} bytes at offset ${this.pos}, have ${this.buf.length - this.pos}`);
    }
  }

  u8(): number { this.need(1); const v = this.view.getUint8(this.pos); this.pos += 1; return v; }
  u16(): number { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  u32(): number { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32(): number { this.need(4); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CodecError(`u64 exceeds 2^53: ${v}`);
    return Number(v);
  }
  u64n(): bigint { this.need(8); const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v; }
  bool(): boolean {
    const v = this.u8();
    if (v > 1) throw new CodecError(`bad bool ${v}`);
    return v === 1;
  }
  /** u32 length prefix + bytes; returns a view (no copy). `maxBytes` bounds hostile lengths. */
  bytes(maxBytes = 64 * 1024 * 1024): Uint8Array {
    const n = this.u32();
    if (n > maxBytes) throw new CodecError(`length ${n} exceeds limit ${maxBytes}`);
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** What `Writer.latin1` or `Writer.bytes` wrote, as a `bytesToLatin1` string. */
  latin1(maxBytes = 64 * 1024 * 1024): string { return bytesToLatin1(this.bytes(maxBytes)); }
  raw(n: number): Uint8Array { this.need(n); const v = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return v; }
  str(maxBytes = 64 * 1024): string {
    try {
      return textDecoder.decode(this.bytes(maxBytes));
    } catch (err) {
      if (err instanceof CodecError) throw err;
      throw new CodecError('invalid UTF-8 string');
    }
  }

  get offset(): number { return this.pos; }
  get remaining(): number { return this.buf.length - this.pos; }
  /** Throws unless every byte was consumed (catches trailing garbage). */
  end(): void {
    if (this.pos !== this.buf.length) throw new CodecError(`${this.buf.length - this.pos} trailing bytes`);
  }
}
