/**
 * Checks the Objecter against an in-process monitor and fake OSDs speaking the real
 * MSG_OSD_OP protocol over the real messenger (client-harness.ts): ops reach the primary,
 * survive map changes mid-flight (OSD marked down, OSD killed, OSD added, OSD out → PG
 * remapped) and connection resets after apply, with every op completing once and no write
 * vector applied twice (the fake OSDs count applications per reqId); ops wait while a PG is
 * below min_size and fail loudly at their deadline; the in-flight bound queues the rest.
 */
import test from 'ava';
import { ClusterError } from '../src/common/errors.js';
import type { PoolId } from '../src/common/ids.js';
import { poolByName } from '../src/map/cluster-map.js';
import type { MonClient } from '../src/mon/mon-client.js';
import { Objecter } from '../src/client/objecter.js';
import type { ObjecterLimits } from '../src/client/objecter.js';
import { TestCluster } from './client-harness.js';

async function objecterFor(c: TestCluster, limits: Partial<ObjecterLimits> = {}): Promise<{ mon: MonClient; obj: Objecter; pool: PoolId }> {
  const mon = c.client('client.admin');
  const map = await new Promise<import('../src/map/cluster-map.js').ClusterMap>((resolve) => mon.latestMap(resolve));
  await new Promise<void>((resolve, reject) => mon.ticket((err) => (err ? reject(err) : resolve())));
  const obj = new Objecter({ env: c.env, msgr: mon.msgr, mon, entity: 'client.admin', limits });
  return { mon, obj, pool: poolByName(map, 'vms')!.id };
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

test('write, read back, missing objects are NOT_FOUND', async (t) => {
  const c = await TestCluster.start({ osds: 3 });
  const { mon, obj, pool } = await objecterFor(c);
  t.teardown(async () => { obj.close(); mon.close(); await c.stop(); });
  await obj.submitAsync({ pool, objectName: 'a', ops: [{ op: 'write', offset: 0, length: 5 }], data: [bytes('hello')] });
  const r = await obj.submitAsync({ pool, objectName: 'a', ops: [{ op: 'read', offset: 0, length: 100 }] });
  t.is(Buffer.concat(r.data).toString(), 'hello');
  const e = await t.throwsAsync(obj.submitAsync({ pool, objectName: 'nope', ops: [{ op: 'read', offset: 0, length: 1 }] }));
  t.is((e as ClusterError).code, 'CLU_ERR_NOT_FOUND');
  t.true(obj.sessionCount >= 1);
});

test('map changes mid-flight (down, kill, add, out) lose no op and apply none twice', async (t) => {
  const c = await TestCluster.start({ osds: 4, pool: { name: 'vms', size: 3, minSize: 2, pgNum: 16 } });
  const { mon, obj, pool } = await objecterFor(c, { attemptTimeoutMs: 2000 });
  t.teardown(async () => { obj.close(); mon.close(); await c.stop(); });
  for (const o of c.osds.values()) o.delayMs = 15;
  const objects = 24;
  const perObject = 12;
  const pending: Promise<unknown>[] = [];
  // Each object gets 12 writes of 4 bytes at distinct offsets; all must land exactly once.
  const issue = (k: number): void => {
    const name = `obj.${k % objects}`;
    const slot = Math.floor(k / objects);
    const payload = bytes(`${String(k).padStart(4, '0')}`);
    pending.push(obj.submitAsync({ pool, objectName: name, ops: [{ op: 'write', offset: slot * 4, length: 4 }], data: [payload] }));
  };
  let k = 0;
  const burst = (n: number): void => { for (let i = 0; i < n; i++) issue(k++); };
  burst(60);
  await c.command({ prefix: 'osd down', id: 0 });                 // Primary changes, old one answers WRONG_TARGET.
  burst(60);
  c.osds.get(1)!.stop();                                           // kill: sessions reset; then the monitor learns.
  await c.command({ prefix: 'osd down', id: 1 });
  burst(60);
  await c.command({ prefix: 'osd out', id: 0 });                   // Remap away from the down OSDs.
  await c.command({ prefix: 'osd out', id: 1 });
  await c.addOsd(4);                                                // A new OSD: PGs remap to it.
  burst(60);
  await c.command({ prefix: 'osd out', id: 2 });                   // Remap away from osd.2.
  await c.addOsd(5);
  burst(objects * perObject - k);
  const results = await Promise.allSettled(pending);
  const failed = results.filter((r) => r.status === 'rejected');
  t.deepEqual(failed.map((f) => String((f as PromiseRejectedResult).reason)), []);
  t.is(results.length, objects * perObject);
  for (const [key, n] of c.store.applied) if (n !== 1) t.fail(`${key} applied ${n} times`);
  t.is(c.store.applied.size, objects * perObject);
  for (let o = 0; o < objects; o++) {
    const r = await obj.submitAsync({ pool, objectName: `obj.${o}`, ops: [{ op: 'read', offset: 0, length: perObject * 4 }] });
    const expect = Array.from({ length: perObject }, (_, s) => String(s * objects + o).padStart(4, '0')).join('');
    t.is(Buffer.concat(r.data).toString(), expect);
  }
  t.true(obj.stats().mapResends + obj.stats().resends > 0);
});

test('a reset after apply is resent and answered from the dedup table', async (t) => {
  const c = await TestCluster.start({ osds: 3 });
  const { mon, obj, pool } = await objecterFor(c);
  t.teardown(async () => { obj.close(); mon.close(); await c.stop(); });
  for (const o of c.osds.values()) o.dropAfterApply = 2;
  const writes = Array.from({ length: 20 }, (_, i) => obj.submitAsync({ pool, objectName: `d.${i}`, ops: [{ op: 'write', offset: 0, length: 1 }], data: [Uint8Array.of(i)] }));
  await Promise.all(writes);
  for (const [key, n] of c.store.applied) if (n !== 1) t.fail(`${key} applied ${n} times`);
  t.is(c.store.applied.size, 20);
  t.true(obj.stats().resends >= 1);
});

test('ops wait while a PG is below min_size, then complete; the deadline fails loudly', async (t) => {
  const c = await TestCluster.start({ osds: 3, pool: { name: 'vms', size: 3, minSize: 2, pgNum: 8 } });
  const { mon, obj, pool } = await objecterFor(c, { opTimeoutMs: 8000 });
  t.teardown(async () => { obj.close(); mon.close(); await c.stop(); });
  c.osds.get(1)!.stop();
  c.osds.get(2)!.stop();
  await c.command({ prefix: 'osd down', id: 1 });
  await c.command({ prefix: 'osd down', id: 2 });
  await c.waitMap((m) => [...m.osds.values()].filter((o) => o.up).length === 1);
  let done = false;
  const w = obj.submitAsync({ pool, objectName: 'w', ops: [{ op: 'write', offset: 0, length: 1 }], data: [Uint8Array.of(7)] }).then(() => { done = true; });
  await new Promise((r) => setTimeout(r, 600));
  t.false(done, 'a write below min_size must wait');
  await c.addOsd(1);
  await w;
  t.true(done);
  // With only one OSD left again and a short deadline, the op times out with a clear error.
  const { mon: mon2, obj: short, pool: p2 } = await objecterFor(c, { opTimeoutMs: 500 });
  t.teardown(() => { short.close(); mon2.close(); });
  c.osds.get(1)!.stop();
  await c.command({ prefix: 'osd down', id: 1 });
  await c.waitMap((m) => [...m.osds.values()].filter((o) => o.up).length === 1);
  const e = await t.throwsAsync(short.submitAsync({ pool: p2, objectName: 'w', ops: [{ op: 'write', offset: 0, length: 1 }], data: [Uint8Array.of(8)] }));
  t.is((e as ClusterError).code, 'CLU_ERR_TIMEOUT');
  t.regex((e as Error).message, /min_size|waiting/);
});

test('the in-flight bound queues ops beyond it and all complete in order of admission', async (t) => {
  const c = await TestCluster.start({ osds: 3 });
  const { mon, obj, pool } = await objecterFor(c, { maxInflightOps: 4, maxInflightBytes: 8192 });
  t.teardown(async () => { obj.close(); mon.close(); await c.stop(); });
  let maxQueued = 0;
  const all = Array.from({ length: 50 }, (_, i) => {
    const p = obj.submitAsync({ pool, objectName: `q.${i % 5}`, ops: [{ op: 'write', offset: i * 4096, length: 4096 }], data: [new Uint8Array(4096).fill(i)] });
    maxQueued = Math.max(maxQueued, obj.stats().queuedOps);
    t.true(obj.stats().inflightOps <= 4);
    return p;
  });
  await Promise.all(all);
  t.true(maxQueued >= 40);
  t.is(obj.stats().inflightOps, 0);
});
