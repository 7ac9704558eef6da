/**
 * MonClient resets a half-open monitor session: a real MonServer behind a TCP relay on
 * 127.0.0.1; the relay then silently drops everything on the OSD's established connection
 * (the monitor died while the OSD was partitioned, so no RST ever reached it) while new
 * connections pass. Two beacon timeouts in a row must reset the session; the reconnect
 * brings the beacons back. One timeout alone must not.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterError } from '../src/common/errors.js';
import type { OsdId } from '../src/common/ids.js';
import type { Keyring } from '../src/auth/keyring.js';
import { FileMonStore } from '../src/mon/file-mon-store.js';
import { MonClient } from '../src/mon/mon-client.js';
import { MonServer, monMkfs } from '../src/mon/mon-server.js';
import { testEnv, testKeyringEntry, waitFor } from './msg-test-env.js';
import { tcpRelay } from './tcp-relay.js';

const entry = testKeyringEntry;

test('two beacon timeouts in a row reset a half-open monitor session; it reconnects and beacons resume', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-mon-beacon-'));
  const env = testEnv({ level: 'warn' });
  const ring: Keyring = new Map();
  for (const e of [entry('mon.', 'allow *', 'allow *'), entry('service.osd', ''), entry('osd.0', 'allow r')]) ring.set(e.entity, e);
  await new Promise<void>((resolve, reject) => monMkfs({ env, store: new FileMonStore({ env, dir }), keyring: ring }, (err) => (err ? reject(err) : resolve())));
  const server = new MonServer({ env, store: new FileMonStore({ env, dir }), onFatal: (err) => t.fail(err.message) });
  const monPort = await new Promise<number>((resolve, reject) => server.start('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p!))));
  const net = await tcpRelay(monPort);
  const osd = new MonClient({ env, entity: 'osd.0', key: ring.get('osd.0')!.key, mon: { host: '127.0.0.1', port: net.port } });
  t.teardown(() => { osd.close(); net.close(); server.stop(() => undefined); rmSync(dir, { recursive: true, force: true }); });
  let connects = 0;
  osd.on('connected', () => connects++);
  const booted = await new Promise<ClusterError | null>((resolve) => osd.boot({ uuid: 'uuid-0', addr: '127.0.0.1:1', location: { host: 'h' }, osdId: 0 }, (err) => resolve(err)));
  t.is(booted, null);
  await waitFor(() => connects === 1);

  const INTERVAL = 150;
  const results: string[] = [];
  osd.startBeacons(0 as OsdId, INTERVAL, (r) => results.push(r instanceof ClusterError ? r.code : r));
  await waitFor(() => results.includes('ok'));
  results.length = 0;
  const cutAt = Date.now();
  net.blackhole();
  await waitFor(() => results.includes('CLU_ERR_TIMEOUT'), 5000);
  t.is(connects, 1, 'one beacon timeout does not reset the session');
  await waitFor(() => connects === 2, 5000);
  const resetAfterMs = Date.now() - cutAt;
  t.true(resetAfterMs >= 3 * INTERVAL, `reset after ${resetAfterMs} ms`);
  t.deepEqual(results.slice(0, 2), ['CLU_ERR_TIMEOUT', 'CLU_ERR_TIMEOUT']);
  const before = results.length;
  await waitFor(() => results.slice(before).includes('ok'), 5000);
  t.pass('beacons answered again on the new connection');
});
