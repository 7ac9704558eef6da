// vhost-user-blk back-ends for VM tests: qemu-storage-daemon (the reference) and strata's own
// daemon (`node dist/backend/src/main.js vhost ...`), each serving a raw file (normally on
// /dev/shm). Each start function spawns the process with its stdout/stderr in a log file, waits
// (bounded) for the listening socket and returns a handle whose stop() ends it (SIGTERM, then
// SIGKILL after 5 s). Cases take a BackendFactory (fileBackend('strata') / fileBackend('qsd')) so
// that each case runs unchanged against either back-end.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onProcessExit, repoRoot, sleep } from './util.js';
import { DAEMON_NODE_FLAGS } from '../../cluster/src/common/daemon-node-flags.js';

export type BackendKind = 'strata' | 'qsd';

export interface BackendHandle {
  kind: BackendKind;
  pid: number;
  socketPath: string;
  logPath: string;
  /** SIGTERM, wait up to 5 s, then SIGKILL. Resolves once the process has exited. */
  stop(): Promise<void>;
  kill9(): void;
  /** Sends a signal (no wait); see `exited`. */
  signal(sig: NodeJS.Signals): void;
  /** Resolves once the process has exited. */
  exited: Promise<void>;
  /** Exit code/signal once exited, else undefined. */
  exitStatus(): string | undefined;
  logTail(lines?: number): string;
}

export interface BackendStartOptions {
  socketPath: string;
  file: string;
  numQueues: number;
  readOnly: boolean;
  logPath: string;
  extraArgs?: string[];
  /** How long to wait for the socket to appear (default 15 s). */
  startTimeoutMs?: number;
  /** How often to look for the socket while waiting (default 50 ms; restarts use less). */
  socketPollMs?: number;
}

const SOCKET_WAIT_MS = 15_000;

function tailOf(file: string, lines: number): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function spawnAndWaitForSocket(
  kind: BackendKind,
  cmd: string,
  args: string[],
  o: { socketPath: string; logPath: string; startTimeoutMs?: number; socketPollMs?: number },
): Promise<BackendHandle> {
  fs.rmSync(o.socketPath, { force: true });
  fs.mkdirSync(path.dirname(o.logPath), { recursive: true });
  const logFd = fs.openSync(o.logPath, 'a');
  fs.writeSync(logFd, `# ${cmd} ${args.join(' ')}\n`);
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', logFd, logFd], cwd: repoRoot() });
  fs.closeSync(logFd);
  let status: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      status = signal ? `killed by ${signal}` : `exit code ${code}`;
      resolve();
    });
    child.on('error', (err) => {
      status = `spawn error: ${err.message}`;
      resolve();
    });
  });
  const unhook = onProcessExit(() => {
    if (status === undefined) child.kill('SIGKILL');
  });
  const handle: BackendHandle = {
    kind,
    pid: child.pid ?? -1,
    socketPath: o.socketPath,
    logPath: o.logPath,
    exitStatus: () => status,
    logTail: (n = 30) => tailOf(o.logPath, n),
    kill9: () => {
      if (status === undefined) child.kill('SIGKILL');
    },
    signal: (sig) => {
      if (status === undefined) child.kill(sig);
    },
    exited,
    stop: async () => {
      if (status === undefined) {
        child.kill('SIGTERM');
        const t = setTimeout(() => {
          if (status === undefined) child.kill('SIGKILL');
        }, 5_000);
        await exited;
        clearTimeout(t);
      }
      unhook();
      fs.rmSync(o.socketPath, { force: true });
    },
  };
  const deadline = Date.now() + (o.startTimeoutMs ?? SOCKET_WAIT_MS);
  for (;;) {
    const st = fs.statSync(o.socketPath, { throwIfNoEntry: false });
    if (st?.isSocket()) return handle;
    if (status !== undefined) {
      await handle.stop();
      throw new Error(`${kind} back-end exited before creating ${o.socketPath} (${status}); log ${o.logPath}:\n${handle.logTail()}`);
    }
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`${kind} back-end did not create ${o.socketPath} within ${Math.round((o.startTimeoutMs ?? SOCKET_WAIT_MS) / 1000)} s; log ${o.logPath}:\n${handle.logTail()}`);
    }
    await sleep(o.socketPollMs ?? 50);
  }
}

export const QSD_BINARY = process.env['STRATA_QSD'] ?? 'qemu-storage-daemon';

/** qemu-storage-daemon exporting `file` (raw) as vhost-user-blk on `socketPath`. */
export function startQsd(o: Omit<BackendStartOptions, 'readOnly'> & { writable: boolean }): Promise<BackendHandle> {
  const args = [
    '--blockdev', `driver=file,node-name=file0,filename=${o.file.replace(/,/g, ',,')},cache.direct=off,aio=threads,discard=unmap`,
    '--blockdev', `driver=raw,node-name=disk0,file=file0,discard=unmap${o.writable ? '' : ',read-only=on'}`,
    '--export', `type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=${o.socketPath.replace(/,/g, ',,')},` +
      `writable=${o.writable ? 'on' : 'off'},num-queues=${o.numQueues}`,
    ...(o.extraArgs ?? []),
  ];
  return spawnAndWaitForSocket('qsd', QSD_BINARY, args, o);
}

/** The path of strata's compiled CLI (dist/backend/src/main.js). */
export function strataMain(): string {
  return path.join(repoRoot(), 'dist', 'backend', 'src', 'main.js');
}

/** strata's daemon: `node dist/backend/src/main.js vhost --socket-path S --file F --num-queues N`. */
export function startStrata(o: BackendStartOptions): Promise<BackendHandle> {
  const main = strataMain();
  if (!fs.existsSync(main)) {
    return Promise.reject(new Error(`strata back-end ${main} does not exist: build it with \`npx tsc -p tsconfig.json\``));
  }
  const args = [
    ...DAEMON_NODE_FLAGS, main, 'vhost',
    '--socket-path', o.socketPath,
    '--file', o.file,
    '--num-queues', String(o.numQueues),
    ...(o.readOnly ? ['--read-only'] : []),
    '--log-level', process.env['STRATA_VM_BACKEND_LOG_LEVEL'] ?? 'warn',
    ...(o.extraArgs ?? []),
  ];
  return spawnAndWaitForSocket('strata', process.execPath, args, o);
}

export interface BackendFactory {
  kind: BackendKind;
  start(o: BackendStartOptions): Promise<BackendHandle>;
}

/** A back-end serving a plain file: strata's daemon or qemu-storage-daemon. */
export function fileBackend(kind: BackendKind): BackendFactory {
  return {
    kind,
    start: (o) => (kind === 'qsd' ? startQsd({ ...o, writable: !o.readOnly }) : startStrata(o)),
  };
}

/** Back-ends the case files run against: env STRATA_VM_BACKENDS (comma list), default "strata". */
export function backendsUnderTest(): BackendKind[] {
  const raw = process.env['STRATA_VM_BACKENDS'] ?? 'strata';
  const kinds = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of kinds) {
    if (k !== 'strata' && k !== 'qsd') throw new Error(`STRATA_VM_BACKENDS: unknown back-end "${k}" (strata, qsd)`);
  }
  return kinds as BackendKind[];
}

export interface DiskFile {
  path: string;
  sizeBytes: number;
  remove(): void;
}

/** A fresh sparse file of `sizeMiB` in `dir` (default /dev/shm), removed by remove(). */
export function createDiskFile(name: string, sizeMiB: number, dir = process.env['STRATA_VM_DISK_DIR'] ?? '/dev/shm'): DiskFile {
  const file = path.join(dir, `strata-vm-${name}-${process.pid}-${Date.now().toString(36)}.img`);
  const sizeBytes = sizeMiB * 1024 * 1024;
  const fd = fs.openSync(file, 'wx', 0o600);
  fs.ftruncateSync(fd, sizeBytes);
  fs.closeSync(fd);
  const unhook = onProcessExit(() => fs.rmSync(file, { force: true }));
  return {
    path: file,
    sizeBytes,
    remove: () => {
      fs.rmSync(file, { force: true });
      unhook();
    },
  };
}
