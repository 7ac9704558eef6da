/**
 * The per-process messenger: this daemon's identity, its listener, its outbound sessions
 * (one per peer address) and the dispatch table by message type (docs/cluster-protocol.md).
 *
 * Typical wiring:
 * ```ts
 * // OSD: accept only ticket-authenticated peers, verify tickets with the service secret.
 * const msgr = new Messenger({ env, entity: 'osd.3',
 *   auth: authPolicy({ serviceSecret: () => osdServiceSecret }) });
 * msgr.handle(MsgType.MSG_OSD_OP, (req, session) => {
 *   if (!capsAllow(session.peer!.caps, { pool, objectName, write: true })) {
 *     session.replyError(req, new ClusterError('CLU_ERR_PERM', 'caps deny write')); return;
 *   }
 *   …; session.reply(req, { type: req.type, payload });
 * });
 * msgr.listen('0.0.0.0', 6800, (err, port) => { … });
 *
 * // Client: connect with the ticket obtained from the monitor.
 * const s = clientMsgr.connect({ host, port }, { credentials: () => ({ method: 'ticket', ticket, sessionKey }) });
 * s.request({ type: MsgType.MSG_OSD_OP, payload, data: [guestView] }, { timeoutMs: 5000 }, (err, reply) => { … });
 * ```
 * Handlers run to completion on the receive path; they must not block. A request whose type
 * has no handler is answered with `CLU_ERR_UNSUPPORTED`; a send without a handler is dropped
 * with a debug log line.
 */
import { EventEmitter } from 'eventemitter3';
import type { Logger } from 'pino';
import { ClusterError } from '../common/errors.js';
import type { Env } from '../env/env.js';
import type { NetServer, NetSocket } from '../env/net.js';
import { authPolicy } from '../auth/handshake.js';
import type { AuthServerPolicy, ClientCredentials } from '../auth/handshake.js';
import { DEFAULT_FRAME_LIMITS, FRAME_F_REQUEST } from './frame.js';
import { Session } from './session.js';
import type { BackoffOptions, InboundMessage, SessionHost, SessionLimits } from './session.js';
import { msgTypeName } from './types.js';

/** Handler for one message type. `session.peer` says who sent it (and its caps). */
export type MessageHandler = (msg: InboundMessage, session: Session) => void;

/**
 * Defaults: 64 MiB in flight per session, 10 s handshake, 50 ms → 5 s backoff, forever.
 * Keepalive: a ping after 1 s of silence, reset after 10 s of silence. Why 10 s: well above the
 * OSD heartbeat grace (3 s) and the monitor's beacon grace (3 s), so a hung or dead OSD is marked
 * down by failure detection, and clients move to a new primary on the next map, before any
 * messenger reset; the keepalive reset only catches what they cannot see (a dead monitor, idle
 * client sessions), far sooner than TCP's retransmission timeout (docs/cluster-protocol.md §6).
 */
export const DEFAULT_SESSION_LIMITS: Readonly<SessionLimits> = {
  maxInflightBytes: 64 * 1024 * 1024,
  handshakeTimeoutMs: 10_000,
  frame: DEFAULT_FRAME_LIMITS,
  keepaliveIntervalMs: 1000,
  keepaliveTimeoutMs: 10_000,
};
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = { initialMs: 50, maxMs: 5000, maxAttempts: Infinity };

/** Options of a Messenger. */
export interface MessengerOptions {
  env: Env;
  /** Our entity name, sent in every handshake: `mon.`, `osd.3`, `client.vm1`. */
  entity: string;
  /** Policy for accepted sessions. Default: unauthenticated sessions allowed (tests, dev). */
  auth?: AuthServerPolicy;
  /** Default credentials of outbound sessions. Default: method none. */
  credentials?: () => ClientCredentials;
  limits?: Partial<SessionLimits>;
  backoff?: Partial<BackoffOptions>;
}

/** Events of a Messenger (control plane). */
export interface MessengerEvents {
  /** An inbound session completed its handshake. */
  accepted: (session: Session) => void;
  /** Any session (inbound or outbound) ended for good. */
  sessionClosed: (session: Session) => void;
}

/** A daemon's messenger. */
export class Messenger extends EventEmitter<MessengerEvents> implements SessionHost {
  private readonly log: Logger;
  private readonly handlers = new Map<number, MessageHandler>();
  private readonly outbound = new Map<string, Session>();
  private readonly inbound = new Set<Session>();
  private readonly limits: SessionLimits;
  private readonly backoff: BackoffOptions;
  private server: NetServer | null = null;
  private shutDown = false;

  constructor(private readonly opts: MessengerOptions) {
    super();
    this.log = opts.env.log.child({ component: 'msg', entity: opts.entity });
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...opts.limits };
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  }

  /** Our entity name. */
  get entity(): string { return this.opts.entity; }

  /** Registers the handler of a message type (one per type; replacing one is a bug). */
  handle(type: number, handler: MessageHandler): void {
    if (this.handlers.has(type)) throw new Error(`handler for ${msgTypeName(type)} already registered`);
    this.handlers.set(type, handler);
  }

  /** Listens for peers; `cb` receives the bound port. */
  listen(host: string, port: number, cb: (err: Error | null, port?: number) => void): void {
    this.opts.env.net.listen(host, port, (socket) => this.accept(socket), (err, server) => {
      if (err !== null || server === undefined) { cb(err ?? new Error('listen failed')); return; }
      this.server = server;
      this.log.info({ host, port: server.port }, 'messenger listening');
      cb(null, server.port);
    });
  }

  /**
   * Returns the outbound session to `host:port`, creating (and starting) it if needed. The
   * session connects in the background; requests issued meanwhile are queued.
   */
  connect(addr: { host: string; port: number }, opts: { credentials?: () => ClientCredentials; backoff?: Partial<BackoffOptions>; instance?: string } = {}): Session {
    // Why the instance is part of the key: a session is bound to one client instance (the OSD
    // checks every op's reqId against it), so two instances never share one.
    const key = opts.instance === undefined ? `${addr.host}:${addr.port}` : `${addr.host}:${addr.port}/${opts.instance}`;
    const existing = this.outbound.get(key);
    if (existing !== undefined && existing.state !== 'closed') return existing;
    if (this.shutDown) throw new Error('messenger is shut down');
    const credentials = opts.credentials ?? this.opts.credentials ?? ((): ClientCredentials => ({ method: 'none' }));
    const session = new Session({
      env: this.opts.env,
      log: this.log.child({ session: key, dir: 'out' }),
      localEntity: this.opts.entity,
      host: this,
      limits: this.limits,
      outbound: {
        host: addr.host, port: addr.port, backoff: opts.backoff === undefined ? this.backoff : { ...this.backoff, ...opts.backoff }, credentials,
        ...(opts.instance === undefined ? {} : { instance: opts.instance }),
      },
    });
    this.outbound.set(key, session);
    session.start();
    return session;
  }

  /** Sessions currently open (inbound and outbound). */
  sessions(): Session[] {
    return [...this.outbound.values(), ...this.inbound];
  }

  /** Stops listening and closes every session (outstanding requests fail CLU_ERR_CANCELLED). */
  shutdown(): void {
    this.shutDown = true;
    this.server?.close();
    this.server = null;
    for (const s of this.sessions()) s.close();
  }

  /** @internal SessionHost: routes a received request or send to its handler. */
  dispatch(msg: InboundMessage, session: Session): void {
    const handler = this.handlers.get(msg.type);
    if (handler !== undefined) { handler(msg, session); return; }
    if ((msg.flags & FRAME_F_REQUEST) !== 0) {
      session.replyError(msg, new ClusterError('CLU_ERR_UNSUPPORTED', `no handler for ${msgTypeName(msg.type)}`));
    } else {
      this.log.debug({ type: msgTypeName(msg.type), peer: session.peer?.entity }, 'message without handler dropped');
    }
  }

  /** @internal SessionHost: forgets a closed session. */
  sessionClosed(session: Session): void {
    this.inbound.delete(session);
    for (const [key, s] of this.outbound) if (s === session) this.outbound.delete(key);
    this.emit('sessionClosed', session);
  }

  private accept(socket: NetSocket): void {
    if (this.shutDown) { socket.destroy(); return; }
    const session = new Session({
      env: this.opts.env,
      log: this.log.child({ session: socket.remoteAddress, dir: 'in' }),
      localEntity: this.opts.entity,
      host: this,
      limits: this.limits,
      inbound: { socket, policy: this.opts.auth ?? authPolicy({ allowUnauthenticated: true }) },
    });
    this.inbound.add(session);
    session.once('ready', () => this.emit('accepted', session));
    session.start();
  }
}
