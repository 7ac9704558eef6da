/**
 * Inflight I/O tracking for split rings (vhost-user.rst "Inflight I/O tracking",
 * VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD). The region lives in a memfd we create on
 * GET_INFLIGHT_FD; QEMU keeps the fd and hands it back (SET_INFLIGHT_FD) to the next daemon
 * after a crash or restart, so requests that were in flight are resubmitted, not lost.
 *
 * Layout of one queue's part (queue i starts at i * queueRegionBytes(queueSize)):
 *
 *   +0  le64 features   +8 le16 version (=1)   +10 le16 desc_num   +12 le16 last_batch_head
 *   +14 le16 used_idx   (the used ring's idx, stored after the ring was updated)
 *   +16 desc[desc_num], 16 bytes each (DescStateSplit):
 *        +0 u8 inflight   +1 u8 padding[5]   +6 le16 next   +8 le64 counter (submission order)
 *
 * Protocol: set inflight=1 and counter=++counter when a head is popped; after putting it on
 * the used ring and publishing used.idx, clear inflight and store used_idx. On reconnect,
 * heads the used ring already shows between the stored used_idx and the ring's idx (we
 * crashed between the two steps) are cleared; the rest are resubmitted in counter order. We
 * complete one request at a time, so `last_batch_head`/`next` (batching) stay unused.
 */

export const INFLIGHT_VERSION = 1;
const HEADER_BYTES = 16;
const DESC_STATE_BYTES = 16;
const INFLIGHT_ALIGNMENT = 64;

/** Bytes of one queue's part of the region (aligned like libvhost-user). */
export function queueRegionBytes(queueSize: number): number {
  const raw = HEADER_BYTES + DESC_STATE_BYTES * queueSize;
  return Math.ceil(raw / INFLIGHT_ALIGNMENT) * INFLIGHT_ALIGNMENT;
}

/** One queue's inflight state over shared memory. */
export class QueueInflight {
  private readonly dv: DataView;
  private readonly u8: Uint8Array;
  private counter = 0;

  constructor(
    bytes: Uint8Array,
    readonly queueSize: number,
  ) {
    if (bytes.length < HEADER_BYTES + DESC_STATE_BYTES * queueSize) throw new Error('inflight region too small for the queue');
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.u8 = bytes;
  }

  /** Stamps version and size on a fresh (zeroed) region; keeps an existing one. */
  init(): void {
    if (this.dv.getUint16(8, true) === 0) {
      this.dv.setUint16(8, INFLIGHT_VERSION, true);
      this.dv.setUint16(10, this.queueSize, true);
    }
  }

  get version(): number {
    return this.dv.getUint16(8, true);
  }

  get descNum(): number {
    return this.dv.getUint16(10, true);
  }

  get usedIdx(): number {
    return this.dv.getUint16(14, true);
  }

  isInflight(head: number): boolean {
    return this.u8[HEADER_BYTES + head * DESC_STATE_BYTES] === 1;
  }

  counterOf(head: number): number {
    const at = HEADER_BYTES + head * DESC_STATE_BYTES + 8;
    return this.dv.getUint32(at, true) + this.dv.getUint32(at + 4, true) * 0x100000000;
  }

  /** Before a popped head is processed. */
  markInflight(head: number): void {
    const at = HEADER_BYTES + head * DESC_STATE_BYTES;
    const c = ++this.counter;
    this.dv.setUint32(at + 8, c >>> 0, true);
    this.dv.setUint32(at + 12, Math.floor(c / 0x100000000), true);
    this.u8[at] = 1;
  }

  /** After the head is on the used ring and used.idx = `usedIdx` was published. */
  markDone(head: number, usedIdx: number): void {
    this.u8[HEADER_BYTES + head * DESC_STATE_BYTES] = 0;
    this.dv.setUint16(14, usedIdx, true);
  }

  /**
   * Reconciles the region with the used ring after a (re)connect. `usedRingIdx` is the
   * ring's used.idx; `usedRingHead(k)` the id at used ring position k. Returns the heads to
   * resubmit, oldest first.
   */
  recover(usedRingIdx: number, usedRingHead: (position: number) => number): number[] {
    const stored = this.usedIdx;
    const added = (usedRingIdx - stored) & 0xffff; // u16 wrap-around
    if (added > this.queueSize) throw new Error(`inflight used_idx ${stored} is ${added} behind the used ring: not this ring's region`);
    for (let k = 0; k < added; k++) {
      const head = usedRingHead((stored + k) & 0xffff);
      if (head < this.queueSize) this.u8[HEADER_BYTES + head * DESC_STATE_BYTES] = 0;
    }
    this.dv.setUint16(14, usedRingIdx, true);
    const pending: number[] = [];
    let maxCounter = 0;
    for (let head = 0; head < this.queueSize; head++) {
      const c = this.counterOf(head);
      if (c > maxCounter) maxCounter = c;
      if (this.isInflight(head)) pending.push(head);
    }
    this.counter = maxCounter;
    pending.sort((a, b) => this.counterOf(a) - this.counterOf(b));
    return pending;
  }
}

/**
 * Attaches queue part `bytes` of the region to `queue` and reconciles it with the used ring
 * (libvhost-user vu_check_queue_inflights): next used = the ring's used.idx, next avail =
 * used idx + heads still in flight. Returns the state and the heads to resubmit, oldest first.
 */
export function recoverRing(
  queue: { size: number; nextUsed: number; nextAvail: number; usedRingIdx(): number; usedRingHead(position: number): number },
  bytes: Uint8Array,
): { state: QueueInflight; pending: number[] } | Error {
  let state: QueueInflight;
  let pending: number[];
  try {
    state = new QueueInflight(bytes, queue.size);
    state.init();
    pending = state.recover(queue.usedRingIdx(), (pos) => queue.usedRingHead(pos));
  } catch (err) {
    return err as Error;
  }
  queue.nextUsed = queue.usedRingIdx();
  queue.nextAvail = (queue.nextUsed + pending.length) & 0xffff;
  return { state, pending };
}
