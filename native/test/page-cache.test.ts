// preadNoWait against the kernel, on a file in /var/tmp (a disk file system) and on
// /dev/shm (tmpfs): a cached read returns the bytes, a read at EOF 0, a short read the tail; a
// range the page cache does not hold (just written with O_DIRECT by dd) answers -EAGAIN without
// touching the buffer; tmpfs answers -EOPNOTSUPP; a bad fd -EBADF. The Disk-level fallback (pool read after -EAGAIN) is tested in
// cluster/test/real-disk-read.test.ts.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import * as native from '../index.js';

const EAGAIN = 11;
const EOPNOTSUPP = 95;
const EBADF = 9;

function tempFile(dir: string, name: string): string {
  const d = fs.mkdtempSync(path.join(dir, 'strata-pc-'));
  return path.join(d, name);
}

function cleanup(file: string): void {
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
}

test('preadNoWait: cached data, EOF and the short tail on a disk file system', (t) => {
  const file = tempFile('/var/tmp', 'f');
  t.teardown(() => cleanup(file));
  const content = Buffer.alloc(6144);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 0xff;
  fs.writeFileSync(file, content);
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const buf = new Uint8Array(4096);
  t.is(native.preadNoWait(fd, buf, 0), 4096);
  t.deepEqual(Buffer.from(buf), content.subarray(0, 4096));
  t.is(native.preadNoWait(fd, buf, 4096), 2048, 'short read of the tail');
  t.deepEqual(Buffer.from(buf.subarray(0, 2048)), content.subarray(4096));
  t.is(native.preadNoWait(fd, buf, 6144), 0, 'EOF');
  t.is(native.preadNoWait(fd, new Uint8Array(0), 0), 0, 'empty buffer');
});

test('preadNoWait: a range not in the page cache answers -EAGAIN and leaves the buffer alone', (t) => {
  const file = tempFile('/var/tmp', 'direct');
  t.teardown(() => cleanup(file));
  // O_DIRECT writes bypass (and invalidate) the page cache, so the blocks are on disk only.
  execFileSync('dd', ['if=/dev/urandom', `of=${file}`, 'bs=4096', 'count=4', 'oflag=direct', 'status=none']);
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const buf = new Uint8Array(4096).fill(0xaa);
  t.is(native.preadNoWait(fd, buf, 8192), -EAGAIN);
  t.true(buf.every((b) => b === 0xaa));
  // A normal read brings it in; then the no-wait read succeeds with the same bytes.
  const viaFs = Buffer.alloc(4096);
  t.is(fs.readSync(fd, viaFs, 0, 4096, 8192), 4096);
  t.is(native.preadNoWait(fd, buf, 8192), 4096);
  t.deepEqual(Buffer.from(buf), viaFs);
});

test('preadNoWait: tmpfs answers -EOPNOTSUPP, a closed fd -EBADF, bad arguments throw', (t) => {
  const file = tempFile('/dev/shm', 'f');
  t.teardown(() => cleanup(file));
  fs.writeFileSync(file, Buffer.alloc(4096, 1));
  const fd = fs.openSync(file, 'r');
  t.is(native.preadNoWait(fd, new Uint8Array(4096), 0), -EOPNOTSUPP);
  fs.closeSync(fd);
  t.is(native.preadNoWait(fd, new Uint8Array(4096), 0), -EBADF);
  t.throws(() => native.preadNoWait(-1, new Uint8Array(1), 0), { instanceOf: RangeError });
  t.throws(() => native.preadNoWait(0, 'x' as unknown as Uint8Array, 0), { instanceOf: TypeError });
  t.throws(() => native.preadNoWait(0, new Uint8Array(1), -1), { instanceOf: RangeError });
});
