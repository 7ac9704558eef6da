// Checks that random writes of mixed sizes (bssplit 4 KiB..1 MiB, QD16, O_DIRECT) read back
// intact: fio verify=crc32c with verify_fatal and do_verify in a 1-vCPU guest; the job's rc and
// every fio JSON error field must be 0 and all written bytes must have been verified.
import test from 'ava';
import { backendsUnderTest, fileBackend } from '../harness/backends.js';
import { assertJobPassed, CASE_TIMEOUT_MS, runVmCase } from '../harness/vm-case.js';

for (const kind of backendsUnderTest()) {
  test(`mixed 4 KiB..1 MiB random writes verify (${kind})`, async (t) => {
    t.timeout(CASE_TIMEOUT_MS);
    const r = await runVmCase(t, {
      name: 'mixed-sizes-verify',
      backend: fileBackend(kind),
      diskMiB: 256,
      script: 'mixed-sizes.sh',
      files: ['mixed-sizes-verify.fio'],
    });
    assertJobPassed(t, r, ['mixed'], { verify: true });
  });
}
