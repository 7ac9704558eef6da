// Validates the VM-test harness itself against the reference back-end, qemu-storage-daemon:
// one cheap case (mixed-size fio verify) must pass with QSD, so that a strata failure in the
// other case files points at strata, not at the harness, guest image or QEMU. Set
// STRATA_VM_BACKENDS=qsd to run every case against QSD instead.
import test from 'ava';
import { fileBackend } from '../harness/backends.js';
import { assertJobPassed, CASE_TIMEOUT_MS, runVmCase } from '../harness/vm-case.js';

test('harness reference: mixed-size fio verify passes against qemu-storage-daemon', async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const r = await runVmCase(t, {
    name: 'qsd-reference',
    backend: fileBackend('qsd'),
    diskMiB: 256,
    script: 'mixed-sizes.sh',
    files: ['mixed-sizes-verify.fio'],
  });
  assertJobPassed(t, r, ['mixed'], { verify: true });
});
