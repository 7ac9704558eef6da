/**
 * The PG log's two bounds with three in-process OSDs over real TCP and real stores: a clean PG
 * keeps PG_LOG_MIN entries, trimmed gradually (at most PG_LOG_TRIM_PER_WRITE per write); a
 * degraded PG keeps up to PG_LOG_MAX (an OSD that was down can recover from the log); once clean
 * again the log shrinks back. Replicas mirror the primary's log in memory
 * and in their stores (the same entry keys), also after a restart.
 */
import test from 'ava';
import type { OsdId } from '../src/common/ids.js';
import { PG_LOG_MIN, PG_LOG_TRIM_PER_WRITE, isLogKey } from '../src/pg/pg-log.js';
import { objectToPg, pgToOsds } from '../src/placement/placement.js';
import { waitFor } from './msg-test-env.js';
import { OsdHarness } from './osd-harness.js';

const block = (seed: number): Uint8Array => new Uint8Array(512).fill(seed & 0xff);

test.serial('a clean PG keeps PG_LOG_MIN entries, a degraded one more; replicas mirror it; recovery uses the log', async (t) => {
  t.timeout(180_000);
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 3, minSize: 2, pgNum: 1, failureDomain: 'osd' });
  try {
    for (let i = 0; i < 3; i++) await h.startOsd(i);
    h.initMap();
    await waitFor(() => h.allClean(), 10_000);
    const pool = h.map.pools.get(1 as never)!;
    const pg = objectToPg(pool, 'x');
    const key = `1.${pg.seed.toString(16)}`;
    const acting = pgToOsds(h.map, pg).acting;
    const primary = acting[0]!;
    const logLen = (id: number): number => h.osds.get(id)!.core.pgForTest(key)!.logLength;
    const storeKeys = (id: number): string[] => h.osds.get(id)!.store.pgList(key).map(([k]) => k).filter(isLogKey);
    const write = async (i: number): Promise<void> => {
      t.is((await h.op(`o${i % 50}`, [{ op: 'write', offset: 0, length: 512 }], [block(i)])).reply.result, 0);
    };

    for (let i = 0; i < PG_LOG_MIN + 100; i++) await write(i);
    t.is(logLen(primary), PG_LOG_MIN, 'a clean PG is trimmed to PG_LOG_MIN');
    for (const id of acting) {
      t.is(logLen(id), PG_LOG_MIN, `osd.${id} in memory`);
      t.deepEqual(storeKeys(id), storeKeys(primary), `osd.${id} store keys`);
    }

    // Degraded: one replica down; the log grows past PG_LOG_MIN.
    const down = acting[2]!;
    await h.stopOsd(down);
    h.apply([{ op: 'osd-set', id: down as OsdId, changes: { up: false } }]);
    await waitFor(() => Object.values(h.states()).every((s) => s.includes('active') && s.includes('degraded')), 10_000);
    const missed = PG_LOG_MIN + 200;
    for (let i = 0; i < missed; i++) await write(10_000 + i);
    t.is(logLen(primary), PG_LOG_MIN + missed, 'a degraded PG keeps every entry up to PG_LOG_MAX');

    // The OSD comes back (same store) and is recovered; every copy matches the primary's.
    const back = await h.startOsd(down);
    h.apply([{ op: 'osd-set', id: down as OsdId, changes: { up: true, addr: `127.0.0.1:${back.port}` } }]);
    await waitFor(() => h.allClean(), 20_000);
    for (let i = 0; i < 50; i++) {
      const want = (await h.localRead(primary, `o${i}`)).data;
      for (const id of acting) t.deepEqual((await h.localRead(id, `o${i}`)).data, want, `o${i} on osd.${id}`);
    }

    // Clean again: the log shrinks by at most PG_LOG_TRIM_PER_WRITE per write, back to the minimum.
    const before = logLen(primary);
    await write(99_999);
    t.is(logLen(primary), before + 1 - PG_LOG_TRIM_PER_WRITE);
    for (let i = 0; logLen(primary) > PG_LOG_MIN && i < 1000; i++) await write(20_000 + i);
    t.is(logLen(primary), PG_LOG_MIN);
    for (const id of acting) {
      t.is(logLen(id), PG_LOG_MIN, `osd.${id} in memory after shrinking`);
      t.deepEqual(storeKeys(id), storeKeys(primary), `osd.${id} store keys after shrinking`);
    }
  } finally { await h.close(); }
});
