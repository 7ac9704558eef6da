/**
 * The vhost-user-blk daemon: listens on a Unix socket (QEMU is the client), serves one
 * front-end connection at a time and accepts the next one after a disconnect.
 *
 * A new connection is accepted only after the previous one's in-flight requests have
 * completed, so a late completion can never write into rings a new connection configured.
 * While a connection is active the listening socket is not polled: a second front-end waits
 * in the backlog, as with QEMU's own export.
 */
import fs from 'node:fs';
import { EventEmitter } from 'eventemitter3';
import type { Logger } from 'pino';
import * as native from '../../native/index.js';
import { BlkDevice, addStats, emptyStats, type BlkDeviceStats } from './blk/device.js';
import type { BlockStore } from './block-store/block-store.js';
import { VhostUserConnection } from './vhost-user/connection.js';
import { VhostUserBackend } from './vhost-user/handler.js';
import type { WorkerInit } from './workers/protocol.js';
import { WorkerPool } from './workers/worker-pool.js';

/** How long a graceful stop waits for the guest's requests in flight before disconnecting. */
const SHUTDOWN_DRAIN_MS = 10_000;

export interface VhostDaemonOptions {
  store: BlockStore;
  numQueues: number;
  log: Logger;
  /** Listen on this path (a stale socket file is replaced)… */
  socketPath?: string;
  /** …or on an already listening socket passed by a service manager (--fd). */
  listenFd?: number;
  writeback?: boolean;
  /**
   * Spread queues over this many worker threads (≥ 2); each opens the store itself from
   * `workerStore`. Without it every queue runs on the main event loop.
   */
  workers?: { count: number; store: Omit<WorkerInit, 'workerIndex' | 'numQueues' | 'writeback' | 'logLevel'> };
  /** What is served, reported by `status()` (e.g. a file path or a cluster image). */
  source?: DaemonSource;
}

/** What a daemon serves: one daemon serves one file or one image (docs/e2e.md). */
export type DaemonSource =
  | { kind: 'file'; path: string }
  | { kind: 'image'; pool: string; image: string; id: string; mon: string; client: string };

/** What `GET /status` reports. */
export interface DaemonStatus {
  source?: DaemonSource;
  sizeBytes: number;
  readOnly: boolean;
  numQueues: number;
  connected: boolean;
  connections: number;
  inflight: number;
  broken: boolean;
  stats: BlkDeviceStats;
}

interface DaemonEvents {
  connected: [connectionId: number];
  disconnected: [connectionId: number, err: Error | undefined];
}

export class VhostDaemon extends EventEmitter<DaemonEvents> {
  private listenFd = -1;
  private listenPoller: native.Poller | null = null;
  private active: { id: number; conn: VhostUserConnection; backend: VhostUserBackend; device: BlkDevice } | null = null;
  private connectionCount = 0;
  private stopping = false;
  private pool: WorkerPool | null = null;
  /** Statistics of closed connections, added up. */
  private readonly pastStats: BlkDeviceStats = emptyStats();

  constructor(private readonly opts: VhostDaemonOptions) {
    super();
  }

  /** Binds and starts accepting. Throws if the socket cannot be created (control plane). */
  start(): void {
    if (this.opts.listenFd !== undefined) this.listenFd = this.opts.listenFd;
    else if (this.opts.socketPath !== undefined) this.listenFd = native.unixListen(this.opts.socketPath, 16);
    else throw new Error('either socketPath or listenFd is required');
    this.listenPoller = new native.Poller(this.listenFd, () => this.acceptOne());
    const w = this.opts.workers;
    if (w !== undefined && w.count >= 2) {
      const pool = new WorkerPool(w.count, { ...w.store, numQueues: this.opts.numQueues, writeback: this.opts.writeback ?? true, logLevel: this.opts.log.level }, this.opts.log.child({ component: 'workers' }), (code, message) =>
        this.opts.log.error({ code, reason: message }, 'guest broke the virtqueue protocol in a queue worker; device stopped'),
      );
      this.pool = pool;
      // Why accept only when ready: a ring started before its worker exists would be lost.
      pool.start((err) => {
        if (err) throw new Error('queue workers failed to start', { cause: err });
        this.opts.log.info({ workers: w.count }, 'queue workers ready');
        if (!this.stopping) this.listenPoller?.start(native.READABLE);
      });
    } else {
      this.listenPoller.start(native.READABLE);
    }
    this.opts.log.info({ socketPath: this.opts.socketPath, fd: this.listenFd, sizeBytes: this.opts.store.sizeBytes, numQueues: this.opts.numQueues }, 'listening');
  }

  /** The device of the active connection (for statistics), if any. */
  get device(): BlkDevice | null {
    return this.active?.device ?? null;
  }

  private acceptOne(): void {
    if (this.active !== null || this.stopping) return;
    let fd: number | null;
    try {
      fd = native.accept(this.listenFd);
    } catch (err) {
      this.opts.log.warn({ err }, 'accept failed');
      return;
    }
    if (fd === null) return;
    const id = ++this.connectionCount;
    const log = this.opts.log.child({ component: 'vhost-user', conn: id });
    const conn = new VhostUserConnection(fd, log);
    const deviceOpts = { store: this.opts.store, numQueues: this.opts.numQueues, log, ...(this.opts.writeback === undefined ? {} : { writeback: this.opts.writeback }) };
    const device = new BlkDevice(deviceOpts);
    const backend = new VhostUserBackend(conn, device, log, this.pool);
    this.active = { id, conn, backend, device };
    this.listenPoller?.stop();
    conn.on('close', (err) => this.onClose(id, err));
    backend.start();
    log.info('front-end connected');
    this.emit('connected', id);
  }

  private onClose(id: number, err: Error | undefined): void {
    const active = this.active;
    if (active === null || active.id !== id) return;
    const log = this.opts.log.child({ component: 'vhost-user', conn: id });
    if (err) log.warn({ err }, 'front-end connection closed on error');
    else log.info('front-end disconnected');
    active.backend.teardown(() => {
      addStats(this.pastStats, active.device.stats);
      this.active = null;
      this.emit('disconnected', id, err);
      if (!this.stopping) {
        this.listenPoller?.start(native.READABLE);
        this.acceptOne(); // Why: a client may already be waiting in the backlog.
      }
    });
  }

  status(): DaemonStatus {
    const stats = { ...this.pastStats };
    const active = this.active;
    if (active !== null) addStats(stats, active.device.stats);
    // Workers report cumulative statistics (they outlive connections).
    if (this.pool !== null) addStats(stats, this.pool.stats().stats);
    return {
      ...(this.opts.source === undefined ? {} : { source: this.opts.source }),
      sizeBytes: this.opts.store.sizeBytes,
      readOnly: this.opts.store.readOnly,
      numQueues: this.opts.numQueues,
      connected: active !== null,
      connections: this.connectionCount,
      inflight: active?.backend.inflight ?? 0,
      broken: active?.device.broken ?? false,
      stats,
    };
  }

  /**
   * Online resize: grows the store, updates the device's capacity and tells QEMU through
   * the backend channel (CONFIG_CHANGE_MSG), which raises a config interrupt in the guest.
   * `notified` is false when no front-end is connected or it has no backend channel; the new
   * size is then seen at the next connection.
   */
  resize(sizeBytes: number, cb: (err: Error | null, result?: { sizeBytes: number; notified: boolean }) => void): void {
    const store = this.opts.store;
    if (store.resize === undefined) return cb(Object.assign(new Error('this store cannot be resized'), { code: 'ENOTSUP' }));
    store.resize(sizeBytes, (err) => {
      if (err) return cb(err);
      const active = this.active;
      active?.device.setCapacity(store.sizeBytes);
      this.pool?.broadcast({ kind: 'capacity', sizeBytes: store.sizeBytes });
      const notified = active?.backend.notifyConfigChange() ?? false;
      this.opts.log.info({ sizeBytes: store.sizeBytes, notified }, 'resized');
      cb(null, { sizeBytes: store.sizeBytes, notified });
    });
  }

  /** Stops accepting, closes the connection, waits for in-flight I/O, closes the socket. */
  stop(cb: () => void): void {
    this.stopping = true;
    this.listenPoller?.close();
    this.listenPoller = null;
    const finish = (): void => {
      if (this.listenFd >= 0 && this.opts.listenFd === undefined) {
        fs.closeSync(this.listenFd);
        if (this.opts.socketPath !== undefined) fs.rmSync(this.opts.socketPath, { force: true });
      }
      this.listenFd = -1;
      if (this.pool === null) return cb();
      this.pool.terminate(cb);
    };
    const active = this.active;
    if (active === null) return finish();
    this.once('disconnected', () => finish());
    // Drain first, then disconnect (VhostUserBackend.quiesce says why).
    active.backend.quiesce(SHUTDOWN_DRAIN_MS, () => active.conn.close(undefined));
  }
}
