/**
 * Client instance binding at the OSD (issue #6, fencing hardening), with a real OsdCore and
 * store over real TCP (osd-harness.ts, key auth): a session that presented instance nonce N in
 * its handshake may only send ops whose `reqId.client` is `<entity>/N`. Ops naming another
 * nonce, another entity, or sent on a session without an instance (protocol 1 hello) are
 * refused with CLU_ERR_PERM `instance-mismatch`; so a blocklisted instance cannot escape by
 * changing the nonce in its reqIds. A new session with a new instance is a new instance (not
 * refused by an instance entry), but an entity-wide entry refuses every instance of the entity
 * and closes their sessions.
 */
import test from 'ava';
import { ClusterError } from '../src/common/errors.js';
import type { Session } from '../src/msg/session.js';
import { MsgType } from '../src/msg/types.js';
import { OSD_FLAG_WRITE, OSD_RESULT_BLOCKLISTED, decodeOsdOpReply, encodeOsdOpRequest } from '../src/osd/osd-protocol.js';
import { objectToPg } from '../src/placement/placement.js';
import { waitFor } from './msg-test-env.js';
import { OsdHarness } from './osd-harness.js';

/** One write naming `client` as its reqId.client on session `s`: the reply result, or the error. */
function write(h: OsdHarness, s: Session, client: string, tid: number): Promise<number | ClusterError> {
  const pool = h.map.pools.get(h.poolSpec.id as never)!;
  const name = `obj${tid}`;
  const pg = objectToPg(pool, name);
  const payload = encodeOsdOpRequest({
    pool: pool.id, objectName: name, pgSeed: pg.seed, mapEpoch: h.map.epoch, reqId: { client, tid, attempt: 0 }, flags: OSD_FLAG_WRITE,
    ops: [{ op: 'write', offset: 0, length: 512 }],
  });
  return new Promise((resolve) => {
    s.request({ type: MsgType.MSG_OSD_OP, payload, data: [new Uint8Array(512).fill(tid & 0xff)], epoch: h.map.epoch }, { timeoutMs: 10_000 }, (err, r) => {
      if (err !== null || r === undefined) { resolve(err ?? new ClusterError('CLU_ERR_IO', 'no reply')); return; }
      resolve(decodeOsdOpReply(r.payload).result);
    });
  });
}

/** Resolves when `s` loses its connection (the OSD closed it). */
const resetOf = (s: Session): Promise<void> => new Promise((resolve) => s.once('reset', () => resolve()));

const mismatch = (t: { true: (v: boolean, m?: string) => void }, r: number | ClusterError, what: string): void => {
  t.true(r instanceof ClusterError && r.code === 'CLU_ERR_PERM' && r.message.startsWith('instance-mismatch'), `${what}: ${String(r)}`);
  // The stable reason travels with the error reply (encodeReject), not only in the message.
  t.true(r instanceof ClusterError && r.details?.['reason'] === 'instance-mismatch' && r.details['remote'] === true, `${what}: reason ${JSON.stringify(r instanceof ClusterError ? r.details : null)}`);
};

test.serial('ops must name the instance their session presented; blocklisting cannot be escaped by another nonce', async (t) => {
  t.timeout(60_000);
  const h = new OsdHarness({ id: 1, name: 'rbd', size: 1, minSize: 1, pgNum: 4, failureDomain: 'osd' });
  try {
    const osd = await h.startOsd(0);
    h.initMap();
    await waitFor(() => h.allClean(), 10_000);
    const addr = { host: '127.0.0.1', port: osd.port };
    const s1 = h.client.connect(addr, { instance: 'aaaa' });
    let tid = 1;

    t.is(await write(h, s1, 'client.admin/aaaa', tid++), 0, 'an op naming the session instance runs');
    mismatch(t, await write(h, s1, 'client.admin/bbbb', tid++), 'another nonce of our entity');
    mismatch(t, await write(h, s1, 'client.vm9/aaaa', tid++), 'another entity with our nonce');
    mismatch(t, await write(h, s1, 'client.admin', tid++), 'no nonce');
    const legacy = h.client.connect(addr); // Protocol 1 hello: no instance bound.
    mismatch(t, await write(h, legacy, 'client.admin/aaaa', tid++), 'a session without an instance');
    t.is(s1.state, 'ready', 'a mismatch refuses the op, not the session');

    // Blocklist the instance: its ops are refused, and so are ops naming a fresh nonce on the
    // same connection (without the binding those ran: the OSD trusted reqId.client).
    const s1Reset = resetOf(s1);
    h.apply([{ op: 'blocklist-add', instance: 'client.admin/aaaa', expiresMs: Date.now() + 60_000 }]);
    await s1Reset; // The OSD closed its session; the same instance reconnects (s1 is outbound).
    t.is(await write(h, s1, 'client.admin/aaaa', tid++), OSD_RESULT_BLOCKLISTED);
    mismatch(t, await write(h, s1, 'client.admin/cccc', tid++), 'a blocklisted instance switching nonces');

    // A new session with a new instance is a new instance: an instance entry does not cover it.
    const s2 = h.client.connect(addr, { instance: 'dddd' });
    t.is(await write(h, s2, 'client.admin/dddd', tid++), 0);

    // An entity-wide entry covers every instance, present (its sessions close) and future.
    const s2Reset = resetOf(s2);
    h.apply([{ op: 'blocklist-add', instance: 'client.admin', expiresMs: Date.now() + 60_000 }]);
    await s2Reset;
    const s3 = h.client.connect(addr, { instance: 'eeee' });
    t.is(await write(h, s3, 'client.admin/eeee', tid++), OSD_RESULT_BLOCKLISTED);
    mismatch(t, await write(h, s3, 'client.vm9/eeee', tid++), 'impersonating another entity');
  } finally {
    await h.close();
  }
});
