// Checks a read-only export: the host fills the first 4 MiB of the disk file with random data
// and serves it read-only; the guest must see /sys/block/vda/ro = 1, read the same bytes (its
// sha256 must match the host's), and fail a buffered and an O_DIRECT write without any change
// to the data, in the guest's view and in the host file.
import test from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { backendsUnderTest, fileBackend } from '../harness/backends.js';
import { assertJobPassed, CASE_TIMEOUT_MS, describe, runVmCase } from '../harness/vm-case.js';

const MiB = 1024 * 1024;

function sha256OfFile(file: string, bytes: number): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    fs.readSync(fd, buf, 0, bytes, 0);
    return crypto.createHash('sha256').update(buf).digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

for (const kind of backendsUnderTest()) {
  test(`read-only disk is read-only in the guest and rejects writes (${kind})`, async (t) => {
    t.timeout(CASE_TIMEOUT_MS);
    const pattern = crypto.randomBytes(4 * MiB);
    const expected = crypto.createHash('sha256').update(pattern).digest('hex');
    let hostAfter = '';
    const r = await runVmCase(t, {
      name: 'read-only',
      backend: fileBackend(kind),
      diskMiB: 64,
      readOnly: true,
      script: 'read-only.sh',
      prepareDisk: (file) => fs.writeFileSync(file, pattern, { flag: 'r+' }),
      afterGuest: (file) => {
        hostAfter = sha256OfFile(file, 4 * MiB);
      },
    });
    assertJobPassed(t, r);
    t.is(r.kv['ro'], '1', describe(r));
    t.is(r.kv['sha_before'], expected, `guest read different bytes than the host wrote\n${describe(r)}`);
    t.not(r.kv['write_rc'], '0', describe(r));
    t.not(r.kv['direct_write_rc'], '0', describe(r));
    t.is(hostAfter, expected, 'the host file changed under a read-only export');
  });
}
