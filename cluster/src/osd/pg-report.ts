/**
 * PG state transitions and the reports of them to the monitor (docs/replication.md §3).
 *
 * Owns: the coalesced report (`MSG_MON_PG_STATES` through OsdCoreOptions.reportPgStates): at
 * most one per event-loop turn, after any state change, plus the 1 s tick's re-report.
 * Invariants it relies on: every state change goes through `setState`, which checks it against
 * the transition table of pg/pg-state.ts (an illegal one is an assertion failure); only the
 * primary reports a PG's state; a PG turning clean may shrink its PG history (peering.ts).
 */
import type { Env } from '../env/env.js';
import { PgState, checkTransition, pgStateString } from '../pg/pg-state.js';
import type { OsdContext } from './osd-context.js';
import type { Pg } from './pg.js';

export class PgReporter {
  private scheduled = false;
  private stopped = false;

  constructor(private readonly o: {
    env: Env;
    pgs: ReadonlyMap<string, Pg>;
    report: (states: Record<string, string>) => void;
    maybeResetHistory: OsdContext['maybeResetHistory'];
    maybeClearPgTemp: OsdContext['maybeClearPgTemp'];
  }) {}

  stop(): void { this.stopped = true; }

  /** PG states of the PGs this OSD is primary for. */
  pgStates(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const pg of this.o.pgs.values()) if (pg.role === 'primary') out[pg.key] = pgStateString(pg.state);
    return out;
  }

  setState(pg: Pg, s: number): void {
    if (pg.state === s) return;
    pg.state = checkTransition(pg.state, s);
    this.scheduleReport();
    if ((s & PgState.CLEAN) !== 0) this.o.maybeResetHistory(pg);
    if ((s & PgState.REMAPPED) !== 0) this.o.maybeClearPgTemp(pg);
  }

  scheduleReport(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    this.o.env.setImmediate(() => {
      this.scheduled = false;
      const st = this.pgStates();
      if (Object.keys(st).length > 0) this.o.report(st);
    });
  }
}
