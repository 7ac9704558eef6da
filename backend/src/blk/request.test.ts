/**
 * parseBlkRequest over chains built by hand in a mock guest buffer: each request type, the
 * framings VIRTIO allows (Linux's one-descriptor-per-part and merged or split parts) giving
 * the same request, and every malformed request, each answered by an error value with the
 * stable code and the status byte to write (IOERR or UNSUPP), never a throw.
 */
import test, { type ExecutionContext } from 'ava';
import { MockGuest, rangesPayload } from '../../testing/mock-driver.js';
import type { Chain, ChainSegment } from '../virtio/split-queue.js';
import {
  parseBlkRequest,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_BARRIER,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  type BlkErrorCode,
  type BlkLimits,
  type BlkParseError,
  type BlkRequest,
} from './request.js';

const GPA_BASE = 0x10000;
const LIMITS: BlkLimits = {
  capacitySectors: 64,
  readOnly: false,
  maxDiscardSectors: 16,
  maxDiscardSegments: 2,
  maxWriteZeroesSectors: 32,
  maxWriteZeroesSegments: 3,
};

function newGuest(): MockGuest {
  return new MockGuest(new ArrayBuffer(256 << 10), GPA_BASE);
}

function header(type: number, sector: bigint | number): Uint8Array {
  const h = new Uint8Array(16);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, type >>> 0, true);
  dv.setBigUint64(8, BigInt(sector), true);
  return h;
}

/** Places `bytes` in guest memory and returns a segment for it. */
function seg(guest: MockGuest, bytes: Uint8Array | number, writable: boolean): ChainSegment {
  const data = typeof bytes === 'number' ? new Uint8Array(bytes) : bytes;
  const gpa = guest.alloc(Math.max(data.length, 1), 8);
  guest.write(gpa, data);
  return { gpa, lengthBytes: data.length, writable };
}

const chain = (...segments: ChainSegment[]): Chain => ({ headIndex: 0, segments });
const concat = (views: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(views.reduce((n, v) => n + v.length, 0));
  let at = 0;
  for (const v of views) {
    out.set(v, at);
    at += v.length;
  }
  return out;
};
const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

function ok(t: ExecutionContext, r: BlkRequest | BlkParseError): BlkRequest {
  if (r.kind === 'request') return r;
  const code = r.code;
  t.fail(`expected a request, got ${code}`);
  throw new Error(code);
}

function err(t: ExecutionContext, r: BlkRequest | BlkParseError, code: BlkErrorCode, statusCode: number, what: string): BlkParseError | null {
  t.is(r.kind, 'error', what);
  if (r.kind !== 'error') return null;
  t.is(r.code, code, what);
  t.is(r.statusCode, statusCode, what);
  return r;
}

test('parses IN: data are the writable bytes before the status byte', (t) => {
  const g = newGuest();
  const status = seg(g, 1, true);
  const r = ok(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_IN, 5), false), seg(g, 1024, true), seg(g, 512, true), status), g.memory(), LIMITS));
  t.is(r.type, VIRTIO_BLK_T_IN);
  t.is(r.sector, 5);
  t.is(r.dataBytes, 1536);
  t.deepEqual(r.data.map((v) => v.length), [1024, 512]);
  t.is(r.status.length, 1);
  t.is(r.status.byteOffset, status.gpa - GPA_BASE);
});

test('parses OUT: data are the readable bytes after the header', (t) => {
  const g = newGuest();
  const data = bytes(1024, 3);
  const r = ok(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_OUT, 63 - 1), false), seg(g, data, false), seg(g, 1, true)), g.memory(), LIMITS));
  t.is(r.type, VIRTIO_BLK_T_OUT);
  t.is(r.sector, 62);
  t.is(r.dataBytes, 1024);
  t.deepEqual(concat(r.data), data);
});

test('parses FLUSH with or without a sector, and GET_ID with its writable buffer', (t) => {
  const g = newGuest();
  const flush = ok(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_FLUSH, 0xffffffffn), false), seg(g, 1, true)), g.memory(), LIMITS));
  t.is(flush.type, VIRTIO_BLK_T_FLUSH);
  t.is(flush.dataBytes, 0);
  const id = ok(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_GET_ID, 0), false), seg(g, 20, true), seg(g, 1, true)), g.memory(), LIMITS));
  t.is(id.type, VIRTIO_BLK_T_GET_ID);
  t.is(id.dataBytes, 20);
});

test('parses DISCARD and WRITE_ZEROES segments, including the unmap flag on write-zeroes', (t) => {
  const g = newGuest();
  const d = ok(
    t,
    parseBlkRequest(
      chain(seg(g, header(VIRTIO_BLK_T_DISCARD, 0), false), seg(g, rangesPayload([{ sector: 0, sectorCount: 16, flags: 0 }, { sector: 48, sectorCount: 16, flags: 0 }]), false), seg(g, 1, true)),
      g.memory(),
      LIMITS,
    ),
  );
  t.deepEqual(d.ranges, [
    { sector: 0, sectorCount: 16, unmap: false },
    { sector: 48, sectorCount: 16, unmap: false },
  ]);
  const w = ok(
    t,
    parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_WRITE_ZEROES, 0), false), seg(g, rangesPayload([{ sector: 32, sectorCount: 32, flags: 1 }]), false), seg(g, 1, true)), g.memory(), LIMITS),
  );
  t.deepEqual(w.ranges, [{ sector: 32, sectorCount: 32, unmap: true }]);
});

test('Linux framing and merged or split framings give the same OUT request', (t) => {
  const g = newGuest();
  const data = bytes(1024, 9);
  const h = header(VIRTIO_BLK_T_OUT, 7);
  const withStatus = (...parts: ChainSegment[]): Chain => chain(...parts, seg(g, 1, true));
  const framings: Record<string, Chain> = {
    linux: withStatus(seg(g, h, false), seg(g, data, false)),
    'header+data in one descriptor': withStatus(seg(g, concat([h, data]), false)),
    'header split, data in odd pieces': withStatus(seg(g, h.subarray(0, 5), false), seg(g, concat([h.subarray(5), data.subarray(0, 100)]), false), seg(g, data.subarray(100, 101), false), seg(g, data.subarray(101), false)),
    'zero-length descriptors in between': withStatus(seg(g, h, false), seg(g, 0, false), seg(g, data, false)),
  };
  for (const [name, c] of Object.entries(framings)) {
    const r = ok(t, parseBlkRequest(c, g.memory(), LIMITS));
    t.is(r.type, VIRTIO_BLK_T_OUT, name);
    t.is(r.sector, 7, name);
    t.is(r.dataBytes, 1024, name);
    t.deepEqual(concat(r.data), data, name);
  }
});

test('Linux framing and data+status in one descriptor give the same IN request', (t) => {
  const g = newGuest();
  const h = header(VIRTIO_BLK_T_IN, 3);
  const linuxData = seg(g, bytes(2048, 1), true);
  const linuxStatus = seg(g, 1, true);
  const merged = seg(g, bytes(2049, 1), true);
  const a = ok(t, parseBlkRequest(chain(seg(g, h, false), linuxData, linuxStatus), g.memory(), LIMITS));
  const b = ok(t, parseBlkRequest(chain(seg(g, h, false), merged), g.memory(), LIMITS));
  const c = ok(t, parseBlkRequest(chain(seg(g, h, false), seg(g, 1000, true), seg(g, 1049, true)), g.memory(), LIMITS));
  for (const r of [a, b, c]) {
    t.is(r.type, VIRTIO_BLK_T_IN);
    t.is(r.sector, 3);
    t.is(r.dataBytes, 2048);
    t.is(concat(r.data).length, 2048);
  }
  t.deepEqual(concat(b.data), concat(a.data), 'the data views cover the same bytes');
  t.is(b.status.byteOffset, merged.gpa - GPA_BASE + 2048, 'the status is the last byte of the merged descriptor');
});

test('a header shorter than 16 bytes is BLK_ERR_HEADER_TOO_SHORT with IOERR', (t) => {
  const g = newGuest();
  const e = err(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_IN, 0).subarray(0, 15), false), seg(g, 1, true)), g.memory(), LIMITS), 'BLK_ERR_HEADER_TOO_SHORT', VIRTIO_BLK_S_IOERR, '15-byte header');
  t.not(e?.status, null);
  err(t, parseBlkRequest(chain(seg(g, 1, true)), g.memory(), LIMITS), 'BLK_ERR_HEADER_TOO_SHORT', VIRTIO_BLK_S_IOERR, 'status only');
});

test('a missing, empty, read-only or unreachable status byte is BLK_ERR_NO_STATUS with no status view', (t) => {
  const g = newGuest();
  const h = (): ChainSegment => seg(g, header(VIRTIO_BLK_T_FLUSH, 0), false);
  const cases: Record<string, Chain> = {
    'no status descriptor': chain(h()),
    'status descriptor not writable': chain(h(), seg(g, 1, false)),
    'status descriptor of length 0': chain(h(), seg(g, 0, true)),
    'status outside guest memory': chain(h(), { gpa: GPA_BASE + (256 << 10), lengthBytes: 1, writable: true }),
    'status below guest memory': chain(h(), { gpa: 0, lengthBytes: 1, writable: true }),
    'empty chain': chain(),
  };
  for (const [name, c] of Object.entries(cases)) {
    const e = err(t, parseBlkRequest(c, g.memory(), LIMITS), 'BLK_ERR_NO_STATUS', VIRTIO_BLK_S_IOERR, name);
    t.is(e?.status, null, name);
  }
});

test('a readable descriptor after a writable one is BLK_ERR_LAYOUT', (t) => {
  const g = newGuest();
  const e = err(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_OUT, 0), false), seg(g, 512, true), seg(g, 512, false), seg(g, 1, true)), g.memory(), LIMITS), 'BLK_ERR_LAYOUT', VIRTIO_BLK_S_IOERR, 'R W R W');
  t.not(e?.status, null);
});

test('a data buffer partly outside guest memory is BLK_ERR_BAD_ADDRESS', (t) => {
  const g = newGuest();
  const end = GPA_BASE + (256 << 10);
  const e = err(
    t,
    parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_IN, 0), false), { gpa: end - 256, lengthBytes: 512, writable: true }, seg(g, 1, true)), g.memory(), LIMITS),
    'BLK_ERR_BAD_ADDRESS',
    VIRTIO_BLK_S_IOERR,
    'straddles the end',
  );
  t.not(e?.status, null);
});

test('data in the wrong direction is BLK_ERR_DATA_DIRECTION', (t) => {
  const g = newGuest();
  err(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_IN, 0), false), seg(g, 512, false), seg(g, 1, true)), g.memory(), LIMITS), 'BLK_ERR_DATA_DIRECTION', VIRTIO_BLK_S_IOERR, 'IN with readable data');
  err(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_OUT, 0), false), seg(g, 512, true), seg(g, 1, true)), g.memory(), LIMITS), 'BLK_ERR_DATA_DIRECTION', VIRTIO_BLK_S_IOERR, 'OUT with writable data');
  err(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_GET_ID, 0), false), seg(g, 1, true)), g.memory(), LIMITS), 'BLK_ERR_DATA_DIRECTION', VIRTIO_BLK_S_IOERR, 'GET_ID without a buffer');
});

test('a data length that is not a multiple of 512 is BLK_ERR_UNALIGNED', (t) => {
  const g = newGuest();
  for (const n of [1, 511, 513, 4095]) {
    err(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_IN, 0), false), seg(g, n, true), seg(g, 1, true)), g.memory(), LIMITS), 'BLK_ERR_UNALIGNED', VIRTIO_BLK_S_IOERR, `IN of ${n}`);
    err(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_OUT, 0), false), seg(g, n, false), seg(g, 1, true)), g.memory(), LIMITS), 'BLK_ERR_UNALIGNED', VIRTIO_BLK_S_IOERR, `OUT of ${n}`);
  }
});

test('sector + length beyond capacity is BLK_ERR_OUT_OF_RANGE, including sectors near 2^64', (t) => {
  const g = newGuest();
  const io = (type: number, sector: bigint | number, n: number): Chain => chain(seg(g, header(type, sector), false), seg(g, n, type === VIRTIO_BLK_T_IN), seg(g, 1, true));
  ok(t, parseBlkRequest(io(VIRTIO_BLK_T_IN, 63, 512), g.memory(), LIMITS));
  ok(t, parseBlkRequest(io(VIRTIO_BLK_T_OUT, 0, 64 * 512), g.memory(), LIMITS));
  const cases: [number, bigint | number, number][] = [
    [VIRTIO_BLK_T_IN, 64, 512],
    [VIRTIO_BLK_T_IN, 63, 1024],
    [VIRTIO_BLK_T_OUT, 0, 65 * 512],
    [VIRTIO_BLK_T_IN, 2n ** 53n, 512],
    [VIRTIO_BLK_T_IN, 2n ** 53n - 1n, 512],
    [VIRTIO_BLK_T_OUT, 2n ** 64n - 1n, 512],
    [VIRTIO_BLK_T_IN, 2n ** 64n - 1n, 0],
    [VIRTIO_BLK_T_IN, 2n ** 63n, 512],
  ];
  for (const [type, sector, n] of cases) {
    const e = err(t, parseBlkRequest(io(type, sector, n), g.memory(), LIMITS), 'BLK_ERR_OUT_OF_RANGE', VIRTIO_BLK_S_IOERR, `type ${type} sector ${sector} + ${n} bytes`);
    t.not(e?.status, null);
  }
});

test('writes, discards and write-zeroes on a read-only device are BLK_ERR_READ_ONLY; reads are fine', (t) => {
  const g = newGuest();
  const ro = { ...LIMITS, readOnly: true };
  err(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_OUT, 0), false), seg(g, 512, false), seg(g, 1, true)), g.memory(), ro), 'BLK_ERR_READ_ONLY', VIRTIO_BLK_S_IOERR, 'OUT');
  for (const type of [VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES]) {
    err(t, parseBlkRequest(chain(seg(g, header(type, 0), false), seg(g, rangesPayload([{ sector: 0, sectorCount: 1, flags: 0 }]), false), seg(g, 1, true)), g.memory(), ro), 'BLK_ERR_READ_ONLY', VIRTIO_BLK_S_IOERR, `type ${type}`);
  }
  ok(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_IN, 0), false), seg(g, 512, true), seg(g, 1, true)), g.memory(), ro));
});

test('discard/write-zeroes segments: too many, too long, unknown flag, unmap on discard or bad payload are UNSUPP', (t) => {
  const g = newGuest();
  const req = (type: number, payload: Uint8Array): Chain => chain(seg(g, header(type, 0), false), seg(g, payload, false), seg(g, 1, true));
  const r1 = { sector: 0, sectorCount: 1, flags: 0 };
  const cases: [string, number, Uint8Array][] = [
    ['3 discard segments > max 2', VIRTIO_BLK_T_DISCARD, rangesPayload([r1, r1, r1])],
    ['4 write-zeroes segments > max 3', VIRTIO_BLK_T_WRITE_ZEROES, rangesPayload([r1, r1, r1, r1])],
    ['discard of 17 sectors > max 16', VIRTIO_BLK_T_DISCARD, rangesPayload([{ sector: 0, sectorCount: 17, flags: 0 }])],
    ['write-zeroes of 33 sectors > max 32', VIRTIO_BLK_T_WRITE_ZEROES, rangesPayload([{ sector: 0, sectorCount: 33, flags: 0 }])],
    ['unknown flag on write-zeroes', VIRTIO_BLK_T_WRITE_ZEROES, rangesPayload([{ sector: 0, sectorCount: 1, flags: 2 }])],
    ['unknown flag on discard', VIRTIO_BLK_T_DISCARD, rangesPayload([{ sector: 0, sectorCount: 1, flags: 0x80000000 }])],
    ['unmap on discard', VIRTIO_BLK_T_DISCARD, rangesPayload([{ sector: 0, sectorCount: 1, flags: 1 }])],
    ['payload not a multiple of 16', VIRTIO_BLK_T_DISCARD, rangesPayload([r1]).subarray(0, 12)],
  ];
  for (const [name, type, payload] of cases) {
    const e = err(t, parseBlkRequest(req(type, payload), g.memory(), LIMITS), 'BLK_ERR_BAD_SEGMENTS', VIRTIO_BLK_S_UNSUPP, name);
    t.not(e?.status, null, name);
  }
  err(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_DISCARD, 0), false), seg(g, 1, true)), g.memory(), LIMITS), 'BLK_ERR_BAD_SEGMENTS', VIRTIO_BLK_S_UNSUPP, 'no segments');
});

test('discard/write-zeroes ranges beyond capacity are BLK_ERR_OUT_OF_RANGE with IOERR and a status', (t) => {
  const g = newGuest();
  const req = (type: number, payload: Uint8Array): Chain => chain(seg(g, header(type, 0), false), seg(g, payload, false), seg(g, 1, true));
  const cases: [string, number, Uint8Array][] = [
    ['ends one past capacity', VIRTIO_BLK_T_DISCARD, rangesPayload([{ sector: 49, sectorCount: 16, flags: 0 }])],
    ['second segment out of range', VIRTIO_BLK_T_WRITE_ZEROES, rangesPayload([{ sector: 0, sectorCount: 1, flags: 0 }, { sector: 64, sectorCount: 1, flags: 1 }])],
  ];
  for (const [name, type, payload] of cases) {
    const e = err(t, parseBlkRequest(req(type, payload), g.memory(), LIMITS), 'BLK_ERR_OUT_OF_RANGE', VIRTIO_BLK_S_IOERR, name);
    t.not(e?.status, null, name);
  }
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
  new DataView(huge.buffer).setUint32(8, 1, true);
  const e = err(t, parseBlkRequest(req(VIRTIO_BLK_T_DISCARD, huge), g.memory(), LIMITS), 'BLK_ERR_OUT_OF_RANGE', VIRTIO_BLK_S_IOERR, 'sector 2^64 - 1');
  t.not(e?.status, null);
});

test('an unknown request type is BLK_ERR_UNSUPPORTED with UNSUPP', (t) => {
  const g = newGuest();
  for (const type of [2, 3, 5, 7, 9, 12, 14, 99, 0x7fffffff]) {
    const e = err(t, parseBlkRequest(chain(seg(g, header(type, 0), false), seg(g, 512, true), seg(g, 1, true)), g.memory(), LIMITS), 'BLK_ERR_UNSUPPORTED', VIRTIO_BLK_S_UNSUPP, `type ${type}`);
    t.not(e?.status, null);
  }
});

test('the legacy barrier bit is stripped from the type', (t) => {
  const g = newGuest();
  const out = ok(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_OUT | VIRTIO_BLK_T_BARRIER, 1), false), seg(g, 512, false), seg(g, 1, true)), g.memory(), LIMITS));
  t.is(out.type, VIRTIO_BLK_T_OUT);
  const inn = ok(t, parseBlkRequest(chain(seg(g, header(VIRTIO_BLK_T_BARRIER, 1), false), seg(g, 512, true), seg(g, 1, true)), g.memory(), LIMITS));
  t.is(inn.type, VIRTIO_BLK_T_IN);
});

test('the header is copied once: changing guest memory after parsing does not change the request', (t) => {
  const g = newGuest();
  const h = seg(g, header(VIRTIO_BLK_T_IN, 2), false);
  const r = ok(t, parseBlkRequest(chain(h, seg(g, 512, true), seg(g, 1, true)), g.memory(), LIMITS));
  g.write(h.gpa, header(VIRTIO_BLK_T_OUT, 60));
  t.is(r.type, VIRTIO_BLK_T_IN);
  t.is(r.sector, 2);
});
