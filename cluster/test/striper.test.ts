/**
 * Checks the striper against hand-computed vectors of Ceph's file_to_extents algorithm
 * (stripe_unit 64 KiB, stripe_count 4, object_size 1 MiB; and the RBD defaults), and a seeded
 * property test: for random layouts and ranges the extents cover the range exactly once, in
 * order, and map back to the same file bytes through extentToFile.
 */
import test from 'ava';
import {
  DEFAULT_LAYOUT, divFloor, extentToFile, fileToExtents, layoutError, numObjects, objectTruncateSize,
} from '../src/client/striper.js';
import type { FileLayout } from '../src/client/striper.js';

const K = 1024;
const M = 1024 * 1024;
const L: FileLayout = { objectSize: 1 * M, stripeUnit: 64 * K, stripeCount: 4 };

const brief = (l: FileLayout, off: number, len: number): [number, number, number, [number, number][]][] =>
  fileToExtents(l, off, len).map((e) => [e.objectNo, e.offsetInObject, e.length, e.bufferExtents.map((b) => [b.bufferOffset, b.length] as [number, number])]);

test('one full stripe lands on four objects, one block each', (t) => {
  t.deepEqual(brief(L, 0, 256 * K), [
    [0, 0, 64 * K, [[0, 64 * K]]],
    [1, 0, 64 * K, [[64 * K, 64 * K]]],
    [2, 0, 64 * K, [[128 * K, 64 * K]]],
    [3, 0, 64 * K, [[192 * K, 64 * K]]],
  ]);
});

test('an unaligned range starts mid-block and wraps to the second stripe of object 0', (t) => {
  // [100K, 300K): block 1 from 36K, blocks 2 and 3 whole, then block 4 (stripe 1 of object 0) up to 44K.
  t.deepEqual(brief(L, 100 * K, 200 * K), [
    [0, 64 * K, 44 * K, [[156 * K, 44 * K]]],
    [1, 36 * K, 28 * K, [[0, 28 * K]]],
    [2, 0, 64 * K, [[28 * K, 64 * K]]],
    [3, 0, 64 * K, [[92 * K, 64 * K]]],
  ]);
});

test('two stripes merge into one contiguous extent per object with two buffer pieces', (t) => {
  t.deepEqual(brief(L, 0, 512 * K)[0], [0, 0, 128 * K, [[0, 64 * K], [256 * K, 64 * K]]]);
});

test('a range crossing an object set moves from object 3 to object 4', (t) => {
  // Object set 0 holds 4 MiB (4 objects × 1 MiB); block 63 is the last block of object 3.
  t.deepEqual(brief(L, 4 * M - 64 * K, 128 * K), [
    [3, 15 * 64 * K, 64 * K, [[0, 64 * K]]],
    [4, 0, 64 * K, [[64 * K, 64 * K]]],
  ]);
});

test('the default layout maps object N to bytes [N*4M, (N+1)*4M)', (t) => {
  t.deepEqual(brief(DEFAULT_LAYOUT, 4 * M - 4096, 8192), [
    [0, 4 * M - 4096, 4096, [[0, 4096]]],
    [1, 0, 4096, [[4096, 4096]]],
  ]);
  t.deepEqual(brief(DEFAULT_LAYOUT, 10 * M, 0), []);
});

test('extentToFile inverts the vectors', (t) => {
  t.deepEqual(extentToFile(L, 0, 64 * K, 44 * K), [{ offset: 256 * K, length: 44 * K }]);
  t.deepEqual(extentToFile(L, 0, 0, 128 * K), [{ offset: 0, length: 64 * K }, { offset: 256 * K, length: 64 * K }]);
  t.deepEqual(extentToFile(L, 4, 0, 4096), [{ offset: 4 * M, length: 4096 }]);
});

test('objectTruncateSize and numObjects follow Ceph for a 300 KiB and a 100 KiB file', (t) => {
  t.is(objectTruncateSize(L, 0, 300 * K), 64 * K + 44 * K);
  t.is(objectTruncateSize(L, 1, 300 * K), 64 * K);
  t.is(objectTruncateSize(L, 3, 300 * K), 64 * K);
  t.is(objectTruncateSize(L, 4, 300 * K), 0);
  t.is(objectTruncateSize(L, 2, 8 * M), 1 * M);
  t.is(numObjects(L, 300 * K), 4);
  t.is(numObjects(L, 100 * K), 2);
  t.is(numObjects(L, 0), 0);
  t.is(numObjects(DEFAULT_LAYOUT, 10 * M), 3);
});

test('layoutError rejects bad layouts', (t) => {
  t.is(layoutError(L), null);
  t.not(layoutError({ objectSize: 1 * M, stripeUnit: 48 * K * 3, stripeCount: 1 }), null);
  t.not(layoutError({ objectSize: 1 * M, stripeUnit: 64 * K, stripeCount: 0 }), null);
  t.not(layoutError({ objectSize: 1000, stripeUnit: 1000, stripeCount: 1 }), null);
});

test('divFloor is exact near 2^53', (t) => {
  const b = 4 * M;
  const a = Number.MAX_SAFE_INTEGER - (Number.MAX_SAFE_INTEGER % b) - 1;
  t.is(divFloor(a, b) * b <= a, true);
  t.is((divFloor(a, b) + 1) * b > a, true);
});

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

test('seeded property: extents cover the range exactly once, in order, and invert', (t) => {
  const r = rng(0x5eed);
  for (let iter = 0; iter < 2000; iter++) {
    const su = 512 * 2 ** (r() % 8);                       // 512 B … 64 KiB
    const os = Math.max(4096, su) * 2 ** (r() % 4);        // a multiple of su, ≥ 4 KiB
    const layout: FileLayout = { objectSize: os, stripeUnit: su, stripeCount: 1 + (r() % 6) };
    const off = (r() % 64) * os + (r() % os);
    const len = r() % (3 * os * layout.stripeCount);
    const ext = fileToExtents(layout, off, len);
    const pieces = ext.flatMap((e) => e.bufferExtents).sort((a, b) => a.bufferOffset - b.bufferOffset);
    let next = 0;
    for (const p of pieces) {
      t.is(p.bufferOffset, next);
      t.is(p.fileOffset, off + p.bufferOffset);
      next += p.length;
    }
    if (next !== len) t.fail(`covered ${next} of ${len}`);
    for (let i = 1; i < ext.length; i++) {
      const a = ext[i - 1]!;
      const b = ext[i]!;
      if (a.objectNo > b.objectNo || (a.objectNo === b.objectNo && a.offsetInObject + a.length > b.offsetInObject)) t.fail('extents out of order');
    }
    for (const e of ext) {
      if (e.offsetInObject + e.length > os) t.fail('extent past object end');
      const back = extentToFile(layout, e.objectNo, e.offsetInObject, e.length);
      const merged = e.bufferExtents.map((b) => ({ offset: b.fileOffset, length: b.length }));
      // extentToFile splits at block boundaries; compare byte by byte via sorted ranges.
      const flat = (xs: { offset: number; length: number }[]): string => {
        const out: [number, number][] = [];
        for (const x of xs) {
          const l = out[out.length - 1];
          if (l !== undefined && l[0] + l[1] === x.offset) l[1] += x.length; else out.push([x.offset, x.length]);
        }
        return JSON.stringify(out);
      };
      if (flat(back) !== flat(merged)) t.fail(`inverse mismatch ${flat(back)} vs ${flat(merged)}`);
    }
  }
  t.pass();
});
