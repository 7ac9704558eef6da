/**
 * Inflight I/O tracking across a back-end crash (vhost-user.rst "Inflight I/O tracking").
 * A first daemon hands out the region (GET_INFLIGHT_FD) and serves a few requests; we then
 * stop it and forge what a daemon killed mid-flight leaves in shared memory: three heads
 * marked in flight, plus one head that reached the used ring before the crash but was not
 * yet cleared in the region. A second daemon gets the region with SET_INFLIGHT_FD and must
 * resubmit exactly the three, in submission order, and continue the used ring after them.
 */
import fs from 'node:fs';
import test from 'ava';
import { pino } from 'pino';
import * as native from '../../native/index.js';
import { FileStore } from '../src/block-store/file-store.js';
import type { BlockStore, IoCallback } from '../src/block-store/block-store.js';
import { VhostDaemon } from '../src/daemon.js';
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../src/blk/request.js';
import { QueueInflight } from '../src/virtio/inflight.js';
import { VHOST_USER_PROTOCOL_F_CONFIG, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, VHOST_USER_PROTOCOL_F_MQ, VHOST_USER_PROTOCOL_F_REPLY_ACK } from '../src/vhost-user/features.js';
import { blkRequest } from '../testing/mock-driver.js';
import { TestFrontend } from '../testing/test-frontend.js';
import { pattern, startDaemon } from './helpers.js';

const PROTOCOL = VHOST_USER_PROTOCOL_F_MQ | VHOST_USER_PROTOCOL_F_REPLY_ACK | VHOST_USER_PROTOCOL_F_CONFIG | VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD;
const QUEUE_SIZE = 16;

/** Records the order of data operations, then forwards to the file store. */
class RecordingStore implements BlockStore {
  readonly calls: string[] = [];
  constructor(private readonly inner: FileStore) {}
  get sizeBytes(): number { return this.inner.sizeBytes; }
  get readOnly(): boolean { return this.inner.readOnly; }
  get supportsDiscard(): boolean { return this.inner.supportsDiscard; }
  get serial(): string { return this.inner.serial; }
  readv(o: number, v: Uint8Array[], cb: IoCallback): void { this.calls.push(`read@${o / 512}`); this.inner.readv(o, v, cb); }
  writev(o: number, v: Uint8Array[], cb: IoCallback): void { this.calls.push(`write@${o / 512}`); this.inner.writev(o, v, cb); }
  flush(cb: IoCallback): void { this.inner.flush(cb); }
  discard(o: number, l: number, cb: IoCallback): void { this.inner.discard(o, l, cb); }
  writeZeroes(o: number, l: number, u: boolean, cb: IoCallback): void { this.inner.writeZeroes(o, l, u, cb); }
  close(cb: IoCallback): void { this.inner.close(cb); }
}

test('a restarted daemon resubmits the requests the dead one left in flight, in order, exactly once', async (t) => {
  const fx = startDaemon({ numQueues: 1 });
  t.teardown(() => fx.cleanup());
  const fe1 = fx.connect();
  const neg = await fe1.negotiate({ numQueues: 1, queueSize: QUEUE_SIZE, inflight: 'get', protocolFeatures: PROTOCOL });
  t.true(neg.inflightFd !== undefined && neg.inflightFd >= 0, 'GET_INFLIGHT_FD returned an fd');
  const mq = fe1.queues[0]!;
  const old = pattern(4096, 1);
  const w = blkRequest(fe1.guest, VIRTIO_BLK_T_OUT, 0, [4096], false);
  fe1.guest.write(w.dataGpas[0]!, old);
  mq.addChain(w.buffers);
  fe1.kick(0);
  await fe1.waitUsed(0, 1);
  mq.takeUsed();

  // Stop the first daemon; rings and the inflight region stay in "QEMU's" memory.
  const region = new Uint8Array(native.mapShared(neg.inflightFd!, neg.inflightSize!, 0));
  const state = new QueueInflight(region, QUEUE_SIZE);
  t.is(state.version, 1, 'the daemon stamped the region');
  t.is(state.usedIdx, 1, 'used_idx tracked after the completed request');
  fe1.disconnect();
  await new Promise<void>((r) => fx.daemon.stop(r));

  // Forge a crash: R1 write@8, R2 write@16, R3 read@0 in flight; H completed but not cleared.
  const reqs = [
    blkRequest(fe1.guest, VIRTIO_BLK_T_OUT, 8, [4096], false),
    blkRequest(fe1.guest, VIRTIO_BLK_T_OUT, 16, [4096], false),
    blkRequest(fe1.guest, VIRTIO_BLK_T_IN, 0, [4096], true),
  ];
  fe1.guest.write(reqs[0]!.dataGpas[0]!, pattern(4096, 2));
  fe1.guest.write(reqs[1]!.dataGpas[0]!, pattern(4096, 3));
  const heads = reqs.map((r) => mq.addChain(r.buffers));
  const h = blkRequest(fe1.guest, VIRTIO_BLK_T_OUT, 24, [512], false);
  const hHead = mq.addChain(h.buffers);
  state.recover(1, () => 0); // adopt the daemon's counter
  for (const head of heads) state.markInflight(head);
  state.markInflight(hHead);
  // The dead daemon had put H on the used ring (position 1) and published used.idx = 2.
  const usedAt = mq.usedGpa - fe1.guest.gpaBase;
  fe1.guest.dv.setUint32(usedAt + 4 + 8 * 1, hHead, true);
  fe1.guest.dv.setUint32(usedAt + 4 + 8 * 1 + 4, 1, true);
  fe1.guest.dv.setUint16(usedAt + 2, 2, true);

  const store = new RecordingStore(FileStore.open(fx.filePath));
  const daemon = new VhostDaemon({ store, numQueues: 1, log: pino({ level: process.env.STRATA_TEST_LOG ?? 'silent' }), socketPath: fx.socketPath + '.2' });
  daemon.start();
  t.teardown(() => new Promise<void>((r) => daemon.stop(() => store.close(() => r()))));
  const fe2 = TestFrontend.reconnect(fx.socketPath + '.2', fe1);
  t.teardown(() => fe2.close());
  // QEMU sends last_avail = used idx when GET_VRING_BASE failed (restore_last_avail_idx).
  await fe2.negotiate({ numQueues: 1, queueSize: QUEUE_SIZE, inflight: { fd: neg.inflightFd!, mmapSize: neg.inflightSize! }, protocolFeatures: PROTOCOL, queues: [mq] });
  await fe2.waitUsed(0, 5);
  const used = mq.takeUsed();
  t.deepEqual(used.slice(1).map((u) => u.id).sort(), [...heads].sort(), 'exactly the three in-flight heads were completed again');
  t.false(used.slice(1).some((u) => u.id === hHead), 'the head already on the used ring was not resubmitted');
  t.deepEqual(store.calls, ['write@8', 'write@16', 'read@0'], 'resubmitted in submission (counter) order');
  for (const r of reqs) t.is(fe1.guest.view(r.statusGpa, 1)[0], VIRTIO_BLK_S_OK);
  t.deepEqual(new Uint8Array(fe1.guest.view(reqs[2]!.dataGpas[0]!, 4096)), old, 'the resubmitted read returned the data');
  const disk = fs.readFileSync(fx.filePath);
  t.deepEqual(new Uint8Array(disk.subarray(8 * 512, 8 * 512 + 4096)), pattern(4096, 2));
  t.deepEqual(new Uint8Array(disk.subarray(16 * 512, 16 * 512 + 4096)), pattern(4096, 3));
  t.false(state.isInflight(hHead) || heads.some((x) => state.isInflight(x)), 'nothing left in flight');
  t.is(state.usedIdx, 5);

  // New requests continue after the recovered ones.
  const next = blkRequest(fe1.guest, VIRTIO_BLK_T_IN, 16, [4096], true);
  mq.addChain(next.buffers);
  fe2.kick(0);
  await fe2.waitUsed(0, 6);
  t.deepEqual(new Uint8Array(fe1.guest.view(next.dataGpas[0]!, 4096)), pattern(4096, 3));
  native.unmap(region.buffer as ArrayBuffer);
  fs.closeSync(neg.inflightFd!);
});
