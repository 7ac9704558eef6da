/**
 * PG states as bit flags with an explicit transition table (Vitastor pg_states.h style).
 * Only the primary runs this machine; replicas just persist what the primary tells them.
 *
 *            map change touching the PG (any state)
 *        ┌────────────────────────────────────────────┐
 *        ▼                                            │
 *   ┌─────────┐ infos+logs from acting ∪ prev   ┌───────────────────────────┐
 *   │ PEERING │────────────────────────────────►│ ACTIVE [+DEGRADED]         │
 *   └─────────┘                                  │  [+RECOVERING|BACKFILLING] │
 *     │    ▲ (map change, retry timer,           └───────────────────────────┘
 *     ▼    │  primary backfilled)                   │ every peer complete,
 *   ┌──────────┐                                    │ acting = pool size
 *   │INCOMPLETE│ +BACKFILLING: no acting member     ▼
 *   │          │ is complete; the primary copies ┌──────────────┐  scrub finds a
 *   │          │ the PG from a complete OSD      │ ACTIVE+CLEAN │──mismatch──► +INCONSISTENT
 *   │  DOWN    │ acting < min_size / prior set   └──────────────┘  (repair clears it)
 *   └──────────┘
 *
 * `remapped` = acting ≠ up (a pg_temp: the complete OSD serves I/O as primary while the up
 * members backfill; never `clean` — the primary asks the monitor to clear the pg_temp once
 * every member is complete, and the PG goes clean on its up set).
 * `degraded` = some acting member misses objects or acting < pool size; `recovering` = log
 * based pushes/pulls in progress; `backfilling` = a peer whose log does not overlap is being
 * filled from a full scan. `incomplete+backfilling` (no client I/O): every acting member needs
 * backfill, so the primary first backfills itself from a complete OSD outside the acting set,
 * then peers again and activates with itself complete (docs/replication.md §4, step 5a).
 */
import { assert } from '../common/assert.js';

export const PgState = {
  ACTIVE: 0x1,
  CLEAN: 0x2,
  DEGRADED: 0x4,
  RECOVERING: 0x8,
  BACKFILLING: 0x10,
  PEERING: 0x20,
  INCONSISTENT: 0x40,
  INCOMPLETE: 0x80,
  DOWN: 0x100,
  UNDERSIZED: 0x200,
  SCRUBBING: 0x400,
  /** Acting ≠ up: a pg_temp keeps a complete OSD acting while the up members backfill. Never clean. */
  REMAPPED: 0x800,
} as const;

const NAMES: [number, string][] = [
  [PgState.PEERING, 'peering'], [PgState.DOWN, 'down'], [PgState.INCOMPLETE, 'incomplete'], [PgState.ACTIVE, 'active'],
  [PgState.CLEAN, 'clean'], [PgState.REMAPPED, 'remapped'], [PgState.UNDERSIZED, 'undersized'], [PgState.DEGRADED, 'degraded'], [PgState.RECOVERING, 'recovering'],
  [PgState.BACKFILLING, 'backfilling'], [PgState.SCRUBBING, 'scrubbing'], [PgState.INCONSISTENT, 'inconsistent'],
];

/** Every word a state text can hold (`strata pg ls --state WORD` accepts these). */
export const PG_STATE_WORDS: readonly string[] = NAMES.map(([, n]) => n);

/** "active+clean" style text (Ceph's pg_state_string). */
export function pgStateString(s: number): string {
  const parts = NAMES.filter(([bit]) => (s & bit) !== 0).map(([, n]) => n);
  return parts.length === 0 ? 'unknown' : parts.join('+');
}

/** The base of a state: exactly one of these bits is set in every legal state. */
const BASES = PgState.PEERING | PgState.ACTIVE | PgState.DOWN | PgState.INCOMPLETE;
const ACTIVE_MODIFIERS = PgState.CLEAN | PgState.DEGRADED | PgState.RECOVERING | PgState.BACKFILLING | PgState.INCONSISTENT | PgState.UNDERSIZED | PgState.SCRUBBING | PgState.REMAPPED;

/** Allowed base → base moves (0 = the initial state of a PG object). */
const TRANSITIONS: Record<number, readonly number[]> = {
  0: [PgState.PEERING, PgState.DOWN],
  [PgState.PEERING]: [PgState.PEERING, PgState.ACTIVE, PgState.DOWN, PgState.INCOMPLETE],
  [PgState.ACTIVE]: [PgState.ACTIVE, PgState.PEERING, PgState.DOWN],
  [PgState.DOWN]: [PgState.PEERING, PgState.DOWN],
  [PgState.INCOMPLETE]: [PgState.PEERING, PgState.DOWN, PgState.INCOMPLETE],
};

/** Asserts a state is well formed (one base; modifiers only with ACTIVE; CLEAN excludes degraded work). */
export function assertValidState(s: number): void {
  const base = s & BASES;
  assert(base !== 0 && (base & (base - 1)) === 0, `pg state needs exactly one base: ${pgStateString(s)}`);
  // INCOMPLETE may carry BACKFILLING: the primary backfills itself before activation.
  const allowed = base === PgState.INCOMPLETE ? PgState.INCONSISTENT | PgState.BACKFILLING : PgState.INCONSISTENT;
  if (base !== PgState.ACTIVE) assert((s & ACTIVE_MODIFIERS & ~allowed) === 0, `modifiers without active: ${pgStateString(s)}`);
  if ((s & PgState.CLEAN) !== 0) assert((s & (PgState.DEGRADED | PgState.RECOVERING | PgState.BACKFILLING | PgState.UNDERSIZED | PgState.REMAPPED)) === 0, `clean with pending work: ${pgStateString(s)}`);
}

/** Checks `from → to` against the table; an illegal transition is an assertion failure. */
export function checkTransition(from: number, to: number): number {
  assertValidState(to);
  const allowed = TRANSITIONS[from & BASES] ?? [];
  assert(allowed.includes(to & BASES), `illegal pg transition ${pgStateString(from)} → ${pgStateString(to)}`);
  return to;
}
