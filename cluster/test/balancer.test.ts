/**
 * The upmap balancer (placement/balancer.ts): reaches ±5 % of the weight-proportional mean
 * (its target is ±1 replica) at 8/32/64 OSDs with 1024 PGs, never breaks host separation,
 * writes only pairs that take effect, is deterministic and idempotent, honours weights and
 * maxChanges, cleans dead pairs without moving data, and prefers undoing pairs to adding.
 */
import test from 'ava';
import type { OsdId, PgSeed, PoolId } from '../src/common/ids.js';
import { WEIGHT_ONE } from '../src/map/cluster-map.js';
import type { ClusterMap, PoolInfo } from '../src/map/cluster-map.js';
import { buildMap, evenOsds, makeOsd, nextMap } from '../src/map/map-builder.js';
import { computeUpmaps, poolBalances } from '../src/placement/balancer.js';
import { mapAllPgs, pgPlacement } from '../src/placement/placement.js';
import { measureMovement, measureUniformity } from '../src/placement/placement-stats.js';

const hostsFor = (n: number): number => (n <= 3 ? n : n < 16 ? n / 2 : n / 4);

function layout(n: number, pgNum = 1024): ClusterMap {
  return buildMap({ osds: evenOsds(n, hostsFor(n)), pools: [{ id: 1, name: 'rbd', pgNum }] });
}

function pool1(map: ClusterMap): PoolInfo {
  const p = map.pools.get(1 as PoolId);
  if (p === undefined) throw new Error('no pool');
  return p;
}

function balanced(map: ClusterMap, options = {}): ClusterMap {
  return nextMap(map, computeUpmaps(map, options).ops);
}

function assertHostSeparation(t: { is: (a: unknown, b: unknown, m?: string) => void }, map: ClusterMap): void {
  for (const p of map.pools.values()) {
    if (p.failureDomain !== 'host') continue;
    for (const [s, m] of mapAllPgs(map, p).entries()) {
      t.is(new Set(m.raw.map((id) => map.osds.get(id)?.location.host)).size, m.raw.length, `pg ${p.id}.${s.toString(16)}`);
    }
  }
}

for (const n of [8, 32, 64]) {
  test(`${n} OSDs, 1024 PGs: within 5 % of the mean after one run, host separation kept, idempotent`, (t) => {
    const map = layout(n);
    const before = measureUniformity(map, pool1(map));
    const r = computeUpmaps(map);
    t.true(r.moves > 0);
    const after = nextMap(map, r.ops);
    const u = measureUniformity(after, pool1(after));
    t.true(u.maxOverPct <= 5 && u.maxUnderPct <= 5, JSON.stringify(u));
    t.true(u.maxOverPct < before.maxOverPct);
    t.is(u.replicaCount, before.replicaCount);
    t.is(u.shortPgs, 0);
    t.true((r.after[0]?.maxDeviation ?? 99) <= 1);
    assertHostSeparation(t, after);
    const again = computeUpmaps(after);
    t.deepEqual(again.ops, []);
    t.is(again.moves, 0);
  });
}

test('deterministic: same map → same ops; every written pair takes effect and moves one replica', (t) => {
  const a = layout(32);
  const b = layout(32);
  const ra = computeUpmaps(a);
  t.deepEqual(ra.ops, computeUpmaps(b).ops);
  const after = nextMap(a, ra.ops);
  const p = pool1(after);
  let pairs = 0;
  for (const [key, items] of after.pgUpmapItems) {
    const seed = parseInt(key.split('.')[1] ?? '', 16) as PgSeed;
    const placed = pgPlacement(after, { pool: p.id, seed });
    const raw = mapAllPgs(after, p)[seed]?.raw ?? [];
    for (const [from, to] of items) {
      t.true(placed.includes(from) && !raw.includes(from) && raw.includes(to), `${key} ${from}→${to}`);
      pairs++;
    }
  }
  // Each pair is one moved replica relative to pure placement.
  t.is(measureMovement(a, after, p).movedReplicas, pairs);
});

test('weights are honoured: a double-weight OSD gets about twice the replicas', (t) => {
  const osds = evenOsds(16, 8);
  osds[0] = { ...osds[0]!, weight: 2 * WEIGHT_ONE };
  const map = buildMap({ osds, pools: [{ id: 1, name: 'rbd', pgNum: 1024 }] });
  const after = balanced(map);
  const u = measureUniformity(after, pool1(after));
  t.true(u.maxOverPct <= 5 && u.maxUnderPct <= 5, JSON.stringify(u));
  const b = poolBalances(after)[0]!;
  const heavy = b.osds.find((o) => o.osd === 0)!;
  const light = b.osds.find((o) => o.osd === 1)!;
  t.true(Math.abs(heavy.target - 2 * light.target) < 1e-6);
  t.true(Math.abs(heavy.count - heavy.target) <= 1);
  assertHostSeparation(t, after);
});

test('maxChanges bounds the moves; repeated runs converge to the same balance', (t) => {
  const map = layout(64);
  const r = computeUpmaps(map, { maxChanges: 10 });
  t.is(r.moves, 10);
  t.true(r.ops.length <= 10);
  let m = nextMap(map, r.ops);
  for (let i = 0; i < 100 && computeUpmaps(m, { maxChanges: 10 }).ops.length > 0; i++) m = balanced(m, { maxChanges: 10 });
  const u = measureUniformity(m, pool1(m));
  t.true(u.maxOverPct <= 5 && u.maxUnderPct <= 5);
  t.deepEqual(computeUpmaps(m).ops, []);
});

test('an out OSD: its pairs are ignored, the balancer cleans them and rebalances without it', (t) => {
  const map = balanced(layout(32));
  const victim = [...map.pgUpmapItems.values()].flat().map(([, to]) => to)[0]!;
  const out = nextMap(map, [{ op: 'osd-set', id: victim, changes: { in: false } }]);
  for (const m of mapAllPgs(out, pool1(out))) t.false(m.raw.includes(victim));
  const r = computeUpmaps(out);
  t.true(r.cleaned > 0);
  const after = nextMap(out, r.ops);
  for (const items of after.pgUpmapItems.values()) for (const [f, to] of items) t.true(f !== victim && to !== victim);
  const u = measureUniformity(after, pool1(after));
  t.true(u.maxOverPct <= 5 && u.maxUnderPct <= 5, JSON.stringify(u));
  assertHostSeparation(t, after);
});

test('cleanup alone moves no data', (t) => {
  const map = balanced(layout(16));
  // osd.3 out then back in: while out its pairs are dead; clean them on the out map…
  const out = nextMap(map, [{ op: 'osd-set', id: 3 as OsdId, changes: { in: false } }]);
  const r = computeUpmaps(out, { maxChanges: 0 });
  t.is(r.moves, 0);
  t.true(r.cleaned > 0);
  const cleaned = nextMap(out, r.ops);
  t.is(measureMovement(out, cleaned, pool1(out)).movedReplicas, 0);
});

test('adding an OSD: placement + balancer moves stay near the ideal 1/N', (t) => {
  const map = balanced(layout(32));
  const added = nextMap(map, [{ op: 'osd-add', osd: makeOsd({ id: 32, host: 'host-new' }) }]);
  const after = balanced(added);
  const p = pool1(map);
  const ideal = 1 / 33;
  const placementOnly = measureMovement(map, added, p).movedFraction;
  const total = measureMovement(map, after, p).movedFraction;
  t.true(placementOnly / ideal < 1.3, `placement ${placementOnly / ideal}`);
  t.true(total / ideal < 1.6, `total ${total / ideal}`);
  const u = measureUniformity(after, pool1(after));
  t.true(u.maxOverPct <= 5 && u.maxUnderPct <= 5);
  assertHostSeparation(t, after);
});

test('pools are balanced each on its own; an osd-rule pool too', (t) => {
  const map = buildMap({ osds: evenOsds(24, 6), pools: [{ id: 1, name: 'rbd', pgNum: 1024 }, { id: 2, name: 'flat', pgNum: 512, size: 2, failureDomain: 'osd' }] });
  const after = balanced(map);
  for (const b of poolBalances(after)) t.true(b.maxDeviation <= 1, `${b.name} ${b.maxDeviation}`);
  assertHostSeparation(t, after);
});

test('movement-aware re-run (reference = the balanced map): an OSD out moves ≤ 1.1× the ideal in total', (t) => {
  const start = balanced(layout(32));
  const p = pool1(start);
  const out = nextMap(start, [{ op: 'osd-set', id: 0 as OsdId, changes: { in: false } }]);
  const plain = nextMap(out, computeUpmaps(out).ops);
  const aware = nextMap(out, computeUpmaps(out, { reference: start }).ops);
  const ideal = 1 / 32;
  const awareRatio = measureMovement(start, aware, p).movedFraction / ideal;
  t.true(awareRatio <= 1.1, `aware ${awareRatio}`);
  t.true(awareRatio < measureMovement(start, plain, p).movedFraction / ideal);
  const u = measureUniformity(aware, p);
  t.true(u.maxOverPct <= 5 && u.maxUnderPct <= 5);
  assertHostSeparation(t, aware);
});
