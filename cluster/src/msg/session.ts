/**
 * One messenger session with one peer: framing, the optional auth phase, request/reply
 * matching by tid, timeouts, the in-flight window and, for outbound sessions, reconnection with
 * bounded exponential backoff. Created by `Messenger`; driven entirely by `Env` callbacks (no
 * Promises, no await), so the same code runs over `RealNet` and the simulator.
 *
 * ```
 *   outbound:  connecting ──ok──► handshaking ──auth ok──► ready
 *                  ▲  │ refused/err      │ reject/timeout    │ socket closed / corrupt frame
 *                  │  ▼                  ▼                   ▼
 *                  └── backoff ◄─────────┴───────────────────┘   (close() from any state → closed)
 *   inbound:   handshaking ──► ready ──► closed   (the peer reconnects; a new Session is made)
 * ```
 *
 * Policies (docs/cluster-protocol.md §6):
 * - Ordering: requests and sends leave in the order issued and are dispatched in arrival order.
 *   Replies are sent ahead of queued requests. Why: if replies waited behind a full request
 *   window on both sides, each side would wait for the other's replies (distributed deadlock).
 * - Backpressure: `maxInflightBytes` bounds the bytes of requests on the wire awaiting a reply;
 *   more requests wait in the session queue (in order). `request`/`send` return false once
 *   queued + in-flight bytes exceed the bound: the caller should stop and wait for the
 *   `writable` event (emitted below half the bound). Past 4× the bound a request fails at once
 *   with `CLU_ERR_BUSY`. Replies are not counted: the peer's own window bounds them.
 * - Session reset (connection lost): requests already written fail with `CLU_ERR_CONN_CLOSED`
 *   (the peer may or may not have executed them: the owner decides whether to resend, as the
 *   Objecter does); requests and sends not yet written stay queued for the next connection, and
 *   fail only by their own timeout. An auth rejection fails everything with `CLU_ERR_AUTH`;
 *   `close()` fails everything with `CLU_ERR_CANCELLED`; exhausting `maxAttempts` fails
 *   everything with `CLU_ERR_UNAVAILABLE`.
 * - Timeouts fail loudly: `CLU_ERR_TIMEOUT` to the callback and a warn log line.
 * - Keepalive (Ceph msgr2's KEEPALIVE2 + `ms_connection_readtimeout`): a ready connection that
 *   has received no byte for `keepaliveIntervalMs` sends `MSG_PING` (again every interval while
 *   still silent); the peer's session answers `MSG_PONG` itself, never dispatching it. One that
 *   has received nothing at all for `keepaliveTimeoutMs` is presumed half-open (the peer died
 *   without an RST reaching us) and dropped with `CLU_ERR_TIMEOUT`, as `resetConnection` does.
 *   Anything received counts as liveness, so a busy connection sends no keepalives. One timer
 *   per connection, re-armed only when it fires (the receive path just records the time).
 */
import { EventEmitter } from 'eventemitter3';
import type { Logger } from 'pino';
import { ClusterError } from '../common/errors.js';
import type { Env, TimerHandle } from '../env/env.js';
import type { NetSocket } from '../env/net.js';
import { FrameSigner } from '../auth/frame-signer.js';
import { ClientHandshake, ServerHandshake, decodeReject, encodeReject } from '../auth/handshake.js';
import type { AuthenticatedPeer, AuthServerPolicy, ClientCredentials } from '../auth/handshake.js';
import { FRAME_F_ERROR, FRAME_F_REPLY, FRAME_F_REQUEST, FRAME_F_SIGNED, FrameDecoder, chunksLength, encodeFrame } from './frame.js';
import type { Frame, FrameLimits, ReplySink } from './frame.js';
import { MsgType, isSessionMsgType, msgTypeName } from './types.js';

/** What a caller sends: type, metadata payload, bulk data views (never copied), map epoch. */
export interface OutboundMessage {
  type: number;
  payload?: Uint8Array;
  data?: readonly Uint8Array[];
  epoch?: number;
}

/** A received message: the decoded frame (payload contiguous, data as chunk views). */
export type InboundMessage = Frame;

/** Callback of `request`. */
export type ReplyCallback = (err: ClusterError | null, reply?: InboundMessage) => void;

/** Per-session limits. */
export interface SessionLimits {
  maxInflightBytes: number;
  handshakeTimeoutMs: number;
  frame: FrameLimits;
  /** A ready connection silent (nothing received) this long sends `MSG_PING`; 0 disables keepalive. */
  keepaliveIntervalMs: number;
  /** A ready connection silent this long is dropped (`CLU_ERR_TIMEOUT`, reason `keepalive`). */
  keepaliveTimeoutMs: number;
}

/** Reconnect policy of outbound sessions. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Consecutive failed attempts before the session gives up (Infinity = never). */
  maxAttempts: number;
}

/** Events of a session (control plane, GUIDE §7). */
export interface SessionEvents {
  /** Handshake complete; `peer` says who is on the other end. */
  ready: (peer: AuthenticatedPeer) => void;
  /** The connection was lost (outbound sessions then reconnect). */
  reset: (err: ClusterError) => void;
  /** A connect attempt failed; `err.details.errno` is e.g. `ECONNREFUSED` (peer is down). */
  connectFailed: (err: ClusterError) => void;
  /** Queued + in-flight bytes fell below half the bound after a `false` return. */
  writable: () => void;
  /** Final: the session is gone (`err` null when closed by its owner). */
  closed: (err: ClusterError | null) => void;
}

/** What the owning Messenger provides. */
export interface SessionHost {
  dispatch(msg: InboundMessage, session: Session): void;
  sessionClosed(session: Session): void;
}

/** Construction options (used by `Messenger`). */
export interface SessionInit {
  env: Env;
  log: Logger;
  localEntity: string;
  host: SessionHost;
  limits: SessionLimits;
  /** `instance`: the client instance nonce presented in MSG_HELLO (protocol 2); see handshake.ts. */
  outbound?: { host: string; port: number; backoff: BackoffOptions; credentials: () => ClientCredentials; instance?: string };
  inbound?: { socket: NetSocket; policy: AuthServerPolicy };
}

/** Session states; see the diagram above. */
export type SessionState = 'connecting' | 'handshaking' | 'ready' | 'backoff' | 'closed';

interface OutItem {
  tid: number;
  msg: OutboundMessage;
  sizeBytes: number;
  cb: ReplyCallback | null; // null for a fire-and-forget send
  timer: TimerHandle | null;
  state: 'queued' | 'sent' | 'done';
  /** Where the reply's data goes (msg/frame.ts `ReplySink`); revoked when the item is done. */
  sink?: ReplySink;
}

interface Conn {
  socket: NetSocket;
  decoder: FrameDecoder;
  signer: FrameSigner | null;
  blocked: boolean;
  clientHs: ClientHandshake | null;
  /** The auth method this (outbound) connection presented. */
  method: AuthenticatedPeer['method'];
  serverHs: ServerHandshake | null;
  timer: TimerHandle | null; // Handshake timeout, then (ticket sessions) the expiry timer.
  /** Keepalive: its timer (armed while ready), when a byte last arrived, when we last pinged. */
  kaTimer: TimerHandle | null;
  lastRxMs: number;
  lastPingMs: number;
  pingTid: number;
}

const EMPTY = new Uint8Array(0);
const NO_DATA: readonly Uint8Array[] = [];
const MAX_TIMER_MS = 0x7fff_ffff;

function frameSize(msg: OutboundMessage): number {
  return 64 + (msg.payload?.length ?? 0) + (msg.data === undefined ? 0 : chunksLength(msg.data));
}

/** A session with one peer. */
export class Session extends EventEmitter<SessionEvents> {
  /** Who the peer is (set when `ready`; `entity` is the name it claimed or proved). */
  peer: AuthenticatedPeer | null = null;
  private stateValue: SessionState;
  private conn: Conn | null = null;
  private nextTid = 1;
  private readonly pending = new Map<number, OutItem>(); // Requests, queued or sent.
  private queue: OutItem[] = []; // Requests and sends not yet written, in order.
  private queueHead = 0;
  private readonly replyMsgs: { tid: number; flags: number; msg: OutboundMessage }[] = [];
  private queuedBytes = 0;
  private unackedBytes = 0;
  private wantWritable = false;
  private attempts = 0;
  private backoffTimer: TimerHandle | null = null;
  private pingsSent = 0;
  private pongsReceived = 0;

  constructor(private readonly init: SessionInit) {
    super();
    this.stateValue = init.outbound !== undefined ? 'connecting' : 'handshaking';
  }

  /** Current state. */
  get state(): SessionState { return this.stateValue; }
  /** True for sessions this side connected (they reconnect); false for accepted ones. */
  get isOutbound(): boolean { return this.init.outbound !== undefined; }
  /** "host:port" of the peer. */
  get remoteAddress(): string {
    const o = this.init.outbound;
    return o !== undefined ? `${o.host}:${o.port}` : this.init.inbound!.socket.remoteAddress;
  }
  /** Bytes queued plus bytes of requests awaiting replies (the backpressure measure). */
  get inflightBytes(): number { return this.queuedBytes + this.unackedBytes; }
  /** Keepalive counters over the session's life (all connections). */
  get keepaliveStats(): { pingsSent: number; pongsReceived: number } {
    return { pingsSent: this.pingsSent, pongsReceived: this.pongsReceived };
  }

  /** Starts the session (Messenger calls this once). */
  start(): void {
    if (this.init.inbound !== undefined) this.attach(this.init.inbound.socket);
    else this.connect();
  }

  /**
   * Sends a request and calls `cb` once with the reply, or with an error: `CLU_ERR_TIMEOUT`
   * after `timeoutMs`, `CLU_ERR_CONN_CLOSED` on a reset after it was written, `CLU_ERR_BUSY`
   * past the hard bound. Returns false when the caller should wait for `writable`.
   * `replySink`: the reply's data is written straight into its views (the reply frame's `data`
   * is then views of them); the session revokes it the moment the request is over.
   */
  request(msg: OutboundMessage, opts: { timeoutMs: number; replySink?: ReplySink }, cb: ReplyCallback): boolean {
    const sizeBytes = frameSize(msg);
    if (this.stateValue === 'closed' || this.inflightBytes + sizeBytes > 4 * this.init.limits.maxInflightBytes) {
      const err = this.stateValue === 'closed'
        ? new ClusterError('CLU_ERR_CANCELLED', 'session closed')
        : new ClusterError('CLU_ERR_BUSY', 'session in-flight bound exceeded', { details: { inflightBytes: this.inflightBytes } });
      this.init.env.setImmediate(() => cb(err));
      return false;
    }
    const item: OutItem = { tid: this.allocTid(), msg, sizeBytes, cb, timer: null, state: 'queued' };
    if (opts.replySink !== undefined) item.sink = opts.replySink;
    item.timer = this.init.env.setTimeout(() => this.onRequestTimeout(item, opts.timeoutMs), opts.timeoutMs);
    this.pending.set(item.tid, item);
    return this.enqueue(item);
  }

  /** Fire-and-forget send (ordered with requests). Returns false when over the bound. */
  send(msg: OutboundMessage): boolean {
    if (this.stateValue === 'closed') return false;
    return this.enqueue({ tid: this.allocTid(), msg, sizeBytes: frameSize(msg), cb: null, timer: null, state: 'queued' });
  }

  /** Replies to a request received on this session. Dropped if the connection was reset. */
  reply(req: InboundMessage, msg: OutboundMessage): void {
    this.queueReply(req, FRAME_F_REPLY, msg);
  }

  /** Replies with an error; the requester's callback receives a ClusterError with `err.code`. */
  replyError(req: InboundMessage, err: ClusterError): void {
    this.queueReply(req, FRAME_F_REPLY | FRAME_F_ERROR, { type: req.type, payload: encodeReject(err) });
  }

  /**
   * Drops the current connection as if it had failed, with `err` (written requests fail with
   * `CLU_ERR_CONN_CLOSED`, unsent ones stay queued); an outbound session then reconnects with
   * its backoff. For an owner whose own liveness check says the peer is gone while the socket
   * still looks open — half-open: the peer died while partitioned, so no RST ever arrives.
   * Returns false when there is no connection to drop (connecting, backoff, closed).
   */
  resetConnection(err: ClusterError): boolean {
    const conn = this.conn;
    if (conn === null || this.stateValue === 'closed') return false;
    this.dropConn(conn, err, 'session reset by owner');
    return true;
  }

  /** Closes the session for good; everything outstanding fails with `CLU_ERR_CANCELLED`. */
  close(): void {
    this.finish(null, new ClusterError('CLU_ERR_CANCELLED', 'session closed by owner'));
  }

  // ----- Outbound connection management. -----

  private connect(): void {
    const o = this.init.outbound!;
    this.stateValue = 'connecting';
    this.init.env.net.connect(o.host, o.port, (err, socket) => {
      if (this.stateValue === 'closed') { socket?.destroy(); return; }
      if (err !== null || socket === undefined) {
        const cErr = new ClusterError('CLU_ERR_UNAVAILABLE', `connect to ${o.host}:${o.port} failed: ${err?.code ?? err?.message}`, {
          cause: err, details: { errno: err?.code },
        });
        this.init.log.info({ errno: err?.code, attempt: this.attempts }, 'session connect failed');
        this.emit('connectFailed', cErr);
        this.scheduleReconnect(cErr);
        return;
      }
      this.attach(socket);
    });
  }

  private scheduleReconnect(err: ClusterError): void {
    if (this.stateValue === 'closed') return;
    const b = this.init.outbound!.backoff;
    this.attempts++;
    if (this.attempts >= b.maxAttempts) {
      this.finish(err, new ClusterError('CLU_ERR_UNAVAILABLE', `peer unreachable after ${this.attempts} attempts`, { cause: err }));
      return;
    }
    // Why jitter: many clients losing one OSD must not reconnect in lock-step.
    const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(this.attempts - 1, 30));
    const delayMs = Math.round(base / 2 + (this.init.env.rng.u32() / 0x1_0000_0000) * (base / 2));
    this.stateValue = 'backoff';
    this.backoffTimer = this.init.env.setTimeout(() => { this.backoffTimer = null; this.connect(); }, delayMs);
  }

  // ----- Connection lifecycle. -----

  private attach(socket: NetSocket): void {
    const conn: Conn = {
      socket, signer: null, blocked: false, clientHs: null, method: 'none', serverHs: null, timer: null,
      kaTimer: null, lastRxMs: 0, lastPingMs: 0, pingTid: 0,
      decoder: new FrameDecoder({
        onFrame: (f) => this.onFrame(conn, f),
        onError: (err) => this.dropConn(conn, err, 'frame rejected'),
        replySink: (tid) => {
          const item = this.conn === conn ? this.pending.get(tid) : undefined;
          return item !== undefined && item.state === 'sent' && item.sink !== undefined ? item.sink : null;
        },
      }, this.init.limits.frame),
    };
    this.conn = conn;
    this.stateValue = 'handshaking';
    socket.onData((chunk) => {
      if (this.conn !== conn) return;
      conn.lastRxMs = this.init.env.nowMs(); // Keepalive: any byte is liveness (a big frame too).
      conn.decoder.push(chunk);
    }, () => (this.conn === conn ? conn.decoder.readTarget() : null));
    socket.onDrain(() => { if (this.conn === conn) { conn.blocked = false; this.pump(); } });
    socket.onClose((err) => this.onSocketClose(conn, err));
    const hsMs = this.init.limits.handshakeTimeoutMs;
    conn.timer = this.init.env.setTimeout(() => {
      this.dropConn(conn, new ClusterError('CLU_ERR_TIMEOUT', `handshake not complete after ${hsMs} ms`), 'handshake timeout');
    }, hsMs);
    if (this.init.outbound !== undefined) {
      const creds = this.init.outbound.credentials();
      conn.method = creds.method;
      conn.clientHs = new ClientHandshake(this.init.localEntity, creds, this.init.env.rng, this.init.outbound.instance ?? '');
      this.writeRaw(conn, MsgType.MSG_HELLO, 0, 0, conn.clientHs.hello());
    } else {
      conn.serverHs = new ServerHandshake(this.init.localEntity, this.init.inbound!.policy, this.init.env.rng);
    }
  }

  private onSocketClose(conn: Conn, err: Error | undefined): void {
    if (this.conn !== conn) return;
    const truncated = conn.decoder.finish();
    if (truncated !== null) { this.dropConn(conn, truncated, 'frame rejected'); return; }
    const code = err === undefined ? 'peer closed' : `socket error ${(err as { code?: string }).code ?? err.message}`;
    this.dropConn(conn, new ClusterError('CLU_ERR_CONN_CLOSED', code, { cause: err }), 'session reset');
  }

  /**
   * Ends one connection: fails written requests, keeps unsent ones, and reconnects (outbound)
   * or finishes the session (inbound). `why` is the log phrase; `graceful` lets bytes already
   * written (a reject frame) reach the peer.
   */
  private dropConn(conn: Conn, err: ClusterError, why: string, graceful = false): void {
    if (this.conn !== conn) return;
    this.conn = null;
    if (conn.timer !== null) this.init.env.clearTimeout(conn.timer);
    if (conn.kaTimer !== null) { this.init.env.clearTimeout(conn.kaTimer); conn.kaTimer = null; }
    const level = err.code === 'CLU_ERR_CONN_CLOSED' ? 'info' : 'warn';
    this.init.log[level]({ err, peer: this.peer?.entity, remote: this.remoteAddress }, why);
    // Why destroy on errors: after a protocol violation nothing more may be sent or trusted.
    if (graceful || err.code === 'CLU_ERR_CONN_CLOSED') conn.socket.close();
    else conn.socket.destroy();
    this.replyMsgs.length = 0;
    this.unackedBytes = 0;
    const closedErr = err.code === 'CLU_ERR_CONN_CLOSED' ? err : new ClusterError('CLU_ERR_CONN_CLOSED', `session reset: ${err.message}`, { cause: err });
    for (const item of [...this.pending.values()]) if (item.state === 'sent') this.complete(item, closedErr);
    if (err.code === 'CLU_ERR_AUTH') this.failAll(err);
    this.emit('reset', err);
    if (this.init.outbound !== undefined) this.scheduleReconnect(err);
    else this.finish(err, closedErr);
  }

  private finish(err: ClusterError | null, failWith: ClusterError): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closed';
    if (this.backoffTimer !== null) { this.init.env.clearTimeout(this.backoffTimer); this.backoffTimer = null; }
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) {
      if (conn.timer !== null) this.init.env.clearTimeout(conn.timer);
      if (conn.kaTimer !== null) { this.init.env.clearTimeout(conn.kaTimer); conn.kaTimer = null; }
      conn.socket.close();
    }
    this.failAll(failWith);
    this.init.host.sessionClosed(this);
    this.emit('closed', err);
  }

  private failAll(err: ClusterError): void {
    for (const item of [...this.pending.values()]) this.complete(item, err);
    this.queue = [];
    this.queueHead = 0;
    this.queuedBytes = 0;
    this.replyMsgs.length = 0;
  }

  // ----- Receive path. -----

  private onFrame(conn: Conn, f: Frame): void {
    if (this.conn !== conn) return; // A callback closed this connection mid-batch.
    if (f.dataDiscarded === true) {
      // The reply's sink was revoked while its data arrived: the request is over and the data
      // gone, so there is nothing to verify or deliver; keep the signature sequence in step.
      conn.signer?.skip();
      const item = this.pending.get(f.tid);
      if (item !== undefined && item.state === 'sent') {
        this.unackedBytes -= item.sizeBytes;
        this.complete(item, new ClusterError('CLU_ERR_CANCELLED', 'reply data dropped: its destination was revoked'));
      }
      return;
    }
    if (conn.signer !== null && ((f.flags & FRAME_F_SIGNED) === 0 || !conn.signer.verify(f))) {
      this.dropConn(conn, new ClusterError('CLU_ERR_AUTH', 'frame signature mismatch', {
        details: { reason: 'bad-signature', type: f.type, tid: f.tid },
      }), 'frame rejected');
      return;
    }
    if (this.init.log.isLevelEnabled('trace')) {
      this.init.log.trace({ type: msgTypeName(f.type), tid: f.tid, flags: f.flags, dataLen: f.dataLen }, 'frame in');
    }
    if (isSessionMsgType(f.type)) { this.onSessionFrame(conn, f); return; }
    if (this.stateValue !== 'ready') {
      this.dropConn(conn, new ClusterError('CLU_ERR_AUTH', `${msgTypeName(f.type)} before handshake`), 'frame rejected');
      return;
    }
    if ((f.flags & FRAME_F_REPLY) !== 0) { this.onReply(f); return; }
    this.init.host.dispatch(f, this);
  }

  private onReply(f: Frame): void {
    const item = this.pending.get(f.tid);
    if (item === undefined || item.state !== 'sent') {
      this.init.log.debug({ tid: f.tid, type: msgTypeName(f.type) }, 'late or unknown reply dropped');
      return;
    }
    this.unackedBytes -= item.sizeBytes;
    if ((f.flags & FRAME_F_ERROR) !== 0) this.complete(item, decodeReject(f.payload, 'CLU_ERR_IO'));
    else this.complete(item, null, f);
    this.pump();
  }

  private onRequestTimeout(item: OutItem, timeoutMs: number): void {
    item.timer = null;
    if (item.state === 'done') return;
    if (item.state === 'sent') this.unackedBytes -= item.sizeBytes;
    else this.queuedBytes -= item.sizeBytes;
    this.init.log.warn({ tid: item.tid, type: msgTypeName(item.msg.type), timeoutMs, peer: this.peer?.entity, remote: this.remoteAddress }, 'request timed out');
    this.complete(item, new ClusterError('CLU_ERR_TIMEOUT', `${msgTypeName(item.msg.type)} tid ${item.tid} timed out after ${timeoutMs} ms`, {
      details: { tid: item.tid, timeoutMs },
    }));
    this.pump();
  }

  private complete(item: OutItem, err: ClusterError | null, reply?: Frame): void {
    if (item.state === 'done') return;
    item.state = 'done';
    if (item.sink !== undefined) item.sink.active = false;
    this.pending.delete(item.tid);
    if (item.timer !== null) { this.init.env.clearTimeout(item.timer); item.timer = null; }
    const cb = item.cb!;
    if (err !== null) cb(err);
    else cb(null, reply);
  }

  // ----- Handshake (session-phase frames). -----

  private onSessionFrame(conn: Conn, f: Frame): void {
    try {
      this.onSessionFrameUnsafe(conn, f);
    } catch (err) {
      // Malformed handshake payloads throw CodecError from the decoders.
      this.dropConn(conn, new ClusterError('CLU_ERR_DECODE', `bad ${msgTypeName(f.type)} payload`, { cause: err }), 'frame rejected');
    }
  }

  private onSessionFrameUnsafe(conn: Conn, f: Frame): void {
    const wrong = (): void => this.dropConn(conn, new ClusterError('CLU_ERR_AUTH', `unexpected ${msgTypeName(f.type)}`), 'handshake failed');
    switch (f.type) {
      case MsgType.MSG_HELLO: {
        const hs = conn.serverHs;
        if (hs === null || this.stateValue !== 'handshaking') { wrong(); return; }
        const r = hs.onHello(f.payload, this.init.env.wallMs());
        if (r instanceof ClusterError) { this.reject(conn, r); return; }
        this.writeRaw(conn, MsgType.MSG_HELLO_REPLY, 0, 0, r.reply);
        if (r.peer !== undefined) this.becomeReady(conn, r.peer);
        return;
      }
      case MsgType.MSG_HELLO_REPLY: this.onHelloReply(conn, f, wrong); return;
      case MsgType.MSG_AUTH_PROOF: {
        const hs = conn.serverHs;
        if (hs === null || this.stateValue !== 'handshaking') { wrong(); return; }
        const r = hs.onProof(f.payload);
        if (r instanceof ClusterError) { this.reject(conn, r); return; }
        this.writeRaw(conn, MsgType.MSG_AUTH_DONE, 0, 0, r.reply);
        conn.signer = new FrameSigner(r.keys.tx, r.keys.rx);
        conn.decoder.signedData = true;
        this.becomeReady(conn, r.peer);
        return;
      }
      case MsgType.MSG_AUTH_DONE: {
        const hs = conn.clientHs;
        if (hs === null || this.stateValue !== 'handshaking') { wrong(); return; }
        const r = hs.onAuthDone(f.payload);
        if (r instanceof ClusterError) { this.dropConn(conn, r, 'handshake failed'); return; }
        conn.signer = new FrameSigner(r.keys.tx, r.keys.rx);
        conn.decoder.signedData = true;
        this.becomeReady(conn, { entity: r.serverEntity, method: conn.method, caps: { mon: 'none', osd: [] }, expiresWallMs: null, instance: null });
        return;
      }
      case MsgType.MSG_AUTH_REJECT: this.dropConn(conn, decodeReject(f.payload), 'handshake rejected by peer'); return;
      case MsgType.MSG_PING: this.writeRaw(conn, MsgType.MSG_PONG, FRAME_F_REPLY, f.tid, EMPTY); return;
      case MsgType.MSG_PONG: this.pongsReceived++; return;
      default: wrong();
    }
  }

  private onHelloReply(conn: Conn, f: Frame, wrong: () => void): void {
    const hs = conn.clientHs;
    if (hs === null || this.stateValue !== 'handshaking') { wrong(); return; }
    const r = hs.onHelloReply(f.payload);
    if (r instanceof ClusterError) { this.dropConn(conn, r, 'handshake failed'); return; }
    if ('accepted' in r) {
      this.becomeReady(conn, { entity: r.serverEntity, method: 'none', caps: { mon: 'none', osd: [] }, expiresWallMs: null, instance: null });
      return;
    }
    this.writeRaw(conn, MsgType.MSG_AUTH_PROOF, 0, 0, r.proof);
  }

  /** Server side: tells the client why, then closes (gracefully, so the reason arrives). */
  private reject(conn: Conn, err: ClusterError): void {
    this.writeRaw(conn, MsgType.MSG_AUTH_REJECT, 0, 0, encodeReject(err));
    this.dropConn(conn, err, 'handshake rejected', true);
  }

  private becomeReady(conn: Conn, peer: AuthenticatedPeer): void {
    if (conn.timer !== null) { this.init.env.clearTimeout(conn.timer); conn.timer = null; }
    this.peer = peer;
    this.stateValue = 'ready';
    this.attempts = 0;
    if (peer.expiresWallMs !== null) {
      // Ticket sessions end when the ticket does; the client reconnects with a renewed one.
      const delayMs = Math.max(0, Math.min(MAX_TIMER_MS, peer.expiresWallMs - this.init.env.wallMs()));
      conn.timer = this.init.env.setTimeout(() => {
        this.dropConn(conn, new ClusterError('CLU_ERR_AUTH', 'ticket expired', { details: { reason: 'ticket-expired' } }), 'session expired');
      }, delayMs);
    }
    this.init.log.info({ peer: peer.entity, instance: peer.instance ?? undefined, method: peer.method, remote: this.remoteAddress, signed: conn.signer !== null }, 'session ready');
    this.startKeepalive(conn);
    this.emit('ready', peer);
    this.pump();
  }

  // ----- Keepalive. -----

  private startKeepalive(conn: Conn): void {
    const { keepaliveIntervalMs: intervalMs, keepaliveTimeoutMs: timeoutMs } = this.init.limits;
    if (!(intervalMs > 0)) return;
    conn.lastRxMs = this.init.env.nowMs();
    conn.lastPingMs = -Infinity;
    this.armKeepalive(conn, intervalMs, timeoutMs);
  }

  /** Arms the timer for the next thing due: a ping (silent ≥ interval since the later of the last byte and the last ping) or the timeout. */
  private armKeepalive(conn: Conn, intervalMs: number, timeoutMs: number): void {
    const dueMs = Math.min(Math.max(conn.lastRxMs, conn.lastPingMs) + intervalMs, conn.lastRxMs + timeoutMs);
    const delayMs = Math.max(1, Math.ceil(dueMs - this.init.env.nowMs()));
    conn.kaTimer = this.init.env.setTimeout(() => this.onKeepaliveTimer(conn, intervalMs, timeoutMs), delayMs);
  }

  private onKeepaliveTimer(conn: Conn, intervalMs: number, timeoutMs: number): void {
    conn.kaTimer = null;
    if (this.conn !== conn || this.stateValue !== 'ready') return;
    const now = this.init.env.nowMs();
    const silentMs = now - conn.lastRxMs;
    if (silentMs >= timeoutMs) {
      this.dropConn(conn, new ClusterError('CLU_ERR_TIMEOUT', `nothing received for ${Math.round(silentMs)} ms (keepalive timeout ${timeoutMs} ms)`, {
        details: { reason: 'keepalive', silentMs: Math.round(silentMs), timeoutMs },
      }), 'session reset: peer silent (keepalive)');
      return;
    }
    if (silentMs >= intervalMs && now - conn.lastPingMs >= intervalMs) {
      conn.lastPingMs = now;
      this.pingsSent++;
      conn.pingTid = conn.pingTid === Number.MAX_SAFE_INTEGER ? 1 : conn.pingTid + 1;
      // Written at once, past the request queue: it carries no data and is answered in the
      // peer's session, so the window and queue order do not apply (it is signed in stream
      // order like every frame, so both signers' sequence numbers stay in step).
      this.writeRaw(conn, MsgType.MSG_PING, 0, conn.pingTid, EMPTY);
    }
    this.armKeepalive(conn, intervalMs, timeoutMs);
  }

  // ----- Send path. -----

  private allocTid(): number {
    const tid = this.nextTid;
    this.nextTid = tid === Number.MAX_SAFE_INTEGER ? 1 : tid + 1;
    return tid;
  }

  private enqueue(item: OutItem): boolean {
    this.queue.push(item);
    this.queuedBytes += item.sizeBytes;
    this.pump();
    const below = this.inflightBytes <= this.init.limits.maxInflightBytes;
    if (!below) this.wantWritable = true;
    return below;
  }

  private queueReply(req: InboundMessage, flags: number, msg: OutboundMessage): void {
    if ((req.flags & FRAME_F_REQUEST) === 0) throw new Error(`reply to ${msgTypeName(req.type)} tid ${req.tid}, which is not a request`);
    if (this.conn === null) return; // The request's connection is gone; so is its requester.
    this.replyMsgs.push({ tid: req.tid, flags, msg });
    this.pump();
  }

  /** Writes what the socket, the window and the state allow, in order; replies first. */
  private pump(): void {
    const conn = this.conn;
    if (conn !== null && this.stateValue === 'ready') {
      while (!conn.blocked && this.replyMsgs.length > 0) {
        const r = this.replyMsgs.shift()!;
        this.writeRaw(conn, r.msg.type, r.flags, r.tid, r.msg.payload ?? EMPTY, r.msg.data ?? NO_DATA, r.msg.epoch ?? 0);
      }
      this.pumpQueue(conn);
    }
    if (this.wantWritable && this.inflightBytes < this.init.limits.maxInflightBytes / 2) {
      this.wantWritable = false;
      this.emit('writable');
    }
  }

  private pumpQueue(conn: Conn): void {
    const max = this.init.limits.maxInflightBytes;
    while (!conn.blocked && this.queueHead < this.queue.length) {
      const item = this.queue[this.queueHead]!;
      if (item.state === 'done') { this.queueHead++; continue; } // Timed out while queued.
      const isRequest = item.cb !== null;
      if (isRequest && this.unackedBytes > 0 && this.unackedBytes + item.sizeBytes > max) break;
      this.queueHead++;
      this.queuedBytes -= item.sizeBytes;
      if (isRequest) { this.unackedBytes += item.sizeBytes; item.state = 'sent'; } else item.state = 'done';
      const m = item.msg;
      this.writeRaw(conn, m.type, isRequest ? FRAME_F_REQUEST : 0, item.tid, m.payload ?? EMPTY, m.data ?? NO_DATA, m.epoch ?? 0);
    }
    if (this.queueHead === this.queue.length) { this.queue.length = 0; this.queueHead = 0; }
    else if (this.queueHead > 1024) { this.queue = this.queue.slice(this.queueHead); this.queueHead = 0; }
  }

  private writeRaw(conn: Conn, type: number, flags: number, tid: number, payload: Uint8Array, data: readonly Uint8Array[] = NO_DATA, epoch = 0): void {
    const chunks = encodeFrame({ type, flags, epoch, tid, payload, data }, conn.signer === null ? undefined : conn.signer.sign);
    if (!conn.socket.write(chunks)) conn.blocked = true;
  }
}
