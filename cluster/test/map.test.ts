/**
 * Cluster map: incremental application (pure, all-or-nothing, epoch checks), diffOps
 * round-trips, and the binary codec pinned by golden hex (a layout change must bump the
 * version byte). How: build small maps with map-builder and compare encodings.
 */
import test from 'ava';
import { isClusterError } from '../src/common/errors.js';
import type { Epoch, OsdId, PoolId } from '../src/common/ids.js';
import { WEIGHT_ONE, osdTreeRows } from '../src/map/cluster-map.js';
import { applyIncremental, diffOps } from '../src/map/incremental.js';
import type { Incremental } from '../src/map/incremental.js';
import { buildMap, makeOsd, nextMap } from '../src/map/map-builder.js';
import { decodeIncremental, decodeMap, encodeIncremental, encodeMap } from '../src/map/map-codec.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function smallMap() {
  return buildMap({
    fsid: 'f5',
    nowMs: 1000,
    osds: [{ id: 0, host: 'a', addr: '10.0.0.1:6800' }, { id: 1, host: 'b', rack: 'r1', weight: 2 * WEIGHT_ONE }],
    pools: [{ id: 0, name: 'rbd', pgNum: 8 }],
  });
}

test('golden bytes: map v1', (t) => {
  t.is(hex(encodeMap(smallMap())),
    '534d41500101000000020000006635e803000000000000e8030000000000000000000002000000000000000a0000006f73642d757569642d300d00000031302e302e302e313a3638303003000001000100000061000000000000000000000000010000000a0000006f73642d757569642d31000000000300000200010000006202000000723100000000000000000100000000000000030000007262640302080000000100004000000040000100000001000000');
});

test('golden bytes: incremental v1', (t) => {
  const inc: Incremental = {
    epoch: 2 as Epoch, fsid: 'f5', modifiedMs: 2000,
    ops: [{ op: 'osd-set', id: 1 as OsdId, changes: { up: false, downAt: 2 as Epoch } }, { op: 'pool-set', id: 0 as PoolId, changes: { pgNum: 16 } }],
  };
  t.is(hex(encodeIncremental(inc)), '53494e430102000000020000006635d007000000000000020000000201000000840000020000000500000000080010000000');
  t.deepEqual(decodeIncremental(encodeIncremental(inc)), inc);
});

test('decodeMap(encodeMap(m)) re-encodes identically and rebuilds the tree', (t) => {
  const m = smallMap();
  const d = decodeMap(encodeMap(m));
  t.is(hex(encodeMap(d)), hex(encodeMap(m)));
  t.deepEqual(d.tree, m.tree);
});

test('decoders reject bad magic, unknown version, truncation and trailing bytes with CLU_ERR_DECODE', (t) => {
  const good = encodeMap(smallMap());
  const cases = [good.slice(0, good.length - 1), Uint8Array.from([...good, 0]), Uint8Array.from(good).fill(0, 0, 4)];
  const badVersion = Uint8Array.from(good);
  badVersion[4] = 9;
  cases.push(badVersion);
  for (const c of cases) t.is(t.throws(() => decodeMap(c))?.['code' as keyof Error], 'CLU_ERR_DECODE');
});

test('applyIncremental rejects a non-consecutive epoch with CLU_ERR_EPOCH_STALE', (t) => {
  const m = smallMap();
  const err = t.throws(() => applyIncremental(m, { epoch: 5 as Epoch, fsid: m.fsid, modifiedMs: 0, ops: [] }));
  t.true(isClusterError(err, 'CLU_ERR_EPOCH_STALE'));
});

test('applyIncremental is all-or-nothing and leaves the input map untouched', (t) => {
  const m = smallMap();
  const before = hex(encodeMap(m));
  const err = t.throws(() => nextMap(m, [{ op: 'osd-set', id: 0 as OsdId, changes: { up: false } }, { op: 'osd-remove', id: 9 as OsdId }]));
  t.true(isClusterError(err, 'CLU_ERR_INVALID'));
  t.is(hex(encodeMap(m)), before);
});

test('invalid ops are refused: duplicate pool name, shrinking pgNum, host in two racks', (t) => {
  const m = smallMap();
  t.true(isClusterError(t.throws(() => nextMap(m, [{ op: 'pool-add', pool: { ...m.pools.get(0 as PoolId)!, id: 1 as PoolId } }])), 'CLU_ERR_INVALID'));
  t.true(isClusterError(t.throws(() => nextMap(m, [{ op: 'pool-set', id: 0 as PoolId, changes: { pgNum: 4 } }])), 'CLU_ERR_INVALID'));
  t.true(isClusterError(t.throws(() => nextMap(m, [{ op: 'osd-add', osd: makeOsd({ id: 5, host: 'b', rack: 'r2' }) }])), 'CLU_ERR_INVALID'));
});

test('the tree groups hosts under racks and sums weights', (t) => {
  const rows = osdTreeRows(smallMap());
  t.deepEqual(rows.map((r) => `${'  '.repeat(r.depth)}${r.type}:${r.name}:${r.weight / WEIGHT_ONE}`), [
    'root:default:3', '  host:a:1', '    osd:osd.0:1', '  rack:r1:2', '    host:b:2', '      osd:osd.1:2',
  ]);
});

test('up/down flips keep the same tree object (no rebuild)', (t) => {
  const m = smallMap();
  const m2 = nextMap(m, [{ op: 'osd-set', id: 0 as OsdId, changes: { up: false } }]);
  t.is(m2.tree, m.tree);
  const m3 = nextMap(m2, [{ op: 'osd-set', id: 0 as OsdId, changes: { weight: 3 * WEIGHT_ONE } }]);
  t.not(m3.tree, m.tree);
});

test('diffOps(a, b) applied to a reproduces b', (t) => {
  const a = smallMap();
  const b = nextMap(a, [
    { op: 'osd-add', osd: makeOsd({ id: 7, host: 'c' }) },
    { op: 'osd-set', id: 0 as OsdId, changes: { in: false, addr: '10.0.0.9:6801' } },
    { op: 'osd-remove', id: 1 as OsdId },
    { op: 'pool-set', id: 0 as PoolId, changes: { size: 2, minSize: 1 } },
  ]);
  const ops = diffOps(a, b);
  const c = nextMap(a, ops);
  t.is(hex(encodeMap(c)), hex(encodeMap(b)));
});
