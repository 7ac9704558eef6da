/**
 * Main-thread side of `--workers N`: starts the queue workers, routes each queue to worker
 * `queue % N`, and turns the request/ack messages of protocol.ts into callbacks. Workers live
 * as long as the daemon; a new connection resets their memory and rings.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { addStats, emptyStats, type BlkDeviceStats } from '../blk/device.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';

type Waiter = (m: FromWorker) => boolean;


export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly waiters: Waiter[][] = [];
  private readonly lastStats: { stats: BlkDeviceStats; inflight: number }[] = [];
  private statsTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly size: number,
    private readonly init: Omit<WorkerInit, 'workerIndex'>,
    private readonly log: Logger,
    private readonly onBroken: (code: string, message: string) => void,
  ) {}

  /** Starts every worker; `cb` once all reported ready (or the first failed). */
  start(cb: (err: Error | null) => void): void {
    let ready = 0;
    let failed = false;
    for (let i = 0; i < this.size; i++) {
      const w = new Worker(new URL('./queue-worker.js', import.meta.url), { workerData: { ...this.init, workerIndex: i } satisfies WorkerInit });
      this.workers.push(w);
      this.waiters.push([]);
      this.lastStats.push({ stats: emptyStats(), inflight: 0 });
      w.on('message', (m: FromWorker) => this.onMessage(i, m));
      w.on('error', (err) => {
        this.log.error({ worker: i, err }, 'queue worker failed');
        if (!failed && ready < this.size) {
          failed = true;
          cb(err);
        }
      });
      this.waitFor(i, (m) => m.kind === 'ready', () => {
        if (++ready === this.size && !failed) cb(null);
      });
    }
    this.statsTimer = setInterval(() => this.broadcast({ kind: 'stats' }), 1000);
    this.statsTimer.unref();
  }

  private onMessage(worker: number, m: FromWorker): void {
    if (m.kind === 'broken') return this.onBroken(m.code, m.message);
    if (m.kind === 'stats') {
      this.lastStats[worker] = { stats: m.stats, inflight: m.inflight };
      return;
    }
    const list = this.waiters[worker]!;
    const i = list.findIndex((w) => w(m));
    if (i >= 0) list.splice(i, 1);
  }

  private waitFor(worker: number, match: (m: FromWorker) => boolean, then: (m: FromWorker) => void): void {
    this.waiters[worker]!.push((m) => {
      if (!match(m)) return false;
      then(m);
      return true;
    });
  }

  workerOf(queueIndex: number): number {
    return queueIndex % this.size;
  }

  send(worker: number, m: ToWorker): void {
    this.workers[worker]!.postMessage(m);
  }

  broadcast(m: ToWorker): void {
    for (let i = 0; i < this.size; i++) this.send(i, m);
  }

  /** Sends `m` to every worker and calls `cb` when each answered with a matching message. */
  private all(m: ToWorker, match: (r: FromWorker) => boolean, cb: (errors: string[]) => void): void {
    let pending = this.size;
    const errors: string[] = [];
    for (let i = 0; i < this.size; i++) {
      this.waitFor(i, match, (r) => {
        if ('error' in r && typeof r.error === 'string') errors.push(`worker ${i}: ${r.error}`);
        if (--pending === 0) cb(errors);
      });
      this.send(i, m);
    }
  }

  mapMemory(m: Extract<ToWorker, { kind: 'memory' }>, cb: (errors: string[]) => void): void {
    this.all(m, (r) => r.kind === 'memory-mapped' && r.generation === m.generation, cb);
  }

  mapInflight(m: Extract<ToWorker, { kind: 'inflight' }>, cb: (errors: string[]) => void): void {
    this.all(m, (r) => r.kind === 'inflight-mapped', cb);
  }

  reset(cb: () => void): void {
    this.all({ kind: 'reset' }, (r) => r.kind === 'reset-done', () => cb());
  }

  /** Stops ring `index`; the worker hands back the call fd and reports next avail. */
  stopRing(index: number, cb: (nextAvail: number, callFd: number) => void): void {
    const worker = this.workerOf(index);
    this.waitFor(worker, (r) => r.kind === 'stopped' && r.index === index, (r) => {
      if (r.kind === 'stopped') cb(r.nextAvail, r.callFd);
    });
    this.send(worker, { kind: 'stop', index });
  }

  /** Statistics as of the workers' last report (at most a second old). */
  stats(): { stats: BlkDeviceStats; inflight: number } {
    const total = emptyStats();
    let inflight = 0;
    for (const s of this.lastStats) {
      addStats(total, s.stats);
      inflight += s.inflight;
    }
    return { stats: total, inflight };
  }

  terminate(cb: () => void): void {
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    let pending = this.workers.length;
    if (pending === 0) return cb();
    for (const w of this.workers) void w.terminate().then(() => --pending === 0 && cb());
  }
}
