/**
 * The process model: a simulated process is one `Env` — its own timers (events it owns in
 * the scheduler), its own network identity (host name), its own disk (which outlives it), its
 * own rng stream and clock — plus the production object running on it (MonServer, an OSD, a
 * client). Faults at this level:
 * - kill: the incarnation changes, so every pending event of the old one is dropped (timers,
 *   disk completions, network input); its sockets reset; its disk loses power (`crash`).
 * - restart: a new incarnation with a fresh Env over the same disk; the caller constructs a
 *   NEW instance of the production object on it (nothing in memory survives).
 * - pause: events are parked until resume (a GC stall / SIGSTOP); the kernel side (accepting
 *   connections, queueing bytes) keeps working.
 * - clock skew: `nowMs` = offset + rate × simulated time, per incarnation (monotonic, with
 *   drift); `wallMs` adds a small wall offset (ticket expiry uses it).
 */
import type { Logger } from 'pino';
import type { Env, Rng, TimerHandle } from '../src/env/env.js';
import type { EventOwner, Scheduler, SimEvent } from './scheduler.js';
import type { SimRng } from './rng.js';
import { fnv1a } from './rng.js';
import { SimDisk } from './sim-disk.js';
import type { DiskProfile } from './sim-disk.js';
import type { SimNetwork } from './sim-network.js';

/** Buggify, FoundationDB's two levels: a site is enabled once per run, then fires with p. */
export class Buggify {
  private readonly sites = new Map<string, boolean>();
  readonly fired = new Map<string, number>();

  constructor(private readonly enabled: boolean, private readonly seedWord: number, private readonly rng: SimRng) {}

  /** The Env hook. */
  fire(site: string, p: number): boolean {
    if (!this.enabled) return false;
    let on = this.sites.get(site);
    if (on === undefined) {
      on = fnv1a(site, this.seedWord) % 4 === 0; // A quarter of the sites are live in a run.
      this.sites.set(site, on);
    }
    if (!on || !this.rng.chance(p)) return false;
    this.fired.set(site, (this.fired.get(site) ?? 0) + 1);
    return true;
  }
}

/** Per-process clock error. */
export interface ClockSkew {
  offsetMs: number;
  /** 1 = exact; 1.001 = runs 0.1 % fast. */
  rate: number;
  wallOffsetMs: number;
}

/** Everything a process needs from the run. */
export interface ProcessWorld {
  readonly sched: Scheduler;
  readonly network: SimNetwork;
  readonly rootLog: Logger;
  readonly buggify: Buggify;
  /** Named rng streams (derived from the seed). */
  stream(name: string): SimRng;
}

const WALL_EPOCH_MS = 1_700_000_000_000;

/** A simulated process. */
export class SimProcess implements EventOwner {
  incarnation = 0;
  paused = false;
  readonly parked: SimEvent[] = [];
  alive = false;
  readonly disk: SimDisk;
  private envValue: Env | null = null;
  private startMs = 0;
  private resumeEvent: SimEvent | null = null;
  readonly rng: SimRng;
  skew: ClockSkew = { offsetMs: 0, rate: 1, wallOffsetMs: 0 };

  constructor(private readonly world: ProcessWorld, readonly name: string, readonly host: string, diskProfile: DiskProfile) {
    this.rng = world.stream(`proc:${name}`);
    const diskRng = world.stream(`disk:${name}`);
    this.disk = new SimDisk({ defer: (d, l, cb) => this.defer(d, l, cb), rng: diskRng }, diskProfile);
    this.disk.attach({ defer: (d, l, cb) => this.defer(d, l, cb), rng: diskRng }, () => world.sched.now);
    world.network.addHost(this);
  }

  /** The Env of the current incarnation. */
  get env(): Env {
    if (this.envValue === null) throw new Error(`${this.name} is not running`);
    return this.envValue;
  }

  /** Starts a new incarnation (first start or restart) and returns its Env. */
  start(): Env {
    if (this.alive) throw new Error(`${this.name} already running`);
    this.incarnation++;
    this.alive = true;
    this.paused = false;
    this.parked.length = 0;
    this.startMs = this.world.sched.now;
    this.envValue = this.makeEnv();
    return this.envValue;
  }

  /** A clean exit: events and sockets go, the disk keeps everything (the page cache survives). */
  exit(): void {
    if (!this.alive) return;
    this.alive = false;
    this.paused = false;
    this.parked.length = 0;
    this.incarnation++;
    this.envValue = null;
    if (this.resumeEvent !== null) this.world.sched.cancel(this.resumeEvent);
    this.world.network.processDied(this);
  }

  /** kill -9 plus power loss of its disk (unsynced writes dropped or torn). */
  kill(): void {
    if (!this.alive) return;
    this.alive = false;
    this.paused = false;
    this.parked.length = 0;
    this.incarnation++; // Drops every pending event of the dead incarnation.
    this.envValue = null;
    if (this.resumeEvent !== null) this.world.sched.cancel(this.resumeEvent);
    this.world.network.processDied(this);
    this.disk.crash(this.world.stream(`crash:${this.name}:${this.incarnation}`));
  }

  /** Stops running events for `durationMs` (then resumes by itself). */
  pause(durationMs: number): void {
    if (!this.alive || this.paused) return;
    this.paused = true;
    this.resumeEvent = this.world.sched.after(durationMs, null, `${this.name} resume`, () => this.resume());
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.resumeEvent = null;
    this.world.sched.unpark(this);
  }

  /** Runs `cb` after `delayMs` of simulated time as an event of this incarnation. */
  defer(delayMs: number, label: string, cb: () => void): SimEvent {
    return this.world.sched.after(delayMs, this, label, cb);
  }

  private localNow(): number {
    return this.skew.offsetMs + this.startMs + (this.world.sched.now - this.startMs) * this.skew.rate;
  }

  private makeEnv(): Env {
    const sched = this.world.sched;
    const procRng = this.world.stream(`env:${this.name}:${this.incarnation}`);
    const rng: Rng = { u32: () => procRng.u32(), bytes: (n) => procRng.bytes(n) };
    const timerLabel = `${this.name} timer`;
    return {
      nowMs: () => this.localNow(),
      wallMs: () => Math.floor(WALL_EPOCH_MS + this.localNow() + this.skew.wallOffsetMs), // Integral, as Date.now().
      setTimeout: (cb, delayMs) => sched.after(Math.max(0, delayMs) / this.skew.rate, this, timerLabel, cb) as unknown as TimerHandle,
      clearTimeout: (h) => sched.cancel(h as unknown as SimEvent),
      setImmediate: (cb) => sched.after(0, this, timerLabel, cb) as unknown as TimerHandle,
      rng,
      disk: this.disk,
      net: this.world.network.netFor(this),
      log: this.world.rootLog.child({ proc: this.name, inc: this.incarnation }),
      buggify: (site, p) => this.world.buggify.fire(site, p),
    };
  }
}
