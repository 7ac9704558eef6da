/**
 * Unit checks of the simulator's parts, driven by a bare Scheduler: SimNetwork keeps each
 * stream in order and exactly once across random chunk splits, refuses connects to a dead
 * process, stalls a partitioned direction and delivers it after healing, and resets peers of
 * a killed process; SimDisk loses unsynced data and un-fsynced directory entries on crash
 * and keeps synced data, with all-zero pages not stored.
 */
import test from 'ava';
import type { NetSocket } from '../src/env/net.js';
import type { Fd } from '../src/env/env.js';
import { LogRing, simLogger } from '../sim/log-ring.js';
import { Buggify, SimProcess } from '../sim/process.js';
import type { ProcessWorld } from '../sim/process.js';
import { derive, parseSeed } from '../sim/rng.js';
import { Scheduler } from '../sim/scheduler.js';
import { DEFAULT_DISK_PROFILE } from '../sim/sim-disk.js';
import { DEFAULT_NET_PROFILE, SimNetwork } from '../sim/sim-network.js';

function world(splitProb = 0.5): ProcessWorld & { sched: Scheduler; network: SimNetwork } {
  const seed = parseSeed('0x42');
  const sched = new Scheduler();
  const network = new SimNetwork(sched, derive(seed, 'net'), { ...DEFAULT_NET_PROFILE, splitProb });
  return { sched, network, rootLog: simLogger(new LogRing(100), 'silent', () => sched.now), buggify: new Buggify(false, 0, derive(seed, 'b')), stream: (n) => derive(seed, n) };
}

function pair(w: ReturnType<typeof world>): { a: SimProcess; b: SimProcess; got: number[]; client: () => NetSocket | undefined; closes: string[] } {
  const a = new SimProcess(w, 'a', 'ha', DEFAULT_DISK_PROFILE);
  const b = new SimProcess(w, 'b', 'hb', DEFAULT_DISK_PROFILE);
  const aenv = a.start();
  const benv = b.start();
  const got: number[] = [];
  const closes: string[] = [];
  let client: NetSocket | undefined;
  benv.net.listen('hb', 7, (s) => { s.onData((c) => got.push(...c)); s.onClose((e) => closes.push(`b:${(e as { code?: string } | undefined)?.code ?? 'fin'}`)); }, () => undefined);
  w.sched.run();
  aenv.net.connect('hb', 7, (err, s) => { if (err === null) { client = s; s!.onClose((e) => closes.push(`a:${(e as { code?: string } | undefined)?.code ?? 'fin'}`)); } });
  w.sched.run();
  return { a, b, got, client: () => client, closes };
}

test('streams arrive in order, exactly once, whatever the chunking', (t) => {
  const w = world(0.9);
  const p = pair(w);
  const sent: number[] = [];
  for (let i = 0; i < 200; i++) {
    const chunk = Uint8Array.from({ length: 1 + (i % 7) }, (_, j) => (i * 7 + j) & 0xff);
    sent.push(...chunk);
    p.client()!.write([chunk]);
  }
  w.sched.run();
  t.deepEqual(p.got, sent);
});

test('connect to a dead process is refused; a partition stalls, healing delivers', (t) => {
  const w = world();
  const p = pair(w);
  p.b.kill();
  w.sched.run();
  t.deepEqual(p.closes, ['a:ECONNRESET']);
  let code = '';
  p.a.env.net.connect('hb', 7, (err) => { code = err?.code ?? 'ok'; });
  w.sched.run();
  t.is(code, 'ECONNREFUSED');

  const w2 = world();
  const q = pair(w2);
  w2.network.partition(['ha'], ['hb']);
  q.client()!.write([Uint8Array.of(1, 2, 3)]);
  w2.sched.run({ untilMs: w2.sched.now + 5000 });
  t.deepEqual(q.got, []);
  w2.network.healPartitions();
  w2.sched.run({ untilMs: w2.sched.now + 100 });
  t.deepEqual(q.got, [1, 2, 3]);
});

test('a paused process receives nothing until it resumes', (t) => {
  const w = world();
  const p = pair(w);
  p.b.pause(1000);
  p.client()!.write([Uint8Array.of(9)]);
  w.sched.run({ untilMs: w.sched.now + 500 });
  t.deepEqual(p.got, []);
  w.sched.run({ untilMs: w.sched.now + 1000 });
  t.deepEqual(p.got, [9]);
});

test('disk crash keeps synced data, drops unsynced writes and unsynced directory entries', (t) => {
  const w = world();
  const proc = new SimProcess(w, 'd', 'hd', { ...DEFAULT_DISK_PROFILE, crashKeepProb: 0, crashTearProb: 0 });
  const env = proc.start();
  const disk = env.disk;
  const data = Uint8Array.from({ length: 10000 }, (_, i) => (i % 251) + 1);
  let fd = -1 as Fd;
  disk.mkdir('/x', () => undefined);
  disk.open('/x/f', { create: true }, (_e, f) => { fd = f; });
  w.sched.run();
  disk.pwrite(fd, data, 0, () => undefined);
  disk.fdatasync(fd, () => undefined);
  disk.fsyncDir('/x', () => undefined);
  disk.open('/x/g', { create: true }, () => undefined);
  w.sched.run();
  disk.pwrite(fd, new Uint8Array(5000).fill(0xee), 2000, () => undefined); // Unsynced overwrite.
  w.sched.run();
  proc.kill();
  const env2 = proc.start();
  const buf = new Uint8Array(10000);
  let names: string[] = [];
  env2.disk.readdir('/x', (_e, n) => { names = n; });
  env2.disk.open('/x/f', {}, (_e, f) => env2.disk.pread(f, buf, 0, () => undefined));
  w.sched.run();
  t.deepEqual(names, ['f']);
  t.deepEqual(buf, data);
});
