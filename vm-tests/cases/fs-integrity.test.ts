// Checks ext4 integrity on the disk: the guest runs mkfs.ext4, writes 28 MiB of random files
// plus 200 small ones, records sha256 sums, unmounts, runs e2fsck -fn (must be clean), drops
// caches, remounts and compares every checksum; then deletes half the files, runs fstrim on the
// mounted filesystem, and repeats fsck and the comparison. Any mismatch fails the guest job.
import test from 'ava';
import { backendsUnderTest, fileBackend } from '../harness/backends.js';
import { assertJobPassed, CASE_TIMEOUT_MS, describe, runVmCase } from '../harness/vm-case.js';

for (const kind of backendsUnderTest()) {
  test(`ext4 survives mkfs, writes, fsck, remount and fstrim with identical checksums (${kind})`, async (t) => {
    t.timeout(CASE_TIMEOUT_MS);
    const r = await runVmCase(t, {
      name: 'fs-integrity',
      backend: fileBackend(kind),
      diskMiB: 256,
      script: 'fs-integrity.sh',
    });
    assertJobPassed(t, r);
    t.is(r.kv['files'], '204', `expected 204 files checksummed\n${describe(r)}`);
    t.is(r.kv['verified'], '204', `expected 204 files verified after remount\n${describe(r)}`);
    t.is(r.kv['verified_after_trim'], '102', `expected 102 files verified after fstrim\n${describe(r)}`);
    t.is(r.kv['fs_ok'], '1', describe(r));
  });
}
