// Checks that 4 KiB random writes read back intact at QD1 and QD32 when the guest drives both
// queues of a 2-queue vhost-user-blk disk: a 2-vCPU guest runs fio (libaio, O_DIRECT,
// verify=crc32c, verify_fatal, do_verify) with one process pinned per vCPU, so blk-mq submits on
// both hardware queues; the test requires fio's JSON error fields to be 0, the job's rc to be 0,
// and each queue's interrupt vector to have fired during the run.
import test from 'ava';
import { backendsUnderTest, fileBackend } from '../harness/backends.js';
import { assertJobPassed, CASE_TIMEOUT_MS, describe, fioJobs, runVmCase } from '../harness/vm-case.js';

for (const kind of backendsUnderTest()) {
  test(`4 KiB random writes verify at QD1 and QD32 over two queues (${kind})`, async (t) => {
    t.timeout(CASE_TIMEOUT_MS);
    const r = await runVmCase(t, {
      name: 'multiqueue-verify',
      backend: fileBackend(kind),
      diskMiB: 256,
      numQueues: 2,
      vcpus: 2,
      script: 'multiqueue.sh',
      files: ['multiqueue-verify.fio'],
    });
    assertJobPassed(t, r, ['mq'], { verify: true });
    t.is(fioJobs(r.fioJson['mq']).length, 4, `expected 2 QD1 + 2 QD32 fio jobs\n${describe(r)}`);
    t.is(r.kv['hw_queues'], '2', `the guest should see 2 hardware queues\n${describe(r)}`);
    const queues = Object.keys(r.kv)
      .map((k) => /^irq_after\.(virtio\d+-req\.\d+)$/.exec(k)?.[1])
      .filter((q): q is string => q !== undefined);
    t.is(queues.length, 2, `expected interrupt counters for 2 request queues, got ${queues.join(', ')}`);
    for (const q of queues) {
      const delta = Number(r.kv[`irq_after.${q}`]) - Number(r.kv[`irq_before.${q}`] ?? 0);
      t.true(delta > 0, `queue ${q} signalled no completions during fio (delta ${delta})\n${describe(r)}`);
    }
  });
}
