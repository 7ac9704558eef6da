/**
 * pg_temp rules of the monitor (Ceph's `MOSDPGTemp` handling and `OSDMap::clean_temps`),
 * pure so that MonitorCore and the OSD test harness apply exactly the same ones.
 *
 *   OSD (cap osd) ──MSG_MON_PG_TEMP {osd, pg, osds}──► checkPgTempRequest(projected map)
 *     set   (osds ≠ []): only from the PG's UP primary; 1..size+1 distinct OSDs that exist
 *                        and are up, not equal to the up set
 *     clear (osds = []): from the up primary or the acting (temp) primary
 *   ──► MapOp staged in the next epoch (batched with everything else), answered after commit
 *   every proposal: staleTempOps(projected map) drops entries that no longer mean anything:
 *     the entry minus down OSDs equals the up set (its members are all that is left, or a
 *     remap made it the up set), or is empty
 *   (pool removal, a pgNum change and OSD removal drop entries in applyIncremental itself).
 *
 * Why the up primary asks (not anyone): it is the OSD that peered the PG's up set and found
 * no complete member (docs/replication.md §4 step 5a); the temp primary asks for the clear
 * once every member is complete, since it is the one that knows.
 */
import { ClusterError } from '../common/errors.js';
import type { OsdId, PgId } from '../common/ids.js';
import { parsePgId } from '../common/ids.js';
import type { ClusterMap } from '../map/cluster-map.js';
import { sameHistorySet } from '../map/incremental.js';
import type { MapOp } from '../map/incremental.js';
import { pgToOsds } from '../placement/placement.js';

/** A checked request: the op to stage, or `undefined` when the committed map already says so. */
export interface PgTempDecision {
  readonly pg: PgId;
  readonly op: MapOp | undefined;
}

/**
 * Validates a pg_temp request from `osd` against `map` (the monitor's projected map) and
 * `committed` (to answer at once when nothing changes). Errors: `CLU_ERR_NOT_FOUND` (no such
 * PG), `CLU_ERR_PERM` (sender down), `CLU_ERR_EPOCH_STALE` (not the up/acting primary, or a
 * named OSD is down: the sender's map is behind), `CLU_ERR_INVALID` (shape).
 */
export function checkPgTempRequest(map: ClusterMap, committed: ClusterMap, osd: OsdId, pgKey: string, osds: readonly OsdId[]): PgTempDecision | ClusterError {
  const pg = parsePgId(pgKey);
  const pool = pg === undefined ? undefined : map.pools.get(pg.pool);
  if (pg === undefined || pool === undefined || pg.seed >= pool.pgNum) return new ClusterError('CLU_ERR_NOT_FOUND', `pg ${pgKey} does not exist`, { details: { pg: pgKey } });
  if (map.osds.get(osd)?.up !== true) return new ClusterError('CLU_ERR_PERM', `osd.${osd} is not up; it may not change pg ${pgKey}'s pg_temp`, { details: { pg: pgKey, osd } });
  const m = pgToOsds(map, pg);
  const upPrimary = m.up[0];
  if (osds.length === 0) {
    if (upPrimary !== osd && m.primary !== osd) {
      return new ClusterError('CLU_ERR_EPOCH_STALE', `osd.${osd} is neither the up nor the acting primary of pg ${pgKey}`, { details: { pg: pgKey, osd, up: [...m.up], acting: [...m.acting] } });
    }
    const has = map.pgTemp.has(pgKey);
    return { pg, op: has ? { op: 'pg-temp-rm', pg } : undefined };
  }
  if (upPrimary !== osd) {
    return new ClusterError('CLU_ERR_EPOCH_STALE', `osd.${osd} is not the up primary of pg ${pgKey} (up [${m.up.join(',')}])`, { details: { pg: pgKey, osd, up: [...m.up] } });
  }
  if (osds.length > pool.size + 1) return new ClusterError('CLU_ERR_INVALID', `pg ${pgKey}: pg_temp of ${osds.length} OSDs (pool size ${pool.size}, at most size + 1)`, { details: { pg: pgKey } });
  const seen = new Set<OsdId>();
  for (const id of osds) {
    const o = map.osds.get(id);
    if (o === undefined || seen.has(id)) return new ClusterError('CLU_ERR_INVALID', `pg ${pgKey}: osd.${id} ${o === undefined ? 'does not exist' : 'named twice'}`, { details: { pg: pgKey, osd: id } });
    if (!o.up) return new ClusterError('CLU_ERR_EPOCH_STALE', `pg ${pgKey}: osd.${id} is down`, { details: { pg: pgKey, osd: id } });
    seen.add(id);
  }
  if (sameHistorySet(osds, m.up)) return new ClusterError('CLU_ERR_INVALID', `pg ${pgKey}: pg_temp [${osds.join(',')}] equals the up set`, { details: { pg: pgKey } });
  const cur = committed.pgTemp.get(pgKey);
  const pending = map.pgTemp.get(pgKey);
  // Staged even when only the projected map has it: the caller waits on the next proposal.
  if (cur !== undefined && pending !== undefined && sameHistorySet(cur, osds) && sameHistorySet(pending, osds)) return { pg, op: undefined };
  return { pg, op: { op: 'pg-temp-set', pg, osds: [...osds] } };
}

/**
 * `pg-temp-rm` ops for the entries of `map` that no longer mean anything: the entry minus
 * down OSDs is empty or equals the PG's up set (Ceph's clean_temps). Cheap: one placement per
 * entry, and entries exist only while PGs backfill.
 */
export function staleTempOps(map: ClusterMap): MapOp[] {
  const ops: MapOp[] = [];
  for (const [key, osds] of map.pgTemp) {
    const pg = parsePgId(key);
    if (pg === undefined) continue;
    const m = pgToOsds(map, pg);
    const live = osds.filter((id) => map.osds.get(id)?.up === true);
    if (live.length === 0 || sameHistorySet(live, m.up)) ops.push({ op: 'pg-temp-rm', pg });
  }
  return ops;
}
