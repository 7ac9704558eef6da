/**
 * Per-PG views of the monitor for operators (`strata pg ls`, `strata osd pg-temp ls`), pure:
 * map + the PG-state reports the monitor holds + its clock in, rows out.
 *
 * What a row's state means (docs/operations.md §pg ls):
 *   - the text the PG's current acting primary last reported (`active+clean`, …);
 *   - `unknown`: no report from the current primary (the monitor restarted, the primary just
 *     changed and has not spoken yet, or the PG has no OSD up at all);
 *   - `stale+<last state>` (Ceph's word): the current primary's last report is older than
 *     `staleMs`. A live primary re-reports every second (osd/pg-report.ts, 1 s tick), so a
 *     report that old means the primary stopped speaking: hung, cut off, or about to be marked
 *     down.
 * A report from an OSD that is not the PG's primary in the committed map is never shown
 * (the same rule as `strata status`).
 */
import { ClusterError } from '../common/errors.js';
import type { OsdId, PgId, PgSeed } from '../common/ids.js';
import { parsePgId, pgIdToString } from '../common/ids.js';
import type { ClusterMap, PoolInfo } from '../map/cluster-map.js';
import { poolByName } from '../map/cluster-map.js';
import { PG_STATE_WORDS } from '../pg/pg-state.js';
import { pgToOsds } from '../placement/placement.js';

/** The monitor's record of one PG's last reported state. */
export interface PgReport {
  readonly state: string;
  /** The OSD that reported it (the PG's primary when it did). */
  readonly osd: OsdId;
  /** Monitor clock (env.nowMs) when it arrived. */
  readonly atMs: number;
}

/** One `strata pg ls` row. */
export interface PgRow {
  readonly pg: string;
  readonly state: string;
  readonly up: readonly OsdId[];
  readonly acting: readonly OsdId[];
  /** Acting primary; -1 when no OSD of the PG is up. */
  readonly primary: number;
  /** The PG's pg_temp entry when it has one (the acting set comes from it, minus down OSDs). */
  readonly pgTemp?: readonly OsdId[];
  /** Age of the shown report; absent when the state is `unknown`. */
  readonly lastReportAgeMs?: number;
}

/** State words `--state` accepts: the PG state words plus `unknown` and `stale`. */
export const PG_LS_STATE_WORDS: readonly string[] = [...PG_STATE_WORDS, 'unknown', 'stale'];

/** Resolves a pool by name, or by id when the text is a number no pool is named. */
export function resolvePool(map: ClusterMap, text: string): PoolInfo | ClusterError {
  const byName = poolByName(map, text);
  if (byName !== undefined) return byName;
  const byId = /^\d{1,10}$/.test(text) ? [...map.pools.values()].find((p) => p.id === Number(text)) : undefined;
  return byId ?? new ClusterError('CLU_ERR_NOT_FOUND', `pool ${text} does not exist`, { details: { pool: text } });
}

/** The PG of `text` when it exists in `map`; `CLU_ERR_INVALID` when malformed, `CLU_ERR_NOT_FOUND` when absent. */
export function resolvePg(map: ClusterMap, text: string): PgId | ClusterError {
  const pg = parsePgId(text);
  if (pg === undefined) return new ClusterError('CLU_ERR_INVALID', `bad pgid "${text}" (want POOL.SEED, e.g. 1.1f)`, { details: { pg: text } });
  const pool = map.pools.get(pg.pool);
  if (pool === undefined || pg.seed >= pool.pgNum) return new ClusterError('CLU_ERR_NOT_FOUND', `pg ${text} does not exist`, { details: { pg: text } });
  return pg;
}

/**
 * The rows of every PG of `pool` (all pools when omitted), sorted by pool id then seed,
 * keeping those whose state text has the word `state` (split on '+') when given.
 */
export function listPgs(
  map: ClusterMap, reports: ReadonlyMap<string, PgReport>, nowMs: number,
  o: { readonly staleMs: number; readonly pool?: PoolInfo; readonly state?: string },
): PgRow[] {
  const pools = o.pool !== undefined ? [o.pool] : [...map.pools.values()].sort((a, b) => a.id - b.id);
  const rows: PgRow[] = [];
  for (const pool of pools) {
    for (let seed = 0; seed < pool.pgNum; seed++) {
      const id: PgId = { pool: pool.id, seed: seed as PgSeed };
      const row = pgRow(map, reports, nowMs, o.staleMs, id);
      if (o.state === undefined || row.state.split('+').includes(o.state)) rows.push(row);
    }
  }
  return rows;
}

function pgRow(map: ClusterMap, reports: ReadonlyMap<string, PgReport>, nowMs: number, staleMs: number, id: PgId): PgRow {
  const key = pgIdToString(id);
  const m = pgToOsds(map, id);
  const temp = map.pgTemp.get(key);
  const r = reports.get(key);
  const believed = r !== undefined && m.primary !== -1 && r.osd === m.primary ? r : undefined;
  const ageMs = believed === undefined ? undefined : Math.max(0, nowMs - believed.atMs);
  const state = believed === undefined ? 'unknown' : ageMs !== undefined && ageMs > staleMs ? `stale+${believed.state}` : believed.state;
  return {
    pg: key, state, up: [...m.up], acting: [...m.acting], primary: m.primary,
    ...(temp === undefined ? {} : { pgTemp: [...temp] }),
    ...(ageMs === undefined ? {} : { lastReportAgeMs: ageMs }),
  };
}

/** One `strata osd pg-temp ls` entry: the entry and the up and acting sets it gives. */
export interface PgTempEntry {
  readonly pg: string;
  readonly osds: readonly OsdId[];
  readonly up: readonly OsdId[];
  readonly acting: readonly OsdId[];
}

/** Every pg_temp entry of `map`, sorted by pool id then seed. */
export function pgTempEntries(map: ClusterMap): PgTempEntry[] {
  const out: { id: PgId; e: PgTempEntry }[] = [];
  for (const [pg, osds] of map.pgTemp) {
    const id = parsePgId(pg);
    if (id === undefined) continue; // Keys are pgIdToString output (map codec, incremental.ts).
    const m = pgToOsds(map, id);
    out.push({ id, e: { pg, osds: [...osds], up: [...m.up], acting: [...m.acting] } });
  }
  return out.sort((a, b) => a.id.pool - b.id.pool || a.id.seed - b.id.seed).map((x) => x.e);
}
