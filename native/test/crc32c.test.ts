// The shim's CRC-32C against an independent bitwise reference: the RFC 3720 check value, random
// lengths (0..70 000, so the 3 × 8 KiB and 3 × 256 B interleaved paths and every tail length
// run), unaligned starts, arbitrary `prev` (chaining), crc32cBlocks against per-block calls,
// and argument errors.
import test from 'ava';

import * as native from '../index.js';

function reference(buf: Uint8Array, prev = 0): number {
  let c = ~prev >>> 0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

let seed = 12345;
const rnd = (n: number): number => {
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed % n;
};
const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rnd(256));

test('check value of "123456789" is 0xE3069283; empty input returns prev', (t) => {
  t.is(native.crc32c(new TextEncoder().encode('123456789'), 0), 0xe3069283);
  t.is(native.crc32c(new Uint8Array(0), 0), 0);
  t.is(native.crc32c(new Uint8Array(0), 0xdeadbeef), 0xdeadbeef);
});

test('matches the bitwise reference on random lengths, offsets and prev values', (t) => {
  const lengths = [1, 7, 8, 9, 255, 256, 767, 768, 769, 4096, 8191, 24_575, 24_576, 24_577, 65_536];
  for (let i = 0; i < 60; i++) lengths.push(rnd(70_000));
  for (const n of lengths) {
    const raw = randomBytes(n + 8);
    const off = rnd(8);
    const v = raw.subarray(off, off + n);
    const prev = rnd(0xffffffff);
    t.is(native.crc32c(v, prev), reference(v, prev), `length ${n} offset ${off}`);
  }
});

test('chaining: crc(b, crc(a)) === crc(a ‖ b)', (t) => {
  const all = randomBytes(50_000);
  for (const cut of [0, 1, 1000, 24_576, 49_999]) {
    t.is(native.crc32c(all.subarray(cut), native.crc32c(all.subarray(0, cut), 0)), native.crc32c(all, 0));
  }
});

test('crc32cBlocks equals one crc32c per block; bad shapes throw', (t) => {
  const buf = randomBytes(64 * 4096);
  const out = new Uint32Array(64);
  native.crc32cBlocks(buf, 4096, out);
  for (let i = 0; i < 64; i++) t.is(out[i], reference(buf.subarray(i * 4096, (i + 1) * 4096)));
  t.throws(() => native.crc32cBlocks(buf.subarray(1), 4096, out), { instanceOf: RangeError });
  t.throws(() => native.crc32cBlocks(buf, 4096, new Uint32Array(63)), { instanceOf: RangeError });
  t.throws(() => native.crc32cBlocks(buf, 4096, new Int32Array(64) as unknown as Uint32Array), { instanceOf: TypeError });
  t.throws(() => native.crc32c([1, 2] as unknown as Uint8Array, 0), { instanceOf: TypeError });
  t.throws(() => native.crc32c(buf, -1), { instanceOf: RangeError });
});
