/**
 * vhost-user payload codecs against golden bytes written out by hand from vhost-user.rst:
 * the 12-byte header, vring state and address, the memory table (including region counts of
 * 0 and > 8 and short payloads), ADD/REM_MEM_REG, config windows (offset + size > 256) and
 * the u64 helpers. Every decoder answers bad input with a ProtocolError value and its code.
 */
import test, { type ExecutionContext } from 'ava';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';
import {
  decodeConfig,
  decodeHeader,
  decodeInflight,
  decodeMemRegMsg,
  decodeMemTable,
  decodeU64,
  decodeVringAddr,
  decodeVringState,
  encodeConfig,
  encodeInflight,
  encodeReply,
  encodeRequest,
  encodeU64,
  encodeVringState,
  FrontendReq,
  requestName,
  u64ToSafeNumber,
} from './message.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g) ?? [], (b) => parseInt(b, 16));

function rejects(t: ExecutionContext, v: unknown, code: ProtocolErrorCode, what: string): void {
  t.true(v instanceof ProtocolError, `${what}: expected a ProtocolError`);
  t.is((v as ProtocolError).code, code, what);
}

test('encodes request and reply headers to the spec bytes', (t) => {
  t.deepEqual(encodeRequest(FrontendReq.GET_FEATURES, new Uint8Array(0)), hex('01000000 01000000 00000000'));
  t.deepEqual(encodeRequest(FrontendReq.SET_OWNER, new Uint8Array(0), true), hex('03000000 09000000 00000000'), 'NEED_REPLY is bit 3');
  t.deepEqual(encodeReply(FrontendReq.GET_VRING_BASE, hex('01000000 2a000000')), hex('0b000000 05000000 08000000 01000000 2a000000'), 'REPLY is bit 2');
});

test('decodes a header at any offset of a buffer', (t) => {
  const bytes = hex('ffff 19000000 0d000000 0c010000');
  t.deepEqual(decodeHeader(bytes, 2), { request: FrontendReq.SET_CONFIG, flags: 0xd, size: 0x10c });
  t.deepEqual(decodeHeader(bytes.subarray(2), 0), { request: 25, flags: 0xd, size: 268 });
});

test('decodes and encodes u64 payloads and rejects other sizes', (t) => {
  t.is(decodeU64(hex('0100000040000080')), 0x8000004000000001n);
  t.deepEqual(encodeU64(0x1_0000_0000n | 0x30n), hex('3000000001000000'));
  rejects(t, decodeU64(hex('01000000')), 'VHU_ERR_BAD_SIZE', '4 bytes');
  rejects(t, decodeU64(new Uint8Array(9)), 'VHU_ERR_BAD_SIZE', '9 bytes');
});

test('decodes and encodes struct vhost_vring_state', (t) => {
  t.deepEqual(decodeVringState(hex('01000000 00010000')), { index: 1, num: 256 });
  t.deepEqual(encodeVringState({ index: 3, num: 0xffff }), hex('03000000 ffff0000'));
  rejects(t, decodeVringState(new Uint8Array(12)), 'VHU_ERR_BAD_SIZE', '12 bytes');
  rejects(t, decodeVringState(new Uint8Array(0)), 'VHU_ERR_BAD_SIZE', 'empty');
});

test('decodes struct vhost_vring_addr and rejects addresses beyond 2^53', (t) => {
  const bytes = hex(
    '02000000 00000000' + // index 2, flags 0
      '0010000000 7f0000' + // desc   0x7f0000001000
      '0020000000 7f0000' + // used   0x7f0000002000
      '0030000000 7f0000' + // avail  0x7f0000003000
      '0000000000 000000', // log    0
  );
  t.deepEqual(decodeVringAddr(bytes), {
    index: 2,
    flags: 0,
    descFrontendVa: 0x7f0000001000,
    usedFrontendVa: 0x7f0000002000,
    availFrontendVa: 0x7f0000003000,
    logGuestAddr: 0,
  });
  const huge = bytes.slice();
  huge.set(hex('0000000000002000'), 16); // used = 2^53
  rejects(t, decodeVringAddr(huge), 'VHU_ERR_BAD_PAYLOAD', 'used at 2^53');
  rejects(t, decodeVringAddr(bytes.subarray(0, 32)), 'VHU_ERR_BAD_SIZE', '32 bytes');
});

function region(gpa: bigint, size: bigint, va: bigint, off: bigint): Uint8Array {
  const out = new Uint8Array(32);
  const dv = new DataView(out.buffer);
  [gpa, size, va, off].forEach((v, i) => dv.setBigUint64(8 * i, v, true));
  return out;
}

function memTable(nregions: number, regions: Uint8Array[], slots = 8): Uint8Array {
  const out = new Uint8Array(8 + 32 * Math.max(slots, regions.length));
  new DataView(out.buffer).setUint32(0, nregions, true);
  regions.forEach((r, i) => out.set(r, 8 + 32 * i));
  return out;
}

test('decodes a SET_MEM_TABLE payload as QEMU sends it (8 slots, nregions used)', (t) => {
  const golden = new Uint8Array(8 + 8 * 32);
  golden.set(hex('02000000 00000000'), 0);
  golden.set(hex('0000000000000000 0000000800000000 0000c0ab7f000000 0000000000000000'), 8);
  golden.set(hex('0000000001000000 0000100000000000 000000ac7f000000 0000000800000000'), 40);
  t.deepEqual(decodeMemTable(golden), [
    { gpaStart: 0, sizeBytes: 0x800_0000, frontendVaStart: 0x7fabc00000, mmapOffset: 0 },
    { gpaStart: 0x1_0000_0000, sizeBytes: 0x100000, frontendVaStart: 0x7fac000000, mmapOffset: 0x800_0000 },
  ]);
  t.is((decodeMemTable(memTable(1, [region(0x1000n, 0x1000n, 0x2000n, 0n)], 1)) as unknown[]).length, 1, 'an exact-size payload is fine too');
});

test('rejects a memory table with 0 or more than 8 regions, a short payload, or bad regions', (t) => {
  const r = region(0x1000n, 0x1000n, 0x2000n, 0n);
  rejects(t, decodeMemTable(memTable(0, [])), 'VHU_ERR_BAD_PAYLOAD', 'nregions 0');
  rejects(t, decodeMemTable(memTable(9, Array(9).fill(r))), 'VHU_ERR_BAD_PAYLOAD', 'nregions 9');
  rejects(t, decodeMemTable(memTable(0xffffffff, [r])), 'VHU_ERR_BAD_PAYLOAD', 'nregions 2^32-1');
  rejects(t, decodeMemTable(memTable(2, [r], 1)), 'VHU_ERR_BAD_SIZE', 'nregions 2, one region of bytes');
  rejects(t, decodeMemTable(new Uint8Array(7)), 'VHU_ERR_BAD_SIZE', 'shorter than the count');
  rejects(t, decodeMemTable(memTable(1, [region(0x1000n, 0n, 0x2000n, 0n)])), 'VHU_ERR_BAD_PAYLOAD', 'size 0');
  rejects(t, decodeMemTable(memTable(1, [region(2n ** 53n - 4096n, 8192n, 0x2000n, 0n)])), 'VHU_ERR_BAD_PAYLOAD', 'wraps 2^53');
  rejects(t, decodeMemTable(memTable(1, [region(0n, 0x1000n, 2n ** 64n - 1n, 0n)])), 'VHU_ERR_BAD_PAYLOAD', 'VA beyond 2^53');
  rejects(t, decodeMemTable(memTable(2, [r, region(0n, 0x1000n, 0n, 2n ** 60n)])), 'VHU_ERR_BAD_PAYLOAD', 'second region bad');
});

test('decodes VhostUserMemRegMsg (ADD/REM_MEM_REG) and rejects other sizes', (t) => {
  const p = new Uint8Array(40);
  p.set(region(0x100000n, 0x200000n, 0x7f0000000000n, 0x1000n), 8);
  t.deepEqual(decodeMemRegMsg(p), { gpaStart: 0x100000, sizeBytes: 0x200000, frontendVaStart: 0x7f0000000000, mmapOffset: 0x1000 });
  rejects(t, decodeMemRegMsg(p.subarray(0, 39)), 'VHU_ERR_BAD_SIZE', '39 bytes');
  rejects(t, decodeMemRegMsg(new Uint8Array(48)), 'VHU_ERR_BAD_SIZE', '48 bytes');
});

test('decodes and encodes VhostUserConfig windows', (t) => {
  const golden = hex('20000000 01000000 00000000 01');
  const c = decodeConfig(golden);
  t.false(c instanceof ProtocolError);
  if (c instanceof ProtocolError) return;
  t.is(c.offset, 32);
  t.is(c.size, 1);
  t.is(c.flags, 0);
  t.deepEqual(c.payload, hex('01'));
  t.deepEqual(encodeConfig(c), golden);
  const full = new Uint8Array(12 + 256);
  new DataView(full.buffer).setUint32(4, 256, true);
  t.false(decodeConfig(full) instanceof ProtocolError, 'offset 0 + size 256 is the whole window');
  const atEnd = new Uint8Array(12);
  new DataView(atEnd.buffer).setUint32(0, 256, true);
  t.false(decodeConfig(atEnd) instanceof ProtocolError, 'offset 256 + size 0 is empty but inside');
});

test('rejects config windows with offset + size beyond 256 and payloads of the wrong length', (t) => {
  const cfg = (offset: number, size: number, payloadBytes = size): Uint8Array => {
    const p = new Uint8Array(12 + payloadBytes);
    const dv = new DataView(p.buffer);
    dv.setUint32(0, offset, true);
    dv.setUint32(4, size, true);
    return p;
  };
  rejects(t, decodeConfig(cfg(250, 7)), 'VHU_ERR_BAD_PAYLOAD', '250 + 7');
  rejects(t, decodeConfig(cfg(0, 257)), 'VHU_ERR_BAD_PAYLOAD', '0 + 257');
  rejects(t, decodeConfig(cfg(257, 0)), 'VHU_ERR_BAD_PAYLOAD', '257 + 0');
  rejects(t, decodeConfig(cfg(0xffffffff, 1, 1)), 'VHU_ERR_BAD_PAYLOAD', 'offset 2^32-1 (no u32 wrap)');
  rejects(t, decodeConfig(cfg(1, 0xffffffff, 0)), 'VHU_ERR_BAD_PAYLOAD', 'size 2^32-1');
  rejects(t, decodeConfig(cfg(0, 8, 4)), 'VHU_ERR_BAD_SIZE', 'payload shorter than size');
  rejects(t, decodeConfig(cfg(0, 8, 9)), 'VHU_ERR_BAD_SIZE', 'payload longer than size');
  rejects(t, decodeConfig(new Uint8Array(11)), 'VHU_ERR_BAD_SIZE', 'shorter than the config header');
});

test('u64ToSafeNumber accepts up to 2^53 - 1 and rejects 2^53', (t) => {
  t.is(u64ToSafeNumber(2n ** 53n - 1n, 'x'), Number.MAX_SAFE_INTEGER);
  rejects(t, u64ToSafeNumber(2n ** 53n, 'x'), 'VHU_ERR_BAD_PAYLOAD', '2^53');
});

test('VhostUserInflight round-trips through its codec and rejects other sizes', (t) => {
  const m = { mmapSize: 0x12345, mmapOffset: 0x1000, numQueues: 2, queueSize: 256 };
  const bytes = encodeInflight(m);
  t.deepEqual(bytes, hex('4523010000000000 0010000000000000 0200 0001 00000000'));
  t.deepEqual(decodeInflight(bytes), m);
  rejects(t, decodeInflight(bytes.subarray(0, 20)), 'VHU_ERR_BAD_SIZE', '20 bytes');
});

test('requestName uses spec names and marks unknown codes', (t) => {
  t.is(requestName(FrontendReq.SET_VRING_KICK), 'VHOST_USER_SET_VRING_KICK');
  t.is(requestName(0), 'VHOST_USER_UNKNOWN(0)');
  t.is(requestName(41), 'VHOST_USER_UNKNOWN(41)');
});
