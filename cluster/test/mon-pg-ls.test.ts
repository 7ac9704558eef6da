/**
 * `strata pg ls` and `strata osd pg-temp ls|rm` through the monitor's admin command path
 * (MonitorCore on the manual-clock TestEnv, JSON → parseMonCommand → executeMonCommand): one
 * row per PG sorted by pgid, `unknown` until the current primary reports, reports from
 * non-primaries ignored, `stale+…` once the primary's report is older than the stale time,
 * pool and state filters, pg_temp marked in the acting set, operator removal of a pg_temp in
 * the next epoch; errors and exit codes; caps (`allow r` reads, `allow rw` removes); the CLI
 * words and text output.
 */
import test from 'ava';
import { parseCaps } from '../src/auth/caps.js';
import type { Caps } from '../src/auth/caps.js';
import { describeError } from '../src/bin/bin-util.js';
import { formatCommandResult } from '../src/bin/cli-format.js';
import { buildCommand } from '../src/bin/cli.js';
import { ClusterError } from '../src/common/errors.js';
import type { OsdId } from '../src/common/ids.js';
import { parsePgId } from '../src/common/ids.js';
import { FileMonStore } from '../src/mon/file-mon-store.js';
import { executeMonCommand } from '../src/mon/mon-commands.js';
import type { MonCommandContext } from '../src/mon/mon-commands.js';
import { monCommandAllowed, parseMonCommand } from '../src/mon/mon-protocol.js';
import type { MonCommand } from '../src/mon/mon-protocol.js';
import { MonitorCore } from '../src/mon/monitor-core.js';
import type { PgRow } from '../src/mon/pg-list.js';
import { pgToOsds } from '../src/placement/placement.js';
import { TestEnv } from './sim-env.js';

const GRACE = 3000;

function startMon(env: TestEnv): MonitorCore {
  const store = new FileMonStore({ env, dir: '/mon' });
  store.open((e) => { if (e) throw e; });
  env.settle();
  const mon = new MonitorCore({ env, store, fsid: 'test-fsid', osdGraceMs: GRACE, downOutIntervalMs: 600_000 });
  mon.start((e) => { if (e) throw e; });
  env.settle();
  return mon;
}

/** 5 OSDs on 5 hosts, pool rbd (id 0, 4 PGs, size 3) and pool other (id 1, 2 PGs, size 2). */
function populate(env: TestEnv, mon: MonitorCore): OsdId[] {
  const ids: OsdId[] = [];
  for (let i = 0; i < 5; i++) {
    mon.osdBoot({ uuid: `u${i}`, addr: `127.0.0.1:${6800 + i}`, location: { host: `h${i}` } }, (e, r) => { if (e || r === undefined) throw e ?? new Error('no boot'); ids.push(r.osdId); });
  }
  mon.poolCreate({ name: 'rbd', pgNum: 4, size: 3 }, (e) => { if (e) throw e; });
  mon.poolCreate({ name: 'other', pgNum: 2, size: 2, minSize: 1 }, (e) => { if (e) throw e; });
  env.advance(100);
  return ids;
}

type Out = { ok: Record<string, unknown> } | { err: ClusterError };

/** Beacons from every up OSD (keeps them up while the manual clock moves). */
function beacons(mon: MonitorCore): void {
  for (const o of mon.map().osds.values()) if (o.up) mon.osdBeacon(o.id);
}

/** `ms` of manual time with beacons every second. */
function beat(env: TestEnv, mon: MonitorCore, ms: number): void {
  for (let left = ms; left > 0; left -= 1000) {
    beacons(mon);
    env.advance(Math.min(1000, left));
  }
}

/** Runs an admin command as the messenger glue does (JSON → parse → execute). */
function run(env: TestEnv, mon: MonitorCore, json: Record<string, unknown>): Out {
  beacons(mon);
  const cmd = parseMonCommand(json);
  if (cmd instanceof ClusterError) return { err: cmd };
  const ctx = { env, core: mon, auth: undefined, requesterKey: undefined, closeSessionsOf: () => undefined } as unknown as MonCommandContext;
  let out: Out | undefined;
  executeMonCommand(ctx, cmd, (e, r) => { out = e !== null ? { err: e } : { ok: r ?? {} }; });
  env.advance(100);
  if (out === undefined) throw new Error('no answer');
  return out;
}

function ok(o: Out): Record<string, unknown> {
  if ('err' in o) throw o.err;
  return o.ok;
}

function code(o: Out): string | undefined {
  return 'err' in o ? o.err.code : undefined;
}

const rowsOf = (r: Record<string, unknown>): PgRow[] => r['pgs'] as PgRow[];

/** Each primary reports `state` for every PG it is primary for (one report per OSD, as OSDs do). */
function reportAll(mon: MonitorCore, state: (pg: string) => string): void {
  const byOsd = new Map<OsdId, Record<string, string>>();
  for (const row of rowsOf(mon.pgLs() as Record<string, unknown>)) {
    if (row.primary < 0) continue;
    const p = row.primary as OsdId;
    byOsd.set(p, { ...byOsd.get(p), [row.pg]: state(row.pg) });
  }
  for (const [osd, states] of byOsd) mon.reportPgStates(osd, states);
}

test('pg ls: every PG sorted by pgid; unknown until its primary reports; non-primary reports ignored; filters; stale after the stale time', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  populate(env, mon);
  const map = mon.map();
  const first = ok(run(env, mon, { prefix: 'pg ls' }));
  t.is(first['epoch'], map.epoch);
  t.is(first['staleMs'], GRACE, 'stale time defaults to the OSD grace');
  const rows = rowsOf(first);
  t.deepEqual(rows.map((r) => r.pg), ['0.0', '0.1', '0.2', '0.3', '1.0', '1.1']);
  for (const r of rows) {
    const m = pgToOsds(map, parsePgId(r.pg)!);
    t.deepEqual([r.up, r.acting, r.primary], [[...m.up], [...m.acting], m.primary]);
    t.is(r.state, 'unknown');
    t.is(r.lastReportAgeMs, undefined);
    t.is(r.pgTemp, undefined);
  }
  t.deepEqual(rows.find((r) => r.pg === '0.0')!.acting.length, 3);

  // Primaries report; a replica's claim about 0.0 is not believed.
  reportAll(mon, (pg) => (pg === '0.1' ? 'active+undersized+degraded' : 'active+clean'));
  const r00 = rows.find((r) => r.pg === '0.0')!;
  mon.reportPgStates(r00.acting[1]!, { '0.0': 'peering' });
  env.advance(500);
  const reported = rowsOf(ok(run(env, mon, { prefix: 'pg ls' })));
  t.deepEqual(reported.map((r) => r.state), ['active+clean', 'active+undersized+degraded', 'active+clean', 'active+clean', 'active+clean', 'active+clean']);
  // run() advanced 100 ms after the command was answered; the age is as of the answer.
  t.true(reported.every((r) => r.lastReportAgeMs === 500), JSON.stringify(reported.map((r) => r.lastReportAgeMs)));

  // Filters: a state word (split on '+'), a pool by name or id; unknown pool and bad words refused.
  t.deepEqual(rowsOf(ok(run(env, mon, { prefix: 'pg ls', state: 'degraded' }))).map((r) => r.pg), ['0.1']);
  t.deepEqual(rowsOf(ok(run(env, mon, { prefix: 'pg ls', state: 'clean' }))).length, 5);
  t.deepEqual(rowsOf(ok(run(env, mon, { prefix: 'pg ls', state: 'remapped' }))), []);
  t.deepEqual(rowsOf(ok(run(env, mon, { prefix: 'pg ls', pool: 'other' }))).map((r) => r.pg), ['1.0', '1.1']);
  t.deepEqual(rowsOf(ok(run(env, mon, { prefix: 'pg ls', pool: '1' }))).map((r) => r.pg), ['1.0', '1.1']);
  t.deepEqual(rowsOf(ok(run(env, mon, { prefix: 'pg ls', pool: 'rbd', state: 'clean' }))).map((r) => r.pg), ['0.0', '0.2', '0.3']);
  const noPool = run(env, mon, { prefix: 'pg ls', pool: 'nope' });
  t.is(code(noPool), 'CLU_ERR_NOT_FOUND');
  t.is(describeError((noPool as { err: ClusterError }).err).exitCode, 3);
  t.is(code(run(env, mon, { prefix: 'pg ls', state: 'sad' })), 'CLU_ERR_INVALID');
  t.is(code(run(env, mon, { prefix: 'pg ls', pool: 7 })), 'CLU_ERR_INVALID');

  // No report for longer than the stale time: stale+<last state>; `--state stale` finds them.
  beat(env, mon, GRACE);
  const stale = rowsOf(ok(run(env, mon, { prefix: 'pg ls' })));
  t.true(stale.every((r) => r.state.startsWith('stale+') && (r.lastReportAgeMs ?? 0) > GRACE), JSON.stringify(stale.map((r) => r.state)));
  t.is(stale.find((r) => r.pg === '0.1')!.state, 'stale+active+undersized+degraded');
  t.is(rowsOf(ok(run(env, mon, { prefix: 'pg ls', state: 'stale' }))).length, 6);
  // Fresh reports make them current again.
  reportAll(mon, () => 'active+clean');
  t.true(rowsOf(ok(run(env, mon, { prefix: 'pg ls' }))).every((r) => r.state === 'active+clean' && r.lastReportAgeMs === 0));

  // The primary of 0.0 goes down: the new primary has not reported, so 0.0 is unknown.
  const oldPrimary = r00.primary as OsdId;
  mon.osdAdmin(oldPrimary, 'down', (e) => { if (e) throw e; });
  env.advance(100);
  const after = rowsOf(ok(run(env, mon, { prefix: 'pg ls' }))).find((r) => r.pg === '0.0')!;
  t.not(after.primary, oldPrimary);
  t.false(after.acting.includes(oldPrimary));
  t.is(after.state, 'unknown');
  t.is(after.lastReportAgeMs, undefined);
});

test('osd pg-temp ls|rm: entries with up and acting; pg ls marks the acting set; rm drops the entry in the next epoch', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const ids = populate(env, mon);
  t.deepEqual(ok(run(env, mon, { prefix: 'osd pg-temp ls' }))['pgTemp'], []);
  const up = [...pgToOsds(mon.map(), parsePgId('0.2')!).up] as OsdId[];
  const c = ids.find((id) => !up.includes(id))!;
  reportAll(mon, () => 'active+clean');
  mon.pgTemp(up[0]!, '0.2', [c, ...up], (e) => { if (e) throw e; });
  env.advance(100);
  const withTemp = mon.map().epoch;

  const ls = ok(run(env, mon, { prefix: 'osd pg-temp ls' }));
  t.is(ls['epoch'], withTemp);
  t.deepEqual(ls['pgTemp'], [{ pg: '0.2', osds: [c, ...up], up, acting: [c, ...up] }]);
  t.deepEqual(ok(run(env, mon, { prefix: 'osd dump' }))['pgTemp'], ls['pgTemp'], 'osd dump shows the same entries');
  const row = rowsOf(ok(run(env, mon, { prefix: 'pg ls', pool: 'rbd' }))).find((r) => r.pg === '0.2')!;
  t.deepEqual([row.up, row.acting, row.primary, row.pgTemp], [up, [c, ...up], c, [c, ...up]]);
  t.is(row.state, 'unknown', 'the up primary\'s report is not the acting primary\'s');
  const text = formatCommandResult('pg ls', ok(run(env, mon, { prefix: 'pg ls', pool: 'rbd' })));
  t.regex(text, new RegExp(`0\\.2\\s+unknown\\s+\\[${up.join(',')}\\]\\s+\\[${[c, ...up].join(',')}\\]\\*\\s+osd\\.${c}\\s+-`));
  t.regex(text, /4 pgs \(epoch \d+; \* acting set from a pg_temp; stale = no report from the primary for 3\.0 s\)$/);
  t.regex(formatCommandResult('osd pg-temp ls', ls), new RegExp(`^PG\\s+PG_TEMP\\s+UP\\s+ACTING\\n0\\.2\\s+\\[${[c, ...up].join(',')}\\]\\s+\\[${up.join(',')}\\]`));

  // Removal: refused for a malformed pgid, a PG that does not exist, a PG with no entry.
  t.is(code(run(env, mon, { prefix: 'osd pg-temp rm', pg: 'x' })), 'CLU_ERR_INVALID');
  t.is(code(run(env, mon, { prefix: 'osd pg-temp rm', pg: '0.9' })), 'CLU_ERR_NOT_FOUND');
  t.is(code(run(env, mon, { prefix: 'osd pg-temp rm', pg: '0.1' })), 'CLU_ERR_NOT_FOUND');
  t.is(mon.map().epoch, withTemp, 'refusals change nothing');
  const rm = ok(run(env, mon, { prefix: 'osd pg-temp rm', pg: '0.2' }));
  t.is(rm['epoch'], withTemp + 1);
  t.false(mon.map().pgTemp.has('0.2'));
  t.deepEqual(pgToOsds(mon.map(), parsePgId('0.2')!).acting, up, 'the PG maps to its up set again');
  t.deepEqual(ok(run(env, mon, { prefix: 'osd pg-temp ls' }))['pgTemp'], []);
  t.is(code(run(env, mon, { prefix: 'osd pg-temp rm', pg: '0.2' })), 'CLU_ERR_NOT_FOUND');
  t.regex(formatCommandResult('osd pg-temp rm', rm), /^pg_temp of 0\.2 removed \(epoch \d+\)/);
  // The up primary may ask again: nothing stops it.
  mon.pgTemp(up[0]!, '0.2', [c, ...up], (e) => { if (e) throw e; });
  env.advance(100);
  t.deepEqual(mon.map().pgTemp.get('0.2'), [c, ...up]);
});

test('caps: pg ls and osd pg-temp ls need allow r; osd pg-temp rm needs allow rw or *', (t) => {
  const caps = (m: string): Caps => { const p = parseCaps({ mon: m }); if (p instanceof ClusterError) throw p; return p; };
  const cmd = (o: Record<string, unknown>): MonCommand => { const p = parseMonCommand(o); if (p instanceof ClusterError) throw p; return p; };
  const cmds = [cmd({ prefix: 'pg ls', pool: 'rbd', state: 'degraded' }), cmd({ prefix: 'osd pg-temp ls' }), cmd({ prefix: 'osd pg-temp rm', pg: '1.3' })];
  t.deepEqual(cmds.map((c) => monCommandAllowed(caps('allow r'), c)), [true, true, false]);
  t.deepEqual(cmds.map((c) => monCommandAllowed(caps('allow rw'), c)), [true, true, true]);
  t.deepEqual(cmds.map((c) => monCommandAllowed(caps('allow *'), c)), [true, true, true]);
  t.deepEqual(cmds.map((c) => monCommandAllowed(caps('profile rbd'), c)), [true, true, false]);
  t.is(describeError(new ClusterError('CLU_ERR_PERM', 'x')).exitCode, 5);
});

test('CLI words: strata pg ls [POOL] [--state WORD], strata osd pg-temp ls|rm PGID; bad input is a usage error (exit 2)', (t) => {
  const o = { json: false, timeoutMs: 1, output: undefined, size: 3, minSize: 2, pgNum: 8, failureDomain: 'host', caps: [], repair: false, maxChanges: undefined, maxDeviation: undefined };
  t.deepEqual(buildCommand(['pg', 'ls'], o), { kind: 'mon', cmd: { prefix: 'pg ls' } });
  t.deepEqual(buildCommand(['pg', 'ls', 'vms'], { ...o, state: 'degraded' }), { kind: 'mon', cmd: { prefix: 'pg ls', pool: 'vms', state: 'degraded' } });
  t.deepEqual(buildCommand(['pg', 'ls'], { ...o, state: 'stale' }), { kind: 'mon', cmd: { prefix: 'pg ls', state: 'stale' } });
  t.deepEqual(buildCommand(['osd', 'pg-temp', 'ls'], o), { kind: 'mon', cmd: { prefix: 'osd pg-temp ls' } });
  t.deepEqual(buildCommand(['osd', 'pg-temp', 'rm', '1.1f'], o), { kind: 'mon', cmd: { prefix: 'osd pg-temp rm', pg: '1.1f' } });
  const usage = (f: () => unknown): number => describeError(t.throws(f)).exitCode;
  t.is(usage(() => buildCommand(['pg', 'ls'], { ...o, state: 'sad' })), 2);
  t.is(usage(() => buildCommand(['pg', 'ls', 'a', 'b'], o)), 2);
  t.is(usage(() => buildCommand(['osd', 'pg-temp', 'rm', 'nope'], o)), 2);
  t.is(usage(() => buildCommand(['osd', 'pg-temp', 'rm'], o)), 2);
  t.is(usage(() => buildCommand(['osd', 'pg-temp', 'ls', '1.0'], o)), 2);
  t.is(formatCommandResult('pg ls', { epoch: 4, staleMs: 3000, pgs: [] }), '0 pgs (epoch 4; stale = no report from the primary for 3.0 s)');
  t.is(formatCommandResult('osd pg-temp ls', { epoch: 4, pgTemp: [] }), '0 pg_temp entries (epoch 4)');
});
