/**
 * Split virtqueue, device side (VIRTIO 1.2 §2.7). Ring layout in guest memory:
 *
 *   descriptor table (16-byte aligned), queueSize entries:
 *     +0 le64 addr | +8 le32 len | +12 le16 flags | +14 le16 next
 *   available ring (2-byte aligned), written by the driver:
 *     +0 le16 flags | +2 le16 idx | +4 le16 ring[queueSize] | le16 used_event (EVENT_IDX)
 *   used ring (4-byte aligned), written by us:
 *     +0 le16 flags | +2 le16 idx | +4 {le32 id, le32 len}[queueSize] | le16 avail_event (EVENT_IDX)
 *
 * Indices are free-running u16 counters; the differences are taken modulo 2^16 and written
 * as `(a - b) & 0xffff`. `avail.idx` is read and `used.idx` written with `Atomics` (the
 * spec's ordering points, §2.7.13), plus a full fence before reading `used_event`.
 *
 * Everything read from the ring is untrusted: each descriptor is copied into locals once,
 * validated, and only the copy is used (GUIDE §1.3).
 */
import * as native from '../../../native/index.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { QueueError } from '../vhost-user/errors.js';

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;
/** Largest split queue we accept (QEMU's VIRTQUEUE_MAX_SIZE). */
export const MAX_QUEUE_SIZE = 1024;
/** Cap on the bytes one chain may describe (rust-vmm chain.rs). */
export const MAX_CHAIN_BYTES = 2 ** 32;
/** Cap on descriptors in an indirect table (Linux allocates ≤ seg_max + 2). */
export const MAX_INDIRECT_DESCRIPTORS = 4096;

/** One validated, translated-later segment of a chain. */
export interface ChainSegment {
  gpa: number;
  lengthBytes: number;
  writable: boolean;
}

/** A popped request: the head index to complete and the segments in chain order. */
export interface Chain {
  headIndex: number;
  segments: ChainSegment[];
}

export interface QueueAddresses {
  descGpa: number;
  availGpa: number;
  usedGpa: number;
}

const u16 = (v: number): number => v & 0xffff;

/** Reads a descriptor table from guest memory into an aligned Uint32Array view or copy. */
function descriptorTable(mem: GuestMemory, gpa: number, count: number): Uint32Array | null {
  const lengthBytes = count * 16;
  const direct = mem.contiguous(gpa, lengthBytes);
  if (direct !== null && direct.byteOffset % 4 === 0) {
    return new Uint32Array(direct.buffer, direct.byteOffset, count * 4);
  }
  // Why: a table crossing a region boundary (or misaligned) is legal; copy it once.
  const parts: Uint8Array[] = [];
  if (!mem.gather(gpa, lengthBytes, parts)) return null;
  const copy = new Uint8Array(lengthBytes);
  let at = 0;
  for (const p of parts) {
    copy.set(p, at);
    at += p.length;
  }
  return new Uint32Array(copy.buffer);
}

export class SplitQueue {
  nextAvail = 0;
  nextUsed = 0;
  eventIdx = false;
  /** used.idx at the last notification check (libvhost-user `signalled_used`). */
  private signalledUsed = 0;
  private signalledUsedValid = false;
  private desc: Uint32Array | null = null;
  private avail: Uint16Array | null = null;
  private usedHeader: Uint16Array | null = null;
  private usedElems: Uint32Array | null = null;

  constructor(readonly size: number) {}

  get bound(): boolean {
    return this.desc !== null;
  }

  /**
   * Builds ring views in `mem`. Each ring must lie inside one mapped window and be aligned
   * as §2.7 requires; anything else is a QueueError (the ring cannot be used).
   */
  bind(mem: GuestMemory, addrs: QueueAddresses): QueueError | null {
    const n = this.size;
    const desc = mem.contiguous(addrs.descGpa, 16 * n);
    const avail = mem.contiguous(addrs.availGpa, 6 + 2 * n);
    const used = mem.contiguous(addrs.usedGpa, 6 + 8 * n);
    if (desc === null || avail === null || used === null) {
      return new QueueError('VQ_ERR_BAD_RING_ADDRESS', 'ring outside guest memory or across regions');
    }
    if (desc.byteOffset % 16 !== 0 || avail.byteOffset % 2 !== 0 || used.byteOffset % 4 !== 0) {
      return new QueueError('VQ_ERR_BAD_RING_ADDRESS', 'ring misaligned');
    }
    this.desc = new Uint32Array(desc.buffer, desc.byteOffset, 4 * n);
    this.avail = new Uint16Array(avail.buffer, avail.byteOffset, 3 + n);
    this.usedHeader = new Uint16Array(used.buffer, used.byteOffset, 2 + 4 * n + 1);
    this.usedElems = new Uint32Array(used.buffer, used.byteOffset + 4, 2 * n);
    this.signalledUsedValid = false;
    return null;
  }

  unbind(): void {
    this.desc = this.avail = this.usedHeader = this.usedElems = null;
  }

  /** Driver's avail.idx (acquire). */
  availIdx(): number {
    return Atomics.load(this.avail!, 1);
  }

  /** Number of chains made available and not yet popped, or an error on an index jump. */
  pending(): number | QueueError {
    const count = u16(this.availIdx() - this.nextAvail); // u16 wrap-around
    if (count > this.size) {
      return new QueueError('VQ_ERR_AVAIL_IDX_JUMP', `avail.idx moved ${count} past next_avail (queue size ${this.size})`);
    }
    return count;
  }

  /**
   * Pops the next chain head and walks it. Returns null when the ring is empty. A chain
   * whose structure is invalid (head or next out of range, loop, nested indirect, too many
   * bytes) is a QueueError: a correct driver never produces one (libvhost-user vu_panic).
   */
  popChain(mem: GuestMemory): Chain | QueueError | null {
    const pending = this.pending();
    if (typeof pending !== 'number') return pending;
    if (pending === 0) return null;
    const headIndex = this.avail![2 + (this.nextAvail % this.size)]!;
    this.nextAvail = u16(this.nextAvail + 1);
    return this.readChain(mem, headIndex);
  }

  /** Walks the chain at `headIndex` (also used to resubmit inflight heads after a reconnect). */
  readChain(mem: GuestMemory, headIndex: number): Chain | QueueError {
    if (headIndex >= this.size) return new QueueError('VQ_ERR_BAD_HEAD', `head ${headIndex} >= queue size ${this.size}`);
    return this.walk(mem, headIndex);
  }

  /** The used ring's idx as stored in guest memory. */
  usedRingIdx(): number {
    return Atomics.load(this.usedHeader!, 1);
  }

  /** The id at used ring position `position` (free-running index). */
  usedRingHead(position: number): number {
    return this.usedElems![(position % this.size) * 2]!;
  }

  private walk(mem: GuestMemory, headIndex: number): Chain | QueueError {
    const segments: ChainSegment[] = [];
    let table = this.desc!;
    let tableSize = this.size;
    let ttl = this.size; // Why: bounds the walk; a loop exhausts it.
    let indirect = false;
    let index = headIndex;
    let totalBytes = 0;
    for (;;) {
      if (ttl-- === 0) return new QueueError('VQ_ERR_BAD_HEAD', 'descriptor chain longer than its table (loop?)');
      const base = index * 4;
      const addrLo = table[base]!;
      const addrHi = table[base + 1]!;
      const lengthBytes = table[base + 2]!;
      const flagsNext = table[base + 3]!;
      const flags = flagsNext & 0xffff;
      const next = flagsNext >>> 16;
      if (addrHi >= 0x200000) return new QueueError('VQ_ERR_BAD_HEAD', 'descriptor address beyond 2^53');
      const gpa = addrHi * 0x100000000 + addrLo;
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        // VIRTIO 1.2 §2.7.5.3.1: not inside an indirect table, not with NEXT, len % 16 == 0.
        if (indirect) return new QueueError('VQ_ERR_BAD_HEAD', 'indirect descriptor inside an indirect table');
        if (flags & VIRTQ_DESC_F_NEXT) return new QueueError('VQ_ERR_BAD_HEAD', 'indirect descriptor with NEXT');
        const count = lengthBytes / 16;
        if (lengthBytes === 0 || lengthBytes % 16 !== 0 || count > MAX_INDIRECT_DESCRIPTORS) {
          return new QueueError('VQ_ERR_BAD_HEAD', `bad indirect table length ${lengthBytes}`);
        }
        const t = descriptorTable(mem, gpa, count);
        if (t === null) return new QueueError('VQ_ERR_BAD_HEAD', 'indirect table outside guest memory');
        table = t;
        tableSize = count;
        ttl = count;
        indirect = true;
        index = 0;
        continue;
      }
      totalBytes += lengthBytes;
      if (totalBytes > MAX_CHAIN_BYTES) return new QueueError('VQ_ERR_BAD_HEAD', 'chain describes more than 4 GiB');
      segments.push({ gpa, lengthBytes, writable: (flags & VIRTQ_DESC_F_WRITE) !== 0 });
      if (!(flags & VIRTQ_DESC_F_NEXT)) return { headIndex, segments };
      if (next >= tableSize) return new QueueError('VQ_ERR_BAD_HEAD', `next ${next} >= table size ${tableSize}`);
      index = next;
    }
  }

  /** Puts `headIndex` on the used ring with `writtenBytes` and publishes used.idx (release). */
  addUsed(headIndex: number, writtenBytes: number): void {
    const slot = (this.nextUsed % this.size) * 2;
    this.usedElems![slot] = headIndex;
    this.usedElems![slot + 1] = writtenBytes;
    this.nextUsed = u16(this.nextUsed + 1);
    Atomics.store(this.usedHeader!, 1, this.nextUsed);
  }

  /**
   * Re-arms driver→device notifications; returns true when more work appeared meanwhile,
   * so the caller must process again (the EVENT_IDX race, GUIDE §2 "The hot loop").
   */
  enableNotification(): boolean {
    if (this.eventIdx) {
      Atomics.store(this.usedHeader!, 2 + 4 * this.size, this.nextAvail); // avail_event
    } else {
      Atomics.store(this.usedHeader!, 0, 0);
    }
    native.fence();
    return this.availIdx() !== this.nextAvail;
  }

  /** Asks the driver not to kick (only meaningful without EVENT_IDX). */
  disableNotification(): void {
    if (!this.eventIdx) Atomics.store(this.usedHeader!, 0, VIRTQ_USED_F_NO_NOTIFY);
  }

  /** Whether the driver wants an interrupt for what was added since the last check (§2.7.10). */
  needsNotification(): boolean {
    native.fence(); // Why: used.idx store must be visible before we read used_event/flags.
    if (!this.eventIdx) return (Atomics.load(this.avail!, 0) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    const usedEvent = Atomics.load(this.avail!, 2 + this.size);
    const newUsed = this.nextUsed;
    const oldUsed = this.signalledUsed;
    const valid = this.signalledUsedValid;
    this.signalledUsed = newUsed;
    this.signalledUsedValid = true;
    if (!valid) return true;
    // vring_need_event(event, new, old): (u16)(new - event - 1) < (u16)(new - old)
    return u16(newUsed - usedEvent - 1) < u16(newUsed - oldUsed);
  }
}
