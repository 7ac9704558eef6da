// Faults under guest I/O on a cluster image (local cluster: monitor + 3 OSDs, pool size 3,
// min_size 2, heartbeat/beacon grace GRACE_MS). Each case runs the reconnect job
// (vm-tests/jobs/reconnect.sh): 2 vCPUs, 2 queues, 4 KiB random writes at QD32 from two fio
// processes, then a full crc32c read-back (verify_fatal), with every completion logged so the
// guest reports each gap >= 100 ms between completions (STRATA-KV gap.*) and the largest
// write latency. While the write phase runs the host:
//   - kill -9 one OSD (4 s after fio starts) and restarts it 4 s later: the monitor marks it down
//     (peers see the refused connection), the Objecter resends to the new primaries, the
//     restarted OSD rejoins and recovers. Zero guest I/O errors, zero verify errors; the longest
//     stall is printed.
//   - SIGSTOP one OSD (4 s after fio starts) for GRACE_MS + 3 s, then SIGCONT: a hung OSD is
//     detected by heartbeat timeout; the longest stall must stay ≤ GRACE_MS + DETECT_SLACK_MS
//     (report → map epoch → client resend; printed).
//   - kill -9 the vhost daemon (4 s after fio starts) and start it again on the same socket:
//     QEMU reconnects (reconnect=1), the new daemon re-takes the image lock once the dead one's
//     lease (LEASE_MS) lapsed and resubmits the in-flight requests. Zero errors.
// And discard: the guest writes 64 MiB, the host reads `strata image info` (used bytes), the
// guest discards 0..48 MiB (whole 4 MiB objects), used bytes drop by ≥ 44 MiB, the discarded
// range reads as zeros and the rest keeps its data.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clusterBackend } from '../harness/cluster-backend.js';
import { SharedClusterPool } from '../harness/cluster-pool.js';
import { composeJob, runGuest, vmLogDir } from '../harness/guest.js';
import { sleep } from '../harness/util.js';
import { assertJobPassed, CASE_TIMEOUT_MS, describe, runVmCase, type BackendControl, type VmCaseResult } from '../harness/vm-case.js';

const GRACE_MS = Number(process.env['STRATA_E2E_GRACE_MS'] ?? 3000);
/** Report → new map → client resend, on top of the grace (2 shared cores, TCG guest). */
const DETECT_SLACK_MS = Number(process.env['STRATA_E2E_DETECT_SLACK_MS'] ?? 2000);
const LEASE_MS = 3000;
const FAULT_AFTER_MS = 4000;

const pool = new SharedClusterPool({ osds: 3, graceMs: GRACE_MS });
test.before(() => pool.start());
test.after.always(() => pool.stop());

interface Gap { job: string; start: number; end: number }

function gaps(r: VmCaseResult): Gap[] {
  const out: Gap[] = [];
  for (const [k, v] of Object.entries(r.kv)) {
    const m = /^gap\.(.+)\.\d+$/.exec(k);
    if (m === null) continue;
    const [s, e] = v.split(',').map(Number);
    if (s !== undefined && e !== undefined) out.push({ job: m[1] ?? '?', start: s, end: e });
  }
  return out;
}

/** The longest gaps, for the log. */
function topGaps(r: VmCaseResult, n = 3): string {
  return gaps(r).sort((a, b) => (b.end - b.start) - (a.end - a.start)).slice(0, n)
    .map((g) => `${g.end - g.start} ms at ${(g.start / 1000).toFixed(1)} s (job ${g.job})`).join(', ') || 'none >= 100 ms';
}

function maxWriteLatMs(r: VmCaseResult): number {
  return Math.max(0, ...Object.entries(r.kv).filter(([k]) => k.startsWith('max_write_lat_ms.')).map(([, v]) => Number(v)));
}

function longestStallMs(r: VmCaseResult): number {
  const g = gaps(r).map((x) => x.end - x.start);
  const lat = Object.entries(r.kv).filter(([k]) => k.startsWith('max_write_lat_ms.')).map(([, v]) => Number(v));
  return Math.max(0, ...g, ...lat);
}

/** Runs the reconnect job on a fresh image with `fault` fired FAULT_AFTER_MS after fio starts. */
async function faultCase(t: ExecutionContext, name: string, fault: (ctl: BackendControl) => Promise<string>, backendArgs: string[] = []): Promise<{ r: VmCaseResult; what: string }> {
  const img = await pool.image(name, 256);
  let what = 'fault not fired (fio-start not seen)';
  let faultRun: Promise<void> | undefined;
  const r = await runVmCase(t, {
    name: `cluster-${name}`, backend: clusterBackend(img, ['--lock-lease-ms', String(LEASE_MS), '--log-level', 'info', ...backendArgs]),
    diskMiB: 1, numQueues: 2, vcpus: 2, reconnect: true,
    script: 'reconnect.sh', files: ['reconnect-verify.fio'],
    env: { WRITE_SECONDS: 14, REGION_MIB: 96, MIN_MIB: 24 },
    jobTimeoutMs: 300_000,
    onLine: (line, ctl) => {
      if (faultRun === undefined && /STRATA-STEP fio-start/.test(line)) {
        faultRun = sleep(FAULT_AFTER_MS).then(() => fault(ctl)).then((w) => { what = w; }, (e: unknown) => { what = `fault failed: ${(e as Error).message}`; });
      }
    },
    beforeStop: async () => { await faultRun; },
  });
  await faultRun;
  t.log(`${name}: ${what}`);
  return { r, what };
}

function assertClean(t: ExecutionContext, r: VmCaseResult): void {
  assertJobPassed(t, r, ['verify'], { verify: true });
  t.is(r.kv['dmesg_io_errors'], '0', `the guest kernel logged block I/O errors\n${describe(r)}`);
}

test.serial('cluster: kill -9 one OSD during guest fio verify, restart it: zero errors', async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const { r } = await faultCase(t, 'osd-kill9', async () => {
    const osd = pool.cluster.osds[0]!;
    const t0 = performance.now();
    osd.signal('SIGKILL');
    await osd.exited();
    await sleep(4000);
    osd.restart();
    return `osd.0 killed (-9) and restarted after ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  });
  assertClean(t, r);
  const stall = longestStallMs(r);
  t.log(`longest guest I/O stall: ${stall} ms (max write latency ${maxWriteLatMs(r)} ms; longest completion gaps: ${topGaps(r)})`);
  await pool.cluster.waitHealthy(90_000);
  t.pass(`the cluster is active+clean again after the restart`);
});

test.serial('cluster: SIGSTOP one OSD during guest fio verify: the stall stays within the grace', async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const { r } = await faultCase(t, 'osd-sigstop', async () => {
    const osd = pool.cluster.osds[1]!;
    osd.signal('SIGSTOP');
    await sleep(GRACE_MS + 3000);
    osd.signal('SIGCONT');
    return `osd.1 stopped (SIGSTOP) for ${GRACE_MS + 3000} ms, then SIGCONT`;
  });
  assertClean(t, r);
  const stall = longestStallMs(r);
  t.log(`longest guest I/O stall: ${stall} ms (max write latency ${maxWriteLatMs(r)} ms; longest completion gaps: ${topGaps(r)}); grace ${GRACE_MS} ms (+${DETECT_SLACK_MS} ms allowed for report → map → resend)`);
  t.true(stall <= GRACE_MS + DETECT_SLACK_MS, `stall ${stall} ms > grace ${GRACE_MS} + ${DETECT_SLACK_MS} ms\n${describe(r)}`);
  await pool.cluster.waitHealthy(90_000);
});

test.serial('cluster: kill -9 the vhost daemon during guest fio verify, restart: zero errors', async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const { r } = await faultCase(t, 'vhost-kill9', async (ctl) => {
    const timing = await ctl.restart('SIGKILL');
    return `vhost daemon killed (-9); new one listening ${(timing.socketReadyAt - timing.signalAt).toFixed(0)} ms after the kill (it waits for the dead one's ${LEASE_MS} ms lock lease)`;
  });
  assertClean(t, r);
  t.log(`longest guest I/O stall: ${longestStallMs(r)} ms (max write latency ${maxWriteLatMs(r)} ms; longest completion gaps: ${topGaps(r)})`);
});

test.serial('cluster: discard in the guest frees space in the cluster', async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const img = await pool.image('discard', 128);
  const logDir = vmLogDir('cluster-discard');
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-vm-'));
  const socketPath = path.join(sockDir, 'vub0.sock');
  const backend = await clusterBackend(img).start({ socketPath, file: '', numQueues: 1, readOnly: false, logPath: path.join(logDir, 'backend.log') });
  t.teardown(async () => {
    await backend.stop();
    fs.rmSync(sockDir, { recursive: true, force: true });
  });
  const job = [
    // /tmp is a 64 MiB tmpfs: a 16 MiB pattern written 4 times.
    'dd if=/dev/urandom of=/tmp/pat bs=1M count=16 2>/dev/null',
    'for i in 0 1 2 3; do dd if=/tmp/pat of=/dev/vda bs=1M seek=$((i*16)) oflag=direct conv=notrunc 2>/dev/null; done',
    'sync',
    'strata_kv tail_before "$(dd if=/dev/vda bs=1M skip=48 count=16 iflag=direct 2>/dev/null | sha256sum | cut -d" " -f1)"',
    'strata_step written',
    // The host reads `strata image info` now (it takes a second or two).
    'sleep 8',
    // util-linux's blkdiscard by full path (busybox sh prefers its own applet).
    '/usr/sbin/blkdiscard -o 0 -l $((48*1024*1024)) /dev/vda',
    'strata_kv head_zero "$(dd if=/dev/vda bs=1M count=48 iflag=direct 2>/dev/null | cmp -s -n $((48*1024*1024)) - /dev/zero && echo 1 || echo 0)"',
    'strata_kv tail_after "$(dd if=/dev/vda bs=1M skip=48 count=16 iflag=direct 2>/dev/null | sha256sum | cut -d" " -f1)"',
  ].join('\n');
  let before: number | undefined;
  let beforeErr: string | undefined;
  let gotBefore: Promise<void> | undefined;
  const r = await runGuest({
    name: 'cluster-discard', job: composeJob(job), disks: [{ socketPath, numQueues: 1 }], vcpus: 1,
    onLine: (line) => {
      if (gotBefore === undefined && /STRATA-STEP written/.test(line)) {
        gotBefore = img.cluster.imageInfo(img.spec).then((i) => { before = i.usedBytes; }, (e: unknown) => { beforeErr = (e as Error).message; });
      }
    },
  });
  await gotBefore;
  const after = (await img.cluster.imageInfo(img.spec)).usedBytes;
  const mib = (b: number | undefined): string => (b === undefined ? '?' : (b / 2 ** 20).toFixed(1));
  t.log(`image used bytes: ${mib(before)} MiB after writing 64 MiB → ${mib(after)} MiB after discarding 0..48 MiB`);
  t.is(r.rc, 0, `guest job failed\n${r.output.split('\n').filter((l) => !/^\s*\[/.test(l)).slice(-30).join('\n')}`);
  t.is(beforeErr, undefined, `image info failed: ${beforeErr}`);
  t.true((before ?? 0) >= 64 * 2 ** 20, `expected ≥ 64 MiB used after the writes, got ${mib(before)} MiB`);
  t.true((before ?? 0) - after >= 44 * 2 ** 20, `used bytes dropped by only ${mib((before ?? 0) - after)} MiB`);
  t.is(r.kv['head_zero'], '1', `the discarded range does not read as zeros\n${r.tail()}`);
  t.is(r.kv['tail_after'], r.kv['tail_before'], 'the data after the discarded range changed');
});
