/**
 * `node dist/scripts/osd-bench.js [--seconds 5] [--warmup 2]`: object-level benchmark of the replicated OSD
 * data path (issue #5). Starts a monitor and 3 OSD processes on 127.0.0.1 with stores under
 * /var/tmp (real fdatasync), a pool size 3 / min_size 2, and drives MSG_OSD_OP directly:
 * 4k random write/read at QD1 and QD16, 1M sequential write. Prints IOPS, MiB/s, p50/p99,
 * CPU µs per op summed over client + OSD processes (/proc/PID/stat), and OSD RSS.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { parseKeyring } from '../cluster/src/auth/keyring.js';
import type { PoolId } from '../cluster/src/common/ids.js';
import { DAEMON_NODE_FLAGS } from '../cluster/src/common/daemon-node-flags.js';
import { createRealEnv } from '../cluster/src/env/real.js';
import { RealNet } from '../cluster/src/env/real-net.js';
import { MonClient } from '../cluster/src/mon/mon-client.js';
import type { Session } from '../cluster/src/msg/session.js';
import { MsgType } from '../cluster/src/msg/types.js';
import { OSD_FLAG_READ, OSD_FLAG_WRITE, decodeOsdOpReply, encodeOsdOpRequest } from '../cluster/src/osd/osd-protocol.js';
import type { OsdOp } from '../cluster/src/osd/osd-protocol.js';
import { objectToPg, pgToOsds } from '../cluster/src/placement/placement.js';

const MAIN = join(fileURLToPath(import.meta.url), '../../backend/src/main.js');
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] ?? 5) || 5;
// `--warmup S` (default 2): each phase first runs S seconds unmeasured, as fio's ramp_time:
// OSDs are long-running, and the first seconds of a phase measure V8 compiling its hot path.
const warmupSeconds = process.argv.indexOf('--warmup') >= 0 ? Math.max(0, Number(process.argv[process.argv.indexOf('--warmup') + 1] ?? 2) || 0) : 2;
// `--only w1,w16,r1,r16,seq,rseq`: run a subset of the phases (e.g. to profile one of them).
const onlyArg = process.argv.indexOf('--only') >= 0 ? process.argv[process.argv.indexOf('--only') + 1] ?? '' : '';
const only = onlyArg === '' ? null : new Set(onlyArg.split(','));
// `--verbose`: also print CPU µs/op per process (client, osd.0..2) and each OSD's RSS split
// into anonymous and file-backed pages after each phase.
const verbose = process.argv.includes('--verbose');
// `--size N`: pool size (default 3; min_size = min(2, N)); 1 measures the OSD without replication.
const poolSize = Math.min(3, Math.max(1, Number(process.argv[process.argv.indexOf('--size') + 1] ?? 3) || 3));
// `--journal-io auto|pool|inline`: passed to every OSD (docs/object-store.md, "Journal I/O").
const journalIo = process.argv.indexOf('--journal-io') >= 0 ? process.argv[process.argv.indexOf('--journal-io') + 1] ?? 'auto' : 'auto';
// `--data-io direct|buffered`: passed to every OSD (docs/object-store.md, "Data I/O").
const dataIo = process.argv.indexOf('--data-io') >= 0 ? process.argv[process.argv.indexOf('--data-io') + 1] ?? 'direct' : 'direct';
// STRATA_BENCH_DIR: where the stores live (default /var/tmp, a real disk; /dev/shm isolates CPU from fsync).
const dir = mkdtempSync(join(process.env['STRATA_BENCH_DIR'] ?? '/var/tmp', 'strata-osd-bench-'));
const keyring = join(dir, 'keyring');
const procs: ChildProcess[] = [];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const a = s.address(); s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0)); }); });
}
function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(process.execPath, [MAIN, ...args], { timeout: 15_000 }, (e, out, err) => (e === null ? resolve(out) : reject(new Error(err)))));
}
function spawnDaemon(args: string[], log: string): ChildProcess {
  const fd = openSync(join(dir, log), 'a');
  // STRATA_BENCH_NODE_ARGS: extra node flags for the daemons, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
  const nodeArgs = (process.env['STRATA_BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const c = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...nodeArgs, MAIN, ...args], { stdio: ['ignore', fd, fd] });
  procs.push(c);
  return c;
}
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime + stime (fields 14, 15)
}
function rssMib(pid: number, field = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) / 1024;
}
const TICK_US = 1e6 / 100; // CLK_TCK = 100 on Linux

async function main(): Promise<void> {
  const monPort = await freePort();
  const ports = [await freePort(), await freePort(), await freePort()];
  await run(['mon', '--mkfs', '--data', join(dir, 'mon'), '--keyring', keyring]);
  spawnDaemon(['mon', '--data', join(dir, 'mon'), '--addr', `127.0.0.1:${monPort}`, '--keyring', keyring, '--log-level', 'warn'], 'mon.log');
  const cli = (a: string[]): Promise<string> => run([...a, '--mon', `127.0.0.1:${monPort}`, '--keyring', keyring, '--name', 'client.admin']);
  for (let i = 0; i < 30; i++) { try { await cli(['status']); break; } catch { await sleep(200); } }
  const osds: ChildProcess[] = [];
  for (let i = 0; i < 3; i++) {
    await cli(['auth', 'add', `osd.${i}`, '--caps', 'mon=allow r', '-o', join(dir, `osd.${i}.keyring`)]);
    osds.push(spawnDaemon(['osd', '--id', String(i), '--data', join(dir, `osd.${i}`), '--addr', `127.0.0.1:${ports[i]}`, '--mon', `127.0.0.1:${monPort}`,
      '--keyring', join(dir, `osd.${i}.keyring`), '--host', `h${i}`, '--log-level', 'warn', '--journal-io', journalIo, '--data-io', dataIo], `osd.${i}.log`));
  }
  await cli(['pool', 'create', 'bench', '--size', String(poolSize), '--min-size', String(Math.min(2, poolSize)), '--pg-num', '32', '--failure-domain', 'osd']);
  const env = createRealEnv({ log: pino({ level: 'silent' }), net: new RealNet() });
  const ring = parseKeyring(readFileSync(keyring, 'utf8'));
  if (!(ring instanceof Map)) throw new Error('keyring');
  // Why an instance: OSDs accept an op only from the session that authenticated its reqId's client.
  const BENCH_INSTANCE = 'bench1';
  const mon = new MonClient({ env, entity: 'client.admin', key: ring.get('client.admin')!.key, mon: { host: '127.0.0.1', port: monPort } });
  mon.subscribe();
  for (;;) {
    const s = JSON.parse(await cli(['status', '--json'])) as { pgStates: Record<string, number> };
    if (s.pgStates['active+clean'] === 32) break;
    await sleep(200);
  }
  const map = mon.map()!;
  const pool = [...map.pools.values()].find((p) => p.name === 'bench')!;
  const creds = await new Promise<{ ticket: Uint8Array; sessionKey: Uint8Array }>((res, rej) => mon.ticket((e, c) => (e ? rej(e) : res(c!))));
  const sessions = new Map<number, Session>();
  // Why a cache: placement per op (hash + CRUSH) is client work the OSD path should not be charged for.
  const targets = new Map<string, { s: Session; seed: number }>();
  const sessionFor = (name: string): { s: Session; seed: number } => {
    const hit = targets.get(name);
    if (hit !== undefined) return hit;
    const pg = objectToPg(pool, name);
    const primary = pgToOsds(map, pg).primary;
    let s = sessions.get(primary);
    if (s === undefined) {
      const addr = map.osds.get(primary as never)!.addr;
      const i = addr.lastIndexOf(':');
      s = mon.msgr.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) }, { credentials: () => ({ method: 'ticket', ...creds }), instance: BENCH_INSTANCE });
      sessions.set(primary, s);
    }
    const t = { s, seed: pg.seed };
    targets.set(name, t);
    return t;
  };
  let tid = 1;
  const op = (name: string, ops: OsdOp[], data: Uint8Array[]): Promise<void> => new Promise((resolve, reject) => {
    const { s, seed } = sessionFor(name);
    const write = data.length > 0;
    const payload = encodeOsdOpRequest({ pool: pool.id as PoolId, objectName: name, pgSeed: seed, mapEpoch: map.epoch, reqId: { client: `client.admin/${BENCH_INSTANCE}`, tid: tid++, attempt: 0 }, flags: write ? OSD_FLAG_WRITE : OSD_FLAG_READ, ops });
    s.request({ type: MsgType.MSG_OSD_OP, payload, data, epoch: map.epoch }, { timeoutMs: 10_000 }, (err, r) => {
      if (err !== null || r === undefined) { reject(err); return; }
      const rep = decodeOsdOpReply(r.payload);
      if (rep.result !== 0) reject(new Error(`result ${rep.result}`)); else resolve();
    });
  });
  const OBJECTS = 64;
  const OBJ_BYTES = 4 * 1024 * 1024;
  const buf4k = new Uint8Array(4096).fill(7);
  const buf1m = new Uint8Array(1 << 20).fill(9);
  // Prefill the objects the random tests use (sparse 4 MiB objects: one write at the end).
  await Promise.all(Array.from({ length: OBJECTS }, (_, i) => op(`bench.${i}`, [{ op: 'write', offset: OBJ_BYTES - 4096, length: 4096 }], [buf4k])));
  const rows: string[] = [];
  const phase = async (key: string, label: string, qd: number, bytes: number, next: (i: number) => () => Promise<void>): Promise<void> => {
    if (only !== null && !only.has(key)) return;
    if (warmupSeconds > 0) {
      const warmEnd = performance.now() + warmupSeconds * 1000;
      let w = 0;
      await Promise.all(Array.from({ length: qd }, async () => { while (performance.now() < warmEnd) await next(w++)(); }));
    }
    const lat: number[] = [];
    const per0 = osds.map((p) => cpuTicks(p.pid!));
    const cpu0 = osds.reduce((a, p) => a + cpuTicks(p.pid!), 0);
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    let n = 0;
    const worker = async (): Promise<void> => {
      while (performance.now() < end) {
        const f = next(n++);
        const s = performance.now();
        await f();
        lat.push(performance.now() - s);
      }
    };
    await Promise.all(Array.from({ length: qd }, () => worker()));
    const el = (performance.now() - t0) / 1000;
    const cpuOsd = (osds.reduce((a, p) => a + cpuTicks(p.pid!), 0) - cpu0) * TICK_US;
    const self = process.cpuUsage(self0);
    const cpuUs = (cpuOsd + self.user + self.system) / lat.length;
    lat.sort((a, b) => a - b);
    const p = (q: number): number => (lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]! * 1000);
    const rss = osds.map((o) => rssMib(o.pid!));
    const row = `| ${label.padEnd(22)} | ${String(qd).padStart(2)} | ${(lat.length / el).toFixed(0).padStart(6)} | ${(lat.length * bytes / el / 1048576).toFixed(1).padStart(6)} | ${p(0.5).toFixed(0).padStart(6)} | ${p(0.99).toFixed(0).padStart(6)} | ${cpuUs.toFixed(0).padStart(5)} | ${Math.max(...rss).toFixed(0).padStart(4)} |`;
    rows.push(row);
    process.stdout.write(row + '\n');
    if (verbose) {
      const per = osds.map((p, i) => `osd.${i} ${((cpuTicks(p.pid!) - per0[i]!) * TICK_US / lat.length).toFixed(0)}`);
      process.stdout.write(`    CPU µs/op: client ${((self.user + self.system) / lat.length).toFixed(0)} (user ${(self.user / lat.length).toFixed(0)}), ${per.join(', ')}\n`);
      // RssFile is mostly the node binary's own pages, shared by every node process; RssAnon is the OSD's own memory.
      const mem = osds.map((o, i) => `osd.${i} ${rssMib(o.pid!).toFixed(0)} (anon ${rssMib(o.pid!, 'RssAnon').toFixed(0)}, file ${rssMib(o.pid!, 'RssFile').toFixed(0)})`);
      process.stdout.write(`    RSS MiB: ${mem.join(', ')}\n`);
    }
  };
  process.stdout.write('| test                   | qd |   IOPS |  MiB/s | p50 µs | p99 µs | CPU µs/op | OSD RSS MiB |\n|---|---|---|---|---|---|---|---|\n');
  const rnd = (): { name: string; off: number } => ({ name: `bench.${Math.floor(Math.random() * OBJECTS)}`, off: Math.floor(Math.random() * (OBJ_BYTES / 4096)) * 4096 });
  if (only?.has('idle') === true) {
    // Background CPU of an idle cluster (ticks, beacons, timers): ms of CPU per second per process.
    const per0 = osds.map((p) => cpuTicks(p.pid!));
    const self0 = process.cpuUsage();
    await sleep(seconds * 1000);
    const self = process.cpuUsage(self0);
    const per = osds.map((p, i) => `osd.${i} ${((cpuTicks(p.pid!) - per0[i]!) * TICK_US / 1000 / seconds).toFixed(1)}`);
    process.stdout.write(`idle CPU ms/s: client ${((self.user + self.system) / 1000 / seconds).toFixed(1)}, ${per.join(', ')}\n`);
  }
  await phase('w1', '4k randwrite', 1, 4096, () => { const r = rnd(); return () => op(r.name, [{ op: 'write', offset: r.off, length: 4096 }], [buf4k]); });
  await phase('w16', '4k randwrite', 16, 4096, () => { const r = rnd(); return () => op(r.name, [{ op: 'write', offset: r.off, length: 4096 }], [buf4k]); });
  await phase('r1', '4k randread', 1, 4096, () => { const r = rnd(); return () => op(r.name, [{ op: 'read', offset: r.off, length: 4096 }], []); });
  await phase('r16', '4k randread', 16, 4096, () => { const r = rnd(); return () => op(r.name, [{ op: 'read', offset: r.off, length: 4096 }], []); });
  let seqWrites = 0;
  await phase('seq', '1M seqwrite', 4, 1 << 20, (i) => { seqWrites = Math.max(seqWrites, i + 1); const name = `seq.${Math.floor(i / 4)}`; const off = (i % 4) << 20; return () => op(name, [{ op: 'write', offset: off, length: 1 << 20 }], [buf1m]); });
  // `rseq`: 4k random reads of what the 1M phase wrote (direct writes: with --data-io direct
  // those blocks are not in the page cache). Only the objects fully written are read.
  const seqObjects = Math.floor(seqWrites / 4) - 1;
  const rndSeq = (): { name: string; off: number } => ({ name: `seq.${Math.floor(Math.random() * seqObjects)}`, off: Math.floor(Math.random() * 1024) * 4096 });
  if (seqObjects > 0) {
    await phase('rseq', '4k randread of 1M data', 1, 4096, () => { const r = rndSeq(); return () => op(r.name, [{ op: 'read', offset: r.off, length: 4096 }], []); });
    await phase('rseq', '4k randread of 1M data', 16, 4096, () => { const r = rndSeq(); return () => op(r.name, [{ op: 'read', offset: r.off, length: 4096 }], []); });
  }
  mon.close();
  // SIGTERM when profiling: node writes --cpu-prof output only on a clean exit.
  for (const p of procs) p.kill(process.env['STRATA_BENCH_NODE_ARGS'] ? 'SIGTERM' : 'SIGKILL');
  if (process.env['STRATA_BENCH_NODE_ARGS']) await sleep(3000);
  // STRATA_BENCH_KEEP=1: keep the directory (daemon logs, e.g. with --trace-gc) and print it.
  if (process.env['STRATA_BENCH_KEEP']) process.stdout.write(`kept ${dir}\n`); else rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`osd-bench failed: ${String(e)}\n`);
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});
