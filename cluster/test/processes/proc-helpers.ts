/**
 * Helpers of the real-process cluster tests (cluster-processes, osd-faults): the `strata`
 * entry point, free TCP ports, daemon children with their logs in the test dir, a hard kill,
 * the CLI as a bounded child process, and bounded polling.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../../src/common/daemon-node-flags.js';

const repoRoot = join(fileURLToPath(import.meta.url), '../../../../..');
/** The built `strata` entry point. */
export const MAIN = join(repoRoot, 'dist/backend/src/main.js');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** `strata` daemons started by one test file; each logs (stdout + stderr) to `dir/logName`. */
export class Daemons {
  /** The children still running (teardown kills them). */
  readonly children = new Set<ChildProcess>();

  constructor(private readonly dir: string) {}

  spawn(args: string[], logName: string): ChildProcess {
    const fd = openSync(join(this.dir, logName), 'a');
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, MAIN, ...args], { stdio: ['ignore', fd, fd] });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }
}

/** SIGKILL, resolved once the child exited (at once if it already did). */
export function killHard(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs the CLI as a process (bounded by its own --timeout-ms and a hard 15 s kill). */
export function runCli(args: string[], o: { monPort: number; keyring: string; name: string }): Promise<CliResult> {
  const full = [MAIN, ...args, '--mon', `127.0.0.1:${o.monPort}`, '--keyring', o.keyring, '--name', o.name, '--timeout-ms', '4000'];
  return new Promise((resolve) => {
    execFile(process.execPath, full, { timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 99;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls `fn` every `pollMs` until it returns true; fails loudly after `timeoutMs`. Returns the wait in ms. */
export async function until(what: string, timeoutMs: number, fn: () => boolean | Promise<boolean>, pollMs: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}
