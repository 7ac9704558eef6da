/**
 * Seeded randomised test of the guest-facing data path: thousands of virtio-blk chains,
 * mostly valid and some mutated (bit flips, random flags, lengths, addresses and next
 * indices, random indirect tables, bad heads, avail.idx jumps; biased towards mostly-valid
 * input as Cloud Hypervisor's fuzzers are), go through SplitQueue.popChain, parseBlkRequest
 * and BlkDevice over a guarded guest buffer and an in-memory store.
 *
 * Checked for every seed: nothing throws; every popped chain is completed exactly once
 * (the used ring holds exactly the popped heads); every view the store gets lies inside
 * guest RAM and the guard bytes around it never change; the device either stays healthy or
 * is broken with a known QueueError code; and batches without mutations give exactly the
 * statuses, used lengths and data a model of the disk predicts.
 *
 * Reproduce a failure with STRATA_FUZZ_SEED=<seed> (printed in every failure message).
 */
import test from 'ava';
import { QueueError } from '../src/vhost-user/errors.js';
import { MAX_CHAIN_BYTES, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, type Chain } from '../src/virtio/split-queue.js';
import type { GuestMemory } from '../src/memory/guest-memory.js';
import {
  SECTOR_SIZE,
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
import { deviceHarness, type DeviceHarness } from '../testing/guarded-guest.js';
import { blkRequest, prng, rangesPayload, type BufferSpec } from '../testing/mock-driver.js';

const CAPACITY_SECTORS = 64;
const KNOWN_BREAK_CODES = new Set(['VQ_ERR_AVAIL_IDX_JUMP', 'VQ_ERR_BAD_HEAD', 'VQ_ERR_TOO_MANY_INFLIGHT']);
const SEEDS = process.env.STRATA_FUZZ_SEED !== undefined ? [Number(process.env.STRATA_FUZZ_SEED)] : [0x5eed0001, 0x5eed0002, 0x5eed0003];
const CHAINS_PER_SEED = process.env.STRATA_FUZZ_SEED !== undefined ? 20000 : 1500;

type Rng = () => number;
const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)]!;

interface Planned {
  head: number;
  mutated: boolean;
  statusGpa: number;
  expectStatus: number;
  expectLen: number;
  /** IN: where the data landed, and the sector it came from. */
  readBack?: { gpas: number[]; lengths: number[]; expected: Uint8Array };
}

/** A model of the disk, updated in submission order (the store applies calls in that order in sync mode). */
class DiskModel {
  readonly bytes = new Uint8Array(CAPACITY_SECTORS * SECTOR_SIZE);
}

function randomRequest(rng: Rng, h: DeviceHarness, model: DiskModel, readOnly: boolean): { buffers: BufferSpec[]; planned: Omit<Planned, 'head' | 'mutated'> } {
  const g = h.guest;
  const type = pick(rng, [VIRTIO_BLK_T_IN, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES, 3, 0x42]);
  if (type === VIRTIO_BLK_T_IN || type === VIRTIO_BLK_T_OUT) {
    const lengths = Array.from({ length: 1 + int(rng, 3) }, () => SECTOR_SIZE * (1 + int(rng, 4)));
    const sectors = lengths.reduce((n, l) => n + l, 0) / SECTOR_SIZE;
    const sector = rng() < 0.9 ? int(rng, CAPACITY_SECTORS - sectors + 1) : CAPACITY_SECTORS - sectors + 1 + int(rng, 4);
    const isRead = type === VIRTIO_BLK_T_IN;
    const req = blkRequest(g, type, sector, lengths, isRead);
    const inRange = sector + sectors <= CAPACITY_SECTORS;
    const ok = inRange && !(readOnly && !isRead);
    if (!isRead) {
      let at = sector * SECTOR_SIZE;
      req.dataGpas.forEach((gpa, i) => {
        const data = Uint8Array.from({ length: lengths[i]! }, () => int(rng, 256));
        g.write(gpa, data);
        if (ok) model.bytes.set(data, at);
        at += lengths[i]!;
      });
    }
    const planned: Omit<Planned, 'head' | 'mutated'> = {
      statusGpa: req.statusGpa,
      expectStatus: ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR,
      expectLen: ok && isRead ? sectors * SECTOR_SIZE + 1 : 1,
    };
    // Why a copy now: later requests of the same batch may overwrite these sectors.
    if (ok && isRead) planned.readBack = { gpas: req.dataGpas, lengths, expected: model.bytes.slice(sector * SECTOR_SIZE, (sector + sectors) * SECTOR_SIZE) };
    return { buffers: req.buffers, planned };
  }
  if (type === VIRTIO_BLK_T_FLUSH) {
    const req = blkRequest(g, type, 0, [], false);
    return { buffers: req.buffers, planned: { statusGpa: req.statusGpa, expectStatus: VIRTIO_BLK_S_OK, expectLen: 1 } };
  }
  if (type === VIRTIO_BLK_T_GET_ID) {
    const n = 1 + int(rng, 40);
    const req = blkRequest(g, type, 0, [n], true);
    return { buffers: req.buffers, planned: { statusGpa: req.statusGpa, expectStatus: VIRTIO_BLK_S_OK, expectLen: Math.min(n, 20) + 1 } };
  }
  if (type === VIRTIO_BLK_T_DISCARD || type === VIRTIO_BLK_T_WRITE_ZEROES) {
    const ranges = Array.from({ length: 1 + int(rng, 3) }, () => {
      const sectorCount = 1 + int(rng, 8);
      const sector = rng() < 0.9 ? int(rng, CAPACITY_SECTORS - sectorCount + 1) : CAPACITY_SECTORS - sectorCount + 1;
      return { sector, sectorCount, flags: type === VIRTIO_BLK_T_WRITE_ZEROES && rng() < 0.5 ? 1 : 0 };
    });
    const inRange = ranges.every((r) => r.sector + r.sectorCount <= CAPACITY_SECTORS);
    const payload = rangesPayload(ranges);
    const req = blkRequest(g, type, 0, [payload.length], false);
    g.write(req.dataGpas[0]!, payload);
    const ok = inRange && !readOnly;
    if (ok) for (const r of ranges) model.bytes.fill(0, r.sector * SECTOR_SIZE, (r.sector + r.sectorCount) * SECTOR_SIZE);
    return { buffers: req.buffers, planned: { statusGpa: req.statusGpa, expectStatus: ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR, expectLen: 1 } };
  }
  const req = blkRequest(g, type, 0, [512], true);
  return { buffers: req.buffers, planned: { statusGpa: req.statusGpa, expectStatus: VIRTIO_BLK_S_UNSUPP, expectLen: 1 } };
}

/** Where a chain's descriptors live, so mutations can reach them. */
interface Placed {
  head: number;
  /** Byte offsets (gpa) of each 16-byte descriptor of this chain, main table and indirect. */
  descGpas: number[];
  bufferGpas: number[];
}

function place(rng: Rng, h: DeviceHarness, buffers: BufferSpec[], budget: number): Placed | null {
  const mq = h.mq;
  const useIndirect = buffers.length > budget || rng() < 0.3;
  if (useIndirect) {
    if (budget < 1) return null;
    const head = mq.addIndirectChain(buffers);
    const tableGpa = Number(h.guest.dv.getBigUint64(mq.descGpa - h.guest.gpaBase + head * 16, true));
    return { head, descGpas: [mq.descGpa + head * 16, ...buffers.map((_, i) => tableGpa + i * 16)], bufferGpas: buffers.map((b) => b.gpa) };
  }
  const head = mq.addChain(buffers);
  return { head, descGpas: buffers.map((_, i) => mq.descGpa + ((head + i) % mq.size) * 16), bufferGpas: buffers.map((b) => b.gpa) };
}

function mutate(rng: Rng, h: DeviceHarness, p: Placed): void {
  const g = h.guest;
  const dv = g.dv;
  const off = (gpa: number): number => gpa - g.gpaBase;
  const memEnd = g.gpaBase + g.bytes.length;
  const d = pick(rng, p.descGpas);
  switch (int(rng, 9)) {
    case 0: {
      // Flip one bit anywhere in a descriptor.
      const at = off(d) + int(rng, 16);
      dv.setUint8(at, dv.getUint8(at) ^ (1 << int(rng, 8)));
      break;
    }
    case 1:
      dv.setUint16(off(d) + 12, pick(rng, [0, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 7, int(rng, 0x10000)]), true);
      break;
    case 2:
      dv.setUint32(off(d) + 8, pick(rng, [0, 1, 15, 16, 17, 511, 512, 513, 4096, 0x10000, 0xffffffff, int(rng, 0x100000000)]), true);
      break;
    case 3:
      dv.setBigUint64(off(d), pick(rng, [0n, BigInt(g.gpaBase - 1), BigInt(memEnd - 1), BigInt(memEnd), BigInt(memEnd - 8), 2n ** 53n, 2n ** 64n - 1n, BigInt(g.gpaBase + int(rng, g.bytes.length))]), true);
      break;
    case 4:
      dv.setUint16(off(d) + 14, pick(rng, [0, 1, h.mq.size - 1, h.mq.size, 0xffff, int(rng, 2 * h.mq.size)]), true);
      break;
    case 5: {
      // Corrupt the request header or payload bytes (type, sector, ranges).
      const b = pick(rng, p.bufferGpas);
      const at = off(b) + int(rng, 16);
      dv.setUint8(at, dv.getUint8(at) ^ (1 << int(rng, 8)));
      break;
    }
    case 6: {
      // Point the descriptor at another random descriptor-sized object: an indirect table
      // made of random bytes.
      const table = g.alloc(16 * 4, 16);
      for (let i = 0; i < 64; i++) dv.setUint8(off(table) + i, int(rng, 256));
      dv.setBigUint64(off(d), BigInt(table), true);
      dv.setUint32(off(d) + 8, pick(rng, [16, 32, 64, 48]), true);
      dv.setUint16(off(d) + 12, VIRTQ_DESC_F_INDIRECT, true);
      break;
    }
    case 7:
      // Make the next index point into this chain (a loop) or elsewhere.
      dv.setUint16(off(d) + 12, dv.getUint16(off(d) + 12, true) | VIRTQ_DESC_F_NEXT, true);
      dv.setUint16(off(d) + 14, (p.head + int(rng, 3)) % h.mq.size, true);
      break;
    default:
      // A random 16 bytes.
      for (let i = 0; i < 16; i++) dv.setUint8(off(d) + i, int(rng, 256));
  }
}

async function drain(h: DeviceHarness): Promise<void> {
  for (let i = 0; i < 10000 && h.vring.inflight > 0; i++) await new Promise((r) => setImmediate(r));
  // One more turn so the coalesced notification flush runs too.
  await new Promise((r) => setImmediate(r));
}

interface SeedStats {
  chains: number;
  popped: number;
  breaks: Map<string, number>;
  requestErrors: number;
}

async function runSeed(seed: number, fail: (msg: string) => void): Promise<SeedStats> {
  const rng = prng(seed);
  const stats: SeedStats = { chains: 0, popped: 0, breaks: new Map(), requestErrors: 0 };
  for (let round = 0; stats.chains < CHAINS_PER_SEED; round++) {
    const where = `seed 0x${seed.toString(16)} round ${round}`;
    const readOnly = rng() < 0.1;
    const storeMode = rng() < 0.5 ? 'sync' : 'async';
    const h = deviceHarness({ queueSize: pick(rng, [4, 8, 16, 32, 64]), guestBytes: 1 << 20, diskBytes: CAPACITY_SECTORS * SECTOR_SIZE, storeMode, readOnly, eventIdx: rng() < 0.5 });
    const model = new DiskModel();
    h.store.disk.set(model.bytes);
    const popped: number[] = [];
    const popChain = h.queue.popChain.bind(h.queue);
    h.queue.popChain = (mem: GuestMemory): Chain | QueueError | null => {
      const r = popChain(mem);
      if (r !== null && !(r instanceof QueueError)) {
        popped.push(r.headIndex);
        let bytes = 0;
        for (const s of r.segments) {
          bytes += s.lengthBytes;
          if (!Number.isSafeInteger(s.gpa) || s.gpa < 0) fail(`${where}: segment gpa ${s.gpa} is not a safe address`);
        }
        if (bytes > MAX_CHAIN_BYTES) fail(`${where}: chain of ${bytes} bytes passed the 4 GiB cap`);
      }
      return r;
    };
    const breaks: string[] = [];
    h.device.on('broken', (e) => breaks.push(e.code));
    let usedSeen = 0;
    const pMutate = pick(rng, [0, 0.05, 0.2, 0.5]);
    for (let batch = 0; batch < 12 && !h.device.broken && stats.chains < CHAINS_PER_SEED; batch++) {
      const plans: Planned[] = [];
      let budget = h.mq.size;
      let anyMutation = false;
      const want = 1 + int(rng, Math.min(h.mq.size, 8));
      for (let i = 0; i < want && budget > 0; i++) {
        const { buffers, planned } = randomRequest(rng, h, model, readOnly);
        const placed = place(rng, h, buffers, budget);
        if (placed === null) break;
        budget -= placed.descGpas.length === buffers.length ? buffers.length : 1;
        const mutated = rng() < pMutate;
        if (mutated) {
          anyMutation = true;
          for (let m = 1 + int(rng, 2); m > 0; m--) mutate(rng, h, placed);
        }
        plans.push({ ...planned, head: placed.head, mutated });
        stats.chains++;
      }
      if (rng() < pMutate * 0.05) {
        anyMutation = true;
        if (rng() < 0.5) h.mq.setAvailIdx(h.mq.usedIdx() + h.mq.size + 1 + int(rng, 1000));
        else h.mq.publish(pick(rng, [h.mq.size, 0xffff, int(rng, h.mq.size)]));
      }
      const poppedBefore = popped.length;
      try {
        h.kick();
      } catch (err) {
        fail(`${where} batch ${batch}: processQueue threw ${(err as Error).stack}`);
        return stats;
      }
      await drain(h);
      if (h.vring.inflight !== 0) fail(`${where} batch ${batch}: ${h.vring.inflight} requests never completed`);
      const used = h.mq.takeUsed();
      usedSeen += used.length;
      const batchPopped = popped.slice(poppedBefore).sort((a, b) => a - b);
      const usedIds = used.map((u) => u.id).sort((a, b) => a - b);
      if (JSON.stringify(batchPopped) !== JSON.stringify(usedIds)) {
        fail(`${where} batch ${batch}: popped heads [${batchPopped}] but used [${usedIds}] (each popped chain must complete exactly once)`);
      }
      for (const u of used) if (u.len > MAX_CHAIN_BYTES) fail(`${where}: used len ${u.len}`);
      if (!anyMutation && !h.device.broken) {
        if (used.length !== plans.length) fail(`${where} batch ${batch}: ${plans.length} valid chains but ${used.length} completions`);
        const lenByHead = new Map(used.map((u) => [u.id, u.len]));
        for (const p of plans) {
          const status = h.guest.view(p.statusGpa, 1)[0];
          if (status !== p.expectStatus) fail(`${where} batch ${batch}: head ${p.head} status ${status}, expected ${p.expectStatus}`);
          if (lenByHead.get(p.head) !== p.expectLen) fail(`${where} batch ${batch}: head ${p.head} used len ${lenByHead.get(p.head)}, expected ${p.expectLen}`);
          if (p.readBack && storeMode === 'sync') {
            let at = 0;
            p.readBack.gpas.forEach((gpa, i) => {
              const n = p.readBack!.lengths[i]!;
              if (Buffer.compare(h.guest.view(gpa, n), p.readBack!.expected.subarray(at, at + n)) !== 0) fail(`${where} batch ${batch}: head ${p.head} read data differs from the model at request byte ${at}`);
              at += n;
            });
          }
        }
      }
      // Mutated batches may have written anywhere in the disk; resync the model to the store.
      model.bytes.set(h.store.disk);
    }
    stats.popped += usedSeen;
    stats.requestErrors += h.device.stats.errors;
    for (const code of breaks) {
      if (!KNOWN_BREAK_CODES.has(code)) fail(`${where}: broken with unexpected code ${code}`);
      stats.breaks.set(code, (stats.breaks.get(code) ?? 0) + 1);
    }
    if (breaks.length > 1) fail(`${where}: 'broken' emitted ${breaks.length} times`);
    if (h.store.violations.length > 0) fail(`${where}: store violations: ${h.store.violations.slice(0, 3).join('; ')}`);
    const damaged = h.gg.damagedGuard();
    if (damaged !== -1) fail(`${where}: guard byte ${damaged} outside guest RAM was modified`);
  }
  return stats;
}

for (const seed of SEEDS) {
  test(`thousands of mutated chains never throw, complete exactly once and stay inside guest memory (seed 0x${seed.toString(16)})`, async (t) => {
    const failures: string[] = [];
    const stats = await runSeed(seed, (msg) => {
      if (failures.length < 10) failures.push(msg);
    });
    t.deepEqual(failures, [], `reproduce with STRATA_FUZZ_SEED=${seed}`);
    t.true(stats.chains >= CHAINS_PER_SEED, `seed ${seed}: ${stats.chains} chains generated`);
    // The generator must actually reach both the happy path and the hostile paths.
    t.true(stats.popped > stats.chains / 2, `seed ${seed}: only ${stats.popped} of ${stats.chains} chains were popped`);
    t.true(stats.breaks.size > 0, `seed ${seed}: no chain ever broke the device`);
    t.true(stats.requestErrors > 0 || stats.breaks.size > 1, `seed ${seed}: no request-level error was produced`);
    t.log(`seed 0x${seed.toString(16)}: ${stats.chains} chains, ${stats.popped} completed, breaks ${JSON.stringify([...stats.breaks])}`);
  });
}
