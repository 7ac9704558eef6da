/**
 * The simulated network (after TigerBeetle's packet_simulator.zig, adapted to streams):
 * implements `Net` between simulated processes, each with its own host name.
 *
 * The stream abstraction is TCP-like, so faults are modelled as TCP shows them, never as
 * silently missing bytes inside a stream:
 * - delay: each write reaches the peer after `min + exponential(mean)` ms, but never before
 *   the previous write of the same direction (in-order streams); different connections are
 *   independent, so messages reorder only ACROSS connections;
 * - chunking: a delivery may be split into several `onData` calls at random boundaries;
 * - loss: with `resetProb` per delivery the connection is reset (both ends see ECONNRESET),
 *   the way a lossy path shows up to an application above TCP;
 * - partitions and clogs: a blocked direction stalls (bytes stay queued in the "kernel");
 *   healing delivers them in order; a stall longer than `tcpTimeoutMs` resets the connection
 *   (TCP's user timeout). Connects across a blocked path retransmit SYN at 1, 3, 7, 15 s and
 *   then fail with ETIMEDOUT;
 * - a connect to a process that is down, or to a port nobody listens on, fails with
 *   ECONNREFUSED after a round trip; killing a process resets its connections (its kernel
 *   sends RST).
 *
 * Every callback into a process is an event owned by that process (so a paused process
 * receives nothing until it resumes, and a killed one nothing at all).
 */
import type { Net, NetError, NetServer, NetSocket } from '../src/env/net.js';
import type { Scheduler } from './scheduler.js';
import type { SimRng } from './rng.js';
import type { SimProcess } from './process.js';

/** Network tunables (ms and probabilities). */
export interface NetProfile {
  delayMinMs: number;
  delayMeanMs: number;
  /** Probability that a delivery resets its connection instead. */
  resetProb: number;
  /** Probability that a delivery is split into several chunks. */
  splitProb: number;
  /** Bytes queued per direction before `write` returns false. */
  highWaterBytes: number;
  /** A direction stalled this long resets the connection. */
  tcpTimeoutMs: number;
}

export const DEFAULT_NET_PROFILE: NetProfile = {
  delayMinMs: 0.05, delayMeanMs: 0.1, resetProb: 0, splitProb: 0.1, highWaterBytes: 4 * 1024 * 1024, tcpTimeoutMs: 20_000,
};

const SYN_RETRY_MS = [1000, 2000, 4000, 8000];

interface Listener { proc: SimProcess; incarnation: number; onConnection: (s: NetSocket) => void; port: number }

interface Direction {
  queue: { bytes: Uint8Array | null; readyAtMs: number }[]; // null = FIN
  lastReadyMs: number;
  queuedBytes: number;
  pumpScheduled: boolean;
  stalledSinceMs: number | null;
  needDrain: boolean;
}

function newDirection(): Direction {
  return { queue: [], lastReadyMs: 0, queuedBytes: 0, pumpScheduled: false, stalledSinceMs: null, needDrain: false };
}

function netErr(code: string, message: string): NetError {
  const e = new Error(`${code}: ${message}`) as NetError;
  e.code = code;
  return e;
}

/** One end of a simulated connection. */
class SimSocket implements NetSocket {
  peer!: SimSocket;
  /** Bytes this end sends. */
  readonly out: Direction = newDirection();
  private dataCb: ((chunk: Uint8Array) => void) | null = null;
  private drainCb: (() => void) | null = null;
  private closeCb: ((err: Error | undefined) => void) | null = null;
  /** No more writes from this end (close/destroy called, or reset). */
  writeClosed = false;
  /** onClose delivered or scheduled. */
  closeScheduled = false;
  closed = false;

  constructor(readonly network: SimNetwork, readonly proc: SimProcess, readonly incarnation: number, readonly remoteAddress: string) {}

  write(chunks: readonly Uint8Array[]): boolean {
    if (this.writeClosed || this.closed) return false;
    let n = 0;
    for (const c of chunks) n += c.length;
    const bytes = new Uint8Array(n);
    let off = 0;
    for (const c of chunks) { bytes.set(c, off); off += c.length; }
    this.network.transmit(this, bytes);
    const ok = this.out.queuedBytes < this.network.profile.highWaterBytes;
    if (!ok) this.out.needDrain = true;
    return ok;
  }

  onData(cb: (chunk: Uint8Array) => void): void { this.dataCb = cb; }
  onDrain(cb: () => void): void { this.drainCb = cb; }
  onClose(cb: (err: Error | undefined) => void): void { this.closeCb = cb; }

  close(): void {
    if (this.writeClosed || this.closed) return;
    this.writeClosed = true;
    this.network.transmit(this, null);
    // Real sockets give up after a grace (real-net.ts CLOSE_GRACE_MS) if the FIN is not answered.
    this.network.sched.after(2000, this.proc, `${this.proc.name} sock close grace`, () => this.fireClose(undefined));
  }

  destroy(): void {
    if (this.closed) return;
    const wasOpen = !this.writeClosed;
    this.writeClosed = true;
    this.out.queue.length = 0;
    this.out.queuedBytes = 0;
    this.scheduleClose(undefined, 0);
    if (wasOpen || !this.peer.closeScheduled) this.network.sendReset(this.peer, this.proc.host);
  }

  /** Delivers bytes to the application (called inside an event of this end's process). */
  deliver(bytes: Uint8Array): void {
    if (this.closed || this.closeScheduled) return;
    this.dataCb?.(bytes);
  }

  drained(): void {
    if (this.closed || !this.out.needDrain) return;
    this.out.needDrain = false;
    this.drainCb?.();
  }

  scheduleClose(err: Error | undefined, delayMs: number): void {
    if (this.closeScheduled || this.closed) return;
    this.closeScheduled = true;
    this.writeClosed = true;
    this.network.sched.after(delayMs, this.proc, `${this.proc.name} sock closed`, () => this.fireClose(err));
  }

  fireClose(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.closeScheduled = true;
    this.writeClosed = true;
    this.network.forget(this);
    this.closeCb?.(err);
  }
}

/** The network between simulated processes. */
export class SimNetwork {
  private readonly hosts = new Map<string, SimProcess>();
  private readonly listeners = new Map<string, Listener>();
  private readonly sockets = new Set<SimSocket>();
  /** Blocked directions "from>to" (host names) by partitions. */
  private readonly blocked = new Set<string>();
  /** Clogged directions "from>to" → until (ms). */
  private readonly clogged = new Map<string, number>();
  private nextPort = 40000;
  readonly stats = { connects: 0, refused: 0, resets: 0, bytes: 0 };

  constructor(readonly sched: Scheduler, private readonly rng: SimRng, public profile: NetProfile = DEFAULT_NET_PROFILE) {}

  /** Registers a process's host name. */
  addHost(proc: SimProcess): void {
    this.hosts.set(proc.host, proc);
  }

  /** The `Net` a process uses (bound to its current incarnation). */
  netFor(proc: SimProcess): Net {
    return {
      listen: (host, port, onConnection, cb) => this.listen(proc, host, port, onConnection, cb),
      connect: (host, port, cb) => this.connect(proc, host, port, cb),
    };
  }

  // ───────────────────────── faults ─────────────────────────

  /** Blocks traffic from every host in `a` to every host in `b` (and back when symmetric). */
  partition(a: readonly string[], b: readonly string[], symmetric = true): void {
    for (const x of a) for (const y of b) {
      this.blocked.add(`${x}>${y}`);
      if (symmetric) this.blocked.add(`${y}>${x}`);
    }
  }

  /** Removes every partition and delivers what stalled. */
  healPartitions(): void {
    this.blocked.clear();
    this.kickStalled();
  }

  /** End of the fault phase: removes every partition and every clog, delivers what stalled. */
  healAll(): void {
    this.clogged.clear();
    this.healPartitions();
  }

  /** Clogs the direction from → to until `now + durationMs` (deliveries wait). */
  clog(from: string, to: string, durationMs: number): void {
    const until = this.sched.now + durationMs;
    this.clogged.set(`${from}>${to}`, Math.max(until, this.clogged.get(`${from}>${to}`) ?? 0));
    this.sched.at(until, null, 'net unclog', () => {
      if ((this.clogged.get(`${from}>${to}`) ?? 0) <= this.sched.now) this.clogged.delete(`${from}>${to}`);
      this.kickStalled();
    });
  }

  /** True when nothing is partitioned or clogged. */
  get healthy(): boolean {
    return this.blocked.size === 0 && this.clogged.size === 0;
  }

  /** Human-readable current blocks (for logs). */
  describeBlocks(): string[] {
    return [...this.blocked, ...[...this.clogged.keys()].map((k) => `clog ${k}`)].sort();
  }

  isBlocked(from: string, to: string): boolean {
    if (from === to) return false;
    const key = `${from}>${to}`;
    if (this.blocked.has(key)) return true;
    const until = this.clogged.get(key);
    return until !== undefined && until > this.sched.now;
  }

  /** A process died (kill -9): its listeners vanish, its peers receive RSTs. */
  processDied(proc: SimProcess): void {
    for (const [k, l] of this.listeners) if (l.proc === proc) this.listeners.delete(k);
    for (const s of [...this.sockets]) {
      if (s.proc !== proc) continue;
      s.closed = true;
      this.sockets.delete(s);
      if (!s.peer.closed) this.sendReset(s.peer, proc.host);
    }
  }

  /** Resets one random established connection (a lossy path). Returns false when none. */
  resetRandomConnection(): boolean {
    const open = [...this.sockets].filter((s) => !s.writeClosed && !s.closed);
    if (open.length === 0) return false;
    const s = this.rng.pick(open);
    this.resetBoth(s, 'ECONNRESET');
    return true;
  }

  // ───────────────────────── internals ─────────────────────────

  private delay(): number {
    return this.profile.delayMinMs + this.rng.exponential(this.profile.delayMeanMs);
  }

  private listen(proc: SimProcess, host: string, port: number, onConnection: (s: NetSocket) => void, cb: (err: Error | null, server?: NetServer) => void): void {
    const incarnation = proc.incarnation;
    this.sched.after(0, proc, `${proc.name} listen`, () => {
      if (host !== proc.host && host !== '0.0.0.0') { cb(netErr('EADDRNOTAVAIL', `${host} is not ${proc.host}`)); return; }
      const bound = port === 0 ? this.nextPort++ : port;
      const key = `${proc.host}:${bound}`;
      const prior = this.listeners.get(key);
      if (prior !== undefined && prior.proc.incarnation === prior.incarnation && prior.proc.alive) { cb(netErr('EADDRINUSE', key)); return; }
      const l: Listener = { proc, incarnation, onConnection, port: bound };
      this.listeners.set(key, l);
      cb(null, { port: bound, close: () => { if (this.listeners.get(key) === l) this.listeners.delete(key); } });
    });
  }

  private connect(proc: SimProcess, host: string, port: number, cb: (err: NetError | null, socket?: NetSocket) => void): void {
    this.stats.connects++;
    this.attemptSyn(proc, proc.incarnation, host, port, 0, cb);
  }

  private attemptSyn(proc: SimProcess, incarnation: number, host: string, port: number, attempt: number, cb: (err: NetError | null, socket?: NetSocket) => void): void {
    const there = this.delay();
    this.sched.after(there, null, 'net syn', () => {
      if (proc.incarnation !== incarnation) return;
      const target = this.hosts.get(host);
      const lost = target !== undefined && (this.isBlocked(proc.host, host) || this.isBlocked(host, proc.host));
      if (lost) {
        const wait = SYN_RETRY_MS[attempt];
        if (wait === undefined) {
          this.sched.after(0, proc, `${proc.name} connect timeout`, () => cb(netErr('ETIMEDOUT', `connect ${host}:${port}`)));
          return;
        }
        this.sched.after(wait, null, 'net syn retry', () => this.attemptSyn(proc, incarnation, host, port, attempt + 1, cb));
        return;
      }
      const l = this.listeners.get(`${host}:${port}`);
      const back = this.delay();
      if (target === undefined || l === undefined || !l.proc.alive || l.proc.incarnation !== l.incarnation) {
        this.stats.refused++;
        this.sched.after(back, proc, `${proc.name} connect refused`, () => cb(netErr('ECONNREFUSED', `connect ${host}:${port}`)));
        return;
      }
      const client = new SimSocket(this, proc, incarnation, `${host}:${port}`);
      const server = new SimSocket(this, l.proc, l.incarnation, `${proc.host}:${this.nextPort++}`);
      client.peer = server;
      server.peer = client;
      client.out.lastReadyMs = this.sched.now + back;
      this.sockets.add(client);
      this.sockets.add(server);
      this.sched.after(0, l.proc, `${l.proc.name} accept`, () => { if (!server.closed) l.onConnection(server); });
      this.sched.after(back, proc, `${proc.name} connected`, () => {
        if (client.closed || client.closeScheduled) { cb(netErr('ECONNRESET', `connect ${host}:${port}`)); return; }
        cb(null, client);
      });
    });
  }

  /** Queues bytes (or a FIN when null) from `from` to its peer. */
  transmit(from: SimSocket, bytes: Uint8Array | null): void {
    const dir = from.out;
    const readyAtMs = Math.max(this.sched.now + this.delay(), dir.lastReadyMs);
    dir.lastReadyMs = readyAtMs;
    dir.queue.push({ bytes, readyAtMs });
    if (bytes !== null) { dir.queuedBytes += bytes.length; this.stats.bytes += bytes.length; }
    this.schedulePump(from);
  }

  private schedulePump(from: SimSocket): void {
    const dir = from.out;
    const head = dir.queue[0];
    if (dir.pumpScheduled || head === undefined || dir.stalledSinceMs !== null) return;
    dir.pumpScheduled = true;
    const to = from.peer;
    this.sched.at(head.readyAtMs, to.proc, `${to.proc.name} net rx`, () => this.pump(from));
  }

  private pump(from: SimSocket): void {
    const dir = from.out;
    dir.pumpScheduled = false;
    const to = from.peer;
    if (to.closed || to.closeScheduled) { dir.queue.length = 0; dir.queuedBytes = 0; return; }
    if (this.isBlocked(from.proc.host, to.proc.host)) {
      dir.stalledSinceMs = this.sched.now;
      const since = dir.stalledSinceMs;
      this.sched.after(this.profile.tcpTimeoutMs, null, 'net tcp timeout', () => {
        if (dir.stalledSinceMs === since && !to.closed) this.resetBoth(from, 'ETIMEDOUT');
      });
      return;
    }
    if (this.profile.resetProb > 0 && this.rng.chance(this.profile.resetProb)) { this.resetBoth(from, 'ECONNRESET'); return; }
    const now = this.sched.now;
    let delivered = 0;
    while (dir.queue.length > 0 && dir.queue[0]!.readyAtMs <= now) {
      const item = dir.queue.shift()!;
      if (item.bytes === null) {
        // FIN: the peer's stream ends; it closes too, and our close completes a round trip later.
        to.scheduleClose(undefined, 0);
        if (!from.closed) from.scheduleClose(undefined, this.delay());
        dir.queue.length = 0;
        break;
      }
      delivered += item.bytes.length;
      this.deliverChunks(to, item.bytes);
      if (to.closed || to.closeScheduled) break;
    }
    dir.queuedBytes -= delivered;
    if (delivered > 0 && dir.needDrain && dir.queuedBytes < this.profile.highWaterBytes / 2) {
      this.sched.after(0, from.proc, `${from.proc.name} net drain`, () => from.drained());
    }
    this.schedulePump(from);
  }

  private deliverChunks(to: SimSocket, bytes: Uint8Array): void {
    if (bytes.length > 1 && this.rng.chance(this.profile.splitProb)) {
      const cut = 1 + this.rng.int(bytes.length - 1);
      to.deliver(bytes.subarray(0, cut));
      to.deliver(bytes.subarray(cut));
      return;
    }
    to.deliver(bytes);
  }

  private kickStalled(): void {
    const now = this.sched.now;
    for (const s of this.sockets) {
      const dir = s.out;
      if (dir.stalledSinceMs === null || this.isBlocked(s.proc.host, s.peer.proc.host)) continue;
      dir.stalledSinceMs = null;
      let t = now;
      for (const item of dir.queue) { t = Math.max(t + 0.01, now + this.delay(), item.readyAtMs); item.readyAtMs = t; }
      dir.lastReadyMs = Math.max(dir.lastReadyMs, t);
      this.schedulePump(s);
    }
  }

  /** The peer of a dead or destroyed end receives an RST (after a delay, or after the TCP timeout if the path is blocked). */
  sendReset(to: SimSocket, fromHost: string): void {
    const delayMs = this.isBlocked(fromHost, to.proc.host) ? this.profile.tcpTimeoutMs : this.delay();
    to.scheduleClose(netErr('ECONNRESET', `reset by ${fromHost}`), delayMs);
  }

  private resetBoth(s: SimSocket, code: string): void {
    this.stats.resets++;
    for (const end of [s, s.peer]) {
      end.out.queue.length = 0;
      end.out.queuedBytes = 0;
      end.scheduleClose(netErr(code, 'connection reset'), 0);
    }
  }

  forget(s: SimSocket): void {
    this.sockets.delete(s);
  }
}
