/**
 * Frame codec of the cluster messenger (docs/cluster-protocol.md §1). Pure: no sockets, no
 * timers. A frame is a fixed 64-byte header, then the payload (metadata encoded by the caller
 * with `common/codec.ts`), then the bulk data (e.g. the 4 KiB a guest wrote). Why fixed
 * header + separate bulk (GUIDE §1.8, Vitastor's 128-byte packet, Ceph's front/data split):
 * framing is trivial, and bulk data goes to `writev` as the caller's own views, never copied.
 *
 * ```
 *  byte  0       1       2       3       4       5       6       7
 *      +-------+-------+-------+-------+-------+-------+-------+-------+
 *    0 |  magic "STRA" (u32 0x41525453)| version (u16) | type (u16)    |
 *      +-------+-------+-------+-------+-------+-------+-------+-------+
 *    8 |  flags (u32)                  |  epoch (u32)                  |
 *      +-------+-------+-------+-------+-------+-------+-------+-------+
 *   16 |  tid (u64, < 2^53)                                            |
 *      +-------+-------+-------+-------+-------+-------+-------+-------+
 *   24 |  payloadLen (u32)             |  dataLen (u32)                |
 *      +-------+-------+-------+-------+-------+-------+-------+-------+
 *   32 |  payloadCrc (u32, crc32c)     |  dataCrc (u32, crc32c)        |
 *      +-------+-------+-------+-------+-------+-------+-------+-------+
 *   40 |  signature: 16-byte GMAC (AES-GCM) tag (zero if unsigned;    |
 *   48 |  see auth/frame-signer.ts)                                    |
 *      +-------+-------+-------+-------+-------+-------+-------+-------+
 *   56 |  reserved (u32, must be 0)    |  headerCrc (u32, crc32c 0..59)|
 *      +-------+-------+-------+-------+-------+-------+-------+-------+
 *   64 |  payload (payloadLen bytes) … then data (dataLen bytes) …     |
 * ```
 * All integers are little-endian. `tid` sits at offset 16 so it is 8-byte aligned. The header
 * CRC is last so it covers everything else, signature included; the signature covers bytes
 * 0..39 plus the payload and data bytes themselves (not just their CRCs: a CRC is not a MAC).
 * A signed frame's dataCrc is 0: its GMAC already covers the data, so neither side makes a
 * CRC pass over it (the payload keeps its CRC: it is small).
 *
 * Errors: every malformed input yields a `ClusterError` with code `CLU_ERR_DECODE` and a
 * `details.reason` (`bad-magic`, `bad-version`, `header-crc`, `payload-crc`, `data-crc`,
 * `payload-too-large`, `data-too-large`, `reserved-nonzero`, `truncated`). The connection that
 * carried it must be closed (GUIDE §6, "Connection" row): the stream can no longer be framed.
 */
import { ClusterError } from '../common/errors.js';
import { bulkBytes } from '../common/aligned.js';
import { takeBulk } from '../common/bulk-pool.js';
import { smallBytes } from '../common/slab.js';
import { crc32c, crc32cChunks } from '../common/crc32c.js';

/** Size of the fixed header. */
export const FRAME_HEADER_BYTES = 64;
/** "STRA" read as a little-endian u32. */
export const FRAME_MAGIC = 0x41525453;
/** Wire version of the header layout. */
export const FRAME_VERSION = 1;
/** Offset and length of the signature field. */
export const FRAME_SIGNATURE_OFFSET = 40;
export const FRAME_SIGNATURE_BYTES = 16;
/** Bytes 0..39: the header fields a signature covers. */
export const FRAME_SIGNED_HEADER_BYTES = 40;

/** The frame answers the request with the same tid. */
export const FRAME_F_REPLY = 0x1;
/** The signature field is set (authenticated session). */
export const FRAME_F_SIGNED = 0x2;
/** A reply whose payload is an encoded error (`u16 wire code, str message`). */
export const FRAME_F_ERROR = 0x4;
/** The sender expects a reply (a request, as opposed to a fire-and-forget send). */
export const FRAME_F_REQUEST = 0x8;
const KNOWN_FLAGS = FRAME_F_REPLY | FRAME_F_SIGNED | FRAME_F_ERROR | FRAME_F_REQUEST;

/** Hard limits a receiver enforces before buffering anything (GUIDE §1.6). */
export interface FrameLimits {
  maxPayloadBytes: number;
  maxDataBytes: number;
}

/** Default limits: 1 MiB of metadata, 64 MiB of bulk data per frame. */
export const DEFAULT_FRAME_LIMITS: Readonly<FrameLimits> = {
  maxPayloadBytes: 1024 * 1024,
  maxDataBytes: 64 * 1024 * 1024,
};

/** Decoded header fields. */
export interface FrameHeader {
  type: number;
  flags: number;
  epoch: number;
  tid: number;
  payloadLen: number;
  dataLen: number;
  payloadCrc: number;
  dataCrc: number;
}

/** A complete received frame. `data` is a list of views into received chunks (no copy). */
export interface Frame extends FrameHeader {
  /** The 64 header bytes (the frame's own copy). */
  header: Uint8Array;
  payload: Uint8Array;
  data: Uint8Array[];
  /**
   * Set when the frame's data went to a `ReplySink` that was revoked while the data arrived:
   * `data` is empty and the rest of its bytes were dropped (the request it answered is over).
   */
  dataDiscarded?: boolean;
  /** Set when `data` are views of the `ReplySink` the decoder was given (copied there once). */
  dataInSink?: boolean;
}

/**
 * Where a reply's data goes instead of a buffer of the decoder's: the caller's own memory (a
 * read's destination, e.g. views of guest memory), so the bytes are copied once, from the
 * socket's read buffer to their final place. `active` is cleared by the owner the moment the
 * request is over (answered, timed out, superseded): from then on the decoder drops the rest
 * of that frame's data rather than write into memory the caller may have handed back.
 */
export interface ReplySink {
  readonly views: readonly Uint8Array[];
  active: boolean;
}

/** What a sender supplies; lengths and CRCs are computed. */
export interface OutboundFrame {
  type: number;
  flags: number;
  epoch: number;
  tid: number;
  payload: Uint8Array;
  data: readonly Uint8Array[];
}

/**
 * Computes a 16-byte signature over header bytes 0..39, payload and data. Called by
 * `encodeFrame` after the CRCs are in place; `FRAME_F_SIGNED` is already set in the header.
 */
export type FrameSignFn = (signedHeader: Uint8Array, payload: Uint8Array, data: readonly Uint8Array[]) => Uint8Array;

function decodeError(reason: string, message: string, details: Record<string, unknown> = {}): ClusterError {
  return new ClusterError('CLU_ERR_DECODE', message, { details: { reason, ...details } });
}

/** Total length of a list of chunks. */
export function chunksLength(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}

/**
 * Encodes a frame as a scatter list `[header, payload, ...data]` for one `writev`. Only the
 * 64-byte header is allocated; payload and data are the caller's views, which must not change
 * until the socket has written them. Throws RangeError on a caller bug (oversize, bad tid).
 */
export function encodeFrame(f: OutboundFrame, sign?: FrameSignFn): Uint8Array[] {
  const dataLen = chunksLength(f.data);
  if (f.payload.length > DEFAULT_FRAME_LIMITS.maxPayloadBytes) throw new RangeError(`payload ${f.payload.length} B over limit`);
  if (dataLen > DEFAULT_FRAME_LIMITS.maxDataBytes) throw new RangeError(`data ${dataLen} B over limit`);
  if (!Number.isSafeInteger(f.tid) || f.tid < 0) throw new RangeError(`bad tid ${f.tid}`);
  // Why Buffer.allocUnsafe: headers are taken from Node's slab pool, the cheapest allocation
  // available; every byte is written below (the signature slot is zero-filled explicitly).
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  const flags = sign === undefined ? f.flags & ~FRAME_F_SIGNED : f.flags | FRAME_F_SIGNED;
  h.writeUInt32LE(FRAME_MAGIC, 0);
  h.writeUInt16LE(FRAME_VERSION, 4);
  h.writeUInt16LE(f.type, 6);
  h.writeUInt32LE(flags >>> 0, 8);
  h.writeUInt32LE(f.epoch >>> 0, 12);
  h.writeUInt32LE(f.tid % 0x1_0000_0000, 16);
  h.writeUInt32LE(Math.floor(f.tid / 0x1_0000_0000), 20);
  h.writeUInt32LE(f.payload.length, 24);
  h.writeUInt32LE(dataLen, 28);
  h.writeUInt32LE(crc32c(f.payload), 32);
  // A signed frame's data is covered by its GMAC (a stronger check than a CRC, over the same
  // bytes): its data CRC is 0 and not computed — one pass over the data less on each side.
  h.writeUInt32LE(dataLen === 0 || sign !== undefined ? 0 : crc32cChunks(f.data), 36);
  h.fill(0, FRAME_SIGNATURE_OFFSET, 60);
  if (sign !== undefined) {
    const sig = sign(h.subarray(0, FRAME_SIGNED_HEADER_BYTES), f.payload, f.data);
    h.set(sig.subarray(0, FRAME_SIGNATURE_BYTES), FRAME_SIGNATURE_OFFSET);
  }
  h.writeUInt32LE(crc32c(h.subarray(0, 60)), 60);
  const out: Uint8Array[] = [h];
  if (f.payload.length > 0) out.push(f.payload);
  for (const d of f.data) if (d.length > 0) out.push(d);
  return out;
}

/** The signature bytes of a received header (a view). */
export function frameSignature(header: Uint8Array): Uint8Array {
  return header.subarray(FRAME_SIGNATURE_OFFSET, FRAME_SIGNATURE_OFFSET + FRAME_SIGNATURE_BYTES);
}

/**
 * Decodes and validates a 64-byte header: magic, version, header CRC, reserved bits and the
 * length limits (checked here, before anything is buffered for the body).
 */
export function decodeFrameHeader(b: Uint8Array, limits: Readonly<FrameLimits> = DEFAULT_FRAME_LIMITS): FrameHeader | ClusterError {
  if (b.length < FRAME_HEADER_BYTES) return decodeError('truncated', `frame header needs ${FRAME_HEADER_BYTES} bytes, got ${b.length}`);
  const v = new DataView(b.buffer, b.byteOffset, FRAME_HEADER_BYTES);
  const magic = v.getUint32(0, true);
  if (magic !== FRAME_MAGIC) return decodeError('bad-magic', `bad frame magic 0x${magic.toString(16)}`, { magic });
  const headerCrc = v.getUint32(60, true);
  const computed = crc32c(b.subarray(0, 60));
  if (headerCrc !== computed) return decodeError('header-crc', 'frame header crc mismatch', { headerCrc, computed });
  const version = v.getUint16(4, true);
  if (version !== FRAME_VERSION) return decodeError('bad-version', `unsupported frame version ${version}`, { version });
  const flags = v.getUint32(8, true);
  if ((flags & ~KNOWN_FLAGS) !== 0 || v.getUint32(56, true) !== 0) {
    return decodeError('reserved-nonzero', 'unknown flags or reserved bits set', { flags });
  }
  const tidHi = v.getUint32(20, true);
  if (tidHi >= 0x20_0000) return decodeError('bad-tid', 'tid exceeds 2^53', { tidHi });
  const payloadLen = v.getUint32(24, true);
  const dataLen = v.getUint32(28, true);
  if (payloadLen > limits.maxPayloadBytes) {
    return decodeError('payload-too-large', `payload ${payloadLen} B over limit ${limits.maxPayloadBytes}`, { payloadLen });
  }
  if (dataLen > limits.maxDataBytes) {
    return decodeError('data-too-large', `data ${dataLen} B over limit ${limits.maxDataBytes}`, { dataLen });
  }
  return {
    type: v.getUint16(6, true),
    flags,
    epoch: v.getUint32(12, true),
    tid: tidHi * 0x1_0000_0000 + v.getUint32(16, true),
    payloadLen,
    dataLen,
    payloadCrc: v.getUint32(32, true),
    dataCrc: v.getUint32(36, true),
  };
}

/** Callbacks of a `FrameDecoder`. After `onError` the decoder ignores further input. */
export interface FrameDecoderHandlers {
  onFrame(frame: Frame): void;
  onError(err: ClusterError): void;
  /**
   * Asked once per reply frame with data, when its header is in: a sink for its `dataLen`
   * bytes, or null for a decoder buffer. A sink smaller than `dataLen` is not used.
   */
  replySink?(tid: number, dataLen: number): ReplySink | null;
}

/**
 * Up to this many bytes, a frame's data buffer is allocated whole when its header arrives;
 * above, it grows by doubling as bytes arrive, so a peer cannot make us allocate 64 MiB with
 * a 64-byte header (every I/O of a 4 MiB object fits the first allocation).
 */
const DATA_PREALLOC_BYTES = 4 * 1024 * 1024;

/** A frame's data is read straight into its buffer while at least this much of it is missing. */
const IN_PLACE_MIN_BYTES = 64 * 1024;

/**
 * Incremental decoder over arriving chunks. It copies every byte it keeps, so a chunk is only
 * read during `push` (the real network reads into one reused buffer: env/real-net.ts). The
 * header is validated as soon as its 64 bytes are in, so an oversize length is refused before
 * anything is allocated for the body. A frame's payload is one buffer, and its data is one
 * buffer (`data.length` is 1, or 0 when empty), 4096-aligned from 64 KiB on
 * (common/aligned.ts), so the store can write a big write's data O_DIRECT without another copy.
 */
export class FrameDecoder {
  /** The header being received (a fresh buffer per frame: the frame keeps it). */
  private headerBytes = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private header: FrameHeader | null = null;
  private payload: Uint8Array = EMPTY;
  private payloadFill = 0;
  private data: Uint8Array = EMPTY;
  private dataFill = 0;
  /** The current frame's reply sink (its data goes there, not to `data`), and where we are in it. */
  private sink: ReplySink | null = null;
  private sinkView = 0;
  private sinkOffset = 0;
  /** The sink was revoked mid-frame: the rest of the data is dropped. */
  private sinkLost = false;
  /** CRC of the data received so far (computed over the arriving bytes, not the destination). */
  private dataCrc = 0;
  /** The current frame's data CRC is computed and checked (not a signed frame on a signed session). */
  private checkDataCrc = true;
  /**
   * Set by the session once its frames must be signed (the signer is installed): a frame with
   * `SIGNED` then carries no data CRC (its GMAC covers the data, checked by the session before
   * the frame is used), so none is computed or checked here.
   */
  signedData = false;
  private failed = false;

  constructor(
    private readonly handlers: FrameDecoderHandlers,
    private readonly limits: Readonly<FrameLimits> = DEFAULT_FRAME_LIMITS,
  ) {}

  /**
   * Where the next received bytes may go directly (`NetSocket.onData`'s read target): the rest
   * of the current frame's data buffer while at least IN_PLACE_MIN_BYTES of it are missing,
   * else null. The decoder owns that buffer until it delivers the frame, and a read into the
   * view cannot pass the frame's end; `push` then finds the bytes in place and copies nothing.
   * Never a reply sink's views: a sink can be revoked between this call and the read.
   */
  readTarget(): Uint8Array | null {
    const h = this.header;
    if (this.failed || h === null || this.sink !== null || this.payloadFill < h.payloadLen) return null;
    const end = Math.min(h.dataLen, this.data.length);
    if (end - this.dataFill < IN_PLACE_MIN_BYTES) return null;
    return this.data.subarray(this.dataFill, end);
  }

  /** Bytes received but not yet part of a delivered frame. */
  get bufferedBytes(): number { return this.headerFill + this.payloadFill + this.dataFill; }

  /** Feeds one received chunk (read only during this call); delivers every frame it completes, in order. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    const n = chunk.length;
    while (!this.failed) {
      if (this.header === null) {
        const k = Math.min(FRAME_HEADER_BYTES - this.headerFill, n - pos);
        if (k > 0) {
          this.headerBytes.set(k === n && pos === 0 ? chunk : chunk.subarray(pos, pos + k), this.headerFill);
          this.headerFill += k;
          pos += k;
        }
        if (this.headerFill < FRAME_HEADER_BYTES) return;
        const h = decodeFrameHeader(this.headerBytes, this.limits);
        if (h instanceof ClusterError) { this.fail(h); return; }
        this.header = h;
        this.checkDataCrc = !this.signedData || (h.flags & FRAME_F_SIGNED) === 0;
        this.payload = h.payloadLen === 0 ? EMPTY : smallBytes(h.payloadLen);
        const sink = h.dataLen > 0 && (h.flags & FRAME_F_REPLY) !== 0 && this.handlers.replySink !== undefined
          ? this.handlers.replySink(h.tid, h.dataLen) : null;
        if (sink !== null && sink.active && viewsLength(sink.views) >= h.dataLen) this.sink = sink;
        else this.data = h.dataLen === 0 ? EMPTY : takeBulk(Math.min(h.dataLen, DATA_PREALLOC_BYTES));
      }
      const h = this.header;
      if (this.payloadFill < h.payloadLen) {
        const k = Math.min(h.payloadLen - this.payloadFill, n - pos);
        this.payload.set(chunk.subarray(pos, pos + k), this.payloadFill);
        this.payloadFill += k;
        pos += k;
        if (this.payloadFill < h.payloadLen) return;
      }
      if (this.dataFill < h.dataLen) {
        const k = Math.min(h.dataLen - this.dataFill, n - pos);
        const src = chunk.subarray(pos, pos + k);
        if (this.checkDataCrc) this.dataCrc = crc32c(src, this.dataCrc);
        if (this.sink !== null) this.toSink(src);
        else {
          if (this.dataFill + k > this.data.length) this.growData(this.dataFill + k, h.dataLen);
          // Read in place (`readTarget`): the bytes are already where they belong.
          if (src.buffer !== this.data.buffer || src.byteOffset !== this.data.byteOffset + this.dataFill) this.data.set(src, this.dataFill);
        }
        this.dataFill += k;
        pos += k;
        if (this.dataFill < h.dataLen) return;
      }
      this.deliver(h);
      if (pos === n) return;
    }
  }

  /**
   * Called when the stream ended: returns a `truncated` error if a partial frame is pending,
   * else null.
   */
  finish(): ClusterError | null {
    if (this.failed) return null;
    const pending = this.bufferedBytes;
    if (this.header === null && pending === 0) return null;
    this.failed = true;
    return decodeError('truncated', `stream ended inside a frame (${pending} bytes pending)`, {
      bufferedBytes: pending,
      type: this.header?.type,
    });
  }

  /** Copies arriving data into the sink's views, or drops it once the sink is revoked. */
  private toSink(src: Uint8Array): void {
    const sink = this.sink!;
    if (!sink.active) { this.sinkLost = true; return; }
    let p = 0;
    while (p < src.length) {
      const v = sink.views[this.sinkView]!;
      const k = Math.min(v.length - this.sinkOffset, src.length - p);
      v.set(p === 0 && k === src.length ? src : src.subarray(p, p + k), this.sinkOffset);
      p += k;
      this.sinkOffset += k;
      if (this.sinkOffset === v.length) { this.sinkView++; this.sinkOffset = 0; }
    }
  }

  /** The sink's views cut to the frame's `dataLen` bytes. */
  private sinkData(dataLen: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let left = dataLen;
    for (const v of this.sink!.views) {
      if (left === 0) break;
      const k = Math.min(v.length, left);
      if (k > 0) out.push(k === v.length ? v : v.subarray(0, k));
      left -= k;
    }
    return out;
  }

  /** Grows the data buffer (doubling, capped at the frame's length) to hold `need` bytes. */
  private growData(need: number, cap: number): void {
    let size = Math.max(this.data.length * 2, DATA_PREALLOC_BYTES);
    while (size < need) size *= 2;
    const grown = bulkBytes(Math.min(size, cap));
    grown.set(this.data.subarray(0, this.dataFill));
    this.data = grown;
  }

  private deliver(h: FrameHeader): void {
    const hb = this.headerBytes;
    const payload = this.payload;
    const lost = this.sinkLost;
    const data: Uint8Array[] = h.dataLen === 0 || lost ? []
      : this.sink !== null ? this.sinkData(h.dataLen)
        : [this.data.length === h.dataLen ? this.data : this.data.subarray(0, h.dataLen)];
    const dataCrc = this.dataCrc;
    const checkDataCrc = this.checkDataCrc;
    const inSink = this.sink !== null && h.dataLen > 0;
    this.reset();
    this.headerBytes = new Uint8Array(FRAME_HEADER_BYTES);
    const payloadCrc = crc32c(payload);
    if (payloadCrc !== h.payloadCrc) {
      this.fail(decodeError('payload-crc', 'frame payload crc mismatch', { type: h.type, tid: h.tid }));
      return;
    }
    if (checkDataCrc && dataCrc !== h.dataCrc) {
      this.fail(decodeError('data-crc', 'frame data crc mismatch', { type: h.type, tid: h.tid }));
      return;
    }
    // Why every field spelled out, in one order: every frame has one shape (a spread plus
    // optional fields made three, and the runtime's shape transitions showed in perf).
    const frame: Frame = {
      type: h.type, flags: h.flags, epoch: h.epoch, tid: h.tid, payloadLen: h.payloadLen, dataLen: h.dataLen,
      payloadCrc: h.payloadCrc, dataCrc: h.dataCrc, header: hb, payload, data, dataDiscarded: lost, dataInSink: inSink,
    };
    this.handlers.onFrame(frame);
  }

  /** Forgets the frame in progress (not its header buffer). */
  private reset(): void {
    this.header = null;
    this.headerFill = 0;
    this.payload = EMPTY;
    this.payloadFill = 0;
    this.data = EMPTY;
    this.dataFill = 0;
    this.sink = null;
    this.sinkView = 0;
    this.sinkOffset = 0;
    this.sinkLost = false;
    this.dataCrc = 0;
  }

  private fail(err: ClusterError): void {
    this.failed = true;
    this.reset();
    this.handlers.onError(err);
  }
}

const EMPTY = new Uint8Array(0);

function viewsLength(views: readonly Uint8Array[]): number {
  let n = 0;
  for (const v of views) n += v.length;
  return n;
}
