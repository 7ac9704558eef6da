/**
 * The pool of journal-resident block images (store/block-pool.ts). How: a seeded random walk of
 * copy-ins, frees, pins and unpins against a model (live slots never overlap and keep their
 * bytes; a slot freed while pinned is not handed out before the unpin; empty chunks are given
 * back); then an object store whose blocks are overwritten while a checkpoint writes them from
 * their slots, crashed and replayed.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { ObjectStore } from '../src/store/object-store.js';
import { BlockPool } from '../src/store/block-pool.js';
import { BLOCK_BYTES, Transaction } from '../src/store/types.js';
import { TestEnv } from './sim-env.js';
import { HEADER_BYTES } from '../src/store/journal-format.js';
import type { Fd } from '../src/env/env.js';
import { STORE_DIR, bytes, commitTxn, oid, openStore, readStore, rng } from './store-test-env.js';

/** Zeroes the journal file past its header: replay then stops at the first record. */
function wipeJournalRecords(env: TestEnv): void {
  let fd: Fd | undefined;
  env.disk.open(`${STORE_DIR}/journal`, {}, (e, f) => { if (e === null) fd = f; });
  for (let i = 0; i < 20 && fd === undefined; i++) env.advance(1);
  if (fd === undefined) throw new Error('journal open did not finish');
  let left = 2;
  const one = (e: Error | null): void => { if (e) throw e; left--; };
  env.disk.pwrite(fd, new Uint8Array(1 << 20), HEADER_BYTES, one);
  env.disk.fdatasync(fd, one);
  for (let i = 0; i < 20 && left > 0; i++) env.advance(1);
  if (left > 0) throw new Error('journal wipe did not finish');
}

const image = (tag: number): Uint8Array => new Uint8Array(BLOCK_BYTES).fill(tag & 0xff).fill((tag >> 8) & 0xff, 0, 2);
const addr = (v: Uint8Array): string => `${String(v.buffer.byteLength)}:${v.byteOffset}`;

test('block pool: live slots never overlap and keep their bytes; pinned frees wait for the unpin; empty chunks go back', (t) => {
  for (const seed of [1, 7, 99, 0xbeef]) {
    const rand = rng(seed);
    const pool = new BlockPool(1);
    const bufIds = new Map<ArrayBufferLike, number>();
    const key = (v: Uint8Array): string => {
      if (!bufIds.has(v.buffer)) bufIds.set(v.buffer, bufIds.size);
      return `${bufIds.get(v.buffer)}:${addr(v)}`;
    };
    const live: { view: Uint8Array; tag: number; k: string }[] = [];
    const liveKeys = new Set<string>();
    let quarantined = new Set<string>();
    let pinned = 0;
    let tag = 0;
    for (let step = 0; step < 4000; step++) {
      const r = rand();
      if (r < 0.5 || live.length === 0) {
        const view = pool.copyIn(image(++tag));
        const k = key(view);
        t.false(quarantined.has(k), `seed ${seed}: a slot freed under a pin was reused at step ${step}`);
        if (liveKeys.has(k)) t.fail(`seed ${seed}: overlap at step ${step}`);
        live.push({ view, tag, k });
        liveKeys.add(k);
      } else if (r < 0.93) {
        const i = Math.floor(rand() * live.length);
        const [l] = live.splice(i, 1);
        if (Buffer.compare(l!.view, image(l!.tag)) !== 0) t.fail(`seed ${seed}: slot bytes changed at step ${step}`);
        liveKeys.delete(l!.k);
        if (pinned > 0) quarantined.add(l!.k);
        pool.free(l!.view);
      } else if (r < 0.97 || pinned === 0) {
        pool.pin();
        pinned++;
      } else {
        pool.unpin();
        if (--pinned === 0) quarantined = new Set();
      }
      if (pool.usedSlots !== live.length + quarantined.size) t.fail(`seed ${seed}: ${pool.usedSlots} slots held, expected ${live.length + quarantined.size} (live + freed under a pin) at step ${step}`);
    }
    while (pinned > 0) { pool.unpin(); pinned--; }
    for (const l of live) pool.free(l.view);
    t.is(pool.usedSlots, 0);
    t.is(pool.heldBytes, 256 * BLOCK_BYTES, `seed ${seed}: only the kept chunk stays`);
  }
});

test('block pool: a double free and a foreign view are refused', (t) => {
  const pool = new BlockPool();
  const v = pool.copyIn(image(1));
  pool.free(v);
  t.throws(() => pool.free(v), { message: /double free/ });
  t.throws(() => pool.free(new Uint8Array(BLOCK_BYTES)), { message: /not a slot/ });
  t.throws(() => pool.copyIn(new Uint8Array(100)), { message: /block image size/ });
});

const N = 40;

/** N resident blocks; a checkpoint starts; the even ones are overwritten before its writes land. */
function overwriteDuringCheckpoint(t: ExecutionContext): { env: TestEnv; s: ObjectStore; expected: Uint8Array; before: Uint8Array } {
  const env = new TestEnv();
  const s = openStore(env);
  for (let i = 0; i < N; i++) t.is(commitTxn(env, s, new Transaction().write(oid('o'), i * BLOCK_BYTES, bytes(BLOCK_BYTES, i))), null);
  t.is(s.stats().residentBlocks, N);
  let done: Error | null | undefined;
  s.checkpoint((e) => { done = e; });
  // The checkpoint picked its blocks and issued its writes; overwrite half of them before they land.
  const over: (Error | null)[] = [];
  for (let i = 0; i < N; i += 2) s.submit(new Transaction().write(oid('o'), i * BLOCK_BYTES, bytes(BLOCK_BYTES, 1000 + i)), (e) => over.push(e));
  for (let i = 0; i < 200 && (done === undefined || over.length < N / 2); i++) env.advance(1);
  t.is(done, null);
  t.true(over.every((e) => e === null) && over.length === N / 2);
  const expected = new Uint8Array(N * BLOCK_BYTES);
  const before = new Uint8Array(N * BLOCK_BYTES);
  for (let i = 0; i < N; i++) {
    expected.set(bytes(BLOCK_BYTES, i % 2 === 0 ? 1000 + i : i), i * BLOCK_BYTES);
    before.set(bytes(BLOCK_BYTES, i), i * BLOCK_BYTES);
  }
  t.deepEqual(readStore(env, s, oid('o'), 0, N * BLOCK_BYTES), expected, 'live');
  t.is(s.stats().residentBlocks, N / 2, 'the overwritten half stays resident, the rest moved to the data file');
  return { env, s, expected, before };
}

test('a checkpoint writes blocks from their slots: an overwrite meanwhile does not change what it wrote', (t) => {
  const { env, before } = overwriteDuringCheckpoint(t);
  // What the checkpoint alone made durable (the journal's records wiped, as if the overwrites had
  // never reached it): the blocks as they were at its start, each matching its crc. Had a freed
  // slot been reused under the checkpoint's write, the data file would hold an overwrite's bytes
  // under the old crc (a read error).
  env.dropTimers();
  wipeJournalRecords(env);
  t.deepEqual(readStore(env, openStore(env), oid('o'), 0, N * BLOCK_BYTES), before, 'the checkpoint alone');
});

test('after the overwrites, the next checkpoint empties the pool and a crash replays the right bytes', (t) => {
  const { env, s, expected } = overwriteDuringCheckpoint(t);
  let second: Error | null | undefined;
  s.checkpoint((e) => { second = e; });
  for (let i = 0; i < 200 && second === undefined; i++) env.advance(1);
  t.is(second, null);
  t.is(s.stats().residentBlocks, 0);
  t.deepEqual(readStore(env, s, oid('o'), 0, N * BLOCK_BYTES), expected, 'after the second checkpoint');
  env.dropTimers();
  env.disk.crash();
  t.deepEqual(readStore(env, openStore(env), oid('o'), 0, N * BLOCK_BYTES), expected, 'replayed');
});

test('checkpointIfIdle: only after the writes went quiet; then the pool and the journal are empty and a second call does nothing', (t) => {
  const env = new TestEnv();
  const s = openStore(env);
  const results: (Error | null)[] = [];
  for (let i = 0; i < 300; i++) s.submit(new Transaction().write(oid(`o${i % 7}`), (i % 50) * BLOCK_BYTES, bytes(BLOCK_BYTES, i)), (e) => results.push(e));
  for (let i = 0; i < 200 && results.length < 300; i++) env.advance(1);
  t.true(results.length === 300 && results.every((e) => e === null));
  const before = s.stats();
  t.true(before.residentBlocks > 0 && before.journalUsedBytes > 0);
  t.true(before.residentPoolBytes >= 256 * BLOCK_BYTES);
  t.false(s.checkpointIfIdle(5000), 'writes were just submitted');
  env.advance(5000);
  t.true(s.checkpointIfIdle(5000));
  t.false(s.checkpointIfIdle(5000), 'one is running');
  for (let i = 0; i < 100 && s.stats().checkpoints === before.checkpoints; i++) env.advance(1);
  const after = s.stats();
  t.is(after.checkpoints, before.checkpoints + 1);
  t.is(after.residentBlocks, 0);
  t.is(after.journalUsedBytes, 0);
  t.true(after.residentPoolBytes <= 2 * 256 * BLOCK_BYTES, 'the pool is back to its kept chunks');
  env.advance(5000);
  t.false(s.checkpointIfIdle(5000), 'nothing left to checkpoint');
  t.deepEqual(readStore(env, s, oid('o6'), 48 * BLOCK_BYTES, BLOCK_BYTES), bytes(BLOCK_BYTES, 48));
});
