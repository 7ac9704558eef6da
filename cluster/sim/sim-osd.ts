/**
 * The real OSD under the simulator: the production `OsdCore` (cluster/src/osd/osd-core.ts)
 * over the production `ObjectStore` on the process's `SimDisk`, with the production
 * `Messenger` and `MonClient` — wired the way `bin/osd.ts` wires them. Why a copy of the
 * wiring instead of the bin's class: that class (`Osd`) is private to `bin/osd.ts`, whose
 * module also reads argv, signals and real files; `sim/` may not import `bin/`. What is copied
 * is only glue: the daemon part (service secret → listen → boot → subscribe → beacons, peer
 * heartbeats with refused/timeout reports, the ping handler) is `OsdDaemon` (osd-daemon.ts,
 * shared with the stub), and here map → `core.handleMap` → PG-state report. The data path
 * itself (ops, replication, peering, recovery, scrub) is entirely OsdCore's.
 *
 * Not wired (not exercised here): `MSG_OSD_OP_STAT` (the placeholder stat of `strata osd`),
 * the uuid file (the uuid comes from the seed), SIGTERM handling.
 */
import type { Env } from '../src/env/env.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import type { MonClient } from '../src/mon/mon-client.js';
import { OsdCore } from '../src/osd/osd-core.js';
import type { PgLogBounds } from '../src/pg/pg-log.js';
import { ObjectStore } from '../src/store/object-store.js';
import { OsdDaemon } from './osd-daemon.js';
import type { OsdDaemonOptions } from './osd-daemon.js';

/** Options of the simulated real OSD. */
export interface SimOsdOptions extends OsdDaemonOptions {
  journalBytes: number;
  scrubIntervalMs: number;
  peerTimeoutMs: number;
  /** PG log bounds (null: production's). */
  pgLogBounds: PgLogBounds | null;
  /** An unrecoverable start error (store open failed): the run reports it. */
  onFatal: (what: string, err: unknown) => void;
}

/** Where the store lives on the OSD's disk. */
export const OSD_STORE_DIR = '/osd/store';

/** One OSD process object (a new one per incarnation). */
export class SimOsd {
  readonly mon: MonClient;
  private readonly daemon: OsdDaemon;
  /** Set once the store is open (checkers read it directly). */
  store: ObjectStore | null = null;
  core: OsdCore | null = null;

  constructor(private readonly o: SimOsdOptions) {
    this.daemon = new OsdDaemon(o, {
      onMap: (map) => { this.core?.handleMap(map); this.reportPgs(map); },
      reportPgs: (map) => this.reportPgs(map),
      pingFromOsdsOnly: true,
    });
    this.mon = this.daemon.mon;
  }

  /** Opens the store (replaying its journal), then starts as `bin/osd.ts` does. */
  start(): void {
    const env: Env = this.o.env;
    ObjectStore.open(env, { dir: OSD_STORE_DIR, journalBytes: this.o.journalBytes }, (err, store) => {
      if (err !== null || store === undefined) { this.o.onFatal('object store open failed', err); return; }
      this.store = store;
      this.core = new OsdCore({
        env, log: env.log.child({ component: 'osd-core' }), id: this.o.id, store, msgr: this.daemon.msgr,
        reportPgStates: (states) => this.mon.reportPgStates(this.o.id, states),
        recordPgHistory: (pg, op, set, cb) => this.mon.pgHistory(this.o.id, pg, op, set, (err) => cb(err)),
        requestPgTemp: (pg, osds, cb) => this.mon.pgTemp(this.o.id, pg, osds, (err) => cb(err)),
        reportFailure: (osd) => this.mon.reportFailure(osd, 'refused'),
        scrubIntervalMs: this.o.scrubIntervalMs,
        peerTimeoutMs: this.o.peerTimeoutMs,
        ...(this.o.pgLogBounds === null ? {} : { pgLogBounds: this.o.pgLogBounds }),
      });
      this.daemon.start({ onListenError: (e) => this.o.onFatal('listen failed', e), fetchTicket: () => this.fetchTicket() });
    });
  }

  /**
   * The OSD's first ticket, retried until it arrives: renewal is scheduled only after a fetch
   * succeeds, so an OSD whose first fetch hit a monitor reset used to stay ticketless and
   * every peer refused its sessions ('authentication required') forever (random seed
   * 0x1fd6d26400eb6ed8).
   */
  private fetchTicket(): void {
    this.mon.ticket((err) => {
      if (err === null) return;
      this.o.env.log.warn({ err }, 'no ticket yet; retrying');
      this.o.env.setTimeout(() => this.fetchTicket(), 1000);
    });
  }

  private reportPgs(map: ClusterMap): void {
    const me = map.osds.get(this.o.id);
    if (me === undefined || !me.up || this.core === null) return;
    const states = this.core.pgStates();
    if (Object.keys(states).length > 0) this.mon.reportPgStates(this.o.id, states);
  }

  /** Graceful stop (kill simply drops the process). */
  stop(): void {
    this.core?.stop();
    this.daemon.stop();
  }
}
