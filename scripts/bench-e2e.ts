// End-to-end benchmark: the same guest fio jobs as scripts/bench-vhost.ts (same job names, same
// fio settings: libaio, O_DIRECT, time-based, norandommap) in the same VM-test guest, on four
// back-ends in one run:
//   strata-file     strata vhost --file on a prefilled /dev/shm file
//   strata-cluster  strata vhost --image on a local strata cluster (mon + 3 OSDs, pool size 3)
//   qsd-file        qemu-storage-daemon exporting the prefilled file
//   qsd-rbd         qemu-storage-daemon with its rbd driver (librbd, rbd cache off through
//                   cache.direct=on) on an image of a real Ceph (16.2, 3 BlueStore OSDs, size 3)
//                   brought up by scripts/bench-ceph.sh --only ceph --keep
// Cluster images are imported from the same prefilled file (reads hit data, not holes). Prints
// the table and the ratios strata-cluster/qsd-rbd (Ceph) and strata-cluster/strata-file.
//
//   npx tsc -p tsconfig.json && node dist/scripts/bench-e2e.js [--runtime 8] [--warmup 2] [--jobs a,b]
//        [--backends strata-file,strata-cluster,qsd-file,qsd-rbd] [--disk-mib 512]
//        [--ceph-dir DIR (a Ceph kept by bench-ceph.sh --keep; its daemons are started if stopped; default: bring one up)] [--json FILE]
//
// The job list, fio files and guest run are bench-vhost.ts's (scripts/bench-guest.ts).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { createDiskFile, fileBackend, QSD_BINARY, spawnAndWaitForSocket, strataMain, type BackendFactory } from '../vm-tests/harness/backends.js';
import { clusterBackend, startLocalCluster, type ClusterImage, type LocalCluster } from '../vm-tests/harness/cluster-backend.js';
import { fmt, prefill, printTable, ratio } from './bench-common.js';
import { ALL_JOBS, runGuestJobs, type JobSpec } from './bench-guest.js';

type Kind = 'strata-file' | 'strata-cluster' | 'qsd-file' | 'qsd-rbd';
const KINDS: Kind[] = ['strata-file', 'strata-cluster', 'qsd-file', 'qsd-rbd'];

interface Result { job: string; backend: Kind; iops: number; mibps: number; meanLatUs: number; p99LatUs: number; ios: number; cpuUsPerIo: number | null }

/** Boots one guest against `factory`, runs every job, samples the back-end's CPU around each. */
async function benchOne(kind: Kind, factory: BackendFactory, file: string, jobs: JobSpec[], o: { runtimeS: number; warmupS: number; numQueues: number; vcpus: number }): Promise<Result[]> {
  const r = await runGuestJobs({ label: `bench-e2e-${kind}`, kind, progress: `bench-e2e: ${kind}`, factory, file, jobs, ...o, startTimeoutMs: 60_000 });
  return r.results.map((x): Result => ({ job: x.job.name, backend: kind, ...x.fio, cpuUsPerIo: x.cpuUsPerIo }));
}

/** qemu-storage-daemon with the rbd driver on `pool/image` of the Ceph whose conf is `conf`. */
function qsdRbd(conf: string, pool: string, image: string): BackendFactory {
  return {
    kind: 'qsd',
    start: (o) => spawnAndWaitForSocket('qsd', QSD_BINARY, [
      '--blockdev', `driver=rbd,node-name=rbd0,pool=${pool},image=${image},conf=${conf.replace(/,/g, ',,')},user=admin,cache.direct=on,discard=unmap`,
      '--export', `type=vhost-user-blk,id=exp0,node-name=rbd0,addr.type=unix,addr.path=${o.socketPath.replace(/,/g, ',,')},writable=on,num-queues=${o.numQueues}`,
    ], o),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runtime: { type: 'string', default: '8' },
      // Unmeasured seconds of each job first (all back-ends alike): steady state, as fio's ramp_time.
      warmup: { type: 'string', default: '2' },
      jobs: { type: 'string' },
      backends: { type: 'string', default: KINDS.join(',') },
      'num-queues': { type: 'string', default: '1' },
      vcpus: { type: 'string', default: '1' },
      'disk-mib': { type: 'string', default: '512' },
      'ceph-dir': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: node dist/scripts/bench-e2e.js [--runtime S] [--warmup S] [--jobs a,b] [--backends ' + KINDS.join(',') + '] [--disk-mib N] [--ceph-dir DIR] [--json FILE]');
    return;
  }
  const runtimeS = Number(values.runtime);
  const warmupS = Math.max(0, Number(values.warmup) || 0);
  const numQueues = Number(values['num-queues']);
  const vcpus = Number(values.vcpus);
  const diskMiB = Number(values['disk-mib']);
  const jobs = (values.jobs ? values.jobs.split(',') : ALL_JOBS.map((j) => j.name)).map((n) => {
    const j = ALL_JOBS.find((x) => x.name === n.trim());
    if (!j) throw new Error(`unknown job "${n}"; known: ${ALL_JOBS.map((x) => x.name).join(', ')}`);
    return j;
  });
  const kinds = (values.backends ?? '').split(',').map((s) => s.trim()).filter(Boolean).map((k) => {
    if (!(KINDS as string[]).includes(k)) throw new Error(`unknown back-end "${k}" (${KINDS.join(', ')})`);
    return k as Kind;
  });
  const started = new Date().toISOString();
  const disk = createDiskFile('bench-e2e', diskMiB);
  process.stderr.write(`bench-e2e: prefilling ${diskMiB} MiB in ${disk.path}\n`);
  prefill(disk.path, diskMiB);
  const results: Result[] = [];
  let cluster: LocalCluster | undefined;
  let cephDir = values['ceph-dir'];
  let startedCeph = false;
  const notes: string[] = [];
  try {
    for (const kind of kinds) {
      if (kind === 'strata-file' || kind === 'qsd-file') {
        results.push(...await benchOne(kind, fileBackend(kind === 'qsd-file' ? 'qsd' : 'strata'), disk.path, jobs, { runtimeS, warmupS, numQueues, vcpus }));
      } else if (kind === 'strata-cluster') {
        process.stderr.write('bench-e2e: strata-cluster: starting a local cluster (mon + 3 OSDs) and importing the prefilled file\n');
        cluster = await startLocalCluster({ osds: 3, parentDir: '/var/tmp' });
        await cluster.admin(['pool', 'create', 'vms', '--size', '3', '--min-size', '2', '--pg-num', '32', '--failure-domain', 'osd']);
        await cluster.waitHealthy();
        await cluster.admin(['image', 'import', disk.path, 'vms/bench'], 600_000);
        const keyring = await cluster.addClient('client.bench', 'vms');
        const img: ClusterImage = { cluster, pool: 'vms', image: 'bench', spec: 'vms/bench', client: 'client.bench', keyring };
        results.push(...await benchOne(kind, clusterBackend(img), disk.path, jobs, { runtimeS, warmupS, numQueues, vcpus }));
        await cluster.stop();
        cluster = undefined;
      } else {
        if (cephDir === undefined) {
          cephDir = '/var/tmp/strata-bench-e2e-ceph';
          process.stderr.write(`bench-e2e: qsd-rbd: bringing up Ceph with scripts/bench-ceph.sh --only ceph --keep --dir ${cephDir} (it runs its own rbd bench first)\n`);
          const r = spawnSync('bash', [path.join(path.dirname(strataMain()), '..', '..', '..', 'scripts', 'bench-ceph.sh'), '--only', 'ceph', '--keep', '--dir', cephDir, '--image-size', `${diskMiB}M`], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 1_200_000 });
          startedCeph = true;
          if (r.status !== 0) throw new Error(`bench-ceph.sh failed (status ${r.status ?? r.signal})`);
        }
        const conf = path.join(cephDir, 'ceph', 'ceph.conf');
        if (!fs.existsSync(conf)) throw new Error(`no Ceph config at ${conf}`);
        // bench-ceph.sh --keep keeps the data but its exit trap stops the daemons — also those of
        // a --ceph-dir kept by an earlier bench-ceph.sh run: start them again from the kept
        // configuration (they daemonize; pid files in ceph/run) unless they answer already.
        let running = false;
        if (!startedCeph) {
          try { execFileSync('ceph', ['-c', conf, '--connect-timeout', '5', 'osd', 'stat', '-f', 'json'], { stdio: 'ignore', timeout: 15_000 }); running = true; } catch { /* stopped */ }
        }
        if (!running) {
          startedCeph = true; // Ours to stop at the end.
          process.stderr.write('bench-e2e: qsd-rbd: starting the kept Ceph daemons (mon.a, mgr.x, osd.0-2)\n');
          execFileSync('ceph-mon', ['-c', conf, '-i', 'a'], { stdio: 'ignore', timeout: 60_000 });
          execFileSync('ceph-mgr', ['-c', conf, '-i', 'x'], { stdio: 'ignore', timeout: 60_000 });
          for (const id of ['0', '1', '2']) execFileSync('ceph-osd', ['-c', conf, '-i', id], { stdio: 'ignore', timeout: 60_000 });
          const until = Date.now() + 120_000;
          for (;;) {
            let up = 0;
            try {
              const st = JSON.parse(execFileSync('ceph', ['-c', conf, 'osd', 'stat', '-f', 'json'], { timeout: 20_000 }).toString()) as { num_up_osds?: number };
              up = st.num_up_osds ?? 0;
            } catch { /* not yet */ }
            if (up === 3) break;
            if (Date.now() > until) throw new Error('the kept Ceph OSDs did not come up within 120 s');
            spawnSync('sleep', ['1']);
          }
        }
        try { execFileSync('rbd', ['-c', conf, 'rm', 'rbd/e2e'], { stdio: 'ignore', timeout: 120_000 }); } catch { /* not there yet */ }
        process.stderr.write('bench-e2e: qsd-rbd: importing the prefilled file into rbd/e2e\n');
        execFileSync('rbd', ['-c', conf, 'import', disk.path, 'rbd/e2e'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
        results.push(...await benchOne(kind, qsdRbd(conf, 'rbd', 'e2e'), disk.path, jobs, { runtimeS, warmupS, numQueues, vcpus }));
      }
    }
  } finally {
    await cluster?.stop();
    disk.remove();
    if (startedCeph && cephDir !== undefined) {
      // Stop the Ceph daemons bench-ceph.sh left running (--keep), by their pid files.
      const run = path.join(cephDir, 'ceph', 'run');
      for (const f of fs.existsSync(run) ? fs.readdirSync(run).filter((x) => x.endsWith('.pid')) : []) {
        const pid = Number(fs.readFileSync(path.join(run, f), 'utf8').trim());
        try { if (pid > 0) process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      }
      notes.push(`Ceph in ${cephDir} stopped`);
    }
  }
  const accel = process.env['STRATA_ACCEL'] ?? 'auto';
  console.log(`\nend-to-end benchmark: runtime ${runtimeS} s/job after ${warmupS} s unmeasured, ${vcpus} vCPU, ${numQueues} queue(s), ${diskMiB} MiB disk, accel ${accel}, host ${os.cpus().length} CPUs, ${started}\n`);
  const rows: string[][] = [];
  for (const j of jobs) {
    for (const k of kinds) {
      const r = results.find((x) => x.job === j.name && x.backend === k);
      if (r) rows.push([j.name, k, fmt(r.iops, 0), fmt(r.mibps), fmt(r.meanLatUs), fmt(r.p99LatUs), fmt(r.cpuUsPerIo)]);
    }
    const c = results.find((x) => x.job === j.name && x.backend === 'strata-cluster');
    const ceph = results.find((x) => x.job === j.name && x.backend === 'qsd-rbd');
    const f = results.find((x) => x.job === j.name && x.backend === 'strata-file');
    if (c && ceph) rows.push(['', 'cluster/Ceph', ratio(c.iops, ceph.iops), ratio(c.mibps, ceph.mibps), ratio(c.meanLatUs, ceph.meanLatUs), ratio(c.p99LatUs, ceph.p99LatUs), '']);
    if (c && f) rows.push(['', 'cluster/file', ratio(c.iops, f.iops), ratio(c.mibps, f.mibps), ratio(c.meanLatUs, f.meanLatUs), ratio(c.p99LatUs, f.p99LatUs), '']);
  }
  printTable(['job', 'backend', 'IOPS', 'MiB/s', 'mean lat us', 'p99 lat us', 'CPU us/IO'], rows);
  console.log('CPU us/IO: the vhost-user back-end process only (not the OSDs or Ceph daemons).');
  for (const n of notes) console.log(n);
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ started, runtimeS, vcpus, numQueues, diskMiB, results }, null, 2));
}

main().catch((err: unknown) => {
  console.error(`bench-e2e: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
