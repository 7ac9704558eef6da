// allocAligned / alignmentOf against the kernel: the buffer is 4096-aligned (alignmentOf 0, and
// an O_DIRECT pwrite of it succeeds on os.tmpdir()'s ext4, where an unaligned one fails with
// EINVAL), it is writable and sized as asked, argument errors throw, and a storm of 1 MiB
// allocations is reclaimed by the GC (bounded RSS: the finalizer frees and the external
// memory accounting makes V8 collect).
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as native from '../index.js';

const MiB = 1024 * 1024;

test('allocAligned: aligned, sized, writable; alignmentOf measures views', (t) => {
  for (const n of [1, 4096, 65_536, MiB + 7]) {
    const ab = native.allocAligned(n);
    t.is(ab.byteLength, n);
    const v = new Uint8Array(ab);
    t.is(native.alignmentOf(v), 0);
    v.fill(0xab);
    t.is(v[n - 1], 0xab);
    if (n > 5) t.is(native.alignmentOf(v.subarray(5)), 5);
  }
  t.is(native.alignmentOf(new Uint8Array(0)), 0);
});

test('allocAligned: bad lengths throw RangeError/TypeError', (t) => {
  t.throws(() => native.allocAligned(0), { instanceOf: RangeError });
  t.throws(() => native.allocAligned(2 ** 33), { instanceOf: RangeError });
  t.throws(() => native.allocAligned('1' as unknown as number), { instanceOf: TypeError });
  t.throws(() => native.alignmentOf([1] as unknown as Uint8Array), { instanceOf: TypeError });
});

test('an aligned buffer is accepted by an O_DIRECT pwrite where an unaligned one is refused', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-aligned-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  let fd: number;
  try {
    fd = fs.openSync(path.join(dir, 'f'), fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT, 0o600);
  } catch (e) {
    t.is((e as NodeJS.ErrnoException).code, 'EINVAL'); // a tmpdir without O_DIRECT (tmpfs)
    return t.log('O_DIRECT refused by os.tmpdir(); alignment not checked by the kernel here');
  }
  const v = new Uint8Array(native.allocAligned(64 * 1024)).fill(3);
  t.is(fs.writeSync(fd, v, 0, v.length, 0), v.length);
  const odd = v.subarray(512, 512 + 4096);
  t.is(native.alignmentOf(odd), 512);
  const unaligned = Buffer.alloc(4096 + 1).subarray(1);
  t.not(native.alignmentOf(unaligned), 0);
  t.throws(() => fs.writeSync(fd, unaligned, 0, 4096, 4096), { code: 'EINVAL' });
  fs.closeSync(fd);
  t.deepEqual(fs.readFileSync(path.join(dir, 'f')).subarray(0, 64 * 1024), Buffer.from(v));
});

test('a storm of 1 MiB aligned buffers is reclaimed (RSS stays bounded)', (t) => {
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 4000; i++) new Uint8Array(native.allocAligned(MiB))[0] = 1; // 4 GiB in total
  const grown = (process.memoryUsage().rss - before) / MiB;
  t.true(grown < 1024, `RSS grew ${grown.toFixed(0)} MiB`);
});
