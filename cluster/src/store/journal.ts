/**
 * The write-ahead journal: a ring of records in one preallocated file (format in
 * journal-format.ts), written with group commit.
 *
 * Records are encoded in place in a staging ring (staging-ring.ts): one buffer, no copy per
 * record, and adjacent records of a batch are written as one view of it.
 *
 * Group commit (TigerStyle batching): `append` only queues a record. When no write is in
 * flight, everything queued becomes one batch: one pwrite per contiguous run (two when the
 * batch wraps), then ONE fdatasync of the journal — in parallel with one fdatasync of the
 * data file when the batch carries direct writes — and then every record's `onDurable`, in
 * seq order. Records appended while that sync runs form the next batch.
 *
 *   append ─► queue ─(idle)─► pwrite batch ─► fdatasync(journal) ‖ fdatasync(data)? ─► acks
 *
 * On a disk that honours O_DSYNC (`Disk.dsyncWrites`, the real one) the journal fd is opened
 * with it and the batch's pwrite is itself the durable step: no separate fdatasync, so one
 * thread-pool hop per commit instead of two (the data file's fdatasync, when needed, runs in
 * parallel with that pwrite):
 *
 *   append ─► queue ─(idle)─► pwrite(O_DSYNC) batch ‖ fdatasync(data)? ─► acks
 *
 * Space: the ring holds records from `start` (the last durable checkpoint's position) to
 * `head`. `fits` refuses a record that would overwrite records not yet checkpointed; the
 * store then waits for a checkpoint (backpressure) and calls `trim`.
 */
import { copyBytes } from '../common/codec.js';
import { alignedBytes } from '../common/aligned.js';
import { assert } from '../common/assert.js';
import type { DiskError, Env, Fd } from '../env/env.js';
import type { JournalIo } from './types.js';
import { HEADER_BYTES, RECORD_ALIGN, RECORD_HEADER_BYTES, RecordKind, parseRecord, recordBytes, sealRecord } from './journal-format.js';
import type { RecordReject } from './journal-format.js';
import { StagingRing } from './staging-ring.js';
import type { Staged } from './staging-ring.js';

/** Default size of the staging ring records are encoded into (a batch at QD16 of 4k writes is ~75 KiB). */
export const STAGING_BYTES_DEFAULT = 2 << 20;

type DurableCb = (err: DiskError | null) => void;

interface Pending {
  readonly offset: number;
  readonly bytes: Uint8Array;
  readonly dataSync: boolean;
  readonly cb: DurableCb | undefined;
  /** Staging ring bytes to give back once the record is durable (0: not in the ring). */
  readonly cost: number;
}

/** Construction parameters of `Journal`. */
export interface JournalParams {
  readonly env: Env;
  readonly fd: Fd;
  readonly journalBytes: number;
  readonly gen: number;
  /** Offset and seq where the ring's live part starts (from the checkpoint / replay). */
  readonly head: number;
  readonly nextSeq: number;
  /** fdatasync of the data file, run in parallel with the journal's for direct writes. */
  readonly syncData: (cb: DurableCb) => void;
  /** The fd was opened with O_DSYNC: a completed pwrite is durable (no fdatasync needed). */
  readonly dsync?: boolean;
  /**
   * With `dsync`, when the disk has `pwriteInline`: which batches are written on this thread
   * ('inline': all, 'auto': a batch of one record) rather than through `disk.pwrite` ('pool',
   * the default). ObjectStoreOptions.journalIo.
   */
  readonly io?: JournalIo;
  /**
   * With `dsync`: a second fd on the journal opened O_DSYNC | O_DIRECT, which batches are
   * written through (views of the 4096-aligned staging ring; records are 512-aligned in
   * length, offset and address).
   * No copy into the page cache: ~40 against ~60-80 µs of CPU per 4.5 KiB durable write here,
   * and a shorter wait (docs/object-store.md, "Journal I/O"). `fd` stays the reading fd.
   */
  readonly directFd?: Fd;
  /** Size of the staging ring (default STAGING_BYTES_DEFAULT); records that do not fit get a buffer of their own. */
  readonly stagingBytes?: number;
}

/** Largest record payload a journal of `journalBytes` accepts (half the ring, minus slack). */
export function journalPayloadMax(journalBytes: number): number {
  return Math.floor((journalBytes - HEADER_BYTES) / 2) - 2 * RECORD_ALIGN;
}

/** Ring writer with group commit. */
export class Journal {
  readonly ringStart = HEADER_BYTES;
  readonly ringEnd: number;
  private readonly env: Env;
  private readonly fd: Fd;
  private readonly gen: number;
  private readonly syncData: (cb: DurableCb) => void;
  private readonly dsync: boolean;
  private readonly io: JournalIo;
  /** Where dsync batches are written: the O_DIRECT fd when there is one. */
  private readonly writeFd: Fd;
  private readonly direct: boolean;
  private start: number;
  private head: number;
  private nextSeqValue: number;
  private queue: Pending[] = [];
  private writing = false;
  private readonly staging: StagingRing;
  /** Set by the first I/O error; every later append fails (the disk state is unknown). */
  broken: DiskError | undefined;
  /** Batches written so far (for tests and benchmarks: fdatasync count). */
  batches = 0;

  constructor(p: JournalParams) {
    this.env = p.env;
    this.fd = p.fd;
    this.gen = p.gen;
    this.syncData = p.syncData;
    this.dsync = p.dsync === true;
    this.io = this.dsync && p.env.disk.pwriteInline !== undefined ? p.io ?? 'pool' : 'pool';
    this.direct = this.dsync && p.directFd !== undefined;
    this.writeFd = this.direct ? p.directFd! : p.fd;
    this.ringEnd = p.journalBytes;
    assert(p.journalBytes % RECORD_ALIGN === 0, 'journal size alignment');
    assert(p.head >= this.ringStart && p.head < this.ringEnd, 'journal head in ring');
    this.start = p.head;
    this.head = p.head;
    this.nextSeqValue = p.nextSeq;
    this.staging = new StagingRing(p.stagingBytes ?? STAGING_BYTES_DEFAULT);
  }

  /** Ring capacity in bytes. */
  get ringBytes(): number { return this.ringEnd - this.ringStart; }
  /** Bytes between the checkpointed start and the head. */
  get usedBytes(): number { return (this.head - this.start + this.ringBytes) % this.ringBytes; }
  /** Where the next record goes (a checkpoint snapshots this). */
  get position(): { offset: number; nextSeq: number } { return { offset: this.head, nextSeq: this.nextSeqValue }; }
  /** True while batches are queued or being written. */
  get busy(): boolean { return this.writing || this.queue.length > 0; }
  /** Largest payload that could ever fit (keeps one alignment unit of slack, plus a WRAP). */
  get payloadMax(): number { return journalPayloadMax(this.ringEnd); }

  private need(payloadBytes: number): number {
    const total = recordBytes(payloadBytes);
    return this.head + total > this.ringEnd ? total + (this.ringEnd - this.head) : total;
  }

  /** True when a record of `payloadBytes` fits without overwriting un-checkpointed records. */
  fits(payloadBytes: number): boolean {
    // Why the slack: head must never catch up with start, or "full" would look "empty".
    return this.usedBytes + this.need(payloadBytes) <= this.ringBytes - RECORD_ALIGN;
  }

  /**
   * Queues a TXN record (caller checked `fits` for `payloadBound`); returns its seq.
   * `encode` writes the payload into the view it is given (`payloadBound` bytes, in the staging
   * ring when there is room, so the record needs no buffer or copy of its own) and answers the
   * payload's bytes.
   */
  append(payloadBound: number, encode: (into: Uint8Array) => Uint8Array, dataSync: boolean, onDurable: DurableCb): number {
    const { view: bytes, cost, payloadBytes } = this.stage(payloadBound, encode);
    assert(this.fits(payloadBytes), 'journal append without space');
    const total = bytes.length;
    if (this.head + total > this.ringEnd) {
      const wrap = this.recordBuffer(recordBytes(0));
      sealRecord(wrap, this.nextSeqValue++, this.gen, RecordKind.WRAP, 0);
      this.queue.push({ offset: this.head, bytes: wrap, dataSync: false, cb: undefined, cost: 0 });
      this.head = this.ringStart;
    }
    const seq = this.nextSeqValue++;
    sealRecord(bytes, seq, this.gen, RecordKind.TXN, payloadBytes);
    this.queue.push({ offset: this.head, bytes, dataSync, cb: onDurable, cost });
    this.head += total;
    if (this.head === this.ringEnd) this.head = this.ringStart;
    this.kick();
    return seq;
  }

  /**
   * The record's memory with its payload encoded in place: in the staging ring, or (ring full,
   * record larger than the ring) a buffer of its own, 4096-aligned for the O_DIRECT fd.
   */
  private stage(payloadBound: number, encode: (into: Uint8Array) => Uint8Array): Staged & { payloadBytes: number } {
    const max = recordBytes(payloadBound);
    const staged = this.staging.alloc(max) ?? { view: this.recordBuffer(max), cost: 0 };
    const payload = encode(staged.view.subarray(RECORD_HEADER_BYTES));
    const payloadBytes = payload.length;
    const total = recordBytes(payload.length);
    if (payload.buffer === staged.view.buffer && payload.byteOffset === staged.view.byteOffset + RECORD_HEADER_BYTES) {
      const kept = staged.cost > 0 ? this.staging.shrinkLast(staged, max - total) : { view: staged.view.subarray(0, total), cost: 0 };
      return { view: kept.view, cost: kept.cost, payloadBytes };
    }
    // The bound was wrong (a bug, but not worth losing the write for): a record of its own.
    if (staged.cost > 0) this.staging.shrinkLast(staged, staged.view.length);
    const own = this.recordBuffer(total);
    own.set(payload, RECORD_HEADER_BYTES);
    return { view: own, cost: 0, payloadBytes };
  }

  /** A record's own buffer (outside the staging ring): 4096-aligned for the O_DIRECT fd. */
  private recordBuffer(n: number): Uint8Array {
    return this.direct ? alignedBytes(n) : new Uint8Array(n);
  }

  /** Releases ring space up to `offset` (a checkpoint covering it is durable). */
  trim(offset: number): void {
    assert(offset >= this.ringStart && offset < this.ringEnd, 'trim offset in ring');
    this.start = offset;
  }

  private kick(): void {
    if (this.writing || this.queue.length === 0) return;
    if (this.broken !== undefined) return this.failAll(this.broken);
    this.writing = true;
    const batch = this.queue;
    this.queue = [];
    // Why setImmediate before writing: appends made in the same tick join this batch.
    this.env.setImmediate(() => this.writeBatch(batch.concat(this.takeQueue())));
  }

  private takeQueue(): Pending[] {
    const q = this.queue;
    this.queue = [];
    return q;
  }

  private writeBatch(batch: Pending[]): void {
    const runs = contiguousRuns(batch, this.direct);
    if (this.dsync) return this.writeBatchDsync(batch, runs);
    let left = runs.length;
    let failed: DiskError | null = null;
    for (const run of runs) {
      this.env.disk.pwrite(this.fd, run.bytes, run.offset, (err) => {
        if (err && failed === null) failed = err;
        if (--left === 0) this.syncBatch(batch, failed);
      });
    }
  }

  /** O_DSYNC journal: the pwrites are durable on completion; the data sync runs alongside. */
  private writeBatchDsync(batch: Pending[], runs: { offset: number; bytes: Uint8Array }[]): void {
    const dataSync = batch.some((p) => p.dataSync);
    let left = runs.length + (dataSync ? 1 : 0);
    let failed: DiskError | null = null;
    const one = (err: DiskError | null): void => {
      if (err && failed === null) failed = err;
      if (--left === 0) this.batchDone(batch, failed);
    };
    if (dataSync) this.syncData(one);
    // 'auto': a lone record is a lone client write (QD1), where the thread hand-offs are most of
    // the cost; with more, the loop had better keep receiving while the device writes.
    if (this.io === 'inline' || (this.io === 'auto' && batch.length === 1)) {
      // Runs inside the batch's setImmediate, so callbacks still never fire inside `append`.
      for (const run of runs) one(this.env.disk.pwriteInline!(this.writeFd, run.bytes, run.offset));
      return;
    }
    for (const run of runs) this.env.disk.pwrite(this.writeFd, run.bytes, run.offset, one);
  }

  private syncBatch(batch: Pending[], writeErr: DiskError | null): void {
    if (writeErr !== null) return this.batchDone(batch, writeErr);
    const dataSync = batch.some((p) => p.dataSync);
    let left = dataSync ? 2 : 1;
    let failed: DiskError | null = null;
    const one = (err: DiskError | null): void => {
      if (err && failed === null) failed = err;
      if (--left === 0) this.batchDone(batch, failed);
    };
    this.env.disk.fdatasync(this.fd, one);
    if (dataSync) this.syncData(one);
  }

  private batchDone(batch: Pending[], err: DiskError | null): void {
    this.writing = false;
    for (const p of batch) this.staging.release(p.cost);
    this.batches++;
    if (err !== null) {
      this.broken = err;
      for (const p of batch) p.cb?.(err);
      return this.failAll(err);
    }
    for (const p of batch) p.cb?.(null);
    this.kick();
  }

  private failAll(err: DiskError): void {
    const q = this.takeQueue();
    for (const p of q) p.cb?.(err);
  }
}

/**
 * Batch records joined into runs of adjacent offsets. A run whose records are also adjacent in
 * memory (the staging ring) is one view of it; otherwise its records are copied into one
 * buffer, 4096-aligned when `aligned` (O_DIRECT).
 */
function contiguousRuns(batch: readonly Pending[], aligned: boolean): { offset: number; bytes: Uint8Array }[] {
  const runs: { offset: number; parts: Uint8Array[]; end: number; adjacent: boolean }[] = [];
  for (const p of batch) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.end === p.offset) {
      const prev = last.parts[last.parts.length - 1]!;
      last.adjacent &&= prev.buffer === p.bytes.buffer && prev.byteOffset + prev.length === p.bytes.byteOffset;
      last.parts.push(p.bytes);
      last.end += p.bytes.length;
    } else {
      runs.push({ offset: p.offset, parts: [p.bytes], end: p.offset + p.bytes.length, adjacent: true });
    }
  }
  return runs.map((r) => ({ offset: r.offset, bytes: r.adjacent ? joinedView(r.parts, r.end - r.offset) : concat(r.parts, r.end - r.offset, aligned) }));
}

/** One view over parts that follow each other in the same buffer. */
function joinedView(parts: readonly Uint8Array[], total: number): Uint8Array {
  const first = parts[0]!;
  return parts.length === 1 ? first : new Uint8Array(first.buffer, first.byteOffset, total);
}

function concat(parts: readonly Uint8Array[], total: number, aligned: boolean): Uint8Array {
  const out = aligned ? alignedBytes(total) : new Uint8Array(total);
  let pos = 0;
  for (const p of parts) { out.set(p, pos); pos += p.length; }
  return out;
}

/** A valid TXN record found by `readJournal`. */
export interface ReplayRecord {
  readonly seq: number;
  readonly offset: number;
  readonly payload: Uint8Array;
}

/** What `readJournal` found: the valid prefix and where (and why) it ends. */
export interface ReplayScan {
  readonly records: ReplayRecord[];
  readonly endOffset: number;
  readonly endSeq: number;
  readonly stopReason: RecordReject | 'full-lap';
}

const READ_CHUNK_BYTES = 1 << 20;

/**
 * Reads the ring from `start` and returns every valid record up to the first bad one
 * (magic, crc, length, seq or gen). Why collect first: TXN block images end up in memory
 * anyway (journal-resident), and a separate pass lets the store verify direct writes.
 */
export function readJournal(
  env: Env,
  p: { fd: Fd; journalBytes: number; start: number; nextSeq: number; gen: number; maxPayload: number },
  cb: (err: DiskError | null, scan: ReplayScan) => void,
): void {
  const ringStart = HEADER_BYTES;
  const records: ReplayRecord[] = [];
  let off = p.start;
  let seq = p.nextSeq;
  let scanned = 0;
  let chunk = new Uint8Array(0);
  let chunkOff = -1;
  let lastRead = { at: -1, len: 0 };
  const finish = (reason: ReplayScan['stopReason']): void => cb(null, { records, endOffset: off, endSeq: seq, stopReason: reason });
  const loop = (): void => {
    for (;;) {
      if (off === p.journalBytes) off = ringStart;
      if (scanned >= p.journalBytes - ringStart) return finish('full-lap');
      const inChunk = chunkOff >= 0 && off >= chunkOff && off < chunkOff + chunk.length;
      const view = inChunk ? chunk.subarray(off - chunkOff) : new Uint8Array(0);
      const r = parseRecord(view, { seq, gen: p.gen, maxPayload: p.maxPayload });
      if (!r.ok && r.reason === 'short') {
        const want = Math.min(Math.max(r.needBytes ?? 0, READ_CHUNK_BYTES), p.journalBytes - off);
        // Why remember the last read: a record cut by the ring end (or EOF) stays short.
        if (lastRead.at === off && lastRead.len >= want) return finish('short');
        lastRead = { at: off, len: want };
        return readAt(off, want);
      }
      if (!r.ok) return finish(r.reason);
      if (r.kind === RecordKind.TXN) records.push({ seq, offset: off, payload: copyBytes(r.payload) });
      scanned += r.kind === RecordKind.WRAP ? p.journalBytes - off : r.totalBytes;
      seq++;
      off = r.kind === RecordKind.WRAP ? ringStart : off + r.totalBytes;
    }
  };
  const readAt = (at: number, len: number): void => {
    const buf = new Uint8Array(len);
    env.disk.pread(p.fd, buf, at, (err, n) => {
      if (err) return cb(err, { records, endOffset: off, endSeq: seq, stopReason: 'short' });
      chunk = buf.subarray(0, n);
      chunkOff = at;
      loop();
    });
  };
  loop();
}
