/**
 * Incrementals: the delta from epoch N-1 to N (Ceph's OSDMap::Incremental). An incremental is
 * an ordered list of ops; `applyIncremental` is pure and total on valid input, so every holder
 * of map N-1 that applies incremental N gets a byte-identical map N (tested via encodeMap).
 *
 * Why an op list rather than Ceph's field-per-change struct: batching (the monitor folds many
 * boots/failures into one epoch) is then simple concatenation, and the codec has one case per
 * op.
 */
import { ClusterError } from '../common/errors.js';
import type { Epoch, OsdId, PgId, PoolId } from '../common/ids.js';
import { parsePgId, pgIdToString } from '../common/ids.js';
import { PG_TEMP_MAX, POOL_SIZE_MAX, UPMAP_ITEMS_MAX, buildTree, validateClientInstance, validateOsd, validatePool } from './cluster-map.js';
import type { ClusterMap, OsdInfo, PgHistorySet, PoolInfo, UpmapItem } from './cluster-map.js';

/** Fields of an OSD that `osd-set` may change. */
export type OsdChanges = { -readonly [K in 'uuid' | 'addr' | 'up' | 'in' | 'weight' | 'location' | 'upFrom' | 'downAt' | 'autoOut']?: OsdInfo[K] };
/** Fields of a pool that `pool-set` may change (the id and createdEpoch are immutable). */
export type PoolChanges = {
  -readonly [K in 'name' | 'size' | 'minSize' | 'pgNum' | 'failureDomain' | 'objectSizeBytes' | 'stripeUnitBytes' | 'stripeCount']?: PoolInfo[K];
};

/** One change to the map. */
export type MapOp =
  | { readonly op: 'osd-add'; readonly osd: OsdInfo }
  | { readonly op: 'osd-set'; readonly id: OsdId; readonly changes: OsdChanges }
  | { readonly op: 'osd-remove'; readonly id: OsdId }
  | { readonly op: 'pool-add'; readonly pool: PoolInfo }
  | { readonly op: 'pool-set'; readonly id: PoolId; readonly changes: PoolChanges }
  | { readonly op: 'pool-remove'; readonly id: PoolId }
  /** Sets (replaces) a PG's `pg_upmap_items` (Ceph `osd pg-upmap-items`). */
  | { readonly op: 'pg-upmap-items-set'; readonly pg: PgId; readonly items: readonly UpmapItem[] }
  /** Drops a PG's `pg_upmap_items` (Ceph `osd rm-pg-upmap-items`). */
  | { readonly op: 'pg-upmap-items-remove'; readonly pg: PgId }
  /** Appends an acting set to a PG's history unless it is already listed (the primary, before I/O). */
  | { readonly op: 'pg-history-add'; readonly pg: PgId; readonly set: PgHistorySet }
  /** The PG's history becomes exactly `[set]` (the primary, when active+clean at full size). */
  | { readonly op: 'pg-history-reset'; readonly pg: PgId; readonly set: PgHistorySet }
  /** Drops a PG's history (diffOps; an admin declaring its older copies lost). */
  | { readonly op: 'pg-history-remove'; readonly pg: PgId }
  /** Blocklists a client instance until `expiresMs` (wall clock; replaces an existing expiry). */
  | { readonly op: 'blocklist-add'; readonly instance: string; readonly expiresMs: number }
  /** Lifts a client instance's blocklisting (admin `rm`, or the monitor pruning an expired entry). */
  | { readonly op: 'blocklist-rm'; readonly instance: string }
  /** Sets (replaces) a PG's pg_temp: its temporary acting set (the up primary, via the monitor). */
  | { readonly op: 'pg-temp-set'; readonly pg: PgId; readonly osds: readonly OsdId[] }
  /** Drops a PG's pg_temp (the PG's members are complete, or the monitor found it stale). */
  | { readonly op: 'pg-temp-rm'; readonly pg: PgId };

/** The delta that turns map `epoch - 1` into map `epoch`. */
export interface Incremental {
  readonly epoch: Epoch;
  readonly fsid: string;
  readonly modifiedMs: number;
  readonly ops: readonly MapOp[];
}

function invalid(message: string): ClusterError {
  return new ClusterError('CLU_ERR_INVALID', message);
}

/**
 * Applies `inc` to `map`, returning the next map. Throws `ClusterError(CLU_ERR_EPOCH_STALE)`
 * when `inc.epoch !== map.epoch + 1` and `CLU_ERR_INVALID` when an op does not fit the map
 * (unknown OSD, duplicate pool name, …): an incremental either applies whole or not at all.
 */
export function applyIncremental(map: ClusterMap, inc: Incremental): ClusterMap {
  if (inc.epoch !== map.epoch + 1) {
    throw new ClusterError('CLU_ERR_EPOCH_STALE', `incremental ${inc.epoch} does not follow map ${map.epoch}`, {
      details: { mapEpoch: map.epoch, incEpoch: inc.epoch },
    });
  }
  if (inc.fsid !== map.fsid) throw invalid(`fsid ${inc.fsid} != map fsid ${map.fsid}`);
  const osds = new Map(map.osds);
  const pools = new Map(map.pools);
  let poolMax = map.poolMax;
  let osdsChanged = false;
  // Why copy-on-write: most epochs touch no upmap item, and the map is shared by every holder.
  let upmaps: Map<string, readonly UpmapItem[]> | undefined;
  const writableUpmaps = (): Map<string, readonly UpmapItem[]> => (upmaps ??= new Map(map.pgUpmapItems));
  let history: Map<string, readonly PgHistorySet[]> | undefined;
  const writableHistory = (): Map<string, readonly PgHistorySet[]> => (history ??= new Map(map.pgHistory));
  let blocklist: Map<string, number> | undefined;
  let temps: Map<string, readonly OsdId[]> | undefined;
  const writableTemps = (): Map<string, readonly OsdId[]> => (temps ??= new Map(map.pgTemp));
  for (const op of inc.ops) {
    if (op.op.startsWith('osd-')) {
      osdsChanged = applyOsdOp(osds, op) || osdsChanged;
      if (op.op === 'osd-remove') {
        dropOsdFromUpmaps(upmaps ?? map.pgUpmapItems, op.id, writableUpmaps);
        dropOsdFromHistory(history ?? map.pgHistory, op.id, writableHistory);
        dropTemps(temps ?? map.pgTemp, (_pg, set) => set.includes(op.id), writableTemps);
      }
    } else if (op.op.startsWith('pool-')) {
      const pgNumBefore = op.op === 'pool-set' ? pools.get(op.id)?.pgNum : undefined;
      poolMax = applyPoolOp(pools, op, poolMax);
      if (op.op === 'pool-remove') {
        dropPoolUpmaps(upmaps ?? map.pgUpmapItems, op.id, writableUpmaps);
        dropPoolHistory(history ?? map.pgHistory, op.id, writableHistory);
      }
      // Why a pgNum change drops the pool's pg_temp: a split starts a new interval for every
      // PG of the pool and children peer on their own; an entry would pin a pre-split set.
      if (op.op === 'pool-remove' || (op.op === 'pool-set' && pools.get(op.id)?.pgNum !== pgNumBefore)) {
        dropTemps(temps ?? map.pgTemp, (pg) => parsePgId(pg)?.pool === op.id, writableTemps);
      }
    } else if (op.op === 'pg-temp-set' || op.op === 'pg-temp-rm') {
      applyTempOp(osds, pools, temps ?? map.pgTemp, op, writableTemps);
    } else if (op.op === 'blocklist-add' || op.op === 'blocklist-rm') {
      blocklist = applyBlocklistOp(blocklist ?? new Map(map.blocklist), op);
    } else if (op.op.startsWith('pg-history-')) applyHistoryOp(osds, pools, history ?? map.pgHistory, op, writableHistory);
    else applyUpmapOp(osds, pools, upmaps ?? map.pgUpmapItems, op, writableUpmaps);
  }
  return {
    epoch: inc.epoch,
    fsid: map.fsid,
    createdMs: map.createdMs,
    modifiedMs: inc.modifiedMs,
    osds,
    pools,
    poolMax,
    // Why only on change: the tree is the costliest part to derive, and most epochs only flip
    // up/down, which the tree does not encode.
    tree: osdsChanged ? buildTree(osds) : map.tree,
    pgUpmapItems: upmaps ?? map.pgUpmapItems,
    pgHistory: history ?? map.pgHistory,
    blocklist: blocklist ?? map.blocklist,
    pgTemp: temps ?? map.pgTemp,
  };
}

/**
 * Applies a pg_temp op. An entry names 1..PG_TEMP_MAX distinct existing OSDs of an existing
 * PG; who may ask, and which lists make sense, is the monitor's check (mon/pg-temp.ts).
 */
function applyTempOp(
  osds: ReadonlyMap<OsdId, OsdInfo>, pools: ReadonlyMap<PoolId, PoolInfo>, cur: ReadonlyMap<string, readonly OsdId[]>,
  op: MapOp, writable: () => Map<string, readonly OsdId[]>,
): void {
  if (op.op !== 'pg-temp-set' && op.op !== 'pg-temp-rm') throw invalid(`not a pg-temp op: ${op.op}`);
  const key = pgIdToString(op.pg);
  if (op.op === 'pg-temp-rm') {
    if (!cur.has(key)) throw invalid(`pg ${key} has no pg_temp`);
    writable().delete(key);
    return;
  }
  const pool = pools.get(op.pg.pool);
  if (pool === undefined || !Number.isInteger(op.pg.seed) || op.pg.seed < 0 || op.pg.seed >= pool.pgNum) throw invalid(`pg ${key} does not exist`);
  if (op.osds.length === 0 || op.osds.length > PG_TEMP_MAX) throw invalid(`pg ${key}: pg_temp of ${op.osds.length} OSDs (want 1..${PG_TEMP_MAX})`);
  const seen = new Set<OsdId>();
  for (const id of op.osds) {
    if (!osds.has(id)) throw invalid(`pg ${key}: osd.${id} in pg_temp does not exist`);
    if (seen.has(id)) throw invalid(`pg ${key}: osd.${id} named twice in pg_temp`);
    seen.add(id);
  }
  writable().set(key, [...op.osds]);
}

/** Drops the pg_temp entries `drop` selects (OSD or pool removed, pgNum changed). */
function dropTemps(cur: ReadonlyMap<string, readonly OsdId[]>, drop: (pg: string, set: readonly OsdId[]) => boolean, writable: () => Map<string, readonly OsdId[]>): void {
  for (const [pg, set] of cur) if (drop(pg, set)) writable().delete(pg);
}

/** Applies a blocklist op to `bl` (a private copy) and returns it. */
function applyBlocklistOp(bl: Map<string, number>, op: MapOp): Map<string, number> {
  if (op.op === 'blocklist-add') {
    const why = validateClientInstance(op.instance);
    if (why !== undefined) throw invalid(why);
    if (!Number.isSafeInteger(op.expiresMs) || op.expiresMs <= 0) throw invalid(`bad blocklist expiry ${op.expiresMs}`);
    bl.set(op.instance, op.expiresMs);
  } else if (op.op === 'blocklist-rm') {
    if (!bl.delete(op.instance)) throw invalid(`${op.instance} is not blocklisted`);
  } else throw invalid(`not a blocklist op: ${op.op}`);
  return bl;
}

/** Whether two history sets are equal (same members in the same order). */
export function sameHistorySet(a: readonly OsdId[], b: readonly OsdId[]): boolean {
  return a.length === b.length && a.every((x, i) => b[i] === x);
}

/** Whether `history` lists `set` (exactly). */
export function historyHasSet(history: readonly PgHistorySet[] | undefined, set: readonly OsdId[]): boolean {
  return history !== undefined && history.some((s) => sameHistorySet(s, set));
}

/** True when `history` is exactly `[set]` (what `pg-history-reset` to `set` leaves). */
export function historyIsOnly(history: readonly PgHistorySet[] | undefined, set: readonly OsdId[]): boolean {
  return history !== undefined && history.length === 1 && sameHistorySet(history[0]!, set);
}

/**
 * Applies a pg-history op. A set must name 1..POOL_SIZE_MAX distinct existing OSDs of an
 * existing PG; whether it is the PG's acting set is the monitor's check (it depends on who
 * asks and on the map at that time), not the map's.
 */
function applyHistoryOp(
  osds: ReadonlyMap<OsdId, OsdInfo>, pools: ReadonlyMap<PoolId, PoolInfo>, cur: ReadonlyMap<string, readonly PgHistorySet[]>,
  op: MapOp, writable: () => Map<string, readonly PgHistorySet[]>,
): void {
  if (op.op !== 'pg-history-add' && op.op !== 'pg-history-reset' && op.op !== 'pg-history-remove') throw invalid(`not a pg-history op: ${op.op}`);
  const key = pgIdToString(op.pg);
  if (op.op === 'pg-history-remove') {
    if (!cur.has(key)) throw invalid(`pg ${key} has no history`);
    writable().delete(key);
    return;
  }
  const pool = pools.get(op.pg.pool);
  if (pool === undefined || !Number.isInteger(op.pg.seed) || op.pg.seed < 0 || op.pg.seed >= pool.pgNum) throw invalid(`pg ${key} does not exist`);
  checkHistorySet(osds, key, op.set);
  const set: PgHistorySet = [...op.set];
  if (op.op === 'pg-history-reset') { writable().set(key, [set]); return; }
  const sets = cur.get(key) ?? [];
  if (historyHasSet(sets, set)) return;
  writable().set(key, [...sets, set]);
}

function checkHistorySet(osds: ReadonlyMap<OsdId, OsdInfo>, key: string, set: readonly OsdId[]): void {
  if (set.length === 0 || set.length > POOL_SIZE_MAX) throw invalid(`pg ${key}: history set of ${set.length} OSDs (want 1..${POOL_SIZE_MAX})`);
  const seen = new Set<OsdId>();
  for (const id of set) {
    if (!osds.has(id)) throw invalid(`pg ${key}: osd.${id} in history set does not exist`);
    if (seen.has(id)) throw invalid(`pg ${key}: osd.${id} named twice in a history set`);
    seen.add(id);
  }
}

/**
 * Removing an OSD declares its data lost: it leaves every history set (so peering no longer
 * waits for it); a set left empty is dropped, as is a PG left without sets. Sets that become
 * equal are merged (history lists each set once).
 */
function dropOsdFromHistory(cur: ReadonlyMap<string, readonly PgHistorySet[]>, id: OsdId, writable: () => Map<string, readonly PgHistorySet[]>): void {
  for (const [pg, sets] of cur) {
    if (!sets.some((s) => s.includes(id))) continue;
    const kept: PgHistorySet[] = [];
    for (const s of sets) {
      const k = s.filter((x) => x !== id);
      if (k.length > 0 && !historyHasSet(kept, k)) kept.push(k);
    }
    if (kept.length === 0) writable().delete(pg);
    else writable().set(pg, kept);
  }
}

/** A removed pool's PGs lose their history. */
function dropPoolHistory(cur: ReadonlyMap<string, readonly PgHistorySet[]>, pool: PoolId, writable: () => Map<string, readonly PgHistorySet[]>): void {
  for (const pg of cur.keys()) if (parsePgId(pg)?.pool === pool) writable().delete(pg);
}

/**
 * A removed OSD's id may be reused by the next new OSD (the monitor allocates the lowest free
 * id), so pairs naming it are dropped here rather than left to attract data to a stranger.
 * Out OSDs keep their pairs (ignored while out; the balancer cleans them).
 */
function dropOsdFromUpmaps(cur: ReadonlyMap<string, readonly UpmapItem[]>, id: OsdId, writable: () => Map<string, readonly UpmapItem[]>): void {
  for (const [pg, items] of cur) {
    if (!items.some(([f, t]) => f === id || t === id)) continue;
    const kept = items.filter(([f, t]) => f !== id && t !== id);
    if (kept.length === 0) writable().delete(pg);
    else writable().set(pg, kept);
  }
}

/** A removed pool's PGs lose their items (pool ids are never reused, but the map stays clean). */
function dropPoolUpmaps(cur: ReadonlyMap<string, readonly UpmapItem[]>, pool: PoolId, writable: () => Map<string, readonly UpmapItem[]>): void {
  for (const pg of cur.keys()) if (parsePgId(pg)?.pool === pool) writable().delete(pg);
}

/**
 * Applies a pg-upmap op. A set is checked for shape only (PG exists, OSDs exist, 1..10 pairs,
 * no OSD named twice, from ≠ to); whether a pair takes effect is decided at placement time
 * (placement.ts), because that depends on state that changes without touching the item.
 */
function applyUpmapOp(
  osds: ReadonlyMap<OsdId, OsdInfo>, pools: ReadonlyMap<PoolId, PoolInfo>, cur: ReadonlyMap<string, readonly UpmapItem[]>,
  op: MapOp, writable: () => Map<string, readonly UpmapItem[]>,
): void {
  if (op.op !== 'pg-upmap-items-set' && op.op !== 'pg-upmap-items-remove') throw invalid(`not a pg-upmap op: ${op.op}`);
  const key = pgIdToString(op.pg);
  if (op.op === 'pg-upmap-items-remove') {
    if (!cur.has(key)) throw invalid(`pg ${key} has no upmap items`);
    writable().delete(key);
    return;
  }
  const pool = pools.get(op.pg.pool);
  if (pool === undefined || !Number.isInteger(op.pg.seed) || op.pg.seed < 0 || op.pg.seed >= pool.pgNum) throw invalid(`pg ${key} does not exist`);
  if (op.items.length === 0 || op.items.length > UPMAP_ITEMS_MAX) throw invalid(`pg ${key}: ${op.items.length} upmap pairs (want 1..${UPMAP_ITEMS_MAX})`);
  const named = new Set<OsdId>();
  for (const [from, to] of op.items) {
    if (from === to) throw invalid(`pg ${key}: upmap pair ${from} → ${to} maps an OSD to itself`);
    for (const id of [from, to]) {
      if (!osds.has(id)) throw invalid(`pg ${key}: osd.${id} does not exist`);
      if (named.has(id)) throw invalid(`pg ${key}: osd.${id} named twice in upmap pairs`);
      named.add(id);
    }
  }
  writable().set(key, op.items.map(([f, t]): UpmapItem => [f, t]));
}

/** Applies one OSD op; returns true when the tree must be rebuilt. */
function applyOsdOp(osds: Map<OsdId, OsdInfo>, op: MapOp): boolean {
  switch (op.op) {
    case 'osd-add': {
      if (osds.has(op.osd.id)) throw invalid(`osd.${op.osd.id} exists`);
      checkOsd(op.osd);
      checkHostRack(osds, op.osd);
      osds.set(op.osd.id, op.osd);
      return true;
    }
    case 'osd-set': {
      const cur = osds.get(op.id);
      if (cur === undefined) throw invalid(`osd.${op.id} does not exist`);
      const next: OsdInfo = { ...cur, ...op.changes };
      checkOsd(next);
      if (op.changes.location !== undefined) checkHostRack(osds, next);
      osds.set(op.id, next);
      return op.changes.weight !== undefined || op.changes.location !== undefined;
    }
    case 'osd-remove': {
      if (!osds.delete(op.id)) throw invalid(`osd.${op.id} does not exist`);
      return true;
    }
    default:
      throw invalid(`not an osd op: ${op.op}`);
  }
}

function checkOsd(o: OsdInfo): void {
  const why = validateOsd(o);
  if (why !== undefined) throw invalid(`osd.${o.id}: ${why}`);
}

/** A host lives in one rack: reject an OSD that would put its host in a second rack. */
function checkHostRack(osds: ReadonlyMap<OsdId, OsdInfo>, o: OsdInfo): void {
  for (const other of osds.values()) {
    if (other.id === o.id || other.location.host !== o.location.host) continue;
    if (other.location.rack !== o.location.rack) throw invalid(`host ${o.location.host} already in rack ${other.location.rack ?? '(none)'}`);
  }
}

/** Applies one pool op; returns the new poolMax. */
function applyPoolOp(pools: Map<PoolId, PoolInfo>, op: MapOp, poolMax: number): number {
  switch (op.op) {
    case 'pool-add': {
      if (pools.has(op.pool.id) || op.pool.id <= poolMax) throw invalid(`pool id ${op.pool.id} already used`);
      checkPool(pools, op.pool);
      pools.set(op.pool.id, op.pool);
      return op.pool.id;
    }
    case 'pool-set': {
      const cur = pools.get(op.id);
      if (cur === undefined) throw invalid(`pool ${op.id} does not exist`);
      const next: PoolInfo = { ...cur, ...op.changes };
      // Why: PG merge is not implemented; shrinking pgNum would orphan objects.
      if (next.pgNum < cur.pgNum) throw invalid(`pgNum cannot shrink (${cur.pgNum} → ${next.pgNum})`);
      checkPool(pools, next);
      pools.set(op.id, next);
      return poolMax;
    }
    case 'pool-remove': {
      if (!pools.delete(op.id)) throw invalid(`pool ${op.id} does not exist`);
      return poolMax;
    }
    default:
      throw invalid(`not a pool op: ${op.op}`);
  }
}

function checkPool(pools: ReadonlyMap<PoolId, PoolInfo>, p: PoolInfo): void {
  const why = validatePool(p);
  if (why !== undefined) throw invalid(`pool ${p.name}: ${why}`);
  for (const other of pools.values()) {
    if (other.id !== p.id && other.name === p.name) throw invalid(`pool name ${p.name} in use`);
  }
}

/**
 * The ops that turn `a` into `b` (same fsid). Used by tests and tools to check that a chain of
 * incrementals and a full map agree; `applyIncremental(a, {epoch: a.epoch+1, ops: diffOps(a, b)})`
 * equals `b` up to epoch and stamps.
 */
export function diffOps(a: ClusterMap, b: ClusterMap): MapOp[] {
  const ops: MapOp[] = [];
  for (const [id, oa] of a.osds) {
    const ob = b.osds.get(id);
    if (ob === undefined || ob.uuid !== oa.uuid) ops.push({ op: 'osd-remove', id });
  }
  for (const [id, pa] of a.pools) if (!b.pools.has(id)) ops.push({ op: 'pool-remove', id: pa.id });
  for (const [id, ob] of b.osds) {
    const oa = a.osds.get(id);
    if (oa === undefined || oa.uuid !== ob.uuid) ops.push({ op: 'osd-add', osd: ob });
    else {
      const changes = changedFields(oa, ob) as OsdChanges;
      if (Object.keys(changes).length > 0) ops.push({ op: 'osd-set', id, changes });
    }
  }
  for (const [id, pb] of b.pools) {
    const pa = a.pools.get(id);
    if (pa === undefined) ops.push({ op: 'pool-add', pool: pb });
    else {
      const changes = changedFields(pa, pb) as PoolChanges;
      if (Object.keys(changes).length > 0) ops.push({ op: 'pool-set', id, changes });
    }
  }
  // Items of removed pools/OSDs are dropped by those ops; what b still has must be set.
  const removedOsds = new Set(ops.flatMap((op) => (op.op === 'osd-remove' ? [op.id] : [])));
  for (const [pg, items] of a.pgUpmapItems) {
    const id = parsePgId(pg);
    const survives = items.some(([f, t]) => !removedOsds.has(f) && !removedOsds.has(t));
    if (id !== undefined && !b.pgUpmapItems.has(pg) && b.pools.has(id.pool) && survives) ops.push({ op: 'pg-upmap-items-remove', pg: id });
  }
  for (const [pg, items] of b.pgUpmapItems) {
    const id = parsePgId(pg);
    if (id !== undefined && JSON.stringify(a.pgUpmapItems.get(pg)) !== JSON.stringify(items)) ops.push({ op: 'pg-upmap-items-set', pg: id, items });
  }
  // History: what a's history becomes after the OSD/pool removals above, compared with b's.
  for (const [pg, setsA] of a.pgHistory) {
    const id = parsePgId(pg);
    if (id === undefined || b.pgHistory.has(pg) || !b.pools.has(id.pool)) continue;
    if (setsA.some((s) => s.some((x) => !removedOsds.has(x)))) ops.push({ op: 'pg-history-remove', pg: id });
  }
  for (const [pg, setsB] of b.pgHistory) {
    const id = parsePgId(pg);
    const first = setsB[0];
    if (id === undefined || first === undefined) continue;
    const afterRemovals = historyAfterRemovals(a.pgHistory.get(pg), removedOsds);
    if (JSON.stringify(afterRemovals) === JSON.stringify(setsB)) continue;
    // Appending is enough when a's (surviving) sets are a prefix of b's; otherwise restart.
    const prefix = afterRemovals !== undefined && afterRemovals.length <= setsB.length && afterRemovals.every((s, i) => sameHistorySet(s, setsB[i] ?? []));
    const from = prefix ? afterRemovals.length : 1;
    if (!prefix) ops.push({ op: 'pg-history-reset', pg: id, set: first });
    for (const set of setsB.slice(from)) ops.push({ op: 'pg-history-add', pg: id, set });
  }
  // pg_temp: entries naming a removed OSD, of a removed pool or of a pool whose pgNum changed
  // are dropped by those ops; what b has and a (after them) does not is set.
  const tempDropped = (pg: string, set: readonly OsdId[]): boolean => {
    const id = parsePgId(pg);
    return id === undefined || set.some((x) => removedOsds.has(x)) || b.pools.get(id.pool)?.pgNum !== a.pools.get(id.pool)?.pgNum;
  };
  for (const [pg, set] of a.pgTemp) {
    const id = parsePgId(pg);
    if (id !== undefined && !b.pgTemp.has(pg) && !tempDropped(pg, set)) ops.push({ op: 'pg-temp-rm', pg: id });
  }
  for (const [pg, set] of b.pgTemp) {
    const id = parsePgId(pg);
    const before = a.pgTemp.get(pg);
    if (id !== undefined && (before === undefined || tempDropped(pg, before) || !sameHistorySet(before, set))) ops.push({ op: 'pg-temp-set', pg: id, osds: set });
  }
  for (const inst of a.blocklist.keys()) if (!b.blocklist.has(inst)) ops.push({ op: 'blocklist-rm', instance: inst });
  for (const [inst, exp] of b.blocklist) if (a.blocklist.get(inst) !== exp) ops.push({ op: 'blocklist-add', instance: inst, expiresMs: exp });
  return ops;
}

/** `sets` after removing the OSDs in `removed` (as `osd-remove` does); undefined when none is left. */
function historyAfterRemovals(sets: readonly PgHistorySet[] | undefined, removed: ReadonlySet<OsdId>): PgHistorySet[] | undefined {
  if (sets === undefined) return undefined;
  const kept: PgHistorySet[] = [];
  for (const s of sets) {
    const k = s.filter((x) => !removed.has(x));
    if (k.length > 0 && !historyHasSet(kept, k)) kept.push(k);
  }
  return kept.length === 0 ? undefined : kept;
}

function changedFields<T extends object>(a: T, b: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(b) as (keyof T)[]) {
    if (k === 'id' || k === 'createdEpoch') continue;
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out[k] = b[k];
  }
  return out;
}
