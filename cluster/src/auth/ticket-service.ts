/**
 * The wire side of ticket issuance (docs/cluster-protocol.md §4), ready for the monitor and
 * the client to wire in:
 *
 * - `registerTicketService(msgr, …)` on the monitor answers `MSG_AUTH_GET_TICKET` on sessions
 *   authenticated with method `key` (the entity proved its own key; its caps come from the
 *   monitor's keyring), with a `TicketGrant` for the OSD service.
 * - `fetchTicket(session, …)` on the client (or an OSD, which needs tickets to talk to peer
 *   OSDs) requests a grant and opens it with its own key.
 *
 * Tickets are only handed out over an authenticated (signed) session: an unauthenticated
 * request gets `CLU_ERR_AUTH`.
 */
import { CodecError } from '../common/codec.js';
import { ClusterError } from '../common/errors.js';
import type { Env } from '../env/env.js';
import type { Messenger } from '../msg/messenger.js';
import type { Session } from '../msg/session.js';
import { MsgType } from '../msg/types.js';
import type { KeyringEntry } from './keyring.js';
import {
  acceptTicketGrant, decodeTicketGrant, decodeTicketRequest, encodeTicketGrant, encodeTicketRequest, issueTicket,
} from './ticket.js';
import type { TicketCredentials } from './ticket.js';

/** The only service tickets exist for today. */
export const OSD_SERVICE = 'osd';

/** Monitor side options. */
export interface TicketServiceOptions {
  env: Env;
  lookupKey: (entity: string) => KeyringEntry | undefined;
  serviceSecret: () => Uint8Array | undefined;
  ttlMs?: number;
}

/** Registers the `MSG_AUTH_GET_TICKET` handler on the monitor's messenger. */
export function registerTicketService(msgr: Messenger, o: TicketServiceOptions): void {
  msgr.handle(MsgType.MSG_AUTH_GET_TICKET, (req, session) => {
    const peer = session.peer;
    if (peer === null || peer.method !== 'key') {
      session.replyError(req, new ClusterError('CLU_ERR_AUTH', 'tickets require a key-authenticated session'));
      return;
    }
    let service: string;
    try {
      service = decodeTicketRequest(req.payload);
    } catch (err) {
      session.replyError(req, new ClusterError('CLU_ERR_DECODE', 'bad ticket request', { cause: err }));
      return;
    }
    const entry = o.lookupKey(peer.entity);
    const secret = o.serviceSecret();
    if (service !== OSD_SERVICE || entry === undefined || secret === undefined) {
      session.replyError(req, new ClusterError('CLU_ERR_NOT_FOUND', `no ticket for service "${service}"`));
      return;
    }
    const grant = issueTicket({
      serviceSecret: secret, clientKey: entry.key, entity: entry.entity, caps: entry.caps,
      nowWallMs: o.env.wallMs(), rng: o.env.rng, ...(o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs }),
    });
    o.env.log.debug({ entity: entry.entity, service }, 'ticket issued');
    session.reply(req, { type: req.type, payload: encodeTicketGrant(grant) });
  });
}

/** Client side: asks the monitor session for an OSD ticket and opens it with `clientKey`. */
export function fetchTicket(
  session: Session,
  o: { entity: string; clientKey: Uint8Array; timeoutMs: number },
  cb: (err: ClusterError | null, creds?: TicketCredentials) => void,
): void {
  session.request({ type: MsgType.MSG_AUTH_GET_TICKET, payload: encodeTicketRequest(OSD_SERVICE) }, { timeoutMs: o.timeoutMs }, (err, reply) => {
    if (err !== null) { cb(err); return; }
    let creds: TicketCredentials | ClusterError;
    try {
      creds = acceptTicketGrant(o.clientKey, o.entity, decodeTicketGrant(reply!.payload));
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      creds = new ClusterError('CLU_ERR_DECODE', 'bad ticket grant', { cause: e });
    }
    if (creds instanceof ClusterError) cb(creds);
    else cb(null, creds);
  });
}
