/**
 * Seeded randomised vhost-user messages over the real socket: 1500 messages with random
 * request codes (mostly known ones), flags, sizes, payload bytes (mostly well-shaped, then
 * bit-flipped) and fd counts, on fresh connections, some of which first negotiated features,
 * shared guest memory and started a ring so the messages reach deeper states.
 *
 * Checked: the daemon never crashes (it runs in this process: a throw fails the test); every
 * connection either answers a final probe (GET_QUEUE_NUM) or is closed, never hangs; every
 * message that is certainly malformed (bad version, size > 4096, unknown request, fds on a
 * message that takes none, queue index out of range) closes its connection; afterwards the
 * eventfds sent are all closed again and a clean connection negotiates and does I/O.
 *
 * Reproduce a failure with STRATA_FUZZ_SEED=<seed> (printed in every failure message).
 */
import fs from 'node:fs';
import test from 'ava';
import * as native from '../../native/index.js';
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../src/blk/request.js';
import { FrontendReq as R, HEADER_SIZE, encodeRequest } from '../src/vhost-user/message.js';
import { blkRequest, MockGuest, MockSplitQueue, prng } from '../testing/mock-driver.js';
import { eventfdCount, MessageReader, memTablePayload, u32pair, u64, vhostHeader, vringAddrPayload, type GuestLayout } from '../testing/vhost-wire.js';
import { pattern, startDaemon } from './helpers.js';

const SEED = process.env.STRATA_FUZZ_SEED !== undefined ? Number(process.env.STRATA_FUZZ_SEED) : 0x3e55a9e5;
const MESSAGES = process.env.STRATA_FUZZ_SEED !== undefined ? 10000 : 1500;
const NUM_QUEUES = 2;
const GPA_BASE = 0x100000;
const VA_BASE = 0x7f3400000000;
const MEM_BYTES = 1 << 20;
const LAYOUT: GuestLayout = { gpaBase: GPA_BASE, vaBase: VA_BASE, memBytes: MEM_BYTES };

/** Requests that never carry an fd. */
const NO_FD_REQUESTS = new Set<number>([1, 2, 3, 4, 8, 9, 10, 11, 15, 16, 17, 18, 24, 25, 36]);
/** Requests whose payload starts with a u32 queue index (vhost_vring_state / vring_addr). */
const INDEXED_REQUESTS = new Map<number, number>([
  [R.SET_VRING_NUM, 8],
  [R.SET_VRING_BASE, 8],
  [R.GET_VRING_BASE, 8],
  [R.SET_VRING_ENABLE, 8],
  [R.SET_VRING_ADDR, 40],
]);
/** Codes no vhost-user-blk back-end implements or that are not in the spec. */
const NEVER_SUPPORTED = (request: number): boolean => request === 0 || request > 40 || request === R.SEND_RARP || request === R.NET_SET_MTU || request === R.SET_LOG_BASE;

/** What QEMU's vhost-user-blk sends (the probe GET_QUEUE_NUM excluded). */
const COMMON_REQUESTS = [
  R.GET_FEATURES, R.SET_FEATURES, R.SET_OWNER, R.GET_PROTOCOL_FEATURES, R.SET_PROTOCOL_FEATURES, R.SET_VRING_NUM, R.SET_VRING_ADDR,
  R.SET_VRING_BASE, R.GET_VRING_BASE, R.SET_VRING_KICK, R.SET_VRING_CALL, R.SET_VRING_ERR, R.SET_VRING_ENABLE, R.GET_CONFIG,
  R.SET_CONFIG, R.GET_MAX_MEM_SLOTS, R.SET_MEM_TABLE,
];

type Rng = () => number;
const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)]!;

/** A bare front-end that keeps every reply (the fuzz cannot know how many will come). */
class RawFrontend {
  readonly fd: number;
  readonly replies: { request: number; payload: Uint8Array }[] = [];
  closed = false;
  private readonly poller: native.Poller;
  private readonly reader: MessageReader;

  constructor(socketPath: string) {
    this.fd = native.unixConnect(socketPath);
    this.reader = new MessageReader(this.fd);
    this.poller = new native.Poller(this.fd, () => this.onReadable());
    this.poller.start(native.READABLE | native.DISCONNECT);
  }

  private onReadable(): void {
    const messages = this.reader.read((fds) => {
      for (const fd of fds) fs.closeSync(fd);
    });
    if (messages === null) {
      this.closed = true;
      this.poller.stop();
      return;
    }
    for (const m of messages) this.replies.push({ request: m.header.request, payload: m.payload });
  }

  sendRaw(bytes: Uint8Array, fds: number[] = []): boolean {
    try {
      return native.sendMsg(this.fd, bytes, fds) === bytes.length;
    } catch {
      return false; // EPIPE / ECONNRESET: the daemon already closed us
    }
  }

  /** Waits for a reply to `request` (true) or the close (false); throws on a hang. */
  async await(request: number, timeoutMs = 3000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.replies.findIndex((r) => r.request === request);
      if (i >= 0) {
        this.replies.splice(0, i + 1);
        return true;
      }
      if (this.closed) return false;
      if (Date.now() > deadline) throw new Error(`no reply to request ${request} and no close within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  close(): void {
    this.poller.close();
    fs.closeSync(this.fd);
  }
}

/** Guest RAM in a memfd plus one ring, for connections that get a valid prefix. */
interface Guest {
  memfd: number;
  guest: MockGuest;
}

function newGuest(): Guest {
  const memfd = native.memfdCreate('fuzz-guest', MEM_BYTES);
  return { memfd, guest: new MockGuest(native.mapShared(memfd, MEM_BYTES, 0), GPA_BASE) };
}


/** Features, protocol features (REPLY_ACK), memory, and ring 0 started. Returns the ring. */
async function validPrefix(fe: RawFrontend, g: Guest, withRing: boolean): Promise<{ mq: MockSplitQueue; kick: number } | null> {
  fe.sendRaw(encodeRequest(R.GET_FEATURES, new Uint8Array(0)));
  if (!(await fe.await(R.GET_FEATURES))) throw new Error('GET_FEATURES failed');
  fe.sendRaw(encodeRequest(R.SET_FEATURES, u64((1n << 32n) | (1n << 30n) | (1n << 28n) | (1n << 29n))));
  fe.sendRaw(encodeRequest(R.SET_PROTOCOL_FEATURES, u64(0b1000001001)));
  fe.sendRaw(encodeRequest(R.SET_MEM_TABLE, memTablePayload(LAYOUT), true), [g.memfd]);
  if (!(await fe.await(R.SET_MEM_TABLE))) throw new Error('SET_MEM_TABLE failed');
  if (!withRing) return null;
  const mq = new MockSplitQueue(g.guest, 16);
  const kick = native.eventfd(0, true);
  const call = native.eventfd(0, true);
  fe.sendRaw(encodeRequest(R.SET_VRING_NUM, u32pair(0, 16)));
  fe.sendRaw(encodeRequest(R.SET_VRING_BASE, u32pair(0, 0)));
  fe.sendRaw(encodeRequest(R.SET_VRING_ADDR, vringAddrPayload(LAYOUT, 0, mq)));
  fe.sendRaw(encodeRequest(R.SET_VRING_KICK, u64(0)), [kick]);
  fe.sendRaw(encodeRequest(R.SET_VRING_CALL, u64(0)), [call]);
  fs.closeSync(call);
  fe.sendRaw(encodeRequest(R.SET_VRING_ENABLE, u32pair(0, 1), true));
  if (!(await fe.await(R.SET_VRING_ENABLE))) throw new Error('ring setup failed');
  return { mq, kick };
}

interface Mutant {
  bytes: Uint8Array;
  fds: number;
  mustClose: string | null;
}

/** One random message, biased towards well-formed shapes. */
function randomMessage(rng: Rng, ring: MockSplitQueue | null): Mutant {
  const roll = rng();
  const request =
    roll < 0.7
      ? pick(rng, COMMON_REQUESTS)
      : roll < 0.93
        ? pick(rng, Object.values(R).filter((r) => r !== R.GET_QUEUE_NUM))
        : pick(rng, [0, 41, 42, 99, 0x7fffffff, 0xffffffff, int(rng, 0x100000000)]);
  let payload: Uint8Array;
  const shape = rng();
  if (shape < 0.8) {
    // Well-shaped for the request, small plausible numbers.
    const index = rng() < 0.8 ? int(rng, NUM_QUEUES) : pick(rng, [NUM_QUEUES, 255, 0x100, int(rng, 0x10000)]);
    switch (request) {
      case R.SET_FEATURES:
      case R.SET_PROTOCOL_FEATURES:
        payload = u64(rng() < 0.7 ? 0n : BigInt(int(rng, 0x100000000)) << BigInt(int(rng, 33)));
        break;
      case R.SET_VRING_NUM:
      case R.SET_VRING_BASE:
      case R.GET_VRING_BASE:
      case R.SET_VRING_ENABLE:
        payload = u32pair(index, pick(rng, [0, 1, 1, 16, 16, 64, 1024, 1023, 0xffff, 0x10000, int(rng, 0x100000000)]));
        break;
      case R.SET_VRING_ADDR:
        payload = ring !== null && rng() < 0.5 ? vringAddrPayload(LAYOUT, index, ring) : Uint8Array.from({ length: 40 }, () => int(rng, 256));
        new DataView(payload.buffer).setUint32(0, index, true);
        break;
      case R.SET_VRING_KICK:
      case R.SET_VRING_CALL:
      case R.SET_VRING_ERR:
        payload = u64(index | (rng() < 0.3 ? 0x100 : 0));
        break;
      case R.GET_CONFIG:
      case R.SET_CONFIG: {
        const size = pick(rng, [0, 1, 4, 8, 60, 256, 257]);
        payload = new Uint8Array(12 + Math.min(size, 300));
        const dv = new DataView(payload.buffer);
        dv.setUint32(0, pick(rng, [0, 8, 32, 34, 60, 255, 256, 300]), true);
        dv.setUint32(4, size, true);
        break;
      }
      case R.SET_MEM_TABLE:
        payload = memTablePayload(LAYOUT);
        new DataView(payload.buffer).setUint32(0, pick(rng, [0, 1, 2, 8, 9]), true);
        break;
      default:
        payload = new Uint8Array(pick(rng, [0, 8, 24, 40]));
    }
  } else {
    payload = Uint8Array.from({ length: pick(rng, [0, 1, 7, 8, 12, 39, 40, 64, 264, 4096]) }, () => int(rng, 256));
  }
  if (rng() < 0.3 && payload.length > 0) {
    const at = int(rng, payload.length);
    payload[at]! ^= 1 << int(rng, 8);
  }
  let flags = 1 | (rng() < 0.3 ? 0x8 : 0);
  if (rng() < 0.04) flags = pick(rng, [0, 2, 3, 0x5 & ~1, int(rng, 0x100000000)]);
  const fds = rng() < 0.12 ? 1 + int(rng, 3) : 0;
  let size = payload.length;
  const oversize = rng() < 0.02;
  if (oversize) size = pick(rng, [4097, 65536, 0xffffffff]);
  const bytes = new Uint8Array(HEADER_SIZE + (oversize ? 0 : payload.length));
  bytes.set(vhostHeader(request, flags, size));
  if (!oversize) bytes.set(payload, HEADER_SIZE);

  let mustClose: string | null = null;
  if ((flags & 3) !== 1) mustClose = 'bad version';
  else if (size > 4096) mustClose = 'oversize';
  else if (NEVER_SUPPORTED(request >>> 0)) mustClose = 'unknown request';
  else if (fds > 0 && NO_FD_REQUESTS.has(request)) mustClose = 'fds on a message that takes none';
  else if (INDEXED_REQUESTS.get(request) === payload.length && fds === 0 && new DataView(payload.buffer).getUint32(0, true) >= NUM_QUEUES) mustClose = 'queue index out of range';
  return { bytes, fds, mustClose };
}

test(`1500 mutated vhost-user messages never crash the daemon; malformed ones close their connection (seed 0x${SEED.toString(16)})`, async (t) => {
  const fx = startDaemon({ numQueues: NUM_QUEUES, sizeBytes: 1 << 20 });
  t.teardown(() => fx.cleanup());
  const rng = prng(SEED);
  const where = (i: number): string => `seed 0x${SEED.toString(16)} message ${i} (reproduce with STRATA_FUZZ_SEED=${SEED})`;
  const eventfdsBefore = eventfdCount();
  const stats = { messages: 0, connections: 0, closed: 0, mustClose: 0, answered: 0 };
  const failures: string[] = [];
  while (stats.messages < MESSAGES && failures.length < 5) {
    const fe = new RawFrontend(fx.socketPath);
    stats.connections++;
    const g = rng() < 0.25 ? newGuest() : null;
    let ring: { mq: MockSplitQueue; kick: number } | null = null;
    try {
      if (g !== null) ring = await validPrefix(fe, g, rng() < 0.7);
      let expectClose: string | null = null;
      const count = 1 + int(rng, 3);
      for (let k = 0; k < count && expectClose === null; k++) {
        const m = randomMessage(rng, ring?.mq ?? null);
        const fds = Array.from({ length: m.fds }, () => native.eventfd(0, true));
        fe.sendRaw(m.bytes, fds);
        for (const fd of fds) fs.closeSync(fd);
        stats.messages++;
        if (m.mustClose !== null) expectClose = `${m.mustClose} (request ${new DataView(m.bytes.buffer).getUint32(0, true)})`;
        if (ring !== null && rng() < 0.3) {
          // Let the guest side do something too: a valid request and a kick.
          ring.mq.addChain(blkRequest(g!.guest, VIRTIO_BLK_T_IN, 0, [512], true).buffers);
          fs.writeSync(ring.kick, u64(1));
        }
      }
      if (expectClose === null) fe.sendRaw(encodeRequest(R.GET_QUEUE_NUM, new Uint8Array(0)));
      const answered = expectClose === null ? await fe.await(R.GET_QUEUE_NUM) : false;
      if (expectClose !== null) {
        stats.mustClose++;
        const deadline = Date.now() + 3000;
        while (!fe.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
        if (!fe.closed) failures.push(`${where(stats.messages)}: ${expectClose} did not close the connection`);
      }
      if (answered) stats.answered++;
      if (fe.closed) stats.closed++;
    } catch (err) {
      failures.push(`${where(stats.messages)}: ${(err as Error).message}`);
    } finally {
      fe.close();
      if (ring !== null) fs.closeSync(ring.kick);
      if (g !== null) fs.closeSync(g.memfd);
    }
  }
  t.log(`${stats.messages} messages on ${stats.connections} connections: ${stats.closed} closed by the daemon (${stats.mustClose} certainly malformed), ${stats.answered} answered the probe`);
  t.deepEqual(failures, []);
  t.true(stats.messages >= MESSAGES);
  t.true(stats.mustClose > 50, `only ${stats.mustClose} certainly-malformed messages were generated`);
  t.true(stats.answered > 100, `only ${stats.answered} connections survived their messages`);

  // The daemon is still healthy: a clean connection negotiates and does I/O.
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 1, queueSize: 64 });
  const data = pattern(4096, 42);
  const w = blkRequest(fe.guest, VIRTIO_BLK_T_OUT, 8, [4096], false);
  fe.guest.write(w.dataGpas[0]!, data);
  fe.queues[0]!.addChain(w.buffers);
  const r = blkRequest(fe.guest, VIRTIO_BLK_T_IN, 8, [4096], true);
  fe.queues[0]!.addChain(r.buffers);
  fe.kick(0);
  await fe.waitUsed(0, 2);
  t.is(fe.guest.view(w.statusGpa, 1)[0], VIRTIO_BLK_S_OK);
  t.is(fe.guest.view(r.statusGpa, 1)[0], VIRTIO_BLK_S_OK);
  t.deepEqual(new Uint8Array(fe.guest.view(r.dataGpas[0]!, 4096)), data);
  fe.close();
  await new Promise((r) => setTimeout(r, 50));
  t.is(eventfdCount(), eventfdsBefore, 'every eventfd sent to the daemon was closed again');
});
