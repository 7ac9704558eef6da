/**
 * The monitor's core state machine: no network, no awaits. Inputs are method calls (from the
 * messenger glue or the CLI handler) and env timers; outputs are callbacks: per-request
 * completion callbacks, and map pushes to subscribers. A later engineer wires it to the
 * messenger; the simulator drives it directly.
 *
 * OSD lifecycle as the monitor sees it:
 *
 *        boot (new uuid → allocate id)
 *   (none) ─────────────► up+in ◄──────────────────────────┐
 *                          │  no beacon > osdGraceMs,      │ boot
 *                          │  connection refused report,   │ (re-marks in unless
 *                          │  ≥ N peer timeout reports     │  an admin set it out)
 *                          ▼                               │
 *                       down+in ──── downOutIntervalMs ──► down+out (autoOut)
 *
 * Auto-out is the map's `OsdInfo.autoOut` (Ceph's CEPH_OSD_AUTOOUT), committed in the same
 * epoch as the out, so it survives a monitor restart whatever store holds the map: a boot
 * marks an auto-out OSD in again; an operator's `osd out` (or `in`) clears the bit, so their
 * out sticks across boots.
 *
 * Proposals: accepted changes are staged as map ops on a projected map (committed map + the
 * proposal in flight + pending ops), so each request is validated against everything before
 * it. Pending ops are batched into ONE new epoch per proposal: at most one proposal every
 * `proposalIntervalMs`, proposed on the next turn when the monitor has been idle longer than
 * that. A request's callback fires after the epoch holding its change is durable.
 *
 * Balancer (placement/balancer.ts): `balancerRun` computes pg_upmap_items ops on the
 * projected map and stages them like any admin change (so they land in one new epoch with
 * whatever else is pending). With `balancerAuto`, `tick` runs it once the map has settled:
 * no pending or in-flight proposal, no map change for `balancerSettleMs`, no OSD down+in
 * (a degraded cluster is recovering; moving data then only adds work), and the committed
 * epoch not yet balanced. Auto runs move at most `balancerAutoMaxChanges` replicas each, so
 * a big imbalance is worked off in paced steps.
 */
import { assert } from '../common/assert.js';
import { ClusterError } from '../common/errors.js';
import type { Epoch, OsdId, PoolId } from '../common/ids.js';
import type { Env, TimerHandle } from '../env/env.js';
import { WEIGHT_ONE, osdTreeRows, poolByName } from '../map/cluster-map.js';
import type { ClusterMap, OsdInfo, OsdLocation, OsdTreeRow, PoolInfo } from '../map/cluster-map.js';
import { applyIncremental, historyHasSet, historyIsOnly, sameHistorySet } from '../map/incremental.js';
import type { Incremental, MapOp, OsdChanges, PoolChanges } from '../map/incremental.js';
import { makePool } from '../map/map-builder.js';
import type { PoolSpec } from '../map/map-builder.js';
import { parsePgId, pgIdToString } from '../common/ids.js';
import { pgToOsds } from '../placement/placement.js';
import { splitHistoryOps } from '../placement/pg-split.js';
import { computeUpmaps, poolBalances } from '../placement/balancer.js';
import type { BalancerOptions, PoolBalance } from '../placement/balancer.js';
import { FailureDetector } from './failure-detector.js';
import { checkPgTempRequest, staleTempOps } from './pg-temp.js';
import { listPgs, resolvePg, resolvePool } from './pg-list.js';
import type { PgReport, PgRow } from './pg-list.js';
import type { MonStore } from './mon-store.js';
import { computeStatus } from './mon-status.js';
import type { MonStatus } from './mon-status.js';

/** Options of the monitor core; all times in ms. */
export interface MonitorCoreOptions {
  env: Env;
  store: MonStore;
  /** Cluster id used when the store is empty; generated from env.rng when omitted. */
  fsid?: string;
  osdGraceMs?: number;
  downOutIntervalMs?: number;
  proposalIntervalMs?: number;
  minDownReporters?: number;
  /** Beyond this many incrementals a subscriber gets a full map instead. */
  maxIncrementalsPerPush?: number;
  /** Run the upmap balancer by itself after map changes settle (default false). */
  balancerAuto?: boolean;
  /** Quiet time after the last map change before an automatic run (default 60 s). */
  balancerSettleMs?: number;
  /** Replica moves per automatic run (default 50). */
  balancerAutoMaxChanges?: number;
  /** Called once when the store fails: the process must exit (state is no longer trusted). */
  onFatal?: (err: Error) => void;
  /**
   * `strata pg ls` shows a PG `stale+…` when its primary's last report is older than this
   * (primaries re-report every second); default `osdGraceMs`.
   */
  pgReportStaleMs?: number;
}

/** What a subscriber receives. */
export type MapUpdate =
  | { readonly kind: 'incrementals'; readonly incrementals: readonly Incremental[] }
  | { readonly kind: 'full'; readonly map: ClusterMap };

/** Handle returned by `subscribe`. */
export interface Subscription {
  unsubscribe(): void;
}

/** OSD boot request. */
export interface OsdBootRequest {
  readonly uuid: string;
  /** "host:port" where the OSD listens. */
  readonly addr: string;
  readonly location: OsdLocation;
  /** Requested id (must match the uuid's existing id); omitted for a new OSD. */
  readonly osdId?: number;
  /** CRUSH weight for a new OSD (16.16); default 1.0. */
  readonly weight?: number;
}

/** Failure report kinds; see failure-detector.ts for the rules. */
export type FailureKind = 'refused' | 'timeout';

/** Completion callback with the epoch that made the change durable. */
export type EpochCallback<T = object> = (err: ClusterError | null, result?: T & { epoch: Epoch }) => void;

interface Waiter { readonly cb: (err: ClusterError | null, epoch: Epoch) => void }

/** Outcome of a balancer run (`strata balancer run`). */
export interface BalancerRunResult {
  /** Replica moves staged (each moves one PG replica's data). */
  readonly moves: number;
  /** PGs whose dead pairs were dropped (no data moves). */
  readonly cleaned: number;
  /** PGs whose pg_upmap_items changed (= map ops). */
  readonly changedPgs: number;
  /** Worst |count − target| in replicas per pool, before and after. */
  readonly before: readonly { pool: number; name: string; maxDeviation: number; maxDeviationPct: number }[];
  readonly after: readonly { pool: number; name: string; maxDeviation: number; maxDeviationPct: number }[];
}

/** `strata balancer status`. */
export interface BalancerStatus {
  readonly epoch: Epoch;
  readonly auto: boolean;
  /** Epoch of the last balancer change, 0 when none since start. */
  readonly lastRunEpoch: number;
  readonly pools: readonly PoolBalance[];
}

/** The monitor state machine. */
export class MonitorCore {
  private readonly env: Env;
  private readonly store: MonStore;
  private readonly options: Required<Omit<MonitorCoreOptions, 'env' | 'store' | 'fsid' | 'onFatal'>>;
  /** When the committed map last changed (for the balancer's settle time). */
  private lastMapChangeMs = 0;
  /** Committed epoch the automatic balancer found nothing (more) to do at. */
  private balancedEpoch = 0;
  private lastBalancerEpoch = 0;
  /**
   * The map the balancer last left (in memory only): its best guess of where the data is,
   * so a re-run prefers moves that send replicas back or redirect ones already moving.
   */
  private balancerReference: ClusterMap | undefined;
  private readonly detector: FailureDetector;
  private committed: ClusterMap | undefined;
  private projected: ClusterMap | undefined;
  private pendingOps: MapOp[] = [];
  private pendingWaiters: Waiter[] = [];
  private inflight = false;
  private proposalTimer: TimerHandle | undefined;
  private tickTimer: TimerHandle | undefined;
  private lastProposalMs = -Infinity;
  private readonly subscribers = new Set<{ haveEpoch: number; cb: (u: MapUpdate) => void }>();
  private readonly pgStates = new Map<string, PgReport>();
  private fatal: Error | undefined;

  constructor(private readonly init: MonitorCoreOptions) {
    this.env = init.env;
    this.store = init.store;
    this.options = {
      osdGraceMs: init.osdGraceMs ?? 3000,
      downOutIntervalMs: init.downOutIntervalMs ?? 600_000,
      proposalIntervalMs: init.proposalIntervalMs ?? 50,
      minDownReporters: init.minDownReporters ?? 2,
      maxIncrementalsPerPush: init.maxIncrementalsPerPush ?? 100,
      balancerAuto: init.balancerAuto ?? false,
      balancerSettleMs: init.balancerSettleMs ?? 60_000,
      balancerAutoMaxChanges: init.balancerAutoMaxChanges ?? 50,
      pgReportStaleMs: init.pgReportStaleMs ?? init.osdGraceMs ?? 3000,
    };
    this.detector = new FailureDetector(this.options);
  }

  /** Starts on an opened store; creates epoch 1 when the store is empty. */
  start(cb: (err: ClusterError | null) => void): void {
    const map = this.store.latestMap();
    const finish = (): void => {
      this.lastMapChangeMs = this.env.nowMs();
      this.scheduleTick();
      this.env.log.info({ epoch: this.committed?.epoch }, 'monitor started');
      cb(null);
    };
    if (map !== undefined) {
      this.committed = map;
      this.projected = map;
      this.env.setImmediate(finish);
      return;
    }
    const fsid = this.init.fsid ?? uuidFromBytes(this.env.rng.bytes(16));
    const inc: Incremental = { epoch: 1 as Epoch, fsid, modifiedMs: this.env.wallMs(), ops: [] };
    this.store.commit({ incremental: inc }, (err) => {
      if (err) return cb(asClusterError(err));
      this.committed = this.store.latestMap();
      this.projected = this.committed;
      finish();
    });
  }

  /** Stops timers; pending requests stay unanswered (the process is going away). */
  stop(): void {
    if (this.tickTimer !== undefined) this.env.clearTimeout(this.tickTimer);
    if (this.proposalTimer !== undefined) this.env.clearTimeout(this.proposalTimer);
    this.tickTimer = undefined;
    this.proposalTimer = undefined;
  }

  // ───────────────────────────── queries (synchronous) ─────────────────────────────

  /** The latest committed map. */
  map(): ClusterMap {
    assert(this.committed !== undefined, 'monitor not started');
    return this.committed;
  }

  /** Pools of the committed map, by id. */
  poolLs(): PoolInfo[] {
    return [...this.map().pools.values()].sort((a, b) => a.id - b.id);
  }

  /** `strata osd tree` rows. */
  osdTree(): OsdTreeRow[] {
    return osdTreeRows(this.map());
  }

  /** `strata status`. */
  status(): MonStatus {
    const map = this.map();
    const reported = new Map<string, string>();
    // A report from an OSD that is no longer the PG's primary is stale: the PG counts as
    // unreported until its new primary speaks.
    for (const [pg, s] of this.pgStates) if (this.primaryOf(map, pg) === s.osd) reported.set(pg, s.state);
    return computeStatus(map, reported);
  }

  /**
   * `strata pg ls [POOL] [--state WORD]`: one row per PG of the committed map (pg-list.ts for
   * what the state means). `CLU_ERR_NOT_FOUND` for an unknown pool.
   */
  pgLs(o: { pool?: string; state?: string } = {}): { epoch: Epoch; staleMs: number; pgs: PgRow[] } | ClusterError {
    const map = this.map();
    const pool = o.pool === undefined ? undefined : resolvePool(map, o.pool);
    if (pool instanceof ClusterError) return pool;
    const staleMs = this.options.pgReportStaleMs;
    const pgs = listPgs(map, this.pgStates, this.env.nowMs(), { staleMs, ...(pool === undefined ? {} : { pool }), ...(o.state === undefined ? {} : { state: o.state }) });
    return { epoch: map.epoch, staleMs, pgs };
  }

  // ───────────────────────────── OSD inputs ─────────────────────────────

  /** An OSD process started: assign or confirm its id, mark it up (and in), new epoch. */
  osdBoot(req: OsdBootRequest, cb: EpochCallback<{ osdId: OsdId }>): void {
    const map = this.projectedMap();
    const byUuid = [...map.osds.values()].find((o) => o.uuid === req.uuid);
    if (req.osdId !== undefined && byUuid !== undefined && byUuid.id !== req.osdId) {
      return this.failSoon(cb, new ClusterError('CLU_ERR_PERM', `uuid belongs to osd.${byUuid.id}, not osd.${req.osdId}`));
    }
    const requested = req.osdId === undefined ? undefined : map.osds.get(req.osdId as OsdId);
    if (requested !== undefined && requested.uuid !== req.uuid) {
      return this.failSoon(cb, new ClusterError('CLU_ERR_PERM', `osd.${req.osdId} has a different uuid`));
    }
    const existing = byUuid ?? requested;
    const id = existing?.id ?? (req.osdId as OsdId | undefined) ?? lowestFreeOsdId(map);
    const upFrom = this.nextEpoch();
    const op: MapOp = existing === undefined
      ? { op: 'osd-add', osd: newOsdInfo(id, req, upFrom) }
      : { op: 'osd-set', id, changes: this.bootChanges(existing, req, upFrom) };
    const err = this.stage([op]);
    if (err !== undefined) return this.failSoon(cb, err);
    this.detector.booted(id, this.env.nowMs());
    this.env.log.info({ osd: id, addr: req.addr }, 'osd boot');
    this.wait((e, epoch) => (e ? cb(e) : cb(null, { osdId: id, epoch })));
  }

  private bootChanges(existing: OsdInfo, req: OsdBootRequest, upFrom: Epoch): OsdChanges {
    const changes: OsdChanges = { up: true, addr: req.addr, upFrom };
    if (existing.location.host !== req.location.host || existing.location.rack !== req.location.rack) changes.location = req.location;
    // Ceph's mon_osd_auto_mark_auto_out_in: only undo an out the monitor itself did.
    if (existing.autoOut) {
      changes.in = true;
      changes.autoOut = false;
      this.env.log.info({ osd: existing.id }, 'auto-out osd booted: marking it in');
    }
    return changes;
  }

  /** A periodic beacon. Returns 'boot-required' when the map has the OSD down (it must re-boot). */
  osdBeacon(id: OsdId): 'ok' | 'boot-required' | 'unknown-osd' {
    const osd = this.projectedMap().osds.get(id);
    if (osd === undefined) return 'unknown-osd';
    if (!osd.up) return 'boot-required';
    this.detector.seen(id, this.env.nowMs());
    return 'ok';
  }

  /** A peer or client reports `target` unreachable; see failure-detector.ts for the rule. */
  reportFailure(reporter: string, target: OsdId, kind: FailureKind): void {
    const osd = this.projectedMap().osds.get(target);
    if (osd === undefined || !osd.up) return;
    // Why: an OSD that is down in our map may be partitioned away or replaying reports it
    // queued while cut off; believing it marked the last holder of acknowledged writes down
    // (simulator seed 0x54). Ceph too only takes failure reports from up OSDs.
    const m = /^osd\.(\d+)$/.exec(reporter);
    if (m !== null && this.projectedMap().osds.get(Number(m[1]) as OsdId)?.up !== true) return;
    const upCount = [...this.projectedMap().osds.values()].filter((o) => o.up).length;
    if (kind === 'refused' || this.detector.report(target, reporter, this.env.nowMs(), upCount)) {
      this.markDown(target, kind === 'refused' ? 'connection refused' : 'peer reports');
    }
  }

  /** Withdraws a timeout report (the reporter heard from the target again). */
  cancelFailure(reporter: string, target: OsdId): void {
    this.detector.cancel(target, reporter);
  }

  /** An OSD's view of the PGs it is primary for (`pgid text → state`), replacing its last report. */
  reportPgStates(osd: OsdId, states: Readonly<Record<string, string>>): void {
    // Why the primary check: reports carry no epoch, and an OSD catching up through old maps
    // reports PGs it was primary for at those epochs, overwriting the real primary's entry
    // (found by the simulator, seed 0xd). Only the primary in our current map is believed.
    const map = this.map();
    for (const [pg, s] of this.pgStates) if (s.osd === osd && states[pg] === undefined) this.pgStates.delete(pg);
    for (const [pg, state] of Object.entries(states)) {
      if (this.primaryOf(map, pg) === osd) this.pgStates.set(pg, { state, osd, atMs: this.env.nowMs() });
    }
  }

  /**
   * `MSG_MON_PG_HISTORY`: the primary of `pg` records its acting set in the PG history
   * (`add`, before its interval accepts writes) or shrinks the history to it (`reset`, once
   * active+clean at full size). Believed only from an OSD that is up and the PG's primary in
   * the projected map (the map the op will be committed on top of), for exactly the PG's
   * acting set there: a deposed or lagging primary gets `CLU_ERR_EPOCH_STALE` and retries on
   * its next map. The callback fires once the epoch holding the change is durable, or at once
   * when the committed history already says so.
   */
  pgHistory(osd: OsdId, pgKey: string, op: 'add' | 'reset', set: readonly OsdId[], cb: EpochCallback): void {
    if (this.fatal !== undefined) return this.failSoon(cb, new ClusterError('CLU_ERR_UNAVAILABLE', 'monitor store failed'));
    const pgId = parsePgId(pgKey);
    const map = this.projectedMap();
    const pool = pgId === undefined ? undefined : map.pools.get(pgId.pool);
    if (pgId === undefined || pool === undefined || pgId.seed >= pool.pgNum) {
      return this.failSoon(cb, new ClusterError('CLU_ERR_NOT_FOUND', `pg ${pgKey} does not exist`, { details: { pg: pgKey } }));
    }
    if (map.osds.get(osd)?.up !== true) {
      return this.failSoon(cb, new ClusterError('CLU_ERR_PERM', `osd.${osd} is not up; it may not change pg ${pgKey}'s history`, { details: { pg: pgKey, osd } }));
    }
    const mapping = pgToOsds(map, pgId);
    if (mapping.primary !== osd) {
      return this.failSoon(cb, new ClusterError('CLU_ERR_EPOCH_STALE', `osd.${osd} is not the primary of pg ${pgKey} (osd.${mapping.primary} is)`,
        { details: { pg: pgKey, osd, primary: mapping.primary } }));
    }
    if (!sameHistorySet(mapping.acting, set)) {
      return this.failSoon(cb, new ClusterError('CLU_ERR_EPOCH_STALE', `pg ${pgKey}: [${set.join(',')}] is not its acting set [${mapping.acting.join(',')}]`,
        { details: { pg: pgKey, osd, set: [...set], acting: [...mapping.acting] } }));
    }
    const committed = this.map().pgHistory.get(pgKey);
    const already = op === 'add' ? historyHasSet(committed, set) : historyIsOnly(committed, set);
    if (already) {
      const epoch = this.map().epoch;
      this.env.setImmediate(() => cb(null, { epoch }));
      return;
    }
    // Staged even when only the projected map has it already: add/reset are idempotent, and
    // waiting on a pending or in-flight epoch needs an op of our own in the next proposal.
    this.env.log.info({ pg: pgKey, osd, op, set }, 'pg history change');
    this.stageAndWait([{ op: op === 'add' ? 'pg-history-add' : 'pg-history-reset', pg: pgId, set: [...set] }], cb);
  }

  /**
   * `MSG_MON_PG_TEMP`: sets (`osds` non-empty, from the PG's up primary) or clears (`[]`,
   * from the up or the acting primary) a PG's pg_temp; rules in mon/pg-temp.ts. Batched
   * into the next epoch like every change; the callback fires once it is durable, or at once
   * when the committed map already says so. Entries that became meaningless are dropped by
   * every proposal (`propose`, staleTempOps).
   */
  pgTemp(osd: OsdId, pgKey: string, osds: readonly OsdId[], cb: EpochCallback): void {
    if (this.fatal !== undefined) return this.failSoon(cb, new ClusterError('CLU_ERR_UNAVAILABLE', 'monitor store failed'));
    const d = checkPgTempRequest(this.projectedMap(), this.map(), osd, pgKey, osds);
    if (d instanceof ClusterError) return this.failSoon(cb, d);
    if (d.op === undefined) {
      const epoch = this.map().epoch;
      this.env.setImmediate(() => cb(null, { epoch }));
      return;
    }
    this.env.log.info({ pg: pgKey, osd, osds }, osds.length > 0 ? 'pg_temp set' : 'pg_temp cleared');
    this.stageAndWait([d.op], cb);
  }

  /**
   * `strata osd pg-temp rm PGID` (operator escape hatch): drops the PG's pg_temp in the next
   * epoch. `CLU_ERR_INVALID` malformed, `CLU_ERR_NOT_FOUND` no such PG or no entry. The up
   * primary asks again (MSG_MON_PG_TEMP) if its up set still has no complete member.
   */
  pgTempRemove(pgKey: string, cb: EpochCallback): void {
    const map = this.projectedMap();
    const pg = resolvePg(map, pgKey);
    if (pg instanceof ClusterError) return this.failSoon(cb, pg);
    const key = pgIdToString(pg);
    if (!map.pgTemp.has(key)) return this.failSoon(cb, new ClusterError('CLU_ERR_NOT_FOUND', `pg ${key} has no pg_temp`, { details: { pg: key } }));
    this.env.log.warn({ pg: key, osds: map.pgTemp.get(key) }, 'pg_temp removed by an operator');
    this.stageAndWait([{ op: 'pg-temp-rm', pg }], cb);
  }

  private primaryOf(map: ClusterMap, pg: string): number {
    const id = parsePgId(pg);
    return id === undefined ? -1 : pgToOsds(map, id).primary;
  }

  // ───────────────────────────── admin inputs ─────────────────────────────

  /** `strata pool create`. */
  poolCreate(spec: Omit<PoolSpec, 'id' | 'createdEpoch'>, cb: EpochCallback<{ poolId: PoolId }>): void {
    const map = this.projectedMap();
    if (poolByName(map, spec.name) !== undefined) return this.failSoon(cb, new ClusterError('CLU_ERR_EXISTS', `pool ${spec.name} exists`));
    const id = (map.poolMax + 1) as PoolId;
    const err = this.stage([{ op: 'pool-add', pool: makePool({ ...spec, id, createdEpoch: this.nextEpoch() }) }]);
    if (err !== undefined) return this.failSoon(cb, err);
    this.wait((e, epoch) => (e ? cb(e) : cb(null, { poolId: id, epoch })));
  }

  /** `strata pool set`. */
  poolSet(name: string, changes: PoolChanges, cb: EpochCallback): void {
    const pool = poolByName(this.projectedMap(), name);
    if (pool === undefined) return this.failSoon(cb, new ClusterError('CLU_ERR_NOT_FOUND', `pool ${name}`));
    // PG split: each new PG starts with its parent's history (placement/pg-split.ts), in the
    // same epoch, so its first peering finds the parent's OSDs, which hold its objects.
    const split = changes.pgNum !== undefined ? splitHistoryOps(this.projectedMap(), pool.id, changes.pgNum) : [];
    if (split.length > 0) this.env.log.info({ pool: name, pgNum: pool.pgNum, newPgNum: changes.pgNum, historySets: split.length }, 'pg split: children inherit their parents\' history');
    this.stageAndWait([{ op: 'pool-set', id: pool.id, changes }, ...split], cb);
  }

  /** `strata pool rm`. */
  poolRemove(name: string, cb: EpochCallback): void {
    const pool = poolByName(this.projectedMap(), name);
    if (pool === undefined) return this.failSoon(cb, new ClusterError('CLU_ERR_NOT_FOUND', `pool ${name}`));
    this.stageAndWait([{ op: 'pool-remove', id: pool.id }], cb);
  }

  /**
   * `osd blocklist add`: lists a client instance until now + `lifetimeMs` (wall clock); the
   * callback fires once the epoch holding it is durable (`epoch` is the one OSDs must have
   * before the caller's next ops, docs/images.md §Takeover). Re-adding refreshes the expiry.
   */
  blocklistAdd(instance: string, lifetimeMs: number, cb: EpochCallback<{ expiresMs: number }>): void {
    const expiresMs = this.env.wallMs() + lifetimeMs;
    const err = this.stage([{ op: 'blocklist-add', instance, expiresMs }]);
    if (err !== undefined) return this.failSoon(cb, err);
    this.env.log.info({ instance, expiresMs }, 'client blocklisted');
    this.wait((e, epoch) => (e ? cb(e) : cb(null, { expiresMs, epoch })));
  }

  /** `osd blocklist rm`: `CLU_ERR_NOT_FOUND` when the instance is not listed. */
  blocklistRm(instance: string, cb: EpochCallback): void {
    if (!this.projectedMap().blocklist.has(instance)) return this.failSoon(cb, new ClusterError('CLU_ERR_NOT_FOUND', `${instance} is not blocklisted`));
    this.env.log.info({ instance }, 'client blocklisting lifted');
    this.stageAndWait([{ op: 'blocklist-rm', instance }], cb);
  }

  /** Tick: stages `blocklist-rm` for entries whose expiry passed (by our wall clock). */
  private pruneBlocklist(): void {
    const now = this.env.wallMs();
    const expired = [...this.projectedMap().blocklist].filter(([, exp]) => exp <= now).map(([instance]) => instance);
    if (expired.length === 0) return;
    const err = this.stage(expired.map((instance): MapOp => ({ op: 'blocklist-rm', instance })));
    assert(err === undefined, `prune blocklist: ${err?.message}`);
    this.env.log.info({ instances: expired }, 'expired blocklist entries removed');
  }

  /** `strata osd out|in|down|reweight|rm`. An admin out is never undone by boot. */
  osdAdmin(id: OsdId, action: 'out' | 'in' | 'down' | 'rm' | { weight: number }, cb: EpochCallback): void {
    const osd = this.projectedMap().osds.get(id);
    if (osd === undefined) return this.failSoon(cb, new ClusterError('CLU_ERR_NOT_FOUND', `osd.${id}`));
    let op: MapOp;
    // An operator's out or in replaces an auto-out: their out must stick across boots.
    if (action === 'out') op = { op: 'osd-set', id, changes: { in: false, ...(osd.autoOut ? { autoOut: false } : {}) } };
    else if (action === 'in') op = { op: 'osd-set', id, changes: { in: true, ...(osd.autoOut ? { autoOut: false } : {}) } };
    else if (action === 'down') op = { op: 'osd-set', id, changes: { up: false, downAt: this.nextEpoch() } };
    else if (action === 'rm') {
      if (osd.up) return this.failSoon(cb, new ClusterError('CLU_ERR_INVALID', `osd.${id} is up; mark it down first`));
      op = { op: 'osd-remove', id };
    } else op = { op: 'osd-set', id, changes: { weight: action.weight } };
    if (action === 'down') this.detector.markedDown(id, this.env.nowMs());
    if (action === 'rm') this.detector.forget(id);
    this.stageAndWait([op], cb);
  }

  /**
   * `strata balancer run`: computes pg_upmap_items on the projected map and stages them as
   * one change. Nothing to do → answers at once with the current epoch and moves 0 (no epoch).
   */
  balancerRun(options: Pick<BalancerOptions, 'maxChanges' | 'maxDeviation'>, cb: EpochCallback<BalancerRunResult>): void {
    if (this.fatal !== undefined) return this.failSoon(cb, new ClusterError('CLU_ERR_UNAVAILABLE', 'monitor store failed'));
    const r = computeUpmaps(this.projectedMap(), { ...options, ...(this.balancerReference === undefined ? {} : { reference: this.balancerReference }) });
    const brief = (b: PoolBalance): BalancerRunResult['before'][number] => ({ pool: b.pool, name: b.name, maxDeviation: b.maxDeviation, maxDeviationPct: b.maxDeviationPct });
    const result: BalancerRunResult = { moves: r.moves, cleaned: r.cleaned, changedPgs: r.ops.length, before: r.before.map(brief), after: r.after.map(brief) };
    if (r.ops.length === 0) {
      this.balancerReference = this.projectedMap();
      const epoch = this.map().epoch;
      this.env.setImmediate(() => cb(null, { ...result, epoch }));
      return;
    }
    this.lastBalancerEpoch = this.nextEpoch();
    const err = this.stage(r.ops);
    if (err !== undefined) return this.failSoon(cb, err);
    this.balancerReference = this.projectedMap();
    this.env.log.info({ moves: r.moves, cleaned: r.cleaned, pgs: r.ops.length }, 'balancer staged upmaps');
    this.wait((e, epoch) => (e ? cb(e) : cb(null, { ...result, epoch })));
  }

  /** `strata balancer status`: per pool, per OSD replica counts against their targets. */
  balancerStatus(): BalancerStatus {
    const map = this.map();
    return { epoch: map.epoch, auto: this.options.balancerAuto, lastRunEpoch: this.lastBalancerEpoch, pools: poolBalances(map) };
  }

  /** One automatic balancer step when the map has settled; see the module comment. */
  private autoBalance(now: number): void {
    if (!this.options.balancerAuto || this.inflight || this.pendingOps.length > 0 || this.fatal !== undefined) return;
    const map = this.map();
    if (map.epoch === this.balancedEpoch || now - this.lastMapChangeMs < this.options.balancerSettleMs) return;
    if ([...map.osds.values()].some((o) => o.in && !o.up)) return;
    const maxChanges = this.options.balancerAutoMaxChanges;
    this.balancerRun({ maxChanges }, (err, r) => {
      if (err !== null) return void this.env.log.warn({ err }, 'automatic balancer run failed');
      // Budget exhausted: more to do after the next settle; otherwise this epoch is balanced.
      if (r !== undefined && r.moves < maxChanges) this.balancedEpoch = r.epoch;
    });
  }

  // ───────────────────────────── subscriptions ─────────────────────────────

  /**
   * Registers `cb` for map updates starting after `haveEpoch` (0 = no map). Catch-up, if any,
   * arrives on a later turn; every later commit is pushed as one incremental.
   */
  subscribe(haveEpoch: number, cb: (update: MapUpdate) => void): Subscription {
    const sub = { haveEpoch, cb };
    this.subscribers.add(sub);
    this.env.setImmediate(() => {
      if (this.subscribers.has(sub)) this.catchUp(sub);
    });
    return { unsubscribe: () => void this.subscribers.delete(sub) };
  }

  private catchUp(sub: { haveEpoch: number; cb: (u: MapUpdate) => void }): void {
    const map = this.map();
    if (sub.haveEpoch === map.epoch) return;
    const incs = sub.haveEpoch < map.epoch ? this.store.incrementalsSince(sub.haveEpoch as Epoch) : undefined;
    sub.haveEpoch = map.epoch;
    if (incs !== undefined && incs.length <= this.options.maxIncrementalsPerPush && incs.length > 0) sub.cb({ kind: 'incrementals', incrementals: incs });
    else sub.cb({ kind: 'full', map });
  }

  // ───────────────────────────── internals ─────────────────────────────

  private projectedMap(): ClusterMap {
    assert(this.projected !== undefined, 'monitor not started');
    return this.projected;
  }

  /** The epoch pending ops will be committed in. */
  private nextEpoch(): Epoch {
    return (this.map().epoch + (this.inflight ? 2 : 1)) as Epoch;
  }

  /** Validates `ops` on the projected map and queues them; returns the error if they do not apply. */
  private stage(ops: MapOp[]): ClusterError | undefined {
    if (this.fatal !== undefined) return new ClusterError('CLU_ERR_UNAVAILABLE', 'monitor store failed');
    const base = this.projectedMap();
    try {
      this.projected = applyIncremental(base, { epoch: (base.epoch + 1) as Epoch, fsid: base.fsid, modifiedMs: base.modifiedMs, ops });
    } catch (e) {
      return asClusterError(e);
    }
    this.pendingOps.push(...ops);
    this.scheduleProposal();
    return undefined;
  }

  private stageAndWait(ops: MapOp[], cb: EpochCallback): void {
    const err = this.stage(ops);
    if (err !== undefined) return this.failSoon(cb, err);
    this.wait((e, epoch) => (e ? cb(e) : cb(null, { epoch })));
  }

  private wait(cb: Waiter['cb']): void {
    this.pendingWaiters.push({ cb });
  }

  private failSoon(cb: (err: ClusterError) => void, err: ClusterError): void {
    this.env.setImmediate(() => cb(err));
  }

  private markDown(id: OsdId, reason: string): void {
    const err = this.stage([{ op: 'osd-set', id, changes: { up: false, downAt: this.nextEpoch() } }]);
    assert(err === undefined, `mark down osd.${id}: ${err?.message}`);
    this.detector.markedDown(id, this.env.nowMs());
    this.env.log.info({ osd: id, reason }, 'osd marked down');
  }

  private scheduleProposal(): void {
    if (this.proposalTimer !== undefined || this.inflight || this.pendingOps.length === 0) return;
    const delayMs = Math.max(0, this.lastProposalMs + this.options.proposalIntervalMs - this.env.nowMs());
    this.proposalTimer = delayMs === 0 ? this.env.setImmediate(() => this.propose()) : this.env.setTimeout(() => this.propose(), delayMs);
  }

  /** Commits every pending op as one epoch. */
  private propose(): void {
    this.proposalTimer = undefined;
    if (this.inflight || this.pendingOps.length === 0 || this.fatal !== undefined) return;
    // pg_temp entries the pending changes made meaningless (a member down, a remap) go in the
    // same epoch: the PG then maps to its up set at once.
    const stale = staleTempOps(this.projectedMap());
    if (stale.length > 0) {
      const p = this.projectedMap();
      this.projected = applyIncremental(p, { epoch: (p.epoch + 1) as Epoch, fsid: p.fsid, modifiedMs: p.modifiedMs, ops: stale });
      this.pendingOps.push(...stale);
      this.env.log.info({ pgs: stale.map((op) => (op.op === 'pg-temp-rm' ? pgIdToString(op.pg) : op.op)) }, 'stale pg_temp entries dropped');
    }
    const base = this.map();
    const inc: Incremental = { epoch: (base.epoch + 1) as Epoch, fsid: base.fsid, modifiedMs: this.env.wallMs(), ops: this.pendingOps };
    const waiters = this.pendingWaiters;
    this.pendingOps = [];
    this.pendingWaiters = [];
    this.inflight = true;
    this.lastProposalMs = this.env.nowMs();
    this.store.commit({ incremental: inc }, (err) => this.proposeDone(inc, waiters, err));
  }

  private proposeDone(inc: Incremental, waiters: Waiter[], err: Error | null): void {
    this.inflight = false;
    if (err) return this.onStoreFailure(err, waiters);
    const map = this.store.latestMap();
    assert(map !== undefined && map.epoch === inc.epoch, 'store did not install the epoch');
    this.committed = map;
    this.lastMapChangeMs = this.env.nowMs();
    // Pending ops were validated on top of this epoch's result, so they still apply.
    this.projected = applyIncremental(map, { epoch: (map.epoch + 1) as Epoch, fsid: map.fsid, modifiedMs: map.modifiedMs, ops: this.pendingOps });
    this.env.log.info({ epoch: map.epoch, ops: inc.ops.length }, 'map epoch committed');
    for (const sub of this.subscribers) {
      if (sub.haveEpoch === inc.epoch - 1) {
        sub.haveEpoch = inc.epoch;
        sub.cb({ kind: 'incrementals', incrementals: [inc] });
      } else this.catchUp(sub);
    }
    for (const w of waiters) w.cb(null, map.epoch);
    this.scheduleProposal();
  }

  private onStoreFailure(err: Error, waiters: Waiter[]): void {
    const cerr = asClusterError(err);
    this.fatal = cerr;
    this.env.log.error({ err }, 'monitor store commit failed');
    for (const w of [...waiters, ...this.pendingWaiters]) w.cb(cerr, 0 as Epoch);
    this.pendingWaiters = [];
    this.pendingOps = [];
    this.stop();
    this.init.onFatal?.(cerr);
  }

  private scheduleTick(): void {
    const tickMs = Math.max(10, Math.min(1000, Math.floor(this.options.osdGraceMs / 4)));
    this.tickTimer = this.env.setTimeout(() => {
      this.tick();
      if (this.fatal === undefined) this.scheduleTick();
    }, tickMs);
  }

  /** Periodic failure detection: beacon timeouts → down, long down → out; expired blocklist entries go. */
  tick(): void {
    const now = this.env.nowMs();
    const map = this.projectedMap();
    const up = [...map.osds.values()].filter((o) => o.up).map((o) => o.id);
    for (const id of this.detector.expired(up, now)) this.markDown(id, 'beacon timeout');
    const downIn = [...this.projectedMap().osds.values()].filter((o) => !o.up && o.in).map((o) => o.id);
    for (const id of this.detector.dueOut(downIn, now)) {
      const err = this.stage([{ op: 'osd-set', id, changes: { in: false, autoOut: true } }]);
      assert(err === undefined, `mark out osd.${id}`);
      this.env.log.info({ osd: id }, 'osd marked out after down interval');
    }
    if (this.fatal === undefined) this.pruneBlocklist();
    this.autoBalance(now);
  }
}

function asClusterError(e: unknown): ClusterError {
  if (e instanceof ClusterError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  return new ClusterError('CLU_ERR_IO', err.message, { cause: err });
}

function lowestFreeOsdId(map: ClusterMap): OsdId {
  let id = 0;
  while (map.osds.has(id as OsdId)) id++;
  return id as OsdId;
}

function newOsdInfo(id: OsdId, req: OsdBootRequest, upFrom: Epoch): OsdInfo {
  return { id, uuid: req.uuid, addr: req.addr, up: true, in: true, weight: req.weight ?? WEIGHT_ONE, location: req.location, upFrom, downAt: 0 as Epoch, autoOut: false };
}

/** Formats 16 random bytes as an RFC 4122 v4 uuid. */
export function uuidFromBytes(b: Uint8Array): string {
  const h = [...b].map((x, i) => (i === 6 ? (x & 0x0f) | 0x40 : i === 8 ? (x & 0x3f) | 0x80 : x).toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
