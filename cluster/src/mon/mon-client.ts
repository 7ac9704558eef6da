/**
 * The monitor client used by OSDs, block clients and the CLI: one key-authenticated session to
 * the monitor (the messenger reconnects it with bounded, jittered backoff when the monitor
 * restarts), the map subscription, OSD tickets with renewal, and the OSD-side messages
 * (boot, beacons, failure reports, PG states).
 *
 * Map subscription: the monitor pushes incrementals in order (`MSG_MON_MAP`). Each is applied
 * only on top of epoch − 1; on a gap (or an incremental that does not apply) the client
 * resubscribes from the epoch it holds and the monitor answers with the missing incrementals
 * or a full map. After every reconnect it resubscribes the same way. `onMap` fires once per
 * new epoch, in order.
 *
 * Run to completion, callbacks only, all time through `env`.
 */
import { EventEmitter } from 'eventemitter3';
import { ClusterError } from '../common/errors.js';
import type { OsdId } from '../common/ids.js';
import type { Env, TimerHandle } from '../env/env.js';
import { fetchTicket } from '../auth/ticket-service.js';
import { open } from '../auth/ticket.js';
import type { TicketCredentials } from '../auth/ticket.js';
import { emptyMap } from '../map/cluster-map.js';
import type { ClusterMap } from '../map/cluster-map.js';
import { applyIncremental } from '../map/incremental.js';
import { Messenger } from '../msg/messenger.js';
import type { BackoffOptions, InboundMessage, Session, SessionLimits } from '../msg/session.js';
import { MsgType } from '../msg/types.js';
import {
  SERVICE_SECRET_AAD, decodeBeaconReply, decodeJson, decodeMapUpdate, decodeOsdBootReply, encodeBeacon, encodeFailureReport,
  encodeJson, encodeOsdBoot, encodePgHistory, encodePgStates, encodePgTemp, encodeSubscribe,
} from './mon-protocol.js';
import type { BeaconResult } from './mon-protocol.js';
import type { FailureKind, MapUpdate, OsdBootRequest } from './monitor-core.js';

/** Options of a MonClient. */
export interface MonClientOptions {
  env: Env;
  /** Our entity (`osd.3`, `client.admin`) and its secret key. */
  entity: string;
  key: Uint8Array;
  mon: { host: string; port: number };
  /** Share a daemon's messenger (an OSD's); a private one is made otherwise. */
  msgr?: Messenger;
  /** Backoff of a private messenger (the CLI gives up after a few attempts; daemons never). */
  backoff?: Partial<BackoffOptions>;
  /** Session limits of a private messenger (keepalive; tests shorten it). */
  limits?: Partial<SessionLimits>;
  /** Timeout of each request to the monitor (default 10 s). */
  requestTimeoutMs?: number;
}

/** Events of a MonClient (control plane). */
export interface MonClientEvents {
  /** A new map epoch was installed. */
  map: (map: ClusterMap) => void;
  /** The session to the monitor completed a handshake (first connect and every reconnect). */
  connected: () => void;
  /** The monitor rejected our credentials. */
  authError: (err: ClusterError) => void;
}

/** Renew a ticket when this fraction of its lifetime is left. */
const TICKET_RENEW_FRACTION = 0.25;
/** Longest wait between reconnects to the monitor (below its 3 s default beacon grace). */
const MON_RECONNECT_MAX_MS = 1000;
/** Beacon timeouts in a row that reset the monitor session (see startBeacons). */
const MON_BEACON_TIMEOUTS_TO_RESET = 2;

/** A client of the monitor. */
export class MonClient extends EventEmitter<MonClientEvents> {
  readonly msgr: Messenger;
  readonly session: Session;
  private readonly timeoutMs: number;
  private current: ClusterMap | undefined;
  private subscribed = false;
  private subscribeInflight = false;
  /** The monitor's epoch when it answered our latest subscribe. */
  private monEpoch = 0;
  private mapWaiters: ((map: ClusterMap) => void)[] = [];
  private ticketCreds: TicketCredentials | undefined;
  private ticketTimer: TimerHandle | undefined;
  private ticketWaiters: ((err: ClusterError | null, t?: TicketCredentials) => void)[] | undefined;
  private beaconTimer: TimerHandle | undefined;
  private beaconInflight = false;
  /** Beacons timed out in a row (see startBeacons). */
  private beaconTimeouts = 0;
  private closed = false;

  constructor(private readonly o: MonClientOptions) {
    super();
    this.timeoutMs = o.requestTimeoutMs ?? 10_000;
    this.msgr = o.msgr ?? new Messenger({
      env: o.env, entity: o.entity, ...(o.backoff === undefined ? {} : { backoff: o.backoff }), ...(o.limits === undefined ? {} : { limits: o.limits }),
    });
    this.msgr.handle(MsgType.MSG_MON_MAP, (msg, s) => this.onMapPush(msg, s));
    // Why a short backoff to the monitor: after a monitor restart, an OSD must beacon again
    // within the monitor's grace (3 s by default) or be marked down; the messenger's default
    // backoff grows to 5 s (sim seed 0x47aa575f2c52a6c2: an OSD flapped after a mon restart).
    this.session = this.msgr.connect(o.mon, { credentials: () => ({ method: 'key', key: o.key }), backoff: { maxMs: o.backoff?.maxMs ?? MON_RECONNECT_MAX_MS } });
    this.session.on('ready', () => {
      if (this.subscribed) this.sendSubscribe();
      this.emit('connected');
    });
    this.session.on('reset', (err) => {
      if (err.code === 'CLU_ERR_AUTH') this.emit('authError', err);
    });
  }

  /** The latest map received, if any. */
  map(): ClusterMap | undefined {
    return this.current;
  }

  /** Starts the map subscription; `map` events follow, one per new epoch. */
  subscribe(): void {
    if (this.subscribed) return;
    this.subscribed = true;
    if (this.session.state === 'ready') this.sendSubscribe();
  }

  /**
   * Subscribes (if not yet) and calls `cb` once the client holds a map at least as new as the
   * monitor's when it answered the subscription (a CLI or a client starting up).
   */
  latestMap(cb: (map: ClusterMap) => void): void {
    this.mapWaiters.push(cb);
    this.subscribe();
    this.checkMapWaiters();
  }

  private checkMapWaiters(): void {
    const map = this.current;
    if (map === undefined || this.monEpoch === 0 || map.epoch < this.monEpoch) return;
    const waiters = this.mapWaiters;
    this.mapWaiters = [];
    for (const w of waiters) w(map);
  }

  /** Runs an admin command (JSON in, JSON out). */
  command(cmd: Readonly<Record<string, unknown>>, cb: (err: ClusterError | null, result?: Record<string, unknown>) => void): void {
    this.request(MsgType.MSG_MON_COMMAND, encodeJson(cmd), (err, reply) => {
      if (err !== null || reply === undefined) { cb(err); return; }
      const result = tryDecode(() => decodeJson(reply.payload));
      if (result instanceof ClusterError) cb(result);
      else cb(null, (result ?? {}) as Record<string, unknown>);
    });
  }

  /** OSD boot; the reply carries the OSD id and the epoch that marked it up. */
  boot(req: OsdBootRequest, cb: (err: ClusterError | null, r?: { osdId: OsdId; epoch: number }) => void): void {
    this.request(MsgType.MSG_MON_OSD_BOOT, encodeOsdBoot(req), (err, reply) => {
      if (err !== null || reply === undefined) { cb(err); return; }
      const r = tryDecode(() => decodeOsdBootReply(reply.payload));
      if (r instanceof ClusterError) cb(r);
      else cb(null, r);
    });
  }

  /**
   * Sends a beacon every `intervalMs` (at most one outstanding). `onResult` gets each answer;
   * 'boot-required' means the monitor has us down: the OSD must boot again. Each beacon times
   * out after 2 × `intervalMs`; after MON_BEACON_TIMEOUTS_TO_RESET timeouts in a row (no reply
   * for 4 × `intervalMs`) the monitor session is reset and reconnects: the connection is
   * presumed half-open, as when the monitor died (or its host lost power) while we were
   * partitioned from it and no RST reached us — the socket then looks open until TCP's own
   * retransmission timeout (simulator seed 0xb4969e75f120c4ad: 20 s on a dead session).
   * Why not after one: a slow path that delays replies a little longer than one timeout still
   * carries our beacons to the monitor; resetting it stops them until the reconnect completes.
   * Why kept beside the messenger keepalive (which finds the same half-open session): the
   * keepalive timeout (10 s) is deliberately above the failure-detection graces, while an OSD
   * must beacon again within the monitor's grace; this resets after 4 beacon intervals.
   */
  startBeacons(osdId: OsdId, intervalMs: number, onResult: (r: BeaconResult | ClusterError) => void): void {
    this.stopBeacons();
    const tick = (): void => {
      this.beaconTimer = this.o.env.setTimeout(tick, intervalMs);
      if (this.beaconInflight || this.session.state !== 'ready') return;
      this.beaconInflight = true;
      this.request(MsgType.MSG_MON_OSD_BEACON, encodeBeacon(osdId, this.current?.epoch ?? 0), (err, reply) => {
        this.beaconInflight = false;
        this.beaconTimeouts = err?.code === 'CLU_ERR_TIMEOUT' ? this.beaconTimeouts + 1 : 0;
        if (this.beaconTimeouts >= MON_BEACON_TIMEOUTS_TO_RESET && !this.closed) {
          const silentMs = this.beaconTimeouts * intervalMs * 2;
          this.beaconTimeouts = 0;
          this.o.env.log.warn({ osd: osdId, silentMs, mon: this.session.remoteAddress }, 'beacons unanswered: resetting the monitor session');
          this.session.resetConnection(new ClusterError('CLU_ERR_TIMEOUT', `monitor answered no beacon for ${silentMs} ms`));
        }
        if (err !== null || reply === undefined) { onResult(err ?? new ClusterError('CLU_ERR_IO', 'no reply')); return; }
        const r = tryDecode(() => decodeBeaconReply(reply.payload));
        onResult(r);
      }, intervalMs * 2);
    };
    tick();
  }

  stopBeacons(): void {
    if (this.beaconTimer !== undefined) this.o.env.clearTimeout(this.beaconTimer);
    this.beaconTimer = undefined;
    this.beaconTimeouts = 0;
  }

  /** Reports (or withdraws, `cancel`) that OSD `target` is unreachable. */
  reportFailure(target: OsdId, kind: FailureKind, cancel = false): void {
    this.session.send({ type: MsgType.MSG_MON_FAILURE, payload: encodeFailureReport({ target, kind, cancel }) });
  }

  /** Reports the states of the PGs `osdId` is primary for. */
  reportPgStates(osdId: OsdId, states: Readonly<Record<string, string>>): void {
    this.session.send({ type: MsgType.MSG_MON_PG_STATES, payload: encodePgStates(osdId, states) });
  }

  /**
   * Records a PG-history change (`MonitorCore.pgHistory`): `cb` fires once the monitor has
   * committed the epoch holding it (`epoch`), or with its error (`CLU_ERR_EPOCH_STALE` when
   * the monitor's map says we are not the PG's primary or `set` is not its acting set).
   */
  pgHistory(osdId: OsdId, pg: string, op: 'add' | 'reset', set: readonly OsdId[], cb: (err: ClusterError | null, epoch?: number) => void): void {
    this.request(MsgType.MSG_MON_PG_HISTORY, encodePgHistory({ osdId, pg, op, set }), (err, reply) => {
      if (err !== null || reply === undefined) cb(err ?? new ClusterError('CLU_ERR_IO', 'no reply'));
      else cb(null, reply.epoch);
    });
  }

  /**
   * Sets (`osds` non-empty) or clears (`[]`) a PG's pg_temp (`MonitorCore.pgTemp`): `cb` fires
   * once the monitor committed the epoch holding it, or with its error.
   */
  pgTemp(osdId: OsdId, pg: string, osds: readonly OsdId[], cb: (err: ClusterError | null, epoch?: number) => void): void {
    this.request(MsgType.MSG_MON_PG_TEMP, encodePgTemp({ osdId, pg, osds }), (err, reply) => {
      if (err !== null || reply === undefined) cb(err ?? new ClusterError('CLU_ERR_IO', 'no reply'));
      else cb(null, reply.epoch);
    });
  }

  /**
   * OSD ticket credentials: cached until they expire, otherwise fetched (concurrent callers
   * share one fetch). Once fetched, a timer renews them when a quarter of the lifetime is
   * left, so a long-running OSD or client never presents an expired ticket.
   */
  ticket(cb: (err: ClusterError | null, creds?: TicketCredentials) => void): void {
    const t = this.ticketCreds;
    if (t !== undefined && t.expiresMs - this.o.env.wallMs() > 0) { this.o.env.setImmediate(() => cb(null, t)); return; }
    this.fetchTicketNow(cb);
  }

  /** The current ticket without fetching (for `credentials()` at connect time). */
  currentTicket(): TicketCredentials | undefined {
    return this.ticketCreds;
  }

  private fetchTicketNow(cb: (err: ClusterError | null, creds?: TicketCredentials) => void): void {
    if (this.ticketWaiters !== undefined) { this.ticketWaiters.push(cb); return; }
    this.ticketWaiters = [cb];
    fetchTicket(this.session, { entity: this.o.entity, clientKey: this.o.key, timeoutMs: this.timeoutMs }, (err, creds) => {
      const waiters = this.ticketWaiters ?? [];
      this.ticketWaiters = undefined;
      if (err === null && creds !== undefined) {
        this.ticketCreds = creds;
        this.scheduleTicketRenewal(creds);
      }
      for (const w of waiters) w(err, creds);
    });
  }

  private scheduleTicketRenewal(creds: TicketCredentials): void {
    if (this.ticketTimer !== undefined) this.o.env.clearTimeout(this.ticketTimer);
    const leftMs = creds.expiresMs - this.o.env.wallMs();
    const delayMs = Math.max(1000, Math.floor(leftMs * (1 - TICKET_RENEW_FRACTION)));
    this.ticketTimer = this.o.env.setTimeout(() => {
      this.ticketTimer = undefined;
      if (this.closed) return;
      this.fetchTicketNow((err) => {
        if (err !== null) {
          this.o.env.log.warn({ err }, 'ticket renewal failed; retrying');
          this.ticketTimer = this.o.env.setTimeout(() => { this.ticketTimer = undefined; if (!this.closed) this.fetchTicketNow(() => undefined); }, 1000);
        }
      });
    }, delayMs);
  }

  /** OSDs only: the OSD service secret, opened with our key. */
  serviceSecret(cb: (err: ClusterError | null, secret?: Uint8Array) => void): void {
    this.request(MsgType.MSG_AUTH_GET_SERVICE_SECRET, new Uint8Array(0), (err, reply) => {
      if (err !== null || reply === undefined) { cb(err); return; }
      const secret = open(this.o.key, reply.payload, SERVICE_SECRET_AAD);
      if (secret instanceof ClusterError) cb(secret);
      else cb(null, Uint8Array.from(secret));
    });
  }

  /** Stops timers and closes the monitor session (and the messenger when private). */
  close(): void {
    this.closed = true;
    this.stopBeacons();
    if (this.ticketTimer !== undefined) this.o.env.clearTimeout(this.ticketTimer);
    this.ticketTimer = undefined;
    if (this.o.msgr === undefined) this.msgr.shutdown();
    else this.session.close();
  }

  private request(type: number, payload: Uint8Array, cb: (err: ClusterError | null, reply?: InboundMessage) => void, timeoutMs = this.timeoutMs): void {
    this.session.request({ type, payload }, { timeoutMs }, cb);
  }

  private sendSubscribe(): void {
    // Why one at a time: a gap found while a resubscribe is in flight is answered by it.
    if (this.subscribeInflight) return;
    this.subscribeInflight = true;
    const have = this.current?.epoch ?? 0;
    this.request(MsgType.MSG_MON_SUBSCRIBE, encodeSubscribe(have), (err, reply) => {
      this.subscribeInflight = false;
      if (reply !== undefined) {
        this.monEpoch = Math.max(this.monEpoch, reply.epoch);
        this.checkMapWaiters();
      }
      if (err !== null && err.code !== 'CLU_ERR_CONN_CLOSED' && err.code !== 'CLU_ERR_CANCELLED') {
        this.o.env.log.warn({ err }, 'map subscribe failed');
      }
    });
  }

  private onMapPush(msg: InboundMessage, s: Session): void {
    if (s !== this.session) return;
    const update = tryDecode(() => decodeMapUpdate(msg.payload));
    if (update instanceof ClusterError) {
      this.o.env.log.warn({ err: update }, 'bad map push');
      return;
    }
    this.applyUpdate(update);
  }

  private applyUpdate(u: MapUpdate): void {
    if (u.kind === 'full') {
      const cur = this.current;
      if (cur !== undefined && cur.fsid !== u.map.fsid) {
        this.o.env.log.error({ have: cur.fsid, got: u.map.fsid }, 'map from another cluster ignored');
        return;
      }
      if (cur !== undefined && u.map.epoch <= cur.epoch) return;
      this.install(u.map);
      return;
    }
    for (const inc of u.incrementals) {
      // The first incremental (epoch 1) applies to the empty map of its cluster.
      const cur = this.current ?? (inc.epoch === 1 ? emptyMap(inc.fsid, inc.modifiedMs) : undefined);
      if (cur !== undefined && inc.epoch <= cur.epoch) continue;
      if (cur === undefined || inc.epoch !== cur.epoch + 1) {
        this.o.env.log.info({ have: cur?.epoch ?? 0, got: inc.epoch }, 'map gap; resubscribing');
        this.sendSubscribe();
        return;
      }
      let next: ClusterMap;
      try {
        next = applyIncremental(cur, inc);
      } catch (e) {
        this.o.env.log.warn({ err: e, epoch: inc.epoch }, 'incremental does not apply; asking for a full map');
        this.current = undefined;
        this.sendSubscribe();
        return;
      }
      this.install(next);
    }
  }

  private install(map: ClusterMap): void {
    this.current = map;
    this.o.env.log.debug({ epoch: map.epoch }, 'map installed');
    this.emit('map', map);
    this.checkMapWaiters();
  }
}

function tryDecode<T>(fn: () => T): T | ClusterError {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ClusterError) return e;
    return new ClusterError('CLU_ERR_DECODE', (e as Error).message, { cause: e });
  }
}
