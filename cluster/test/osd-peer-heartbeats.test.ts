/**
 * Peer heartbeats (osd/peer-heartbeats.ts) over real messengers on 127.0.0.1: a peer that stops
 * answering pings (a hung process) is reported `timeout` once its grace since the last reply
 * has passed — by its own deadline, not on a later ping tick — and the report is withdrawn when
 * it answers again; a peer whose port refuses connections is reported `refused` at once; a map
 * that marks the peer down drops its session and deadline.
 */
import test from 'ava';
import type { OsdId } from '../src/common/ids.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { buildMap } from '../src/map/map-builder.js';
import { decodeOsdPing, encodeOsdPing } from '../src/mon/mon-protocol.js';
import type { FailureKind } from '../src/mon/monitor-core.js';
import { Messenger } from '../src/msg/messenger.js';
import { MsgType } from '../src/msg/types.js';
import { PeerHeartbeats } from '../src/osd/peer-heartbeats.js';
import { testEnv } from './msg-test-env.js';

const INTERVAL_MS = 400;
const GRACE_MS = 600;

interface Report { target: OsdId; kind: FailureKind; cancel: boolean; atMs: number }

function listen(msgr: Messenger): Promise<number> {
  return new Promise((res, rej) => msgr.listen('127.0.0.1', 0, (err, port) => (err ? rej(err) : res(port!))));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function setup(peerAddr: (port: number) => string) {
  const env = testEnv({ level: 'warn' });
  const peer = new Messenger({ env: testEnv({ level: 'warn' }), entity: 'osd.1' });
  const state = { answering: true, stopAfterNext: false, stoppedAt: 0 };
  peer.handle(MsgType.MSG_OSD_PING, (req, s) => {
    decodeOsdPing(req.payload);
    if (!state.answering) return;
    s.reply(req, { type: req.type, payload: encodeOsdPing(1 as OsdId, 1) });
    if (state.stopAfterNext) {
      // Hangs right after a reply: the worst case for a check made on ping ticks.
      state.answering = false;
      state.stopAfterNext = false;
      state.stoppedAt = performance.now();
    }
  });
  const port = await listen(peer);
  let map: ClusterMap = buildMap({ osds: [{ id: 0, host: 'a', addr: '127.0.0.1:1' }, { id: 1, host: 'b', addr: peerAddr(port) }] });
  const reports: Report[] = [];
  const self = new Messenger({ env, entity: 'osd.0' });
  const hb = new PeerHeartbeats({
    env, id: 0 as OsdId, msgr: self, intervalMs: INTERVAL_MS, graceMs: GRACE_MS,
    mon: {
      map: () => map,
      currentTicket: () => ({}),
      reportFailure: (target, kind, cancel = false) => reports.push({ target, kind, cancel, atMs: performance.now() }),
    },
  });
  return {
    hb, peer, self, state, reports, setMap: (m: ClusterMap) => { map = m; hb.handleMap(m); }, map: () => map,
    close: () => { hb.stop(); self.shutdown(); peer.shutdown(); },
  };
}

test('a peer that stops answering is reported within its grace of the last reply, and withdrawn when it answers', async (t) => {
  const h = await setup((port) => `127.0.0.1:${port}`);
  t.teardown(h.close);
  h.hb.start();
  await sleep(3 * INTERVAL_MS);
  t.deepEqual(h.reports, [], 'a live peer is never reported');
  h.state.stopAfterNext = true;
  while (h.state.answering) await sleep(5);
  const stoppedAt = h.state.stoppedAt;
  while (h.reports.length === 0 && performance.now() - stoppedAt < 3 * GRACE_MS) await sleep(5);
  t.is(h.reports.length, 1);
  t.like(h.reports[0], { target: 1, kind: 'timeout', cancel: false });
  const after = h.reports[0]!.atMs - stoppedAt;
  t.log(`reported ${after.toFixed(0)} ms after the peer stopped answering (grace ${GRACE_MS}, ping every ${INTERVAL_MS})`);
  // The deadline is last reply + grace. A check on ping ticks would report one tick later
  // (last reply + 2 intervals = 800 ms here).
  t.true(after >= GRACE_MS - 20 && after <= GRACE_MS + 100, `reported after ${after} ms`);
  t.deepEqual([...h.hb.reported()], [[1, 'timeout']]);
  h.state.answering = true;
  while (h.reports.length < 2 && performance.now() - stoppedAt < 3 * GRACE_MS + 2 * INTERVAL_MS) await sleep(10);
  t.like(h.reports[1], { target: 1, kind: 'timeout', cancel: true });
  t.is(h.hb.reported().size, 0);
});

test('a refused connection is reported at once; a map marking the peer down drops it', async (t) => {
  // Port 1 on 127.0.0.1: nothing listens there, the connection is refused.
  const h = await setup(() => '127.0.0.1:1');
  t.teardown(h.close);
  const started = performance.now();
  h.hb.start();
  while (h.reports.length === 0 && performance.now() - started < GRACE_MS) await sleep(5);
  t.like(h.reports[0], { target: 1, kind: 'refused' });
  t.true(h.reports[0]!.atMs - started < GRACE_MS / 2, 'refused is reported before any grace');
  h.setMap(buildMap({ osds: [{ id: 0, host: 'a', addr: '127.0.0.1:1' }, { id: 1, host: 'b', addr: '127.0.0.1:1', up: false }] }));
  t.is(h.hb.reported().size, 0, 'the down peer was dropped');
  const n = h.reports.length;
  await sleep(GRACE_MS + 3 * INTERVAL_MS);
  t.is(h.reports.length, n, 'no report about a peer the map says is down');
});
