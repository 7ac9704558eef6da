/**
 * The simulated disk (after TigerBeetle's storage.zig), implementing `Disk` with the
 * durability model of env.ts:
 * - Every operation completes after a latency drawn from the disk's profile (min +
 *   exponential), as an event owned by the process, in FIFO order per disk (one queue; Why:
 *   libuv may reorder independent requests, but the store's callers never overlap a write and
 *   the sync meant to cover it, so FIFO loses no interesting schedule and keeps traces simple).
 * - File content is paged (4 KiB pages, absent = zeros, all-zero pages are not stored), with
 *   a current image and a durable image that share unchanged pages (copy on write). Why not
 *   MemDisk: it copies the whole file on every fdatasync, which for a 64 MiB OSD journal and
 *   thousands of syncs is far too slow.
 * - `fdatasync` makes the file's current pages and size durable. Directory entries (create,
 *   rename, unlink) become durable on `fsyncDir` of the parent; directories themselves never
 *   vanish (as MemDisk).
 * - `crash(rng)`: power loss. Only durable directory entries survive, each with its durable
 *   size; every page written since the last sync independently vanishes (most likely),
 *   survives whole, or is torn at a 512-byte sector boundary (a prefix of new sectors over the
 *   old content) — exactly the freedom a real volatile write cache has.
 */
import type { Disk, DiskError, Fd, OpenOptions } from '../src/env/env.js';
import type { SimRng } from './rng.js';

const PAGE_BYTES = 4096;
const SECTOR_BYTES = 512;

/** Latency profile; all in ms. */
export interface DiskProfile {
  readMinMs: number;
  readMeanMs: number;
  writeMinMs: number;
  writeMeanMs: number;
  syncMinMs: number;
  syncMeanMs: number;
  /** Probability that an op takes `slowMs` extra (a stalled device queue). */
  slowProb: number;
  slowMs: number;
  /** Crash fate of an unsynced page: survives whole / torn; else it is lost. */
  crashKeepProb: number;
  crashTearProb: number;
}

/** A fast SSD-like default. */
export const DEFAULT_DISK_PROFILE: DiskProfile = {
  readMinMs: 0.05, readMeanMs: 0.05, writeMinMs: 0.02, writeMeanMs: 0.03, syncMinMs: 0.2, syncMeanMs: 0.2,
  slowProb: 0, slowMs: 0, crashKeepProb: 0.2, crashTearProb: 0.2,
};

/** What the disk needs from its owner: scheduling and randomness. */
export interface DiskHost {
  /** Runs `cb` after `delayMs` as an event of the owning process (dropped if it dies). */
  defer(delayMs: number, label: string, cb: () => void): void;
  /** The disk's own random stream (latencies). */
  readonly rng: SimRng;
}

interface Inode {
  size: number;
  pages: Map<number, Uint8Array>;
  durableSize: number;
  durablePages: Map<number, Uint8Array>;
  /** Pages changed since the last sync (current may differ from durable). */
  dirty: Set<number>;
  /** Page objects shared with the durable image (must be copied before writing). */
  shared: WeakSet<Uint8Array>;
}

function sysErr(code: string, syscall: string, path?: string): DiskError {
  const e = new Error(`${code}: ${syscall}${path === undefined ? '' : ` '${path}'`}`) as DiskError;
  e.code = code;
  e.syscall = syscall;
  if (path !== undefined) e.path = path;
  return e;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function isZero(page: Uint8Array): boolean {
  for (let i = 0; i < page.length; i++) if (page[i] !== 0) return false;
  return true;
}

function newInode(): Inode {
  return { size: 0, pages: new Map(), durableSize: 0, durablePages: new Map(), dirty: new Set(), shared: new WeakSet() };
}

/** Counters for the run report. */
export interface DiskStats { ops: number; syncs: number; bytesWritten: number; crashes: number }

/** The simulated disk of one process (survives its restarts). */
export class SimDisk implements Disk {
  private files = new Map<string, Inode>();
  private durableFiles = new Map<string, Inode>();
  private readonly dirs = new Set<string>(['/']);
  private fds = new Map<number, { path: string; inode: Inode }>();
  private nextFd = 3;
  private lastCompletionMs = 0;
  private nowFn: () => number = () => 0;
  readonly stats: DiskStats = { ops: 0, syncs: 0, bytesWritten: 0, crashes: 0 };
  /** Failure injection: the next N fdatasync calls fail with EIO (not used by the fault atlas). */
  failSyncs = 0;

  constructor(private host: DiskHost, readonly profile: DiskProfile = DEFAULT_DISK_PROFILE) {}

  /** Rebinds the disk to a new incarnation of its process (after a restart). */
  attach(host: DiskHost, now: () => number): void {
    this.host = host;
    this.nowFn = now;
    this.lastCompletionMs = 0;
  }

  private latency(kind: 'read' | 'write' | 'sync'): number {
    const p = this.profile;
    const r = this.host.rng;
    let ms = kind === 'read' ? p.readMinMs + r.exponential(p.readMeanMs)
      : kind === 'write' ? p.writeMinMs + r.exponential(p.writeMeanMs) : p.syncMinMs + r.exponential(p.syncMeanMs);
    if (p.slowProb > 0 && r.chance(p.slowProb)) ms += p.slowMs;
    return ms;
  }

  /** Completes `fn` after a latency, FIFO with every earlier op of this disk. */
  private op(kind: 'read' | 'write' | 'sync', label: string, fn: () => void): void {
    this.stats.ops++;
    const now = this.nowFn();
    const at = Math.max(now + this.latency(kind), this.lastCompletionMs);
    this.lastCompletionMs = at;
    this.host.defer(at - now, label, fn);
  }

  open(path: string, o: OpenOptions, cb: (err: DiskError | null, fd: Fd) => void): void {
    this.op('read', 'disk open', () => {
      let inode = this.files.get(path);
      if (inode !== undefined && o.create === true && o.exclusive === true) return cb(sysErr('EEXIST', 'open', path), -1 as Fd);
      if (inode === undefined) {
        if (o.create !== true || !this.dirs.has(parentOf(path))) return cb(sysErr('ENOENT', 'open', path), -1 as Fd);
        inode = newInode();
        this.files.set(path, inode);
      }
      if (o.truncate === true) this.truncateInode(inode, 0);
      const fd = this.nextFd++;
      this.fds.set(fd, { path, inode });
      cb(null, fd as Fd);
    });
  }

  private withFd(fd: Fd, kind: 'read' | 'write' | 'sync', syscall: string, fail: (e: DiskError) => void, fn: (inode: Inode) => void): void {
    this.op(kind, `disk ${syscall}`, () => {
      const f = this.fds.get(fd);
      if (f === undefined) { fail(sysErr('EBADF', syscall)); return; }
      fn(f.inode);
    });
  }

  pread(fd: Fd, buf: Uint8Array, position: number, cb: (err: DiskError | null, n: number) => void): void {
    this.withFd(fd, 'read', 'pread', (e) => cb(e, 0), (inode) => {
      const n = Math.max(0, Math.min(buf.length, inode.size - position));
      readPages(inode.pages, position, buf.subarray(0, n));
      cb(null, n);
    });
  }

  pwrite(fd: Fd, data: Uint8Array, position: number, cb: (err: DiskError | null) => void): void {
    const copy = data.slice(); // The kernel copies at the call (the caller may reuse its buffer).
    this.withFd(fd, 'write', 'pwrite', cb, (inode) => {
      this.stats.bytesWritten += copy.length;
      writePages(inode, position, copy);
      inode.size = Math.max(inode.size, position + copy.length);
      cb(null);
    });
  }

  fdatasync(fd: Fd, cb: (err: DiskError | null) => void): void {
    this.withFd(fd, 'sync', 'fdatasync', cb, (inode) => {
      if (this.failSyncs > 0) { this.failSyncs--; cb(sysErr('EIO', 'fdatasync')); return; }
      this.stats.syncs++;
      for (const i of inode.dirty) {
        const page = inode.pages.get(i);
        if (page === undefined) inode.durablePages.delete(i);
        else { inode.durablePages.set(i, page); inode.shared.add(page); }
      }
      inode.dirty.clear();
      inode.durableSize = inode.size;
      cb(null);
    });
  }

  ftruncate(fd: Fd, lengthBytes: number, cb: (err: DiskError | null) => void): void {
    this.withFd(fd, 'write', 'ftruncate', cb, (inode) => { this.truncateInode(inode, lengthBytes); cb(null); });
  }

  private truncateInode(inode: Inode, len: number): void {
    if (len < inode.size) {
      for (const i of [...inode.pages.keys()]) {
        if (i * PAGE_BYTES >= len) { inode.pages.delete(i); inode.dirty.add(i); }
      }
      const last = Math.floor(len / PAGE_BYTES);
      const off = len % PAGE_BYTES;
      if (off > 0 && inode.pages.has(last)) writePages(inode, len, new Uint8Array(PAGE_BYTES - off));
    }
    inode.size = len;
  }

  fsize(fd: Fd, cb: (err: DiskError | null, sizeBytes: number) => void): void {
    this.withFd(fd, 'read', 'fstat', (e) => cb(e, 0), (inode) => cb(null, inode.size));
  }

  close(fd: Fd, cb: (err: DiskError | null) => void): void {
    this.withFd(fd, 'read', 'close', cb, () => { this.fds.delete(fd); cb(null); });
  }

  rename(a: string, b: string, cb: (err: DiskError | null) => void): void {
    this.op('write', 'disk rename', () => {
      const inode = this.files.get(a);
      if (inode === undefined) return cb(sysErr('ENOENT', 'rename', a));
      this.files.delete(a);
      this.files.set(b, inode);
      cb(null);
    });
  }

  unlink(path: string, cb: (err: DiskError | null) => void): void {
    this.op('write', 'disk unlink', () => cb(this.files.delete(path) ? null : sysErr('ENOENT', 'unlink', path)));
  }

  readdir(path: string, cb: (err: DiskError | null, names: string[]) => void): void {
    this.op('read', 'disk readdir', () => {
      if (!this.dirs.has(path)) return cb(sysErr('ENOENT', 'readdir', path), []);
      const prefix = path === '/' ? '/' : path + '/';
      const names = [...this.files.keys()].filter((p) => parentOf(p) === path).map((p) => p.slice(prefix.length));
      cb(null, names.sort());
    });
  }

  mkdir(path: string, cb: (err: DiskError | null) => void): void {
    this.op('write', 'disk mkdir', () => {
      let p = path;
      while (p !== '/' && p !== '') { this.dirs.add(p); p = parentOf(p); }
      cb(null);
    });
  }

  fsyncDir(path: string, cb: (err: DiskError | null) => void): void {
    this.op('sync', 'disk fsyncdir', () => {
      for (const [p] of this.durableFiles) if (parentOf(p) === path && !this.files.has(p)) this.durableFiles.delete(p);
      for (const [p, inode] of this.files) if (parentOf(p) === path) this.durableFiles.set(p, inode);
      cb(null);
    });
  }

  /** Power loss (see the module comment). Open fds are gone; queued ops die with the process. */
  crash(rng: SimRng): void {
    this.stats.crashes++;
    const next = new Map<string, Inode>();
    const seen = new Map<Inode, Inode>();
    for (const [p, inode] of this.durableFiles) {
      let survivor = seen.get(inode);
      if (survivor === undefined) {
        survivor = this.crashInode(inode, rng);
        seen.set(inode, survivor);
      }
      next.set(p, survivor);
    }
    this.files = next;
    this.durableFiles = new Map(next);
    this.fds.clear();
  }

  private crashInode(inode: Inode, rng: SimRng): Inode {
    const out = newInode();
    out.size = out.durableSize = inode.durableSize;
    for (const [i, page] of inode.durablePages) if (i * PAGE_BYTES < out.size) out.pages.set(i, page);
    const p = this.profile;
    for (const i of [...inode.dirty].sort((a, b) => a - b)) {
      if (i * PAGE_BYTES >= out.size) continue;
      const r = rng.float();
      if (r >= p.crashKeepProb + p.crashTearProb) continue;
      const fresh = inode.pages.get(i) ?? new Uint8Array(PAGE_BYTES);
      const old = out.pages.get(i) ?? new Uint8Array(PAGE_BYTES);
      const merged = old.slice();
      const sectors = r < p.crashKeepProb ? PAGE_BYTES / SECTOR_BYTES : rng.int(PAGE_BYTES / SECTOR_BYTES);
      merged.set(fresh.subarray(0, sectors * SECTOR_BYTES));
      if (isZero(merged)) out.pages.delete(i);
      else out.pages.set(i, merged);
    }
    for (const page of out.pages.values()) out.shared.add(page);
    out.durablePages = new Map(out.pages);
    return out;
  }

  /** Total bytes held in pages (memory use of the simulation). */
  residentBytes(): number {
    let n = 0;
    for (const inode of new Set(this.files.values())) n += inode.pages.size * PAGE_BYTES;
    return n;
  }
}

/** Calls `fn` for each page-sized piece of [position, position + length): page index, offset in the page, offset in the buffer, length. */
function forEachPagePiece(position: number, length: number, fn: (page: number, off: number, done: number, n: number) => void): void {
  let done = 0;
  while (done < length) {
    const pos = position + done;
    const off = pos % PAGE_BYTES;
    const n = Math.min(PAGE_BYTES - off, length - done);
    fn(Math.floor(pos / PAGE_BYTES), off, done, n);
    done += n;
  }
}

function readPages(pages: Map<number, Uint8Array>, position: number, out: Uint8Array): void {
  forEachPagePiece(position, out.length, (i, off, done, n) => {
    const page = pages.get(i);
    if (page === undefined) out.fill(0, done, done + n);
    else out.set(page.subarray(off, off + n), done);
  });
}

function writePages(inode: Inode, position: number, data: Uint8Array): void {
  forEachPagePiece(position, data.length, (i, off, done, n) => {
    const src = data.subarray(done, done + n);
    let page = inode.pages.get(i);
    if (page === undefined) {
      if (isZero(src)) { inode.dirty.add(i); return; }
      page = new Uint8Array(PAGE_BYTES);
      inode.pages.set(i, page);
    } else if (inode.shared.has(page)) {
      page = page.slice();
      inode.pages.set(i, page);
    }
    page.set(src, off);
    if (n === PAGE_BYTES ? isZero(src) : isZero(page)) inode.pages.delete(i);
    inode.dirty.add(i);
  });
}
