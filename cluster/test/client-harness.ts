/**
 * In-process cluster for client tests: a real MonServer (FileMonStore in a temp dir) and
 * "fake OSDs" that speak the real `MSG_OSD_OP` protocol over the real messenger with ticket
 * auth, boot and beacon like real OSDs, and check that they are the PG's primary at their map
 * epoch (`CLU_ERR_WRONG_TARGET` otherwise). Their objects live in one shared in-memory store,
 * i.e. replication is perfect and instantaneous — what the client tests need to check the
 * client alone (targets, resends, dedup by reqId, no op lost or applied twice). Tests of the
 * real OSD daemon's data path use the OSD's own harness.
 *
 * Hooks per fake OSD: `delayMs` (answer later), `dropAfterApply` (apply, then reset the
 * connection without answering: the client must resend and the dedup table must answer).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterError, clusterErrorToWire } from '../src/common/errors.js';
import type { OsdId } from '../src/common/ids.js';
import { generateKey, makeKeyringEntry } from '../src/auth/keyring.js';
import type { Keyring, KeyringEntry } from '../src/auth/keyring.js';
import { authPolicy } from '../src/auth/handshake.js';
import type { Env } from '../src/env/env.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { FileMonStore } from '../src/mon/file-mon-store.js';
import { MonClient } from '../src/mon/mon-client.js';
import { MonServer, monMkfs } from '../src/mon/mon-server.js';
import { Messenger } from '../src/msg/messenger.js';
import type { InboundMessage, Session } from '../src/msg/session.js';
import { MsgType } from '../src/msg/types.js';
import {
  ASSERT_F_ABSENT, OSD_FLAG_FAILOK, decodeLockState, decodeOsdOpRequest, encodeLockState, encodeOsdOpReply,
} from '../src/osd/osd-protocol.js';
import type { OsdOpOut, OsdOpRequest } from '../src/osd/osd-protocol.js';
import { objectToPg, pgToOsds } from '../src/placement/placement.js';
import { seededRng, testEnv, waitFor } from './msg-test-env.js';

export interface FakeObject { data: Uint8Array; attrs: Map<string, Uint8Array>; seq: number }

/** The shared object store plus the dedup table and apply counters. */
export class FakeStore {
  readonly objects = new Map<string, FakeObject>();
  /** reqId key → cached reply (payload, data). */
  readonly done = new Map<string, { payload: Uint8Array; data: Uint8Array[] }>();
  /** reqId key → times a write vector was applied (must stay ≤ 1). */
  readonly applied = new Map<string, number>();
  seq = 0;
  nowMs = (): number => Date.now();
}

function entry(name: string, mon: string, osd: string, seed: number): KeyringEntry {
  const e = makeKeyringEntry(name, generateKey(seededRng(seed)), { mon, osd });
  if (e instanceof ClusterError) throw e;
  return e;
}

/** A fake OSD process (in this process). */
export class FakeOsd {
  delayMs = 0;
  dropAfterApply = 0;
  readonly msgr: Messenger;
  readonly mon: MonClient;
  port = 0;
  private secret: Uint8Array | undefined;
  private stopped = false;

  constructor(private readonly env: Env, readonly id: number, key: Uint8Array, monPort: number, private readonly store: FakeStore) {
    this.msgr = new Messenger({
      env, entity: `osd.${id}`,
      auth: authPolicy({ allowUnauthenticated: false, serviceSecret: () => this.secret }),
    });
    this.mon = new MonClient({ env, entity: `osd.${id}`, key, mon: { host: '127.0.0.1', port: monPort }, msgr: this.msgr, requestTimeoutMs: 3000 });
    this.msgr.handle(MsgType.MSG_OSD_OP, (req, s) => this.onOp(req, s));
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.mon.serviceSecret((err, secret) => {
        if (err !== null || secret === undefined) { reject(err ?? new Error('no secret')); return; }
        this.secret = secret;
        this.msgr.listen('127.0.0.1', 0, (err2, port) => {
          if (err2 !== null || port === undefined) { reject(err2); return; }
          this.port = port;
          this.mon.subscribe();
          this.mon.boot({ uuid: `uuid-${this.id}`, addr: `127.0.0.1:${port}`, location: { host: `h${this.id}` }, osdId: this.id }, (err3) => {
            if (err3 !== null) { reject(err3); return; }
            this.mon.startBeacons(this.id as OsdId, 200, () => undefined);
            resolve();
          });
        });
      });
    });
  }

  /** Like kill -9: stop listening and drop every session (the monitor is told separately). */
  stop(): void {
    this.stopped = true;
    this.mon.close();
    this.msgr.shutdown();
  }

  private onOp(msg: InboundMessage, s: Session): void {
    let req: OsdOpRequest;
    try { req = decodeOsdOpRequest(msg.payload); } catch (e) { s.replyError(msg, new ClusterError('CLU_ERR_DECODE', String(e))); return; }
    const run = (): void => { if (!this.stopped) this.serve(msg, s, req, this.env.nowMs() + 2000); };
    if (this.delayMs > 0) this.env.setTimeout(run, this.delayMs); else run();
  }

  private serve(msg: InboundMessage, s: Session, req: OsdOpRequest, waitUntilMs: number): void {
    const map = this.mon.map();
    if ((map === undefined || map.epoch < req.mapEpoch) && this.env.nowMs() < waitUntilMs) {
      this.env.setTimeout(() => this.serve(msg, s, req, waitUntilMs), 10); // Wait for the client's epoch.
      return;
    }
    const epoch = map?.epoch ?? 0;
    const reply = (result: number, outs: OsdOpOut[] = [], data: Uint8Array[] = []): { payload: Uint8Array; data: Uint8Array[] } =>
      ({ payload: encodeOsdOpReply({ result, version: { epoch, seq: this.store.seq }, mapEpoch: epoch, outs }), data });
    const send = (r: { payload: Uint8Array; data: Uint8Array[] }): void => s.reply(msg, { type: MsgType.MSG_OSD_OP, payload: r.payload, data: r.data, epoch });
    const pool = map?.pools.get(req.pool as never);
    if (map === undefined || pool === undefined || pgToOsds(map, objectToPg(pool, req.objectName)).primary !== this.id) {
      send(reply(clusterErrorToWire('CLU_ERR_WRONG_TARGET')));
      return;
    }
    const key = `${req.reqId.client}:${req.reqId.tid}`;
    const cached = this.store.done.get(key);
    if (cached !== undefined) { send(cached); return; }
    const r = applyVector(this.store, req, new Uint8Array(Buffer.concat(msg.data)), reply);
    if (r.applied) {
      this.store.applied.set(key, (this.store.applied.get(key) ?? 0) + 1);
      this.store.done.set(key, r.reply);
    }
    if (r.applied && this.dropAfterApply > 0) {
      this.dropAfterApply--;
      (s as unknown as { conn: { socket: { destroy(): void } } | null }).conn?.socket.destroy();
      return;
    }
    send(r.reply);
  }
}

type ReplyFn = (result: number, outs?: OsdOpOut[], data?: Uint8Array[]) => { payload: Uint8Array; data: Uint8Array[] };

/** Applies a vector atomically to a copy, then installs it (Ceph's transaction semantics). */
function applyVector(store: FakeStore, req: OsdOpRequest, bulk: Uint8Array, reply: ReplyFn): { applied: boolean; reply: { payload: Uint8Array; data: Uint8Array[] } } {
  const key = `${req.pool}/${req.objectName}`;
  const cur = store.objects.get(key);
  let obj: FakeObject | undefined = cur === undefined ? undefined : { data: cur.data, attrs: new Map(cur.attrs), seq: cur.seq };
  const outs: OsdOpOut[] = [];
  const data: Uint8Array[] = [];
  let dataPos = 0;
  let mutated = false;
  const fail = (code: Parameters<typeof clusterErrorToWire>[0]): { applied: boolean; reply: { payload: Uint8Array; data: Uint8Array[] } } => ({ applied: false, reply: reply(clusterErrorToWire(code)) });
  const ensure = (): FakeObject => { if (obj === undefined) obj = { data: new Uint8Array(0), attrs: new Map(), seq: 0 }; return obj; };
  const grow = (o: FakeObject, end: number): void => { if (o.data.length < end) { const n = new Uint8Array(end); n.set(o.data); o.data = n; } else o.data = o.data.slice(); };
  for (const op of req.ops) {
    switch (op.op) {
      case 'read': {
        if (obj === undefined) { if ((req.flags & OSD_FLAG_FAILOK) !== 0) { outs.push({ kind: 'read', result: 3, length: 0 }); break; } return fail('CLU_ERR_NOT_FOUND'); }
        const piece = obj.data.slice(Math.min(op.offset, obj.data.length), Math.min(op.offset + op.length, obj.data.length));
        outs.push({ kind: 'read', result: 0, length: piece.length });
        data.push(piece);
        break;
      }
      case 'write': { const o = ensure(); grow(o, op.offset + op.length); o.data.set(bulk.subarray(dataPos, dataPos + op.length), op.offset); dataPos += op.length; mutated = true; outs.push({ kind: 'none', result: 0 }); break; }
      case 'writefull': { const o = ensure(); o.data = bulk.slice(dataPos, dataPos + op.length); dataPos += op.length; mutated = true; outs.push({ kind: 'none', result: 0 }); break; }
      case 'zero': { if (obj !== undefined) { const o = obj; o.data = o.data.slice(); o.data.fill(0, Math.min(op.offset, o.data.length), Math.min(op.offset + op.length, o.data.length)); mutated = true; } outs.push({ kind: 'none', result: 0 }); break; }
      case 'truncate': { const o = ensure(); if (op.size <= o.data.length) o.data = o.data.slice(0, op.size); else grow(o, op.size); mutated = true; outs.push({ kind: 'none', result: 0 }); break; }
      case 'remove': if (obj === undefined) return fail('CLU_ERR_NOT_FOUND'); obj = undefined; mutated = true; outs.push({ kind: 'none', result: 0 }); break;
      case 'create': if (obj !== undefined && op.exclusive) return fail('CLU_ERR_EXISTS'); ensure(); mutated = true; outs.push({ kind: 'none', result: 0 }); break;
      case 'stat': if (obj === undefined) return fail('CLU_ERR_NOT_FOUND'); outs.push({ kind: 'stat', result: 0, size: obj.data.length, version: { epoch: 1, seq: obj.seq } }); break;
      case 'getattr': {
        const v = obj?.attrs.get(op.name);
        if (v === undefined) { if ((req.flags & OSD_FLAG_FAILOK) !== 0) { outs.push({ kind: 'attr', result: 3, value: new Uint8Array(0) }); break; } return fail('CLU_ERR_NOT_FOUND'); }
        outs.push({ kind: 'attr', result: 0, value: v });
        break;
      }
      case 'getattrs': outs.push({ kind: 'attr', result: 0, value: new TextEncoder().encode([...(obj?.attrs.keys() ?? [])].join('\n')) }); break;
      case 'setattr': ensure().attrs.set(op.name, op.value); mutated = true; outs.push({ kind: 'none', result: 0 }); break;
      case 'rmattr': obj?.attrs.delete(op.name); mutated = true; outs.push({ kind: 'none', result: 0 }); break;
      case 'assert_attr': {
        const v = obj?.attrs.get(op.name);
        const ok = (op.mode & ASSERT_F_ABSENT) !== 0 ? v === undefined : v !== undefined && Buffer.from(v).equals(Buffer.from(op.value));
        if (!ok) return fail('CLU_ERR_CANCELLED');
        outs.push({ kind: 'none', result: 0 });
        break;
      }
      case 'assert_version': if ((obj?.seq ?? 0) !== op.seq) return fail('CLU_ERR_CANCELLED'); outs.push({ kind: 'none', result: 0 }); break;
      case 'lock': {
        const o = ensure();
        const attr = `lock.${op.name}`;
        const now = store.nowMs();
        const st = o.attrs.has(attr) ? decodeLockState(o.attrs.get(attr)!) : { exclusive: op.exclusive, holders: [] };
        const live = st.holders.filter((h) => h.expiresMs === 0 || h.expiresMs > now);
        const others = live.filter((h) => !(h.client === req.reqId.client && h.cookie === op.cookie));
        if (others.length > 0 && (op.exclusive || st.exclusive)) return fail('CLU_ERR_BUSY');
        const holders = [...others, { client: req.reqId.client, cookie: op.cookie, expiresMs: op.durationMs === 0 ? 0 : now + op.durationMs }];
        o.attrs.set(attr, encodeLockState({ exclusive: op.exclusive, holders }));
        mutated = true;
        outs.push({ kind: 'none', result: 0 });
        break;
      }
      case 'unlock': case 'break_lock': {
        const attr = `lock.${op.name}`;
        const v = obj?.attrs.get(attr);
        if (obj === undefined || v === undefined) return fail('CLU_ERR_NOT_FOUND');
        const st = decodeLockState(v);
        const client = op.op === 'unlock' ? req.reqId.client : op.client;
        const holders = st.holders.filter((h) => !(h.client === client && h.cookie === op.cookie));
        if (holders.length === st.holders.length) return fail('CLU_ERR_NOT_FOUND');
        obj.attrs.set(attr, encodeLockState({ exclusive: st.exclusive, holders }));
        mutated = true;
        outs.push({ kind: 'none', result: 0 });
        break;
      }
    }
  }
  if (mutated) {
    store.seq++;
    if (obj === undefined) store.objects.delete(key);
    else { obj.seq = store.seq; store.objects.set(key, obj); }
  }
  return { applied: mutated, reply: reply(0, outs, data) };
}

/** A running in-process cluster: monitor + fake OSDs + admin keyring. */
export class TestCluster {
  readonly env = testEnv({ level: 'warn' });
  readonly store = new FakeStore();
  readonly ring: Keyring = new Map();
  readonly osds = new Map<number, FakeOsd>();
  private readonly dir = mkdtempSync(join(tmpdir(), 'strata-client-'));
  private server: MonServer | undefined;
  monPort = 0;
  admin!: MonClient;

  static async start(o: { osds: number; pool?: { name: string; size: number; minSize: number; pgNum: number } }): Promise<TestCluster> {
    const c = new TestCluster();
    await c.init(o.osds);
    const p = o.pool ?? { name: 'vms', size: Math.min(3, o.osds), minSize: Math.min(2, o.osds), pgNum: 16 };
    await c.command({ prefix: 'pool create', name: p.name, size: p.size, minSize: p.minSize, pgNum: p.pgNum, failureDomain: 'osd' });
    for (let i = 0; i < o.osds; i++) await c.addOsd(i);
    await c.waitMap((m) => [...m.osds.values()].filter((x) => x.up).length === o.osds);
    return c;
  }

  private async init(osds: number): Promise<void> {
    const env = this.env;
    let seed = 1000;
    for (const e of [entry('mon.', 'allow *', 'allow *', seed++), entry('client.admin', 'allow *', 'allow *', seed++), entry('service.osd', '', '', seed++)]) this.ring.set(e.entity, e);
    for (let i = 0; i < osds + 4; i++) { const e = entry(`osd.${i}`, 'allow r', '', seed++); this.ring.set(e.entity, e); }
    await new Promise<void>((resolve, reject) => monMkfs({ env, store: new FileMonStore({ env, dir: this.dir }), keyring: this.ring }, (err) => (err ? reject(err) : resolve())));
    this.server = new MonServer({ env, store: new FileMonStore({ env, dir: this.dir }), onFatal: (err) => { throw err; } });
    this.monPort = await new Promise<number>((resolve, reject) => this.server!.start('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p!))));
    this.admin = this.client('client.admin');
    this.admin.subscribe();
  }

  /** A MonClient for `entity` (from the ring). */
  client(entity: string): MonClient {
    return new MonClient({ env: this.env, entity, key: this.ring.get(entity)!.key, mon: { host: '127.0.0.1', port: this.monPort }, requestTimeoutMs: 5000 });
  }

  async addOsd(id: number): Promise<FakeOsd> {
    const osd = new FakeOsd(this.env, id, this.ring.get(`osd.${id}`)!.key, this.monPort, this.store);
    await osd.start();
    this.osds.set(id, osd);
    return osd;
  }

  command(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => this.admin.command(cmd, (err, r) => (err ? reject(err) : resolve(r ?? {}))));
  }

  async waitMap(pred: (m: ClusterMap) => boolean, timeoutMs = 10_000): Promise<ClusterMap> {
    await waitFor(() => { const m = this.admin.map(); return m !== undefined && pred(m); }, timeoutMs);
    return this.admin.map()!;
  }

  async stop(): Promise<void> {
    this.admin.close();
    for (const o of this.osds.values()) o.stop();
    await new Promise<void>((resolve) => this.server?.stop(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
