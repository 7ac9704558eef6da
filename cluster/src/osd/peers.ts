/**
 * Sessions to the other OSDs, and the entity checks of inbound peer/admin messages.
 *
 * Owns: one client session per peer OSD, keyed by id and valid for one (addr, upFrom) of that
 * OSD: `dropStale` closes a session whose OSD went down or restarted in the new map.
 * Invariants: no session is opened after `stop()` (late timers and callbacks still call
 * `request`: they get UNAVAILABLE); a refused connection is reported to the monitor.
 */
import { ClusterError } from '../common/errors.js';
import type { OsdId } from '../common/ids.js';
import type { Env } from '../env/env.js';
import type { ClusterMap } from '../map/cluster-map.js';
import type { Messenger } from '../msg/messenger.js';
import type { InboundMessage, OutboundMessage, Session } from '../msg/session.js';
import type { PeerCallback } from './osd-context.js';
import { errOf } from './pg.js';

const PEER_ENTITY = /^osd\.\d+$/;

function parseAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

export class PeerSessions {
  private readonly peers = new Map<OsdId, { addr: string; upFrom: number; session: Session }>();
  private stopped = false;

  constructor(private readonly o: {
    env: Env;
    msgr: Messenger;
    map: () => ClusterMap | undefined;
    timeoutMs: number;
    reportFailure: ((osd: OsdId) => void) | undefined;
  }) {}

  /** Closes the sessions of OSDs that are down or restarted (new addr / upFrom) in `map`. */
  dropStale(map: ClusterMap): void {
    for (const [id, p] of this.peers) {
      const o = map.osds.get(id);
      if (o === undefined || !o.up || o.addr !== p.addr || o.upFrom !== p.upFrom) { p.session.close(); this.peers.delete(id); }
    }
  }

  /** Closes every session; no new one is opened afterwards. */
  stop(): void {
    this.stopped = true;
    for (const p of this.peers.values()) p.session.close();
    this.peers.clear();
  }

  private session(id: OsdId): Session | undefined {
    // Why: timers and late callbacks may still run after stop(); the messenger is shut down.
    if (this.stopped) return undefined;
    const p = this.peers.get(id);
    if (p !== undefined) return p.session;
    const o = this.o.map()?.osds.get(id);
    if (o === undefined || !o.up || o.addr === '') return undefined;
    const session = this.o.msgr.connect(parseAddr(o.addr));
    session.on('connectFailed', (err) => {
      if (err.details?.['errno'] === 'ECONNREFUSED') this.o.reportFailure?.(id);
    });
    this.peers.set(id, { addr: o.addr, upFrom: o.upFrom, session });
    return session;
  }

  request(id: OsdId, type: number, payload: Uint8Array, data: Uint8Array[] | undefined, cb: PeerCallback): void {
    const s = this.session(id);
    if (s === undefined) { this.o.env.setImmediate(() => cb(errOf('CLU_ERR_UNAVAILABLE', `osd.${id} not up`))); return; }
    const epoch = this.o.map()?.epoch ?? 0;
    const msg: OutboundMessage = data === undefined ? { type, payload, epoch } : { type, payload, data, epoch };
    s.request(msg, { timeoutMs: this.o.timeoutMs }, cb);
  }
}

/** Runs `f` for a message from another OSD; PERM for anyone else, DECODE when `f` throws. */
export function peerOnly(req: InboundMessage, s: Session, f: () => void): void {
  if (!PEER_ENTITY.test(s.peer?.entity ?? '')) { s.replyError(req, errOf('CLU_ERR_PERM', 'osd peers only')); return; }
  try { f(); } catch (e) { s.replyError(req, new ClusterError('CLU_ERR_DECODE', 'bad peer message', { cause: e })); }
}

/** Runs `f` for a message from an OSD or an admin (mon 'rw' caps); PERM for anyone else. */
export function adminOnly(req: InboundMessage, s: Session, f: () => void): void {
  const peer = s.peer;
  const ok = peer !== null && (PEER_ENTITY.test(peer.entity) || peer.caps.mon === 'rw');
  if (!ok) { s.replyError(req, errOf('CLU_ERR_PERM', 'admin only')); return; }
  try { f(); } catch (e) { s.replyError(req, new ClusterError('CLU_ERR_DECODE', 'bad request', { cause: e })); }
}
