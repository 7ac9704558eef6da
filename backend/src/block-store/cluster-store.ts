/**
 * The `BlockStore` the vhost daemon consumes, over a cluster image (cluster/src/client/image.ts).
 * The image already speaks the same shape (Uint8Array[] views of guest memory, callbacks), so
 * this adapter only opens/closes the connection and maps errors to plain `Error`s with the
 * cluster code kept in `code` (the executor's `statusFor` maps any error to IOERR).
 *
 * Copies: writes pass the guest's views to the messenger (none); reads copy the reply chunks
 * into the guest's views (one).
 */
import type { ClusterClient } from '../../../cluster/src/client/cluster-client.js';
import type { Image } from '../../../cluster/src/client/image.js';
import type { BlockStore, IoCallback } from './block-store.js';

/** A BlockStore over an open image; `close` closes the image (and the client, if owned). */
export class ClusterStore implements BlockStore {
  readonly supportsDiscard = true;

  private readonly serialOverride: string | undefined;

  constructor(private readonly image: Image, private readonly client: ClusterClient | null = null, serial?: string) {
    this.serialOverride = serial;
  }

  /**
   * Opens `pool/name` on a connected client (read-only or with the exclusive lock). `leaseMs`
   * is the lock's lease (how long a crashed holder blocks the next writer); `serial` overrides
   * the GET_ID answer (default: the image's `strata-<id>`).
   */
  static open(client: ClusterClient, spec: { pool: string; image: string; readOnly: boolean; ownClient?: boolean; leaseMs?: number; serial?: string }, cb: (err: Error | null, store?: ClusterStore) => void): void {
    const images = client.images(spec.pool);
    if (images instanceof Error) { cb(images); return; }
    images.open(spec.image, { readOnly: spec.readOnly, ...(spec.leaseMs === undefined ? {} : { leaseMs: spec.leaseMs }) }, (err, img) => {
      if (err !== null || img === undefined) { cb(err ?? new Error('open failed')); return; }
      cb(null, new ClusterStore(img, spec.ownClient === true ? client : null, spec.serial));
    });
  }

  get sizeBytes(): number { return this.image.sizeBytes; }
  get readOnly(): boolean { return this.image.readOnly; }
  get serial(): string { return this.serialOverride ?? this.image.serial; }
  /** The image's name and id (for the daemon's status). */
  get imageName(): string { return this.image.name; }
  get imageId(): string { return this.image.id; }

  readv(offsetBytes: number, views: Uint8Array[], cb: IoCallback): void { this.image.readv(offsetBytes, views, cb); }
  writev(offsetBytes: number, views: Uint8Array[], cb: IoCallback): void { this.image.writev(offsetBytes, views, cb); }
  /** Writes are durable when acknowledged; flush is a barrier over earlier writes. */
  flush(cb: IoCallback): void { this.image.flush(cb); }
  discard(offsetBytes: number, lengthBytes: number, cb: IoCallback): void { this.image.discard(offsetBytes, lengthBytes, cb); }
  writeZeroes(offsetBytes: number, lengthBytes: number, unmap: boolean, cb: IoCallback): void { this.image.writeZeroes(offsetBytes, lengthBytes, unmap, cb); }
  resize(sizeBytes: number, cb: IoCallback): void { this.image.resize(sizeBytes, cb); }

  close(cb: IoCallback): void {
    this.image.close((err) => {
      this.client?.close();
      cb(err);
    });
  }
}
