/**
 * An open image: a block device made of RADOS objects (the RBD model, docs/images.md). Byte
 * ranges go through the striper to object extents; extents of one request run in parallel
 * through the Objecter; unwritten ranges read as zeros (a missing object or a short one is
 * zeros: thin provisioning). It offers the `BlockStore` shape the vhost daemon consumes
 * (readv/writev/flush/discard/writeZeroes/resize/close on `Uint8Array[]` views), callbacks in
 * the core and `*Async` Promise wrappers for CLI callers.
 *
 * Data path copies: writes hand slices of the caller's views to the messenger (none); reads
 * copy reply chunks into the caller's views (one).
 *
 * Writes and fencing (image-lock.ts): a writable image holds the exclusive lock; every data
 * mutation is one vector `[assert_attr fence == epoch, op…]` (or, for an object not yet
 * stamped by us, `[assert_attr fence absent | == older, setattr fence = epoch, op…]`), so a
 * writer that lost the lock can never modify an object the new owner has written; after a
 * takeover the OSDs refuse the old writer altogether (blocklisted → fenced, image-lock.ts).
 *
 * Flush: writes are durable when acknowledged (the OSDs ack after commit on every replica),
 * so `flush` is a barrier: it completes when every write issued before it has completed.
 */
import type { Logger } from 'pino';
import { ClusterError } from '../common/errors.js';
import type { PoolId } from '../common/ids.js';
import type { Env } from '../env/env.js';
import { ASSERT_F_ABSENT, OSD_FLAG_FAILOK } from '../osd/osd-protocol.js';
import type { OsdOp } from '../osd/osd-protocol.js';
import { FENCE_ATTR, META_ATTR, dataObject, decodeFence, encodeFence, encodeMeta, headerObject } from './image-format.js';
import type { ImageMeta } from './image-format.js';
import { fencedError, isBlocklistedError } from './image-lock.js';
import type { ImageLock } from './image-lock.js';
import { IoVec } from './iovec.js';
import { chunksLength } from '../msg/frame.js';
import type { Objecter } from './objecter.js';
import { fileToExtents, numObjects, objectTruncateSize } from './striper.js';
import type { FileLayout, ObjectExtent } from './striper.js';

export type ImageCallback = (err: ClusterError | null) => void;

/** What `stat` reports. */
export interface ImageInfo {
  readonly name: string;
  readonly id: string;
  readonly sizeBytes: number;
  readonly layout: FileLayout;
  readonly features: number;
  readonly createdMs: number;
  readonly objectCount: number;
  /** Sum of the data objects' sizes (allocated bytes, before replication). */
  readonly usedBytes: number;
}

export interface ImageInit {
  env: Env;
  log: Logger;
  objecter: Objecter;
  pool: PoolId;
  name: string;
  id: string;
  meta: ImageMeta;
  lock: ImageLock | null;
}

/** Concurrency of whole-image sweeps (resize, stat, remove). */
export const SWEEP_WINDOW = 64;

/** Runs fn(0..n-1) with at most `limit` in flight; cb once with the first error. */
export function forEachLimited(env: Env, n: number, limit: number, fn: (i: number, done: ImageCallback) => void, cb: ImageCallback): void {
  let next = 0;
  let active = 0;
  let failed: ClusterError | null = null;
  let finished = false;
  const pump = (): void => {
    while (failed === null && active < limit && next < n) {
      const i = next++;
      active++;
      fn(i, (err) => { active--; if (err !== null && failed === null) failed = err; pump(); });
    }
    if (!finished && active === 0 && (next >= n || failed !== null)) { finished = true; cb(failed); }
  };
  if (n === 0) { env.setImmediate(() => cb(null)); return; }
  pump();
}

/** An open image. */
export class Image {
  readonly name: string;
  readonly id: string;
  readonly readOnly: boolean;
  readonly supportsDiscard = true;
  private meta: ImageMeta;
  private readonly stamped = new Set<number>();
  private fenced: ClusterError | null = null;
  private writeSeq = 0;
  private readonly inflightWrites = new Set<number>();
  private flushWaiters: { upTo: number; cb: ImageCallback }[] = [];
  private closed = false;

  constructor(private readonly o: ImageInit) {
    this.name = o.name;
    this.id = o.id;
    this.meta = o.meta;
    this.readOnly = o.lock === null;
  }

  get sizeBytes(): number { return this.meta.sizeBytes; }
  get layout(): FileLayout { return this.meta.layout; }
  /** Up to 20 ASCII bytes for virtio-blk GET_ID. */
  get serial(): string { return `strata-${this.id}`.slice(0, 20); }
  /** The lock's fencing epoch (0 when read-only). */
  get fenceEpoch(): number { return this.o.lock?.epoch ?? 0; }

  /** Called by the lock when it is lost: every later write fails. */
  setFenced(err: ClusterError): void { this.fenced = err; }

  // ----- Reads. -----

  /**
   * Reads [offset, offset + Σviews) into `views`: one copy, done by the messenger from the
   * socket's read buffer straight into them (`readInto`); a missing or short object's part is
   * zero-filled.
   */
  readv(offset: number, views: Uint8Array[], cb: ImageCallback): void {
    const iov = new IoVec(views);
    const bad = this.checkRange(offset, iov.length);
    if (bad !== null) { this.o.env.setImmediate(() => cb(bad)); return; }
    const extents = fileToExtents(this.meta.layout, offset, iov.length);
    this.parallel(extents, (ext, done) => this.readExtent(ext, iov, done), cb);
  }

  private readExtent(ext: ObjectExtent, iov: IoVec, done: ImageCallback): void {
    const dest = new IoVec(ext.bufferExtents.flatMap((b) => iov.slice(b.bufferOffset, b.length)));
    this.o.objecter.submit({
      pool: this.o.pool, objectName: dataObject(this.id, ext.objectNo), ops: [{ op: 'read', offset: ext.offsetInObject, length: ext.length }],
      readInto: dest.views,
    }, (err, res) => {
      if (err !== null && err.code !== 'CLU_ERR_NOT_FOUND') { done(err); return; }
      const got = err !== null || res === undefined ? 0
        : res.inPlace === true ? Math.min(ext.length, chunksLength(res.data)) : dest.copyIn(0, res.data, ext.length);
      if (got < ext.length) dest.zero(got, ext.length - got); // Thin: missing or short object reads as zeros.
      done(null);
    });
  }

  // ----- Writes. -----

  /** Writes `views` at `offset`; object extents are written in parallel. */
  writev(offset: number, views: Uint8Array[], cb: ImageCallback): void {
    const iov = new IoVec(views);
    const bad = this.checkWrite(offset, iov.length);
    if (bad !== null) { this.o.env.setImmediate(() => cb(bad)); return; }
    const extents = fileToExtents(this.meta.layout, offset, iov.length);
    this.tracked((done) => this.parallel(extents, (ext, d) => {
      const data = ext.bufferExtents.flatMap((b) => iov.slice(b.bufferOffset, b.length));
      this.stampedWrite(ext.objectNo, [{ op: 'write', offset: ext.offsetInObject, length: ext.length }], data, d);
    }, done), cb);
  }

  /** Frees the range (reads return zeros): whole objects and tails truncated, middles zeroed. */
  discard(offset: number, length: number, cb: ImageCallback): void {
    this.writeZeroes(offset, length, true, cb);
  }

  /**
   * Zeroes the range. Per object extent: the whole object → truncate to 0 (space freed; the
   * object stays as an empty stamp holder, see docs/images.md); a tail → truncate; a middle →
   * the OSD's `zero` (which punches, freeing space where the store can).
   */
  writeZeroes(offset: number, length: number, _unmap: boolean, cb: ImageCallback): void {
    const bad = this.checkWrite(offset, length);
    if (bad !== null) { this.o.env.setImmediate(() => cb(bad)); return; }
    const os = this.meta.layout.objectSize;
    const extents = fileToExtents(this.meta.layout, offset, length);
    this.tracked((done) => this.parallel(extents, (ext, d) => {
      const op: OsdOp = ext.offsetInObject + ext.length >= os || this.isLastData(ext)
        ? { op: 'truncate', size: ext.offsetInObject }
        : { op: 'zero', offset: ext.offsetInObject, length: ext.length };
      this.stampedWrite(ext.objectNo, [op], [], d);
    }, done), cb);
  }

  /** True when nothing of the image lives in this object past the extent (end of image). */
  private isLastData(ext: ObjectExtent): boolean {
    return objectTruncateSize(this.meta.layout, ext.objectNo, this.meta.sizeBytes) <= ext.offsetInObject + ext.length;
  }

  /** Barrier: completes when every write issued before it has completed. */
  flush(cb: ImageCallback): void {
    const upTo = this.writeSeq;
    if (this.minInflight() > upTo) { this.o.env.setImmediate(() => cb(this.fenced)); return; }
    this.flushWaiters.push({ upTo, cb });
  }

  private minInflight(): number {
    let min = Number.MAX_SAFE_INTEGER;
    for (const s of this.inflightWrites) if (s < min) min = s;
    return min;
  }

  private tracked(run: (done: ImageCallback) => void, cb: ImageCallback): void {
    const seq = ++this.writeSeq;
    this.inflightWrites.add(seq);
    run((err) => {
      this.inflightWrites.delete(seq);
      const min = this.minInflight();
      const ready = this.flushWaiters.filter((w) => w.upTo < min);
      if (ready.length > 0) this.flushWaiters = this.flushWaiters.filter((w) => w.upTo >= min);
      cb(err);
      for (const w of ready) w.cb(this.fenced);
    });
  }

  /**
   * One data mutation, fenced: `[assert fence == epoch, …ops]` for objects we stamped; for
   * others `[assert fence absent, setattr fence, …ops]`; on a mismatch read the stamp and
   * restamp an older one, adopt our own, or declare ourselves fenced on a newer one.
   */
  private stampedWrite(objectNo: number, ops: OsdOp[], data: Uint8Array[], cb: ImageCallback, expect: number | 'absent' | 'mine' | null = null, tries = 4): void {
    const lock = this.o.lock!;
    if (this.fenced !== null) { this.o.env.setImmediate(() => cb(this.fenced)); return; }
    if (!lock.valid()) { this.waitValid(() => this.stampedWrite(objectNo, ops, data, cb, expect, tries), cb); return; }
    const mine = encodeFence(lock.epoch);
    const e = expect ?? (this.stamped.has(objectNo) ? 'mine' : 'absent');
    const prefix: OsdOp[] = e === 'mine'
      ? [{ op: 'assert_attr', name: FENCE_ATTR, value: mine, mode: 0 }]
      : [e === 'absent' ? { op: 'assert_attr', name: FENCE_ATTR, value: new Uint8Array(0), mode: ASSERT_F_ABSENT } : { op: 'assert_attr', name: FENCE_ATTR, value: encodeFence(e), mode: 0 },
        { op: 'setattr', name: FENCE_ATTR, value: mine }];
    const name = dataObject(this.id, objectNo);
    this.o.objecter.submit({ pool: this.o.pool, objectName: name, ops: [...prefix, ...ops], data }, (err) => {
      if (err === null) { this.stamped.add(objectNo); cb(null); return; }
      if (isBlocklistedError(err)) {
        // A newer holder took the lock over and had the OSDs refuse us: fenced, no retry.
        lock.markLost(`client instance blocklisted (${err.message})`);
        cb(this.fenced ?? fencedError('blocklisted'));
        return;
      }
      if ((err.code !== 'CLU_ERR_CANCELLED' && err.code !== 'CLU_ERR_NOT_FOUND') || tries <= 1) { cb(err); return; }
      this.readStamp(name, (err2, stamp) => {
        if (err2 !== null) { cb(err2); return; }
        if (stamp === undefined) { this.stamped.delete(objectNo); this.stampedWrite(objectNo, ops, data, cb, 'absent', tries - 1); return; }
        if (stamp === lock.epoch) { this.stamped.add(objectNo); this.stampedWrite(objectNo, ops, data, cb, 'mine', tries - 1); return; }
        if (stamp < lock.epoch) { this.stampedWrite(objectNo, ops, data, cb, stamp, tries - 1); return; }
        lock.markLost(`${name} carries fence epoch ${stamp} > ours ${lock.epoch}`);
        cb(this.fenced ?? fencedError('newer epoch on a data object'));
      });
    });
  }

  private readStamp(name: string, cb: (err: ClusterError | null, stamp?: number) => void): void {
    this.o.objecter.submit({ pool: this.o.pool, objectName: name, ops: [{ op: 'getattr', name: FENCE_ATTR }], flags: OSD_FLAG_FAILOK }, (err, res) => {
      if (err !== null && err.code !== 'CLU_ERR_NOT_FOUND') { cb(err); return; }
      const out = res?.reply.outs[0];
      cb(null, out !== undefined && out.kind === 'attr' && out.result === 0 && out.value.length === 8 ? decodeFence(out.value) : undefined);
    });
  }

  /** The lease lapsed locally (renewals late): renew, and wait up to a lease for it. */
  private waitValid(resume: () => void, cb: ImageCallback, waitedMs = 0): void {
    const lock = this.o.lock!;
    if (lock.state !== 'held') { cb(this.fenced ?? fencedError('lock not held')); return; }
    if (lock.valid()) { resume(); return; }
    if (waitedMs > 30_000) { lock.markLost('lease could not be renewed'); cb(this.fenced ?? fencedError('lease lapsed')); return; }
    lock.renew();
    this.o.env.setTimeout(() => this.waitValid(resume, cb, waitedMs + 50), 50);
  }

  // ----- Resize, stat, close. -----

  /** Grows or shrinks; a shrink trims objects past the new end first, then updates the header. */
  resize(sizeBytes: number, cb: ImageCallback): void {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0 || sizeBytes % 512 !== 0) {
      this.o.env.setImmediate(() => cb(new ClusterError('CLU_ERR_INVALID', `size ${sizeBytes} is not a multiple of 512`)));
      return;
    }
    const bad = this.checkWrite(0, 0);
    if (bad !== null) { this.o.env.setImmediate(() => cb(bad)); return; }
    const old = this.meta.sizeBytes;
    const l = this.meta.layout;
    const trim = (done: ImageCallback): void => {
      if (sizeBytes >= old) { this.o.env.setImmediate(() => done(null)); return; }
      const first = Math.max(0, numObjects(l, sizeBytes) - l.stripeCount);
      forEachLimited(this.o.env, numObjects(l, old) - first, SWEEP_WINDOW, (i, d) => {
        const no = first + i;
        const keep = objectTruncateSize(l, no, sizeBytes);
        if (keep >= objectTruncateSize(l, no, old)) { this.o.env.setImmediate(() => d(null)); return; }
        this.stampedWrite(no, [{ op: 'truncate', size: keep }], [], d);
      }, done);
    };
    this.tracked((done) => trim((err) => {
      if (err !== null) { done(err); return; }
      const meta: ImageMeta = { ...this.meta, sizeBytes };
      this.o.objecter.submit({
        pool: this.o.pool, objectName: headerObject(this.id), ops: [
          { op: 'assert_attr', name: FENCE_ATTR, value: encodeFence(this.o.lock!.epoch), mode: 0 },
          { op: 'setattr', name: META_ATTR, value: encodeMeta(meta) },
        ],
      }, (err2) => {
        if (err2 === null) this.meta = meta;
        if (isBlocklistedError(err2)) this.o.lock!.markLost('client instance blocklisted');
        done(err2?.code === 'CLU_ERR_CANCELLED' || isBlocklistedError(err2) ? (this.fenced ?? fencedError('header epoch changed')) : err2);
      });
    }), cb);
  }

  /** Info including used bytes (a stat of every data object, `SWEEP_WINDOW` at a time). */
  stat(cb: (err: ClusterError | null, info?: ImageInfo) => void): void {
    const count = numObjects(this.meta.layout, this.meta.sizeBytes);
    let used = 0;
    let objects = 0;
    forEachLimited(this.o.env, count, SWEEP_WINDOW, (i, d) => {
      this.o.objecter.submit({ pool: this.o.pool, objectName: dataObject(this.id, i), ops: [{ op: 'stat' }] }, (err, res) => {
        if (err?.code === 'CLU_ERR_NOT_FOUND') { d(null); return; }
        const out = res?.reply.outs[0];
        if (err === null && out?.kind === 'stat') { used += out.size; if (out.size > 0) objects++; }
        d(err);
      });
    }, (err) => {
      if (err !== null) { cb(err); return; }
      const m = this.meta;
      cb(null, { name: this.name, id: this.id, sizeBytes: m.sizeBytes, layout: m.layout, features: m.features, createdMs: m.createdMs, objectCount: objects, usedBytes: used });
    });
  }

  /** Flushes, releases the lock, and refuses further I/O. */
  close(cb: ImageCallback): void {
    if (this.closed) { this.o.env.setImmediate(() => cb(null)); return; }
    this.flush(() => {
      this.closed = true;
      if (this.o.lock === null) { cb(null); return; }
      this.o.lock.release(cb);
    });
  }

  // ----- Helpers. -----

  private checkRange(offset: number, length: number): ClusterError | null {
    if (this.closed) return new ClusterError('CLU_ERR_CANCELLED', 'image closed');
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > this.meta.sizeBytes) {
      return new ClusterError('CLU_ERR_INVALID', `range [${offset}, +${length}) outside image of ${this.meta.sizeBytes} bytes`);
    }
    return null;
  }

  private checkWrite(offset: number, length: number): ClusterError | null {
    if (this.o.lock === null) return new ClusterError('CLU_ERR_PERM', `image ${this.name} is open read-only`);
    if (this.fenced !== null) return this.fenced;
    return this.checkRange(offset, length);
  }

  private parallel(extents: ObjectExtent[], fn: (ext: ObjectExtent, done: ImageCallback) => void, cb: ImageCallback): void {
    forEachLimited(this.o.env, extents.length, extents.length, (i, d) => fn(extents[i]!, d), cb);
  }

  // ----- Promise facade (CLI callers). -----

  readAsync(offset: number, length: number): Promise<Uint8Array> {
    const buf = new Uint8Array(length);
    return new Promise((resolve, reject) => this.readv(offset, [buf], (err) => (err ? reject(err) : resolve(buf))));
  }
  writeAsync(offset: number, data: Uint8Array | Uint8Array[]): Promise<void> {
    return asPromise((cb) => this.writev(offset, Array.isArray(data) ? data : [data], cb));
  }
  discardAsync(offset: number, length: number): Promise<void> { return asPromise((cb) => this.discard(offset, length, cb)); }
  flushAsync(): Promise<void> { return asPromise((cb) => this.flush(cb)); }
  resizeAsync(sizeBytes: number): Promise<void> { return asPromise((cb) => this.resize(sizeBytes, cb)); }
  closeAsync(): Promise<void> { return asPromise((cb) => this.close(cb)); }
  statAsync(): Promise<ImageInfo> {
    return new Promise((resolve, reject) => this.stat((err, info) => (err || info === undefined ? reject(err) : resolve(info))));
  }
}

/** Wraps a callback API in a Promise. */
export function asPromise(fn: (cb: ImageCallback) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}
