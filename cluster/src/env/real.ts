/**
 * The production `Env` over Node. This file (plus `real-net.ts`) is the ONLY place in
 * `cluster/src` allowed to touch the wall clock, global timers, `Math.random`,
 * `crypto.randomBytes` and `node:fs`; `cluster/test/boundaries.test.ts` enforces that.
 *
 * The network is passed in (the bin wires `real-net.ts`), so this module does not depend on
 * the messenger's code.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Disk, DiskError, Env, Fd, OpenOptions, TimerHandle } from './env.js';
import type { Net } from './net.js';
import { preadNoWait } from '../../../native/index.js';

function asDiskError(err: NodeJS.ErrnoException): DiskError {
  const e = err as DiskError;
  if (typeof e.code !== 'string') e.code = 'EIO';
  return e;
}

function openFlags(o: OpenOptions): number {
  const c = fs.constants;
  let flags = o.readOnly === true ? c.O_RDONLY : c.O_RDWR;
  if (o.create === true) flags |= c.O_CREAT;
  if (o.exclusive === true) flags |= c.O_EXCL;
  if (o.truncate === true) flags |= c.O_TRUNC;
  if (o.dsync === true) flags |= c.O_DSYNC;
  if (o.direct === true) flags |= c.O_DIRECT;
  return flags;
}

/** Writes all of `data`, looping on short writes (pwrite may write fewer bytes). */
function pwriteAll(fd: number, data: Uint8Array, position: number, cb: (err: DiskError | null) => void): void {
  fs.write(fd, data, 0, data.length, position, (err, written) => {
    if (err) return cb(asDiskError(err));
    if (written === data.length) return cb(null);
    if (written <= 0) {
      const e = new Error('pwrite wrote 0 bytes') as DiskError;
      e.code = 'EIO';
      return cb(e);
    }
    pwriteAll(fd, data.subarray(written), position + written, cb);
  });
}

/** `pwriteAll` on the calling thread (see `Disk.pwriteInline`). */
function pwriteAllNow(fd: number, data: Uint8Array, position: number): DiskError | null {
  let done = 0;
  try {
    while (done < data.length) {
      const n = fs.writeSync(fd, data, done, data.length - done, position + done);
      if (n <= 0) {
        const e = new Error('pwrite wrote 0 bytes') as DiskError;
        e.code = 'EIO';
        return e;
      }
      done += n;
    }
    return null;
  } catch (err) {
    return asDiskError(err as NodeJS.ErrnoException);
  }
}

/** Reads until `buf` is full or EOF. */
function preadAll(fd: number, buf: Uint8Array, position: number, done: number, cb: (err: DiskError | null, n: number) => void): void {
  if (done === buf.length) return cb(null, done);
  fs.read(fd, buf, done, buf.length - done, position + done, (err, n) => {
    if (err) return cb(asDiskError(err), done);
    if (n === 0) return cb(null, done);
    preadAll(fd, buf, position, done + n, cb);
  });
}

/** `preadAll` on the calling thread: bytes read, or the error. */
function preadAllNow(fd: number, buf: Uint8Array, position: number): { n: number; err: DiskError | null } {
  let done = 0;
  try {
    while (done < buf.length) {
      const n = fs.readSync(fd, buf, done, buf.length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return { n: done, err: null };
  } catch (err) {
    return { n: done, err: asDiskError(err as NodeJS.ErrnoException) };
  }
}

const EOPNOTSUPP = 95;
const EAGAIN = 11;

/**
 * fds whose file system refused RWF_NOWAIT (tmpfs answers EOPNOTSUPP): their reads go straight
 * to the pool. An fd leaves the set when it is closed (the number is reused).
 */
const noWaitRefused = new Set<number>();

/** How the real disk's reads were served (tests and benchmarks read these). */
export interface ReadPathCounts { cached: number; inlineMiss: number; pool: number }
const readPaths: ReadPathCounts = { cached: 0, inlineMiss: 0, pool: 0 };
/** A copy of the process-wide read path counters. */
export function readPathCounts(): ReadPathCounts { return { ...readPaths }; }

/** Reads on libuv's pool right now (process-wide: every store of an OSD shares one disk). */
let poolReads = 0;
/** True after a miss was read inline in the current turn of the event loop. */
let inlineThisTurn = false;
/** Smoothed duration of recent inline misses, ms. */
let inlineMissMs = 0;
/** Above this smoothed duration, misses go to the pool until it decays below. */
const INLINE_MISS_LIMIT_MS = 1;
/** Larger reads (recovery's object copies, scrub) always go to the pool: they would hold the loop. */
const INLINE_MISS_MAX_BYTES = 64 * 1024;

/**
 * A read served from the page cache on the calling thread when it can be; a miss that is alone
 * is read on the calling thread too; other misses go to libuv's pool.
 *
 * Why the page cache inline: a pool trip costs ~5 futex calls, an eventfd wake-up and two
 * context switches per 4 KiB read (strace of an OSD under 4k random reads: 27,678 futex calls
 * for 5,355 preads), while a cached 4 KiB copy costs a microsecond; preadv2(RWF_NOWAIT) never
 * sleeps on the disk.
 *
 * Why a lone miss inline: at queue depth 1 the pool trip (wake a pool thread, then wake the
 * loop) costs more than the disk read itself here (a 4 KiB read of this disk takes ~75 µs;
 * osd-bench 4k reads of on-disk data at QD1, p50 330 → 280 µs). The loop blocks for one read at
 * most per turn, of at most 64 KiB, only while no read is on the pool, and only while recent
 * inline misses were fast (smoothed < 1 ms): a slow or failing disk sends every miss to the
 * pool again, so heartbeats and other sessions are not held up behind it. The callback still runs later (a
 * microtask), never inside the call.
 */
function preadCachedFirst(fd: number, buf: Uint8Array, position: number, cb: (err: DiskError | null, n: number) => void): void {
  if (buf.length > 0 && !noWaitRefused.has(fd)) {
    const n = preadNoWait(fd, buf, position);
    if (n === buf.length || n === 0) {
      readPaths.cached++;
      queueMicrotask(() => cb(null, n));
      return;
    }
    if (n > 0) return preadPool(fd, buf, position, n, cb);
    if (n === -EOPNOTSUPP) noWaitRefused.add(fd);
    if (n === -EAGAIN && inlineMissAllowed(buf.length)) return preadMissInline(fd, buf, position, cb);
    // Any other error: the pool read does it, with Node's error shape.
  }
  preadPool(fd, buf, position, 0, cb);
}

/** Whether a miss of `bytes` may be read on the loop now (the rules above). */
function inlineMissAllowed(bytes: number): boolean {
  if (bytes > INLINE_MISS_MAX_BYTES || poolReads > 0 || inlineThisTurn) return false;
  if (inlineMissMs > INLINE_MISS_LIMIT_MS) {
    inlineMissMs *= 0.9; // Decays with each miss, so a disk that recovered is tried again.
    return false;
  }
  return true;
}

function preadPool(fd: number, buf: Uint8Array, position: number, done: number, cb: (err: DiskError | null, n: number) => void): void {
  readPaths.pool++;
  poolReads++;
  preadAll(fd, buf, position, done, (err, n) => {
    poolReads--;
    cb(err, n);
  });
}

function preadMissInline(fd: number, buf: Uint8Array, position: number, cb: (err: DiskError | null, n: number) => void): void {
  readPaths.inlineMiss++;
  inlineThisTurn = true;
  setImmediate(() => { inlineThisTurn = false; });
  const t0 = performance.now();
  const r = preadAllNow(fd, buf, position);
  inlineMissMs = inlineMissMs * 0.8 + (performance.now() - t0) * 0.2;
  queueMicrotask(() => cb(r.err, r.n));
}

/**
 * The real disk over `node:fs` callbacks. Synchronous calls in two places only: `pread` serves
 * page-cache hits and a lone miss on the calling thread (`preadCachedFirst`), and `pwriteInline`
 * is what the journal uses for inline journal I/O (`journalIo: 'inline'`, or 'auto' for a lone
 * record).
 */
export function createRealDisk(): Disk {
  return {
    dsyncWrites: true,
    directIo: true,
    open: (path, options, cb) =>
      fs.open(path, openFlags(options), 0o600, (err, fd) => cb(err ? asDiskError(err) : null, (err ? -1 : fd) as Fd)),
    pread: (fd, buf, position, cb) => preadCachedFirst(fd, buf, position, cb),
    pwrite: (fd, data, position, cb) => pwriteAll(fd, data, position, cb),
    pwriteInline: (fd, data, position) => pwriteAllNow(fd, data, position),
    fdatasync: (fd, cb) => fs.fdatasync(fd, (err) => cb(err ? asDiskError(err) : null)),
    ftruncate: (fd, len, cb) => fs.ftruncate(fd, len, (err) => cb(err ? asDiskError(err) : null)),
    fsize: (fd, cb) => fs.fstat(fd, (err, st) => cb(err ? asDiskError(err) : null, err ? 0 : st.size)),
    close: (fd, cb) => {
      noWaitRefused.delete(fd);
      fs.close(fd, (err) => cb(err ? asDiskError(err) : null));
    },
    rename: (a, b, cb) => fs.rename(a, b, (err) => cb(err ? asDiskError(err) : null)),
    unlink: (p, cb) => fs.unlink(p, (err) => cb(err ? asDiskError(err) : null)),
    readdir: (p, cb) => fs.readdir(p, (err, names) => cb(err ? asDiskError(err) : null, err ? [] : names.sort())),
    mkdir: (p, cb) => fs.mkdir(p, { recursive: true, mode: 0o700 }, (err) => cb(err ? asDiskError(err) : null)),
    fsyncDir: (p, cb) => fsyncDir(p, cb),
  };
}

/** Why: a rename or create is durable only after fsync of the directory (POSIX). */
function fsyncDir(path: string, cb: (err: DiskError | null) => void): void {
  fs.open(path, fs.constants.O_RDONLY, (err, fd) => {
    if (err) return cb(asDiskError(err));
    fs.fsync(fd, (syncErr) => {
      fs.close(fd, () => cb(syncErr ? asDiskError(syncErr) : null));
    });
  });
}

interface RealTimer {
  timeout?: NodeJS.Timeout;
  immediate?: NodeJS.Immediate;
}

/** Why a wrapper: one `clearTimeout` must cancel both kinds of handle the Env hands out. */
function clearRealTimer(h: TimerHandle): void {
  const t = h as unknown as RealTimer;
  if (t.timeout !== undefined) clearTimeout(t.timeout);
  if (t.immediate !== undefined) clearImmediate(t.immediate);
}

/** Options for `createRealEnv`. */
export interface RealEnvOptions {
  log: Logger;
  /** The real network (from `real-net.ts`), injected to keep this file independent of it. */
  net: Net;
}

/** Builds the production Env. `buggify` is always false here. */
export function createRealEnv(options: RealEnvOptions): Env {
  const disk = createRealDisk();
  return {
    nowMs: () => performance.now(),
    wallMs: () => Date.now(),
    setTimeout: (cb, delayMs) => ({ timeout: setTimeout(cb, Math.max(0, delayMs)) }) as unknown as TimerHandle,
    clearTimeout: (h) => clearRealTimer(h),
    setImmediate: (cb) => ({ immediate: setImmediate(cb) }) as unknown as TimerHandle,
    rng: {
      u32: () => randomBytes(4).readUInt32LE(0),
      bytes: (n) => new Uint8Array(randomBytes(n)),
    },
    disk,
    net: options.net,
    log: options.log,
    buggify: () => false,
  };
}
