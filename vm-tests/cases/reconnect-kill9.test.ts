// Back-end restarts under guest I/O (issue #3, "reconnect without losing I/O").
//
// A 2-vCPU guest drives both queues of a 2-queue vhost-user-blk disk (QEMU chardev
// `reconnect=1`) with fio: 4 KiB random writes at QD32 from two processes pinned one per vCPU,
// then a full crc32c read-back of every block (verify_fatal, do_verify). While the write phase
// runs the host restarts the back-end on the same socket:
//   - kill -9: three times, 4 s after fio starts and then 5 s after each restart, the daemon is
//     SIGKILLed and a new one is spawned as soon as the old one has exited (a few ms). QEMU keeps
//     the guest's requests; the new daemon gets the inflight region (INFLIGHT_SHMFD) back and
//     resubmits what the dead one had not completed.
//   - SIGTERM (graceful, upgrades): once; the daemon drains, exits 0, a new one starts.
// Pass: fio exits 0 with error=0 in every JSON job (verify_fatal: a single bad block fails
// it), wrote and read back every block, the guest kernel logged no block I/O error, every
// restart hit a visible stall (so I/O really was in flight) and I/O resumed after each.
//
// How the stall is measured (guest-side, no clock sync needed): fio logs every completion with
// its time in msec since the job started (write_lat_log, log_avg_msec=0), and the job script
// reports every gap >= 100 ms between consecutive completions of each fio process. At QD32 the
// process completes an I/O every few ms, so a gap starts at the last completion before the
// kill (no later than the kill) and ends at the first completion after the new daemon took
// over. For SIGKILL the gap length is therefore an upper bound of "kill -> I/O resumed" (over
// by at most one inter-completion interval, ~ms); for SIGTERM the old daemon still completes
// its in-flight requests after the signal, so the gap starts up to the drain time (tens of ms)
// after it. "restart -> I/O resumed" = gap - (signal -> new socket ready), the latter timed on
// the host; guest (TCG virtual clock) and host clocks agree to within a few tens of ms. A gap is attributed to a restart when it starts within
// [-2.5 s, +0.5 s] of the kill's offset from the fio-start marker (fio starts its clock a little
// after printing it); restarts are >= 5 s apart. The daemon's own log gives the time QEMU
// reconnected ("front-end connected") and how many requests it resubmitted
// ("resubmitting requests in flight before the reconnect", field `requests`, per queue).
//
// QEMU 7.2 retries a lost vhost-user connection only once per `reconnect=1` second, so restart
// -> resumed is bounded below by where the restart falls in that 1 s cycle: typically 0.3-1 s,
// whatever the daemon does. The issue's goal (< 500 ms) is printed, not asserted.
//
// To make in-flight requests likely at each kill, the disk is a file under /var/tmp (a real
// disk, not /dev/shm) and strata runs with --writethrough (each write waits for fdatasync).
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backendsUnderTest, fileBackend, type BackendKind } from '../harness/backends.js';
import { sleep } from '../harness/util.js';
import { assertJobPassed, CASE_TIMEOUT_MS, describe, runVmCase, type RestartTiming } from '../harness/vm-case.js';

const FIRST_RESTART_MS = 4_000;
const RESTART_SPACING_MS = 5_000;
/** Gaps are looked for in [kill - before, kill + after] (msec on fio's clock). */
const MATCH_BEFORE_MS = 2_500;
const MATCH_AFTER_MS = 500;
const GOAL_RESTART_TO_RESUME_MS = 500;
/** A stall longer than this means the reconnect did not really work. */
const MAX_STALL_MS = 10_000;

interface Gap {
  job: string;
  start: number;
  end: number;
}

interface DaemonRun {
  connectedWallMs: number[];
  resubmitted: number;
  exitedCleanly: boolean;
}

/**
 * Splits the back-end log (one "# cmd" header per process) into per-process facts. Returns
 * undefined when the log also holds processes that did not serve `socketPath`: another run of
 * the same case elsewhere on the machine (same checkout) shares the log directory, and its
 * lines interleave with ours, so per-process facts cannot be attributed.
 */
function parseDaemonLog(text: string, socketPath: string): DaemonRun[] | undefined {
  const runs: DaemonRun[] = [];
  let cur: DaemonRun | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# ')) {
      if (!line.includes(socketPath)) return undefined;
      cur = { connectedWallMs: [], resubmitted: 0, exitedCleanly: false };
      runs.push(cur);
      continue;
    }
    if (!cur || !line.startsWith('{')) continue;
    let rec: { time?: number; msg?: string; requests?: number };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      continue;
    }
    if (rec.msg === 'front-end connected' && rec.time !== undefined) cur.connectedWallMs.push(rec.time);
    if (rec.msg === 'resubmitting requests in flight before the reconnect') cur.resubmitted += rec.requests ?? 0;
    if (rec.msg === 'stopped') cur.exitedCleanly = true;
  }
  return runs;
}

function gapsFrom(kv: Record<string, string>): Gap[] {
  const gaps: Gap[] = [];
  for (const [k, v] of Object.entries(kv)) {
    const m = /^gap\.(\d+)\.\d+$/.exec(k);
    if (!m) continue;
    const [start, end] = v.split(',').map(Number);
    if (start !== undefined && end !== undefined && Number.isFinite(start) && Number.isFinite(end)) {
      gaps.push({ job: m[1] ?? '?', start, end });
    }
  }
  return gaps;
}

const ms = (n: number): string => `${Math.round(n)} ms`;

async function reconnectCase(t: ExecutionContext, kind: BackendKind, signal: 'SIGKILL' | 'SIGTERM', restarts: number, writeSeconds: number, minMiB: number): Promise<void> {
  t.timeout(CASE_TIMEOUT_MS);
  let fioStartAt: number | undefined;
  let fioEnded = false;
  let guestDone = false;
  const scheduleErrors: string[] = [];
  let schedule: Promise<void> | undefined;
  const name = signal === 'SIGKILL' ? 'reconnect-kill9' : 'reconnect-sigterm';
  let restartTimings: RestartTiming[] = [];
  let socketPath = '';
  const r = await runVmCase(t, {
    name,
    backend: fileBackend(kind),
    diskMiB: 1024,
    diskDir: '/var/tmp',
    numQueues: 2,
    vcpus: 2,
    reconnect: true,
    backendArgs: kind === 'strata' ? ['--writethrough', '--log-level', 'info'] : [],
    script: 'reconnect.sh',
    files: ['reconnect-verify.fio'],
    env: { WRITE_SECONDS: writeSeconds, REGION_MIB: 512, MIN_MIB: minMiB },
    jobTimeoutMs: 240_000,
    onLine: (line, ctl) => {
      if (/STRATA-STEP fio-end/.test(line)) fioEnded = true;
      if (/STRATA-RESULT/.test(line)) guestDone = true;
      if (!/STRATA-STEP fio-start/.test(line) || schedule) return;
      const t0 = performance.now();
      fioStartAt = t0;
      schedule = (async () => {
        let last = t0;
        for (let i = 0; i < restarts; i++) {
          const due = last + (i === 0 ? FIRST_RESTART_MS : RESTART_SPACING_MS);
          while (performance.now() < due && !fioEnded && !guestDone) await sleep(20);
          if (fioEnded || guestDone) {
            scheduleErrors.push(`fio finished before restart ${i + 1} of ${restarts} (raise WRITE_SECONDS / MIN_MIB)`);
            return;
          }
          try {
            const timing = await ctl.restart(signal);
            last = timing.socketReadyAt;
          } catch (err) {
            scheduleErrors.push(`restart ${i + 1}: ${(err as Error).message}`);
            return;
          }
        }
      })();
    },
    beforeStop: async (ctl) => {
      await schedule;
      restartTimings = ctl.restarts;
      socketPath = ctl.socketPath;
    },
  });
  await schedule;

  // Measure and print first, assert after: a failed assertion ends the test, and the figures
  // are what one needs to see when it fails.
  const gaps = gapsFrom(r.kv);
  const parsedRuns = parseDaemonLog(fs.readFileSync(path.join(r.logDir, 'backend.log'), 'utf8'), socketPath);
  const logShared = parsedRuns === undefined;
  const runs = parsedRuns ?? [];
  const lines: string[] = [
    `${name} (${kind}): guest ${r.kv['cpus']} vCPUs, ${r.kv['hw_queues']} queues, calibrated ${Math.round(Number(r.kv['calibration_write_iops']))} write IOPS, ` +
      `${r.kv['size_mib_per_job']} MiB per fio process; I/Os completed per process: ${r.kv['ios.1']}, ${r.kv['ios.2']}; ` +
      `max write latency ${r.kv['max_write_lat_ms.1']} / ${r.kv['max_write_lat_ms.2']} ms`,
  ];
  if (logShared) {
    lines.push(`  ${path.join(r.logDir, 'backend.log')} also holds another run's back-end (the same case running elsewhere in this checkout): ` +
      'daemon-log facts (reconnect time, resubmitted requests, clean exit) are not checked');
  }
  const perRestart: { stall: number; matched: number; killRel: number }[] = [];
  let worstKillToResume = 0;
  let worstRestartToResume = 0;
  restartTimings.forEach((rt, i) => {
    const killRel = rt.signalAt - (fioStartAt ?? 0);
    const matched = gaps.filter((g) => g.start >= killRel - MATCH_BEFORE_MS && g.start <= killRel + MATCH_AFTER_MS);
    const byJob = new Map<string, Gap>();
    for (const g of matched) {
      const prev = byJob.get(g.job);
      if (!prev || g.end - g.start > prev.end - prev.start) byJob.set(g.job, g);
    }
    const stall = Math.max(0, ...[...byJob.values()].map((g) => g.end - g.start));
    const ready = rt.socketReadyAt - rt.signalAt;
    const run = runs[i + 1];
    const connected = run?.connectedWallMs[0];
    const resumeAfterRestart = stall - ready;
    perRestart.push({ stall, matched: byJob.size, killRel });
    worstKillToResume = Math.max(worstKillToResume, stall);
    worstRestartToResume = Math.max(worstRestartToResume, resumeAfterRestart);
    lines.push(
      `  ${signal} #${i + 1} at fio+${(killRel / 1000).toFixed(1)} s: old daemon exited after ${ms(rt.exitedAt - rt.signalAt)}, ` +
        `new socket ready ${ms(ready)} after the signal, QEMU reconnected ${connected === undefined ? '?' : ms(connected - rt.signalWallMs)} after it; ` +
        `stall (kill -> I/O resumed) ${ms(stall)} [per fio process: ${[...byJob.entries()].map(([j, g]) => `${j}: ${g.end - g.start}`).join(', ') || 'none'}], ` +
        `restart -> I/O resumed ${ms(resumeAfterRestart)}; requests resubmitted by the new daemon: ${kind !== 'strata' ? 'n/a' : run ? run.resubmitted : '?'}`,
    );
  });
  const resubmittedTotal = runs.slice(1).reduce((s, x) => s + x.resubmitted, 0);
  lines.push(
    `  longest stall: kill -> I/O resumed ${ms(worstKillToResume)}, restart (socket ready) -> I/O resumed ${ms(worstRestartToResume)} ` +
      `(goal < ${GOAL_RESTART_TO_RESUME_MS} ms: ${worstRestartToResume < GOAL_RESTART_TO_RESUME_MS ? 'met' : 'not met'}; QEMU 7.2 retries the ` +
      `connection only once per reconnect=1 second, which bounds restart -> resumed from below by where the restart falls in that cycle)`,
    `  requests resubmitted after restarts: ${kind !== 'strata' ? 'n/a (qsd)' : logShared ? '? (log shared with another run)' : resubmittedTotal}`,
  );
  for (const l of lines) t.log(l);
  console.log(lines.join('\n'));

  assertJobPassed(t, r, ['verify'], { verify: true });
  t.deepEqual(scheduleErrors, [], `restart schedule\n${describe(r)}`);
  t.is(r.kv['hw_queues'], '2', `the guest should see 2 hardware queues\n${describe(r)}`);
  t.is(r.kv['dmesg_io_errors'], '0', `guest kernel block errors\n${describe(r)}`);
  t.is(restartTimings.length, restarts, `expected ${restarts} restarts, did ${restartTimings.length}`);
  t.truthy(fioStartAt);
  if (!logShared) t.is(runs.length, restarts + 1, `expected ${restarts + 1} back-end processes in the log for ${socketPath}`);
  perRestart.forEach((p, i) => {
    t.true(p.matched > 0, `restart ${i + 1} (fio+${ms(p.killRel)}): no I/O stall found in the guest's completion log, so no I/O was in flight or the log is wrong; gaps: ${JSON.stringify(gaps)}`);
    t.true(p.stall < MAX_STALL_MS, `restart ${i + 1}: I/O stalled ${ms(p.stall)}`);
    if (signal === 'SIGTERM' && kind === 'strata' && !logShared) {
      t.true(runs[i]?.exitedCleanly ?? false, `restart ${i + 1}: the daemon did not log "stopped" after SIGTERM`);
    }
  });
  if (signal === 'SIGKILL' && kind === 'strata' && !logShared) {
    t.true(resubmittedTotal > 0, `no request was in flight at any of the ${restarts} kills (nothing resubmitted); the case did not exercise INFLIGHT_SHMFD\n${describe(r)}`);
  }
}

for (const kind of backendsUnderTest()) {
  test(`kill -9 of the back-end three times during fio verify at QD32 over two queues loses no I/O (${kind})`, async (t) => {
    await reconnectCase(t, kind, 'SIGKILL', 3, 20, 160);
  });
  test(`SIGTERM restart of the back-end during fio verify loses no I/O (${kind})`, async (t) => {
    await reconnectCase(t, kind, 'SIGTERM', 1, 8, 64);
  });
}
