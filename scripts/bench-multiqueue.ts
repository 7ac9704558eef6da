// Multiqueue benchmark (issue #3, "queues across cores"): guest fio 4 KiB random reads at QD32
// with one fio process per queue (numjobs = queues, pinned one per vCPU with
// cpus_allowed_policy=split), for num-queues 1, 2 and 4, against strata with --workers 1 and
// --workers 2 and against qemu-storage-daemon with the same num-queues, all in one run. Each
// setting boots its own guest (VM-test kernel + initramfs) against a fresh back-end serving the
// same prefilled raw file on /dev/shm. Around the fio run the host samples the back-end's CPU
// time (utime+stime of the whole process, all threads, /proc/PID/stat) when the guest prints its
// bench-begin/bench-end markers: CPU per I/O = CPU-time delta / I/Os completed. The guest also
// reports how many queues' interrupt vectors fired (queues that carried I/O).
//
//   npx tsc -p tsconfig.json && node dist/scripts/bench-multiqueue.js [options]
//     --runtime S         seconds of fio per setting (default 10)
//     --queues 1,2,4      num-queues values (default 1,2,4)
//     --workers 1,2       strata --workers values (default 1,2; the option is left out for 1)
//     --backends strata,qsd                     (default both)
//     --max-vcpus N       vCPUs = min(queues, N) (default 4)
//     --disk-mib N        disk size (default 512)     --json FILE   all figures as JSON
//
// vCPUs = queues: virtio-blk in the guest uses at most one queue per CPU, so driving 4 queues
// needs 4 vCPUs. Under TCG (no usable KVM) each vCPU is a busy host thread; on a 2-core host a
// guest with 2 or 4 vCPUs and the back-end share the same 2 cores, so the guest, not the
// back-end, is the bottleneck and more queues can even lose IOPS: compare back-ends and worker
// counts with each other at the same setting, and read CPU per I/O as the cleanest figure.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createDiskFile, fileBackend, strataMain, type BackendHandle, type BackendKind } from '../vm-tests/harness/backends.js';
import { composeJob, runGuest, vmLogDir } from '../vm-tests/harness/guest.js';
import { cpuUsBetween, fioFile, fmt, parseBackendKinds, parseFio, prefill, printTable, ratio, requirePositiveIntegers, sample, type FioFigures, type Sample } from './bench-common.js';

interface Setting {
  queues: number;
  vcpus: number;
  backend: BackendKind;
  /** strata's --workers (undefined: not passed, for qsd). */
  workers: number | undefined;
}

interface Result extends Setting, FioFigures {
  label: string;
  cpuUsPerIo: number | null;
  /** Back-end CPU time over the run's wall time, in cores (1.0 = one core busy). */
  cpuCores: number | null;
  hwQueues: number;
  queuesWithIrqs: number;
  accel: string;
}

function label(s: Setting): string {
  return s.backend === 'qsd' ? 'qsd' : `strata w${s.workers ?? 1}`;
}

function fioJob(runtimeS: number, jobs: number, vcpus: number): string {
  const global = ['rw=randread', 'bs=4k', 'iodepth=32', `numjobs=${jobs}`, `cpus_allowed=0-${vcpus - 1}`, 'cpus_allowed_policy=split'];
  return fioFile(runtimeS, global, 'randread-4k-qd32', []);
}

// Per-queue interrupt counts (virtioN-req.Q vectors), as in vm-tests/jobs/multiqueue.sh.
const GUEST_SCRIPT = `irqs() {
  awk -v n="$(nproc)" -v p="$1" '/virtio[0-9]+-req\\./ { s = 0; for (i = 2; i <= n + 1; i++) s += $i; print "STRATA-KV " p "." $NF "=" s }' /proc/interrupts
}
strata_kv cpus "$(nproc)"
strata_kv hw_queues "$(ls /sys/block/vda/mq | wc -l)"
irqs irq_before
strata_step bench-begin
strata_fio mq /tmp/mq.fio
strata_step bench-end
irqs irq_after
`;

async function runSetting(s: Setting, disk: string, runtimeS: number): Promise<Result> {
  const name = `bench-mq-q${s.queues}-${label(s).replace(/\s+/g, '-')}`;
  const logDir = vmLogDir(name);
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-mq-'));
  const socketPath = path.join(sockDir, 'vub0.sock');
  let backend: BackendHandle | undefined;
  try {
    backend = await fileBackend(s.backend).start({
      socketPath,
      file: disk,
      numQueues: s.queues,
      readOnly: false,
      logPath: path.join(logDir, 'backend.log'),
      ...(s.backend === 'strata' && s.workers !== undefined && s.workers > 1 ? { extraArgs: ['--workers', String(s.workers)] } : {}),
    });
    const b = backend;
    let begin: Sample | undefined;
    let end: Sample | undefined;
    let beginAt = 0;
    let endAt = 0;
    process.stderr.write(`bench-multiqueue: ${s.queues} queue(s), ${s.vcpus} vCPU(s), ${label(s)}: booting\n`);
    const r = await runGuest({
      name,
      job: composeJob(GUEST_SCRIPT, { 'mq.fio': fioJob(runtimeS, s.queues, s.vcpus) }),
      disks: [{ socketPath, numQueues: s.queues }],
      vcpus: s.vcpus,
      jobTimeoutMs: (runtimeS + 60) * 1000,
      abortIf: () => (b.exitStatus() === undefined ? undefined : `the ${s.backend} back-end exited (${b.exitStatus()})`),
      onLine: (line) => {
        if (/STRATA-STEP bench-begin/.test(line)) {
          begin = sample(b.pid);
          beginAt = performance.now();
        } else if (/STRATA-STEP bench-end/.test(line)) {
          end = sample(b.pid);
          endAt = performance.now();
        }
      },
    });
    if (r.rc !== 0) {
      throw new Error(`guest failed (rc=${r.rc}) for ${name}: ${r.failures.join(' | ')}\n${r.tail(30)}\nback-end log:\n${b.logTail()}`);
    }
    const json = r.fioJson['mq'];
    if (json === undefined) throw new Error(`no fio output for ${name}`);
    const f = parseFio(json, name, 'read');
    const cpuUs = cpuUsBetween(begin, end);
    let queuesWithIrqs = 0;
    for (const [k, v] of Object.entries(r.kv)) {
      const m = /^irq_after\.(virtio\d+-req\.\d+)$/.exec(k);
      if (m && Number(v) - Number(r.kv[`irq_before.${m[1] ?? ''}`] ?? 0) > 0) queuesWithIrqs++;
    }
    process.stderr.write(`bench-multiqueue: ${s.queues} queue(s), ${label(s)}: ${Math.round(f.iops)} IOPS\n`);
    return {
      ...s,
      label: label(s),
      ...f,
      cpuUsPerIo: Number.isFinite(cpuUs) && f.ios > 0 ? cpuUs / f.ios : null,
      cpuCores: Number.isFinite(cpuUs) && endAt > beginAt ? cpuUs / 1000 / (endAt - beginAt) : null,
      hwQueues: Number(r.kv['hw_queues'] ?? NaN),
      queuesWithIrqs,
      accel: r.accel,
    };
  } finally {
    await backend?.stop();
    fs.rmSync(sockDir, { recursive: true, force: true });
  }
}

function intList(v: string | undefined, what: string): number[] {
  const list = (v ?? '').split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`--${what} must be a comma list of positive integers`);
  return list;
}

/** Whether the built daemon accepts --workers (the option is being added). */
function strataHasWorkers(): boolean {
  try {
    return /--workers\b/.test(execFileSync(process.execPath, [strataMain(), 'vhost', '--help'], { encoding: 'utf8', timeout: 10_000 }));
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runtime: { type: 'string', default: '10' },
      queues: { type: 'string', default: '1,2,4' },
      workers: { type: 'string', default: '1,2' },
      backends: { type: 'string', default: 'strata,qsd' },
      'max-vcpus': { type: 'string', default: '4' },
      'disk-mib': { type: 'string', default: '512' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: node dist/scripts/bench-multiqueue.js [--runtime S] [--queues 1,2,4] [--workers 1,2] [--backends strata,qsd] [--max-vcpus N] [--disk-mib N] [--json FILE]');
    return;
  }
  const runtimeS = Number(values.runtime);
  const maxVcpus = Number(values['max-vcpus']);
  const diskMiB = Number(values['disk-mib']);
  requirePositiveIntegers({ runtime: runtimeS, 'max-vcpus': maxVcpus, 'disk-mib': diskMiB });
  const queueList = intList(values.queues, 'queues');
  let workerList = intList(values.workers, 'workers');
  const backends = parseBackendKinds(values.backends);
  const notes: string[] = [];
  if (backends.includes('strata') && workerList.some((w) => w > 1) && !strataHasWorkers()) {
    notes.push(`strata's daemon has no --workers option yet (vhost --help): ran workers=1 only, skipped ${workerList.filter((w) => w > 1).join(', ')}`);
    workerList = workerList.filter((w) => w === 1);
    if (workerList.length === 0) workerList = [1];
  }
  const settings: Setting[] = [];
  for (const q of queueList) {
    const vcpus = Math.min(q, maxVcpus);
    for (const b of backends) {
      if (b === 'qsd') settings.push({ queues: q, vcpus, backend: b, workers: undefined });
      else for (const w of workerList) settings.push({ queues: q, vcpus, backend: b, workers: w });
    }
  }
  const hostCpus = os.cpus().length;
  if (queueList.some((q) => q > maxVcpus)) {
    notes.push(`vCPUs capped at ${maxVcpus} (--max-vcpus): settings with more queues than vCPUs leave queues idle (virtio-blk uses at most one queue per guest CPU)`);
  }
  if (queueList.some((q) => Math.min(q, maxVcpus) >= hostCpus)) {
    notes.push(`the host has ${hostCpus} CPUs: guests with ${hostCpus} or more vCPUs share them with the back-end (oversubscribed under TCG)`);
  }

  const started = new Date().toISOString();
  const disk = createDiskFile('bench-mq', diskMiB);
  const results: Result[] = [];
  try {
    process.stderr.write(`bench-multiqueue: prefilling ${diskMiB} MiB in ${disk.path}\n`);
    prefill(disk.path, diskMiB);
    for (const s of settings) results.push(await runSetting(s, disk.path, runtimeS));
  } finally {
    disk.remove();
  }

  const accel = results[0]?.accel ?? '?';
  console.log(`\nmultiqueue benchmark: fio 4k randread QD32, numjobs = queues (one per vCPU, pinned), ${runtimeS} s per setting, ` +
    `${diskMiB} MiB prefilled /dev/shm file, accel ${accel}, host ${hostCpus} CPUs (${os.cpus()[0]?.model ?? '?'}), ${started}`);
  for (const n of notes) console.log(`note: ${n}`);
  console.log('');
  const header = ['queues', 'vCPUs', 'back-end', 'IOPS', 'MiB/s', 'mean lat us', 'p99 lat us', 'CPU us/IO', 'CPU cores', 'queues used', 'vs w1', 'vs qsd'];
  const rows: string[][] = [];
  for (const r of results) {
    const w1 = results.find((x) => x.queues === r.queues && x.backend === 'strata' && (x.workers ?? 1) === 1);
    const q = results.find((x) => x.queues === r.queues && x.backend === 'qsd');
    const isStrata = r.backend === 'strata';
    rows.push([
      String(r.queues), String(r.vcpus), r.label,
      fmt(r.iops, 0), fmt(r.mibps), fmt(r.meanLatUs), fmt(r.p99LatUs), fmt(r.cpuUsPerIo), r.cpuCores === null ? '-' : r.cpuCores.toFixed(2),
      `${r.queuesWithIrqs}/${r.hwQueues}`,
      isStrata && (r.workers ?? 1) > 1 ? ratio(r.iops, w1?.iops) : '',
      isStrata ? ratio(r.iops, q?.iops) : '',
    ]);
  }
  printTable(header, rows, 3);
  console.log('\nvs w1 = IOPS / strata --workers 1 IOPS at the same queues; vs qsd = IOPS / qemu-storage-daemon IOPS at the same queues;');
  console.log('CPU us/IO = back-end utime+stime (all threads) / I/Os; CPU cores = back-end CPU time / wall time of the run;');
  console.log('queues used = request queues whose interrupt vector fired during fio / hardware queues the guest sees.');
  if (values.json) {
    fs.writeFileSync(values.json, JSON.stringify({ started, accel, runtimeS, diskMiB, maxVcpus, notes, host: { cpus: hostCpus, kernel: os.release() }, results }, null, 2));
    console.log(`\nresults written to ${values.json}`);
  }
}

main().catch((err: unknown) => {
  console.error(`bench-multiqueue: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
