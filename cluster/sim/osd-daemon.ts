/**
 * The daemon glue of a simulated OSD process, shared by the real OSD (sim-osd.ts) and the
 * control-plane stand-in (stub-osd.ts): the Messenger with ticket credentials, the MonClient,
 * service secret → listen → boot → subscribe → first ticket → beacons, peer heartbeats
 * (osd/peer-heartbeats.ts, as the real OSD process) and the ping handler — the way
 * `bin/osd.ts` does it (`sim/` may not import `bin/`).
 *
 * What differs between the two users is passed in: what a map does (`onMap`), the PG report
 * on (re)connection to the monitor (`reportPgs`), how the first ticket is fetched, and whether
 * pings from non-OSD entities are answered.
 */
import type { OsdId } from '../src/common/ids.js';
import type { Env } from '../src/env/env.js';
import { authPolicy } from '../src/auth/handshake.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { MonClient } from '../src/mon/mon-client.js';
import { decodeOsdPing, encodeOsdPing } from '../src/mon/mon-protocol.js';
import { Messenger } from '../src/msg/messenger.js';
import { PeerHeartbeats } from '../src/osd/peer-heartbeats.js';
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

export class OsdDaemon {
  readonly mon: MonClient;
  readonly msgr: Messenger;
  private secret: Uint8Array | undefined;
  private booting = false;
  private readonly heartbeats: PeerHeartbeats;
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
    this.heartbeats = new PeerHeartbeats({ env: o.env, id: o.id, msgr: this.msgr, mon: this.mon, intervalMs: o.hbIntervalMs, graceMs: o.hbGraceMs });
    this.mon.on('map', (map) => { hooks.onMap(map); this.heartbeats.handleMap(map); });
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
        this.heartbeats.start();
      });
    });
  }

  /** Graceful stop (kill simply drops the process). */
  stop(): void {
    this.stopped = true;
    this.heartbeats.stop();
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
}
