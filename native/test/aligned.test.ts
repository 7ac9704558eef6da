// alignmentOf against the kernel: a view found 4096-aligned by it (the padded-buffer trick of
// cluster/src/common/aligned.ts) is accepted by an O_DIRECT pwrite on os.tmpdir()'s ext4,
// while a view it reports unaligned is refused with EINVAL; it measures subarray offsets
// exactly; argument errors throw TypeError.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as native from '../index.js';

function alignedView(n: number): Uint8Array {
  const raw = new Uint8Array(n + 4095);
  const skip = (4096 - native.alignmentOf(raw)) % 4096;
  return raw.subarray(skip, skip + n);
}

test('alignmentOf measures where a view starts', (t) => {
  const v = alignedView(64 * 1024);
  t.is(native.alignmentOf(v), 0);
  for (const k of [1, 5, 512, 4095]) t.is(native.alignmentOf(v.subarray(k)), k);
  t.is(native.alignmentOf(v.subarray(4096)), 0);
  t.is(native.alignmentOf(Buffer.from(v.buffer, v.byteOffset + 3, 10)), 3);
});

test('alignmentOf: a non-Uint8Array throws TypeError', (t) => {
  t.throws(() => native.alignmentOf([1] as unknown as Uint8Array), { instanceOf: TypeError });
  t.throws(() => native.alignmentOf(new Uint16Array(4) as unknown as Uint8Array), { instanceOf: TypeError });
});

test('a view alignmentOf calls aligned is accepted by an O_DIRECT pwrite; an unaligned one is refused', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-aligned-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  let fd: number;
  try {
    fd = fs.openSync(path.join(dir, 'f'), fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT, 0o600);
  } catch (e) {
    t.is((e as NodeJS.ErrnoException).code, 'EINVAL'); // a tmpdir without O_DIRECT
    return t.log('O_DIRECT refused by os.tmpdir(); alignment not checked by the kernel here');
  }
  const v = alignedView(64 * 1024).fill(3);
  t.is(fs.writeSync(fd, v, 0, v.length, 0), v.length);
  // Why offset 1, not 512: the device's logical block is 512 bytes, and the kernel accepts that.
  const unaligned = v.subarray(1, 1 + 4096);
  t.is(native.alignmentOf(unaligned), 1);
  t.throws(() => fs.writeSync(fd, unaligned, 0, 4096, 4096), { code: 'EINVAL' });
  fs.closeSync(fd);
  t.deepEqual(new Uint8Array(fs.readFileSync(path.join(dir, 'f'))), v);
});
