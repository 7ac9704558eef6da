// Boots one VM-test guest, runs one job script in it and collects the result.
//
// runGuest() writes the job to a file passed as fw_cfg opt/strata/job, starts QEMU (wrapped in
// coreutils `timeout` in its own process group, so a stuck QEMU dies even if this process is
// killed), streams the serial console into a SerialConsole (and .cache/vm-logs/<name>/console.log),
// waits — bounded — for STRATA-BEGIN (boot) and STRATA-RESULT (job), and always kills QEMU at the
// end. Timeouts and early QEMU exits throw a ConsoleError carrying the last console lines; a job
// that ran to completion returns { rc, output, fioJson, kv, ... } for the case to assert on.
//
// Only STRATA_VM_PARALLEL guests (default 1) run at a time across all ava worker processes: TCG
// guests are busy host threads, and on a 2-core machine two of them at once make timings erratic.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildQemuArgs, guestImage, QEMU_BINARY, resolveAccel, type Accel, type VhostUserDisk } from './qemu.js';
import { ConsoleError, MARKER_BEGIN, MARKER_RESULT, parseMarkers, SerialConsole } from './serial.js';
import { acquireSlot, cacheDir, killTree, onProcessExit, sleep } from './util.js';

export interface RunGuestOptions {
  /** Used for the log directory .cache/vm-logs/<name>/. */
  name: string;
  /** Shell script run by the guest's init under `sh -e` (helpers strata_fio, strata_kv, ...). */
  job: string;
  disks: VhostUserDisk[];
  vcpus?: number;
  memMiB?: number;
  /** From QEMU start to STRATA-BEGIN. Default 90 s. */
  bootTimeoutMs?: number;
  /** From STRATA-BEGIN to STRATA-RESULT. Default 180 s. */
  jobTimeoutMs?: number;
  /** Checked every 500 ms while the guest runs; a returned string aborts the run with that reason. */
  abortIf?: () => string | undefined;
  /** Called with each console line (e.g. to act on STRATA-STEP markers). */
  onLine?: (line: string) => void;
  accel?: Accel;
}

export interface GuestResult {
  /** The job's exit status from STRATA-RESULT (124: the guest's watchdog fired). */
  rc: number;
  /** The whole console text (CR stripped, escapes removed). */
  output: string;
  /** fio JSON outputs by the name given to strata_fio. */
  fioJson: Record<string, unknown>;
  /** Names whose JSON did not parse, with the parse error. */
  fioJsonErrors: Record<string, string>;
  kv: Record<string, string>;
  steps: string[];
  failures: string[];
  dmesg: string[];
  kernel: string | undefined;
  accel: Accel;
  bootMs: number;
  totalMs: number;
  logDir: string;
  /** The last console lines, for failure messages. */
  tail(lines?: number): string;
}

export function vmLogDir(name: string): string {
  const dir = cacheDir('vm-logs', name.replace(/[^A-Za-z0-9._-]+/g, '_'));
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  return dir;
}

export async function runGuest(o: RunGuestOptions): Promise<GuestResult> {
  const image = guestImage();
  const accel = o.accel ?? (await resolveAccel());
  const bootTimeoutMs = o.bootTimeoutMs ?? 90_000;
  const jobTimeoutMs = o.jobTimeoutMs ?? 180_000;
  const logDir = cacheDir('vm-logs', o.name.replace(/[^A-Za-z0-9._-]+/g, '_'));
  const jobFile = path.join(logDir, 'job.sh');
  fs.writeFileSync(jobFile, o.job);

  // The guest's own watchdog fires a little before ours, so that the console shows its dmesg.
  const guestWatchdogS = Math.max(10, Math.round((jobTimeoutMs - 5_000) / 1000));
  const args = buildQemuArgs({
    accel,
    vcpus: o.vcpus ?? 1,
    memMiB: o.memMiB ?? 1024,
    kernel: image.kernel,
    initrd: image.initrd,
    disks: o.disks,
    jobFile,
    append: [`strata.timeout=${guestWatchdogS}`],
  });
  const hardLimitS = Math.ceil((bootTimeoutMs + jobTimeoutMs) / 1000) + 30;

  const slotWaitMs = Number(process.env['STRATA_VM_SLOT_WAIT_MS'] ?? 900_000);
  const release = await acquireSlot('vm', Math.max(1, Number(process.env['STRATA_VM_PARALLEL'] ?? 1)), slotWaitMs);
  const started = Date.now();
  const con = new SerialConsole();
  const consoleLog = fs.createWriteStream(path.join(logDir, 'console.log'));
  const stderrLog = path.join(logDir, 'qemu-stderr.log');
  fs.writeFileSync(path.join(logDir, 'qemu-cmdline.txt'), [QEMU_BINARY, ...args].map((a) => (/[\s"']/.test(a) ? `'${a}'` : a)).join(' ') + '\n');
  let stderr = '';
  let exitStatus: string | undefined;
  const child = spawn('timeout', ['-k', '5', String(hardLimitS), QEMU_BINARY, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const unhook = onProcessExit(() => child.pid !== undefined && killTree(child.pid, 'SIGKILL'));
  const exited = new Promise<void>((resolve) => {
    child.on('close', (code, signal) => {
      exitStatus = signal ? `killed by ${signal}` : code === 124 ? `hard time limit ${hardLimitS} s` : `exit code ${code}`;
      con.end(`qemu ${exitStatus}${stderr.trim() ? `; stderr: ${stderr.trim().slice(-800)}` : ''}`);
      resolve();
    });
    child.on('error', (err) => {
      exitStatus = `spawn error: ${err.message}`;
      con.end(exitStatus);
      resolve();
    });
  });
  child.stdout.on('data', (b: Buffer) => {
    consoleLog.write(b);
    con.push(b);
  });
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    fs.appendFileSync(stderrLog, b);
  });
  if (o.onLine) con.onLine(o.onLine);

  let abortTimer: NodeJS.Timeout | undefined;
  const aborted = new Promise<never>((_, reject) => {
    if (!o.abortIf) return;
    const check = o.abortIf;
    abortTimer = setInterval(() => {
      const reason = check();
      if (reason !== undefined) {
        clearInterval(abortTimer);
        reject(new ConsoleError(`guest run aborted: ${reason}`, con.tail()));
      }
    }, 500);
  });
  aborted.catch(() => undefined);

  let bootMs = 0;
  try {
    await Promise.race([con.waitFor(MARKER_BEGIN, bootTimeoutMs, `the guest to boot (STRATA-BEGIN, ${accel})`), aborted]);
    bootMs = Date.now() - started;
    await Promise.race([con.waitFor(MARKER_RESULT, jobTimeoutMs + 15_000, 'the job to finish (STRATA-RESULT)'), aborted]);
    // The guest powers off right after STRATA-RESULT; give QEMU a moment to exit by itself.
    await Promise.race([exited, sleep(15_000)]);
  } catch (err) {
    if (err instanceof ConsoleError) {
      throw new ConsoleError(`${err.message.split('\n')[0]} [logs: ${logDir}]`, err.consoleTail);
    }
    throw err;
  } finally {
    if (abortTimer) clearInterval(abortTimer);
    if (exitStatus === undefined && child.pid !== undefined) {
      killTree(child.pid, 'SIGKILL');
      await Promise.race([exited, sleep(5_000)]);
    }
    unhook();
    consoleLog.end();
    release();
  }

  const lines = con.allLines();
  const m = parseMarkers(lines);
  const fioJson: Record<string, unknown> = {};
  const fioJsonErrors: Record<string, string> = {};
  for (const [name, text] of Object.entries(m.jsonText)) {
    try {
      fioJson[name] = JSON.parse(extractJson(text));
    } catch (err) {
      fioJsonErrors[name] = (err as Error).message;
    }
  }
  return {
    rc: m.rc ?? -1,
    output: con.text(),
    fioJson,
    fioJsonErrors,
    kv: m.kv,
    steps: m.steps,
    failures: m.failures,
    dmesg: m.dmesg,
    kernel: m.kernel,
    accel,
    bootMs,
    totalMs: Date.now() - started,
    logDir,
    tail: (n = 40) => consoleTailWithoutDmesg(lines, n),
  };
}

/** The last console lines, leaving out the dmesg block (reported separately). */
function consoleTailWithoutDmesg(lines: readonly string[], n: number): string {
  const kept: string[] = [];
  let inDmesg = false;
  for (const l of lines) {
    if (/STRATA-DMESG-BEGIN/.test(l)) inDmesg = true;
    else if (/STRATA-DMESG-END/.test(l)) inDmesg = false;
    else if (!inDmesg) kept.push(l);
  }
  return kept.slice(-n).join('\n');
}

/** fio may print warnings before its JSON object; keep from the first "{" to the last "}". */
function extractJson(text: string): string {
  const a = text.indexOf('{');
  const b = text.lastIndexOf('}');
  if (a < 0 || b < a) throw new Error('no JSON object in the output');
  return text.slice(a, b + 1);
}

/** Builds a job script: files written into the guest's /tmp (heredocs), then the script body. */
export function composeJob(body: string, files: Record<string, string> = {}, env: Record<string, string | number> = {}): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`bad env name ${k}`);
    parts.push(`${k}='${String(v).replace(/'/g, `'\\''`)}'`);
    parts.push(`export ${k}`);
  }
  for (const [name, content] of Object.entries(files)) {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`bad guest file name ${name}`);
    if (content.includes('\nSTRATA_EOF\n')) throw new Error(`${name} contains the heredoc terminator`);
    parts.push(`cat > /tmp/${name} <<'STRATA_EOF'\n${content.replace(/\n?$/, '\n')}STRATA_EOF`);
  }
  parts.push(body);
  return parts.join('\n') + '\n';
}
