/**
 * The embedded `MonStore`: an append-only, CRC-checked log of transactions plus a periodic
 * full snapshot, in one directory, through `env.disk` only (so the simulator can crash it).
 *
 * Files:
 *   snapshot       latest compaction (replaced atomically by rename)
 *   snapshot.tmp   a compaction in progress (deleted on open)
 *   log.<gen>      transactions after the snapshot; <gen> = snapshot.nextLogGen (0 if none)
 *
 * Log record (little-endian):
 *   ┌──────────┬───────────┬──────────────────────────┬─────────────┐
 *   │ u32 magic│ u32 len   │ u32 crc32c(len ‖ payload)│ payload[len]│
 *   └──────────┴───────────┴──────────────────────────┴─────────────┘
 *   payload = u8 hasInc | [bytes incremental] | u32 nPut | (str key, bytes value)* | u32 nDel | str*
 *
 * Snapshot: u32 magic | u8 version | u32 crc32c(body) | bytes body
 *   body = u32 nextLogGen | bytes map ('' = none) | u32 nInc | bytes inc* | u32 nKv | (str, bytes)*
 *
 * Crash safety (kill -9 at any instruction):
 * - A commit is acknowledged only after its record is written and fdatasync'd. A crash before
 *   that leaves a torn or missing record: replay stops at the first record whose magic, length
 *   or CRC is wrong, truncates the file there, and fsyncs — the unacknowledged commit is gone
 *   and nothing after it exists (records are only appended after an acknowledged one).
 * - Compaction writes snapshot.tmp, fdatasyncs it, renames it over `snapshot` and fsyncs the
 *   directory; only then does it create log.<gen+1> and unlink log.<gen>. A crash before the
 *   rename leaves the old snapshot + old log (complete); after it, open() sees nextLogGen =
 *   gen+1, deletes the stale log.<gen> (its content is in the snapshot) and creates log.<gen+1>.
 */
import { CodecError, Reader, Writer, copyBytes } from '../common/codec.js';
import { crc32c } from '../common/crc32c.js';
import { ClusterError, clusterCodeFromErrno } from '../common/errors.js';
import type { Epoch } from '../common/ids.js';
import type { Env, Fd } from '../env/env.js';
import { joinPath } from '../env/env.js';
import { decodeIncremental, decodeMap, encodeIncremental, encodeMap } from '../map/map-codec.js';
import { MonStoreState } from './mon-store-state.js';
import type { MonStore, MonStoreTxn } from './mon-store.js';
import { readWholeFile, writeFileAtomic } from '../env/disk-file.js';

const RECORD_MAGIC = 0x524c4d53; // 'SMLR'
const SNAPSHOT_MAGIC = 0x4e534d53; // 'SMSN'
const SNAPSHOT_VERSION = 1;
const RECORD_HEADER_BYTES = 12;
const RECORD_MAX_BYTES = 64 * 1024 * 1024;

/** Tunables of the file store. */
export interface FileMonStoreOptions {
  env: Env;
  dir: string;
  /** Compact after this many log records (default 512). */
  snapshotEveryRecords?: number;
  /** Incrementals kept for subscribers that are behind (default 500). */
  keepIncrementals?: number;
}

type Cb = (err: Error | null) => void;

/** The embedded durable monitor store. */
export class FileMonStore implements MonStore {
  private readonly env: Env;
  private readonly dir: string;
  private readonly snapshotEveryRecords: number;
  private readonly state: MonStoreState;
  private logFd: Fd | undefined;
  private logGen = 0;
  private logEndBytes = 0;
  private recordsInLog = 0;
  private readonly queue: { txn: MonStoreTxn; cb: Cb }[] = [];
  private busy = false;
  /** Set after an I/O error: the on-disk state is unknown, every later commit fails. */
  private broken: Error | undefined;

  constructor(options: FileMonStoreOptions) {
    this.env = options.env;
    this.dir = options.dir;
    this.snapshotEveryRecords = options.snapshotEveryRecords ?? 512;
    this.state = new MonStoreState(options.keepIncrementals ?? 500);
  }

  latestMap() { return this.state.map; }
  incrementalsSince(sinceEpoch: Epoch) { return this.state.incrementalsSince(sinceEpoch); }
  kvGet(key: string) { return this.state.kv.get(key); }
  kvKeys(prefix: string) { return this.state.kvKeys(prefix); }

  open(cb: Cb): void {
    const disk = this.env.disk;
    disk.mkdir(this.dir, (err) => {
      if (err) return cb(ioError('mkdir', err));
      disk.readdir(this.dir, (err2, names) => {
        if (err2) return cb(ioError('readdir', err2));
        this.openWithNames(names, cb);
      });
    });
  }

  private openWithNames(names: string[], cb: Cb): void {
    const afterSnapshot = (err: Error | null): void => {
      if (err) return cb(err);
      const stale = names.filter((n) => n === 'snapshot.tmp' || (logGenOf(n) ?? Infinity) < this.logGen);
      this.unlinkAll(stale, (err2) => {
        if (err2) return cb(err2);
        this.openLog(cb);
      });
    };
    if (!names.includes('snapshot')) return afterSnapshot(null);
    readWholeFile(this.env.disk, joinPath(this.dir, 'snapshot'), (err, bytes) => {
      if (err) return cb(ioError('read snapshot', err));
      try {
        this.loadSnapshot(bytes);
      } catch (e) {
        return cb(decodeError('snapshot', e));
      }
      afterSnapshot(null);
    });
  }

  private unlinkAll(names: string[], cb: Cb): void {
    const [first, ...rest] = names;
    if (first === undefined) return cb(null);
    this.env.log.warn({ file: first }, 'mon store removing stale file');
    this.env.disk.unlink(joinPath(this.dir, first), (err) => {
      if (err && err.code !== 'ENOENT') return cb(ioError('unlink', err));
      this.unlinkAll(rest, cb);
    });
  }

  /** Opens (creating if needed) log.<gen>, replays it and cuts a torn tail. */
  private openLog(cb: Cb): void {
    const disk = this.env.disk;
    const path = joinPath(this.dir, logName(this.logGen));
    disk.open(path, { create: true }, (err, fd) => {
      if (err) return cb(ioError('open log', err));
      this.logFd = fd;
      // Why fsync the directory even when the log existed: a freshly created entry must be
      // durable before any record in it is acknowledged.
      disk.fsyncDir(this.dir, (err2) => {
        if (err2) return cb(ioError('fsync dir', err2));
        readWholeFile(disk, path, (err3, bytes) => {
          if (err3) return cb(ioError('read log', err3));
          let validEnd: number;
          try {
            validEnd = this.replay(bytes);
          } catch (e) {
            return cb(decodeError('log', e));
          }
          this.logEndBytes = validEnd;
          if (validEnd === bytes.length) return cb(null);
          this.env.log.warn({ validEnd, fileBytes: bytes.length }, 'mon store cutting torn log tail');
          disk.ftruncate(fd, validEnd, (err4) => {
            if (err4) return cb(ioError('ftruncate', err4));
            disk.fdatasync(fd, (err5) => cb(err5 ? ioError('fdatasync', err5) : null));
          });
        });
      });
    });
  }

  /** Applies every intact record; returns the offset after the last one. */
  private replay(bytes: Uint8Array): number {
    let pos = 0;
    while (pos + RECORD_HEADER_BYTES <= bytes.length) {
      const view = new DataView(bytes.buffer, bytes.byteOffset + pos, RECORD_HEADER_BYTES);
      const len = view.getUint32(4, true);
      if (view.getUint32(0, true) !== RECORD_MAGIC || len > RECORD_MAX_BYTES) break;
      if (pos + RECORD_HEADER_BYTES + len > bytes.length) break;
      const lenAndPayload = bytes.subarray(pos + 4, pos + RECORD_HEADER_BYTES + len);
      const payload = bytes.subarray(pos + RECORD_HEADER_BYTES, pos + RECORD_HEADER_BYTES + len);
      // The CRC covers the length too, so a torn length cannot point at valid-looking bytes.
      const crc = crc32c(payload, crc32c(lenAndPayload.subarray(0, 4)));
      if (crc !== view.getUint32(8, true)) break;
      // An intact record that does not apply is corruption of acknowledged data: fail loudly.
      this.state.apply(decodeTxn(payload));
      this.recordsInLog++;
      pos += RECORD_HEADER_BYTES + len;
    }
    return pos;
  }

  private loadSnapshot(bytes: Uint8Array): void {
    const r = new Reader(bytes);
    if (r.u32() !== SNAPSHOT_MAGIC) throw new CodecError('bad snapshot magic');
    if (r.u8() !== SNAPSHOT_VERSION) throw new CodecError('bad snapshot version');
    const crc = r.u32();
    const body = r.bytes(RECORD_MAX_BYTES);
    r.end();
    if (crc32c(body) !== crc) throw new CodecError('snapshot crc mismatch');
    const b = new Reader(body);
    this.logGen = b.u32();
    const mapBytes = b.bytes(RECORD_MAX_BYTES);
    const map = mapBytes.length === 0 ? undefined : decodeMap(mapBytes);
    const incs = [];
    for (let n = b.u32(); n > 0; n--) incs.push(decodeIncremental(b.bytes(RECORD_MAX_BYTES)));
    const kv = new Map<string, Uint8Array>();
    for (let n = b.u32(); n > 0; n--) kv.set(b.str(), copyBytes(b.bytes(RECORD_MAX_BYTES)));
    b.end();
    this.state.load(map, incs, kv);
  }

  commit(txn: MonStoreTxn, cb: Cb): void {
    this.queue.push({ txn, cb });
    this.pump();
  }

  private pump(): void {
    if (this.busy) return;
    const next = this.queue.shift();
    if (next === undefined) return;
    this.busy = true;
    this.commitOne(next.txn, (err) => {
      this.busy = false;
      next.cb(err);
      this.pump();
    });
  }

  private commitOne(txn: MonStoreTxn, cb: Cb): void {
    if (this.broken !== undefined) {
      this.env.setImmediate(() => cb(this.broken ?? null));
      return;
    }
    const fd = this.logFd;
    if (fd === undefined) {
      this.env.setImmediate(() => cb(new ClusterError('CLU_ERR_UNAVAILABLE', 'mon store not open')));
      return;
    }
    let staged: ReturnType<MonStoreState['stage']>;
    try {
      staged = this.state.stage(txn); // Validate before writing: an invalid txn never hits disk.
    } catch (e) {
      this.env.setImmediate(() => cb(e instanceof Error ? e : new Error(String(e))));
      return;
    }
    const record = encodeRecord(encodeTxn(txn));
    this.env.disk.pwrite(fd, record, this.logEndBytes, (err) => {
      if (err) return cb(this.fail(ioError('pwrite', err)));
      this.env.disk.fdatasync(fd, (err2) => {
        if (err2) return cb(this.fail(ioError('fdatasync', err2)));
        this.logEndBytes += record.length;
        this.recordsInLog++;
        this.state.install(staged);
        if (this.recordsInLog < this.snapshotEveryRecords) return cb(null);
        this.compact((err3) => cb(err3));
      });
    });
  }

  private fail(err: Error): Error {
    this.broken = err;
    this.env.log.error({ err }, 'mon store I/O failed; store is now read-only');
    return err;
  }

  /** Writes a snapshot of the current state, then starts a new log generation. */
  private compact(cb: Cb): void {
    const disk = this.env.disk;
    const nextGen = this.logGen + 1;
    const snap = this.encodeSnapshot(nextGen);
    writeFileAtomic(disk, this.dir, 'snapshot', snap, (err) => {
      if (err) return cb(this.fail(ioError('write snapshot', err)));
      const oldFd = this.logFd;
      const oldGen = this.logGen;
      this.logGen = nextGen;
      this.logEndBytes = 0;
      this.recordsInLog = 0;
      this.logFd = undefined;
      if (oldFd !== undefined) disk.close(oldFd, () => undefined);
      disk.unlink(joinPath(this.dir, logName(oldGen)), () => undefined);
      disk.open(joinPath(this.dir, logName(nextGen)), { create: true, truncate: true }, (err2, fd) => {
        if (err2) return cb(this.fail(ioError('open log', err2)));
        this.logFd = fd;
        disk.fsyncDir(this.dir, (err3) => cb(err3 ? this.fail(ioError('fsync dir', err3)) : null));
      });
    });
  }

  private encodeSnapshot(nextLogGen: number): Uint8Array {
    const body = new Writer(4096);
    body.u32(nextLogGen);
    const map = this.state.map;
    body.bytes(map === undefined ? new Uint8Array(0) : encodeMap(map));
    const incs = this.state.incrementals;
    body.u32(incs.length);
    for (const inc of incs) body.bytes(encodeIncremental(inc));
    const keys = this.state.kvKeys('');
    body.u32(keys.length);
    for (const k of keys) body.str(k).bytes(this.state.kv.get(k) ?? new Uint8Array(0));
    const bodyBytes = body.finish();
    return new Writer(bodyBytes.length + 16).u32(SNAPSHOT_MAGIC).u8(SNAPSHOT_VERSION).u32(crc32c(bodyBytes)).bytes(bodyBytes).finish().slice();
  }

  close(cb: Cb): void {
    const fd = this.logFd;
    this.logFd = undefined;
    if (fd === undefined) {
      this.env.setImmediate(() => cb(null));
      return;
    }
    this.env.disk.close(fd, (err) => cb(err ? ioError('close', err) : null));
  }
}

function logName(gen: number): string {
  return `log.${String(gen).padStart(8, '0')}`;
}

function logGenOf(name: string): number | undefined {
  const m = /^log\.(\d{8})$/.exec(name);
  return m === null ? undefined : Number(m[1]);
}

function encodeRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, RECORD_MAGIC, true);
  view.setUint32(4, payload.length, true);
  out.set(payload, RECORD_HEADER_BYTES);
  view.setUint32(8, crc32c(payload, crc32c(out.subarray(4, 8))), true);
  return out;
}

/** Encodes a transaction payload (see the module comment). */
export function encodeTxn(txn: MonStoreTxn): Uint8Array {
  const w = new Writer(256);
  w.bool(txn.incremental !== undefined);
  if (txn.incremental !== undefined) w.bytes(encodeIncremental(txn.incremental));
  const puts = txn.kvPut ?? [];
  w.u32(puts.length);
  for (const [k, v] of puts) w.str(k).bytes(v);
  const dels = txn.kvDelete ?? [];
  w.u32(dels.length);
  for (const k of dels) w.str(k);
  return w.finish();
}

/** Decodes `encodeTxn` output. */
export function decodeTxn(bytes: Uint8Array): MonStoreTxn {
  const r = new Reader(bytes);
  const incremental = r.bool() ? decodeIncremental(r.bytes(RECORD_MAX_BYTES)) : undefined;
  const kvPut: [string, Uint8Array][] = [];
  for (let n = r.u32(); n > 0; n--) kvPut.push([r.str(), copyBytes(r.bytes(RECORD_MAX_BYTES))]);
  const kvDelete: string[] = [];
  for (let n = r.u32(); n > 0; n--) kvDelete.push(r.str());
  r.end();
  return incremental === undefined ? { kvPut, kvDelete } : { incremental, kvPut, kvDelete };
}

function ioError(what: string, err: { code?: string; message: string }): ClusterError {
  return new ClusterError(clusterCodeFromErrno(err.code), `mon store ${what}: ${err.message}`, { cause: err });
}

function decodeError(what: string, err: unknown): ClusterError {
  return new ClusterError('CLU_ERR_DECODE', `mon store ${what} is corrupt`, { cause: err });
}
