/**
 * `osd blocklist add|rm|ls` through a real monitor (MonServer, FileMonStore): entries land in
 * the map with a wall-clock expiry (default 1 h), rm lifts them, the monitor prunes expired
 * ones by itself; argument validation; who may run them (`allow rw`, or `profile rbd` for add
 * only); the CLI words.
 */
import test from 'ava';
import { parseCaps } from '../src/auth/caps.js';
import type { Caps } from '../src/auth/caps.js';
import { decodeCaps, encodeCaps } from '../src/auth/caps.js';
import { buildCommand } from '../src/bin/cli.js';
import { Reader, Writer } from '../src/common/codec.js';
import { ClusterError } from '../src/common/errors.js';
import { monCommandAllowed, parseMonCommand } from '../src/mon/mon-protocol.js';
import type { MonCommand } from '../src/mon/mon-protocol.js';
import { TestCluster } from './client-harness.js';

const A = 'client.vm1/0a1b2c3d';
const code = (e: unknown): string | undefined => (e as ClusterError | undefined)?.code;

test('add / ls / rm through the monitor; entries expire and the monitor prunes them', async (t) => {
  const c = await TestCluster.start({ osds: 1, pool: { name: 'vms', size: 1, minSize: 1, pgNum: 4 } });
  t.teardown(() => c.stop());
  const before = Date.now();
  const r = await c.command({ prefix: 'osd blocklist add', instance: A });
  const epoch = r['epoch'] as number;
  const expiresMs = r['expiresMs'] as number;
  t.true(expiresMs >= before + 3600_000 && expiresMs <= Date.now() + 3600_000, 'default lifetime 1 h');
  const m = await c.waitMap((x) => x.epoch >= epoch);
  t.is(m.blocklist.get(A), expiresMs);
  const ls = await c.command({ prefix: 'osd blocklist ls' });
  t.deepEqual(ls['blocklist'], [{ instance: A, expiresMs }]);
  const dump = await c.command({ prefix: 'osd dump' });
  t.deepEqual(dump['blocklist'], [{ instance: A, expiresMs }]);

  await c.command({ prefix: 'osd blocklist rm', instance: A });
  t.is(code(await t.throwsAsync(c.command({ prefix: 'osd blocklist rm', instance: A }))), 'CLU_ERR_NOT_FOUND');
  t.deepEqual((await c.command({ prefix: 'osd blocklist ls' }))['blocklist'], []);
  t.is(code(await t.throwsAsync(c.command({ prefix: 'osd blocklist add', instance: 'osd.1/x' }))), 'CLU_ERR_INVALID');
  t.is(code(await t.throwsAsync(c.command({ prefix: 'osd blocklist add', instance: A, expireSeconds: 0 }))), 'CLU_ERR_INVALID');

  // A 1 s entry disappears from the map without anyone asking (monitor tick).
  const short = await c.command({ prefix: 'osd blocklist add', instance: 'client.vm2/beef', expireSeconds: 1 });
  await c.waitMap((x) => x.epoch >= (short['epoch'] as number) && x.blocklist.has('client.vm2/beef'));
  const gone = await c.waitMap((x) => !x.blocklist.has('client.vm2/beef'), 5000);
  t.is(gone.blocklist.size, 0);
  t.true(Date.now() >= (short['expiresMs'] as number), 'not pruned before its expiry');
});

test('caps: ls needs allow r; add needs allow rw or profile rbd; rm needs allow rw', (t) => {
  const caps = (mon: string): Caps => { const p = parseCaps({ mon }); if (p instanceof ClusterError) throw p; return p; };
  const cmd = (o: Record<string, unknown>): MonCommand => { const p = parseMonCommand(o); if (p instanceof ClusterError) throw p; return p; };
  const add = cmd({ prefix: 'osd blocklist add', instance: A });
  const rm = cmd({ prefix: 'osd blocklist rm', instance: A });
  const ls = cmd({ prefix: 'osd blocklist ls' });
  const rbd = caps('profile rbd');
  t.is(rbd.mon, 'rbd');
  t.deepEqual([monCommandAllowed(rbd, add), monCommandAllowed(rbd, rm), monCommandAllowed(rbd, ls), monCommandAllowed(rbd, cmd({ prefix: 'pool rm', name: 'x' }))], [true, false, true, false]);
  const r = caps('allow r');
  t.deepEqual([monCommandAllowed(r, add), monCommandAllowed(r, rm), monCommandAllowed(r, ls)], [false, false, true]);
  const rw = caps('allow *');
  t.deepEqual([monCommandAllowed(rw, add), monCommandAllowed(rw, rm), monCommandAllowed(rw, ls)], [true, true, true]);
  // profile rbd survives the ticket encoding.
  const w = new Writer(64);
  encodeCaps(w, rbd);
  t.is(decodeCaps(new Reader(w.finish())).mon, 'rbd');
});

test('CLI words: strata osd blocklist add|rm|ls', (t) => {
  const o = { json: false, timeoutMs: 1, output: undefined, size: 3, minSize: 2, pgNum: 8, failureDomain: 'host', caps: [], repair: false, maxChanges: undefined, maxDeviation: undefined };
  t.deepEqual(buildCommand(['osd', 'blocklist', 'ls'], o), { kind: 'mon', cmd: { prefix: 'osd blocklist ls' } });
  t.deepEqual(buildCommand(['osd', 'blocklist', 'add', A], o), { kind: 'mon', cmd: { prefix: 'osd blocklist add', instance: A } });
  t.deepEqual(buildCommand(['osd', 'blocklist', 'add', A, '600'], o), { kind: 'mon', cmd: { prefix: 'osd blocklist add', instance: A, expireSeconds: 600 } });
  t.deepEqual(buildCommand(['osd', 'blocklist', 'rm', A], o), { kind: 'mon', cmd: { prefix: 'osd blocklist rm', instance: A } });
  t.throws(() => buildCommand(['osd', 'blocklist', 'add', A, '1h'], o), { message: /bad expiry/ });
  t.throws(() => buildCommand(['osd', 'blocklist', 'rm'], o), { message: /usage/ });
});
