/**
 * Callback helpers over `env.disk` shared by the monitor store, the object store and the
 * daemons' keyring handling: read a whole file, and replace a
 * file atomically (write tmp → fdatasync → rename → fsync dir).
 */
import type { Disk, DiskError } from './env.js';
import { joinPath } from './env.js';

/** Reads all of `path`. */
export function readWholeFile(disk: Disk, path: string, cb: (err: DiskError | null, bytes: Uint8Array) => void): void {
  disk.open(path, { readOnly: true }, (err, fd) => {
    if (err) return cb(err, new Uint8Array(0));
    disk.fsize(fd, (err2, sizeBytes) => {
      if (err2) return disk.close(fd, () => cb(err2, new Uint8Array(0)));
      const buf = new Uint8Array(sizeBytes);
      disk.pread(fd, buf, 0, (err3, n) => {
        disk.close(fd, () => cb(err3, buf.subarray(0, n)));
      });
    });
  });
}

/**
 * Atomically replaces `dir/name` with `data`: after the callback succeeds the new content is
 * durable; a crash at any point leaves either the old or the new file under `name`.
 */
export function writeFileAtomic(disk: Disk, dir: string, name: string, data: Uint8Array, cb: (err: DiskError | null) => void): void {
  const tmp = joinPath(dir, `${name}.tmp`);
  disk.open(tmp, { create: true, truncate: true }, (err, fd) => {
    if (err) return cb(err);
    disk.pwrite(fd, data, 0, (err2) => {
      if (err2) return disk.close(fd, () => cb(err2));
      disk.fdatasync(fd, (err3) => {
        disk.close(fd, (err4) => {
          if (err3 ?? err4) return cb(err3 ?? err4);
          disk.rename(tmp, joinPath(dir, name), (err5) => {
            if (err5) return cb(err5);
            disk.fsyncDir(dir, cb);
          });
        });
      });
    });
  });
}
