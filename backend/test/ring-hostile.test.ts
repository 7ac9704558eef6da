/**
 * Hostile guests and front-ends against a running ring, through the real socket: a guest
 * that breaks the virtqueue protocol marks that device broken (daemon.device.broken, one
 * 'broken' event, one error line), later kicks do nothing, and the daemon serves the next
 * connection; a guest that re-publishes heads still in flight does the same instead of
 * crashing; a memory table that no longer covers a started ring, or a call fd the daemon
 * cannot write, must not crash the daemon either.
 */
import fs from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../src/blk/request.js';
import type { QueueError } from '../src/vhost-user/errors.js';
import { FrontendReq as R } from '../src/vhost-user/message.js';
import { VIRTQ_DESC_F_NEXT } from '../src/virtio/split-queue.js';
import { RecordingStore } from '../testing/guarded-guest.js';
import { blkRequest } from '../testing/mock-driver.js';
import { FRONTEND_VA_BASE, GUEST_GPA_BASE, type TestFrontend } from '../testing/test-frontend.js';
import { pattern, startDaemon, type Fixture } from './helpers.js';

interface LogRecord {
  level: number;
  code?: string;
  err?: { code?: string };
}
const codeOf = (r: LogRecord): string | undefined => r.code ?? r.err?.code;

function daemonWithLog(opts: Parameters<typeof startDaemon>[0] = {}): { fx: Fixture; logs: LogRecord[] } {
  const logs: LogRecord[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogRecord) });
  return { fx: startDaemon({ ...opts, log }), logs };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await sleep(2);
}

async function submit(fe: TestFrontend, type: number, sector: number, data: Uint8Array | number): Promise<{ status: number; dataGpa: number }> {
  const isRead = type === VIRTIO_BLK_T_IN;
  const n = typeof data === 'number' ? data : data.length;
  const req = blkRequest(fe.guest, type, sector, [n], isRead);
  if (typeof data !== 'number') fe.guest.write(req.dataGpas[0]!, data);
  const mq = fe.queues[0]!;
  const before = mq.usedIdx();
  mq.addChain(req.buffers);
  fe.kick(0);
  await fe.waitUsed(0, before + 1);
  mq.takeUsed();
  return { status: fe.guest.view(req.statusGpa, 1)[0]!, dataGpa: req.dataGpas[0]! };
}

async function assertServesCleanConnection(t: ExecutionContext, fx: Fixture, seed: number): Promise<void> {
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 1, queueSize: 64 });
  const data = pattern(4096, seed);
  t.is((await submit(fe, VIRTIO_BLK_T_OUT, 40, data)).status, VIRTIO_BLK_S_OK, 'the next connection writes');
  const r = await submit(fe, VIRTIO_BLK_T_IN, 40, 4096);
  t.is(r.status, VIRTIO_BLK_S_OK);
  t.deepEqual(new Uint8Array(fe.guest.view(r.dataGpa, 4096)), data, 'and reads back');
  t.false(fx.daemon.device?.broken ?? true, 'the new connection has a healthy device');
  fe.close();
}

test('a descriptor loop marks the device broken once; later kicks do nothing; the next connection works', async (t) => {
  const { fx, logs } = daemonWithLog({ numQueues: 1 });
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 1, queueSize: 64 });
  t.is((await submit(fe, VIRTIO_BLK_T_OUT, 0, pattern(512, 1))).status, VIRTIO_BLK_S_OK);
  const device = fx.daemon.device!;
  const events: QueueError[] = [];
  device.on('broken', (e) => events.push(e));
  const mq = fe.queues[0]!;
  const gpa = fe.guest.alloc(16);
  mq.writeDescriptor(mq.descGpa, 10, { gpa, lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 11 });
  mq.writeDescriptor(mq.descGpa, 11, { gpa, lengthBytes: 16, flags: VIRTQ_DESC_F_NEXT, next: 10 });
  mq.publish(10);
  fe.kick(0);
  await waitFor(() => device.broken);
  t.true(device.broken);
  const usedAtBreak = mq.usedIdx();
  // A valid request and the loop again: neither is looked at.
  mq.addChain(blkRequest(fe.guest, VIRTIO_BLK_T_IN, 0, [512], true).buffers);
  mq.publish(10);
  fe.kick(0);
  await sleep(30);
  fe.kick(0);
  await sleep(30);
  t.is(mq.usedIdx(), usedAtBreak, 'no completion after the break');
  t.deepEqual(events.map((e) => e.code), ['VQ_ERR_BAD_HEAD'], "one 'broken' event");
  t.is(logs.filter((r) => r.level === 50 && codeOf(r) === 'VQ_ERR_BAD_HEAD').length, 1, 'one error line');
  t.false(fe.closed, 'the connection itself stays up (QEMU resets the device)');
  fe.close();
  await assertServesCleanConnection(t, fx, 2);
});

test('re-publishing heads still in flight breaks the device without crashing the daemon', async (t) => {
  const store = new RecordingStore(8 << 20, { mode: 'gated' });
  const { fx } = daemonWithLog({ numQueues: 1, store });
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 1, queueSize: 4 });
  const mq = fe.queues[0]!;
  for (let i = 0; i < 4; i++) mq.addIndirectChain(blkRequest(fe.guest, VIRTIO_BLK_T_IN, i, [512], true).buffers);
  fe.kick(0);
  await waitFor(() => store.heldCount === 4);
  t.is(store.heldCount, 4, 'the queue is full of requests in flight');
  mq.publish(0);
  fe.kick(0);
  await waitFor(() => fx.daemon.device?.broken === true);
  t.true(fx.daemon.device?.broken);
  store.release();
  await fe.waitUsed(0, 4);
  store.mode = 'sync';
  fe.close();
  await assertServesCleanConnection(t, fx, 3);
});

test('a SET_MEM_TABLE that no longer covers a started ring closes the connection instead of crashing on the next kick', async (t) => {
  const { fx, logs } = daemonWithLog({ numQueues: 1 });
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 1, queueSize: 64 });
  t.is((await submit(fe, VIRTIO_BLK_T_OUT, 0, pattern(512, 4))).status, VIRTIO_BLK_S_OK);
  // New table: same memfd, but at a front-end VA range that does not hold the rings.
  const p = new Uint8Array(8 + 8 * 32);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, 1, true);
  dv.setBigUint64(8, BigInt(GUEST_GPA_BASE), true);
  dv.setBigUint64(16, BigInt(fe.memBytes), true);
  dv.setBigUint64(24, BigInt(FRONTEND_VA_BASE + 0x10000000000), true);
  fe.send(R.SET_MEM_TABLE, p, [fe.memfd], true);
  await sleep(20);
  // Whatever the answer, a kick must not reach rings in unmapped memory.
  if (!fe.closed) fe.kick(0);
  t.true(await fe.waitClosed(), 'the connection was closed');
  t.true(logs.some((r) => r.level === 40 && codeOf(r) === 'VHU_ERR_BAD_PAYLOAD'));
  fe.close();
  await assertServesCleanConnection(t, fx, 5);
});

test('a call fd the daemon cannot write does not crash it', async (t) => {
  const { fx } = daemonWithLog({ numQueues: 1 });
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 1, queueSize: 64 });
  const readOnly = fs.openSync('/dev/null', 'r');
  t.is(await fe.callAck(R.SET_VRING_CALL, new Uint8Array(8), [readOnly]), 0n);
  fs.closeSync(readOnly);
  t.is((await submit(fe, VIRTIO_BLK_T_OUT, 0, pattern(512, 6))).status, VIRTIO_BLK_S_OK);
  await sleep(20); // the call signal is sent from setImmediate
  t.is((await submit(fe, VIRTIO_BLK_T_IN, 0, 512)).status, VIRTIO_BLK_S_OK, 'still serving');
  fe.close();
  await assertServesCleanConnection(t, fx, 7);
});
