// Checks the small syscalls against the kernel: eventfd's initial value, blocking mode and
// CLOEXEC (read back from /proc/self/fdinfo); memfdCreate's size and name; fallocate on a file
// in os.tmpdir() (ext4 here) and on tmpfs: punch-hole frees blocks (fs.statSync().blocks drops),
// keeps the size and reads back as zeros; zero-range zeroes where the filesystem supports it
// and otherwise throws a SystemError with code EOPNOTSUPP; fence() is callable.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as native from '../index.js';
import { fdFlags, O_CLOEXEC } from './helpers.js';

const MiB = 1024 * 1024;

test('fence() is a callable no-op for JS', (t) => {
  t.is(typeof native.fence, 'function');
  for (let i = 0; i < 1000; i++) native.fence();
  t.is(native.fence(), undefined);
});

test('eventfd: initial value, flags and counter semantics', (t) => {
  const fd = native.eventfd(7, true);
  t.is(fdFlags(fd) & O_CLOEXEC, O_CLOEXEC);
  t.is(fdFlags(fd) & fs.constants.O_NONBLOCK, fs.constants.O_NONBLOCK);
  const buf = Buffer.alloc(8);
  t.is(fs.readSync(fd, buf), 8);
  t.is(buf.readBigUInt64LE(0), 7n);
  t.like(t.throws(() => fs.readSync(fd, buf)), { code: 'EAGAIN' });
  fs.closeSync(fd);

  const blocking = native.eventfd(0, false);
  t.is(fdFlags(blocking) & fs.constants.O_NONBLOCK, 0);
  t.is(fdFlags(blocking) & O_CLOEXEC, O_CLOEXEC);
  fs.closeSync(blocking);

  t.throws(() => native.eventfd(-1, true), { instanceOf: RangeError, message: /eventfd: argument 'initval'/ });
  t.throws(() => native.eventfd(2 ** 32, true), { instanceOf: RangeError });
  t.throws(() => native.eventfd(0, 1 as unknown as boolean), { instanceOf: TypeError });
});

test('memfdCreate: sized, named, CLOEXEC', (t) => {
  const fd = native.memfdCreate('strata-guest-ram', 3 * MiB);
  t.is(fs.fstatSync(fd).size, 3 * MiB);
  t.is(fdFlags(fd) & O_CLOEXEC, O_CLOEXEC);
  t.regex(fs.readlinkSync(`/proc/self/fd/${fd}`), /^\/memfd:strata-guest-ram/);
  fs.closeSync(fd);
  t.throws(() => native.memfdCreate('x'.repeat(250), 1), { instanceOf: RangeError, message: /'name'/ });
  t.throws(() => native.memfdCreate('a\0b', 1), { instanceOf: RangeError, message: /NUL/ });
  t.throws(() => native.memfdCreate('x', -1), { instanceOf: RangeError, message: /'sizeBytes'/ });
});

function makeFilledFile(dir: string, name: string, sizeBytes: number): { file: string; fd: number } {
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'w+');
  fs.writeSync(fd, Buffer.alloc(sizeBytes, 0x6b), 0, sizeBytes, 0);
  fs.fsyncSync(fd);
  return { file, fd };
}

function readRange(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length, 0xff);
  assertFullRead(fs.readSync(fd, buf, 0, length, offset), length);
  return buf;
}

function assertFullRead(got: number, want: number): void {
  if (got !== want) throw new Error(`short read: ${got} of ${want}`);
}

function fsType(dir: string): string {
  // statfs f_type: ext4 0xEF53, tmpfs 0x01021994, overlayfs 0x794C7630.
  const type = fs.statfsSync(dir).type;
  return type === 0xef53 ? 'ext4' : type === 0x01021994 ? 'tmpfs' : `0x${type.toString(16)}`;
}

for (const [label, dir] of [
  ['os.tmpdir()', os.tmpdir()],
  ['/dev/shm', '/dev/shm'],
] as const) {
  test(`fallocate punch-hole frees blocks and reads as zeros (${label})`, (t) => {
    const scratch = fs.mkdtempSync(path.join(dir, 'strata-falloc-'));
    const { fd } = makeFilledFile(scratch, 'punch', 4 * MiB);
    try {
      const before = fs.fstatSync(fd).blocks;
      t.true(before >= (4 * MiB) / 512, `allocated before: ${before} blocks`);
      native.fallocate(fd, 'punch-hole', MiB, 2 * MiB);
      const after = fs.fstatSync(fd);
      t.true(before - after.blocks >= (2 * MiB) / 512, `${fsType(dir)}: blocks ${before} -> ${after.blocks}`);
      t.is(after.size, 4 * MiB, 'KEEP_SIZE');
      t.true(readRange(fd, MiB, 2 * MiB).every((b) => b === 0));
      t.true(readRange(fd, 0, MiB).every((b) => b === 0x6b));
      t.true(readRange(fd, 3 * MiB, MiB).every((b) => b === 0x6b));
    } finally {
      fs.closeSync(fd);
      fs.rmSync(scratch, { recursive: true });
    }
  });
}

test(`fallocate zero-range zeroes a range on os.tmpdir()'s filesystem`, (t) => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-falloc-'));
  const { fd } = makeFilledFile(scratch, 'zero', 4 * MiB);
  try {
    t.is(fsType(os.tmpdir()), 'ext4', 'this test expects /tmp on ext4, which supports ZERO_RANGE');
    native.fallocate(fd, 'zero-range', MiB, MiB + 123);
    t.is(fs.fstatSync(fd).size, 4 * MiB, 'KEEP_SIZE');
    t.true(readRange(fd, MiB, MiB + 123).every((b) => b === 0));
    t.is(readRange(fd, MiB - 1, 1)[0], 0x6b);
    t.is(readRange(fd, 2 * MiB + 123, 1)[0], 0x6b);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(scratch, { recursive: true });
  }
});

test('fallocate zero-range on tmpfs throws EOPNOTSUPP so callers can fall back', (t) => {
  const scratch = fs.mkdtempSync(path.join('/dev/shm', 'strata-falloc-'));
  const { fd } = makeFilledFile(scratch, 'zero', MiB);
  try {
    t.is(fsType('/dev/shm'), 'tmpfs');
    const error = t.throws(() => native.fallocate(fd, 'zero-range', 0, 4096));
    t.like(error, { code: 'EOPNOTSUPP', errno: -os.constants.errno.EOPNOTSUPP, syscall: 'fallocate' });
    t.true(readRange(fd, 0, 4096).every((b) => b === 0x6b), 'data untouched');
  } finally {
    fs.closeSync(fd);
    fs.rmSync(scratch, { recursive: true });
  }
});

test('fallocate rejects bad arguments and bad fds', (t) => {
  const fd = native.memfdCreate('strata-falloc-args', MiB);
  t.throws(() => native.fallocate(fd, 'trim' as 'punch-hole', 0, 4096), {
    instanceOf: RangeError,
    message: "fallocate: argument 'mode' must be 'punch-hole' or 'zero-range'",
  });
  t.throws(() => native.fallocate(fd, 'punch-hole', 0, 0), { instanceOf: RangeError, message: /'lengthBytes'/ });
  t.throws(() => native.fallocate(fd, 'punch-hole', -1, 1), { instanceOf: RangeError, message: /'offsetBytes'/ });
  fs.closeSync(fd);
  t.like(t.throws(() => native.fallocate(fd, 'punch-hole', 0, 4096)), { code: 'EBADF', syscall: 'fallocate' });
});

test('setMallocMmapThreshold takes 4096..32 MiB: out of range is a RangeError, not a number a TypeError', (t) => {
  t.notThrows(() => native.setMallocMmapThreshold(128 * 1024));
  t.notThrows(() => native.setMallocMmapThreshold(32 * 1024 * 1024));
  for (const bad of [0, 4095, 32 * 1024 * 1024 + 1, -1]) t.throws(() => native.setMallocMmapThreshold(bad), { instanceOf: RangeError }, String(bad));
  t.throws(() => native.setMallocMmapThreshold(4096.5));
  t.throws(() => native.setMallocMmapThreshold('1' as unknown as number), { instanceOf: TypeError });
  // Leave this worker with the daemons' setting.
  native.setMallocMmapThreshold(128 * 1024);
  // Large buffers keep working under it (each one its own mapping).
  const bufs = Array.from({ length: 8 }, (_, i) => Buffer.allocUnsafeSlow(1 << 20).fill(i));
  t.true(bufs.every((b, i) => b[0] === i && b[(1 << 20) - 1] === i));
});
