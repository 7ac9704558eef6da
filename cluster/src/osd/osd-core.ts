/**
 * `OsdCore`: the OSD data path (issue #5) — PG registry, primary-copy replication, peering,
 * recovery/backfill and scrub — over an `ObjectStore` and a `Messenger`, driven by maps.
 *
 * Everything runs to completion on callbacks (GUIDE principle 9): the bin wires real I/O, the
 * simulator can drive the same code with its Env. docs/replication.md explains the design.
 *
 * This file owns the PG registry (loading it, applying maps to it), the 1 s tick, the message
 * handlers and the public API; the work is done by the parts, which reach each other only
 * through the `OsdContext` this class implements (osd-context.ts):
 *
 *   pg.ts           the `Pg` record, client-op records, loading a PG from the store
 *   peers.ts        sessions to other OSDs; peer/admin entity checks
 *   client-ops.ts   MSG_OSD_OP: queueing, per-object order, reads, writes + REPOP, replies
 *   replica.ts      the replica side of the peer messages (REPOP, query, activate, push, pull, scan)
 *   peering.ts      new intervals, peering, the PG-history prior set, log adoption, history records
 *   recovery.ts     pulls, pushes, backfill scans, completion up to active+clean
 *   object-copy.ts  whole-object copies and PG listings on the local store
 *   scrub.ts        scrub, repair and the periodic scrub
 *   pg-report.ts    checked state transitions and the coalesced reports to the monitor
 *   pg-split.ts     PG split: a parent PG hands its children their log entries (pgNum growth)
 *
 *   client ─MSG_OSD_OP─► primary: checks (caps, epoch, role) ─► PG queue (peering / min_size)
 *        ─► per-object order (missing? wait + recover first; read/conditional? wait for in-flight)
 *        ─► version (epoch, seq) ─► ONE txn (data + version + log entry [+ trim])
 *        ─► store.submit ‖ MSG_OSD_REPOP to every other acting OSD ─► all committed ─► reply
 *
 *   map change touching a PG ─► new interval ─► primary: wait local commits, requeue in-flight
 *        ─► QUERY acting ∪ previous acting ∪ up members of the PG history sets
 *        ─► prior set: a member of every history set answered? no ─► DOWN (retry: map / timer)
 *        ─► authoritative log ─► missing sets / backfill
 *        ─► ACTIVATE peers (log + info) ‖ monitor records acting in the PG history
 *        ─► active ─► pull own missing, push peers' missing
 *        ─► ACTIVATE(mode 2) each completed peer ─► active+clean ─► history reset to [acting]
 */
import type { Logger } from 'pino';
import { assert } from '../common/assert.js';
import { clusterErrorFromWire } from '../common/errors.js';
import type { ClusterError, ClusterErrorCode } from '../common/errors.js';
import type { OsdId } from '../common/ids.js';
import { NO_OSD, pgSeed } from '../common/ids.js';
import type { Env, TimerHandle } from '../env/env.js';
import type { ClusterMap } from '../map/cluster-map.js';
import type { Messenger } from '../msg/messenger.js';
import { MsgType } from '../msg/types.js';
import { pgToOsds } from '../placement/placement.js';
import { PG_LOG_MAX, PG_LOG_MIN } from '../pg/pg-log.js';
import type { PgLogBounds } from '../pg/pg-log.js';
import { PgState, pgStateString } from '../pg/pg-state.js';
import type { ObjectStore } from '../store/object-store.js';
import { trimIdleBulk } from '../common/bulk-pool.js';
import { StoreLimits } from '../store/types.js';
import { ClientOps } from './client-ops.js';
import type { OsdContext, OsdCoreStats } from './osd-context.js';
import type { EVersion } from './osd-protocol.js';
import { Peering } from './peering.js';
import { PeerSessions, adminOnly, peerOnly } from './peers.js';
import { Pg, errOf, loadPg, pgKeyOf } from './pg.js';
import { splitLocalPgs } from './pg-split.js';
import { PgReporter } from './pg-report.js';
import { Recovery } from './recovery.js';
import { Replica } from './replica.js';
import { Scrubber } from './scrub.js';
import type { ScrubResult } from './scrub.js';

export type { OsdCoreStats } from './osd-context.js';
export type { ScrubResult } from './scrub.js';

/** Construction options. */
export interface OsdCoreOptions {
  env: Env;
  log: Logger;
  id: OsdId;
  store: ObjectStore;
  msgr: Messenger;
  /** Sends the primary PG states to the monitor (MonClient.reportPgStates). */
  reportPgStates: (states: Record<string, string>) => void;
  /**
   * Records a PG-history change with the monitor (MonClient.pgHistory): `add` the acting set
   * before a new interval accepts writes, `reset` to it once active+clean at full size. `cb`
   * fires after the monitor committed it (or with its error; the OSD retries).
   */
  recordPgHistory: (pgKey: string, op: 'add' | 'reset', set: readonly OsdId[], cb: (err: ClusterError | null) => void) => void;
  /**
   * Sets (`osds` non-empty) or clears (`[]`) a PG's pg_temp with the monitor (MonClient.pgTemp,
   * docs/replication.md §4 step 5a). `cb` fires after the monitor committed it, or with its error.
   */
  requestPgTemp: (pgKey: string, osds: readonly OsdId[], cb: (err: ClusterError | null) => void) => void;
  /** A peer refused our connection (it is gone): report it to the monitor. */
  reportFailure?: (osd: OsdId) => void;
  /** Periodic scrub of one PG every N ms (0 = off, the default). */
  scrubIntervalMs?: number;
  /** Sub-op / peering request timeout (default 10 s). */
  peerTimeoutMs?: number;
  /** Objects recovered concurrently per PG (default 4). */
  recoveryConcurrency?: number;
  /** PG log bounds (default PG_LOG_MIN while clean, PG_LOG_MAX while degraded; the simulator lowers them). */
  pgLogBounds?: PgLogBounds;
}

/** Writes quiet for this long: the tick checkpoints the store (ObjectStore.checkpointIfIdle). */
export const IDLE_CHECKPOINT_MS = 5000;

// Log adoption and a split child must each fit one store transaction (Peering.adoptLog, pg-split.ts).
assert(2 * PG_LOG_MAX + 3 <= StoreLimits.opsPerTxnMax, 'PG log adoption would exceed the store transaction limit');

/** The OSD's data path. */
export class OsdCore {
  private map: ClusterMap | undefined;
  private readonly pgs = new Map<string, Pg>();
  private tickTimer: TimerHandle | undefined;
  private stopped = false;
  readonly stats: OsdCoreStats = { clientOps: 0, repops: 0, recoveredObjects: 0, recoveredBytes: 0, pushesReceived: 0, pushBytesReceived: 0 };
  private readonly env: Env;
  private readonly peers: PeerSessions;
  private readonly reporter: PgReporter;
  private readonly clientOps: ClientOps;
  private readonly replica: Replica;
  private readonly peering: Peering;
  private readonly recovery: Recovery;
  private readonly scrubber: Scrubber;

  constructor(private readonly o: OsdCoreOptions) {
    this.env = o.env;
    this.peers = new PeerSessions({ env: o.env, msgr: o.msgr, map: () => this.map, timeoutMs: o.peerTimeoutMs ?? 10_000, reportFailure: o.reportFailure });
    this.reporter = new PgReporter({
      env: o.env, pgs: this.pgs, report: o.reportPgStates,
      maybeResetHistory: (pg) => this.peering.maybeResetHistory(pg), maybeClearPgTemp: (pg) => this.peering.maybeClearPgTemp(pg),
    });
    const ctx: OsdContext = {
      id: o.id, env: o.env, log: o.log, store: o.store, stats: this.stats, pgs: this.pgs,
      map: () => this.map,
      stopped: () => this.stopped,
      peerRequest: (id, type, payload, data, cb) => this.peers.request(id, type, payload, data, cb),
      setState: (pg, s) => this.reporter.setState(pg, s),
      recordPgHistory: (key, op, set, cb) => o.recordPgHistory(key, op, set, cb),
      requestPgTemp: (key, osds, cb) => o.requestPgTemp(key, osds, cb),
      runQueue: (pg) => this.clientOps.runQueue(pg),
      runObject: (pg, name) => this.clientOps.runObject(pg, name),
      kickAll: (pg) => this.clientOps.kickAll(pg),
      requeueInflight: (pg) => this.clientOps.requeueInflight(pg),
      refuseQueued: (pg) => this.clientOps.refuseQueued(pg),
      stepDown: (pg) => {
        if (pg.role !== 'primary') return;
        o.log.info({ pg: pg.key, interval: pg.interval, seenInterval: pg.seenInterval }, 'a peer runs a newer interval: stepping down until the map catches up');
        pg.peeringGen++;
        this.clientOps.requeueInflight(pg);
        this.reporter.setState(pg, PgState.PEERING);
      },
      startPeering: (pg) => this.peering.startPeering(pg),
      repeer: (pg) => this.peering.repeer(pg),
      adoptLog: (pg, info, entries, tail, cb) => this.peering.adoptLog(pg, info, entries, tail, cb),
      maybeResetHistory: (pg) => this.peering.maybeResetHistory(pg),
      maybeClearPgTemp: (pg) => this.peering.maybeClearPgTemp(pg),
      recover: (pg) => this.recovery.recover(pg),
      recoverSoon: (pg, name) => this.recovery.recoverSoon(pg, name),
      scanPeer: (pg, osd, withCrc, cb) => this.recovery.scanPeer(pg, osd, withCrc, cb),
    };
    const bounds = o.pgLogBounds ?? { min: PG_LOG_MIN, max: PG_LOG_MAX };
    assert(bounds.min >= 1 && bounds.min <= bounds.max && bounds.max <= PG_LOG_MAX, `bad PG log bounds ${bounds.min}/${bounds.max}`);
    this.clientOps = new ClientOps(ctx, bounds);
    this.replica = new Replica(ctx);
    this.peering = new Peering(ctx);
    this.recovery = new Recovery(ctx, o.recoveryConcurrency ?? 4);
    this.scrubber = new Scrubber(ctx, o.scrubIntervalMs ?? 0);
    const m = o.msgr;
    const r = this.replica;
    m.handle(MsgType.MSG_OSD_OP, (req, s) => this.clientOps.onClientOp(req, s));
    m.handle(MsgType.MSG_OSD_REPOP, (req, s) => peerOnly(req, s, () => r.onRepOp(req, s)));
    m.handle(MsgType.MSG_OSD_PG_QUERY, (req, s) => peerOnly(req, s, () => r.onQuery(req, s)));
    m.handle(MsgType.MSG_OSD_PG_ACTIVATE, (req, s) => peerOnly(req, s, () => r.onActivate(req, s)));
    m.handle(MsgType.MSG_OSD_PG_PUSH, (req, s) => peerOnly(req, s, () => r.onPush(req, s)));
    m.handle(MsgType.MSG_OSD_PG_PULL, (req, s) => peerOnly(req, s, () => r.onLocalRead(req, s)));
    m.handle(MsgType.MSG_OSD_PG_SCAN, (req, s) => peerOnly(req, s, () => r.onScan(req, s)));
    m.handle(MsgType.MSG_OSD_LOCAL_READ, (req, s) => adminOnly(req, s, () => r.onLocalRead(req, s)));
    m.handle(MsgType.MSG_OSD_PG_SCRUB, (req, s) => adminOnly(req, s, () => this.scrubber.onScrubRequest(req, s)));
    this.loadPgs();
    this.tick();
    this.scrubber.start();
  }

  /** Stops timers and closes peer sessions (the store is the caller's). */
  stop(): void {
    this.stopped = true;
    this.reporter.stop();
    if (this.tickTimer !== undefined) this.env.clearTimeout(this.tickTimer);
    this.scrubber.stop();
    this.peers.stop();
  }

  /** PG states of the PGs this OSD is primary for (tests, status). */
  pgStates(): Record<string, string> {
    return this.reporter.pgStates();
  }

  private loadPgs(): void {
    for (const key of this.o.store.pgKeys()) {
      const pg = loadPg(this.o.store, key);
      if (pg !== undefined) this.pgs.set(key, pg);
    }
    this.o.log.info({ pgs: this.pgs.size }, 'loaded pgs');
  }

  /** Applies a new map: recomputes every PG's acting set; new intervals start peering. */
  handleMap(map: ClusterMap): void {
    if (this.map !== undefined && map.epoch <= this.map.epoch) return;
    const prev = this.map;
    this.map = map;
    // PG split first: children must exist (with their part of the log) before any PG peers.
    splitLocalPgs({ log: this.o.log, store: this.o.store, pgs: this.pgs }, map);
    this.peers.dropStale(map);
    const me = map.osds.get(this.o.id);
    const iAmUp = me !== undefined && me.up;
    const touched = new Set<string>();
    for (const pool of map.pools.values()) {
      // A pgNum change is a new interval for every PG of the pool (Ceph does the same): the
      // parent's queued ops and logs must not outlive the split (docs/replication.md §4).
      const prevPgNum = prev?.pools.get(pool.id)?.pgNum;
      const split = prevPgNum !== undefined && prevPgNum !== pool.pgNum;
      for (let seed = 0; seed < pool.pgNum; seed++) {
        const key = pgKeyOf(pool.id, seed);
        const mapping = pgToOsds(map, { pool: pool.id, seed: pgSeed(seed) });
        const inActing = iAmUp && mapping.acting.includes(this.o.id);
        let pg = this.pgs.get(key);
        if (pg === undefined && !inActing) continue;
        if (pg === undefined) { pg = new Pg(key, pool.id, seed); pg.pgNum = pool.pgNum; this.pgs.set(key, pg); }
        touched.add(key);
        // Why: peer messages of an interval from before the split (built on the old pgNum: an
        // unsplit log, a moved object's sub-op) must not apply to the split PGs (sim seeds
        // 0x33e7e92f0b82100a, 0xc36cd00c5398867e). The split happened after our previous map,
        // so intervals up to its epoch are stale; a skipped-map gap is left to replica.ts `movedOut`.
        if (split && prev !== undefined) pg.seenInterval = Math.max(pg.seenInterval, prev.epoch + 1);
        this.peering.updatePg(pg, pool, mapping.acting as OsdId[], mapping.primary, map.epoch, inActing, split, mapping.up);
      }
    }
    for (const pg of this.pgs.values()) {
      if (!touched.has(pg.key) && pg.role !== 'stray') this.peering.updatePg(pg, undefined, [], NO_OSD, map.epoch, false);
    }
    // A PG blocked by its prior set retries on every map: a waited-for OSD may be up now.
    for (const pg of this.pgs.values()) if (pg.blockedSets !== undefined) this.peering.retryBlocked(pg);
    // Ops that waited for this map, then peer messages that did (replica.ts).
    this.clientOps.retryMapWaits();
    this.replica.mapArrived(map.epoch);
    this.reporter.scheduleReport();
  }

  /** Periodic: queued ops time out (UNAVAILABLE), map waits expire, states are re-reported. */
  private tick(): void {
    if (this.stopped) return;
    this.tickTimer = this.env.setTimeout(() => this.tick(), 1000);
    this.clientOps.expireQueued();
    this.clientOps.retryMapWaits();
    for (const pg of this.pgs.values()) { this.peering.maybeResetHistory(pg); this.peering.maybeClearPgTemp(pg); }
    this.reporter.scheduleReport();
    // Memory goes back when the load stops: resident blocks after a quiet spell, free frame
    // buffers of sizes no longer received.
    this.o.store.checkpointIfIdle(IDLE_CHECKPOINT_MS);
    trimIdleBulk();
  }

  /** Scrub result (JSON to the CLI). */
  scrub(pg: Pg, repair: boolean, cb: (err: ClusterError | null, result?: ScrubResult) => void): void {
    this.scrubber.scrub(pg, repair, cb);
  }

  /** For tests: the PG object by key. */
  pgForTest(key: string): { state: string; role: string; logLength: number; head: EVersion; waitingFor: OsdId[] } | undefined {
    const pg = this.pgs.get(key);
    const waitingFor = [...new Set((pg?.blockedSets ?? []).flat())].sort((a, b) => a - b);
    return pg === undefined ? undefined : { state: pgStateString(pg.state), role: pg.role, logLength: pg.log.entries.length, head: pg.log.head, waitingFor };
  }

  /** Scrubs a PG by key (the admin path without a session). */
  scrubPg(key: string, repair: boolean, cb: (err: ClusterError | null, result?: ScrubResult) => void): void {
    const pg = this.pgs.get(key);
    if (pg === undefined || pg.role !== 'primary') { cb(errOf('CLU_ERR_WRONG_TARGET', `not primary for ${key}`)); return; }
    this.scrubber.scrub(pg, repair, cb);
  }
}

/** Wire result → code (for clients and tests). */
export function resultCode(result: number): ClusterErrorCode | 'OK' | 'UNKNOWN' {
  return result === 0 ? 'OK' : clusterErrorFromWire(result) ?? 'UNKNOWN';
}
