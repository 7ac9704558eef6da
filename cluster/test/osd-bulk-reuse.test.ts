/**
 * Reused receive buffers (common/bulk-pool.ts): the pool itself (classes, reuse, the free cap,
 * a double give refused, foreign views ignored), then three in-process OSDs over real TCP taking
 * concurrent large overwrites, so frame buffers given back by committed writes are reused by
 * later frames while other writes are in flight: every object must read back, from every replica,
 * as its last acknowledged write.
 */
import test from 'ava';
import { BULK_FREE_BYTES_MAX, CLASS_MAX_BYTES, bulkFreeBytes, bulkStats, giveBulk, takeBulk, trimIdleBulk } from '../src/common/bulk-pool.js';
import { alignmentOf } from '../../native/index.js';
import { waitFor } from './msg-test-env.js';
import { OsdHarness } from './osd-harness.js';

function pattern(seed: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i += 4) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; b[i] = x; b[i + 1] = x >>> 8; b[i + 2] = x >>> 16; b[i + 3] = x >>> 24; }
  return b;
}

test.serial('bulk pool: power-of-two classes, aligned, reused after a give, capped, double give refused', (t) => {
  const a = takeBulk(100 * 1024);
  t.is(a.length, 100 * 1024);
  t.is(a.buffer.byteLength >= 128 * 1024, true, 'rounded up to its class');
  t.is(alignmentOf(a), 0);
  const before = bulkStats.reused;
  giveBulk(a);
  const b = takeBulk(70 * 1024);
  t.is(bulkStats.reused, before + 1);
  t.is(b.buffer, a.buffer, 'the same class reuses the buffer');
  t.throws(() => { giveBulk(b); giveBulk(b); }, { message: /given back twice/ });
  // Small and huge buffers are not pooled; views of unknown buffers are ignored.
  const small = takeBulk(1000);
  giveBulk(small);
  t.not(takeBulk(1000).buffer, small.buffer);
  giveBulk(new Uint8Array(CLASS_MAX_BYTES));
  t.is(takeBulk(CLASS_MAX_BYTES + 1).length, CLASS_MAX_BYTES + 1);
  // The free list never holds more than its cap.
  const many = Array.from({ length: BULK_FREE_BYTES_MAX / (1 << 20) + 4 }, () => takeBulk(1 << 20));
  for (const m of many) giveBulk(m);
  t.true(bulkFreeBytes() <= BULK_FREE_BYTES_MAX);
  for (let i = 0; i < many.length; i++) takeBulk(1 << 20);
});

test.serial('bulk pool: a stale class does not crowd out the one in use (the cap evicts the least recently taken)', (t) => {
  // A prefill's 4 MiB buffers fill the free list to its cap...
  const big = Array.from({ length: BULK_FREE_BYTES_MAX / CLASS_MAX_BYTES }, () => takeBulk(CLASS_MAX_BYTES));
  for (const b of big) giveBulk(b);
  t.is(bulkFreeBytes(), BULK_FREE_BYTES_MAX);
  // ...then 1 MiB writes: their buffers are kept and reused, the 4 MiB ones go.
  const reused = bulkStats.reused;
  for (let i = 0; i < 20; i++) {
    const a = takeBulk(1 << 20);
    const b = takeBulk(1 << 20);
    giveBulk(a);
    giveBulk(b);
  }
  t.true(bulkStats.reused - reused >= 38, `1 MiB buffers reused (${bulkStats.reused - reused} of 40)`);
  t.true(bulkFreeBytes() <= BULK_FREE_BYTES_MAX);
});

test.serial('bulk pool: trimIdleBulk forgets the free buffers of classes not taken since the previous trim, keeps the others', (t) => {
  trimIdleBulk();
  trimIdleBulk();
  t.is(bulkFreeBytes(), 0, 'two trims without takes empty the pool');
  const big = takeBulk(CLASS_MAX_BYTES);
  const mid = takeBulk(1 << 20);
  giveBulk(big);
  giveBulk(mid);
  trimIdleBulk(); // both classes were taken since the last trim: kept
  t.is(bulkFreeBytes(), CLASS_MAX_BYTES + (1 << 20));
  giveBulk(takeBulk(1 << 20)); // only the 1 MiB class is in use now
  trimIdleBulk();
  t.is(bulkFreeBytes(), 1 << 20, 'the 4 MiB class went');
  const reused = bulkStats.reused;
  giveBulk(takeBulk(1 << 20));
  t.is(bulkStats.reused, reused + 1, 'the 1 MiB buffer is still there');
});

test.serial('concurrent large overwrites through three OSDs reuse frame buffers and every replica holds the last acknowledged data', async (t) => {
  const h = new OsdHarness();
  for (let i = 0; i < 3; i++) await h.startOsd(i);
  h.initMap();
  await waitFor(() => h.allClean(), 10_000);
  try {
    const OBJECTS = 6;
    const SIZE = 256 * 1024;
    const last = new Map<string, number>();
    const reusedBefore = bulkStats.reused;
    let seed = 0;
    for (let round = 0; round < 8; round++) {
      // Two writes per object in flight at once, different data: the second one acknowledged wins
      // (ops on one object run in arrival order), and buffers freed by early commits are refilled
      // by frames still arriving.
      const writes: Promise<void>[] = [];
      for (let o = 0; o < OBJECTS; o++) {
        for (let k = 0; k < 2; k++) {
          const s = ++seed;
          const name = `big-${o}`;
          writes.push(h.op(name, [{ op: 'write', offset: 0, length: SIZE }], [pattern(s, SIZE)]).then((r) => {
            t.is(r.reply.result, 0);
            last.set(name, Math.max(last.get(name) ?? 0, s));
          }));
        }
      }
      await Promise.all(writes);
    }
    t.true(bulkStats.reused > reusedBefore, 'frame buffers were reused');
    for (const [name, s] of last) {
      const r = await h.op(name, [{ op: 'read', offset: 0, length: SIZE }]);
      t.deepEqual(r.data, pattern(s, SIZE), `${name} via the primary`);
      for (const id of [0, 1, 2]) {
        const c = await h.localRead(id, name);
        t.deepEqual(c.data, pattern(s, SIZE), `${name} on osd.${id}`);
      }
    }
  } finally {
    await h.close();
  }
});
