/**
 * Monitor protocol codecs (round trips, hostile input) and MonServer + MonClient in one
 * process over real TCP on 127.0.0.1 with a FileMonStore in a temp dir: key auth required,
 * admin commands with mon caps, identity-bound OSD boot/beacon, subscription delivering every
 * epoch in order, tickets and the sealed service secret.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodecError } from '../src/common/codec.js';
import { ClusterError } from '../src/common/errors.js';
import type { OsdId } from '../src/common/ids.js';
import type { Keyring } from '../src/auth/keyring.js';
import { openTicket } from '../src/auth/ticket.js';
import { buildMap, evenOsds } from '../src/map/map-builder.js';
import { encodeMap } from '../src/map/map-codec.js';
import { FileMonStore } from '../src/mon/file-mon-store.js';
import { MonClient } from '../src/mon/mon-client.js';
import {
  decodeBeacon, decodeFailureReport, decodeMapUpdate, decodeOsdBoot, decodePgHistory, decodePgStates, encodeBeacon, encodeFailureReport,
  encodeMapUpdate, encodeOsdBoot, encodePgHistory, encodePgStates, parseMonCommand,
} from '../src/mon/mon-protocol.js';
import { MonServer, monMkfs } from '../src/mon/mon-server.js';
import { testEnv, testKeyringEntry, waitFor } from './msg-test-env.js';

test('codecs round-trip and reject hostile input', (t) => {
  const boot = { uuid: 'u-1', addr: '127.0.0.1:6800', location: { host: 'h', rack: 'r1' }, osdId: 3, weight: 0x20000 };
  t.deepEqual(decodeOsdBoot(encodeOsdBoot(boot)), boot);
  t.deepEqual(decodeOsdBoot(encodeOsdBoot({ uuid: 'u', addr: 'a:1', location: { host: 'h' } })), { uuid: 'u', addr: 'a:1', location: { host: 'h' } });
  t.deepEqual(decodeBeacon(encodeBeacon(7 as OsdId, 42)), { osdId: 7, epoch: 42 });
  t.deepEqual(decodeFailureReport(encodeFailureReport({ target: 2 as OsdId, kind: 'refused', cancel: false })), { target: 2, kind: 'refused', cancel: false });
  t.deepEqual(decodePgStates(encodePgStates(1 as OsdId, { '1.a': 'active' })), { osdId: 1, states: { '1.a': 'active' } });
  const h = { osdId: 4 as OsdId, pg: '2.1f', op: 'reset' as const, set: [4, 0, 9] as OsdId[] };
  t.deepEqual(decodePgHistory(encodePgHistory(h)), h);
  t.throws(() => decodePgHistory(Uint8Array.from([...encodePgHistory(h), 0])), { instanceOf: CodecError });
  const badOp = encodePgHistory(h);
  badOp[4 + 4 + 4] = 3; // u32 osd | str '2.1f' (u32 len + 4) | u8 op
  t.throws(() => decodePgHistory(badOp), { instanceOf: CodecError, message: /bad pg history op 3/ });
  const map = buildMap({ osds: evenOsds(4, 2), pools: [{ id: 1, name: 'vms' }] });
  const full = decodeMapUpdate(encodeMapUpdate({ kind: 'full', map }));
  t.is(full.kind, 'full');
  if (full.kind === 'full') t.deepEqual(encodeMap(full.map), encodeMap(map));
  // Truncation, trailing bytes and bad enums are decode errors, never crashes.
  const beacon = encodeBeacon(1 as OsdId, 1);
  t.throws(() => decodeBeacon(beacon.subarray(0, 5)), { instanceOf: CodecError });
  t.throws(() => decodeBeacon(Uint8Array.from([...beacon, 0])), { instanceOf: CodecError });
  t.throws(() => decodeFailureReport(Uint8Array.from([1, 0, 0, 0, 9, 0])), { instanceOf: CodecError });
  t.throws(() => decodeMapUpdate(Uint8Array.from([7])), { instanceOf: CodecError });
});

test('admin commands are validated into typed commands', (t) => {
  t.deepEqual(parseMonCommand({ prefix: 'osd out', id: 3 }), { prefix: 'osd out', id: 3 as OsdId });
  const bad = [
    { prefix: 'osd out', id: -1 }, { prefix: 'pool create', name: 'p', size: 3, minSize: 2, pgNum: 0 },
    { prefix: 'pool create', name: 'p', size: 3, minSize: 2, pgNum: 8, failureDomain: 'rack' }, { prefix: 'auth add' }, 42, null,
  ];
  for (const b of bad) t.is((parseMonCommand(b) as ClusterError).code, 'CLU_ERR_INVALID', JSON.stringify(b));
  t.is((parseMonCommand({ prefix: 'rm -rf' }) as ClusterError).code, 'CLU_ERR_UNSUPPORTED');
});

const entry = testKeyringEntry;

test('MonServer + MonClient: auth, caps, boot, beacons, subscription, tickets, service secret', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-mon-'));
  const env = testEnv({ level: 'warn' });
  const ring: Keyring = new Map();
  for (const e of [entry('mon.', 'allow *', 'allow *'), entry('client.admin', 'allow *', 'allow *'), entry('service.osd', ''),
    entry('osd.0', 'allow r'), entry('client.ro', 'allow r', 'allow r pool=vms')]) ring.set(e.entity, e);
  await new Promise<void>((resolve, reject) => monMkfs({ env, store: new FileMonStore({ env, dir }), keyring: ring }, (err) => (err ? reject(err) : resolve())));
  const server = new MonServer({ env, store: new FileMonStore({ env, dir }), onFatal: (err) => t.fail(err.message) });
  const port = await new Promise<number>((resolve, reject) => server.start('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p!))));
  const clients: MonClient[] = [];
  const client = (name: string, key = ring.get(name)!.key): MonClient => {
    const c = new MonClient({ env, entity: name, key, mon: { host: '127.0.0.1', port }, backoff: { maxAttempts: 3 }, requestTimeoutMs: 3000 });
    clients.push(c);
    return c;
  };
  t.teardown(() => { for (const c of clients) c.close(); server.stop(() => undefined); rmSync(dir, { recursive: true, force: true }); });
  const cmd = (c: MonClient, body: Record<string, unknown>): Promise<{ err: ClusterError | null; r?: Record<string, unknown> }> =>
    new Promise((resolve) => c.command(body, (err, r) => resolve(r === undefined ? { err } : { err, r })));

  const admin = client('client.admin');
  const epochs: number[] = [];
  admin.on('map', (m) => epochs.push(m.epoch));
  admin.subscribe();
  t.is((await cmd(admin, { prefix: 'pool create', name: 'vms', size: 1, minSize: 1, pgNum: 8, failureDomain: 'osd' })).err, null);

  // The OSD entity boots only as itself; beacons keep it up.
  const osd = client('osd.0');
  const boot = (osdId: number): Promise<ClusterError | null> => new Promise((resolve) => osd.boot({ uuid: 'uuid-0', addr: '127.0.0.1:1', location: { host: 'h' }, osdId }, (err) => resolve(err)));
  t.is((await boot(1))?.code, 'CLU_ERR_PERM');
  t.is(await boot(0), null);
  const results: string[] = [];
  osd.startBeacons(0 as OsdId, 50, (r) => results.push(r instanceof ClusterError ? r.code : r));
  await waitFor(() => results.includes('ok'));

  // PG history: only osd.N for itself, and (monitor core) only as the PG's primary for its acting set.
  const hist = (c: MonClient, osdId: number, set: number[]): Promise<{ code: string | null; epoch?: number }> =>
    new Promise((resolve) => c.pgHistory(osdId as OsdId, '0.3', 'add', set as OsdId[], (err, epoch) => resolve(err === null ? { code: null, ...(epoch === undefined ? {} : { epoch }) } : { code: err.code })));
  t.is((await hist(admin, 0, [0])).code, 'CLU_ERR_PERM', 'an admin is not an OSD');
  t.is((await hist(osd, 1, [1])).code, 'CLU_ERR_PERM', 'osd.0 may not act for osd.1');
  t.is((await hist(osd, 0, [0, 1])).code, 'CLU_ERR_EPOCH_STALE', 'not the acting set');
  const added = await hist(osd, 0, [0]);
  t.is(added.code, null);
  t.is(added.epoch, server.monitor.map().epoch);
  t.deepEqual(server.monitor.map().pgHistory.get('0.3'), [[0]]);

  // Read-only mon caps: status yes, pool create no.
  const ro = client('client.ro');
  t.is((await cmd(ro, { prefix: 'status' })).err, null);
  t.is((await cmd(ro, { prefix: 'pool create', name: 'x', size: 1, minSize: 1, pgNum: 8 })).err?.code, 'CLU_ERR_PERM');

  // Wrong key: rejected.
  const wrong = client('client.admin', new Uint8Array(32).fill(1));
  t.is((await cmd(wrong, { prefix: 'status' })).err?.code, 'CLU_ERR_AUTH');

  // Tickets carry the caps; the service secret goes to OSDs only and opens those tickets.
  const ticket = await new Promise<{ ticket: Uint8Array }>((resolve, reject) => ro.ticket((err, c) => (err ? reject(err) : resolve(c!))));
  const secret = await new Promise<Uint8Array>((resolve, reject) => osd.serviceSecret((err, s) => (err ? reject(err) : resolve(s!))));
  const body = openTicket(secret, ticket.ticket, Date.now());
  t.false(body instanceof ClusterError);
  if (!(body instanceof ClusterError)) t.deepEqual(body.caps.osd, [{ access: 'r', pool: 'vms' }]);
  t.is(await new Promise<string | undefined>((resolve) => ro.serviceSecret((err) => resolve(err?.code))), 'CLU_ERR_PERM');

  // Every epoch reached the subscriber, in order, without gaps.
  const latest = server.monitor.map().epoch;
  await waitFor(() => epochs.at(-1) === latest);
  t.deepEqual(epochs, Array.from({ length: latest }, (_, i) => i + 1));
  t.is(server.monitor.map().osds.get(0 as OsdId)?.up, true);
});
