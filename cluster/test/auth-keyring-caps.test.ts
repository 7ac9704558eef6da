/**
 * Checks the pure auth pieces: keyring text round trips and rejects bad input with line
 * numbers; cap strings parse, format back, and `capsAllow` grants exactly what the grants say
 * (pool, prefix, read-only); caps survive the binary encoding used inside tickets.
 */
import test from 'ava';
import { Reader, Writer } from '../src/common/codec.js';
import { ClusterError } from '../src/common/errors.js';
import { capsAllow, decodeCaps, encodeCaps, formatOsdCaps, monCapsAllow, parseCaps, parseOsdCaps } from '../src/auth/caps.js';
import type { Caps } from '../src/auth/caps.js';
import { KEYRING_FILE_MODE, describeKeyring, generateKey, makeKeyringEntry, parseKeyring, serializeKeyring } from '../src/auth/keyring.js';
import type { Keyring } from '../src/auth/keyring.js';
import { seededRng } from './msg-test-env.js';

function caps(osd: string, mon = ''): Caps {
  const c = parseCaps({ mon, osd });
  if (c instanceof ClusterError) throw c;
  return c;
}

test('keyring serializes and parses back identically', (t) => {
  const rng = seededRng(7);
  const ring: Keyring = new Map();
  for (const [entity, mon, osd] of [['mon.', 'allow *', 'allow *'], ['osd.12', 'allow rw', ''], ['client.vm1', 'allow r', 'allow rw pool=vms prefix=rbd_data.vm1']] as const) {
    const e = makeKeyringEntry(entity, generateKey(rng), { mon, osd });
    if (e instanceof ClusterError) throw e;
    ring.set(entity, e);
  }
  const text = serializeKeyring(ring);
  t.true(text.includes('caps osd = "allow rw pool=vms prefix=rbd_data.vm1"'));
  const back = parseKeyring(text);
  if (back instanceof ClusterError) throw back;
  t.deepEqual([...back.keys()], ['mon.', 'osd.12', 'client.vm1']);
  t.deepEqual(back.get('client.vm1')!.key, ring.get('client.vm1')!.key);
  t.is(serializeKeyring(back), text);
  t.false(JSON.stringify(describeKeyring(back)).includes('key"'), 'describe has no keys');
  t.is(KEYRING_FILE_MODE, 0o600);
});

test('keyring parse errors name the line', (t) => {
  const key = Buffer.alloc(32, 1).toString('base64');
  const cases = [
    `[client.x]\n\tcaps mon = "allow r"\n`, // No key.
    `[client.x]\n\tkey = ${Buffer.alloc(16).toString('base64')}\n`, // Short key.
    `[bogus]\n\tkey = ${key}\n`, // Bad entity.
    `key = ${key}\n`, // Field outside a section.
    `[client.x]\n\tkey = ${key}\n\tcaps osd = "allow rwx pool=a"\n`, // Bad access.
    `[client.x]\n\tkey = ${key}\n[client.x]\n\tkey = ${key}\n`, // Duplicate.
  ];
  for (const text of cases) {
    const r = parseKeyring(text);
    t.true(r instanceof ClusterError, text);
    t.is((r as ClusterError).code, 'CLU_ERR_DECODE');
    t.is(typeof (r as ClusterError).details?.['line'], 'number');
  }
});

test('osd caps: pool grants allow that pool only', (t) => {
  const c = caps('allow rw pool=a');
  t.true(capsAllow(c, { pool: 'a', objectName: 'x', write: true }));
  t.false(capsAllow(c, { pool: 'b', objectName: 'x', write: false }));
  t.false(capsAllow(c, { pool: 'b', objectName: 'x', write: true }));
});

test('osd caps: prefix and read-only grants', (t) => {
  const c = caps('allow r pool=vms prefix=rbd_data.abc, allow rw pool=scratch');
  t.true(capsAllow(c, { pool: 'vms', objectName: 'rbd_data.abc.0000', write: false }));
  t.false(capsAllow(c, { pool: 'vms', objectName: 'rbd_data.abc.0000', write: true }));
  t.false(capsAllow(c, { pool: 'vms', objectName: 'rbd_data.zzz.0000', write: false }));
  t.true(capsAllow(c, { pool: 'scratch', objectName: 'anything', write: true }));
  t.true(capsAllow(caps('allow *'), { pool: 'any', objectName: 'o', write: true }));
  t.false(capsAllow(caps(''), { pool: 'any', objectName: 'o', write: false }));
});

test('cap text round-trips and malformed grants are rejected', (t) => {
  const text = 'allow r pool=vms prefix=rbd_data.abc, allow rw';
  t.is(formatOsdCaps(parseOsdCaps(text) as ReturnType<typeof caps>['osd']), text);
  for (const bad of ['allow', 'deny rw', 'allow rw pool=', 'allow rw color=red', 'allow rw pool=a pool=b', 'allow rw pool=a b']) {
    t.true(parseOsdCaps(bad) instanceof ClusterError, bad);
  }
  t.true(monCapsAllow(caps('', 'allow r'), false));
  t.false(monCapsAllow(caps('', 'allow r'), true));
});

test('caps survive the binary ticket encoding', (t) => {
  const c = caps('allow r pool=vms prefix=p, allow rw pool=x, allow rw', 'allow rw');
  const w = new Writer();
  encodeCaps(w, c);
  const r = new Reader(w.finish());
  t.deepEqual(decodeCaps(r), c);
  r.end();
});
