/**
 * Checkpoint: moves journal-resident blocks to the data file and writes a new `meta`, so the
 * journal ring before the snapshot point can be reused.
 *
 *   T (one synchronous step):  pos = journal head; parked = allocator.takeParked();
 *                              allocate a data block per journal-resident block; encode meta
 *   then:   pwrite flushed blocks ─► wait for direct writes begun before T ─► fdatasync(data)
 *           ─► write meta.tmp, fdatasync, rename → meta, fsync dir
 *   then (one synchronous step): journal.trim(pos); switch flushed blocks to on-disk unless
 *           superseded since T (those are released); after in-flight reads drain,
 *           `parked` becomes reusable.
 *
 * Why copy-on-write flushes (a new block, never the old location): until `meta` is renamed,
 * a crash recovers from the old meta, whose blocks must still hold what its crcs say.
 *
 * Crash at any step: before the rename, the old meta + the whole journal from its start
 * rebuild the same state (the flushed blocks were free, nobody references them); after it,
 * the new meta + the journal from `pos`.
 */
import type { DiskError, Env, Fd } from '../env/env.js';
import type { BlockAllocator, InflightGate } from './allocator.js';
import { writeFileAtomic } from '../env/disk-file.js';
import type { Journal } from './journal.js';
import { encodeMeta } from './meta-codec.js';
import type { FlushMap } from './meta-codec.js';
import type { ObjectIndex, ObjState } from './object-index.js';
import { NO_LOC } from './object-index.js';
import { BLOCK_BYTES } from './types.js';

/** What a checkpoint touches. */
export interface CheckpointDeps {
  readonly env: Env;
  readonly dir: string;
  readonly dataFd: Fd;
  readonly storeUuid: Uint8Array;
  readonly index: ObjectIndex;
  readonly allocator: BlockAllocator;
  /** Direct data writes in flight (a checkpoint waits for those begun before it). */
  readonly dataGate: InflightGate;
  /** Reads in flight (freed blocks are reused only after those begun earlier finish). */
  readonly readGate: InflightGate;
}

/** True when `b` starts where `a` ends, in the same buffer. */
function follows(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}

interface Flushed { readonly o: ObjState; readonly b: number; readonly image: Uint8Array; readonly loc: number }

/** Runs one checkpoint at a time; requests made during one are served by the next. */
export class Checkpointer {
  private running = false;
  private waiting: ((err: DiskError | null) => void)[] = [];
  /** Checkpoints completed (for tests and benchmarks). */
  completed = 0;

  constructor(private readonly deps: CheckpointDeps, private journal: Journal | undefined, private gen: number) {}

  /** Sets the journal and gen (open() creates the journal after replay). */
  attach(journal: Journal, gen: number): void {
    this.journal = journal;
    this.gen = gen;
  }

  get isRunning(): boolean { return this.running; }

  /** Requests a checkpoint; `cb` runs when one that started after this call is durable. */
  request(cb: (err: DiskError | null) => void): void {
    this.waiting.push(cb);
    if (!this.running) this.start();
  }

  private start(): void {
    const journal = this.journal;
    if (journal === undefined) throw new Error('checkpoint before the journal is attached');
    this.running = true;
    const waiters = this.waiting;
    this.waiting = [];
    const d = this.deps;
    const pos = journal.position;
    const parked = d.allocator.takeParked();
    const flushed = this.allocateFlush();
    const flushMap: FlushMap = new Map();
    for (const f of flushed) {
      const m = flushMap.get(f.o) ?? new Map<number, number>();
      m.set(f.b, f.loc);
      flushMap.set(f.o, m);
    }
    const meta = encodeMeta({ storeUuid: d.storeUuid, gen: this.gen, journalStart: pos.offset, nextSeq: pos.nextSeq }, d.index, flushMap);
    const done = (err: DiskError | null): void => {
      this.running = false;
      if (err === null) this.finish(journal, pos.offset, flushed, parked);
      for (const w of waiters) w(err);
      // A waiter may already have started the next checkpoint.
      if (this.waiting.length > 0 && !this.running) this.start();
    };
    this.writeFlushed(flushed, (err) => {
      if (err) return done(err);
      d.dataGate.afterCurrent(() => {
        d.env.disk.fdatasync(d.dataFd, (err2) => {
          if (err2) return done(err2);
          writeFileAtomic(d.env.disk, d.dir, 'meta', meta, done);
        });
      });
    });
  }

  /**
   * A data block per journal-resident block. Why allocate in slot order: a run of blocks that
   * are adjacent both in the pool and in the data file is written as one view of the pool.
   */
  private allocateFlush(): Flushed[] {
    const pool = this.deps.index.pool;
    const picked: { o: ObjState; b: number; image: Uint8Array; key: number }[] = [];
    for (const o of this.deps.index.dirty) {
      for (const [b, image] of o.mem) {
        if (o.locOf(b) !== NO_LOC) continue;
        picked.push({ o, b, image, key: pool.slotOrder(image) });
      }
    }
    picked.sort((x, y) => x.key - y.key);
    const out: Flushed[] = picked.map((p) => ({ o: p.o, b: p.b, image: p.image, loc: this.deps.allocator.alloc() }));
    out.sort((x, y) => x.loc - y.loc);
    return out;
  }

  /**
   * Writes flushed blocks straight from their pool slots, one pwrite per run of consecutive
   * locations whose slots are adjacent too. The pool is pinned until every pwrite completed,
   * so a slot freed meanwhile (its block overwritten) is not reused under the write.
   */
  private writeFlushed(flushed: readonly Flushed[], cb: (err: DiskError | null) => void): void {
    const pool = this.deps.index.pool;
    pool.pin();
    let pending = 1;
    let failed: DiskError | null = null;
    const one = (err: DiskError | null): void => {
      if (err && failed === null) failed = err;
      if (--pending > 0) return;
      pool.unpin();
      cb(failed);
    };
    let i = 0;
    while (i < flushed.length) {
      const first = flushed[i]!.image;
      let j = i + 1;
      while (j < flushed.length && flushed[j]!.loc === flushed[j - 1]!.loc + 1 && follows(flushed[j - 1]!.image, flushed[j]!.image)) j++;
      const view = j - i === 1 ? first : new Uint8Array(first.buffer, first.byteOffset, (j - i) * BLOCK_BYTES);
      pending++;
      this.deps.env.disk.pwrite(this.deps.dataFd, view, flushed[i]!.loc * BLOCK_BYTES, one);
      i = j;
    }
    // Why defer the final decrement: keep the callback asynchronous even with nothing to write.
    this.deps.env.setImmediate(() => one(null));
  }

  private finish(journal: Journal, offset: number, flushed: readonly Flushed[], parked: number[]): void {
    const d = this.deps;
    journal.trim(offset);
    const touched = new Set<ObjState>();
    for (const f of flushed) {
      if (!d.index.settleFlushed(f.o, f.b, f.image, f.loc)) d.allocator.release(f.loc);
      touched.add(f.o);
    }
    for (const o of touched) d.index.refreshDirty(o);
    d.readGate.afterCurrent(() => d.allocator.makeReusable(parked));
    this.completed++;
    d.env.log.debug({ flushedBlocks: flushed.length, reusableBlocks: parked.length, journalStart: offset }, 'object store checkpoint done');
  }
}
