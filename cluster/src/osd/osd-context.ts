/**
 * The internal interface between `OsdCore` and the parts of the OSD data path (client ops,
 * replica side, peering, recovery/backfill, scrub, state reports). `OsdCore` implements it by
 * delegating to the parts; each part declares the subset it uses with `Pick<OsdContext, …>`, so
 * its dependencies are visible in its constructor signature.
 *
 * Invariants:
 * - Everything runs to completion on callbacks of one event loop (GUIDE principle 9): no part
 *   holds a lock; a callback re-checks `pg.peeringGen` (pg.ts) before using what it captured.
 * - `map()` is the newest map handed to `OsdCore.handleMap` (undefined before the first one).
 */
import type { Logger } from 'pino';
import type { ClusterError } from '../common/errors.js';
import type { OsdId } from '../common/ids.js';
import type { Env } from '../env/env.js';
import type { ClusterMap } from '../map/cluster-map.js';
import type { InboundMessage } from '../msg/session.js';
import type { PgInfo, PgLogEntry } from '../pg/pg-log.js';
import type { ObjectStore } from '../store/object-store.js';
import type { EVersion } from './osd-protocol.js';
import type { ScanEntry } from './osd-peer-protocol.js';
import type { Pg } from './pg.js';

/** Counters (bench, tests, logs). */
export interface OsdCoreStats {
  clientOps: number;
  repops: number;
  recoveredObjects: number;
  recoveredBytes: number;
  pushesReceived: number;
  pushBytesReceived: number;
}

export type PeerCallback = (err: ClusterError | null, reply?: InboundMessage) => void;

export interface OsdContext {
  // ---- services
  readonly id: OsdId;
  readonly env: Env;
  readonly log: Logger;
  readonly store: ObjectStore;
  readonly stats: OsdCoreStats;
  /** Every PG this OSD holds, by key. */
  readonly pgs: Map<string, Pg>;
  map(): ClusterMap | undefined;
  /** True once `OsdCore.stop()` ran: no new peering round starts (its requests would all fail). */
  stopped(): boolean;
  /** A request to another OSD (peers.ts); fails with UNAVAILABLE when it is not up. */
  peerRequest(id: OsdId, type: number, payload: Uint8Array, data: Uint8Array[] | undefined, cb: PeerCallback): void;
  /** Checked state transition + coalesced report to the monitor (pg-report.ts). */
  setState(pg: Pg, state: number): void;
  /** OsdCoreOptions.recordPgHistory. */
  recordPgHistory(pgKey: string, op: 'add' | 'reset', set: readonly OsdId[], cb: (err: ClusterError | null) => void): void;
  /** OsdCoreOptions.requestPgTemp. */
  requestPgTemp(pgKey: string, osds: readonly OsdId[], cb: (err: ClusterError | null) => void): void;

  // ---- client op path (client-ops.ts)
  runQueue(pg: Pg): void;
  runObject(pg: Pg, name: string): void;
  kickAll(pg: Pg): void;
  requeueInflight(pg: Pg): void;
  /** Answers the queued ops of a PG this OSD is no longer primary for (WRONG_TARGET). */
  refuseQueued(pg: Pg): void;
  /**
   * A peer speaks for a newer interval of a PG this OSD serves as primary: this OSD's map is
   * behind. Stops serving (in-flight writes requeued, no activation of the old interval) until
   * the map that ends the interval arrives; `handleMap` then sets the role.
   */
  stepDown(pg: Pg): void;

  // ---- peering (peering.ts)
  startPeering(pg: Pg): void;
  repeer(pg: Pg): void;
  adoptLog(pg: Pg, info: PgInfo, entries: readonly PgLogEntry[], tail: EVersion, cb: (err: ClusterError | null) => void): void;
  maybeResetHistory(pg: Pg): void;
  /** Temp primary of a remapped PG whose members are all complete: ask the monitor to clear its pg_temp. */
  maybeClearPgTemp(pg: Pg): void;

  // ---- recovery and backfill (recovery.ts)
  recover(pg: Pg): void;
  recoverSoon(pg: Pg, name: string): void;
  /** The object list of `pg` on `osd` (this OSD: a local scan), with checksums for scrub. */
  scanPeer(pg: Pg, osd: OsdId, withCrc: boolean, cb: (err: ClusterError | null, list?: ScanEntry[]) => void): void;
}
