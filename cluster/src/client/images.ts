/**
 * Image management in a pool (librbd's `RBD` class): create, list, open, rename, remove, and
 * a quick `info` (docs/images.md). The pool's `strata_directory` object maps names to ids
 * (attrs `name.<n>` and `id.<id>`, changed by atomic op vectors with assertions, so two
 * clients creating or renaming to the same name cannot both win).
 *
 * ```
 *  create:  [create exclusive, setattr meta] on strata_header.<id>
 *           → [assert name.<n> absent, setattr name.<n> = id, setattr id.<id> = n] on the directory
 *           (EXISTS → the header is removed again)
 *  remove:  open for write (takes the lock: a busy image is refused) → remove data objects
 *           → remove the header → drop the directory entries
 *  rename:  [assert name.<old> == id, assert name.<new> absent, rmattr, setattr, setattr]
 * ```
 */
import type { Logger } from 'pino';
import { ClusterError } from '../common/errors.js';
import type { PoolId } from '../common/ids.js';
import type { Env } from '../env/env.js';
import { ASSERT_F_ABSENT, OSD_FLAG_FAILOK } from '../osd/osd-protocol.js';
import {
  DIRECTORY_OBJECT, FEATURE_EXCLUSIVE_LOCK, FEATURE_STRIPING, META_ATTR, dataObject, decodeMeta, dirIdAttr, dirNameAttr,
  encodeMeta, headerObject, imageNameError,
} from './image-format.js';
import type { ImageMeta } from './image-format.js';
import { Image, SWEEP_WINDOW, forEachLimited } from './image.js';
import type { ImageCallback, ImageInfo } from './image.js';
import { ImageLock } from './image-lock.js';
import { breakImageLock, readImageLock } from './image-lock-admin.js';
import type { BreakLockResult, ImageLockInfo, LockAdminTarget } from './image-lock-admin.js';
import type { Objecter } from './objecter.js';
import { DEFAULT_LAYOUT, layoutError, numObjects } from './striper.js';
import type { FileLayout } from './striper.js';

export interface CreateImageOptions {
  sizeBytes: number;
  layout?: Partial<FileLayout>;
  features?: number;
}

export interface OpenImageOptions {
  readOnly?: boolean;
  /** Exclusive-lock lease (default 30 s). */
  leaseMs?: number;
}

export const DEFAULT_LEASE_MS = 30_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The images of one pool. */
export class Images {
  private readonly log: Logger;

  constructor(private readonly env: Env, private readonly objecter: Objecter, readonly pool: PoolId) {
    this.log = env.log.child({ component: 'images', pool });
  }

  /** Creates an image; `CLU_ERR_EXISTS` when the name is taken. */
  create(name: string, o: CreateImageOptions, cb: (err: ClusterError | null, id?: string) => void): void {
    const objectSize = o.layout?.objectSize ?? DEFAULT_LAYOUT.objectSize;
    const layout: FileLayout = { objectSize, stripeUnit: o.layout?.stripeUnit ?? objectSize, stripeCount: o.layout?.stripeCount ?? 1 };
    const bad = imageNameError(name) ?? layoutError(layout) ?? sizeError(o.sizeBytes);
    if (bad !== null) { this.env.setImmediate(() => cb(new ClusterError('CLU_ERR_INVALID', bad))); return; }
    const id = Buffer.from(this.env.rng.bytes(6)).toString('hex');
    const striping = layout.stripeCount > 1 || layout.stripeUnit !== layout.objectSize ? FEATURE_STRIPING : 0;
    const meta: ImageMeta = { sizeBytes: o.sizeBytes, layout, features: (o.features ?? FEATURE_EXCLUSIVE_LOCK) | striping, createdMs: this.env.wallMs() };
    this.objecter.submit({ pool: this.pool, objectName: headerObject(id), ops: [{ op: 'create', exclusive: true }, { op: 'setattr', name: META_ATTR, value: encodeMeta(meta) }] }, (err) => {
      if (err !== null) { cb(err); return; }
      this.objecter.submit({
        pool: this.pool, objectName: DIRECTORY_OBJECT, ops: [
          { op: 'assert_attr', name: dirNameAttr(name), value: new Uint8Array(0), mode: ASSERT_F_ABSENT },
          { op: 'setattr', name: dirNameAttr(name), value: enc.encode(id) },
          { op: 'setattr', name: dirIdAttr(id), value: enc.encode(name) },
        ],
      }, (err2) => {
        if (err2 === null) { this.log.info({ image: name, id }, 'image created'); cb(null, id); return; }
        const final = err2.code === 'CLU_ERR_CANCELLED' ? new ClusterError('CLU_ERR_EXISTS', `image ${name} already exists`) : err2;
        this.objecter.submit({ pool: this.pool, objectName: headerObject(id), ops: [{ op: 'remove' }] }, () => cb(final));
      });
    });
  }

  /** Image names, sorted. */
  list(cb: (err: ClusterError | null, names?: string[]) => void): void {
    this.objecter.submit({ pool: this.pool, objectName: DIRECTORY_OBJECT, ops: [{ op: 'getattrs' }] }, (err, res) => {
      if (err?.code === 'CLU_ERR_NOT_FOUND') { cb(null, []); return; }
      const out = res?.reply.outs[0];
      if (err !== null || out?.kind !== 'attr') { cb(err ?? new ClusterError('CLU_ERR_IO', 'bad getattrs reply')); return; }
      const names = dec.decode(out.value).split('\n').filter((a) => a.startsWith('name.')).map((a) => a.slice(5));
      cb(null, names.sort());
    });
  }

  /** The id of image `name`; `CLU_ERR_NOT_FOUND` when unknown. */
  lookup(name: string, cb: (err: ClusterError | null, id?: string) => void): void {
    this.objecter.submit({ pool: this.pool, objectName: DIRECTORY_OBJECT, ops: [{ op: 'getattr', name: dirNameAttr(name) }], flags: OSD_FLAG_FAILOK }, (err, res) => {
      const out = res?.reply.outs[0];
      if ((err === null || err.code === 'CLU_ERR_NOT_FOUND') && (out === undefined || out.kind !== 'attr' || out.result !== 0)) {
        cb(new ClusterError('CLU_ERR_NOT_FOUND', `image ${name} does not exist`));
        return;
      }
      if (err !== null || out?.kind !== 'attr') { cb(err); return; }
      cb(null, dec.decode(out.value));
    });
  }

  private readMeta(name: string, id: string, cb: (err: ClusterError | null, meta?: ImageMeta) => void): void {
    this.objecter.submit({ pool: this.pool, objectName: headerObject(id), ops: [{ op: 'getattr', name: META_ATTR }] }, (err, res) => {
      const out = res?.reply.outs[0];
      if (err?.code === 'CLU_ERR_NOT_FOUND') { cb(new ClusterError('CLU_ERR_NOT_FOUND', `image ${name}: header ${headerObject(id)} missing`)); return; }
      if (err !== null || out?.kind !== 'attr') { cb(err ?? new ClusterError('CLU_ERR_IO', 'bad header reply')); return; }
      try { cb(null, decodeMeta(out.value)); } catch (e) { cb(new ClusterError('CLU_ERR_DECODE', `image ${name}: bad header`, { cause: e })); }
    });
  }

  /** Opens an image; for write it takes the exclusive lock (`CLU_ERR_BUSY` if another writer has it). */
  open(name: string, o: OpenImageOptions, cb: (err: ClusterError | null, image?: Image) => void): void {
    this.lookup(name, (err, id) => {
      if (err !== null || id === undefined) { cb(err); return; }
      this.readMeta(name, id, (err2, meta) => {
        if (err2 !== null || meta === undefined) { cb(err2); return; }
        const log = this.log.child({ image: name, id });
        if (o.readOnly === true) { cb(null, new Image({ env: this.env, log, objecter: this.objecter, pool: this.pool, name, id, meta, lock: null })); return; }
        let image: Image | undefined;
        const lock = new ImageLock({
          env: this.env, log, objecter: this.objecter, pool: this.pool, header: headerObject(id), leaseMs: o.leaseMs ?? DEFAULT_LEASE_MS,
          onLost: (e) => image?.setFenced(e),
        });
        lock.acquire((err3) => {
          if (err3 !== null) { cb(err3); return; }
          image = new Image({ env: this.env, log, objecter: this.objecter, pool: this.pool, name, id, meta, lock });
          cb(null, image);
        });
      });
    });
  }

  /** Info with used bytes (opens read-only). */
  info(name: string, cb: (err: ClusterError | null, info?: ImageInfo) => void): void {
    this.open(name, { readOnly: true }, (err, img) => {
      if (err !== null || img === undefined) { cb(err); return; }
      img.stat(cb);
    });
  }

  /** Renames; `CLU_ERR_EXISTS` when the new name is taken, `CLU_ERR_NOT_FOUND` when the old is unknown. */
  rename(from: string, to: string, cb: ImageCallback): void {
    const bad = imageNameError(to);
    if (bad !== null) { this.env.setImmediate(() => cb(new ClusterError('CLU_ERR_INVALID', bad))); return; }
    this.lookup(from, (err, id) => {
      if (err !== null || id === undefined) { cb(err); return; }
      this.objecter.submit({
        pool: this.pool, objectName: DIRECTORY_OBJECT, ops: [
          { op: 'assert_attr', name: dirNameAttr(from), value: enc.encode(id), mode: 0 },
          { op: 'assert_attr', name: dirNameAttr(to), value: new Uint8Array(0), mode: ASSERT_F_ABSENT },
          { op: 'rmattr', name: dirNameAttr(from) },
          { op: 'setattr', name: dirNameAttr(to), value: enc.encode(id) },
          { op: 'setattr', name: dirIdAttr(id), value: enc.encode(to) },
        ],
      }, (err2) => cb(err2?.code === 'CLU_ERR_CANCELLED' ? new ClusterError('CLU_ERR_EXISTS', `image ${to} already exists (or ${from} changed)`) : err2));
    });
  }

  /** Removes an image and all its data objects; refuses an image another writer has open. */
  remove(name: string, cb: ImageCallback, o: { leaseMs?: number } = {}): void {
    this.lookup(name, (err, id) => {
      if (err !== null || id === undefined) { cb(err); return; }
      const dropEntry = (): void => this.objecter.submit({
        pool: this.pool, objectName: DIRECTORY_OBJECT, ops: [
          { op: 'assert_attr', name: dirNameAttr(name), value: enc.encode(id), mode: 0 },
          { op: 'rmattr', name: dirNameAttr(name) }, { op: 'rmattr', name: dirIdAttr(id) },
        ],
      }, (e) => cb(e?.code === 'CLU_ERR_CANCELLED' ? null : e));
      this.open(name, { leaseMs: o.leaseMs ?? DEFAULT_LEASE_MS }, (err2, img) => {
        // A missing header (interrupted earlier remove): only the directory entry is left.
        if (err2?.code === 'CLU_ERR_NOT_FOUND') { dropEntry(); return; }
        if (err2 !== null || img === undefined) { cb(err2); return; }
        const count = numObjects(img.layout, img.sizeBytes);
        forEachLimited(this.env, count, SWEEP_WINDOW, (i, d) => {
          this.objecter.submit({ pool: this.pool, objectName: dataObject(id, i), ops: [{ op: 'remove' }] }, (e) => d(e?.code === 'CLU_ERR_NOT_FOUND' ? null : e));
        }, (err3) => {
          if (err3 !== null) { img.close(() => cb(err3)); return; }
          this.objecter.submit({ pool: this.pool, objectName: headerObject(id), ops: [{ op: 'remove' }] }, (err4) => {
            if (err4 !== null && err4.code !== 'CLU_ERR_NOT_FOUND') { cb(err4); return; }
            this.log.info({ image: name, id, objects: count }, 'image removed');
            dropEntry();
          });
        });
      });
    });
  }

  /** Who holds the image's exclusive lock, and its fencing epoch (`strata image lock ls`). */
  lockInfo(name: string, cb: (err: ClusterError | null, info?: ImageLockInfo) => void): void {
    this.lockTarget(name, (err, t) => { if (err !== null || t === undefined) cb(err); else readImageLock(t, cb); });
  }

  /**
   * Breaks the lock of a live holder (`strata image lock break`): blocklists it, then removes
   * its lock and bumps the fencing epoch (image-lock-admin.ts). `holder` picks one instance.
   */
  breakLock(name: string, holder: string | undefined, cb: (err: ClusterError | null, r?: BreakLockResult) => void): void {
    this.lockTarget(name, (err, t) => { if (err !== null || t === undefined) cb(err); else breakImageLock(t, holder, cb); });
  }

  private lockTarget(name: string, cb: (err: ClusterError | null, t?: LockAdminTarget) => void): void {
    this.lookup(name, (err, id) => {
      if (err !== null || id === undefined) { cb(err); return; }
      cb(null, { env: this.env, log: this.log.child({ image: name, id }), objecter: this.objecter, pool: this.pool, image: name, header: headerObject(id) });
    });
  }

  // ----- Promise facade. -----
  createAsync(name: string, o: CreateImageOptions): Promise<string> {
    return new Promise((resolve, reject) => this.create(name, o, (err, id) => (err || id === undefined ? reject(err) : resolve(id))));
  }
  listAsync(): Promise<string[]> {
    return new Promise((resolve, reject) => this.list((err, names) => (err || names === undefined ? reject(err) : resolve(names))));
  }
  openAsync(name: string, o: OpenImageOptions = {}): Promise<Image> {
    return new Promise((resolve, reject) => this.open(name, o, (err, img) => (err || img === undefined ? reject(err) : resolve(img))));
  }
  infoAsync(name: string): Promise<ImageInfo> {
    return new Promise((resolve, reject) => this.info(name, (err, info) => (err || info === undefined ? reject(err) : resolve(info))));
  }
  renameAsync(from: string, to: string): Promise<void> {
    return new Promise((resolve, reject) => this.rename(from, to, (err) => (err ? reject(err) : resolve())));
  }
  lockInfoAsync(name: string): Promise<ImageLockInfo> {
    return new Promise((resolve, reject) => this.lockInfo(name, (err, info) => (err || info === undefined ? reject(err) : resolve(info))));
  }
  breakLockAsync(name: string, holder?: string): Promise<BreakLockResult> {
    return new Promise((resolve, reject) => this.breakLock(name, holder, (err, r) => (err || r === undefined ? reject(err) : resolve(r))));
  }
  removeAsync(name: string): Promise<void> {
    return new Promise((resolve, reject) => this.remove(name, (err) => (err ? reject(err) : resolve())));
  }
}

function sizeError(sizeBytes: number): string | null {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) return `size ${sizeBytes} is not a non-negative integer`;
  if (sizeBytes % 512 !== 0) return `size ${sizeBytes} is not a multiple of 512`;
  return null;
}
