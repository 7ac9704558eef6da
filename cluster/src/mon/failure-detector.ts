/**
 * Failure detection bookkeeping for the monitor, pure of I/O (the monitor feeds it the clock).
 *
 * Rules (documented in docs/cluster-map.md):
 * 1. Beacon timeout: an up OSD whose last beacon (or boot) is older than `osdGraceMs` is
 *    marked down. After a monitor (re)start every up OSD gets a fresh grace period.
 * 2. Connection refused: a peer OSD or a client that got ECONNREFUSED from an OSD's address
 *    reports it; one report marks it down at once (Ceph's osd_fast_fail_on_connection_refused):
 *    a refused connection means no process is listening, which is not a network opinion.
 * 3. Peer timeout reports: a peer whose heartbeats to the OSD timed out reports it; the OSD is
 *    marked down when distinct reporters whose reports are younger than `osdGraceMs * 2`
 *    number at least min(minDownReporters, up OSDs - 1) (Ceph's mon_osd_min_down_reporters,
 *    default 2, so that one partitioned peer cannot take others down). A reporter withdraws a
 *    report with `cancel`. Reports about an OSD are cleared when it is marked down or boots.
 * 4. Down → out: an OSD that stays down for `downOutIntervalMs` is marked out
 *    (Ceph's mon_osd_down_out_interval), and is marked in again when it boots, unless an
 *    administrator marked it out.
 */
import type { OsdId } from '../common/ids.js';

/** Per-OSD liveness facts held in memory only (rebuilt with a fresh grace after restart). */
export class FailureDetector {
  private readonly lastSeenMs = new Map<OsdId, number>();
  private readonly downSinceMs = new Map<OsdId, number>();
  private readonly reports = new Map<OsdId, Map<string, number>>();

  constructor(private readonly options: { osdGraceMs: number; downOutIntervalMs: number; minDownReporters: number }) {}

  /** Boot or beacon: the OSD is alive now. */
  seen(id: OsdId, nowMs: number): void {
    this.lastSeenMs.set(id, nowMs);
    this.downSinceMs.delete(id);
  }

  /** Boot clears failure reports about the OSD. */
  booted(id: OsdId, nowMs: number): void {
    this.seen(id, nowMs);
    this.reports.delete(id);
  }

  /** Records that the OSD was marked down (starts the down → out clock). */
  markedDown(id: OsdId, nowMs: number): void {
    this.lastSeenMs.delete(id);
    this.reports.delete(id);
    if (!this.downSinceMs.has(id)) this.downSinceMs.set(id, nowMs);
  }

  /** Forgets an OSD (removed, or marked out). */
  forget(id: OsdId): void {
    this.lastSeenMs.delete(id);
    this.downSinceMs.delete(id);
    this.reports.delete(id);
  }

  /** Adds a timeout report; returns true when the reporter threshold is now met. */
  report(target: OsdId, reporter: string, nowMs: number, upOsdCount: number): boolean {
    let r = this.reports.get(target);
    if (r === undefined) {
      r = new Map();
      this.reports.set(target, r);
    }
    r.set(reporter, nowMs);
    const windowMs = this.options.osdGraceMs * 2;
    for (const [who, atMs] of r) if (nowMs - atMs > windowMs) r.delete(who);
    const needed = Math.max(1, Math.min(this.options.minDownReporters, upOsdCount - 1));
    return r.size >= needed;
  }

  /** Withdraws a report. */
  cancel(target: OsdId, reporter: string): void {
    this.reports.get(target)?.delete(reporter);
  }

  /** Up OSDs whose grace expired. `upIds` are the OSDs the map says are up. */
  expired(upIds: Iterable<OsdId>, nowMs: number): OsdId[] {
    const out: OsdId[] = [];
    for (const id of upIds) {
      const seen = this.lastSeenMs.get(id);
      if (seen === undefined) this.lastSeenMs.set(id, nowMs); // First sight after a mon restart: fresh grace.
      else if (nowMs - seen > this.options.osdGraceMs) out.push(id);
    }
    return out;
  }

  /** Down-and-in OSDs whose down interval expired. */
  dueOut(downInIds: Iterable<OsdId>, nowMs: number): OsdId[] {
    const out: OsdId[] = [];
    for (const id of downInIds) {
      const since = this.downSinceMs.get(id);
      if (since === undefined) this.downSinceMs.set(id, nowMs);
      else if (nowMs - since >= this.options.downOutIntervalMs) out.push(id);
    }
    return out;
  }
}
