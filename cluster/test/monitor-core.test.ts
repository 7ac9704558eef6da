/**
 * MonitorCore on the manual-clock TestEnv: boots assign ids and mark up, missing beacons mark
 * down within the grace and out after the interval, connection-refused is immediate, peer
 * timeout reports need two reporters, changes batch into one epoch, subscribers get
 * incrementals (or a full map when far behind), pools validate, and the map survives a
 * monitor crash + restart on the same disk.
 */
import test from 'ava';
import { parsePgId } from '../src/common/ids.js';
import { pgToOsds } from '../src/placement/placement.js';
import type { ClusterError } from '../src/common/errors.js';
import type { Epoch, OsdId, PoolId } from '../src/common/ids.js';
import { FileMonStore } from '../src/mon/file-mon-store.js';
import { MonitorCore } from '../src/mon/monitor-core.js';
import type { MapUpdate } from '../src/mon/monitor-core.js';
import { TestEnv } from './sim-env.js';

const GRACE = 3000;
const DOWN_OUT = 60_000;

function startMon(env: TestEnv): MonitorCore {
  const store = new FileMonStore({ env, dir: '/mon' });
  store.open((e) => { if (e) throw e; });
  env.settle();
  const mon = new MonitorCore({ env, store, fsid: 'test-fsid', osdGraceMs: GRACE, downOutIntervalMs: DOWN_OUT });
  let started = false;
  mon.start((e) => { if (e) throw e; started = true; });
  env.settle();
  if (!started) throw new Error('mon did not start');
  return mon;
}

function bootThree(env: TestEnv, mon: MonitorCore): OsdId[] {
  const ids: OsdId[] = [];
  for (let i = 0; i < 3; i++) {
    mon.osdBoot({ uuid: `u${i}`, addr: `127.0.0.1:${6800 + i}`, location: { host: `h${i}` } }, (err, r) => {
      if (err || r === undefined) throw err ?? new Error('no result');
      ids.push(r.osdId);
    });
  }
  env.advance(100);
  return ids;
}

/** Beacons from `ids` every second for `ms`. */
function beat(env: TestEnv, mon: MonitorCore, ids: OsdId[], ms: number): void {
  for (let t = 0; t < ms; t += 1000) {
    for (const id of ids) mon.osdBeacon(id);
    env.advance(1000);
  }
}

test('three boots get ids 0..2, are up+in, and batch into one epoch', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  t.is(mon.map().epoch, 1 as Epoch);
  t.deepEqual(bootThree(env, mon), [0, 1, 2]);
  const map = mon.map();
  t.is(map.epoch, 2 as Epoch, 'one proposal for three boots');
  for (const o of map.osds.values()) t.true(o.up && o.in && o.upFrom === 2);
  t.deepEqual(mon.osdTree().map((r) => r.name), ['default', 'h0', 'osd.0', 'h1', 'osd.1', 'h2', 'osd.2']);
});

test('an OSD whose beacons stop is down within the grace and out after the interval', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const ids = bootThree(env, mon);
  beat(env, mon, ids, 5000);
  const stopAt = env.nowMs();
  let downAtMs = -1;
  for (let ms = 0; ms < 10_000 && downAtMs < 0; ms += 100) {
    mon.osdBeacon(0 as OsdId);
    mon.osdBeacon(1 as OsdId);
    env.advance(100);
    if (mon.map().osds.get(2 as OsdId)?.up === false) downAtMs = env.nowMs() - stopAt;
  }
  t.true(downAtMs > GRACE - 1000 && downAtMs <= GRACE + 1000, `down after ${downAtMs} ms`);
  t.true(mon.map().osds.get(2 as OsdId)?.in);
  t.is(mon.osdBeacon(2 as OsdId), 'boot-required');
  beat(env, mon, [0, 1].map((n) => n as OsdId), DOWN_OUT + 2000);
  t.false(mon.map().osds.get(2 as OsdId)?.in, 'marked out');
  t.is(mon.status().health, 'HEALTH_WARN');
  // Boot again: up and back in (the monitor, not an admin, had marked it out).
  mon.osdBoot({ uuid: 'u2', addr: '127.0.0.1:6900', location: { host: 'h2' } }, () => undefined);
  env.advance(100);
  const o = mon.map().osds.get(2 as OsdId);
  t.true(o?.up && o.in);
  t.is(o?.addr, '127.0.0.1:6900');
});

test('connection refused marks down immediately; timeouts need two reporters', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const ids = bootThree(env, mon);
  beat(env, mon, ids, 1000);
  mon.reportFailure('client.x', 1 as OsdId, 'refused');
  env.advance(100);
  t.false(mon.map().osds.get(1 as OsdId)?.up);
  mon.osdBoot({ uuid: 'u1', addr: '127.0.0.1:6801', location: { host: 'h1' } }, () => undefined);
  env.advance(100);
  mon.reportFailure('osd.0', 2 as OsdId, 'timeout');
  env.advance(100);
  t.true(mon.map().osds.get(2 as OsdId)?.up, 'one reporter is not enough');
  mon.reportFailure('osd.1', 2 as OsdId, 'timeout');
  env.advance(100);
  t.false(mon.map().osds.get(2 as OsdId)?.up);
});

test('failure reports from an OSD that is down in the map are ignored (sim seed 0x54)', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const ids = bootThree(env, mon);
  beat(env, mon, ids, 1000);
  mon.reportFailure('client.x', 2 as OsdId, 'refused');
  env.advance(100);
  t.false(mon.map().osds.get(2 as OsdId)?.up, 'osd.2 is down');
  mon.reportFailure('osd.2', 0 as OsdId, 'refused'); // replayed after a partition healed
  mon.reportFailure('osd.2', 1 as OsdId, 'timeout');
  env.advance(100);
  t.true(mon.map().osds.get(0 as OsdId)?.up, 'a down reporter cannot mark osd.0 down');
  t.true(mon.map().osds.get(1 as OsdId)?.up);
  mon.reportFailure('osd.1', 0 as OsdId, 'refused');
  env.advance(100);
  t.false(mon.map().osds.get(0 as OsdId)?.up, 'an up reporter still can');
});

test('subscribers get each new epoch as an incremental, late ones catch up, far-behind ones get a full map', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const got: MapUpdate[] = [];
  mon.subscribe(1, (u) => got.push(u));
  bootThree(env, mon);
  t.is(got.length, 1);
  t.is(got[0]?.kind, 'incrementals');
  const late: MapUpdate[] = [];
  mon.subscribe(0, (u) => late.push(u));
  env.settle();
  t.deepEqual(late.map((u) => (u.kind === 'incrementals' ? u.incrementals.map((i) => i.epoch) : 'full')), [[1, 2]]);
  const ahead: MapUpdate[] = [];
  mon.subscribe(99, (u) => ahead.push(u));
  env.settle();
  t.is(ahead[0]?.kind, 'full');
});

test('pool create/set/ls validate and allocate ids', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const errs: (ClusterError | null)[] = [];
  const slot = (i: number) => (e: ClusterError | null) => { errs[i] = e; };
  mon.poolCreate({ name: 'vms', pgNum: 32 }, (e, r) => { errs[0] = e; t.is(r?.poolId, 0 as PoolId); });
  mon.poolCreate({ name: 'vms' }, slot(1));
  mon.poolCreate({ name: 'bad', size: 2, minSize: 3 }, slot(2));
  env.advance(100);
  mon.poolSet('vms', { pgNum: 64 }, slot(3));
  mon.poolSet('vms', { pgNum: 16 }, slot(4));
  mon.poolSet('nope', { size: 2 }, slot(5));
  env.advance(100);
  t.deepEqual(errs.map((e) => e?.code ?? null), [null, 'CLU_ERR_EXISTS', 'CLU_ERR_INVALID', null, 'CLU_ERR_INVALID', 'CLU_ERR_NOT_FOUND']);
  t.deepEqual(mon.poolLs().map((p) => [p.name, p.pgNum]), [['vms', 64]]);
});

test('status counts OSDs and reported PG states', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const ids = bootThree(env, mon);
  mon.poolCreate({ name: 'rbd', pgNum: 4 }, () => undefined);
  env.advance(100);
  const primary = (pg: string): OsdId => pgToOsds(mon.map(), parsePgId(pg)!).primary as OsdId;
  const report = (states: Record<string, string>): void => {
    for (const id of ids) {
      const mine = Object.fromEntries(Object.entries(states).filter(([pg]) => primary(pg) === id));
      mon.reportPgStates(id, mine);
    }
  };
  report({ '0.0': 'active+clean', '0.1': 'active+clean', '0.2': 'peering' });
  const s = mon.status();
  t.deepEqual(s.osds, { total: 3, up: 3, in: 3 });
  t.deepEqual(s.pgStates, { 'active+clean': 2, peering: 1, unknown: 1 });
  t.is(s.health, 'HEALTH_WARN');
  report({ '0.0': 'active+clean', '0.1': 'active+clean', '0.2': 'active+clean', '0.3': 'active+clean' });
  t.is(mon.status().health, 'HEALTH_OK');
});

test('a PG state reported by an OSD that is not its primary is ignored (sim seed 0xd)', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const ids = bootThree(env, mon);
  mon.poolCreate({ name: 'rbd', pgNum: 4 }, () => undefined);
  env.advance(100);
  const p = pgToOsds(mon.map(), parsePgId('0.0')!).primary as OsdId;
  const other = ids.find((id) => id !== p)!;
  mon.reportPgStates(p, { '0.0': 'active+clean' });
  mon.reportPgStates(other, { '0.0': 'peering' }); // stale: `other` replays an old epoch
  t.is(mon.status().pgStates['active+clean'], 1);
  t.is(mon.status().pgStates['peering'], undefined);
  mon.reportPgStates(other, {}); // its next report omits the PG: the primary's entry stays
  t.is(mon.status().pgStates['active+clean'], 1);
});

test('the map survives a monitor crash and restart; up OSDs get a fresh grace', (t) => {
  const env = new TestEnv();
  let mon = startMon(env);
  bootThree(env, mon);
  mon.poolCreate({ name: 'rbd' }, () => undefined);
  env.advance(100);
  const epoch = mon.map().epoch;
  mon.stop();
  env.dropTimers();
  env.disk.crash();
  mon = startMon(env);
  t.is(mon.map().epoch, epoch);
  t.is(mon.map().fsid, 'test-fsid');
  t.is(mon.poolLs().length, 1);
  env.advance(GRACE - 500);
  t.true([...mon.map().osds.values()].every((o) => o.up), 'no false down right after restart');
  env.advance(GRACE + 1000);
  t.true([...mon.map().osds.values()].every((o) => !o.up), 'silent OSDs go down after the grace');
});

/** Crash + restart of the monitor on the same disk (timers dropped, unsynced data lost). */
function restartMon(env: TestEnv, mon: MonitorCore): MonitorCore {
  mon.stop();
  env.dropTimers();
  env.disk.crash();
  return startMon(env);
}

/** Lets osd.2 go silent until the monitor marks it down and then (auto-)out. */
function autoOutOsd2(env: TestEnv, mon: MonitorCore): void {
  beat(env, mon, [0, 1].map((n) => n as OsdId), GRACE + DOWN_OUT + 3000);
}

test('auto-out survives a monitor restart: the OSD\'s boot after it marks it in again (sim seed 0xb4969e75f120c4ad)', (t) => {
  const env = new TestEnv();
  let mon = startMon(env);
  bootThree(env, mon);
  autoOutOsd2(env, mon);
  const out = mon.map().osds.get(2 as OsdId);
  t.true(out !== undefined && !out.up && !out.in && out.autoOut, 'down, out, auto-out in the committed map');
  mon = restartMon(env, mon);
  t.true(mon.map().osds.get(2 as OsdId)?.autoOut, 'auto-out read back from the store');
  mon.osdBoot({ uuid: 'u2', addr: '127.0.0.1:6900', location: { host: 'h2' } }, () => undefined);
  env.advance(100);
  const o = mon.map().osds.get(2 as OsdId);
  t.true(o?.up && o.in, 'boot after the restart marks it in');
  t.false(o?.autoOut);
  // And that too is durable: another restart keeps it in, with no auto-out bit left over.
  mon = restartMon(env, mon);
  t.true(mon.map().osds.get(2 as OsdId)?.in);
  t.false(mon.map().osds.get(2 as OsdId)?.autoOut);
});

test('an operator\'s osd out sticks across boots and monitor restarts; osd in clears an auto-out', (t) => {
  const env = new TestEnv();
  let mon = startMon(env);
  bootThree(env, mon);
  const admin = (id: number, action: 'out' | 'in'): void => {
    let done = false;
    mon.osdAdmin(id as OsdId, action, (err) => { if (err) throw err; done = true; });
    env.advance(100);
    if (!done) throw new Error(`osd ${action} not answered`);
  };
  // Manual out of an up OSD, then it restarts: stays out, before and after a monitor restart.
  admin(1, 'out');
  t.false(mon.map().osds.get(1 as OsdId)?.autoOut);
  mon = restartMon(env, mon);
  mon.osdBoot({ uuid: 'u1', addr: '127.0.0.1:6801', location: { host: 'h1' } }, () => undefined);
  env.advance(100);
  t.true(mon.map().osds.get(1 as OsdId)?.up);
  t.false(mon.map().osds.get(1 as OsdId)?.in, 'an admin out is not undone by boot');
  admin(1, 'in');
  // An operator who marks an auto-out OSD out again makes it theirs: boot leaves it out.
  autoOutOsd2(env, mon);
  t.true(mon.map().osds.get(2 as OsdId)?.autoOut);
  admin(2, 'out');
  t.false(mon.map().osds.get(2 as OsdId)?.autoOut, 'the operator\'s out replaces the auto-out');
  mon = restartMon(env, mon);
  mon.osdBoot({ uuid: 'u2', addr: '127.0.0.1:6802', location: { host: 'h2' } }, () => undefined);
  env.advance(100);
  t.true(mon.map().osds.get(2 as OsdId)?.up);
  t.false(mon.map().osds.get(2 as OsdId)?.in, 'still out after boot');
  // `osd in` of an auto-out OSD clears the bit (the map never has an in OSD marked auto-out).
  mon.osdBoot({ uuid: 'u0', addr: '127.0.0.1:6800', location: { host: 'h0' } }, () => undefined);
  env.advance(100);
  beat(env, mon, [1, 2].map((n) => n as OsdId), GRACE + DOWN_OUT + 3000);
  t.true(mon.map().osds.get(0 as OsdId)?.autoOut);
  admin(0, 'in');
  t.true(mon.map().osds.get(0 as OsdId)?.in);
  t.false(mon.map().osds.get(0 as OsdId)?.autoOut);
});

test('a boot with a uuid that belongs to another id is refused', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  bootThree(env, mon);
  let code: string | undefined;
  mon.osdBoot({ uuid: 'u1', osdId: 2, addr: '127.0.0.1:1', location: { host: 'h1' } }, (e) => { code = e?.code; });
  env.advance(100);
  t.is(code, 'CLU_ERR_PERM');
});

test('pg history: only the up primary for its exact acting set may add/reset; answered after the commit, at once when already recorded', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const ids = bootThree(env, mon);
  mon.poolCreate({ name: 'rbd', pgNum: 4 }, () => undefined);
  env.advance(100);
  const acting = [...pgToOsds(mon.map(), parsePgId('0.2')!).acting] as OsdId[];
  const primary = acting[0]!;
  const other = ids.find((id) => id !== primary)!;
  const results: { code: string | null; epoch?: number }[] = [];
  const cb = (e: ClusterError | null, r?: { epoch: Epoch }): void => { results.push(r === undefined ? { code: e?.code ?? null } : { code: null, epoch: r.epoch }); };
  const before = mon.map().epoch;
  mon.pgHistory(other, '0.2', 'add', acting, cb); // not the primary
  mon.pgHistory(primary, '0.2', 'add', acting.slice(0, 2), cb); // not the acting set
  mon.pgHistory(primary, '0.2', 'add', [...acting].reverse(), cb); // the same OSDs in another order: another set
  mon.pgHistory(primary, '0.9', 'add', acting, cb); // no such PG
  mon.pgHistory(primary, 'x', 'add', acting, cb);
  env.advance(1);
  t.deepEqual(results.map((r) => r.code), ['CLU_ERR_EPOCH_STALE', 'CLU_ERR_EPOCH_STALE', 'CLU_ERR_EPOCH_STALE', 'CLU_ERR_NOT_FOUND', 'CLU_ERR_NOT_FOUND']);
  t.is(mon.map().epoch, before, 'refusals change nothing');
  results.length = 0;
  // Valid: the reply waits for the commit (no reply on this turn), batched with other changes.
  mon.pgHistory(primary, '0.2', 'add', acting, cb);
  mon.poolCreate({ name: 'other', pgNum: 1 }, () => undefined);
  t.is(results.length, 0);
  env.advance(100);
  t.deepEqual(results, [{ code: null, epoch: before + 1 }]);
  t.deepEqual(mon.map().pgHistory.get('0.2'), [acting]);
  // Already recorded: answered at once with the current epoch, no new epoch.
  mon.pgHistory(primary, '0.2', 'add', acting, cb);
  env.advance(1);
  t.deepEqual(results[1], { code: null, epoch: before + 1 });
  t.is(mon.map().epoch as number, before + 1);
  // The primary goes down: its acting set changes; the old primary is refused (not up), the new
  // primary may add its set; a reset from the new primary then leaves exactly its set.
  mon.osdAdmin(primary, 'down', () => undefined);
  env.advance(100);
  const acting2 = [...pgToOsds(mon.map(), parsePgId('0.2')!).acting] as OsdId[];
  mon.pgHistory(primary, '0.2', 'add', acting, cb);
  mon.pgHistory(acting2[0]!, '0.2', 'add', acting2, cb);
  env.advance(100);
  t.deepEqual(results.slice(2).map((r) => r.code), ['CLU_ERR_PERM', null]);
  t.deepEqual(mon.map().pgHistory.get('0.2'), [acting, acting2]);
  mon.pgHistory(acting2[0]!, '0.2', 'reset', acting2, cb);
  env.advance(100);
  t.is(results[4]?.code, null);
  t.deepEqual(mon.map().pgHistory.get('0.2'), [acting2]);
  // A change staged on the projected map is validated against it: the acting set about to
  // change (pending boot of the old primary) refuses the soon-stale set.
  mon.osdBoot({ uuid: `u${primary}`, addr: `127.0.0.1:${6800 + primary}`, location: { host: `h${primary}` } }, () => undefined);
  mon.pgHistory(acting2[0]!, '0.2', 'add', acting2, cb);
  env.advance(100);
  t.is(results[5]?.code, 'CLU_ERR_EPOCH_STALE');
});

test('pool set pgNum 4 → 8: each child gets its parent\'s history (or acting set) in the pgNum epoch; a shrink is refused', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  // Five OSDs on five hosts, so parents have different acting sets.
  const ids: OsdId[] = [];
  for (let i = 0; i < 5; i++) {
    mon.osdBoot({ uuid: `u${i}`, addr: `127.0.0.1:${6800 + i}`, location: { host: `h${i}` } }, (err, r) => { if (err || r === undefined) throw err ?? new Error('no result'); ids.push(r.osdId); });
  }
  env.advance(100);
  mon.poolCreate({ name: 'rbd', pgNum: 4 }, () => undefined);
  env.advance(100);
  // pg 0.1 records two sets: its acting set, then (its primary marked down) the new one.
  const set1 = [...pgToOsds(mon.map(), parsePgId('0.1')!).acting] as OsdId[];
  const codes: (string | null)[] = [];
  const cb = (e: ClusterError | null): void => { codes.push(e?.code ?? null); };
  mon.pgHistory(set1[0]!, '0.1', 'add', set1, cb);
  env.advance(100);
  mon.osdAdmin(set1[0]!, 'down', cb);
  env.advance(100);
  const set2 = [...pgToOsds(mon.map(), parsePgId('0.1')!).acting] as OsdId[];
  t.notDeepEqual(set2, set1);
  mon.pgHistory(set2[0]!, '0.1', 'add', set2, cb);
  env.advance(100);
  t.deepEqual(codes, [null, null, null]);
  t.deepEqual(mon.map().pgHistory.get('0.1'), [set1, set2]);
  t.is(mon.map().pgHistory.get('0.0'), undefined, 'pg 0.0 never recorded a set');

  const before = mon.map();
  const parentActing = (seed: number): OsdId[] => [...pgToOsds(before, parsePgId(`0.${seed}`)!).acting] as OsdId[];
  const updates: MapUpdate[] = [];
  mon.subscribe(before.epoch, (u) => updates.push(u));
  let grown: { code: string | null; epoch?: number } | undefined;
  mon.poolSet('rbd', { pgNum: 8 }, (e, r) => { grown = { code: e?.code ?? null, ...(r === undefined ? {} : { epoch: r.epoch }) }; });
  env.advance(100);
  const after = mon.map();
  t.deepEqual(grown, { code: null, epoch: before.epoch + 1 });
  t.is(after.epoch as number, before.epoch + 1, 'one epoch for the growth and the history copy');
  t.is(after.pools.get(0 as PoolId)?.pgNum, 8);
  // stable_mod(c, 4) for c in 4..7 is c − 4: 0.4 ← 0.0, 0.5 ← 0.1, 0.6 ← 0.2, 0.7 ← 0.3.
  t.deepEqual(after.pgHistory.get('0.5'), [set1, set2], 'the child of 0.1 has both of its sets');
  t.deepEqual(after.pgHistory.get('0.4'), [parentActing(0)], 'a parent without history: its acting set');
  t.deepEqual(after.pgHistory.get('0.6'), [parentActing(2)]);
  t.deepEqual(after.pgHistory.get('0.7'), [parentActing(3)]);
  t.deepEqual(after.pgHistory.get('0.1'), [set1, set2], 'the parent keeps its history');
  t.is(after.pgHistory.get('0.0'), undefined);
  // The subscriber sees it as one incremental: pool-set first, then the copies.
  t.deepEqual(updates.map((u) => u.kind), ['incrementals']);
  const incs = updates.flatMap((u) => (u.kind === 'incrementals' ? u.incrementals : []));
  t.is(incs.length, 1);
  t.deepEqual(incs[0]?.ops.map((op) => op.op), ['pool-set', 'pg-history-add', 'pg-history-add', 'pg-history-add', 'pg-history-add', 'pg-history-add']);

  // A shrink (and a no-op growth) copies nothing; the shrink is refused and changes nothing.
  const errs: (string | null)[] = [];
  mon.poolSet('rbd', { pgNum: 4 }, (e) => errs.push(e?.code ?? null));
  env.advance(100);
  t.deepEqual(errs, ['CLU_ERR_INVALID']);
  t.is(mon.map().epoch, after.epoch, 'a refused shrink makes no epoch');
  t.is(mon.map().pools.get(0 as PoolId)?.pgNum, 8);
  t.deepEqual([...mon.map().pgHistory.keys()].sort(), ['0.1', '0.4', '0.5', '0.6', '0.7']);
});
