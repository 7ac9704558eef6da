/**
 * Real-process OSD fault tests (issue #5): a monitor and 3 OSD processes on 127.0.0.1 with
 * stores under /var/tmp (real fsync), pool size 3 / min_size 2, and a small direct client
 * (MonClient for map + ticket, then MSG_OSD_OP) writing continuously with verification.
 *
 * Measured and printed: I/O pause after kill -9 of an OSD, recovery time after its restart,
 * I/O freeze while an OSD is SIGSTOPped, and data moved by backfill to a 4th OSD vs ideal.
 * After each step every acknowledged write reads back identically from EVERY replica
 * (MSG_OSD_LOCAL_READ on each OSD of the acting set).
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { parseKeyring } from '../../src/auth/keyring.js';
import { clusterErrorFromWire } from '../../src/common/errors.js';
import type { PoolId } from '../../src/common/ids.js';
import { createRealEnv } from '../../src/env/real.js';
import { RealNet } from '../../src/env/real-net.js';
import type { ClusterMap } from '../../src/map/cluster-map.js';
import { MonClient } from '../../src/mon/mon-client.js';
import type { Session } from '../../src/msg/session.js';
import { MsgType } from '../../src/msg/types.js';
import { decodeObjectCopy, encodeObjectRef, joinChunks } from '../../src/osd/osd-peer-protocol.js';
import { OSD_FLAG_WRITE, decodeOsdOpReply, encodeOsdOpRequest } from '../../src/osd/osd-protocol.js';
import { objectToPg, pgToOsds } from '../../src/placement/placement.js';
import { Daemons, MAIN, freePort, killHard, runCli, sleep, until as pollUntil } from './proc-helpers.js';
import type { CliResult } from './proc-helpers.js';

const GRACE_MS = 3000;
const PG_NUM = 32;
const OBJECTS = 48;

const dir = mkdtempSync('/var/tmp/strata-osd-faults-');
const keyring = join(dir, 'keyring');
const daemons = new Daemons(dir);
const children = daemons.children;
const osdProcs = new Map<number, ChildProcess>();
let monPort = 0;
const osdPorts: number[] = [];

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, { monPort, keyring, name: 'client.admin' });
}
/** Polls `fn` every 50 ms until it returns true; fails loudly after `timeoutMs`. */
function until(what: string, timeoutMs: number, fn: () => boolean | Promise<boolean>): Promise<number> {
  return pollUntil(what, timeoutMs, fn, 50);
}
function startOsd(id: number): void {
  osdProcs.set(id, daemons.spawn([
    'osd', '--id', String(id), '--data', join(dir, `osd.${id}`), '--addr', `127.0.0.1:${osdPorts[id]}`, '--mon', `127.0.0.1:${monPort}`,
    '--keyring', join(dir, `osd.${id}.keyring`), '--host', `host-${id}`, '--journal-mib', '16', '--heartbeat-grace-ms', String(GRACE_MS),
  ], `osd.${id}.log`));
}
function dumpLogsOnFailure(t: ExecutionContext): void {
  t.teardown(() => {
    if (t.passed) return;
    for (const name of ['mon.log', 'osd.0.log', 'osd.1.log', 'osd.2.log', 'osd.3.log']) {
      try { t.log(`--- ${name} (tail)\n` + readFileSync(join(dir, name), 'utf8').split('\n').filter((l) => !l.includes('"level":30')).slice(-12).join('\n')); } catch { /* missing */ }
    }
  });
}

// ---------------------------------------------------------------- the direct test client

const env = createRealEnv({ log: pino({ level: 'silent' }), net: new RealNet() });
let mon: MonClient;
let poolId = 0;
const sessions = new Map<string, Session>();
let tidSeq = 1;

function map(): ClusterMap { return mon.map()!; }
function sessionTo(addr: string, creds: { ticket: Uint8Array; sessionKey: Uint8Array }): Session {
  let s = sessions.get(addr);
  if (s === undefined || s.state === 'closed') {
    const i = addr.lastIndexOf(':');
    s = mon.msgr.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) }, { credentials: () => ({ method: 'ticket', ticket: creds.ticket, sessionKey: creds.sessionKey }), instance: 'fault' });
    sessions.set(addr, s);
  }
  return s;
}
function ticket(): Promise<{ ticket: Uint8Array; sessionKey: Uint8Array }> {
  return new Promise((resolve, reject) => mon.ticket((e, c) => (e !== null || c === undefined ? reject(e) : resolve(c))));
}

/** Writes 4 KiB at `offset` of `name`; resends (same reqId) until acknowledged. Returns ack time. */
async function writeBlock(name: string, offset: number, data: Uint8Array): Promise<void> {
  const tid = tidSeq++;
  for (let attempt = 0; attempt < 400; attempt++) {
    const m = map();
    const pool = m.pools.get(poolId as PoolId)!;
    const pg = objectToPg(pool, name);
    const primary = pgToOsds(m, pg).primary;
    const addr = primary === -1 ? undefined : m.osds.get(primary)?.addr;
    if (addr === undefined) { await sleep(50); continue; }
    const creds = await ticket();
    const payload = encodeOsdOpRequest({ pool: pool.id, objectName: name, pgSeed: pg.seed, mapEpoch: m.epoch, reqId: { client: 'client.admin/fault', tid, attempt }, flags: OSD_FLAG_WRITE, ops: [{ op: 'write', offset, length: data.length }] });
    const res = await new Promise<number | 'retry'>((resolve) => {
      const epoch = m.epoch;
      let done = false;
      // A map change (new primary) makes the client resend at once, as the Objecter does.
      const onMap = (): void => { if (!done && map().epoch > epoch && pgToOsds(map(), pg).primary !== primary) { done = true; resolve('retry'); } };
      mon.on('map', onMap);
      sessionTo(addr, creds).request({ type: MsgType.MSG_OSD_OP, payload, data: [data], epoch: m.epoch }, { timeoutMs: 2000 }, (err, r) => {
        mon.off('map', onMap);
        if (done) return;
        done = true;
        if (err !== null || r === undefined) { resolve('retry'); return; }
        resolve(decodeOsdOpReply(r.payload).result);
      });
    });
    if (res === 0) return;
    if (res !== 'retry' && clusterErrorFromWire(res) !== 'CLU_ERR_WRONG_TARGET' && clusterErrorFromWire(res) !== 'CLU_ERR_EPOCH_STALE' && clusterErrorFromWire(res) !== 'CLU_ERR_UNAVAILABLE') throw new Error(`write ${name} failed: ${clusterErrorFromWire(res)}`);
    await sleep(20);
  }
  throw new Error(`write ${name} never acknowledged`);
}

/** Acknowledged content: object → 4 KiB slot → fill byte. */
const model = new Map<string, Map<number, number>>();
const ackTimes: number[] = [];

function block(fill: number): Uint8Array { const b = new Uint8Array(4096); b.fill(fill); b[0] = fill ^ 0x5a; return b; }

/** Writes continuously with `qd` workers until `stop()`; records ack times. */
function startWriter(qd = 4): { stop: () => Promise<void> } {
  let running = true;
  let n = 0;
  const worker = async (w: number): Promise<void> => {
    while (running) {
      const obj = `obj.${(n * 7 + w) % OBJECTS}`;
      const slot = (n++ * 3) % 16;
      const fill = (n % 250) + 1;
      // One writer per object at a time keeps the model exact (no two in flight on an object).
      if (inflightObj.has(obj)) { await sleep(1); continue; }
      inflightObj.add(obj);
      await writeBlock(obj, slot * 4096, block(fill));
      inflightObj.delete(obj);
      if (!model.has(obj)) model.set(obj, new Map());
      model.get(obj)!.set(slot, fill);
      ackTimes.push(Date.now());
    }
  };
  const inflightObj = new Set<string>();
  const ws = Array.from({ length: qd }, (_, w) => worker(w));
  return { stop: async () => { running = false; await Promise.all(ws); } };
}

/** Largest gap between acknowledgements in [from, to]. */
function maxGap(from: number, to: number): number {
  const ts = ackTimes.filter((x) => x >= from && x <= to);
  let g = 0;
  for (let i = 1; i < ts.length; i++) g = Math.max(g, ts[i]! - ts[i - 1]!);
  return ts.length === 0 ? to - from : g;
}

async function localRead(osd: number, name: string): Promise<Uint8Array | undefined> {
  const addr = map().osds.get(osd as never)!.addr;
  const creds = await ticket();
  return new Promise((resolve, reject) => {
    sessionTo(addr, creds).request({ type: MsgType.MSG_OSD_LOCAL_READ, payload: encodeObjectRef(poolId, name) }, { timeoutMs: 5000 }, (err, r) => {
      if (err !== null || r === undefined) { reject(err); return; }
      const c = decodeObjectCopy(r.payload);
      resolve(c.exists ? new Uint8Array(joinChunks(r.data)) : undefined);
    });
  });
}

/** Every acknowledged write reads back from every OSD in the object's acting set. */
async function verifyAllReplicas(t: ExecutionContext): Promise<void> {
  let checked = 0;
  for (const [obj, slots] of model) {
    const acting = pgToOsds(map(), objectToPg(map().pools.get(poolId as PoolId)!, obj)).acting;
    t.is(acting.length, 3, `${obj} has 3 replicas`);
    for (const osd of acting) {
      const data = await localRead(osd, obj);
      t.truthy(data, `${obj} on osd.${osd}`);
      for (const [slot, fill] of slots) {
        const got = data!.subarray(slot * 4096, slot * 4096 + 4096);
        if (got.length !== 4096 || got[0] !== (fill ^ 0x5a) || got[4095] !== fill) t.fail(`${obj} slot ${slot} on osd.${osd}: want ${fill}, got ${got[4095]}`);
        checked++;
      }
    }
  }
  t.log(`verified ${checked} acknowledged blocks on every replica`);
}

async function pgStates(): Promise<Record<string, number>> {
  const r = await cli(['status', '--json']);
  if (r.code !== 0) return {};
  return (JSON.parse(r.stdout) as { pgStates: Record<string, number> }).pgStates;
}
const allClean = async (): Promise<boolean> => (await pgStates())['active+clean'] === PG_NUM;

test.before(async () => {
  monPort = await freePort();
  for (let i = 0; i < 4; i++) osdPorts.push(await freePort());
  await new Promise<void>((resolve, reject) => execFile(process.execPath, [MAIN, 'mon', '--mkfs', '--data', join(dir, 'mon'), '--keyring', keyring], { timeout: 15_000 }, (e) => (e === null ? resolve() : reject(e))));
  daemons.spawn(['mon', '--data', join(dir, 'mon'), '--addr', `127.0.0.1:${monPort}`, '--keyring', keyring, '--osd-grace-ms', String(GRACE_MS)], 'mon.log');
  await until('monitor', 10_000, async () => (await cli(['status'])).code === 0);
  for (let i = 0; i < 4; i++) {
    const r = await cli(['auth', 'add', `osd.${i}`, '--caps', 'mon=allow r', '-o', join(dir, `osd.${i}.keyring`)]);
    if (r.code !== 0) throw new Error(`auth add osd.${i}: ${r.stderr}`);
  }
  for (let i = 0; i < 3; i++) startOsd(i);
  const pr = await cli(['pool', 'create', 'data', '--size', '3', '--min-size', '2', '--pg-num', String(PG_NUM), '--failure-domain', 'osd']);
  if (pr.code !== 0) throw new Error(`pool create: ${pr.stderr}`);
  const entry = parseKeyring(readFileSync(keyring, 'utf8'));
  if (!(entry instanceof Map)) throw new Error('keyring');
  mon = new MonClient({ env, entity: 'client.admin', key: entry.get('client.admin')!.key, mon: { host: '127.0.0.1', port: monPort } });
  mon.subscribe();
  await until('map with pool', 10_000, () => { const m = mon.map(); if (m === undefined) return false; for (const p of m.pools.values()) if (p.name === 'data') { poolId = p.id; return true; } return false; });
  await until('3 osds up and all PGs clean', 20_000, async () => [...map().osds.values()].filter((o) => o.up).length === 3 && await allClean());
});

test.after.always(async () => {
  mon?.close();
  await Promise.all([...children].map((c) => killHard(c)));
  rmSync(dir, { recursive: true, force: true });
});

test.serial('kill -9 an OSD under write load: I/O pauses briefly; restart: recovery to active+clean; every replica verified', async (t) => {
  dumpLogsOnFailure(t);
  const w = startWriter();
  await sleep(1500);
  const killAt = Date.now();
  await killHard(osdProcs.get(2));
  await sleep(3000);
  const pause = maxGap(killAt - 100, Date.now());
  t.log(`kill -9 osd.2 → longest I/O pause ${pause} ms (goal ≤ 1000 ms)`);
  t.true(ackTimes.filter((x) => x > killAt + 1500).length > 0, 'writes continue degraded');
  const restartAt = Date.now();
  startOsd(2);
  const recoveryMs = await until('active+clean after restart', 30_000, allClean);
  t.log(`restart osd.2 → all ${PG_NUM} PGs active+clean after ${recoveryMs} ms (writes continuing; goal ≤ 10 s)`);
  void restartAt;
  await w.stop();
  await until('clean', 10_000, allClean);
  t.true(pause < 3000);
  await verifyAllReplicas(t);
});

test.serial('SIGSTOP an OSD: I/O freezes at most about the grace, then continues; SIGCONT: clean again', async (t) => {
  dumpLogsOnFailure(t);
  const w = startWriter();
  await sleep(1000);
  const stopAt = Date.now();
  osdProcs.get(1)!.kill('SIGSTOP');
  await sleep(GRACE_MS + 3000);
  const freeze = maxGap(stopAt - 100, Date.now());
  t.log(`SIGSTOP osd.1 → longest I/O freeze ${freeze} ms (grace ${GRACE_MS} ms)`);
  t.true(ackTimes.filter((x) => x > Date.now() - 1000).length > 0, 'writes continue after the grace');
  osdProcs.get(1)!.kill('SIGCONT');
  const rec = await until('active+clean after SIGCONT', 30_000, allClean);
  t.log(`SIGCONT osd.1 → active+clean after ${rec} ms`);
  await w.stop();
  await until('clean', 10_000, allClean);
  t.true(freeze < GRACE_MS + 2500);
  await verifyAllReplicas(t);
});

test.serial('add a 4th OSD: backfill moves only PGs that map to it; data moved vs ideal', async (t) => {
  dumpLogsOnFailure(t);
  const before = map();
  const pool = before.pools.get(poolId as PoolId)!;
  startOsd(3);
  await until('osd.3 up', 10_000, () => map().osds.get(3 as never)?.up === true);
  const ms = await until('active+clean with 4 OSDs', 30_000, allClean);
  const after = map();
  let changed = 0;
  let toNew = 0;
  let wrong = 0;
  for (let seed = 0; seed < pool.pgNum; seed++) {
    const a = pgToOsds(before, { pool: pool.id, seed: seed as never }).acting;
    const b = pgToOsds(after, { pool: pool.id, seed: seed as never }).acting;
    const same = a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
    if (!same) { changed++; if (b.includes(3 as never)) toNew++; else wrong++; }
  }
  // Bytes on the new OSD vs the ideal share (3 replicas over 4 OSDs: 1/4 of all replica bytes).
  let onNew = 0;
  let total = 0;
  for (const obj of model.keys()) {
    const acting = pgToOsds(after, objectToPg(pool, obj)).acting;
    for (const osd of acting) {
      const d = await localRead(osd, obj);
      total += d?.length ?? 0;
      if (osd === 3) onNew += d?.length ?? 0;
    }
  }
  t.log(`osd.3 added → clean after ${ms} ms; PGs whose acting set changed: ${changed} (all include osd.3: ${wrong === 0}); ` +
    `bytes on osd.3 ${onNew} of ${total} replica bytes = ${(onNew / Math.max(1, total) * 100).toFixed(1)}% (ideal 25%)`);
  t.is(wrong, 0);
  t.is(changed, toNew);
  await verifyAllReplicas(t);
});
