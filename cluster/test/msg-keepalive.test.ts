/**
 * Messenger keepalive (docs/cluster-protocol.md §6), on the simulator's network and clock
 * (deterministic, exact times): two processes, a key-authenticated (so signed) session between
 * them with a short keepalive. A peer that goes silent (a partition that outlives it, no RST)
 * gets the session reset after `keepaliveTimeoutMs`, not before, on both ends; a request
 * written before fails `CLU_ERR_CONN_CLOSED` and the outbound session reconnects after healing.
 * A busy session sends no keepalive; an idle healthy one pings and stays up for many intervals.
 * Pings are counted on the wire (a tap on each process's socket writes), not only by the
 * session's own counters.
 */
import test from 'ava';
import { authPolicy } from '../src/auth/handshake.js';
import { makeKeyringEntry } from '../src/auth/keyring.js';
import type { KeyringEntry } from '../src/auth/keyring.js';
import { ClusterError } from '../src/common/errors.js';
import type { Env } from '../src/env/env.js';
import { Messenger } from '../src/msg/messenger.js';
import type { Session } from '../src/msg/session.js';
import { MsgType } from '../src/msg/types.js';
import { LogRing, simLogger } from '../sim/log-ring.js';
import { Buggify, SimProcess } from '../sim/process.js';
import type { ProcessWorld } from '../sim/process.js';
import { derive, parseSeed } from '../sim/rng.js';
import { Scheduler } from '../sim/scheduler.js';
import { DEFAULT_DISK_PROFILE } from '../sim/sim-disk.js';
import { DEFAULT_NET_PROFILE, SimNetwork } from '../sim/sim-network.js';
import { tappedNet } from './msg-test-env.js';

const INTERVAL = 100;
const TIMEOUT = 1000;
const KEY = new Uint8Array(32).fill(7);

interface World extends ProcessWorld { sched: Scheduler; network: SimNetwork }

function world(seed: string): World {
  const s = parseSeed(seed);
  const sched = new Scheduler();
  const network = new SimNetwork(sched, derive(s, 'net'), { ...DEFAULT_NET_PROFILE, delayMeanMs: 0.5, splitProb: 0.3 });
  return { sched, network, rootLog: simLogger(new LogRing(100), 'silent', () => sched.now), buggify: new Buggify(false, 0, derive(s, 'b')), stream: (n) => derive(s, n) };
}

/** An Env whose socket writes are inspected: counts the MSG_PING frames this process sends. */
function tapped(env: Env): { env: Env; pings: () => number } {
  let pings = 0;
  const net = tappedNet(env.net, {
    fn: (chunks) => {
      const h = chunks[0];
      // Every frame is one write whose first chunk is its 64-byte header; type at offset 6.
      if (h !== undefined && h.length >= 64 && (h[6]! | (h[7]! << 8)) === MsgType.MSG_PING) pings++;
      return chunks;
    },
  });
  return { env: { ...env, net }, pings: () => pings };
}

interface Pair {
  w: World;
  client: Session;
  server: () => Session;
  clientPings: () => number;
  serverPings: () => number;
  serverMsgr: Messenger;
  serverProc: SimProcess;
  resets: { atMs: number; err: ClusterError }[];
  serverClosedAtMs: number[];
}

/** Server on host hb (key auth, echo handler), client on ha; runs until the session is ready. */
function pair(seed: string): Pair {
  const w = world(seed);
  const a = new SimProcess(w, 'a', 'ha', DEFAULT_DISK_PROFILE);
  const b = new SimProcess(w, 'b', 'hb', DEFAULT_DISK_PROFILE);
  const ta = tapped(a.start());
  const tb = tapped(b.start());
  const limits = { keepaliveIntervalMs: INTERVAL, keepaliveTimeoutMs: TIMEOUT };
  const entry = makeKeyringEntry('client.t', KEY, { mon: 'allow r', osd: '' }) as KeyringEntry;
  const serverMsgr = new Messenger({ env: tb.env, entity: 'osd.0', limits, auth: authPolicy({ lookupKey: (e) => (e === 'client.t' ? entry : undefined) }) });
  serverMsgr.handle(MsgType.MSG_TEST_ECHO, (req, s) => s.reply(req, { type: req.type, payload: req.payload }));
  serverMsgr.handle(MsgType.MSG_TEST_SINK, () => undefined); // Never answers.
  let server: Session | undefined;
  const serverClosedAtMs: number[] = [];
  serverMsgr.on('accepted', (s) => { server = s; });
  serverMsgr.on('sessionClosed', () => serverClosedAtMs.push(w.sched.now));
  serverMsgr.listen('hb', 7, () => undefined);
  w.sched.run({ untilMs: 10 });
  const clientMsgr = new Messenger({ env: ta.env, entity: 'client.t', limits, credentials: () => ({ method: 'key', key: KEY }) });
  const client = clientMsgr.connect({ host: 'hb', port: 7 });
  const resets: { atMs: number; err: ClusterError }[] = [];
  client.on('reset', (err) => resets.push({ atMs: w.sched.now, err }));
  w.sched.run({ untilMs: w.sched.now + 50 });
  if (client.state !== 'ready' || server === undefined) throw new Error('session not ready');
  return { w, client, server: () => server!, clientPings: ta.pings, serverPings: tb.pings, serverMsgr, serverProc: b, resets, serverClosedAtMs };
}

function echo(p: Pair, timeoutMs = 5000): { result: string } {
  const r = { result: 'pending' };
  p.client.request({ type: MsgType.MSG_TEST_ECHO, payload: Uint8Array.of(1) }, { timeoutMs }, (err) => { r.result = err === null ? 'ok' : err.code; });
  return r;
}

test('an idle healthy session pings and stays up for many intervals (signed frames stay in sequence)', (t) => {
  const p = pair('0x1001');
  const start = p.w.sched.now;
  p.w.sched.run({ untilMs: start + 50 * INTERVAL });
  t.is(p.client.state, 'ready');
  t.deepEqual(p.resets, []);
  t.deepEqual(p.serverClosedAtMs, []);
  // Both ends ping only when they have heard nothing for an interval; the other's ping counts as
  // something heard, so together they send about one per interval (≥ 25 in 50 intervals).
  const wirePings = p.clientPings() + p.serverPings();
  t.true(wirePings >= 25 && wirePings <= 100, `pings on the wire: ${wirePings}`);
  t.is(p.client.keepaliveStats.pingsSent, p.clientPings());
  t.is(p.server().keepaliveStats.pingsSent, p.serverPings());
  t.true(p.client.keepaliveStats.pongsReceived >= p.clientPings() - 1, 'every ping is answered');
  const r = echo(p);
  p.w.sched.run({ untilMs: p.w.sched.now + 50 });
  t.is(r.result, 'ok', 'requests still work after many pings on a signed session');
});

test('a busy session sends no keepalive', (t) => {
  const p = pair('0x1002');
  const results: string[] = [];
  const until = p.w.sched.now + 40 * INTERVAL;
  const tick = (): void => {
    if (p.w.sched.now >= until) return;
    p.client.request({ type: MsgType.MSG_TEST_ECHO, payload: Uint8Array.of(2) }, { timeoutMs: 5000 }, (err) => results.push(err === null ? 'ok' : err.code));
    p.w.sched.after(INTERVAL / 2, null, 'busy tick', tick);
  };
  tick();
  p.w.sched.run({ untilMs: until + 50 });
  t.is(results.length, 80);
  t.true(results.every((r) => r === 'ok'));
  t.is(p.clientPings(), 0, 'the client heard a reply every half interval');
  t.is(p.serverPings(), 0, 'the server heard a request every half interval');
  // Then idle: keepalives start within about an interval.
  p.w.sched.run({ untilMs: p.w.sched.now + 3 * INTERVAL });
  t.true(p.clientPings() + p.serverPings() > 0);
});

test('a peer gone silent (partition, no RST): reset after the keepalive timeout, not before; reconnects after healing', (t) => {
  const p = pair('0x1003');
  p.w.sched.run({ untilMs: p.w.sched.now + 5 * INTERVAL }); // Idle, pinging.
  const cutAt = p.w.sched.now;
  p.w.network.partition(['ha'], ['hb']);
  const inflight = { result: 'pending' };
  p.client.request({ type: MsgType.MSG_TEST_SINK, payload: Uint8Array.of(3) }, { timeoutMs: 60_000 }, (err) => { inflight.result = err === null ? 'ok' : err.code; });
  // Nothing received since at most one interval (plus a round trip) before the cut.
  p.w.sched.run({ untilMs: cutAt + TIMEOUT - INTERVAL - 5 });
  t.is(p.client.state, 'ready', 'not reset before the timeout');
  t.deepEqual(p.resets, []);
  t.is(inflight.result, 'pending');
  p.w.sched.run({ untilMs: cutAt + TIMEOUT + 5 });
  t.is(p.resets.length, 1, 'reset once the peer was silent for the timeout');
  const reset = p.resets[0]!;
  t.true(reset.atMs >= cutAt + TIMEOUT - INTERVAL - 5 && reset.atMs <= cutAt + TIMEOUT + 5, `reset at +${reset.atMs - cutAt} ms`);
  t.is(reset.err.code, 'CLU_ERR_TIMEOUT');
  t.is(reset.err.details?.['reason'], 'keepalive');
  t.is(inflight.result, 'CLU_ERR_CONN_CLOSED', 'a request written before the reset fails so its owner can resend');
  t.is(p.serverClosedAtMs.length, 1, 'the server side dropped its silent inbound session too');
  t.true(p.serverClosedAtMs[0]! <= cutAt + TIMEOUT + 5);
  // Before the sim's TCP user timeout (20 s) would have noticed: keepalive is what found it.
  t.true(p.w.network.profile.tcpTimeoutMs > 2 * TIMEOUT);
  p.w.network.healPartitions();
  p.w.sched.run({ untilMs: p.w.sched.now + 20_000 }); // SYN retries back off up to 15 s.
  t.is(p.client.state, 'ready', 'reconnected after healing');
  const r = echo(p);
  p.w.sched.run({ untilMs: p.w.sched.now + 50 });
  t.is(r.result, 'ok');
});

test('a hung peer (paused process) is reset after the timeout; keepalive off (interval 0) never resets', (t) => {
  const p = pair('0x1004');
  const cutAt = p.w.sched.now;
  // Pause the server's process: its kernel still accepts bytes, it answers nothing.
  p.serverProc.pause(3 * TIMEOUT);
  p.w.sched.run({ untilMs: cutAt + TIMEOUT + 5 });
  t.is(p.resets.length, 1);
  t.true(p.resets[0]!.atMs >= cutAt + TIMEOUT - INTERVAL - 5, `reset at +${p.resets[0]!.atMs - cutAt} ms`);

  // The same pause with keepalive disabled: the session stays up (the default before keepalive).
  const w = world('0x1005');
  const a2 = new SimProcess(w, 'a', 'ha', DEFAULT_DISK_PROFILE);
  const b2 = new SimProcess(w, 'b', 'hb', DEFAULT_DISK_PROFILE);
  const off = { keepaliveIntervalMs: 0, keepaliveTimeoutMs: TIMEOUT };
  const sm = new Messenger({ env: b2.start(), entity: 'osd.0', limits: off });
  sm.listen('hb', 7, () => undefined);
  w.sched.run({ untilMs: 10 });
  const s = new Messenger({ env: a2.start(), entity: 'client.t', limits: off }).connect({ host: 'hb', port: 7 });
  w.sched.run({ untilMs: 60 });
  t.is(s.state, 'ready');
  b2.pause(3 * TIMEOUT);
  w.sched.run({ untilMs: w.sched.now + 3 * TIMEOUT - 10 });
  t.is(s.state, 'ready');
  t.is(s.keepaliveStats.pingsSent, 0);
});
