// The real Disk's read path (env/real.ts): page cache first with preadNoWait, a lone miss inline, the libuv pool
// for what is not cached, the pool only on tmpfs (EOPNOTSUPP, remembered per fd until close).
// Each case compares the bytes with the file and checks the callback never runs inside the
// call, cached or not.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { createRealDisk, readPathCounts } from '../src/env/real.js';
import type { Disk, Fd } from '../src/env/env.js';

function openP(disk: Disk, file: string): Promise<Fd> {
  return new Promise((res, rej) => disk.open(file, { readOnly: true }, (e, fd) => (e ? rej(e) : res(fd))));
}

/** Reads through `disk.pread`, asserting the callback is asynchronous. */
function preadP(disk: Disk, fd: Fd, length: number, position: number): Promise<{ n: number; buf: Uint8Array; sync: boolean }> {
  return new Promise((res, rej) => {
    const buf = new Uint8Array(length);
    let returned = false;
    let sync = false;
    disk.pread(fd, buf, position, (e, n) => {
      sync = !returned;
      if (e) rej(e);
      else res({ n, buf, sync });
    });
    returned = true;
  });
}

function closeP(disk: Disk, fd: Fd): Promise<void> {
  return new Promise((res, rej) => disk.close(fd, (e) => (e ? rej(e) : res())));
}

for (const [label, dir, viaDd] of [
  ['disk file system, not cached (O_DIRECT-written)', '/var/tmp', true],
  ['disk file system, cached', '/var/tmp', false],
  ['tmpfs (no RWF_NOWAIT)', '/dev/shm', false],
] as const) {
  test(`Disk.pread: ${label}`, async (t) => {
    const d = fs.mkdtempSync(path.join(dir, 'strata-rd-'));
    t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
    const file = path.join(d, 'data');
    const onDisk = Buffer.from(Array.from({ length: 32768 }, (_, i) => (i * 13 + 5) & 0xff));
    if (viaDd) {
      // O_DIRECT writes bypass (and invalidate) the page cache: the data is on disk only.
      fs.writeFileSync(`${file}.src`, onDisk);
      execFileSync('dd', [`if=${file}.src`, `of=${file}`, 'bs=4096', 'oflag=direct', 'status=none']);
    } else {
      fs.writeFileSync(file, onDisk);
    }
    const disk = createRealDisk();
    const fd = await openP(disk, file);
    // Twice: the first read of an uncached range goes to the disk (inline: it is alone), the second
    // hits the cache.
    for (let round = 0; round < 2; round++) {
      const a = await preadP(disk, fd, 4096, 8192);
      t.is(a.n, 4096);
      t.false(a.sync, 'callback ran inside pread');
      t.deepEqual(Buffer.from(a.buf), onDisk.subarray(8192, 12288));
    }
    const tail = await preadP(disk, fd, 8192, 28672);
    t.is(tail.n, 4096, 'short read at EOF');
    t.deepEqual(Buffer.from(tail.buf.subarray(0, 4096)), onDisk.subarray(28672));
    const eof = await preadP(disk, fd, 4096, 32768);
    t.is(eof.n, 0);
    t.false(eof.sync);
    await closeP(disk, fd);
  });
}

test.serial('Disk.pread: a lone miss is read inline, misses issued together go to the pool, bytes match either way', async (t) => {
  const d = fs.mkdtempSync(path.join('/var/tmp', 'strata-rd-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  const file = path.join(d, 'data');
  // 10 MiB, reads 1 MiB apart: a buffered miss reads ahead, so neighbours would be cached.
  const MIB = 1 << 20;
  const onDisk = Buffer.from(Array.from({ length: 10 * MIB }, (_, i) => (i * 7 + 3 + (i >> 12)) & 0xff));
  fs.writeFileSync(`${file}.src`, onDisk);
  execFileSync('dd', [`if=${file}.src`, `of=${file}`, 'bs=1M', 'oflag=direct', 'status=none']);
  const disk = createRealDisk();
  const fd = await openP(disk, file);
  const c0 = readPathCounts();
  const lone = await preadP(disk, fd, 4096, 0);
  t.false(lone.sync, 'callback ran inside pread');
  t.deepEqual(Buffer.from(lone.buf), onDisk.subarray(0, 4096));
  const c1 = readPathCounts();
  t.is(c1.inlineMiss - c0.inlineMiss, 1, 'the lone miss was read on the calling thread');
  t.is(c1.pool - c0.pool, 0);
  // Eight misses in one turn: one inline at most, the rest on the pool, in parallel.
  const many = await Promise.all(Array.from({ length: 8 }, (_, i) => preadP(disk, fd, 4096, (i + 2) * MIB)));
  many.forEach((r, i) => {
    t.false(r.sync);
    t.deepEqual(Buffer.from(r.buf), onDisk.subarray((i + 2) * MIB, (i + 2) * MIB + 4096));
  });
  const c2 = readPathCounts();
  t.true(c2.inlineMiss - c1.inlineMiss <= 1, 'at most one miss per turn blocks the loop');
  t.true(c2.pool - c1.pool >= 7, 'the others went to the pool');
  // A large miss (a recovery copy, a scrub) never holds the loop, even alone.
  await new Promise((r) => setImmediate(r));
  const large = await preadP(disk, fd, 1 << 20, 9 * MIB);
  t.deepEqual(Buffer.from(large.buf), onDisk.subarray(9 * MIB, 10 * MIB));
  const c3 = readPathCounts();
  t.is(c3.inlineMiss - c2.inlineMiss, 0, 'a 1 MiB miss is not read inline');
  t.is(c3.pool - c2.pool, 1);
  await closeP(disk, fd);
});
