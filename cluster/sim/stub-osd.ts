/**
 * A stand-in OSD for the simulator until the OSD daemon class (`cluster/src/osd/osd.ts`)
 * lands: the control-plane behaviour of the `strata osd` placeholder (bin/osd.ts, whose class
 * is private to the bin and which sim/ may not import), rebuilt on the SAME production
 * modules — MonClient, Messenger, ticket auth — so the monitor, the map subscription, failure
 * detection and the messenger are exercised for real:
 * - fetch the service secret, listen, boot, beacon every `beaconMs`, re-boot on
 *   'boot-required';
 * - heartbeat the other up OSDs, report `refused`/`timeout` failures (and withdraw them);
 * - report every PG it is primary for as 'active' after each map (no data, never 'clean').
 *
 * It holds no data: the data-path checkers need the real OSD.
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
import { mapAllPgs } from '../src/placement/placement.js';

/** Options of the stand-in OSD. */
export interface StubOsdOptions {
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

/** The stand-in OSD process object. */
export class StubOsd {
  readonly mon: MonClient;
  private readonly msgr: Messenger;
  private secret: Uint8Array | undefined;
  private booting = false;
  private readonly peers = new Map<OsdId, Peer>();
  private hbTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly o: StubOsdOptions) {
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
      try { decodeOsdPing(req.payload); } catch { return; }
      s.reply(req, { type: req.type, payload: encodeOsdPing(this.o.id, this.mon.map()?.epoch ?? 0) });
    });
  }

  start(): void {
    if (this.stopped) return;
    this.mon.serviceSecret((err, secret) => {
      if (err !== null || secret === undefined) { this.o.env.setTimeout(() => this.start(), 1000); return; }
      this.secret = secret;
      this.msgr.listen(this.o.host, this.o.port, (err2) => {
        if (err2 !== null) { this.o.env.log.error({ err: err2 }, 'listen failed'); return; }
        this.boot();
        this.mon.subscribe();
        this.mon.ticket(() => undefined);
        this.mon.startBeacons(this.o.id, this.o.beaconMs, (r) => { if (r === 'boot-required' || r === 'unknown-osd') this.boot(); });
        this.heartbeatTick();
      });
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
    this.reportPgs(map);
    for (const [id, p] of this.peers) {
      const o = map.osds.get(id);
      if (o === undefined || !o.up || o.addr !== p.addr || o.upFrom !== p.upFrom) { p.session.close(); this.peers.delete(id); }
    }
  }

  private reportPgs(map: ClusterMap): void {
    const me = map.osds.get(this.o.id);
    if (me === undefined || !me.up) return;
    const states: Record<string, string> = {};
    for (const pool of map.pools.values()) {
      mapAllPgs(map, pool).forEach((m, seed) => { if (m.primary === this.o.id) states[`${pool.id}.${seed.toString(16)}`] = 'active'; });
    }
    this.mon.reportPgStates(this.o.id, states);
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
    const [host, port] = addr.split(':');
    const session = this.msgr.connect({ host: host ?? '', port: Number(port) });
    const p: Peer = { addr, session, lastReplyMs: now, reported: null, upFrom };
    session.on('connectFailed', (err) => {
      if (err.details?.['errno'] !== 'ECONNREFUSED' || p.reported === 'refused') return;
      p.reported = 'refused';
      this.mon.reportFailure(id, 'refused');
    });
    this.peers.set(id, p);
    return p;
  }

  /** Graceful stop (not used by kill, which simply drops the process). */
  stop(): void {
    this.stopped = true;
    if (this.hbTimer !== undefined) this.o.env.clearTimeout(this.hbTimer);
    this.mon.close();
    this.msgr.shutdown();
  }
}
