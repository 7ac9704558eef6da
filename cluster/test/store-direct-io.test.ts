/**
 * ObjectStore data I/O on real files (docs/object-store.md, "Data I/O"): with the default
 * `dataIo: 'direct'` on os.tmpdir() (ext4 here) big writes go to the data file through an
 * O_DIRECT fd — aligned buffers as they are, unaligned handed-off ones through one aligned
 * copy (counted), copies the store makes itself aligned from the start; where the open with
 * O_DIRECT fails (EINVAL: old tmpfs; injected here, since this kernel's tmpfs accepts it) the
 * store falls back to buffered writes; `dataIo: 'buffered'` never opens it. In every case the bytes read back (before and after close + reopen, and after
 * small overwrites inside directly written ranges) equal what was written.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { bulkBytes } from '../src/common/aligned.js';
import type { ObjectName, PoolId } from '../src/common/ids.js';
import type { Disk, DiskError, Env, Fd } from '../src/env/env.js';
import type { Net } from '../src/env/net.js';
import { createRealEnv } from '../src/env/real.js';
import { ObjectStore } from '../src/store/object-store.js';
import { Transaction } from '../src/store/types.js';
import type { ObjectId, ObjectStoreOptions } from '../src/store/types.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const obj: ObjectId = { pool: 1 as PoolId, name: 'big' as ObjectName };
const env = createRealEnv({ log: pino({ level: 'silent' }), net: {} as Net });

const open = (o: ObjectStoreOptions, e0: Env = env): Promise<ObjectStore> =>
  new Promise((res, rej) => ObjectStore.open(e0, o, (e, s) => (e || !s ? rej(e) : res(s))));
const submit = (s: ObjectStore, t: Transaction): Promise<void> => new Promise((res, rej) => s.submit(t, (e) => (e ? rej(e) : res())));
const read = (s: ObjectStore, off: number, len: number): Promise<Uint8Array> =>
  new Promise((res, rej) => s.read(obj, off, len, (e, d) => (e ? rej(e) : res(d))));
const close = (s: ObjectStore): Promise<void> => new Promise((res, rej) => s.close((e) => (e ? rej(e) : res())));

/** Why not t.deepEqual: ava's deep diff of megabyte arrays takes seconds. */
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

function pattern(n: number, seed: number, into?: Uint8Array): Uint8Array {
  const b = into ?? new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed * 101 + (i >> 12)) & 0xff;
  return b;
}

async function exercise(t: ExecutionContext, dir: string, opts: Partial<ObjectStoreOptions>, expectDirect: boolean, e: Env = env, expectJournalDirect?: boolean): Promise<void> {
  const o = { dir, journalBytes: 8 * MiB, ...opts };
  const s = await open(o, e);
  t.is(s.stats().directIo, expectDirect);
  t.is(s.stats().journalDirectIo, expectJournalDirect ?? expectDirect);
  const model = new Uint8Array(4 * MiB);
  const put = async (off: number, data: Uint8Array, handOff: boolean): Promise<void> => {
    const txn = new Transaction().write(obj, off, data);
    txn.handOff = handOff;
    model.set(data, off);
    await submit(s, txn);
  };
  // 1. A received write's data: aligned (bulkBytes), handed off — written as is.
  await put(0, pattern(MiB, 1, bulkBytes(MiB)), true);
  // 2. Handed off but unaligned (a view 512 bytes into a buffer) — one aligned copy.
  const holder = new Uint8Array(MiB + 512);
  await put(MiB, pattern(MiB, 2, holder.subarray(512)), true);
  // 3. Not handed off: the store's own copy (aligned when O_DIRECT is in use).
  await put(2 * MiB, pattern(512 * KiB, 3), false);
  // 4. Unaligned object offset: journal-resident edges around a direct middle.
  await put(2 * MiB + 512 * KiB + 1000, pattern(300 * KiB, 4), true);
  // 5. Small overwrites inside directly written blocks (journal, then checkpoint: buffered fd).
  await put(5000, pattern(4 * KiB, 5), false);
  await put(MiB + 8 * KiB, pattern(100, 6), false);
  t.is(s.stats().unalignedDirectWrites, expectDirect ? 2 : 0); // writes 2 and 4
  const end = 2 * MiB + 512 * KiB + 1000 + 300 * KiB;
  t.true(same(await read(s, 0, end), model.subarray(0, end)));
  await close(s);
  const r = await open(o, e);
  t.true(same(await read(r, 0, end), model.subarray(0, end)));
  // The reopened store writes direct again (its O_DIRECT fd is a new one).
  const more = pattern(MiB, 7, bulkBytes(MiB));
  const txn = new Transaction().write(obj, 3 * MiB, more);
  txn.handOff = true;
  await submit(r, txn);
  t.true(same(await read(r, 3 * MiB, MiB), more));
  t.true(same(await read(r, 0, end), model.subarray(0, end)));
  await close(r);
}

/** A fresh directory named from `prefix` (removed after the test) and whether a store there gets O_DIRECT. */
async function probedDir(t: ExecutionContext, prefix: string): Promise<{ dir: string; direct: boolean }> {
  const dir = mkdtempSync(prefix);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const probe = await open({ dir: join(dir, 'probe') });
  const direct = probe.stats().directIo;
  await close(probe);
  return { dir, direct };
}

test('dataIo direct (default) on os.tmpdir(): O_DIRECT fd, bytes intact across reopen', async (t) => {
  const { dir, direct } = await probedDir(t, join(tmpdir(), 'strata-direct-'));
  if (!direct) t.log('os.tmpdir() refuses O_DIRECT: checking the fallback only');
  await exercise(t, join(dir, 'store'), {}, direct);
});

test('dataIo buffered never uses O_DIRECT', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-buffered-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await exercise(t, dir, { dataIo: 'buffered' }, false);
});

test('on tmpfs (/dev/shm) the store uses O_DIRECT where the kernel allows it (Linux ≥ 6.6), else buffered', async (t) => {
  if (!existsSync('/dev/shm')) return t.pass();
  const { dir, direct } = await probedDir(t, '/dev/shm/strata-direct-');
  t.log(`tmpfs O_DIRECT: ${direct ? 'accepted' : 'refused'}`);
  await exercise(t, join(dir, 'store'), {}, direct);
});

test('a file system that refuses O_DIRECT (EINVAL at open) leaves the store on buffered data writes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-refused-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The real disk, with the refusal old tmpfs (and some FUSE file systems) give.
  const refusing: Disk = {
    ...env.disk,
    open: (path, o, cb) => {
      if (o.direct !== true) return env.disk.open(path, o, cb);
      const e = new Error('open: EINVAL (O_DIRECT refused)') as DiskError;
      e.code = 'EINVAL';
      setImmediate(() => cb(e, -1 as Fd));
    },
  };
  await exercise(t, dir, {}, false, { ...env, disk: refusing });
});

test('a device that refuses 512-byte O_DIRECT writes (4 KiB logical blocks) keeps the journal on page-cache writes, data direct', async (t) => {
  const { dir, direct } = await probedDir(t, join(tmpdir(), 'strata-4kn-'));
  if (!direct) return t.pass('os.tmpdir() refuses O_DIRECT');
  // The real disk, except that O_DIRECT fds refuse writes not aligned to 4096, as on a 4Kn device.
  const directFds = new Set<Fd>();
  const fourKn: Disk = {
    ...env.disk,
    open: (path, o, cb) => env.disk.open(path, o, (err, fd) => { if (err === null && o.direct === true) directFds.add(fd); cb(err, fd); }),
    close: (fd, cb) => { directFds.delete(fd); env.disk.close(fd, cb); },
    pwrite: (fd, data, pos, cb) => {
      if (directFds.has(fd) && (data.length % 4096 !== 0 || pos % 4096 !== 0)) {
        const e = new Error('pwrite: EINVAL (unaligned O_DIRECT)') as DiskError;
        e.code = 'EINVAL';
        setImmediate(() => cb(e));
        return;
      }
      env.disk.pwrite(fd, data, pos, cb);
    },
  };
  await exercise(t, join(dir, 'store'), {}, true, { ...env, disk: fourKn }, false);
});

test('the O_DIRECT journal survives reopen: records written through it replay', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-jdirect-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const o = { dir, journalBytes: 8 * MiB };
  const s = await open(o);
  if (!s.stats().journalDirectIo) { await close(s); return t.pass('no O_DIRECT journal here'); }
  const small = Array.from({ length: 300 }, (_, i) => pattern(1000 + i, i));
  let off = 0;
  const offs: number[] = [];
  for (const d of small) { offs.push(off); off += d.length + 17; }
  await Promise.all(small.map((d, i) => submit(s, new Transaction().write(obj, offs[i]!, d))));
  // No close: a crash leaves only the journal (the next open replays it).
  const r = await open({ ...o, dir });
  for (let i = 0; i < small.length; i += 37) t.true(same(await read(r, offs[i]!, small[i]!.length), small[i]!), `write ${i}`);
  await close(r);
  await close(s).catch(() => undefined);
});

test("journalIo 'auto' writes a lone record inline and a batch of several through the pool; both replay", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-jauto-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The real disk, counting journal writes by path: inline (pwriteInline) or pool (pwrite).
  let inline = 0;
  let pooled = 0;
  const journalFds = new Set<Fd>();
  const counting: Disk = {
    ...env.disk,
    open: (path, o, cb) => env.disk.open(path, o, (err, fd) => { if (err === null && path.endsWith('/journal')) journalFds.add(fd); cb(err, fd); }),
    pwrite: (fd, data, pos, cb) => { if (journalFds.has(fd)) pooled++; env.disk.pwrite(fd, data, pos, cb); },
    pwriteInline: (fd, data, pos) => { if (journalFds.has(fd)) inline++; return env.disk.pwriteInline!(fd, data, pos); },
  };
  const e: Env = { ...env, disk: counting };
  const o = { dir, journalBytes: 8 * MiB, journalIo: 'auto' as const };
  const s = await open(o, e);
  const before = { inline, pooled };
  // One at a time: every batch holds one record.
  for (let i = 0; i < 5; i++) await submit(s, new Transaction().write(obj, i * 4096, pattern(4096, i)));
  t.is(inline - before.inline, 5, 'lone records are written inline');
  t.is(pooled - before.pooled, 0);
  // Twenty at once: the first goes alone (inline), the rest queue behind it and form batches of several.
  const mid = { inline, pooled };
  await Promise.all(Array.from({ length: 20 }, (_, i) => submit(s, new Transaction().write(obj, (10 + i) * 4096, pattern(4096, 10 + i)))));
  t.true(pooled - mid.pooled >= 1, 'a batch of several records goes through the pool');
  t.true(inline - mid.inline + (pooled - mid.pooled) < 20, 'the twenty records were batched');
  // No close: the next open replays what both paths wrote.
  const r = await open({ ...o, dir });
  for (let i = 0; i < 30; i++) if (i < 5 || i >= 10) t.true(same(await read(r, i * 4096, 4096), pattern(4096, i)), `block ${i}`);
  await close(r);
  await close(s).catch(() => undefined);
});
