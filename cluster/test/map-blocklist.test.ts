/**
 * Client blocklist in the map (field `blocklist`, ops `blocklist-add` / `blocklist-rm`): op
 * validation, copy-on-write, `diffOps`, and the codec (v4 only when the blocklist is
 * non-empty: a map or incremental without one encodes byte-identically to before).
 */
import test from 'ava';
import { isClusterError } from '../src/common/errors.js';
import type { Epoch, OsdId, PgSeed, PoolId } from '../src/common/ids.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { isBlocklisted } from '../src/map/cluster-map.js';
import { applyIncremental, diffOps } from '../src/map/incremental.js';
import type { Incremental, MapOp } from '../src/map/incremental.js';
import { buildMap, evenOsds, nextMap } from '../src/map/map-builder.js';
import { decodeIncremental, decodeMap, encodeIncremental, encodeMap } from '../src/map/map-codec.js';

const A = 'client.vm1/0a1b2c3d';
const B = 'client.vm2/deadbeef';
const add = (instance: string, expiresMs: number): MapOp => ({ op: 'blocklist-add', instance, expiresMs });
const rm = (instance: string): MapOp => ({ op: 'blocklist-rm', instance });

function base(): ClusterMap {
  return buildMap({ osds: evenOsds(3, 3), pools: [{ id: 1, name: 'rbd', pgNum: 8 }] });
}

test('add lists an instance (a second add replaces the expiry); rm lifts it; the previous map is unchanged', (t) => {
  const m0 = base();
  t.false(isBlocklisted(m0, A));
  const m1 = nextMap(m0, [add(A, 5000)]);
  t.true(isBlocklisted(m1, A));
  t.false(isBlocklisted(m1, B));
  t.is(m0.blocklist.size, 0, 'copy-on-write');
  const m2 = nextMap(m1, [add(A, 9000), add(B, 7000)]);
  t.deepEqual([...m2.blocklist].sort(), [[A, 9000], [B, 7000]]);
  const m3 = nextMap(m2, [rm(A)]);
  t.false(isBlocklisted(m3, A));
  t.true(isBlocklisted(m3, B));
  t.is(nextMap(m3, [{ op: 'osd-set', id: 0 as OsdId, changes: { up: false } }]).blocklist, m3.blocklist, 'untouched epochs share the table');
});

test('invalid blocklist ops are refused whole', (t) => {
  const m = base();
  const bad = (ops: MapOp[]): void => {
    const e = t.throws(() => applyIncremental(m, { epoch: (m.epoch + 1) as Epoch, fsid: m.fsid, modifiedMs: 1, ops }));
    t.true(isClusterError(e) && e.code === 'CLU_ERR_INVALID', String(e));
  };
  bad([rm(A)]);
  bad([add('osd.3/abc', 5)]);
  bad([add('client.x/', 5)]);
  bad([add('client.x/a/b', 5)]);
  bad([add('client./a', 5)]);
  bad([add(A, 0)]);
  bad([add(A, 5), rm(B)]);
});

test('an entry without a nonce lists the whole entity: every instance of it, and only of it', (t) => {
  const m = nextMap(base(), [add('client.vm1', 5000)]);
  t.true(isBlocklisted(m, A));
  t.true(isBlocklisted(m, 'client.vm1/ffff'), 'a new instance of the entity');
  t.false(isBlocklisted(m, B));
  t.false(isBlocklisted(m, 'client.vm10/0a1b2c3d'), 'not a prefix match');
  t.false(isBlocklisted(nextMap(base(), [add(A, 5000)]), 'client.vm1/ffff'), 'an instance entry lists that instance only');
  const back = decodeMap(encodeMap(m));
  t.deepEqual([...back.blocklist], [['client.vm1', 5000]]);
  t.false(isBlocklisted(nextMap(m, [rm('client.vm1')]), A));
});

test('diffOps turns one blocklist into another', (t) => {
  const a = nextMap(base(), [add(A, 100), add(B, 200)]);
  const b = nextMap(base(), [add(B, 300), add('client.z/1', 400)]);
  const ops = diffOps(a, b);
  const c = applyIncremental(a, { epoch: (a.epoch + 1) as Epoch, fsid: a.fsid, modifiedMs: b.modifiedMs, ops });
  t.deepEqual([...c.blocklist].sort(), [...b.blocklist].sort());
});

test('codec: v4 round trip of maps and incrementals; no blocklist → the old encoding, byte for byte', (t) => {
  const m0 = nextMap(base(), [{ op: 'pg-upmap-items-set', pg: { pool: 1 as PoolId, seed: 0 as PgSeed }, items: [[0 as OsdId, 2 as OsdId]] }]);
  const before = encodeMap(m0);
  t.is(before[4], 2, 'a map with upmap items only is v2');
  const m1 = nextMap(m0, [add(B, 2 ** 40 + 7), add(A, 1234)]);
  const enc = encodeMap(m1);
  t.is(enc[4], 4);
  const back = decodeMap(enc);
  t.deepEqual([...back.blocklist], [[A, 1234], [B, 2 ** 40 + 7]]);
  t.deepEqual(encodeMap(back), enc, 'canonical (sorted) encoding');
  // Listing and lifting again leaves a map that encodes exactly as the one that never had one.
  const m2 = nextMap(m1, [rm(A), rm(B)]);
  const again = encodeMap({ ...m2, epoch: m0.epoch, modifiedMs: m0.modifiedMs });
  t.is(Buffer.from(again).toString('hex'), Buffer.from(before).toString('hex'));

  const inc: Incremental = { epoch: 9 as Epoch, fsid: m0.fsid, modifiedMs: 77, ops: [add(A, 5), rm(B)] };
  const ie = encodeIncremental(inc);
  t.is(ie[4], 4);
  t.deepEqual(decodeIncremental(ie), inc);
  const plain: Incremental = { epoch: 9 as Epoch, fsid: m0.fsid, modifiedMs: 77, ops: [{ op: 'osd-remove', id: 1 as OsdId }] };
  t.is(encodeIncremental(plain)[4], 1, 'an incremental without blocklist ops stays v1');
});

test('codec: a v4 map with an empty blocklist and v1..v3 incrementals carrying blocklist tags are refused', (t) => {
  const m = nextMap(base(), [add(A, 5)]);
  const enc = Buffer.from(encodeMap(m));
  // The last field is `u32 count | str instance | u64`: rewrite the count to 0 and drop the entry.
  const entryBytes = 4 + Buffer.byteLength(A) + 8;
  const empty = Buffer.concat([enc.subarray(0, enc.length - entryBytes - 4), Buffer.alloc(4)]);
  t.throws(() => decodeMap(empty), { message: /without blocklist/ });
  const ie = Buffer.from(encodeIncremental({ epoch: 2 as Epoch, fsid: m.fsid, modifiedMs: 1, ops: [rm(A)] }));
  ie[4] = 3;
  t.throws(() => decodeIncremental(ie), { message: /needs incremental v4/ });
});
