/**
 * Op targeting (pure): which PG, acting set and primary an object op goes to under a map, and
 * what a new map means for an op already sent (Ceph's `Objecter::_calc_target` and its
 * `RECALC_OP_TARGET_*` results).
 *
 * ```
 *   recalcTarget(map, op.target):
 *     pool gone                                  → POOL_DNE     (fail the op: CLU_ERR_NOT_FOUND)
 *     no primary, or |acting| < pool.minSize     → OSD_DOWN     (hold the op until a map fixes it)
 *     primary, acting, pgNum or primary addr/upFrom changed → NEED_RESEND
 *     otherwise                                  → NO_ACTION    (the OSD already has it)
 * ```
 *
 * Why hold ops below min_size on the client (instead of sending them to a primary that would
 * queue them): the PG cannot accept writes until the map changes anyway, so the op waits where
 * its deadline lives, and the resend on the next map is free. Ceph's OSD queues them instead;
 * ours does both (the OSD queues if the client's map is older than its own).
 */
import { NO_OSD } from '../common/ids.js';
import type { OsdId, PgId, PoolId } from '../common/ids.js';
import type { ClusterMap } from '../map/cluster-map.js';
import { objectToPg, pgToOsds } from '../placement/placement.js';

/** Where an op is (or would be) sent. */
export interface OpTarget {
  /** Map epoch this target was computed at. */
  readonly epoch: number;
  readonly pg: PgId;
  readonly acting: readonly OsdId[];
  /** Primary OSD id or NO_OSD (-1). */
  readonly primary: OsdId | typeof NO_OSD;
  /** "host:port" of the primary ('' when none). */
  readonly primaryAddr: string;
  /** The primary's `upFrom`: a restarted primary is a new target even at the same address. */
  readonly primaryUpFrom: number;
  readonly pgNum: number;
  /** Below min_size or no primary: the op must wait for a better map. */
  readonly blocked: boolean;
}

/** Ceph's recalc_op_target_result. */
export type RecalcResult = 'NO_ACTION' | 'NEED_RESEND' | 'POOL_DNE' | 'OSD_DOWN';

/** Computes the target of an op on `objectName` in `pool`; undefined when the pool is gone. */
export function calcTarget(map: ClusterMap, pool: PoolId, objectName: string): OpTarget | undefined {
  const info = map.pools.get(pool);
  if (info === undefined) return undefined;
  const pg = objectToPg(info, objectName);
  const m = pgToOsds(map, pg);
  const osd = m.primary === NO_OSD ? undefined : map.osds.get(m.primary);
  const blocked = osd === undefined || osd.addr === '' || m.acting.length < info.minSize;
  return {
    epoch: map.epoch, pg, acting: m.acting, primary: m.primary, primaryAddr: osd?.addr ?? '',
    primaryUpFrom: osd?.upFrom ?? 0, pgNum: info.pgNum, blocked,
  };
}

/**
 * Compares an op's current target with the one `map` gives. `next` is the new target (when
 * the pool exists); the caller installs it when the result is not NO_ACTION.
 */
export function recalcTarget(map: ClusterMap, pool: PoolId, objectName: string, prev: OpTarget | undefined): { result: RecalcResult; next: OpTarget | undefined } {
  const next = calcTarget(map, pool, objectName);
  if (next === undefined) return { result: 'POOL_DNE', next };
  if (next.blocked) return { result: 'OSD_DOWN', next };
  if (prev === undefined || prev.blocked || targetChanged(prev, next)) return { result: 'NEED_RESEND', next };
  return { result: 'NO_ACTION', next };
}

function targetChanged(a: OpTarget, b: OpTarget): boolean {
  if (a.primary !== b.primary || a.primaryAddr !== b.primaryAddr || a.primaryUpFrom !== b.primaryUpFrom) return true;
  if (a.pgNum !== b.pgNum || a.pg.seed !== b.pg.seed) return true;
  if (a.acting.length !== b.acting.length) return true;
  for (let i = 0; i < a.acting.length; i++) if (a.acting[i] !== b.acting[i]) return true;
  return false;
}
