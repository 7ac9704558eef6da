// A local strata cluster for VM tests and the end-to-end benchmark: one monitor and N OSD
// processes on 127.0.0.1 (free ports picked at start), data in a temp directory, a pool with
// 3 replicas (failure domain osd: all OSDs share this machine), an image and a client key whose
// caps cover only that pool. `clusterBackend()` is a BackendFactory (vm-case.ts) that serves the
// image with `strata vhost --image`, so every case that runs on a file runs unchanged on a
// cluster image, including the back-end restart cases.
//
// The processes are spawned here (not through scripts/start-local-cluster.sh) so that the tests
// hold each OSD's real pid: kill -9, SIGSTOP/SIGCONT and restarts act on the OSD itself.
// Everything started is killed by `stop()` and, as a last resort, when the test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnAndWaitForSocket, strataMain, type BackendFactory, type BackendStartOptions } from './backends.js';
import { cacheDir, onProcessExit, sleep } from './util.js';
import { DAEMON_NODE_FLAGS } from '../../cluster/src/common/daemon-node-flags.js';

export interface ClusterProcess {
  name: string;
  readonly pid: number;
  /** Exit status once exited, else undefined. */
  exitStatus(): string | undefined;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM (then SIGKILL after 10 s); resolves once exited. */
  stop(): Promise<void>;
  /** Resolves once the current process has exited. */
  exited(): Promise<void>;
  /** Starts the same command again (after it exited). */
  restart(): void;
  logPath: string;
}

export interface LocalCluster {
  dir: string;
  monAddr: string;
  adminKeyring: string;
  mon: ClusterProcess;
  osds: ClusterProcess[];
  /** The OSDs' `--heartbeat-grace-ms` (and the monitor's `--osd-grace-ms`). */
  graceMs: number;
  /** Runs `strata ARGS` as client.admin; rejects on a non-zero exit. */
  admin(args: string[], timeoutMs?: number): Promise<string>;
  /** `strata status --json`. */
  status(): Promise<{ osds: { total: number; up: number; in: number }; pgStates?: Record<string, number>; health: string }>;
  /** Waits (bounded) until every OSD is up and every PG is active+clean. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Creates a client key with caps on `pool` only, written (0600) to a keyring file. */
  addClient(name: string, pool: string): Promise<string>;
  /** `strata image info --json` of POOL/NAME. */
  imageInfo(spec: string): Promise<{ usedBytes: number; sizeBytes: number; objectCount: number }>;
  stop(): Promise<void>;
}

export interface LocalClusterOptions {
  osds?: number;
  /** OSD heartbeat grace and monitor beacon grace (default 3000 ms). */
  graceMs?: number;
  /** Parent of the temp directory (default os.tmpdir()). */
  parentDir?: string;
  /** OSD/monitor log level (default warn). */
  logLevel?: string;
  /** Journal size of each OSD store in MiB (default 64). */
  journalMiB?: number;
}

/** `count` consecutive free TCP ports on 127.0.0.1 (probed by listening), from a random base. */
export async function freePorts(count: number): Promise<number> {
  const canListen = (port: number): Promise<boolean> => new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await canListen(p);
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports found on 127.0.0.1`);
}

function runCli(args: string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [strataMain(), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, sig) => {
      clearTimeout(t);
      resolve({ code: code ?? (sig ? 128 : -1), out, err: sig ? `${err}(killed by ${sig} after ${timeoutMs} ms)` : err });
    });
  });
}

function daemonProcess(name: string, args: string[], logPath: string): ClusterProcess {
  let child: ChildProcess;
  let status: string | undefined;
  let exited: Promise<void>;
  const launch = (): void => {
    status = undefined;
    const fd = fs.openSync(logPath, 'a');
    fs.writeSync(fd, `# ${new Date().toISOString()} node ${args.join(' ')}\n`);
    child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...args], { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    const c = child;
    exited = new Promise<void>((resolve) => {
      c.on('exit', (code, sig) => { status = sig ? `killed by ${sig}` : `exit code ${code}`; resolve(); });
      c.on('error', (e) => { status = `spawn error: ${e.message}`; resolve(); });
    });
  };
  launch();
  const unhook = onProcessExit(() => { if (status === undefined) child.kill('SIGKILL'); });
  return {
    name,
    logPath,
    get pid() { return child.pid ?? -1; },
    exitStatus: () => status,
    signal: (sig) => { if (status === undefined) child.kill(sig); },
    exited: () => exited,
    restart: () => {
      if (status === undefined) throw new Error(`${name} is still running`);
      launch();
    },
    stop: async () => {
      if (status === undefined) {
        child.kill('SIGCONT');
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      unhook();
    },
  };
}

/** Starts a monitor and `osds` OSDs in a fresh temp directory; pool `pool` is not created yet. */
export async function startLocalCluster(o: LocalClusterOptions = {}): Promise<LocalCluster> {
  const n = o.osds ?? 3;
  const graceMs = o.graceMs ?? 3000;
  const logLevel = o.logLevel ?? 'warn';
  const dir = fs.mkdtempSync(path.join(o.parentDir ?? os.tmpdir(), 'strata-cl-'));
  fs.chmodSync(dir, 0o700);
  const base = await freePorts(n + 12);
  const monAddr = `127.0.0.1:${base}`;
  const adminKeyring = path.join(dir, 'keyring');
  const env = { STRATA_MON: monAddr, STRATA_KEYRING: adminKeyring, STRATA_NAME: 'client.admin' };
  const main = strataMain();
  const procs: ClusterProcess[] = [];
  const stopAll = async (): Promise<void> => {
    for (const p of [...procs].reverse()) await p.stop();
  };
  try {
    const mk = await runCli(['mon', '--mkfs', '--data', path.join(dir, 'mon'), '--keyring', adminKeyring], env, 30_000);
    if (mk.code !== 0) throw new Error(`strata mon --mkfs failed: ${mk.err}${mk.out}`);
    const mon = daemonProcess('mon', [main, 'mon', '--data', path.join(dir, 'mon'), '--addr', monAddr, '--keyring', adminKeyring,
      '--osd-grace-ms', String(graceMs), '--log-level', logLevel], path.join(dir, 'mon.log'));
    procs.push(mon);
    const admin = async (args: string[], timeoutMs = 30_000): Promise<string> => {
      const r = await runCli(args, env, timeoutMs);
      if (r.code !== 0) throw new Error(`strata ${args.join(' ')} exited ${r.code}: ${r.err.trim()} ${r.out.trim()}`);
      return r.out;
    };
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await runCli(['status', '--timeout-ms', '1000'], env, 10_000);
      if (r.code === 0) break;
      if (mon.exitStatus() !== undefined || Date.now() > deadline) throw new Error(`the monitor did not answer at ${monAddr} (${mon.exitStatus() ?? 'timeout'}); log ${mon.logPath}`);
      await sleep(200);
    }
    const osds: ClusterProcess[] = [];
    for (let i = 0; i < n; i++) {
      const odir = path.join(dir, `osd.${i}`);
      fs.mkdirSync(odir, { recursive: true });
      const k = path.join(odir, 'keyring');
      await admin(['auth', 'add', `osd.${i}`, '--caps', 'mon=allow r', '-o', k]);
      const p = daemonProcess(`osd.${i}`, [main, 'osd', '--id', String(i), '--data', odir, '--addr', `127.0.0.1:${base + 11 + i}`, '--mon', monAddr,
        '--keyring', k, '--host', `host-${String.fromCharCode(97 + i)}`, '--heartbeat-grace-ms', String(graceMs), '--log-level', logLevel,
        ...(o.journalMiB === undefined ? [] : ['--journal-mib', String(o.journalMiB)])], path.join(dir, `osd.${i}.log`));
      procs.push(p);
      osds.push(p);
    }
    const cluster: LocalCluster = {
      dir, monAddr, adminKeyring, mon, osds, graceMs, admin,
      status: async () => JSON.parse(await admin(['status', '--json'])) as Awaited<ReturnType<LocalCluster['status']>>,
      waitHealthy: async (timeoutMs = 60_000) => {
        const until = Date.now() + timeoutMs;
        let last = '';
        for (;;) {
          try {
            const s = await cluster.status();
            last = JSON.stringify({ osds: s.osds, pgStates: s.pgStates });
            const states = Object.entries(s.pgStates ?? {});
            if (s.osds.up === n && states.length > 0 && states.every(([k]) => k === 'active+clean')) return;
          } catch (e) {
            last = (e as Error).message;
          }
          if (Date.now() > until) throw new Error(`cluster not healthy within ${timeoutMs} ms: ${last}`);
          await sleep(250);
        }
      },
      addClient: async (name, pool) => {
        const k = path.join(dir, `${name}.keyring`);
        await admin(['auth', 'add', name, '--caps', 'mon=profile rbd', `osd=allow rw pool=${pool}`, '-o', k]);
        fs.chmodSync(k, 0o600);
        return k;
      },
      imageInfo: async (spec) => JSON.parse(await admin(['image', 'info', spec, '--json'])) as { usedBytes: number; sizeBytes: number; objectCount: number },
      stop: async () => {
        await stopAll();
        // Keep the daemons' logs for post-mortems (.cache/vm-logs/cluster-logs/<dir name>/).
        try {
          const keep = cacheDir('vm-logs', 'cluster-logs', path.basename(dir));
          for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.log'))) fs.copyFileSync(path.join(dir, f), path.join(keep, f));
        } catch { /* best effort */ }
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
    return cluster;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export interface ClusterImage {
  cluster: LocalCluster;
  pool: string;
  image: string;
  spec: string;
  client: string;
  keyring: string;
}

/**
 * A started cluster with pool `pool` (3 replicas, min_size 2, failure domain osd), image
 * POOL/NAME of `sizeMiB` and client `client.NAME` with caps on that pool only; healthy.
 */
export async function clusterWithImage(o: LocalClusterOptions & { pool?: string; image?: string; sizeMiB: number; pgNum?: number }): Promise<ClusterImage> {
  const cluster = await startLocalCluster(o);
  try {
    const pool = o.pool ?? 'vms';
    const image = o.image ?? 'disk0';
    const size = Math.min(3, cluster.osds.length);
    await cluster.admin(['pool', 'create', pool, '--size', String(size), '--min-size', String(Math.min(2, size)), '--pg-num', String(o.pgNum ?? 32), '--failure-domain', 'osd']);
    await cluster.waitHealthy();
    await cluster.admin(['image', 'create', `${pool}/${image}`, '--size', `${o.sizeMiB}M`]);
    const client = `client.${image.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
    const keyring = await cluster.addClient(client, pool);
    return { cluster, pool, image, spec: `${pool}/${image}`, client, keyring };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/**
 * The BackendFactory serving `img` with `strata vhost --image` (the `file` of the start options
 * is ignored). Extra args: `--lock-lease-ms` etc.
 */
export function clusterBackend(img: ClusterImage, extraArgs: string[] = []): BackendFactory {
  return {
    kind: 'strata',
    start: (o: BackendStartOptions) => {
      const args = [
        ...DAEMON_NODE_FLAGS, strataMain(), 'vhost',
        '--socket-path', o.socketPath,
        '--image', img.spec,
        '--mon', img.cluster.monAddr,
        '--keyring', img.keyring,
        '--name', img.client,
        '--num-queues', String(o.numQueues),
        ...(o.readOnly ? ['--read-only'] : []),
        '--log-level', process.env['STRATA_VM_BACKEND_LOG_LEVEL'] ?? 'warn',
        ...extraArgs,
        ...(o.extraArgs ?? []),
      ];
      return spawnAndWaitForSocket('strata', process.execPath, args, { ...o, startTimeoutMs: o.startTimeoutMs ?? 40_000 });
    },
  };
}
