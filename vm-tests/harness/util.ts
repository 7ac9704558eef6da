// Small shared helpers for the VM-test harness: repository paths, a cross-process lock (so that
// concurrent ava worker processes do not boot more TCG guests than the machine can run
// steadily), and a process-exit hook that kills every child the harness started.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | undefined;

/** The repository root: the nearest ancestor of this file holding package.json. */
export function repoRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'vm-tests'))) {
      cachedRoot = dir;
      return dir;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('vm-tests: cannot find the repository root (package.json) above ' + import.meta.url);
    dir = up;
  }
}

export function cacheDir(...parts: string[]): string {
  const dir = path.join(repoRoot(), '.cache', ...parts);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes one of `slots` cross-process slots named `name` (directories under .cache/locks created
 * with mkdir, which is atomic; each holds the owner's pid so a crashed owner's slot is reclaimed).
 * Waits at most `timeoutMs`, then throws. Returns the release function.
 */
export async function acquireSlot(name: string, slots: number, timeoutMs: number): Promise<() => void> {
  const base = cacheDir('locks');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (let i = 0; i < slots; i++) {
      const dir = path.join(base, `${name}.${i}`);
      try {
        fs.mkdirSync(dir);
        fs.writeFileSync(path.join(dir, 'pid'), String(process.pid));
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          fs.rmSync(dir, { recursive: true, force: true });
        };
        onProcessExit(release);
        return release;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // Reclaim a slot whose owner died (or whose pid file never got written, after 10 s).
        let owner = NaN;
        try {
          owner = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'));
        } catch {
          /* not written yet */
        }
        const stale = Number.isFinite(owner) && owner > 0
          ? !pidAlive(owner)
          : Date.now() - fs.statSync(dir, { throwIfNoEntry: false })!.mtimeMs > 10_000;
        if (stale) fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`vm-tests: waited ${Math.round(timeoutMs / 1000)} s for a free "${name}" slot in ${base}`);
    }
    await sleep(200);
  }
}

const exitHooks = new Set<() => void>();
let hooksInstalled = false;

/** Registers a synchronous cleanup to run when the process exits or is terminated. */
export function onProcessExit(hook: () => void): () => void {
  exitHooks.add(hook);
  if (!hooksInstalled) {
    hooksInstalled = true;
    const runAll = (): void => {
      for (const h of [...exitHooks]) {
        try {
          h();
        } catch {
          /* best effort */
        }
      }
      exitHooks.clear();
    };
    process.on('exit', runAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        runAll();
        process.kill(process.pid, sig);
      });
    }
  }
  return () => exitHooks.delete(hook);
}

/** Kills a process group (or a single process when it has no group), ignoring ESRCH. */
export function killTree(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
    return;
  } catch {
    /* not a group leader */
  }
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}
