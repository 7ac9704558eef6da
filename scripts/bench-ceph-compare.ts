/**
 * Turns the records of scripts/bench-ceph.sh (DIR/results.jsonl: one JSON object per system ×
 * workload) into the comparison table of docs/benchmarks.md: IOPS and MiB/s of both systems,
 * the strata/Ceph ratio against the goals, latency, daemon and client CPU per op, and daemon
 * RSS after the run. Benchmark tooling only; nothing in the product imports it.
 *
 *   node dist/scripts/bench-ceph-compare.js /var/tmp/strata-bench/results.jsonl
 */
import { readFileSync } from 'node:fs';

interface Daemon { cpuSec: number; rssKiB: number }
interface Rec {
  system: 'ceph' | 'strata';
  workload: string;
  ops: number;
  /** Ops of strata bench's in-process warm-up (`--warmup-total`): the run's CPU covers them too. */
  warmupOps?: number;
  iops: number;
  elapsedSec: number;
  mibPerSec?: number;
  ioSize?: number;
  threads?: number;
  latMsP50?: number;
  latMsP99?: number;
  latMsAvg?: number;
  /** 1-minute load average when the run ended (other work on the shared cores). */
  loadAvg1?: number;
  daemons: Record<string, Daemon>;
  client: { cpuSec: number; maxRssKiB: number };
}

/** strata/Ceph IOPS goals of issue #6. */
const GOALS: Record<string, number> = {
  'randwrite-4k-qd1': 5, 'randwrite-4k-qd16': 5, 'randread-4k-qd1': 3, 'randread-4k-qd16': 3, 'seqwrite-1m-qd16': 2,
};
const IO_BYTES: Record<string, number> = {
  'randwrite-4k-qd1': 4096, 'randwrite-4k-qd16': 4096, 'randread-4k-qd1': 4096, 'randread-4k-qd16': 4096, 'seqwrite-1m-qd16': 1 << 20,
};
const THREADS: Record<string, number> = {
  'randwrite-4k-qd1': 1, 'randwrite-4k-qd16': 16, 'randread-4k-qd1': 1, 'randread-4k-qd16': 16, 'seqwrite-1m-qd16': 16,
};

function nproc(): number {
  try { return readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length; } catch { return 0; }
}

const file = process.argv[2];
if (file === undefined) { process.stderr.write('usage: bench-ceph-compare RESULTS.jsonl\n'); process.exit(2); }
const recs = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as Rec);
const get = (system: string, w: string): Rec | undefined => recs.find((r) => r.system === system && r.workload === w);

const f = (n: number | undefined, d = 0): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d));
const daemonCpu = (r: Rec): number => Object.values(r.daemons).reduce((a, d) => a + d.cpuSec, 0);
const perOpUs = (cpuSec: number, ops: number): number => (cpuSec * 1e6) / ops;
/** Ops the CPU figures cover: the measured ones plus an in-process warm-up's. */
const cpuOps = (r: Rec): number => r.ops + (r.warmupOps ?? 0);

const lines: string[] = [];
lines.push('| workload | Ceph IOPS | strata IOPS | strata/Ceph | goal | Ceph MiB/s | strata MiB/s | Ceph lat avg ms¹ | strata lat avg / p50 / p99 ms | CPU µs/op daemons Ceph / strata | CPU µs/op client Ceph / strata |');
lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const w of Object.keys(GOALS)) {
  const c = get('ceph', w);
  const s = get('strata', w);
  const ratio = c !== undefined && s !== undefined ? s.iops / c.iops : NaN;
  const goal = GOALS[w]!;
  const mib = (r: Rec | undefined): number | undefined => (r === undefined ? undefined : (r.iops * IO_BYTES[w]!) / 2 ** 20);
  const cLat = c === undefined ? undefined : (THREADS[w]! * 1000) / c.iops;
  lines.push(`| ${w} | ${f(c?.iops)} | ${f(s?.iops)} | ${f(ratio, 2)}× ${Number.isFinite(ratio) ? (ratio >= goal ? '✅' : '❌') : ''} | ≥${goal}× | ${f(mib(c), 1)} | ${f(mib(s), 1)} | ${f(cLat, 2)} | ${f(s?.latMsAvg, 2)} / ${f(s?.latMsP50, 2)} / ${f(s?.latMsP99, 2)} | ${c ? f(perOpUs(daemonCpu(c), cpuOps(c))) : '–'} / ${s ? f(perOpUs(daemonCpu(s), cpuOps(s))) : '–'} | ${c ? f(perOpUs(c.client.cpuSec, cpuOps(c))) : '–'} / ${s ? f(perOpUs(s.client.cpuSec, cpuOps(s))) : '–'} |`);
}
lines.push('');
lines.push('¹ `rbd bench` prints no latency; its average is derived as threads / IOPS.');
const loads = recs.map((r) => r.loadAvg1).filter((l): l is number => l !== undefined);
if (loads.length > 0) lines.push(`Load average (1 min) at the end of each run: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ${nproc()} cores.`);
lines.push('');
const lastOf = (system: string): Rec | undefined => [...recs].reverse().find((r) => r.system === system);
for (const system of ['ceph', 'strata']) {
  const r = lastOf(system);
  if (r === undefined) continue;
  const rss = Object.entries(r.daemons).map(([n, d]) => `${n} ${f(d.rssKiB / 1024)} MiB`).join(', ');
  const runs = recs.filter((x) => x.system === system).length;
  lines.push(`- ${system} daemon RSS after the run: ${rss}; client max RSS ${f(r.client.maxRssKiB / 1024)} MiB (${runs} runs).`);
}
process.stdout.write(lines.join('\n') + '\n');
