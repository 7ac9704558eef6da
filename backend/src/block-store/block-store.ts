/**
 * What the virtio-blk device needs from storage. The file store implements it now; the
 * cluster image implements it later (cluster-store.ts). Data arrives and leaves as views
 * into guest memory: implementations must not keep them after calling back.
 *
 * Callbacks, not Promises, on the data path: one less allocation and microtask per I/O.
 */
export type IoCallback = (err: Error | null) => void;

export interface BlockStore {
  /** Capacity in bytes (a multiple of 512). */
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** Whether discard frees space (false: discard completes as a no-op). */
  readonly supportsDiscard: boolean;
  /** Up to 20 ASCII bytes, the GET_ID answer. */
  readonly serial: string;
  readv(offsetBytes: number, views: Uint8Array[], cb: IoCallback): void;
  writev(offsetBytes: number, views: Uint8Array[], cb: IoCallback): void;
  /** Makes every completed write durable. */
  flush(cb: IoCallback): void;
  /** Frees the range; reads of it return zeros afterwards. */
  discard(offsetBytes: number, lengthBytes: number, cb: IoCallback): void;
  /** Zeroes the range; `unmap` allows freeing space doing so. */
  writeZeroes(offsetBytes: number, lengthBytes: number, unmap: boolean, cb: IoCallback): void;
  close(cb: IoCallback): void;
  /** Grows the store to `sizeBytes` (online resize); absent when the store cannot grow. */
  resize?(sizeBytes: number, cb: IoCallback): void;
}
