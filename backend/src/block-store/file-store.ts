/**
 * BlockStore over a raw file or block device: `preadv`/`pwritev` straight from guest-memory
 * views (zero copies), FLUSH = fdatasync, DISCARD = punch hole, WRITE_ZEROES = zero range
 * (or punch hole with unmap), optional O_DIRECT.
 *
 * I/O mode. `async` runs every preadv/pwritev on libuv's threadpool: right for disks, where
 * a syscall may sleep for milliseconds. `sync` runs them on the event loop: for memory-backed
 * files (tmpfs, ramfs) a 4 KiB preadv is a few µs, while the threadpool round trip (futex
 * wake, thread switch, async eventfd back to the loop) costs tens of µs of CPU per request —
 * measured: most of the daemon's CPU per I/O at QD1. `auto` picks sync on tmpfs/ramfs and
 * async elsewhere. fdatasync always goes to the threadpool.
 *
 * O_DIRECT needs 512-byte-aligned buffers; guest buffers usually are (page cache pages) but
 * the guest may hand us any alignment, so misaligned requests go through a page-aligned
 * bounce buffer instead of failing.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as native from '../../../native/index.js';
import type { BlockStore, IoCallback } from './block-store.js';

export type IoMode = 'sync' | 'async' | 'auto';

export interface FileStoreOptions {
  /** See the file comment. Default 'auto'. */
  io?: IoMode;
  readOnly?: boolean;
  /** Open with O_DIRECT (bypass the host page cache). */
  direct?: boolean;
  /** Create or grow the file to this size (bytes) before serving. */
  sizeBytes?: number;
  /** GET_ID answer; defaults to the file's base name. */
  serial?: string;
}

const ALIGN = 512;
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
const ZERO_CHUNK = new Uint8Array(1 << 20);

export class FileStore implements BlockStore {
  readonly supportsDiscard = true;
  private closed = false;

  private constructor(
    private readonly fd: number,
    public sizeBytes: number,
    readonly readOnly: boolean,
    readonly serial: string,
    private readonly direct: boolean,
    /** True when preadv/pwritev run on the event loop (see IoMode). */
    readonly syncIo: boolean,
  ) {}

  /** Opens (and with `sizeBytes`, creates or grows) the file. Throws on failure (control plane). */
  static open(filePath: string, opts: FileStoreOptions = {}): FileStore {
    const readOnly = opts.readOnly ?? false;
    let flags = readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR;
    if (opts.sizeBytes !== undefined && !readOnly) flags |= fs.constants.O_CREAT;
    if (opts.direct) flags |= fs.constants.O_DIRECT;
    const fd = fs.openSync(filePath, flags, 0o600);
    try {
      const st = fs.fstatSync(fd);
      let sizeBytes: number;
      if (st.isBlockDevice()) {
        sizeBytes = blockDeviceSize(st.rdev);
      } else {
        if (opts.sizeBytes !== undefined && st.size < opts.sizeBytes) fs.ftruncateSync(fd, opts.sizeBytes);
        sizeBytes = opts.sizeBytes ?? st.size;
      }
      sizeBytes -= sizeBytes % ALIGN;
      if (sizeBytes <= 0) throw new Error(`${filePath}: size ${sizeBytes} bytes; give --size to create or grow it`);
      const serial = (opts.serial ?? path.basename(filePath)).slice(0, 20);
      const io = opts.io ?? 'auto';
      const syncIo = io === 'sync' || (io === 'auto' && !st.isBlockDevice() && memoryBacked(filePath));
      return new FileStore(fd, sizeBytes, readOnly, serial, opts.direct ?? false, syncIo);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  private aligned(views: readonly Uint8Array[]): boolean {
    if (!this.direct) return true;
    for (const v of views) if (v.byteOffset % ALIGN !== 0 || v.byteLength % ALIGN !== 0) return false;
    return true;
  }

  readv(offsetBytes: number, views: Uint8Array[], cb: IoCallback): void {
    if (!this.aligned(views)) return this.bounceRead(offsetBytes, views, cb);
    if (this.syncIo) return transferSync('read', this.fd, offsetBytes, views, cb);
    transfer('read', this.fd, offsetBytes, views, cb);
  }

  writev(offsetBytes: number, views: Uint8Array[], cb: IoCallback): void {
    if (this.readOnly) return cb(Object.assign(new Error('read-only store'), { code: 'EROFS' }));
    if (!this.aligned(views)) return this.bounceWrite(offsetBytes, views, cb);
    if (this.syncIo) return transferSync('write', this.fd, offsetBytes, views, cb);
    transfer('write', this.fd, offsetBytes, views, cb);
  }

  flush(cb: IoCallback): void {
    fs.fdatasync(this.fd, (err) => cb(err));
  }

  discard(offsetBytes: number, lengthBytes: number, cb: IoCallback): void {
    try {
      native.fallocate(this.fd, 'punch-hole', offsetBytes, lengthBytes);
    } catch (err) {
      // Why: discard is advisory (VIRTIO 1.2 §5.2.6.2); a file system without hole
      // punching still completes it, with the data left in place.
      if ((err as NodeJS.ErrnoException).code !== 'EOPNOTSUPP') return cb(err as Error);
    }
    cb(null);
  }

  writeZeroes(offsetBytes: number, lengthBytes: number, unmap: boolean, cb: IoCallback): void {
    for (const mode of unmap ? (['punch-hole', 'zero-range'] as const) : (['zero-range'] as const)) {
      try {
        native.fallocate(this.fd, mode, offsetBytes, lengthBytes);
        return cb(null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EOPNOTSUPP' && code !== 'EINVAL') return cb(err as Error);
      }
    }
    this.writeZeroChunks(offsetBytes, lengthBytes, cb);
  }

  private writeZeroChunks(offsetBytes: number, lengthBytes: number, cb: IoCallback): void {
    if (lengthBytes === 0) return cb(null);
    const n = Math.min(lengthBytes, ZERO_CHUNK.length);
    const chunk = this.direct ? alignedBuffer(n) : ZERO_CHUNK.subarray(0, n);
    transfer('write', this.fd, offsetBytes, [chunk], (err) => {
      if (err) return cb(err);
      this.writeZeroChunks(offsetBytes + n, lengthBytes - n, cb);
    });
  }

  private bounceRead(offsetBytes: number, views: Uint8Array[], cb: IoCallback): void {
    const total = views.reduce((n, v) => n + v.length, 0);
    const bounce = alignedBuffer(total);
    transfer('read', this.fd, offsetBytes, [bounce], (err) => {
      if (err) return cb(err);
      let at = 0;
      for (const v of views) {
        v.set(bounce.subarray(at, at + v.length));
        at += v.length;
      }
      cb(null);
    });
  }

  private bounceWrite(offsetBytes: number, views: Uint8Array[], cb: IoCallback): void {
    const total = views.reduce((n, v) => n + v.length, 0);
    const bounce = alignedBuffer(total);
    let at = 0;
    for (const v of views) {
      bounce.set(v, at);
      at += v.length;
    }
    transfer('write', this.fd, offsetBytes, [bounce], cb);
  }

  /** Grows a regular file (ftruncate); shrinking under a running guest is refused. */
  resize(sizeBytes: number, cb: IoCallback): void {
    if (this.readOnly) return cb(Object.assign(new Error('read-only store'), { code: 'EROFS' }));
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes % ALIGN !== 0) return cb(Object.assign(new Error(`size ${sizeBytes} is not a multiple of 512`), { code: 'EINVAL' }));
    if (sizeBytes < this.sizeBytes) return cb(Object.assign(new Error(`shrinking from ${this.sizeBytes} to ${sizeBytes} bytes is refused`), { code: 'ESHRINK' }));
    if (fs.fstatSync(this.fd).isBlockDevice()) return cb(Object.assign(new Error('a block device is resized by its owner, not here'), { code: 'ENOTSUP' }));
    fs.ftruncate(this.fd, sizeBytes, (err) => {
      if (err) return cb(err);
      this.sizeBytes = sizeBytes;
      cb(null);
    });
  }

  close(cb: IoCallback): void {
    if (this.closed) return cb(null);
    this.closed = true;
    fs.close(this.fd, (err) => cb(err));
  }
}

/**
 * preadv/pwritev the whole list, continuing after short transfers. A read that hits end of
 * file zero-fills the rest (the store's size is fixed at open).
 */
function transfer(kind: 'read' | 'write', fd: number, offsetBytes: number, views: Uint8Array[], cb: IoCallback): void {
  const expected = views.reduce((n, v) => n + v.length, 0);
  const done = (err: NodeJS.ErrnoException | null, bytes: number): void => {
    if (err) return cb(err);
    if (bytes === expected) return cb(null);
    if (bytes === 0) {
      if (kind === 'write') return cb(Object.assign(new Error('pwritev wrote 0 bytes'), { code: 'EIO' }));
      for (const v of views) v.fill(0);
      return cb(null);
    }
    transfer(kind, fd, offsetBytes + bytes, sliceFrom(views, bytes), cb);
  };
  if (kind === 'read') fs.readv(fd, views, offsetBytes, done);
  else fs.writev(fd, views, offsetBytes, done);
}

/** preadv/pwritev on the event loop; the callback runs before this returns. */
function transferSync(kind: 'read' | 'write', fd: number, offsetBytes: number, views: Uint8Array[], cb: IoCallback): void {
  let position = offsetBytes;
  let rest = views;
  try {
    for (;;) {
      const expected = rest.reduce((n, v) => n + v.length, 0);
      const bytes = kind === 'read' ? fs.readvSync(fd, rest, position) : fs.writevSync(fd, rest, position);
      if (bytes === expected) break;
      if (bytes === 0) {
        if (kind === 'write') throw Object.assign(new Error('pwritev wrote 0 bytes'), { code: 'EIO' });
        for (const v of rest) v.fill(0);
        break;
      }
      position += bytes;
      rest = sliceFrom(rest, bytes);
    }
  } catch (err) {
    return cb(err as Error);
  }
  cb(null);
}

function sliceFrom(views: Uint8Array[], skipBytes: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = skipBytes;
  for (const v of views) {
    if (skip >= v.length) {
      skip -= v.length;
      continue;
    }
    rest.push(v.subarray(skip));
    skip = 0;
  }
  return rest;
}

/** Whether the file lives in memory (tmpfs/ramfs), where syscalls never wait on a disk. */
function memoryBacked(filePath: string): boolean {
  try {
    const type = Number(fs.statfsSync(filePath).type);
    return type === TMPFS_MAGIC || type === RAMFS_MAGIC;
  } catch {
    return false;
  }
}

/** A page-aligned buffer (O_DIRECT bounce), from an anonymous memfd mapping. */
function alignedBuffer(sizeBytes: number): Uint8Array {
  const mapBytes = Math.max(4096, Math.ceil(sizeBytes / 4096) * 4096);
  const fd = native.memfdCreate('strata-bounce', mapBytes);
  try {
    return new Uint8Array(native.mapShared(fd, mapBytes, 0), 0, sizeBytes);
  } finally {
    fs.closeSync(fd);
  }
}

/** Size of a block device from sysfs (Node has no BLKGETSIZE64). */
function blockDeviceSize(rdev: number): number {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  const sectors = Number(fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim());
  return sectors * 512;
}
