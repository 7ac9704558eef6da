/**
 * The client ↔ OSD op protocol (`MSG_OSD_OP`, docs/osd-protocol.md): what the Objecter sends to
 * a PG's primary and what it gets back. Pure codecs; no I/O.
 *
 * One request = one object, a vector of ops applied atomically in order (Ceph's MOSDOp):
 *
 *   payload  = version u8 (=1) | pool u32 | objectName str | pgSeed u32 | mapEpoch u32
 *            | reqId { client str | tid u64 | attempt u32 } | flags u32 | nOps u16 | op*
 *   data     = the bytes of every `write`/`writefull` op, concatenated in op order
 *
 * Reply (same tid, type `MSG_OSD_OP`, frame epoch = the OSD's map epoch):
 *
 *   payload  = version u8 (=1) | result u16 (0 or CLUSTER_ERROR_WIRE) | objVersion {epoch u32, seq u64}
 *            | mapEpoch u32 | nOuts u16 | out*
 *   data     = the bytes of every `read` op's result, concatenated in op order
 *
 * Error semantics the Objecter relies on (full table in docs/osd-protocol.md §4):
 * - `CLU_ERR_EPOCH_STALE`: the request's `mapEpoch` is older than the epoch at which this PG's
 *   mapping last changed on the OSD (`same_interval_since`) — the client waits for a map ≥ the
 *   reply's `mapEpoch` and resends (same reqId, attempt + 1).
 * - `CLU_ERR_WRONG_TARGET`: this OSD is not the PG's primary at its own epoch. Resend after a map
 *   update (the reply's `mapEpoch` says which epoch the OSD has; if the client is *newer*, the
 *   OSD waits for that map before answering, up to `OP_MAP_WAIT_MS`).
 * - A PG peering, recovering the target object, or below min_size QUEUES the op; it is answered
 *   `CLU_ERR_UNAVAILABLE` only after `OP_QUEUE_TIMEOUT_MS` in the queue (the client may resend).
 * - A resend whose reqId (client, tid) was already applied returns the original result
 *   (dedup through the PG log), never applies twice.
 * - Request decode failures and caps refusals come as messenger error replies (FRAME_F_ERROR,
 *   `CLU_ERR_DECODE` / `CLU_ERR_PERM`); everything else as a normal reply with `result`.
 *
 * Fencing for the image exclusive lock: BOTH primitives exist. `assert_attr {name, value}`
 * (compare; an empty `value` with `ASSERT_F_ABSENT` asserts the attr is absent) lets a client
 * fence every write with an epoch attr; `lock`/`unlock`/`break_lock` (cls_lock style) store the
 * lock as the object attribute `lock.<name>` with a lease measured on the primary's wall clock.
 * A failed assertion fails the whole vector with `CLU_ERR_CANCELLED` (nothing applied); a lock
 * held by someone else is `CLU_ERR_BUSY`.
 */
import { CodecError, Reader, Writer } from '../common/codec.js';
import { ClusterError, clusterErrorFromWire, clusterErrorToWire } from '../common/errors.js';

export const OSD_OP_PROTOCOL_VERSION = 1;

/** Request flags. */
export const OSD_FLAG_READ = 0x1;
/** The vector contains a mutation; the primary replicates it. */
export const OSD_FLAG_WRITE = 0x2;
/** Per-op failures (e.g. getattr of a missing attr) do not fail the whole vector (reads only). */
export const OSD_FLAG_FAILOK = 0x4;
/** Read may be served while the object is degraded/missing on the primary (never set today). */
export const OSD_FLAG_BALANCE_READS = 0x8;

/** `assert_attr` mode bit: the attribute must be absent (value ignored). */
export const ASSERT_F_ABSENT = 0x1;

/** Op codes on the wire (u8). Never renumber. */
export const OsdOpCode = {
  read: 1,
  write: 2,
  writefull: 3,
  zero: 4,
  truncate: 5,
  remove: 6,
  stat: 7,
  getattr: 8,
  setattr: 9,
  rmattr: 10,
  create: 11,
  assert_version: 12,
  assert_attr: 13,
  lock: 14,
  unlock: 15,
  break_lock: 16,
  /** Debug/scrub helper: list attribute names (reply: attr value = names joined by '\n'). */
  getattrs: 17,
} as const;
export type OsdOpName = keyof typeof OsdOpCode;

/** One op of a request vector. `write`/`writefull` bytes travel in the frame's bulk data. */
export type OsdOp =
  | { readonly op: 'read'; readonly offset: number; readonly length: number }
  | { readonly op: 'write'; readonly offset: number; readonly length: number }
  | { readonly op: 'writefull'; readonly length: number }
  | { readonly op: 'zero'; readonly offset: number; readonly length: number }
  | { readonly op: 'truncate'; readonly size: number }
  | { readonly op: 'remove' }
  | { readonly op: 'stat' }
  | { readonly op: 'getattr'; readonly name: string }
  | { readonly op: 'setattr'; readonly name: string; readonly value: Uint8Array }
  | { readonly op: 'rmattr'; readonly name: string }
  | { readonly op: 'create'; readonly exclusive: boolean }
  | { readonly op: 'assert_version'; readonly epoch: number; readonly seq: number }
  | { readonly op: 'assert_attr'; readonly name: string; readonly value: Uint8Array; readonly mode: number }
  | { readonly op: 'lock'; readonly name: string; readonly cookie: string; readonly durationMs: number; readonly exclusive: boolean }
  | { readonly op: 'unlock'; readonly name: string; readonly cookie: string }
  | { readonly op: 'break_lock'; readonly name: string; readonly client: string; readonly cookie: string }
  | { readonly op: 'getattrs' };

/** True for ops that mutate the object (the vector is then a write). */
export function isWriteOp(op: OsdOp): boolean {
  switch (op.op) {
    case 'write': case 'writefull': case 'zero': case 'truncate': case 'remove': case 'setattr': case 'rmattr':
    case 'create': case 'lock': case 'unlock': case 'break_lock':
      return true;
    default:
      return false;
  }
}

/** Idempotency key of a client op (Ceph's osd_reqid_t). `attempt` is informational. */
export interface OsdReqId {
  readonly client: string;
  readonly tid: number;
  readonly attempt: number;
}

/** A decoded `MSG_OSD_OP` request. */
export interface OsdOpRequest {
  readonly pool: number;
  readonly objectName: string;
  readonly pgSeed: number;
  readonly mapEpoch: number;
  readonly reqId: OsdReqId;
  readonly flags: number;
  readonly ops: readonly OsdOp[];
}

/** Version of an object as the OSD assigns it: (map epoch of the primary, per-PG seq). */
export interface EVersion {
  readonly epoch: number;
  readonly seq: number;
}

export const ZERO_VERSION: EVersion = { epoch: 0, seq: 0 };

/** Per-op result in a reply. */
export type OsdOpOut =
  | { readonly kind: 'none'; readonly result: number }
  | { readonly kind: 'read'; readonly result: number; readonly length: number }
  | { readonly kind: 'stat'; readonly result: number; readonly size: number; readonly version: EVersion }
  | { readonly kind: 'attr'; readonly result: number; readonly value: Uint8Array };

/** A decoded `MSG_OSD_OP` reply. */
export interface OsdOpReply {
  /** 0, or a CLUSTER_ERROR_WIRE number (errors.ts clusterErrorFromWire). */
  readonly result: number;
  /** The object's version after the op (writes: the new version; reads: the current one). */
  readonly version: EVersion;
  /** The OSD's map epoch. */
  readonly mapEpoch: number;
  readonly outs: readonly OsdOpOut[];
}

/** Limits checked at decode (GUIDE principle 6). */
export const OsdOpLimits = {
  opsPerRequestMax: 64,
  objectNameBytesMax: 2048,
  attrNameBytesMax: 256,
  attrValueBytesMax: 64 * 1024,
  clientBytesMax: 256,
  /** Largest single read/write (an object is at most 64 MiB). */
  ioBytesMax: 64 * 1024 * 1024,
} as const;

/** A queued op (PG peering / below min_size) is failed with CLU_ERR_UNAVAILABLE after this. */
export const OP_QUEUE_TIMEOUT_MS = 30_000;
/** A request with a newer epoch than the OSD's waits this long for that map, then UNAVAILABLE (never runs on an older map). */
export const OP_MAP_WAIT_MS = 2_000;

/**
 * Reply `result` of an op from a blocklisted client instance (docs/cluster-map.md §Blocklist):
 * `CLU_ERR_PERM` with reason `blocklisted` — the wire code of CLU_ERR_PERM with bit 0x100 set
 * (`osdResultError` decodes it). Final: the Objecter does not resend it.
 */
export const OSD_RESULT_BLOCKLISTED = 0x100 | clusterErrorToWire('CLU_ERR_PERM');

/** The error a non-zero reply `result` stands for (CLU_ERR_IO for an unknown code). */
export function osdResultError(result: number, message: string, details: Record<string, unknown> = {}): ClusterError {
  if (result === OSD_RESULT_BLOCKLISTED) {
    return new ClusterError('CLU_ERR_PERM', `${message} (client blocklisted)`, { details: { ...details, reason: 'blocklisted' } });
  }
  const code = clusterErrorFromWire(result) ?? 'CLU_ERR_IO';
  return new ClusterError(code, message, { details });
}

/** Lock attribute prefix: a lock named `n` is stored in the object attr `lock.n`. */
export const LOCK_ATTR_PREFIX = 'lock.';

const OUT_NONE = 0;
const OUT_READ = 1;
const OUT_STAT = 2;
const OUT_ATTR = 3;

function writeOp(w: Writer, op: OsdOp): void {
  w.u8(OsdOpCode[op.op]);
  switch (op.op) {
    case 'read': case 'write': w.u64(op.offset).u32(op.length); break;
    case 'writefull': w.u32(op.length); break;
    case 'zero': w.u64(op.offset).u64(op.length); break;
    case 'truncate': w.u64(op.size); break;
    case 'remove': case 'stat': case 'getattrs': break;
    case 'getattr': case 'rmattr': w.str(op.name); break;
    case 'setattr': w.str(op.name).bytes(op.value); break;
    case 'create': w.bool(op.exclusive); break;
    case 'assert_version': w.u32(op.epoch).u64(op.seq); break;
    case 'assert_attr': w.str(op.name).bytes(op.value).u8(op.mode); break;
    case 'lock': w.str(op.name).str(op.cookie).u32(op.durationMs).bool(op.exclusive); break;
    case 'unlock': w.str(op.name).str(op.cookie); break;
    case 'break_lock': w.str(op.name).str(op.client).str(op.cookie); break;
  }
}

function readOp(r: Reader): OsdOp {
  const code = r.u8();
  const L = OsdOpLimits;
  const len = (n: number): number => {
    if (n > L.ioBytesMax) throw new CodecError(`io length ${n} exceeds ${L.ioBytesMax}`);
    return n;
  };
  switch (code) {
    case OsdOpCode.read: return { op: 'read', offset: r.u64(), length: len(r.u32()) };
    case OsdOpCode.write: return { op: 'write', offset: r.u64(), length: len(r.u32()) };
    case OsdOpCode.writefull: return { op: 'writefull', length: len(r.u32()) };
    case OsdOpCode.zero: return { op: 'zero', offset: r.u64(), length: r.u64() };
    case OsdOpCode.truncate: return { op: 'truncate', size: r.u64() };
    case OsdOpCode.remove: return { op: 'remove' };
    case OsdOpCode.stat: return { op: 'stat' };
    case OsdOpCode.getattrs: return { op: 'getattrs' };
    case OsdOpCode.getattr: return { op: 'getattr', name: r.str(L.attrNameBytesMax) };
    case OsdOpCode.rmattr: return { op: 'rmattr', name: r.str(L.attrNameBytesMax) };
    case OsdOpCode.setattr: return { op: 'setattr', name: r.str(L.attrNameBytesMax), value: r.bytes(L.attrValueBytesMax).slice() };
    case OsdOpCode.create: return { op: 'create', exclusive: r.bool() };
    case OsdOpCode.assert_version: return { op: 'assert_version', epoch: r.u32(), seq: r.u64() };
    case OsdOpCode.assert_attr: return { op: 'assert_attr', name: r.str(L.attrNameBytesMax), value: r.bytes(L.attrValueBytesMax).slice(), mode: r.u8() };
    case OsdOpCode.lock: return { op: 'lock', name: r.str(L.attrNameBytesMax), cookie: r.str(L.clientBytesMax), durationMs: r.u32(), exclusive: r.bool() };
    case OsdOpCode.unlock: return { op: 'unlock', name: r.str(L.attrNameBytesMax), cookie: r.str(L.clientBytesMax) };
    case OsdOpCode.break_lock: return { op: 'break_lock', name: r.str(L.attrNameBytesMax), client: r.str(L.clientBytesMax), cookie: r.str(L.clientBytesMax) };
    default: throw new CodecError(`unknown osd op code ${code}`);
  }
}

/** Bytes of bulk data a request must carry (sum of write/writefull lengths). */
export function requestDataBytes(ops: readonly OsdOp[]): number {
  let n = 0;
  for (const op of ops) if (op.op === 'write' || op.op === 'writefull') n += op.length;
  return n;
}

/** Encodes a request payload. The caller passes the write bytes as the frame's `data`. */
export function encodeOsdOpRequest(q: OsdOpRequest): Uint8Array {
  const w = new Writer(64 + q.objectName.length + q.ops.length * 16);
  w.u8(OSD_OP_PROTOCOL_VERSION).u32(q.pool).str(q.objectName).u32(q.pgSeed).u32(q.mapEpoch);
  w.str(q.reqId.client).u64(q.reqId.tid).u32(q.reqId.attempt).u32(q.flags).u16(q.ops.length);
  for (const op of q.ops) writeOp(w, op);
  return w.finish();
}

/** Decodes a request payload; throws CodecError on malformed input. */
export function decodeOsdOpRequest(payload: Uint8Array): OsdOpRequest {
  const r = new Reader(payload);
  const v = r.u8();
  if (v !== OSD_OP_PROTOCOL_VERSION) throw new CodecError(`osd op version ${v}`);
  const pool = r.u32();
  const objectName = r.str(OsdOpLimits.objectNameBytesMax);
  if (objectName.length === 0) throw new CodecError('empty object name');
  const pgSeed = r.u32();
  const mapEpoch = r.u32();
  const reqId = { client: r.str(OsdOpLimits.clientBytesMax), tid: r.u64(), attempt: r.u32() };
  const flags = r.u32();
  const n = r.u16();
  if (n === 0 || n > OsdOpLimits.opsPerRequestMax) throw new CodecError(`op count ${n}`);
  const ops: OsdOp[] = [];
  for (let i = 0; i < n; i++) ops.push(readOp(r));
  r.end();
  return { pool, objectName, pgSeed, mapEpoch, reqId, flags, ops };
}

/** Encodes a reply payload. The caller passes read bytes (in op order) as the frame's `data`. */
export function encodeOsdOpReply(p: OsdOpReply): Uint8Array {
  const w = new Writer(32 + p.outs.length * 24);
  w.u8(OSD_OP_PROTOCOL_VERSION).u16(p.result).u32(p.version.epoch).u64(p.version.seq).u32(p.mapEpoch).u16(p.outs.length);
  for (const o of p.outs) {
    switch (o.kind) {
      case 'none': w.u8(OUT_NONE).u16(o.result); break;
      case 'read': w.u8(OUT_READ).u16(o.result).u32(o.length); break;
      case 'stat': w.u8(OUT_STAT).u16(o.result).u64(o.size).u32(o.version.epoch).u64(o.version.seq); break;
      case 'attr': w.u8(OUT_ATTR).u16(o.result).bytes(o.value); break;
    }
  }
  return w.finish();
}

/** Decodes a reply payload; throws CodecError on malformed input. */
export function decodeOsdOpReply(payload: Uint8Array): OsdOpReply {
  const r = new Reader(payload);
  const v = r.u8();
  if (v !== OSD_OP_PROTOCOL_VERSION) throw new CodecError(`osd op reply version ${v}`);
  const result = r.u16();
  const version = { epoch: r.u32(), seq: r.u64() };
  const mapEpoch = r.u32();
  const n = r.u16();
  if (n > OsdOpLimits.opsPerRequestMax) throw new CodecError(`out count ${n}`);
  const outs: OsdOpOut[] = [];
  for (let i = 0; i < n; i++) {
    const kind = r.u8();
    const res = r.u16();
    if (kind === OUT_NONE) outs.push({ kind: 'none', result: res });
    else if (kind === OUT_READ) outs.push({ kind: 'read', result: res, length: r.u32() });
    else if (kind === OUT_STAT) outs.push({ kind: 'stat', result: res, size: r.u64(), version: { epoch: r.u32(), seq: r.u64() } });
    else if (kind === OUT_ATTR) outs.push({ kind: 'attr', result: res, value: r.bytes(OsdOpLimits.attrValueBytesMax).slice() });
    else throw new CodecError(`out kind ${kind}`);
  }
  r.end();
  return { result, version, mapEpoch, outs };
}

/** Compares versions: negative when a < b. */
export function compareVersion(a: EVersion, b: EVersion): number {
  return a.epoch !== b.epoch ? a.epoch - b.epoch : a.seq - b.seq;
}

/**
 * Encoding of a lock attribute (`lock.<name>`): who holds it and until when (primary wall ms;
 * 0 = no expiry). cls_lock keeps the same facts.
 */
export interface LockState {
  readonly exclusive: boolean;
  readonly holders: readonly { readonly client: string; readonly cookie: string; readonly expiresMs: number }[];
}

export function encodeLockState(s: LockState): Uint8Array {
  const w = new Writer(64);
  w.u8(1).bool(s.exclusive).u16(s.holders.length);
  for (const h of s.holders) w.str(h.client).str(h.cookie).u64(h.expiresMs);
  return w.finish();
}

export function decodeLockState(b: Uint8Array): LockState {
  const r = new Reader(b);
  if (r.u8() !== 1) throw new CodecError('lock state version');
  const exclusive = r.bool();
  const n = r.u16();
  const holders: { client: string; cookie: string; expiresMs: number }[] = [];
  for (let i = 0; i < n; i++) holders.push({ client: r.str(), cookie: r.str(), expiresMs: r.u64() });
  r.end();
  return { exclusive, holders };
}
