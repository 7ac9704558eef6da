/**
 * A simulated cluster: one monitor process (MonServer over FileMonStore on its SimDisk), N
 * OSD processes and client processes, all production code on per-process simulated Envs, plus
 * the operations the fault atlas uses (kill, restart, pause) and the hooks checkers observe.
 *
 * Bootstrap: the monitor's store is created with `monMkfs` (the keyring comes from the seed),
 * the monitor exits cleanly and starts for real, an admin client creates the pool, then the
 * OSDs start (each on its own host, so failure domain 'host' holds).
 * During the fault phase the admin may grow the pool's pgNum (`growPgNum`, a PG split).
 */
import type { Logger } from 'pino';
import type { OsdId } from '../src/common/ids.js';
import type { Env } from '../src/env/env.js';
import { OSD_SERVICE_ENTITY, generateKey, makeKeyringEntry } from '../src/auth/keyring.js';
import type { Keyring, KeyringEntry } from '../src/auth/keyring.js';
import { ClusterError } from '../src/common/errors.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { FileMonStore } from '../src/mon/file-mon-store.js';
import { MonClient } from '../src/mon/mon-client.js';
import { MonServer, monMkfs } from '../src/mon/mon-server.js';
import { uuidFromBytes } from '../src/mon/monitor-core.js';
import type { SimOptions } from './options.js';
import type { ProcessWorld } from './process.js';
import { SimProcess } from './process.js';
import type { SimRng } from './rng.js';

export const MON_HOST = 'mon';
export const MON_PORT = 6789;
export const OSD_PORT = 6800;
export const POOL_NAME = 'rbd';

/** What the cluster needs from a running OSD implementation. */
export interface OsdInstance {
  /** The OSD's monitor client (checkers watch its maps). */
  readonly mon: MonClient;
}

/** Creates an OSD on a fresh Env (first start or restart over the same disk). */
export type OsdFactory = (node: OsdNode, env: Env) => OsdInstance;

/** One OSD slot. */
export interface OsdNode {
  readonly id: OsdId;
  readonly proc: SimProcess;
  readonly uuid: string;
  readonly key: Uint8Array;
  instance: OsdInstance | null;
}

/** Observers the checkers register. */
export interface ClusterObservers {
  /** A MonClient was created (watch its `map` events). */
  onMonClient(name: string, client: MonClient): void;
  /** A monitor incarnation started; `server.monitor` is live. */
  onMonitorStarted(server: MonServer): void;
  /** A fatal condition the run must report. */
  fail(what: string, details?: Record<string, unknown>): void;
}

/** The cluster under simulation. */
export class SimCluster {
  readonly keyring: Keyring = new Map();
  readonly monProc: SimProcess;
  /** The running monitor, once `start` succeeded (null while down or starting). */
  monServer: MonServer | null = null;
  readonly osds: OsdNode[] = [];
  readonly log: Logger;
  private admin: MonClient | null = null;
  private adminProc: SimProcess | null = null;

  constructor(readonly world: ProcessWorld, readonly o: SimOptions, private readonly factory: OsdFactory, private readonly observers: ClusterObservers) {
    this.log = world.rootLog.child({ proc: 'sim' });
    const keys = world.stream('keys');
    this.monProc = this.newProc('mon', MON_HOST);
    const add = (entity: string, mon: string, osd = ''): KeyringEntry => {
      const e = makeKeyringEntry(entity, generateKey(keys), { mon, osd });
      if (e instanceof ClusterError) throw e;
      this.keyring.set(entity, e);
      return e;
    };
    add('mon.', 'allow *', 'allow *');
    add('client.admin', 'allow *', 'allow *');
    add(OSD_SERVICE_ENTITY, '');
    for (let i = 0; i < o.clientCount; i++) add(`client.sim${i}`, 'allow r', 'allow rw');
    for (let i = 0; i < o.osdCount; i++) {
      const e = add(`osd.${i}`, 'allow r');
      this.osds.push({ id: i as OsdId, proc: this.newProc(`osd.${i}`, `osd${i}`), uuid: uuidFromBytes(keys.bytes(16)), key: e.key, instance: null });
    }
  }

  /** A new simulated process with its disk profile and clock skew from the seed. */
  newProc(name: string, host: string): SimProcess {
    const p = new SimProcess(this.world, name, host, this.o.disk);
    const r: SimRng = this.world.stream(`skew:${name}`);
    p.skew = {
      offsetMs: r.int(1_000_000),
      rate: 1 + (r.float() * 2 - 1) * this.o.clockRateSpread,
      wallOffsetMs: Math.round((r.float() * 2 - 1) * this.o.wallSkewMs),
    };
    return p;
  }

  /** Creates the monitor store, starts the monitor, creates the pool, starts the OSDs. */
  bootstrap(cb: (err: Error | null) => void): void {
    const env = this.monProc.start();
    monMkfs({ env, store: new FileMonStore({ env, dir: '/mon' }), keyring: this.keyring }, (err) => {
      if (err !== null) { cb(err); return; }
      this.monProc.exit();
      this.startMon((err2) => {
        if (err2 !== null) { cb(err2); return; }
        const adminProc = this.newProc('admin', 'admin');
        this.adminProc = adminProc;
        const aenv = adminProc.start();
        const admin = new MonClient({ env: aenv, entity: 'client.admin', key: this.keyring.get('client.admin')!.key, mon: { host: MON_HOST, port: MON_PORT } });
        this.admin = admin;
        this.observers.onMonClient('admin', admin);
        admin.subscribe();
        const cmd = { prefix: 'pool create', name: POOL_NAME, size: this.o.poolSize, minSize: this.o.poolMinSize, pgNum: this.o.pgNum, failureDomain: 'host' };
        // Why retry: the network may reset the admin's connection during bootstrap (seeds
        // 0x8cc0ccf2db4e822f, 0xd812569187ebe72f), as an operator's CLI would retry; a pool that
        // exists means an earlier attempt landed and only its reply was lost.
        this.adminCommand(cmd, 20, (err3) => {
          if (err3 !== null && err3.code !== 'CLU_ERR_EXISTS') { cb(err3); return; }
          for (const n of this.osds) this.startOsd(n);
          cb(null);
        });
      });
    });
  }

  /**
   * Runs an admin command, retrying transient errors (connection reset, monitor down) every
   * 100 ms up to `maxAttempts` times as an operator's CLI would; EXISTS, INVALID and PERM are
   * final. Only for idempotent commands (a retry may follow an attempt that landed).
   */
  adminCommand(cmd: Readonly<Record<string, unknown>>, maxAttempts: number, cb: (err: ClusterError | null) => void): void {
    const admin = this.admin;
    if (admin === null) { cb(new ClusterError('CLU_ERR_UNAVAILABLE', 'no admin client before bootstrap')); return; }
    let attempts = 0;
    const attempt = (): void => {
      admin.command(cmd, (err) => {
        const transient = err !== null && attempts < maxAttempts && err.code !== 'CLU_ERR_EXISTS' && err.code !== 'CLU_ERR_INVALID' && err.code !== 'CLU_ERR_PERM';
        if (transient) { attempts++; this.adminProc?.env.setTimeout(attempt, 100); return; }
        cb(err);
      });
    };
    attempt();
  }

  /**
   * PG split: `pool set rbd pg_num N` (idempotent: a repeat of a landed growth changes nothing).
   * Retried for up to 60 s, longer than any monitor outage of the fault atlas.
   */
  growPgNum(pgNum: number, cb: (err: ClusterError | null) => void): void {
    this.log.info({ pool: POOL_NAME, pgNum }, 'admin: pool set pg_num');
    this.adminCommand({ prefix: 'pool set', name: POOL_NAME, key: 'pg_num', value: String(pgNum) }, 600, cb);
  }

  /** The admin client's latest map. */
  adminMap(): ClusterMap | undefined {
    return this.admin?.map();
  }

  startMon(cb: (err: Error | null) => void = () => undefined): void {
    const env = this.monProc.alive ? this.monProc.env : this.monProc.start();
    const server = new MonServer({
      env, store: new FileMonStore({ env, dir: '/mon' }), osdGraceMs: this.o.osdGraceMs, downOutIntervalMs: this.o.downOutIntervalMs,
      onFatal: (err) => {
        // The real daemon exits and its supervisor restarts it; the store replays on open.
        env.log.error({ err }, 'monitor fatal; restarting');
        this.world.sched.after(0, null, 'mon fatal', () => {
          this.killMon(false);
          this.world.sched.after(1000, null, 'mon supervisor', () => this.startMon());
        });
      },
    });
    this.monServer = null;
    const incarnation = this.monProc.incarnation;
    server.start(MON_HOST, MON_PORT, (err) => {
      if (this.monProc.incarnation !== incarnation) return;
      if (err !== null) {
        this.observers.fail('monitor failed to start', { err: err.message, code: err.code });
        cb(err);
        return;
      }
      this.monServer = server;
      this.observers.onMonitorStarted(server);
      cb(null);
    });
  }

  /** Kills the monitor (with power loss unless `clean`). */
  killMon(powerLoss = true): void {
    if (powerLoss) this.monProc.kill();
    else this.monProc.exit();
    this.monServer = null;
  }

  startOsd(n: OsdNode): void {
    const env = n.proc.start();
    n.instance = this.factory(n, env);
    this.observers.onMonClient(n.proc.name, n.instance.mon);
  }

  killOsd(n: OsdNode): void {
    n.proc.kill();
    n.instance = null;
  }

  /** A client process (workload) with its own key and MonClient. */
  newClientProc(i: number): { proc: SimProcess; env: Env; entity: string; key: Uint8Array } {
    const proc = this.newProc(`client.${i}`, `client${i}`);
    const env = proc.start();
    const entity = `client.sim${i}`;
    return { proc, env, entity, key: this.keyring.get(entity)!.key };
  }
}
