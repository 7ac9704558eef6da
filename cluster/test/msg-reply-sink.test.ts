/**
 * Reply sinks (msg/frame.ts `ReplySink`): a reply's data is copied once, from the socket's
 * read buffer straight into the requester's views (the image read path: guest memory), and
 * never after the request is over. Checked in the decoder (scatter views, too-small sink,
 * revocation in the middle of the data, CRC over the arriving bytes), in FrameSigner (a
 * dropped frame keeps the sequence), and over real TCP (a late reply after a timeout and a
 * sink revoked while a 32 MiB reply arrives leave the memory untouched; the session goes on).
 */
import test from 'ava';
import { ClusterError } from '../src/common/errors.js';
import { FrameSigner } from '../src/auth/frame-signer.js';
import { FRAME_F_REPLY, FrameDecoder, encodeFrame } from '../src/msg/frame.js';
import type { Frame, ReplySink } from '../src/msg/frame.js';
import { Messenger } from '../src/msg/messenger.js';
import type { InboundMessage } from '../src/msg/session.js';
import { MsgType } from '../src/msg/types.js';
import { testEnv } from './msg-test-env.js';

const HOST = '127.0.0.1';

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.length))));
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff || 1;
  return b;
}

function replyWire(data: Uint8Array, tid = 5): Uint8Array {
  return concat(encodeFrame({ type: MsgType.MSG_TEST_ECHO, flags: FRAME_F_REPLY, epoch: 1, tid, payload: new Uint8Array([1, 2]), data: [data] }));
}

function decoder(sink: ReplySink | null): { dec: FrameDecoder; frames: Frame[]; errs: ClusterError[]; asked: number[] } {
  const frames: Frame[] = [];
  const errs: ClusterError[] = [];
  const asked: number[] = [];
  const dec = new FrameDecoder({
    onFrame: (f) => frames.push(f), onError: (e) => errs.push(e),
    replySink: (tid) => { asked.push(tid); return sink; },
  });
  return { dec, frames, errs, asked };
}

test('decoder: reply data lands in the sink views (scatter, odd sizes), once', (t) => {
  const data = pattern(10_000, 3);
  const views = [new Uint8Array(1), new Uint8Array(4095), new Uint8Array(7000)];
  const { dec, frames, errs, asked } = decoder({ views, active: true });
  const wire = replyWire(data);
  for (let at = 0; at < wire.length; at += 333) dec.push(wire.subarray(at, Math.min(wire.length, at + 333)));
  t.deepEqual(errs, []);
  t.deepEqual(asked, [5]);
  t.is(frames.length, 1);
  const f = frames[0]!;
  t.true(f.dataInSink);
  t.is(f.data.length, 3);
  t.is(f.data[0]!.buffer, views[0]!.buffer);
  t.is(f.data[2]!.length, 10_000 - 4096, 'the last view is cut to the data');
  t.true(Buffer.from(concat(views)).subarray(0, 10_000).equals(Buffer.from(data)));
  t.true(views[2]!.subarray(10_000 - 4096).every((b) => b === 0), 'nothing past the data');
});

test('decoder: a sink smaller than the data, or inactive, is not used', (t) => {
  for (const sink of [{ views: [new Uint8Array(100)], active: true }, { views: [new Uint8Array(5000)], active: false }]) {
    const { dec, frames } = decoder(sink);
    dec.push(replyWire(pattern(4096, 9)));
    t.is(frames.length, 1);
    t.not(frames[0]!.dataInSink, true);
    t.true(sink.views[0]!.every((b) => b === 0));
    t.true(Buffer.from(frames[0]!.data[0]!).equals(Buffer.from(pattern(4096, 9))));
  }
});

test('decoder: a sink revoked while the data arrives is not written again; the frame says its data was dropped', (t) => {
  const data = pattern(64 * 1024, 5);
  const views = [new Uint8Array(64 * 1024)];
  const sink = { views, active: true };
  const { dec, frames, errs } = decoder(sink);
  const wire = replyWire(data);
  const cut = 64 + 2 + 10_000;
  dec.push(wire.subarray(0, cut));
  t.true(Buffer.from(views[0]!.subarray(0, 10_000)).equals(Buffer.from(data.subarray(0, 10_000))));
  sink.active = false;
  const before = Uint8Array.from(views[0]!);
  dec.push(wire.subarray(cut));
  t.deepEqual(errs, []);
  t.true(Buffer.from(views[0]!).equals(Buffer.from(before)), 'untouched after revocation');
  t.is(frames.length, 1);
  t.true(frames[0]!.dataDiscarded);
  t.deepEqual(frames[0]!.data, []);
  // The next frame on the stream decodes normally.
  dec.push(replyWire(pattern(100, 1), 6));
  t.is(frames.length, 2);
  t.is(frames[1]!.tid, 6);
});

test('decoder: the data CRC is checked over the bytes that arrived, also in a sink', (t) => {
  const views = [new Uint8Array(4096)];
  const { dec, frames, errs } = decoder({ views, active: true });
  const wire = replyWire(pattern(4096, 2));
  wire[64 + 2 + 100]! ^= 0x10;
  dec.push(wire);
  t.is(frames.length, 0);
  t.is(errs[0]?.details?.['reason'], 'data-crc');
});

test('FrameSigner.skip keeps the receive sequence in step with the sender', (t) => {
  const key = new Uint8Array(32).fill(7);
  const tx = new FrameSigner(key, key);
  const rx = new FrameSigner(key, key);
  const wires = [0, 1, 2].map((i) => concat(encodeFrame({ type: MsgType.MSG_TEST_ECHO, flags: 0, epoch: 1, tid: i + 1, payload: new Uint8Array([i]), data: [] }, tx.sign)));
  const frames: Frame[] = [];
  const dec = new FrameDecoder({ onFrame: (f) => frames.push(f), onError: (e) => t.fail(e.message) });
  for (const w of wires) dec.push(w);
  t.true(rx.verify(frames[0]!));
  rx.skip();
  t.true(rx.verify(frames[2]!));
  const rx2 = new FrameSigner(key, key);
  t.true(rx2.verify(frames[0]!));
  t.false(rx2.verify(frames[2]!), 'without skip the sequence is off by one');
});

async function server(delayMs: number): Promise<{ msgr: Messenger; port: number }> {
  const msgr = new Messenger({ env: testEnv(), entity: 'osd.0' });
  msgr.handle(MsgType.MSG_TEST_ECHO, (req, session) => {
    const reply = (): void => session.reply(req, { type: req.type, payload: req.payload, data: req.data });
    if (Buffer.from(req.payload).toString() === 'slow') setTimeout(reply, delayMs); else reply();
  });
  return new Promise((resolve, reject) => msgr.listen(HOST, 0, (err, port) => (err ? reject(err) : resolve({ msgr, port: port! }))));
}

function call(s: ReturnType<Messenger['connect']>, payload: string, data: Uint8Array[], timeoutMs: number, replySink?: ReplySink): Promise<InboundMessage> {
  return new Promise((resolve, reject) => {
    s.request({ type: MsgType.MSG_TEST_ECHO, payload: new TextEncoder().encode(payload), data }, replySink === undefined ? { timeoutMs } : { timeoutMs, replySink }, (err, r) => (err ? reject(err) : resolve(r!)));
  });
}

test('TCP: the reply lands in the sink; a late reply after a timeout does not touch it', async (t) => {
  const { msgr, port } = await server(300);
  const client = new Messenger({ env: testEnv(), entity: 'client.t' });
  const s = client.connect({ host: HOST, port });
  const data = pattern(1 << 20, 4);
  const views = [new Uint8Array(300_000), new Uint8Array((1 << 20) - 300_000)];
  const r = await call(s, 'fast', [data], 5000, { views, active: true });
  t.true(r.dataInSink);
  t.true(Buffer.from(concat(views)).equals(Buffer.from(data)));
  const late = [new Uint8Array(1 << 20).fill(0xaa)];
  const err = await t.throwsAsync(call(s, 'slow', [data], 100, { views: late, active: true }));
  t.is((err as ClusterError).code, 'CLU_ERR_TIMEOUT');
  await new Promise((res) => setTimeout(res, 600)); // The late reply has arrived by now.
  t.true(late[0]!.every((b) => b === 0xaa), 'the timed-out request\'s memory was not written');
  const again = await call(s, 'fast', [pattern(10, 1)], 5000);
  t.is(again.data.length, 1);
  client.shutdown();
  msgr.shutdown();
});

test('TCP: a sink revoked while a 32 MiB reply arrives is left as it was; the request is cancelled and the session goes on', async (t) => {
  const { msgr, port } = await server(0);
  const client = new Messenger({ env: testEnv(), entity: 'client.t' });
  const s = client.connect({ host: HOST, port });
  const n = 32 << 20;
  const data = pattern(n, 8);
  const views = [new Uint8Array(n)];
  const sink = { views, active: true };
  let snapshot: Uint8Array | null = null;
  const poll = (): void => {
    if (views[0]![0] !== 0) { sink.active = false; snapshot = Uint8Array.from(views[0]!); return; }
    setImmediate(poll);
  };
  setImmediate(poll);
  const err = await t.throwsAsync(call(s, 'fast', [data], 20_000, sink));
  t.is((err as ClusterError).code, 'CLU_ERR_CANCELLED');
  t.not(snapshot, null);
  t.true(Buffer.from(views[0]!).equals(Buffer.from(snapshot!)), 'nothing written after revocation');
  t.false(views[0]![n - 1] === data[n - 1] && Buffer.from(views[0]!).equals(Buffer.from(data)), 'the revocation came before the end');
  const again = await call(s, 'fast', [pattern(10, 1)], 5000);
  t.is(Buffer.from(again.payload).toString(), 'fast');
  client.shutdown();
  msgr.shutdown();
});
