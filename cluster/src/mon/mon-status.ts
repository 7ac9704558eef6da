/**
 * `strata status`: health summary computed from the map and the PG states OSDs reported.
 * Pure. Health follows Ceph's coarse levels: ERR when data is unavailable (a PG with fewer
 * live replicas than minSize, or pools but no OSD up), WARN when degraded (OSDs down, PGs not
 * active+clean or not yet reported), OK otherwise.
 */
import type { ClusterMap } from '../map/cluster-map.js';
import { osdCounts } from '../map/cluster-map.js';
import { mapAllPgs } from '../placement/placement.js';

export type HealthStatus = 'HEALTH_OK' | 'HEALTH_WARN' | 'HEALTH_ERR';

/** One health check, Ceph-style stable code plus a sentence. */
export interface HealthCheck {
  readonly code: 'OSD_DOWN' | 'OSD_OUT' | 'PG_DEGRADED' | 'PG_UNAVAILABLE' | 'PG_NOT_CLEAN' | 'NO_OSDS';
  readonly severity: 'HEALTH_WARN' | 'HEALTH_ERR';
  readonly message: string;
}

/** The status report. */
export interface MonStatus {
  readonly fsid: string;
  readonly epoch: number;
  readonly health: HealthStatus;
  readonly checks: readonly HealthCheck[];
  readonly osds: { readonly total: number; readonly up: number; readonly in: number };
  readonly pools: number;
  readonly pgs: number;
  /** Reported PG state → count; PGs nobody reported are counted under 'unknown'. */
  readonly pgStates: Readonly<Record<string, number>>;
}

/** Computes the status from `map` and the latest reported state of each PG (by pgid text). */
export function computeStatus(map: ClusterMap, reported: ReadonlyMap<string, string>): MonStatus {
  const checks: HealthCheck[] = [];
  const osds = osdCounts(map);
  if (osds.up < osds.total) checks.push({ code: 'OSD_DOWN', severity: 'HEALTH_WARN', message: `${osds.total - osds.up} osds down` });
  if (osds.in < osds.total) checks.push({ code: 'OSD_OUT', severity: 'HEALTH_WARN', message: `${osds.total - osds.in} osds out` });
  if (map.pools.size > 0 && osds.up === 0) checks.push({ code: 'NO_OSDS', severity: 'HEALTH_ERR', message: 'no osds up' });
  let pgs = 0;
  let degraded = 0;
  let unavailable = 0;
  const pgStates: Record<string, number> = {};
  for (const pool of map.pools.values()) {
    mapAllPgs(map, pool).forEach((m, seed) => {
      pgs++;
      if (m.acting.length < pool.minSize) unavailable++;
      else if (m.acting.length < pool.size) degraded++;
      const state = reported.get(`${pool.id}.${seed.toString(16)}`) ?? 'unknown';
      pgStates[state] = (pgStates[state] ?? 0) + 1;
    });
  }
  if (unavailable > 0) checks.push({ code: 'PG_UNAVAILABLE', severity: 'HEALTH_ERR', message: `${unavailable} pgs have fewer than minSize replicas up` });
  if (degraded > 0) checks.push({ code: 'PG_DEGRADED', severity: 'HEALTH_WARN', message: `${degraded} pgs degraded` });
  const notClean = pgs - (pgStates['active+clean'] ?? 0);
  if (notClean > 0) checks.push({ code: 'PG_NOT_CLEAN', severity: 'HEALTH_WARN', message: `${notClean} pgs not active+clean` });
  const health: HealthStatus = checks.some((c) => c.severity === 'HEALTH_ERR') ? 'HEALTH_ERR' : checks.length > 0 ? 'HEALTH_WARN' : 'HEALTH_OK';
  return { fsid: map.fsid, epoch: map.epoch, health, checks, osds, pools: map.pools.size, pgs, pgStates };
}
