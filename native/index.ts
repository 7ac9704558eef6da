// Typed face of the C++ shim (native/src). No logic here: every function is the native one.
// Errors thrown by the syscall wrappers are shaped like Node's SystemError
// ({ code: 'ECONNRESET', errno: -104, syscall: 'recvmsg' }); argument errors are TypeError or
// RangeError. See docs/native.md for why each export is native at all.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Result of {@link recvMsg}. */
export interface RecvResult {
  /** Bytes written at the start of the caller's buffer; 0 means the peer closed (EOF). */
  bytes: number;
  /**
   * Fds that arrived with these bytes (SCM_RIGHTS), already CLOEXEC and owned by the caller.
   * When none arrived this is one shared frozen empty array (no allocation per call): treat it
   * as read-only.
   */
  fds: readonly number[];
}

/** A readiness watcher over one fd on Node's own event loop (libuv `uv_poll_t`). */
export interface Poller {
  /**
   * Starts (or changes) watching for `events`, a mask of {@link READABLE} | {@link WRITABLE} |
   * {@link DISCONNECT}. A started poller keeps itself alive until stop() or close().
   * Throws code 'ERR_POLLER_CLOSED' after close().
   */
  start(events: number): void;
  /** Stops watching; start() may be called again. A no-op after close(). */
  stop(): void;
  /**
   * Stops and releases the watcher. Idempotent; the callback never fires after it returns.
   * Call it before `fs.closeSync(fd)`, never after.
   */
  close(): void;
}

/** Constructor of {@link Poller}, with the event bits as static properties. */
export interface PollerConstructor {
  /**
   * Watches `fd`. `onEvents(status, events)` runs once per readiness event with `this` = the
   * poller: `status` is 0 or a negative libuv error code, `events` the ready bits. It is
   * invoked like Node's own callbacks (microtasks and nextTicks run right after it; a throw
   * becomes 'uncaughtException'). libuv wake-ups may be spurious: treat EAGAIN as "nothing".
   * Throws code 'EEXIST' (syscall 'uv_poll_init') if another poller watches the same fd.
   */
  new (fd: number, onEvents: (status: number, events: number) => void): Poller;
  readonly READABLE: number;
  readonly WRITABLE: number;
  readonly DISCONNECT: number;
}

interface Binding {
  unixListen(path: string, backlog: number): number;
  unixConnect(path: string): number;
  accept(listenFd: number): number | null;
  socketpair(): [number, number];
  recvMsg(fd: number, buf: Uint8Array, maxFds: number): RecvResult | null;
  sendMsg(fd: number, data: Uint8Array, fds: readonly number[]): number | null;
  mapShared(fd: number, lengthBytes: number, offsetBytes: number, writable?: boolean): ArrayBuffer;
  unmap(buffer: ArrayBuffer): void;
  fence(): void;
  eventfd(initval: number, nonblock: boolean): number;
  memfdCreate(name: string, sizeBytes: number): number;
  fallocate(fd: number, mode: 'punch-hole' | 'zero-range', offsetBytes: number, lengthBytes: number): void;
  setMallocMmapThreshold(bytes: number): void;
  alignmentOf(view: Uint8Array): number;
  crc32c(buf: Uint8Array, prev: number): number;
  crc32cBlocks(buf: Uint8Array, blockBytes: number, out: Uint32Array): void;
  gmacKey(key: Uint8Array): GmacKey;
  gmacSign(key: GmacKey, seq: number, parts: readonly Uint8Array[], out: Uint8Array): void;
  gmacVerify(key: GmacKey, seq: number, parts: readonly Uint8Array[], expected: Uint8Array): boolean;
  preadNoWait(fd: number, buf: Uint8Array, position: number): number;
  Poller: PollerConstructor;
  READABLE: number;
  WRITABLE: number;
  DISCONNECT: number;
}

// From dist/native/index.js the repo root is two levels up; from native/index.ts (run from
// source) it is one level up.
const candidates = ['../../build/Release/strata_native.node', '../build/Release/strata_native.node'].map((rel) =>
  fileURLToPath(new URL(rel, import.meta.url)),
);
const bindingPath = candidates.find((p) => existsSync(p));
if (bindingPath === undefined) {
  throw new Error(`strata_native.node not found (looked at ${candidates.join(', ')}); run \`npm run build:native\``);
}
const binding = createRequire(import.meta.url)(bindingPath) as Binding;

/**
 * Creates a listening Unix stream socket at `path` (non-blocking, CLOEXEC) and returns its fd.
 * A stale socket file at `path` is unlinked first; any other file there makes bind fail.
 */
export const unixListen: (path: string, backlog: number) => number = binding.unixListen;

/** Connects to the Unix stream socket at `path` (blocking connect), then sets O_NONBLOCK. Returns the fd (CLOEXEC). */
export const unixConnect: (path: string) => number = binding.unixConnect;

/** Accepts one pending connection (non-blocking, CLOEXEC fd), or returns null when none is pending (EAGAIN). */
export const accept: (listenFd: number) => number | null = binding.accept;

/** A connected pair of Unix stream sockets, both non-blocking and CLOEXEC. */
export const socketpair: () => [number, number] = binding.socketpair;

/**
 * One recvmsg into the whole of `buf` (non-empty), accepting at most `maxFds` (0..64) fds.
 * Returns null on EAGAIN; `bytes: 0` on EOF. Retries EINTR. If more fds arrived than fit,
 * every fd that did arrive is closed and an Error with code 'ECTRUNC' (errno -EMSGSIZE) is
 * thrown: the bytes of that call are lost, so treat it as a connection error.
 */
export const recvMsg: (fd: number, buf: Uint8Array, maxFds: number) => RecvResult | null = binding.recvMsg;

/**
 * One sendmsg(MSG_NOSIGNAL) of `data`, with `fds` (at most 64) as SCM_RIGHTS when non-empty.
 * Returns the bytes sent (possibly fewer than `data.length`: the fds went with the first
 * byte, so resend the rest without them), or null on EAGAIN. Sending fds needs non-empty data.
 */
export const sendMsg: (fd: number, data: Uint8Array, fds: readonly number[]) => number | null = binding.sendMsg;

/**
 * mmap(MAP_SHARED | MAP_NORESERVE) of `lengthBytes` (1..2^32, Node 20's external buffer
 * limit) at `offsetBytes` (page-aligned) of `fd`, read-write unless `writable` is false.
 * Returns an external ArrayBuffer; its finalizer munmaps it if {@link unmap} has not.
 */
export const mapShared: (fd: number, lengthBytes: number, offsetBytes: number, writable?: boolean) => ArrayBuffer =
  binding.mapShared;

/**
 * Detaches a buffer from {@link mapShared} (its byteLength and every view over it become 0)
 * and then munmaps it. Idempotent. Throws TypeError for a buffer that is neither.
 */
export const unmap: (buffer: ArrayBuffer) => void = binding.unmap;

/** Readiness watcher on an arbitrary fd; see {@link PollerConstructor}. */
export const Poller: PollerConstructor = binding.Poller;

/** Poller event bit: the fd is readable (UV_READABLE). */
export const READABLE: number = binding.READABLE;
/** Poller event bit: the fd is writable (UV_WRITABLE). */
export const WRITABLE: number = binding.WRITABLE;
/** Poller event bit: the peer hung up (UV_DISCONNECT). */
export const DISCONNECT: number = binding.DISCONNECT;

/** A full sequentially consistent fence (std::atomic_thread_fence(seq_cst)) for ring protocol points. */
export const fence: () => void = binding.fence;

/** eventfd(initval, EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0)); Node can read/write eventfds but not create them. */
export const eventfd: (initval: number, nonblock: boolean) => number = binding.eventfd;

/** memfd_create(name, MFD_CLOEXEC) sized to `sizeBytes` with ftruncate: guest RAM for tests, like QEMU's memory-backend-memfd. */
export const memfdCreate: (name: string, sizeBytes: number) => number = binding.memfdCreate;

/**
 * fallocate with FALLOC_FL_KEEP_SIZE and PUNCH_HOLE ('punch-hole': frees the blocks) or
 * ZERO_RANGE ('zero-range'); the range then reads as zeros. Throws a SystemError (e.g. code
 * 'EOPNOTSUPP') where the filesystem lacks the mode, so callers can fall back.
 */
export const fallocate: (
  fd: number,
  mode: 'punch-hole' | 'zero-range',
  offsetBytes: number,
  lengthBytes: number,
) => void = binding.fallocate;

/**
 * mallopt(M_MMAP_THRESHOLD, bytes): allocations of at least `bytes` get pages of their own, given
 * back on free, and glibc stops raising the threshold after each large free (which parks
 * transient megabyte buffers in a heap that cannot shrink). 4096 ≤ bytes ≤ 32 MiB.
 */
export const setMallocMmapThreshold: (bytes: number) => void = binding.setMallocMmapThreshold;

/**
 * CRC-32C (Castagnoli) of `buf`, continuing from `prev` (an unsigned 32-bit result over the
 * preceding bytes; 0 to start): SSE4.2 with three interleaved streams, a table without it.
 */
export const crc32c: (buf: Uint8Array, prev: number) => number = binding.crc32c;

/**
 * CRC-32C of each `blockBytes` block of `buf` into `out` (one element per block; `buf` must be
 * whole blocks, else RangeError).
 */
export const crc32cBlocks: (buf: Uint8Array, blockBytes: number, out: Uint32Array) => void = binding.crc32cBlocks;

/** The start address of `view` modulo 4096 (0: usable as an O_DIRECT buffer). */
export const alignmentOf: (view: Uint8Array) => number = binding.alignmentOf;

/** A prepared GMAC key (an AES-GCM context, freed when the object is collected). Opaque. */
export interface GmacKey {
  readonly __gmacKey: unique symbol;
}

/** Prepares a GMAC key: AES-256-GCM for a 32-byte key, AES-128-GCM for a 16-byte one. */
export const gmacKey: (key: Uint8Array) => GmacKey = binding.gmacKey;

/**
 * GMAC tag of `parts` (AES-GCM with no plaintext, the parts as additional data, 96-bit IV =
 * u64le(seq) ‖ 0u32), truncated to `out.length` (1..16) bytes and written into `out`. `seq` is a
 * safe non-negative integer and must never repeat for one key. No allocation.
 */
export const gmacSign: (key: GmacKey, seq: number, parts: readonly Uint8Array[], out: Uint8Array) => void = binding.gmacSign;

/** True when the first `expected.length` (1..16) bytes of the same tag equal `expected` (constant time). */
export const gmacVerify: (key: GmacKey, seq: number, parts: readonly Uint8Array[], expected: Uint8Array) => boolean =
  binding.gmacVerify;

/**
 * preadv2(RWF_NOWAIT): reads only what the page cache holds, never sleeping on the disk.
 * Returns the bytes read (0 at EOF; short when only part of the range is cached), or a
 * negative errno: -EAGAIN (-11) when the data is not cached, -EOPNOTSUPP (-95) where the file
 * system lacks RWF_NOWAIT. Other failures also return -errno (no exception on the hot path).
 */
export const preadNoWait: (fd: number, buf: Uint8Array, position: number) => number = binding.preadNoWait;
