/**
 * Prints placement uniformity and movement tables (docs/placement.md quotes its output).
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/placement-report.js [--pgs=1024,4096]
 *
 * Layouts: N OSDs of weight 1.0 spread evenly over hosts (4 OSDs per host when N ≥ 16, else
 * 1–2), pool size 3 with failure domain host. Movement: add one OSD to a new host, add one OSD
 * to an existing host, and mark one OSD out; ideal moved fraction is that OSD's weight share.
 *
 * Balancer (placement/balancer.ts, pg_upmap_items): the uniformity table also shows each
 * layout after one `computeUpmaps` run (default options: ±1 replica, ≤ 1000 moves), and a
 * second movement table starts from a BALANCED map, applies the change, and reports the
 * replicas moved by placement alone and by placement + a balancer re-run (both measured
 * against the balanced map before the change, i.e. the data that really moves).
 */
import { WEIGHT_ONE } from '../cluster/src/map/cluster-map.js';
import type { MapOp } from '../cluster/src/map/incremental.js';
import { buildMap, evenOsds, makeOsd, nextMap } from '../cluster/src/map/map-builder.js';
import type { OsdId, PoolId } from '../cluster/src/common/ids.js';
import type { ClusterMap } from '../cluster/src/map/cluster-map.js';
import { computeUpmaps } from '../cluster/src/placement/balancer.js';
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

/** The map after one balancer run (default options; `reference`: where the data is). */
function balance(map: ClusterMap, reference?: ClusterMap, maxDeviation = 1): { map: ClusterMap; moves: number; upmappedPgs: number } {
  const r = computeUpmaps(map, { maxDeviation, ...(reference === undefined ? {} : { reference }) });
  const next = r.ops.length === 0 ? map : nextMap(map, r.ops);
  return { map: next, moves: r.moves, upmappedPgs: next.pgUpmapItems.size };
}

function uniformityTable(pgCounts: number[]): void {
  console.log('\nUniformity (size 3, host domain): replicas per OSD vs mean, hash placement alone | after one balancer run');
  console.log('                                  ------ placement only ------   ------------- + balancer -------------');
  console.log('  OSDs  hosts    PGs  PGs/OSD  max over  max under  stddev short   max over  max under  stddev  moves upmapped');
  for (const pgNum of pgCounts) {
    for (const n of OSD_COUNTS) {
      const hosts = hostsFor(n);
      const map = buildMap({ osds: evenOsds(n, hosts), pools: [{ id: 1, name: 'rbd', pgNum }] });
      const pool = map.pools.get(1 as PoolId);
      if (pool === undefined) throw new Error('no pool');
      const u = measureUniformity(map, pool);
      const b = balance(map);
      const ub = measureUniformity(b.map, pool);
      console.log(`  ${String(n).padStart(4)} ${String(hosts).padStart(6)} ${String(pgNum).padStart(6)} ${u.meanPerOsd.toFixed(0).padStart(8)} ${pct(u.maxOverPct)}   ${pct(u.maxUnderPct)}  ${pct(u.stddevPct)} ${String(u.shortPgs).padStart(4)}   ${pct(ub.maxOverPct)}   ${pct(ub.maxUnderPct)}  ${pct(ub.stddevPct)} ${String(b.moves).padStart(6)} ${String(b.upmappedPgs).padStart(8)}`);
    }
  }
}

/** Movement from a balanced map: placement alone, then with the balancer re-run. */
function balancedMovementTable(pgCounts: number[]): void {
  console.log('\nMovement from a BALANCED map: moved replica fraction vs ideal (weight share of the changed OSD)');
  console.log('placement = the change alone (upmaps kept); +balancer = after a plain balancer re-run; +aware = re-run with');
  console.log('the balanced map as `reference` (movement-aware, what the monitor does); dev2 = aware with --max-deviation 2;');
  console.log('all vs the balanced (±1 replica) map before; max dev = worst |count - target| / target after the dev2 run');
  console.log('  change                      OSDs    PGs   ideal  placement  ratio  +balancer  ratio    +aware  ratio     dev2  ratio  max dev');
  for (const pgNum of pgCounts) {
    for (const n of OSD_COUNTS.filter((c) => c >= 8)) {
      const start = balance(buildMap({ osds: evenOsds(n, hostsFor(n)), pools: [{ id: 1, name: 'rbd', pgNum }] })).map;
      const pool = start.pools.get(1 as PoolId);
      if (pool === undefined) throw new Error('no pool');
      const cases: [string, MapOp[], number][] = [
        ['add osd on new host', [{ op: 'osd-add', osd: makeOsd({ id: n, host: 'host-new' }) }], 1 / (n + 1)],
        ['add osd on old host', [{ op: 'osd-add', osd: makeOsd({ id: n, host: 'host-0' }) }], 1 / (n + 1)],
        ['mark one osd out', [{ op: 'osd-set', id: 0 as OsdId, changes: { in: false } }], 1 / n],
        ['remove one osd (down+rm)', [{ op: 'osd-set', id: 0 as OsdId, changes: { up: false, in: false } }, { op: 'osd-remove', id: 0 as OsdId }], 1 / n],
      ];
      for (const [label, ops, ideal] of cases) {
        const changed = nextMap(start, ops);
        const b = balance(changed);
        const aware = balance(changed, start);
        const aware2 = balance(changed, start, 2);
        const placement = measureMovement(start, changed, pool).movedFraction;
        const total = measureMovement(start, b.map, pool).movedFraction;
        const totalAware = measureMovement(start, aware.map, pool).movedFraction;
        const totalAware2 = measureMovement(start, aware2.map, pool).movedFraction;
        const u = measureUniformity(aware2.map, pool);
        const r = (f: number): string => `${(f / ideal).toFixed(2).padStart(5)}×`;
        console.log(`  ${label.padEnd(27)} ${String(n).padStart(4)} ${String(pgNum).padStart(6)} ${pct(100 * ideal)}   ${pct(100 * placement)}  ${r(placement)}    ${pct(100 * total)}  ${r(total)}   ${pct(100 * totalAware)}  ${r(totalAware)}  ${pct(100 * totalAware2)}  ${r(totalAware2)}  ${pct(Math.max(u.maxOverPct, u.maxUnderPct))}`);
      }
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
balancedMovementTable(pgCounts);
