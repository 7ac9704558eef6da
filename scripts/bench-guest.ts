// The guest fio jobs of bench-vhost.ts and bench-e2e.ts and the run that drives them: one guest
// boot (VM-test kernel + initramfs) against a back-end runs every selected job in turn
// (time-based), and around each job the host samples the back-end's CPU time and RSS when the
// guest prints its bench-begin/bench-end markers, so CPU per I/O = CPU-time delta / I/Os.
// No side effects on import (bench-vhost.ts and bench-e2e.ts run their main() on import).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BackendFactory, BackendHandle } from '../vm-tests/harness/backends.js';
import { composeJob, runGuest, vmLogDir } from '../vm-tests/harness/guest.js';
import { cpuUsBetween, fioFile, parseFio, sample, type FioFigures, type Sample } from './bench-common.js';

export interface JobSpec {
  name: string;
  rw: 'randread' | 'randwrite' | 'read' | 'write';
  bs: string;
  iodepth: number;
}

export const ALL_JOBS: JobSpec[] = [
  { name: 'randread-4k-qd1', rw: 'randread', bs: '4k', iodepth: 1 },
  { name: 'randread-4k-qd32', rw: 'randread', bs: '4k', iodepth: 32 },
  { name: 'randwrite-4k-qd1', rw: 'randwrite', bs: '4k', iodepth: 1 },
  { name: 'randwrite-4k-qd32', rw: 'randwrite', bs: '4k', iodepth: 32 },
  { name: 'read-1m-qd8', rw: 'read', bs: '1m', iodepth: 8 },
  { name: 'write-1m-qd8', rw: 'write', bs: '1m', iodepth: 8 },
];

/** The fio job file of `j`: libaio, O_DIRECT, time-based, norandommap, on /dev/vda. */
export function fioJobFile(j: JobSpec, runtimeS: number): string {
  return fioFile(runtimeS, [], j.name, [`rw=${j.rw}`, `bs=${j.bs}`, `iodepth=${j.iodepth}`]);
}

/** One job's figures, with the back-end's CPU per I/O and RSS at the job's end. */
export interface GuestJobResult {
  job: JobSpec;
  fio: FioFigures;
  cpuUsPerIo: number | null;
  rssMiB: number | null;
}

export interface GuestJobsOptions {
  /** The guest's name (its log directory). */
  label: string;
  /** The back-end's name in messages. */
  kind: string;
  /** Prefix of the progress lines on stderr, e.g. "bench: strata". */
  progress: string;
  factory: BackendFactory;
  /** The file the back-end serves. */
  file: string;
  jobs: JobSpec[];
  runtimeS: number;
  /**
   * Seconds each job first runs unmeasured, before its bench-begin marker (fio's ramp_time,
   * without counting the ramp's CPU against the measured I/Os): 0 for none.
   */
  warmupS?: number;
  numQueues: number;
  vcpus: number;
  /** How long the back-end may take to create its socket (the factory's default otherwise). */
  startTimeoutMs?: number;
}

/** Starts the back-end, boots one guest that runs every job in turn, stops the back-end. */
export async function runGuestJobs(o: GuestJobsOptions): Promise<{ accel: string; results: GuestJobResult[] }> {
  const { jobs, kind } = o;
  const logDir = vmLogDir(o.label);
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-'));
  const socketPath = path.join(sockDir, 'vub0.sock');
  let backend: BackendHandle | undefined;
  try {
    backend = await o.factory.start({
      socketPath, file: o.file, numQueues: o.numQueues, readOnly: false, logPath: path.join(logDir, 'backend.log'),
      ...(o.startTimeoutMs !== undefined ? { startTimeoutMs: o.startTimeoutMs } : {}),
    });
    const b = backend;
    const files: Record<string, string> = {};
    const body: string[] = [];
    const warmS = o.warmupS ?? 0;
    for (const j of jobs) {
      files[`${j.name}.fio`] = fioJobFile(j, o.runtimeS);
      if (warmS > 0) {
        files[`${j.name}-warm.fio`] = fioJobFile(j, warmS);
        body.push(`strata_fio ${j.name}-warm /tmp/${j.name}-warm.fio`);
      }
      body.push(`strata_step bench-begin ${j.name}`, `strata_fio ${j.name} /tmp/${j.name}.fio`, `strata_step bench-end ${j.name}`);
    }
    const begin = new Map<string, Sample>();
    const end = new Map<string, Sample>();
    process.stderr.write(`${o.progress}: booting the guest, ${jobs.length} jobs x ${o.runtimeS} s\n`);
    const r = await runGuest({
      name: o.label,
      job: composeJob(body.join('\n'), files),
      disks: [{ socketPath, numQueues: o.numQueues }],
      vcpus: o.vcpus,
      jobTimeoutMs: jobs.length * (o.runtimeS + warmS + 30) * 1000 + 60_000,
      abortIf: () => (b.exitStatus() === undefined ? undefined : `the ${kind} back-end exited (${b.exitStatus()})`),
      onLine: (line) => {
        const m = /STRATA-STEP bench-(begin|end) (\S+)/.exec(line);
        if (!m) return;
        const s = sample(b.pid);
        if (s) (m[1] === 'begin' ? begin : end).set(m[2] ?? '', s);
        if (m[1] === 'end') process.stderr.write(`${o.progress}: ${m[2]} done\n`);
      },
    });
    if (r.rc !== 0) {
      throw new Error(`bench guest failed (rc=${r.rc}) for ${kind}: ${r.failures.join(' | ')}\n${r.tail(30)}\nback-end log:\n${b.logTail()}`);
    }
    const results = jobs.map((j): GuestJobResult => {
      const json = r.fioJson[j.name];
      if (json === undefined) throw new Error(`no fio output for ${j.name} (${kind})`);
      const fio = parseFio(json, j.name, j.rw.includes('read') ? 'read' : 'write');
      const s1 = end.get(j.name);
      const cpuUs = cpuUsBetween(begin.get(j.name), s1);
      return { job: j, fio, cpuUsPerIo: Number.isFinite(cpuUs) && fio.ios > 0 ? cpuUs / fio.ios : null, rssMiB: s1 ? s1.rssKiB / 1024 : null };
    });
    return { accel: r.accel, results };
  } finally {
    await backend?.stop();
    fs.rmSync(sockDir, { recursive: true, force: true });
  }
}
