/**
 * Peer heartbeats of an OSD process: every `intervalMs` it pings each up OSD of the map over
 * the OSD↔OSD session, and reports a peer to the monitor as
 *
 * - `refused` at once when the connection is refused (nothing listens: the process is gone;
 *   Ceph's osd_fast_fail_on_connection_refused), and
 * - `timeout` when no ping reply came for `graceMs`, withdrawn when it answers again.
 *
 * The timeout is a deadline per peer, armed at (last reply + grace), not a check on the next
 * ping tick: a tick check reported up to one interval late (a SIGSTOPped OSD froze client I/O
 * for grace + up to 1 s + the map change, measured 3.1–3.7 s with grace 3 s).
 *
 * Used by the real OSD process (bin/osd.ts) and the simulator's OSD daemon glue
 * (sim/osd-daemon.ts), so both detect failures the same way. The ping handler stays with
 * them (they differ in whom they answer).
 */
import type { Logger } from 'pino';
import type { OsdId } from '../common/ids.js';
import type { Env, TimerHandle } from '../env/env.js';
import type { ClusterMap } from '../map/cluster-map.js';
import type { FailureKind } from '../mon/monitor-core.js';
import { encodeOsdPing } from '../mon/mon-protocol.js';
import type { Messenger } from '../msg/messenger.js';
import type { Session } from '../msg/session.js';
import { MsgType } from '../msg/types.js';

/** What the heartbeats need of the monitor client. */
export interface HeartbeatMon {
  map(): ClusterMap | undefined;
  /** Undefined until the first ticket arrived (peers refuse sessions without one). */
  currentTicket(): unknown;
  reportFailure(target: OsdId, kind: FailureKind, cancel?: boolean): void;
}

export interface PeerHeartbeatsOptions {
  env: Env;
  /** Defaults to `env.log`. */
  log?: Logger;
  /** This OSD. */
  id: OsdId;
  msgr: Messenger;
  mon: HeartbeatMon;
  intervalMs: number;
  graceMs: number;
}

interface Peer {
  readonly id: OsdId;
  readonly addr: string;
  readonly upFrom: number;
  readonly session: Session;
  lastReplyMs: number;
  reported: FailureKind | null;
  deadline: TimerHandle | undefined;
}

export class PeerHeartbeats {
  private readonly peers = new Map<OsdId, Peer>();
  private tickTimer: TimerHandle | undefined;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly o: PeerHeartbeatsOptions) {
    this.log = o.log ?? o.env.log;
  }

  /** Starts pinging (the first round at once). */
  start(): void {
    if (this.stopped || this.tickTimer !== undefined) return;
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.tickTimer !== undefined) this.o.env.clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    for (const p of this.peers.values()) this.drop(p);
  }

  /** A new map: sessions to OSDs that went down, moved or restarted are dropped. */
  handleMap(map: ClusterMap): void {
    for (const p of [...this.peers.values()]) {
      const o = map.osds.get(p.id);
      if (o === undefined || !o.up || o.addr !== p.addr || o.upFrom !== p.upFrom) this.drop(p);
    }
  }

  /** Peers currently reported to the monitor, for status and tests. */
  reported(): Map<OsdId, FailureKind> {
    const out = new Map<OsdId, FailureKind>();
    for (const p of this.peers.values()) if (p.reported !== null) out.set(p.id, p.reported);
    return out;
  }

  private tick(): void {
    this.tickTimer = this.o.env.setTimeout(() => this.tick(), this.o.intervalMs);
    const map = this.o.mon.map();
    if (map === undefined || this.o.mon.currentTicket() === undefined) return;
    for (const osd of map.osds.values()) {
      if (osd.id === this.o.id || !osd.up || osd.addr === '') continue;
      const peer = this.peers.get(osd.id) ?? this.add(osd.id, osd.addr, osd.upFrom);
      peer.session.request({ type: MsgType.MSG_OSD_PING, payload: encodeOsdPing(this.o.id, map.epoch) }, { timeoutMs: this.o.graceMs }, (err) => {
        if (err !== null || this.peers.get(peer.id) !== peer) return;
        peer.lastReplyMs = this.o.env.nowMs();
        if (peer.reported === 'timeout') this.o.mon.reportFailure(peer.id, 'timeout', true);
        peer.reported = null;
        this.arm(peer);
      });
    }
  }

  private add(id: OsdId, addr: string, upFrom: number): Peer {
    const i = addr.lastIndexOf(':');
    const session = this.o.msgr.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
    const p: Peer = { id, addr, upFrom, session, lastReplyMs: this.o.env.nowMs(), reported: null, deadline: undefined };
    session.on('connectFailed', (err) => {
      if (err.details?.['errno'] !== 'ECONNREFUSED' || p.reported === 'refused' || this.peers.get(id) !== p) return;
      p.reported = 'refused';
      this.log.warn({ peer: id, addr }, 'peer connection refused; reporting');
      this.o.mon.reportFailure(id, 'refused');
    });
    this.peers.set(id, p);
    this.arm(p);
    return p;
  }

  /** (Re)arms the peer's deadline at last reply + grace. */
  private arm(p: Peer): void {
    if (p.deadline !== undefined) this.o.env.clearTimeout(p.deadline);
    const dueMs = p.lastReplyMs + this.o.graceMs - this.o.env.nowMs();
    p.deadline = this.o.env.setTimeout(() => this.expire(p), Math.max(0, dueMs) + 1);
  }

  private expire(p: Peer): void {
    p.deadline = undefined;
    if (this.stopped || this.peers.get(p.id) !== p || p.reported !== null) return;
    const silentMs = this.o.env.nowMs() - p.lastReplyMs;
    if (silentMs <= this.o.graceMs) return this.arm(p);
    p.reported = 'timeout';
    this.log.warn({ peer: p.id, silentMs: Math.round(silentMs) }, 'peer heartbeat timeout; reporting');
    this.o.mon.reportFailure(p.id, 'timeout');
  }

  private drop(p: Peer): void {
    if (p.deadline !== undefined) this.o.env.clearTimeout(p.deadline);
    p.deadline = undefined;
    p.session.close();
    if (this.peers.get(p.id) === p) this.peers.delete(p.id);
  }
}
