/**
 * Opening a store directory: create it when empty (mkfs), load `meta`, replay the journal,
 * and write a checkpoint with a new incarnation `gen` before accepting writes.
 *
 * Files:  journal (preallocated ring, journal-format.ts)
 *         data    (4 KiB blocks, grows on demand)
 *         meta    (checkpoint, meta-codec.ts); meta.tmp is a checkpoint in progress.
 *
 * Replay = meta state + every valid TXN record from meta.journalStart. It stops at the first
 * bad record (readJournal) or at the first record whose direct-write blocks fail their crc
 * (their data never became durable, so that record was never acknowledged, nor was any
 * later one: a batch is acknowledged only after both fdatasyncs). The tail after the stop
 * point is cut logically: the open checkpoint moves journalStart there and bumps `gen`, and
 * replay rejects records of another gen.
 */
import type { ClusterError } from '../common/errors.js';
import { ClusterError as ClusterErrorClass } from '../common/errors.js';
import type { Disk, DiskError, Env, Fd } from '../env/env.js';
import { joinPath } from '../env/env.js';
import { BlockAllocator, InflightGate } from './allocator.js';
import { Checkpointer } from './checkpoint.js';
import { readWholeFile, writeFileAtomic } from '../env/disk-file.js';
import { ioError, readBlocks } from './disk-io.js';
import { HEADER_BYTES, RECORD_ALIGN, decodeJournalHeader, encodeJournalHeader } from './journal-format.js';
import { Journal, journalPayloadMax, readJournal } from './journal.js';
import type { ReplayRecord } from './journal.js';
import { decodeMeta, encodeMeta } from './meta-codec.js';
import type { MetaPosition } from './meta-codec.js';
import { ObjectIndex } from './object-index.js';
import { OpType, decodeTxnPayload } from './resolved-ops.js';
import type { ResolvedOp } from './resolved-ops.js';
import { BLOCK_BYTES } from './types.js';
import type { JournalIo } from './types.js';
import { alignedBytes } from '../common/aligned.js';

/** Everything an open store runs on. */
export interface OpenedStore {
  readonly index: ObjectIndex;
  readonly allocator: BlockAllocator;
  readonly journal: Journal;
  readonly checkpointer: Checkpointer;
  readonly dataGate: InflightGate;
  readonly readGate: InflightGate;
  readonly journalFd: Fd;
  /** The journal opened O_DSYNC | O_DIRECT, which batches are written through, when allowed. */
  readonly journalDirectFd: Fd | undefined;
  readonly dataFd: Fd;
  /** The data file opened O_DIRECT for direct writes, when asked for and allowed. */
  readonly dataDirectFd: Fd | undefined;
  readonly storeUuid: Uint8Array;
  readonly gen: number;
  /** Records replayed and why replay stopped (for logs and tests). */
  readonly replayed: number;
  readonly stopReason: string;
}

type Cb<T> = (err: ClusterError | null, value?: T) => void;

/** Creates an empty store: journal + data, then `meta` (the commit point of mkfs). */
function mkfs(env: Env, dir: string, journalBytes: number, cb: (err: DiskError | null) => void): void {
  const disk = env.disk;
  const storeUuid = env.rng.bytes(16);
  createJournal(disk, joinPath(dir, 'journal'), journalBytes, storeUuid, (err) => {
    if (err) return cb(err);
    disk.open(joinPath(dir, 'data'), { create: true, truncate: true }, (err2, dfd) => {
      if (err2) return cb(err2);
      disk.close(dfd, () => {
        const meta = encodeMeta({ storeUuid, gen: 1, journalStart: HEADER_BYTES, nextSeq: 1 }, new ObjectIndex(() => {}), new Map());
        // writeFileAtomic's fsyncDir also makes the journal and data entries durable.
        writeFileAtomic(disk, dir, 'meta', meta, cb);
      });
    });
  });
}

/** Creates the journal file: full size, zero-filled, header, fdatasync. */
function createJournal(disk: Disk, path: string, journalBytes: number, storeUuid: Uint8Array, cb: (err: DiskError | null) => void): void {
  disk.open(path, { create: true, truncate: true }, (err, jfd) => {
    if (err) return cb(err);
    const closeWith = (e: DiskError | null): void => disk.close(jfd, (e2) => cb(e ?? e2));
    disk.ftruncate(jfd, journalBytes, (err2) => {
      if (err2) return closeWith(err2);
      zeroFill(disk, jfd, HEADER_BYTES, journalBytes, (err3) => {
        if (err3) return closeWith(err3);
        disk.pwrite(jfd, encodeJournalHeader({ journalBytes, blockBytes: BLOCK_BYTES, storeUuid }), 0, (err4) => {
          if (err4) return closeWith(err4);
          disk.fdatasync(jfd, closeWith);
        });
      });
    });
  });
}

/**
 * Writes zeros over [from, to). Why: ftruncate leaves a sparse file, and on ext4 the first
 * write into a hole makes fdatasync commit allocation metadata too — measured ~2x the
 * latency of overwriting allocated blocks (docs/object-store.md). `Disk` has no fallocate.
 */
function zeroFill(disk: Disk, fd: Fd, from: number, to: number, cb: (err: DiskError | null) => void): void {
  const chunk = new Uint8Array(Math.min(1 << 20, Math.max(0, to - from)));
  const step = (at: number): void => {
    if (at >= to) return cb(null);
    const n = Math.min(chunk.length, to - at);
    disk.pwrite(fd, n === chunk.length ? chunk : chunk.subarray(0, n), at, (err) => (err ? cb(err) : step(at + n)));
  };
  step(from);
}

/** Opens (creating when needed) the store in `dir`. */
export function openStore(env: Env, p: { dir: string; journalBytes: number; journalIo?: JournalIo; directData?: boolean }, cb: Cb<OpenedStore>): void {
  const disk = env.disk;
  disk.mkdir(p.dir, (err) => {
    if (err) return cb(ioError('mkdir', err));
    disk.readdir(p.dir, (err2, names) => {
      if (err2) return cb(ioError('readdir', err2));
      const load = (): void => loadStore(env, p.dir, { journalIo: p.journalIo ?? 'pool', directData: p.directData === true }, cb);
      const afterTmp = (): void => {
        if (names.includes('meta')) return load();
        env.log.info({ dir: p.dir, journalBytes: p.journalBytes }, 'object store created');
        mkfs(env, p.dir, p.journalBytes, (err3) => (err3 ? cb(ioError('mkfs', err3)) : load()));
      };
      if (!names.includes('meta.tmp')) return afterTmp();
      disk.unlink(joinPath(p.dir, 'meta.tmp'), (err4) => (err4 && err4.code !== 'ENOENT' ? cb(ioError('unlink meta.tmp', err4)) : afterTmp()));
    });
  });
}

function decodeFailure(what: string, e: unknown): ClusterError {
  return new ClusterErrorClass('CLU_ERR_DECODE', `object store: ${what}: ${(e as Error).message}`, { cause: e });
}

function loadStore(env: Env, dir: string, io: { journalIo: JournalIo; directData: boolean }, cb: Cb<OpenedStore>): void {
  const disk = env.disk;
  let replaying = true;
  const allocator = new BlockAllocator();
  // Why ignore releases during replay: the allocator is rebuilt from references afterwards.
  const index = new ObjectIndex((loc) => { if (!replaying) allocator.release(loc); });
  readWholeFile(disk, joinPath(dir, 'meta'), (err, bytes) => {
    if (err) return cb(ioError('read meta', err));
    let pos: MetaPosition;
    try {
      pos = decodeMeta(bytes, index);
    } catch (e) {
      return cb(decodeFailure('meta', e));
    }
    const metaLocs: number[] = [];
    index.forEachLoc((l) => metaLocs.push(l));
    openFiles(env, dir, pos, io.directData, (err2, fds) => {
      if (err2 || fds === undefined) return cb(err2);
      const scanParams = { fd: fds.journalFd, journalBytes: fds.journalBytes, start: pos.journalStart, nextSeq: pos.nextSeq, gen: pos.gen, maxPayload: journalPayloadMax(fds.journalBytes) };
      readJournal(env, scanParams, (err3, scan) => {
        if (err3) return cb(ioError('read journal', err3));
        replayRecords(env, index, fds.dataFd, scan.records, (err4, stop) => {
          if (err4) return cb(err4);
          replaying = false;
          const end = stop ?? { offset: scan.endOffset, seq: scan.endSeq };
          const applied = stop === undefined ? scan.records.length : scan.records.findIndex((r) => r.seq === stop.seq);
          allocator.rebuild((fn) => { metaLocs.forEach(fn); index.forEachLoc(fn); });
          const gates = { dataGate: new InflightGate(), readGate: new InflightGate() };
          const gen = pos.gen + 1;
          const checkpointer = new Checkpointer({ env, dir, dataFd: fds.dataFd, storeUuid: pos.storeUuid, index, allocator, ...gates }, undefined, gen);
          const journal = new Journal({
            env, fd: fds.journalFd, journalBytes: fds.journalBytes, gen, head: end.offset, nextSeq: end.seq,
            syncData: (done) => gates.dataGate.afterCurrent(() => disk.fdatasync(fds.dataFd, done)),
            dsync: disk.dsyncWrites === true,
            io: io.journalIo,
            ...(fds.journalDirectFd !== undefined ? { directFd: fds.journalDirectFd } : {}),
          });
          checkpointer.attach(journal, gen);
          const stopReason = stop === undefined ? scan.stopReason : 'direct-crc';
          env.log.info({ dir, replayed: applied, stopReason, gen, objects: index.objects.size }, 'object store replayed');
          checkpointer.request((err5) => {
            if (err5) return cb(ioError('open checkpoint', err5));
            // Nothing else runs during open, so every block not referenced now is free.
            allocator.rebuild((fn) => index.forEachLoc(fn));
            cb(null, { index, allocator, journal, checkpointer, ...gates, ...fds, storeUuid: pos.storeUuid, gen, replayed: applied, stopReason });
          });
        });
      });
    });
  });
}

interface StoreFds { journalFd: Fd; journalDirectFd: Fd | undefined; dataFd: Fd; dataDirectFd: Fd | undefined; journalBytes: number }

function openFiles(env: Env, dir: string, pos: MetaPosition, directData: boolean, cb: (err: ClusterError | null, fds?: StoreFds) => void): void {
  const disk = env.disk;
  // O_DSYNC where the disk supports it: each journal batch is then one durable pwrite.
  disk.open(joinPath(dir, 'journal'), { dsync: disk.dsyncWrites === true }, (err, journalFd) => {
    if (err) return cb(ioError('open journal', err));
    const hdr = new Uint8Array(HEADER_BYTES);
    disk.pread(journalFd, hdr, 0, (err2) => {
      if (err2) return cb(ioError('read journal header', err2));
      let journalBytes: number;
      try {
        const h = decodeJournalHeader(hdr);
        if (Buffer.compare(h.storeUuid, pos.storeUuid) !== 0) throw new Error('journal belongs to another store');
        if (h.blockBytes !== BLOCK_BYTES) throw new Error(`block size ${h.blockBytes}`);
        journalBytes = h.journalBytes;
      } catch (e) {
        return cb(decodeFailure('journal header', e));
      }
      disk.open(joinPath(dir, 'data'), {}, (err3, dataFd) => {
        if (err3) return cb(ioError('open data', err3));
        if (!directData || disk.directIo !== true) return cb(null, { journalFd, journalDirectFd: undefined, dataFd, dataDirectFd: undefined, journalBytes });
        disk.open(joinPath(dir, 'data'), { direct: true }, (err4, directFd) => {
          // Why not fail: tmpfs before Linux 6.6 (and some FUSE file systems) refuse O_DIRECT with EINVAL; buffered
          // writes are correct everywhere, only slower for big writes.
          if (err4) env.log.info({ dir, errno: err4.code }, 'object store: O_DIRECT refused for the data file; buffered data writes');
          openJournalDirect(env, dir, hdr, (journalDirectFd) => {
            cb(null, { journalFd, journalDirectFd, dataFd, dataDirectFd: err4 ? undefined : directFd, journalBytes });
          });
        });
      });
    });
  });
}

/**
 * The journal's O_DSYNC | O_DIRECT write fd (`JournalParams.directFd`), or undefined where the
 * disk cannot: no O_DSYNC, O_DIRECT refused at open, or refused for 512-byte-aligned writes (a
 * device whose logical block is 4 KiB; journal records are 512-aligned in offset, length and
 * memory address). The probe writes the header block back unchanged through the new fd:
 * harmless at any moment, even if we crash.
 */
function openJournalDirect(env: Env, dir: string, hdr: Uint8Array, cb: (fd: Fd | undefined) => void): void {
  const disk = env.disk;
  if (disk.dsyncWrites !== true) return cb(undefined);
  disk.open(joinPath(dir, 'journal'), { dsync: true, direct: true }, (err, fd) => {
    if (err) { env.log.info({ dir, errno: err.code }, 'object store: O_DIRECT refused for the journal; page-cache journal writes'); return cb(undefined); }
    // From a 512- but not 4096-aligned address: batches are views of the staging ring at any
    // record boundary (journal.ts), so the device must take those too.
    const probe = alignedBytes(2 * RECORD_ALIGN).subarray(RECORD_ALIGN);
    probe.set(hdr.subarray(0, RECORD_ALIGN));
    disk.pwrite(fd, probe, 0, (err2) => {
      if (err2 === null) return cb(fd);
      env.log.info({ dir, errno: err2.code }, 'object store: O_DIRECT refused for 512-byte journal writes; page-cache journal writes');
      disk.close(fd, () => cb(undefined));
    });
  });
}

/**
 * Applies records in order; for records with direct writes, first checks their blocks'
 * crcs. Answers the position of the first record that must not apply, if any.
 */
function replayRecords(env: Env, index: ObjectIndex, dataFd: Fd, records: readonly ReplayRecord[], cb: (err: ClusterError | null, stop?: { offset: number; seq: number }) => void): void {
  let i = 0;
  const next = (): void => {
    while (i < records.length) {
      const rec = records[i]!;
      let ops: ResolvedOp[];
      try {
        ops = decodeTxnPayload(rec.payload);
      } catch (e) {
        // An intact (crc-valid) record we cannot decode is a bug or a format mismatch: fail loudly.
        return cb(decodeFailure(`journal record ${rec.seq}`, e));
      }
      const direct = ops.flatMap((op) => (op.t === OpType.DIRECT ? op.locs.map((loc, k) => ({ loc, crc: op.crcs[k]!, tag: k })) : []));
      if (direct.length === 0) {
        for (const op of ops) index.apply(op);
        i++;
        continue;
      }
      return readBlocks(env.disk, dataFd, direct, (r) => {
        if (!r.ok && r.error !== null) return cb(ioError('replay read', r.error));
        if (!r.ok) {
          env.log.warn({ seq: rec.seq, dataBlock: r.badLoc }, 'object store replay: direct write not durable, cutting journal');
          return cb(null, { offset: rec.offset, seq: rec.seq });
        }
        for (const op of ops) index.apply(op);
        i++;
        env.setImmediate(next);
      });
    }
    cb(null);
  };
  next();
}
