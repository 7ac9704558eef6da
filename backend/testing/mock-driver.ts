/**
 * The driver side of a split virtqueue over plain memory (rust-vmm `mock.rs` analogue):
 * builds descriptor chains, publishes them on the avail ring and reads the used ring. Every
 * virtqueue and request unit test uses it; no QEMU needed.
 *
 * `MockGuest` can wrap a plain ArrayBuffer (unit tests) or a shared mapping of a memfd that
 * the back-end maps too (integration tests through the test front-end).
 */
import { GuestMemory, type MappedRegion } from '../src/memory/guest-memory.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../src/virtio/split-queue.js';
import { SECTOR_SIZE } from '../src/blk/request.js';

export interface RawDescriptor {
  gpa: number;
  lengthBytes: number;
  flags: number;
  next: number;
}

export interface BufferSpec {
  gpa: number;
  lengthBytes: number;
  writable: boolean;
}

/**
 * Guest RAM at gpa `gpaBase` with a bump allocator. `buffer` may be a window of a larger
 * buffer (a Uint8Array), so that tests can surround guest RAM with guard bytes and prove the
 * back-end never touches them.
 */
export class MockGuest {
  readonly bytes: Uint8Array;
  readonly dv: DataView;
  private nextFree: number;

  constructor(
    buffer: ArrayBuffer | Uint8Array,
    readonly gpaBase = 0x10000,
    reservedBytes = 0,
  ) {
    this.bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
    this.dv = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.nextFree = gpaBase + reservedBytes;
  }

  /** A one-region GuestMemory over the same bytes (what the back-end would map). */
  memory(frontendVaStart = 0x7f0000000000): GuestMemory {
    const region: MappedRegion = {
      gpaStart: this.gpaBase,
      sizeBytes: this.bytes.length,
      frontendVaStart,
      mmapOffset: 0,
      windows: [{ gpaStart: this.gpaBase, sizeBytes: this.bytes.length, bytes: this.bytes }],
      mappings: [],
      refs: 1,
    };
    return new GuestMemory([region], 1);
  }

  alloc(lengthBytes: number, align = 16): number {
    const gpa = Math.ceil(this.nextFree / align) * align;
    if (gpa + lengthBytes > this.gpaBase + this.bytes.length) throw new Error('mock guest out of memory');
    this.nextFree = gpa + lengthBytes;
    return gpa;
  }

  view(gpa: number, lengthBytes: number): Uint8Array {
    return this.bytes.subarray(gpa - this.gpaBase, gpa - this.gpaBase + lengthBytes);
  }

  write(gpa: number, data: Uint8Array): void {
    this.view(gpa, data.length).set(data);
  }
}

export class MockSplitQueue {
  readonly descGpa: number;
  readonly availGpa: number;
  readonly usedGpa: number;
  private availIdx = 0;
  private freeHead = 0;
  /** Last used index the driver consumed. */
  lastUsed = 0;

  constructor(
    readonly guest: MockGuest,
    readonly size: number,
  ) {
    this.descGpa = guest.alloc(16 * size, 16);
    this.availGpa = guest.alloc(6 + 2 * size, 2);
    this.usedGpa = guest.alloc(6 + 8 * size, 4);
  }

  get addrs(): { descGpa: number; availGpa: number; usedGpa: number } {
    return { descGpa: this.descGpa, availGpa: this.availGpa, usedGpa: this.usedGpa };
  }

  private off(gpa: number): number {
    return gpa - this.guest.gpaBase;
  }

  writeDescriptor(tableGpa: number, index: number, d: RawDescriptor): void {
    const at = this.off(tableGpa) + index * 16;
    const dv = this.guest.dv;
    dv.setBigUint64(at, BigInt(d.gpa), true);
    dv.setUint32(at + 8, d.lengthBytes, true);
    dv.setUint16(at + 12, d.flags, true);
    dv.setUint16(at + 14, d.next, true);
  }

  /** Writes a chain into free slots of the descriptor table; returns its head index. */
  addChain(buffers: BufferSpec[]): number {
    const head = this.freeHead;
    buffers.forEach((b, i) => {
      const index = (head + i) % this.size;
      const last = i === buffers.length - 1;
      this.writeDescriptor(this.descGpa, index, {
        gpa: b.gpa,
        lengthBytes: b.lengthBytes,
        flags: (b.writable ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT),
        next: last ? 0 : (head + i + 1) % this.size,
      });
    });
    this.freeHead = (head + buffers.length) % this.size;
    this.publish(head);
    return head;
  }

  /** Puts the chain in an indirect table referenced by one descriptor. */
  addIndirectChain(buffers: BufferSpec[]): number {
    const tableGpa = this.guest.alloc(16 * buffers.length, 16);
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.writeDescriptor(tableGpa, i, {
        gpa: b.gpa,
        lengthBytes: b.lengthBytes,
        flags: (b.writable ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT),
        next: last ? 0 : i + 1,
      });
    });
    const head = this.freeHead;
    this.writeDescriptor(this.descGpa, head, { gpa: tableGpa, lengthBytes: 16 * buffers.length, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    this.freeHead = (head + 1) % this.size;
    this.publish(head);
    return head;
  }

  /** Publishes `head` on the avail ring and bumps avail.idx. */
  publish(head: number): void {
    const dv = this.guest.dv;
    dv.setUint16(this.off(this.availGpa) + 4 + 2 * (this.availIdx % this.size), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    dv.setUint16(this.off(this.availGpa) + 2, this.availIdx, true);
  }

  /** Overwrites avail.idx (tests of hostile drivers). */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.guest.dv.setUint16(this.off(this.availGpa) + 2, this.availIdx, true);
  }

  setAvailFlags(flags: number): void {
    this.guest.dv.setUint16(this.off(this.availGpa), flags, true);
  }

  /** avail->used_event (EVENT_IDX). */
  setUsedEvent(idx: number): void {
    this.guest.dv.setUint16(this.off(this.availGpa) + 4 + 2 * this.size, idx, true);
  }

  usedIdx(): number {
    return this.guest.dv.getUint16(this.off(this.usedGpa) + 2, true);
  }

  usedFlags(): number {
    return this.guest.dv.getUint16(this.off(this.usedGpa), true);
  }

  /** used->avail_event (EVENT_IDX). */
  availEvent(): number {
    return this.guest.dv.getUint16(this.off(this.usedGpa) + 4 + 8 * this.size, true);
  }

  usedElem(i: number): { id: number; len: number } {
    const at = this.off(this.usedGpa) + 4 + 8 * (i % this.size);
    return { id: this.guest.dv.getUint32(at, true), len: this.guest.dv.getUint32(at + 4, true) };
  }

  /** Used elements added since the last call. */
  takeUsed(): { id: number; len: number }[] {
    const out: { id: number; len: number }[] = [];
    const idx = this.usedIdx();
    while (this.lastUsed !== idx) {
      out.push(this.usedElem(this.lastUsed));
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    return out;
  }
}

/** Buffers of one virtio-blk request laid out as Linux does: header, data…, status. */
export interface BlkRequestBuffers {
  headerGpa: number;
  dataGpas: number[];
  statusGpa: number;
  buffers: BufferSpec[];
}

/** Builds a virtio-blk request's buffers (one descriptor per part). */
export function blkRequest(guest: MockGuest, type: number, sector: number, dataLengths: number[], dataWritable: boolean): BlkRequestBuffers {
  const headerGpa = guest.alloc(16, 16);
  const h = new DataView(new ArrayBuffer(16));
  h.setUint32(0, type, true);
  h.setBigUint64(8, BigInt(sector), true);
  guest.write(headerGpa, new Uint8Array(h.buffer));
  const dataGpas = dataLengths.map((n) => guest.alloc(n, SECTOR_SIZE));
  const statusGpa = guest.alloc(1, 1);
  guest.write(statusGpa, new Uint8Array([0xff]));
  const buffers: BufferSpec[] = [
    { gpa: headerGpa, lengthBytes: 16, writable: false },
    ...dataGpas.map((gpa, i) => ({ gpa, lengthBytes: dataLengths[i]!, writable: dataWritable })),
    { gpa: statusGpa, lengthBytes: 1, writable: true },
  ];
  return { headerGpa, dataGpas, statusGpa, buffers };
}

/** Discard / write-zeroes segment payload. */
export function rangesPayload(ranges: { sector: number; sectorCount: number; flags: number }[]): Uint8Array {
  const out = new Uint8Array(16 * ranges.length);
  const dv = new DataView(out.buffer);
  ranges.forEach((r, i) => {
    dv.setBigUint64(16 * i, BigInt(r.sector), true);
    dv.setUint32(16 * i + 8, r.sectorCount, true);
    dv.setUint32(16 * i + 12, r.flags, true);
  });
  return out;
}

/** Deterministic PRNG for randomised tests (mulberry32; no dependency). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
