/**
 * Checkers: invariants evaluated while the simulation runs (after events, or when a
 * production callback reports something) and at phase boundaries. A violation is recorded
 * with the simulated time; the run fails and prints the seed.
 *
 * Control plane (this file):
 * - map consistency: every map epoch the monitor ever publishes has ONE content, across
 *   monitor crashes and restarts (a committed epoch is durable and never rewritten), a
 *   restarted monitor never comes back with an epoch older than one already published, and
 *   every MonClient installs epochs in increasing order with exactly the monitor's content;
 * - liveness: once faults stop, within `livenessBoundMs`, every OSD is up in the monitor's
 *   map, every PG's reported state satisfies the OSD implementation's "done" predicate
 *   ('active' for the stand-in, 'active+clean' for the real OSD) and every MonClient holds
 *   the monitor's latest epoch.
 * Data path (workload.ts): durability, read validity; convergence (convergence.ts).
 */
import { crc32c } from '../src/common/crc32c.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { encodeMap } from '../src/map/map-codec.js';
import type { MonClient } from '../src/mon/mon-client.js';
import type { MonServer } from '../src/mon/mon-server.js';
import { mapAllPgs } from '../src/placement/placement.js';
import type { Scheduler } from './scheduler.js';

/** One invariant violation. */
export interface Violation {
  readonly checker: string;
  readonly atMs: number;
  readonly message: string;
  readonly details?: Record<string, unknown>;
}

/** Collects violations. */
export class Verdict {
  readonly violations: Violation[] = [];
  constructor(private readonly sched: Scheduler) {}
  fail(checker: string, message: string, details?: Record<string, unknown>): void {
    if (this.violations.length >= 50) return;
    this.violations.push(details === undefined ? { checker, atMs: this.sched.now, message } : { checker, atMs: this.sched.now, message, details });
  }
  get ok(): boolean { return this.violations.length === 0; }
}

function mapHash(map: ClusterMap): number {
  return crc32c(encodeMap(map));
}

/** Map consistency across the monitor's history and every MonClient. */
export class MapChecker {
  private readonly epochHash = new Map<number, number>();
  private maxPublished = 0;
  private readonly clientEpoch = new Map<MonClient, number>();
  readonly clients: { name: string; client: MonClient }[] = [];

  constructor(private readonly verdict: Verdict) {}

  /** Subscribes to a freshly started monitor's publications. */
  watchMonitor(server: MonServer): void {
    const latest = server.monitor.map().epoch;
    if (latest < this.maxPublished) {
      this.verdict.fail('map', `restarted monitor is at epoch ${latest}, older than published epoch ${this.maxPublished}`);
    }
    this.record(server.monitor.map(), 'monitor start');
    server.monitor.subscribe(latest, (u) => {
      // Incrementals are applied by the clients; here the committed map is the reference.
      if (u.kind === 'full') this.record(u.map, 'monitor push');
      else this.record(server.monitor.map(), 'monitor push');
    });
  }

  private record(map: ClusterMap, where: string): void {
    const h = mapHash(map);
    const prior = this.epochHash.get(map.epoch);
    if (prior !== undefined && prior !== h) this.verdict.fail('map', `epoch ${map.epoch} changed content (${where})`);
    this.epochHash.set(map.epoch, h);
    this.maxPublished = Math.max(this.maxPublished, map.epoch);
  }

  /** Watches a MonClient's installed maps. */
  watchClient(name: string, client: MonClient): void {
    this.clients.push({ name, client });
    client.on('map', (map) => {
      const last = this.clientEpoch.get(client) ?? 0;
      if (map.epoch <= last) this.verdict.fail('map', `${name} installed epoch ${map.epoch} after ${last}`);
      this.clientEpoch.set(client, map.epoch);
      const want = this.epochHash.get(map.epoch);
      if (want === undefined) this.verdict.fail('map', `${name} installed epoch ${map.epoch}, which the monitor never published`);
      else if (want !== mapHash(map)) this.verdict.fail('map', `${name} installed epoch ${map.epoch} with content differing from the monitor's`);
    });
  }

  get publishedEpoch(): number { return this.maxPublished; }
}

/** What liveness waits for; `pending` lists what is not there yet. */
export interface LivenessState {
  done: boolean;
  pending: string[];
}

/** Evaluates the liveness condition against the monitor's view. */
export function livenessState(o: {
  server: MonServer | null;
  osdIds: readonly number[];
  pgDone: (state: string) => boolean;
  clients: readonly { name: string; client: MonClient; live: () => boolean }[];
}): LivenessState {
  const pending: string[] = [];
  if (o.server === null) return { done: false, pending: ['monitor down'] };
  const core = o.server.monitor;
  const map = core.map();
  for (const id of o.osdIds) {
    const osd = map.osds.get(id as never);
    if (osd === undefined || !osd.up) pending.push(`osd.${id} not up`);
  }
  const status = core.status();
  if (status.pgStates['unknown'] !== undefined) {
    // Which PGs, who their primary is, and what the monitor holds (private, for diagnosis only).
    const raw = (core as unknown as { pgStates?: Map<string, { state: string; osd: number }> }).pgStates;
    const missing: string[] = [];
    for (const pool of map.pools.values()) {
      mapAllPgs(map, pool).forEach((m, seed) => {
        const id = `${pool.id}.${seed.toString(16)}`;
        if (raw !== undefined && !raw.has(id)) missing.push(`${id}(primary osd.${m.primary})`);
      });
    }
    pending.push(`${status.pgStates['unknown']} pgs unreported: ${missing.slice(0, 5).join(' ')}`);
  }
  // Per-PG detail: the core keeps the reports; status() aggregates, so recompute the notDone count.
  let notDone = 0;
  for (const [state, n] of Object.entries(status.pgStates)) if (state !== 'unknown' && !o.pgDone(state)) notDone += n;
  if (notDone > 0) pending.push(`${notDone} pgs not done (${JSON.stringify(status.pgStates)})`);
  let pgCount = 0;
  for (const pool of map.pools.values()) pgCount += mapAllPgs(map, pool).length;
  if (pgCount === 0) pending.push('no pgs');
  for (const c of o.clients) {
    if (!c.live()) continue;
    const e = c.client.map()?.epoch ?? 0;
    if (e !== map.epoch) pending.push(`${c.name} at epoch ${e} < ${map.epoch}`);
  }
  return { done: pending.length === 0, pending };
}
