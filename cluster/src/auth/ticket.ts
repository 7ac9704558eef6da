/**
 * Service tickets (cephx model, docs/cluster-protocol.md §4). After a client authenticated to
 * the monitor with its own key, the monitor issues a *grant* for the OSD service:
 *
 * - `ticket`: AES-256-GCM sealed with the OSD service secret (`service.osd`), holding
 *   `{ entity, caps, sessionKey, issuedMs, expiresMs }`. Opaque to the client; any OSD opens
 *   it with the service secret, without contacting the monitor.
 * - `sealedSessionKey`: the same session key (and expiry) sealed with the *client's* key, so only
 *   the holder of that key can use the ticket.
 *
 * Sealed box layout (`seal`/`open`): `u8 version=1 | iv[12] | tag[16] | ciphertext`, with an
 * AAD naming the purpose so a box cannot be replayed as another kind of box.
 *
 * Times are *wall-clock* ms (`env.wallMs()`), because a ticket crosses processes whose
 * monotonic clocks share no origin; clock skew between hosts must stay well under the ticket
 * lifetime (default 1 h). IVs come from `env.rng`, so simulations are reproducible; with 96-bit
 * random IVs, GCM's birthday bound is far above the number of tickets a key ever seals.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { CodecError, Reader, Writer } from '../common/codec.js';
import { ClusterError } from '../common/errors.js';
import type { Rng } from '../env/env.js';
import { decodeCaps, encodeCaps } from './caps.js';
import type { Caps } from './caps.js';
import { KEY_BYTES } from './keyring.js';

const BOX_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const AAD_TICKET = new TextEncoder().encode('strata-ticket-v1');
const AAD_SESSION_KEY = new TextEncoder().encode('strata-session-key-v1');

/** Default ticket lifetime. */
export const DEFAULT_TICKET_TTL_MS = 60 * 60 * 1000;

/** The sealed contents of a ticket. */
export interface TicketBody {
  entity: string;
  caps: Caps;
  sessionKey: Uint8Array;
  issuedMs: number;
  expiresMs: number;
}

/** What the monitor sends the client in reply to `MSG_AUTH_GET_TICKET`. */
export interface TicketGrant {
  ticket: Uint8Array;
  sealedSessionKey: Uint8Array;
}

/** What the client keeps after opening a grant; `ticket` is presented to OSDs as is. */
export interface TicketCredentials {
  ticket: Uint8Array;
  sessionKey: Uint8Array;
  expiresMs: number;
}

function authError(message: string, reason: string): ClusterError {
  return new ClusterError('CLU_ERR_AUTH', message, { details: { reason } });
}

/** AES-256-GCM encrypts `plaintext` under `key`, bound to `aad`. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, rng: Rng): Uint8Array {
  if (key.length !== KEY_BYTES) throw new RangeError('seal key must be 32 bytes');
  const iv = rng.bytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const out = new Uint8Array(1 + IV_BYTES + TAG_BYTES + body.length);
  out[0] = BOX_VERSION;
  out.set(iv, 1);
  out.set(cipher.getAuthTag(), 1 + IV_BYTES);
  out.set(body, 1 + IV_BYTES + TAG_BYTES);
  return out;
}

/** Inverse of `seal`; a wrong key, wrong AAD or any tampering yields `CLU_ERR_AUTH`. */
export function open(key: Uint8Array, box: Uint8Array, aad: Uint8Array): Uint8Array | ClusterError {
  if (box.length < 1 + IV_BYTES + TAG_BYTES || box[0] !== BOX_VERSION) return authError('malformed sealed box', 'box-format');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, box.subarray(1, 1 + IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(box.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
    const plain = Buffer.concat([decipher.update(box.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
    return new Uint8Array(plain.buffer, plain.byteOffset, plain.length);
  } catch {
    return authError('sealed box failed authentication', 'box-auth');
  }
}

function encodeBody(b: TicketBody): Uint8Array {
  const w = new Writer(128).str(b.entity);
  encodeCaps(w, b.caps);
  return w.bytes(b.sessionKey).u64(b.issuedMs).u64(b.expiresMs).finish();
}

function decodeBody(plain: Uint8Array): TicketBody {
  const r = new Reader(plain);
  const entity = r.str(128);
  const caps = decodeCaps(r);
  const sessionKey = r.bytes(KEY_BYTES);
  const issuedMs = r.u64();
  const expiresMs = r.u64();
  r.end();
  if (sessionKey.length !== KEY_BYTES) throw new CodecError('bad session key length');
  return { entity, caps, sessionKey, issuedMs, expiresMs };
}

/** Options of `issueTicket`; the monitor calls it after authenticating `entity`. */
export interface IssueTicketOptions {
  serviceSecret: Uint8Array;
  clientKey: Uint8Array;
  entity: string;
  caps: Caps;
  nowWallMs: number;
  ttlMs?: number;
  rng: Rng;
}

/** Issues a fresh session key and seals it twice (for the service and for the client). */
export function issueTicket(o: IssueTicketOptions): TicketGrant {
  const sessionKey = o.rng.bytes(KEY_BYTES);
  const expiresMs = o.nowWallMs + (o.ttlMs ?? DEFAULT_TICKET_TTL_MS);
  const body: TicketBody = { entity: o.entity, caps: o.caps, sessionKey, issuedMs: o.nowWallMs, expiresMs };
  const ticket = seal(o.serviceSecret, encodeBody(body), AAD_TICKET, o.rng);
  const forClient = new Writer(64).bytes(sessionKey).u64(expiresMs).str(o.entity).finish();
  const sealedSessionKey = seal(o.clientKey, forClient, AAD_SESSION_KEY, o.rng);
  return { ticket, sealedSessionKey };
}

/** Client side: opens the grant with its own key. */
export function acceptTicketGrant(clientKey: Uint8Array, entity: string, grant: TicketGrant): TicketCredentials | ClusterError {
  const plain = open(clientKey, grant.sealedSessionKey, AAD_SESSION_KEY);
  if (plain instanceof ClusterError) return plain;
  try {
    const r = new Reader(plain);
    const sessionKey = r.bytes(KEY_BYTES);
    const expiresMs = r.u64();
    const forEntity = r.str(128);
    r.end();
    if (sessionKey.length !== KEY_BYTES || forEntity !== entity) return authError('grant is not for this entity', 'grant-entity');
    return { ticket: grant.ticket, sessionKey, expiresMs };
  } catch (err) {
    return authError(`malformed grant: ${(err as Error).message}`, 'grant-format');
  }
}

/**
 * Service side (OSD): opens and checks a ticket. Expired (`nowWallMs ≥ expiresMs`), forged or
 * malformed tickets yield `CLU_ERR_AUTH`.
 */
export function openTicket(serviceSecret: Uint8Array, ticket: Uint8Array, nowWallMs: number): TicketBody | ClusterError {
  const plain = open(serviceSecret, ticket, AAD_TICKET);
  if (plain instanceof ClusterError) return plain;
  let body: TicketBody;
  try {
    body = decodeBody(plain);
  } catch (err) {
    return authError(`malformed ticket: ${(err as Error).message}`, 'ticket-format');
  }
  if (nowWallMs >= body.expiresMs) return authError(`ticket of ${body.entity} expired`, 'ticket-expired');
  return body;
}

/** Payload of `MSG_AUTH_GET_TICKET` (request): the service wanted. */
export function encodeTicketRequest(service: string): Uint8Array {
  return new Writer(16).str(service).finish();
}

/** Inverse of `encodeTicketRequest`; throws `CodecError`. */
export function decodeTicketRequest(payload: Uint8Array): string {
  const r = new Reader(payload);
  const service = r.str(32);
  r.end();
  return service;
}

/** Payload of the `MSG_AUTH_GET_TICKET` reply. */
export function encodeTicketGrant(g: TicketGrant): Uint8Array {
  return new Writer(g.ticket.length + g.sealedSessionKey.length + 16).bytes(g.ticket).bytes(g.sealedSessionKey).finish();
}

/** Inverse of `encodeTicketGrant`; throws `CodecError`. */
export function decodeTicketGrant(payload: Uint8Array): TicketGrant {
  const r = new Reader(payload);
  const ticket = r.bytes(4096);
  const sealedSessionKey = r.bytes(4096);
  r.end();
  return { ticket, sealedSessionKey };
}
