/**
 * The injected environment (GUIDE §1.2, §5): every side effect of the cluster core — time,
 * timers, randomness, disk, network, logging and fault injection — reaches it through one
 * `Env` object. `real.ts` implements it over Node; the simulator implements it over a seeded
 * scheduler, so the same `cluster/src` code runs in production and in deterministic
 * simulation. Why callbacks rather than Promises: a Promise resolution runs in a microtask
 * whose order the simulator cannot control; a callback is invoked by the Env itself, when the
 * scheduler says so.
 *
 * Rules for implementations:
 * - Callbacks are never invoked synchronously from inside the call that registered them
 *   (no Zalgo): the core may rely on "my caller's stack finishes first".
 * - Disk errors are Node-style SystemErrors (`err.code` = `ENOENT`, `ENOSPC`, `EIO`, …).
 */
import type { Logger } from 'pino';
import type { Net } from './net.js';

/** Opaque timer handle; only meaningful to the Env that returned it. */
export type TimerHandle = { readonly __brand: 'TimerHandle' };

/** Deterministic (in simulation) source of randomness. */
export interface Rng {
  /** A uniformly random u32. */
  u32(): number;
  /** `n` random bytes (keys, nonces, uuids). */
  bytes(n: number): Uint8Array;
}

/** A Node-style SystemError: `code` is the errno name. */
export interface DiskError extends Error {
  code: string;
  syscall?: string;
  path?: string;
}

/** File descriptor returned by `Disk.open`. */
export type Fd = number & { readonly __brand: 'Fd' };

/** How to open a file. Defaults: read-write, no create, no truncate. */
export interface OpenOptions {
  /** Create the file when missing (O_CREAT). */
  create?: boolean;
  /** With `create`: fail with EEXIST when present (O_EXCL). */
  exclusive?: boolean;
  /** Truncate to zero length on open (O_TRUNC). */
  truncate?: boolean;
  /** Open read-only (O_RDONLY); otherwise O_RDWR. */
  readOnly?: boolean;
  /**
   * O_DSYNC: each `pwrite` on this fd is durable (as after `fdatasync`) when its callback runs.
   * Only honoured when `Disk.dsyncWrites` is true; otherwise ignored (callers must check).
   */
  dsync?: boolean;
  /**
   * O_DIRECT: writes bypass the page cache. Every pwrite on this fd must use a buffer, offset
   * and length aligned to the device's logical block: data writes use 4096 (common/aligned.ts),
   * the journal 512, after a probe at open (store-open.ts). Only honoured when `Disk.directIo` is true;
   * a file system that refuses O_DIRECT (tmpfs before Linux 6.6) fails the open with EINVAL.
   */
  direct?: boolean;
}

/**
 * The disk, positional and callback-style, sized for the monitor store now and for an OSD
 * journal/object store later. No implicit file position: every read and write names its
 * offset, so concurrent operations cannot race on a shared cursor.
 *
 * Durability model (what the simulator's crash model follows):
 * - `pwrite` data is volatile until `fdatasync` on that fd completes.
 * - A created, renamed or unlinked directory entry is volatile until `fsyncDir` on the parent
 *   directory completes.
 * - `rename` is atomic: after a crash, the target name holds the old or the new file, never a
 *   mix.
 */
export interface Disk {
  /**
   * True when `open` honours `OpenOptions.dsync` (the real disk). Why: a durable write then
   * costs one system call and one thread-pool hop instead of two (pwrite, then fdatasync).
   * Disks without it (the simulator's) keep the pwrite + fdatasync model.
   */
  readonly dsyncWrites?: boolean;
  /**
   * True when `open` honours `OpenOptions.direct` (the real disk). Why: a 1 MiB buffered write
   * costs its copy into the page cache (the largest single CPU cost of the 1 MiB write path,
   * docs/benchmarks.md "Session 3"); the simulator's disk has no page cache to skip.
   */
  readonly directIo?: boolean;
  open(path: string, options: OpenOptions, cb: (err: DiskError | null, fd: Fd) => void): void;
  /** Reads up to `buf.length` bytes at `position`; `bytesRead` < length only at EOF. */
  pread(fd: Fd, buf: Uint8Array, position: number, cb: (err: DiskError | null, bytesRead: number) => void): void;
  /** Writes all of `data` at `position` (implementations loop on short writes). */
  pwrite(fd: Fd, data: Uint8Array, position: number, cb: (err: DiskError | null) => void): void;
  /**
   * Optional: the same write done now, on the calling thread (it blocks for the device's time).
   * Why: on a fast device a durable (O_DSYNC) journal write takes less than the two thread
   * hand-offs of `pwrite`'s pool (≈20 µs of CPU each on the project's VM, docs/benchmarks.md).
   * Only the journal uses it, and only when the store is opened with `journalIo: 'inline'`.
   */
  pwriteInline?(fd: Fd, data: Uint8Array, position: number): DiskError | null;
  /** Makes the file's data (and size) durable. */
  fdatasync(fd: Fd, cb: (err: DiskError | null) => void): void;
  ftruncate(fd: Fd, lengthBytes: number, cb: (err: DiskError | null) => void): void;
  /** Current file size. */
  fsize(fd: Fd, cb: (err: DiskError | null, sizeBytes: number) => void): void;
  close(fd: Fd, cb: (err: DiskError | null) => void): void;
  /** Atomically replaces `targetPath` with `sourcePath`. */
  rename(sourcePath: string, targetPath: string, cb: (err: DiskError | null) => void): void;
  unlink(path: string, cb: (err: DiskError | null) => void): void;
  /** Entry names (not paths) of a directory, sorted. */
  readdir(path: string, cb: (err: DiskError | null, names: string[]) => void): void;
  /** Creates a directory and its parents; succeeds when it already exists. */
  mkdir(path: string, cb: (err: DiskError | null) => void): void;
  /** Makes directory entries under `path` (creates, renames, unlinks) durable. */
  fsyncDir(path: string, cb: (err: DiskError | null) => void): void;
}

/** Everything the cluster core may use to touch the outside world. */
export interface Env {
  /** Monotonic milliseconds (never goes backwards; arbitrary origin). For timeouts. */
  nowMs(): number;
  /** Wall-clock milliseconds since the Unix epoch. Only for human-facing stamps, never timeouts. */
  wallMs(): number;
  /** Same argument order as Node's global, so the name does not surprise. */
  setTimeout(cb: () => void, delayMs: number): TimerHandle;
  /** Cancels a `setTimeout` or `setImmediate` handle; a no-op when it already fired. */
  clearTimeout(handle: TimerHandle): void;
  /** Runs `cb` after the current event completes, before later timers at the same time. */
  setImmediate(cb: () => void): TimerHandle;
  readonly rng: Rng;
  readonly disk: Disk;
  readonly net: Net;
  /** The root (or a child) pino logger; modules derive children with `component` bindings. */
  readonly log: Logger;
  /**
   * Fault-injection point (FoundationDB buggify). In simulation a `site` is enabled once per
   * run from hash(seed, site) and then fires with probability `p`; the real Env returns false.
   */
  buggify(site: string, p: number): boolean;
}

/** Returns a copy of `env` whose logger is `env.log.child(bindings)`. */
export function envWithLog(env: Env, bindings: Record<string, unknown>): Env {
  const log = env.log.child(bindings);
  return {
    nowMs: () => env.nowMs(),
    wallMs: () => env.wallMs(),
    setTimeout: (cb, delayMs) => env.setTimeout(cb, delayMs),
    clearTimeout: (h) => env.clearTimeout(h),
    setImmediate: (cb) => env.setImmediate(cb),
    rng: env.rng,
    disk: env.disk,
    net: env.net,
    log,
    buggify: (site, p) => env.buggify(site, p),
  };
}

/** Joins path segments with '/', without touching node:path (keeps sim paths portable). */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}
