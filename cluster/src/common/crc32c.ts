/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every messenger frame
 * (header, payload, bulk data) and of journal records. RFC 3720 §B.4 (iSCSI) defines it; the
 * check value of "123456789" is 0xE3069283.
 *
 * Three implementations, chosen per call by length:
 * - From 1 KiB: the native shim's `crc32c` (native/src/crc32c.cc: SSE4.2 `crc32`, three
 *   interleaved streams): 1 MiB in 40 µs against 79 µs for @node-rs/crc32, 4 KiB in 0.28 µs
 *   against 0.51 µs (session 3, quiet machine). `crc32cBlocks` does many blocks in one call.
 * - 192 B to 1 KiB: `@node-rs/crc32` (a prebuilt native module in its npm package), whose
 *   N-API call is ~80 ns cheaper than the shim's; the shim when it cannot load.
 * - Slicing-by-8 in JS: faster below ~200 bytes because it avoids the N-API call overhead
 *   (~110 ns).
 *
 * Why `crc32c(buf, prev)`: incremental CRC over a frame's bulk data, which arrives (and is
 * sent) as a list of chunks that are never concatenated. `crc32c(b, crc32c(a)) ===
 * crc32c(a ‖ b)`, with the usual pre/post inversion handled inside.
 */
import { createRequire } from 'node:module';
import { crc32c as shimCrc32c, crc32cBlocks as shimCrc32cBlocks } from '../../../native/index.js';

/** Below this many bytes the JS table loop beats the native call overhead (measured). */
const NATIVE_MIN_BYTES = 192;
/** From this many bytes the shim's interleaved crc beats @node-rs/crc32 (measured). */
const SHIM_MIN_BYTES = 1024;

/** The CRC-32C of the empty string, and the `prev` value that starts a new computation. */
export const CRC32C_INIT = 0;

const TABLE = buildTable();

function buildTable(): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  // Why slicing-by-8: table t[k][b] is the CRC of byte b followed by k zero bytes, so eight
  // input bytes fold in with eight independent lookups (Intel's "slicing-by-8").
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 8; k++) {
      const p = t[(k - 1) * 256 + i]!;
      t[k * 256 + i] = (p >>> 8) ^ t[p & 0xff]!;
    }
  }
  return t;
}

/** Slicing-by-8 CRC-32C in plain JS. Exported for tests and benchmarks. */
export function crc32cJs(buf: Uint8Array, prev: number = CRC32C_INIT): number {
  const t = TABLE;
  let c = ~prev;
  let i = 0;
  const n = buf.length;
  const end8 = n - (n & 7);
  for (; i < end8; i += 8) {
    const a = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) ^ c;
    c = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^ t[1280 + ((a >>> 16) & 0xff)]!
      ^ t[1024 + (a >>> 24)]! ^ t[768 + buf[i + 4]!]! ^ t[512 + buf[i + 5]!]!
      ^ t[256 + buf[i + 6]!]! ^ t[buf[i + 7]!]!;
  }
  for (; i < n; i++) c = t[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

type NativeCrc = (input: Uint8Array, initialState?: number | null) => number;

function loadNative(): NativeCrc | null {
  try {
    // Why createRequire: the package is CommonJS with a platform-specific optional dependency;
    // a static ESM import would make a missing binary fatal at module load.
    const require = createRequire(import.meta.url);
    const mod = require('@node-rs/crc32') as { crc32c?: NativeCrc };
    const fn = mod.crc32c;
    if (typeof fn !== 'function') return null;
    // Self-check against the RFC 3720 check value before trusting it.
    if (fn(new TextEncoder().encode('123456789'), 0) !== 0xe3069283) return null;
    return fn;
  } catch {
    return null;
  }
}

const native: NativeCrc | null = loadNative();

/** Which implementation serves large buffers ('native' or 'js'); for logs and benchmarks. */
export const crc32cImpl: 'native' | 'js' = native === null ? 'js' : 'native';

/**
 * CRC-32C of `buf`, continuing from `prev` (the result over the preceding bytes; 0 to start).
 * Returns an unsigned 32-bit number.
 */
export function crc32c(buf: Uint8Array, prev: number = CRC32C_INIT): number {
  if (buf.length < NATIVE_MIN_BYTES) return crc32cJs(buf, prev);
  if (buf.length < SHIM_MIN_BYTES && native !== null) return native(buf, prev) >>> 0;
  return shimCrc32c(buf, prev >>> 0);
}

/**
 * CRC-32C of each `blockBytes` block of `buf` (whole blocks), in one native call: the store's
 * per-block checksums of a big write (256 calls per MiB otherwise).
 */
export function crc32cBlocks(buf: Uint8Array, blockBytes: number): Uint32Array {
  const out = new Uint32Array(buf.length / blockBytes);
  shimCrc32cBlocks(buf, blockBytes, out);
  return out;
}

/** CRC-32C over several chunks as if concatenated (no copy). */
export function crc32cChunks(chunks: readonly Uint8Array[], prev: number = CRC32C_INIT): number {
  let c = prev;
  for (const chunk of chunks) c = crc32c(chunk, c);
  return c;
}
