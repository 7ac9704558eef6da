/**
 * `strata image lock ls|break` (issue #6) against a real monitor and two real OSDs in this
 * process (in-process-osd.ts), through the CLI's command builder with real ClusterClients:
 * ls shows the holder; break blocklists the live holder first and then removes its lock with a
 * fenced vector; the broken holder — its map frozen, so only the OSDs can stop it — is refused
 * (blocklisted) and its image turns fenced; a new writer opens at once (no lease wait); breaking
 * an unlocked image or naming the wrong holder fails cleanly and blocklists nobody; a break
 * vector whose fence is stale breaks nothing; a holder whose lease lapsed can be broken too.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { buildImageCommand } from '../src/bin/image-cli.js';
import { EXIT, UsageError, describeError } from '../src/bin/bin-util.js';
import type { ClusterClient } from '../src/client/cluster-client.js';
import { FENCE_ATTR, LOCK_NAME, encodeFence } from '../src/client/image-format.js';
import type { Image } from '../src/client/image.js';
import type { Images } from '../src/client/images.js';
import type { ClusterError } from '../src/common/errors.js';
import type { PoolId } from '../src/common/ids.js';
import type { TestCluster } from './client-harness.js';
import { twoOsdCluster } from './in-process-osd.js';

const code = (e: unknown): string | undefined => (e as ClusterError | undefined)?.code;
const reason = (e: unknown): unknown => (e as ClusterError | undefined)?.details?.['reason'];
const MiB = 1024 * 1024;

interface Rig { c: TestCluster; connect: () => Promise<ClusterClient>; cli: (client: ClusterClient, words: string[], v?: Record<string, string | boolean>) => Promise<string> }

async function rig(t: ExecutionContext): Promise<Rig> {
  const { c, connect } = await twoOsdCluster(t, 'strata-lock-break-test-');
  const cli = (client: ClusterClient, words: string[], v: Record<string, string | boolean> = {}): Promise<string> =>
    buildImageCommand(['image', ...words], v)({ env: c.env, client, json: v['json'] === true });
  return { c, connect, cli };
}

const lockOf = (img: Image): { cookie: string; pauseRenewalForTest(): void } => (img as unknown as { o: { lock: { cookie: string; pauseRenewalForTest(): void } } }).o.lock;
const blocklisted = async (c: TestCluster): Promise<string[]> =>
  ((await c.command({ prefix: 'osd blocklist ls' }))['blocklist'] as { instance: string }[]).map((e) => e.instance);

test('lock ls shows the holder; lock break blocklists it, removes its lock, fences it, and a new writer opens at once', async (t) => {
  const { c, connect, cli } = await rig(t);
  const ca = await connect();
  const cb = await connect();
  const admin = await connect();
  const imagesA = ca.images('vms') as Images;
  await imagesA.createAsync('disk', { sizeBytes: 4 * MiB, layout: { objectSize: MiB } });
  const a = await imagesA.openAsync('disk', { leaseMs: 60_000 });
  await a.writeAsync(0, new Uint8Array(4096).fill(0xa0));
  const busy = await t.throwsAsync((cb.images('vms') as Images).openAsync('disk', { leaseMs: 60_000 }));
  t.is(code(busy), 'CLU_ERR_BUSY', 'without a break the live lock keeps a second writer out');

  // ls: holder instance, cookie, lease expiry (relative and absolute), fencing epoch.
  const text = await cli(admin, ['lock', 'ls', 'vms/disk']);
  t.true(text.includes(ca.objecter.clientId), text);
  t.true(text.includes(lockOf(a).cookie), text);
  t.regex(text, /There is 1 exclusive lock on vms\/disk \(fencing epoch 1\)/);
  t.regex(text, /in \d+\.\ds \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/);
  const ls = JSON.parse(await cli(admin, ['lock', 'ls', 'vms/disk'], { json: true })) as { fenceEpoch: number; holders: { client: string; cookie: string; expiresMs: number; expiresInMs: number; expired: boolean }[] };
  t.is(ls.fenceEpoch, a.fenceEpoch);
  t.is(ls.holders.length, 1);
  t.is(ls.holders[0]!.client, ca.objecter.clientId);
  t.is(ls.holders[0]!.cookie, lockOf(a).cookie);
  t.false(ls.holders[0]!.expired);
  t.true(ls.holders[0]!.expiresInMs > 50_000 && ls.holders[0]!.expiresInMs <= 60_000);

  // A hangs: its map is frozen from here on, so only the OSDs can refuse it.
  (ca.mon as unknown as { onMapPush: () => void }).onMapPush = () => undefined;
  const frozenEpoch = ca.map().epoch;
  const out = JSON.parse(await cli(admin, ['lock', 'break', 'vms/disk'], { holder: ca.objecter.clientId, json: true })) as { holder: string; blocklistEpoch: number; previousFenceEpoch: number; fenceEpoch: number; wasExpired: boolean };
  t.is(out.holder, ca.objecter.clientId);
  t.is(out.previousFenceEpoch, 1);
  t.is(out.fenceEpoch, 2);
  t.false(out.wasExpired);
  t.true(out.blocklistEpoch > frozenEpoch);
  t.deepEqual(await blocklisted(c), [ca.objecter.clientId], 'break blocklisted the holder (and nobody else)');
  t.true(admin.map().epoch >= out.blocklistEpoch);
  const after = await (admin.images('vms') as Images).lockInfoAsync('disk');
  t.deepEqual(after.holders, [], 'the lock is gone');
  t.is(after.fenceEpoch, 2);
  t.regex(await cli(admin, ['lock', 'ls', 'vms/disk']), /is not locked \(fencing epoch 2\)/);

  // The broken holder's next write is refused by the OSDs, and its image is fenced for good.
  t.is(ca.map().epoch, frozenEpoch, 'A still runs on its old map');
  const e1 = await t.throwsAsync(a.writeAsync(MiB, new Uint8Array(4096).fill(0xee)));
  t.is(code(e1), 'CLU_ERR_PERM');
  t.is(reason(e1), 'fenced');
  t.regex((e1 as Error).message, /blocklisted/);
  const e2 = await t.throwsAsync(a.writeAsync(0, new Uint8Array(4096).fill(0xee)));
  t.is(reason(e2), 'fenced');
  const pool = admin.map().pools.values().next().value!.id;
  const raw = await t.throwsAsync(ca.objecter.submitAsync({ pool, objectName: 'anything', ops: [{ op: 'stat' }] }));
  t.is(reason(raw), 'blocklisted');

  // A new writer opens at once (A's 60 s lease would otherwise keep it out), blocklisting nobody.
  const started = Date.now();
  const b = await (cb.images('vms') as Images).openAsync('disk', { leaseMs: 60_000 });
  t.true(Date.now() - started < 5000, 'no lease wait');
  t.is(b.fenceEpoch, 3);
  t.deepEqual(await blocklisted(c), [ca.objecter.clientId]);
  t.deepEqual(await b.readAsync(0, 4096), new Uint8Array(4096).fill(0xa0), 'what A wrote before the break stands');
  t.deepEqual(await b.readAsync(MiB, 4096), new Uint8Array(4096), 'A\'s late write did not land');
  await b.writeAsync(MiB, new Uint8Array(4096).fill(0xb1));
  t.deepEqual(await b.readAsync(MiB, 4096), new Uint8Array(4096).fill(0xb1));
  t.true((await cli(admin, ['lock', 'ls', 'vms/disk'])).includes(cb.objecter.clientId));
  await b.closeAsync();
});

test('lock break refuses cleanly (unlocked, wrong holder, stale fence) and blocklists nobody; a lapsed holder can be broken', async (t) => {
  const { c, connect, cli } = await rig(t);
  const ca = await connect();
  const admin = await connect();
  const imagesA = ca.images('vms') as Images;
  await imagesA.createAsync('disk', { sizeBytes: 4 * MiB, layout: { objectSize: MiB } });
  await imagesA.createAsync('lapsed', { sizeBytes: 4 * MiB, layout: { objectSize: MiB } });

  // Not locked: CLU_ERR_NOT_FOUND (exit 3), reason not_locked.
  const e0 = await t.throwsAsync(cli(admin, ['lock', 'break', 'vms/disk']));
  t.is(code(e0), 'CLU_ERR_NOT_FOUND');
  t.is(reason(e0), 'not_locked');
  t.is(describeError(e0).exitCode, EXIT.NOT_FOUND);
  t.regex(await cli(admin, ['lock', 'ls', 'vms/disk']), /is not locked \(fencing epoch 0\)/);
  const missing = await t.throwsAsync(cli(admin, ['lock', 'ls', 'vms/nope']));
  t.is(code(missing), 'CLU_ERR_NOT_FOUND');

  // Locked by A, but the operator names another instance.
  const a = await imagesA.openAsync('disk', { leaseMs: 60_000 });
  const e1 = await t.throwsAsync(cli(admin, ['lock', 'break', 'vms/disk'], { holder: 'client.admin/deadbeef' }));
  t.is(code(e1), 'CLU_ERR_NOT_FOUND');
  t.is(reason(e1), 'holder_mismatch');
  t.true((e1 as Error).message.includes(ca.objecter.clientId), 'the message names the actual holder');
  t.deepEqual(await blocklisted(c), [], 'a refused break blocklists nobody');
  // Usage errors come before any connection.
  t.throws(() => buildImageCommand(['image', 'lock', 'break', 'vms/disk'], { holder: 'not-an-instance' }), { instanceOf: UsageError });
  t.throws(() => buildImageCommand(['image', 'lock', 'rm', 'vms/disk'], {}), { instanceOf: UsageError });

  // The break vector is fenced: with a stale fencing epoch it breaks nothing.
  const info = await (admin.images('vms') as Images).lockInfoAsync('disk');
  const header = `strata_header.${(await new Promise<string>((res, rej) => imagesA.lookup('disk', (e, id) => (e !== null || id === undefined ? rej(e) : res(id)))))}`;
  const stale = await t.throwsAsync(admin.objecter.submitAsync({
    pool: (imagesA as unknown as { pool: PoolId }).pool, objectName: header, ops: [
      { op: 'assert_attr', name: FENCE_ATTR, value: encodeFence(info.fenceEpoch - 1), mode: 0 },
      { op: 'break_lock', name: LOCK_NAME, client: ca.objecter.clientId, cookie: lockOf(a).cookie },
      { op: 'setattr', name: FENCE_ATTR, value: encodeFence(info.fenceEpoch) },
    ],
  }));
  t.is(code(stale), 'CLU_ERR_CANCELLED');
  t.deepEqual((await (admin.images('vms') as Images).lockInfoAsync('disk')).holders.map((h) => h.client), [ca.objecter.clientId]);
  await a.writeAsync(0, new Uint8Array(4096).fill(1));
  await a.closeAsync();

  // A holder whose lease lapsed (renewals stopped) is still recorded: ls marks it expired and
  // break removes it (after blocklisting it, as a takeover would).
  const l = await imagesA.openAsync('lapsed', { leaseMs: 400 });
  lockOf(l).pauseRenewalForTest();
  await new Promise((r) => setTimeout(r, 700));
  const text = await cli(admin, ['lock', 'ls', 'vms/lapsed']);
  t.regex(text, /expired \d+\.\ds ago/);
  const out = await cli(admin, ['lock', 'break', 'vms/lapsed']);
  t.regex(out, new RegExp(`blocklisted ${ca.objecter.clientId.replace(/[.]/g, '\\.')} \\(map epoch \\d+\\)`));
  t.regex(out, /lease already lapsed/);
  t.regex(out, /fencing epoch 1 -> 2/);
  t.deepEqual((await (admin.images('vms') as Images).lockInfoAsync('lapsed')).holders, []);
  t.deepEqual(await blocklisted(c), [ca.objecter.clientId]);
});
