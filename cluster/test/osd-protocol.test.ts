/**
 * The client ↔ OSD op codec (osd/osd-protocol.ts): every op kind round trips, replies carry
 * per-op outs, and malformed input fails with CodecError (CLU_ERR_DECODE), never a crash.
 */
import test from 'ava';
import { CodecError } from '../src/common/codec.js';
import {
  OSD_FLAG_WRITE, decodeLockState, decodeOsdOpReply, decodeOsdOpRequest, encodeLockState, encodeOsdOpReply,
  encodeOsdOpRequest, requestDataBytes,
} from '../src/osd/osd-protocol.js';
import type { OsdOp, OsdOpReply, OsdOpRequest } from '../src/osd/osd-protocol.js';

const ALL_OPS: OsdOp[] = [
  { op: 'read', offset: 4096, length: 8192 },
  { op: 'write', offset: 1 << 30, length: 4096 },
  { op: 'writefull', length: 10 },
  { op: 'zero', offset: 0, length: 2 ** 40 },
  { op: 'truncate', size: 123 },
  { op: 'remove' },
  { op: 'stat' },
  { op: 'getattr', name: 'a' },
  { op: 'setattr', name: 'b', value: new Uint8Array([1, 2, 3]) },
  { op: 'rmattr', name: 'c' },
  { op: 'create', exclusive: true },
  { op: 'assert_version', epoch: 7, seq: 99 },
  { op: 'assert_attr', name: 'fence', value: new Uint8Array([9]), mode: 0 },
  { op: 'lock', name: 'rbd_lock', cookie: 'ck', durationMs: 5000, exclusive: true },
  { op: 'unlock', name: 'rbd_lock', cookie: 'ck' },
  { op: 'break_lock', name: 'rbd_lock', client: 'client.x', cookie: 'ck' },
  { op: 'getattrs' },
];

test('request with every op kind round trips', (t) => {
  const q: OsdOpRequest = {
    pool: 3, objectName: 'rbd_data.1.0000000000000001', pgSeed: 17, mapEpoch: 42,
    reqId: { client: 'client.vm1', tid: 2 ** 40, attempt: 2 }, flags: OSD_FLAG_WRITE, ops: ALL_OPS,
  };
  const back = decodeOsdOpRequest(encodeOsdOpRequest(q));
  t.deepEqual(back, q);
  t.is(requestDataBytes(back.ops), 4096 + 10);
});

test('reply round trips and truncation is a CodecError', (t) => {
  const p: OsdOpReply = {
    result: 0, version: { epoch: 5, seq: 1234 }, mapEpoch: 6,
    outs: [
      { kind: 'read', result: 0, length: 4096 },
      { kind: 'stat', result: 0, size: 8192, version: { epoch: 5, seq: 3 } },
      { kind: 'attr', result: 3, value: new Uint8Array([7]) },
      { kind: 'none', result: 0 },
    ],
  };
  const b = encodeOsdOpReply(p);
  t.deepEqual(decodeOsdOpReply(b), p);
  for (let n = 0; n < b.length; n++) t.throws(() => decodeOsdOpReply(b.subarray(0, n)), { instanceOf: CodecError });
  const rq = encodeOsdOpRequest({ pool: 1, objectName: 'o', pgSeed: 0, mapEpoch: 1, reqId: { client: 'c', tid: 1, attempt: 0 }, flags: 0, ops: [{ op: 'stat' }] });
  for (let n = 0; n < rq.length; n++) t.throws(() => decodeOsdOpRequest(rq.subarray(0, n)), { instanceOf: CodecError });
});

test('lock state round trips', (t) => {
  const s = { exclusive: true, holders: [{ client: 'client.a', cookie: 'x', expiresMs: 1_700_000_000_000 }] };
  t.deepEqual(decodeLockState(encodeLockState(s)), s);
});
