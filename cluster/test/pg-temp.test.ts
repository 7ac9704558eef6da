/**
 * pg_temp (docs/replication.md §4 step 5a, docs/cluster-map.md): the map field and its ops
 * (validation, drops on OSD/pool removal and pgNum change, diffOps), the codec (v6 only when
 * an entry exists; older versions refuse the new ops), placement (acting = the entry minus
 * down OSDs, primary its first member, up unchanged) and the monitor's rules (who may set or
 * clear, batching, dropping entries that became stale).
 */
import test from 'ava';
import { isClusterError } from '../src/common/errors.js';
import type { ClusterError } from '../src/common/errors.js';
import type { Epoch, OsdId, PgSeed, PoolId } from '../src/common/ids.js';
import { parsePgId } from '../src/common/ids.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { applyIncremental, diffOps } from '../src/map/incremental.js';
import type { Incremental, MapOp } from '../src/map/incremental.js';
import { buildMap, evenOsds, nextMap } from '../src/map/map-builder.js';
import { decodeIncremental, decodeMap, encodeIncremental, encodeMap } from '../src/map/map-codec.js';
import { formatCommandResult } from '../src/bin/cli-format.js';
import { FileMonStore } from '../src/mon/file-mon-store.js';
import { mapToJson } from '../src/mon/mon-commands.js';
import { MonitorCore } from '../src/mon/monitor-core.js';
import { decodePgTemp, encodePgTemp } from '../src/mon/mon-protocol.js';
import { staleTempOps } from '../src/mon/pg-temp.js';
import { pgToOsds } from '../src/placement/placement.js';
import { TestEnv } from './sim-env.js';

const PG = { pool: 1 as PoolId, seed: 3 as PgSeed };
const set = (osds: number[]): MapOp => ({ op: 'pg-temp-set', pg: PG, osds: osds as OsdId[] });
const rm: MapOp = { op: 'pg-temp-rm', pg: PG };

function base(): ClusterMap {
  return buildMap({ osds: evenOsds(6, 6), pools: [{ id: 1, name: 'rbd', pgNum: 8, size: 3 }] });
}

/** An OSD outside PG's up set (the "complete" one of the tests). */
function outsider(m: ClusterMap): OsdId {
  const up = pgToOsds(m, PG).up;
  return [...m.osds.keys()].find((id) => !up.includes(id))!;
}

test('placement: acting = pg_temp minus down OSDs, primary its first member; up unchanged; empty after filtering = up', (t) => {
  const m0 = base();
  const up = [...pgToOsds(m0, PG).up];
  const c = outsider(m0);
  const m1 = nextMap(m0, [set([c, ...up])]);
  const x = pgToOsds(m1, PG);
  t.deepEqual(x.up, up, 'up does not depend on pg_temp');
  t.deepEqual(x.acting, [c, ...up]);
  t.is(x.primary, c);
  t.deepEqual(pgToOsds(m1, { pool: 1 as PoolId, seed: 4 as PgSeed }), pgToOsds(m0, { pool: 1 as PoolId, seed: 4 as PgSeed }), 'other PGs unaffected');
  // A down member is filtered out (order kept); the temp primary down → the next member leads.
  const m2 = nextMap(m1, [{ op: 'osd-set', id: c, changes: { up: false } }]);
  t.deepEqual(pgToOsds(m2, PG).acting, up);
  t.is(pgToOsds(m2, PG).primary, up[0]!);
  // An entry with no member up is ignored: acting = up.
  const m3 = nextMap(m0, [set([c])]);
  const m4 = nextMap(m3, [{ op: 'osd-set', id: c, changes: { up: false } }]);
  t.deepEqual(pgToOsds(m4, PG).acting, pgToOsds(m4, PG).up);
});

test('map ops: set replaces, rm drops; invalid entries are refused whole; osd-remove, pool-remove and a pgNum change drop entries', (t) => {
  const m0 = base();
  const c = outsider(m0);
  const up = [...pgToOsds(m0, PG).up];
  const m1 = nextMap(m0, [set([c, ...up])]);
  t.is(m0.pgTemp.size, 0, 'copy-on-write');
  t.deepEqual(m1.pgTemp.get('1.3'), [c, ...up]);
  t.is(nextMap(m1, [{ op: 'osd-set', id: 0 as OsdId, changes: { weight: 0x8000 } }]).pgTemp, m1.pgTemp, 'untouched epochs share the table');
  t.false(nextMap(m1, [rm]).pgTemp.has('1.3'));
  const refuse = (ops: MapOp[], map = m0): void => {
    const e = t.throws(() => nextMap(map, ops));
    t.true(isClusterError(e) && e.code === 'CLU_ERR_INVALID', String(e));
  };
  refuse([set([])]);
  refuse([set([0, 0])]);
  refuse([set([0, 99])]);
  refuse([set(Array.from({ length: 12 }, (_, i) => i))]);
  refuse([{ op: 'pg-temp-set', pg: { pool: 1 as PoolId, seed: 8 as PgSeed }, osds: [0 as OsdId] }]);
  refuse([{ op: 'pg-temp-set', pg: { pool: 7 as PoolId, seed: 0 as PgSeed }, osds: [0 as OsdId] }]);
  refuse([rm]);
  refuse([set([c]), { op: 'osd-add', osd: m0.osds.get(0 as OsdId)! }]);
  t.is(m0.pgTemp.size, 0);
  const down = nextMap(m1, [{ op: 'osd-set', id: c, changes: { up: false } }]);
  t.false(nextMap(down, [{ op: 'osd-remove', id: c }]).pgTemp.has('1.3'), 'osd-remove drops entries naming it');
  t.false(nextMap(m1, [{ op: 'pool-set', id: 1 as PoolId, changes: { pgNum: 16 } }]).pgTemp.has('1.3'), 'a split drops the pool\'s entries');
  t.true(nextMap(m1, [{ op: 'pool-set', id: 1 as PoolId, changes: { size: 2 } }]).pgTemp.has('1.3'), 'other pool changes keep them');
  t.false(nextMap(m1, [{ op: 'pool-remove', id: 1 as PoolId }]).pgTemp.has('1.3'));
});

test('diffOps reproduces pg_temp changes, including entries dropped by removals', (t) => {
  const m0 = base();
  const c = outsider(m0);
  const u0 = pgToOsds(m0, PG).up[0]!;
  const m1 = nextMap(m0, [set([c, u0]), { op: 'pg-temp-set', pg: { pool: 1 as PoolId, seed: 5 as PgSeed }, osds: [1 as OsdId] }]);
  const m2 = nextMap(m1, [rm, { op: 'pg-temp-set', pg: { pool: 1 as PoolId, seed: 5 as PgSeed }, osds: [2 as OsdId, 1 as OsdId] }]);
  const m3 = nextMap(m2, [{ op: 'pool-set', id: 1 as PoolId, changes: { pgNum: 16 } }, { op: 'pg-temp-set', pg: { pool: 1 as PoolId, seed: 9 as PgSeed }, osds: [3 as OsdId] }]);
  t.false(m3.pgTemp.has('1.5'), 'the split dropped the older entries');
  for (const [a, b] of [[m0, m1], [m1, m2], [m2, m3], [m1, m0], [m0, m3]] as const) {
    const inc: Incremental = { epoch: (a.epoch + 1) as Epoch, fsid: a.fsid, modifiedMs: b.modifiedMs, ops: diffOps(a, b) };
    t.deepEqual([...applyIncremental(a, inc).pgTemp].sort(), [...b.pgTemp].sort());
  }
});

test('codec: v6 only with pg_temp (maps and incrementals without are byte-identical to before); round trip; older versions refuse the ops; a v6 map without entries is refused', (t) => {
  const m0 = base();
  const c = outsider(m0);
  const bytes0 = encodeMap(m0);
  t.is(bytes0[4], 1, 'no pg_temp, nothing else: v1');
  const up = [...pgToOsds(m0, PG).up];
  const m1 = nextMap(m0, [set([c, ...up])]);
  const b1 = encodeMap(m1);
  t.is(b1[4], 6);
  const back = decodeMap(b1);
  t.deepEqual([...back.pgTemp], [...m1.pgTemp]);
  t.deepEqual(encodeMap(back), b1, 'canonical');
  t.is(encodeMap(nextMap(m1, [rm]))[4], 1, 'back to v1 once the entry is gone');
  // A v6 map with an empty table is not canonical: refused.
  const one = encodeMap(nextMap(m0, [set([c])])); // ends: u32 count=1 | u32 pool | u32 seed | u8 1 | u32 osd
  const empty = one.slice(0, one.length - 13);
  empty.set([0, 0, 0, 0], empty.length - 4);
  t.throws(() => decodeMap(empty), { message: /v6 without pg_temp/ });
  // Incrementals.
  const inc: Incremental = { epoch: 2 as Epoch, fsid: m0.fsid, modifiedMs: 5, ops: [set([c, up[0]!]), rm] };
  const ib = encodeIncremental(inc);
  t.is(ib[4], 6);
  t.deepEqual(decodeIncremental(ib), inc);
  t.is(encodeIncremental({ ...inc, ops: [{ op: 'osd-set', id: 0 as OsdId, changes: { up: false } }] })[4], 1);
  const old = ib.slice();
  old[4] = 5;
  t.throws(() => decodeIncremental(old), { message: /needs incremental v6/ });
  const future = b1.slice();
  future[4] = 7;
  t.throws(() => decodeMap(future), { message: /unsupported version 7/ });
});

test('MSG_MON_PG_TEMP payload round trip; clear is an empty list; oversized lists are refused', (t) => {
  const req = { osdId: 3 as OsdId, pg: '1.3', osds: [5, 3, 4] as OsdId[] };
  t.deepEqual(decodePgTemp(encodePgTemp(req)), req);
  t.deepEqual(decodePgTemp(encodePgTemp({ ...req, osds: [] })), { ...req, osds: [] });
  t.throws(() => decodePgTemp(encodePgTemp({ ...req, osds: Array.from({ length: 12 }, (_, i) => i as OsdId) })));
});

function startMon(env: TestEnv): MonitorCore {
  const store = new FileMonStore({ env, dir: '/mon' });
  store.open((e) => { if (e) throw e; });
  env.settle();
  const mon = new MonitorCore({ env, store, fsid: 'test-fsid', osdGraceMs: 3000, downOutIntervalMs: 60_000 });
  mon.start((e) => { if (e) throw e; });
  env.settle();
  return mon;
}

function bootOsds(env: TestEnv, mon: MonitorCore, n: number): OsdId[] {
  const ids: OsdId[] = [];
  for (let i = 0; i < n; i++) {
    mon.osdBoot({ uuid: `u${i}`, addr: `127.0.0.1:${6800 + i}`, location: { host: `h${i}` } }, (err, r) => {
      if (err || r === undefined) throw err ?? new Error('no result');
      ids.push(r.osdId);
    });
  }
  env.advance(100);
  return ids;
}

test('monitor: only the up primary sets, the up or acting primary clears; validated; batched into one epoch; answered after the commit', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const ids = bootOsds(env, mon, 5);
  mon.poolCreate({ name: 'rbd', pgNum: 4, size: 2 }, () => undefined);
  env.advance(100);
  const pg = parsePgId('0.2')!;
  const up = [...pgToOsds(mon.map(), pg).up] as OsdId[];
  const c = ids.find((id) => !up.includes(id))!;
  const other = ids.find((id) => id !== c && !up.includes(id))!;
  const results: (string | number)[] = [];
  const cb = (e: ClusterError | null, r?: { epoch: Epoch }): void => { results.push(r === undefined ? e?.code ?? 'none' : r.epoch); };
  const before = mon.map().epoch;
  mon.pgTemp(up[1]!, '0.2', [c, ...up], cb); // a replica, not the up primary
  mon.pgTemp(c, '0.2', [c, ...up], cb); // not even in the up set
  mon.pgTemp(up[0]!, '0.9', [c, ...up], cb); // no such PG
  mon.pgTemp(up[0]!, '0.2', [c, c], cb); // named twice
  mon.pgTemp(up[0]!, '0.2', [c, 42 as OsdId], cb); // does not exist
  mon.pgTemp(up[0]!, '0.2', [c, other, ...up], cb); // more than size + 1
  mon.pgTemp(up[0]!, '0.2', [...up], cb); // equal to up: pointless
  env.advance(1);
  t.deepEqual(results, ['CLU_ERR_EPOCH_STALE', 'CLU_ERR_EPOCH_STALE', 'CLU_ERR_NOT_FOUND', 'CLU_ERR_INVALID', 'CLU_ERR_INVALID', 'CLU_ERR_INVALID', 'CLU_ERR_INVALID']);
  t.is(mon.map().epoch, before, 'refusals change nothing');
  results.length = 0;
  mon.pgTemp(up[0]!, '0.2', [c, ...up], cb);
  mon.poolCreate({ name: 'other', pgNum: 1 }, () => undefined);
  t.deepEqual(results, [], 'answered after the commit');
  env.advance(100);
  t.deepEqual(results, [before + 1], 'batched with the pool creation in one epoch');
  t.deepEqual(mon.map().pgTemp.get('0.2'), [c, ...up]);
  t.is(pgToOsds(mon.map(), pg).primary, c, 'the complete OSD is the acting primary');
  // Again: already so, answered at once without an epoch.
  results.length = 0;
  mon.pgTemp(up[0]!, '0.2', [c, ...up], cb);
  env.advance(1);
  t.deepEqual(results, [before + 1]);
  // Clear: from a replica refused; from the acting (temp) primary accepted.
  results.length = 0;
  mon.pgTemp(up[1]!, '0.2', [], cb);
  env.advance(1);
  t.deepEqual(results, ['CLU_ERR_EPOCH_STALE']);
  mon.pgTemp(c, '0.2', [], cb);
  env.advance(100);
  t.deepEqual(results, ['CLU_ERR_EPOCH_STALE', before + 2]);
  t.false(mon.map().pgTemp.has('0.2'));
  t.deepEqual(pgToOsds(mon.map(), pg).acting, up);
  // Clearing what is not set: answered at once.
  mon.pgTemp(up[0]!, '0.2', [], cb);
  env.advance(1);
  t.is(results.at(-1), (before + 2) as Epoch);
});

test('monitor: entries that became stale are dropped in the same epoch (temp primary down: the rest equals up); a split drops them all', (t) => {
  const env = new TestEnv();
  const mon = startMon(env);
  const ids = bootOsds(env, mon, 5);
  mon.poolCreate({ name: 'rbd', pgNum: 4, size: 2 }, () => undefined);
  env.advance(100);
  const pg = parsePgId('0.1')!;
  const up = [...pgToOsds(mon.map(), pg).up] as OsdId[];
  const c = ids.find((id) => !up.includes(id))!;
  mon.pgTemp(up[0]!, '0.1', [c, ...up], () => undefined);
  env.advance(100);
  t.true(mon.map().pgTemp.has('0.1'));
  t.deepEqual(staleTempOps(mon.map()), []);
  // An up member down: the entry still means something ([c, other] ≠ up).
  mon.osdAdmin(up[1]!, 'down', () => undefined);
  env.advance(100);
  t.true(mon.map().pgTemp.has('0.1'));
  t.deepEqual(pgToOsds(mon.map(), pg).acting, [c, up[0]!]);
  // The temp primary down: what is left equals up, so the same epoch drops the entry.
  const e0 = mon.map().epoch;
  mon.osdAdmin(c, 'down', () => undefined);
  env.advance(100);
  t.is(mon.map().epoch, (e0 + 1) as Epoch);
  t.false(mon.map().pgTemp.has('0.1'), 'dropped with the down mark');
  // A split drops the pool's entries (applyIncremental).
  for (const id of [c, up[1]!]) mon.osdBoot({ uuid: `u${ids.indexOf(id)}`, osdId: id, addr: `127.0.0.1:${6800 + ids.indexOf(id)}`, location: { host: `h${ids.indexOf(id)}` } }, () => undefined);
  env.advance(100);
  mon.pgTemp(up[0]!, '0.1', [c, ...up], () => undefined);
  env.advance(100);
  t.true(mon.map().pgTemp.has('0.1'));
  mon.poolSet('rbd', { pgNum: 8 }, () => undefined);
  env.advance(100);
  t.is(mon.map().pgTemp.size, 0);
});

test('osd dump shows pg_temp entries with the up and acting sets they give (JSON and text)', (t) => {
  const m0 = base();
  const c = outsider(m0);
  const up = [...pgToOsds(m0, PG).up];
  t.is(mapToJson(m0)['pgTemp'], undefined, 'absent when there is none');
  const m1 = nextMap(m0, [set([c, ...up])]);
  const j = mapToJson(m1);
  t.deepEqual(j['pgTemp'], [{ pg: '1.3', osds: [c, ...up], up, acting: [c, ...up] }]);
  t.true(formatCommandResult('osd dump', j).includes(`pg_temp 1.3 [${[c, ...up].join(',')}] up [${up.join(',')}]`));
});
