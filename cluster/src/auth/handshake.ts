/**
 * Mutual challenge–response authentication run as the first frames of a messenger session
 * (docs/cluster-protocol.md §3). The secret never crosses the wire; each side proves it holds
 * the key `K` with an HMAC-SHA256 over a transcript of both nonces and both names.
 *
 * ```
 *  client                                              server
 *    | MSG_HELLO {proto, entity, method, Nc, ticket?,     |   Nc = 32 random bytes
 *    |            instance? (proto 2)}                    |
 *    |--------------------------------------------------->|   K = keyring[entity].key (method key)
 *    |                                                    |     or open(ticket).sessionKey (ticket)
 *    |      MSG_HELLO_REPLY {serverEntity, status, Ns}    |   Ns = 32 random bytes
 *    |<---------------------------------------------------|   status 1 = accepted without auth
 *    | MSG_AUTH_PROOF {HMAC(K, "client-proof" ‖ T)}       |   T = transcript (below)
 *    |--------------------------------------------------->|   verify (constant time)
 *    |          MSG_AUTH_DONE {HMAC(K, "server-proof" ‖ T)}|  or MSG_AUTH_REJECT {code, msg}
 *    |<---------------------------------------------------|
 *    | verify; both sides derive signing keys:            |
 *    |   c2s = HMAC(K, "c2s-sign" ‖ T), s2c = HMAC(K, "s2c-sign" ‖ T)
 * ```
 * T = "strata-auth-v1" ‖ u8 method ‖ str clientEntity ‖ str serverEntity ‖ bytes Nc ‖ bytes Ns ‖
 * bytes SHA-256(ticket); protocol 2 uses the label "strata-auth-v2" and appends str instance.
 *
 * Protocol 2 (a client instance): MSG_HELLO v2 appends `str instance`, the client's instance
 * nonce (the Objecter's `clientId` is `entity/instance`); the server binds it to the session
 * (`AuthenticatedPeer.instance`) and the OSD refuses client ops whose `reqId.client` is not
 * `<entity>/<instance>` of their session (docs/cluster-protocol.md §3). A connecting side
 * without an instance (daemons, monitor clients) still sends protocol 1, so it interoperates
 * with servers that know only protocol 1; servers accept both. Why the instance is in the
 * transcript: a man in the middle must not be able to rebind a session to another instance.
 *
 * Why a transcript with distinct labels: a proof can be neither
 * reflected (client and server labels differ) nor replayed (fresh nonces from both sides), and
 * a ticket cannot be swapped mid-handshake. Why the server proves too: a client must not send
 * data (or trust replies) to an impostor OSD or monitor.
 *
 * Pure state machines: the messenger session feeds payloads in and writes what comes out.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Reader, Writer } from '../common/codec.js';
import { ClusterError, clusterErrorFromWire, clusterErrorToWire } from '../common/errors.js';
import type { Rng } from '../env/env.js';
import { NO_CAPS } from './caps.js';
import type { Caps } from './caps.js';
import type { KeyringEntry } from './keyring.js';
import { openTicket } from './ticket.js';

/** Messenger protocol version of a MSG_HELLO without a client instance. */
export const AUTH_PROTOCOL_VERSION = 1;
/** Messenger protocol version of a MSG_HELLO that carries a client instance nonce. */
export const AUTH_PROTOCOL_INSTANCE = 2;
/** A client instance nonce: 1..32 ASCII letters and digits (the part after '/' of a clientId). */
export const INSTANCE_NONCE_RE = /^[A-Za-z0-9]{1,32}$/;
const NONCE_BYTES = 32;
const PROOF_BYTES = 32;
const METHOD_CODE = { none: 0, key: 1, ticket: 2 } as const;
const enc = new TextEncoder();

/** How a client authenticates: not at all, with its own key (to the monitor), or a ticket. */
export type AuthMethod = keyof typeof METHOD_CODE;

/** What a connecting side presents. Read at each (re)connect, so tickets can be renewed. */
export type ClientCredentials =
  | { method: 'none' }
  | { method: 'key'; key: Uint8Array }
  | { method: 'ticket'; ticket: Uint8Array; sessionKey: Uint8Array };

/** Who the peer is once the handshake completed. */
export interface AuthenticatedPeer {
  entity: string;
  method: AuthMethod;
  caps: Caps;
  /** Wall-clock expiry of the credentials (ticket sessions), else null. */
  expiresWallMs: number | null;
  /**
   * The client instance nonce the peer presented in MSG_HELLO v2 (so its client ops must name
   * `entity/instance`), else null (protocol 1, or the server side of an outbound session).
   */
  instance: string | null;
}

/** Per-direction frame signing keys. */
export interface SessionKeys {
  tx: Uint8Array;
  rx: Uint8Array;
}

/** Decoded MSG_HELLO. */
export interface Hello {
  protocol: number;
  entity: string;
  method: AuthMethod;
  clientNonce: Uint8Array;
  ticket: Uint8Array;
  /** Client instance nonce (protocol 2), '' in protocol 1. */
  instance: string;
}

/**
 * The server's rules. `resolve` returns the key `K` the client must prove, and who the peer
 * will be; an error rejects the session with its code.
 */
export interface AuthServerPolicy {
  allowUnauthenticated: boolean;
  resolve(hello: Readonly<Hello>, nowWallMs: number): { key: Uint8Array; peer: AuthenticatedPeer } | ClusterError;
}

function authError(message: string, reason: string): ClusterError {
  return new ClusterError('CLU_ERR_AUTH', message, { details: { reason } });
}

/**
 * The standard policy: method `key` checks the entity's key from `lookupKey` (the monitor's
 * keyring); method `ticket` opens the ticket with the OSD service secret (OSDs).
 */
export function authPolicy(o: {
  allowUnauthenticated?: boolean;
  lookupKey?: (entity: string) => KeyringEntry | undefined;
  serviceSecret?: () => Uint8Array | undefined;
}): AuthServerPolicy {
  return {
    allowUnauthenticated: o.allowUnauthenticated ?? false,
    resolve(hello, nowWallMs) {
      if (hello.method === 'key' && o.lookupKey !== undefined) {
        const entry = o.lookupKey(hello.entity);
        if (entry === undefined) return authError('authentication failed', 'unknown-entity');
        return { key: entry.key, peer: { entity: entry.entity, method: 'key', caps: entry.caps, expiresWallMs: null, instance: null } };
      }
      const secret = hello.method === 'ticket' ? o.serviceSecret?.() : undefined;
      if (secret === undefined) return authError(`auth method ${hello.method} not accepted here`, 'method');
      const body = openTicket(secret, hello.ticket, nowWallMs);
      if (body instanceof ClusterError) return body;
      if (body.entity !== hello.entity) return authError('ticket belongs to another entity', 'ticket-entity');
      return { key: body.sessionKey, peer: { entity: body.entity, method: 'ticket', caps: body.caps, expiresWallMs: body.expiresMs, instance: null } };
    },
  };
}

/** Encodes MSG_HELLO (protocol 1, or 2 with the instance appended). */
export function encodeHello(h: Hello): Uint8Array {
  const w = new Writer(96 + h.ticket.length + h.instance.length).u16(h.protocol).str(h.entity).u8(METHOD_CODE[h.method])
    .bytes(h.clientNonce).bytes(h.ticket);
  if (h.protocol >= AUTH_PROTOCOL_INSTANCE) w.str(h.instance);
  return w.finish();
}

/** Decodes MSG_HELLO of protocol 1 or 2; throws `CodecError`. */
export function decodeHello(payload: Uint8Array): Hello | ClusterError {
  const r = new Reader(payload);
  const protocol = r.u16();
  if (protocol !== AUTH_PROTOCOL_VERSION && protocol !== AUTH_PROTOCOL_INSTANCE) return new ClusterError('CLU_ERR_UNSUPPORTED', `protocol ${protocol}`);
  const entity = r.str(128);
  const code = r.u8();
  const clientNonce = r.bytes(NONCE_BYTES);
  const ticket = r.bytes(4096);
  const instance = protocol >= AUTH_PROTOCOL_INSTANCE ? r.str(64) : '';
  r.end();
  const method = (Object.keys(METHOD_CODE) as AuthMethod[]).find((m) => METHOD_CODE[m] === code);
  if (method === undefined) return authError(`unknown auth method ${code}`, 'method');
  if (clientNonce.length !== NONCE_BYTES) return authError('bad client nonce', 'nonce');
  if (protocol >= AUTH_PROTOCOL_INSTANCE && !INSTANCE_NONCE_RE.test(instance)) return authError(`bad client instance nonce '${instance}'`, 'instance');
  return { protocol, entity, method, clientNonce, ticket, instance };
}

/** Encodes MSG_AUTH_REJECT (also used for error replies): u16 wire code, str message. */
export function encodeReject(err: ClusterError): Uint8Array {
  const w = new Writer(64).u16(clusterErrorToWire(err.code)).str(err.message.slice(0, 512));
  // The stable reason (e.g. `instance-mismatch`, `blocklisted`), so the peer can act on it
  // without parsing the message. Appended: older decoders stop after the message.
  const reason = err.details?.['reason'];
  if (typeof reason === 'string' && reason.length > 0) w.str(reason.slice(0, 64));
  return w.finish();
}

/**
 * Decodes an error payload written by `encodeReject`; unknown codes map to CLU_ERR_AUTH. The
 * result's `details` carry `remote: true` and the sender's `reason` when it sent one.
 */
export function decodeReject(payload: Uint8Array, fallback: ClusterError['code'] = 'CLU_ERR_AUTH'): ClusterError {
  try {
    const r = new Reader(payload);
    const code = clusterErrorFromWire(r.u16()) ?? fallback;
    const message = r.str(1024);
    const reason = r.remaining > 0 ? r.str(64) : '';
    return new ClusterError(code, message, { details: reason === '' ? { remote: true } : { remote: true, reason } });
  } catch {
    return new ClusterError(fallback, 'malformed error payload', { details: { remote: true } });
  }
}

function instanceOf(hello: Readonly<Hello>): string | null {
  return hello.protocol >= AUTH_PROTOCOL_INSTANCE ? hello.instance : null;
}

function transcript(method: AuthMethod, client: string, server: string, nc: Uint8Array, ns: Uint8Array, ticket: Uint8Array, instance: string): Uint8Array {
  const ticketHash = createHash('sha256').update(ticket).digest();
  const w = new Writer(256).raw(enc.encode(instance === '' ? 'strata-auth-v1' : 'strata-auth-v2')).u8(METHOD_CODE[method]).str(client).str(server)
    .bytes(nc).bytes(ns).bytes(ticketHash);
  if (instance !== '') w.str(instance);
  return w.finish();
}

function mac(key: Uint8Array, label: string, t: Uint8Array): Uint8Array {
  return createHmac('sha256', key).update(label).update(t).digest();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function readProof(payload: Uint8Array): Uint8Array {
  const r = new Reader(payload);
  const proof = r.bytes(PROOF_BYTES);
  r.end();
  return proof;
}

/** Connecting side of the handshake. */
export class ClientHandshake {
  private readonly nonce: Uint8Array;
  private t: Uint8Array | null = null;
  private serverEntity = '';

  /** `instance`: this client instance's nonce (sent as protocol 2), '' for none (protocol 1). */
  constructor(private readonly entity: string, private readonly creds: ClientCredentials, rng: Rng, private readonly instance = '') {
    if (instance !== '' && !INSTANCE_NONCE_RE.test(instance)) throw new Error(`bad client instance nonce '${instance}'`);
    this.nonce = rng.bytes(NONCE_BYTES);
  }

  /** The MSG_HELLO payload. */
  hello(): Uint8Array {
    const ticket = this.creds.method === 'ticket' ? this.creds.ticket : new Uint8Array(0);
    const protocol = this.instance === '' ? AUTH_PROTOCOL_VERSION : AUTH_PROTOCOL_INSTANCE;
    return encodeHello({ protocol, entity: this.entity, method: this.creds.method, clientNonce: this.nonce, ticket, instance: this.instance });
  }

  /**
   * Handles MSG_HELLO_REPLY: returns the MSG_AUTH_PROOF payload, or `accepted` when the server
   * took an unauthenticated session (only valid when we asked for method none).
   */
  onHelloReply(payload: Uint8Array): { proof: Uint8Array } | { accepted: true; serverEntity: string } | ClusterError {
    const r = new Reader(payload);
    this.serverEntity = r.str(128);
    const status = r.u8();
    const serverNonce = r.bytes(NONCE_BYTES);
    r.end();
    if (this.creds.method === 'none') {
      return status === 1 ? { accepted: true, serverEntity: this.serverEntity } : authError('server requires authentication', 'auth-required');
    }
    if (status !== 0 || serverNonce.length !== NONCE_BYTES) return authError('server skipped authentication', 'downgrade');
    const ticket = this.creds.method === 'ticket' ? this.creds.ticket : new Uint8Array(0);
    this.t = transcript(this.creds.method, this.entity, this.serverEntity, this.nonce, serverNonce, ticket, this.instance);
    return { proof: new Writer(40).bytes(mac(this.key(), 'client-proof', this.t)).finish() };
  }

  /** Handles MSG_AUTH_DONE: checks the server's proof and derives the signing keys. */
  onAuthDone(payload: Uint8Array): { keys: SessionKeys; serverEntity: string } | ClusterError {
    if (this.t === null) return authError('MSG_AUTH_DONE before MSG_HELLO_REPLY', 'sequence');
    const key = this.key();
    if (!sameBytes(readProof(payload), mac(key, 'server-proof', this.t))) return authError('server failed to prove the key', 'server-proof');
    return { keys: { tx: mac(key, 'c2s-sign', this.t), rx: mac(key, 's2c-sign', this.t) }, serverEntity: this.serverEntity };
  }

  private key(): Uint8Array {
    if (this.creds.method === 'key') return this.creds.key;
    if (this.creds.method === 'ticket') return this.creds.sessionKey;
    throw new Error('no key for method none');
  }
}

/** Accepting side of the handshake. */
export class ServerHandshake {
  private readonly nonce: Uint8Array;
  private pending: { key: Uint8Array; peer: AuthenticatedPeer; t: Uint8Array } | null = null;

  constructor(private readonly entity: string, private readonly policy: AuthServerPolicy, rng: Rng) {
    this.nonce = rng.bytes(NONCE_BYTES);
  }

  /**
   * Handles MSG_HELLO: returns the MSG_HELLO_REPLY payload, plus `peer` when the session is
   * accepted unauthenticated (then no proof follows).
   */
  onHello(payload: Uint8Array, nowWallMs: number): { reply: Uint8Array; peer?: AuthenticatedPeer } | ClusterError {
    const hello = decodeHello(payload);
    if (hello instanceof ClusterError) return hello;
    if (hello.method === 'none') {
      if (!this.policy.allowUnauthenticated) return authError('authentication required', 'auth-required');
      const peer: AuthenticatedPeer = { entity: hello.entity, method: 'none', caps: NO_CAPS, expiresWallMs: null, instance: instanceOf(hello) };
      return { reply: this.replyPayload(1), peer };
    }
    const resolved = this.policy.resolve(hello, nowWallMs);
    if (resolved instanceof ClusterError) return resolved;
    const t = transcript(hello.method, hello.entity, this.entity, hello.clientNonce, this.nonce, hello.ticket, hello.instance);
    this.pending = { key: resolved.key, peer: { ...resolved.peer, instance: instanceOf(hello) }, t };
    return { reply: this.replyPayload(0) };
  }

  /** Handles MSG_AUTH_PROOF: verifies it and returns MSG_AUTH_DONE plus the signing keys. */
  onProof(payload: Uint8Array): { reply: Uint8Array; peer: AuthenticatedPeer; keys: SessionKeys } | ClusterError {
    const p = this.pending;
    if (p === null) return authError('MSG_AUTH_PROOF before MSG_HELLO', 'sequence');
    if (!sameBytes(readProof(payload), mac(p.key, 'client-proof', p.t))) return authError('authentication failed', 'client-proof');
    const reply = new Writer(40).bytes(mac(p.key, 'server-proof', p.t)).finish();
    return { reply, peer: p.peer, keys: { tx: mac(p.key, 's2c-sign', p.t), rx: mac(p.key, 'c2s-sign', p.t) } };
  }

  private replyPayload(status: number): Uint8Array {
    return new Writer(80).str(this.entity).u8(status).bytes(this.nonce).finish();
  }
}
