/**
 * Prints placement uniformity and movement tables (docs/placement.md quotes its output).
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/placement-report.js [--pgs=1024,4096]
 *
 * Layouts: N OSDs of weight 1.0 spread evenly over hosts (4 OSDs per host when N ≥ 16, else
 * 1–2), pool size 3 with failure domain host. Movement: add one OSD to a new host, add one OSD
 * to an existing host, and mark one OSD out; ideal moved fraction is that OSD's weight share.
 */
import { WEIGHT_ONE } from '../cluster/src/map/cluster-map.js';
import type { MapOp } from '../cluster/src/map/incremental.js';
import { buildMap, evenOsds, makeOsd, nextMap } from '../cluster/src/map/map-builder.js';
import type { OsdId, PoolId } from '../cluster/src/common/ids.js';
import { crushBaselineMapper, measureMovement, measureUniformity } from '../cluster/src/placement/placement-stats.js';
import type { RawMapper } from '../cluster/src/placement/placement-stats.js';

const OSD_COUNTS = [3, 8, 16, 32, 64];

function hostsFor(n: number): number {
  if (n <= 3) return n;
  if (n < 16) return n / 2;
  return n / 4;
}

function pct(v: number): string {
  return `${v.toFixed(1)}%`.padStart(7);
}

function uniformityTable(pgCounts: number[]): void {
  console.log('\nUniformity (size 3, host domain): replicas per OSD vs mean');
  console.log('  OSDs  hosts    PGs  PGs/OSD  max over  max under  stddev  short');
  for (const pgNum of pgCounts) {
    for (const n of OSD_COUNTS) {
      const hosts = hostsFor(n);
      const map = buildMap({ osds: evenOsds(n, hosts), pools: [{ id: 1, name: 'rbd', pgNum }] });
      const pool = map.pools.get(1 as PoolId);
      if (pool === undefined) throw new Error('no pool');
      const u = measureUniformity(map, pool);
      console.log(`  ${String(n).padStart(4)} ${String(hosts).padStart(6)} ${String(pgNum).padStart(6)} ${u.meanPerOsd.toFixed(0).padStart(8)} ${pct(u.maxOverPct)}   ${pct(u.maxUnderPct)}  ${pct(u.stddevPct)} ${String(u.shortPgs).padStart(5)}`);
    }
  }
}

function movementRow(label: string, n: number, pgNum: number, ops: MapOp[], ideal: number, mapper?: RawMapper): void {
  const before = buildMap({ osds: evenOsds(n, hostsFor(n)), pools: [{ id: 1, name: 'rbd', pgNum }] });
  const after = nextMap(before, ops);
  const pool = before.pools.get(1 as PoolId);
  if (pool === undefined) throw new Error('no pool');
  const changedOsd = ops[0]?.op === 'osd-add' ? ops[0].osd.id : 0;
  const m = measureMovement(before, after, pool, mapper === undefined ? { changedOsd } : { changedOsd, mapper });
  const ratio = (m.movedFraction / ideal).toFixed(2).padStart(5);
  const coll = pct((100 * m.collateralReplicas) / m.replicaCount);
  const minimum = m.movedReplicas / Math.max(1, m.changedOsdReplicas);
  console.log(`  ${label.padEnd(27)} ${String(n).padStart(4)} ${String(pgNum).padStart(6)} ${pct(100 * m.movedFraction)} ${pct(100 * ideal)}  ${ratio}×  ${minimum.toFixed(2).padStart(5)}× ${coll}`);
}

function movementTable(pgCounts: number[]): void {
  console.log('\nMovement: moved replica fraction vs ideal (weight share of the changed OSD);');
  console.log('vs-min = moved / replicas the changed OSD holds (the true minimum); collateral = moved');
  console.log('replicas that neither land on nor leave the changed OSD, as a fraction of all replicas');
  console.log('  change                      OSDs    PGs   moved   ideal  ratio  vs-min  collateral');
  for (const pgNum of pgCounts) {
    for (const n of OSD_COUNTS.filter((c) => c >= 8)) {
      const cases: [string, MapOp[], number][] = [
        ['add osd on new host', [{ op: 'osd-add', osd: makeOsd({ id: n, host: 'host-new' }) }], 1 / (n + 1)],
        ['add osd on old host', [{ op: 'osd-add', osd: makeOsd({ id: n, host: 'host-0' }) }], 1 / (n + 1)],
        ['mark one osd out', [{ op: 'osd-set', id: 0 as OsdId, changes: { in: false } }], 1 / n],
        ['double weight of one', [{ op: 'osd-set', id: 0 as OsdId, changes: { weight: 2 * WEIGHT_ONE } }], 1 / (n + 1)],
      ];
      for (const [label, ops, ideal] of cases) movementRow(label, n, pgNum, ops, ideal);
      for (const [label, ops, ideal] of cases) movementRow(`crush: ${label}`, n, pgNum, ops, ideal, crushBaselineMapper);
    }
  }
}

const arg = process.argv.find((a) => a.startsWith('--pgs='));
const pgCounts = arg === undefined ? [1024, 4096] : arg.slice(6).split(',').map(Number);
uniformityTable(pgCounts);
movementTable(pgCounts);
