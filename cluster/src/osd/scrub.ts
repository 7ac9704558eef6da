/**
 * Scrub (docs/replication.md §6): compare every acting OSD's listing of an active+clean PG
 * (names, versions, sizes, crc32c of data and attributes), report mismatches (+inconsistent)
 * and optionally repair by pushing the primary's copy through recovery; plus the periodic scrub.
 *
 * Owns: the PG's `scrubbing` / `inconsistent` flags and the periodic scrub timer and cursor.
 * Invariants it relies on:
 * - Only the primary of an active+clean (or inconsistent) PG scrubs, one scrub per PG at a time;
 *   a scrub whose interval changed meanwhile is cancelled.
 * - The primary's copy is authoritative for repair unless its own read failed: then nothing is
 *   repaired automatically.
 */
import type { ClusterError } from '../common/errors.js';
import type { OsdId } from '../common/ids.js';
import type { TimerHandle } from '../env/env.js';
import type { InboundMessage, Session } from '../msg/session.js';
import { PgState, pgStateString } from '../pg/pg-state.js';
import type { OsdContext } from './osd-context.js';
import { compareVersion } from './osd-protocol.js';
import { decodeScrubRequest } from './osd-peer-protocol.js';
import type { ScanEntry } from './osd-peer-protocol.js';
import { activeState, errOf, isActive, pgKeyOf } from './pg.js';
import type { Need, Pg } from './pg.js';

/** Result of one scrub. */
export interface ScrubResult {
  pg: string;
  objects: number;
  inconsistent: { object: string; osd: number; reason: string }[];
  repaired: number;
}

/** What scrub uses from the rest of the OSD. */
export type ScrubContext = Pick<OsdContext, 'id' | 'env' | 'log' | 'pgs' | 'setState' | 'scanPeer' | 'recover'>;

export class Scrubber {
  private timer: TimerHandle | undefined;
  private cursor = 0;
  private stopped = false;

  constructor(private readonly c: ScrubContext, private readonly intervalMs: number) {}

  onScrubRequest(req: InboundMessage, s: Session): void {
    const m = decodeScrubRequest(req.payload);
    const pg = this.c.pgs.get(pgKeyOf(m.pool, m.seed));
    if (pg === undefined || pg.role !== 'primary') { s.replyError(req, errOf('CLU_ERR_WRONG_TARGET', `not primary for ${m.pool}.${m.seed.toString(16)}`)); return; }
    this.scrub(pg, m.repair, (err, result) => {
      if (err !== null) s.replyError(req, err);
      else s.reply(req, { type: req.type, payload: new TextEncoder().encode(JSON.stringify(result)) });
    });
  }

  /** Scrub result (JSON to the CLI). */
  scrub(pg: Pg, repair: boolean, cb: (err: ClusterError | null, result?: ScrubResult) => void): void {
    if (!isActive(pg) || (pg.state & PgState.CLEAN) === 0 && !pg.inconsistent) { cb(errOf('CLU_ERR_BUSY', `pg ${pg.key} is ${pgStateString(pg.state)}; scrub needs active+clean`)); return; }
    if (pg.scrubbing) { cb(errOf('CLU_ERR_BUSY', 'scrub in progress')); return; }
    const gen = pg.peeringGen;
    pg.scrubbing = true;
    this.c.setState(pg, activeState(pg));
    const lists = new Map<OsdId, ScanEntry[]>();
    let left = pg.acting.length;
    let failed: ClusterError | null = null;
    const end = (err: ClusterError | null, r?: ScrubResult): void => {
      pg.scrubbing = false;
      if (pg.peeringGen === gen) this.c.setState(pg, activeState(pg));
      cb(err, r);
    };
    for (const osd of pg.acting) {
      this.c.scanPeer(pg, osd, true, (err, list) => {
        if (err !== null) failed = err; else lists.set(osd, list!);
        if (--left > 0) return;
        if (pg.peeringGen !== gen) { end(errOf('CLU_ERR_CANCELLED', 'interval changed during scrub')); return; }
        if (failed !== null) { end(failed); return; }
        const inconsistent: { object: string; osd: number; reason: string }[] = [];
        const mine = new Map(lists.get(this.c.id)!.map((e) => [e.name, e]));
        const names = new Set<string>();
        for (const l of lists.values()) for (const e of l) names.add(e.name);
        const repairs = new Map<OsdId, Set<string>>();
        for (const name of [...names].sort()) {
          const a = mine.get(name);
          for (const osd of pg.acting) {
            if (osd === this.c.id) { if (a !== undefined && a.crc === 0xffffffff) inconsistent.push({ object: name, osd, reason: 'read_error' }); continue; }
            const b = lists.get(osd)!.find((e) => e.name === name);
            let reason = '';
            if (a === undefined) reason = 'extra';
            else if (b === undefined) reason = 'missing';
            else if (compareVersion(a.version, b.version) !== 0) reason = 'version';
            else if (a.size !== b.size) reason = 'size';
            else if (a.crc !== b.crc) reason = b.crc === 0xffffffff ? 'read_error' : 'checksum';
            if (reason !== '') {
              inconsistent.push({ object: name, osd, reason });
              if (!repairs.has(osd)) repairs.set(osd, new Set());
              repairs.get(osd)!.add(name);
            }
          }
        }
        pg.inconsistent = inconsistent.length > 0;
        const result: ScrubResult = { pg: pg.key, objects: mine.size, inconsistent, repaired: 0 };
        this.c.log.info({ pg: pg.key, objects: mine.size, inconsistent: inconsistent.length, repair }, 'scrub done');
        const primaryBad = inconsistent.some((x) => x.osd === this.c.id);
        if (!repair || inconsistent.length === 0 || primaryBad) { end(null, result); return; }
        // Repair: the primary's copy is authoritative; reuse the recovery push path.
        for (const [osd, set] of repairs) {
          const m = pg.peerMissing.get(osd) ?? new Map<string, Need>();
          for (const name of set) m.set(name, { version: mine.get(name)?.version });
          pg.peerMissing.set(osd, m);
          pg.incompletePeers.add(osd);
        }
        result.repaired = inconsistent.length;
        pg.inconsistent = false;
        this.c.recover(pg);
        end(null, result);
      });
    }
  }

  /** Periodic scrub: one active+clean primary PG every `intervalMs`, round robin. */
  start(): void {
    if (this.intervalMs > 0) this.scheduleScrub();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.c.env.clearTimeout(this.timer);
  }

  private scheduleScrub(): void {
    const every = this.intervalMs;
    this.timer = this.c.env.setTimeout(() => {
      if (this.stopped) return;
      const prim = [...this.c.pgs.values()].filter((p) => p.role === 'primary' && (p.state & PgState.CLEAN) !== 0);
      if (prim.length > 0) {
        const pg = prim[this.cursor++ % prim.length]!;
        this.scrub(pg, false, (err, r) => {
          if (err !== null) this.c.log.debug({ pg: pg.key, err: err.code }, 'periodic scrub skipped');
          else if (r !== undefined && r.inconsistent.length > 0) this.c.log.warn({ pg: pg.key, inconsistent: r.inconsistent.length }, 'periodic scrub found inconsistencies');
        });
      }
      this.scheduleScrub();
    }, every);
  }
}
