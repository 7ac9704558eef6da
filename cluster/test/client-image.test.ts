/**
 * Checks images end to end through the Objecter against an in-process monitor and fake OSDs
 * (client-harness.ts): directory operations (create, ls, rename, rm, errors), seeded random
 * I/O with a striped layout against an in-memory mirror (writes, reads, discards, write-zeroes,
 * thin reads of unwritten ranges, space freed), resize shrink/grow, flush as a barrier, the
 * exclusive lock (second writer refused, read-only allowed) and fencing of a writer that lost
 * its lease.
 */
import test from 'ava';
import { ClusterError } from '../src/common/errors.js';
import { ClusterClient } from '../src/client/cluster-client.js';
import type { Images } from '../src/client/images.js';
import { TestCluster } from './client-harness.js';

async function setup(t: { teardown(fn: () => unknown): void }, osds = 3): Promise<{ c: TestCluster; client: ClusterClient; images: Images; second: () => Promise<Images> }> {
  const c = await TestCluster.start({ osds });
  const clients: ClusterClient[] = [];
  const connect = async (): Promise<ClusterClient> => {
    const cl = await ClusterClient.connectAsync({ env: c.env, mon: { host: '127.0.0.1', port: c.monPort }, entity: 'client.admin', key: c.ring.get('client.admin')!.key });
    clients.push(cl);
    return cl;
  };
  const client = await connect();
  t.teardown(async () => { for (const cl of clients) cl.close(); await c.stop(); });
  const images = client.images('vms') as Images;
  return { c, client, images, second: async () => (await connect()).images('vms') as Images };
}

const code = (e: unknown): string | undefined => (e as ClusterError | undefined)?.code;

test('create, ls, info, rename, rm and their errors', async (t) => {
  const { images } = await setup(t);
  await images.createAsync('disk1', { sizeBytes: 10 * 1024 * 1024 });
  await images.createAsync('disk2', { sizeBytes: 1024 * 1024, layout: { objectSize: 256 * 1024, stripeUnit: 64 * 1024, stripeCount: 4 } });
  t.deepEqual(await images.listAsync(), ['disk1', 'disk2']);
  t.is(code(await t.throwsAsync(images.createAsync('disk1', { sizeBytes: 4096 }))), 'CLU_ERR_EXISTS');
  t.is(code(await t.throwsAsync(images.createAsync('odd', { sizeBytes: 1000 }))), 'CLU_ERR_INVALID');
  t.is(code(await t.throwsAsync(images.createAsync('bad/name', { sizeBytes: 4096 }))), 'CLU_ERR_INVALID');
  t.is(code(await t.throwsAsync(images.openAsync('nope'))), 'CLU_ERR_NOT_FOUND');
  const info = await images.infoAsync('disk2');
  t.like(info, { sizeBytes: 1024 * 1024, usedBytes: 0, layout: { objectSize: 256 * 1024, stripeUnit: 64 * 1024, stripeCount: 4 } });
  await images.renameAsync('disk2', 'disk3');
  t.is(code(await t.throwsAsync(images.renameAsync('disk1', 'disk3'))), 'CLU_ERR_EXISTS');
  t.deepEqual(await images.listAsync(), ['disk1', 'disk3']);
  const img = await images.openAsync('disk3');
  await img.writeAsync(0, new Uint8Array(300 * 1024).fill(9));
  await img.closeAsync();
  await images.removeAsync('disk3');
  t.deepEqual(await images.listAsync(), ['disk1']);
  t.is(code(await t.throwsAsync(images.removeAsync('disk3'))), 'CLU_ERR_NOT_FOUND');
});

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
}

test('seeded random I/O on a striped image matches a mirror; thin reads; discard frees space', async (t) => {
  const { images } = await setup(t);
  const size = 2 * 1024 * 1024;
  await images.createAsync('r', { sizeBytes: size, layout: { objectSize: 128 * 1024, stripeUnit: 16 * 1024, stripeCount: 3 } });
  const img = await images.openAsync('r');
  const mirror = new Uint8Array(size);
  t.deepEqual(await img.readAsync(4096, 8192), new Uint8Array(8192)); // Unwritten → zeros.
  const r = rng(0xb10c);
  for (let i = 0; i < 120; i++) {
    const off = (r() % (size / 512)) * 512;
    const len = Math.min(size - off, (1 + (r() % 256)) * 512);
    const kind = r() % 10;
    if (kind < 6) {
      const data = Uint8Array.from({ length: len }, (_, j) => (i * 31 + j) & 0xff);
      // Split into two views to exercise scatter lists.
      const cut = Math.floor(len / 2);
      await img.writeAsync(off, [data.subarray(0, cut), data.subarray(cut)]);
      mirror.set(data, off);
    } else if (kind < 8) {
      await img.discardAsync(off, len);
      mirror.fill(0, off, off + len);
    } else {
      const got = await img.readAsync(off, len);
      if (!Buffer.from(got).equals(Buffer.from(mirror.subarray(off, off + len)))) t.fail(`read mismatch at ${off}+${len} (op ${i})`);
    }
  }
  t.true(Buffer.from(await img.readAsync(0, size)).equals(Buffer.from(mirror)));
  const before = await img.statAsync();
  t.true(before.usedBytes > 0);
  await img.discardAsync(0, size);
  const after = await img.statAsync();
  t.is(after.usedBytes, 0);
  t.deepEqual(await img.readAsync(0, 65536), new Uint8Array(65536));
  await img.closeAsync();
});

test('resize shrink trims data past the end; grow reads zeros there', async (t) => {
  const { images } = await setup(t);
  await images.createAsync('s', { sizeBytes: 8 * 1024 * 1024, layout: { objectSize: 1024 * 1024 } });
  const img = await images.openAsync('s');
  await img.writeAsync(0, new Uint8Array(8 * 1024 * 1024).fill(0xaa));
  await img.resizeAsync(3 * 1024 * 1024 + 4096);
  t.is(img.sizeBytes, 3 * 1024 * 1024 + 4096);
  t.is((await img.statAsync()).usedBytes, 3 * 1024 * 1024 + 4096);
  t.is(code(await t.throwsAsync(img.readAsync(4 * 1024 * 1024, 512))), 'CLU_ERR_INVALID');
  await img.resizeAsync(8 * 1024 * 1024);
  const tail = await img.readAsync(3 * 1024 * 1024, 8192);
  t.deepEqual(tail.subarray(0, 4096), new Uint8Array(4096).fill(0xaa));
  t.deepEqual(tail.subarray(4096), new Uint8Array(4096));
  t.deepEqual(await img.readAsync(7 * 1024 * 1024, 4096), new Uint8Array(4096));
  t.is(code(await t.throwsAsync(img.resizeAsync(1000))), 'CLU_ERR_INVALID');
  await img.closeAsync();
  t.is((await images.infoAsync('s')).sizeBytes, 8 * 1024 * 1024);
});

test('flush completes only after every earlier write', async (t) => {
  const { c, images } = await setup(t);
  await images.createAsync('f', { sizeBytes: 4 * 1024 * 1024 });
  const img = await images.openAsync('f');
  for (const o of c.osds.values()) o.delayMs = 60;
  const done: number[] = [];
  const writes = [0, 1, 2, 3].map((i) => img.writeAsync(i * 65536, new Uint8Array(4096).fill(i + 1)).then(() => done.push(i)));
  await img.flushAsync();
  t.is(done.length, 4);
  await Promise.all(writes);
  for (const o of c.osds.values()) o.delayMs = 0;
  await img.closeAsync();
});

test('exclusive lock: a second writer is refused, readers are not; close releases it', async (t) => {
  const { images, second } = await setup(t);
  await images.createAsync('l', { sizeBytes: 1024 * 1024 });
  const a = await images.openAsync('l', { leaseMs: 5000 });
  const other = await second();
  t.is(code(await t.throwsAsync(other.openAsync('l'))), 'CLU_ERR_BUSY');
  const ro = await other.openAsync('l', { readOnly: true });
  t.is(code(await t.throwsAsync(ro.writeAsync(0, new Uint8Array(512)))), 'CLU_ERR_PERM');
  await a.closeAsync();
  const b = await other.openAsync('l');
  await b.writeAsync(0, new Uint8Array(512).fill(1));
  await b.closeAsync();
});

test('a writer that lost its lease is fenced: its late writes are rejected', async (t) => {
  const { images, second } = await setup(t);
  await images.createAsync('x', { sizeBytes: 4 * 1024 * 1024, layout: { objectSize: 1024 * 1024 } });
  const a = await images.openAsync('x', { leaseMs: 400 });
  await a.writeAsync(0, new Uint8Array(4096).fill(0xa1));
  // A stalls (no renewals); its lease expires on the OSD; B takes over and writes object 0.
  const lockOf = (img: object): { pauseRenewalForTest(): void; forceLocallyValidForTest(): void } => (img as unknown as { o: { lock: never } }).o.lock;
  lockOf(a).pauseRenewalForTest();
  await new Promise((r) => setTimeout(r, 700));
  const b = await (await second()).openAsync('x', { leaseMs: 5000 });
  t.true(b.fenceEpoch > a.fenceEpoch);
  await b.writeAsync(0, new Uint8Array(4096).fill(0xb2));
  // A's own clock already stops it (lease lapsed locally, renewal refused): fenced.
  t.is(code(await t.throwsAsync(a.writeAsync(512, new Uint8Array(512)))), 'CLU_ERR_PERM');
  // B's takeover blocklisted A's client instance: a reader needs another instance.
  const a2 = await (await second()).openAsync('x', { readOnly: true });
  t.deepEqual((await a2.readAsync(0, 4096)), new Uint8Array(4096).fill(0xb2));
  await b.closeAsync();
});

test('OSD-side fencing: a stale writer bypassing its local lease check cannot touch an object the new owner wrote', async (t) => {
  const { images, second } = await setup(t);
  await images.createAsync('y', { sizeBytes: 4 * 1024 * 1024, layout: { objectSize: 1024 * 1024 } });
  const a = await images.openAsync('y', { leaseMs: 400 });
  await a.writeAsync(0, new Uint8Array(512).fill(1));
  const lock = (a as unknown as { o: { lock: { pauseRenewalForTest(): void; forceLocallyValidForTest(): void } } }).o.lock;
  lock.pauseRenewalForTest();
  lock.forceLocallyValidForTest();
  await new Promise((r) => setTimeout(r, 700));
  const b = await (await second()).openAsync('y', { leaseMs: 5000 });
  await b.writeAsync(0, new Uint8Array(512).fill(2));
  const e = await t.throwsAsync(a.writeAsync(0, new Uint8Array(512).fill(3)));
  t.is(code(e), 'CLU_ERR_PERM');
  t.regex((e as Error).message, /fenced/);
  t.deepEqual(await b.readAsync(0, 512), new Uint8Array(512).fill(2));
  await b.closeAsync();
});

test('ClusterStore exposes an image as the backend BlockStore', async (t) => {
  const { client, images } = await setup(t);
  await images.createAsync('bs', { sizeBytes: 2 * 1024 * 1024 });
  const { ClusterStore } = await import('../../backend/src/block-store/cluster-store.js');
  const store = await new Promise<InstanceType<typeof ClusterStore>>((resolve, reject) =>
    ClusterStore.open(client, { pool: 'vms', image: 'bs', readOnly: false }, (err, s) => (err ? reject(err) : resolve(s!))));
  t.is(store.sizeBytes, 2 * 1024 * 1024);
  t.false(store.readOnly);
  t.true(store.serial.length <= 20);
  const cb = (fn: (done: (err: Error | null) => void) => void): Promise<void> => new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
  const a = new Uint8Array(4096).fill(1);
  const b = new Uint8Array(4096).fill(2);
  await cb((d) => store.writev(2 * 1024 * 1024 - 8192, [a, b], d));
  await cb((d) => store.writeZeroes(2 * 1024 * 1024 - 8192, 512, false, d));
  await cb((d) => store.flush(d));
  const x = new Uint8Array(4096);
  const y = new Uint8Array(4096);
  await cb((d) => store.readv(2 * 1024 * 1024 - 8192, [x, y], d));
  t.deepEqual(x.subarray(0, 512), new Uint8Array(512));
  t.deepEqual(x.subarray(512), new Uint8Array(4096 - 512).fill(1));
  t.deepEqual(y, b);
  await cb((d) => store.close(d));
});
