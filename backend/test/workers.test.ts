/**
 * Queues across cores (--workers): with two worker threads each queue of a two-queue device
 * runs on its own worker, which maps guest memory itself and owns the queue's eventfds. We
 * drive I/O on both queues through the real socket, check the data, stop a ring with
 * GET_VRING_BASE (answered after the worker drained it), reconnect, and read statistics.
 */
import test from 'ava';
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../src/blk/request.js';
import { FrontendReq } from '../src/vhost-user/message.js';
import { blkRequest } from '../testing/mock-driver.js';
import type { TestFrontend } from '../testing/test-frontend.js';
import { pattern, startDaemon } from './helpers.js';

async function io(fe: TestFrontend, q: number, type: number, sector: number, data: Uint8Array | number): Promise<{ status: number; data: Uint8Array }> {
  const isWrite = type === VIRTIO_BLK_T_OUT;
  const len = typeof data === 'number' ? data : data.length;
  const req = blkRequest(fe.guest, type, sector, [len], !isWrite);
  if (data instanceof Uint8Array) fe.guest.write(req.dataGpas[0]!, data);
  const mq = fe.queues[q]!;
  const target = mq.usedIdx() + 1;
  mq.addChain(req.buffers);
  fe.kick(q);
  await fe.waitUsed(q, target);
  mq.takeUsed();
  return { status: fe.guest.view(req.statusGpa, 1)[0]!, data: new Uint8Array(fe.guest.view(req.dataGpas[0]!, len)) };
}

test('two workers serve two queues, drain on GET_VRING_BASE and survive a reconnect', async (t) => {
  const fx = startDaemon({ numQueues: 2, workers: 2 });
  t.teardown(() => fx.cleanup());
  await new Promise((r) => setTimeout(r, 300)); // workers start before the daemon accepts
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 2, queueSize: 64 });
  const a = pattern(8192, 4);
  const b = pattern(4096, 5);
  const [wa, wb] = await Promise.all([io(fe, 0, VIRTIO_BLK_T_OUT, 0, a), io(fe, 1, VIRTIO_BLK_T_OUT, 64, b)]);
  t.is(wa.status, VIRTIO_BLK_S_OK);
  t.is(wb.status, VIRTIO_BLK_S_OK);
  const [ra, rb] = await Promise.all([io(fe, 1, VIRTIO_BLK_T_IN, 0, 8192), io(fe, 0, VIRTIO_BLK_T_IN, 64, 4096)]);
  t.deepEqual(ra.data, a, 'queue 1 reads what queue 0 wrote');
  t.deepEqual(rb.data, b, 'queue 0 reads what queue 1 wrote');
  t.true(fe.takeCalls(0) >= 1 && fe.takeCalls(1) >= 1, 'both queues signalled by their workers');
  t.is(fx.daemon.device!.stats.writes + fx.daemon.device!.stats.reads, 0, 'the main thread processed no request');

  const state = new Uint8Array(8);
  new DataView(state.buffer).setUint32(0, 1, true);
  const base = await fe.call(FrontendReq.GET_VRING_BASE, state);
  t.is(new DataView(base.payload.buffer, base.payload.byteOffset).getUint32(4, true), 2, 'queue 1 popped two chains');

  await new Promise((r) => setTimeout(r, 1200));
  const status = fx.daemon.status();
  t.is(status.stats.writes, 2);
  t.is(status.stats.reads, 2);

  fe.disconnect();
  const fe2 = fx.connect();
  await fe2.negotiate({ numQueues: 2, queueSize: 64 });
  const again = await io(fe2, 1, VIRTIO_BLK_T_IN, 0, 8192);
  t.deepEqual(again.data, a, 'a new connection is served by the workers');
});
