/**
 * The PG log and PG info (Ceph's pg_log_t / pg_info_t, reduced to what peering needs).
 *
 * Persisted in the object store's per-PG records, in the SAME transaction as the write it
 * describes (so a crash can never keep the data without its log entry or vice versa):
 *
 *   pg key "<pool>.<seed hex>"
 *     "e<epoch 10 digits>.<seq 16 digits>"  → encoded PgLogEntry   (sorted = version order)
 *     "info"                                → encoded PgInfo       (written at peering/activation)
 *
 * The log is bounded (`PG_LOG_MAX`): each write that grows it past the bound removes the oldest
 * entry in the same transaction, and the tail version moves up. Entries carry the client's
 * reqId so a resent op is answered from the log instead of applied twice.
 */
import { CodecError, Reader, Writer, bytesToLatin1 } from '../common/codec.js';
import type { EVersion } from '../osd/osd-protocol.js';
import { compareVersion, ZERO_VERSION } from '../osd/osd-protocol.js';

/**
 * Entries kept per PG while it is degraded (an OSD that missed fewer writes than this recovers
 * from the log; more needs a backfill). Ceph: osd_max_pg_log_entries.
 */
export const PG_LOG_MAX = 3000;
/**
 * Entries kept per PG while it is active+clean (Ceph: osd_min_pg_log_entries, 250). Why two
 * bounds: at 3000 entries for every PG an OSD spent most of its heap on the log (64 PGs ×
 * 3000 = 192,000 entries); a clean PG has no peer to recover, and the log grows back towards
 * PG_LOG_MAX as soon as the PG is degraded.
 */
export const PG_LOG_MIN = 500;
/**
 * The two bounds a primary trims to (production: PG_LOG_MIN / PG_LOG_MAX; the simulator draws
 * small ones so its short runs trim and backfill). 1 ≤ min ≤ max ≤ PG_LOG_MAX: a log adoption
 * must fit one store transaction.
 */
export interface PgLogBounds { readonly min: number; readonly max: number }
/** Entries the primary trims at most per write, so shrinking to PG_LOG_MIN stays gradual. */
export const PG_LOG_TRIM_PER_WRITE = 8;

export const LogOp = { modify: 1, delete: 2 } as const;
export type LogOp = (typeof LogOp)[keyof typeof LogOp];

export interface PgLogEntry {
  readonly version: EVersion;
  readonly object: string;
  readonly op: LogOp;
  /** Client reqId (empty client for recovery-made entries). */
  readonly client: string;
  readonly tid: number;
  /** Wire result of the op (0 for writes that applied). */
  readonly result: number;
}

export interface PgInfo {
  /** Newest entry in the log (also derivable from the log). */
  lastUpdate: EVersion;
  /** Every object is at least as new as this (objects newer than it may be missing). */
  lastComplete: EVersion;
  /** Oldest version NOT in the log (entries are > logTail). ZERO = log holds all history. */
  logTail: EVersion;
  /** Epoch of the last interval change this OSD saw activated for the PG. */
  sameIntervalSince: number;
  /** Epoch at which the PG was last activated with this OSD in it. */
  lastEpochStarted: number;
  /** True while a backfill into this OSD is unfinished (its objects are untrustworthy). */
  backfilling: boolean;
}

export function emptyInfo(): PgInfo {
  return { lastUpdate: ZERO_VERSION, lastComplete: ZERO_VERSION, logTail: ZERO_VERSION, sameIntervalSince: 0, lastEpochStarted: 0, backfilling: false };
}

export const INFO_KEY = 'info';

/** Store key of a log entry; zero-padded so `pgList` sorts by version. */
export function logKey(v: EVersion): string {
  const k = `e${v.epoch.toString().padStart(10, '0')}.${v.seq.toString().padStart(16, '0')}`;
  // Why through bytes: the template makes a rope of 4+ heap strings (V8 cons strings); the store
  // keeps one key per log entry (~190,000 per OSD), so it gets one flat string instead.
  return flatten(k);
}

const keyScratch = new Uint8Array(64);

/** The same ASCII string as one flat heap string. */
function flatten(ascii: string): string {
  for (let i = 0; i < ascii.length; i++) keyScratch[i] = ascii.charCodeAt(i);
  return bytesToLatin1(keyScratch.subarray(0, ascii.length));
}

export function isLogKey(k: string): boolean {
  return k.startsWith('e') && k.length === 28;
}

function wv(w: Writer, v: EVersion): void { w.u32(v.epoch).u64(v.seq); }
function rv(r: Reader): EVersion { return { epoch: r.u32(), seq: r.u64() }; }

export function writeLogEntry(w: Writer, e: PgLogEntry): void {
  wv(w, e.version);
  w.str(e.object).u8(e.op).str(e.client).u64(e.tid).u16(e.result);
}
export function readLogEntry(r: Reader): PgLogEntry {
  const version = rv(r);
  const object = r.str(4096);
  const op = r.u8();
  if (op !== LogOp.modify && op !== LogOp.delete) throw new CodecError(`log op ${op}`);
  return { version, object, op, client: r.str(), tid: r.u64(), result: r.u16() };
}
export function encodeLogEntry(e: PgLogEntry): Uint8Array {
  const w = new Writer(64 + (e.object.length + e.client.length) * 3);
  w.u8(1);
  writeLogEntry(w, e);
  return w.finish();
}
export function decodeLogEntry(b: Uint8Array): PgLogEntry {
  const r = new Reader(b);
  if (r.u8() !== 1) throw new CodecError('log entry version');
  const e = readLogEntry(r);
  r.end();
  return e;
}

export function writeInfo(w: Writer, i: PgInfo): void {
  wv(w, i.lastUpdate); wv(w, i.lastComplete); wv(w, i.logTail);
  w.u32(i.sameIntervalSince).u32(i.lastEpochStarted).bool(i.backfilling);
}
export function readInfo(r: Reader): PgInfo {
  return { lastUpdate: rv(r), lastComplete: rv(r), logTail: rv(r), sameIntervalSince: r.u32(), lastEpochStarted: r.u32(), backfilling: r.bool() };
}
export function encodeInfo(i: PgInfo): Uint8Array {
  const w = new Writer(64);
  w.u8(1);
  writeInfo(w, i);
  return w.finish();
}
export function decodeInfo(b: Uint8Array): PgInfo {
  const r = new Reader(b);
  if (r.u8() !== 1) throw new CodecError('pg info version');
  const i = readInfo(r);
  r.end();
  return i;
}

/** The dedup index of one client: its interned name and its entries by tid. */
interface ClientEntries {
  readonly client: string;
  readonly byTid: Map<number, PgLogEntry>;
}

/**
 * In-memory PG log: entries in version order plus a reqId index for dedup.
 *
 * Memory: an OSD holds up to 64 × PG_LOG_MAX entries. The dedup index is keyed by client,
 * then by tid (a number), instead of by a `client#tid` string per entry, and every entry of
 * a client shares one interned client string: a heap snapshot at the bound had ~190,000
 * such key strings and as many copies of a handful of client names.
 */
export class PgLog {
  entries: PgLogEntry[] = [];
  private readonly byClient = new Map<string, ClientEntries>();
  tail: EVersion = ZERO_VERSION;

  /** A reqId as one string, for short-lived maps (in-flight writes). */
  static reqKey(client: string, tid: number): string { return `${client}#${tid}`; }

  get head(): EVersion { return this.entries[this.entries.length - 1]?.version ?? this.tail; }

  add(e: PgLogEntry): void {
    const last = this.entries[this.entries.length - 1];
    if (last !== undefined && compareVersion(e.version, last.version) <= 0) throw new CodecError(`log out of order ${e.version.epoch}.${e.version.seq}`);
    if (e.client !== '') {
      let c = this.byClient.get(e.client);
      if (c === undefined) {
        c = { client: e.client, byTid: new Map() };
        this.byClient.set(e.client, c);
      }
      // Why mutate: the same name, one string shared by every entry of the client.
      (e as { client: string }).client = c.client;
      c.byTid.set(e.tid, e);
    }
    this.entries.push(e);
  }

  /** Removes the oldest entry; returns it (the caller deletes its store key in the same txn). */
  trimOne(): PgLogEntry | undefined {
    const e = this.entries.shift();
    if (e === undefined) return undefined;
    this.tail = e.version;
    if (e.client !== '') {
      const c = this.byClient.get(e.client);
      if (c !== undefined && c.byTid.get(e.tid) === e) {
        c.byTid.delete(e.tid);
        if (c.byTid.size === 0) this.byClient.delete(e.client);
      }
    }
    return e;
  }

  findReq(client: string, tid: number): PgLogEntry | undefined {
    return this.byClient.get(client)?.byTid.get(tid);
  }

  /** Replaces the whole log (adopting the authoritative one at peering). */
  reset(entries: readonly PgLogEntry[], tail: EVersion): void {
    this.entries = [];
    this.byClient.clear();
    this.tail = tail;
    for (const e of entries) this.add(e);
  }

  /** Entries newer than `v`. */
  after(v: EVersion): PgLogEntry[] {
    let i = this.entries.length;
    while (i > 0 && compareVersion(this.entries[i - 1]!.version, v) > 0) i--;
    return this.entries.slice(i);
  }
}
