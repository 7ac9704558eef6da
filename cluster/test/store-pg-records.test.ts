/**
 * Compact PG records (store/pg-records.ts) and the codec pieces under them: every byte value
 * round-trips through the one-byte-string form, a read returns a fresh exact copy, the meta
 * encoding writes the same bytes as `Writer.bytes`, `Writer.str` (encoded in place) matches
 * TextEncoder for ASCII, multi-byte and astral text, and `logKey` keeps its sortable form.
 */
import test from 'ava';
import { Reader, Writer, bytesToLatin1, latin1ToBytes } from '../src/common/codec.js';
import { logKey } from '../src/pg/pg-log.js';
import { PgRecords } from '../src/store/pg-records.js';

const all = Uint8Array.from({ length: 256 }, (_, i) => i);

test('bytes → one-byte string → bytes is the identity for all 256 values', (t) => {
  const s = bytesToLatin1(all);
  t.is(s.length, 256);
  for (let i = 0; i < 256; i++) t.is(s.charCodeAt(i), i);
  const back = latin1ToBytes(s);
  t.deepEqual(back, all);
  t.is(back.buffer.byteLength, 256, 'an exact array, not a view of a shared pool');
  t.deepEqual(latin1ToBytes(''), new Uint8Array(0));
});

test('PgRecords: set/get/delete/entries; a read is a copy the caller may change', (t) => {
  const m = new PgRecords();
  const v = all.slice(100, 180);
  m.set('info', v);
  m.setLatin1('k2', bytesToLatin1(all.subarray(0, 3)));
  t.is(m.size, 2);
  const got = m.get('info')!;
  t.deepEqual(got, v);
  got[0] = 0;
  t.deepEqual(m.get('info'), v, 'changing a read value changes nothing stored');
  v[1] = 0;
  t.is(m.get('info')![1], 101, 'changing the written value later changes nothing stored');
  t.deepEqual([...m.entries()].map(([k, b]) => [k, [...b]]), [['info', [...all.subarray(100, 180)]], ['k2', [0, 1, 2]]]);
  t.deepEqual([...m.latin1Entries()].map(([k]) => k), ['info', 'k2']);
  m.delete('info');
  t.is(m.get('info'), undefined);
  t.is(m.size, 1);
});

test('Writer.latin1 writes what Writer.bytes writes; Reader.latin1 reads either', (t) => {
  const a = new Writer(4).bytes(all).finish().slice();
  const b = new Writer(4).latin1(bytesToLatin1(all)).finish().slice();
  t.deepEqual(b, a);
  t.is(new Reader(a).latin1(), bytesToLatin1(all));
});

test('Writer.str (encodeInto in place) equals TextEncoder, and grows the buffer as needed', (t) => {
  for (const s of ['', 'rbd_data.1234', 'é'.repeat(100), '日本語のオブジェクト名', '🙂x'.repeat(40)]) {
    const w = new Writer(1);
    w.u8(7).str(s).u8(9);
    const enc = new TextEncoder().encode(s);
    const out = w.finish();
    t.is(out.length, 1 + 4 + enc.length + 1);
    const r = new Reader(out);
    t.is(r.u8(), 7);
    t.is(r.str(), s);
    t.is(r.u8(), 9);
    r.end();
  }
});

test('logKey keeps its zero-padded, sortable form', (t) => {
  t.is(logKey({ epoch: 12, seq: 345 }), 'e0000000012.0000000000000345');
  const keys = [{ epoch: 2, seq: 1 }, { epoch: 1, seq: 99 }, { epoch: 1, seq: 100 }].map(logKey);
  t.deepEqual([...keys].sort(), [keys[1], keys[2], keys[0]]);
});
