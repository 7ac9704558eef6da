/**
 * The simulator's single event queue (GUIDE §5; TigerBeetle VOPR, FoundationDB simulation):
 * every timer, network delivery and disk completion of every simulated process is one event
 * keyed by (timeMs, seq). `run()` pops the earliest, sets `now`, fires it synchronously and
 * then runs the checkers' `afterEvent` hooks. Ties are broken by `seq` (insertion order), so
 * a run is a pure function of the seed.
 *
 * Events belong to an owner (a simulated process, or null for the simulator itself):
 * - a killed owner's events are dropped (its incarnation changed);
 * - a paused owner's events are parked, in order, and re-queued when it resumes (a GC stall
 *   or SIGSTOP: the kernel still queues its network input, the process runs none of it).
 *
 * Determinism guard: the production core is callback-only (GUIDE principle 9). A Promise, a
 * `queueMicrotask`, `process.nextTick` or a real timer created while an event runs would let
 * work escape the simulated clock and run in host order. With `guard: true`, an `async_hooks`
 * hook counts every async resource created inside an event (PROMISE, Microtask, TickObject,
 * Timeout, Immediate, FS and TCP requests) and records the event's label: the run then fails
 * with "nondeterminism leak". This is exact for the current process (no sampling).
 */
import { createHook } from 'node:async_hooks';
import { fnv1a } from './rng.js';

/** Who an event belongs to (a simulated process). */
export interface EventOwner {
  readonly name: string;
  /** Bumped by kill: events of an older incarnation are dropped. */
  readonly incarnation: number;
  /** True while paused: events are parked until `resume`. */
  readonly paused: boolean;
  /** Parked events (filled by the scheduler). */
  readonly parked: SimEvent[];
}

/** One scheduled event. */
export interface SimEvent {
  atMs: number;
  seq: number;
  readonly label: string;
  readonly owner: EventOwner | null;
  readonly incarnation: number;
  cb: (() => void) | null;
}

/** Handle used to cancel an event. */
export type EventHandle = SimEvent;

/** A leak of host asynchrony found by the guard. */
export interface LeakReport {
  readonly type: string;
  readonly label: string;
  readonly atMs: number;
}

/** Options of `run`. */
export interface RunLimits {
  /** Stop before the first event after this time. */
  untilMs?: number;
  /** Stop after this many events (in total, over all `run` calls). */
  maxEvents?: number;
  /** Checked after each event: stop when true. */
  stop?: () => boolean;
}

/** The event queue. */
export class Scheduler {
  private heap: SimEvent[] = [];
  private seq = 0;
  private nowMs = 0;
  private fired = 0;
  private traceHash = 0x811c9dc5;
  private current: SimEvent | null = null;
  private readonly afterHooks: (() => void)[] = [];
  readonly leaks: LeakReport[] = [];
  private hook: ReturnType<typeof createHook> | null = null;

  constructor(options: { guard?: boolean } = {}) {
    if (options.guard === true) this.installGuard();
  }

  /** Simulated milliseconds since the start of the run. */
  get now(): number { return this.nowMs; }
  /** Events fired so far. */
  get eventCount(): number { return this.fired; }
  /** Events waiting (including cancelled ones not yet popped). */
  get pendingCount(): number { return this.heap.length; }
  /** Hash of (time, label) of every event fired so far: equal traces ⇔ equal hashes (w.h.p.). */
  get trace(): string { return this.traceHash.toString(16).padStart(8, '0'); }
  /** Label of the event being fired (for logs). */
  get currentLabel(): string { return this.current?.label ?? ''; }
  /** Label of the last event fired (for crash reports). */
  get lastLabel(): string { return this.last; }
  private last = '';

  /** Registers a hook run after every event (the checkers' afterEvent). */
  afterEvent(fn: () => void): void {
    this.afterHooks.push(fn);
  }

  /** Schedules `cb` at `now + delayMs` (delay ≥ 0). */
  after(delayMs: number, owner: EventOwner | null, label: string, cb: () => void): EventHandle {
    return this.at(this.nowMs + Math.max(0, delayMs), owner, label, cb);
  }

  /** Schedules `cb` at absolute time `atMs` (clamped to now). */
  at(atMs: number, owner: EventOwner | null, label: string, cb: () => void): EventHandle {
    const ev: SimEvent = { atMs: Math.max(this.nowMs, atMs), seq: ++this.seq, label, owner, incarnation: owner?.incarnation ?? 0, cb };
    this.push(ev);
    return ev;
  }

  /** Cancels an event; a no-op when it already fired. */
  cancel(ev: EventHandle): void {
    ev.cb = null;
  }

  /** Re-queues a resumed owner's parked events at the current time, in their original order. */
  unpark(owner: EventOwner): void {
    const parked = owner.parked.splice(0);
    for (const ev of parked) {
      ev.atMs = this.nowMs;
      ev.seq = ++this.seq;
      this.push(ev);
    }
  }

  /** Fires events until a limit is reached or the queue is empty; returns events fired. */
  run(limits: RunLimits = {}): number {
    const start = this.fired;
    const until = limits.untilMs ?? Infinity;
    const maxEvents = limits.maxEvents ?? Infinity;
    while (this.heap.length > 0 && this.fired < maxEvents) {
      const top = this.heap[0]!;
      if (top.atMs > until) break;
      this.pop();
      if (!this.fire(top)) continue;
      for (const h of this.afterHooks) h();
      if (limits.stop?.() === true) break;
    }
    if (until !== Infinity && this.nowMs < until && (this.heap.length === 0 || this.heap[0]!.atMs > until) && this.fired < maxEvents) this.nowMs = until;
    return this.fired - start;
  }

  /** Stops the guard (end of run). */
  dispose(): void {
    this.hook?.disable();
    this.hook = null;
  }

  private fire(ev: SimEvent): boolean {
    const cb = ev.cb;
    if (cb === null) return false;
    const owner = ev.owner;
    if (owner !== null) {
      if (owner.incarnation !== ev.incarnation) return false;
      if (owner.paused) { owner.parked.push(ev); return false; }
    }
    ev.cb = null;
    this.nowMs = ev.atMs;
    this.fired++;
    this.traceHash = fnv1a(ev.label, (this.traceHash ^ Math.round(ev.atMs * 1000)) >>> 0);
    this.current = ev;
    this.last = ev.label;
    try {
      cb();
    } finally {
      this.current = null;
    }
    return true;
  }

  private installGuard(): void {
    this.hook = createHook({
      init: (_id, type) => {
        const ev = this.current;
        if (ev !== null && this.leaks.length < 100) this.leaks.push({ type, label: ev.label, atMs: ev.atMs });
      },
    });
    this.hook.enable();
  }

  // Binary heap on (atMs, seq).
  private less(a: SimEvent, b: SimEvent): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private push(ev: SimEvent): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
