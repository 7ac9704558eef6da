/**
 * One placement group as this OSD holds it (`Pg`), the client-op records queued on it, and the
 * small pure helpers every part of the OSD data path shares (docs/replication.md §2–§3).
 *
 * Owns: the in-memory PG record (log, info, role, acting set, interval, state bits, queues,
 * missing sets) and loading it back from the store's per-PG records (`loadPg`).
 * Invariants the parts rely on:
 * - `peeringGen` changes on every new interval and every re-peer; a callback that captured an
 *   older value must drop its result (the PG state it was computed for is gone).
 * - `info.lastComplete == info.lastUpdate` exactly while this OSD holds every object of the PG.
 * - Only the primary uses the queue / inflight / missing fields; a replica or stray keeps them empty.
 */
import { ClusterError } from '../common/errors.js';
import type { ClusterErrorCode } from '../common/errors.js';
import type { OsdId, PoolId } from '../common/ids.js';
import type { InboundMessage, Session } from '../msg/session.js';
import { INFO_KEY, PgLog, decodeInfo, decodeLogEntry, emptyInfo, isLogKey } from '../pg/pg-log.js';
import type { PgInfo, PgLogEntry } from '../pg/pg-log.js';
import { PgState } from '../pg/pg-state.js';
import type { ObjectStore } from '../store/object-store.js';
import { ZERO_VERSION, compareVersion } from './osd-protocol.js';
import type { EVersion, OsdOpOut, OsdOpRequest } from './osd-protocol.js';
import type { PgQueryReply } from './osd-peer-protocol.js';

/** What an OSD must receive for one object: that version, or `undefined` = delete it. */
export type Need = { readonly version: EVersion | undefined };

/** A client op accepted by the primary, until it is answered (`replied`). */
export interface ClientOp {
  readonly req: InboundMessage;
  readonly s: Session;
  readonly q: OsdOpRequest;
  readonly data: Uint8Array;
  readonly arrivedMs: number;
  readonly write: boolean;
  replied: boolean;
  /** Times `doWrite` ran it (a re-peer requeues in-flight writes; see `giveBulk` in client-ops). */
  executions: number;
}

/** A client write sent to the acting set, until every acting OSD committed it. */
export interface InflightWrite {
  readonly op: ClientOp;
  readonly entry: PgLogEntry;
  readonly outs: OsdOpOut[];
  waiting: Set<number>; // OSD ids not yet committed (self included)
  failed: boolean;
}

export function pgKeyOf(pool: number, seed: number): string { return `${pool}.${seed.toString(16)}`; }
/** `pool.seedhex` → numbers, or undefined for a malformed key. */
export function parsePgKey(key: string): { pool: PoolId; seed: number } | undefined {
  const [poolText, seedText] = key.split('.');
  const pool = Number(poolText);
  const seed = parseInt(seedText ?? '', 16);
  return Number.isInteger(pool) && Number.isInteger(seed) ? { pool: pool as PoolId, seed } : undefined;
}
export function vKey(v: EVersion): string { return `${v.epoch}.${v.seq}`; }
export function maxV(a: EVersion, b: EVersion): EVersion { return compareVersion(a, b) >= 0 ? a : b; }
export function errOf(code: ClusterErrorCode, msg: string): ClusterError { return new ClusterError(code, msg); }

/** One placement group as this OSD holds it (any role). */
export class Pg {
  readonly log = new PgLog();
  info: PgInfo = emptyInfo();
  role: 'primary' | 'replica' | 'stray' = 'stray';
  acting: OsdId[] = [];
  /** The PG's up set in the current map; differs from `acting` while a pg_temp is in effect. */
  up: readonly OsdId[] = [];
  prevActing: OsdId[] = [];
  interval = 0;
  /** Highest interval seen in peer messages (replica side): older sub-ops are refused. */
  seenInterval = 0;
  state = 0;
  poolSize = 0;
  minSize = 0;
  nextSeq = 1;
  peeringGen = 0;
  /**
   * The pool's pgNum this PG's log is split for (persisted as `pgnum`, osd/pg-split.ts); 0 =
   * not known yet (set from the first map). A map with a larger pgNum splits the PG first.
   */
  pgNum = 0;
  /** Prior-set block: the history sets none of whose members answered peering (state DOWN). */
  blockedSets: OsdId[][] | undefined;
  /** Interval whose history reset the monitor acknowledged; a reset is in flight when 'inflight'. */
  historyReset: number | 'inflight' = 0;
  /** Earliest time of the next reset attempt after a refused one. */
  historyResetRetryMs = 0;
  /** pg_temp clear (temp primary, every member complete): interval it was asked for, or 'inflight'. */
  tempClear: number | 'inflight' = 0;
  /** Earliest time of the next clear attempt after a refused one. */
  tempClearRetryMs = 0;
  /** Peers sent ACTIVATE mode 2 (complete) whose acknowledgement has not arrived. */
  readonly completing = new Set<OsdId>();
  // Primary-side state.
  readonly queue: ClientOp[] = [];
  readonly objWait = new Map<string, ClientOp[]>();
  readonly inflightByObj = new Map<string, number>();
  readonly inflight = new Map<string, InflightWrite>(); // by reqKey
  localPending = 0;
  selfMissing = new Map<string, Need>();
  peerMissing = new Map<OsdId, Map<string, Need>>();
  /** Peers that answered peering this interval, with their info (recovery sources). */
  peerInfos = new Map<OsdId, PgQueryReply>();
  backfillPending = new Set<OsdId>();
  incompletePeers = new Set<OsdId>();
  recovering = new Set<string>();
  inconsistent = false;
  scrubbing = false;
  recoveredObjects = 0;
  recoveredBytes = 0;
  recoveryStartMs = 0;

  constructor(readonly key: string, readonly pool: PoolId, readonly seed: number) {}

  missingAnywhere(name: string): boolean {
    if (this.selfMissing.has(name)) return true;
    for (const m of this.peerMissing.values()) if (m.has(name)) return true;
    return false;
  }
  missingCount(): number {
    let n = this.selfMissing.size;
    for (const m of this.peerMissing.values()) n += m.size;
    return n;
  }
  /** Forgets what peering learnt (new interval or re-peer). */
  clearPeeringResults(): void {
    this.selfMissing.clear(); this.peerMissing.clear(); this.peerInfos.clear(); this.backfillPending.clear(); this.incompletePeers.clear(); this.completing.clear();
  }
}

/** Active and at least min_size acting: client I/O and recovery may run. */
export function isActive(pg: Pg): boolean {
  return (pg.state & PgState.ACTIVE) !== 0 && pg.acting.length >= pg.minSize;
}

/**
 * `incomplete+backfilling`: no acting member was complete at peering, so the primary backfills
 * itself from a complete OSD outside the acting set before activating (no client I/O meanwhile).
 */
export const SELF_BACKFILL_STATE: number = PgState.INCOMPLETE | PgState.BACKFILLING;
export function isSelfBackfilling(pg: Pg): boolean {
  return pg.state === SELF_BACKFILL_STATE;
}

/** Acting ≠ up: a pg_temp is in effect (the PG is served by a temporary acting set). */
export function isRemapped(pg: Pg): boolean {
  return pg.up.length !== pg.acting.length || pg.up.some((x, i) => pg.acting[i] !== x);
}

/** ACTIVE plus modifiers from the recovery bookkeeping. */
export function activeState(pg: Pg): number {
  let s: number = PgState.ACTIVE;
  const undersized = pg.acting.length < pg.poolSize;
  if (undersized) s |= PgState.UNDERSIZED | PgState.DEGRADED;
  if (pg.missingCount() > 0 || pg.incompletePeers.size > 0 || pg.backfillPending.size > 0) {
    s |= PgState.DEGRADED;
    if (pg.backfillPending.size > 0) s |= PgState.BACKFILLING; else s |= PgState.RECOVERING;
  }
  if (isRemapped(pg)) s |= PgState.REMAPPED;
  if (pg.inconsistent) s |= PgState.INCONSISTENT;
  if (pg.scrubbing) s |= PgState.SCRUBBING;
  if ((s & ~(PgState.INCONSISTENT | PgState.SCRUBBING)) === PgState.ACTIVE) s |= PgState.CLEAN;
  return s;
}

/** The oldest version an OSD that answered peering may miss objects from. */
export function minComplete(r: PgQueryReply | undefined): EVersion {
  if (r === undefined) return ZERO_VERSION;
  return compareVersion(r.info.lastComplete, r.info.lastUpdate) < 0 ? r.info.lastComplete : r.info.lastUpdate;
}

/** Per-PG store record: the pgNum the PG's log is split for (see `Pg.pgNum`). */
export const PGNUM_KEY = 'pgnum';
export function encodePgNum(n: number): Uint8Array { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, true); return b; }
export function decodePgNum(b: Uint8Array): number { return b.length === 4 ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true) : 0; }

/** Rebuilds a PG from its store records (log entries, info, tail); undefined for a malformed key. */
export function loadPg(store: ObjectStore, key: string): Pg | undefined {
  const k = parsePgKey(key);
  if (k === undefined) return undefined;
  const pg = new Pg(key, k.pool, k.seed);
  const entries: PgLogEntry[] = [];
  let tail = ZERO_VERSION;
  for (const [rk, v] of store.pgList(key)) {
    if (isLogKey(rk)) entries.push(decodeLogEntry(v));
    else if (rk === INFO_KEY) pg.info = decodeInfo(v);
    else if (rk === 'tail') tail = decodeInfo(v).logTail;
    else if (rk === PGNUM_KEY) pg.pgNum = decodePgNum(v);
  }
  pg.log.reset(entries, maxV(tail, pg.info.logTail));
  pg.info.logTail = pg.log.tail;
  // The info is written at activation; writes applied after it while complete kept it complete.
  const wasComplete = compareVersion(pg.info.lastComplete, pg.info.lastUpdate) === 0 && !pg.info.backfilling;
  pg.info.lastUpdate = maxV(pg.log.head, pg.info.lastUpdate);
  if (wasComplete) pg.info.lastComplete = pg.info.lastUpdate;
  pg.nextSeq = pg.info.lastUpdate.seq + 1;
  pg.seenInterval = pg.info.sameIntervalSince;
  return pg;
}
