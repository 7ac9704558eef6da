/**
 * The client instance in the handshake (protocol 2, docs/cluster-protocol.md §3), without
 * sockets: a client with an instance sends MSG_HELLO v2 and the server binds the instance to
 * the peer; a client without one still sends the protocol-1 bytes (older servers accept it)
 * and gets no instance; the instance is covered by the proofs (a rewritten instance fails the
 * handshake); malformed instances and unknown protocols are refused.
 */
import test from 'ava';
import { ClusterError } from '../src/common/errors.js';
import { parseCaps } from '../src/auth/caps.js';
import type { Caps } from '../src/auth/caps.js';
import {
  AUTH_PROTOCOL_INSTANCE, AUTH_PROTOCOL_VERSION, ClientHandshake, ServerHandshake, authPolicy, decodeHello, encodeHello,
} from '../src/auth/handshake.js';
import type { AuthenticatedPeer, Hello } from '../src/auth/handshake.js';
import { makeKeyringEntry } from '../src/auth/keyring.js';
import { Reader } from '../src/common/codec.js';
import { seededRng } from './msg-test-env.js';

const rng = seededRng(7);
const clientKey = rng.bytes(32);
const NOW = 1_700_000_000_000;
const caps = parseCaps({ mon: 'allow r', osd: 'allow rw' }) as Caps;
const policy = authPolicy({
  lookupKey: (name) => {
    const e = makeKeyringEntry(name, clientKey, { mon: 'allow r', osd: 'allow rw' });
    if (e instanceof ClusterError) throw e;
    return name === 'client.a' ? e : undefined;
  },
});

/** Runs the key handshake; `rewrite` may alter the hello on the wire (a man in the middle). */
function run(instance: string, rewrite?: (h: Hello) => Hello): { peer: AuthenticatedPeer } | ClusterError {
  const c = new ClientHandshake('client.a', { method: 'key', key: clientKey }, rng, instance);
  const s = new ServerHandshake('osd.0', policy, rng);
  let hello = c.hello();
  if (rewrite !== undefined) {
    const h = decodeHello(hello);
    if (h instanceof ClusterError) throw h;
    hello = encodeHello(rewrite(h));
  }
  const r1 = s.onHello(hello, NOW);
  if (r1 instanceof ClusterError) return r1;
  const r2 = c.onHelloReply(r1.reply);
  if (r2 instanceof ClusterError || !('proof' in r2)) throw new Error('no proof');
  const r3 = s.onProof(r2.proof);
  if (r3 instanceof ClusterError) return r3;
  const r4 = c.onAuthDone(r3.reply);
  if (r4 instanceof ClusterError) return r4;
  return { peer: r3.peer };
}

const reasonOf = (r: unknown): unknown => (r instanceof ClusterError ? `${r.code}/${String(r.details?.['reason'])}` : r);

test('a client with an instance sends protocol 2 and the server binds the instance to the peer', (t) => {
  const hello = new ClientHandshake('client.a', { method: 'key', key: clientKey }, rng, 'abc123').hello();
  t.is(new Reader(hello).u16(), AUTH_PROTOCOL_INSTANCE);
  const r = run('abc123');
  if (r instanceof ClusterError) throw r;
  t.is(r.peer.entity, 'client.a');
  t.is(r.peer.instance, 'abc123');
  t.deepEqual(r.peer.caps, caps);
});

test('without an instance the hello is the protocol-1 encoding and the peer has no instance', (t) => {
  const hello = new ClientHandshake('client.a', { method: 'key', key: clientKey }, rng).hello();
  const r = new Reader(hello);
  t.is(r.u16(), AUTH_PROTOCOL_VERSION);
  t.is(r.str(), 'client.a');
  t.is(r.u8(), 1);
  t.is(r.bytes().length, 32);
  t.is(r.bytes().length, 0);
  t.notThrows(() => r.end(), 'nothing after the ticket: a protocol-1 server decodes it');
  const done = run('');
  if (done instanceof ClusterError) throw done;
  t.is(done.peer.instance, null);
});

test('the instance is covered by the proofs: rewriting or adding it on the wire fails the handshake', (t) => {
  t.is(reasonOf(run('abc123', (h) => ({ ...h, instance: 'evil' }))), 'CLU_ERR_AUTH/client-proof');
  t.is(reasonOf(run('', (h) => ({ ...h, protocol: AUTH_PROTOCOL_INSTANCE, instance: 'evil' }))), 'CLU_ERR_AUTH/client-proof');
  t.is(reasonOf(run('abc123', (h) => ({ ...h, protocol: AUTH_PROTOCOL_VERSION, instance: '' }))), 'CLU_ERR_AUTH/client-proof', 'nor dropped');
});

test('malformed instances and unknown protocols are refused', (t) => {
  t.is(reasonOf(run('abc123', (h) => ({ ...h, instance: 'a/b' }))), 'CLU_ERR_AUTH/instance');
  t.is(reasonOf(run('abc123', (h) => ({ ...h, instance: '' }))), 'CLU_ERR_AUTH/instance');
  t.is(reasonOf(run('abc123', (h) => ({ ...h, instance: 'x'.repeat(33) }))), 'CLU_ERR_AUTH/instance');
  t.is((run('abc123', (h) => ({ ...h, protocol: 3 })) as ClusterError).code, 'CLU_ERR_UNSUPPORTED');
  t.throws(() => new ClientHandshake('client.a', { method: 'key', key: clientKey }, rng, 'no/slash'), { message: /bad client instance/ });
});
