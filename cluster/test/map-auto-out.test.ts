/**
 * The auto-out bit in the map (`OsdInfo.autoOut`, Ceph's CEPH_OSD_AUTOOUT): validation (never
 * on an in OSD), `diffOps`, and the codec (v5 only when some OSD is auto-out or an op sets
 * the bit: other maps and incrementals encode byte-identically to before; a v4 decoder's
 * limits still apply to v1..v4 bytes).
 */
import test from 'ava';
import { isClusterError } from '../src/common/errors.js';
import type { Epoch, OsdId } from '../src/common/ids.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { applyIncremental, diffOps } from '../src/map/incremental.js';
import type { Incremental, MapOp } from '../src/map/incremental.js';
import { buildMap, evenOsds, nextMap } from '../src/map/map-builder.js';
import { decodeIncremental, decodeMap, encodeIncremental, encodeMap } from '../src/map/map-codec.js';

const autoOut = (id: number): MapOp => ({ op: 'osd-set', id: id as OsdId, changes: { up: false, in: false, autoOut: true } });
const bootIn = (id: number): MapOp => ({ op: 'osd-set', id: id as OsdId, changes: { up: true, in: true, autoOut: false } });

function base(): ClusterMap {
  return buildMap({ osds: evenOsds(3, 3), pools: [{ id: 1, name: 'rbd', pgNum: 8 }] });
}

function inc(m: ClusterMap, ops: MapOp[]): Incremental {
  return { epoch: (m.epoch + 1) as Epoch, fsid: m.fsid, modifiedMs: 7, ops };
}

test('auto-out is set with the out and cleared with the in; an in OSD cannot carry it', (t) => {
  const m0 = base();
  t.false(m0.osds.get(2 as OsdId)?.autoOut);
  const m1 = nextMap(m0, [autoOut(2)]);
  t.true(m1.osds.get(2 as OsdId)?.autoOut);
  t.false(m0.osds.get(2 as OsdId)?.autoOut, 'copy-on-write');
  const m2 = nextMap(m1, [bootIn(2)]);
  t.false(m2.osds.get(2 as OsdId)?.autoOut);
  for (const ops of [[{ op: 'osd-set', id: 1 as OsdId, changes: { autoOut: true } }], [{ op: 'osd-set', id: 2 as OsdId, changes: { in: true } }]] as MapOp[][]) {
    const on = ops[0]?.op === 'osd-set' && ops[0].id === 2 ? m1 : m0;
    const e = t.throws(() => applyIncremental(on, inc(on, ops)));
    t.true(isClusterError(e) && e.code === 'CLU_ERR_INVALID' && /auto-out but in/.test(e.message), String(e));
  }
});

test('diffOps carries the bit both ways', (t) => {
  const m0 = base();
  const m1 = nextMap(m0, [autoOut(0)]);
  for (const [a, b] of [[m0, m1], [m1, m0]] as const) {
    const r = applyIncremental(a, inc(a, diffOps(a, b)));
    t.is(r.osds.get(0 as OsdId)?.autoOut, b.osds.get(0 as OsdId)?.autoOut);
    t.is(r.osds.get(0 as OsdId)?.in, b.osds.get(0 as OsdId)?.in);
  }
});

test('codec: v5 only when needed, round trips, and v1..v4 bytes do not carry the bit', (t) => {
  const m0 = base();
  const v1 = encodeMap(m0);
  t.is(v1[4], 1, 'a map with no auto-out OSD is written as before');
  const m1 = nextMap(m0, [autoOut(1)]);
  const v5 = encodeMap(m1);
  t.is(v5[4], 5);
  const back = decodeMap(v5);
  t.true(back.osds.get(1 as OsdId)?.autoOut);
  t.false(back.osds.get(0 as OsdId)?.autoOut);
  t.deepEqual(encodeMap(back), v5, 're-encodes identically');
  // The same bytes labelled v4 (blocklist count 0 → refused anyway) or v1 (flags 4 → refused).
  const asV1 = Uint8Array.from(encodeMap(m1)); asV1[4] = 1;
  t.throws(() => decodeMap(asV1), { message: /bad osd flags|trailing|bytes/ });
  // A v5 map with no auto-out OSD is not canonical.
  const m2 = nextMap(m1, [bootIn(1)]);
  const fake = Uint8Array.from(encodeMap(nextMap(m0, [{ op: 'blocklist-add', instance: 'client.a/1', expiresMs: 9 }]))); fake[4] = 5;
  t.throws(() => decodeMap(fake), { message: /v5 without an auto-out osd/ });
  t.is(encodeMap(m2)[4], 1, 'clearing the bit returns to the old encoding');

  const plain = inc(m0, [{ op: 'osd-set', id: 1 as OsdId, changes: { up: false } }]);
  t.is(encodeIncremental(plain)[4], 1, 'an incremental without the field is written as before');
  for (const ops of [[autoOut(1)], [bootIn(1)]]) {
    const bytes = encodeIncremental(inc(m0, ops));
    t.is(bytes[4], 5);
    t.deepEqual(decodeIncremental(bytes).ops, ops);
    const old = Uint8Array.from(bytes); old[4] = 4;
    t.throws(() => decodeIncremental(old), { message: /bad osd-set mask/ }, 'a v4 incremental cannot set the bit');
  }
});
