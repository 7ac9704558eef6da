/**
 * Checks CRC-32C against the RFC 3720 check value and published iSCSI vectors, and that the
 * native and JS paths and the incremental (chunked) form all agree on seeded random buffers.
 */
import test from 'ava';
import { crc32c, crc32cChunks, crc32cJs, CRC32C_INIT } from '../src/common/crc32c.js';

const enc = new TextEncoder();

test('matches the RFC 3720 check value for "123456789"', (t) => {
  t.is(crc32c(enc.encode('123456789')), 0xe3069283);
  t.is(crc32cJs(enc.encode('123456789')), 0xe3069283);
});

test('matches RFC 3720 B.4 vectors (32 zeros, 32 0xff, ascending)', (t) => {
  const zeros = new Uint8Array(32);
  const ones = new Uint8Array(32).fill(0xff);
  const asc = Uint8Array.from({ length: 32 }, (_, i) => i);
  t.is(crc32c(zeros), 0x8a9136aa);
  t.is(crc32c(ones), 0x62a8ab43);
  t.is(crc32c(asc), 0x46dd794e);
});

test('the empty input has crc 0', (t) => {
  t.is(crc32c(new Uint8Array(0)), 0);
  t.is(CRC32C_INIT, 0);
});

test('native, JS and chunked forms agree on random buffers of many sizes', (t) => {
  let seed = 12345;
  const next = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed >>> 16; };
  for (const size of [1, 7, 8, 63, 191, 192, 255, 4096, 65537, 1 << 20]) {
    const buf = Uint8Array.from({ length: size }, () => next() & 0xff);
    const whole = crc32cJs(buf);
    t.is(crc32c(buf), whole, `size ${size}`);
    const cut1 = next() % (size + 1);
    const cut2 = cut1 + (next() % (size - cut1 + 1));
    const parts = [buf.subarray(0, cut1), buf.subarray(cut1, cut2), buf.subarray(cut2)];
    t.is(crc32cChunks(parts), whole, `chunked size ${size}`);
    t.is(crc32c(parts[2]!, crc32c(parts[1]!, crc32c(parts[0]!))), whole);
  }
});
