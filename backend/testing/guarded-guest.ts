/**
 * Test fixtures for the device side without a socket: guest RAM surrounded by guard bytes, a
 * BlockStore that keeps the disk in memory and checks every view it is handed, and a wired
 * `BlkDevice` + `Vring` + `MemoryTable` driven by calling `processQueue` directly.
 *
 * The guard bytes and the view checks are how the tests prove "the back-end never reads or
 * writes outside the guest's regions": every view the store receives must lie inside the
 * region's window of the backing buffer, and the guard bytes on both sides must be unchanged
 * after the run.
 */
import { pino, type Logger } from 'pino';
import { BlkDevice } from '../src/blk/device.js';
import type { BlockStore, IoCallback } from '../src/block-store/block-store.js';
import type { GuestMemory } from '../src/memory/guest-memory.js';
import { MemoryTable } from '../src/memory/mapping.js';
import { SplitQueue } from '../src/virtio/split-queue.js';
import { Vring } from '../src/virtio/vring.js';
import { MockGuest, MockSplitQueue } from './mock-driver.js';

export const GUARD_FILL = 0xa5;

export class GuardedGuest {
  /** The whole backing buffer: guard | guest RAM | guard. */
  readonly outer: Uint8Array;
  readonly guest: MockGuest;
  readonly memory: GuestMemory;

  constructor(
    readonly sizeBytes: number,
    readonly gpaBase = 0x10000,
    readonly guardBytes = 4096,
  ) {
    this.outer = new Uint8Array(guardBytes + sizeBytes + guardBytes);
    this.outer.fill(GUARD_FILL, 0, guardBytes);
    this.outer.fill(GUARD_FILL, guardBytes + sizeBytes);
    this.guest = new MockGuest(this.outer.subarray(guardBytes, guardBytes + sizeBytes), gpaBase);
    this.memory = this.guest.memory();
  }

  /** True when `v` is a view of guest RAM (not of a guard, not of another buffer). */
  contains(v: Uint8Array): boolean {
    if (v.buffer !== this.outer.buffer) return false;
    const start = v.byteOffset - this.outer.byteOffset;
    return start >= this.guardBytes && start + v.byteLength <= this.guardBytes + this.sizeBytes;
  }

  /** Offset of the first modified guard byte, or -1 when both guards are intact. */
  damagedGuard(): number {
    for (let i = 0; i < this.guardBytes; i++) if (this.outer[i] !== GUARD_FILL) return i;
    for (let i = this.guardBytes + this.sizeBytes; i < this.outer.length; i++) if (this.outer[i] !== GUARD_FILL) return i;
    return -1;
  }
}

export type StoreMode = 'sync' | 'async' | 'gated';

export interface StoreCall {
  op: 'readv' | 'writev' | 'flush' | 'discard' | 'writeZeroes';
  offsetBytes: number;
  lengthBytes: number;
}

/**
 * An in-memory BlockStore. Every view handed to readv/writev must satisfy `checkView`
 * (otherwise the call is recorded in `violations`), reads fill the views from the disk
 * image, writes copy into it. `mode` decides when callbacks run: at once, on the next turn
 * (setImmediate) or only when `release()` is called.
 */
export class RecordingStore implements BlockStore {
  readonly readOnly: boolean;
  readonly supportsDiscard = true;
  readonly serial: string;
  readonly disk: Uint8Array;
  readonly calls: StoreCall[] = [];
  readonly violations: string[] = [];
  private held: (() => void)[] = [];
  /** When callbacks run; tests may switch it between requests. */
  mode: StoreMode;

  constructor(
    readonly sizeBytes: number,
    private readonly opts: { mode?: StoreMode; readOnly?: boolean; serial?: string; checkView?: (v: Uint8Array) => boolean } = {},
  ) {
    this.mode = opts.mode ?? 'sync';
    this.readOnly = opts.readOnly ?? false;
    this.serial = opts.serial ?? 'recording-store';
    this.disk = new Uint8Array(sizeBytes);
  }

  /** Callbacks held in 'gated' mode. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Runs every held callback (gated mode). */
  release(): void {
    const held = this.held;
    this.held = [];
    for (const run of held) run();
  }

  count(op: StoreCall['op']): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  private finish(cb: IoCallback, err: Error | null): void {
    if (this.mode === 'sync') cb(err);
    else if (this.mode === 'async') setImmediate(() => cb(err));
    else this.held.push(() => cb(err));
  }

  private checkViews(op: string, offsetBytes: number, views: Uint8Array[]): Error | null {
    let lengthBytes = 0;
    for (const v of views) {
      if (this.opts.checkView && !this.opts.checkView(v)) this.violations.push(`${op} got a view outside guest memory (offset ${v.byteOffset}, length ${v.byteLength})`);
      lengthBytes += v.byteLength;
    }
    if (offsetBytes < 0 || offsetBytes + lengthBytes > this.sizeBytes) {
      this.violations.push(`${op} at ${offsetBytes}+${lengthBytes} beyond the store's ${this.sizeBytes} bytes`);
      return new Error('out of range');
    }
    return null;
  }

  readv(offsetBytes: number, views: Uint8Array[], cb: IoCallback): void {
    const err = this.checkViews('readv', offsetBytes, views);
    this.calls.push({ op: 'readv', offsetBytes, lengthBytes: views.reduce((n, v) => n + v.length, 0) });
    if (err === null) {
      let at = offsetBytes;
      for (const v of views) {
        v.set(this.disk.subarray(at, at + v.length));
        at += v.length;
      }
    }
    this.finish(cb, err);
  }

  writev(offsetBytes: number, views: Uint8Array[], cb: IoCallback): void {
    const err = this.checkViews('writev', offsetBytes, views);
    this.calls.push({ op: 'writev', offsetBytes, lengthBytes: views.reduce((n, v) => n + v.length, 0) });
    if (this.readOnly) this.violations.push('writev on a read-only store');
    if (err === null) {
      let at = offsetBytes;
      for (const v of views) {
        this.disk.set(v, at);
        at += v.length;
      }
    }
    this.finish(cb, err);
  }

  flush(cb: IoCallback): void {
    this.calls.push({ op: 'flush', offsetBytes: 0, lengthBytes: 0 });
    this.finish(cb, null);
  }

  private range(op: 'discard' | 'writeZeroes', offsetBytes: number, lengthBytes: number, cb: IoCallback): void {
    this.calls.push({ op, offsetBytes, lengthBytes });
    if (this.readOnly) this.violations.push(`${op} on a read-only store`);
    if (offsetBytes < 0 || offsetBytes + lengthBytes > this.sizeBytes) {
      this.violations.push(`${op} at ${offsetBytes}+${lengthBytes} beyond the store's ${this.sizeBytes} bytes`);
      return this.finish(cb, new Error('out of range'));
    }
    this.disk.fill(0, offsetBytes, offsetBytes + lengthBytes);
    this.finish(cb, null);
  }

  discard(offsetBytes: number, lengthBytes: number, cb: IoCallback): void {
    this.range('discard', offsetBytes, lengthBytes, cb);
  }

  writeZeroes(offsetBytes: number, lengthBytes: number, _unmap: boolean, cb: IoCallback): void {
    this.range('writeZeroes', offsetBytes, lengthBytes, cb);
  }

  close(cb: IoCallback): void {
    cb(null);
  }
}

export interface DeviceHarness {
  gg: GuardedGuest;
  guest: MockGuest;
  mq: MockSplitQueue;
  queue: SplitQueue;
  vring: Vring;
  device: BlkDevice;
  store: RecordingStore;
  memoryTable: MemoryTable;
  /** Runs the kick handler (processQueue) once. */
  kick(): void;
}

/** A BlkDevice with one started, enabled ring over a guarded mock guest. */
export function deviceHarness(opts: { queueSize: number; guestBytes?: number; diskBytes?: number; storeMode?: StoreMode; readOnly?: boolean; eventIdx?: boolean; log?: Logger }): DeviceHarness {
  const gg = new GuardedGuest(opts.guestBytes ?? 1 << 20);
  const guest = gg.guest;
  const mq = new MockSplitQueue(guest, opts.queueSize);
  const store = new RecordingStore(opts.diskBytes ?? 64 * 512, {
    mode: opts.storeMode ?? 'sync',
    readOnly: opts.readOnly ?? false,
    checkView: (v) => gg.contains(v),
  });
  const memoryTable = new MemoryTable();
  memoryTable.replace([...gg.memory.regions]);
  const mem = memoryTable.current!;
  const queue = new SplitQueue(opts.queueSize);
  queue.eventIdx = opts.eventIdx ?? false;
  const bindErr = queue.bind(mem, mq.addrs);
  if (bindErr !== null) throw bindErr;
  const vring = new Vring(0);
  vring.size = opts.queueSize;
  vring.queue = queue;
  vring.started = true;
  vring.enabled = true;
  const device = new BlkDevice({ store, numQueues: 1, log: opts.log ?? pino({ level: 'silent' }) });
  device.attach(memoryTable);
  return { gg, guest, mq, queue, vring, device, store, memoryTable, kick: () => device.processQueue(vring) };
}
