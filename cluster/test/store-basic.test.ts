/**
 * ObjectStore behaviour on the in-memory disk: sparse reads, read-modify-write of partial
 * blocks, zero/truncate/remove freeing space, attributes, versions and PG records, atomic
 * multi-op transactions, group commit (one fdatasync for a burst), journal wrap with
 * backpressure, direct (large) writes, checksum verification and input limits. How: drive
 * TestEnv by hand, crash MemDisk where durability matters, reopen and compare.
 */
import test from 'ava';
import { ObjectStore } from '../src/store/object-store.js';
import { Transaction } from '../src/store/types.js';
import type { ObjectStoreOptions } from '../src/store/types.js';
import { TestEnv } from './sim-env.js';
import { STORE_DIR, bytes, commitTxn, oid, openStore, readStore } from './store-test-env.js';

const DIR = STORE_DIR;
const open = (env: TestEnv, opts: Partial<ObjectStoreOptions> = {}): ObjectStore => openStore(env, { journalBytes: 256 * 1024, ...opts });
const commit = commitTxn;
const read = readStore;

function checkpoint(env: TestEnv, store: ObjectStore): void {
  let done = false;
  store.checkpoint((e) => { if (e) throw e; done = true; });
  for (let i = 0; i < 100 && !done; i++) env.advance(1);
}


test('sparse object: holes read as zeros, reads past the size are short, missing object is NOT_FOUND', (t) => {
  const env = new TestEnv();
  const s = open(env);
  t.is(commit(env, s, new Transaction().write(oid('a'), 10_000, bytes(100, 1))), null);
  const d = read(env, s, oid('a'), 0, 20_000);
  if (d instanceof Error) return t.fail(d.message);
  t.is(d.length, 10_100);
  t.true(d.subarray(0, 10_000).every((b) => b === 0));
  t.deepEqual(d.subarray(10_000), bytes(100, 1));
  t.is(s.stat(oid('a'))?.allocatedBytes, 4096);
  const missing = read(env, s, oid('nope'), 0, 10);
  t.is((missing as { code?: string }).code, 'CLU_ERR_NOT_FOUND');
});

test('partial-block writes read-modify-write data already on the data file', (t) => {
  const env = new TestEnv();
  const s = open(env);
  const full = bytes(3 * 4096, 2);
  commit(env, s, new Transaction().write(oid('a'), 0, full));
  checkpoint(env, s); // Blocks now live on the data file, not in memory.
  t.is(s.stats().residentBlocks, 0);
  commit(env, s, new Transaction().write(oid('a'), 4000, bytes(200, 3)));
  const expect = full.slice();
  expect.set(bytes(200, 3), 4000);
  t.deepEqual(read(env, s, oid('a'), 0, 3 * 4096), expect);
  env.dropTimers();
  env.disk.crash();
  const again = open(env);
  t.deepEqual(read(env, again, oid('a'), 0, 3 * 4096), expect);
});

test('zero, truncate and remove free blocks; stat shows allocated bytes dropping', (t) => {
  const env = new TestEnv();
  const s = open(env);
  commit(env, s, new Transaction().write(oid('a'), 0, bytes(8 * 4096, 4)));
  checkpoint(env, s);
  t.is(s.stat(oid('a'))?.allocatedBytes, 8 * 4096);
  commit(env, s, new Transaction().zero(oid('a'), 100, 3 * 4096));
  t.is(s.stat(oid('a'))?.allocatedBytes, 6 * 4096); // Blocks 1 and 2 freed; edges rewritten.
  const d = read(env, s, oid('a'), 0, 8 * 4096) as Uint8Array;
  t.true(d.subarray(100, 100 + 3 * 4096).every((b) => b === 0));
  t.deepEqual(d.subarray(0, 100), bytes(8 * 4096, 4).subarray(0, 100));
  commit(env, s, new Transaction().truncate(oid('a'), 5000));
  t.is(s.stat(oid('a'))?.allocatedBytes, 4096); // Block 1 was already a hole (zeroed above).
  commit(env, s, new Transaction().truncate(oid('a'), 9000));
  const grown = read(env, s, oid('a'), 0, 9000) as Uint8Array;
  t.true(grown.subarray(5000).every((b) => b === 0), 'extension after shrink reads zeros');
  commit(env, s, new Transaction().remove(oid('a')));
  t.is(s.stat(oid('a')), undefined);
  checkpoint(env, s);
  checkpoint(env, s);
  const before = s.stats().dataFileBlocks;
  commit(env, s, new Transaction().write(oid('b'), 0, bytes(8 * 4096, 5)));
  checkpoint(env, s);
  t.is(s.stats().dataFileBlocks, before, 'freed blocks are reused');
});

test('attributes, versions and PG records commit atomically with data and survive a crash', (t) => {
  const env = new TestEnv();
  const s = open(env);
  const txn = new Transaction()
    .write(oid('obj'), 0, bytes(4096, 6))
    .setAttr(oid('obj'), 'snap', bytes(10, 7))
    .setVersion(oid('obj'), { epoch: 3, seq: 17 })
    .pgPut('1.2a', 'log.0000000003.0000000017', bytes(40, 8))
    .pgPut('1.2a', 'info', bytes(20, 9));
  t.is(commit(env, s, txn), null);
  commit(env, s, new Transaction().rmAttr(oid('obj'), 'snap').pgRemove('1.2a', 'info'));
  env.dropTimers();
  env.disk.crash();
  const r = open(env);
  t.deepEqual(r.stat(oid('obj')), { sizeBytes: 4096, version: { epoch: 3, seq: 17 }, allocatedBytes: 4096 });
  t.is(r.getAttr(oid('obj'), 'snap'), undefined);
  t.deepEqual(r.pgList('1.2a').map(([k]) => k), ['log.0000000003.0000000017']);
  t.deepEqual(r.pgGet('1.2a', 'log.0000000003.0000000017'), bytes(40, 8));
  t.deepEqual(r.listObjects(1).map((o) => o.name), ['obj']);
  t.deepEqual(r.listObjects(2), []);
});

test('group commit: a burst of transactions shares one journal fdatasync', (t) => {
  const env = new TestEnv();
  const s = open(env);
  const before = s.stats().journalBatches;
  const results: (Error | null)[] = [];
  for (let i = 0; i < 20; i++) s.submit(new Transaction().write(oid(`o${i}`), 0, bytes(4096, i)), (e) => results.push(e));
  for (let i = 0; i < 50 && results.length < 20; i++) env.advance(1);
  t.is(results.length, 20);
  t.true(results.every((e) => e === null));
  t.is(s.stats().journalBatches - before, 1);
});

test('a full journal applies backpressure, checkpoints, wraps, and replays correctly', (t) => {
  const env = new TestEnv();
  const s = open(env, { journalBytes: 64 * 1024 });
  const results: (Error | null)[] = [];
  for (let i = 0; i < 100; i++) s.submit(new Transaction().write(oid(`o${i % 7}`), (i % 5) * 4096, bytes(4096, i)), (e) => results.push(e));
  for (let i = 0; i < 2000 && results.length < 100; i++) env.advance(1);
  t.is(results.length, 100);
  t.true(results.every((e) => e === null));
  t.true(s.stats().checkpoints >= 3);
  env.dropTimers();
  env.disk.crash();
  const r = open(env, { journalBytes: 64 * 1024 });
  for (let i = 93; i < 100; i++) t.deepEqual(read(env, r, oid(`o${i % 7}`), (i % 5) * 4096, 4096), bytes(4096, i));
});

test('direct writes go to the data file and survive a crash; reads verify checksums', (t) => {
  const env = new TestEnv();
  const s = open(env, { directWriteBytes: 16 * 1024 });
  const data = bytes(64 * 1024 + 300, 11);
  t.is(commit(env, s, new Transaction().write(oid('big'), 100, data)), null);
  t.is(s.stats().residentBlocks, 2, 'only the unaligned edges live in the journal');
  env.dropTimers();
  env.disk.crash();
  const r = open(env, { directWriteBytes: 16 * 1024 });
  t.deepEqual(read(env, r, oid('big'), 100, data.length), data);
  // Corrupt one byte of the data file: the read names the object and block.
  const raw = env.disk.peek(`${DIR}/data`)!;
  for (let i = 0; i < raw.length; i++) raw[i] = raw[i]! ^ 0x01;
  const bad = read(env, r, oid('big'), 8192, 10) as Error & { code?: string; details?: Record<string, unknown> };
  t.is(bad.code, 'CLU_ERR_IO');
  t.is(bad.details?.['reason'], 'checksum');
  t.is(bad.details?.['block'], 2);
});

test('a handed-off transaction (no copies) commits, reads back and survives a crash like a copied one', (t) => {
  const env = new TestEnv();
  const s = open(env, { directWriteBytes: 16 * 1024 });
  const data = bytes(96 * 1024 + 700, 5);
  // A view into a larger buffer, as a received frame's data is.
  const frame = new Uint8Array(data.length + 1000);
  frame.set(data, 500);
  const txn = new Transaction().write(oid('h'), 300, frame.subarray(500, 500 + data.length)).setAttr(oid('h'), 'k', bytes(10, 1));
  txn.handOff = true;
  t.is(commit(env, s, txn), null);
  t.deepEqual(read(env, s, oid('h'), 300, data.length), data);
  env.dropTimers();
  env.disk.crash();
  const r = open(env, { directWriteBytes: 16 * 1024 });
  t.deepEqual(read(env, r, oid('h'), 300, data.length), data);
  t.deepEqual(r.getAttr(oid('h'), 'k'), bytes(10, 1));
  // PG records are held as compact strings (store/pg-records.ts): whatever was handed off, a
  // read returns an exact copy of its own, never a view that pins the frame it came in.
  const own = bytes(80, 2);
  const inFrame = frame.subarray(10, 90);
  const t2 = new Transaction().pgPut('1.0', 'own', own).pgPut('1.0', 'view', inFrame);
  t2.handOff = true;
  t.is(commit(env, r, t2), null);
  t.deepEqual(r.pgGet('1.0', 'own'), own);
  t.deepEqual(r.pgGet('1.0', 'view'), frame.slice(10, 90));
  t.is(r.pgGet('1.0', 'view')!.buffer.byteLength, 80);
});

test('buffers from a Node Buffer (a socket chunk) are copied, not pinned: changing the chunk later changes nothing', (t) => {
  const env = new TestEnv();
  const s = open(env);
  // Buffer#slice is a view; the store must copy block images, attributes and PG records anyway.
  const chunk = Buffer.alloc(64 * 1024, 0x11);
  const block = chunk.subarray(4096, 8192);
  const attr = chunk.subarray(100, 110);
  const rec = chunk.subarray(200, 280);
  t.is(commit(env, s, new Transaction().write(oid('b'), 0, block).setAttr(oid('b'), 'a', attr).pgPut('1.0', 'k', rec)), null);
  chunk.fill(0x22);
  t.deepEqual(read(env, s, oid('b'), 0, 4096), new Uint8Array(4096).fill(0x11));
  t.deepEqual(s.getAttr(oid('b'), 'a'), new Uint8Array(10).fill(0x11));
  t.deepEqual(s.pgGet('1.0', 'k'), new Uint8Array(80).fill(0x11));
  // And what the store keeps is exactly sized, not a window on the 64 KiB chunk.
  t.is(s.pgGet('1.0', 'k')!.buffer.byteLength, 80);
});

test('rejects bad input with stable codes', (t) => {
  const env = new TestEnv();
  const s = open(env, { objectBytesMax: 1 << 20, directWriteBytes: 1 << 20 });
  t.is((commit(env, s, new Transaction().write(oid('a'), 1 << 20, bytes(1, 1))) as { code?: string }).code, 'CLU_ERR_INVALID');
  t.is((commit(env, s, new Transaction()) as { code?: string }).code, 'CLU_ERR_INVALID');
  t.is((commit(env, s, new Transaction().setAttr(oid('a'), 'k', new Uint8Array(70_000))) as { code?: string }).code, 'CLU_ERR_INVALID');
  t.is((commit(env, s, new Transaction().write(oid('a'), 0, bytes(200 * 1024, 1))) as { code?: string }).code, 'CLU_ERR_INVALID', 'record larger than half the ring');
  t.is(s.stat(oid('a')), undefined, 'nothing of a rejected transaction applies');
});

test('an fdatasync failure fails the batch and every later write (fail closed)', (t) => {
  const env = new TestEnv();
  const s = open(env);
  env.disk.failSyncs = 1;
  t.is((commit(env, s, new Transaction().write(oid('a'), 0, bytes(10, 1))) as { code?: string }).code, 'CLU_ERR_IO');
  t.is((commit(env, s, new Transaction().write(oid('a'), 0, bytes(10, 1))) as { code?: string }).code, 'CLU_ERR_IO');
});
