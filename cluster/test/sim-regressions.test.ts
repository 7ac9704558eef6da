/**
 * Regression tests for OSD bugs the deterministic simulator found (docs/simulation.md), each
 * reproduced here without the simulator, on the in-process OSD harness.
 *
 * Seed 0x14 (real OSD): a deposed primary's late MSG_OSD_REPOP (interval 13, version 13.119)
 * reached the OSD that had meanwhile become the PG's primary in a newer interval and had
 * already written the same object at 16.119; the replica-side interval check compared only
 * against intervals seen in PEER messages, never the OSD's own new interval as primary, so the
 * stale sub-op applied and rolled the object's version back to 13.119 on that one replica
 * (convergence checker: "object obj.2 differs across the acting set").
 *
 * Seed 0x33e7e92f0b82100a (real OSD, PG split 32 → 61 during a partition): a REPOP of the
 * parent PG's old interval, held up by the partition, reached a replica just after the map that
 * split the parent and before any peer message of the parent's new interval, so the interval
 * check let it through: the parent's log got an entry for an object that now belonged to a
 * child, the parent's next peering took that log as authoritative and "recovered" the old
 * version over the child's newer acknowledged write (durability: read returned v4.9, not v10.10).
 * Seed 0xc36cd00c5398867e (the first fix alone): a primary cut off from the monitor kept
 * the old pgNum and activated its split replicas with its unsplit log, so they adopted a
 * child's entry in the parent, and the parent stayed degraded forever (no recovery source).
 * Fixes: a split raises every PG's `seenInterval` past the previous map (osd-core.ts), and a
 * sub-op or push for an object the map puts in another PG is refused (replica.ts `movedOut`,
 * which also covers an OSD that skipped the split's epoch).
 */
import test from 'ava';
import type { OsdId } from '../src/common/ids.js';
import type { ObjectId } from '../src/store/types.js';
import { authPolicy } from '../src/auth/handshake.js';
import { Messenger } from '../src/msg/messenger.js';
import { MsgType } from '../src/msg/types.js';
import { LogOp, emptyInfo } from '../src/pg/pg-log.js';
import { encodePgActivate, encodeRepOp } from '../src/osd/osd-peer-protocol.js';
import { nextMap } from '../src/map/map-builder.js';
import { objectToPg, pgToOsds } from '../src/placement/placement.js';
import { splitHistoryOps } from '../src/placement/pg-split.js';
import { waitFor } from './msg-test-env.js';
import { OsdHarness } from './osd-harness.js';

function key(i: number): Uint8Array { const k = new Uint8Array(32); k.fill(i + 1); return k; }

test.serial('a deposed primary\'s REPOP of an older interval does not apply on the new primary (seed 0x14)', async (t) => {
  const h = new OsdHarness();
  try {
    for (let i = 0; i < 3; i++) await h.startOsd(i);
    h.initMap();
    await waitFor(() => h.allClean(), 10_000);
    const name = 'obj-stale';
    const first = await h.op(name, [{ op: 'writefull', length: 4 }], [new Uint8Array([1, 1, 1, 1])]);
    t.is(first.reply.result, 0);
    const pool = h.map.pools.get(1 as never)!;
    const pg = objectToPg(pool, name);
    const oldPrimary = pgToOsds(h.map, pg).primary;
    const oldInterval = h.map.epoch;
    // The old primary goes down (its process lives on, unaware); a replica becomes primary.
    h.apply([{ op: 'osd-set', id: oldPrimary as OsdId, changes: { up: false } }]);
    const newPrimary = pgToOsds(h.map, pg).primary;
    t.not(newPrimary, oldPrimary);
    const pgKey = `${pg.pool}.${pg.seed.toString(16)}`;
    await waitFor(() => h.osds.get(newPrimary)!.core.pgStates()[pgKey]?.startsWith('active') === true, 10_000);
    const second = await h.op(name, [{ op: 'writefull', length: 4 }], [new Uint8Array([2, 2, 2, 2])]);
    t.is(second.reply.result, 0);
    const v2 = second.reply.version;
    // The old primary's late sub-op: older interval, same seq, other data.
    const stale = new Messenger({
      env: h.env, entity: `osd.${oldPrimary}`,
      auth: authPolicy({ lookupKey: (e) => h.ring.get(e) }),
      credentials: () => ({ method: 'key', key: key(oldPrimary) }),
    });
    try {
      const obj = { pool: pg.pool, name: name as never };
      const m = encodeRepOp({
        pg: pgKey, interval: oldInterval,
        entry: { version: { epoch: oldInterval, seq: v2.seq }, object: name, op: LogOp.modify, client: 'client.admin/1', tid: 999, result: 0 },
        ops: [{ op: 'write', obj, offset: 0, data: new Uint8Array([9, 9, 9, 9]) }, { op: 'version', obj, version: { epoch: oldInterval, seq: v2.seq } }],
      });
      const s = stale.connect({ host: '127.0.0.1', port: h.osds.get(newPrimary)!.port });
      const err = await new Promise<string | null>((resolve) => {
        s.request({ type: MsgType.MSG_OSD_REPOP, payload: m.payload, data: m.data }, { timeoutMs: 5000 }, (e) => resolve(e === null ? null : e.code));
      });
      t.is(err, 'CLU_ERR_EPOCH_STALE');
      const st = h.osds.get(newPrimary)!.store.stat(obj);
      t.deepEqual(st?.version, { epoch: v2.epoch, seq: v2.seq });
    } finally {
      stale.shutdown();
    }
  } finally {
    await h.close();
  }
});

/** Writes an object of parent 0 (pgNum 2) that moves to child 2 (pgNum 4); returns the setup. */
async function splitSetup(h: OsdHarness) {
  for (let i = 0; i < 3; i++) await h.startOsd(i);
  h.initMap();
  await waitFor(() => h.allClean(), 10_000);
  const pool = h.map.pools.get(1 as never)!;
  const grown = { ...pool, pgNum: 4 };
  const name = Array.from({ length: 200 }, (_, i) => `obj-${i}`).find((n) => objectToPg(pool, n).seed === 0 && objectToPg(grown, n).seed === 2)!;
  const first = await h.op(name, [{ op: 'writefull', length: 4 }], [new Uint8Array([1, 1, 1, 1])]);
  if (first.reply.result !== 0) throw new Error('write failed');
  const parent = objectToPg(pool, name);
  const [primary, replica] = pgToOsds(h.map, parent).acting as [OsdId, OsdId];
  return { pool, name, parentKey: `${parent.pool}.${parent.seed.toString(16)}`, obj: { pool: parent.pool, name: name as never }, primary, replica };
}

/** Sends one peer message as `from` to `to`; resolves with the error code (null: accepted). */
async function sendAs(h: OsdHarness, from: number, to: number, type: number, payload: Uint8Array, data: Uint8Array[] = []): Promise<string | null> {
  const stale = new Messenger({
    env: h.env, entity: `osd.${from}`,
    auth: authPolicy({ lookupKey: (e) => h.ring.get(e) }),
    credentials: () => ({ method: 'key', key: key(from) }),
  });
  try {
    const s = stale.connect({ host: '127.0.0.1', port: h.osds.get(to)!.port });
    return await new Promise<string | null>((resolve) => {
      s.request({ type, payload, data }, { timeoutMs: 5000 }, (e) => resolve(e === null ? null : e.code));
    });
  } finally { stale.shutdown(); }
}

function staleRepOp(parentKey: string, interval: number, name: string, obj: ObjectId) {
  const v = { epoch: interval, seq: 1000 };
  return encodeRepOp({
    pg: parentKey, interval,
    entry: { version: v, object: name, op: LogOp.modify, client: 'client.admin/1', tid: 999, result: 0 },
    ops: [{ op: 'write', obj, offset: 0, data: new Uint8Array([9, 9, 9, 9]) }, { op: 'version', obj, version: v }],
  });
}

test.serial('after a PG split, a parent\'s REPOP and activation of the old interval are refused (seeds 0x33e7e92f0b82100a, 0xc36cd00c5398867e)', async (t) => {
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 2, minSize: 1, pgNum: 2, failureDomain: 'osd' });
  try {
    const { pool, name, parentKey, obj, primary, replica } = await splitSetup(h);
    const oldEpoch = h.map.epoch;
    // Only the replica gets the split map (the primary is cut off from the monitor).
    h.osds.get(replica)!.core.handleMap(nextMap(h.map, [{ op: 'pool-set', id: pool.id, changes: { pgNum: 4 } }, ...splitHistoryOps(h.map, pool.id, 4)]));
    const core = h.osds.get(replica)!.core;
    const before = h.osds.get(replica)!.store.stat(obj)?.version;
    const headBefore = core.pgForTest(parentKey)?.head;
    const m = staleRepOp(parentKey, oldEpoch, name, obj);
    t.is(await sendAs(h, primary, replica, MsgType.MSG_OSD_REPOP, m.payload, m.data), 'CLU_ERR_EPOCH_STALE');
    // The old primary's activation with its unsplit log (the moved object's entry in it).
    const entry = { version: { epoch: oldEpoch, seq: 1000 }, object: name, op: LogOp.modify, client: 'client.admin/1', tid: 999, result: 0 };
    const info = { ...emptyInfo(), lastUpdate: entry.version, lastComplete: entry.version, sameIntervalSince: oldEpoch };
    const act = encodePgActivate({ pg: parentKey, interval: oldEpoch, mode: 1, info, tail: { epoch: 0, seq: 0 }, entries: [entry] });
    t.is(await sendAs(h, primary, replica, MsgType.MSG_OSD_PG_ACTIVATE, act), 'CLU_ERR_EPOCH_STALE');
    t.deepEqual(h.osds.get(replica)!.store.stat(obj)?.version, before, 'the object is untouched');
    t.deepEqual(core.pgForTest(parentKey)?.head, headBefore, 'the parent\'s log took no entry');
  } finally {
    await h.close();
  }
});

test.serial('a REPOP of an object that moved to a child is refused also by a replica that skipped the split\'s epoch', async (t) => {
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 2, minSize: 1, pgNum: 2, failureDomain: 'osd' });
  try {
    const { pool, name, parentKey, obj, primary, replica } = await splitSetup(h);
    // Epoch E+1 changes nothing for the PG (the primary built its sub-op on it); the replica
    // never sees E+1 and jumps to E+2, the split: its floor (E+1) does not refuse interval E+1.
    const mid = nextMap(h.map, [{ op: 'pool-set', id: pool.id, changes: { minSize: 1 } }]);
    h.osds.get(replica)!.core.handleMap(nextMap(mid, [{ op: 'pool-set', id: pool.id, changes: { pgNum: 4 } }, ...splitHistoryOps(mid, pool.id, 4)]));
    const before = h.osds.get(replica)!.store.stat(obj)?.version;
    const m = staleRepOp(parentKey, mid.epoch, name, obj);
    t.is(await sendAs(h, primary, replica, MsgType.MSG_OSD_REPOP, m.payload, m.data), 'CLU_ERR_EPOCH_STALE');
    t.deepEqual(h.osds.get(replica)!.store.stat(obj)?.version, before, 'the object is untouched');
  } finally {
    await h.close();
  }
});
