/**
 * Peering on the primary (docs/replication.md §4), including the PG-history prior-set rule, and
 * the PG-history records with the monitor (add before activation, reset once clean).
 *
 *   map change ─► new interval (`updatePg`) ─► wait local commits, requeue in-flight writes
 *     ─► QUERY acting ∪ previous acting ∪ up members of the PG history sets (`startPeering`)
 *     ─► prior set: a member of every history set answered? no ─► DOWN, retry on map / 2 s timer
 *     ─► authoritative log ─► missing sets / backfill (`choose`) ─► adopt the log locally
 *     ─► no acting member complete? ─► the up primary asks the monitor for a pg_temp
 *        [complete OSD, ...up] and waits for the map: the complete OSD peers as primary,
 *        goes active at once and backfills the up members while serving I/O, then asks for
 *        the clear (`maybeClearPgTemp`) and the up set peers with complete members.
 *        Fallback (monitor refused / unreachable, no pg_temp map within PG_TEMP_WAIT_MS, or
 *        this OSD is not the up primary): INCOMPLETE+BACKFILLING — the primary backfills
 *        itself from the complete OSD (recovery.ts), then peers again
 *     ─► ACTIVATE peers (log + info) ‖ monitor records acting in the PG history
 *     ─► active: client queue runs, recovery starts (recovery.ts)
 *
 * Owns: the PG's interval, role, acting sets, peering generation, prior-set block
 * (`blockedSets`) and history-reset bookkeeping; the adoption of a log (also used by replicas).
 * Invariants it relies on:
 * - Every acknowledged write is on every member of some set listed in the PG history (an
 *   interval accepts writes only after its set is listed, writes are acknowledged only after all
 *   acting members committed), so one answer per listed set reaches every acknowledged write.
 * - Peering never starts while local commits of the PG are pending (`localPending`): the last
 *   commit callback (client-ops.ts) restarts it.
 * - A log adoption fits one store transaction (2 × PG_LOG_MAX + 3 ops, asserted in osd-core.ts).
 */
import type { ClusterError } from '../common/errors.js';
import type { OsdId } from '../common/ids.js';
import type { PoolInfo } from '../map/cluster-map.js';
import { historyHasSet, historyIsOnly } from '../map/incremental.js';
import { MsgType } from '../msg/types.js';
import { INFO_KEY, emptyInfo, encodeInfo, encodeLogEntry, logKey } from '../pg/pg-log.js';
import type { PgInfo, PgLogEntry } from '../pg/pg-log.js';
import { PgState, checkTransition, pgStateString } from '../pg/pg-state.js';
import { Transaction } from '../store/types.js';
import type { OsdContext } from './osd-context.js';
import { ZERO_VERSION, compareVersion } from './osd-protocol.js';
import type { EVersion } from './osd-protocol.js';
import { decodePgQueryReply, encodePgActivate, encodePgQuery } from './osd-peer-protocol.js';
import type { PgQueryReply } from './osd-peer-protocol.js';
import { PGNUM_KEY, SELF_BACKFILL_STATE, activeState, encodePgNum, minComplete, vKey } from './pg.js';
import type { Need, Pg } from './pg.js';

/** What peering uses from the rest of the OSD. */
export type PeeringContext = Pick<OsdContext,
  'id' | 'env' | 'log' | 'store' | 'map' | 'stopped' | 'peerRequest' | 'setState' | 'recordPgHistory' | 'requestPgTemp'
  | 'requeueInflight' | 'refuseQueued' | 'runQueue' | 'recover'>;

/** How long the up primary waits for the map carrying its pg_temp before it backfills itself. */
export const PG_TEMP_WAIT_MS = 5000;

export class Peering {
  constructor(private readonly c: PeeringContext) {}

  /** Applies a PG's mapping from a new map; a changed acting set starts a new interval. */
  updatePg(pg: Pg, pool: PoolInfo | undefined, acting: OsdId[], primary: number, epoch: number, inActing: boolean, split = false, up: readonly OsdId[] = acting): void {
    const changed = split || pg.interval === 0 || acting.length !== pg.acting.length || acting.some((x, i) => pg.acting[i] !== x);
    if (pool !== undefined) { pg.poolSize = pool.size; pg.minSize = pool.minSize; }
    pg.up = [...up];
    if (!changed) return;
    const wasPrimary = pg.role === 'primary';
    if (pg.acting.length > 0) pg.prevActing = pg.acting;
    pg.acting = acting;
    pg.interval = epoch;
    pg.peeringGen++;
    pg.role = !inActing ? 'stray' : primary === this.c.id ? 'primary' : 'replica';
    if (wasPrimary) this.c.requeueInflight(pg);
    pg.clearPeeringResults();
    pg.inconsistent = false;
    pg.blockedSets = undefined;
    pg.historyReset = 0;
    pg.tempClear = 0;
    if (pg.role === 'primary') {
      // Sub-ops of an older interval (a deposed primary's late REPOP) must not apply here.
      pg.seenInterval = Math.max(pg.seenInterval, epoch);
      pg.state = pg.state === 0 ? checkTransition(0, PgState.PEERING) : checkTransition(pg.state, PgState.PEERING);
      this.startPeering(pg);
    } else {
      pg.state = 0;
      this.c.refuseQueued(pg);
    }
  }

  /** A sub-op, activation, pull or push failed: peer again (in-flight writes are requeued). */
  repeer(pg: Pg): void {
    if (pg.role !== 'primary') return;
    pg.peeringGen++;
    this.c.requeueInflight(pg);
    pg.clearPeeringResults();
    this.c.setState(pg, PgState.PEERING);
    this.c.env.setTimeout(() => { if (pg.role === 'primary' && (pg.state & PgState.PEERING) !== 0) this.startPeering(pg); }, 200);
  }

  startPeering(pg: Pg): void {
    const map = this.c.map();
    // Why the stop check: after stop() every query fails at once and the acting-failure retry
    // would re-peer every 500 ms forever, keeping the process (a test worker) alive.
    if (pg.role !== 'primary' || map === undefined || this.c.stopped()) return;
    if (pg.localPending > 0) return; // resumed from the last local commit callback
    // Our map is behind (a peer spoke for a newer interval: stepDown); the next map re-peers.
    if (pg.seenInterval > pg.interval) return;
    const gen = ++pg.peeringGen;
    const peers = new Set<OsdId>();
    const history = map.pgHistory.get(pg.key) ?? [];
    for (const x of [...pg.acting, ...pg.prevActing, ...history.flat()]) if (x !== this.c.id && map.osds.get(x)?.up === true) peers.add(x);
    const replies = new Map<OsdId, PgQueryReply>();
    let left = peers.size;
    let failedActing = false;
    const finish = (): void => {
      if (pg.peeringGen !== gen) return;
      if (failedActing) {
        this.c.env.setTimeout(() => { if (pg.peeringGen === gen) this.startPeering(pg); }, 500);
        return;
      }
      this.choose(pg, replies, gen);
    };
    if (left === 0) { finish(); return; }
    const payload = encodePgQuery(pg.key, pg.interval);
    for (const osd of peers) {
      this.c.peerRequest(osd, MsgType.MSG_OSD_PG_QUERY, payload, undefined, (err, reply) => {
        if (pg.peeringGen !== gen) return;
        if (err === null && reply !== undefined) {
          try { replies.set(osd, decodePgQueryReply(reply.payload)); } catch { if (pg.acting.includes(osd)) failedActing = true; }
        } else if (pg.acting.includes(osd)) {
          failedActing = true;
        }
        if (--left === 0) finish();
      });
    }
  }

  /** Picks the authoritative log, computes missing sets, activates the acting set. */
  private choose(pg: Pg, replies: Map<OsdId, PgQueryReply>, gen: number): void {
    const self: PgQueryReply = { hasInfo: true, info: { ...pg.info, lastUpdate: pg.log.head, logTail: pg.log.tail }, tail: pg.log.tail, entries: pg.log.entries };
    const all = new Map<OsdId, PgQueryReply>([[this.c.id, self], ...replies]);
    let authId: OsdId = this.c.id;
    let auth = self;
    let authUsable = self.hasInfo && !self.info.backfilling;
    for (const [id, r] of all) {
      if (id === this.c.id || !r.hasInfo || r.info.backfilling) continue;
      // Newest last_update wins; on a tie the longer log (older tail); on a full tie, self.
      const c = compareVersion(r.info.lastUpdate, auth.info.lastUpdate);
      if (!authUsable || c > 0 || (c === 0 && compareVersion(r.tail, auth.tail) < 0)) { authId = id; auth = r; authUsable = true; }
    }
    pg.peerInfos = replies;
    if (pg.acting.length < pg.minSize) {
      this.c.setState(pg, PgState.DOWN);
      return;
    }
    if (!this.priorSetAnswered(pg, replies, gen)) return;
    const authHead = auth.entries[auth.entries.length - 1]?.version ?? auth.tail;
    const authLatest = new Map<string, PgLogEntry>();
    const authVersions = new Set<string>();
    for (const e of auth.entries) { authLatest.set(e.object, e); authVersions.add(vKey(e.version)); }
    const backfillNeeded = new Set<OsdId>();
    const missingOf = (id: OsdId, r: PgQueryReply | undefined): Map<string, Need> | 'backfill' => {
      if (id === authId) {
        // The authoritative holder may itself still miss objects newer than its last_complete.
        const m = new Map<string, Need>();
        if (r !== undefined && compareVersion(r.info.lastComplete, r.info.lastUpdate) < 0) {
          if (compareVersion(r.info.lastComplete, auth.tail) < 0) return 'backfill';
          for (const e of auth.entries) if (compareVersion(e.version, r.info.lastComplete) > 0) m.set(e.object, { version: authLatest.get(e.object)!.version });
        }
        return m;
      }
      if (r === undefined || !r.hasInfo || r.info.backfilling) return auth.tail.epoch === 0 && auth.tail.seq === 0 ? logMissing(ZERO_VERSION, []) : 'backfill';
      const from = compareVersion(r.info.lastComplete, r.info.lastUpdate) < 0 ? r.info.lastComplete : r.info.lastUpdate;
      if (compareVersion(from, auth.tail) < 0) return 'backfill';
      return logMissing(from, r.entries);
    };
    const logMissing = (from: EVersion, entries: readonly PgLogEntry[]): Map<string, Need> => {
      const m = new Map<string, Need>();
      for (const e of auth.entries) if (compareVersion(e.version, from) > 0) m.set(e.object, { version: authLatest.get(e.object)!.version });
      for (const e of entries) {
        if (compareVersion(e.version, auth.tail) > 0 && !authVersions.has(vKey(e.version))) {
          // Divergent: this OSD applied a write the authoritative history never had.
          m.set(e.object, { version: authLatest.get(e.object)?.version });
        }
      }
      return m;
    };
    const selfM = missingOf(this.c.id, self);
    // The primary's own need, then each acting peer's.
    pg.selfMissing = new Map();
    if (selfM === 'backfill') backfillNeeded.add(this.c.id);
    else {
      const srcOk = authId !== this.c.id;
      for (const [k, v] of selfM) if (srcOk || v.version !== undefined) pg.selfMissing.set(k, v);
    }
    pg.peerMissing = new Map();
    pg.incompletePeers = new Set();
    for (const osd of pg.acting) {
      if (osd === this.c.id) continue;
      const m = missingOf(osd, replies.get(osd));
      if (m === 'backfill') { backfillNeeded.add(osd); pg.incompletePeers.add(osd); continue; }
      pg.peerMissing.set(osd, m);
      if (m.size > 0) pg.incompletePeers.add(osd);
    }
    // Adopt the authoritative log locally (replacing divergent entries).
    const entries = auth.entries;
    const tail = auth.tail;
    const selfIncomplete = pg.selfMissing.size > 0 || backfillNeeded.has(this.c.id);
    const newInfo: PgInfo = {
      lastUpdate: authHead, lastComplete: selfIncomplete ? (selfM === 'backfill' ? ZERO_VERSION : minComplete(self)) : authHead,
      logTail: tail, sameIntervalSince: pg.interval, lastEpochStarted: this.c.map()?.epoch ?? 0, backfilling: backfillNeeded.has(this.c.id),
    };
    this.c.log.info({ pg: pg.key, auth: authId, authHead: vKey(authHead), acting: pg.acting, selfMissing: pg.selfMissing.size,
      peerMissing: [...pg.peerMissing].map(([k, v]) => [k, v.size]), backfill: [...backfillNeeded] }, 'peering chose authoritative log');
    // Why: an acting set none of whose members is complete must not go active. Its writes would
    // be acknowledged by backfilling members only, its set recorded in the PG history with no
    // member that can stand for it (`priorSetAnswered`), and one failed pull or restart would
    // leave the PG down for good with every OSD up (sim seeds 0x41648c7ed04b5099,
    // 0x434090849de746d4: a split child on OSDs that never held it, the log trimmed). Ceph
    // keeps a complete OSD acting with pg_temp, and so does strata (`requestTempActing`); the
    // primary backfilling itself first is the fallback.
    if (!pg.acting.includes(authId) && pg.acting.every((x) => backfillNeeded.has(x))) {
      this.requestTempActing(pg, gen, authId, newInfo, entries, tail);
      return;
    }
    // The acting set goes into the PG history before this interval accepts a write (in
    // parallel with the log adoption and peer activation: only client I/O waits for both).
    let historyRecorded = false;
    let peersActivated = false;
    let activated = (): void => undefined;
    this.recordActingHistory(pg, gen, () => { historyRecorded = true; if (peersActivated) activated(); });
    this.adoptLog(pg, newInfo, entries, tail, (err) => {
      if (pg.peeringGen !== gen) return;
      if (err !== null) { this.c.log.error({ pg: pg.key, err }, 'adopting log failed'); return; }
      pg.nextSeq = Math.max(pg.nextSeq, authHead.seq + 1);
      // Activate each acting peer.
      const targets = pg.acting.filter((x) => x !== this.c.id);
      let left = targets.length;
      let failed = false;
      const peersDone = (): void => {
        if (pg.peeringGen !== gen) return;
        if (failed) { this.repeer(pg); return; }
        peersActivated = true;
        if (historyRecorded) activated();
      };
      activated = (): void => {
        if (pg.peeringGen !== gen) return;
        pg.backfillPending = new Set([...backfillNeeded]);
        pg.recoveryStartMs = this.c.env.nowMs();
        pg.recoveredBytes = 0; pg.recoveredObjects = 0;
        this.c.setState(pg, activeState(pg));
        this.c.log.info({ pg: pg.key, state: pgStateString(pg.state) }, 'pg activated');
        this.c.runQueue(pg);
        this.c.recover(pg);
      };
      if (left === 0) { peersDone(); return; }
      for (const osd of targets) {
        const r = replies.get(osd);
        const bf = backfillNeeded.has(osd);
        const m = pg.peerMissing.get(osd);
        const lc = bf ? ZERO_VERSION : m !== undefined && m.size > 0 ? minComplete(r) : authHead;
        const info: PgInfo = { lastUpdate: authHead, lastComplete: lc, logTail: tail, sameIntervalSince: pg.interval, lastEpochStarted: this.c.map()?.epoch ?? 0, backfilling: bf };
        this.c.peerRequest(osd, MsgType.MSG_OSD_PG_ACTIVATE, encodePgActivate({ pg: pg.key, interval: pg.interval, mode: 1, info, tail, entries }), undefined, (e) => {
          if (e !== null) failed = true;
          if (--left === 0) peersDone();
        });
      }
    });
  }

  /**
   * No acting member is complete (every one needs backfill) and `authId`, outside the acting
   * set, is: as up primary, ask the monitor for pg_temp = [authId, ...up]. The complete OSD
   * becomes the primary of a temporary acting set of size + 1: it is complete, so it peers,
   * records that set in the PG history (it stands for it in every later prior set) and goes
   * active at once, backfilling the up members, which get every new write as acting members
   * do. Nothing is adopted or recorded here: the map with the pg_temp starts a new interval
   * (this OSD becomes a replica) and the PG stays `peering` until then. Falls back to
   * `backfillBeforeActivation` when this OSD is not the up primary or the acting set already
   * differs from up (a pg_temp in effect whose members are all incomplete), when the monitor
   * refuses or cannot be reached, or when no new interval came within PG_TEMP_WAIT_MS (the
   * monitor dropped the entry as stale, e.g. the complete OSD went down meanwhile).
   */
  private requestTempActing(pg: Pg, gen: number, authId: OsdId, info: PgInfo, entries: readonly PgLogEntry[], tail: EVersion): void {
    const map = this.c.map();
    const up = pg.up;
    const isUpPrimary = up[0] === this.c.id && up.length === pg.acting.length && up.every((x, i) => pg.acting[i] === x);
    if (map === undefined || !isUpPrimary || map.osds.get(authId)?.up !== true || up.includes(authId)) {
      this.backfillBeforeActivation(pg, gen, authId, info, entries, tail);
      return;
    }
    const want = [authId, ...up];
    const startMs = this.c.env.nowMs();
    this.c.log.info({ pg: pg.key, up, auth: authId, pgTemp: want },
      'pg has no complete acting member: asking the monitor for a pg_temp with the complete osd as primary');
    const fallback = (why: string, fields: object): void => {
      if (pg.peeringGen !== gen) return;
      this.c.log.info({ pg: pg.key, pgTemp: want, ...fields }, `pg_temp not in effect (${why}): the primary backfills before activating`);
      this.backfillBeforeActivation(pg, gen, authId, info, entries, tail);
    };
    this.c.requestPgTemp(pg.key, want, (err) => {
      if (pg.peeringGen !== gen) return;
      if (err !== null) { fallback('refused', { code: err.code, err: err.message }); return; }
      this.c.log.debug({ pg: pg.key, pgTemp: want, ms: Math.round(this.c.env.nowMs() - startMs) }, 'pg_temp committed; waiting for its map');
      this.c.env.setTimeout(() => fallback('no new interval', { waitedMs: PG_TEMP_WAIT_MS }), PG_TEMP_WAIT_MS);
    });
  }

  /**
   * Temp primary of a remapped PG (a pg_temp in effect) with every member complete — its own
   * objects, every peer's missing set empty and acknowledged complete (ACTIVATE mode 2), no
   * backfill pending: asks the monitor to clear the pg_temp. The next map's interval has
   * acting = up, whose members are complete now, so it peers normally (this OSD's copy stays
   * as a stray, and its set in the PG history until the up set is clean). Retried from `tick`
   * (at most every 5 s after a refusal); a new interval drops it.
   */
  maybeClearPgTemp(pg: Pg): void {
    const map = this.c.map();
    if (pg.role !== 'primary' || map === undefined || !map.pgTemp.has(pg.key) || (pg.state & PgState.ACTIVE) === 0) return;
    if ((pg.state & (PgState.DEGRADED | PgState.RECOVERING | PgState.BACKFILLING | PgState.UNDERSIZED)) !== 0) return;
    if (pg.missingCount() > 0 || pg.incompletePeers.size > 0 || pg.backfillPending.size > 0 || pg.completing.size > 0 || pg.recovering.size > 0) return;
    if (compareVersion(pg.info.lastComplete, pg.log.head) < 0 || pg.info.backfilling) return;
    if (pg.tempClear === 'inflight' || pg.tempClear === pg.interval || this.c.env.nowMs() < pg.tempClearRetryMs) return;
    const interval = pg.interval;
    pg.tempClear = 'inflight';
    this.c.log.info({ pg: pg.key, acting: pg.acting, up: pg.up }, 'every member of the temporary acting set is complete: clearing the pg_temp');
    this.c.requestPgTemp(pg.key, [], (err) => {
      if (pg.tempClear !== 'inflight' || pg.interval !== interval) return; // a new interval started meanwhile
      if (err !== null) {
        pg.tempClear = 0;
        pg.tempClearRetryMs = this.c.env.nowMs() + 5000;
        this.c.log.info({ pg: pg.key, code: err.code, err: err.message }, 'pg_temp clear refused; will retry');
        return;
      }
      pg.tempClear = interval;
    });
  }

  /**
   * No acting member is complete (every one needs backfill; the authoritative log is on an OSD
   * outside the acting set) and no pg_temp could be used (`requestTempActing`): the primary adopts the authoritative log as backfilling, reports
   * `incomplete+backfilling` and copies the PG from a complete OSD (recovery.ts: scan, diff,
   * pulls). No client I/O, nothing recorded in the PG history, no peer activated. Once every
   * object is in, recovery marks the primary complete and peers again: the primary is then a
   * complete acting member, activates and backfills its peers while serving I/O.
   */
  private backfillBeforeActivation(pg: Pg, gen: number, authId: OsdId, info: PgInfo, entries: readonly PgLogEntry[], tail: EVersion): void {
    const authHead = entries[entries.length - 1]?.version ?? tail;
    this.adoptLog(pg, { ...info, lastComplete: ZERO_VERSION, backfilling: true }, entries, tail, (err) => {
      if (pg.peeringGen !== gen) return;
      if (err !== null) { this.c.log.error({ pg: pg.key, err }, 'adopting log failed'); return; }
      pg.nextSeq = Math.max(pg.nextSeq, authHead.seq + 1);
      pg.selfMissing = new Map();
      pg.peerMissing = new Map();
      pg.incompletePeers = new Set();
      pg.backfillPending = new Set([this.c.id]);
      pg.recoveryStartMs = this.c.env.nowMs();
      pg.recoveredBytes = 0; pg.recoveredObjects = 0;
      this.c.setState(pg, SELF_BACKFILL_STATE);
      this.c.log.info({ pg: pg.key, acting: pg.acting, auth: authId, authHead: vKey(authHead) },
        'pg has no complete acting member: the primary backfills from a complete osd before activating');
      this.c.recover(pg);
    });
  }

  /**
   * The prior-set rule (Ceph's past intervals, Vitastor's PG history): every acting set in the
   * PG's history may have acknowledged writes that only its members hold, so peering goes on
   * only when, for each set, some member that is *complete* — this OSD or one that answered —
   * has it all: an OSD with a PG log and info that is not backfilling (a backfilling member
   * holds that interval's writes but not the older objects, and the authoritative-log choice
   * ignores its log, so its answer must not stand for the set). Otherwise the PG is DOWN (no
   * I/O) and peering is retried on every new map and every 2 s. What it waits for is finite:
   * the members of the blocked sets (`waitingFor`; `incomplete` names those that answered but
   * are backfilling). An admin who knows the complete ones are gone for good declares their
   * data lost with `osd rm` (drops them from the history). Returns true when peering may go on.
   */
  private priorSetAnswered(pg: Pg, replies: ReadonlyMap<OsdId, PgQueryReply>, gen: number): boolean {
    const history = this.c.map()?.pgHistory.get(pg.key) ?? [];
    const selfComplete = (pg.log.entries.length > 0 || pg.info.sameIntervalSince > 0) && !pg.info.backfilling;
    const complete = (x: OsdId): boolean => {
      if (x === this.c.id) return selfComplete;
      const r = replies.get(x);
      return r !== undefined && r.hasInfo && !r.info.backfilling;
    };
    const blocked = history.filter((set) => !set.some(complete)).map((set) => [...set]);
    if (blocked.length === 0) {
      if (pg.blockedSets !== undefined) this.c.log.info({ pg: pg.key, acting: pg.acting }, 'pg prior set complete; peering goes on');
      pg.blockedSets = undefined;
      return true;
    }
    const members = [...new Set(blocked.flat())].sort((a, b) => a - b);
    const answeredIncomplete = (x: OsdId): boolean => x === this.c.id || replies.has(x);
    const waitingFor = members.filter((x) => !answeredIncomplete(x));
    const incomplete = members.filter(answeredIncomplete);
    const changed = pg.blockedSets === undefined || JSON.stringify(pg.blockedSets) !== JSON.stringify(blocked);
    pg.blockedSets = blocked;
    const fields = { pg: pg.key, acting: pg.acting, waitingFor, incomplete, blockedSets: blocked, answered: [...replies.keys()] };
    if (changed) this.c.log.info(fields, 'pg down: no complete member of an earlier acting set answered (prior set); waiting for one of them');
    else this.c.log.debug(fields, 'pg still down on its prior set');
    this.c.setState(pg, PgState.DOWN);
    this.c.env.setTimeout(() => { if (pg.peeringGen === gen) this.retryBlocked(pg); }, 2000);
    return false;
  }

  /** Peering again for a PG blocked on its prior set (new map or timer). */
  retryBlocked(pg: Pg): void {
    if (pg.role !== 'primary' || pg.blockedSets === undefined || (pg.state & PgState.DOWN) === 0) return;
    this.c.setState(pg, PgState.PEERING);
    this.startPeering(pg);
  }

  /**
   * Calls `done` once the monitor's PG history lists the acting set (at once when our map's
   * does). A refused or failed request is retried every second while the interval lasts; a
   * new interval or re-peer (peeringGen) drops it.
   */
  private recordActingHistory(pg: Pg, gen: number, done: () => void): void {
    const acting = [...pg.acting];
    if (historyHasSet(this.c.map()?.pgHistory.get(pg.key), acting)) { done(); return; }
    const startMs = this.c.env.nowMs();
    this.c.recordPgHistory(pg.key, 'add', acting, (err) => {
      if (pg.peeringGen !== gen) return;
      if (err !== null) {
        this.c.log.info({ pg: pg.key, acting, code: err.code, err: err.message }, 'recording the acting set in the pg history failed; retrying');
        this.c.env.setTimeout(() => { if (pg.peeringGen === gen) this.recordActingHistory(pg, gen, done); }, 1000);
        return;
      }
      this.c.log.debug({ pg: pg.key, acting, ms: Math.round(this.c.env.nowMs() - startMs) }, 'acting set recorded in the pg history');
      done();
    });
  }

  /**
   * Persists `info` and the log `entries` (replacing the current log) in one transaction.
   * Bounded by 2 × PG_LOG_MAX + 3 ops, within StoreLimits.opsPerTxnMax (asserted at load).
   */
  adoptLog(pg: Pg, info: PgInfo, entries: readonly PgLogEntry[], tail: EVersion, cb: (err: ClusterError | null) => void): void {
    const txn = new Transaction();
    const want = new Set(entries.map((e) => logKey(e.version)));
    const have = new Set(pg.log.entries.map((e) => logKey(e.version)));
    for (const e of pg.log.entries) { const k = logKey(e.version); if (!want.has(k)) txn.pgRemove(pg.key, k); }
    for (const e of entries) { const k = logKey(e.version); if (!have.has(k)) txn.pgPut(pg.key, k, encodeLogEntry(e)); }
    txn.pgPut(pg.key, INFO_KEY, encodeInfo(info));
    txn.pgPut(pg.key, 'tail', encodeInfo({ ...emptyInfo(), logTail: tail }));
    if (pg.pgNum > 0) txn.pgPut(pg.key, PGNUM_KEY, encodePgNum(pg.pgNum));
    if (entries !== pg.log.entries) pg.log.reset(entries, tail);
    pg.info = { ...info };
    this.c.store.submit(txn, cb);
  }


  /**
   * Active+clean at full size: every acting member holds everything, so the PG history can
   * shrink to the acting set (the monitor checks we are still the primary for exactly it).
   * Fire and forget: a refused or lost reset is retried from `tick` (at most every 5 s).
   */
  maybeResetHistory(pg: Pg): void {
    const map = this.c.map();
    if (pg.role !== 'primary' || (pg.state & PgState.CLEAN) === 0 || pg.acting.length !== pg.poolSize || map === undefined) return;
    if (pg.historyReset === 'inflight' || pg.historyReset === pg.interval || this.c.env.nowMs() < pg.historyResetRetryMs) return;
    const acting = [...pg.acting];
    if (historyIsOnly(map.pgHistory.get(pg.key), acting)) { pg.historyReset = pg.interval; return; }
    const interval = pg.interval;
    pg.historyReset = 'inflight';
    this.c.recordPgHistory(pg.key, 'reset', acting, (err) => {
      if (pg.historyReset !== 'inflight') return; // a new interval started meanwhile
      if (err !== null) {
        pg.historyReset = 0;
        pg.historyResetRetryMs = this.c.env.nowMs() + 5000;
        this.c.log.info({ pg: pg.key, acting, code: err.code, err: err.message }, 'pg history reset refused; will retry');
        return;
      }
      pg.historyReset = interval;
      this.c.log.debug({ pg: pg.key, acting }, 'pg history reset to the clean acting set');
    });
  }
}
