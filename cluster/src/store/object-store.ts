/**
 * `ObjectStore`: the OSD's local, crash-safe object store (issue #5, "Object store").
 *
 * Write path (one transaction):
 *
 *   submit ─► queue (FIFO; bounded bytes → CLU_ERR_BUSY)
 *          ─► base reads for partial blocks on the data file (crc-checked)
 *          ─► state checks (attrs, space) ─► journal space? no → checkpoint, wait (backpressure)
 *          ─► resolve + apply to the in-memory index (all ops, synchronously)
 *          ─► direct writes: pwrite to fresh data blocks (O_DIRECT fd when allowed: "Data I/O")
 *          ─► journal.append ─► group commit: pwrite + ONE fdatasync (‖ data fdatasync) ─► onCommit
 *
 * Reads and `stat` see every applied transaction, including ones whose commit is still in
 * flight (the PG layer orders reads after commits where it matters). Data reads verify each
 * 4 KiB block's crc32c; a mismatch is CLU_ERR_IO with `details.reason = 'checksum'` naming
 * the object and block.
 *
 * Runs to completion on callbacks (GUIDE principle 9); all I/O goes through `env.disk`.
 */
import { ALIGNED_MIN_BYTES, alignedCopy, isDirectAligned } from '../common/aligned.js';
import { copyBytes } from '../common/codec.js';
import { ClusterError } from '../common/errors.js';
import type { Env, TimerHandle } from '../env/env.js';
import { envWithLog } from '../env/env.js';
import { ioError, readBlocks } from './disk-io.js';
import type { BlockRead } from './disk-io.js';
import { encodeTxnPayloadInto, txnPayloadBound } from './resolved-ops.js';
import { openStore } from './store-open.js';
import type { OpenedStore } from './store-open.js';
import { baseKey, baseReadsNeeded, checkTxnShape, checkTxnState, resolveAndApply, txnBounds } from './txn-resolver.js';
import type { BaseBlock, DataWrite, ResolveContext } from './txn-resolver.js';
import { BLOCK_BYTES, Transaction } from './types.js';
import type { ObjectId, ObjectStat, ObjectStoreOptions } from './types.js';

/** Called once a transaction is durable (or failed; nothing of it then applied). */
export type CommitCb = (err: ClusterError | null) => void;

interface Queued { txn: Transaction; readonly cb: CommitCb; readonly bytes: number; owned: boolean }

/** Counters for tests, logs and the benchmark. */
export interface StoreStats {
  readonly objects: number;
  readonly journalBatches: number;
  readonly journalUsedBytes: number;
  readonly journalRingBytes: number;
  readonly checkpoints: number;
  readonly liveBlocks: number;
  readonly residentBlocks: number;
  /** Bytes of pool chunks holding journal-resident block images (block-pool.ts). */
  readonly residentPoolBytes: number;
  readonly heldBlocks: number;
  readonly dataFileBlocks: number;
  readonly queued: number;
  /** Direct writes go to the data file with O_DIRECT. */
  readonly directIo: boolean;
  /** Journal batches are written through an O_DSYNC | O_DIRECT fd (no page-cache copy). */
  readonly journalDirectIo: boolean;
  /** Direct writes copied first because their buffer was not 4096-aligned. */
  readonly unalignedDirectWrites: number;
}

const DEFAULTS = {
  journalBytes: 64 * 1024 * 1024,
  directWriteBytes: 128 * 1024,
  checkpointFill: 0.5,
  dataBytesMax: 1024 ** 4,
  objectBytesMax: 64 * 1024 * 1024,
  queueBytesMax: 64 * 1024 * 1024,
};

function txnDataBytes(txn: Transaction): number {
  let n = 0;
  for (const op of txn.ops) if (op.op === 'write' || op.op === 'setattr' || op.op === 'pgput') n += op.op === 'write' ? op.data.length : op.value.length;
  return n;
}

/** A copy of `txn` whose buffers the store owns (the caller may reuse its own). */
function ownTxn(txn: Transaction): Transaction {
  const t = new Transaction();
  t.handOff = true; // the store owns these copies: no second copy for direct writes
  for (const op of txn.ops) {
    // Why aligned when big: the copy may become an O_DIRECT write as is (no second copy).
    if (op.op === 'write') t.ops.push({ ...op, data: op.data.length >= ALIGNED_MIN_BYTES ? alignedCopy(op.data) : copyBytes(op.data) });
    else if (op.op === 'setattr' || op.op === 'pgput') t.ops.push({ ...op, value: copyBytes(op.value) });
    else t.ops.push(op);
  }
  return t;
}

/** The per-OSD object store. Create with `ObjectStore.open`. */
export class ObjectStore {
  private readonly queue: Queued[] = [];
  private queuedBytes = 0;
  /** True while the queue head waits for base reads or journal space. */
  private waiting = false;
  private readonly bases = new Map<string, BaseBlock>();
  private broken: ClusterError | undefined;
  /** Direct writes that had to be copied into an aligned buffer for O_DIRECT (stats). */
  private unalignedDirect = 0;
  private closing = false;
  /** When the last transaction was submitted (env clock): `checkpointIfIdle` waits for quiet. */
  private lastSubmitMs = 0;
  private readonly ctx: ResolveContext;

  private constructor(private readonly env: Env, private readonly s: OpenedStore, private readonly o: typeof DEFAULTS) {
    this.ctx = {
      index: s.index,
      directWriteBytes: o.directWriteBytes,
      objectBytesMax: o.objectBytesMax,
      alloc: () => s.allocator.alloc(),
      bases: this.bases,
      copyDirect: (b) => (s.dataDirectFd !== undefined ? alignedCopy(b) : copyBytes(b)),
    };
  }

  /** Opens (creating when empty) the store in `options.dir`; replays the journal. */
  static open(env: Env, options: ObjectStoreOptions, cb: (err: ClusterError | null, store?: ObjectStore) => void): void {
    const o = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      const v = options[k];
      if (v !== undefined) o[k] = v;
    }
    const log = envWithLog(env, { component: 'object-store', dir: options.dir });
    const directData = options.dataIo !== 'buffered';
    openStore(log, { dir: options.dir, journalBytes: o.journalBytes, journalIo: options.journalIo ?? 'pool', directData }, (err, opened) => {
      if (err || opened === undefined) return cb(err ?? new ClusterError('CLU_ERR_IO', 'open failed'));
      cb(null, new ObjectStore(log, opened, o));
    });
  }

  /**
   * Applies `txn` atomically; `onCommit` runs after its journal record (and any direct data)
   * is durable. Errors: CLU_ERR_INVALID (bad input), CLU_ERR_BUSY (queue full),
   * CLU_ERR_NOSPC, CLU_ERR_IO (disk failure or a corrupt base block; the store then refuses
   * all later writes).
   */
  submit(txn: Transaction, onCommit: CommitCb): void {
    this.lastSubmitMs = this.env.nowMs();
    const fail = (e: ClusterError): void => void this.env.setImmediate(() => onCommit(e));
    if (this.broken !== undefined) return fail(this.broken);
    if (this.closing) return fail(new ClusterError('CLU_ERR_CANCELLED', 'object store is closing'));
    const shapeErr = checkTxnShape(txn, this.o.objectBytesMax);
    if (shapeErr !== null) return fail(shapeErr);
    const bytes = txnDataBytes(txn);
    if (this.queue.length > 0 && this.queuedBytes + bytes > this.o.queueBytesMax) {
      return fail(new ClusterError('CLU_ERR_BUSY', 'object store queue full', { details: { queuedBytes: this.queuedBytes } }));
    }
    const q: Queued = { txn, cb: onCommit, bytes, owned: txn.handOff };
    this.queue.push(q);
    this.queuedBytes += bytes;
    this.pump();
    // Why copy only now: a transaction applied at once never needs its own copy.
    if (this.queue.includes(q) && !q.owned) {
      q.txn = ownTxn(q.txn);
      q.owned = true;
    }
  }

  private dequeue(): Queued {
    const q = this.queue.shift()!;
    this.queuedBytes -= q.bytes;
    return q;
  }

  private rejectHead(err: ClusterError): void {
    const q = this.dequeue();
    this.bases.clear();
    this.env.setImmediate(() => q.cb(err));
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.waiting) {
      if (this.broken !== undefined) {
        this.rejectHead(this.broken);
        continue;
      }
      const q = this.queue[0]!;
      const needs = baseReadsNeeded(this.s.index, q.txn, this.bases);
      if (needs.length > 0) return this.readBases(needs);
      const bounds = txnBounds(q.txn, this.o.directWriteBytes);
      const err = checkTxnState(this.s.index, q.txn) ?? this.checkSpace(bounds.newBlocks, bounds.payloadBytes);
      if (err !== null) {
        this.rejectHead(err);
        continue;
      }
      if (!this.s.journal.fits(bounds.payloadBytes)) {
        this.waiting = true;
        this.s.checkpointer.request((e) => {
          this.waiting = false;
          if (e) this.setBroken(ioError('checkpoint', e));
          this.pump();
        });
        return;
      }
      this.applyHead();
    }
  }

  private checkSpace(newBlocks: number, payloadBytes: number): ClusterError | null {
    if (payloadBytes > this.s.journal.payloadMax) {
      return new ClusterError('CLU_ERR_INVALID', `transaction of ~${payloadBytes} bytes exceeds the journal record limit ${this.s.journal.payloadMax}`);
    }
    const blocks = this.s.index.liveBlocks + this.s.allocator.heldBlocks + newBlocks;
    if (blocks * BLOCK_BYTES > this.o.dataBytesMax) return new ClusterError('CLU_ERR_NOSPC', 'object store full', { details: { blocks } });
    return null;
  }

  private readBases(needs: ReturnType<typeof baseReadsNeeded>): void {
    this.waiting = true;
    const reads: BlockRead[] = needs.map((n, i) => ({ loc: n.loc, crc: n.crc, tag: i }));
    const gen = this.s.readGate.enter();
    readBlocks(this.env.disk, this.s.dataFd, reads, (r) => {
      this.s.readGate.leave(gen);
      this.waiting = false;
      if (r.ok) {
        needs.forEach((n, i) => this.bases.set(baseKey(n.obj.id, n.b), { loc: n.loc, data: r.images[i]! }));
      } else {
        const n = needs[r.badTag]!;
        this.rejectHead(r.error !== null ? ioError('read for read-modify-write', r.error) : corruptError(n.obj.id, n.b, n.loc, n.crc, r.actualCrc));
      }
      this.pump();
    });
  }

  private applyHead(): void {
    const q = this.dequeue();
    const { ops, dataWrites } = resolveAndApply(this.ctx, q.txn);
    this.bases.clear();
    for (const dw of dataWrites) this.writeDirect(dw);
    const j = this.s.journal;
    j.append(txnPayloadBound(ops), (into) => encodeTxnPayloadInto(ops, into), dataWrites.length > 0, (err) => q.cb(err ? this.setBroken(ioError('journal commit', err)) : null));
    if (j.usedBytes > this.o.checkpointFill * j.ringBytes && !this.s.checkpointer.isRunning) {
      this.s.checkpointer.request((e) => { if (e) this.setBroken(ioError('checkpoint', e)); });
    }
  }

  private writeDirect(dw: DataWrite): void {
    const gen = this.s.dataGate.enter();
    const directFd = this.s.dataDirectFd;
    // O_DIRECT needs an aligned buffer: a received write's data normally is one (bulkBytes);
    // otherwise one copy here still beats the kernel's copy into the page cache.
    const fd = directFd ?? this.s.dataFd;
    const bytes = directFd === undefined || isDirectAligned(dw.bytes) ? dw.bytes : alignedCopy(dw.bytes);
    if (bytes !== dw.bytes) this.unalignedDirect++;
    this.env.disk.pwrite(fd, bytes, dw.loc * BLOCK_BYTES, (err) => {
      this.s.dataGate.leave(gen);
      if (err) return void this.setBroken(ioError('data write', err));
      dw.bufs.forEach((buf, i) => this.s.index.settleDirect(dw.obj, dw.first + i, buf, dw.loc + i));
    });
  }

  /** Marks the store failed (fsyncgate: after a failed write or sync nothing is trusted). */
  private setBroken(err: ClusterError): ClusterError {
    if (this.broken === undefined) {
      this.broken = err;
      this.env.log.error({ err }, 'object store failed; refusing writes');
    }
    return this.broken;
  }

  /**
   * Reads `[offset, offset + length)`, clipped to the object size (short read past it);
   * holes read as zeros. CLU_ERR_NOT_FOUND when the object does not exist.
   */
  read(obj: ObjectId, offset: number, length: number, cb: (err: ClusterError | null, data: Uint8Array) => void): void {
    const empty = new Uint8Array(0);
    const later = (e: ClusterError | null, d: Uint8Array): void => void this.env.setImmediate(() => cb(e, d));
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || length > this.o.objectBytesMax) {
      return later(new ClusterError('CLU_ERR_INVALID', `bad read range ${offset}+${length}`), empty);
    }
    const o = this.s.index.get(obj);
    if (o === undefined) return later(new ClusterError('CLU_ERR_NOT_FOUND', `object ${obj.pool}/${obj.name}`), empty);
    const end = Math.min(offset + length, o.sizeBytes);
    const out = new Uint8Array(Math.max(0, end - offset));
    const reads: BlockRead[] = [];
    for (let b = Math.floor(offset / BLOCK_BYTES); b * BLOCK_BYTES < end; b++) {
      const m = o.mem.get(b);
      const blockStart = b * BLOCK_BYTES;
      if (m !== undefined) out.set(m.subarray(Math.max(offset, blockStart) - blockStart, Math.min(end, blockStart + BLOCK_BYTES) - blockStart), Math.max(offset, blockStart) - offset);
      else if (o.locOf(b) >= 0) reads.push({ loc: o.locOf(b), crc: o.crc[b]!, tag: b });
    }
    if (reads.length === 0) return later(null, out);
    const gen = this.s.readGate.enter();
    readBlocks(this.env.disk, this.s.dataFd, reads, (r) => {
      this.s.readGate.leave(gen);
      if (!r.ok) {
        const bad = reads.find((x) => x.tag === r.badTag)!;
        return cb(r.error !== null ? ioError('read', r.error) : corruptError(obj, r.badTag, r.badLoc, bad.crc, r.actualCrc), empty);
      }
      reads.forEach((rd, i) => {
        const blockStart = rd.tag * BLOCK_BYTES;
        const from = Math.max(offset, blockStart);
        out.set(r.images[i]!.subarray(from - blockStart, Math.min(end, blockStart + BLOCK_BYTES) - blockStart), from - offset);
      });
      cb(null, out);
    });
  }

  /** Size, version and allocated bytes, or undefined when the object does not exist. */
  stat(obj: ObjectId): ObjectStat | undefined {
    const o = this.s.index.get(obj);
    if (o === undefined) return undefined;
    return { sizeBytes: o.sizeBytes, version: o.version, allocatedBytes: o.usedBlocks * BLOCK_BYTES };
  }

  /** One attribute, or undefined. */
  getAttr(obj: ObjectId, key: string): Uint8Array | undefined {
    return this.s.index.get(obj)?.attrs.get(key);
  }

  /** Attribute names of an object, sorted (empty when missing). */
  listAttrs(obj: ObjectId): string[] {
    return [...(this.s.index.get(obj)?.attrs.keys() ?? [])].sort();
  }

  /**
   * Objects of `pool`, sorted by name, optionally filtered (the PG layer passes "maps to my
   * PG"); for backfill and scrub.
   */
  listObjects(pool: number, filter?: (obj: ObjectId) => boolean): ObjectId[] {
    const out: ObjectId[] = [];
    for (const o of this.s.index.objects.values()) {
      if (o.id.pool === pool && (filter === undefined || filter(o.id))) out.push(o.id);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A per-PG record, or undefined. */
  pgGet(pg: string, key: string): Uint8Array | undefined {
    return this.s.index.pgs.get(pg)?.get(key);
  }

  /** All records of a PG, sorted by key (the PG log when keys are zero-padded versions). */
  pgList(pg: string): [string, Uint8Array][] {
    const m = this.s.index.pgs.get(pg);
    return m === undefined ? [] : [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** PGs that have records. */
  pgKeys(): string[] {
    return [...this.s.index.pgs.keys()].sort();
  }

  /**
   * Starts a checkpoint when nothing was submitted for `idleMs` and the journal holds records
   * (returns true then). Why: a checkpoint otherwise waits for the journal to fill, so an OSD
   * that went quiet kept its journal-resident blocks in memory (up to ~28 MiB with the default
   * journal) and a crash would replay them all; after this, neither. The OSD calls it from its
   * 1 s tick.
   */
  checkpointIfIdle(idleMs: number): boolean {
    const s = this.s;
    if (this.broken !== undefined || this.closing || s.checkpointer.isRunning || this.queue.length > 0 || s.journal.busy) return false;
    if (s.journal.usedBytes === 0 && s.index.residentBlocks === 0) return false;
    if (this.env.nowMs() - this.lastSubmitMs < idleMs) return false;
    s.checkpointer.request((e) => { if (e) this.setBroken(ioError('checkpoint', e)); });
    return true;
  }

  /** Forces a checkpoint (flush journal-resident data, trim the journal). */
  checkpoint(cb: (err: ClusterError | null) => void): void {
    this.s.checkpointer.request((e) => cb(e ? this.setBroken(ioError('checkpoint', e)) : null));
  }

  /** Counters. */
  stats(): StoreStats {
    const s = this.s;
    return {
      objects: s.index.objects.size,
      journalBatches: s.journal.batches,
      journalUsedBytes: s.journal.usedBytes,
      journalRingBytes: s.journal.ringBytes,
      checkpoints: s.checkpointer.completed,
      liveBlocks: s.index.liveBlocks,
      residentBlocks: s.index.residentBlocks,
      residentPoolBytes: s.index.pool.heldBytes,
      heldBlocks: s.allocator.heldBlocks,
      dataFileBlocks: s.allocator.highWaterBlocks,
      queued: this.queue.length,
      directIo: s.dataDirectFd !== undefined,
      journalDirectIo: s.journalDirectFd !== undefined,
      unalignedDirectWrites: this.unalignedDirect,
    };
  }

  /** Waits for queued and in-flight transactions, checkpoints, and closes the files. */
  close(cb: (err: ClusterError | null) => void): void {
    this.closing = true;
    let timer: TimerHandle | undefined;
    const tryClose = (): void => {
      if (this.queue.length > 0 || this.s.journal.busy || this.s.checkpointer.isRunning) {
        timer = this.env.setTimeout(tryClose, 1);
        return;
      }
      void timer;
      const finish = (err: ClusterError | null): void => {
        const disk = this.env.disk;
        const directFd = this.s.dataDirectFd;
        const closeDirect = (): void => (directFd === undefined ? cb(err) : disk.close(directFd, () => cb(err)));
        const journalDirectFd = this.s.journalDirectFd;
        const closeData = (): void => disk.close(this.s.dataFd, closeDirect);
        const closeJournalDirect = (): void => (journalDirectFd === undefined ? closeData() : disk.close(journalDirectFd, closeData));
        disk.close(this.s.journalFd, closeJournalDirect);
      };
      if (this.broken !== undefined) return finish(this.broken);
      this.checkpoint(finish);
    };
    tryClose();
  }
}

function corruptError(obj: ObjectId, block: number, dataBlock: number, expectedCrc: number, actualCrc: number): ClusterError {
  return new ClusterError('CLU_ERR_IO', `object store: checksum mismatch in ${obj.pool}/${obj.name} block ${block}`, {
    details: { reason: 'checksum', pool: obj.pool, name: obj.name, block, dataBlock, expectedCrc, actualCrc },
  });
}
