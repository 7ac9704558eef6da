/**
 * Binary encoding of maps and incrementals (little-endian, common/codec.ts). Both start with
 * a magic and a version byte; a decoder rejects versions it does not know with
 * `CLU_ERR_DECODE` rather than guessing. Golden bytes are pinned in
 * `cluster/test/map.test.ts`; changing the layout needs a new version number.
 *
 * Map v1:
 *   u32 magic 'SMAP' | u8 version=1 | u32 epoch | str fsid | u64 createdMs | u64 modifiedMs
 *   | i32 poolMax | u32 osdCount | osd* (ascending id) | u32 poolCount | pool* (ascending id)
 * Osd:   u32 id | str uuid | str addr | u8 flags (1=up, 2=in) | u32 weight(16.16)
 *        | str host | str rack ('' = none) | u32 upFrom | u32 downAt
 * Pool:  u32 id | str name | u8 size | u8 minSize | u32 pgNum | u8 failureDomain (0=osd, 1=host)
 *        | u32 objectSizeBytes | u32 stripeUnitBytes | u32 stripeCount | u32 createdEpoch
 * Incremental v1:
 *   u32 magic 'SINC' | u8 version=1 | u32 epoch | str fsid | u64 modifiedMs | u32 opCount | op*
 * Op:    u8 tag (1 osd-add, 2 osd-set, 3 osd-remove, 4 pool-add, 5 pool-set, 6 pool-remove)
 *        osd-set/pool-set: u32 id | u16 presence mask | present fields in declaration order.
 * The tree is derived (cluster-map.ts), so it is not encoded.
 *
 * Version 2 (pg_upmap_items) = version 1 plus:
 *   Map v2: … v1 fields … | u32 upmapCount | upmap* (ascending pool, then seed)
 *   Upmap:  u32 pool | u32 seed | u8 n (1..10) | (u32 from | u32 to)*n
 *   Incremental v2: v1 layout; op tags 7 pg-upmap-items-set (u32 pool | u32 seed | u8 n |
 *          pairs) and 8 pg-upmap-items-remove (u32 pool | u32 seed) are legal only in v2.
 * Encoders write the LOWEST version that can carry the value: a map without upmap items and
 * an incremental without upmap ops are byte-identical to v1 (the v1 golden vectors still
 * hold, and a v1-only decoder keeps working until the balancer is first used — Ceph's
 * encode-by-feature idea). Decoders accept 1 and 2.
 *
 * Version 3 (PG history, docs/replication.md §4) = version 2 plus:
 *   Map v3: … v1 fields … | u32 upmapCount (may be 0) | upmap* | u32 historyCount (≥ 1)
 *           | history* (ascending pool, then seed)
 *   History: u32 pool | u32 seed | u32 setCount (≥ 1) | (u8 n (1..10) | u32 osd*n)*setCount
 *   Incremental v3: op tags 9 pg-history-add and 10 pg-history-reset (u32 pool | u32 seed |
 *          u8 n | u32 osd*n) and 11 pg-history-remove (u32 pool | u32 seed), legal only in v3.
 * Same rule: a map with an empty history is written as v1/v2 and an incremental without a
 * history op as v1/v2, byte-identical to before; a v3 map with no history is refused.
 *
 * Version 4 (client blocklist, docs/cluster-map.md §Blocklist) = version 3 plus:
 *   Map v4: … v1 fields … | u32 upmapCount (may be 0) | upmap* | u32 historyCount (may be 0)
 *           | history* | u32 blocklistCount (≥ 1) | (str instance | u64 expiresMs)* (ascending instance)
 *   Incremental v4: op tags 12 blocklist-add (str instance | u64 expiresMs) and 13
 *          blocklist-rm (str instance), legal only in v4.
 * Same rule: a map with an empty blocklist and an incremental without a blocklist op are
 * written exactly as before (v1..v3); a v4 map with an empty blocklist is refused.
 *
 * Version 5 (auto-out, OsdInfo.autoOut) = version 4 plus:
 *   Osd flags bit 4 = autoOut (marked out by the monitor's down-out interval), legal only in
 *   map/incremental v5; a v5 map has all v4 sections (blocklistCount may be 0) and at least
 *   one auto-out OSD. osd-set presence-mask bit 256 = autoOut (u8 bool), legal only in
 *   incremental v5.
 * Same rule: a map with no auto-out OSD and an incremental that neither adds an auto-out OSD
 * nor sets the field are written exactly as before (v1..v4).
 *
 * Version 6 (pg_temp, docs/replication.md §4 step 5a) = version 5 plus:
 *   Map v6: v5 layout (blocklistCount may be 0, auto-out OSDs optional) | u32 tempCount (≥ 1)
 *           | (u32 pool | u32 seed | u8 n (1..11) | u32 osd*n)* (ascending pool, then seed)
 *   Incremental v6: op tags 14 pg-temp-set (u32 pool | u32 seed | u8 n | u32 osd*n) and
 *          15 pg-temp-rm (u32 pool | u32 seed), legal only in v6.
 * Same rule: a map without pg_temp entries and an incremental without a pg_temp op are
 * written exactly as before (v1..v5); a v6 map with no entry is refused, and a v1..v5 reader
 * refuses a v6 map or incremental (unsupported version) rather than ignoring the temp sets.
 */
import { CodecError, Reader, Writer } from '../common/codec.js';
import type { Epoch, OsdId, PgId, PgSeed, PoolId } from '../common/ids.js';
import { parsePgId, pgIdToString } from '../common/ids.js';
import { PG_TEMP_MAX, POOL_SIZE_MAX, UPMAP_ITEMS_MAX, buildTree } from './cluster-map.js';
import type { ClusterMap, FailureDomain, OsdInfo, OsdLocation, PgHistorySet, PoolInfo, UpmapItem } from './cluster-map.js';
import type { Incremental, MapOp, OsdChanges, PoolChanges } from './incremental.js';

/** 'SMAP' little-endian. */
export const MAP_MAGIC = 0x50414d53;
/** 'SINC' little-endian. */
export const INC_MAGIC = 0x434e4953;
/** Newest versions written (only when needed; see the module comment). */
export const MAP_VERSION = 6;
export const INC_VERSION = 6;
/** Bounds on counts read from untrusted bytes. */
const MAX_ITEMS = 1 << 20;

const OP_TAGS = {
  'osd-add': 1, 'osd-set': 2, 'osd-remove': 3, 'pool-add': 4, 'pool-set': 5, 'pool-remove': 6,
  'pg-upmap-items-set': 7, 'pg-upmap-items-remove': 8,
  'pg-history-add': 9, 'pg-history-reset': 10, 'pg-history-remove': 11,
  'blocklist-add': 12, 'blocklist-rm': 13,
  'pg-temp-set': 14, 'pg-temp-rm': 15,
} as const;
/** Op tags from this value on need incremental v2. */
const FIRST_V2_TAG = 7;
/** Op tags from this value on need incremental v3. */
const FIRST_V3_TAG = 9;
/** Op tags from this value on need incremental v4. */
const FIRST_V4_TAG = 12;
/** Op tags from this value on need incremental v6 (v5 added no op). */
const FIRST_V6_TAG = 14;
/** Longest client instance read from a map (cluster-map.ts BLOCKLIST_INSTANCE_MAX). */
const INSTANCE_BYTES_MAX = 256;
const OSD_SET_FIELDS = ['uuid', 'addr', 'up', 'in', 'weight', 'location', 'upFrom', 'downAt', 'autoOut'] as const;
/** osd-set presence-mask bits legal before incremental v5 (autoOut is bit 256). */
const OSD_SET_V4_MASK_LIMIT = 1 << 8;
const OSD_FLAG_UP = 1;
const OSD_FLAG_IN = 2;
const OSD_FLAG_AUTO_OUT = 4;
const POOL_SET_FIELDS = ['name', 'size', 'minSize', 'pgNum', 'failureDomain', 'objectSizeBytes', 'stripeUnitBytes', 'stripeCount'] as const;

function writeLocation(w: Writer, l: OsdLocation): void {
  w.str(l.host).str(l.rack ?? '');
}

function readLocation(r: Reader): OsdLocation {
  const host = r.str();
  const rack = r.str();
  return rack === '' ? { host } : { host, rack };
}

function writeOsd(w: Writer, o: OsdInfo): void {
  w.u32(o.id).str(o.uuid).str(o.addr).u8((o.up ? OSD_FLAG_UP : 0) | (o.in ? OSD_FLAG_IN : 0) | (o.autoOut ? OSD_FLAG_AUTO_OUT : 0)).u32(o.weight);
  writeLocation(w, o.location);
  w.u32(o.upFrom).u32(o.downAt);
}

function readOsd(r: Reader, version: number): OsdInfo {
  const id = r.u32() as OsdId;
  const uuid = r.str();
  const addr = r.str();
  const flags = r.u8();
  if (flags > (version >= 5 ? 7 : 3)) throw new CodecError(`bad osd flags ${flags} (version ${version})`);
  const weight = r.u32();
  const location = readLocation(r);
  const upFrom = r.u32() as Epoch;
  const downAt = r.u32() as Epoch;
  return { id, uuid, addr, up: (flags & OSD_FLAG_UP) !== 0, in: (flags & OSD_FLAG_IN) !== 0, weight, location, upFrom, downAt, autoOut: (flags & OSD_FLAG_AUTO_OUT) !== 0 };
}

function writeFailureDomain(w: Writer, f: FailureDomain): void {
  w.u8(f === 'host' ? 1 : 0);
}

function readFailureDomain(r: Reader): FailureDomain {
  const v = r.u8();
  if (v > 1) throw new CodecError(`bad failure domain ${v}`);
  return v === 1 ? 'host' : 'osd';
}

function writePool(w: Writer, p: PoolInfo): void {
  w.u32(p.id).str(p.name).u8(p.size).u8(p.minSize).u32(p.pgNum);
  writeFailureDomain(w, p.failureDomain);
  w.u32(p.objectSizeBytes).u32(p.stripeUnitBytes).u32(p.stripeCount).u32(p.createdEpoch);
}

function readPool(r: Reader): PoolInfo {
  const id = r.u32() as PoolId;
  const name = r.str();
  const size = r.u8();
  const minSize = r.u8();
  const pgNum = r.u32();
  const failureDomain = readFailureDomain(r);
  const objectSizeBytes = r.u32();
  const stripeUnitBytes = r.u32();
  const stripeCount = r.u32();
  const createdEpoch = r.u32() as Epoch;
  return { id, name, size, minSize, pgNum, failureDomain, objectSizeBytes, stripeUnitBytes, stripeCount, createdEpoch };
}

function readCount(r: Reader): number {
  const n = r.u32();
  if (n > MAX_ITEMS) throw new CodecError(`count ${n} exceeds ${MAX_ITEMS}`);
  return n;
}

/** Reads magic and version; returns the version (1..maxVersion). */
function checkHeader(r: Reader, magic: number, maxVersion: number, what: string): number {
  const m = r.u32();
  if (m !== magic) throw new CodecError(`${what}: bad magic 0x${m.toString(16)}`);
  const v = r.u8();
  if (v < 1 || v > maxVersion) throw new CodecError(`${what}: unsupported version ${v}`);
  return v;
}

function writePg(w: Writer, pg: PgId): void {
  w.u32(pg.pool).u32(pg.seed);
}

function readPg(r: Reader): PgId {
  const pool = r.u32();
  const seed = r.u32();
  if (pool > 0x7fff_ffff) throw new CodecError(`bad pool id ${pool}`);
  return { pool: pool as PoolId, seed: seed as PgSeed };
}

function writeUpmapItems(w: Writer, items: readonly UpmapItem[]): void {
  w.u8(items.length);
  for (const [from, to] of items) w.u32(from).u32(to);
}

function readUpmapItems(r: Reader): UpmapItem[] {
  const n = r.u8();
  if (n < 1 || n > UPMAP_ITEMS_MAX) throw new CodecError(`bad upmap pair count ${n}`);
  const items: UpmapItem[] = [];
  for (let i = 0; i < n; i++) items.push([r.u32() as OsdId, r.u32() as OsdId]);
  return items;
}

function writeHistorySet(w: Writer, set: readonly OsdId[]): void {
  w.u8(set.length);
  for (const id of set) w.u32(id);
}

function readHistorySet(r: Reader): PgHistorySet {
  const n = r.u8();
  if (n < 1 || n > POOL_SIZE_MAX) throw new CodecError(`bad history set size ${n}`);
  const set: OsdId[] = [];
  for (let i = 0; i < n; i++) set.push(r.u32() as OsdId);
  return set;
}

function writeTempSet(w: Writer, set: readonly OsdId[]): void {
  w.u8(set.length);
  for (const id of set) w.u32(id);
}

function readTempSet(r: Reader): OsdId[] {
  const n = r.u8();
  if (n < 1 || n > PG_TEMP_MAX) throw new CodecError(`bad pg_temp size ${n}`);
  const set: OsdId[] = [];
  for (let i = 0; i < n; i++) set.push(r.u32() as OsdId);
  return set;
}

/** A map's per-PG entries (pg_upmap_items, PG history, pg_temp) in canonical order (pool, then seed), keys parsed. */
function sortedByPg<T>(entries: ReadonlyMap<string, T>, what: string): { pg: PgId; value: T }[] {
  const out: { pg: PgId; value: T }[] = [];
  for (const [key, value] of entries) {
    const pg = parsePgId(key);
    if (pg === undefined) throw new CodecError(`bad ${what} key ${key}`);
    out.push({ pg, value });
  }
  return out.sort((a, b) => (a.pg.pool - b.pg.pool) || (a.pg.seed - b.pg.seed));
}

/** Encodes a full map (canonical: OSDs and pools in ascending id order). */
export function encodeMap(map: ClusterMap): Uint8Array {
  const w = new Writer(1024);
  const anyAutoOut = [...map.osds.values()].some((o) => o.autoOut);
  const version = map.pgTemp.size > 0 ? 6 : anyAutoOut ? 5 : map.blocklist.size > 0 ? 4 : map.pgHistory.size > 0 ? 3 : map.pgUpmapItems.size > 0 ? 2 : 1;
  w.u32(MAP_MAGIC).u8(version).u32(map.epoch).str(map.fsid).u64(map.createdMs).u64(map.modifiedMs).i32(map.poolMax);
  const osds = [...map.osds.values()].sort((a, b) => a.id - b.id);
  w.u32(osds.length);
  for (const o of osds) writeOsd(w, o);
  const pools = [...map.pools.values()].sort((a, b) => a.id - b.id);
  w.u32(pools.length);
  for (const p of pools) writePool(w, p);
  if (version >= 2) {
    const upmaps = sortedByPg(map.pgUpmapItems, 'upmap');
    w.u32(upmaps.length);
    for (const u of upmaps) {
      writePg(w, u.pg);
      writeUpmapItems(w, u.value);
    }
  }
  if (version >= 3) {
    const hist = sortedByPg(map.pgHistory, 'history');
    w.u32(hist.length);
    for (const h of hist) {
      writePg(w, h.pg);
      w.u32(h.value.length);
      for (const set of h.value) writeHistorySet(w, set);
    }
  }
  if (version >= 4) {
    const entries = [...map.blocklist].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    w.u32(entries.length);
    for (const [instance, expiresMs] of entries) w.str(instance).u64(expiresMs);
  }
  if (version >= 6) {
    const temps = sortedByPg(map.pgTemp, 'pg_temp');
    w.u32(temps.length);
    for (const t of temps) {
      writePg(w, t.pg);
      writeTempSet(w, t.value);
    }
  }
  return w.finish().slice();
}

/** Decodes a full map; throws `CodecError` (code CLU_ERR_DECODE) on any malformation. */
export function decodeMap(bytes: Uint8Array): ClusterMap {
  const r = new Reader(bytes);
  const version = checkHeader(r, MAP_MAGIC, MAP_VERSION, 'map');
  const epoch = r.u32() as Epoch;
  const fsid = r.str();
  const createdMs = r.u64();
  const modifiedMs = r.u64();
  const poolMax = r.i32();
  const osds = new Map<OsdId, OsdInfo>();
  for (let i = readCount(r); i > 0; i--) {
    const o = readOsd(r, version);
    if (osds.has(o.id)) throw new CodecError(`duplicate osd.${o.id}`);
    osds.set(o.id, o);
  }
  const pools = new Map<PoolId, PoolInfo>();
  for (let i = readCount(r); i > 0; i--) {
    const p = readPool(r);
    if (pools.has(p.id)) throw new CodecError(`duplicate pool ${p.id}`);
    pools.set(p.id, p);
  }
  const pgUpmapItems = new Map<string, readonly UpmapItem[]>();
  if (version >= 2) {
    const n = readCount(r);
    // Canonical form: a map without items is always written as v1 (v3: any count).
    if (n === 0 && version === 2) throw new CodecError('map v2 without upmap items');
    for (let i = n; i > 0; i--) {
      const key = pgIdToString(readPg(r));
      if (pgUpmapItems.has(key)) throw new CodecError(`duplicate upmap for pg ${key}`);
      pgUpmapItems.set(key, readUpmapItems(r));
    }
  }
  const pgHistory = new Map<string, readonly PgHistorySet[]>();
  if (version >= 3) {
    const n = readCount(r);
    if (n === 0 && version === 3) throw new CodecError('map v3 without pg history');
    for (let i = n; i > 0; i--) {
      const key = pgIdToString(readPg(r));
      if (pgHistory.has(key)) throw new CodecError(`duplicate history for pg ${key}`);
      const count = readCount(r);
      if (count === 0) throw new CodecError(`empty history for pg ${key}`);
      const sets: PgHistorySet[] = [];
      for (let j = count; j > 0; j--) sets.push(readHistorySet(r));
      pgHistory.set(key, sets);
    }
  }
  const blocklist = new Map<string, number>();
  if (version >= 4) {
    const n = readCount(r);
    if (n === 0 && version === 4) throw new CodecError('map v4 without blocklist entries');
    for (let i = n; i > 0; i--) {
      const instance = r.str(INSTANCE_BYTES_MAX);
      if (blocklist.has(instance)) throw new CodecError(`duplicate blocklist entry ${instance}`);
      blocklist.set(instance, r.u64());
    }
  }
  if (version === 5 && ![...osds.values()].some((o) => o.autoOut)) throw new CodecError('map v5 without an auto-out osd');
  const pgTemp = new Map<string, readonly OsdId[]>();
  if (version >= 6) {
    const n = readCount(r);
    if (n === 0) throw new CodecError('map v6 without pg_temp entries');
    for (let i = n; i > 0; i--) {
      const key = pgIdToString(readPg(r));
      if (pgTemp.has(key)) throw new CodecError(`duplicate pg_temp for pg ${key}`);
      pgTemp.set(key, readTempSet(r));
    }
  }
  r.end();
  return { epoch, fsid, createdMs, modifiedMs, osds, pools, poolMax, tree: buildTree(osds), pgUpmapItems, pgHistory, blocklist, pgTemp };
}

function writeOsdChanges(w: Writer, c: OsdChanges): void {
  let mask = 0;
  OSD_SET_FIELDS.forEach((f, i) => { if (c[f] !== undefined) mask |= 1 << i; });
  w.u16(mask);
  if (c.uuid !== undefined) w.str(c.uuid);
  if (c.addr !== undefined) w.str(c.addr);
  if (c.up !== undefined) w.bool(c.up);
  if (c.in !== undefined) w.bool(c.in);
  if (c.weight !== undefined) w.u32(c.weight);
  if (c.location !== undefined) writeLocation(w, c.location);
  if (c.upFrom !== undefined) w.u32(c.upFrom);
  if (c.downAt !== undefined) w.u32(c.downAt);
  if (c.autoOut !== undefined) w.bool(c.autoOut);
}

function readOsdChanges(r: Reader, version: number): OsdChanges {
  const mask = r.u16();
  if (mask >= (version >= 5 ? 1 << OSD_SET_FIELDS.length : OSD_SET_V4_MASK_LIMIT)) throw new CodecError(`bad osd-set mask ${mask} (incremental v${version})`);
  const c: OsdChanges = {};
  if (mask & 1) c.uuid = r.str();
  if (mask & 2) c.addr = r.str();
  if (mask & 4) c.up = r.bool();
  if (mask & 8) c.in = r.bool();
  if (mask & 16) c.weight = r.u32();
  if (mask & 32) c.location = readLocation(r);
  if (mask & 64) c.upFrom = r.u32() as Epoch;
  if (mask & 128) c.downAt = r.u32() as Epoch;
  if (mask & 256) c.autoOut = r.bool();
  return c;
}

function writePoolChanges(w: Writer, c: PoolChanges): void {
  let mask = 0;
  POOL_SET_FIELDS.forEach((f, i) => { if (c[f] !== undefined) mask |= 1 << i; });
  w.u16(mask);
  if (c.name !== undefined) w.str(c.name);
  if (c.size !== undefined) w.u8(c.size);
  if (c.minSize !== undefined) w.u8(c.minSize);
  if (c.pgNum !== undefined) w.u32(c.pgNum);
  if (c.failureDomain !== undefined) writeFailureDomain(w, c.failureDomain);
  if (c.objectSizeBytes !== undefined) w.u32(c.objectSizeBytes);
  if (c.stripeUnitBytes !== undefined) w.u32(c.stripeUnitBytes);
  if (c.stripeCount !== undefined) w.u32(c.stripeCount);
}

function readPoolChanges(r: Reader): PoolChanges {
  const mask = r.u16();
  if (mask >= 1 << POOL_SET_FIELDS.length) throw new CodecError(`bad pool-set mask ${mask}`);
  const c: PoolChanges = {};
  if (mask & 1) c.name = r.str();
  if (mask & 2) c.size = r.u8();
  if (mask & 4) c.minSize = r.u8();
  if (mask & 8) c.pgNum = r.u32();
  if (mask & 16) c.failureDomain = readFailureDomain(r);
  if (mask & 32) c.objectSizeBytes = r.u32();
  if (mask & 64) c.stripeUnitBytes = r.u32();
  if (mask & 128) c.stripeCount = r.u32();
  return c;
}

function writeOp(w: Writer, op: MapOp): void {
  w.u8(OP_TAGS[op.op]);
  switch (op.op) {
    case 'osd-add': return void writeOsd(w, op.osd);
    case 'osd-set': w.u32(op.id); return writeOsdChanges(w, op.changes);
    case 'osd-remove': return void w.u32(op.id);
    case 'pool-add': return writePool(w, op.pool);
    case 'pool-set': w.u32(op.id); return writePoolChanges(w, op.changes);
    case 'pool-remove': return void w.u32(op.id);
    case 'pg-upmap-items-set': writePg(w, op.pg); return writeUpmapItems(w, op.items);
    case 'pg-upmap-items-remove': return writePg(w, op.pg);
    case 'pg-history-add':
    case 'pg-history-reset': writePg(w, op.pg); return writeHistorySet(w, op.set);
    case 'pg-history-remove': return writePg(w, op.pg);
    case 'blocklist-add': return void w.str(op.instance).u64(op.expiresMs);
    case 'blocklist-rm': return void w.str(op.instance);
    case 'pg-temp-set': writePg(w, op.pg); return writeTempSet(w, op.osds);
    case 'pg-temp-rm': return writePg(w, op.pg);
  }
}

function readOp(r: Reader, version: number): MapOp {
  const tag = r.u8();
  if (tag >= FIRST_V2_TAG && version < 2) throw new CodecError(`map op tag ${tag} needs incremental v2`);
  if (tag >= FIRST_V3_TAG && version < 3) throw new CodecError(`map op tag ${tag} needs incremental v3`);
  if (tag >= FIRST_V4_TAG && version < 4) throw new CodecError(`map op tag ${tag} needs incremental v4`);
  if (tag >= FIRST_V6_TAG && version < 6) throw new CodecError(`map op tag ${tag} needs incremental v6`);
  switch (tag) {
    case 1: return { op: 'osd-add', osd: readOsd(r, version) };
    case 2: return { op: 'osd-set', id: r.u32() as OsdId, changes: readOsdChanges(r, version) };
    case 3: return { op: 'osd-remove', id: r.u32() as OsdId };
    case 4: return { op: 'pool-add', pool: readPool(r) };
    case 5: return { op: 'pool-set', id: r.u32() as PoolId, changes: readPoolChanges(r) };
    case 6: return { op: 'pool-remove', id: r.u32() as PoolId };
    case 7: return { op: 'pg-upmap-items-set', pg: readPg(r), items: readUpmapItems(r) };
    case 8: return { op: 'pg-upmap-items-remove', pg: readPg(r) };
    case 9: return { op: 'pg-history-add', pg: readPg(r), set: readHistorySet(r) };
    case 10: return { op: 'pg-history-reset', pg: readPg(r), set: readHistorySet(r) };
    case 11: return { op: 'pg-history-remove', pg: readPg(r) };
    case 12: return { op: 'blocklist-add', instance: r.str(INSTANCE_BYTES_MAX), expiresMs: r.u64() };
    case 13: return { op: 'blocklist-rm', instance: r.str(INSTANCE_BYTES_MAX) };
    case 14: return { op: 'pg-temp-set', pg: readPg(r), osds: readTempSet(r) };
    case 15: return { op: 'pg-temp-rm', pg: readPg(r) };
    default: throw new CodecError(`unknown map op tag ${tag}`);
  }
}

/** Encodes an incremental (ops in their given order: order is semantic). */
export function encodeIncremental(inc: Incremental): Uint8Array {
  const w = new Writer(128);
  const maxTag = inc.ops.reduce((m, op) => Math.max(m, OP_TAGS[op.op]), 0);
  const autoOut = inc.ops.some((op) => (op.op === 'osd-add' && op.osd.autoOut) || (op.op === 'osd-set' && op.changes.autoOut !== undefined));
  const version = maxTag >= FIRST_V6_TAG ? 6 : autoOut ? 5 : maxTag >= FIRST_V4_TAG ? 4 : maxTag >= FIRST_V3_TAG ? 3 : maxTag >= FIRST_V2_TAG ? 2 : 1;
  w.u32(INC_MAGIC).u8(version).u32(inc.epoch).str(inc.fsid).u64(inc.modifiedMs).u32(inc.ops.length);
  for (const op of inc.ops) writeOp(w, op);
  return w.finish().slice();
}

/** Decodes an incremental; throws `CodecError` on any malformation. */
export function decodeIncremental(bytes: Uint8Array): Incremental {
  const r = new Reader(bytes);
  const version = checkHeader(r, INC_MAGIC, INC_VERSION, 'incremental');
  const epoch = r.u32() as Epoch;
  const fsid = r.str();
  const modifiedMs = r.u64();
  const ops: MapOp[] = [];
  for (let i = readCount(r); i > 0; i--) ops.push(readOp(r, version));
  r.end();
  return { epoch, fsid, modifiedMs, ops };
}
