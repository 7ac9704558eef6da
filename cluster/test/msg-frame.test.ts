/**
 * Checks the frame codec without sockets: golden header bytes, round trips through the
 * incremental decoder with every chunk split, and that each kind of corruption (magic, header
 * crc, payload crc, data crc, oversize length, truncation) yields CLU_ERR_DECODE with the right
 * `details.reason`. Also checks the message type registry has no duplicate numbers.
 */
import test from 'ava';
import { ClusterError } from '../src/common/errors.js';
import { crc32c } from '../src/common/crc32c.js';
import { alignmentOf } from '../../native/index.js';
import {
  FRAME_F_REQUEST, FRAME_F_SIGNED, FRAME_HEADER_BYTES, FrameDecoder, decodeFrameHeader, encodeFrame,
} from '../src/msg/frame.js';
import { FrameSigner } from '../src/auth/frame-signer.js';
import type { Frame, OutboundFrame } from '../src/msg/frame.js';
import { MsgType, msgTypeName } from '../src/msg/types.js';

const enc = new TextEncoder();

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

function decodeAll(bytes: Uint8Array, splits: number[]): { frames: Frame[]; err: ClusterError | null; dec: FrameDecoder } {
  const frames: Frame[] = [];
  let err: ClusterError | null = null;
  const dec = new FrameDecoder({ onFrame: (f) => frames.push(f), onError: (e) => { err = e; } });
  let at = 0;
  for (const s of [...splits, bytes.length]) { dec.push(bytes.subarray(at, s)); at = s; }
  return { frames, err, dec };
}

const sample: OutboundFrame = {
  type: MsgType.MSG_TEST_ECHO, flags: FRAME_F_REQUEST, epoch: 7, tid: 0x1_0000_0002,
  payload: enc.encode('meta'), data: [enc.encode('bulk-'), enc.encode('data')],
};

test('header golden bytes', (t) => {
  const h = Buffer.from(encodeFrame(sample)[0]!);
  const hex = h.toString('hex');
  // magic "STRA", version 1, type 0xf000, flags 8, epoch 7, tid lo 2 hi 1, payloadLen 4, dataLen 9.
  t.is(hex.slice(0, 64), '535452410100' + '00f0' + '08000000' + '07000000' + '02000000' + '01000000' + '04000000' + '09000000');
  t.is(h.readUInt32LE(32), crc32c(enc.encode('meta')));
  t.is(h.readUInt32LE(36), crc32c(enc.encode('bulk-data')));
  t.is(hex.slice(80, 120), '0'.repeat(40), 'signature and reserved are zero when unsigned');
  t.is(h.readUInt32LE(60), crc32c(h.subarray(0, 60)));
  t.is(h.length, FRAME_HEADER_BYTES);
});

test('encodeFrame keeps payload and data as the caller\'s views (no copy)', (t) => {
  const chunks = encodeFrame(sample);
  t.is(chunks.length, 4);
  t.is(chunks[1], sample.payload);
  t.is(chunks[2], sample.data[0]);
  t.is(chunks[3], sample.data[1]);
});

test('decoder round-trips frames across every single split point', (t) => {
  const wire = concat([...encodeFrame(sample), ...encodeFrame({ ...sample, tid: 3, data: [] })]);
  for (let s = 0; s <= wire.length; s++) {
    const { frames, err } = decodeAll(wire, [s]);
    t.is(err, null);
    t.is(frames.length, 2);
    const f = frames[0]!;
    t.is(f.tid, 0x1_0000_0002);
    t.is(f.epoch, 7);
    t.is(Buffer.from(f.payload).toString(), 'meta');
    t.is(Buffer.from(concat(f.data)).toString(), 'bulk-data');
    t.is(frames[1]!.dataLen, 0);
  }
});

test('decoder handles one-byte chunks and delivers data as one buffer', (t) => {
  const wire = concat(encodeFrame(sample));
  const { frames, err } = decodeAll(wire, Array.from({ length: wire.length - 1 }, (_, i) => i + 1));
  t.is(err, null);
  t.is(frames.length, 1);
  t.is(frames[0]!.data.length, 1, 'one buffer, whatever the chunking');
  t.is(Buffer.from(frames[0]!.data[0]!).toString(), 'bulk-data');
});

test('decoder copies what it keeps: the caller may reuse its chunk buffer (env/real-net.ts reads into one buffer)', (t) => {
  const wire = concat([...encodeFrame(sample), ...encodeFrame({ ...sample, tid: 9 })]);
  const frames: Frame[] = [];
  const dec = new FrameDecoder({ onFrame: (f) => frames.push(f), onError: (e) => t.fail(e.message) });
  const reused = new Uint8Array(7);
  for (let at = 0; at < wire.length; at += reused.length) {
    const n = Math.min(reused.length, wire.length - at);
    reused.set(wire.subarray(at, at + n));
    dec.push(reused.subarray(0, n));
    reused.fill(0xee); // What the next read would do to the shared buffer.
  }
  t.is(frames.length, 2);
  for (const f of frames) {
    t.is(Buffer.from(f.payload).toString(), 'meta');
    t.is(Buffer.from(concat(f.data)).toString(), 'bulk-data');
    t.is(decodeFrameHeader(f.header) instanceof ClusterError, false, 'the kept header is intact');
  }
  t.is(frames[1]!.tid, 9);
});

test('big data: 4096-aligned from 64 KiB, and past the 4 MiB preallocation it grows as bytes arrive', (t) => {
  for (const size of [64 * 1024, 1 << 20, 9 * 1024 * 1024 + 123]) {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i += 4093) data[i] = (i * 7) & 0xff;
    const wire = concat(encodeFrame({ ...sample, data: [data.subarray(0, 1000), data.subarray(1000)] }));
    const splits: number[] = [];
    for (let at = 100; at < wire.length; at += 256 * 1024 + 17) splits.push(at);
    const { frames, err, dec } = decodeAll(wire, splits);
    t.is(err, null);
    t.is(frames.length, 1);
    const got = frames[0]!.data;
    t.is(got.length, 1);
    t.is(got[0]!.length, size);
    t.true(Buffer.from(got[0]!).equals(Buffer.from(data)), `content of ${size} B`);
    t.true(size < 4096 || alignmentOf(got[0]!) === 0, 'starts on a 4096 boundary');
    t.is(dec.bufferedBytes, 0);
  }
});

test('a header announcing big data allocates no more than the preallocation before the bytes arrive', (t) => {
  const big = new Uint8Array(48 * 1024 * 1024);
  const wire = concat(encodeFrame({ ...sample, data: [big] }));
  const frames: Frame[] = [];
  const dec = new FrameDecoder({ onFrame: (f) => frames.push(f), onError: (e) => t.fail(e.message) });
  dec.push(wire.subarray(0, 64 + 4 + 10));
  t.is(dec.bufferedBytes, 78);
  const before = process.memoryUsage().arrayBuffers;
  dec.push(wire.subarray(78, 100));
  t.true(process.memoryUsage().arrayBuffers - before < 8 * 1024 * 1024);
  t.is(frames.length, 0);
  t.is(dec.finish()?.code, 'CLU_ERR_DECODE');
});

function corrupt(mutate: (b: Uint8Array) => void): ClusterError | null {
  const wire = concat(encodeFrame(sample));
  mutate(wire);
  return decodeAll(wire, []).err;
}

function fixHeaderCrc(b: Uint8Array): void {
  Buffer.from(b.buffer, b.byteOffset).writeUInt32LE(crc32c(b.subarray(0, 60)), 60);
}

test('corruption yields CLU_ERR_DECODE with a reason', (t) => {
  const cases: [string, (b: Uint8Array) => void][] = [
    ['bad-magic', (b) => { b[0] = 0; }],
    ['header-crc', (b) => { b[13]! ^= 1; }],
    ['payload-crc', (b) => { b[64]! ^= 1; }],
    ['data-crc', (b) => { b[70]! ^= 0x80; }],
    ['payload-too-large', (b) => { Buffer.from(b.buffer).writeUInt32LE(2 * 1024 * 1024, 24); fixHeaderCrc(b); }],
    ['data-too-large', (b) => { Buffer.from(b.buffer).writeUInt32LE(0xffffffff, 28); fixHeaderCrc(b); }],
    ['bad-version', (b) => { b[4] = 9; fixHeaderCrc(b); }],
    ['reserved-nonzero', (b) => { b[57] = 1; fixHeaderCrc(b); }],
  ];
  for (const [reason, mutate] of cases) {
    const err = corrupt(mutate);
    t.truthy(err, reason);
    t.is(err!.code, 'CLU_ERR_DECODE');
    t.is(err!.details?.['reason'], reason);
  }
});

test('an oversize length is refused before the body arrives', (t) => {
  const h = encodeFrame({ ...sample, data: [] })[0]!;
  Buffer.from(h.buffer, h.byteOffset, h.length).writeUInt32LE(1 << 30, 28);
  fixHeaderCrc(h);
  let err: ClusterError | null = null;
  const dec = new FrameDecoder({ onFrame: () => t.fail(), onError: (e) => { err = e; } });
  dec.push(h);
  t.is((err as ClusterError | null)?.details?.['reason'], 'data-too-large');
});

test('finish() reports a truncated frame, and nothing for a clean boundary', (t) => {
  const wire = concat(encodeFrame(sample));
  t.is(decodeAll(wire, []).dec.finish(), null);
  const part = decodeAll(wire.subarray(0, wire.length - 3), []);
  t.is(part.frames.length, 0);
  const err = part.dec.finish();
  t.is(err?.code, 'CLU_ERR_DECODE');
  t.is(err?.details?.['reason'], 'truncated');
});

test('decodeFrameHeader rejects a short buffer', (t) => {
  const r = decodeFrameHeader(new Uint8Array(10));
  t.true(r instanceof ClusterError);
});

test('message type numbers are unique and named', (t) => {
  const nums = Object.values(MsgType) as number[];
  t.is(new Set(nums).size, nums.length);
  t.is(msgTypeName(MsgType.MSG_HELLO), 'MSG_HELLO');
  t.is(msgTypeName(0x7777), 'MSG_UNKNOWN_0x7777');
});

test('a signed frame carries no data CRC; a decoder of a signed session checks none for it, and the GMAC catches what a CRC would', (t) => {
  const key = new Uint8Array(32).fill(9);
  const tx = new FrameSigner(key, key);
  const signed = concat(encodeFrame(sample, tx.sign));
  t.is(Buffer.from(signed.buffer, signed.byteOffset).readUInt32LE(36), 0, 'dataCrc field is 0');
  t.true((Buffer.from(signed.buffer, signed.byteOffset).readUInt32LE(8) & FRAME_F_SIGNED) !== 0);
  // A decoder not told its session is signed checks the CRC, and 0 does not match.
  t.is(decodeAll(signed, []).err?.details?.['reason'], 'data-crc');
  const decode = (wire: Uint8Array): Frame[] => {
    const frames: Frame[] = [];
    const dec = new FrameDecoder({ onFrame: (f) => frames.push(f), onError: (e) => t.fail(e.message) });
    dec.signedData = true;
    dec.push(wire);
    return frames;
  };
  const ok = decode(signed);
  t.is(ok.length, 1);
  t.true(new FrameSigner(key, key).verify(ok[0]!));
  // Corrupt one data byte: the frame decodes, and the session's signature check refuses it.
  const bad = Uint8Array.from(signed);
  bad[64 + sample.payload.length + 3]! ^= 0x40;
  const got = decode(bad);
  t.is(got.length, 1);
  t.false(new FrameSigner(key, key).verify(got[0]!));
  // Unsigned frames on such a decoder still have their CRC checked.
  const unsignedBad = concat(encodeFrame(sample));
  unsignedBad[64 + sample.payload.length + 3]! ^= 0x40;
  const errs: ClusterError[] = [];
  const dec = new FrameDecoder({ onFrame: () => t.fail('corrupt unsigned frame delivered'), onError: (e) => errs.push(e) });
  dec.signedData = true;
  dec.push(unsignedBad);
  t.is(errs[0]?.details?.['reason'], 'data-crc');
});

test('read target: the rest of a big frame\'s data is offered as a view of its own buffer; bytes read into it are not copied again', (t) => {
  const data = Uint8Array.from({ length: 600_000 }, (_, i) => (i * 13 + 5) & 0xff);
  const wire = concat(encodeFrame({ ...sample, data: [data] }));
  const frames: Frame[] = [];
  const dec = new FrameDecoder({ onFrame: (f) => frames.push(f), onError: (e) => t.fail(e.message) });
  t.is(dec.readTarget(), null, 'no frame in progress');
  // First read: header, payload and some data arrive in the shared buffer.
  let at = FRAME_HEADER_BYTES + 4 + 1000;
  dec.push(wire.subarray(0, at));
  // Then, as the kernel would: each read fills a prefix of the offered view.
  let reads = 0;
  for (;;) {
    const target = dec.readTarget();
    if (target === null) break;
    t.true(target.length <= wire.length - at, 'a read into the target cannot pass the frame end');
    const n = Math.min(target.length, 150_000);
    target.set(wire.subarray(at, at + n));
    dec.push(target.subarray(0, n));
    at += n;
    reads++;
  }
  t.true(reads >= 3);
  t.true(wire.length - at < 64 * 1024, 'the last bytes (under 64 KiB) come the usual way');
  dec.push(wire.subarray(at));
  t.is(frames.length, 1);
  t.true(Buffer.from(frames[0]!.data[0]!).equals(Buffer.from(data)));
  // Small frames, and a frame whose payload is still arriving, offer no target.
  const small = concat(encodeFrame({ ...sample, data: [data.subarray(0, 60_000)] }));
  dec.push(small.subarray(0, FRAME_HEADER_BYTES + 2));
  t.is(dec.readTarget(), null, 'payload incomplete');
  dec.push(small.subarray(FRAME_HEADER_BYTES + 2, FRAME_HEADER_BYTES + 4 + 10));
  t.is(dec.readTarget(), null, 'less than 64 KiB of data');
  dec.push(small.subarray(FRAME_HEADER_BYTES + 4 + 10));
  t.is(frames.length, 2);
});

test('read target over real TCP: 1 MiB and 9 MiB requests echo intact', async (t) => {
  const { Messenger } = await import('../src/msg/messenger.js');
  const { testEnv } = await import('./msg-test-env.js');
  const msgr = new Messenger({ env: testEnv(), entity: 'osd.0' });
  msgr.handle(MsgType.MSG_TEST_ECHO, (req, session) => session.reply(req, { type: req.type, payload: req.payload, data: req.data }));
  const port = await new Promise<number>((resolve, reject) => msgr.listen('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p!))));
  const client = new Messenger({ env: testEnv(), entity: 'client.t' });
  const s = client.connect({ host: '127.0.0.1', port });
  for (const n of [1 << 20, 9 << 20]) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff);
    const r = await new Promise<{ data: Uint8Array[] }>((resolve, reject) => {
      s.request({ type: MsgType.MSG_TEST_ECHO, payload: enc.encode('x'), data: [data.subarray(0, 100), data.subarray(100)] }, { timeoutMs: 20_000 }, (err, m) => (err ? reject(err) : resolve(m!)));
    });
    t.true(Buffer.from(concat(r.data)).equals(Buffer.from(data)), `${n} bytes`);
  }
  client.shutdown();
  msgr.shutdown();
});
