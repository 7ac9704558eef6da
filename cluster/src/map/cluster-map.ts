/**
 * The versioned cluster map (Ceph's OSDMap, trimmed): which OSDs exist, where they are in the
 * failure hierarchy, whether each is up (process alive) and in (holds data), and the pools.
 * Every change produces a new epoch via an `Incremental` (incremental.ts); clients and OSDs
 * compute placement from the map alone (placement/), so two holders of the same epoch agree
 * on every PG's acting set.
 *
 * Maps are immutable values: `applyIncremental` returns a new map and shares unchanged parts.
 *
 * The CRUSH-like `tree` (root → rack? → host → osd) is DERIVED from each OSD's `location` and
 * `weight`, not stored: Why: one source of truth, so an incremental cannot leave the tree and
 * the OSD table disagreeing. Bucket hash ids come from the bucket's name (not from its
 * position), so adding a host does not renumber the others and does not move their data.
 */
import { assert } from '../common/assert.js';
import { strHashRjenkins } from '../common/hash.js';
import type { Epoch, OsdId, PoolId } from '../common/ids.js';

/** 1.0 in 16.16 fixed point (Ceph's 0x10000 crush weight unit). */
export const WEIGHT_ONE = 0x10000;
/** Default RADOS object size for block images: 4 MiB, as RBD. */
export const DEFAULT_OBJECT_SIZE_BYTES = 4 * 1024 * 1024;
/** Bounds enforced on pools (control-plane validation, see `validatePool`). */
export const POOL_SIZE_MAX = 10;
export const POOL_PG_NUM_MAX = 65536;

/** Placement separation unit for a pool's replicas. */
export type FailureDomain = 'host' | 'osd';

/** Where an OSD sits in the hierarchy. `rack` is optional; hosts without one hang off root. */
export interface OsdLocation {
  readonly host: string;
  readonly rack?: string;
}

/** One OSD as the map knows it. */
export interface OsdInfo {
  readonly id: OsdId;
  /** Identity of the OSD's data directory; a boot with a different uuid is a different OSD. */
  readonly uuid: string;
  /** "host:port" of its messenger endpoint. */
  readonly addr: string;
  /** The process is alive and reachable (set by boot, cleared by failure detection). */
  readonly up: boolean;
  /** It should hold data: CRUSH chooses only `in` OSDs. */
  readonly in: boolean;
  /** CRUSH weight, 16.16 fixed point (WEIGHT_ONE ≈ 1 TiB by convention). */
  readonly weight: number;
  readonly location: OsdLocation;
  /** Epoch of the OSD's latest boot; peers use it to notice a restart. 0 = never up. */
  readonly upFrom: Epoch;
  /** Epoch it was last marked down; 0 = never. */
  readonly downAt: Epoch;
  /**
   * Marked out by the monitor itself (down longer than the down-out interval), not by an
   * operator: its next boot marks it in again (Ceph's CEPH_OSD_AUTOOUT state bit and
   * mon_osd_auto_mark_auto_out_in). Only ever true on an out OSD. In the map, so it survives
   * a monitor restart and every monitor store carries it.
   */
  readonly autoOut: boolean;
}

/** A replicated pool. */
export interface PoolInfo {
  readonly id: PoolId;
  readonly name: string;
  /** Replica count. */
  readonly size: number;
  /** Fewest replicas with which a PG still accepts writes. */
  readonly minSize: number;
  /** Number of PGs; objects map to seeds in [0, pgNum) via stable_mod. Grows only. */
  readonly pgNum: number;
  readonly failureDomain: FailureDomain;
  /** Default RADOS object size for images in this pool. */
  readonly objectSizeBytes: number;
  /** Striping defaults (Ceph file layout); stripeUnit divides objectSize. */
  readonly stripeUnitBytes: number;
  readonly stripeCount: number;
  readonly createdEpoch: Epoch;
}

/** Bucket types of the derived hierarchy. */
export type BucketType = 'root' | 'rack' | 'host';

/** A leaf of the tree. */
export interface CrushLeaf {
  readonly type: 'osd';
  readonly id: OsdId;
  /** The u32 fed to the straw2 hash for this item. */
  readonly hashId: number;
  readonly weight: number;
}

/** An interior bucket; its weight is the sum of its children's. */
export interface CrushBucket {
  readonly type: BucketType;
  readonly name: string;
  readonly hashId: number;
  readonly weight: number;
  /** Sorted by name (buckets) or id (leaves) so iteration order is canonical. */
  readonly children: readonly CrushNode[];
}

export type CrushNode = CrushBucket | CrushLeaf;

/** The whole map at one epoch. */
export interface ClusterMap {
  readonly epoch: Epoch;
  /** Cluster identity (uuid text); maps of different clusters never mix. */
  readonly fsid: string;
  readonly createdMs: number;
  readonly modifiedMs: number;
  readonly osds: ReadonlyMap<OsdId, OsdInfo>;
  readonly pools: ReadonlyMap<PoolId, PoolInfo>;
  /** Highest pool id ever allocated (pool ids are never reused, Ceph's pool_max). */
  readonly poolMax: number;
  /** Derived from `osds`; see the module comment. */
  readonly tree: CrushBucket;
  /**
   * Ceph's `pg_upmap_items`: per PG (key `pgIdToString`, e.g. "1.2a"), explicit exceptions
   * to the computed placement, written by the balancer (placement/balancer.ts). Each pair
   * `[from, to]` replaces `from` by `to` in the PG's raw set when that is valid
   * (placement.ts `applyUpmapItems`), and is ignored otherwise. Never empty lists.
   */
  readonly pgUpmapItems: ReadonlyMap<string, readonly UpmapItem[]>;
  /**
   * PG history (Vitastor's `pg/history`, the role of Ceph's past_intervals): per PG (key
   * `pgIdToString`), the acting sets the PG went active with since it was last clean. The
   * primary records its acting set here (`pg-history-add`, through the monitor) before the
   * interval accepts a client write, and `pg-history-reset` shrinks it to the clean acting set.
   * Peering activates only when, for every set listed, at least one member has been queried
   * (docs/replication.md §4). Sets are ordered as the acting set was; never empty lists.
   */
  readonly pgHistory: ReadonlyMap<string, readonly PgHistorySet[]>;
  /**
   * Client blocklist (Ceph's `osd blocklist`): client instance (`entity/nonce`, the
   * Objecter's `clientId`, sent as `reqId.client` in every op and bound to its OSD sessions
   * by the handshake) or a whole entity (`entity`: every instance, present and future) →
   * wall-clock expiry in ms.
   * Every OSD refuses ops of a listed instance once it has this epoch (client-ops.ts); the
   * monitor removes entries past their expiry (`blocklist-rm`). docs/cluster-map.md §Blocklist.
   */
  readonly blocklist: ReadonlyMap<string, number>;
  /**
   * Ceph's `pg_temp`: per PG (key `pgIdToString`), a temporary acting set that replaces the
   * computed up set while the PG's up members backfill (placement.ts `pgToOsds`: acting = this
   * list minus down OSDs, when that is not empty; primary = its first member). Requested by the
   * PG's up primary through the monitor (`MSG_MON_PG_TEMP`): [a complete OSD, ...up], so the
   * complete OSD serves I/O as primary while the up members are backfilled; cleared once they
   * are complete (docs/replication.md §4 step 5a). 1..PG_TEMP_MAX distinct existing OSDs.
   */
  readonly pgTemp: ReadonlyMap<string, readonly OsdId[]>;
}

/** Most OSDs in a pg_temp entry: a full up set plus the complete OSD in front of it. */
export const PG_TEMP_MAX = POOL_SIZE_MAX + 1;

/** One acting set of a PG's history (primary first, as the acting set was). */
export type PgHistorySet = readonly OsdId[];

/** One `pg_upmap_items` pair: move the replica on `[0]` (from) to `[1]` (to). */
export type UpmapItem = readonly [from: OsdId, to: OsdId];

/** Most pairs one PG may carry (a PG has at most POOL_SIZE_MAX replicas). */
export const UPMAP_ITEMS_MAX = POOL_SIZE_MAX;

/** Hash id of a bucket: rjenkins of "type:name", top bit set so it never equals an OSD id. */
export function bucketHashId(type: BucketType, name: string): number {
  return (strHashRjenkins(`${type}:${name}`) | 0x8000_0000) >>> 0;
}

function sumWeights(children: readonly CrushNode[]): number {
  let w = 0;
  for (const c of children) w += c.weight;
  return w;
}

function makeBucket(type: BucketType, name: string, children: CrushNode[]): CrushBucket {
  return { type, name, hashId: bucketHashId(type, name), weight: sumWeights(children), children };
}

/**
 * Builds the hierarchy from OSD locations. Out OSDs stay in the tree with their weight (Ceph:
 * `out` is a reweight to 0, applied as a rejection during the descent), so marking one OSD out
 * only remaps the PGs that used it.
 */
export function buildTree(osds: ReadonlyMap<OsdId, OsdInfo>): CrushBucket {
  const hosts = new Map<string, { rack: string | undefined; leaves: CrushLeaf[] }>();
  const sorted = [...osds.values()].sort((a, b) => a.id - b.id);
  for (const o of sorted) {
    let h = hosts.get(o.location.host);
    if (h === undefined) {
      h = { rack: o.location.rack, leaves: [] };
      hosts.set(o.location.host, h);
    }
    // A host lives in exactly one rack; the monitor rejects conflicting locations.
    assert(h.rack === o.location.rack, `host ${o.location.host} in two racks`);
    h.leaves.push({ type: 'osd', id: o.id, hashId: o.id >>> 0, weight: o.weight });
  }
  const racks = new Map<string, CrushBucket[]>();
  const rootChildren: CrushNode[] = [];
  for (const name of [...hosts.keys()].sort()) {
    const h = hosts.get(name);
    assert(h !== undefined);
    const bucket = makeBucket('host', name, h.leaves);
    if (h.rack === undefined) rootChildren.push(bucket);
    else racks.set(h.rack, [...(racks.get(h.rack) ?? []), bucket]);
  }
  for (const name of [...racks.keys()].sort()) rootChildren.push(makeBucket('rack', name, racks.get(name) ?? []));
  return makeBucket('root', 'default', rootChildren);
}

/** A map with no OSDs and no pools at epoch 0 (the state before the first incremental). */
export function emptyMap(fsid: string, createdMs: number): ClusterMap {
  const osds = new Map<OsdId, OsdInfo>();
  return {
    epoch: 0 as Epoch,
    fsid,
    createdMs,
    modifiedMs: createdMs,
    osds,
    pools: new Map(),
    poolMax: -1,
    tree: buildTree(osds),
    pgUpmapItems: new Map(),
    pgHistory: new Map(),
    blocklist: new Map(),
    pgTemp: new Map(),
  };
}

/** Default lifetime of a blocklist entry (Ceph's 1 h). */
export const BLOCKLIST_DEFAULT_MS = 3600_000;
/** Longest accepted client instance name (entity ≤ 128 + '/' + nonce). */
export const BLOCKLIST_INSTANCE_MAX = 256;

/**
 * Returns a reason string when `instance` is not a valid blocklist entry: a client instance
 * `client.NAME/NONCE`, or a whole entity `client.NAME` (matches every instance of it).
 */
export function validateClientInstance(instance: string): string | undefined {
  if (instance.length === 0 || instance.length > BLOCKLIST_INSTANCE_MAX) return `client instance of ${instance.length} characters (want 1..${BLOCKLIST_INSTANCE_MAX})`;
  if (!/^client\.[A-Za-z0-9_.\-]+(\/[A-Za-z0-9]+)?$/.test(instance)) return `bad client instance '${instance}' (want client.NAME/NONCE or client.NAME)`;
  return undefined;
}

/**
 * True when the map blocklists this client instance (`entity/nonce`), by an entry for the
 * instance or for its whole entity. Expiry is the monitor's business.
 */
export function isBlocklisted(map: ClusterMap, instance: string): boolean {
  if (map.blocklist.size === 0) return false;
  if (map.blocklist.has(instance)) return true;
  const slash = instance.lastIndexOf('/');
  return slash > 0 && map.blocklist.has(instance.slice(0, slash));
}

/** Looks a pool up by name. */
export function poolByName(map: ClusterMap, name: string): PoolInfo | undefined {
  for (const p of map.pools.values()) if (p.name === name) return p;
  return undefined;
}

/** Counts of OSDs by state. */
export function osdCounts(map: ClusterMap): { total: number; up: number; in: number } {
  let up = 0;
  let inCount = 0;
  for (const o of map.osds.values()) {
    if (o.up) up++;
    if (o.in) inCount++;
  }
  return { total: map.osds.size, up, in: inCount };
}

/** Returns a reason string when the pool is invalid, undefined when it is fine. */
export function validatePool(p: PoolInfo): string | undefined {
  if (p.name.length === 0 || p.name.length > 128 || !/^[A-Za-z0-9_.-]+$/.test(p.name)) return `bad pool name '${p.name}'`;
  if (!Number.isInteger(p.size) || p.size < 1 || p.size > POOL_SIZE_MAX) return `size ${p.size} not in [1, ${POOL_SIZE_MAX}]`;
  if (!Number.isInteger(p.minSize) || p.minSize < 1 || p.minSize > p.size) return `minSize ${p.minSize} not in [1, size]`;
  if (!Number.isInteger(p.pgNum) || p.pgNum < 1 || p.pgNum > POOL_PG_NUM_MAX) return `pgNum ${p.pgNum} not in [1, ${POOL_PG_NUM_MAX}]`;
  if (p.failureDomain !== 'host' && p.failureDomain !== 'osd') return `bad failure domain`;
  if (!isPow2(p.objectSizeBytes) || p.objectSizeBytes < 4096 || p.objectSizeBytes > 1 << 30) return `objectSize must be a power of two in [4 KiB, 1 GiB]`;
  if (!Number.isInteger(p.stripeUnitBytes) || p.stripeUnitBytes < 4096 || p.objectSizeBytes % p.stripeUnitBytes !== 0) return `stripeUnit must be ≥ 4 KiB and divide objectSize`;
  if (!Number.isInteger(p.stripeCount) || p.stripeCount < 1 || p.stripeCount > 4096) return `stripeCount not in [1, 4096]`;
  return undefined;
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Returns a reason string when the OSD record is invalid. */
export function validateOsd(o: OsdInfo): string | undefined {
  if (!/^[^\s:]+:\d{1,5}$/.test(o.addr) && o.addr !== '') return `bad addr '${o.addr}' (want host:port)`;
  if (!Number.isInteger(o.weight) || o.weight < 0 || o.weight > 0xffff_ffff) return `bad weight ${o.weight}`;
  if (o.location.host.length === 0) return 'empty host';
  if (o.location.rack !== undefined && o.location.rack.length === 0) return 'empty rack';
  if (o.autoOut && o.in) return 'auto-out but in';
  return undefined;
}

/** One row of `strata osd tree` (depth-first, indent by `depth`). */
export interface OsdTreeRow {
  readonly depth: number;
  readonly type: BucketType | 'osd';
  readonly name: string;
  readonly weight: number;
  readonly up?: boolean;
  readonly in?: boolean;
}

/** Flattens the tree for display, Ceph `ceph osd tree` style. */
export function osdTreeRows(map: ClusterMap): OsdTreeRow[] {
  const rows: OsdTreeRow[] = [];
  const walk = (node: CrushNode, depth: number): void => {
    if (node.type === 'osd') {
      const o = map.osds.get(node.id);
      assert(o !== undefined);
      rows.push({ depth, type: 'osd', name: `osd.${node.id}`, weight: node.weight, up: o.up, in: o.in });
      return;
    }
    rows.push({ depth, type: node.type, name: node.name, weight: node.weight });
    for (const c of node.children) walk(c, depth + 1);
  };
  walk(map.tree, 0);
  return rows;
}
