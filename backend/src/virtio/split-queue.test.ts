/**
 * SplitQueue against the mock driver over a plain buffer: chains (direct, multi-descriptor,
 * indirect), u16 index wrap-around, the used ring, notification suppression with and without
 * EVENT_IDX, and every structural violation a hostile driver can write into the rings, each
 * of which must come back as a QueueError value with its code (never a throw).
 */
import test from 'ava';
import { parseBlkRequest, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_T_IN } from '../blk/request.js';
import { QueueError, type QueueErrorCode } from '../vhost-user/errors.js';
import { blkRequest, MockGuest, MockSplitQueue, type BufferSpec } from '../../testing/mock-driver.js';
import {
  MAX_INDIRECT_DESCRIPTORS,
  SplitQueue,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
  type Chain,
} from './split-queue.js';

const GPA_BASE = 0x10000;

function setup(size = 8, eventIdx = false) {
  const guest = new MockGuest(new ArrayBuffer(1 << 20), GPA_BASE);
  const mem = guest.memory();
  const mq = new MockSplitQueue(guest, size);
  const q = new SplitQueue(size);
  q.eventIdx = eventIdx;
  const err = q.bind(mem, mq.addrs);
  if (err !== null) throw err;
  return { guest, mem, mq, q };
}

function asChain(r: Chain | QueueError | null): Chain {
  if (r === null || r instanceof QueueError) throw new Error(`expected a chain, got ${r === null ? 'null' : r.code}`);
  return r;
}

const buf = (guest: MockGuest, lengthBytes: number, writable: boolean): BufferSpec => ({ gpa: guest.alloc(lengthBytes), lengthBytes, writable });

/** The chain segments `bufs` should pop as, in order. */
const segmentsOf = (bufs: BufferSpec[]): Chain['segments'] => bufs.map((b) => ({ gpa: b.gpa, lengthBytes: b.lengthBytes, writable: b.writable }));

test('pops a single-descriptor chain and then reports an empty ring', (t) => {
  const { guest, mem, mq, q } = setup();
  t.is(q.popChain(mem), null, 'empty ring');
  const b = buf(guest, 64, false);
  const head = mq.addChain([b]);
  const chain = asChain(q.popChain(mem));
  t.is(chain.headIndex, head);
  t.deepEqual(chain.segments, [{ gpa: b.gpa, lengthBytes: 64, writable: false }]);
  t.is(q.nextAvail, 1);
  t.is(q.popChain(mem), null);
});

test('walks a multi-descriptor chain in order and keeps each descriptor direction', (t) => {
  const { guest, mem, mq, q } = setup();
  const bufs = [buf(guest, 16, false), buf(guest, 4096, true), buf(guest, 512, true), buf(guest, 1, true)];
  mq.addChain([buf(guest, 8, false)]); // occupies slot 0 so the next chain wraps its indices
  const head = mq.addChain(bufs);
  asChain(q.popChain(mem));
  const chain = asChain(q.popChain(mem));
  t.is(chain.headIndex, head);
  t.deepEqual(chain.segments, segmentsOf(bufs));
});

test('follows an indirect descriptor into its table', (t) => {
  const { guest, mem, mq, q } = setup();
  const bufs = [buf(guest, 16, false), buf(guest, 1024, false), buf(guest, 1, true)];
  const head = mq.addIndirectChain(bufs);
  const chain = asChain(q.popChain(mem));
  t.is(chain.headIndex, head);
  t.deepEqual(chain.segments, segmentsOf(bufs));
});

test('accepts an indirect descriptor at the end of a direct chain', (t) => {
  const { guest, mem, mq, q } = setup();
  const header = buf(guest, 16, false);
  const status = buf(guest, 1, true);
  const table = guest.alloc(16);
  mq.writeDescriptor(table, 0, { gpa: status.gpa, lengthBytes: 1, flags: VIRTQ_DESC_F_WRITE, next: 0 });
  mq.writeDescriptor(mq.descGpa, 0, { gpa: header.gpa, lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  mq.writeDescriptor(mq.descGpa, 1, { gpa: table, lengthBytes: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
  mq.publish(0);
  t.deepEqual(asChain(q.popChain(mem)).segments, [
    { gpa: header.gpa, lengthBytes: 16, writable: false },
    { gpa: status.gpa, lengthBytes: 1, writable: true },
  ]);
});

test('avail.idx and used.idx wrap from 0xffff to 0', (t) => {
  const size = 8;
  const { guest, mem, mq, q } = setup(size);
  q.nextAvail = 0xfffd;
  q.nextUsed = 0xfffd;
  mq.setAvailIdx(0xfffd);
  mq.lastUsed = 0xfffd;
  const heads: number[] = [];
  for (let i = 0; i < 5; i++) heads.push(mq.addChain([buf(guest, 32, true)]));
  t.is(q.pending(), 5, 'pending counts across the wrap');
  const popped: number[] = [];
  for (let i = 0; i < 5; i++) popped.push(asChain(q.popChain(mem)).headIndex);
  t.deepEqual(popped, heads);
  t.is(q.nextAvail, 2);
  t.is(q.popChain(mem), null);
  popped.forEach((h, i) => q.addUsed(h, 100 + i));
  t.is(q.nextUsed, 2);
  t.is(mq.usedIdx(), 2, 'used.idx published after the wrap');
  t.deepEqual(
    mq.takeUsed(),
    heads.map((id, i) => ({ id, len: 100 + i })),
  );
  // Slots follow idx % size: 0xfffd % 8 = 5, so the wrapped entries land in slots 5, 6, 7, 0, 1.
  t.deepEqual(mq.usedElem(5), { id: heads[0]!, len: 100 });
  t.deepEqual(mq.usedElem(1), { id: heads[4]!, len: 104 });
});

test('addUsed writes id and len into the next used slot and publishes used.idx', (t) => {
  const { mq, q } = setup(4);
  q.addUsed(3, 4097);
  t.is(mq.usedIdx(), 1);
  t.deepEqual(mq.usedElem(0), { id: 3, len: 4097 });
  q.addUsed(1, 1);
  t.is(mq.usedIdx(), 2);
  t.deepEqual(mq.usedElem(1), { id: 1, len: 1 });
});

test('needsNotification honours NO_INTERRUPT without EVENT_IDX', (t) => {
  const { mq, q } = setup(8, false);
  q.addUsed(0, 1);
  t.true(q.needsNotification());
  mq.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  q.addUsed(1, 1);
  t.false(q.needsNotification(), 'driver asked for no interrupts');
  mq.setAvailFlags(0);
  t.true(q.needsNotification());
});

test('needsNotification honours used_event (EVENT_IDX) and ignores NO_INTERRUPT', (t) => {
  const { mq, q } = setup(8, true);
  t.true(q.needsNotification(), 'the first check after bind always signals');
  mq.setUsedEvent(2); // driver: interrupt me when used.idx passes 2
  mq.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  q.addUsed(0, 1); // used 1
  t.false(q.needsNotification(), 'used.idx 1 has not passed used_event 2');
  q.addUsed(1, 1); // used 2
  t.false(q.needsNotification(), 'used.idx 2 == used_event: not passed yet');
  q.addUsed(2, 1); // used 3
  t.true(q.needsNotification(), 'used.idx 3 passed used_event 2');
  t.false(q.needsNotification(), 'nothing new since the last check');
  mq.setUsedEvent(3);
  q.addUsed(3, 1);
  q.addUsed(4, 1); // several added at once: old=3 < used_event+1=4 <= new=5
  t.true(q.needsNotification());
});

test('needsNotification honours used_event across the u16 wrap-around', (t) => {
  const { mq, q } = setup(8, true);
  q.nextUsed = 0xfffe;
  t.true(q.needsNotification(), 'baseline at 0xfffe');
  mq.setUsedEvent(0xffff);
  q.addUsed(0, 1); // 0xffff
  t.false(q.needsNotification(), 'used.idx 0xffff has not passed used_event 0xffff');
  q.addUsed(1, 1); // 0x0000
  t.true(q.needsNotification(), 'used.idx wrapped to 0, passing used_event 0xffff');
  mq.setUsedEvent(0x0001);
  q.addUsed(2, 1); // 0x0001
  t.false(q.needsNotification(), 'used_event 1 not passed by used.idx 1');
  mq.setUsedEvent(0xfff0); // far behind: already passed long ago, outside (old, new]
  q.addUsed(3, 1); // 0x0002
  t.false(q.needsNotification(), 'a stale used_event does not trigger');
});

test('enableNotification writes avail_event with EVENT_IDX and reports work that appeared', (t) => {
  const { guest, mem, mq, q } = setup(8, true);
  q.disableNotification();
  t.is(mq.usedFlags(), 0, 'with EVENT_IDX the flag is left alone');
  t.false(q.enableNotification(), 'nothing pending');
  t.is(mq.availEvent(), 0);
  mq.addChain([buf(guest, 8, true)]);
  mq.addChain([buf(guest, 8, true)]);
  t.true(q.enableNotification(), 'work appeared before re-arming');
  asChain(q.popChain(mem));
  asChain(q.popChain(mem));
  t.false(q.enableNotification());
  t.is(mq.availEvent(), 2, 'avail_event = next_avail');
});

test('disableNotification and enableNotification toggle NO_NOTIFY without EVENT_IDX', (t) => {
  const { guest, mq, q } = setup(8, false);
  q.disableNotification();
  t.is(mq.usedFlags(), VIRTQ_USED_F_NO_NOTIFY);
  t.false(q.enableNotification());
  t.is(mq.usedFlags(), 0);
  mq.addChain([buf(guest, 8, true)]);
  t.true(q.enableNotification());
});

// ---- hostile drivers -------------------------------------------------------------------

function expectQueueError(t: import('ava').ExecutionContext, r: Chain | QueueError | null, code: QueueErrorCode, what: string): void {
  t.true(r instanceof QueueError, `${what}: expected a QueueError`);
  t.is((r as QueueError).code, code, what);
}

test('a head index >= queue size is VQ_ERR_BAD_HEAD', (t) => {
  const { mem, mq, q } = setup(8);
  mq.publish(8);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', 'head 8 of 8');
  mq.publish(0xffff);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', 'head 0xffff');
});

test('a next index >= queue size is VQ_ERR_BAD_HEAD', (t) => {
  const { guest, mem, mq, q } = setup(8);
  mq.writeDescriptor(mq.descGpa, 0, { gpa: guest.alloc(16), lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 8 });
  mq.publish(0);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', 'next 8 of 8');
});

test('a descriptor loop A→B→A is VQ_ERR_BAD_HEAD', (t) => {
  const { guest, mem, mq, q } = setup(8);
  const gpa = guest.alloc(16);
  mq.writeDescriptor(mq.descGpa, 2, { gpa, lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 5 });
  mq.writeDescriptor(mq.descGpa, 5, { gpa, lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  mq.publish(2);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', 'loop');
});

test('a self-loop and a chain longer than the queue are VQ_ERR_BAD_HEAD', (t) => {
  const { guest, mem, mq, q } = setup(4);
  const gpa = guest.alloc(16);
  mq.writeDescriptor(mq.descGpa, 1, { gpa, lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  mq.publish(1);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', 'self-loop');
  for (let i = 0; i < 4; i++) mq.writeDescriptor(mq.descGpa, i, { gpa, lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: (i + 1) % 4 });
  mq.publish(0);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', 'a 5th descriptor on a queue of 4');
});

test('a full-length chain (queue size descriptors) is accepted', (t) => {
  const { guest, mem, mq, q } = setup(4);
  const gpa = guest.alloc(16);
  for (let i = 0; i < 4; i++) mq.writeDescriptor(mq.descGpa, i, { gpa, lengthBytes: 16, flags: i < 3 ? VIRTQ_DESC_F_NEXT : 0, next: i + 1 });
  mq.publish(0);
  t.is(asChain(q.popChain(mem)).segments.length, 4);
});

test('a loop inside an indirect table is VQ_ERR_BAD_HEAD', (t) => {
  const { guest, mem, mq, q } = setup(8);
  const table = guest.alloc(32);
  const gpa = guest.alloc(16);
  mq.writeDescriptor(table, 0, { gpa, lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  mq.writeDescriptor(table, 1, { gpa, lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 0 });
  mq.writeDescriptor(mq.descGpa, 0, { gpa: table, lengthBytes: 32, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
  mq.publish(0);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', 'indirect loop');
});

test('an indirect next index beyond its table is VQ_ERR_BAD_HEAD', (t) => {
  const { guest, mem, mq, q } = setup(8);
  const table = guest.alloc(32);
  mq.writeDescriptor(table, 0, { gpa: guest.alloc(16), lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  mq.writeDescriptor(mq.descGpa, 0, { gpa: table, lengthBytes: 32, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
  mq.publish(0);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', 'next 2 in a table of 2');
});

test('an indirect descriptor inside an indirect table is VQ_ERR_BAD_HEAD', (t) => {
  const { guest, mem, mq, q } = setup(8);
  const inner = guest.alloc(16);
  mq.writeDescriptor(inner, 0, { gpa: guest.alloc(16), lengthBytes: 16, flags: 0, next: 0 });
  const outer = guest.alloc(16);
  mq.writeDescriptor(outer, 0, { gpa: inner, lengthBytes: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
  mq.writeDescriptor(mq.descGpa, 0, { gpa: outer, lengthBytes: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
  mq.publish(0);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', 'nested indirect');
});

test('an indirect descriptor with NEXT is VQ_ERR_BAD_HEAD', (t) => {
  const { guest, mem, mq, q } = setup(8);
  const table = guest.alloc(16);
  mq.writeDescriptor(table, 0, { gpa: guest.alloc(16), lengthBytes: 16, flags: 0, next: 0 });
  mq.writeDescriptor(mq.descGpa, 0, { gpa: table, lengthBytes: 16, flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, next: 1 });
  mq.writeDescriptor(mq.descGpa, 1, { gpa: guest.alloc(16), lengthBytes: 16, flags: 0, next: 0 });
  mq.publish(0);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', 'INDIRECT|NEXT');
});

test('an indirect table length of 0, not a multiple of 16 or above the cap is VQ_ERR_BAD_HEAD', (t) => {
  for (const lengthBytes of [0, 8, 17, 40, 16 * (MAX_INDIRECT_DESCRIPTORS + 1)]) {
    const { guest, mem, mq, q } = setup(8);
    const table = guest.alloc(Math.max(lengthBytes, 16));
    mq.writeDescriptor(mq.descGpa, 0, { gpa: table, lengthBytes, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    mq.publish(0);
    expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', `indirect len ${lengthBytes}`);
  }
});

test('an indirect table outside guest memory or straddling its end is VQ_ERR_BAD_HEAD', (t) => {
  const { guest, mem, mq, q } = setup(8);
  const end = GPA_BASE + guest.bytes.length;
  for (const gpa of [0, GPA_BASE - 16, end, end - 16, 2 ** 52]) {
    mq.writeDescriptor(mq.descGpa, 0, { gpa, lengthBytes: 32, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    mq.publish(0);
    expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', `table at 0x${gpa.toString(16)}`);
  }
});

test('a descriptor address at or beyond 2^53 is VQ_ERR_BAD_HEAD', (t) => {
  const { guest, mem, mq, q } = setup(8);
  const at = mq.descGpa - GPA_BASE;
  for (const hi of [0x200000, 0xffffffff]) {
    mq.writeDescriptor(mq.descGpa, 0, { gpa: 0, lengthBytes: 16, flags: 0, next: 0 });
    guest.dv.setUint32(at + 4, hi, true); // high word of addr
    mq.publish(0);
    expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', `addr high word 0x${hi.toString(16)}`);
  }
});

test('a chain describing more than 4 GiB is VQ_ERR_BAD_HEAD', (t) => {
  const { mem, mq, q } = setup(8);
  mq.writeDescriptor(mq.descGpa, 0, { gpa: GPA_BASE, lengthBytes: 0xffffffff, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  mq.writeDescriptor(mq.descGpa, 1, { gpa: GPA_BASE, lengthBytes: 2, flags: VIRTQ_DESC_F_WRITE, next: 0 });
  mq.publish(0);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_BAD_HEAD', '2^32 + 1 bytes');
});

test('an avail.idx jump larger than the queue is VQ_ERR_AVAIL_IDX_JUMP; a jump of exactly the size is not', (t) => {
  const { mem, mq, q } = setup(8);
  mq.setAvailIdx(8);
  t.is(q.pending(), 8);
  mq.setAvailIdx(9);
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_AVAIL_IDX_JUMP', 'jump of 9 on a queue of 8');
  mq.setAvailIdx(0xffff); // "backwards" by one is a jump of 0xffff
  expectQueueError(t, q.popChain(mem), 'VQ_ERR_AVAIL_IDX_JUMP', 'avail.idx moved backwards');
  t.is(q.nextAvail, 0, 'nothing was consumed');
});

test('a ring outside guest memory or misaligned cannot be bound', (t) => {
  const { guest, mem, mq } = setup(8);
  const q = new SplitQueue(8);
  const end = GPA_BASE + guest.bytes.length;
  const cases = [
    { ...mq.addrs, descGpa: end - 64 },
    { ...mq.addrs, availGpa: end - 4 },
    { ...mq.addrs, usedGpa: GPA_BASE - 8 },
    { ...mq.addrs, descGpa: mq.descGpa + 8 },
    { ...mq.addrs, availGpa: mq.availGpa + 1 },
    { ...mq.addrs, usedGpa: mq.usedGpa + 2 },
  ];
  for (const addrs of cases) {
    const err = q.bind(mem, addrs);
    t.true(err instanceof QueueError);
    t.is(err?.code, 'VQ_ERR_BAD_RING_ADDRESS');
  }
  t.false(q.bound);
});

test('a data buffer outside guest memory is a request error with a status, not a QueueError', (t) => {
  const { guest, mem, mq, q } = setup(8);
  const req = blkRequest(guest, VIRTIO_BLK_T_IN, 0, [512], true);
  const bufs = req.buffers.map((b, i) => (i === 1 ? { ...b, gpa: GPA_BASE + guest.bytes.length + 4096 } : b));
  mq.addChain(bufs);
  const chain = asChain(q.popChain(mem));
  const parsed = parseBlkRequest(chain, mem, { capacitySectors: 64, readOnly: false, maxDiscardSectors: 8, maxDiscardSegments: 1, maxWriteZeroesSectors: 8, maxWriteZeroesSegments: 1 });
  t.is(parsed.kind, 'error');
  if (parsed.kind !== 'error') return;
  t.is(parsed.code, 'BLK_ERR_BAD_ADDRESS');
  t.is(parsed.statusCode, VIRTIO_BLK_S_IOERR);
  t.not(parsed.status, null, 'the status byte is still reachable');
  t.is(parsed.status!.byteOffset - guest.bytes.byteOffset, req.statusGpa - GPA_BASE);
});
