/**
 * The monitor daemon's glue: a `Messenger` in front of `MonitorCore` and a `MonStore`, with
 * mandatory authentication. Everything here is a thin translation between messages and the
 * core's method inputs and callback outputs; decisions live in the core (failure detection,
 * batching) and in `mon-commands.ts` (admin commands).
 *
 * Who may do what (docs/operations.md):
 * - Every session authenticates with method `key` against the auth database (`auth-db.ts`,
 *   `auth/<entity>` in the store). Unauthenticated sessions are refused.
 * - `MSG_AUTH_GET_TICKET`: any key-authenticated entity, for the OSD service, with its caps.
 * - `MSG_AUTH_GET_SERVICE_SECRET`: only `osd.N` entities; the secret is sealed with the
 *   OSD's own key (the session is signed, not encrypted).
 * - Boot, beacon, PG states and PG history: only the entity `osd.N` about OSD N (Ceph's
 *   "profile osd"); the monitor core further checks that a PG-history change comes from the
 *   PG's up primary for its current acting set.
 * - Subscribe and failure reports: mon caps `allow r` or more. Failure reports come from OSD
 *   peers (their heartbeats: `refused` on ECONNREFUSED, `timeout` past the grace) and may come
 *   from clients; one `refused` report marks an OSD down at once, so mon `r` is trusted.
 * - Commands: `allow r` for reads, `allow rw` (or `allow *`) for changes and key material;
 *   `profile rbd` is `allow r` plus `osd blocklist add` (mon-protocol.ts `monCommandAllowed`).
 *
 * Liveness: a reset of an OSD's session to the monitor is NOT taken as its death (the OSD
 * may only have lost its monitor connection; Ceph does the same). OSDs are marked down by
 * missed beacons (`osdGraceMs`, default 3000 ms) and by failure reports.
 */
import { CodecError } from '../common/codec.js';
import { ClusterError } from '../common/errors.js';
import type { OsdId } from '../common/ids.js';
import type { Env } from '../env/env.js';
import { monCapsAllow } from '../auth/caps.js';
import { authPolicy } from '../auth/handshake.js';
import type { Keyring } from '../auth/keyring.js';
import { registerTicketService } from '../auth/ticket-service.js';
import { seal } from '../auth/ticket.js';
import { FRAME_F_REQUEST } from '../msg/frame.js';
import { Messenger } from '../msg/messenger.js';
import type { InboundMessage, Session } from '../msg/session.js';
import { MsgType } from '../msg/types.js';
import { AuthDb } from './auth-db.js';
import { executeMonCommand } from './mon-commands.js';
import {
  SERVICE_SECRET_AAD, decodeBeacon, decodeFailureReport, decodeJson, decodeOsdBoot, decodePgHistory, decodePgStates, decodePgTemp, decodeSubscribe,
  encodeBeaconReply, encodeJson, encodeMapUpdate, encodeOsdBootReply, monCommandAllowed, monCommandNeedsWrite, parseMonCommand,
} from './mon-protocol.js';
import { MonitorCore } from './monitor-core.js';
import type { Subscription } from './monitor-core.js';
import type { MonStore } from './mon-store.js';

/** Options of a monitor server; times in ms. */
export interface MonServerOptions {
  env: Env;
  /** The store, not yet opened (the server opens it). */
  store: MonStore;
  osdGraceMs?: number;
  downOutIntervalMs?: number;
  proposalIntervalMs?: number;
  ticketTtlMs?: number;
  /** Called once when the store fails: the process must exit. */
  onFatal: (err: Error) => void;
}

/** Entity name of the monitor. */
export const MON_ENTITY = 'mon.';

/** `osd.N` → N, else undefined. */
export function osdIdOfEntity(entity: string): OsdId | undefined {
  const m = /^osd\.(0|[1-9][0-9]{0,8})$/.exec(entity);
  return m === null ? undefined : (Number(m[1]) as OsdId);
}

/**
 * Initialises a monitor store (`strata mon --mkfs`): imports the bootstrap keyring into the
 * auth database and commits map epoch 1. Fails with `CLU_ERR_EXISTS` on an initialised store.
 */
export function monMkfs(o: { env: Env; store: MonStore; keyring: Keyring; fsid?: string }, cb: (err: ClusterError | null, fsid?: string) => void): void {
  o.store.open((err) => {
    if (err) { cb(asClusterError(err)); return; }
    if (o.store.latestMap() !== undefined) { cb(new ClusterError('CLU_ERR_EXISTS', 'monitor store already initialised')); return; }
    new AuthDb(o.store, o.env.rng).importKeyring(o.keyring, (err2) => {
      if (err2) { cb(err2); return; }
      const core = new MonitorCore({ env: o.env, store: o.store, ...(o.fsid === undefined ? {} : { fsid: o.fsid }) });
      core.start((err3) => {
        core.stop();
        if (err3) cb(err3);
        else cb(null, core.map().fsid);
      });
    });
  });
}

/** The monitor daemon minus process concerns (bin/mon.ts owns argv, signals, logging). */
export class MonServer {
  readonly msgr: Messenger;
  private core: MonitorCore | undefined;
  private readonly auth: AuthDb;
  private readonly subs = new Map<Session, Subscription>();

  constructor(private readonly o: MonServerOptions) {
    this.auth = new AuthDb(o.store, o.env.rng);
    this.msgr = new Messenger({
      env: o.env,
      entity: MON_ENTITY,
      auth: authPolicy({ allowUnauthenticated: false, lookupKey: (e) => this.auth.get(e) }),
    });
    this.msgr.on('sessionClosed', (s) => {
      this.subs.get(s)?.unsubscribe();
      this.subs.delete(s);
    });
  }

  /** The monitor core (after `start`). */
  get monitor(): MonitorCore {
    if (this.core === undefined) throw new Error('monitor not started');
    return this.core;
  }

  /** Opens the store, starts the core and listens; `cb` gets the bound port. */
  start(host: string, port: number, cb: (err: ClusterError | null, port?: number) => void): void {
    const { env, store } = this.o;
    store.open((err) => {
      if (err) { cb(asClusterError(err)); return; }
      if (store.latestMap() === undefined || this.auth.serviceSecret() === undefined) {
        cb(new ClusterError('CLU_ERR_NOT_FOUND', 'monitor store not initialised: run strata mon --mkfs first'));
        return;
      }
      const core = new MonitorCore({
        env, store, onFatal: this.o.onFatal,
        ...pick(this.o, ['osdGraceMs', 'downOutIntervalMs', 'proposalIntervalMs']),
      });
      this.core = core;
      core.start((err2) => {
        if (err2) { cb(err2); return; }
        this.registerHandlers();
        this.msgr.listen(host, port, (err3, bound) => cb(err3 === null ? null : asClusterError(err3), bound));
      });
    });
  }

  /** Stops listening, closes sessions and the store. */
  stop(cb: (err: Error | null) => void): void {
    this.core?.stop();
    this.msgr.shutdown();
    this.o.store.close(cb);
  }

  private registerHandlers(): void {
    const { env } = this.o;
    registerTicketService(this.msgr, {
      env, lookupKey: (e) => this.auth.get(e), serviceSecret: () => this.auth.serviceSecret(),
      ...(this.o.ticketTtlMs === undefined ? {} : { ttlMs: this.o.ticketTtlMs }),
    });
    this.msgr.handle(MsgType.MSG_AUTH_GET_SERVICE_SECRET, (req, s) => this.onServiceSecret(req, s));
    this.msgr.handle(MsgType.MSG_MON_SUBSCRIBE, (req, s) => this.guarded(req, s, () => this.onSubscribe(req, s)));
    this.msgr.handle(MsgType.MSG_MON_OSD_BOOT, (req, s) => this.guarded(req, s, () => this.onBoot(req, s)));
    this.msgr.handle(MsgType.MSG_MON_OSD_BEACON, (req, s) => this.guarded(req, s, () => this.onBeacon(req, s)));
    this.msgr.handle(MsgType.MSG_MON_FAILURE, (req, s) => this.guarded(req, s, () => this.onFailure(req, s)));
    this.msgr.handle(MsgType.MSG_MON_PG_STATES, (req, s) => this.guarded(req, s, () => this.onPgStates(req, s)));
    this.msgr.handle(MsgType.MSG_MON_PG_HISTORY, (req, s) => this.guarded(req, s, () => this.onPgHistory(req, s)));
    this.msgr.handle(MsgType.MSG_MON_PG_TEMP, (req, s) => this.guarded(req, s, () => this.onPgTemp(req, s)));
    this.msgr.handle(MsgType.MSG_MON_COMMAND, (req, s) => this.guarded(req, s, () => this.onCommand(req, s)));
  }

  /** Runs a handler, turning a decode error or a ClusterError into an error reply. */
  private guarded(req: InboundMessage, s: Session, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof CodecError) && !(e instanceof ClusterError)) throw e;
      const err = e instanceof ClusterError ? e : new ClusterError('CLU_ERR_DECODE', e.message, { cause: e });
      this.o.env.log.warn({ err, peer: s.peer?.entity }, 'monitor request rejected');
      if (isRequest(req)) s.replyError(req, err);
    }
  }

  private requireMon(s: Session, write: boolean): void {
    const peer = s.peer;
    if (peer === null || !monCapsAllow(peer.caps, write)) {
      throw new ClusterError('CLU_ERR_PERM', `${peer?.entity ?? 'peer'} lacks mon caps 'allow ${write ? 'rw' : 'r'}'`);
    }
  }

  private requireOsd(s: Session, id: number | undefined): OsdId {
    const own = osdIdOfEntity(s.peer?.entity ?? '');
    if (own === undefined || own !== id) throw new ClusterError('CLU_ERR_PERM', `${s.peer?.entity ?? 'peer'} may not act for osd.${id ?? '?'}`);
    return own;
  }

  private onServiceSecret(req: InboundMessage, s: Session): void {
    const peer = s.peer;
    const entry = peer === null ? undefined : this.auth.get(peer.entity);
    const secret = this.auth.serviceSecret();
    if (peer === null || peer.method !== 'key' || osdIdOfEntity(peer.entity) === undefined || entry === undefined || secret === undefined) {
      s.replyError(req, new ClusterError('CLU_ERR_PERM', 'the service secret is only for key-authenticated osd.N entities'));
      return;
    }
    s.reply(req, { type: req.type, payload: seal(entry.key, secret, SERVICE_SECRET_AAD, this.o.env.rng) });
  }

  private onSubscribe(req: InboundMessage, s: Session): void {
    this.requireMon(s, false);
    const have = decodeSubscribe(req.payload);
    this.subs.get(s)?.unsubscribe();
    const sub = this.monitor.subscribe(have, (u) => {
      const epoch = u.kind === 'full' ? u.map.epoch : (u.incrementals.at(-1)?.epoch ?? 0);
      // Why close a slow subscriber: its queue would grow without bound; it reconnects and
      // resubscribes from the epoch it has.
      if (!s.send({ type: MsgType.MSG_MON_MAP, payload: encodeMapUpdate(u), epoch })) {
        this.o.env.log.warn({ peer: s.peer?.entity }, 'subscriber too slow, closing its session');
        s.close();
      }
    });
    this.subs.set(s, sub);
    s.reply(req, { type: req.type, epoch: this.monitor.map().epoch });
  }

  private onBoot(req: InboundMessage, s: Session): void {
    const boot = decodeOsdBoot(req.payload);
    this.requireOsd(s, boot.osdId);
    this.monitor.osdBoot(boot, (err, r) => {
      if (err !== null || r === undefined) s.replyError(req, err ?? new ClusterError('CLU_ERR_IO', 'boot failed'));
      else s.reply(req, { type: req.type, payload: encodeOsdBootReply(r.osdId, r.epoch), epoch: r.epoch });
    });
  }

  private onBeacon(req: InboundMessage, s: Session): void {
    const b = decodeBeacon(req.payload);
    this.requireOsd(s, b.osdId);
    const result = this.monitor.osdBeacon(b.osdId);
    s.reply(req, { type: req.type, payload: encodeBeaconReply(result), epoch: this.monitor.map().epoch });
  }

  private onFailure(req: InboundMessage, s: Session): void {
    this.requireMon(s, false);
    const f = decodeFailureReport(req.payload);
    const reporter = s.peer?.entity ?? '?';
    if (osdIdOfEntity(reporter) === f.target) return; // An OSD does not report itself.
    this.o.env.log.info({ reporter, target: f.target, kind: f.kind, cancel: f.cancel }, 'failure report');
    if (f.cancel) this.monitor.cancelFailure(reporter, f.target);
    else this.monitor.reportFailure(reporter, f.target, f.kind);
  }

  private onPgStates(req: InboundMessage, s: Session): void {
    const p = decodePgStates(req.payload);
    this.requireOsd(s, p.osdId);
    this.monitor.reportPgStates(p.osdId, p.states);
  }

  private onPgHistory(req: InboundMessage, s: Session): void {
    const h = decodePgHistory(req.payload);
    this.requireOsd(s, h.osdId);
    this.monitor.pgHistory(h.osdId, h.pg, h.op, h.set, (err, r) => {
      if (err !== null || r === undefined) {
        const e = err ?? new ClusterError('CLU_ERR_IO', 'pg history change failed');
        this.o.env.log.info({ err: e, osd: h.osdId, pg: h.pg, op: h.op, set: h.set }, 'pg history change refused');
        s.replyError(req, e);
      } else s.reply(req, { type: req.type, epoch: r.epoch });
    });
  }

  private onPgTemp(req: InboundMessage, s: Session): void {
    const t = decodePgTemp(req.payload);
    this.requireOsd(s, t.osdId);
    this.monitor.pgTemp(t.osdId, t.pg, t.osds, (err, r) => {
      if (err !== null || r === undefined) {
        const e = err ?? new ClusterError('CLU_ERR_IO', 'pg_temp change failed');
        this.o.env.log.info({ err: e, osd: t.osdId, pg: t.pg, osds: t.osds }, 'pg_temp change refused');
        s.replyError(req, e);
      } else s.reply(req, { type: req.type, epoch: r.epoch });
    });
  }

  private onCommand(req: InboundMessage, s: Session): void {
    const cmd = parseMonCommand(decodeJson(req.payload));
    if (cmd instanceof ClusterError) throw cmd;
    const peer = s.peer;
    if (peer === null || !monCommandAllowed(peer.caps, cmd)) {
      throw new ClusterError('CLU_ERR_PERM', `${peer?.entity ?? 'peer'} lacks mon caps for '${cmd.prefix}' (${monCommandNeedsWrite(cmd) ? "'allow rw'" : "'allow r'"}${cmd.prefix === 'osd blocklist add' ? " or 'profile rbd'" : ''})`);
    }
    this.o.env.log.info({ peer: peer.entity, prefix: cmd.prefix }, 'mon command');
    executeMonCommand({
      env: this.o.env, core: this.monitor, auth: this.auth, requesterKey: this.auth.get(peer.entity)?.key,
      closeSessionsOf: (entity) => { for (const x of this.msgr.sessions()) if (x.peer?.entity === entity) x.close(); },
    }, cmd, (err, result) => {
      if (err !== null) s.replyError(req, err);
      else s.reply(req, { type: req.type, payload: encodeJson(result ?? {}), epoch: this.monitor.map().epoch });
    });
  }
}

function isRequest(req: InboundMessage): boolean {
  return (req.flags & FRAME_F_REQUEST) !== 0;
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function asClusterError(e: unknown): ClusterError {
  if (e instanceof ClusterError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as { code?: string }).code === 'EADDRINUSE' ? 'CLU_ERR_EXISTS' : 'CLU_ERR_IO';
  return new ClusterError(code, err.message, { cause: err });
}
