/**
 * The real OSD under the simulator: the production `OsdCore` (cluster/src/osd/osd-core.ts)
 * over the production `ObjectStore` on the process's `SimDisk`, with the production
 * `Messenger` and `MonClient` — wired the way `bin/osd.ts` wires them. Why a copy of the
 * wiring instead of the bin's class: that class (`Osd`) is private to `bin/osd.ts`, whose
 * module also reads argv, signals and real files; `sim/` may not import `bin/`. What is copied
 * is only glue (≈ 100 lines): service secret → listen → boot → subscribe → beacons, peer
 * heartbeats with refused/timeout reports, the ping handler, and map → `core.handleMap` →
 * PG-state report. The data path itself (ops, replication, peering, recovery, scrub) is
 * entirely OsdCore's.
 *
 * Not wired (not exercised here): `MSG_OSD_OP_STAT` (the placeholder stat of `strata osd`),
 * the uuid file (the uuid comes from the seed), SIGTERM handling.
 */
import type { OsdId } from '../src/common/ids.js';
import type { Env, TimerHandle } from '../src/env/env.js';
import { authPolicy } from '../src/auth/handshake.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { MonClient } from '../src/mon/mon-client.js';
import { decodeOsdPing, encodeOsdPing } from '../src/mon/mon-protocol.js';
import { Messenger } from '../src/msg/messenger.js';
import type { Session } from '../src/msg/session.js';
import { MsgType } from '../src/msg/types.js';
import { OsdCore } from '../src/osd/osd-core.js';
import { ObjectStore } from '../src/store/object-store.js';

/** Options of the simulated real OSD. */
export interface SimOsdOptions {
  env: Env;
  id: OsdId;
  key: Uint8Array;
  uuid: string;
  host: string;
  port: number;
  mon: { host: string; port: number };
  beaconMs: number;
  hbIntervalMs: number;
  hbGraceMs: number;
  journalBytes: number;
  scrubIntervalMs: number;
  peerTimeoutMs: number;
  /** An unrecoverable start error (store open failed): the run reports it. */
  onFatal: (what: string, err: unknown) => void;
}

interface Peer { addr: string; session: Session; lastReplyMs: number; reported: 'refused' | 'timeout' | null; upFrom: number }

/** Where the store lives on the OSD's disk. */
export const OSD_STORE_DIR = '/osd/store';

/** One OSD process object (a new one per incarnation). */
export class SimOsd {
  readonly mon: MonClient;
  private readonly msgr: Messenger;
  private secret: Uint8Array | undefined;
  private booting = false;
  private readonly peers = new Map<OsdId, Peer>();
  private hbTimer: TimerHandle | undefined;
  /** Set once the store is open (checkers read it directly). */
  store: ObjectStore | null = null;
  core: OsdCore | null = null;

  constructor(private readonly o: SimOsdOptions) {
    const entity = `osd.${o.id}`;
    this.msgr = new Messenger({
      env: o.env, entity,
      auth: authPolicy({ allowUnauthenticated: false, serviceSecret: () => this.secret }),
      credentials: () => {
        const t = this.mon.currentTicket();
        return t === undefined ? { method: 'none' } : { method: 'ticket', ticket: t.ticket, sessionKey: t.sessionKey };
      },
    });
    this.mon = new MonClient({ env: o.env, entity, key: o.key, mon: o.mon, msgr: this.msgr });
    this.mon.on('map', (map) => this.onMap(map));
    this.mon.on('connected', () => { const m = this.mon.map(); if (m !== undefined) this.reportPgs(m); });
    this.msgr.handle(MsgType.MSG_OSD_PING, (req, s) => {
      if (!(s.peer?.entity.startsWith('osd.') ?? false)) return;
      try { decodeOsdPing(req.payload); } catch { return; }
      s.reply(req, { type: req.type, payload: encodeOsdPing(this.o.id, this.mon.map()?.epoch ?? 0) });
    });
  }

  /** Opens the store (replaying its journal), then starts as `bin/osd.ts` does. */
  start(): void {
    const env = this.o.env;
    ObjectStore.open(env, { dir: OSD_STORE_DIR, journalBytes: this.o.journalBytes }, (err, store) => {
      if (err !== null || store === undefined) { this.o.onFatal('object store open failed', err); return; }
      this.store = store;
      this.core = new OsdCore({
        env, log: env.log.child({ component: 'osd-core' }), id: this.o.id, store, msgr: this.msgr,
        reportPgStates: (states) => this.mon.reportPgStates(this.o.id, states),
        recordPgHistory: (pg, op, set, cb) => this.mon.pgHistory(this.o.id, pg, op, set, (err) => cb(err)),
        reportFailure: (osd) => this.mon.reportFailure(osd, 'refused'),
        scrubIntervalMs: this.o.scrubIntervalMs,
        peerTimeoutMs: this.o.peerTimeoutMs,
      });
      this.startDaemon();
    });
  }

  private startDaemon(): void {
    this.mon.serviceSecret((err, secret) => {
      if (err !== null || secret === undefined) { this.o.env.setTimeout(() => this.startDaemon(), 1000); return; }
      this.secret = secret;
      this.msgr.listen(this.o.host, this.o.port, (err2) => {
        if (err2 !== null) { this.o.onFatal('listen failed', err2); return; }
        this.boot();
        this.mon.subscribe();
        this.fetchTicket();
        this.mon.startBeacons(this.o.id, this.o.beaconMs, (r) => { if (r === 'boot-required' || r === 'unknown-osd') this.boot(); });
        this.heartbeatTick();
      });
    });
  }

  /**
   * The OSD's first ticket, retried until it arrives: renewal is scheduled only after a fetch
   * succeeds, so an OSD whose first fetch hit a monitor reset used to stay ticketless and
   * every peer refused its sessions ('authentication required') forever (random seed
   * 0x1fd6d26400eb6ed8).
   */
  private fetchTicket(): void {
    this.mon.ticket((err) => {
      if (err === null) return;
      this.o.env.log.warn({ err }, 'no ticket yet; retrying');
      this.o.env.setTimeout(() => this.fetchTicket(), 1000);
    });
  }

  private boot(): void {
    if (this.booting) return;
    this.booting = true;
    const addr = `${this.o.host}:${this.o.port}`;
    this.mon.boot({ uuid: this.o.uuid, addr, location: { host: this.o.host }, osdId: this.o.id }, (err) => {
      this.booting = false;
      if (err !== null) this.o.env.log.warn({ err }, 'boot failed; retrying on the next beacon');
    });
  }

  private onMap(map: ClusterMap): void {
    this.core?.handleMap(map);
    this.reportPgs(map);
    for (const [id, p] of this.peers) {
      const o = map.osds.get(id);
      if (o === undefined || !o.up || o.addr !== p.addr || o.upFrom !== p.upFrom) { p.session.close(); this.peers.delete(id); }
    }
  }

  private reportPgs(map: ClusterMap): void {
    const me = map.osds.get(this.o.id);
    if (me === undefined || !me.up || this.core === null) return;
    const states = this.core.pgStates();
    if (Object.keys(states).length > 0) this.mon.reportPgStates(this.o.id, states);
  }

  private heartbeatTick(): void {
    this.hbTimer = this.o.env.setTimeout(() => this.heartbeatTick(), this.o.hbIntervalMs);
    const map = this.mon.map();
    if (map === undefined || this.mon.currentTicket() === undefined) return;
    const now = this.o.env.nowMs();
    for (const o of map.osds.values()) {
      if (o.id === this.o.id || !o.up || o.addr === '') continue;
      const peer = this.peers.get(o.id) ?? this.addPeer(o.id, o.addr, o.upFrom, now);
      peer.session.request({ type: MsgType.MSG_OSD_PING, payload: encodeOsdPing(this.o.id, map.epoch) }, { timeoutMs: this.o.hbGraceMs }, (err) => {
        if (err !== null) return;
        peer.lastReplyMs = this.o.env.nowMs();
        if (peer.reported === 'timeout') this.mon.reportFailure(o.id, 'timeout', true);
        peer.reported = null;
      });
      if (peer.reported === null && now - peer.lastReplyMs > this.o.hbGraceMs) {
        peer.reported = 'timeout';
        this.mon.reportFailure(o.id, 'timeout');
      }
    }
  }

  private addPeer(id: OsdId, addr: string, upFrom: number, now: number): Peer {
    const i = addr.lastIndexOf(':');
    const session = this.msgr.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
    const p: Peer = { addr, session, lastReplyMs: now, reported: null, upFrom };
    session.on('connectFailed', (err) => {
      if (err.details?.['errno'] !== 'ECONNREFUSED' || p.reported === 'refused') return;
      p.reported = 'refused';
      this.mon.reportFailure(id, 'refused');
    });
    this.peers.set(id, p);
    return p;
  }

  /** Graceful stop (kill simply drops the process). */
  stop(): void {
    this.core?.stop();
    if (this.hbTimer !== undefined) this.o.env.clearTimeout(this.hbTimer);
    this.mon.close();
    this.msgr.shutdown();
  }
}
