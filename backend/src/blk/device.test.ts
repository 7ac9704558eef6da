/**
 * BlkDevice without a socket: the kick handler (`processQueue`) runs over a guarded mock
 * guest and an in-memory store that checks every view it receives. Checks request
 * completion (status byte, used length, GET_ID truncation), that a structurally hostile ring
 * marks the device broken once (event and log line) while requests already in flight still
 * complete, that later kicks do nothing, and that a driver exceeding the queue's in-flight
 * bound is refused rather than crashing the daemon.
 */
import test from 'ava';
import { pino, type Logger } from 'pino';
import { blkRequest } from '../../testing/mock-driver.js';
import { deviceHarness } from '../../testing/guarded-guest.js';
import { VIRTQ_DESC_F_NEXT } from '../virtio/split-queue.js';
import type { QueueError } from '../vhost-user/errors.js';
import { VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from './request.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function capturingLog(): { log: Logger; records: { level: number; code?: string }[] } {
  const records: { level: number; code?: string }[] = [];
  const log: Logger = pino({ level: 'debug' }, { write: (s: string) => void records.push(JSON.parse(s) as { level: number; code?: string }) });
  return { log, records };
}

test('GET_ID fills at most 20 bytes and at most the buffer, and reports what it wrote', (t) => {
  const h = deviceHarness({ queueSize: 8 });
  const small = blkRequest(h.guest, VIRTIO_BLK_T_GET_ID, 0, [8], true);
  const big = blkRequest(h.guest, VIRTIO_BLK_T_GET_ID, 0, [32], true);
  h.guest.view(big.dataGpas[0]!, 32).fill(0xee);
  h.mq.addChain(small.buffers);
  h.mq.addChain(big.buffers);
  h.kick();
  const used = h.mq.takeUsed();
  t.deepEqual(used.map((u) => u.len), [9, 21], 'data bytes written + the status byte');
  t.is(Buffer.from(h.guest.view(small.dataGpas[0]!, 8)).toString(), 'recordin');
  t.is(Buffer.from(h.guest.view(big.dataGpas[0]!, 15)).toString(), 'recording-store');
  t.deepEqual([...h.guest.view(big.dataGpas[0]! + 15, 5)], [0, 0, 0, 0, 0], 'the serial is NUL-padded to 20 bytes');
  t.deepEqual([...h.guest.view(big.dataGpas[0]! + 20, 12)], Array(12).fill(0xee), 'bytes past 20 are untouched');
  t.is(h.guest.view(small.statusGpa, 1)[0], VIRTIO_BLK_S_OK);
  t.is(h.gg.damagedGuard(), -1);
});

test('a bad request completes with IOERR and used length 1; one without a status byte with length 0', (t) => {
  const h = deviceHarness({ queueSize: 8 });
  const past = blkRequest(h.guest, VIRTIO_BLK_T_IN, 64, [512], true); // capacity is 64 sectors
  const noStatus = blkRequest(h.guest, VIRTIO_BLK_T_IN, 0, [512], true);
  h.mq.addChain(past.buffers);
  h.mq.addChain(noStatus.buffers.slice(0, 2).map((b) => ({ ...b, writable: false })));
  h.kick();
  t.deepEqual(h.mq.takeUsed().map((u) => u.len), [1, 0]);
  t.is(h.guest.view(past.statusGpa, 1)[0], VIRTIO_BLK_S_IOERR);
  t.is(h.device.stats.errors, 2);
  t.is(h.store.calls.length, 0, 'the store was not called');
  t.false(h.device.broken, 'request errors do not break the device');
});

test('completes requests out of order and signals once per event-loop turn', async (t) => {
  const h = deviceHarness({ queueSize: 8, storeMode: 'gated' });
  const a = blkRequest(h.guest, VIRTIO_BLK_T_IN, 0, [512], true);
  const b = blkRequest(h.guest, VIRTIO_BLK_T_OUT, 1, [512], false);
  const headA = h.mq.addChain(a.buffers);
  const headB = h.mq.addChain(b.buffers);
  h.kick();
  t.is(h.vring.inflight, 2);
  t.is(h.mq.usedIdx(), 0);
  h.store.release();
  await tick();
  t.deepEqual(h.mq.takeUsed(), [
    { id: headA, len: 513 },
    { id: headB, len: 1 },
  ]);
  t.is(h.vring.inflight, 0);
});

test('a hostile chain marks the device broken once; later kicks do nothing; in-flight requests still complete', async (t) => {
  const { log, records } = capturingLog();
  const h = deviceHarness({ queueSize: 8, storeMode: 'gated', log });
  const broken: QueueError[] = [];
  h.device.on('broken', (e) => broken.push(e));
  h.mq.addChain(blkRequest(h.guest, VIRTIO_BLK_T_IN, 0, [512], true).buffers);
  h.kick();
  t.is(h.vring.inflight, 1);
  // Descriptor 5 loops to itself.
  h.mq.writeDescriptor(h.mq.descGpa, 5, { gpa: h.guest.alloc(16), lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 5 });
  h.mq.publish(5);
  h.kick();
  t.true(h.device.broken);
  t.is(broken.length, 1);
  t.is(broken[0]!.code, 'VQ_ERR_BAD_HEAD');
  const after = blkRequest(h.guest, VIRTIO_BLK_T_IN, 0, [512], true);
  h.mq.writeDescriptor(h.mq.descGpa, 6, { gpa: after.headerGpa, lengthBytes: 16, flags: 0, next: 0 });
  h.mq.publish(6);
  h.mq.publish(5); // the loop again
  h.kick();
  h.kick();
  t.is(broken.length, 1, "'broken' is emitted once");
  t.is(records.filter((r) => r.level === 50 && r.code === 'VQ_ERR_BAD_HEAD').length, 1, 'logged once');
  t.is(h.store.calls.length, 1, 'nothing new reached the store');
  h.store.release();
  await tick();
  t.is(h.mq.usedIdx(), 1, 'the request in flight before the break completed');
  t.is(h.vring.inflight, 0);
  t.is(h.gg.damagedGuard(), -1);
});

test('an avail.idx jump marks the device broken with VQ_ERR_AVAIL_IDX_JUMP', (t) => {
  const h = deviceHarness({ queueSize: 8 });
  const broken: QueueError[] = [];
  h.device.on('broken', (e) => broken.push(e));
  h.mq.setAvailIdx(9);
  h.kick();
  t.true(h.device.broken);
  t.deepEqual(broken.map((e) => e.code), ['VQ_ERR_AVAIL_IDX_JUMP']);
  t.is(h.mq.usedIdx(), 0);
});

test('a driver that makes more chains available than the queue can hold in flight breaks the device instead of crashing', (t) => {
  const size = 4;
  const h = deviceHarness({ queueSize: size, storeMode: 'gated' });
  const broken: QueueError[] = [];
  h.device.on('broken', (e) => broken.push(e));
  // Indirect chains take one descriptor each, so `size` of them fit the table.
  for (let i = 0; i < size; i++) h.mq.addIndirectChain(blkRequest(h.guest, VIRTIO_BLK_T_IN, i, [512], true).buffers);
  h.kick();
  t.is(h.vring.inflight, size, 'the queue is full of requests in flight');
  // A hostile driver re-publishes head 0 although it has not been used yet: avail.idx is
  // only 1 ahead of next_avail, so the index check alone cannot catch it.
  h.mq.publish(0);
  t.notThrows(() => h.kick());
  t.true(h.device.broken);
  t.is(broken.length, 1);
  t.is(h.vring.inflight, size, 'the extra chain was not started');
  h.store.release();
  t.is(h.vring.inflight, 0);
  t.is(h.mq.usedIdx(), size);
});

test('every view handed to the store lies inside guest memory and no guard byte changes', (t) => {
  const h = deviceHarness({ queueSize: 16 });
  for (let i = 0; i < 8; i++) {
    const r = blkRequest(h.guest, i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, i * 4, [512, 1024], i % 2 === 1);
    h.mq.addChain(r.buffers);
  }
  h.kick();
  t.is(h.mq.usedIdx(), 8);
  t.is(h.store.calls.length, 8);
  t.deepEqual(h.store.violations, []);
  t.is(h.gg.damagedGuard(), -1);
});
