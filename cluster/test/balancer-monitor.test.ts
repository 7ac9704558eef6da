/**
 * The balancer in the monitor (TestEnv, manual clock): `balancer run` through the admin
 * command path stages the upmaps as ONE new epoch, subscribers get them as an incremental,
 * clients' pgToOsds sees them, a second run changes nothing, `balancer status` reports
 * per-OSD counts, the upmaps survive a monitor crash (map codec v2 on disk), and the
 * automatic mode runs only after the map has settled.
 */
import test from 'ava';
import type { ClusterError } from '../src/common/errors.js';
import type { Epoch, PoolId } from '../src/common/ids.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { applyIncremental } from '../src/map/incremental.js';
import { FileMonStore } from '../src/mon/file-mon-store.js';
import { executeMonCommand } from '../src/mon/mon-commands.js';
import type { MonCommandContext } from '../src/mon/mon-commands.js';
import { decodeMapUpdate, encodeMapUpdate, monCommandNeedsWrite, parseMonCommand } from '../src/mon/mon-protocol.js';
import type { MonCommand } from '../src/mon/mon-protocol.js';
import { MonitorCore } from '../src/mon/monitor-core.js';
import type { MapUpdate, MonitorCoreOptions } from '../src/mon/monitor-core.js';
import { mapAllPgs } from '../src/placement/placement.js';
import { measureUniformity } from '../src/placement/placement-stats.js';
import { formatBalancer } from '../src/bin/cli.js';
import { TestEnv } from './sim-env.js';

type Extra = Partial<Omit<MonitorCoreOptions, 'env' | 'store'>>;

function startMon(env: TestEnv, extra: Extra = {}): MonitorCore {
  const store = new FileMonStore({ env, dir: '/mon' });
  store.open((e) => { if (e) throw e; });
  env.settle();
  const mon = new MonitorCore({ env, store, fsid: 'test-fsid', osdGraceMs: 3000, downOutIntervalMs: 600_000, ...extra });
  let started = false;
  mon.start((e) => { if (e) throw e; started = true; });
  env.settle();
  if (!started) throw new Error('mon did not start');
  return mon;
}

/** 16 OSDs on 8 hosts and a 1024-PG pool. */
function populate(env: TestEnv, mon: MonitorCore): void {
  for (let i = 0; i < 16; i++) mon.osdBoot({ uuid: `u${i}`, addr: `127.0.0.1:${6800 + i}`, location: { host: `h${i % 8}` } }, (e) => { if (e) throw e; });
  mon.poolCreate({ name: 'rbd', pgNum: 1024 }, (e) => { if (e) throw e; });
  env.advance(100);
}

/** Runs an admin command as the messenger glue would (JSON → parse → execute). */
function command(env: TestEnv, mon: MonitorCore, json: Record<string, unknown>): Record<string, unknown> {
  const cmd = parseMonCommand(json);
  if (!('prefix' in cmd)) throw cmd;
  const ctx = { env, core: mon, auth: undefined, requesterKey: undefined, closeSessionsOf: () => undefined } as unknown as MonCommandContext;
  let out: Record<string, unknown> | undefined;
  let err: ClusterError | null = null;
  executeMonCommand(ctx, cmd as MonCommand, (e, r) => { err = e; out = r; });
  env.advance(100);
  if (err !== null) throw err;
  if (out === undefined) throw new Error('no answer');
  return out;
}

function hostsDistinct(map: ClusterMap): boolean {
  const pool = map.pools.get(0 as PoolId)!;
  return mapAllPgs(map, pool).every((m) => new Set(m.raw.map((id) => map.osds.get(id)?.location.host)).size === m.raw.length);
}

test('balancer run: one new epoch, pushed as an incremental, ≤ 5 % after, second run is a no-op', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  populate(env, mon);
  const before = mon.map();
  const pool = before.pools.get(0 as PoolId)!;
  t.true(measureUniformity(before, pool).maxOverPct > 5);
  const updates: MapUpdate[] = [];
  mon.subscribe(before.epoch, (u) => updates.push(u));
  env.settle();
  const r = command(env, mon, { prefix: 'balancer run' });
  const after = mon.map();
  t.is(after.epoch, (before.epoch + 1) as Epoch);
  t.is(r['epoch'], after.epoch);
  t.true(Number(r['moves']) > 0);
  t.is(r['changedPgs'], after.pgUpmapItems.size);
  const u = measureUniformity(after, after.pools.get(0 as PoolId)!);
  t.true(u.maxOverPct <= 5 && u.maxUnderPct <= 5, JSON.stringify(u));
  t.true(hostsDistinct(after));
  // The subscriber got exactly one incremental (through the wire codec) and computes the same placement.
  t.is(updates.length, 1);
  const wire = decodeMapUpdate(encodeMapUpdate(updates[0]!));
  t.is(wire.kind, 'incrementals');
  if (wire.kind !== 'incrementals') return;
  const client = applyIncremental(before, wire.incrementals[0]!);
  t.deepEqual(mapAllPgs(client, pool), mapAllPgs(after, pool));
  // Idempotent: nothing to do, no new epoch.
  const again = command(env, mon, { prefix: 'balancer run' });
  t.is(again['changedPgs'], 0);
  t.is(again['moves'], 0);
  t.is(mon.map().epoch, after.epoch);
  t.regex(formatBalancer('balancer run', again), /nothing to do/);
  t.regex(formatBalancer('balancer run', r), /replica moves/);
});

test('balancer status reports per-OSD counts; max-changes bounds one run', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  populate(env, mon);
  const s0 = command(env, mon, { prefix: 'balancer status' });
  const pools = s0['pools'] as { maxDeviation: number; osds: { osd: number; count: number; target: number }[] }[];
  t.is(pools.length, 1);
  t.is(pools[0]!.osds.length, 16);
  t.is(pools[0]!.osds.reduce((a, o) => a + o.count, 0), 3072);
  t.true(pools[0]!.maxDeviation > 1);
  t.is(s0['auto'], false);
  t.regex(formatBalancer('balancer status', s0), /osd\.15/);
  const r = command(env, mon, { prefix: 'balancer run', maxChanges: 3 });
  t.is(r['moves'], 3);
  const s1 = command(env, mon, { prefix: 'balancer status' });
  t.is(s1['lastRunEpoch'], r['epoch']);
});

test('upmaps survive a monitor crash and restart', (t) => {
  const env = new TestEnv();
  let mon = startMon(env);
  populate(env, mon);
  command(env, mon, { prefix: 'balancer run' });
  const map = mon.map();
  t.true(map.pgUpmapItems.size > 0);
  mon.stop();
  env.dropTimers();
  env.disk.crash();
  mon = startMon(env);
  t.is(mon.map().epoch, map.epoch);
  t.deepEqual([...mon.map().pgUpmapItems], [...map.pgUpmapItems]);
});

test('automatic mode: off by default; on, it waits for the map to settle, then balances', (t) => {
  const env = new TestEnv();
  const off = startMon(env);
  populate(env, off);
  env.advance(5000);
  t.is(off.map().pgUpmapItems.size, 0);
  off.stop();
  env.dropTimers();

  const env2 = new TestEnv();
  const mon = startMon(env2, { balancerAuto: true, balancerSettleMs: 10_000, balancerAutoMaxChanges: 1000, osdGraceMs: 1_000_000 });
  populate(env2, mon);
  const epoch = mon.map().epoch;
  env2.advance(5000);
  t.is(mon.map().epoch, epoch, 'not before the settle time');
  env2.advance(10_000);
  t.true(mon.map().epoch > epoch);
  const u = measureUniformity(mon.map(), mon.map().pools.get(0 as PoolId)!);
  t.true(u.maxOverPct <= 5 && u.maxUnderPct <= 5);
  const balancedEpoch = mon.map().epoch;
  env2.advance(60_000);
  t.is(mon.map().epoch, balancedEpoch, 'a balanced map is left alone');
});

test('balancer command parsing and caps', (t) => {
  t.deepEqual(parseMonCommand({ prefix: 'balancer run', maxChanges: 10 }), { prefix: 'balancer run', maxChanges: 10 });
  t.deepEqual(parseMonCommand({ prefix: 'balancer run' }), { prefix: 'balancer run' });
  t.is((parseMonCommand({ prefix: 'balancer run', maxChanges: -1 }) as ClusterError).code, 'CLU_ERR_INVALID');
  t.is((parseMonCommand({ prefix: 'balancer run', maxDeviation: 0 }) as ClusterError).code, 'CLU_ERR_INVALID');
  t.true(monCommandNeedsWrite({ prefix: 'balancer run' }));
  t.false(monCommandNeedsWrite({ prefix: 'balancer status' }));
});
