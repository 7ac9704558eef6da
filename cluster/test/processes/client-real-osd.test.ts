/**
 * The client library against real daemons: scripts/start-local-cluster.sh starts a monitor and
 * 4 real OSD processes (object store, replication, peering) on 127.0.0.1; this test drives an
 * image through ClusterClient while an OSD is killed with SIGKILL and restarted, a fifth OSD is
 * added and another is marked out (PGs remap), then checks that every write completed and the image equals an
 * in-memory mirror. Each object region is written by a sequential chain of writes to the same
 * offset, so a lost write or a stale attempt re-applied after a later one shows up as a wrong
 * final value. Also: the exclusive lock across clients, and thin reads.
 */
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterError } from '../../src/common/errors.js';
import { parseKeyring } from '../../src/auth/keyring.js';
import { ClusterClient } from '../../src/client/cluster-client.js';
import type { Images } from '../../src/client/images.js';
import { testEnv } from '../msg-test-env.js';

const repo = join(fileURLToPath(import.meta.url), '../../../../..');
const script = join(repo, 'scripts/start-local-cluster.sh');


/** Dead: no such process, or a zombie (killed daemons are reparented to a pid 1 that may reap late). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

test('image I/O survives an OSD killed and restarted, an OSD added and one marked out, with no write lost or replayed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-client-real-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const sh = (...args: string[]): string => execFileSync('bash', [script, ...args, '--dir', dir, '--port', String(port)], { encoding: 'utf8', timeout: 60_000 });
  // Async while I/O runs: a synchronous child would freeze this process's event loop (and the client).
  const shAsync = (...args: string[]): Promise<unknown> => promisify(execFile)('bash', [script, ...args, '--dir', dir, '--port', String(port)], { encoding: 'utf8', timeout: 60_000 });
  const strata = (...args: string[]): Promise<unknown> => promisify(execFile)(process.execPath, [join(repo, 'dist/backend/src/main.js'), ...args], {
    encoding: 'utf8', timeout: 20_000, env: { ...process.env, STRATA_MON: `127.0.0.1:${port}`, STRATA_KEYRING: join(dir, 'keyring'), STRATA_NAME: 'client.admin' },
  });
  const clients: ClusterClient[] = [];
  // Why resolve children: the script's pid files hold the background subshell that runs node
  // (a function `strata() { node …; }` started with `&`), so killing that pid leaves the daemon.
  const daemonPid = (name: string): number => {
    const p = readFileSync(join(dir, `${name}.pid`), 'utf8').trim();
    let kids: string[] = [];
    try { kids = execFileSync('ps', ['-o', 'pid=', '--ppid', p], { encoding: 'utf8' }).trim().split(/\s+/).filter((x) => x !== ''); } catch { /* no children */ }
    return Number(kids[0] ?? p);
  };
  const started = new Set<number>();
  const collect = (): void => { for (const n of ['mon', 'osd.0', 'osd.1', 'osd.2', 'osd.3']) started.add(daemonPid(n)); };
  t.teardown(() => {
    for (const c of clients) c.close();
    for (const n of ['mon', 'osd.0', 'osd.1', 'osd.2', 'osd.3', 'osd.4']) { try { started.add(daemonPid(n)); } catch { /* no pid file */ } }
    try { sh('stop'); } catch { /* already stopped */ }
    for (const pid of started) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    rmSync(dir, { recursive: true, force: true });
  });
  sh('start', '--osds', '4');
  collect();
  const ring = parseKeyring(readFileSync(join(dir, 'keyring'), 'utf8'));
  if (ring instanceof ClusterError) throw ring;
  const env = testEnv({ level: 'warn' });
  const connect = async (): Promise<Images> => {
    const c = await ClusterClient.connectAsync({ env, mon: { host: '127.0.0.1', port }, entity: 'client.admin', key: ring.get('client.admin')!.key, limits: { opTimeoutMs: 45_000 } });
    clients.push(c);
    return c.images('rbd') as Images;
  };
  const images = await connect();
  const objectSize = 64 * 1024;
  const size = 64 * objectSize;
  await images.createAsync('chain', { sizeBytes: size, layout: { objectSize } });
  const img = await images.openAsync('chain', { leaseMs: 10_000 });
  t.deepEqual(await img.readAsync(0, 8192), new Uint8Array(8192)); // Thin.
  t.is((await t.throwsAsync((await connect()).openAsync('chain')) as ClusterError).code, 'CLU_ERR_BUSY');

  const mirror = new Uint8Array(size);
  const chains = 16;
  const steps = 12;
  let progress = 0;
  const chain = async (c: number): Promise<void> => {
    const base = c * 2 * objectSize; // One object region per chain (objects 0, 2, 4, …).
    for (let k = 0; k < steps; k++) {
      const v = new Uint8Array(4096).fill(((c * 7 + k) % 250) + 1);
      await img.writeAsync(base, v);                      // Same offset: the last write must win.
      mirror.set(v, base);
      const slot = base + 4096 * (1 + k);
      await img.writeAsync(slot, v);                      // Distinct offsets: none may be lost.
      mirror.set(v, slot);
      progress++;
    }
  };
  const all = Promise.all(Array.from({ length: chains }, (_, c) => chain(c)));
  const waitProgress = async (n: number): Promise<void> => { while (progress < n) await new Promise((r) => setTimeout(r, 20)); };
  await waitProgress(chains * 3);
  const victim = daemonPid('osd.1');
  process.kill(victim, 'SIGKILL');                        // Peers see ECONNREFUSED: marked down at once.
  await waitProgress(chains * 6);
  t.true(isGone(victim), 'the killed OSD is really gone');
  await shAsync('start', '--osds', '4');                  // Restarts osd.1 (same data dir: it recovers).
  collect();
  await waitProgress(chains * 8);
  await shAsync('start', '--osds', '5');                  // A new OSD (osd.4): PGs remap onto it.
  started.add(daemonPid('osd.4'));
  await waitProgress(chains * 10);
  await strata('osd', 'out', '3');                              // PGs remap away from osd.3.
  await all;
  const got = await img.readAsync(0, size);
  let bad = -1;
  for (let i = 0; i < size; i++) if (got[i] !== mirror[i]) { bad = i; break; }
  t.is(bad, -1, `first mismatch at byte ${bad}`);
  const info = await img.statAsync();
  t.true(info.usedBytes > 0);
  await img.closeAsync();
  await (await connect()).openAsync('chain').then((b) => b.closeAsync()); // The lock was released.
});
