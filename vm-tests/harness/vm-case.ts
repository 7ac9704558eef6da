// Glue shared by the VM-test case files: one case = a fresh disk file in /dev/shm, a back-end
// serving it over a vhost-user socket, one guest running one job, host-side checks, cleanup.
// Failures carry the console tail, the guest's dmesg (printed when its job fails) and the
// back-end's log tail; all logs stay in .cache/vm-logs/<case>-<backend>/.
import type { ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createDiskFile, type BackendFactory, type BackendHandle } from './backends.js';
import { composeJob, runGuest, vmLogDir, type GuestResult } from './guest.js';
import { repoRoot, sleep } from './util.js';

/** Upper bound for one case, slot waiting included (ava's t.timeout). */
export const CASE_TIMEOUT_MS = Number(process.env['STRATA_VM_CASE_TIMEOUT_MS'] ?? 15 * 60_000);

export function readJob(name: string): string {
  return fs.readFileSync(path.join(repoRoot(), 'vm-tests', 'jobs', name), 'utf8');
}

export interface VmCaseOptions {
  /** Case name; the log directory is .cache/vm-logs/<name>-<backend>/. */
  name: string;
  backend: BackendFactory;
  diskMiB: number;
  /** Job script name in vm-tests/jobs/. */
  script: string;
  /** Files from vm-tests/jobs/ copied to the guest's /tmp before the script runs. */
  files?: string[];
  numQueues?: number;
  vcpus?: number;
  readOnly?: boolean;
  bootTimeoutMs?: number;
  jobTimeoutMs?: number;
  /** Runs on the host after the disk file is created, before the back-end starts. */
  prepareDisk?: (file: string) => void;
  /** Runs on the host after the guest finished, with the back-end stopped, before cleanup. */
  afterGuest?: (file: string, r: GuestResult) => void;
  /** Adds reconnect=1 to QEMU's chardev (QEMU retries a lost back-end every second). */
  reconnect?: boolean;
  /** Directory of the disk file (default STRATA_VM_DISK_DIR or /dev/shm). */
  diskDir?: string;
  /** Extra back-end arguments (appended; for strata a later --log-level wins). */
  backendArgs?: string[];
  /** Shell variables exported to the job script. */
  env?: Record<string, string | number>;
  /** Called with each console line; `ctl` restarts the back-end (reconnect cases). */
  onLine?: (line: string, ctl: BackendControl) => void;
  /** Runs after the guest finished, before the back-end is stopped (e.g. to query it). */
  beforeStop?: (ctl: BackendControl) => Promise<void> | void;
}

/** Host-clock timings (performance.now() ms) of one back-end restart. */
export interface RestartTiming {
  signal: 'SIGKILL' | 'SIGTERM';
  /** The signal was sent. */
  signalAt: number;
  /** The old process had exited. */
  exitedAt: number;
  /** The new process was spawned. */
  spawnedAt: number;
  /** The new process's socket existed (polled every 5 ms). */
  socketReadyAt: number;
  /** Date.now() at signalAt, to line up with the back-end's own log timestamps. */
  signalWallMs: number;
}

export interface BackendControl {
  /** The back-end process serving the disk now. */
  current(): BackendHandle;
  socketPath: string;
  diskPath: string;
  /**
   * Signals the back-end, waits (≤ 10 s) for it to exit and at once starts a new one on the same
   * socket and file. One restart at a time; the guest run is not aborted while it is under way.
   */
  restart(signal: 'SIGKILL' | 'SIGTERM'): Promise<RestartTiming>;
  restarts: RestartTiming[];
}

export interface VmCaseResult extends GuestResult {
  backendKind: string;
  backendLog: string;
}

/** Runs one case end to end; throws (loudly) on infrastructure failures, returns the job result. */
export async function runVmCase(t: ExecutionContext, o: VmCaseOptions): Promise<VmCaseResult> {
  const label = `${o.name}-${o.backend.kind}`;
  const logDir = vmLogDir(label);
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-vm-'));
  const socketPath = path.join(sockDir, 'vub0.sock');
  const disk = createDiskFile(label, o.diskMiB, o.diskDir);
  const numQueues = o.numQueues ?? 2;
  let backend: BackendHandle | undefined;
  // Restarts still starting a back-end when the case ends: stopped in `finally` too.
  const pendingStarts = new Set<Promise<BackendHandle>>();
  try {
    o.prepareDisk?.(disk.path);
    const startOpts = {
      socketPath,
      file: disk.path,
      numQueues,
      readOnly: o.readOnly ?? false,
      logPath: path.join(logDir, 'backend.log'),
      ...(o.backendArgs ? { extraArgs: o.backendArgs } : {}),
    };
    backend = await o.backend.start(startOpts);
    let restarting = false;
    let finished = false;
    const ctl: BackendControl = {
      current: () => backend!,
      socketPath,
      diskPath: disk.path,
      restarts: [],
      restart: async (signal) => {
        if (restarting) throw new Error('a back-end restart is already under way');
        if (finished) throw new Error('the case is over');
        restarting = true;
        try {
          const old = backend!;
          const signalWallMs = Date.now();
          const signalAt = performance.now();
          old.signal(signal);
          const exitedInTime = await Promise.race([old.exited.then(() => true), sleep(10_000).then(() => false)]);
          if (!exitedInTime) {
            old.kill9();
            await old.exited;
            throw new Error(`the ${old.kind} back-end did not exit within 10 s of ${signal}`);
          }
          const exitedAt = performance.now();
          const p = o.backend.start({ ...startOpts, socketPollMs: 5 });
          pendingStarts.add(p);
          const spawnedAt = performance.now();
          try {
            backend = await p;
          } finally {
            pendingStarts.delete(p);
          }
          const timing: RestartTiming = { signal, signalAt, exitedAt, spawnedAt, socketReadyAt: performance.now(), signalWallMs };
          ctl.restarts.push(timing);
          return timing;
        } finally {
          restarting = false;
        }
      },
    };
    const files: Record<string, string> = {};
    for (const f of o.files ?? []) files[f] = readJob(f);
    let result: GuestResult;
    const onLine = o.onLine;
    try {
      result = await runGuest({
        name: label,
        job: composeJob(readJob(o.script), files, o.env ?? {}),
        disks: [{ socketPath, numQueues, ...(o.reconnect ? { reconnect: true } : {}) }],
        vcpus: o.vcpus ?? 1,
        ...(o.bootTimeoutMs !== undefined ? { bootTimeoutMs: o.bootTimeoutMs } : {}),
        ...(o.jobTimeoutMs !== undefined ? { jobTimeoutMs: o.jobTimeoutMs } : {}),
        ...(onLine ? { onLine: (line: string) => onLine(line, ctl) } : {}),
        abortIf: () => {
          if (restarting) return undefined;
          const b = backend!;
          const st = b.exitStatus();
          return st === undefined ? undefined : `the ${b.kind} back-end exited (${st})`;
        },
      });
    } catch (err) {
      const b = backend;
      throw new Error(`${(err as Error).message}\n--- ${b.kind} back-end log tail (${b.logPath}) ---\n${b.logTail()}`);
    } finally {
      finished = true;
    }
    // A restart that was still under way when the guest finished: let it settle (bounded).
    for (let i = 0; restarting && i < 300; i++) await sleep(50);
    const b = backend;
    await o.beforeStop?.(ctl);
    const diedDuringRun = b.exitStatus();
    await b.stop();
    const backendLog = b.logTail(40);
    t.log(`${label}: accel=${result.accel} boot=${(result.bootMs / 1000).toFixed(1)}s total=${(result.totalMs / 1000).toFixed(1)}s rc=${result.rc} logs=${result.logDir}`);
    if (diedDuringRun !== undefined) {
      throw new Error(`the ${b.kind} back-end exited during the run (${diedDuringRun}); log:\n${backendLog}`);
    }
    o.afterGuest?.(disk.path, result);
    return { ...result, backendKind: b.kind, backendLog };
  } finally {
    for (const p of pendingStarts) await p.then((h) => h.stop(), () => undefined);
    await backend?.stop();
    disk.remove();
    fs.rmSync(sockDir, { recursive: true, force: true });
  }
}

/** A readable failure report for a guest result. */
export function describe(r: VmCaseResult): string {
  return [
    `job rc=${r.rc} (accel ${r.accel}, logs ${r.logDir})`,
    r.failures.length ? `guest failures: ${r.failures.join(' | ')}` : '',
    Object.keys(r.fioJsonErrors).length ? `unparsable fio JSON: ${JSON.stringify(r.fioJsonErrors)}` : '',
    r.dmesg.length ? `--- guest dmesg tail ---\n${r.dmesg.slice(-25).join('\n')}` : '',
    `--- console tail ---\n${r.tail(30)}`,
    `--- ${r.backendKind} back-end log tail ---\n${r.backendLog}`,
  ].filter(Boolean).join('\n');
}

interface FioSide {
  io_bytes?: number;
  total_ios?: number;
  iops?: number;
}
interface FioJob {
  jobname?: string;
  error?: number;
  read?: FioSide;
  write?: FioSide;
}

/** The jobs array of a fio JSON output (empty if absent). */
export function fioJobs(json: unknown): FioJob[] {
  const jobs = (json as { jobs?: unknown } | undefined)?.jobs;
  return Array.isArray(jobs) ? (jobs as FioJob[]) : [];
}

/**
 * Asserts the job exited 0 and that each named fio run produced JSON whose every job has
 * error=0, wrote data and (verify) read all of it back.
 */
export function assertJobPassed(t: ExecutionContext, r: VmCaseResult, fioNames: string[] = [], opts: { verify?: boolean } = {}): void {
  if (r.rc !== 0) {
    t.fail(`guest job failed\n${describe(r)}`);
    return;
  }
  t.pass('guest job exited 0');
  for (const name of fioNames) {
    const json = r.fioJson[name];
    if (json === undefined) {
      t.fail(`fio run "${name}" produced no JSON\n${describe(r)}`);
      continue;
    }
    const jobs = fioJobs(json);
    t.true(jobs.length > 0, `fio run "${name}" reported no jobs\n${describe(r)}`);
    for (const j of jobs) {
      t.is(j.error ?? -1, 0, `fio job ${name}/${j.jobname ?? '?'} error=${j.error}\n${describe(r)}`);
      const w = j.write?.io_bytes ?? 0;
      t.true(w > 0, `fio job ${name}/${j.jobname ?? '?'} wrote nothing`);
      if (opts.verify) {
        const rd = j.read?.io_bytes ?? 0;
        t.true(rd >= w, `fio job ${name}/${j.jobname ?? '?'} verified ${rd} of ${w} bytes written`);
      }
    }
  }
}
