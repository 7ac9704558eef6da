/**
 * Checks the messenger over real TCP on 127.0.0.1 (RealNet): request/reply with bulk data,
 * error replies, timeouts that fail with CLU_ERR_TIMEOUT, corrupt and truncated frames written
 * by a raw socket (the server closes that connection with CLU_ERR_DECODE, logs it, and keeps
 * serving others), reconnect with backoff after the server restarts, connection-refused
 * reporting, and the in-flight window (backpressure).
 */
import test from 'ava';
import * as net from 'node:net';
import { ClusterError } from '../src/common/errors.js';
import { encodeFrame, FRAME_F_REQUEST } from '../src/msg/frame.js';
import { Messenger } from '../src/msg/messenger.js';
import type { InboundMessage } from '../src/msg/session.js';
import { MsgType } from '../src/msg/types.js';
import { testEnv, waitFor } from './msg-test-env.js';

const HOST = '127.0.0.1';
const enc = new TextEncoder();

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.length))));
}

function echoServer(opts: { port?: number } = {}): Promise<{ msgr: Messenger; port: number; env: ReturnType<typeof testEnv> }> {
  const env = testEnv();
  const msgr = new Messenger({ env, entity: 'osd.0' });
  msgr.handle(MsgType.MSG_TEST_ECHO, (req, session) => {
    if (Buffer.from(req.payload).toString() === 'fail') {
      session.replyError(req, new ClusterError('CLU_ERR_NOT_FOUND', 'no such object'));
      return;
    }
    session.reply(req, { type: req.type, payload: req.payload, data: req.data });
  });
  msgr.handle(MsgType.MSG_TEST_SINK, () => { /* never replies */ });
  return new Promise((resolve, reject) => {
    msgr.listen(HOST, opts.port ?? 0, (err, port) => (err ? reject(err) : resolve({ msgr, port: port!, env })));
  });
}

function call(s: ReturnType<Messenger['connect']>, payload: string, data: Uint8Array[] = [], timeoutMs = 2000): Promise<InboundMessage> {
  return new Promise((resolve, reject) => {
    s.request({ type: MsgType.MSG_TEST_ECHO, payload: enc.encode(payload), data }, { timeoutMs }, (err, reply) => (err ? reject(err) : resolve(reply!)));
  });
}

test('request/reply carries payload and bulk data; tids match', async (t) => {
  const { msgr, port } = await echoServer();
  const client = new Messenger({ env: testEnv(), entity: 'client.t' });
  const s = client.connect({ host: HOST, port });
  const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i * 7);
  const replies = await Promise.all([call(s, 'a'), call(s, 'b', [enc.encode('xy'), enc.encode('z')]), call(s, 'c', [big])]);
  t.deepEqual(replies.map((r) => Buffer.from(r.payload).toString()), ['a', 'b', 'c']);
  t.is(Buffer.from(concat(replies[1]!.data)).toString(), 'xyz');
  t.true(Buffer.from(concat(replies[2]!.data)).equals(Buffer.from(big)));
  t.is(s.peer?.entity, 'osd.0');
  client.shutdown();
  msgr.shutdown();
});

test('an error reply reaches the caller with its code; an unknown type gets CLU_ERR_UNSUPPORTED', async (t) => {
  const { msgr, port } = await echoServer();
  const client = new Messenger({ env: testEnv(), entity: 'client.t' });
  const s = client.connect({ host: HOST, port });
  const err = await t.throwsAsync(call(s, 'fail'));
  t.is((err as ClusterError).code, 'CLU_ERR_NOT_FOUND');
  const err2 = await t.throwsAsync(new Promise((resolve, reject) => {
    s.request({ type: 0x7777 }, { timeoutMs: 2000 }, (e, r) => (e ? reject(e) : resolve(r)));
  }));
  t.is((err2 as ClusterError).code, 'CLU_ERR_UNSUPPORTED');
  client.shutdown();
  msgr.shutdown();
});

test('a request without reply fails loudly with CLU_ERR_TIMEOUT', async (t) => {
  const { msgr, port } = await echoServer();
  const env = testEnv();
  const client = new Messenger({ env, entity: 'client.t' });
  const s = client.connect({ host: HOST, port });
  const started = Date.now();
  const err = await new Promise<ClusterError | null>((resolve) => {
    s.request({ type: MsgType.MSG_TEST_SINK }, { timeoutMs: 150 }, (e) => resolve(e));
  });
  t.is(err?.code, 'CLU_ERR_TIMEOUT');
  t.true(Date.now() - started >= 140);
  t.true(env.sink.lines.some((l) => l['msg'] === 'request timed out' && l['level'] === 40));
  t.is((await call(s, 'after')).payload.length, 5, 'the session still works');
  client.shutdown();
  msgr.shutdown();
});

function rawSend(port: number, bytes: Uint8Array, end: boolean): Promise<void> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port }, () => {
      sock.write(bytes);
      if (end) sock.end();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => resolve());
    sock.on('data', () => undefined);
  });
}

for (const [name, mutate, reason] of [
  ['bad magic', (b: Uint8Array): void => { b[1] = 0x58; }, 'bad-magic'],
  ['header crc', (b: Uint8Array): void => { b[20]! ^= 0x10; }, 'header-crc'],
  ['payload crc', (b: Uint8Array): void => { b[70]! ^= 0x01; }, 'payload-crc'],
  ['truncated frame', null, 'truncated'],
] as const) {
  test(`a ${name} closes the connection with CLU_ERR_DECODE (${reason}); the server lives on`, async (t) => {
    const { msgr, port, env } = await echoServer();
    const frame = concat(encodeFrame({ type: MsgType.MSG_HELLO, flags: FRAME_F_REQUEST, epoch: 0, tid: 0, payload: new Uint8Array(64), data: [] }));
    if (mutate !== null) mutate(frame);
    // The raw client never sends a valid HELLO; the server must cut it off by the frame error.
    await rawSend(port, mutate === null ? frame.subarray(0, 40) : frame, mutate === null);
    await waitFor(() => env.sink.lines.some((l) => l['msg'] === 'frame rejected'));
    const line = env.sink.lines.find((l) => l['msg'] === 'frame rejected')!;
    const err = line['err'] as { code: string; details: { reason: string } };
    t.is(err.code, 'CLU_ERR_DECODE');
    t.is(err.details.reason, reason);
    const client = new Messenger({ env: testEnv(), entity: 'client.t' });
    t.is(Buffer.from((await call(client.connect({ host: HOST, port }), 'still here')).payload).toString(), 'still here');
    client.shutdown();
    msgr.shutdown();
  });
}

test('an outbound session reports connection refused, backs off, and reconnects after the server restarts', async (t) => {
  const first = await echoServer();
  const port = first.port;
  const client = new Messenger({ env: testEnv(), entity: 'client.t', backoff: { initialMs: 20, maxMs: 200 } });
  const s = client.connect({ host: HOST, port });
  await call(s, 'one');
  const refused: string[] = [];
  const resets: string[] = [];
  s.on('connectFailed', (e) => refused.push(String(e.details?.['errno'])));
  s.on('reset', (e) => resets.push(e.code));
  // In flight when the server dies: fails with CLU_ERR_CONN_CLOSED (the owner decides on resend).
  const lost = new Promise<ClusterError | null>((resolve) => s.request({ type: MsgType.MSG_TEST_SINK }, { timeoutMs: 5000 }, (e) => resolve(e)));
  await waitFor(() => s.inflightBytes > 0);
  first.msgr.shutdown();
  t.is((await lost)?.code, 'CLU_ERR_CONN_CLOSED');
  await waitFor(() => refused.length >= 2);
  t.true(refused.every((e) => e === 'ECONNREFUSED'));
  // Issued while the peer is down: queued, sent after the reconnect.
  const queued = call(s, 'two', [], 5000);
  const second = await echoServer({ port });
  t.is(Buffer.from((await queued).payload).toString(), 'two');
  t.true(resets.includes('CLU_ERR_CONN_CLOSED'));
  client.shutdown();
  second.msgr.shutdown();
});

test('a session gives up after maxAttempts with CLU_ERR_UNAVAILABLE', async (t) => {
  const { msgr, port } = await echoServer();
  msgr.shutdown();
  await new Promise((r) => setTimeout(r, 20));
  const client = new Messenger({ env: testEnv(), entity: 'client.t', backoff: { initialMs: 5, maxMs: 10, maxAttempts: 3 } });
  const s = client.connect({ host: HOST, port });
  const err = await new Promise<ClusterError | null>((resolve) => s.request({ type: MsgType.MSG_TEST_ECHO }, { timeoutMs: 5000 }, (e) => resolve(e)));
  t.is(err?.code, 'CLU_ERR_UNAVAILABLE');
  t.is(s.state, 'closed');
});

test('backpressure: requests beyond the in-flight window wait in order; false then writable', async (t) => {
  const env = testEnv();
  const held: { req: InboundMessage; session: ReturnType<Messenger['connect']> }[] = [];
  const server = new Messenger({ env, entity: 'osd.0' });
  server.handle(MsgType.MSG_TEST_ECHO, (req, session) => { held.push({ req, session }); });
  const port = await new Promise<number>((res) => server.listen(HOST, 0, (_e, p) => res(p!)));
  const client = new Messenger({ env: testEnv(), entity: 'client.t', limits: { maxInflightBytes: 64 * 1024 } });
  const s = client.connect({ host: HOST, port });
  const block = new Uint8Array(16 * 1024);
  const order: number[] = [];
  const accepted: boolean[] = [];
  for (let i = 0; i < 8; i++) {
    accepted.push(s.request({ type: MsgType.MSG_TEST_ECHO, payload: Uint8Array.of(i), data: [block] }, { timeoutMs: 5000 }, (e) => { if (e === null) order.push(i); }));
  }
  t.deepEqual(accepted.slice(0, 3), [true, true, true]);
  t.false(accepted[7]);
  // ~16.1 KiB each: three fit in 64 KiB unacknowledged, the rest wait in the session queue.
  await waitFor(() => held.length === 3);
  await new Promise((r) => setTimeout(r, 50));
  t.is(held.length, 3, 'the window holds back the 4th request');
  let writable = false;
  s.once('writable', () => { writable = true; });
  for (let round = 0; round < 8 && order.length < 8; round++) {
    const batch = held.splice(0);
    for (const h of batch) h.session.reply(h.req, { type: h.req.type });
    await waitFor(() => held.length > 0 || order.length === 8);
  }
  t.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
  t.true(writable);
  t.is(s.inflightBytes, 0);
  client.shutdown();
  server.shutdown();
});

test('a request past 4x the bound fails at once with CLU_ERR_BUSY', async (t) => {
  const client = new Messenger({ env: testEnv(), entity: 'client.t', limits: { maxInflightBytes: 1024 }, backoff: { initialMs: 1000 } });
  const s = client.connect({ host: HOST, port: 1 });
  const err = await new Promise<ClusterError | null>((resolve) => s.request({ type: MsgType.MSG_TEST_ECHO, data: [new Uint8Array(8192)] }, { timeoutMs: 1000 }, (e) => resolve(e)));
  t.is(err?.code, 'CLU_ERR_BUSY');
  client.shutdown();
});
