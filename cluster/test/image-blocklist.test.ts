/**
 * The image lock's takeover fences the old holder at the OSDs (issue #6): a real monitor
 * (client-harness TestCluster, no fake OSDs) and two real `OsdCore`s with their object stores
 * (wired as bin/osd.ts does: ticket auth, boot, beacons, map subscription), two real
 * ClusterClients. Writer A stalls with its map frozen and its local lease check bypassed (a
 * paused process whose writes were already issued); B takes the lock over, which blocklists
 * A's client instance. A's late writes — to an object A itself stamped and to a fresh one, both
 * never written by B, so the fence stamps alone would let them through — must be refused by
 * the OSDs (CLU_ERR_PERM, reason blocklisted), A's image must turn fenced and stay so without
 * retrying, and B's view of the data must be what A wrote before the takeover.
 */
import test from 'ava';
import type { Image } from '../src/client/image.js';
import type { Images } from '../src/client/images.js';
import { ClusterError } from '../src/common/errors.js';
import { twoOsdCluster } from './in-process-osd.js';

const code = (e: unknown): string | undefined => (e as ClusterError | undefined)?.code;
const reason = (e: unknown): unknown => (e as ClusterError | undefined)?.details?.['reason'];
const MiB = 1024 * 1024;

test('takeover blocklists the old holder: its late writes to objects the new owner never wrote are refused by the OSDs', async (t) => {
  const { c, connect } = await twoOsdCluster(t, 'strata-blocklist-test-');
  const ca = await connect();
  const cb = await connect();
  const imagesA = ca.images('vms') as Images;
  await imagesA.createAsync('disk', { sizeBytes: 4 * MiB, layout: { objectSize: MiB } });

  const a: Image = await imagesA.openAsync('disk', { leaseMs: 1000 });
  await a.writeAsync(0, new Uint8Array(4096).fill(0xa0)); // object 0
  await a.writeAsync(MiB, new Uint8Array(4096).fill(0xa1)); // object 1: stamped by A
  // A stalls: no renewals, its local lease check bypassed (writes already issued), and it
  // hears no more maps (so only the OSDs can stop it).
  const lock = (a as unknown as { o: { lock: { pauseRenewalForTest(): void; forceLocallyValidForTest(): void } } }).o.lock;
  lock.pauseRenewalForTest();
  lock.forceLocallyValidForTest();
  (ca.mon as unknown as { onMapPush: () => void }).onMapPush = () => undefined;
  const frozenEpoch = ca.map().epoch;
  await new Promise((r) => setTimeout(r, 1400));

  const b: Image = await (cb.images('vms') as Images).openAsync('disk', { leaseMs: 10_000 });
  t.true(b.fenceEpoch > a.fenceEpoch);
  const map = cb.map();
  t.true(map.blocklist.has(ca.objecter.clientId), 'the takeover blocklisted A\'s client instance');
  t.false(map.blocklist.has(cb.objecter.clientId));
  t.true(map.epoch > frozenEpoch);
  t.is(ca.map().epoch, frozenEpoch, 'A still runs on its old map');
  const ls = await c.command({ prefix: 'osd blocklist ls' });
  t.deepEqual((ls['blocklist'] as { instance: string }[]).map((e) => e.instance), [ca.objecter.clientId]);

  // A's late writes: object 1 (A's own stamp, B never wrote it) and object 2 (fresh).
  const e1 = await t.throwsAsync(a.writeAsync(MiB, new Uint8Array(4096).fill(0xee)));
  t.is(code(e1), 'CLU_ERR_PERM');
  t.is(reason(e1), 'fenced');
  t.regex((e1 as Error).message, /blocklisted/);
  const started = Date.now();
  const e2 = await t.throwsAsync(a.writeAsync(2 * MiB, new Uint8Array(4096).fill(0xee)));
  t.is(code(e2), 'CLU_ERR_PERM');
  t.true(Date.now() - started < 2000, 'a fenced image fails at once, it does not retry');
  // The OSDs themselves refuse A's client instance, whatever the op (a raw read here).
  const raw = await t.throwsAsync(ca.objecter.submitAsync({ pool: map.pools.values().next().value!.id, objectName: 'anything', ops: [{ op: 'stat' }] }));
  t.is(code(raw), 'CLU_ERR_PERM');
  t.is(reason(raw), 'blocklisted');

  // B sees what A wrote before the takeover, and nothing of A's late writes.
  t.deepEqual(await b.readAsync(MiB, 4096), new Uint8Array(4096).fill(0xa1));
  t.deepEqual(await b.readAsync(2 * MiB, 4096), new Uint8Array(4096));
  t.deepEqual(await b.readAsync(0, 4096), new Uint8Array(4096).fill(0xa0));
  await b.writeAsync(MiB, new Uint8Array(4096).fill(0xb1));
  t.deepEqual(await b.readAsync(MiB, 4096), new Uint8Array(4096).fill(0xb1));
  await b.closeAsync();
});
