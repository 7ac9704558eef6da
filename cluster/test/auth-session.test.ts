/**
 * Checks auth end to end over real TCP: a monitor-like messenger that requires key auth, an
 * OSD-like messenger that requires tickets and enforces caps per op, and clients. Covers: the
 * right key gives a signed session and a ticket; a wrong key and a missing auth are refused
 * with CLU_ERR_AUTH; an expired ticket is refused; caps on pool A deny pool B (and read-only
 * caps deny writes); a frame tampered in flight (CRCs recomputed) is rejected by its signature
 * and the connection closed.
 */
import test from 'ava';
import { Reader, Writer } from '../src/common/codec.js';
import { crc32c } from '../src/common/crc32c.js';
import { ClusterError, clusterErrorToWire } from '../src/common/errors.js';
import { capsAllow } from '../src/auth/caps.js';
import { authPolicy, decodeReject, encodeReject } from '../src/auth/handshake.js';
import type { ClientCredentials } from '../src/auth/handshake.js';
import { OSD_SERVICE_ENTITY, makeKeyringEntry } from '../src/auth/keyring.js';
import type { Keyring } from '../src/auth/keyring.js';
import { fetchTicket, registerTicketService } from '../src/auth/ticket-service.js';
import type { TicketCredentials } from '../src/auth/ticket.js';
import { RealNet } from '../src/env/real-net.js';
import { Messenger } from '../src/msg/messenger.js';
import type { Session } from '../src/msg/session.js';
import { MsgType } from '../src/msg/types.js';
import { seededRng, tappedNet, testEnv, waitFor } from './msg-test-env.js';
import type { WriteTap } from './msg-test-env.js';

const HOST = '127.0.0.1';
const rng = seededRng(99);

function keyring(): Keyring {
  const ring: Keyring = new Map();
  const add = (entity: string, caps: { mon?: string; osd?: string }, key = rng.bytes(32)): void => {
    const e = makeKeyringEntry(entity, key, caps);
    if (e instanceof ClusterError) throw e;
    ring.set(entity, e);
  };
  add('mon.', { mon: 'allow *', osd: 'allow *' });
  add(OSD_SERVICE_ENTITY, {});
  add('client.a', { mon: 'allow r', osd: 'allow rw pool=a' });
  add('client.ro', { mon: 'allow r', osd: 'allow r pool=a' });
  return ring;
}

const ring = keyring();
const serviceSecret = ring.get(OSD_SERVICE_ENTITY)!.key;

function listen(msgr: Messenger): Promise<number> {
  return new Promise((resolve, reject) => msgr.listen(HOST, 0, (err, port) => (err ? reject(err) : resolve(port!))));
}

async function monitor(ttlMs?: number): Promise<{ msgr: Messenger; port: number; env: ReturnType<typeof testEnv> }> {
  const env = testEnv();
  const lookupKey = (e: string): ReturnType<Keyring['get']> => ring.get(e);
  const msgr = new Messenger({ env, entity: 'mon.', auth: authPolicy({ lookupKey }) });
  registerTicketService(msgr, { env, lookupKey, serviceSecret: () => serviceSecret, ...(ttlMs === undefined ? {} : { ttlMs }) });
  msgr.handle(MsgType.MSG_TEST_ECHO, (req, s) => s.reply(req, { type: req.type, payload: req.payload }));
  return { msgr, port: await listen(msgr), env };
}

/** An OSD stand-in: MSG_TEST_ECHO payload = (pool, object, write); caps checked per op. */
async function osd(): Promise<{ msgr: Messenger; port: number; env: ReturnType<typeof testEnv> }> {
  const env = testEnv();
  const msgr = new Messenger({ env, entity: 'osd.0', auth: authPolicy({ serviceSecret: () => serviceSecret }) });
  msgr.handle(MsgType.MSG_TEST_ECHO, (req, s) => {
    const r = new Reader(req.payload);
    const op = { pool: r.str(), objectName: r.str(), write: r.bool() };
    if (!capsAllow(s.peer!.caps, op)) { s.replyError(req, new ClusterError('CLU_ERR_PERM', `${s.peer!.entity} may not touch ${op.pool}`)); return; }
    s.reply(req, { type: req.type, payload: req.payload });
  });
  return { msgr, port: await listen(msgr), env };
}

function op(s: Session, pool: string, write: boolean): Promise<ClusterError | null> {
  const payload = new Writer().str(pool).str('rbd_data.1.0').bool(write).finish();
  return new Promise((resolve) => s.request({ type: MsgType.MSG_TEST_ECHO, payload }, { timeoutMs: 2000 }, (err) => resolve(err)));
}

function ticketFor(entity: string, monPort: number): Promise<TicketCredentials> {
  const key = ring.get(entity)!.key;
  const client = new Messenger({ env: testEnv(), entity, credentials: () => ({ method: 'key', key }) });
  const s = client.connect({ host: HOST, port: monPort });
  return new Promise((resolve, reject) => fetchTicket(s, { entity, clientKey: key, timeoutMs: 2000 }, (err, creds) => {
    client.shutdown();
    if (err) reject(err); else resolve(creds!);
  }));
}

function ticketCreds(c: TicketCredentials): () => ClientCredentials {
  return () => ({ method: 'ticket', ticket: c.ticket, sessionKey: c.sessionKey });
}

test('the right key gives a signed session to the monitor and a ticket the OSD accepts', async (t) => {
  const mon = await monitor();
  const o = await osd();
  const creds = await ticketFor('client.a', mon.port);
  const client = new Messenger({ env: testEnv(), entity: 'client.a' });
  const s = client.connect({ host: HOST, port: o.port }, { credentials: ticketCreds(creds) });
  t.is(await op(s, 'a', true), null);
  t.is(s.peer?.entity, 'osd.0');
  t.true(mon.env.sink.lines.some((l) => l['msg'] === 'session ready' && l['peer'] === 'client.a' && l['signed'] === true));
  t.false(JSON.stringify(mon.env.sink.lines).includes(Buffer.from(ring.get('client.a')!.key).toString('base64')), 'no key in logs');
  for (const m of [client, mon.msgr, o.msgr]) m.shutdown();
});

test('a wrong key is rejected with CLU_ERR_AUTH, and so is a client without auth', async (t) => {
  const mon = await monitor();
  const bad = new Messenger({ env: testEnv(), entity: 'client.a', credentials: () => ({ method: 'key', key: rng.bytes(32) }) });
  const err = await new Promise<ClusterError | null>((resolve) => bad.connect({ host: HOST, port: mon.port }).request({ type: MsgType.MSG_TEST_ECHO }, { timeoutMs: 2000 }, (e) => resolve(e)));
  t.is(err?.code, 'CLU_ERR_AUTH');
  await waitFor(() => mon.env.sink.lines.some((l) => l['msg'] === 'handshake rejected'));
  const anon = new Messenger({ env: testEnv(), entity: 'client.x' });
  const err2 = await new Promise<ClusterError | null>((resolve) => anon.connect({ host: HOST, port: mon.port }).request({ type: MsgType.MSG_TEST_ECHO }, { timeoutMs: 2000 }, (e) => resolve(e)));
  t.is(err2?.code, 'CLU_ERR_AUTH');
  for (const m of [bad, anon, mon.msgr]) m.shutdown();
});

test('an expired ticket is rejected by the OSD', async (t) => {
  const mon = await monitor(1);
  const o = await osd();
  const creds = await ticketFor('client.a', mon.port);
  await new Promise((r) => setTimeout(r, 5));
  const client = new Messenger({ env: testEnv(), entity: 'client.a' });
  const err = await op(client.connect({ host: HOST, port: o.port }, { credentials: ticketCreds(creds) }), 'a', false);
  t.is(err?.code, 'CLU_ERR_AUTH');
  await waitFor(() => o.env.sink.lines.some((l) => l['msg'] === 'handshake rejected'));
  const line = o.env.sink.lines.find((l) => l['msg'] === 'handshake rejected')!;
  t.is((line['err'] as { details: { reason: string } }).details.reason, 'ticket-expired');
  for (const m of [client, mon.msgr, o.msgr]) m.shutdown();
});

test('caps on pool A deny pool B; read-only caps deny writes', async (t) => {
  const mon = await monitor();
  const o = await osd();
  const client = new Messenger({ env: testEnv(), entity: 'client.a' });
  const s = client.connect({ host: HOST, port: o.port }, { credentials: ticketCreds(await ticketFor('client.a', mon.port)) });
  t.is(await op(s, 'a', true), null);
  t.is((await op(s, 'b', false))?.code, 'CLU_ERR_PERM');
  t.is((await op(s, 'b', true))?.code, 'CLU_ERR_PERM');
  const ro = new Messenger({ env: testEnv(), entity: 'client.ro' });
  const sro = ro.connect({ host: HOST, port: o.port }, { credentials: ticketCreds(await ticketFor('client.ro', mon.port)) });
  t.is(await op(sro, 'a', false), null);
  t.is((await op(sro, 'a', true))?.code, 'CLU_ERR_PERM');
  for (const m of [client, ro, mon.msgr, o.msgr]) m.shutdown();
});

/** Flips a payload byte of MSG_TEST_ECHO frames and fixes both CRCs, as an active attacker would. */
const tamper: WriteTap = (chunks) => {
  const h = Buffer.from(chunks[0]!);
  if (chunks.length < 2 || h.length !== 64 || h.readUInt16LE(6) !== MsgType.MSG_TEST_ECHO) return chunks;
  const payload = Uint8Array.from(chunks[1]!);
  payload[payload.length - 1]! ^= 1; // The write flag: turn a read into a write.
  h.writeUInt32LE(crc32c(payload), 32);
  h.writeUInt32LE(crc32c(h.subarray(0, 60)), 60);
  return [h, payload, ...chunks.slice(2)];
};

test('a tampered frame with valid CRCs is rejected by its signature and the connection closed', async (t) => {
  const mon = await monitor();
  const o = await osd();
  const tap: { fn: WriteTap | null } = { fn: null };
  const env = testEnv({ net: tappedNet(new RealNet(), tap) });
  const client = new Messenger({ env, entity: 'client.a' });
  const s = client.connect({ host: HOST, port: o.port }, { credentials: ticketCreds(await ticketFor('client.a', mon.port)) });
  t.is(await op(s, 'a', false), null);
  tap.fn = tamper;
  const err = await op(s, 'a', false);
  t.is(err?.code, 'CLU_ERR_CONN_CLOSED');
  await waitFor(() => o.env.sink.lines.some((l) => l['msg'] === 'frame rejected'));
  const line = o.env.sink.lines.find((l) => l['msg'] === 'frame rejected')!;
  const e = line['err'] as { code: string; details: { reason: string } };
  t.is(e.code, 'CLU_ERR_AUTH');
  t.is(e.details.reason, 'bad-signature');
  tap.fn = null;
  t.is(await op(s, 'a', false), null, 'the client reconnects with a fresh signed session');
  for (const m of [client, mon.msgr, o.msgr]) m.shutdown();
});

test('an error reply carries its stable reason; a reply without one (older sender) decodes as before', (t) => {
  const e = decodeReject(encodeReject(new ClusterError('CLU_ERR_PERM', 'instance-mismatch: op of a on b', { details: { reason: 'instance-mismatch', other: 1 } })));
  t.is(e.code, 'CLU_ERR_PERM');
  t.is(e.message, 'instance-mismatch: op of a on b');
  t.deepEqual(e.details, { remote: true, reason: 'instance-mismatch' });
  const old = new Writer(64).u16(clusterErrorToWire('CLU_ERR_NOT_FOUND')).str('no such object').finish();
  t.deepEqual(decodeReject(old).details, { remote: true });
  t.is(decodeReject(old).code, 'CLU_ERR_NOT_FOUND');
});
