/**
 * One real OSD in this process for client tests (bin/osd.ts's wiring minus peer heartbeats):
 * a real ObjectStore in a temp dir, a Messenger with ticket auth, a MonClient (boot, beacons,
 * map subscription) and an OsdCore. Used with client-harness's TestCluster (monitor only).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { authPolicy } from '../src/auth/handshake.js';
import { ClusterClient } from '../src/client/cluster-client.js';
import type { OsdId } from '../src/common/ids.js';
import type { Env } from '../src/env/env.js';
import { MonClient } from '../src/mon/mon-client.js';
import { Messenger } from '../src/msg/messenger.js';
import { OsdCore } from '../src/osd/osd-core.js';
import { ObjectStore } from '../src/store/object-store.js';
import { TestCluster } from './client-harness.js';

/** One real OSD in this process (bin/osd.ts's wiring minus peer heartbeats). */
export class InProcessOsd {
  msgr!: Messenger;
  mon!: MonClient;
  core!: OsdCore;
  store!: ObjectStore;
  private secret: Uint8Array | undefined;

  constructor(private readonly env: Env, readonly id: number, private readonly key: Uint8Array, private readonly monPort: number, private readonly dir: string) {}

  start(): Promise<void> {
    const { env, id } = this;
    return new Promise((resolve, reject) => {
      ObjectStore.open(env, { dir: this.dir, journalBytes: 8 * 1024 * 1024 }, (err, store) => {
        if (err !== null || store === undefined) { reject(err); return; }
        this.store = store;
        this.msgr = new Messenger({
          env, entity: `osd.${id}`,
          auth: authPolicy({ allowUnauthenticated: false, serviceSecret: () => this.secret }),
          credentials: () => { const t = this.mon.currentTicket(); return t === undefined ? { method: 'none' } : { method: 'ticket', ticket: t.ticket, sessionKey: t.sessionKey }; },
        });
        this.mon = new MonClient({ env, entity: `osd.${id}`, key: this.key, mon: { host: '127.0.0.1', port: this.monPort }, msgr: this.msgr, requestTimeoutMs: 3000 });
        this.core = new OsdCore({
          env, log: env.log, id: id as OsdId, store, msgr: this.msgr, peerTimeoutMs: 3000,
          reportPgStates: (states) => this.mon.reportPgStates(id as OsdId, states),
          recordPgHistory: (pg, op, set, cb) => this.mon.pgHistory(id as OsdId, pg, op, set, (e) => cb(e)),
          requestPgTemp: (pg, osds, cb) => this.mon.pgTemp(id as OsdId, pg, osds, (e) => cb(e)),
        });
        this.mon.on('map', (map) => this.core.handleMap(map));
        this.mon.serviceSecret((e2, secret) => {
          if (e2 !== null || secret === undefined) { reject(e2); return; }
          this.secret = secret;
          this.msgr.listen('127.0.0.1', 0, (e3, port) => {
            if (e3 !== null || port === undefined) { reject(e3); return; }
            this.mon.subscribe();
            this.mon.ticket((e4) => {
              if (e4 !== null) { reject(e4); return; }
              this.mon.boot({ uuid: `uuid-real-${id}`, addr: `127.0.0.1:${port}`, location: { host: `h${id}` }, osdId: id }, (e5) => {
                if (e5 !== null) { reject(e5); return; }
                this.mon.startBeacons(id as OsdId, 200, () => undefined);
                resolve();
              });
            });
          });
        });
      });
    });
  }

  stop(): Promise<void> {
    this.core.stop();
    this.mon.close();
    this.msgr.shutdown();
    return new Promise((resolve) => this.store.close(() => resolve()));
  }
}

/**
 * A monitor (TestCluster) plus two InProcessOsds for pool `vms` (size 2), torn down with the
 * test; `connect` opens admin clients that are closed at teardown too.
 */
export async function twoOsdCluster(t: ExecutionContext, tmpPrefix: string): Promise<{ c: TestCluster; connect: () => Promise<ClusterClient> }> {
  const c = await TestCluster.start({ osds: 0, pool: { name: 'vms', size: 2, minSize: 1, pgNum: 8 } });
  const dir = mkdtempSync(`/var/tmp/${tmpPrefix}`);
  const osds = [0, 1].map((id) => new InProcessOsd(c.env, id, c.ring.get(`osd.${id}`)!.key, c.monPort, join(dir, `osd${id}`)));
  const clients: ClusterClient[] = [];
  t.teardown(async () => {
    for (const cl of clients) cl.close();
    for (const o of osds) await o.stop();
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const o of osds) await o.start();
  await c.waitMap((m) => [...m.osds.values()].filter((x) => x.up).length === 2);
  const connect = async (): Promise<ClusterClient> => {
    const cl = await ClusterClient.connectAsync({ env: c.env, mon: { host: '127.0.0.1', port: c.monPort }, entity: 'client.admin', key: c.ring.get('client.admin')!.key });
    clients.push(cl);
    return cl;
  };
  return { c, connect };
}
