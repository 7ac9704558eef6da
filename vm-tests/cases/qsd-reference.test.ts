// Validates the VM-test harness itself against the reference back-end, qemu-storage-daemon:
// one cheap case (mixed-size fio verify) must pass with QSD, so that a strata failure in the
// other case files points at strata, not at the harness, guest image or QEMU; and a block
// overwritten behind fio's back must make fio verify, the guest job and the harness report a
// failure (the "fails loudly on a wrong byte" property every case relies on). Set
// STRATA_VM_BACKENDS=qsd to run every case against QSD instead.
import test from 'ava';
import { fileBackend } from '../harness/backends.js';
import { assertJobPassed, CASE_TIMEOUT_MS, describe, fioJobs, runVmCase } from '../harness/vm-case.js';

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

test('harness reference: one corrupted 4 KiB block makes fio verify fail loudly', async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const r = await runVmCase(t, {
    name: 'qsd-corruption-detected',
    backend: fileBackend('qsd'),
    diskMiB: 64,
    script: 'corrupt.sh',
    files: ['corrupt-write.fio', 'corrupt-verify.fio'],
  });
  t.is(fioJobs(r.fioJson['write'])[0]?.error, 0, `the write pass should succeed\n${describe(r)}`);
  const verifyErr = fioJobs(r.fioJson['verify'])[0]?.error;
  t.true(verifyErr !== undefined && verifyErr !== 0, `fio verify should report the corrupted block (error=${verifyErr})\n${describe(r)}`);
  t.not(r.rc, 0, `the guest job should fail (sh -e) after the verify failure\n${describe(r)}`);
  t.not(r.kv['fio_rc.verify'], '0', describe(r));
});
