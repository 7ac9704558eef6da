/**
 * One simulation run: build the world from the seed, bootstrap the cluster, then
 *   warmup → fault phase (atlas + workload + at most one pgNum growth) → heal → liveness
 *   window (workload drained)
 *   → final checks (liveness, convergence, durability read-back),
 * and return a verdict with the trace hash. Used by main.ts, the seed runner and the tests.
 */
import type { Logger } from 'pino';
import type { MonClient } from '../src/mon/mon-client.js';
import type { MonServer } from '../src/mon/mon-server.js';
import { SimCluster } from './cluster.js';
import type { OsdFactory } from './cluster.js';
import { MapChecker, Verdict, livenessState } from './checkers.js';
import type { Violation } from './checkers.js';
import { FaultAtlas } from './fault-atlas.js';
import { LogRing, simLogger } from './log-ring.js';
import { describeOptions } from './options.js';
import type { SimOptions } from './options.js';
import { Buggify } from './process.js';
import type { ProcessWorld } from './process.js';
import { derive } from './rng.js';
import type { SimRng } from './rng.js';
import { Scheduler } from './scheduler.js';
import { SimNetwork } from './sim-network.js';
import { selectOsdImplementation } from './osd-impl.js';

/** Result of a run. */
export interface RunResult {
  readonly ok: boolean;
  readonly seed: string;
  readonly options: string;
  readonly osdImplementation: string;
  readonly violations: readonly Violation[];
  readonly trace: string;
  readonly events: number;
  readonly simMs: number;
  readonly wallMs: number;
  readonly stats: Record<string, unknown>;
  /** Last log lines (only filled on failure). */
  readonly logTail: readonly string[];
}

/** Run-level knobs that are not part of the seed. */
export interface RunControl {
  verbose?: boolean;
  logLines?: number;
  /** Wall-clock reporter (main.ts passes performance.now; the sim never reads it). */
  wallClock?: () => number;
  /** Force an OSD implementation ('stub' | 'real'); default: the best available. */
  osdImpl?: string;
}

/** The world every process lives in. */
export function makeWorld(o: SimOptions, ring: LogRing, level: string): ProcessWorld & { sched: Scheduler; network: SimNetwork; rootLog: Logger } {
  const sched = new Scheduler({ guard: true });
  const rootLog = simLogger(ring, level, () => sched.now);
  const network = new SimNetwork(sched, derive(o.seed, 'net'), o.net);
  const buggify = new Buggify(o.buggify, o.seed.lo ^ o.seed.hi, derive(o.seed, 'buggify'));
  return { sched, network, rootLog, buggify, stream: (name: string): SimRng => derive(o.seed, name) };
}

/** Runs one seed to completion. */
export function runSimulation(o: SimOptions, control: RunControl = {}): RunResult {
  const wall = control.wallClock ?? (() => 0);
  const wallStart = wall();
  const ring = new LogRing(20_000);
  if (control.verbose === true) ring.echo = (l) => process.stdout.write(l + '\n');
  const world = makeWorld(o, ring, control.verbose === true ? 'debug' : 'info');
  const { sched } = world;
  const verdict = new Verdict(sched);
  const maps = new MapChecker(verdict);
  const impl = selectOsdImplementation(control.osdImpl);
  const liveClients: { name: string; client: MonClient; live: () => boolean }[] = [];
  let cluster: SimCluster | null = null;
  const observers = {
    onMonClient: (name: string, client: MonClient): void => {
      maps.watchClient(name, client);
      const node = cluster?.osds.find((n) => n.proc.name === name);
      const inc = node?.proc.incarnation;
      liveClients.push({ name, client, live: () => node === undefined || (node.proc.alive && node.proc.incarnation === inc) });
    },
    onMonitorStarted: (server: MonServer): void => maps.watchMonitor(server),
    fail: (what: string, details?: Record<string, unknown>): void => verdict.fail('cluster', what, details),
  };
  const factory: OsdFactory = impl.factory(o);
  cluster = new SimCluster(world, o, factory, observers);
  const c = cluster;
  world.rootLog.info({ seed: o.seed.text, options: describeOptions(o), osd: impl.name }, 'simulation start');

  let booted = false;
  c.bootstrap((err) => {
    if (err !== null) verdict.fail('bootstrap', err.message);
    else booted = true;
  });
  const maxEvents = o.maxEvents > 0 ? o.maxEvents : Infinity;
  const runUntil = (untilMs: number, stop?: () => boolean): void => {
    if (!verdict.ok) return;
    try {
      sched.run({ untilMs, maxEvents, stop: () => !verdict.ok || sched.leaks.length > 0 || (stop?.() ?? false) });
    } catch (e) {
      // An exception escaping an event is a crash of that process in production.
      verdict.fail('crash', `uncaught exception in event '${sched.lastLabel}': ${(e as Error).stack ?? String(e)}`);
    }
  };
  runUntil(o.warmupMs, () => booted);
  if (!booted && verdict.ok) verdict.fail('bootstrap', 'cluster did not bootstrap within the warmup');

  // PG split (options.splitAtMs): the admin's pgNum growth, issued during the fault phase.
  const split = { issuedMs: -1, doneMs: -1, osdsDown: 0, monDown: false };
  const splitPending = (): boolean => o.splitAtMs > 0 && split.doneMs < 0;
  const atlas = new FaultAtlas(c, o, derive(o.seed, 'faults'), (osd) => impl.recovered(c, osd));
  const workload = impl.workload(c, o, verdict);
  if (verdict.ok) {
    runUntil(o.warmupMs);
    atlas.start();
    workload?.start();
    if (o.splitAtMs > 0) {
      sched.after(o.splitAtMs, null, 'admin pool set pg_num', () => {
        split.issuedMs = sched.now;
        // Coverage figures: how impaired the cluster was when the growth was issued.
        split.osdsDown = c.osds.filter((n) => !n.proc.alive || n.proc.paused).length;
        split.monDown = c.monServer === null;
        c.growPgNum(o.splitPgNum, (err) => {
          if (err !== null) verdict.fail('admin', `pool set pg_num ${o.splitPgNum} failed`, { code: err.code, err: err.message });
          else split.doneMs = sched.now;
        });
      });
    }
    runUntil(o.warmupMs + o.faultPhaseMs);
  }
  // Faults stop: heal everything, then liveness within the bound.
  atlas.stopAndHeal();
  const healedAt = sched.now;
  // --events=N cut the run short: there is no end state to check (prefix runs, determinism).
  const truncated = (): boolean => sched.eventCount >= maxEvents;
  let live = { done: false, pending: ['not evaluated'] };
  const check = (): boolean => {
    live = livenessState({ server: c.monServer, osdIds: c.osds.map((n) => n.id), pgDone: impl.pgDone, clients: liveClients });
    if (splitPending()) live = { done: false, pending: [...live.pending, `pool set pg_num ${o.splitPgNum} not acknowledged`] };
    return live.done && (workload?.quiet() ?? true);
  };
  if (verdict.ok && sched.leaks.length === 0 && !truncated()) {
    workload?.stopIssuing();
    let lastCheck = -Infinity;
    runUntil(healedAt + o.livenessBoundMs, () => {
      if (sched.now - lastCheck < 100) return false;
      lastCheck = sched.now;
      return check();
    });
    if (!check() && verdict.ok && !truncated()) verdict.fail('liveness', `not live ${o.livenessBoundMs} ms after faults stopped`, { pending: live.pending.slice(0, 10), workload: workload?.describePending() });
  }
  if (verdict.ok && sched.leaks.length === 0 && !truncated() && workload?.readBackAll !== undefined) {
    workload.readBackAll();
    const until = sched.now + 30_000;
    runUntil(until, () => workload.quiet());
    if (!workload.quiet() && verdict.ok && !truncated()) verdict.fail('durability', 'final read-back did not complete within 30 s', { pending: workload.describePending() });
  }
  let finalStats: Record<string, unknown> | undefined;
  if (verdict.ok && sched.leaks.length === 0 && !truncated()) finalStats = impl.finalChecks(c, verdict, workload, (until) => runUntil(until), sched);
  for (const leak of sched.leaks.slice(0, 5)) verdict.fail('determinism', `nondeterminism leak: ${leak.type} created inside event '${leak.label}'`, { atMs: leak.atMs });
  sched.dispose();
  const stats: Record<string, unknown> = {
    net: world.network.stats,
    faults: atlas.counts,
    buggify: Object.fromEntries(world.buggify.fired),
    ...(o.splitAtMs > 0 ? { split: { ...split, pgNum: o.splitPgNum, issuedMs: Math.round(split.issuedMs), doneMs: Math.round(split.doneMs) } } : {}),
    epoch: maps.publishedEpoch,
    logLines: ring.written,
    ...(workload?.stats() ?? {}),
    ...(finalStats ?? {}),
  };
  const ok = verdict.ok;
  return {
    ok, seed: o.seed.text, options: describeOptions(o), osdImplementation: impl.name, violations: verdict.violations, trace: sched.trace,
    events: sched.eventCount, simMs: sched.now, wallMs: wall() - wallStart, stats,
    logTail: ok ? [] : ring.tail(control.logLines ?? 200),
  };
}

/** Prints a run's result the way CI and humans read it. */
export function reportResult(r: RunResult, out: (s: string) => void): void {
  out(`seed ${r.seed} osd=${r.osdImplementation} ${r.ok ? 'PASS' : 'FAIL'} events=${r.events} sim=${(r.simMs / 1000).toFixed(1)}s wall=${(r.wallMs / 1000).toFixed(2)}s trace=${r.trace}`);
  out(`  options: ${r.options}`);
  out(`  stats: ${JSON.stringify(r.stats)}`);
  if (r.ok) return;
  for (const v of r.violations) out(`  VIOLATION [${v.checker}] t=${v.atMs.toFixed(1)}ms ${v.message}${v.details === undefined ? '' : ' ' + JSON.stringify(v.details)}`);
  out(`  --- last ${r.logTail.length} log lines ---`);
  for (const l of r.logTail) out('  ' + l);
  out(`reproduce: node dist/cluster/sim/main.js --seed=${r.seed}`);
}
