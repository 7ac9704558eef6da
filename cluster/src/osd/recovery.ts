/**
 * Recovery and backfill on the primary (docs/replication.md §5): whole-object pulls into the
 * primary and pushes to every acting peer missing an object, backfill scans + diffs, and the
 * completion of each peer (ACTIVATE mode 2) up to active+clean.
 *
 * Owns: the PG's `recovering` set (objects and backfill scans in progress, at most
 * `recoveryConcurrency` objects), the missing sets once peering computed them, the recovery
 * counters and the `pg recovered` log line.
 * Also the primary's own backfill before activation (`incomplete+backfilling`, peering.ts
 * `backfillBeforeActivation`): the same scan + pulls, no pushes, then the primary is marked
 * complete and peers again (`completeSelfBackfill`).
 * Invariants it relies on:
 * - Runs only on an active primary PG (or one backfilling itself before activation); every callback re-checks `peeringGen` and a failed
 *   pull/push/scan re-peers the PG (which recomputes every missing set).
 * - An object with a client write in flight is not recovered now: the write's completion
 *   retries its object (client-ops.ts `runObject`), which recovers it first.
 * - While any backfill scan is pending no client op runs on the PG (client-ops.ts `tryOp`),
 *   so both sides are listed without a write in between; `kickAll` resumes them.
 */
import type { ClusterError } from '../common/errors.js';
import type { ObjectName, OsdId } from '../common/ids.js';
import { MsgType } from '../msg/types.js';
import { INFO_KEY, encodeInfo } from '../pg/pg-log.js';
import type { PgInfo } from '../pg/pg-log.js';
import { PgState } from '../pg/pg-state.js';
import { Transaction } from '../store/types.js';
import type { ObjectId } from '../store/types.js';
import { installCopy, localScan, readCopy } from './object-copy.js';
import type { OsdContext } from './osd-context.js';
import { compareVersion } from './osd-protocol.js';
import type { EVersion } from './osd-protocol.js';
import { decodeObjectCopy, decodeScanReply, encodeObjectRef, encodePgActivate, encodePgScan, encodePush, joinChunks } from './osd-peer-protocol.js';
import type { ScanEntry } from './osd-peer-protocol.js';
import { activeState, errOf, isActive, isSelfBackfilling } from './pg.js';
import type { Need, Pg } from './pg.js';

/** What recovery uses from the rest of the OSD. */
export type RecoveryContext = Pick<OsdContext,
  'id' | 'env' | 'log' | 'store' | 'stats' | 'map' | 'peerRequest' | 'setState' | 'repeer' | 'runObject' | 'kickAll' | 'maybeClearPgTemp'>;

export class Recovery {
  constructor(private readonly c: RecoveryContext, private readonly concurrency: number) {}

  /** An op found `name` missing somewhere: recover it now unless that is already under way. */
  recoverSoon(pg: Pg, name: string): void {
    if (!pg.recovering.has(name) && isActive(pg)) this.recoverObject(pg, name, pg.peeringGen);
  }

  /** Runs recovery work up to the concurrency bound; backfill scans first. */
  recover(pg: Pg): void {
    if (pg.role !== 'primary' || !(isActive(pg) || isSelfBackfilling(pg))) return;
    const gen = pg.peeringGen;
    // Backfill: the primary first (from the authoritative peer), then peers (from the primary).
    if (pg.backfillPending.size > 0) {
      if (pg.backfillPending.has(this.c.id)) { this.backfillSelf(pg, gen); return; }
      if (pg.selfMissing.size === 0) for (const osd of [...pg.backfillPending]) this.backfillPeer(pg, osd, gen);
    }
    const names: string[] = [];
    for (const k of pg.selfMissing.keys()) names.push(k);
    for (const m of pg.peerMissing.values()) for (const k of m.keys()) names.push(k);
    for (const name of names) {
      if (pg.recovering.size >= this.concurrency) break;
      if (!pg.recovering.has(name)) this.recoverObject(pg, name, gen);
    }
    this.checkRecoveryDone(pg);
  }

  private checkRecoveryDone(pg: Pg): void {
    if (pg.role === 'primary' && isSelfBackfilling(pg)) { this.completeSelfBackfill(pg); return; }
    if (pg.role !== 'primary' || !isActive(pg)) return;
    // Peers whose missing set is empty (and not backfilling) are told they are complete.
    for (const osd of [...pg.incompletePeers]) {
      if (pg.backfillPending.has(osd) || (pg.peerMissing.get(osd)?.size ?? 0) > 0) continue;
      pg.incompletePeers.delete(osd);
      const gen = pg.peeringGen;
      const info: PgInfo = { ...pg.info, lastUpdate: pg.log.head, lastComplete: pg.log.head, backfilling: false };
      pg.completing.add(osd);
      this.c.peerRequest(osd, MsgType.MSG_OSD_PG_ACTIVATE, encodePgActivate({ pg: pg.key, interval: pg.interval, mode: 2, info, tail: pg.log.tail, entries: [] }), undefined, (e) => {
        if (pg.peeringGen !== gen) return;
        pg.completing.delete(osd);
        if (e !== null) { this.c.repeer(pg); return; }
        this.c.setState(pg, activeState(pg));
        this.maybeLogRecovered(pg);
        // A remapped PG may hand over to its up set once every member acknowledged being complete.
        this.c.maybeClearPgTemp(pg);
      });
    }
    if (pg.selfMissing.size === 0 && !pg.backfillPending.has(this.c.id) && compareVersion(pg.info.lastComplete, pg.log.head) < 0 && pg.recovering.size === 0) {
      pg.info = { ...pg.info, lastComplete: pg.log.head, backfilling: false };
      const txn = new Transaction().pgPut(pg.key, INFO_KEY, encodeInfo(pg.info));
      this.c.store.submit(txn, () => undefined);
    }
    this.c.setState(pg, activeState(pg));
    this.maybeLogRecovered(pg);
  }

  /**
   * Backfill before activation: once the scan's diff is pulled in, persists the primary's info
   * as complete (last_complete = last_update, not backfilling), then peers again — now with a
   * complete acting member, so the PG activates (peering.ts `choose`).
   */
  private completeSelfBackfill(pg: Pg): void {
    if (pg.backfillPending.has(this.c.id) || pg.selfMissing.size > 0 || pg.recovering.size > 0) return;
    const gen = pg.peeringGen;
    pg.recovering.add('\0self-complete');
    pg.info = { ...pg.info, lastUpdate: pg.log.head, lastComplete: pg.log.head, backfilling: false };
    const txn = new Transaction().pgPut(pg.key, INFO_KEY, encodeInfo(pg.info));
    this.c.store.submit(txn, (err) => {
      pg.recovering.delete('\0self-complete');
      if (pg.peeringGen !== gen) return;
      if (err !== null) { this.c.log.error({ pg: pg.key, err }, 'persisting the backfilled info failed'); this.c.repeer(pg); return; }
      this.c.log.info({ pg: pg.key, objects: pg.recoveredObjects, bytes: pg.recoveredBytes, ms: Math.round(this.c.env.nowMs() - pg.recoveryStartMs) },
        'primary backfilled before activation; peering again');
      this.c.repeer(pg);
    });
  }

  /** Before activation nothing else retries a PG whose source is missing: peer again in 2 s. */
  private retryLater(pg: Pg, gen: number): void {
    if (!isSelfBackfilling(pg)) return;
    this.c.env.setTimeout(() => { if (pg.peeringGen === gen && isSelfBackfilling(pg)) this.c.repeer(pg); }, 2000);
  }

  private maybeLogRecovered(pg: Pg): void {
    if ((pg.state & PgState.CLEAN) !== 0 && pg.recoveryStartMs > 0 && pg.recoveredObjects > 0) {
      this.c.log.info({ pg: pg.key, objects: pg.recoveredObjects, bytes: pg.recoveredBytes, ms: Math.round(this.c.env.nowMs() - pg.recoveryStartMs) }, 'pg recovered');
      pg.recoveryStartMs = 0;
    }
  }

  /** Brings one object up to date on the primary (pull) and on every peer missing it (push). */
  private recoverObject(pg: Pg, name: string, gen: number): void {
    if (pg.recovering.has(name)) return;
    if ((pg.inflightByObj.get(name) ?? 0) > 0) return; // retried when the write completes (runObject)
    pg.recovering.add(name);
    const obj: ObjectId = { pool: pg.pool, name: name as ObjectName };
    const fin = (ok: boolean): void => {
      pg.recovering.delete(name);
      if (pg.peeringGen !== gen) return;
      if (!ok) { this.c.repeer(pg); return; }
      this.c.runObject(pg, name);
      this.recover(pg);
    };
    const pushAll = (): void => {
      const targets = [...pg.peerMissing].filter(([, m]) => m.has(name)).map(([osd]) => osd);
      if (targets.length === 0) { fin(true); return; }
      readCopy(this.c.store, this.c.env, obj, (err, copy, dataOrNone) => {
        const data = dataOrNone ?? new Uint8Array(0);
        if (pg.peeringGen !== gen) { pg.recovering.delete(name); return; }
        if (err !== null || copy === undefined) { this.c.log.error({ pg: pg.key, name, err }, 'recovery read failed'); fin(false); return; }
        let left = targets.length;
        let ok = true;
        const payload = encodePush(pg.key, pg.interval, copy);
        for (const osd of targets) {
          this.c.peerRequest(osd, MsgType.MSG_OSD_PG_PUSH, payload, data.length > 0 ? [data] : undefined, (e) => {
            if (e === null) {
              pg.peerMissing.get(osd)?.delete(name);
              pg.recoveredObjects++; pg.recoveredBytes += data.length;
              this.c.stats.recoveredObjects++; this.c.stats.recoveredBytes += data.length;
            } else ok = false;
            if (--left === 0) fin(ok);
          });
        }
      });
    };
    if (!pg.selfMissing.has(name)) { pushAll(); return; }
    // Pull from a peer that has it: the authoritative one first, any complete peer otherwise.
    const src = this.sourceFor(pg, name);
    if (src === undefined) {
      this.c.log.error({ pg: pg.key, name }, 'no recovery source');
      pg.recovering.delete(name);
      this.retryLater(pg, gen);
      return;
    }
    this.c.peerRequest(src, MsgType.MSG_OSD_PG_PULL, encodeObjectRef(pg.pool, name), undefined, (err, reply) => {
      if (pg.peeringGen !== gen) { pg.recovering.delete(name); return; }
      if (err !== null || reply === undefined) { fin(false); return; }
      const copy = decodeObjectCopy(reply.payload);
      const data = joinChunks(reply.data);
      installCopy(this.c.store, copy, data, (e) => {
        if (e !== null) { fin(false); return; }
        pg.selfMissing.delete(name);
        pg.recoveredObjects++; pg.recoveredBytes += data.length;
        this.c.stats.recoveredObjects++; this.c.stats.recoveredBytes += data.length;
        pushAll();
      });
    });
  }

  /** The peer to pull `name` from: one complete up to the needed version, else (no such peer) any that is not known to miss it. */
  private sourceFor(pg: Pg, name: string): OsdId | undefined {
    const need = pg.selfMissing.get(name)?.version;
    return (need === undefined ? undefined : this.pickSource(pg, name, need)) ?? this.pickSource(pg, name, undefined);
  }

  private pickSource(pg: Pg, name: string, need: EVersion | undefined): OsdId | undefined {
    let best: OsdId | undefined;
    let bestV: EVersion | undefined;
    for (const [osd, r] of pg.peerInfos) {
      if (!r.hasInfo || r.info.backfilling) continue;
      if (pg.peerMissing.get(osd)?.has(name) === true) continue;
      // Why: a peer outside the acting set has no peerMissing entry; one whose last_complete
      // is older than the needed version may itself still lack the object (it adopted the log
      // but was never recovered), and pulling from it installs an older copy or its absence
      // (sim seed 0x818a0e591c64e3f6: the new primary "recovered" 4 objects as absent).
      if (need !== undefined && compareVersion(r.info.lastComplete, need) < 0) continue;
      if (this.c.map()?.osds.get(osd)?.up !== true) continue;
      if (bestV === undefined || compareVersion(r.info.lastUpdate, bestV) > 0) { best = osd; bestV = r.info.lastUpdate; }
    }
    return best;
  }


  scanPeer(pg: Pg, osd: OsdId, withCrc: boolean, cb: (err: ClusterError | null, list?: ScanEntry[]) => void): void {
    const pool = this.c.map()?.pools.get(pg.pool);
    if (pool === undefined) { cb(errOf('CLU_ERR_NOT_FOUND', 'pool')); return; }
    if (osd === this.c.id) { localScan(this.c.store, pg.pool, pg.seed, pool.pgNum, withCrc, cb); return; }
    this.c.peerRequest(osd, MsgType.MSG_OSD_PG_SCAN, encodePgScan({ pg: pg.key, interval: pg.interval, pool: pg.pool, seed: pg.seed, pgNum: pool.pgNum, withCrc }), undefined, (err, reply) => {
      if (err !== null || reply === undefined) { cb(err ?? errOf('CLU_ERR_IO', 'scan')); return; }
      cb(null, decodeScanReply(reply.payload));
    });
  }

  private backfillSelf(pg: Pg, gen: number): void {
    if (pg.recovering.has('\0backfill-self')) return;
    const src = this.sourceFor(pg, '\0none');
    if (src === undefined) { this.c.log.error({ pg: pg.key }, 'no backfill source for the primary'); this.retryLater(pg, gen); return; }
    pg.recovering.add('\0backfill-self');
    this.scanPeer(pg, src, false, (err, theirs) => {
      if (pg.peeringGen !== gen) { pg.recovering.delete('\0backfill-self'); return; }
      this.scanPeer(pg, this.c.id, false, (err2, mine) => {
        pg.recovering.delete('\0backfill-self');
        if (pg.peeringGen !== gen) return;
        if (err !== null || err2 !== null || theirs === undefined || mine === undefined) { this.c.repeer(pg); return; }
        const m = diff(theirs, mine);
        pg.selfMissing = m;
        pg.backfillPending.delete(this.c.id);
        this.c.log.info({ pg: pg.key, src, objects: m.size }, 'primary backfill scan');
        this.recover(pg);
        this.c.kickAll(pg);
      });
    });
  }

  private backfillPeer(pg: Pg, osd: OsdId, gen: number): void {
    const tag = `\0backfill-${osd}`;
    if (pg.recovering.has(tag)) return;
    pg.recovering.add(tag);
    this.scanPeer(pg, osd, false, (err, theirs) => {
      if (pg.peeringGen !== gen) { pg.recovering.delete(tag); return; }
      this.scanPeer(pg, this.c.id, false, (err2, mine) => {
        pg.recovering.delete(tag);
        if (pg.peeringGen !== gen) return;
        if (err !== null || err2 !== null || theirs === undefined || mine === undefined) { this.c.repeer(pg); return; }
        const m = diff(mine, theirs);
        // Objects with a write in flight are current on the peer once it commits (the sub-op
        // went out before this scan answered); re-pushing them anyway is harmless.
        pg.peerMissing.set(osd, m);
        pg.backfillPending.delete(osd);
        this.c.log.info({ pg: pg.key, osd, objects: m.size }, 'backfill scan');
        this.recover(pg);
        this.c.kickAll(pg);
      });
    });
  }
}

/** Diff of `src` (authoritative) against `dst`: what dst must receive or delete. */
function diff(src: ScanEntry[], dst: ScanEntry[]): Map<string, Need> {
  const m = new Map<string, Need>();
  const d = new Map(dst.map((e) => [e.name, e]));
  for (const e of src) {
    const x = d.get(e.name);
    if (x === undefined || compareVersion(x.version, e.version) !== 0 || x.size !== e.size) m.set(e.name, { version: e.version });
    d.delete(e.name);
  }
  for (const name of d.keys()) m.set(name, { version: undefined });
  return m;
}

