/**
 * The journal's staging ring (store/staging-ring.ts): records are encoded in place in one
 * buffer and given back in FIFO order. How: a seeded random walk of allocations, shrinks and
 * releases against a model of the live pieces (none may overlap, the byte count must add up);
 * then an object store burst larger than the ring (records spill into buffers of their own),
 * crashed and replayed.
 */
import test from 'ava';
import { StagingRing } from '../src/store/staging-ring.js';
import type { Staged } from '../src/store/staging-ring.js';
import { STAGING_BYTES_DEFAULT } from '../src/store/journal.js';
import { Transaction } from '../src/store/types.js';
import { TestEnv } from './sim-env.js';
import { bytes, commitTxn, oid, openStore, readStore, rng } from './store-test-env.js';

test('staging ring: live pieces never overlap, FIFO release adds up, refusals only when full', (t) => {
  const SIZE = 64 * 1024;
  for (const seed of [1, 2, 3, 42, 0xdead]) {
    const rand = rng(seed);
    const ring = new StagingRing(SIZE);
    const live: Staged[] = [];
    let refusals = 0;
    for (let step = 0; step < 5000; step++) {
      const r = rand();
      if (r < 0.55) {
        const n = 512 * (1 + Math.floor(rand() * 24));
        const s = ring.alloc(n);
        if (s === null) {
          refusals++;
          // Refused only when the live bytes, the piece and the end it would skip (< n) exceed the ring.
          t.true(ring.usedBytes + 2 * n > SIZE, `seed ${seed}: refusal with ${ring.usedBytes} used for ${n}`);
          continue;
        }
        t.is(s.view.length, n);
        t.is(s.view.byteOffset % 512, (ring.buf.byteOffset) % 512);
        for (const o of live) {
          const a0 = s.view.byteOffset;
          const b0 = o.view.byteOffset;
          t.true(a0 + s.view.length <= b0 || b0 + o.view.length <= a0, `seed ${seed}: overlap at step ${step}`);
        }
        // Half the time the record used less than its bound: give the rest back, sometimes all of it.
        if (rand() < 0.5) {
          const by = rand() < 0.1 ? n : 512 * Math.floor(rand() * (n / 512));
          const kept = ring.shrinkLast(s, by);
          if (kept.view.length > 0) live.push(kept);
        } else {
          live.push(s);
        }
      } else if (live.length > 0) {
        ring.release(live.shift()!.cost);
      }
      t.is(ring.usedBytes, live.reduce((a, s) => a + s.cost, 0));
    }
    while (live.length > 0) ring.release(live.shift()!.cost);
    t.is(ring.usedBytes, 0);
    t.true(refusals > 0, 'the walk reached a full ring');
  }
});

test('a burst larger than the staging ring commits (records spill into their own buffers) and replays after a crash', (t) => {
  const env = new TestEnv();
  const opts = { journalBytes: 16 * 1024 * 1024, directWriteBytes: 1024 * 1024 };
  const s = openStore(env, opts);
  const N = 100;
  const SIZE = 36 * 1024 + 512; // not block-aligned: read-modify-write of the last block
  t.true(N * SIZE > STAGING_BYTES_DEFAULT, 'the burst does not fit the ring');
  const results: (Error | null)[] = [];
  // Handed off, as the OSD's are: whole blocks are lent to the index as views.
  for (let i = 0; i < N; i++) {
    const txn = new Transaction().write(oid(`o${i % 13}`), (i % 3) * 4096, bytes(SIZE, i));
    txn.handOff = true;
    s.submit(txn, (e) => results.push(e));
  }
  for (let i = 0; i < 500 && results.length < N; i++) env.advance(1);
  t.is(results.length, N);
  t.true(results.every((e) => e === null));
  const expect = new Map<string, Uint8Array>();
  for (let i = 0; i < N; i++) {
    const name = `o${i % 13}`;
    const cur = expect.get(name) ?? new Uint8Array(0);
    const end = (i % 3) * 4096 + SIZE;
    const next = new Uint8Array(Math.max(cur.length, end));
    next.set(cur);
    next.set(bytes(SIZE, i), (i % 3) * 4096);
    expect.set(name, next);
  }
  for (const [name, data] of expect) t.deepEqual(readStore(env, s, oid(name), 0, data.length), data, `live ${name}`);
  env.dropTimers();
  env.disk.crash();
  const r = openStore(env, opts);
  for (const [name, data] of expect) t.deepEqual(readStore(env, r, oid(name), 0, data.length), data, `replayed ${name}`);
  // And the ring keeps working after it was full.
  t.is(commitTxn(env, r, new Transaction().write(oid('after'), 0, bytes(4096, 9))), null);
  t.deepEqual(readStore(env, r, oid('after'), 0, 4096), bytes(4096, 9));
});
