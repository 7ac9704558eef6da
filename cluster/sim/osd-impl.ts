/**
 * Which OSD code the simulator runs, and what "done" means for it. Two implementations:
 * - 'stub': the control-plane stand-in (stub-osd.ts): boot, beacons, heartbeats, PG reports
 *   'active'. Checks: map consistency and control-plane liveness.
 * - 'real' (the default): the production OsdCore over ObjectStore on the SimDisk (sim-osd.ts),
 *   with the Objecter workload and the data checkers (durability, read validity, version
 *   order, convergence) and liveness meaning every PG active+clean.
 */
import type { OsdId } from '../src/common/ids.js';
import type { OsdFactory, OsdNode, SimCluster } from './cluster.js';
import { MON_HOST, MON_PORT, OSD_PORT } from './cluster.js';
import type { Verdict } from './checkers.js';
import type { SimOptions } from './options.js';
import type { Scheduler } from './scheduler.js';
import { StubOsd } from './stub-osd.js';
import type { OsdDaemonOptions } from './osd-daemon.js';
import type { Env } from '../src/env/env.js';
import { SimOsd } from './sim-osd.js';
import { ConvergenceCheck } from './convergence.js';
import { ObjecterWorkload } from './workload.js';
import { pgSeed } from '../src/common/ids.js';
import { pgToOsds } from '../src/placement/placement.js';

/** A client workload driven by the run. */
export interface Workload {
  start(): void;
  /** Stops issuing new ops (in-flight ones complete). */
  stopIssuing(): void;
  /** True when nothing is in flight. */
  quiet(): boolean;
  describePending(): unknown;
  stats(): Record<string, unknown>;
  /** Durability pass after liveness: read back every object (completes by `quiet`). */
  readBackAll?(): void;
}

/** An OSD implementation as the run sees it. */
export interface OsdImplementation {
  readonly name: string;
  factory(o: SimOptions): OsdFactory;
  /** True when `osd` counts as a healthy replica again (fault budget). */
  recovered(c: SimCluster, osd: number): boolean;
  /** A PG state that satisfies liveness. */
  pgDone(state: string): boolean;
  workload(c: SimCluster, o: SimOptions, verdict: Verdict): Workload | null;
  /** After liveness: convergence, read-back of every acknowledged write. */
  finalChecks(c: SimCluster, verdict: Verdict, workload: Workload | null, runUntil: (untilMs: number) => void, sched: Scheduler): Record<string, unknown> | undefined;
}

/** The process options both implementations share (osd-daemon.ts). */
function daemonOptions(o: SimOptions, node: OsdNode, env: Env): OsdDaemonOptions {
  return {
    env, id: node.id, key: node.key, uuid: node.uuid, host: node.proc.host, port: OSD_PORT, mon: { host: MON_HOST, port: MON_PORT },
    beaconMs: o.beaconMs, hbIntervalMs: 1000, hbGraceMs: Math.max(1500, o.osdGraceMs),
  };
}

const stub: OsdImplementation = {
  name: 'stub',
  factory: (o) => (node, env) => {
    const osd = new StubOsd(daemonOptions(o, node, env));
    osd.start();
    return osd;
  },
  recovered: (c, osd) => c.monServer?.monitor.map().osds.get(osd as OsdId)?.up === true,
  pgDone: (state) => state === 'active' || state.startsWith('active+'),
  workload: () => null,
  finalChecks: () => undefined,
};

function simOsdOf(c: SimCluster, osd: number): SimOsd | null {
  const inst = c.osds[osd]?.instance;
  return inst instanceof SimOsd ? inst : null;
}

/**
 * The production OSD (sim-osd.ts: OsdCore over ObjectStore on the SimDisk). An OSD counts as
 * recovered when it is up in the monitor's map and every PG whose acting set holds it is
 * active+clean on that PG's primary (a restarted replica still missing writes is not a
 * healthy copy yet).
 */
const real: OsdImplementation = {
  name: 'real',
  factory: (o) => (node, env) => {
    const osd = new SimOsd({
      ...daemonOptions(o, node, env),
      journalBytes: o.journalBytes, scrubIntervalMs: o.scrubIntervalMs, peerTimeoutMs: o.peerTimeoutMs, pgLogBounds: o.pgLogBounds,
      onFatal: (what, err) => env.log.error({ err }, what),
    });
    osd.start();
    return osd;
  },
  recovered: (c, osd) => {
    const map = c.monServer?.monitor.map();
    if (map === undefined || map.osds.get(osd as OsdId)?.up !== true) return false;
    for (const pool of map.pools.values()) {
      for (let s = 0; s < pool.pgNum; s++) {
        const m = pgToOsds(map, { pool: pool.id, seed: pgSeed(s) });
        if (!m.acting.includes(osd as OsdId)) continue;
        const state = simOsdOf(c, m.primary)?.core?.pgStates()[`${pool.id}.${s.toString(16)}`];
        if (state !== 'active+clean') return false;
      }
    }
    return true;
  },
  pgDone: (state) => state === 'active+clean',
  workload: (c, o, verdict) => new ObjecterWorkload(c, o, verdict),
  finalChecks: (c, verdict, _workload, runUntil, sched) => {
    const map = c.monServer?.monitor.map();
    if (map === undefined) { verdict.fail('convergence', 'no monitor map for the convergence check'); return undefined; }
    const check = new ConvergenceCheck(verdict);
    check.start(map, (osd) => simOsdOf(c, osd)?.store ?? null);
    for (let i = 0; i < 100 && !check.done() && verdict.ok; i++) runUntil(sched.now + 100);
    check.finish();
    return { objectsCompared: check.objectsCompared };
  },
};

const IMPLEMENTATIONS: readonly OsdImplementation[] = [stub, real];

/** The named implementation, or the most complete one available. */
export function selectOsdImplementation(name?: string): OsdImplementation {
  if (name === undefined) return IMPLEMENTATIONS[IMPLEMENTATIONS.length - 1]!;
  const impl = IMPLEMENTATIONS.find((i) => i.name === name);
  if (impl === undefined) throw new Error(`unknown OSD implementation '${name}' (have: ${IMPLEMENTATIONS.map((i) => i.name).join(', ')})`);
  return impl;
}
