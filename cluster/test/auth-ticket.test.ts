/**
 * Checks tickets and the handshake state machines without sockets: a grant opens only with the
 * client's key, a ticket only with the service secret and only before it expires, tampering is
 * detected, and the handshake authenticates both ways (a wrong client key and a server that
 * cannot prove the key are both refused with CLU_ERR_AUTH).
 */
import test from 'ava';
import { ClusterError } from '../src/common/errors.js';
import { parseCaps } from '../src/auth/caps.js';
import type { Caps } from '../src/auth/caps.js';
import { ClientHandshake, ServerHandshake, authPolicy } from '../src/auth/handshake.js';
import type { ClientCredentials } from '../src/auth/handshake.js';
import { makeKeyringEntry } from '../src/auth/keyring.js';
import type { KeyringEntry } from '../src/auth/keyring.js';
import { acceptTicketGrant, issueTicket, openTicket } from '../src/auth/ticket.js';
import { seededRng } from './msg-test-env.js';

const rng = seededRng(42);
const serviceSecret = rng.bytes(32);
const clientKey = rng.bytes(32);
const caps = parseCaps({ osd: 'allow rw pool=a' }) as Caps;
const NOW = 1_700_000_000_000;

test('a grant opens with the client key and the ticket with the service secret', (t) => {
  const grant = issueTicket({ serviceSecret, clientKey, entity: 'client.a', caps, nowWallMs: NOW, ttlMs: 60_000, rng });
  const creds = acceptTicketGrant(clientKey, 'client.a', grant);
  if (creds instanceof ClusterError) throw creds;
  const body = openTicket(serviceSecret, creds.ticket, NOW + 1000);
  if (body instanceof ClusterError) throw body;
  t.is(body.entity, 'client.a');
  t.deepEqual(body.caps, caps);
  t.deepEqual(body.sessionKey, creds.sessionKey);
  t.is(body.expiresMs, NOW + 60_000);
  t.is(creds.expiresMs, NOW + 60_000);
});

test('wrong keys, tampering and expiry yield CLU_ERR_AUTH', (t) => {
  const grant = issueTicket({ serviceSecret, clientKey, entity: 'client.a', caps, nowWallMs: NOW, ttlMs: 60_000, rng });
  const other = rng.bytes(32);
  const codeOf = (r: unknown): string | undefined => (r instanceof ClusterError ? r.code : undefined);
  t.is(codeOf(acceptTicketGrant(other, 'client.a', grant)), 'CLU_ERR_AUTH');
  t.is(codeOf(acceptTicketGrant(clientKey, 'client.b', grant)), 'CLU_ERR_AUTH');
  t.is(codeOf(openTicket(other, grant.ticket, NOW)), 'CLU_ERR_AUTH');
  const tampered = Uint8Array.from(grant.ticket);
  tampered[tampered.length - 1]! ^= 1;
  t.is(codeOf(openTicket(serviceSecret, tampered, NOW)), 'CLU_ERR_AUTH');
  const expired = openTicket(serviceSecret, grant.ticket, NOW + 60_000);
  t.is(codeOf(expired), 'CLU_ERR_AUTH');
  t.is((expired as ClusterError).details?.['reason'], 'ticket-expired');
});

function entry(entity: string, key: Uint8Array): KeyringEntry {
  const e = makeKeyringEntry(entity, key, { mon: 'allow r', osd: 'allow rw pool=a' });
  if (e instanceof ClusterError) throw e;
  return e;
}

function runHandshake(creds: ClientCredentials, serverKey: Uint8Array, tamperDone = false): { client: unknown; server: unknown } {
  const policy = authPolicy({ lookupKey: (name) => (name === 'client.a' ? entry('client.a', serverKey) : undefined), serviceSecret: () => serviceSecret });
  const c = new ClientHandshake('client.a', creds, rng);
  const s = new ServerHandshake('mon.', policy, rng);
  const hello = s.onHello(c.hello(), NOW);
  if (hello instanceof ClusterError) return { client: null, server: hello };
  const proof = c.onHelloReply(hello.reply);
  if (proof instanceof ClusterError || !('proof' in proof)) return { client: proof, server: null };
  const done = s.onProof(proof.proof);
  if (done instanceof ClusterError) return { client: null, server: done };
  if (tamperDone) done.reply[done.reply.length - 1]! ^= 1;
  const fin = c.onAuthDone(done.reply);
  return { client: fin, server: done };
}

test('handshake with the right key: both sides agree on crossed signing keys', (t) => {
  const { client, server } = runHandshake({ method: 'key', key: clientKey }, clientKey);
  const c = client as { keys: { tx: Uint8Array; rx: Uint8Array } };
  const s = server as { keys: { tx: Uint8Array; rx: Uint8Array }; peer: { entity: string; caps: Caps } };
  t.deepEqual(c.keys.tx, s.keys.rx);
  t.deepEqual(c.keys.rx, s.keys.tx);
  t.notDeepEqual(c.keys.tx, c.keys.rx);
  t.is(s.peer.entity, 'client.a');
  t.deepEqual(s.peer.caps, { ...caps, mon: 'r' });
});

test('handshake with a wrong key is refused by the server', (t) => {
  const { server } = runHandshake({ method: 'key', key: rng.bytes(32) }, clientKey);
  t.is((server as ClusterError).code, 'CLU_ERR_AUTH');
  t.is((server as ClusterError).details?.['reason'], 'client-proof');
});

test('a server that cannot prove the key is refused by the client (mutual auth)', (t) => {
  const { client } = runHandshake({ method: 'key', key: clientKey }, clientKey, true);
  t.is((client as ClusterError).code, 'CLU_ERR_AUTH');
  t.is((client as ClusterError).details?.['reason'], 'server-proof');
});

test('ticket handshake: accepted while valid, refused once expired', (t) => {
  const grant = issueTicket({ serviceSecret, clientKey, entity: 'client.a', caps, nowWallMs: NOW - 120_000, ttlMs: 60_000, rng });
  const creds = acceptTicketGrant(clientKey, 'client.a', grant);
  if (creds instanceof ClusterError) throw creds;
  const { server } = runHandshake({ method: 'ticket', ticket: creds.ticket, sessionKey: creds.sessionKey }, clientKey);
  t.is((server as ClusterError).code, 'CLU_ERR_AUTH');
  const fresh = acceptTicketGrant(clientKey, 'client.a', issueTicket({ serviceSecret, clientKey, entity: 'client.a', caps, nowWallMs: NOW, rng })) as { ticket: Uint8Array; sessionKey: Uint8Array };
  const ok = runHandshake({ method: 'ticket', ticket: fresh.ticket, sessionKey: fresh.sessionKey }, clientKey);
  t.truthy((ok.client as { keys?: unknown }).keys);
});
