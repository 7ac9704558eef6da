/**
 * A request still in flight when the front-end disconnects (or the daemon is stopped with
 * SIGTERM) completes during the drain; the guest must be signalled for it before the call
 * eventfd is closed, or it never learns the request finished (a hung guest after a graceful
 * restart). We hold a write in a gated store, disconnect, release it, and read the call
 * eventfd's counter.
 */
import fs from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { FileStore } from '../src/block-store/file-store.js';
import type { BlockStore, IoCallback } from '../src/block-store/block-store.js';
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_OUT } from '../src/blk/request.js';
import { blkRequest } from '../testing/mock-driver.js';
import { pattern, startDaemon } from './helpers.js';

/** Holds writes until `release()`. */
class GatedStore implements BlockStore {
  private held: (() => void)[] = [];
  constructor(private readonly inner: FileStore) {}
  get sizeBytes(): number { return this.inner.sizeBytes; }
  get readOnly(): boolean { return false; }
  get supportsDiscard(): boolean { return true; }
  get serial(): string { return 'gated'; }
  get heldCount(): number { return this.held.length; }
  readv(o: number, v: Uint8Array[], cb: IoCallback): void { this.inner.readv(o, v, cb); }
  writev(o: number, v: Uint8Array[], cb: IoCallback): void { this.held.push(() => this.inner.writev(o, v, cb)); }
  flush(cb: IoCallback): void { this.inner.flush(cb); }
  discard(o: number, l: number, cb: IoCallback): void { this.inner.discard(o, l, cb); }
  writeZeroes(o: number, l: number, u: boolean, cb: IoCallback): void { this.inner.writeZeroes(o, l, u, cb); }
  close(cb: IoCallback): void { this.inner.close(cb); }
  release(): void { for (const h of this.held.splice(0)) h(); }
}


/** A daemon over a GatedStore, a front-end, and one 4 KiB write held in flight by the store. */
async function oneHeldWrite(t: ExecutionContext, seed: number) {
  let gated: GatedStore | undefined;
  const fx = startDaemon({ numQueues: 1, storeFactory: (inner) => (gated = new GatedStore(inner)) });
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 1, queueSize: 64 });
  const req = blkRequest(fe.guest, VIRTIO_BLK_T_OUT, 0, [4096], false);
  fe.guest.write(req.dataGpas[0]!, pattern(4096, seed));
  fe.queues[0]!.addChain(req.buffers);
  fe.kick(0);
  const deadline = Date.now() + 3000;
  while (gated!.heldCount === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  t.is(gated!.heldCount, 1, 'the write is in flight');
  return { fx, fe, gated: gated!, req };
}

test('a request completed during the disconnect drain is signalled to the guest', async (t) => {
  const { fx, fe, gated, req } = await oneHeldWrite(t, 1);

  // Keep the call eventfd open on our side: it is what the guest would be woken through.
  const callFd = fe.callFds[0]!;
  fe.callFds = [];
  t.teardown(() => fs.closeSync(callFd));
  fe.disconnect();
  await new Promise((r) => setTimeout(r, 50));
  gated.release();
  await fe.waitUsed(0, 1);
  const b = Buffer.alloc(8);
  let signals = 0;
  const until = Date.now() + 2000;
  while (Date.now() < until) {
    try {
      fs.readSync(callFd, b, 0, 8, null);
      signals = Number(b.readBigUInt64LE(0));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  t.is(fe.guest.view(req.statusGpa, 1)[0], VIRTIO_BLK_S_OK);
  t.true(signals >= 1, 'the guest was signalled for the request completed during the drain');
});

test('a graceful stop (SIGTERM) completes and signals requests in flight before it disconnects', async (t) => {
  const { fx, fe, gated, req } = await oneHeldWrite(t, 2);

  let stopped = false;
  fx.daemon.stop(() => { stopped = true; });
  // Why it matters: QEMU restores a ring it cannot query from the used index it reads at the
  // disconnect; a completion landing after that is processed again by the next back-end.
  t.false(await fe.waitClosed(300), 'the daemon disconnected with a request still in flight');
  t.false(stopped);
  gated.release();
  await fe.waitUsed(0, 1);
  t.is(fe.guest.view(req.statusGpa, 1)[0], VIRTIO_BLK_S_OK);
  t.true(await fe.waitClosed(3000), 'the daemon disconnects once the drain is done');
  const until = Date.now() + 3000;
  while (!stopped && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  t.true(stopped);
});
