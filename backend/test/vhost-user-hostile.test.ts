/**
 * The vhost-user handler over a real socket, with the test front-end playing a malformed or
 * hostile QEMU: bad headers, oversize payloads, unexpected or missing fds, unknown requests,
 * out-of-range queue indices, bad ring parameters. Each must close that connection with a
 * warn-level log line carrying the error code, release the fds it carried, and leave the
 * daemon able to serve a new connection that negotiates and does I/O. Also checks the
 * REPLY_ACK rules, GET_VRING_BASE draining, and the writeback/writethrough config switch.
 */
import fs from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import * as native from '../../native/index.js';
import { CONFIG_WRITEBACK_OFFSET } from '../src/blk/config.js';
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../src/blk/request.js';
import { VIRTIO_BLK_F_CONFIG_WCE, VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC, bit } from '../src/vhost-user/features.js';
import { FrontendReq as R, encodeRequest, VHOST_USER_VRING_NOFD_MASK } from '../src/vhost-user/message.js';
import { RecordingStore } from '../testing/guarded-guest.js';
import { blkRequest } from '../testing/mock-driver.js';
import { FRONTEND_VA_BASE, GUEST_GPA_BASE, type TestFrontend } from '../testing/test-frontend.js';
import { eventfdCount, u32pair, u64, vhostHeader as header } from '../testing/vhost-wire.js';
import { pattern, startDaemon, type Fixture } from './helpers.js';


interface LogRecord {
  level: number;
  code?: string;
  err?: { code?: string };
  msg?: string;
}

/** The error code a log line carries, at the top level or in its serialized `err`. */
const codeOf = (r: LogRecord): string | undefined => r.code ?? r.err?.code;

/** A daemon whose log records are kept for assertions. */
function daemonWithLog(opts: Parameters<typeof startDaemon>[0] = {}): { fx: Fixture; logs: LogRecord[] } {
  const logs: LogRecord[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogRecord) });
  return { fx: startDaemon({ ...opts, log }), logs };
}

async function expectRejected(t: ExecutionContext, fe: TestFrontend, logs: LogRecord[], code: string, what: string): Promise<void> {
  t.true(await fe.waitClosed(), `${what}: the daemon closed the connection`);
  const logged = (): boolean => logs.some((r) => r.level === 40 && codeOf(r) === code);
  await waitFor(logged);
  t.true(logged(), `${what}: a warn line with code ${code} (codes logged: ${logs.map(codeOf).filter(Boolean).join(', ')})`);
  logs.length = 0;
}

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
}

async function submit(fe: TestFrontend, q: number, type: number, sector: number, data: Uint8Array | number): Promise<{ status: number; len: number; dataGpa: number }> {
  const isRead = type === VIRTIO_BLK_T_IN;
  const n = typeof data === 'number' ? data : data.length;
  const req = blkRequest(fe.guest, type, sector, [n], isRead);
  if (typeof data !== 'number') fe.guest.write(req.dataGpas[0]!, data);
  const mq = fe.queues[q]!;
  const before = mq.usedIdx();
  mq.addChain(req.buffers);
  fe.kick(q);
  await fe.waitUsed(q, before + 1);
  const [used] = mq.takeUsed();
  return { status: fe.guest.view(req.statusGpa, 1)[0]!, len: used!.len, dataGpa: req.dataGpas[0]! };
}

/** A fresh connection negotiates, writes and reads back one block. */
async function assertServesCleanConnection(t: ExecutionContext, fx: Fixture, seed = 1): Promise<void> {
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 1, queueSize: 64 });
  const data = pattern(4096, seed);
  const w = await submit(fe, 0, VIRTIO_BLK_T_OUT, 8, data);
  t.is(w.status, VIRTIO_BLK_S_OK, 'a clean connection writes');
  const r = await submit(fe, 0, VIRTIO_BLK_T_IN, 8, 4096);
  t.is(r.status, VIRTIO_BLK_S_OK, 'a clean connection reads');
  t.deepEqual(new Uint8Array(fe.guest.view(r.dataGpa, 4096)), data, 'and reads back what it wrote');
  fe.close();
}

/** GET_FEATURES, SET_FEATURES, protocol features with REPLY_ACK, SET_OWNER, mem table. */
async function handshake(fe: TestFrontend, withMemory = true): Promise<void> {
  const offered = new DataView((await fe.call(R.GET_FEATURES)).payload.buffer).getBigUint64(0, true);
  fe.send(R.SET_FEATURES, u64(offered));
  fe.send(R.SET_PROTOCOL_FEATURES, u64(bit(0) | bit(3) | bit(9)));
  if ((await fe.callAck(R.SET_OWNER, new Uint8Array(0))) !== 0n) throw new Error('SET_OWNER refused');
  if (withMemory && (await fe.setMemTable()) !== 0n) throw new Error('SET_MEM_TABLE refused');
}

test('rejects a header with a bad version in flags', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  for (const flags of [0x0, 0x2, 0x3, 0x4 | 0x2]) {
    const fe = fx.connect();
    fe.sendRaw(header(R.GET_FEATURES, flags, 0));
    await expectRejected(t, fe, logs, 'VHU_ERR_BAD_HEADER', `flags 0x${flags.toString(16)}`);
    fe.close();
  }
  await assertServesCleanConnection(t, fx);
});

test('rejects a payload larger than 4096 bytes without reading it', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  for (const size of [4097, 0xffffffff]) {
    const fe = fx.connect();
    fe.sendRaw(header(R.SET_MEM_TABLE, 1, size));
    await expectRejected(t, fe, logs, 'VHU_ERR_BAD_SIZE', `size ${size}`);
    fe.close();
  }
  await assertServesCleanConnection(t, fx);
});

test('rejects unexpected fds on a message that takes none and closes every one of them', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const before = eventfdCount();
  const fe = fx.connect();
  const fds = [native.eventfd(0, true), native.eventfd(0, true), native.eventfd(0, true)];
  t.is(eventfdCount(), before + 3);
  fe.send(R.GET_FEATURES, new Uint8Array(0), fds);
  for (const fd of fds) fs.closeSync(fd);
  await expectRejected(t, fe, logs, 'VHU_ERR_UNEXPECTED_FDS', 'GET_FEATURES with 3 fds');
  fe.close();
  await waitFor(() => eventfdCount() === before);
  t.is(eventfdCount(), before, 'the daemon closed the 3 fds it received');
  await assertServesCleanConnection(t, fx);
});

test('rejects fds on SET_VRING_NUM, two fds on SET_VRING_CALL and a fd on SET_VRING_KICK with the NOFD bit', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const before = eventfdCount();
  const cases: [string, number, Uint8Array, number][] = [
    ['SET_VRING_NUM + 1 fd', R.SET_VRING_NUM, u32pair(0, 64), 1],
    ['SET_VRING_CALL + 2 fds', R.SET_VRING_CALL, u64(0), 2],
    ['SET_VRING_KICK NOFD + 1 fd', R.SET_VRING_KICK, u64(VHOST_USER_VRING_NOFD_MASK), 1],
  ];
  for (const [what, request, payload, nfds] of cases) {
    const fe = fx.connect();
    const fds = Array.from({ length: nfds }, () => native.eventfd(0, true));
    fe.send(request, payload, fds);
    for (const fd of fds) fs.closeSync(fd);
    await expectRejected(t, fe, logs, 'VHU_ERR_UNEXPECTED_FDS', what);
    fe.close();
  }
  await waitFor(() => eventfdCount() === before);
  t.is(eventfdCount(), before, 'no received fd leaked');
  await assertServesCleanConnection(t, fx);
});

test('rejects SET_VRING_KICK without fd unless bit 8 is set', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const ok = fx.connect();
  await handshake(ok);
  t.is(await ok.callAck(R.SET_VRING_KICK, u64(VHOST_USER_VRING_NOFD_MASK)), 0n, 'NOFD set: accepted');
  t.false(ok.closed);
  ok.close();
  const bad = fx.connect();
  await handshake(bad);
  bad.send(R.SET_VRING_KICK, u64(0));
  await expectRejected(t, bad, logs, 'VHU_ERR_MISSING_FD', 'kick without fd, bit 8 clear');
  bad.close();
  await assertServesCleanConnection(t, fx);
});

test('rejects a queue index at or beyond the number of queues on every ring message', async (t) => {
  const { fx, logs } = daemonWithLog({ numQueues: 2 });
  t.teardown(() => fx.cleanup());
  const cases: [string, number, Uint8Array, boolean][] = [
    ['SET_VRING_NUM 2', R.SET_VRING_NUM, u32pair(2, 64), false],
    ['SET_VRING_BASE 0xffffffff', R.SET_VRING_BASE, u32pair(0xffffffff, 0), false],
    ['GET_VRING_BASE 7', R.GET_VRING_BASE, u32pair(7, 0), false],
    ['SET_VRING_ENABLE 2', R.SET_VRING_ENABLE, u32pair(2, 1), false],
    ['SET_VRING_KICK 0xff', R.SET_VRING_KICK, u64(0xff), true],
    ['SET_VRING_CALL 2', R.SET_VRING_CALL, u64(2), true],
    ['SET_VRING_ERR 3 NOFD', R.SET_VRING_ERR, u64(3 | VHOST_USER_VRING_NOFD_MASK), false],
  ];
  const addr = new Uint8Array(40);
  new DataView(addr.buffer).setUint32(0, 2, true);
  cases.push(['SET_VRING_ADDR 2', R.SET_VRING_ADDR, addr, false]);
  for (const [what, request, payload, withFd] of cases) {
    const fe = fx.connect();
    await handshake(fe, false);
    const fds = withFd ? [native.eventfd(0, true)] : [];
    fe.send(request, payload, fds);
    for (const fd of fds) fs.closeSync(fd);
    await expectRejected(t, fe, logs, 'VHU_ERR_BAD_QUEUE_INDEX', what);
    fe.close();
  }
  await assertServesCleanConnection(t, fx);
});

test('rejects unknown and unsupported requests', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  for (const request of [0, R.SET_LOG_BASE, R.SEND_RARP, R.IOTLB_MSG, R.POSTCOPY_ADVISE, 41, 0x7fffffff, 0xffffffff]) {
    const fe = fx.connect();
    fe.sendRaw(header(request, 1, 8));
    fe.sendRaw(new Uint8Array(8));
    await expectRejected(t, fe, logs, 'VHU_ERR_UNKNOWN_REQUEST', `request ${request}`);
    fe.close();
  }
  await assertServesCleanConnection(t, fx);
});

test('rejects SET_VRING_NUM that is 0, not a power of two or above 1024', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  for (const num of [0, 3, 100, 2048, 0xffffffff]) {
    const fe = fx.connect();
    await handshake(fe, false);
    fe.send(R.SET_VRING_NUM, u32pair(0, num));
    await expectRejected(t, fe, logs, 'VHU_ERR_BAD_PAYLOAD', `num ${num}`);
    fe.close();
  }
  await assertServesCleanConnection(t, fx);
});

test('rejects SET_FEATURES and SET_PROTOCOL_FEATURES with bits that were not offered', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const a = fx.connect();
  a.send(R.SET_FEATURES, u64(VIRTIO_F_VERSION_1 | bit(34))); // RING_PACKED is not offered
  await expectRejected(t, a, logs, 'VHU_ERR_FEATURES', 'RING_PACKED');
  a.close();
  const b = fx.connect();
  b.send(R.SET_PROTOCOL_FEATURES, u64(bit(1))); // LOG_SHMFD
  await expectRejected(t, b, logs, 'VHU_ERR_FEATURES', 'LOG_SHMFD');
  b.close();
  await assertServesCleanConnection(t, fx);
});

test('rejects fixed-size messages with the wrong payload size', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const cases: [string, number, number][] = [
    ['SET_FEATURES of 4', R.SET_FEATURES, 4],
    ['SET_VRING_NUM of 12', R.SET_VRING_NUM, 12],
    ['SET_VRING_ADDR of 32', R.SET_VRING_ADDR, 32],
    ['GET_CONFIG of 11', R.GET_CONFIG, 11],
  ];
  for (const [what, request, size] of cases) {
    const fe = fx.connect();
    fe.send(request, new Uint8Array(size));
    await expectRejected(t, fe, logs, 'VHU_ERR_BAD_SIZE', what);
    fe.close();
  }
  await assertServesCleanConnection(t, fx);
});

test('rejects SET_MEM_TABLE without fds or with a region count that does not match the fds', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const table = (n: number): Uint8Array => {
    const p = new Uint8Array(8 + 8 * 32);
    const dv = new DataView(p.buffer);
    dv.setUint32(0, n, true);
    for (let i = 0; i < n; i++) {
      dv.setBigUint64(8 + 32 * i, BigInt(GUEST_GPA_BASE + i * 0x100000), true);
      dv.setBigUint64(16 + 32 * i, 0x100000n, true);
      dv.setBigUint64(24 + 32 * i, BigInt(FRONTEND_VA_BASE + i * 0x100000), true);
    }
    return p;
  };
  const a = fx.connect();
  a.send(R.SET_MEM_TABLE, table(1));
  await expectRejected(t, a, logs, 'VHU_ERR_MISSING_FD', 'no fds');
  a.close();
  const b = fx.connect();
  b.send(R.SET_MEM_TABLE, table(2), [b.memfd]);
  await expectRejected(t, b, logs, 'VHU_ERR_UNEXPECTED_FDS', '2 regions, 1 fd');
  b.close();
  await assertServesCleanConnection(t, fx);
});

test('rejects SET_VRING_ADDR outside guest memory and before SET_MEM_TABLE', async (t) => {
  const { fx, logs } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const addr = (desc: number, used: number, avail: number): Uint8Array => {
    const p = new Uint8Array(40);
    const dv = new DataView(p.buffer);
    dv.setBigUint64(8, BigInt(desc), true);
    dv.setBigUint64(16, BigInt(used), true);
    dv.setBigUint64(24, BigInt(avail), true);
    return p;
  };
  const inside = FRONTEND_VA_BASE + 0x1000;
  const memEnd = FRONTEND_VA_BASE + (16 << 20);
  const cases: [string, Uint8Array, string, boolean][] = [
    ['desc below the region', addr(FRONTEND_VA_BASE - 0x1000, inside, inside + 0x800), 'VHU_ERR_BAD_PAYLOAD', true],
    ['used past the end', addr(inside, memEnd, inside + 0x800), 'VHU_ERR_BAD_PAYLOAD', true],
    ['desc straddling the end', addr(memEnd - 16, inside, inside + 0x800), 'VHU_ERR_BAD_PAYLOAD', true],
    ['no memory table yet', addr(inside, inside + 0x400, inside + 0x800), 'VHU_ERR_BAD_STATE', false],
  ];
  for (const [what, payload, code, withMemory] of cases) {
    const fe = fx.connect();
    await handshake(fe, withMemory);
    t.is(await fe.callAck(R.SET_VRING_NUM, u32pair(0, 64)), 0n);
    fe.send(R.SET_VRING_ADDR, payload);
    await expectRejected(t, fe, logs, code, what);
    fe.close();
  }
  await assertServesCleanConnection(t, fx);
});

test('REPLY_ACK: NEED_REPLY is not answered before REPLY_ACK is negotiated', async (t) => {
  const { fx } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  const reply = fe.nextReply();
  fe.send(R.SET_OWNER, new Uint8Array(0), [], true); // NEED_REPLY, but no REPLY_ACK yet
  fe.send(R.GET_QUEUE_NUM, new Uint8Array(0));
  const r = await reply;
  t.is(r?.request, R.GET_QUEUE_NUM, 'the first reply is the one to GET_QUEUE_NUM');
  t.is(new DataView(r!.payload.buffer, r!.payload.byteOffset).getBigUint64(0, true), 2n);
  fe.close();
});

test('REPLY_ACK: 0 on success, non-zero on a refused request, and the connection stays up', async (t) => {
  const { fx } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  await handshake(fe);
  t.is(await fe.callAck(R.SET_VRING_NUM, u32pair(0, 64)), 0n, 'accepted');
  const setConfig = (offset: number, data: Uint8Array): Uint8Array => {
    const p = new Uint8Array(12 + data.length);
    const dv = new DataView(p.buffer);
    dv.setUint32(0, offset, true);
    dv.setUint32(4, data.length, true);
    p.set(data, 12);
    return p;
  };
  t.not(await fe.callAck(R.SET_CONFIG, setConfig(0, new Uint8Array(8))), 0n, 'capacity is read-only');
  t.not(await fe.callAck(R.SET_CONFIG, setConfig(CONFIG_WRITEBACK_OFFSET, new Uint8Array(2))), 0n, 'writeback is one byte');
  t.is(await fe.callAck(R.SET_CONFIG, setConfig(CONFIG_WRITEBACK_OFFSET, new Uint8Array([1]))), 0n, 'writeback is writable');
  const rem = new Uint8Array(40);
  new DataView(rem.buffer).setBigUint64(8, 0xdead0000n, true);
  new DataView(rem.buffer).setBigUint64(16, 0x1000n, true);
  t.not(await fe.callAck(R.REM_MEM_REG, rem), 0n, 'removing a region that does not exist is refused');
  // A request with a reply of its own gets that reply, not an extra ack.
  const p = fe.nextReply();
  fe.send(R.GET_QUEUE_NUM, new Uint8Array(0), [], true);
  t.is((await p)?.request, R.GET_QUEUE_NUM);
  t.is((await fe.call(R.GET_QUEUE_NUM)).request, R.GET_QUEUE_NUM, 'no stray ack is left in the stream');
  t.false(fe.closed);
  fe.close();
});

test('SET_CONFIG writeback is refused without CONFIG_WCE', async (t) => {
  const { fx } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  const offered = new DataView((await fe.call(R.GET_FEATURES)).payload.buffer).getBigUint64(0, true);
  fe.send(R.SET_FEATURES, u64(offered & ~VIRTIO_BLK_F_CONFIG_WCE));
  fe.send(R.SET_PROTOCOL_FEATURES, u64(bit(0) | bit(3) | bit(9)));
  const p = new Uint8Array(13);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, CONFIG_WRITEBACK_OFFSET, true);
  dv.setUint32(4, 1, true);
  t.not(await fe.callAck(R.SET_CONFIG, p), 0n);
  fe.close();
});

test('GET_VRING_BASE answers next_avail only after the ring\'s in-flight requests complete', async (t) => {
  const store = new RecordingStore(8 << 20, { mode: 'gated' });
  const { fx } = daemonWithLog({ store, numQueues: 1 });
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 1, queueSize: 64 });
  const mq = fe.queues[0]!;
  for (let i = 0; i < 3; i++) mq.addChain(blkRequest(fe.guest, VIRTIO_BLK_T_IN, i * 8, [4096], true).buffers);
  fe.kick(0);
  await waitFor(() => store.heldCount === 3);
  t.is(store.heldCount, 3, 'three reads in flight');
  const reply = fe.nextReply();
  fe.send(R.GET_VRING_BASE, u32pair(0, 0));
  let answered = false;
  void reply.then(() => (answered = true));
  await new Promise((r) => setTimeout(r, 50));
  t.false(answered, 'no answer while requests are in flight');
  t.is(mq.usedIdx(), 0);
  store.release();
  const r = await reply;
  t.is(r?.request, R.GET_VRING_BASE);
  const dv = new DataView(r!.payload.buffer, r!.payload.byteOffset);
  t.is(dv.getUint32(0, true), 0, 'queue index');
  t.is(dv.getUint32(4, true), 3, 'next_avail after three requests');
  t.is(mq.usedIdx(), 3, 'all three completed before the answer');
  fe.close();
});

test('SET_CONFIG toggles writeback; writethrough flushes after every write', async (t) => {
  const store = new RecordingStore(8 << 20, { mode: 'async' });
  const { fx } = daemonWithLog({ store, numQueues: 1 });
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  const { config } = await fe.negotiate({ numQueues: 1, queueSize: 64, features: VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_BLK_F_CONFIG_WCE });
  t.is(config[CONFIG_WRITEBACK_OFFSET], 1, 'writeback by default');
  t.is((await submit(fe, 0, VIRTIO_BLK_T_OUT, 0, pattern(512, 1))).status, VIRTIO_BLK_S_OK);
  t.is(store.count('flush'), 0, 'writeback: no flush on write');
  const p = new Uint8Array(13);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, CONFIG_WRITEBACK_OFFSET, true);
  dv.setUint32(4, 1, true);
  t.is(await fe.callAck(R.SET_CONFIG, p), 0n, 'writethrough set');
  const get = new Uint8Array(13);
  new DataView(get.buffer).setUint32(0, CONFIG_WRITEBACK_OFFSET, true);
  new DataView(get.buffer).setUint32(4, 1, true);
  t.is((await fe.call(R.GET_CONFIG, get)).payload[12], 0, 'config space shows writethrough');
  t.is((await submit(fe, 0, VIRTIO_BLK_T_OUT, 1, pattern(512, 2))).status, VIRTIO_BLK_S_OK);
  t.is((await submit(fe, 0, VIRTIO_BLK_T_OUT, 2, pattern(512, 3))).status, VIRTIO_BLK_S_OK);
  t.is(store.count('flush'), 2, 'writethrough: one flush per write');
  t.is(fx.daemon.device?.stats.writes, 3);
  p[12] = 1;
  t.is(await fe.callAck(R.SET_CONFIG, p), 0n, 'writeback set again');
  t.is((await submit(fe, 0, VIRTIO_BLK_T_OUT, 3, pattern(512, 4))).status, VIRTIO_BLK_S_OK);
  t.is(store.count('flush'), 2, 'writeback again: no flush');
  fe.close();
});

test('a message split across many tiny writes is reassembled', async (t) => {
  const { fx } = daemonWithLog();
  t.teardown(() => fx.cleanup());
  const fe = fx.connect();
  const bytes = encodeRequest(R.GET_QUEUE_NUM, new Uint8Array(0));
  const reply = fe.nextReply();
  for (const b of bytes) {
    fe.sendRaw(Uint8Array.of(b));
    await new Promise((r) => setImmediate(r));
  }
  t.is((await reply)?.request, R.GET_QUEUE_NUM);
  fe.close();
});
