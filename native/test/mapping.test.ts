// Checks mapShared/unmap against real shared memory: writes through one mapping are seen
// through a second mapping and through fs.readSync on the fd (and fs.writeSync through the
// mapping), for a memfd and for a /dev/shm file; unmap detaches and is idempotent; read-only
// mappings work where a writable one is refused; bad arguments throw TypeError/RangeError.
// The GC finalizer (munmap backstop) is checked in a child process run with --expose-gc,
// counting the memfd's lines in /proc/self/maps, and checking that a finalizer never unmaps a
// range twice (a second munmap would take away a newer mapping at the same address: SIGSEGV).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';

import * as native from '../index.js';
import { runChild } from './helpers.js';

const PAGE = 4096;

function checkCoherent(t: import('ava').ExecutionContext, fd: number): void {
  const a = native.mapShared(fd, 4 * PAGE, 0);
  const b = native.mapShared(fd, 4 * PAGE, 0);
  t.is(a.byteLength, 4 * PAGE);
  const viewA = new Uint8Array(a);
  const viewB = new Uint8Array(b);
  viewA.set([1, 2, 3, 4], PAGE + 10);
  t.deepEqual([...viewB.subarray(PAGE + 10, PAGE + 14)], [1, 2, 3, 4], 'second mapping sees the write');
  const readBack = Buffer.alloc(4);
  fs.readSync(fd, readBack, 0, 4, PAGE + 10);
  t.deepEqual([...readBack], [1, 2, 3, 4], 'the file sees the write');
  fs.writeSync(fd, Buffer.from([9, 8, 7]), 0, 3, 3 * PAGE);
  t.deepEqual([...viewA.subarray(3 * PAGE, 3 * PAGE + 3)], [9, 8, 7], 'the mapping sees a file write');

  // A window at a page offset maps the same bytes.
  const window = native.mapShared(fd, PAGE, PAGE);
  t.is(new Uint8Array(window)[10], 1);
  new Uint8Array(window)[0] = 0x5a;
  t.is(viewB[PAGE], 0x5a);

  native.unmap(a);
  t.is(a.byteLength, 0, 'detached');
  t.is(viewA.length, 0, 'views over it are empty too');
  t.notThrows(() => native.unmap(a), 'a second unmap is harmless');
  t.is(viewB[PAGE + 10], 1, 'the other mapping is untouched');
  native.unmap(b);
  native.unmap(window);
}

test('memfd: writes are visible across mappings and the fd', (t) => {
  const fd = native.memfdCreate('strata-map-test', 4 * PAGE);
  checkCoherent(t, fd);
  fs.closeSync(fd);
});

test('/dev/shm file: writes are visible across mappings and the fd', (t) => {
  const file = path.join('/dev/shm', `strata-native-test-${process.pid}-${Date.now()}`);
  const fd = fs.openSync(file, 'w+');
  fs.ftruncateSync(fd, 4 * PAGE);
  try {
    checkCoherent(t, fd);
  } finally {
    fs.closeSync(fd);
    fs.unlinkSync(file);
  }
});

test('a mapping outlives its fd', (t) => {
  const fd = native.memfdCreate('strata-map-test', PAGE);
  const buffer = native.mapShared(fd, PAGE, 0);
  fs.closeSync(fd);
  new Uint8Array(buffer)[100] = 77;
  t.is(new Uint8Array(buffer)[100], 77);
  native.unmap(buffer);
  t.is(buffer.byteLength, 0);
});

test('read-only mapping of a read-only fd', (t) => {
  const file = path.join('/dev/shm', `strata-native-ro-${process.pid}-${Date.now()}`);
  fs.writeFileSync(file, Buffer.alloc(PAGE, 0x33));
  const fd = fs.openSync(file, 'r');
  try {
    t.like(t.throws(() => native.mapShared(fd, PAGE, 0)), { code: 'EACCES', syscall: 'mmap' });
    t.like(t.throws(() => native.mapShared(fd, PAGE, 0, true)), { code: 'EACCES' });
    const ro = native.mapShared(fd, PAGE, 0, false);
    t.is(ro.byteLength, PAGE);
    t.true(new Uint8Array(ro).every((b) => b === 0x33));
    native.unmap(ro);
    t.is(ro.byteLength, 0);
  } finally {
    fs.closeSync(fd);
    fs.unlinkSync(file);
  }
});

test('mapShared and unmap reject bad arguments', (t) => {
  const fd = native.memfdCreate('strata-map-args', PAGE);
  t.throws(() => native.mapShared(fd, 0, 0), { instanceOf: RangeError, message: /'lengthBytes'.*got 0/ });
  t.throws(() => native.mapShared(fd, 1.5, 0), { instanceOf: RangeError, message: /safe integer/ });
  t.throws(() => native.mapShared(fd, 2 ** 53, 0), { instanceOf: RangeError, message: /'lengthBytes'/ });
  t.throws(() => native.mapShared(fd, 2 ** 32 + 1, 0), { instanceOf: RangeError, message: /'lengthBytes'/ });
  t.throws(() => native.mapShared(fd, Number.NaN, 0), { instanceOf: RangeError });
  t.throws(() => native.mapShared(fd, PAGE, 100), {
    instanceOf: RangeError,
    message: "mapShared: argument 'offsetBytes' must be a multiple of the page size, got 100",
  });
  t.throws(() => native.mapShared(fd, PAGE, -PAGE), { instanceOf: RangeError, message: /'offsetBytes'/ });
  t.throws(() => native.mapShared(-1, PAGE, 0), { instanceOf: RangeError, message: /'fd'/ });
  t.throws(() => native.mapShared('3' as unknown as number, PAGE, 0), {
    instanceOf: TypeError,
    message: "mapShared: argument 'fd' must be a number",
  });
  t.throws(() => native.mapShared(fd, PAGE, 0, 'yes' as unknown as boolean), { instanceOf: TypeError });
  t.throws(() => native.unmap(new ArrayBuffer(8)), {
    instanceOf: TypeError,
    message: /must be an ArrayBuffer returned by mapShared/,
  });
  t.throws(() => native.unmap(new Uint8Array(8) as unknown as ArrayBuffer), { instanceOf: TypeError });
  fs.closeSync(fd);
  t.like(t.throws(() => native.mapShared(fd, PAGE, 0)), { code: 'EBADF', syscall: 'mmap' });
});

test('the finalizer munmaps dropped mappings, and never a range unmap() already released', async (t) => {
  const child = await runChild(
    `
    import fs from 'node:fs';
    const PAGE = 4096;
    const fd = N.memfdCreate('strata-gc-probe', 16 * PAGE);
    const count = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('strata-gc-probe')).length;
    const settle = async () => { for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); } };
    let kept = [];
    for (let i = 0; i < 200; i++) kept.push(N.mapShared(fd, PAGE, (i % 16) * PAGE));
    const mapped = count();
    kept = null;
    await settle();
    const afterGc = count();
    // unmap, then map again (likely the same address), then let the old finalizer run.
    for (let i = 0; i < 50; i++) {
      let old = N.mapShared(fd, 16 * PAGE, 0);
      N.unmap(old);
      old = null;
      const fresh = N.mapShared(fd, 16 * PAGE, 0);
      await settle();
      new Uint8Array(fresh)[5 * PAGE] = i;  // SIGSEGV here if a finalizer unmapped it
      if (new Uint8Array(fresh)[5 * PAGE] !== i) throw new Error('bad read');
      N.unmap(fresh);
    }
    console.log(JSON.stringify({ mapped, afterGc, final: count() }));
    `,
    ['--expose-gc'],
  );
  t.is(child.signal, null, child.stderr);
  t.is(child.status, 0, child.stderr);
  const result = JSON.parse(child.stdout) as { mapped: number; afterGc: number; final: number };
  t.true(result.mapped >= 200, `maps lines while mapped: ${result.mapped}`);
  t.is(result.afterGc, 0);
  t.is(result.final, 0);
});

test('a 1 GiB sparse mapping of a memfd is cheap (MAP_NORESERVE)', (t) => {
  const size = 1024 * 1024 * 1024;
  const fd = native.memfdCreate('strata-map-big', size);
  const buffer = native.mapShared(fd, size, 0);
  t.is(buffer.byteLength, size);
  const view = new Uint8Array(buffer);
  view[size - 1] = 0xab;
  const readBack = Buffer.alloc(1);
  fs.readSync(fd, readBack, 0, 1, size - 1);
  t.is(readBack[0], 0xab);
  native.unmap(buffer);
  fs.closeSync(fd);
});
