/**
 * Multi-process cluster test: real `strata` processes (one monitor, OSD placeholders, the CLI)
 * over real TCP on 127.0.0.1 and real files in a temp dir. `strata pg ls` / `osd pg-temp`
 * are checked on the clean cluster and while an OSD is down. Ports are chosen free; every wait
 * is bounded; every child is killed in teardown. Serial: each step builds on the previous one.
 *
 * Measured (printed with t.log): down detection after kill -9 (peers' ECONNREFUSED reports)
 * and after SIGSTOP (a hung OSD: beacon grace / peer timeouts), restart-to-up time.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemons, MAIN, freePort, killHard, runCli, sleep, until as pollUntil } from './proc-helpers.js';
import type { CliResult } from './proc-helpers.js';

const GRACE_MS = 3000;

const dir = mkdtempSync(join(tmpdir(), 'strata-proc-'));
const keyring = join(dir, 'keyring');
const daemons = new Daemons(dir);
const children = daemons.children;
const osdProcs = new Map<number, ChildProcess>();
let monProc: ChildProcess | undefined;
let monPort = 0;
const osdPorts: number[] = [];
let maxEpochSeen = 0;

/** Runs the CLI as a process (bounded by its own --timeout-ms and a hard 15 s kill). */
function cli(args: string[], opts: { keyringPath?: string; name?: string } = {}): Promise<CliResult> {
  return runCli(args, { monPort, keyring: opts.keyringPath ?? keyring, name: opts.name ?? 'client.admin' });
}

async function cliJson(args: string[]): Promise<Record<string, unknown>> {
  const r = await cli([...args, '--json']);
  if (r.code !== 0) throw new Error(`strata ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  if (typeof out['epoch'] === 'number') maxEpochSeen = Math.max(maxEpochSeen, out['epoch']);
  return out;
}

/** Polls `fn` every 100 ms until it returns true; fails loudly after `timeoutMs`. */
function until(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<number> {
  return pollUntil(what, timeoutMs, fn, 100);
}

async function osdCounts(): Promise<{ total: number; up: number; in: number } | undefined> {
  try {
    return (await cliJson(['status'])).osds as { total: number; up: number; in: number };
  } catch {
    return undefined;
  }
}

async function osdUp(id: number): Promise<boolean | undefined> {
  try {
    const dump = await cliJson(['osd', 'dump']);
    return (dump.osds as { id: number; up: boolean }[]).find((o) => o.id === id)?.up;
  } catch {
    return undefined;
  }
}

/** Wall time (pino `time`) of the first monitor log line matching after `sinceMs`. */
function monLogTime(msg: string, osd: number, sinceMs: number): number | undefined {
  for (const line of readFileSync(join(dir, 'mon.log'), 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const rec = JSON.parse(line) as { time: number; msg: string; osd?: number };
    if (rec.msg === msg && rec.osd === osd && rec.time >= sinceMs) return rec.time;
  }
  return undefined;
}

function startMon(): void {
  monProc = daemons.spawn(['mon', '--data', join(dir, 'mon'), '--addr', `127.0.0.1:${monPort}`, '--keyring', keyring, '--osd-grace-ms', String(GRACE_MS)], 'mon.log');
}

function startOsd(id: number): void {
  osdProcs.set(id, daemons.spawn([
    'osd', '--id', String(id), '--data', join(dir, `osd.${id}`), '--addr', `127.0.0.1:${osdPorts[id]}`, '--mon', `127.0.0.1:${monPort}`,
    '--keyring', join(dir, `osd.${id}.keyring`), '--host', `host-${String.fromCharCode(97 + id)}`,
  ], `osd.${id}.log`));
}

function dumpLogsOnFailure(t: ExecutionContext): void {
  t.teardown(() => {
    if (t.passed) return;
    for (const name of ['mon.log', 'osd.0.log', 'osd.1.log', 'osd.2.log']) {
      try { t.log(`--- ${name} (tail)\n` + readFileSync(join(dir, name), 'utf8').split('\n').slice(-15).join('\n')); } catch { /* missing */ }
    }
  });
}

test.before(async () => {
  monPort = await freePort();
  for (let i = 0; i < 4; i++) osdPorts.push(await freePort());
  const mkfs = await new Promise<number>((resolve) => {
    execFile(process.execPath, [MAIN, 'mon', '--mkfs', '--data', join(dir, 'mon'), '--keyring', keyring], { timeout: 15_000 }, (err) => resolve(err === null ? 0 : 1));
  });
  if (mkfs !== 0) throw new Error('mon --mkfs failed');
  startMon();
  await until('monitor', 10_000, async () => (await osdCounts()) !== undefined);
  for (let i = 0; i < 4; i++) {
    const r = await cli(['auth', 'add', `osd.${i}`, '--caps', 'mon=allow r', '-o', join(dir, `osd.${i}.keyring`)]);
    if (r.code !== 0) throw new Error(`auth add osd.${i}: ${r.stderr}`);
  }
  for (let i = 0; i < 3; i++) startOsd(i);
  await until('3 osds up', 15_000, async () => (await osdCounts())?.up === 3);
  for (const pool of ['vms', 'other']) {
    const r = await cli(['pool', 'create', pool, '--size', '3', '--min-size', '2', '--pg-num', '32', '--failure-domain', 'osd']);
    if (r.code !== 0) throw new Error(`pool create ${pool}: ${r.stderr}`);
  }
});

test.after.always(async () => {
  await Promise.all([...children].map((c) => killHard(c)));
  rmSync(dir, { recursive: true, force: true });
});

test.serial('a monitor and 3 OSD processes boot; strata status shows 3 up, 3 in', async (t) => {
  dumpLogsOnFailure(t);
  const r = await cli(['status']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /3 osds: 3 up, 3 in/);
  t.regex(r.stdout, /2 pools, 64 pgs/);
  const tree = await cli(['osd', 'tree']);
  t.regex(tree.stdout, /host-a[\s\S]*osd\.0\s+osd\s+1\.000\s+up in/);
  // The OSDs (issue #5: real data path) report the PGs they are primary for; after peering, all clean.
  await until('pg states reported', 10_000, async () => ((await cliJson(['status'])).pgStates as Record<string, number>)['active+clean'] === 64);
});

test.serial('strata pg scrub PGID [--repair] asks the primary to scrub and prints the result', async (t) => {
  dumpLogsOnFailure(t);
  const pools = (await cliJson(['osd', 'dump'])).pools as { id: number; name: string }[];
  const vms = pools.find((p) => p.name === 'vms')!;
  const r = await cli(['pg', 'scrub', `${vms.id}.1f`]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^pg ${vms.id}\\.1f \\(osd\\.\\d\\): 0 objects scrubbed, 0 inconsistent, 0 repaired`));
  const j = await cli(['pg', 'scrub', `${vms.id}.0`, '--repair', '--json']);
  t.is(j.code, 0, j.stderr);
  const res = JSON.parse(j.stdout) as { pg: string; objects: number; inconsistent: unknown[]; repaired: number; osd: number };
  t.is(res.pg, `${vms.id}.0`);
  t.deepEqual(res.inconsistent, []);
  t.is((await cli(['pg', 'scrub', 'nope'])).code, 2, 'malformed PGID is a usage error');
  t.is((await cli(['pg', 'scrub', `${vms.id}.ff`])).code, 3, 'seed beyond pg_num: not found');
});

interface PgRowJson { pg: string; state: string; up: number[]; acting: number[]; primary: number; pgTemp?: number[]; lastReportAgeMs?: number }

test.serial('strata pg ls: every PG active+clean with acting = up, sorted by pgid; osd pg-temp ls empty; exit codes', async (t) => {
  dumpLogsOnFailure(t);
  const pools = ((await cliJson(['osd', 'dump'])).pools as { id: number; name: string }[]).sort((a, b) => a.id - b.id);
  const want = pools.flatMap((p) => Array.from({ length: 32 }, (_, seed) => `${p.id}.${seed.toString(16)}`));
  const ls = await cliJson(['pg', 'ls']);
  const rows = ls['pgs'] as PgRowJson[];
  t.deepEqual(rows.map((r) => r.pg), want, 'one row per PG, sorted by pool then seed');
  for (const r of rows) {
    t.is(r.state, 'active+clean', r.pg);
    t.deepEqual(r.acting, r.up, r.pg);
    t.is(r.primary, r.up[0]!);
    t.is(r.acting.length, 3);
    t.is(r.pgTemp, undefined);
    t.true(r.lastReportAgeMs !== undefined && r.lastReportAgeMs < (ls['staleMs'] as number), `${r.pg} reported ${String(r.lastReportAgeMs)} ms ago`);
  }
  t.deepEqual((await cliJson(['osd', 'pg-temp', 'ls']))['pgTemp'], []);
  const vms = pools.find((p) => p.name === 'vms')!;
  const text = await cli(['pg', 'ls', 'vms']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`^PG\\s+STATE\\s+UP\\s+ACTING\\s+PRIMARY\\s+REPORTED\\n${vms.id}\\.0\\s+active\\+clean\\s+\\[\\d,\\d,\\d\\]`));
  t.regex(text.stdout, /\n32 pgs \(epoch \d+; stale = no report from the primary for 3\.0 s\)\n$/);
  t.is((await cli(['pg', 'ls', 'nopool'])).code, 3, 'unknown pool: not found');
  t.is((await cli(['pg', 'ls', '--state', 'sad'])).code, 2, 'unknown state word: usage');
  t.is((await cli(['osd', 'pg-temp', 'rm', `${vms.id}.0`])).code, 3, 'no pg_temp entry: not found');
  t.is((await cli(['osd', 'pg-temp', 'rm', 'nope'])).code, 2, 'malformed PGID: usage');
});

test.serial('kill -9 an OSD: marked down within the grace; restarted: marked up again', async (t) => {
  dumpLogsOnFailure(t);
  const killedAt = Date.now();
  await killHard(osdProcs.get(1));
  await until('osd.1 down', GRACE_MS + 3000, async () => (await osdUp(1)) === false);
  const downAt = monLogTime('osd marked down', 1, killedAt);
  t.truthy(downAt, 'monitor logged the down');
  const downMs = downAt! - killedAt;
  t.log(`osd.1 kill -9 → marked down in ${downMs} ms (grace ${GRACE_MS} ms)`);
  t.true(downMs <= GRACE_MS + 1500, `down after ${downMs} ms`);
  t.is((await osdCounts())?.up, 2);
  // strata pg ls: the PGs that lost osd.1 show undersized+degraded on their two survivors.
  let degraded: PgRowJson[] = [];
  await until('pg ls shows undersized PGs', 10_000, async () => {
    degraded = (await cliJson(['pg', 'ls', '--state', 'undersized']))['pgs'] as PgRowJson[];
    return degraded.length > 0;
  });
  t.log(`after osd.1 went down: ${degraded.length} of 64 pgs undersized (${degraded[0]!.pg} ${degraded[0]!.state})`);
  for (const r of degraded) {
    t.regex(r.state, /(^|\+)degraded(\+|$)/, r.pg);
    t.is(r.acting.length, 2, r.pg);
    t.false(r.acting.includes(1), r.pg);
  }

  const restartedAt = Date.now();
  startOsd(1);
  const waitedMs = await until('osd.1 up again', 10_000, async () => (await osdUp(1)) === true);
  const bootAt = monLogTime('osd boot', 1, restartedAt);
  t.log(`osd.1 restart → boot logged by the monitor after ${bootAt! - restartedAt} ms (seen up by the CLI after ${waitedMs} ms)`);
  t.is((await osdCounts())?.up, 3);
});

test.serial('a hung OSD (SIGSTOP) is marked down within the grace and comes back after SIGCONT', async (t) => {
  dumpLogsOnFailure(t);
  const osd = osdProcs.get(2)!;
  const stoppedAt = Date.now();
  osd.kill('SIGSTOP');
  t.teardown(() => { osd.kill('SIGCONT'); });
  await until('osd.2 down', GRACE_MS + 4000, async () => (await osdUp(2)) === false);
  const downMs = monLogTime('osd marked down', 2, stoppedAt)! - stoppedAt;
  t.log(`osd.2 SIGSTOP → marked down in ${downMs} ms (grace ${GRACE_MS} ms)`);
  t.true(downMs <= GRACE_MS + 1500, `down after ${downMs} ms`);
  const contAt = Date.now();
  osd.kill('SIGCONT');
  await until('osd.2 up again', 10_000, async () => (await osdUp(2)) === true);
  t.log(`osd.2 SIGCONT → up again after ${monLogTime('osd boot', 2, contAt)! - contAt} ms (boot-required on its next beacon)`);
});

test.serial('a wrong key is rejected with a clear message and exit code 5', async (t) => {
  dumpLogsOnFailure(t);
  const bad = join(dir, 'bad.keyring');
  writeFileSync(bad, `[client.admin]\n\tkey = ${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
  const r = await cli(['status'], { keyringPath: bad });
  t.is(r.code, 5, r.stderr);
  t.regex(r.stderr, /authentication as client\.admin failed/);
  const unknown = await cli(['status'], { keyringPath: bad.replace('bad', 'nobody'), name: 'client.nobody' });
  t.not(unknown.code, 0);
});

test.serial('a client with caps on pool vms cannot stat objects of pool other through the OSD', async (t) => {
  dumpLogsOnFailure(t);
  const ring = join(dir, 'client.a.keyring');
  const add = await cli(['auth', 'add', 'client.a', '--caps', 'mon=allow r', 'osd=allow rw pool=vms', '-o', ring]);
  t.is(add.code, 0, add.stderr);
  for (const object of ['obj-1', 'obj-2', 'obj-3']) {
    const allowed = await cli(['object', 'stat', 'vms', object], { keyringPath: ring, name: 'client.a' });
    t.is(allowed.code, 3, `allowed op reaches the placeholder (no such object): ${allowed.stderr}`);
    t.regex(allowed.stderr, /no such object/);
    const denied = await cli(['object', 'stat', 'other', object], { keyringPath: ring, name: 'client.a' });
    t.is(denied.code, 5, denied.stderr);
    t.regex(denied.stderr, /client\.a may not read pool other/);
  }
  const adminOnly = await cli(['pool', 'create', 'x'], { keyringPath: ring, name: 'client.a' });
  t.is(adminOnly.code, 5, 'mon caps r cannot create pools');
  // Per-PG views are reads: mon 'allow r' lists PGs and pg_temp entries but may not remove one.
  t.is((await cli(['pg', 'ls', 'vms', '--json'], { keyringPath: ring, name: 'client.a' })).code, 0);
  t.is((await cli(['osd', 'pg-temp', 'ls'], { keyringPath: ring, name: 'client.a' })).code, 0);
  const rmTemp = await cli(['osd', 'pg-temp', 'rm', '0.0'], { keyringPath: ring, name: 'client.a' });
  t.is(rmTemp.code, 5, rmTemp.stderr);
  t.regex(rmTemp.stderr, /lacks mon caps for 'osd pg-temp rm'/);
});

test.serial('kill -9 the monitor: after a restart the map (epoch, pools, OSDs) and auth survived', async (t) => {
  dumpLogsOnFailure(t);
  const before = await cliJson(['osd', 'dump']);
  await killHard(monProc);
  startMon();
  await until('monitor back', 10_000, async () => (await osdCounts()) !== undefined);
  const after = await cliJson(['osd', 'dump']);
  t.true((after.epoch as number) >= (before.epoch as number));
  t.is(after.fsid, before.fsid);
  t.deepEqual(after.pools, before.pools);
  t.deepEqual((after.osds as { id: number }[]).map((o) => o.id), (before.osds as { id: number }[]).map((o) => o.id));
  const auth = await cli(['auth', 'ls']);
  t.regex(auth.stdout, /client\.a/);
  await until('OSDs up after monitor restart', 8000, async () => (await osdCounts())?.up === 3);
});

test.serial('kill -9 the monitor repeatedly while OSDs boot and beacon: the store never comes back corrupt', async (t) => {
  dumpLogsOnFailure(t);
  startOsd(3); // A new OSD boots during the loop.
  const delays = [150, 400, 250, 700];
  for (const [i, delayMs] of delays.entries()) {
    const floor = maxEpochSeen;
    await sleep(delayMs);
    await killHard(monProc);
    if (i === 1) { await killHard(osdProcs.get(0)); startOsd(0); } // And an OSD restarts mid-loop.
    startMon();
    await until(`monitor back (iteration ${i})`, 10_000, async () => (await osdCounts()) !== undefined);
    t.is(monProc?.exitCode, null, 'monitor opened its store and keeps running');
    const dump = await cliJson(['osd', 'dump']);
    t.true((dump.epoch as number) >= floor, `epoch ${String(dump.epoch)} ≥ acknowledged ${floor}`);
    t.is((dump.pools as unknown[]).length, 2);
  }
  await until('4 OSDs up after the loop', 12_000, async () => (await osdCounts())?.up === 4);
  const r = await cli(['status']);
  t.regex(r.stdout, /4 osds: 4 up, 4 in/);
});
