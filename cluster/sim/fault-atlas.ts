/**
 * The fault atlas (GUIDE §5): injects, during the fault phase, only faults the design claims
 * to tolerate. Budget: at most `size − minSize` OSDs are impaired at once — killed, paused,
 * isolated or behind a clogged path to the monitor — because any `size − minSize` of them may
 * hold replicas of the same PG (each OSD is its own failure domain here). An OSD stays
 * impaired after its fault ends until `recovered(osd)` says so (for the real OSD: every PG is
 * active+clean again, so a restarted replica that still lacks writes is not counted as a
 * healthy copy), or for at most `settleCapMs`.
 *
 * The monitor may be killed (power loss) and restarted: its store is durable. Connection
 * resets and OSD↔OSD clogs (counted against the budget too) model lossy paths.
 *
 * At the end of the fault phase `stopAndHeal()` ends every fault at once: partitions heal,
 * paused processes resume, dead processes restart.
 */
import type { SimCluster, OsdNode } from './cluster.js';
import type { FaultMix, SimOptions } from './options.js';
import type { SimRng } from './rng.js';

interface Impairment { osd: number; endsAtMs: number | null; kind: string }

/** Fault injection with a budget. */
export class FaultAtlas {
  private readonly impaired = new Map<number, Impairment>();
  private monDown = false;
  private partitioned = false;
  private stopped = false;
  private readonly pendingRestarts = new Set<OsdNode>();
  readonly counts: Record<string, number> = {};
  private readonly settleCapMs: number;

  constructor(
    private readonly cluster: SimCluster,
    private readonly o: SimOptions,
    private readonly rng: SimRng,
    private readonly recovered: (osd: number) => boolean,
  ) {
    this.settleCapMs = Math.max(20_000, 4 * o.osdGraceMs);
  }

  private get sched() { return this.cluster.world.sched; }
  private get net() { return this.cluster.world.network; }
  private get budget(): number { return this.o.poolSize - this.o.poolMinSize; }

  /** Starts injecting (until `stopAndHeal`). */
  start(): void {
    if (this.o.faultIntervalMeanMs <= 0) return;
    this.scheduleNext();
  }

  private scheduleNext(): void {
    const delay = 100 + this.rng.exponential(this.o.faultIntervalMeanMs);
    this.sched.after(delay, null, 'fault tick', () => {
      if (this.stopped) return;
      this.inject();
      this.scheduleNext();
    });
  }

  /** OSDs impaired now (their fault may have ended but they have not recovered yet). */
  private impairedCount(): number {
    const now = this.sched.now;
    for (const [id, imp] of this.impaired) {
      if (imp.endsAtMs === null || imp.endsAtMs > now) continue;
      if (this.recovered(id) || now - imp.endsAtMs > this.settleCapMs) this.impaired.delete(id);
    }
    return this.impaired.size;
  }

  private freeOsds(): OsdNode[] {
    return this.cluster.osds.filter((n) => !this.impaired.has(n.id) && n.proc.alive && !n.proc.paused);
  }

  private inject(): void {
    const mix = this.o.faultMix;
    const kinds = (Object.keys(mix) as (keyof FaultMix)[]).filter((k) => mix[k] > 0);
    if (kinds.length === 0) return;
    const total = kinds.reduce((s, k) => s + mix[k], 0);
    let x = this.rng.float() * total;
    let kind = kinds[0]!;
    for (const k of kinds) { x -= mix[k]; if (x < 0) { kind = k; break; } }
    const room = this.budget - this.impairedCount();
    const osdFault = kind === 'killOsd' || kind === 'pauseOsd' || kind === 'isolateOsd' || kind === 'clogPath' || kind === 'splitBrain';
    if (osdFault && room <= 0) return;
    const free = this.freeOsds();
    if (osdFault && free.length === 0) return;
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    switch (kind) {
      case 'killOsd': return this.killOsd(this.rng.pick(free));
      case 'pauseOsd': return this.pauseOsd(this.rng.pick(free));
      case 'isolateOsd': return this.isolate([this.rng.pick(free)], this.rng.chance(0.7));
      case 'splitBrain': {
        const k = 1 + this.rng.int(Math.min(room, free.length));
        const pool = [...free];
        const chosen: OsdNode[] = [];
        while (chosen.length < k) chosen.push(pool.splice(this.rng.int(pool.length), 1)[0]!);
        return this.isolate(chosen, true);
      }
      case 'clogPath': return this.clog(this.rng.pick(free));
      case 'killMon': return this.killMon();
      case 'resetConnection': { this.net.resetRandomConnection(); return; }
    }
  }

  private log(msg: string, fields: Record<string, unknown>): void {
    this.cluster.log.info({ fault: true, ...fields }, msg);
  }

  private killOsd(n: OsdNode): void {
    const downMs = 200 + this.rng.exponential(5000);
    this.impaired.set(n.id, { osd: n.id, endsAtMs: null, kind: 'kill' });
    this.log('fault: kill osd', { osd: n.id, downMs: Math.round(downMs) });
    this.cluster.killOsd(n);
    this.pendingRestarts.add(n);
    this.sched.after(downMs, null, 'fault restart osd', () => this.restartOsd(n));
  }

  private restartOsd(n: OsdNode): void {
    if (!this.pendingRestarts.delete(n)) return;
    this.log('fault end: restart osd', { osd: n.id });
    this.cluster.startOsd(n);
    const imp = this.impaired.get(n.id);
    if (imp !== undefined) imp.endsAtMs = this.sched.now;
  }

  private pauseOsd(n: OsdNode): void {
    const ms = 100 + this.rng.exponential(this.o.osdGraceMs);
    this.log('fault: pause osd', { osd: n.id, ms: Math.round(ms) });
    n.proc.pause(ms);
    this.impaired.set(n.id, { osd: n.id, endsAtMs: this.sched.now + ms, kind: 'pause' });
  }

  private isolate(nodes: OsdNode[], symmetric: boolean): void {
    if (this.partitioned) return;
    this.partitioned = true;
    const ms = 500 + this.rng.exponential(6000);
    const inside = nodes.map((n) => n.proc.host);
    const outside = this.allHosts().filter((h) => !inside.includes(h));
    const outward = this.rng.chance(0.5);
    this.log('fault: partition', { inside, symmetric, direction: symmetric ? 'both' : outward ? 'inside→outside blocked' : 'outside→inside blocked', ms: Math.round(ms) });
    if (symmetric || outward) this.net.partition(inside, outside, symmetric);
    else this.net.partition(outside, inside, false);
    for (const n of nodes) this.impaired.set(n.id, { osd: n.id, endsAtMs: this.sched.now + ms, kind: 'partition' });
    this.sched.after(ms, null, 'fault heal', () => {
      if (!this.partitioned) return;
      this.partitioned = false;
      this.log('fault end: heal partition', {});
      this.net.healPartitions();
    });
  }

  private clog(n: OsdNode): void {
    const ms = 50 + this.rng.exponential(3000);
    const others = this.allHosts().filter((h) => h !== n.proc.host && !h.startsWith('osd'));
    const peer = this.rng.pick(['mon', ...others]);
    const fromOsd = this.rng.chance(0.5);
    this.log('fault: clog', { from: fromOsd ? n.proc.host : peer, to: fromOsd ? peer : n.proc.host, ms: Math.round(ms) });
    if (fromOsd) this.net.clog(n.proc.host, peer, ms);
    else this.net.clog(peer, n.proc.host, ms);
    this.impaired.set(n.id, { osd: n.id, endsAtMs: this.sched.now + ms, kind: 'clog' });
  }

  private killMon(): void {
    if (this.monDown) return;
    this.monDown = true;
    const downMs = 100 + this.rng.exponential(2000);
    this.log('fault: kill mon', { downMs: Math.round(downMs) });
    this.cluster.killMon(true);
    this.sched.after(downMs, null, 'fault restart mon', () => this.restartMon());
  }

  private restartMon(): void {
    if (!this.monDown) return;
    this.monDown = false;
    this.log('fault end: restart mon', {});
    this.cluster.startMon();
  }

  private allHosts(): string[] {
    const hosts = ['mon', 'admin', ...this.cluster.osds.map((n) => n.proc.host)];
    for (let i = 0; i < this.o.clientCount; i++) hosts.push(`client${i}`);
    return hosts;
  }

  /** Ends the fault phase: heal, resume, restart everything now. */
  stopAndHeal(): void {
    this.stopped = true;
    this.partitioned = false;
    // Clogs too: one outliving the heal (seed 0x9d7fc3b97bf74211: osd0→mon, 1.4 s past it)
    // let liveness pass while the monitor, restarted at the heal, was about to mark that OSD
    // down for missing beacons — during the convergence check.
    this.net.healAll();
    for (const n of this.cluster.osds) if (n.proc.paused) n.proc.resume();
    for (const n of [...this.pendingRestarts]) this.restartOsd(n);
    this.restartMon();
    this.log('faults stopped; healing', {});
  }
}
