/**
 * The daemon glue of a simulated OSD process, shared by the real OSD (sim-osd.ts) and the
 * control-plane stand-in (stub-osd.ts): the Messenger with ticket credentials, the MonClient,
 * service secret → listen → boot → subscribe → first ticket → beacons, peer heartbeats with
 * `refused` / `timeout` failure reports (withdrawn when the peer answers again), and the ping
 * handler — the way `bin/osd.ts` does it (`sim/` may not import `bin/`).
 *
 * What differs between the two users is passed in: what a map does (`onMap`), the PG report
 * on (re)connection to the monitor (`reportPgs`), how the first ticket is fetched, and whether
 * pings from non-OSD entities are answered.
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

/** Options of a simulated OSD process (both implementations). */
export interface OsdDaemonOptions {
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
}

interface Peer { addr: string; session: Session; lastReplyMs: number; reported: 'refused' | 'timeout' | null; upFrom: number }

export class OsdDaemon {
  readonly mon: MonClient;
  readonly msgr: Messenger;
  private secret: Uint8Array | undefined;
  private booting = false;
  private readonly peers = new Map<OsdId, Peer>();
  private hbTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly o: OsdDaemonOptions, hooks: {
    /** A new map (the peer sessions of OSDs that went down are dropped after it). */
    onMap: (map: ClusterMap) => void;
    /** (Re)connected to the monitor: report the PG states. */
    reportPgs: (map: ClusterMap) => void;
    /** The real OSD answers pings from OSDs only (as bin/osd.ts); the stub answers anyone. */
    pingFromOsdsOnly: boolean;
  }) {
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
    this.mon.on('map', (map) => { hooks.onMap(map); this.dropStalePeers(map); });
    this.mon.on('connected', () => { const m = this.mon.map(); if (m !== undefined) hooks.reportPgs(m); });
    this.msgr.handle(MsgType.MSG_OSD_PING, (req, s) => {
      if (hooks.pingFromOsdsOnly && !(s.peer?.entity.startsWith('osd.') ?? false)) return;
      try { decodeOsdPing(req.payload); } catch { return; }
      s.reply(req, { type: req.type, payload: encodeOsdPing(this.o.id, this.mon.map()?.epoch ?? 0) });
    });
  }

  /**
   * Service secret (retried every second) → listen → boot, subscribe, first ticket, beacons
   * (re-boot when the monitor asks), heartbeats.
   */
  start(p: { onListenError: (err: unknown) => void; fetchTicket: () => void }): void {
    if (this.stopped) return;
    this.mon.serviceSecret((err, secret) => {
      if (err !== null || secret === undefined) { this.o.env.setTimeout(() => this.start(p), 1000); return; }
      this.secret = secret;
      this.msgr.listen(this.o.host, this.o.port, (err2) => {
        if (err2 !== null) { p.onListenError(err2); return; }
        this.boot();
        this.mon.subscribe();
        p.fetchTicket();
        this.mon.startBeacons(this.o.id, this.o.beaconMs, (r) => { if (r === 'boot-required' || r === 'unknown-osd') this.boot(); });
        this.heartbeatTick();
      });
    });
  }

  /** Graceful stop (kill simply drops the process). */
  stop(): void {
    this.stopped = true;
    if (this.hbTimer !== undefined) this.o.env.clearTimeout(this.hbTimer);
    this.mon.close();
    this.msgr.shutdown();
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

  private dropStalePeers(map: ClusterMap): void {
    for (const [id, p] of this.peers) {
      const o = map.osds.get(id);
      if (o === undefined || !o.up || o.addr !== p.addr || o.upFrom !== p.upFrom) { p.session.close(); this.peers.delete(id); }
    }
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
}
