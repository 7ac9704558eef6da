/**
 * The virtio-blk device: turns popped chains into BlockStore calls and completions.
 *
 * Hot loop (GUIDE §2): on a kick, pop every available chain, start each request at once
 * (completions arrive out of order, which virtio allows), then re-arm notifications and
 * re-check for the EVENT_IDX race. Call signals are coalesced: completions that land in one
 * turn of the event loop produce at most one interrupt per queue (flushed in setImmediate,
 * and only when needsNotification() says the driver wants one).
 *
 * Error layers (GUIDE §6): a bad request completes with IOERR/UNSUPP; a structurally broken
 * ring marks the whole device broken (logged once, no further ring access) and the daemon
 * keeps serving other connections.
 */
import { EventEmitter } from 'eventemitter3';
import type { Logger } from 'pino';
import type { BlockStore } from '../block-store/block-store.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { MemoryTable } from '../memory/mapping.js';
import { QueueError } from '../vhost-user/errors.js';
import type { Chain, SplitQueue } from '../virtio/split-queue.js';
import type { Vring } from '../virtio/vring.js';
import { VIRTIO_BLK_F_CONFIG_WCE, hasFeature } from '../vhost-user/features.js';
import { CONFIG_WRITEBACK_OFFSET, blkDeviceFeatures, encodeBlkConfig, type BlkConfig } from './config.js';
import {
  SECTOR_SIZE,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  parseBlkRequest,
  type BlkLimits,
  type BlkRequest,
} from './request.js';

export interface BlkDeviceOptions {
  store: BlockStore;
  numQueues: number;
  log: Logger;
  /** Report writeback caching (FLUSH needed for durability). Default true. */
  writeback?: boolean;
}

/** A zeroed statistics record. */
export const emptyStats = (): BlkDeviceStats => ({ reads: 0, writes: 0, flushes: 0, discards: 0, writeZeroes: 0, errors: 0, readBytes: 0, writtenBytes: 0 });

/** Adds `from` into `into`, field by field. */
export function addStats(into: BlkDeviceStats, from: BlkDeviceStats): void {
  for (const k of Object.keys(into) as (keyof BlkDeviceStats)[]) into[k] += from[k];
}

export interface BlkDeviceStats {
  reads: number;
  writes: number;
  flushes: number;
  discards: number;
  writeZeroes: number;
  errors: number;
  readBytes: number;
  writtenBytes: number;
}

/** The largest split queue the guest may configure. */
export const MAX_QUEUE_SIZE = 1024;
const MAX_SEGMENTS = 32;
const MAX_RANGE_SECTORS = 1 << 22; // 2 GiB per discard/write-zeroes segment

/** Device-level events for the control plane. */
interface BlkDeviceEvents {
  broken: [err: QueueError];
}

export class BlkDevice extends EventEmitter<BlkDeviceEvents> {
  readonly deviceFeatures: bigint;
  readonly maxQueueSize = MAX_QUEUE_SIZE;
  readonly stats: BlkDeviceStats = emptyStats();
  broken = false;
  private writeback: boolean;
  private ackedFeatures = 0n;
  private readonly limits: BlkLimits & { capacitySectors: number };
  private readonly notifyQueue: Vring[] = [];
  private notifyScheduled = false;
  private memoryTable: MemoryTable | null = null;
  private readonly idBytes: Uint8Array;

  constructor(private readonly opts: BlkDeviceOptions) {
    super();
    this.deviceFeatures = blkDeviceFeatures({ readOnly: opts.store.readOnly, numQueues: opts.numQueues });
    this.writeback = opts.writeback ?? true;
    this.limits = {
      capacitySectors: Math.floor(opts.store.sizeBytes / SECTOR_SIZE),
      readOnly: opts.store.readOnly,
      maxDiscardSectors: MAX_RANGE_SECTORS,
      maxDiscardSegments: MAX_SEGMENTS,
      maxWriteZeroesSectors: MAX_RANGE_SECTORS,
      maxWriteZeroesSegments: MAX_SEGMENTS,
    };
    this.idBytes = new Uint8Array(VIRTIO_BLK_ID_BYTES);
    this.idBytes.set(new TextEncoder().encode(opts.store.serial).subarray(0, VIRTIO_BLK_ID_BYTES));
  }

  get numQueues(): number {
    return this.opts.numQueues;
  }

  /** Connects the device to the connection's memory table. */
  attach(memoryTable: MemoryTable): void {
    this.memoryTable = memoryTable;
  }

  setFeatures(acked: bigint): void {
    this.ackedFeatures = acked;
  }

  config(): BlkConfig {
    return {
      capacitySectors: this.limits.capacitySectors,
      sizeMaxBytes: 1 << 20,
      segMax: MAX_QUEUE_SIZE - 2,
      blkSizeBytes: SECTOR_SIZE,
      writeback: this.writeback,
      numQueues: this.opts.numQueues,
      maxDiscardSectors: MAX_RANGE_SECTORS,
      maxDiscardSegments: MAX_SEGMENTS,
      discardSectorAlignment: 1,
      maxWriteZeroesSectors: MAX_RANGE_SECTORS,
      maxWriteZeroesSegments: MAX_SEGMENTS,
      writeZeroesMayUnmap: true,
    };
  }

  /** `size` bytes of config space from `offset` (zeros past our fields). */
  getConfig(offset: number, size: number): Uint8Array {
    const out = new Uint8Array(size);
    const cfg = encodeBlkConfig(this.config());
    if (offset < cfg.length) out.set(cfg.subarray(offset, Math.min(cfg.length, offset + size)));
    return out;
  }

  /** Sets the cache mode (a guest's SET_CONFIG relayed to a queue worker). */
  setWriteback(on: boolean): void {
    this.writeback = on;
  }

  get writebackEnabled(): boolean {
    return this.writeback;
  }

  /** Only `writeback` is writable, and only with CONFIG_WCE (VIRTIO 1.2 §5.2.5). */
  setConfig(offset: number, data: Uint8Array): boolean {
    if (offset !== CONFIG_WRITEBACK_OFFSET || data.length !== 1) return false;
    if (!hasFeature(this.ackedFeatures, VIRTIO_BLK_F_CONFIG_WCE)) return false;
    this.writeback = data[0] !== 0;
    this.opts.log.info({ writeback: this.writeback }, 'cache mode changed by the guest');
    return true;
  }

  /** Pops and starts every available request on `vring` (the kick handler). */
  processQueue(vring: Vring): void {
    const queue = vring.queue;
    const mem = this.memoryTable?.current ?? null;
    if (this.broken || queue === null || !queue.bound || mem === null || !vring.started || !vring.enabled) return;
    for (;;) {
      queue.disableNotification();
      for (;;) {
        const chain = queue.popChain(mem);
        if (chain === null) break;
        if (!('headIndex' in chain)) return this.markBroken(chain);
        // Each chain holds at least one descriptor until it is used, so a correct driver never
        // has more than `size` outstanding; a hostile one can re-publish heads still in flight
        // (libvhost-user vu_queue_pop: "Virtqueue size exceeded").
        if (vring.inflight >= queue.size) {
          return this.markBroken(new QueueError('VQ_ERR_TOO_MANY_INFLIGHT', `more than ${queue.size} requests made available on a queue of ${queue.size}`));
        }
        this.startRequest(vring, queue, mem, chain);
      }
      if (!queue.enableNotification()) return;
    }
  }

  private markBroken(err: QueueError): void {
    if (this.broken) return;
    this.broken = true;
    this.opts.log.error({ code: err.code, err }, 'guest broke the virtqueue protocol; device stopped');
    this.emit('broken', err);
  }

  /**
   * Resubmits heads that were in flight when the previous back-end died (oldest first), then
   * processes whatever else is queued (vhost-user.rst "Inflight I/O tracking").
   */
  resubmit(vring: Vring, heads: readonly number[]): void {
    const queue = vring.queue;
    const mem = this.memoryTable?.current ?? null;
    if (this.broken || queue === null || mem === null) return;
    for (const head of heads) {
      const chain = queue.readChain(mem, head);
      if (!('headIndex' in chain)) return this.markBroken(chain);
      this.startRequest(vring, queue, mem, chain);
    }
  }

  /** Changes the capacity (online resize); requests past the new end fail from now on. */
  setCapacity(sizeBytes: number): void {
    this.limits.capacitySectors = Math.floor(sizeBytes / SECTOR_SIZE);
  }

  private startRequest(vring: Vring, queue: SplitQueue, mem: GuestMemory, chain: Chain): void {
    vring.inflight++;
    const inflightState = vring.inflightState;
    inflightState?.markInflight(chain.headIndex);
    if (vring.inflight > queue.size) throw new Error(`invariant: ${vring.inflight} requests in flight on a queue of ${queue.size}`);
    this.memoryTable!.pin(mem);
    const req = parseBlkRequest(chain, mem, this.limits);
    const complete = (statusCode: number, writtenBytes: number): void => {
      if (req.status !== null && req.status.length === 1) req.status[0] = statusCode;
      if (queue.bound) {
        queue.addUsed(chain.headIndex, writtenBytes);
        inflightState?.markDone(chain.headIndex, queue.nextUsed);
      }
      this.complete(vring, mem);
    };
    if (req.kind === 'error') {
      this.stats.errors++;
      if (this.opts.log.isLevelEnabled('debug')) this.opts.log.debug({ code: req.code, reason: req.message }, 'bad request');
      return complete(req.statusCode, req.status === null ? 0 : 1);
    }
    this.execute(req, complete);
  }

  private execute(req: BlkRequest, complete: (statusCode: number, writtenBytes: number) => void): void {
    const store = this.opts.store;
    const offsetBytes = req.sector * SECTOR_SIZE;
    const done = (err: Error | null, writtenBytes = 1): void => {
      if (err) {
        this.stats.errors++;
        this.opts.log.warn({ err, type: req.type, sector: req.sector }, 'I/O error');
        return complete(VIRTIO_BLK_S_IOERR, 1);
      }
      complete(VIRTIO_BLK_S_OK, writtenBytes);
    };
    switch (req.type) {
      case VIRTIO_BLK_T_IN:
        this.stats.reads++;
        this.stats.readBytes += req.dataBytes;
        return store.readv(offsetBytes, req.data, (err) => done(err, req.dataBytes + 1));
      case VIRTIO_BLK_T_OUT:
        this.stats.writes++;
        this.stats.writtenBytes += req.dataBytes;
        return store.writev(offsetBytes, req.data, (err) => {
          // Writethrough (guest turned the cache off): durable before completion.
          if (err || this.writeback) return done(err);
          store.flush((e) => done(e));
        });
      case VIRTIO_BLK_T_FLUSH:
        this.stats.flushes++;
        return store.flush((err) => done(err));
      case VIRTIO_BLK_T_GET_ID: {
        let at = 0;
        for (const v of req.data) {
          if (at >= VIRTIO_BLK_ID_BYTES) break;
          const n = Math.min(v.length, VIRTIO_BLK_ID_BYTES - at);
          v.set(this.idBytes.subarray(at, at + n));
          at += n;
        }
        return done(null, at + 1);
      }
      case VIRTIO_BLK_T_DISCARD:
      case VIRTIO_BLK_T_WRITE_ZEROES:
        return this.runRanges(req, 0, (err) => done(err));
      default:
        throw new Error(`invariant: parser passed request type ${req.type}`);
    }
  }

  private runRanges(req: BlkRequest, i: number, cb: (err: Error | null) => void): void {
    const range = req.ranges[i];
    if (range === undefined) return cb(null);
    const next = (err: Error | null): void => (err ? cb(err) : this.runRanges(req, i + 1, cb));
    const offsetBytes = range.sector * SECTOR_SIZE;
    const lengthBytes = range.sectorCount * SECTOR_SIZE;
    if (req.type === VIRTIO_BLK_T_DISCARD) {
      this.stats.discards++;
      this.opts.store.discard(offsetBytes, lengthBytes, next);
    } else {
      this.stats.writeZeroes++;
      this.opts.store.writeZeroes(offsetBytes, lengthBytes, range.unmap, next);
    }
  }

  private complete(vring: Vring, mem: GuestMemory): void {
    this.memoryTable!.unpin(mem);
    // Why mark before requestDone: the last completion of a drain wakes the idle waiters at
    // once (disconnect teardown, GET_VRING_BASE), which may reset the ring and close its call
    // fd before our setImmediate runs; Vring.reset() signals a pending completion, so it must
    // already be marked. Otherwise the guest never hears of that request (seen as a guest hung
    // after a graceful SIGTERM restart).
    if (!vring.notifyPending) {
      vring.notifyPending = true;
      this.notifyQueue.push(vring);
    }
    if (!this.notifyScheduled) {
      this.notifyScheduled = true;
      setImmediate(this.flushNotifications);
    }
    vring.requestDone();
  }

  /** Sends at most one call signal per queue for the completions of this loop turn. */
  private readonly flushNotifications = (): void => {
    this.notifyScheduled = false;
    for (const vring of this.notifyQueue) {
      vring.notifyPending = false;
      const queue = vring.queue;
      if (queue !== null && queue.bound && queue.needsNotification()) {
        const err = vring.signalCall();
        if (err !== null) this.opts.log.warn({ queue: vring.index, err }, 'call fd cannot be written; dropped it, the guest gets no more interrupts on this queue');
      }
    }
    this.notifyQueue.length = 0;
  };
}
