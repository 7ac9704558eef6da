/**
 * End-to-end through the real socket: a test front-end negotiates like QEMU, shares a memfd
 * as guest RAM and submits virtio-blk requests; we check statuses, used lengths, data in the
 * backing file, call signals, and that the daemon serves the next connection after a close.
 */
import fs from 'node:fs';
import test from 'ava';
import { blkRequest, rangesPayload } from '../testing/mock-driver.js';
import {
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
} from '../src/blk/request.js';
import type { TestFrontend } from '../testing/test-frontend.js';
import { pattern, startDaemon } from './helpers.js';

async function submit(fe: TestFrontend, q: number, type: number, sector: number, data: Uint8Array | number[], dataWritable: boolean) {
  const lengths = Array.isArray(data) ? data : [data.length];
  const req = blkRequest(fe.guest, type, sector, type === VIRTIO_BLK_T_FLUSH ? [] : lengths, dataWritable);
  if (data instanceof Uint8Array && !dataWritable) fe.guest.write(req.dataGpas[0]!, data);
  const mq = fe.queues[q]!;
  const before = mq.usedIdx();
  const head = mq.addChain(req.buffers);
  fe.kick(q);
  await fe.waitUsed(q, before + 1);
  const [used] = mq.takeUsed();
  return { head, used: used!, status: fe.guest.view(req.statusGpa, 1)[0]!, req };
}

test('serves reads, writes, flush, GET_ID, discard and write-zeroes over two queues', async (t) => {
  const fx = startDaemon({ sizeBytes: 8 << 20, numQueues: 2 });
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  const { config } = await fe.negotiate({ numQueues: 2, queueSize: 128 });
  t.is(new DataView(config.buffer, config.byteOffset).getBigUint64(0, true), BigInt((8 << 20) / 512), 'capacity in sectors');

  const data = pattern(8192, 1);
  const w = await submit(fe, 0, VIRTIO_BLK_T_OUT, 16, data, false);
  t.is(w.status, VIRTIO_BLK_S_OK);
  t.is(w.used.id, w.head);
  t.is(w.used.len, 1, 'a write reports only the status byte as written');
  const onDisk = Buffer.alloc(8192);
  const fd = fs.openSync(fx.filePath, 'r');
  fs.readSync(fd, onDisk, 0, 8192, 16 * 512);
  t.deepEqual(new Uint8Array(onDisk), data, 'bytes reached the backing file at sector 16');

  const r = await submit(fe, 1, VIRTIO_BLK_T_IN, 16, [4096, 4096], true);
  t.is(r.status, VIRTIO_BLK_S_OK);
  t.is(r.used.len, 8193);
  const readBack = new Uint8Array(8192);
  readBack.set(fe.guest.view(r.req.dataGpas[0]!, 4096), 0);
  readBack.set(fe.guest.view(r.req.dataGpas[1]!, 4096), 4096);
  t.deepEqual(readBack, data, 'read on queue 1 returns what queue 0 wrote');
  t.true(fe.takeCalls(1) >= 1, 'the guest was signalled on queue 1');

  t.is((await submit(fe, 0, VIRTIO_BLK_T_FLUSH, 0, [], false)).status, VIRTIO_BLK_S_OK);
  const id = await submit(fe, 0, VIRTIO_BLK_T_GET_ID, 0, [20], true);
  t.is(id.status, VIRTIO_BLK_S_OK);
  t.is(Buffer.from(fe.guest.view(id.req.dataGpas[0]!, 16)).toString(), 'strata-test-disk');

  const discard = await submit(fe, 0, VIRTIO_BLK_T_DISCARD, 0, rangesPayload([{ sector: 16, sectorCount: 8, flags: 0 }]), false);
  t.is(discard.status, VIRTIO_BLK_S_OK);
  fs.readSync(fd, onDisk, 0, 8192, 16 * 512);
  t.deepEqual(new Uint8Array(onDisk.subarray(0, 4096)), new Uint8Array(4096), 'discarded range reads zeros');
  t.deepEqual(new Uint8Array(onDisk.subarray(4096)), data.subarray(4096), 'data after the discarded range is intact');

  const wz = await submit(fe, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, rangesPayload([{ sector: 24, sectorCount: 8, flags: 1 }]), false);
  t.is(wz.status, VIRTIO_BLK_S_OK);
  fs.readSync(fd, onDisk, 0, 8192, 16 * 512);
  t.deepEqual(new Uint8Array(onDisk), new Uint8Array(8192), 'write-zeroes zeroed the rest');
  fs.closeSync(fd);

  const discardUnmap = await submit(fe, 0, VIRTIO_BLK_T_DISCARD, 0, rangesPayload([{ sector: 0, sectorCount: 8, flags: 1 }]), false);
  t.is(discardUnmap.status, VIRTIO_BLK_S_UNSUPP, 'unmap flag on a discard is UNSUPP (VIRTIO 1.2 §5.2.6.2)');
  const past = await submit(fe, 0, VIRTIO_BLK_T_IN, (8 << 20) / 512 - 4, [4096], true);
  t.is(past.status, VIRTIO_BLK_S_IOERR, 'a read past capacity is IOERR');
  t.is(past.used.len, 1);
  const unknown = await submit(fe, 0, 99, 0, [512], true);
  t.is(unknown.status, VIRTIO_BLK_S_UNSUPP);
});

test('accepts the next front-end after a disconnect and keeps the data', async (t) => {
  const fx = startDaemon({ numQueues: 1 });
  t.teardown(() => fx.cleanup());
  const first = fx.connect();
  await first.negotiate({ numQueues: 1, queueSize: 64 });
  const data = pattern(4096, 9);
  t.is((await submit(first, 0, VIRTIO_BLK_T_OUT, 100, data, false)).status, VIRTIO_BLK_S_OK);
  first.close();
  const second = fx.connect();
  await second.negotiate({ numQueues: 1, queueSize: 64 });
  const r = await submit(second, 0, VIRTIO_BLK_T_IN, 100, [4096], true);
  t.is(r.status, VIRTIO_BLK_S_OK);
  t.deepEqual(new Uint8Array(second.guest.view(r.req.dataGpas[0]!, 4096)), data);
});

test('read-only device refuses writes with IOERR and offers VIRTIO_BLK_F_RO', async (t) => {
  const fx = startDaemon({ numQueues: 1, readOnly: true });
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  const { features } = await fe.negotiate({ numQueues: 1, queueSize: 64 });
  t.true((features & (1n << 5n)) !== 0n, 'VIRTIO_BLK_F_RO offered');
  t.is((await submit(fe, 0, VIRTIO_BLK_T_OUT, 0, pattern(512, 1), false)).status, VIRTIO_BLK_S_IOERR);
  t.is((await submit(fe, 0, VIRTIO_BLK_T_IN, 0, [512], true)).status, VIRTIO_BLK_S_OK);
});
