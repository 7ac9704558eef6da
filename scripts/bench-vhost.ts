// Benchmarks strata's vhost-user-blk daemon against qemu-storage-daemon with the same fio jobs in
// the same VM-test guest (kernel + initramfs from scripts/build-guest-image.sh), each back-end
// serving a prefilled raw file on /dev/shm. One guest boot per back-end runs every selected job
// in turn (time-based); around each job the host samples the back-end's CPU time
// (/proc/PID/stat utime+stime) and RSS (/proc/PID/status VmRSS) when the guest prints its
// bench-begin/bench-end markers, so CPU per I/O = CPU-time delta / I/Os completed.
//
//   npx tsc -p tsconfig.json && node dist/scripts/bench-vhost.js [options]
//     --runtime S           seconds per job (default 10)
//     --jobs a,b            subset of: randread-4k-qd1, randread-4k-qd32, randwrite-4k-qd1,
//                           randwrite-4k-qd32, read-1m-qd8, write-1m-qd8 (default all)
//     --backends strata,qsd back-ends, in order (default strata,qsd)
//     --num-queues N        device queues (default 1)      --vcpus N   guest vCPUs (default 1)
//     --disk-mib N          disk size (default 1024)       --json FILE write all results as JSON
//
// Under TCG (no usable KVM) the guest, not the back-end, is the bottleneck: compare back-ends
// with each other, not with published figures. STRATA_ACCEL selects the accelerator.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { createDiskFile, fileBackend, type BackendHandle, type BackendKind } from '../vm-tests/harness/backends.js';
import { composeJob, runGuest, vmLogDir } from '../vm-tests/harness/guest.js';
import { cpuUsBetween, fmt, parseFio as parseFioSide, prefill, printTable as printAligned, ratio, sample, type Sample } from './bench-common.js';

interface JobSpec {
  name: string;
  rw: 'randread' | 'randwrite' | 'read' | 'write';
  bs: string;
  iodepth: number;
}

const ALL_JOBS: JobSpec[] = [
  { name: 'randread-4k-qd1', rw: 'randread', bs: '4k', iodepth: 1 },
  { name: 'randread-4k-qd32', rw: 'randread', bs: '4k', iodepth: 32 },
  { name: 'randwrite-4k-qd1', rw: 'randwrite', bs: '4k', iodepth: 1 },
  { name: 'randwrite-4k-qd32', rw: 'randwrite', bs: '4k', iodepth: 32 },
  { name: 'read-1m-qd8', rw: 'read', bs: '1m', iodepth: 8 },
  { name: 'write-1m-qd8', rw: 'write', bs: '1m', iodepth: 8 },
];

interface JobResult {
  job: string;
  backend: BackendKind;
  iops: number;
  mibps: number;
  meanLatUs: number;
  p99LatUs: number;
  ios: number;
  cpuUsPerIo: number | null;
  rssMiB: number | null;
}

function fioJobFile(j: JobSpec, runtimeS: number): string {
  return [
    '[global]',
    'filename=/dev/vda',
    'ioengine=libaio',
    'direct=1',
    'time_based=1',
    `runtime=${runtimeS}`,
    'norandommap=1',
    'randrepeat=0',
    'lat_percentiles=1',
    'group_reporting=1',
    `[${j.name}]`,
    `rw=${j.rw}`,
    `bs=${j.bs}`,
    `iodepth=${j.iodepth}`,
    '',
  ].join('\n');
}

function parseFio(json: unknown, j: JobSpec): { iops: number; mibps: number; meanLatUs: number; p99LatUs: number; ios: number } {
  return parseFioSide(json, j.name, j.rw.includes('read') ? 'read' : 'write');
}

async function benchBackend(kind: BackendKind, jobs: JobSpec[], o: { runtimeS: number; numQueues: number; vcpus: number; diskMiB: number }): Promise<{ accel: string; results: JobResult[] }> {
  const label = `bench-${kind}`;
  const logDir = vmLogDir(label);
  const disk = createDiskFile(label, o.diskMiB);
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-'));
  const socketPath = path.join(sockDir, 'vub0.sock');
  let backend: BackendHandle | undefined;
  try {
    // Prefill with non-zero data so reads hit real pages, not holes.
    process.stderr.write(`bench: ${kind}: prefilling ${o.diskMiB} MiB in ${disk.path}\n`);
    prefill(disk.path, o.diskMiB);

    backend = await fileBackend(kind).start({
      socketPath, file: disk.path, numQueues: o.numQueues, readOnly: false, logPath: path.join(logDir, 'backend.log'),
    });
    const b = backend;
    const files: Record<string, string> = {};
    const body: string[] = [];
    for (const j of jobs) {
      files[`${j.name}.fio`] = fioJobFile(j, o.runtimeS);
      body.push(`strata_step bench-begin ${j.name}`, `strata_fio ${j.name} /tmp/${j.name}.fio`, `strata_step bench-end ${j.name}`);
    }
    const begin = new Map<string, Sample>();
    const end = new Map<string, Sample>();
    process.stderr.write(`bench: ${kind}: booting the guest, ${jobs.length} jobs x ${o.runtimeS} s\n`);
    const r = await runGuest({
      name: label,
      job: composeJob(body.join('\n'), files),
      disks: [{ socketPath, numQueues: o.numQueues }],
      vcpus: o.vcpus,
      jobTimeoutMs: jobs.length * (o.runtimeS + 30) * 1000 + 60_000,
      abortIf: () => (b.exitStatus() === undefined ? undefined : `the ${kind} back-end exited (${b.exitStatus()})`),
      onLine: (line) => {
        const m = /STRATA-STEP bench-(begin|end) (\S+)/.exec(line);
        if (!m) return;
        const s = sample(b.pid);
        if (s) (m[1] === 'begin' ? begin : end).set(m[2] ?? '', s);
        if (m[1] === 'end') process.stderr.write(`bench: ${kind}: ${m[2]} done\n`);
      },
    });
    if (r.rc !== 0) {
      throw new Error(`bench guest failed (rc=${r.rc}) for ${kind}: ${r.failures.join(' | ')}\n${r.tail(30)}\nback-end log:\n${b.logTail()}`);
    }
    const results = jobs.map((j): JobResult => {
      const json = r.fioJson[j.name];
      if (json === undefined) throw new Error(`no fio output for ${j.name} (${kind})`);
      const f = parseFio(json, j);
      const s0 = begin.get(j.name);
      const s1 = end.get(j.name);
      const cpuUs = cpuUsBetween(s0, s1);
      return {
        job: j.name,
        backend: kind,
        ...f,
        cpuUsPerIo: Number.isFinite(cpuUs) && f.ios > 0 ? cpuUs / f.ios : null,
        rssMiB: s1 ? s1.rssKiB / 1024 : null,
      };
    });
    return { accel: r.accel, results };
  } finally {
    await backend?.stop();
    disk.remove();
    fs.rmSync(sockDir, { recursive: true, force: true });
  }
}

function printTable(results: JobResult[], jobs: JobSpec[], backends: BackendKind[]): void {
  const header = ['job', 'backend', 'IOPS', 'MiB/s', 'mean lat us', 'p99 lat us', 'CPU us/IO', 'RSS MiB'];
  const rows: string[][] = [];
  for (const j of jobs) {
    for (const b of backends) {
      const r = results.find((x) => x.job === j.name && x.backend === b);
      if (!r) continue;
      rows.push([j.name, b, fmt(r.iops, 0), fmt(r.mibps), fmt(r.meanLatUs), fmt(r.p99LatUs), fmt(r.cpuUsPerIo), fmt(r.rssMiB)]);
    }
    const s = results.find((x) => x.job === j.name && x.backend === 'strata');
    const q = results.find((x) => x.job === j.name && x.backend === 'qsd');
    if (s && q) {
      rows.push(['', 'strata/qsd', ratio(s.iops, q.iops), ratio(s.mibps, q.mibps), ratio(s.meanLatUs, q.meanLatUs),
        ratio(s.p99LatUs, q.p99LatUs), ratio(s.cpuUsPerIo, q.cpuUsPerIo), ratio(s.rssMiB, q.rssMiB)]);
    }
  }
  printAligned(header, rows);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runtime: { type: 'string', default: '10' },
      jobs: { type: 'string' },
      backends: { type: 'string', default: 'strata,qsd' },
      'num-queues': { type: 'string', default: '1' },
      vcpus: { type: 'string', default: '1' },
      'disk-mib': { type: 'string', default: '1024' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: node dist/scripts/bench-vhost.js [--runtime S] [--jobs a,b] [--backends strata,qsd] [--num-queues N] [--vcpus N] [--disk-mib N] [--json FILE]');
    console.log(`jobs: ${ALL_JOBS.map((j) => j.name).join(', ')}`);
    return;
  }
  const runtimeS = Number(values.runtime);
  const numQueues = Number(values['num-queues']);
  const vcpus = Number(values.vcpus);
  const diskMiB = Number(values['disk-mib']);
  for (const [k, v] of Object.entries({ runtime: runtimeS, 'num-queues': numQueues, vcpus, 'disk-mib': diskMiB })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${k} must be a positive integer`);
  }
  const jobNames = values.jobs ? values.jobs.split(',').map((s) => s.trim()).filter(Boolean) : ALL_JOBS.map((j) => j.name);
  const jobs = jobNames.map((n) => {
    const j = ALL_JOBS.find((x) => x.name === n);
    if (!j) throw new Error(`unknown job "${n}"; known: ${ALL_JOBS.map((x) => x.name).join(', ')}`);
    return j;
  });
  const backends = (values.backends ?? '').split(',').map((s) => s.trim()).filter(Boolean).map((b) => {
    if (b !== 'strata' && b !== 'qsd') throw new Error(`unknown back-end "${b}" (strata, qsd)`);
    return b as BackendKind;
  });
  const results: JobResult[] = [];
  const started = new Date().toISOString();
  let accel = '?';
  for (const b of backends) {
    const r = await benchBackend(b, jobs, { runtimeS, numQueues, vcpus, diskMiB });
    results.push(...r.results);
    accel = r.accel;
  }
  console.log(`\nvhost-user-blk benchmark: runtime ${runtimeS} s/job, ${vcpus} vCPU, ${numQueues} queue(s), ` +
    `${diskMiB} MiB /dev/shm file, accel ${accel}, host ${os.cpus().length} CPUs, ${started}\n`);
  printTable(results, jobs, backends);
  if (values.json) {
    fs.writeFileSync(values.json, JSON.stringify({ started, accel, runtimeS, vcpus, numQueues, diskMiB, host: { cpus: os.cpus().length, kernel: os.release() }, results }, null, 2));
    console.log(`\nresults written to ${values.json}`);
  }
}

main().catch((err: unknown) => {
  console.error(`bench-vhost: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
