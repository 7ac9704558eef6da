// Guests on cluster images: the same guest jobs as the file cases, with the disk an image of a
// local 3-OSD cluster (pool size 3, min_size 2) served by `strata vhost --image`
// (harness/cluster-backend.ts). One cluster for the file; each case gets its own image.
//   - 4 KiB random writes + crc32c read-back at QD1 and QD32 over two queues (2 vCPUs);
//   - mixed sizes 4 KiB..1 MiB, QD16, crc32c;
//   - ext4: mkfs, files, sha256, umount, fsck, remount, compare, fstrim.
// Every case also checks that all 3 replicas hold the data afterwards (PGs active+clean).
import test from 'ava';
import { clusterBackend } from '../harness/cluster-backend.js';
import { SharedClusterPool } from '../harness/cluster-pool.js';
import { assertJobPassed, CASE_TIMEOUT_MS, describe, fioJobs, runVmCase } from '../harness/vm-case.js';

const pool = new SharedClusterPool({ osds: 3 });
test.before(() => pool.start());
test.after.always(() => pool.stop());

test.serial('cluster image: 4 KiB random writes verify at QD1 and QD32 over two queues', async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const img = await pool.image('mq', 256);
  const r = await runVmCase(t, {
    name: 'cluster-multiqueue-verify', backend: clusterBackend(img), diskMiB: 1, numQueues: 2, vcpus: 2,
    script: 'multiqueue.sh', files: ['multiqueue-verify.fio'],
    // 2 x 4096 QD1 writes + read-back at the cluster's QD1 latency (3 replicas, each a TCG
    // guest's request through the OSDs' journals) under a loaded 2-core host: minutes, not s.
    jobTimeoutMs: 420_000,
  });
  assertJobPassed(t, r, ['mq'], { verify: true });
  t.is(fioJobs(r.fioJson['mq']).length, 4, `expected 2 QD1 + 2 QD32 fio jobs\n${describe(r)}`);
  t.is(r.kv['hw_queues'], '2', `the guest should see 2 hardware queues\n${describe(r)}`);
  const info = await img.cluster.imageInfo(img.spec);
  t.log(`image ${img.spec}: ${(info.usedBytes / 2 ** 20).toFixed(1)} MiB used in ${info.objectCount} objects`);
  t.true(info.usedBytes > 0, 'the image holds no data after the run');
  await img.cluster.waitHealthy(30_000);
});

test.serial('cluster image: mixed sizes 4 KiB..1 MiB verify at QD16', async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const img = await pool.image('mixed', 256);
  const r = await runVmCase(t, {
    name: 'cluster-mixed-sizes-verify', backend: clusterBackend(img), diskMiB: 1,
    script: 'mixed-sizes.sh', files: ['mixed-sizes-verify.fio'], jobTimeoutMs: 420_000,
  });
  assertJobPassed(t, r, ['mixed'], { verify: true });
});

test.serial('cluster image: ext4 mkfs, files, remount, checksums, fsck, fstrim', async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const img = await pool.image('ext4', 256);
  const r = await runVmCase(t, { name: 'cluster-fs-integrity', backend: clusterBackend(img), diskMiB: 1, script: 'fs-integrity.sh', jobTimeoutMs: 420_000 });
  assertJobPassed(t, r);
  t.is(r.kv['files'], '204', `expected 204 files checksummed\n${describe(r)}`);
  t.is(r.kv['verified'], '204', `expected 204 files verified after remount\n${describe(r)}`);
  t.is(r.kv['verified_after_trim'], '102', `expected 102 files verified after fstrim\n${describe(r)}`);
  t.is(r.kv['fs_ok'], '1', describe(r));
});
