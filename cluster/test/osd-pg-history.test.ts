/**
 * The prior-set rule with the real OsdCore (docs/replication.md §4, docs/simulation.md seed
 * 0x54 cause (2)). Pool 3/2, four OSDs. Interval I1 acting [A,B,C]; C dies; I2 [A,B] records
 * itself in the PG history and acknowledges writes; A and B die (and are marked out); C
 * returns, so I3 is [C,D] — both without I2's writes. Without the PG history I3 activated on
 * C's stale log and A's acknowledged writes were rolled back as divergent when A returned.
 * Now the PG stays DOWN, naming A and B, until one of them answers; then it activates with
 * the I2 writes intact.
 */
import test from 'ava';
import type { ObjectName, OsdId, PoolId } from '../src/common/ids.js';
import { ZERO_VERSION } from '../src/osd/osd-protocol.js';
import { INFO_KEY, decodeInfo, encodeInfo } from '../src/pg/pg-log.js';
import { ObjectStore } from '../src/store/object-store.js';
import { Transaction } from '../src/store/types.js';
import { objectToPg, pgToOsds } from '../src/placement/placement.js';
import { pgIdToString } from '../src/common/ids.js';
import { waitFor } from './msg-test-env.js';
import { OsdHarness } from './osd-harness.js';

function block(seed: number, n = 4096): Uint8Array { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff; return b; }
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test.serial('a PG whose last writable interval is all down stays DOWN until a member returns, then serves that interval\'s writes', async (t) => {
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 3, minSize: 2, pgNum: 8, failureDomain: 'osd' });
  try {
    for (let i = 0; i < 4; i++) await h.startOsd(i);
    h.initMap();
    await waitFor(() => h.allClean(), 10_000);
    const name = 'victim';
    const pgId = objectToPg(h.map.pools.get(1 as never)!, name);
    const key = pgIdToString(pgId);
    const [a, b, c] = pgToOsds(h.map, pgId).acting as [OsdId, OsdId, OsdId];
    const d = [0, 1, 2, 3].find((x) => ![a, b, c].includes(x as OsdId)) as OsdId;
    t.deepEqual(h.map.pgHistory.get(key), [[a, b, c]], 'I1 recorded at activation; clean at full size keeps exactly it');
    t.is((await h.op(name, [{ op: 'writefull', length: 4096 }], [block(1)])).reply.result, 0);

    // I2: C dies; [A,B] go active — after recording themselves — and acknowledge a write.
    await h.stopOsd(c);
    h.apply([{ op: 'osd-set', id: c, changes: { up: false } }]);
    t.is((await h.op(name, [{ op: 'writefull', length: 4096 }], [block(2)])).reply.result, 0);
    t.true(h.historyLog.includes(`${a} ${key} add [${a},${b}]`), h.historyLog.join('; '));
    t.deepEqual(h.map.pgHistory.get(key), [[a, b, c], [a, b]]);

    // I3: A and B die and are marked out; C returns: the PG maps to C and D, neither has v2.
    await h.stopOsd(a);
    await h.stopOsd(b);
    const tc = await h.startOsd(c);
    h.apply([
      { op: 'osd-set', id: a, changes: { up: false, in: false } }, { op: 'osd-set', id: b, changes: { up: false, in: false } },
      { op: 'osd-set', id: c, changes: { up: true, addr: `127.0.0.1:${tc.port}` } },
    ]);
    const acting3 = pgToOsds(h.map, pgId).acting;
    t.deepEqual([...acting3].sort(), [c, d].sort());
    const p3 = h.osds.get(acting3[0]!)!;
    await waitFor(() => p3.core.pgForTest(key)?.state === 'down', 10_000);
    t.deepEqual(p3.core.pgForTest(key)?.waitingFor, [a, b].sort((x, y) => x - y), 'waits for a member of [A,B]');
    // It stays down across its retries (every 2 s and on every map), and C still holds only v1.
    await sleep(2500);
    h.apply([{ op: 'osd-set', id: d, changes: { weight: 0x10000 } }]); // an unrelated new epoch
    await sleep(500);
    t.is(p3.core.pgForTest(key)?.state, 'down');
    t.deepEqual((await h.localRead(c, name)).data, block(1), 'C has the stale v1: activating on it would lose v2');
    t.false(h.historyLog.some((l) => l.includes(`${key} add [${acting3.join(',')}]`)), 'I3 never recorded itself: it never went active');

    // A returns (still out, so not in the acting set): it is queried as a history member, its
    // log is the authoritative one, and the PG activates with v2, which recovery copies to C and D.
    const ta = await h.startOsd(a);
    h.apply([{ op: 'osd-set', id: a, changes: { up: true, addr: `127.0.0.1:${ta.port}` } }]);
    await waitFor(() => (p3.core.pgForTest(key)?.state ?? '').startsWith('active'), 15_000);
    const r = await h.op(name, [{ op: 'read', offset: 0, length: 4096 }]);
    t.is(r.reply.result, 0);
    t.deepEqual(r.data, block(2), 'the acknowledged I2 write survived');
    await waitFor(() => p3.core.pgForTest(key)?.state === 'active+undersized+degraded' || p3.core.pgForTest(key)?.state === 'active+clean', 15_000);
    for (const id of [c, d]) {
      let data = (await h.localRead(id, name)).data;
      for (let i = 0; i < 150 && !Buffer.from(data).equals(Buffer.from(block(2))); i++) { await sleep(100); data = (await h.localRead(id, name)).data; }
      t.deepEqual(data, block(2), `v2 recovered to osd.${id}`);
    }
    t.true(h.historyLog.includes(`${acting3[0]} ${key} add [${acting3.join(',')}]`));
  } finally { await h.close(); }
});

test.serial('activation waits for the PG history record: no client write is accepted while the monitor refuses it', async (t) => {
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 3, minSize: 2, pgNum: 4, failureDomain: 'osd' });
  try {
    for (let i = 0; i < 3; i++) await h.startOsd(i);
    h.initMap();
    await waitFor(() => h.allClean(), 10_000);
    const name = 'obj';
    const pgId = objectToPg(h.map.pools.get(1 as never)!, name);
    const key = pgIdToString(pgId);
    const [a, , c] = pgToOsds(h.map, pgId).acting as [OsdId, OsdId, OsdId];
    h.historyRefused = true;
    await h.stopOsd(c);
    h.apply([{ op: 'osd-set', id: c, changes: { up: false } }]);
    let acked = false;
    const write = h.op(name, [{ op: 'writefull', length: 4096 }], [block(7)]).then((r) => { acked = true; return r; });
    await sleep(2500);
    t.is(h.osds.get(a)!.core.pgForTest(key)?.state, 'peering', 'peered, but not active without the history record');
    t.false(acked);
    h.historyRefused = false;
    t.is((await write).reply.result, 0);
    t.deepEqual(h.map.pgHistory.get(key)?.at(-1), pgToOsds(h.map, pgId).acting);
  } finally { await h.close(); }
});

test.serial('prior set: a backfilling member does not stand for its interval; the PG waits for a complete one instead of rolling back its writes', async (t) => {
  // Pool 2/1, three OSDs. I1 [A,B]; B out → I2 [A,C], clean (history reset to [[A,C]]), v2
  // acknowledged by A and C. C then crashes in the middle of a backfill: its store holds the
  // PG info marked backfilling and lacks an older object (the on-disk state such a crash
  // leaves, written into its store while it is stopped). A dies; B and C come back: C answers
  // for [A,C] but is incomplete, B is complete with the older v1. Counting C's answer let the
  // PG activate on B's log and roll v2 back as divergent; now it stays down until A answers.
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 2, minSize: 1, pgNum: 4, failureDomain: 'osd' });
  try {
    for (let i = 0; i < 3; i++) await h.startOsd(i);
    h.initMap();
    await waitFor(() => h.allClean(), 10_000);
    const pool = h.map.pools.get(1 as never)!;
    const x = 'bf-x';
    const pgId = objectToPg(pool, x);
    const key = pgIdToString(pgId);
    let y = '';
    for (let i = 0; y === ''; i++) if (pgIdToString(objectToPg(pool, `bf-y${i}`)) === key) y = `bf-y${i}`;
    const [a, b] = pgToOsds(h.map, pgId).acting as [OsdId, OsdId];
    const c = [0, 1, 2].find((o) => o !== a && o !== b) as OsdId;
    t.is((await h.op(x, [{ op: 'writefull', length: 4096 }], [block(1)])).reply.result, 0);
    t.is((await h.op(y, [{ op: 'writefull', length: 4096 }], [block(3)])).reply.result, 0);

    await h.stopOsd(b);
    h.apply([{ op: 'osd-set', id: b, changes: { up: false, in: false } }]);
    t.deepEqual([...pgToOsds(h.map, pgId).acting].sort(), [a, c].sort());
    await waitFor(() => h.allClean() && JSON.stringify(h.map.pgHistory.get(key)) === JSON.stringify([pgToOsds(h.map, pgId).acting]), 15_000);
    t.is((await h.op(x, [{ op: 'writefull', length: 4096 }], [block(2)])).reply.result, 0);

    // C "crashes mid-backfill": info backfilling, lastComplete zero, object y not copied yet.
    const dirC = h.osds.get(c)!.dir;
    await h.stopOsd(c);
    await new Promise<void>((resolve, reject) => ObjectStore.open(h.env, { dir: dirC, journalBytes: 8 * 1024 * 1024 }, (err, store) => {
      if (err !== null || store === undefined) { reject(err); return; }
      const info = decodeInfo(store.pgList(key).find(([k]) => k === INFO_KEY)![1]);
      const txn = new Transaction().pgPut(key, INFO_KEY, encodeInfo({ ...info, lastComplete: ZERO_VERSION, backfilling: true })).remove({ pool: 1 as PoolId, name: y as ObjectName });
      store.submit(txn, (e) => { if (e !== null) { reject(e); return; } store.close(() => resolve()); });
    }));
    await h.stopOsd(a);
    h.apply([{ op: 'osd-set', id: a, changes: { up: false, in: false } }, { op: 'osd-set', id: c, changes: { up: false } }]);
    const tb = await h.startOsd(b);
    const tc = await h.startOsd(c, dirC);
    h.apply([
      { op: 'osd-set', id: b, changes: { up: true, in: true, addr: `127.0.0.1:${tb.port}` } },
      { op: 'osd-set', id: c, changes: { up: true, addr: `127.0.0.1:${tc.port}` } },
    ]);
    const acting = pgToOsds(h.map, pgId).acting;
    t.deepEqual([...acting].sort(), [b, c].sort());
    const p = h.osds.get(acting[0]!)!;
    await waitFor(() => p.core.pgForTest(key)?.state === 'down', 10_000);
    await sleep(2500);
    t.is(p.core.pgForTest(key)?.state, 'down', 'C alone does not stand for [A,C]');
    t.true(p.core.pgForTest(key)?.waitingFor.includes(a) === true);
    t.deepEqual((await h.localRead(c, x)).data, block(2), 'C still has v2 (not rolled back)');

    // A returns (out, queried as a history member): its complete log wins.
    const ta = await h.startOsd(a);
    h.apply([{ op: 'osd-set', id: a, changes: { up: true, addr: `127.0.0.1:${ta.port}` } }]);
    await waitFor(() => (p.core.pgForTest(key)?.state ?? '').startsWith('active'), 15_000);
    const rx = await h.op(x, [{ op: 'read', offset: 0, length: 4096 }]);
    t.deepEqual(rx.data, block(2), 'the acknowledged v2 survived');
    const ry = await h.op(y, [{ op: 'read', offset: 0, length: 4096 }]);
    t.deepEqual(ry.data, block(3), 'the object C lacked is recovered');
  } finally { await h.close(); }
});
