// Checks the native GMAC against node:crypto's AES-GCM with the parts as additional data and
// no plaintext: 16- and 32-byte keys, 400 seeded random seqs and part lists (0..5 parts, up to
// 9 KiB, one 1 MiB case); verify accepts the tag and any truncation of it, refuses one flipped
// bit, another seq, another key and a changed byte of the data. Bad arguments throw.
import test from 'ava';
import { createCipheriv } from 'node:crypto';

import * as native from '../index.js';

function reference(key: Uint8Array, seq: number, parts: readonly Uint8Array[]): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64LE(BigInt(seq));
  const c = createCipheriv(key.length === 32 ? 'aes-256-gcm' : 'aes-128-gcm', key, iv);
  c.setAAD(Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.length))));
  c.final();
  return c.getAuthTag();
}

/** xorshift32: the cases are the same on every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

test('matches node:crypto AES-GCM (aad only) on 400 random keys, seqs and part lists', (t) => {
  const r = rng(0x9ac);
  for (let i = 0; i < 400; i++) {
    const key = new Uint8Array(i % 2 === 0 ? 32 : 16).map(() => r() & 0xff);
    const seq = i % 7 === 0 ? Number.MAX_SAFE_INTEGER - (r() % 1000) : r() % 1_000_000;
    const parts = Array.from({ length: r() % 6 }, () => new Uint8Array((r() % 2049) * (r() % 5 === 0 ? 4 : 1)).map(() => r() & 0xff));
    if (i === 3) parts.push(new Uint8Array(1 << 20).fill(0x5a));
    const want = reference(key, seq, parts);
    const k = native.gmacKey(key);
    const out = new Uint8Array(1 + (r() % 16));
    native.gmacSign(k, seq, parts, out);
    t.deepEqual(Buffer.from(out), want.subarray(0, out.length), `case ${i}`);
    t.true(native.gmacVerify(k, seq, parts, want));
  }
});

test('verify refuses a flipped bit, another seq, another key and changed data', (t) => {
  const key = new Uint8Array(32).fill(9);
  const parts = [new Uint8Array(40).fill(1), new Uint8Array(4096).fill(2)];
  const tag = reference(key, 7, parts);
  const k = native.gmacKey(key);
  t.true(native.gmacVerify(k, 7, parts, tag));
  for (let bit = 0; bit < 128; bit += 13) {
    const bad = Buffer.from(tag);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    t.false(native.gmacVerify(k, 7, parts, bad));
  }
  t.false(native.gmacVerify(k, 8, parts, tag));
  t.false(native.gmacVerify(native.gmacKey(new Uint8Array(32).fill(8)), 7, parts, tag));
  t.false(native.gmacVerify(k, 7, [parts[0]!, Buffer.from(parts[1]!).fill(3, 100, 101)], tag));
  // Moving a byte from one part to the next is a different message only by its boundaries:
  // the tag covers the concatenation (the frame header fixes the lengths).
  t.true(native.gmacVerify(k, 7, [parts[0]!.subarray(0, 39), Buffer.concat([parts[0]!.subarray(39), parts[1]!])], tag));
});

test('bad arguments throw TypeError / RangeError naming the argument', (t) => {
  const k = native.gmacKey(new Uint8Array(16));
  const out = new Uint8Array(16);
  t.throws(() => native.gmacKey('key' as never), { instanceOf: TypeError, message: /gmacKey: argument 'key'/ });
  t.throws(() => native.gmacKey(new Uint8Array(20)), { instanceOf: RangeError, message: /'key'/ });
  t.throws(() => native.gmacSign({} as never, 0, [], out), { instanceOf: TypeError, message: /'key'/ });
  t.throws(() => native.gmacSign(k, -1, [], out), { instanceOf: RangeError, message: /'seq'/ });
  t.throws(() => native.gmacSign(k, 1.5, [], out), { instanceOf: RangeError, message: /'seq'/ });
  t.throws(() => native.gmacSign(k, 0, [new Uint16Array(2) as never], out), { instanceOf: TypeError, message: /'parts'/ });
  t.throws(() => native.gmacSign(k, 0, [], new Uint8Array(17)), { instanceOf: RangeError, message: /'out'/ });
  t.throws(() => native.gmacVerify(k, 0, [], new Uint8Array(0)), { instanceOf: RangeError, message: /'expected'/ });
});
