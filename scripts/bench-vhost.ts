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
import { parseArgs } from 'node:util';
import { createDiskFile, fileBackend, type BackendKind } from '../vm-tests/harness/backends.js';
import { fmt, parseBackendKinds, prefill, printTable as printAligned, ratio, requirePositiveIntegers } from './bench-common.js';
import { ALL_JOBS, runGuestJobs, type JobSpec } from './bench-guest.js';

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

async function benchBackend(kind: BackendKind, jobs: JobSpec[], o: { runtimeS: number; numQueues: number; vcpus: number; diskMiB: number }): Promise<{ accel: string; results: JobResult[] }> {
  const label = `bench-${kind}`;
  const disk = createDiskFile(label, o.diskMiB);
  try {
    // Prefill with non-zero data so reads hit real pages, not holes.
    process.stderr.write(`bench: ${kind}: prefilling ${o.diskMiB} MiB in ${disk.path}\n`);
    prefill(disk.path, o.diskMiB);
    const r = await runGuestJobs({ label, kind, progress: `bench: ${kind}`, factory: fileBackend(kind), file: disk.path, jobs, runtimeS: o.runtimeS, numQueues: o.numQueues, vcpus: o.vcpus });
    const results = r.results.map((x): JobResult => ({ job: x.job.name, backend: kind, ...x.fio, cpuUsPerIo: x.cpuUsPerIo, rssMiB: x.rssMiB }));
    return { accel: r.accel, results };
  } finally {
    disk.remove();
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
  requirePositiveIntegers({ runtime: runtimeS, 'num-queues': numQueues, vcpus, 'disk-mib': diskMiB });
  const jobNames = values.jobs ? values.jobs.split(',').map((s) => s.trim()).filter(Boolean) : ALL_JOBS.map((j) => j.name);
  const jobs = jobNames.map((n) => {
    const j = ALL_JOBS.find((x) => x.name === n);
    if (!j) throw new Error(`unknown job "${n}"; known: ${ALL_JOBS.map((x) => x.name).join(', ')}`);
    return j;
  });
  const backends = parseBackendKinds(values.backends);
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
