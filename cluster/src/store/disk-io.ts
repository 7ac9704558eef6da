/**
 * Callback helpers over `env.disk` for the store: crc-verified block reads from the data file. Errors become `ClusterError`s here, with the
 * errno kept as `cause` (GUIDE §6).
 */
import { crc32c } from '../common/crc32c.js';
import { ClusterError, clusterCodeFromErrno } from '../common/errors.js';
import type { Disk, DiskError, Fd } from '../env/env.js';
import { BLOCK_BYTES } from './types.js';

/** Wraps a disk error with what the store was doing. */
export function ioError(what: string, err: DiskError): ClusterError {
  return new ClusterError(clusterCodeFromErrno(err.code), `object store: ${what}: ${err.message}`, { cause: err, details: { errno: err.code } });
}

/** One block to read and check: data-file block `loc` must have crc32c `crc`. */
export interface BlockRead { readonly loc: number; readonly crc: number; readonly tag: number }

/** Outcome of `readBlocks`: images by position in the request, or the first bad block. */
export type BlockReadResult =
  | { readonly ok: true; readonly images: Uint8Array[] }
  | { readonly ok: false; readonly error: DiskError | null; readonly badTag: number; readonly badLoc: number; readonly actualCrc: number };

/**
 * Reads blocks (coalescing consecutive locations into one pread each) and verifies each
 * block's crc32c — pair assertion with the crc computed before the write.
 */
export function readBlocks(disk: Disk, fd: Fd, reads: readonly BlockRead[], cb: (r: BlockReadResult) => void): void {
  const images: Uint8Array[] = new Array<Uint8Array>(reads.length);
  let pending = 0;
  let result: BlockReadResult | undefined;
  const settle = (): void => {
    if (pending > 0) return;
    cb(result ?? { ok: true, images });
  };
  let i = 0;
  pending = 1; // Holds the callback until every pread is issued.
  while (i < reads.length) {
    let j = i + 1;
    while (j < reads.length && reads[j]!.loc === reads[j - 1]!.loc + 1) j++;
    const from = i;
    const buf = new Uint8Array((j - i) * BLOCK_BYTES);
    pending++;
    disk.pread(fd, buf, reads[from]!.loc * BLOCK_BYTES, (err) => {
      pending--;
      if (result === undefined) result = checkRun(reads, from, buf, images, err);
      settle();
    });
    i = j;
  }
  pending--;
  settle();
}

function checkRun(reads: readonly BlockRead[], from: number, buf: Uint8Array, images: Uint8Array[], err: DiskError | null): BlockReadResult | undefined {
  const first = reads[from]!;
  if (err) return { ok: false, error: err, badTag: first.tag, badLoc: first.loc, actualCrc: 0 };
  for (let k = 0; k * BLOCK_BYTES < buf.length; k++) {
    const image = buf.subarray(k * BLOCK_BYTES, (k + 1) * BLOCK_BYTES);
    const r = reads[from + k]!;
    const actual = crc32c(image);
    if (actual !== r.crc) return { ok: false, error: null, badTag: r.tag, badLoc: r.loc, actualCrc: actual };
    images[from + k] = image;
  }
  return undefined;
}
