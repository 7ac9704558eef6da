/**
 * One messenger session per OSD for the Objecter (Ceph's `OSDSession` table). Sessions are
 * ticket-authenticated (`credentials()` is asked at every connect, so a reconnect presents
 * the renewed ticket) and keyed by OSD id; a session whose OSD changed address or restarted
 * (`upFrom`), or left the map, is closed (its outstanding requests fail with
 * `CLU_ERR_CANCELLED`, which the Objecter treats as "resend elsewhere"). Every session presents
 * the Objecter's instance nonce in its handshake: the OSD accepts from it only ops whose
 * `reqId.client` is `<entity>/<instance>` (docs/cluster-protocol.md §3).
 *
 * Why not reuse the messenger's address-keyed table alone: two OSD incarnations can share an
 * address; the OSD id + upFrom pair is what the map says is the same process.
 */
import type { ClientCredentials } from '../auth/handshake.js';
import type { OsdId } from '../common/ids.js';
import type { ClusterMap } from '../map/cluster-map.js';
import type { Messenger } from '../msg/messenger.js';
import type { Session } from '../msg/session.js';

/** One OSD's session. */
export interface OsdSession {
  readonly osd: OsdId;
  readonly addr: string;
  readonly upFrom: number;
  readonly session: Session;
}

/** Parses "host:port"; undefined when malformed. */
export function splitAddr(addr: string): { host: string; port: number } | undefined {
  const i = addr.lastIndexOf(':');
  if (i <= 0) return undefined;
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  return { host: addr.slice(0, i), port };
}

/** Sessions to OSDs, keyed by id. */
export class SessionTable {
  private readonly byOsd = new Map<OsdId, OsdSession>();

  constructor(
    private readonly msgr: Messenger,
    private readonly credentials: () => ClientCredentials,
    /** Called when a session to an OSD resets (the Objecter resends what it had there). */
    private readonly onReset: (s: OsdSession) => void,
    /** The client instance nonce sent in every session's handshake. */
    private readonly instance: string,
  ) {}

  /** The session to `osd` at `addr`/`upFrom`, created on first use; undefined for a bad addr. */
  get(osd: OsdId, addr: string, upFrom: number): OsdSession | undefined {
    const cur = this.byOsd.get(osd);
    if (cur !== undefined && cur.addr === addr && cur.upFrom === upFrom && cur.session.state !== 'closed') return cur;
    if (cur !== undefined) this.drop(cur);
    const hp = splitAddr(addr);
    if (hp === undefined) return undefined;
    const session = this.msgr.connect(hp, { credentials: this.credentials, instance: this.instance });
    const s: OsdSession = { osd, addr, upFrom, session };
    session.on('reset', () => { if (this.byOsd.get(osd) === s) this.onReset(s); });
    this.byOsd.set(osd, s);
    return s;
  }

  /** Closes sessions to OSDs that are gone, down, moved or restarted in `map`. */
  prune(map: ClusterMap): void {
    for (const s of [...this.byOsd.values()]) {
      const o = map.osds.get(s.osd);
      if (o === undefined || !o.up || o.addr !== s.addr || o.upFrom !== s.upFrom) this.drop(s);
    }
  }

  /** Number of open sessions (tests, stats). */
  get size(): number { return this.byOsd.size; }

  /** Closes every session. */
  closeAll(): void {
    for (const s of [...this.byOsd.values()]) this.drop(s);
  }

  private drop(s: OsdSession): void {
    if (this.byOsd.get(s.osd) === s) this.byOsd.delete(s.osd);
    s.session.removeAllListeners('reset');
    s.session.close();
  }
}
