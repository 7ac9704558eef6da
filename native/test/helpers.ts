// Shared helpers for the native tests: fd flags and counts from /proc, and running a snippet
// in a fresh node process (for GC, uncaught exceptions and worker teardown).
import { spawn } from 'node:child_process';
import fs from 'node:fs';

/** O_CLOEXEC as reported in /proc/self/fdinfo (octal 02000000); fs.constants lacks it. */
export const O_CLOEXEC = 0o2000000;

/** The open flags of `fd` (the `flags:` line of /proc/self/fdinfo/fd, octal). */
export function fdFlags(fd: number): number {
  const text = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const match = /^flags:\s+([0-7]+)$/m.exec(text);
  if (match?.[1] === undefined) throw new Error(`no flags line in fdinfo of ${fd}`);
  return parseInt(match[1], 8);
}

/** How many fds this process has open. */
export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Whether `fd` is open in this process. */
export function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** file:// URL of the built native/index.js, for child processes to import. */
export const indexUrl = new URL('../index.js', import.meta.url).href;

/**
 * Runs an ES module snippet in a new node process; `N` is bound to the native module.
 * Asynchronous on purpose: a spawnSync would stall the other tests' event loop.
 */
export function runChild(
  body: string,
  nodeArgs: string[] = [],
): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> {
  const source = `import * as N from ${JSON.stringify(indexUrl)};\n${body}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, '--input-type=module', '-e', source], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/**
 * Resolves once `condition()` holds, checking every few ms; rejects after `timeoutMs`. Tests
 * wait on conditions, not on fixed sleeps: libuv runs due timers before polling, so a sleep
 * can end before a readiness event it was meant to wait for when the loop is busy.
 */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
