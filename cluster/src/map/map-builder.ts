/**
 * Constructors with defaults for OSD and pool records, and `buildMap` for tools and tests that
 * need a map without a monitor. Everything goes through `applyIncremental`, so a built map is
 * exactly what a monitor would have produced from the same ops.
 */
import type { Epoch, OsdId, PoolId } from '../common/ids.js';
import { DEFAULT_OBJECT_SIZE_BYTES, WEIGHT_ONE, emptyMap } from './cluster-map.js';
import type { ClusterMap, FailureDomain, OsdInfo, OsdLocation, PoolInfo } from './cluster-map.js';
import { applyIncremental } from './incremental.js';
import type { MapOp } from './incremental.js';

/** Inputs for `makeOsd`; omitted fields get defaults (up, in, weight 1.0). */
export interface OsdSpec {
  id: number;
  host: string;
  rack?: string;
  weight?: number;
  uuid?: string;
  addr?: string;
  up?: boolean;
  in?: boolean;
}

/** Builds an OsdInfo from a spec. */
export function makeOsd(spec: OsdSpec): OsdInfo {
  const location: OsdLocation = spec.rack === undefined ? { host: spec.host } : { host: spec.host, rack: spec.rack };
  return {
    id: spec.id as OsdId,
    uuid: spec.uuid ?? `osd-uuid-${spec.id}`,
    addr: spec.addr ?? '',
    up: spec.up ?? true,
    in: spec.in ?? true,
    weight: spec.weight ?? WEIGHT_ONE,
    location,
    upFrom: 0 as Epoch,
    downAt: 0 as Epoch,
    autoOut: false,
  };
}

/** Inputs for `makePool`; defaults: size 3, minSize 2, 64 PGs, host domain, 4 MiB objects. */
export interface PoolSpec {
  id: number;
  name: string;
  size?: number;
  minSize?: number;
  pgNum?: number;
  failureDomain?: FailureDomain;
  objectSizeBytes?: number;
  stripeUnitBytes?: number;
  stripeCount?: number;
  createdEpoch?: number;
}

/** Builds a PoolInfo from a spec. */
export function makePool(spec: PoolSpec): PoolInfo {
  const size = spec.size ?? 3;
  const objectSizeBytes = spec.objectSizeBytes ?? DEFAULT_OBJECT_SIZE_BYTES;
  return {
    id: spec.id as PoolId,
    name: spec.name,
    size,
    minSize: spec.minSize ?? Math.min(size, Math.max(1, size - 1)),
    pgNum: spec.pgNum ?? 64,
    failureDomain: spec.failureDomain ?? 'host',
    objectSizeBytes,
    stripeUnitBytes: spec.stripeUnitBytes ?? objectSizeBytes,
    stripeCount: spec.stripeCount ?? 1,
    createdEpoch: (spec.createdEpoch ?? 1) as Epoch,
  };
}

/** Builds a map at epoch 1 holding the given OSDs and pools. */
export function buildMap(options: { fsid?: string; osds: OsdSpec[]; pools?: PoolSpec[]; nowMs?: number }): ClusterMap {
  const fsid = options.fsid ?? '00000000-0000-4000-8000-000000000000';
  const nowMs = options.nowMs ?? 0;
  const ops: MapOp[] = [
    ...options.osds.map((s): MapOp => ({ op: 'osd-add', osd: makeOsd(s) })),
    ...(options.pools ?? []).map((s): MapOp => ({ op: 'pool-add', pool: makePool(s) })),
  ];
  return applyIncremental(emptyMap(fsid, nowMs), { epoch: 1 as Epoch, fsid, modifiedMs: nowMs, ops });
}

/** `count` OSDs spread round-robin over `hostCount` hosts named host-0…, ids 0…count-1. */
export function evenOsds(count: number, hostCount: number, weight = WEIGHT_ONE): OsdSpec[] {
  const specs: OsdSpec[] = [];
  for (let id = 0; id < count; id++) specs.push({ id, host: `host-${id % hostCount}`, weight });
  return specs;
}

/** Returns `map` with one more epoch applying `ops` (tools and tests). */
export function nextMap(map: ClusterMap, ops: MapOp[]): ClusterMap {
  return applyIncremental(map, { epoch: (map.epoch + 1) as Epoch, fsid: map.fsid, modifiedMs: map.modifiedMs, ops });
}
