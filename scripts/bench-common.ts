// Helpers shared by the vhost-user-blk benchmarks (bench-vhost.ts, bench-e2e.ts,
// bench-multiqueue.ts): the back-end's CPU time and RSS from /proc, a prefilled disk file, fio
// job files and JSON parsing, option checks and table formatting.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { BackendKind } from '../vm-tests/harness/backends.js';

export interface Sample {
  /** utime + stime of the whole process (all its threads), in clock ticks. */
  cpuTicks: number;
  rssKiB: number;
}

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU time and RSS of process `pid`. /proc/PID/stat of the thread-group leader counts every
 * thread of the process (worker threads and libuv/QEMU I/O threads included).
 */
export function sample(pid: number): Sample | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised comm: state is field 3; utime 14, stime 15 (1-based).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return { cpuTicks: utime + stime, rssKiB: rss ? Number(rss[1]) : 0 };
  } catch {
    return undefined;
  }
}

/** CPU microseconds between two samples. */
export function cpuUsBetween(a: Sample | undefined, b: Sample | undefined): number {
  return a && b ? ((b.cpuTicks - a.cpuTicks) / CLK_TCK) * 1e6 : NaN;
}

/** Fills `file` (already `sizeMiB` long) with non-zero data, so that reads hit real pages. */
export function prefill(file: string, sizeMiB: number): void {
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  const fd = fs.openSync(file, 'r+');
  try {
    for (let m = 0; m < sizeMiB; m++) fs.writeSync(fd, chunk, 0, chunk.length, m * chunk.length);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A guest fio job file on /dev/vda (libaio, O_DIRECT, time-based, norandommap, latency
 * percentiles, group reporting): `global` lines go after the engine settings, `job` lines
 * under the `[name]` section.
 */
export function fioFile(runtimeS: number, global: string[], name: string, job: string[]): string {
  return [
    '[global]',
    'filename=/dev/vda',
    'ioengine=libaio',
    'direct=1',
    ...global,
    'time_based=1',
    `runtime=${runtimeS}`,
    'norandommap=1',
    'randrepeat=0',
    'lat_percentiles=1',
    'group_reporting=1',
    `[${name}]`,
    ...job,
    '',
  ].join('\n');
}

interface FioSide {
  iops?: number;
  bw_bytes?: number;
  total_ios?: number;
  lat_ns?: { mean?: number; percentile?: Record<string, number> };
  clat_ns?: { mean?: number; percentile?: Record<string, number> };
}

export interface FioFigures {
  iops: number;
  mibps: number;
  meanLatUs: number;
  p99LatUs: number;
  ios: number;
}

/** Figures of the first job of a fio JSON output (use group_reporting for several processes). */
export function parseFio(json: unknown, name: string, side: 'read' | 'write'): FioFigures {
  const job = (json as { jobs?: { error?: number; read?: FioSide; write?: FioSide }[] }).jobs?.[0];
  if (!job) throw new Error(`fio JSON for ${name} has no jobs`);
  if (job.error) throw new Error(`fio job ${name} failed with error ${job.error}`);
  const s = job[side] ?? {};
  const lat = s.lat_ns ?? s.clat_ns ?? {};
  const p99 = lat.percentile?.['99.000000'] ?? s.clat_ns?.percentile?.['99.000000'] ?? NaN;
  return {
    iops: s.iops ?? 0,
    mibps: (s.bw_bytes ?? 0) / (1024 * 1024),
    meanLatUs: (lat.mean ?? NaN) / 1000,
    p99LatUs: p99 / 1000,
    ios: s.total_ios ?? 0,
  };
}

/** Throws "--NAME must be a positive integer" for the first option that is not one. */
export function requirePositiveIntegers(options: Record<string, number>): void {
  for (const [k, v] of Object.entries(options)) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${k} must be a positive integer`);
  }
}

/** A --backends list of strata and qsd, in order. */
export function parseBackendKinds(list: string | undefined): BackendKind[] {
  return (list ?? '').split(',').map((s) => s.trim()).filter(Boolean).map((b) => {
    if (b !== 'strata' && b !== 'qsd') throw new Error(`unknown back-end "${b}" (strata, qsd)`);
    return b as BackendKind;
  });
}

export function fmt(n: number | null, digits = 1): string {
  if (n === null || !Number.isFinite(n)) return '-';
  return n >= 1000 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits);
}

/** "a/b" as "1.23x", or "-" when either is missing. */
export function ratio(a: number | null | undefined, b: number | null | undefined): string {
  return a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0
    ? '-'
    : `${(a / b).toFixed(2)}x`;
}

/** Prints an aligned text table; the first `leftCols` columns are left-aligned. */
export function printTable(header: string[], rows: string[][], leftCols = 2, out: (s: string) => void = console.log): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < leftCols ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  out(line(header));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) out(line(r));
}
