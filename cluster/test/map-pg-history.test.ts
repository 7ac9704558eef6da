/**
 * PG history (map field `pgHistory`): the incremental ops (`pg-history-add` appends unless
 * listed, `pg-history-reset` leaves exactly one set, `pg-history-remove`), their validation,
 * what `osd-remove` and `pool-remove` do to it, `diffOps`, and the codec (v3 only when a
 * history exists: v1/v2 golden bytes unchanged; v3 golden bytes pinned here).
 */
import test from 'ava';
import { isClusterError } from '../src/common/errors.js';
import type { Epoch, OsdId, PgSeed, PoolId } from '../src/common/ids.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { applyIncremental, diffOps } from '../src/map/incremental.js';
import type { Incremental, MapOp } from '../src/map/incremental.js';
import { buildMap, evenOsds, nextMap } from '../src/map/map-builder.js';
import { decodeIncremental, decodeMap, encodeIncremental, encodeMap } from '../src/map/map-codec.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const pg = (pool: number, seed: number) => ({ pool: pool as PoolId, seed: seed as PgSeed });
const ids = (xs: number[]): OsdId[] => xs.map((x) => x as OsdId);
const add = (p: number, s: number, set: number[]): MapOp => ({ op: 'pg-history-add', pg: pg(p, s), set: ids(set) });
const reset = (p: number, s: number, set: number[]): MapOp => ({ op: 'pg-history-reset', pg: pg(p, s), set: ids(set) });
const hist = (m: ClusterMap, key: string): number[][] | undefined => m.pgHistory.get(key)?.map((s) => [...s]);

function six(): ClusterMap {
  return buildMap({ osds: evenOsds(6, 6), pools: [{ id: 1, name: 'rbd', pgNum: 32 }, { id: 2, name: 'two', pgNum: 8, size: 2 }] });
}

test('add appends a set unless listed (ordered compare); reset leaves exactly one set; remove drops the entry', (t) => {
  let m = six();
  t.is(m.pgHistory.size, 0);
  m = nextMap(m, [add(1, 0x1a, [0, 1, 2])]);
  t.deepEqual(hist(m, '1.1a'), [[0, 1, 2]]);
  m = nextMap(m, [add(1, 0x1a, [0, 1]), add(1, 0x1a, [0, 1, 2]), add(1, 0x1a, [0, 1])]);
  t.deepEqual(hist(m, '1.1a'), [[0, 1, 2], [0, 1]]);
  m = nextMap(m, [add(1, 0x1a, [1, 0])]); // another order is another acting set (another primary)
  t.deepEqual(hist(m, '1.1a'), [[0, 1, 2], [0, 1], [1, 0]]);
  const before = m.pgHistory;
  m = nextMap(m, [reset(1, 0x1a, [3, 4, 5])]);
  t.deepEqual(hist(m, '1.1a'), [[3, 4, 5]]);
  t.deepEqual(before.get('1.1a')?.length, 3, 'copy-on-write: the previous map is unchanged');
  m = nextMap(m, [{ op: 'pg-history-remove', pg: pg(1, 0x1a) }]);
  t.false(m.pgHistory.has('1.1a'));
  // An epoch without history ops shares the table.
  const m2 = nextMap(m, [{ op: 'osd-set', id: 0 as OsdId, changes: { up: false } }]);
  t.is(m2.pgHistory, m.pgHistory);
});

test('history ops are validated: PG exists, 1..10 distinct existing OSDs; remove needs an entry', (t) => {
  const m = six();
  const refuse = (op: MapOp, re: RegExp): void => {
    const e = t.throws(() => nextMap(m, [op]));
    t.true(isClusterError(e, 'CLU_ERR_INVALID'), String(e));
    t.regex(e?.message ?? '', re);
  };
  refuse(add(9, 0, [0]), /does not exist/);
  refuse(add(2, 8, [0]), /does not exist/); // pool 2 has 8 PGs
  refuse(add(1, 0, []), /history set of 0/);
  refuse(add(1, 0, [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4]), /history set of 11/);
  refuse(add(1, 0, [0, 0]), /named twice/);
  refuse(reset(1, 0, [0, 42]), /osd\.42 .*does not exist/);
  refuse({ op: 'pg-history-remove', pg: pg(1, 0) }, /has no history/);
});

test('osd-remove drops the OSD from every set (declares its data lost); empty sets and entries go; pool-remove drops its PGs', (t) => {
  let m = six();
  m = nextMap(m, [add(1, 0, [0, 1, 2]), add(1, 0, [0, 1]), add(1, 0, [0]), add(1, 1, [1]), add(2, 3, [3, 4])]);
  m = nextMap(m, [{ op: 'osd-set', id: 1 as OsdId, changes: { up: false } }]);
  m = nextMap(m, [{ op: 'osd-remove', id: 1 as OsdId }]);
  // [0,1] became [0], equal to the existing [0]: listed once.
  t.deepEqual(hist(m, '1.0'), [[0, 2], [0]]);
  t.false(m.pgHistory.has('1.1'), 'a PG whose only set was [1] has no history left');
  t.deepEqual(hist(m, '2.3'), [[3, 4]]);
  m = nextMap(m, [{ op: 'pool-remove', id: 2 as PoolId }]);
  t.false(m.pgHistory.has('2.3'));
  t.deepEqual(hist(m, '1.0'), [[0, 2], [0]]);
});

test('diffOps reproduces histories: append, restart, removal, across an osd-remove', (t) => {
  const a = nextMap(six(), [add(1, 0, [0, 1, 2]), add(1, 1, [1, 2, 3]), add(1, 2, [4]), add(1, 3, [5, 0])]);
  const variants: MapOp[][] = [
    [add(1, 0, [0, 1])], // append
    [reset(1, 1, [3, 4, 5])], // restart
    [{ op: 'pg-history-remove', pg: pg(1, 2) }],
    [{ op: 'osd-set', id: 4 as OsdId, changes: { up: false } }, { op: 'osd-remove', id: 4 as OsdId }, add(1, 3, [2, 3])],
    [{ op: 'osd-remove', id: 5 as OsdId }, add(1, 7, [0, 1, 2]), { op: 'pool-remove', id: 2 as PoolId }],
  ];
  for (const ops of variants) {
    const b = nextMap(a, ops);
    const c = applyIncremental(a, { epoch: (a.epoch + 1) as Epoch, fsid: a.fsid, modifiedMs: b.modifiedMs, ops: diffOps(a, b) });
    t.is(hex(encodeMap(c)), hex(encodeMap(b)), JSON.stringify(ops));
  }
});

test('codec: no history → v1/v2 bytes as before; v3 golden bytes; round trips; v3 tags refused in v2; empty v3 table refused', (t) => {
  const base = buildMap({ fsid: 'f5', osds: evenOsds(3, 3), pools: [{ id: 0, name: 'rbd', pgNum: 4 }], nowMs: 1000 });
  t.is(encodeMap(base)[4], 1, 'a map without history (or upmaps) is still v1');
  const m = nextMap(base, [add(0, 3, [2, 0, 1]), add(0, 3, [2, 0]), add(0, 1, [1])]);
  const enc = encodeMap(m);
  t.is(enc[4], 3);
  // Tail: u32 upmapCount 0 | u32 historyCount 2 | pg 0.1: u32 pool, u32 seed, u32 nSets 1, u8 1, osd 1
  // | pg 0.3: 2 sets: [2,0,1], [2,0].
  const tail = '00000000' + '02000000'
    + '00000000' + '01000000' + '01000000' + '01' + '01000000'
    + '00000000' + '03000000' + '02000000' + '03' + '02000000' + '00000000' + '01000000' + '02' + '02000000' + '00000000';
  t.is(hex(enc.slice(enc.length - tail.length / 2)), tail);
  t.is(hex(enc.slice(0, enc.length - tail.length / 2)).slice(18), hex(encodeMap(base)).slice(18), 'v3 = v1 fields (after magic, version, epoch) + tables');
  const d = decodeMap(enc);
  t.deepEqual(hist(d, '0.3'), [[2, 0, 1], [2, 0]]);
  t.is(hex(encodeMap(d)), hex(enc));
  const inc: Incremental = { epoch: 9 as Epoch, fsid: 'f5', modifiedMs: 7, ops: [add(0, 3, [2, 0]), reset(0, 1, [1, 2]), { op: 'pg-history-remove', pg: pg(0, 3) }] };
  const incHex = '53494e4303' + '09000000' + '02000000' + '6635' + '0700000000000000' + '03000000'
    + '09' + '00000000' + '03000000' + '02' + '02000000' + '00000000'
    + '0a' + '00000000' + '01000000' + '02' + '01000000' + '02000000'
    + '0b' + '00000000' + '03000000';
  t.is(hex(encodeIncremental(inc)), incHex);
  t.deepEqual(decodeIncremental(encodeIncremental(inc)), inc);
  // An incremental without history ops keeps its v1 form.
  t.is(encodeIncremental({ ...inc, ops: [{ op: 'pool-remove', id: 0 as PoolId }] })[4], 1);
  // A history op tag under version 2 is refused; so are a v3 map without history and a bad set size.
  const v2 = Buffer.from(incHex, 'hex');
  v2[4] = 2;
  t.regex(t.throws(() => decodeIncremental(v2))?.message ?? '', /tag 9 needs incremental v3/);
  const empty = Buffer.from(encodeMap(base));
  const v3empty = Buffer.concat([empty.subarray(0, 4), Buffer.from([3]), empty.subarray(5), Buffer.from('0000000000000000', 'hex')]);
  t.regex(t.throws(() => decodeMap(v3empty))?.message ?? '', /without pg history/);
  const badSet = Buffer.from(enc);
  badSet[badSet.length - 22] = 0; // pg 0.3's first set size 3 → 0
  t.regex(t.throws(() => decodeMap(badSet))?.message ?? '', /bad history set size 0/);
  // The same incremental applied to the same map gives the same bytes (every holder agrees).
  const next = applyIncremental({ ...m, epoch: 8 as Epoch }, inc);
  t.false(next.pgHistory.has('0.3'));
  t.deepEqual(hist(next, '0.1'), [[1, 2]]);
  t.is(hex(encodeMap(decodeMap(encodeMap(next)))), hex(encodeMap(next)));
});
