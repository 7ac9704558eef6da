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

const EOPNOTSUPP = 95;

/**
 * fds whose file system refused RWF_NOWAIT (tmpfs answers EOPNOTSUPP): their reads go straight
 * to the pool. An fd leaves the set when it is closed (the number is reused).
 */
const noWaitRefused = new Set<number>();

/**
 * A read served from the page cache on the calling thread when it can be, else by libuv's
 * pool. Why: a pool trip costs ~5 futex calls, an eventfd wake-up and two context switches
 * per 4 KiB read (strace of an OSD under 4k random reads: 27,678 futex calls for 5,355
 * preads), while a cached 4 KiB copy costs a microsecond; preadv2(RWF_NOWAIT) never sleeps
 * on the disk, so the event loop is never blocked by a miss. The callback still runs later
 * (a microtask), never inside the call.
 */
function preadCachedFirst(fd: number, buf: Uint8Array, position: number, cb: (err: DiskError | null, n: number) => void): void {
  if (buf.length > 0 && !noWaitRefused.has(fd)) {
    const n = preadNoWait(fd, buf, position);
    if (n === buf.length || n === 0) {
      queueMicrotask(() => cb(null, n));
      return;
    }
    if (n > 0) return preadAll(fd, buf, position, n, cb);
    if (n === -EOPNOTSUPP) noWaitRefused.add(fd);
    // -EAGAIN (not cached) or any other error: the pool read does it, with Node's error shape.
  }
  preadAll(fd, buf, position, 0, cb);
}

/**
 * The real disk over `node:fs` callbacks (reads try the page cache inline first); the synchronous API only in `pwriteInline`, which
 * the journal uses when an operator chose inline journal I/O (`journalIo: 'inline'`).
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
