/**
 * pg_upmap_items: the map field, its incremental ops and codec (v2, with v1 still decoded and
 * still written when no upmap exists), and the semantics `pgToOsds` applies (a valid pair
 * replaces one OSD; an invalid pair — from absent, to present, to out, to on a used host —
 * is ignored; removed pools/OSDs drop their items).
 */
import test from 'ava';
import { isClusterError } from '../src/common/errors.js';
import type { Epoch, OsdId, PgSeed, PoolId } from '../src/common/ids.js';
import type { ClusterMap, UpmapItem } from '../src/map/cluster-map.js';
import { applyIncremental, diffOps } from '../src/map/incremental.js';
import type { Incremental, MapOp } from '../src/map/incremental.js';
import { buildMap, evenOsds, makeOsd, nextMap } from '../src/map/map-builder.js';
import { decodeIncremental, decodeMap, encodeIncremental, encodeMap } from '../src/map/map-codec.js';
import { mapAllPgs, pgPlacement, pgToOsds } from '../src/placement/placement.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const pg = (pool: number, seed: number) => ({ pool: pool as PoolId, seed: seed as PgSeed });
const o = (n: number) => n as OsdId;
const set = (p: number, s: number, items: [number, number][]): MapOp => ({ op: 'pg-upmap-items-set', pg: pg(p, s), items: items.map(([f, t]): UpmapItem => [o(f), o(t)]) });

/** 12 OSDs on 4 hosts (osd.i on host-(i mod 4)); pool 1 host rule, pool 2 osd rule. */
function twelve(): ClusterMap {
  return buildMap({ osds: evenOsds(12, 4), pools: [{ id: 1, name: 'rbd', pgNum: 64 }, { id: 2, name: 'flat', pgNum: 16, failureDomain: 'osd', size: 2 }] });
}

const hostOf = (map: ClusterMap, id: OsdId): string | undefined => map.osds.get(id)?.location.host;

test('a valid pair replaces from by to in place; up/acting/primary follow', (t) => {
  const map = twelve();
  t.deepEqual(pgToOsds(map, pg(1, 0)).raw, [9, 2, 0]); // Fixed vector (placement.test.ts).
  // osd.9 (host-1) → osd.5 (host-1): same host as the replaced one, no other member there.
  const m = nextMap(map, [set(1, 0, [[9, 5]])]);
  t.deepEqual(pgToOsds(m, pg(1, 0)), { raw: [5, 2, 0], up: [5, 2, 0], acting: [5, 2, 0], primary: 5 });
  t.deepEqual(pgPlacement(m, pg(1, 0)), [9, 2, 0]);
  // Other PGs are untouched.
  t.deepEqual(mapAllPgs(m, m.pools.get(1 as PoolId)!).slice(1), mapAllPgs(map, map.pools.get(1 as PoolId)!).slice(1));
});

test('invalid pairs are ignored: from absent, to already a member, to out or weight 0, to on a used host', (t) => {
  const map = twelve();
  const base = [9, 2, 0];
  const cases: [string, MapOp[]][] = [
    ['from not in set', [set(1, 0, [[7, 5]])]],
    ['to already a member', [set(1, 0, [[9, 2]])]],
    ['to out', [{ op: 'osd-set', id: o(5), changes: { in: false } }, set(1, 0, [[9, 5]])]],
    ['to weight 0', [{ op: 'osd-set', id: o(5), changes: { weight: 0 } }, set(1, 0, [[9, 5]])]],
    // osd.6 is on host-2, which osd.2 already uses: would put two replicas on host-2.
    ['to on a used host', [set(1, 0, [[9, 6]])]],
  ];
  for (const [label, ops] of cases) t.deepEqual(pgToOsds(nextMap(map, ops), pg(1, 0)).raw, base, label);
});

test('to being down is allowed (a hole, as any down member), not a reason to ignore the pair', (t) => {
  const m = nextMap(twelve(), [{ op: 'osd-set', id: o(5), changes: { up: false } }, set(1, 0, [[9, 5]])]);
  t.deepEqual(pgToOsds(m, pg(1, 0)), { raw: [5, 2, 0], up: [2, 0], acting: [2, 0], primary: 2 });
});

test('pairs apply in order; the osd rule only forbids repeating an OSD', (t) => {
  const map = twelve();
  const m = nextMap(map, [set(1, 0, [[9, 5], [2, 10]])]);
  t.deepEqual(pgToOsds(m, pg(1, 0)).raw, [5, 10, 0]);
  const flat = pgToOsds(map, pg(2, 0)).raw; // [6, 3]
  t.deepEqual(flat, [6, 3]);
  // osd.2 is on host-2 like osd.6, but pool 2's rule is osd: allowed.
  t.deepEqual(pgToOsds(nextMap(map, [set(2, 0, [[3, 2]])]), pg(2, 0)).raw, [6, 2]);
});

test('the host rule is never violated whatever pairs the map holds', (t) => {
  const map = twelve();
  const ops: MapOp[] = [];
  for (let s = 0; s < 64; s++) ops.push(set(1, s, [[s % 12, (s * 7 + 3) % 12], [(s + 1) % 12, (s * 5 + 1) % 12]].filter(([f, to]) => f !== to) as [number, number][]));
  const valid = ops.filter((op) => op.op !== 'pg-upmap-items-set' || (op.items.length > 0 && new Set(op.items.flat()).size === op.items.length * 2));
  const m = nextMap(map, valid);
  let changed = 0;
  for (const [s, mp] of mapAllPgs(m, m.pools.get(1 as PoolId)!).entries()) {
    t.is(new Set(mp.raw.map((id) => hostOf(m, id))).size, mp.raw.length);
    t.is(mp.raw.length, 3);
    if (mp.raw.join() !== pgToOsds(map, pg(1, s)).raw.join()) changed++;
  }
  t.true(changed > 0);
});

test('incremental ops: set validates shape; remove needs an entry; pool and osd removal drop items', (t) => {
  const map = twelve();
  const bad: MapOp[][] = [
    [set(1, 64, [[9, 5]])], // seed out of range
    [set(7, 0, [[9, 5]])], // no pool
    [set(1, 0, [[9, 9]])], // to itself
    [set(1, 0, [[9, 44]])], // unknown osd
    [set(1, 0, [[9, 5], [2, 5]])], // osd named twice
    [{ op: 'pg-upmap-items-set', pg: pg(1, 0), items: [] }],
    [{ op: 'pg-upmap-items-remove', pg: pg(1, 0) }],
  ];
  for (const ops of bad) t.true(isClusterError(t.throws(() => nextMap(map, ops)), 'CLU_ERR_INVALID'), JSON.stringify(ops));
  const m = nextMap(map, [set(1, 0, [[9, 5]]), set(1, 1, [[1, 5], [0, 4]]), set(2, 0, [[3, 2]])]);
  t.is(m.pgUpmapItems.size, 3);
  t.is(nextMap(m, [{ op: 'pg-upmap-items-remove', pg: pg(1, 0) }]).pgUpmapItems.size, 2);
  t.deepEqual([...nextMap(m, [{ op: 'pool-remove', id: 2 as PoolId }]).pgUpmapItems.keys()], ['1.0', '1.1']);
  // Removing osd.5 (down first, as the monitor requires) drops pairs naming it; 1.1 keeps 0 → 4.
  const rm = nextMap(m, [{ op: 'osd-set', id: o(5), changes: { up: false } }, { op: 'osd-remove', id: o(5) }]);
  t.deepEqual([...rm.pgUpmapItems], [['1.1', [[0, 4]]], ['2.0', [[3, 2]]]]);
  // Applying to the old map leaves it untouched (maps are values).
  t.is(map.pgUpmapItems.size, 0);
  // diffOps reproduces maps with items, including across an OSD removal.
  for (const [a, b] of [[map, m], [m, rm], [m, map]] as const) {
    const c = applyIncremental(a, { epoch: (a.epoch + 1) as Epoch, fsid: a.fsid, modifiedMs: b.modifiedMs, ops: diffOps(a, b) });
    t.deepEqual([...c.pgUpmapItems], [...b.pgUpmapItems]);
  }
});

test('codec: a map without items is still written as v1 (old golden vectors hold)', (t) => {
  const map = twelve();
  t.is(encodeMap(map)[4], 1);
  const inc: Incremental = { epoch: 2 as Epoch, fsid: map.fsid, modifiedMs: 5, ops: [{ op: 'osd-set', id: o(1), changes: { in: false } }] };
  t.is(encodeIncremental(inc)[4], 1);
});

test('golden bytes: map v2 and incremental v2 with upmap items; round trips', (t) => {
  const small = buildMap({ fsid: 'f5', nowMs: 1000, osds: [{ id: 0, host: 'a' }, { id: 1, host: 'b' }, { id: 2, host: 'c' }], pools: [{ id: 0, name: 'rbd', pgNum: 8, size: 2 }] });
  const m = nextMap(small, [set(0, 3, [[0, 2]]), set(0, 1, [[1, 2]])]);
  const enc = encodeMap(m);
  t.is(enc[4], 2);
  // u32 count 2 | pg 0.1: u32 pool 0, u32 seed 1, u8 n 1, (1 → 2) | pg 0.3: pool 0, seed 3, n 1, (0 → 2).
  t.is(hex(enc.slice(enc.length - 38)), '02000000' + '00000000' + '01000000' + '01' + '01000000' + '02000000' + '00000000' + '03000000' + '01' + '00000000' + '02000000');
  const d = decodeMap(enc);
  t.deepEqual([...d.pgUpmapItems], [['0.1', [[1, 2]]], ['0.3', [[0, 2]]]]);
  t.is(hex(encodeMap(d)), hex(enc));
  const inc: Incremental = { epoch: 3 as Epoch, fsid: 'f5', modifiedMs: 7, ops: [set(0, 3, [[0, 2]]), { op: 'pg-upmap-items-remove', pg: pg(0, 1) }] };
  t.is(hex(encodeIncremental(inc)), '53494e430203000000020000006635070000000000000002000000070000000003000000010000000002000000080000000001000000');
  t.deepEqual(decodeIncremental(encodeIncremental(inc)), inc);
});

test('codec: v1 bytes still decode; upmap op tags in a v1 incremental and an empty v2 upmap table are refused', (t) => {
  // The v1 golden map of map.test.ts decodes with no items.
  const v1 = Buffer.from('534d41500101000000020000006635e803000000000000e8030000000000000000000002000000000000000a0000006f73642d757569642d300d00000031302e302e302e313a3638303003000001000100000061000000000000000000000000010000000a0000006f73642d757569642d31000000000300000200010000006202000000723100000000000000000100000000000000030000007262640302080000000100004000000040000100000001000000', 'hex');
  const m = decodeMap(v1);
  t.is(m.pgUpmapItems.size, 0);
  t.is(hex(encodeMap(m)), v1.toString('hex'));
  const inc: Incremental = { epoch: 3 as Epoch, fsid: 'f5', modifiedMs: 7, ops: [{ op: 'pg-upmap-items-remove', pg: pg(0, 1) }] };
  const bytes = encodeIncremental(inc);
  bytes[4] = 1;
  t.is(t.throws(() => decodeIncremental(bytes))?.['code' as keyof Error], 'CLU_ERR_DECODE');
  const v2empty = Buffer.concat([v1, Buffer.alloc(4)]);
  v2empty[4] = 2;
  t.is(t.throws(() => decodeMap(v2empty))?.['code' as keyof Error], 'CLU_ERR_DECODE');
  const v3 = Buffer.from(v1);
  v3[4] = 3;
  t.is(t.throws(() => decodeMap(v3))?.['code' as keyof Error], 'CLU_ERR_DECODE');
});

test('an id reused after osd rm does not inherit pairs; an out OSD keeps pairs that are ignored', (t) => {
  const map = twelve();
  const m = nextMap(map, [set(1, 0, [[9, 5]])]);
  const out = nextMap(m, [{ op: 'osd-set', id: o(5), changes: { in: false } }]);
  t.is(out.pgUpmapItems.size, 1);
  t.false(pgToOsds(out, pg(1, 0)).raw.includes(o(5)));
  const gone = nextMap(out, [{ op: 'osd-set', id: o(5), changes: { up: false } }, { op: 'osd-remove', id: o(5) }]);
  const reborn = nextMap(gone, [{ op: 'osd-add', osd: makeOsd({ id: 5, host: 'host-9', uuid: 'new' }) }]);
  t.is(reborn.pgUpmapItems.size, 0);
});
