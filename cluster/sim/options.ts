/**
 * Swarm testing (TigerBeetle): every option of a run is derived from its seed, so one number
 * reproduces the cluster shape, the fault mix and the workload, and a CI run over many seeds
 * explores many configurations rather than one tuned by hand.
 */
import type { Seed } from './rng.js';
import { derive } from './rng.js';
import type { DiskProfile } from './sim-disk.js';
import { DEFAULT_DISK_PROFILE } from './sim-disk.js';
import type { NetProfile } from './sim-network.js';
import { DEFAULT_NET_PROFILE } from './sim-network.js';

/** Relative weights of the fault kinds the atlas draws from. */
export interface FaultMix {
  killOsd: number;
  pauseOsd: number;
  isolateOsd: number;
  clogPath: number;
  killMon: number;
  resetConnection: number;
  splitBrain: number;
}

/** Everything a run needs. */
export interface SimOptions {
  seed: Seed;
  osdCount: number;
  poolSize: number;
  poolMinSize: number;
  pgNum: number;
  osdGraceMs: number;
  downOutIntervalMs: number;
  beaconMs: number;
  net: NetProfile;
  disk: DiskProfile;
  /** Mean simulated ms between two fault injections. */
  faultIntervalMeanMs: number;
  faultMix: FaultMix;
  buggify: boolean;
  /** Clock skew bounds. */
  clockRateSpread: number;
  wallSkewMs: number;
  /** Phases (simulated ms). */
  warmupMs: number;
  faultPhaseMs: number;
  /** After faults stop: the liveness bound. */
  livenessBoundMs: number;
  /** Workload. */
  clientCount: number;
  objectCount: number;
  writeFraction: number;
  opIntervalMeanMs: number;
  maxObjectBytes: number;
  /** Real OSD: object-store journal size (small ones checkpoint often), periodic scrub, sub-op timeout. */
  journalBytes: number;
  scrubIntervalMs: number;
  peerTimeoutMs: number;
  /**
   * PG split: an admin `pool set rbd pg_num splitPgNum` at `splitAtMs` into the fault phase
   * (0 = no split in this run). Drawn from its own stream so the draws above keep their values.
   */
  splitAtMs: number;
  splitPgNum: number;
  /**
   * PG log bounds of the real OSD (OsdCoreOptions.pgLogBounds; null = production's 500/3000,
   * which a run's few hundred writes per PG never reach): small ones make runs trim the log
   * and backfill an OSD that missed more writes than the log holds.
   */
  pgLogBounds: { min: number; max: number } | null;
  /** Stop after this many events (0 = no limit). */
  maxEvents: number;
}

/** Derives the options of `seed` (`overrides` are for tests and --flags). */
export function optionsFromSeed(seed: Seed, overrides: Partial<SimOptions> = {}): SimOptions {
  const r = derive(seed, 'options');
  const osdCount = r.range(3, 6);
  const shape = r.pick([[3, 2], [3, 2], [3, 2], [2, 1], [3, 1], [2, 2]] as const);
  const poolSize = Math.min(shape[0], osdCount);
  const poolMinSize = Math.min(shape[1], poolSize);
  const faulty = r.chance(0.85);
  const o: SimOptions = {
    seed,
    osdCount, poolSize, poolMinSize,
    pgNum: r.pick([8, 16, 32]),
    osdGraceMs: r.pick([2000, 3000, 5000]),
    downOutIntervalMs: r.pick([15_000, 600_000]),
    beaconMs: r.pick([500, 1000]),
    net: {
      ...DEFAULT_NET_PROFILE,
      delayMinMs: r.pick([0.02, 0.1, 0.5]),
      delayMeanMs: r.pick([0.05, 0.5, 3]),
      resetProb: r.pick([0, 0, 0.0002, 0.001]),
      splitProb: r.pick([0, 0.1, 0.4]),
    },
    disk: {
      ...DEFAULT_DISK_PROFILE,
      syncMeanMs: r.pick([0.1, 0.5, 3]),
      writeMeanMs: r.pick([0.01, 0.1]),
      slowProb: r.pick([0, 0, 0.005]),
      slowMs: r.pick([20, 200]),
      crashKeepProb: r.pick([0, 0.2, 0.5]),
      crashTearProb: r.pick([0, 0.2, 0.4]),
    },
    faultIntervalMeanMs: faulty ? r.pick([1000, 3000, 8000]) : 0,
    faultMix: {
      killOsd: r.pick([0, 1, 3]), pauseOsd: r.pick([0, 1, 2]), isolateOsd: r.pick([0, 1, 2]), clogPath: r.pick([0, 1, 2]),
      killMon: r.pick([0, 0.5, 1]), resetConnection: r.pick([0, 1, 2]), splitBrain: r.pick([0, 0.5]),
    },
    buggify: r.chance(0.5),
    clockRateSpread: r.pick([0, 0.001, 0.01]),
    wallSkewMs: r.pick([0, 50, 500]),
    warmupMs: 4000,
    faultPhaseMs: r.pick([10_000, 15_000, 25_000]),
    livenessBoundMs: 40_000,
    clientCount: r.range(1, 3),
    objectCount: r.pick([4, 16, 64]),
    writeFraction: r.pick([0.3, 0.6, 0.9]),
    opIntervalMeanMs: r.pick([20, 50, 120]),
    maxObjectBytes: r.pick([6000, 20000]),
    // Drawn last so that the draws above (and the stand-in's seeds) keep their values.
    journalBytes: r.pick([1, 2, 8]) * 1024 * 1024,
    scrubIntervalMs: r.pick([0, 0, 2000]),
    peerTimeoutMs: r.pick([3000, 10_000]),
    splitAtMs: 0,
    splitPgNum: 0,
    pgLogBounds: null,
    maxEvents: 0,
  };
  // Half of the runs grow pgNum once during the fault phase (under whatever faults are active
  // then): doubling (Ceph's usual step) or to a size that is not a power of two (stable_mod).
  const s = derive(seed, 'split');
  if (s.chance(0.5)) {
    o.splitAtMs = 1 + s.int(Math.floor(o.faultPhaseMs * 0.8));
    o.splitPgNum = s.pick([2 * o.pgNum, 2 * o.pgNum, o.pgNum + s.range(1, o.pgNum - 1)]);
  }
  const l = derive(seed, 'pglog');
  if (l.chance(0.5)) {
    const min = l.pick([4, 16, 40]);
    o.pgLogBounds = { min, max: min * l.pick([1, 3, 10]) };
  }
  return { ...o, ...overrides };
}

/** A one-line summary for the run header. */
export function describeOptions(o: SimOptions): string {
  const mix = Object.entries(o.faultMix).filter(([, w]) => w > 0).map(([k, w]) => `${k}:${w}`).join(',');
  return `osds=${o.osdCount} pool=${o.poolSize}/${o.poolMinSize} pgs=${o.pgNum} grace=${o.osdGraceMs} downOut=${o.downOutIntervalMs} ` +
    `net=${o.net.delayMinMs}+exp(${o.net.delayMeanMs}) reset=${o.net.resetProb} sync=${o.disk.syncMeanMs} ` +
    `faults=${o.faultIntervalMeanMs === 0 ? 'none' : `every~${o.faultIntervalMeanMs}ms[${mix}]`} buggify=${o.buggify} ` +
    `skew=${o.clockRateSpread}/${o.wallSkewMs} phase=${o.faultPhaseMs} clients=${o.clientCount} objects=${o.objectCount} w=${o.writeFraction}` +
    (o.splitAtMs > 0 ? ` split=${o.pgNum}→${o.splitPgNum}@${o.splitAtMs}` : '') +
    (o.pgLogBounds === null ? '' : ` pglog=${o.pgLogBounds.min}/${o.pgLogBounds.max}`);
}
