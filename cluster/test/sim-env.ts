/**
 * A small deterministic Env for unit tests: a manual clock with an ordered timer queue, a
 * seeded rng (xorshift32), and `MemDisk`, an in-memory disk with the durability model of
 * env.ts (unsynced data and unsynced directory entries are lost by `crash()`, and the last
 * unsynced write may be torn). Not the full simulator (cluster/sim/), which another issue owns.
 */
import pino from 'pino';
import type { Disk, DiskError, Env, Fd, TimerHandle } from '../src/env/env.js';
import type { Net } from '../src/env/net.js';

interface Timer { id: number; atMs: number; seq: number; cb: () => void }

function sysErr(code: string, syscall: string, path?: string): DiskError {
  const e = new Error(`${code}: ${syscall}${path === undefined ? '' : ` '${path}'`}`) as DiskError;
  e.code = code;
  e.syscall = syscall;
  if (path !== undefined) e.path = path;
  return e;
}

interface Inode { data: Uint8Array; synced: Uint8Array; tornCandidate: boolean }

/** In-memory disk; see the module comment. */
export class MemDisk implements Disk {
  private files = new Map<string, Inode>();
  private durableFiles = new Map<string, Inode>();
  private dirs = new Set<string>(['/']);
  private fds = new Map<number, { path: string; inode: Inode }>();
  private nextFd = 3;
  /** Failure injection: the next N fdatasync calls fail with EIO. */
  failSyncs = 0;

  constructor(private readonly defer: (cb: () => void) => void) {}

  private parent(path: string): string {
    const i = path.lastIndexOf('/');
    return i <= 0 ? '/' : path.slice(0, i);
  }

  open(path: string, o: { create?: boolean; exclusive?: boolean; truncate?: boolean; readOnly?: boolean }, cb: (err: DiskError | null, fd: Fd) => void): void {
    this.defer(() => {
      let inode = this.files.get(path);
      if (inode !== undefined && o.create === true && o.exclusive === true) return cb(sysErr('EEXIST', 'open', path), -1 as Fd);
      if (inode === undefined) {
        if (o.create !== true) return cb(sysErr('ENOENT', 'open', path), -1 as Fd);
        if (!this.dirs.has(this.parent(path))) return cb(sysErr('ENOENT', 'open', path), -1 as Fd);
        inode = { data: new Uint8Array(0), synced: new Uint8Array(0), tornCandidate: false };
        this.files.set(path, inode);
      }
      if (o.truncate === true) inode.data = new Uint8Array(0);
      const fd = this.nextFd++;
      this.fds.set(fd, { path, inode });
      cb(null, fd as Fd);
    });
  }

  private withFd(fd: Fd, syscall: string, cb: (err: DiskError | null) => void, fn: (inode: Inode) => void): void {
    this.defer(() => {
      const f = this.fds.get(fd);
      if (f === undefined) return cb(sysErr('EBADF', syscall));
      fn(f.inode);
    });
  }

  pread(fd: Fd, buf: Uint8Array, position: number, cb: (err: DiskError | null, n: number) => void): void {
    this.withFd(fd, 'pread', (e) => cb(e, 0), (inode) => {
      const src = inode.data.subarray(position, position + buf.length);
      buf.set(src);
      cb(null, src.length);
    });
  }

  pwrite(fd: Fd, data: Uint8Array, position: number, cb: (err: DiskError | null) => void): void {
    this.withFd(fd, 'pwrite', cb, (inode) => {
      const end = position + data.length;
      if (end > inode.data.length) {
        const grown = new Uint8Array(end);
        grown.set(inode.data);
        inode.data = grown;
      }
      inode.data.set(data, position);
      inode.tornCandidate = true;
      cb(null);
    });
  }

  fdatasync(fd: Fd, cb: (err: DiskError | null) => void): void {
    this.withFd(fd, 'fdatasync', cb, (inode) => {
      if (this.failSyncs > 0) {
        this.failSyncs--;
        return cb(sysErr('EIO', 'fdatasync'));
      }
      inode.synced = inode.data.slice();
      inode.tornCandidate = false;
      cb(null);
    });
  }

  ftruncate(fd: Fd, len: number, cb: (err: DiskError | null) => void): void {
    this.withFd(fd, 'ftruncate', cb, (inode) => {
      const next = new Uint8Array(len);
      next.set(inode.data.subarray(0, len));
      inode.data = next;
      cb(null);
    });
  }

  fsize(fd: Fd, cb: (err: DiskError | null, size: number) => void): void {
    this.withFd(fd, 'fstat', (e) => cb(e, 0), (inode) => cb(null, inode.data.length));
  }

  close(fd: Fd, cb: (err: DiskError | null) => void): void {
    this.withFd(fd, 'close', cb, () => {
      this.fds.delete(fd);
      cb(null);
    });
  }

  rename(a: string, b: string, cb: (err: DiskError | null) => void): void {
    this.defer(() => {
      const inode = this.files.get(a);
      if (inode === undefined) return cb(sysErr('ENOENT', 'rename', a));
      this.files.delete(a);
      this.files.set(b, inode);
      cb(null);
    });
  }

  unlink(path: string, cb: (err: DiskError | null) => void): void {
    this.defer(() => cb(this.files.delete(path) ? null : sysErr('ENOENT', 'unlink', path)));
  }

  readdir(path: string, cb: (err: DiskError | null, names: string[]) => void): void {
    this.defer(() => {
      if (!this.dirs.has(path)) return cb(sysErr('ENOENT', 'readdir', path), []);
      const names = [...this.files.keys()].filter((p) => this.parent(p) === path).map((p) => p.slice(path.length + 1));
      cb(null, names.sort());
    });
  }

  mkdir(path: string, cb: (err: DiskError | null) => void): void {
    this.defer(() => {
      let p = path;
      while (p !== '/' && p !== '') { this.dirs.add(p); p = this.parent(p); }
      cb(null);
    });
  }

  fsyncDir(path: string, cb: (err: DiskError | null) => void): void {
    this.defer(() => {
      for (const [p] of this.durableFiles) if (this.parent(p) === path && !this.files.has(p)) this.durableFiles.delete(p);
      for (const [p, inode] of this.files) if (this.parent(p) === path) this.durableFiles.set(p, inode);
      cb(null);
    });
  }

  /**
   * Simulates power loss: only durable entries survive, each with its synced data; when
   * `tearBytes` is given, a file with unsynced writes keeps that many extra bytes of them.
   */
  crash(tearBytes = 0): void {
    const next = new Map<string, Inode>();
    for (const [p, inode] of this.durableFiles) {
      let data = inode.synced.slice();
      if (tearBytes > 0 && inode.tornCandidate && inode.data.length > data.length) {
        data = inode.data.slice(0, Math.min(inode.data.length, data.length + tearBytes));
      }
      next.set(p, { data, synced: data.slice(), tornCandidate: false });
    }
    this.files = next;
    this.durableFiles = new Map(next);
    this.fds.clear();
  }

  /** Raw file content (tests). */
  peek(path: string): Uint8Array | undefined {
    return this.files.get(path)?.data;
  }
}

/** Deterministic Env with a manual clock. */
export class TestEnv implements Env {
  private now = 0;
  private seq = 0;
  private timers: Timer[] = [];
  private rngState: number;
  readonly disk: MemDisk;
  readonly net: Net = {
    listen: () => { throw new Error('no net in TestEnv'); },
    connect: () => { throw new Error('no net in TestEnv'); },
  };
  readonly log = pino({ level: process.env['TEST_LOG'] ?? 'silent' });
  readonly rng = {
    u32: (): number => this.nextRandom(),
    bytes: (n: number): Uint8Array => Uint8Array.from({ length: n }, () => this.nextRandom() & 0xff),
  };

  constructor(seed = 1) {
    this.rngState = seed >>> 0 || 1;
    this.disk = new MemDisk((cb) => void this.setImmediate(cb));
  }

  private nextRandom(): number {
    let x = this.rngState;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.rngState = x;
    return x;
  }

  nowMs(): number { return this.now; }
  wallMs(): number { return 1_700_000_000_000 + this.now; }
  setTimeout(cb: () => void, delayMs: number): TimerHandle {
    const t: Timer = { id: ++this.seq, atMs: this.now + Math.max(0, delayMs), seq: this.seq, cb };
    this.timers.push(t);
    return t.id as unknown as TimerHandle;
  }
  clearTimeout(h: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== (h as unknown as number));
  }
  setImmediate(cb: () => void): TimerHandle { return this.setTimeout(cb, 0); }
  buggify(): boolean { return false; }

  /** Fires every timer due at or before `now + ms`, in (time, seq) order; returns events run. */
  advance(ms: number): number {
    const until = this.now + ms;
    let fired = 0;
    for (;;) {
      let best: Timer | undefined;
      for (const t of this.timers) if (t.atMs <= until && (best === undefined || t.atMs < best.atMs || (t.atMs === best.atMs && t.seq < best.seq))) best = t;
      if (best === undefined) break;
      this.timers.splice(this.timers.indexOf(best), 1);
      this.now = best.atMs;
      best.cb();
      if (++fired > 1_000_000) throw new Error('runaway timers');
    }
    this.now = until;
    return fired;
  }

  /** Runs exactly one due timer (at or before now); returns false when none is due. */
  step(): boolean {
    let best: Timer | undefined;
    for (const t of this.timers) if (t.atMs <= this.now && (best === undefined || t.atMs < best.atMs || (t.atMs === best.atMs && t.seq < best.seq))) best = t;
    if (best === undefined) return false;
    this.timers.splice(this.timers.indexOf(best), 1);
    best.cb();
    return true;
  }

  /** Runs everything due now (immediates and zero-delay chains). */
  settle(): void { this.advance(0); }

  /** Drops every pending timer (a process "crash" in tests). */
  dropTimers(): void { this.timers = []; }
}
