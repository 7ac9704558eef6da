/**
 * Payload codecs of the monitor's messages (types in msg/types.ts, 0x0100 range; layouts in
 * docs/cluster-protocol.md §7). Pure: encode returns bytes, decode throws `CodecError`
 * (`CLU_ERR_DECODE`) on truncated, trailing or out-of-range input, so a handler can turn any
 * malformed payload into one error reply.
 *
 * Admin commands are JSON (`MSG_MON_COMMAND`), as Ceph's `mon_command`. Why JSON there and
 * binary elsewhere: commands are rare, human-driven and grow new arguments often, while boot,
 * beacon and map pushes are periodic and fixed. JSON is still validated into a typed
 * `MonCommand` by `parseMonCommand` before the monitor sees it.
 */
import { CodecError, Reader, Writer } from '../common/codec.js';
import { ClusterError } from '../common/errors.js';
import type { Epoch, OsdId } from '../common/ids.js';
import { ID_MAX, parsePgId } from '../common/ids.js';
import { monCapsAllow } from '../auth/caps.js';
import type { Caps } from '../auth/caps.js';
import { PG_TEMP_MAX, validateClientInstance } from '../map/cluster-map.js';
import type { ClusterMap, FailureDomain, OsdLocation } from '../map/cluster-map.js';
import type { Incremental } from '../map/incremental.js';
import { decodeIncremental, decodeMap, encodeIncremental, encodeMap } from '../map/map-codec.js';
import type { FailureKind, MapUpdate, OsdBootRequest } from './monitor-core.js';
import { PG_LS_STATE_WORDS } from './pg-list.js';

const NO_ID = 0xffff_ffff;
/** Largest map or incremental accepted in a push (a 64-OSD map is a few KiB). */
const MAP_BYTES_MAX = 16 * 1024 * 1024;
/** Largest JSON command or reply. */
const COMMAND_BYTES_MAX = 1024 * 1024;

// ───────────────────────────── subscribe / map push ─────────────────────────────

/** MSG_MON_SUBSCRIBE: `u32 haveEpoch`. The reply is empty; pushes follow. */
export function encodeSubscribe(haveEpoch: number): Uint8Array {
  return new Writer(4).u32(haveEpoch).finish();
}

export function decodeSubscribe(payload: Uint8Array): Epoch {
  const r = new Reader(payload);
  const e = r.u32();
  r.end();
  return e as Epoch;
}

/** MSG_MON_MAP: `u8 kind (1 incrementals, 2 full) | u32 n | bytes inc*` or `| bytes map`. */
export function encodeMapUpdate(u: MapUpdate): Uint8Array {
  const w = new Writer(1024);
  if (u.kind === 'full') return w.u8(2).bytes(encodeMap(u.map)).finish();
  w.u8(1).u32(u.incrementals.length);
  for (const inc of u.incrementals) w.bytes(encodeIncremental(inc));
  return w.finish();
}

export function decodeMapUpdate(payload: Uint8Array): MapUpdate {
  const r = new Reader(payload);
  const kind = r.u8();
  if (kind === 2) {
    const map: ClusterMap = decodeMap(r.bytes(MAP_BYTES_MAX));
    r.end();
    return { kind: 'full', map };
  }
  if (kind !== 1) throw new CodecError(`bad map update kind ${kind}`);
  const n = r.u32();
  if (n > 10_000) throw new CodecError(`too many incrementals: ${n}`);
  const incrementals: Incremental[] = [];
  for (let i = 0; i < n; i++) incrementals.push(decodeIncremental(r.bytes(MAP_BYTES_MAX)));
  r.end();
  return { kind: 'incrementals', incrementals };
}

// ───────────────────────────── OSD boot / beacon ─────────────────────────────

/** MSG_MON_OSD_BOOT: `u32 osdId (0xffffffff none) | str uuid | str addr | str host | str rack ('' none) | u32 weight (0 default)`. */
export function encodeOsdBoot(req: OsdBootRequest): Uint8Array {
  return new Writer(128).u32(req.osdId ?? NO_ID).str(req.uuid).str(req.addr).str(req.location.host)
    .str(req.location.rack ?? '').u32(req.weight ?? 0).finish();
}

export function decodeOsdBoot(payload: Uint8Array): OsdBootRequest {
  const r = new Reader(payload);
  const id = r.u32();
  const uuid = r.str(128);
  const addr = r.str(256);
  const host = r.str(256);
  const rack = r.str(256);
  const weight = r.u32();
  r.end();
  if (id !== NO_ID && id > ID_MAX) throw new CodecError(`bad osd id ${id}`);
  const location: OsdLocation = rack === '' ? { host } : { host, rack };
  return {
    uuid, addr, location,
    ...(id === NO_ID ? {} : { osdId: id }),
    ...(weight === 0 ? {} : { weight }),
  };
}

/** Boot reply: `u32 osdId | u32 epoch`. */
export function encodeOsdBootReply(osdId: OsdId, epoch: Epoch): Uint8Array {
  return new Writer(8).u32(osdId).u32(epoch).finish();
}

export function decodeOsdBootReply(payload: Uint8Array): { osdId: OsdId; epoch: Epoch } {
  const r = new Reader(payload);
  const osdId = r.u32() as OsdId;
  const epoch = r.u32() as Epoch;
  r.end();
  return { osdId, epoch };
}

/** MSG_MON_OSD_BEACON: `u32 osdId | u32 epoch the OSD has`. */
export function encodeBeacon(osdId: OsdId, epoch: number): Uint8Array {
  return new Writer(8).u32(osdId).u32(epoch).finish();
}

export function decodeBeacon(payload: Uint8Array): { osdId: OsdId; epoch: Epoch } {
  const r = new Reader(payload);
  const osdId = r.u32();
  const epoch = r.u32() as Epoch;
  r.end();
  if (osdId > ID_MAX) throw new CodecError(`bad osd id ${osdId}`);
  return { osdId: osdId as OsdId, epoch };
}

/** What the monitor answers to a beacon. */
export type BeaconResult = 'ok' | 'boot-required' | 'unknown-osd';
const BEACON_RESULTS: readonly BeaconResult[] = ['ok', 'boot-required', 'unknown-osd'];

/** Beacon reply: `u8 result (0 ok, 1 boot-required, 2 unknown-osd)`. */
export function encodeBeaconReply(result: BeaconResult): Uint8Array {
  return new Writer(1).u8(BEACON_RESULTS.indexOf(result)).finish();
}

export function decodeBeaconReply(payload: Uint8Array): BeaconResult {
  const r = new Reader(payload);
  const result = BEACON_RESULTS[r.u8()];
  r.end();
  if (result === undefined) throw new CodecError('bad beacon result');
  return result;
}

// ───────────────────────────── failure reports / PG states ─────────────────────────────

/** A failure report (or its withdrawal, `cancel`). */
export interface FailureReport {
  readonly target: OsdId;
  readonly kind: FailureKind;
  readonly cancel: boolean;
}

/** MSG_MON_FAILURE: `u32 target | u8 kind (1 refused, 2 timeout) | bool cancel`. */
export function encodeFailureReport(f: FailureReport): Uint8Array {
  return new Writer(6).u32(f.target).u8(f.kind === 'refused' ? 1 : 2).bool(f.cancel).finish();
}

export function decodeFailureReport(payload: Uint8Array): FailureReport {
  const r = new Reader(payload);
  const target = r.u32();
  const kindCode = r.u8();
  const cancel = r.bool();
  r.end();
  if (target > ID_MAX) throw new CodecError(`bad osd id ${target}`);
  if (kindCode !== 1 && kindCode !== 2) throw new CodecError(`bad failure kind ${kindCode}`);
  return { target: target as OsdId, kind: kindCode === 1 ? 'refused' : 'timeout', cancel };
}

/** MSG_MON_PG_STATES: `u32 osdId | u32 n | (str pgid, str state)*`. */
export function encodePgStates(osdId: OsdId, states: Readonly<Record<string, string>>): Uint8Array {
  const entries = Object.entries(states);
  const w = new Writer(16 + entries.length * 24).u32(osdId).u32(entries.length);
  for (const [pg, state] of entries) w.str(pg).str(state);
  return w.finish();
}

export function decodePgStates(payload: Uint8Array): { osdId: OsdId; states: Record<string, string> } {
  const r = new Reader(payload);
  const osdId = r.u32();
  const n = r.u32();
  if (osdId > ID_MAX) throw new CodecError(`bad osd id ${osdId}`);
  if (n > 1_000_000) throw new CodecError(`too many pg states: ${n}`);
  const states: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const pg = r.str(32);
    states[pg] = r.str(128);
  }
  r.end();
  return { osdId: osdId as OsdId, states };
}

/** A PG-history request (see `MonitorCore.pgHistory`). */
export interface PgHistoryRequest {
  readonly osdId: OsdId;
  readonly pg: string;
  readonly op: 'add' | 'reset';
  readonly set: readonly OsdId[];
}

/**
 * MSG_MON_PG_HISTORY: `u32 osdId | str pgid | u8 op (1 add, 2 reset) | u8 n (1..10) | u32 osd*n`.
 * The reply is empty and carries the epoch holding the change in its header.
 */
export function encodePgHistory(h: PgHistoryRequest): Uint8Array {
  const w = new Writer(16 + 4 * h.set.length).u32(h.osdId).str(h.pg).u8(h.op === 'add' ? 1 : 2).u8(h.set.length);
  for (const id of h.set) w.u32(id);
  return w.finish();
}

/** A pg_temp request (see `MonitorCore.pgTemp`); `osds` empty = clear. */
export interface PgTempRequest {
  readonly osdId: OsdId;
  readonly pg: string;
  readonly osds: readonly OsdId[];
}

/**
 * MSG_MON_PG_TEMP: `u32 osdId | str pgid | u8 n (0 = clear, ≤ 11) | u32 osd*n`. The reply is
 * empty and carries the epoch holding the change in its header.
 */
export function encodePgTemp(t: PgTempRequest): Uint8Array {
  const w = new Writer(16 + 4 * t.osds.length).u32(t.osdId).str(t.pg).u8(t.osds.length);
  for (const id of t.osds) w.u32(id);
  return w.finish();
}

export function decodePgTemp(payload: Uint8Array): PgTempRequest {
  const r = new Reader(payload);
  const osdId = r.u32();
  const pg = r.str(32);
  const n = r.u8();
  if (osdId > ID_MAX) throw new CodecError(`bad osd id ${osdId}`);
  if (n > PG_TEMP_MAX) throw new CodecError(`bad pg_temp size ${n}`);
  const osds = readOsdIds(r, n);
  r.end();
  return { osdId: osdId as OsdId, pg, osds };
}

export function decodePgHistory(payload: Uint8Array): PgHistoryRequest {
  const r = new Reader(payload);
  const osdId = r.u32();
  const pg = r.str(32);
  const opCode = r.u8();
  const n = r.u8();
  if (osdId > ID_MAX) throw new CodecError(`bad osd id ${osdId}`);
  if (opCode !== 1 && opCode !== 2) throw new CodecError(`bad pg history op ${opCode}`);
  if (n < 1 || n > 10) throw new CodecError(`bad pg history set size ${n}`);
  const set = readOsdIds(r, n);
  r.end();
  return { osdId: osdId as OsdId, pg, op: opCode === 1 ? 'add' : 'reset', set };
}

/** `n` OSD ids (u32 each, checked against ID_MAX). */
function readOsdIds(r: Reader, n: number): OsdId[] {
  const ids: OsdId[] = [];
  for (let i = 0; i < n; i++) {
    const id = r.u32();
    if (id > ID_MAX) throw new CodecError(`bad osd id ${id}`);
    ids.push(id as OsdId);
  }
  return ids;
}

// ───────────────────────────── OSD messages used by the placeholder ─────────────────────────────

/** MSG_OSD_PING: `u32 fromOsd | u32 epoch`; reply `u32 epoch`. */
export function encodeOsdPing(fromOsd: OsdId, epoch: number): Uint8Array {
  return new Writer(8).u32(fromOsd).u32(epoch).finish();
}

export function decodeOsdPing(payload: Uint8Array): { fromOsd: OsdId; epoch: Epoch } {
  const r = new Reader(payload);
  const fromOsd = r.u32() as OsdId;
  const epoch = r.u32() as Epoch;
  r.end();
  return { fromOsd, epoch };
}

/** MSG_OSD_OP_STAT request: `str pool | str objectName`; reply `bool exists | u64 sizeBytes`. */
export function encodeOsdStat(pool: string, objectName: string): Uint8Array {
  return new Writer(64).str(pool).str(objectName).finish();
}

export function decodeOsdStat(payload: Uint8Array): { pool: string; objectName: string } {
  const r = new Reader(payload);
  const pool = r.str(256);
  const objectName = r.str(2048);
  r.end();
  return { pool, objectName };
}

export function encodeOsdStatReply(exists: boolean, sizeBytes: number): Uint8Array {
  return new Writer(9).bool(exists).u64(sizeBytes).finish();
}

export function decodeOsdStatReply(payload: Uint8Array): { exists: boolean; sizeBytes: number } {
  const r = new Reader(payload);
  const exists = r.bool();
  const sizeBytes = r.u64();
  r.end();
  return { exists, sizeBytes };
}

// ───────────────────────────── admin commands ─────────────────────────────

/** Caps text of `auth add` / `auth caps`. */
export interface CapsText {
  readonly mon: string;
  readonly osd: string;
}

/** A validated admin command. `prefix` is the CLI's words, as Ceph's command prefix. */
export type MonCommand =
  | { readonly prefix: 'status' }
  | { readonly prefix: 'osd tree' }
  | { readonly prefix: 'osd dump' }
  | { readonly prefix: 'osd out' | 'osd in' | 'osd down' | 'osd rm'; readonly id: OsdId }
  | {
    readonly prefix: 'pool create'; readonly name: string; readonly size: number; readonly minSize: number;
    readonly pgNum: number; readonly failureDomain: FailureDomain;
  }
  | { readonly prefix: 'pool ls' }
  | { readonly prefix: 'pool set'; readonly name: string; readonly key: string; readonly value: string }
  | { readonly prefix: 'pool rm'; readonly name: string }
  | { readonly prefix: 'auth add'; readonly entity: string; readonly caps: CapsText }
  | { readonly prefix: 'auth caps'; readonly entity: string; readonly caps: CapsText }
  | { readonly prefix: 'auth ls' }
  | { readonly prefix: 'auth get' | 'auth rm'; readonly entity: string }
  | { readonly prefix: 'balancer status' }
  | { readonly prefix: 'balancer run'; readonly maxChanges?: number; readonly maxDeviation?: number }
  /** Ceph `osd blocklist add ADDR [EXPIRE]`: `expireSeconds` default 3600. */
  | { readonly prefix: 'osd blocklist add'; readonly instance: string; readonly expireSeconds?: number }
  | { readonly prefix: 'osd blocklist rm'; readonly instance: string }
  | { readonly prefix: 'osd blocklist ls' }
  /** `pg ls [POOL] [--state WORD]`: POOL a name (or id); WORD one of PG_LS_STATE_WORDS. */
  | { readonly prefix: 'pg ls'; readonly pool?: string; readonly state?: string }
  | { readonly prefix: 'osd pg-temp ls' }
  | { readonly prefix: 'osd pg-temp rm'; readonly pg: string };

/** Every command prefix, for usage text and validation. */
export const MON_COMMAND_PREFIXES = [
  'status', 'osd tree', 'osd dump', 'osd out', 'osd in', 'osd down', 'osd rm',
  'pool create', 'pool ls', 'pool set', 'pool rm', 'auth add', 'auth caps', 'auth ls', 'auth get', 'auth rm',
  'balancer status', 'balancer run', 'osd blocklist add', 'osd blocklist rm', 'osd blocklist ls',
  'pg ls', 'osd pg-temp ls', 'osd pg-temp rm',
] as const;

/** Longest blocklist lifetime accepted (a year), in seconds. */
export const BLOCKLIST_EXPIRE_SECONDS_MAX = 366 * 24 * 3600;

/** Mon caps a command needs: reads need `allow r`; changes and anything showing keys need `allow rw`. */
export function monCommandNeedsWrite(cmd: MonCommand): boolean {
  return !(cmd.prefix === 'status' || cmd.prefix === 'osd tree' || cmd.prefix === 'osd dump' || cmd.prefix === 'pool ls' || cmd.prefix === 'auth ls'
    || cmd.prefix === 'balancer status' || cmd.prefix === 'osd blocklist ls' || cmd.prefix === 'pg ls' || cmd.prefix === 'osd pg-temp ls');
}

/**
 * Whether `caps` may run `cmd`: mon `allow r` for reads, `allow rw`/`allow *` for changes, and
 * `profile rbd` for reads plus `osd blocklist add` (an image client fencing a dead lock holder,
 * docs/images.md; it may not lift a blocklisting).
 */
export function monCommandAllowed(caps: Readonly<Caps>, cmd: MonCommand): boolean {
  if (monCapsAllow(caps, monCommandNeedsWrite(cmd))) return true;
  return caps.mon === 'rbd' && cmd.prefix === 'osd blocklist add';
}

function invalid(message: string): ClusterError {
  return new ClusterError('CLU_ERR_INVALID', message);
}

function str(o: Record<string, unknown>, k: string): string | ClusterError {
  const v = o[k];
  return typeof v === 'string' && v.length > 0 && v.length <= 1024 ? v : invalid(`argument "${k}" must be a non-empty string`);
}

function int(o: Record<string, unknown>, k: string, min: number, max: number): number | ClusterError {
  const v = o[k];
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : invalid(`argument "${k}" must be an integer in [${min}, ${max}]`);
}

function capsText(o: Record<string, unknown>): CapsText | ClusterError {
  const c = o['caps'];
  if (c === undefined) return { mon: '', osd: '' };
  if (typeof c !== 'object' || c === null) return invalid('argument "caps" must be an object');
  const caps = c as Record<string, unknown>;
  const mon = caps['mon'] ?? '';
  const osd = caps['osd'] ?? '';
  if (typeof mon !== 'string' || typeof osd !== 'string') return invalid('caps.mon and caps.osd must be strings');
  return { mon, osd };
}

/** Validates a decoded JSON command into a `MonCommand`. */
export function parseMonCommand(json: unknown): MonCommand | ClusterError {
  if (typeof json !== 'object' || json === null) return invalid('command must be a JSON object');
  const o = json as Record<string, unknown>;
  const prefix = o['prefix'];
  switch (prefix) {
    case 'status': case 'osd tree': case 'osd dump': case 'pool ls': case 'auth ls': case 'balancer status':
      return { prefix };
    case 'balancer run': {
      const maxChanges = o['maxChanges'] === undefined ? undefined : int(o, 'maxChanges', 0, 100_000);
      if (maxChanges instanceof ClusterError) return maxChanges;
      const maxDeviation = o['maxDeviation'] === undefined ? undefined : int(o, 'maxDeviation', 1, 1_000_000);
      if (maxDeviation instanceof ClusterError) return maxDeviation;
      return { prefix, ...(maxChanges === undefined ? {} : { maxChanges }), ...(maxDeviation === undefined ? {} : { maxDeviation }) };
    }
    case 'osd out': case 'osd in': case 'osd down': case 'osd rm': {
      const id = int(o, 'id', 0, ID_MAX);
      return id instanceof ClusterError ? id : { prefix, id: id as OsdId };
    }
    case 'pool create': return parsePoolCreate(o);
    case 'osd blocklist ls': case 'osd pg-temp ls': return { prefix };
    case 'pg ls': {
      const pool = o['pool'] === undefined ? undefined : str(o, 'pool');
      if (pool instanceof ClusterError) return pool;
      const state = o['state'];
      if (state !== undefined && (typeof state !== 'string' || !PG_LS_STATE_WORDS.includes(state))) {
        return invalid(`argument "state" must be one of ${PG_LS_STATE_WORDS.join(', ')}`);
      }
      return { prefix, ...(pool === undefined ? {} : { pool }), ...(state === undefined ? {} : { state }) };
    }
    case 'osd pg-temp rm': {
      const pg = str(o, 'pg');
      if (pg instanceof ClusterError) return pg;
      return parsePgId(pg) === undefined ? invalid(`bad pgid "${pg}" (want POOL.SEED, e.g. 1.1f)`) : { prefix, pg };
    }
    case 'osd blocklist add': case 'osd blocklist rm': {
      const instance = str(o, 'instance');
      if (instance instanceof ClusterError) return instance;
      const why = validateClientInstance(instance);
      if (why !== undefined) return invalid(why);
      if (prefix === 'osd blocklist rm') return { prefix, instance };
      const expireSeconds = o['expireSeconds'] === undefined ? undefined : int(o, 'expireSeconds', 1, BLOCKLIST_EXPIRE_SECONDS_MAX);
      if (expireSeconds instanceof ClusterError) return expireSeconds;
      return { prefix, instance, ...(expireSeconds === undefined ? {} : { expireSeconds }) };
    }
    case 'pool set': {
      const name = str(o, 'name');
      const key = str(o, 'key');
      const value = str(o, 'value');
      for (const v of [name, key, value]) if (v instanceof ClusterError) return v;
      return { prefix, name: name as string, key: key as string, value: value as string };
    }
    case 'pool rm': case 'auth get': case 'auth rm': {
      const name = str(o, prefix === 'pool rm' ? 'name' : 'entity');
      if (name instanceof ClusterError) return name;
      return prefix === 'pool rm' ? { prefix, name } : { prefix, entity: name };
    }
    case 'auth add': case 'auth caps': {
      const entity = str(o, 'entity');
      if (entity instanceof ClusterError) return entity;
      const caps = capsText(o);
      return caps instanceof ClusterError ? caps : { prefix, entity, caps };
    }
    default:
      return new ClusterError('CLU_ERR_UNSUPPORTED', `unknown command "${String(prefix)}"`);
  }
}

function parsePoolCreate(o: Record<string, unknown>): MonCommand | ClusterError {
  const name = str(o, 'name');
  if (name instanceof ClusterError) return name;
  const size = int(o, 'size', 1, 10);
  if (size instanceof ClusterError) return size;
  const minSize = int(o, 'minSize', 1, 10);
  if (minSize instanceof ClusterError) return minSize;
  const pgNum = int(o, 'pgNum', 1, 65536);
  if (pgNum instanceof ClusterError) return pgNum;
  const fd = o['failureDomain'] ?? 'host';
  if (fd !== 'host' && fd !== 'osd') return invalid('failureDomain must be "host" or "osd"');
  return { prefix: 'pool create', name, size, minSize, pgNum, failureDomain: fd };
}

/** MSG_MON_COMMAND request and reply payload: `str json`. */
export function encodeJson(value: unknown): Uint8Array {
  return new Writer(256).str(JSON.stringify(value)).finish();
}

/** Decodes `encodeJson` output; throws `CodecError` on bad JSON. */
export function decodeJson(payload: Uint8Array): unknown {
  const r = new Reader(payload);
  const text = r.str(COMMAND_BYTES_MAX);
  r.end();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CodecError('command is not valid JSON');
  }
}

/** MSG_AUTH_GET_SERVICE_SECRET reply: `bytes seal(osdKey, secret, "strata-service-secret-v1")`. */
export const SERVICE_SECRET_AAD = new TextEncoder().encode('strata-service-secret-v1');
