/**
 * virtio-blk request parsing (VIRTIO 1.2 §5.2.6), Firecracker order of checks.
 *
 *   struct virtio_blk_req { le32 type; le32 reserved; le64 sector; u8 data[]; u8 status; }
 *
 * The driver may frame header, data and status over descriptors any way it likes (§2.6.4
 * "Message Framing"); Linux uses one descriptor per part, but we parse through a byte
 * cursor over the chain's views so that any framing works. Device-readable descriptors must
 * all precede device-writable ones (§2.7.4.2).
 *
 * Returns a value, never throws: a parse error carries the status view when one could be
 * located, so the request completes with IOERR/UNSUPP and the queue keeps going.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import type { Chain } from '../virtio/split-queue.js';

export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
/** Legacy barrier flag, stripped as QEMU's export does. */
export const VIRTIO_BLK_T_BARRIER = 0x80000000;

export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;
export const SECTOR_SIZE = 512;
export const VIRTIO_BLK_ID_BYTES = 20;
const HEADER_BYTES = 16;
const SEGMENT_BYTES = 16;

export type BlkErrorCode =
  | 'BLK_ERR_BAD_ADDRESS'
  | 'BLK_ERR_LAYOUT'
  | 'BLK_ERR_NO_STATUS'
  | 'BLK_ERR_HEADER_TOO_SHORT'
  | 'BLK_ERR_DATA_DIRECTION'
  | 'BLK_ERR_UNALIGNED'
  | 'BLK_ERR_OUT_OF_RANGE'
  | 'BLK_ERR_UNSUPPORTED'
  | 'BLK_ERR_READ_ONLY'
  | 'BLK_ERR_BAD_SEGMENTS';

/** A discard / write-zeroes range. */
export interface BlkRange {
  sector: number;
  sectorCount: number;
  unmap: boolean;
}

export interface BlkRequest {
  kind: 'request';
  type: number;
  sector: number;
  /** IN: device-writable views to fill; OUT: device-readable views to write. */
  data: Uint8Array[];
  dataBytes: number;
  ranges: BlkRange[];
  status: Uint8Array;
}

export interface BlkParseError {
  kind: 'error';
  code: BlkErrorCode;
  /** VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP. */
  statusCode: number;
  /** Where to write the status, or null when none could be located (complete with len 0). */
  status: Uint8Array | null;
  message: string;
}

export interface BlkLimits {
  capacitySectors: number;
  readOnly: boolean;
  maxDiscardSectors: number;
  maxDiscardSegments: number;
  maxWriteZeroesSectors: number;
  maxWriteZeroesSegments: number;
}

function fail(code: BlkErrorCode, status: Uint8Array | null, message: string, statusCode = VIRTIO_BLK_S_IOERR): BlkParseError {
  return { kind: 'error', code, statusCode, status, message };
}

/** Views [skip, skip + take) of a view list (no copies). */
export function sliceViews(views: readonly Uint8Array[], skip: number, take: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const v of views) {
    if (take === 0) break;
    if (skip >= v.length) {
      skip -= v.length;
      continue;
    }
    const n = Math.min(v.length - skip, take);
    out.push(v.subarray(skip, skip + n));
    take -= n;
    skip = 0;
  }
  return out;
}

const headerScratch = new Uint8Array(HEADER_BYTES);
const headerWords = new Uint32Array(headerScratch.buffer);

/** Copies the first `n` bytes of a view list into `out` (default: a fresh buffer). */
function copyPrefix(views: readonly Uint8Array[], n: number, out = new Uint8Array(n)): Uint8Array {
  let at = 0;
  for (const v of views) {
    if (at === n) break;
    const k = Math.min(v.length, n - at);
    out.set(v.subarray(0, k), at);
    at += k;
  }
  return out;
}

const totalBytes = (views: readonly Uint8Array[]): number => views.reduce((n, v) => n + v.length, 0);

interface SplitChain {
  readable: Uint8Array[];
  writable: Uint8Array[];
  readableBytes: number;
  writableBytes: number;
  status: Uint8Array | null;
  error: BlkParseError | null;
}

/** Translates a chain into readable and writable view lists and locates the status byte. */
function splitChain(chain: Chain, mem: GuestMemory): SplitChain {
  const readable: Uint8Array[] = [];
  const writable: Uint8Array[] = [];
  let badAddress = false;
  let badLayout = false;
  let writableBytes = 0;
  for (const seg of chain.segments) {
    if (!seg.writable && writable.length > 0) badLayout = true;
    if (seg.lengthBytes === 0) continue;
    const into = seg.writable ? writable : readable;
    if (!mem.gather(seg.gpa, seg.lengthBytes, into)) badAddress = true;
    if (seg.writable) writableBytes += seg.lengthBytes;
  }
  // The status byte is the last byte of the last descriptor, which must be device-writable.
  const last = chain.segments[chain.segments.length - 1];
  let status: Uint8Array | null = null;
  if (last !== undefined && last.writable && last.lengthBytes > 0) {
    status = mem.translate(last.gpa + last.lengthBytes - 1, 1);
  }
  let error: BlkParseError | null = null;
  if (status === null || status.length !== 1) {
    status = null;
    error = fail('BLK_ERR_NO_STATUS', null, 'no device-writable status byte at the end of the chain');
  } else if (badAddress) {
    error = fail('BLK_ERR_BAD_ADDRESS', status, 'descriptor outside guest memory');
  } else if (badLayout) {
    error = fail('BLK_ERR_LAYOUT', status, 'device-readable descriptor after a device-writable one');
  }
  return { readable, writable, readableBytes: totalBytes(readable), writableBytes, status, error };
}

function parseRanges(bytes: Uint8Array, maxSegments: number, maxSectors: number, capacitySectors: number, type: number): BlkRange[] | BlkParseError | 'unsupp' {
  const count = bytes.length / SEGMENT_BYTES;
  if (bytes.length === 0 || bytes.length % SEGMENT_BYTES !== 0 || count > maxSegments) return 'unsupp';
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ranges: BlkRange[] = [];
  for (let i = 0; i < count; i++) {
    const sector = dv.getBigUint64(i * SEGMENT_BYTES, true);
    const sectorCount = dv.getUint32(i * SEGMENT_BYTES + 8, true);
    const flags = dv.getUint32(i * SEGMENT_BYTES + 12, true);
    // §5.2.6.2: unknown flags → UNSUPP; unmap on a discard → UNSUPP.
    if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) return 'unsupp';
    if (type === VIRTIO_BLK_T_DISCARD && flags !== 0) return 'unsupp';
    if (sectorCount > maxSectors) return 'unsupp';
    if (sector > BigInt(capacitySectors) || Number(sector) + sectorCount > capacitySectors) {
      return fail('BLK_ERR_OUT_OF_RANGE', null, `range ${sector}+${sectorCount} beyond capacity ${capacitySectors}`);
    }
    ranges.push({ sector: Number(sector), sectorCount, unmap: (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0 });
  }
  return ranges;
}

/** Parses one popped chain into a request or an error with the status to answer. */
export function parseBlkRequest(chain: Chain, mem: GuestMemory, limits: BlkLimits): BlkRequest | BlkParseError {
  const split = splitChain(chain, mem);
  if (split.error !== null) return split.error;
  const status = split.status!;
  if (split.readableBytes < HEADER_BYTES) return fail('BLK_ERR_HEADER_TOO_SHORT', status, 'request header shorter than 16 bytes');
  // Why a scratch copy: the header is read once into our memory and validated there (the
  // guest could change it under us); parsing is synchronous, so one buffer serves all.
  copyPrefix(split.readable, HEADER_BYTES, headerScratch);
  const type = (headerWords[0]! & ~VIRTIO_BLK_T_BARRIER) >>> 0;
  const sectorHi = headerWords[3]!;
  // Sectors ≥ 2^53 clamp to MAX_SAFE_INTEGER, which fails the capacity check below.
  const sector = sectorHi >= 0x200000 ? Number.MAX_SAFE_INTEGER : sectorHi * 0x100000000 + headerWords[2]!;
  const readData = sliceViews(split.readable, HEADER_BYTES, split.readableBytes - HEADER_BYTES);
  const readDataBytes = split.readableBytes - HEADER_BYTES;
  const writeData = sliceViews(split.writable, 0, split.writableBytes - 1);
  const writeDataBytes = split.writableBytes - 1;
  const req: BlkRequest = { kind: 'request', type, sector, data: [], dataBytes: 0, ranges: [], status };
  switch (type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
      const isRead = type === VIRTIO_BLK_T_IN;
      if (isRead ? readDataBytes !== 0 : writeDataBytes !== 0) {
        return fail('BLK_ERR_DATA_DIRECTION', status, 'data buffers in the wrong direction');
      }
      if (!isRead && limits.readOnly) return fail('BLK_ERR_READ_ONLY', status, 'write to a read-only device');
      req.data = isRead ? writeData : readData;
      req.dataBytes = isRead ? writeDataBytes : readDataBytes;
      if (req.dataBytes % SECTOR_SIZE !== 0) return fail('BLK_ERR_UNALIGNED', status, `data length ${req.dataBytes} not a multiple of 512`);
      if (sector + req.dataBytes / SECTOR_SIZE > limits.capacitySectors) {
        return fail('BLK_ERR_OUT_OF_RANGE', status, `sector ${sector}+${req.dataBytes / SECTOR_SIZE} beyond capacity ${limits.capacitySectors}`);
      }
      return req;
    }
    case VIRTIO_BLK_T_FLUSH:
      return req;
    case VIRTIO_BLK_T_GET_ID:
      if (writeDataBytes === 0) return fail('BLK_ERR_DATA_DIRECTION', status, 'GET_ID without a writable buffer');
      req.data = writeData;
      req.dataBytes = writeDataBytes;
      return req;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
      if (limits.readOnly) return fail('BLK_ERR_READ_ONLY', status, 'discard/write-zeroes on a read-only device');
      const isDiscard = type === VIRTIO_BLK_T_DISCARD;
      const ranges = parseRanges(
        copyPrefix(readData, readDataBytes),
        isDiscard ? limits.maxDiscardSegments : limits.maxWriteZeroesSegments,
        isDiscard ? limits.maxDiscardSectors : limits.maxWriteZeroesSectors,
        limits.capacitySectors,
        type,
      );
      if (ranges === 'unsupp') return fail('BLK_ERR_BAD_SEGMENTS', status, 'unsupported discard/write-zeroes segments', VIRTIO_BLK_S_UNSUPP);
      if (!Array.isArray(ranges)) return { ...ranges, status };
      req.ranges = ranges;
      return req;
    }
    default:
      return fail('BLK_ERR_UNSUPPORTED', status, `request type ${type}`, VIRTIO_BLK_S_UNSUPP);
  }
}
