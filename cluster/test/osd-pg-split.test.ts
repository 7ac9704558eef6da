/**
 * PG split (`pgNum` growth) with the real OsdCore (docs/replication.md §4 "PG split"). Objects
 * are written across the PGs, pgNum grows (as `MonitorCore.poolSet` does it: one epoch, each
 * child inheriting its parent's history), and every acknowledged write must read back — with
 * children mapped to OSDs that never held their objects, and with an OSD down across the
 * split (children whose history holds an undersized set with newer writes). With small log
 * bounds, a child whose whole acting set needs backfill must not go active (nor record its set
 * in the PG history) before one member is complete (sim seed 0x41648c7ed04b5099).
 */
import test from 'ava';
import type { OsdId, PoolId } from '../src/common/ids.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { nextMap } from '../src/map/map-builder.js';
import { pgIdToString, pgSeed } from '../src/common/ids.js';
import { compareVersion } from '../src/osd/osd-protocol.js';
import { INFO_KEY, decodeInfo } from '../src/pg/pg-log.js';
import { objectToPg, pgToOsds } from '../src/placement/placement.js';
import { splitParent } from '../src/placement/pg-split.js';
import { waitFor } from './msg-test-env.js';
import { OsdHarness } from './osd-harness.js';

function block(seed: number, n = 4096): Uint8Array { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff; return b; }
const names = Array.from({ length: 40 }, (_, i) => `split-obj-${i}`);

/** The objects whose child PG (pool 1 split 2 → 16) shares no acting OSD with its parent's. */
function movedToNewOsds(before: ClusterMap, after: ClusterMap, objects: readonly string[]): string[] {
  const pool = after.pools.get(1 as never)!;
  return objects.filter((n) => {
    const child = objectToPg(pool, n);
    if (child.seed < 2) return false;
    const parentActing = pgToOsds(before, { pool: child.pool, seed: pgSeed(splitParent(child.seed, 2)) }).acting;
    return !pgToOsds(after, child).acting.some((x) => parentActing.includes(x));
  });
}

async function readAll(h: OsdHarness, want: (i: number) => Uint8Array): Promise<string[]> {
  const bad: string[] = [];
  for (const [i, name] of names.entries()) {
    const r = await h.op(name, [{ op: 'read', offset: 0, length: 4096 }]);
    if (r.reply.result !== 0 || !Buffer.from(r.data).equals(Buffer.from(want(i)))) bad.push(`${name}: result ${r.reply.result}, ${r.data.length} bytes`);
  }
  return bad;
}

test.serial('pgNum growth: every object reads back from its child PG, also where the child maps to other OSDs', async (t) => {
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 2, minSize: 1, pgNum: 2, failureDomain: 'osd' });
  try {
    for (let i = 0; i < 5; i++) await h.startOsd(i);
    h.initMap();
    await waitFor(() => h.allClean(), 10_000);
    for (const [i, name] of names.entries()) t.is((await h.op(name, [{ op: 'writefull', length: 4096 }], [block(i)])).reply.result, 0);
    const before = h.map;
    h.splitPool(16);
    const pool = h.map.pools.get(1 as never)!;
    // The interesting case must occur: a child whose acting set shares no OSD with its parent's.
    const moved = movedToNewOsds(before, h.map, names);
    t.true(moved.length > 0, 'some child maps to OSDs that never held its objects');
    const child = objectToPg(pool, moved[0]!);
    const parentKey = pgIdToString({ pool: child.pool, seed: pgSeed(splitParent(child.seed, 2)) });
    t.deepEqual(h.map.pgHistory.get(pgIdToString(child)), before.pgHistory.get(parentKey), 'the child starts with its parent\'s history');
    t.deepEqual(await readAll(h, block), [], 'every acknowledged write reads back after the split');
    await waitFor(() => h.allClean(), 20_000);
    for (const n of moved) {
      for (const osd of pgToOsds(h.map, objectToPg(pool, n)).acting) t.deepEqual((await h.localRead(osd, n)).data, block(names.indexOf(n)), `${n} copied to osd.${osd}`);
    }
    // Writes after the split go to the children and survive a re-peer of every PG.
    for (const [i, name] of names.entries()) t.is((await h.op(name, [{ op: 'writefull', length: 4096 }], [block(i + 100)])).reply.result, 0);
    const victim = [...h.osds.keys()][0]!;
    await h.stopOsd(victim);
    h.apply([{ op: 'osd-set', id: victim as OsdId, changes: { up: false } }]);
    t.deepEqual(await readAll(h, (i) => block(i + 100)), []);
  } finally { await h.close(); }
});

test.serial('pgNum growth while an OSD is down: children find the undersized interval\'s writes, and the returning OSD\'s stale copies lose', async (t) => {
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 3, minSize: 2, pgNum: 2, failureDomain: 'osd' });
  try {
    for (let i = 0; i < 5; i++) await h.startOsd(i);
    h.initMap();
    await waitFor(() => h.allClean(), 10_000);
    for (const [i, name] of names.entries()) t.is((await h.op(name, [{ op: 'writefull', length: 4096 }], [block(i)])).reply.result, 0);
    // An OSD of PG 0's acting set goes down (not out): the PGs run undersized and take v2.
    const x = pgToOsds(h.map, { pool: 1 as never, seed: pgSeed(0) }).acting[1]!;
    await h.stopOsd(x);
    h.apply([{ op: 'osd-set', id: x, changes: { up: false } }]);
    for (const [i, name] of names.entries()) t.is((await h.op(name, [{ op: 'writefull', length: 4096 }], [block(i + 50)])).reply.result, 0);
    h.splitPool(8);
    t.deepEqual(await readAll(h, (i) => block(i + 50)), [], 'v2 reads back from every child while the OSD is down');
    const tx = await h.startOsd(x);
    h.apply([{ op: 'osd-set', id: x, changes: { up: true, addr: `127.0.0.1:${tx.port}` } }]);
    await waitFor(() => h.allClean(), 30_000);
    t.deepEqual(await readAll(h, (i) => block(i + 50)), [], 'v2 still reads back after the stale OSD returned and recovered');
    const pool = h.map.pools.get(1 as never)!;
    for (const n of names) {
      const acting = pgToOsds(h.map, objectToPg(pool, n)).acting;
      if (acting.includes(x)) t.deepEqual((await h.localRead(x, n)).data, block(names.indexOf(n) + 50), `${n} recovered on the returning osd.${x}`);
    }
  } finally { await h.close(); }
});

test.serial('fallback without pg_temp (monitor refuses): a child whose whole acting set needs backfill activates only once its primary is complete (seed 0x41648c7ed04b5099)', async (t) => {
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 2, minSize: 1, pgNum: 2, failureDomain: 'osd' });
  h.pgLogBounds = { min: 2, max: 4 }; // the parents' logs are trimmed: a new member needs backfill
  h.pgTempRefused = true; // the monitor cannot be reached for pg_temp: the primary backfills itself first
  try {
    for (let i = 0; i < 5; i++) await h.startOsd(i);
    h.initMap();
    await waitFor(() => h.allClean(), 10_000);
    for (let round = 0; round < 2; round++) {
      for (const [i, name] of names.entries()) t.is((await h.op(name, [{ op: 'writefull', length: 4096 }], [block(i + round)])).reply.result, 0);
    }
    await waitFor(() => h.allClean(), 10_000);
    const before = h.map;
    // Every set recorded in a PG history after the split must have a member whose stored info
    // is complete: that member stands for the set when the PG peers again (prior set).
    const storedComplete = (osd: number, pg: string): boolean => {
      const rec = h.osds.get(osd)?.store.pgList(pg).find(([k]) => k === INFO_KEY);
      if (rec === undefined) return false;
      const info = decodeInfo(rec[1]);
      return !info.backfilling && compareVersion(info.lastComplete, info.lastUpdate) === 0;
    };
    const unbacked: string[] = [];
    h.onHistoryRequest = (_osd, pg, op, set) => {
      if (op === 'add' && !set.some((x) => storedComplete(x, pg))) unbacked.push(`${pg} [${set.join(',')}]`);
    };
    h.splitPool(16);
    const pool = h.map.pools.get(1 as never)!;
    const moved = movedToNewOsds(before, h.map, names);
    t.true(moved.length > 0, 'some child maps to OSDs that never held its objects');
    t.deepEqual(await readAll(h, (i) => block(i + 1)), [], 'every acknowledged write reads back after the split');
    await waitFor(() => h.allClean(), 20_000);
    t.deepEqual(unbacked, [], 'no set without a complete member was recorded in a PG history');
    for (const n of moved) {
      for (const osd of pgToOsds(h.map, objectToPg(pool, n)).acting) t.deepEqual((await h.localRead(osd, n)).data, block(names.indexOf(n) + 1), `${n} copied to osd.${osd}`);
    }
    t.is(h.map.pgTemp.size, 0, 'no pg_temp was set');
  } finally { await h.close(); }
});

test.serial('pg_temp: a split child whose whole up set needs backfill serves writes during the backfill (complete OSD as temp primary), then ends active+clean on its up set with the pg_temp cleared', async (t) => {
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 2, minSize: 1, pgNum: 2, failureDomain: 'osd' });
  h.pgLogBounds = { min: 2, max: 4 }; // the parents' logs are trimmed: a new member needs backfill
  const SIZE = 128 * 1024;
  try {
    for (let i = 0; i < 5; i++) await h.startOsd(i);
    h.initMap();
    await waitFor(() => h.allClean(), 10_000);
    // A child of the coming split whose up set shares no OSD with its parent's acting set.
    const after = nextMap(h.map, [{ op: 'pool-set', id: 1 as PoolId, changes: { pgNum: 16 } }]);
    const pool16 = after.pools.get(1 as PoolId)!;
    const childSeed = [...Array(16).keys()].find((seed) => seed >= 2 && !pgToOsds(after, { pool: 1 as PoolId, seed: pgSeed(seed) }).up
      .some((x) => pgToOsds(h.map, { pool: 1 as PoolId, seed: pgSeed(splitParent(seed, 2)) }).acting.includes(x)));
    t.not(childSeed, undefined, 'some child maps to OSDs that never held its objects');
    const child = { pool: 1 as PoolId, seed: pgSeed(childSeed!) };
    const childKey = pgIdToString(child);
    const objs: string[] = [];
    for (let i = 0; objs.length < 150; i++) if (objectToPg(pool16, `temp-obj-${i}`).seed === child.seed) objs.push(`temp-obj-${i}`);
    for (let round = 0; round < 2; round++) {
      for (const [i, name] of objs.entries()) t.is((await h.op(name, [{ op: 'writefull', length: SIZE }], [block(i + round, SIZE)])).reply.result, 0);
    }
    await waitFor(() => h.allClean(), 10_000);
    const parentActing = pgToOsds(h.map, { pool: 1 as PoolId, seed: pgSeed(splitParent(child.seed, 2)) }).acting;
    h.splitPool(16);
    const up = [...pgToOsds(h.map, child).up];
    // The up primary asks for [a complete OSD (one of the parent's), ...up]; the complete OSD serves.
    await waitFor(() => h.map.pgTemp.has(childKey), 10_000);
    const temp = h.map.pgTemp.get(childKey)!;
    t.true(parentActing.includes(temp[0]!), `the temp primary osd.${temp[0]} held the parent`);
    t.deepEqual(temp.slice(1), up, 'pg_temp = [complete osd, ...up]');
    t.is(pgToOsds(h.map, child).primary, temp[0]!);
    // Writes during the backfill: answered while the up members still miss objects.
    const during: string[] = [];
    const seen: string[] = [];
    const tStart = performance.now();
    let maxMs = 0;
    for (let i = 0; i < 20; i++) {
      const name = objs[objs.length - 1 - i]!;
      const t0 = performance.now();
      const r0 = t0;
      const r = await h.op(name, [{ op: 'writefull', length: SIZE }], [block(i + 500, SIZE)]);
      maxMs = Math.max(maxMs, performance.now() - t0);
      t.is(r.reply.result, 0);
      const st = h.states()[childKey] ?? '';
      seen.push(`${Math.round(r0 - tStart)}+${Math.round(performance.now() - t0)}ms ${st}`);
      // degraded: the up members still miss objects (backfill scan, then its pushes).
      if (st.includes('remapped') && st.includes('degraded') && h.map.pgTemp.has(childKey)) during.push(`${name}: ${st}`);
    }
    t.log(`writes answered during the backfill: ${during.length}/20 (e.g. ${during[0] ?? 'none'}), slowest ${Math.round(maxMs)} ms`);
    t.log(`${seen[0]} … ${seen.at(-1)}`);
    t.true(during.length > 0, 'client writes are served while the up members backfill (no pause until the copy ends)');
    await waitFor(() => h.allClean() && h.map.pgTemp.size === 0, 60_000);
    t.deepEqual(pgToOsds(h.map, child).acting, up, 'acting = up once the pg_temp is cleared');
    t.true(h.pgTempLog.some((l) => l.endsWith(`${childKey} []`) && l.startsWith(`${temp[0]} `)), 'the temp primary cleared it');
    const want = (i: number): Uint8Array => (i >= objs.length - 20 ? block(objs.length - 1 - i + 500, SIZE) : block(i + 1, SIZE));
    for (const [i, name] of objs.entries()) {
      for (const osd of up) t.deepEqual((await h.localRead(osd, name)).data, want(i), `${name} on up member osd.${osd}`);
      const r = await h.op(name, [{ op: 'read', offset: 0, length: SIZE }]);
      t.true(r.reply.result === 0 && Buffer.from(r.data).equals(Buffer.from(want(i))), `${name} reads back`);
    }
  } finally { await h.close(); }
});
