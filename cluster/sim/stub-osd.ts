/**
 * A stand-in OSD for the simulator until the OSD daemon class (`cluster/src/osd/osd.ts`)
 * lands: the control-plane behaviour of the `strata osd` placeholder (bin/osd.ts, whose class
 * is private to the bin and which sim/ may not import), rebuilt on the SAME production
 * modules — MonClient, Messenger, ticket auth — so the monitor, the map subscription, failure
 * detection and the messenger are exercised for real:
 * - fetch the service secret, listen, boot, beacon every `beaconMs`, re-boot on
 *   'boot-required';
 * - heartbeat the other up OSDs, report `refused`/`timeout` failures (and withdraw them);
 * - report every PG it is primary for as 'active' after each map (no data, never 'clean').
 *
 * It holds no data: the data-path checkers need the real OSD.
 */
import type { ClusterMap } from '../src/map/cluster-map.js';
import type { MonClient } from '../src/mon/mon-client.js';
import { mapAllPgs } from '../src/placement/placement.js';
import { OsdDaemon } from './osd-daemon.js';
import type { OsdDaemonOptions } from './osd-daemon.js';

/** Options of the stand-in OSD. */
export type StubOsdOptions = OsdDaemonOptions;

/** The stand-in OSD process object. */
export class StubOsd {
  readonly mon: MonClient;
  private readonly daemon: OsdDaemon;

  constructor(private readonly o: StubOsdOptions) {
    this.daemon = new OsdDaemon(o, { onMap: (map) => this.reportPgs(map), reportPgs: (map) => this.reportPgs(map), pingFromOsdsOnly: false });
    this.mon = this.daemon.mon;
  }

  start(): void {
    this.daemon.start({
      onListenError: (err) => this.o.env.log.error({ err }, 'listen failed'),
      fetchTicket: () => this.mon.ticket(() => undefined),
    });
  }

  private reportPgs(map: ClusterMap): void {
    const me = map.osds.get(this.o.id);
    if (me === undefined || !me.up) return;
    const states: Record<string, string> = {};
    for (const pool of map.pools.values()) {
      mapAllPgs(map, pool).forEach((m, seed) => { if (m.primary === this.o.id) states[`${pool.id}.${seed.toString(16)}`] = 'active'; });
    }
    this.mon.reportPgStates(this.o.id, states);
  }

  /** Graceful stop (not used by kill, which simply drops the process). */
  stop(): void {
    this.daemon.stop();
  }
}
