/**
 * FileMonStore durability on the crashable in-memory disk: commits survive a crash, a torn
 * tail (unsynced partial record) is ignored and cut, compaction (snapshot + new log) survives
 * crashes at every step, incrementals remain available to late subscribers, and an I/O error
 * makes the store fail closed. How: drive TestEnv by hand, crash MemDisk, reopen.
 */
import test from 'ava';
import type { Epoch, OsdId } from '../src/common/ids.js';
import type { Incremental } from '../src/map/incremental.js';
import { makeOsd } from '../src/map/map-builder.js';
import { encodeMap } from '../src/map/map-codec.js';
import { FileMonStore } from '../src/mon/file-mon-store.js';
import { TestEnv } from './sim-env.js';

const DIR = '/mon';

function inc(epoch: number, ops: Incremental['ops'] = []): Incremental {
  return { epoch: epoch as Epoch, fsid: 'fs', modifiedMs: epoch * 10, ops };
}

function opened(env: TestEnv, snapshotEveryRecords = 1000): FileMonStore {
  const store = new FileMonStore({ env, dir: DIR, snapshotEveryRecords, keepIncrementals: 50 });
  let err: Error | null | undefined;
  store.open((e) => { err = e; });
  env.settle();
  if (err !== null) throw err ?? new Error('open did not finish');
  return store;
}

function commitAll(env: TestEnv, store: FileMonStore, incs: Incremental[]): (Error | null)[] {
  const results: (Error | null)[] = [];
  for (const i of incs) store.commit({ incremental: i }, (e) => results.push(e));
  env.settle();
  return results;
}

const osdOps = (e: number): Incremental['ops'] => [{ op: 'osd-add', osd: makeOsd({ id: e, host: `h${e % 3}` }) }];

test('committed epochs survive a crash and replay to the same map', (t) => {
  const env = new TestEnv();
  const store = opened(env);
  t.deepEqual(commitAll(env, store, [inc(1, osdOps(1)), inc(2, osdOps(2)), inc(3)]), [null, null, null]);
  const before = encodeMap(store.latestMap()!);
  env.disk.crash();
  const again = opened(env);
  t.is(again.latestMap()?.epoch, 3 as Epoch);
  t.deepEqual(encodeMap(again.latestMap()!), before);
  t.deepEqual(again.incrementalsSince(1 as Epoch)?.map((i) => i.epoch), [2, 3]);
});

test('a torn tail (unsynced partial record) is ignored and cut; appends continue after it', (t) => {
  for (const tearBytes of [0, 3, 12, 20, 1000]) {
    const env = new TestEnv();
    const store = opened(env);
    commitAll(env, store, [inc(1), inc(2)]);
    const syncedLen = env.disk.peek(`${DIR}/log.00000000`)?.length ?? 0;
    store.commit({ incremental: inc(3, osdOps(3)) }, () => t.fail('must not be acknowledged'));
    t.true(env.step()); // The pwrite lands in the volatile cache; its fdatasync is queued.
    env.dropTimers();
    const fullLen = env.disk.peek(`${DIR}/log.00000000`)?.length ?? 0;
    env.disk.crash(tearBytes);
    const tornLen = env.disk.peek(`${DIR}/log.00000000`)?.length ?? 0;
    t.true(tornLen >= syncedLen);
    const again = opened(env);
    // An unacknowledged record may survive whole (then it is valid) or torn (then it is cut).
    const survived = tornLen === fullLen;
    t.is(again.latestMap()?.epoch, (survived ? 3 : 2) as Epoch, `tear=${tearBytes}`);
    t.is(env.disk.peek(`${DIR}/log.00000000`)?.length, survived ? fullLen : syncedLen, 'torn tail cut');
    const next = survived ? 4 : 3;
    t.deepEqual(commitAll(env, again, [inc(next)]), [null]);
    env.disk.crash();
    t.is(opened(env).latestMap()?.epoch, next as Epoch);
  }
});

test('replay stops at the first corrupt record', (t) => {
  const env = new TestEnv();
  const store = opened(env);
  commitAll(env, store, [inc(1), inc(2), inc(3)]);
  const log = env.disk.peek(`${DIR}/log.00000000`);
  if (log === undefined) return t.fail('no log');
  log[log.length - 3] = (log[log.length - 3] ?? 0) ^ 0xff; // A media error inside the last record.
  const again = opened(env); // Reopen without a crash: replay reads the flipped byte.
  t.is(again.latestMap()?.epoch, 2 as Epoch);
});

test('compaction: snapshot + new log, then crash, replays everything', (t) => {
  const env = new TestEnv();
  const store = opened(env, 4);
  const incs = Array.from({ length: 11 }, (_, i) => inc(i + 1, i % 2 === 0 ? osdOps(i) : []));
  t.true(commitAll(env, store, incs).every((e) => e === null));
  env.disk.crash();
  const again = opened(env, 4);
  t.is(again.latestMap()?.epoch, 11 as Epoch);
  t.is(again.latestMap()?.osds.size, 6);
  t.deepEqual(again.incrementalsSince(8 as Epoch)?.map((i) => i.epoch), [9, 10, 11]);
  t.deepEqual(again.incrementalsSince(0 as Epoch)?.length, 11);
});

test('crash at every step of a commit + compaction never loses an acknowledged epoch', (t) => {
  for (let steps = 0; steps < 30; steps++) {
    const env = new TestEnv();
    const store = opened(env, 3);
    commitAll(env, store, [inc(1), inc(2)]);
    let acked = 2;
    store.commit({ incremental: inc(3, osdOps(3)) }, (e) => { if (e === null) acked = 3; });
    for (let i = 0; i < steps && env.step(); i++);
    env.dropTimers();
    env.disk.crash(5);
    const again = opened(env, 3);
    const epoch = again.latestMap()?.epoch ?? 0;
    t.true(epoch >= acked && epoch <= 3, `steps=${steps} epoch=${epoch} acked=${acked}`);
    t.deepEqual(commitAll(env, again, [inc(epoch + 1)]), [null]);
  }
});

test('kv entries are atomic with the incremental and persisted; keys off the allow-list are refused', (t) => {
  const env = new TestEnv();
  const store = opened(env, 2);
  let err: Error | null = null;
  store.commit({ incremental: inc(1), kvPut: [['auth/client.a', Uint8Array.of(1, 2)]] }, (e) => { err = e; });
  store.commit({ kvPut: [['auth/client.b', Uint8Array.of(3)]], kvDelete: ['auth/client.a'] }, () => undefined);
  store.commit({ kvPut: [['secrets/x', Uint8Array.of(3)]] }, (e) => t.is((e as { code?: string } | null)?.code, 'CLU_ERR_INVALID'));
  env.settle();
  t.is(err, null);
  env.disk.crash();
  const again = opened(env, 2);
  t.deepEqual(again.kvKeys('auth/'), ['auth/client.b']);
  t.deepEqual(again.kvGet('auth/client.b'), Uint8Array.of(3));
});

test('an fdatasync failure fails the commit and every later one (fail closed)', (t) => {
  const env = new TestEnv();
  const store = opened(env);
  env.disk.failSyncs = 1;
  const results = commitAll(env, store, [inc(1), inc(2)]);
  t.is((results[0] as { code?: string } | null)?.code, 'CLU_ERR_IO');
  t.is((results[1] as { code?: string } | null)?.code, 'CLU_ERR_IO');
  t.is(store.latestMap(), undefined);
});

test('an invalid incremental is refused before it reaches the disk', (t) => {
  const env = new TestEnv();
  const store = opened(env);
  const results = commitAll(env, store, [inc(1), inc(3), inc(2, [{ op: 'osd-remove', id: 4 as OsdId }])]);
  t.is(results[0], null);
  t.is((results[1] as { code?: string } | null)?.code, 'CLU_ERR_EPOCH_STALE');
  t.is((results[2] as { code?: string } | null)?.code, 'CLU_ERR_INVALID');
  env.disk.crash();
  t.is(opened(env).latestMap()?.epoch, 1 as Epoch);
});
