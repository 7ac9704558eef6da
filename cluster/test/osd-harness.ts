/**
 * In-process OSD cluster for tests: N `OsdCore`s, each with its own real ObjectStore (under
 * /var/tmp) and Messenger on 127.0.0.1 (key auth), a map the test drives by hand (no monitor),
 * and a minimal client speaking osd-protocol.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterError } from '../src/common/errors.js';
import type { OsdId, PoolId } from '../src/common/ids.js';
import { parsePgId } from '../src/common/ids.js';
import { authPolicy } from '../src/auth/handshake.js';
import { makeKeyringEntry } from '../src/auth/keyring.js';
import type { KeyringEntry } from '../src/auth/keyring.js';
import type { Env } from '../src/env/env.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { buildMap, nextMap } from '../src/map/map-builder.js';
import type { MapOp } from '../src/map/incremental.js';
import { Messenger } from '../src/msg/messenger.js';
import type { Session } from '../src/msg/session.js';
import { MsgType } from '../src/msg/types.js';
import { objectToPg, pgToOsds } from '../src/placement/placement.js';
import { splitHistoryOps } from '../src/placement/pg-split.js';
import { OsdCore } from '../src/osd/osd-core.js';
import { checkPgTempRequest, staleTempOps } from '../src/mon/pg-temp.js';
import { decodeOsdOpReply, encodeOsdOpRequest, isWriteOp, OSD_FLAG_READ, OSD_FLAG_WRITE } from '../src/osd/osd-protocol.js';
import type { OsdOp, OsdOpReply } from '../src/osd/osd-protocol.js';
import { decodeObjectCopy, encodeObjectRef, joinChunks } from '../src/osd/osd-peer-protocol.js';
import type { ObjectCopy } from '../src/osd/osd-peer-protocol.js';
import { ObjectStore } from '../src/store/object-store.js';
import { testEnv } from './msg-test-env.js';
import pino from 'pino';
import { createRealEnv } from '../src/env/real.js';
import { RealNet } from '../src/env/real-net.js';

export interface TestOsd { id: number; dir: string; env: Env; store: ObjectStore; msgr: Messenger; core: OsdCore; port: number; states: Record<string, string> }

function key(i: number): Uint8Array { const k = new Uint8Array(32); k.fill(i + 1); return k; }

export class OsdHarness {
  readonly root = mkdtempSync('/var/tmp/strata-osd-test-');
  readonly osds = new Map<number, TestOsd>();
  readonly ring = new Map<string, KeyringEntry>();
  map!: ClusterMap;
  client!: Messenger;
  private sessions = new Map<number, Session>();
  private tid = 1;
  readonly env = testEnv({ level: 'warn' });
  /** PG log bounds of OSDs started from now on (OsdCoreOptions.pgLogBounds); production's when unset. */
  pgLogBounds: { min: number; max: number } | undefined;
  /** Called on every PG-history request before the harness answers it (tests inspect the OSDs then). */
  onHistoryRequest: ((osd: number, pg: string, op: 'add' | 'reset', set: readonly OsdId[]) => void) | undefined;

  constructor(readonly poolSpec = { id: 1, name: 'rbd', size: 3, minSize: 2, pgNum: 16, failureDomain: 'osd' as const }) {
    for (let i = 0; i < 16; i++) this.ring.set(`osd.${i}`, makeKeyringEntry(`osd.${i}`, key(i), { mon: 'allow rw', osd: 'allow *' }) as KeyringEntry);
    this.ring.set('client.admin', makeKeyringEntry('client.admin', key(100), { mon: 'allow rw', osd: 'allow *' }) as KeyringEntry);
    for (const e of this.ring.values()) if (e instanceof ClusterError) throw e;
    this.client = new Messenger({ env: this.env, entity: 'client.admin', credentials: () => ({ method: 'key', key: key(100) }) });
  }

  startOsd(id: number, dir?: string): Promise<TestOsd> {
    const lvl = process.env['OSD_TEST_LOG'];
    const env = lvl === undefined ? testEnv({ level: 'warn' }) : createRealEnv({ log: pino({ level: lvl, base: { osd: id } }, pino.destination(2) as never), net: new RealNet() });
    const d = dir ?? join(this.root, `osd${id}`);
    return new Promise((resolve, reject) => {
      ObjectStore.open(env, { dir: d, journalBytes: 8 * 1024 * 1024 }, (err, store) => {
        if (err !== null || store === undefined) { reject(err); return; }
        const msgr = new Messenger({
          env, entity: `osd.${id}`,
          auth: authPolicy({ lookupKey: (e) => this.ring.get(e) }),
          credentials: () => ({ method: 'key', key: key(id) }),
        });
        const t: TestOsd = { id, dir: d, env, store, msgr, core: undefined as unknown as OsdCore, port: 0, states: {} };
        t.core = new OsdCore({
          env, log: env.log, id: id as OsdId, store, msgr, reportPgStates: (s) => { t.states = s; }, peerTimeoutMs: 3000,
          recordPgHistory: (pg, op, set, cb) => this.recordPgHistory(id, pg, op, set, cb),
          requestPgTemp: (pg, osds, cb) => this.requestPgTemp(id, pg, osds, cb),
          ...(this.pgLogBounds === undefined ? {} : { pgLogBounds: this.pgLogBounds }),
        });
        msgr.listen('127.0.0.1', 0, (e2, port) => {
          if (e2 !== null || port === undefined) { reject(e2); return; }
          t.port = port;
          this.osds.set(id, t);
          resolve(t);
        });
      });
    });
  }

  stopOsd(id: number): Promise<void> {
    const t = this.osds.get(id);
    if (t === undefined) return Promise.resolve();
    this.osds.delete(id);
    t.core.stop();
    t.msgr.shutdown();
    this.sessions.get(id)?.close();
    this.sessions.delete(id);
    return new Promise((resolve) => t.store.close(() => resolve()));
  }

  /** PG-history requests the harness answered: `osd pg op [set]` (tests assert on them). */
  readonly historyLog: string[] = [];
  /** While true, PG-history requests are refused (the monitor is unreachable). */
  historyRefused = false;

  /**
   * The monitor's side of `recordPgHistory`, against the harness map: only the PG's primary
   * for exactly its acting set in the current map is believed (as `MonitorCore.pgHistory`);
   * the change becomes a new map epoch published to every OSD, then the callback fires.
   */
  private recordPgHistory(osd: number, pg: string, op: 'add' | 'reset', set: readonly OsdId[], cb: (err: ClusterError | null) => void): void {
    this.onHistoryRequest?.(osd, pg, op, set);
    setImmediate(() => {
      if (this.historyRefused) { cb(new ClusterError('CLU_ERR_UNAVAILABLE', 'monitor unreachable (test)')); return; }
      const id = parsePgId(pg);
      const m = id === undefined ? undefined : pgToOsds(this.map, id);
      if (id === undefined || m === undefined || m.primary !== osd || m.acting.length !== set.length || m.acting.some((x, i) => set[i] !== x)) {
        cb(new ClusterError('CLU_ERR_EPOCH_STALE', `osd.${osd} is not the primary of ${pg} for [${set.join(',')}]`));
        return;
      }
      this.historyLog.push(`${osd} ${pg} ${op} [${set.join(',')}]`);
      this.apply([{ op: op === 'add' ? 'pg-history-add' : 'pg-history-reset', pg: id, set }]);
      cb(null);
    });
  }

  /** pg_temp requests the harness answered: `osd pg [osds]` (`[]` = clear). */
  readonly pgTempLog: string[] = [];
  /** While true, pg_temp requests are refused (the monitor is unreachable). */
  pgTempRefused = false;

  /**
   * The monitor's side of `requestPgTemp`, against the harness map, with the monitor's own
   * rules (mon/pg-temp.ts `checkPgTempRequest`): the change becomes a new epoch, then `cb`.
   */
  private requestPgTemp(osd: number, pg: string, osds: readonly OsdId[], cb: (err: ClusterError | null) => void): void {
    setImmediate(() => {
      if (this.pgTempRefused) { cb(new ClusterError('CLU_ERR_UNAVAILABLE', 'monitor unreachable (test)')); return; }
      const d = checkPgTempRequest(this.map, this.map, osd as OsdId, pg, osds);
      if (d instanceof ClusterError) { cb(d); return; }
      this.pgTempLog.push(`${osd} ${pg} [${osds.join(',')}]`);
      if (d.op !== undefined) this.apply([d.op]);
      cb(null);
    });
  }

  /** First map: every started OSD up and in. */
  initMap(): void {
    const osds = [...this.osds.values()].map((t) => ({ id: t.id, host: `h${t.id}`, addr: `127.0.0.1:${t.port}` }));
    this.map = buildMap({ osds, pools: [this.poolSpec] });
    this.publish();
  }

  /** One new epoch with `ops`, plus (as the monitor's proposals) the pg_temp entries they made stale. */
  apply(ops: MapOp[]): void {
    const next = nextMap(this.map, ops);
    const stale = staleTempOps(next);
    this.map = stale.length === 0 ? next : nextMap(this.map, [...ops, ...stale]);
    this.publish();
  }

  /**
   * `pool set rbd pgNum n` as the monitor does it: one epoch with the new pgNum and every
   * child's history copied from its parent (`splitHistoryOps`, MonitorCore.poolSet).
   */
  splitPool(pgNum: number): void {
    const id = this.poolSpec.id as PoolId;
    this.apply([{ op: 'pool-set', id, changes: { pgNum } }, ...splitHistoryOps(this.map, id, pgNum)]);
  }

  publish(): void { for (const t of this.osds.values()) t.core.handleMap(this.map); }

  /** Client op against the current primary; resends on WRONG_TARGET/EPOCH_STALE (bounded). */
  op(name: string, ops: OsdOp[], data: Uint8Array[] = [], reqTid?: number): Promise<{ reply: OsdOpReply; data: Uint8Array }> {
    const tid = reqTid ?? this.tid++;
    let attempt = 0;
    return new Promise((resolve, reject) => {
      const send = (): void => {
        const pool = this.map.pools.get(this.poolSpec.id as never)!;
        const pg = objectToPg(pool, name);
        const primary = pgToOsds(this.map, pg).primary;
        const t = this.osds.get(primary);
        if (t === undefined) { reject(new Error(`no primary for ${name}`)); return; }
        const s = this.sessionTo(primary);
        const write = ops.some(isWriteOp);
        const payload = encodeOsdOpRequest({ pool: pool.id, objectName: name, pgSeed: pg.seed, mapEpoch: this.map.epoch, reqId: { client: 'client.admin/1', tid, attempt: attempt++ }, flags: write ? OSD_FLAG_WRITE : OSD_FLAG_READ, ops });
        s.request({ type: MsgType.MSG_OSD_OP, payload, data, epoch: this.map.epoch }, { timeoutMs: 10_000 }, (err, r) => {
          if (err !== null || r === undefined) { if (attempt < 20) setTimeout(send, 50); else reject(err); return; }
          const reply = decodeOsdOpReply(r.payload);
          if ((reply.result === 2 || reply.result === 13) && attempt < 20) { setTimeout(send, 50); return; }
          resolve({ reply, data: new Uint8Array(joinChunks(r.data)) });
        });
      };
      send();
    });
  }

  sessionTo(id: number): Session {
    const t = this.osds.get(id)!;
    let s = this.sessions.get(id);
    if (s === undefined || s.state === 'closed') { s = this.client.connect({ host: '127.0.0.1', port: t.port }, { instance: '1' }); this.sessions.set(id, s); }
    return s;
  }

  /** Whole object as stored on one OSD (MSG_OSD_LOCAL_READ). */
  localRead(osd: number, name: string): Promise<{ copy: ObjectCopy; data: Uint8Array }> {
    const s = this.sessionTo(osd);
    return new Promise((resolve, reject) => {
      s.request({ type: MsgType.MSG_OSD_LOCAL_READ, payload: encodeObjectRef(this.poolSpec.id, name) }, { timeoutMs: 5000 }, (err, r) => {
        if (err !== null || r === undefined) { reject(err); return; }
        resolve({ copy: decodeObjectCopy(r.payload), data: new Uint8Array(joinChunks(r.data)) });
      });
    });
  }

  states(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const t of this.osds.values()) Object.assign(out, t.core.pgStates());
    return out;
  }

  allClean(): boolean {
    const st = this.states();
    const pgNum = this.map.pools.get(this.poolSpec.id as PoolId)?.pgNum ?? this.poolSpec.pgNum;
    return Object.keys(st).length === pgNum && Object.values(st).every((s) => s === 'active+clean');
  }

  async close(): Promise<void> {
    for (const id of [...this.osds.keys()]) await this.stopOsd(id);
    this.client.shutdown();
    rmSync(this.root, { recursive: true, force: true });
  }
}
