/**
 * Messenger keepalive over real TCP (127.0.0.1): a relay between a client and its peer goes
 * silent on the established connection (the peer died while partitioned; no FIN, no RST), new
 * connections pass. Without keepalive the client's socket would look open until TCP's
 * retransmission timeout, and since the client sends nothing, forever.
 * - A block client's monitor session (map subscription only, no beacons): reset after the
 *   keepalive timeout, not before; it reconnects, resubscribes and learns the epochs it missed.
 * - A client → OSD session (a real OsdCore): a write in flight fails CLU_ERR_CONN_CLOSED at the
 *   reset, the session reconnects, and the resend (same reqId) is applied.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterError } from '../src/common/errors.js';
import type { Keyring } from '../src/auth/keyring.js';
import { FileMonStore } from '../src/mon/file-mon-store.js';
import { MonClient } from '../src/mon/mon-client.js';
import { MonServer, monMkfs } from '../src/mon/mon-server.js';
import { Messenger } from '../src/msg/messenger.js';
import type { Session } from '../src/msg/session.js';
import { MsgType } from '../src/msg/types.js';
import { OSD_FLAG_WRITE, decodeOsdOpReply, encodeOsdOpRequest } from '../src/osd/osd-protocol.js';
import { objectToPg } from '../src/placement/placement.js';
import { testEnv, testKeyringEntry, waitFor } from './msg-test-env.js';
import { OsdHarness } from './osd-harness.js';
import { tcpRelay } from './tcp-relay.js';

const INTERVAL = 100;
const TIMEOUT = 800;
const LIMITS = { keepaliveIntervalMs: INTERVAL, keepaliveTimeoutMs: TIMEOUT };

const entry = testKeyringEntry;

test('a client whose monitor went silent resets the session after the keepalive timeout and learns the maps it missed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-keepalive-mon-'));
  const env = testEnv({ level: 'warn' });
  const ring: Keyring = new Map();
  for (const e of [entry('mon.', 'allow *', 'allow *'), entry('service.osd', ''), entry('client.admin', 'allow *', 'allow *'), entry('client.vm1', 'allow r')]) ring.set(e.entity, e);
  await new Promise<void>((resolve, reject) => monMkfs({ env, store: new FileMonStore({ env, dir }), keyring: ring }, (err) => (err ? reject(err) : resolve())));
  const server = new MonServer({ env, store: new FileMonStore({ env, dir }), onFatal: (err) => t.fail(err.message) });
  const monPort = await new Promise<number>((resolve, reject) => server.start('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p!))));
  const net = await tcpRelay(monPort);
  const client = new MonClient({ env, entity: 'client.vm1', key: ring.get('client.vm1')!.key, mon: { host: '127.0.0.1', port: net.port }, limits: LIMITS });
  const admin = new MonClient({ env, entity: 'client.admin', key: ring.get('client.admin')!.key, mon: { host: '127.0.0.1', port: monPort } });
  t.teardown(() => { client.close(); admin.close(); net.close(); server.stop(() => undefined); rmSync(dir, { recursive: true, force: true }); });
  const resets: { atMs: number; err: ClusterError }[] = [];
  client.session.on('reset', (err) => resets.push({ atMs: Date.now(), err }));
  let connects = 0;
  client.on('connected', () => connects++);
  const first = await new Promise<number>((resolve) => client.latestMap((m) => resolve(m.epoch as number)));

  // Idle for many intervals: keepalives flow, the session stays up.
  await new Promise((r) => setTimeout(r, 10 * INTERVAL));
  t.deepEqual(resets, [], 'an idle healthy session is not reset');
  t.true(client.session.keepaliveStats.pongsReceived > 0, 'keepalives were answered');

  const cutAt = Date.now();
  net.blackhole();
  const created = await new Promise<ClusterError | null>((resolve) => admin.command({ prefix: 'pool create', name: 'vms', size: 1, minSize: 1, pgNum: 8, failureDomain: 'osd' }, (err) => resolve(err)));
  t.is(created, null);
  await new Promise((r) => setTimeout(r, TIMEOUT - INTERVAL - 100 - (Date.now() - cutAt)));
  t.deepEqual(resets, [], 'not reset before the keepalive timeout');
  t.is(client.map()!.epoch as number, first, 'the new epoch is not seen through the dead connection');
  await waitFor(() => resets.length > 0, 5000);
  const r = resets[0]!;
  t.true(r.atMs - cutAt >= TIMEOUT - INTERVAL - 50, `reset after ${r.atMs - cutAt} ms`);
  t.is(r.err.code, 'CLU_ERR_TIMEOUT');
  t.is(r.err.details?.['reason'], 'keepalive');
  await waitFor(() => connects === 2, 5000);
  await waitFor(() => (client.map()!.epoch as number) > first, 5000);
  t.true(client.map()!.pools.size === 1, 'the pool created while the session was dead arrived after the reconnect');
});

test('a client → OSD session whose OSD went silent resets after the keepalive timeout; the write in flight is resent on the new connection', async (t) => {
  t.timeout(60_000);
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 1, minSize: 1, pgNum: 4, failureDomain: 'osd' });
  const client = new Messenger({ env: h.env, entity: 'client.admin', limits: LIMITS, credentials: () => ({ method: 'key', key: new Uint8Array(32).fill(101) }) });
  let net: Awaited<ReturnType<typeof tcpRelay>> | undefined;
  t.teardown(async () => { client.shutdown(); net?.close(); await h.close(); });
  const osd = await h.startOsd(0);
  h.initMap();
  await waitFor(() => h.allClean(), 10_000);
  net = await tcpRelay(osd.port);
  const s = client.connect({ host: '127.0.0.1', port: net.port }, { instance: 'k1' });
  const resets: { atMs: number; err: ClusterError }[] = [];
  s.on('reset', (err) => resets.push({ atMs: Date.now(), err }));

  const pool = h.map.pools.get(h.poolSpec.id as never)!;
  const write = (sess: Session, tid: number, attempt: number, fill: number): Promise<number | ClusterError> => {
    const name = `obj${tid}`;
    const payload = encodeOsdOpRequest({
      pool: pool.id, objectName: name, pgSeed: objectToPg(pool, name).seed, mapEpoch: h.map.epoch,
      reqId: { client: 'client.admin/k1', tid, attempt }, flags: OSD_FLAG_WRITE, ops: [{ op: 'write', offset: 0, length: 512 }],
    });
    return new Promise((resolve) => {
      sess.request({ type: MsgType.MSG_OSD_OP, payload, data: [new Uint8Array(512).fill(fill)], epoch: h.map.epoch }, { timeoutMs: 30_000 }, (err, rep) => {
        resolve(err !== null || rep === undefined ? (err ?? new ClusterError('CLU_ERR_IO', 'no reply')) : decodeOsdOpReply(rep.payload).result);
      });
    });
  };
  t.is(await write(s, 1, 0, 1), 0);
  await new Promise((r) => setTimeout(r, 10 * INTERVAL));
  t.deepEqual(resets, [], 'an idle healthy OSD session is not reset');

  const cutAt = Date.now();
  net.blackhole();
  const inflight = await write(s, 2, 0, 2);
  const failedAfterMs = Date.now() - cutAt;
  t.true(inflight instanceof ClusterError && inflight.code === 'CLU_ERR_CONN_CLOSED', `in flight: ${String(inflight)}`);
  t.true(failedAfterMs >= TIMEOUT - INTERVAL - 50 && failedAfterMs < 5000, `failed after ${failedAfterMs} ms`);
  t.is(resets.length, 1);
  t.is(resets[0]!.err.details?.['reason'], 'keepalive');
  // The owner resends with the same reqId (as the Objecter does on CLU_ERR_CONN_CLOSED); it
  // waits in the session queue for the reconnect, which goes through the relay anew.
  t.is(await write(s, 2, 1, 2), 0);
  t.is(net.connections(), 2);
  const read = await h.localRead(0, 'obj2');
  t.is(read.data[0], 2, 'the resent write was applied');
});
