/**
 * Human-readable output of admin command results (the `--json` output is the raw result).
 * Pure: result object in, text out.
 */
import type { HealthCheck } from '../mon/mon-status.js';

type R = Record<string, unknown>;

/** Formats the result of `prefix` for a terminal. */
export function formatCommandResult(prefix: string, r: R): string {
  switch (prefix) {
    case 'status': return formatStatus(r);
    case 'osd tree': return formatTree(r);
    case 'osd dump': return formatDump(r);
    case 'pool ls': return formatPools(r);
    case 'auth ls': return ((r['entities'] as R[] | undefined) ?? []).map((e) => {
      const caps = e['caps'] as { mon: string; osd: string };
      return `${String(e['entity'])}\n\tcaps mon = "${caps.mon}"\n\tcaps osd = "${caps.osd}"`;
    }).join('\n');
    case 'pool create': return `pool created (id ${String(r['poolId'])}, epoch ${String(r['epoch'])})`;
    case 'auth rm': return `removed ${String(r['removed'])}`;
    case 'osd blocklist ls': return formatBlocklist(r);
    case 'pg ls': return formatPgLs(r);
    case 'osd pg-temp ls': return formatPgTempLs(r);
    case 'osd pg-temp rm': return `pg_temp of ${String(r['pg'])} removed (epoch ${String(r['epoch'])}); its primary may ask for it again`;
    case 'osd blocklist add': return `blocklisted ${String(r['instance'])} until ${new Date(Number(r['expiresMs'])).toISOString()} (epoch ${String(r['epoch'])})`;
    default: return r['epoch'] === undefined ? JSON.stringify(r) : `done (epoch ${String(r['epoch'])})`;
  }
}

const osdSet = (ids: readonly number[] | undefined): string => `[${(ids ?? []).join(',')}]`;

/** Left-aligned columns, two spaces apart. */
function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length); });
  return rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '));
}

/** `strata pg ls`: a table, acting sets from a pg_temp marked `*`, then a count line. */
function formatPgLs(r: R): string {
  const pgs = (r['pgs'] as { pg: string; state: string; up: number[]; acting: number[]; primary: number; pgTemp?: number[]; lastReportAgeMs?: number }[] | undefined) ?? [];
  const rows = [['PG', 'STATE', 'UP', 'ACTING', 'PRIMARY', 'REPORTED']];
  for (const p of pgs) {
    rows.push([p.pg, p.state, osdSet(p.up), osdSet(p.acting) + (p.pgTemp === undefined ? '' : '*'), p.primary < 0 ? '-' : `osd.${p.primary}`,
      p.lastReportAgeMs === undefined ? '-' : `${(p.lastReportAgeMs / 1000).toFixed(1)}s ago`]);
  }
  const temp = pgs.some((p) => p.pgTemp !== undefined) ? '; * acting set from a pg_temp' : '';
  const staleS = (Number(r['staleMs']) / 1000).toFixed(1);
  return [...(pgs.length === 0 ? [] : table(rows)), `${pgs.length} pgs (epoch ${String(r['epoch'])}${temp}; stale = no report from the primary for ${staleS} s)`].join('\n');
}

/** `strata osd pg-temp ls`. */
function formatPgTempLs(r: R): string {
  const entries = (r['pgTemp'] as { pg: string; osds: number[]; up: number[]; acting: number[] }[] | undefined) ?? [];
  const rows = [['PG', 'PG_TEMP', 'UP', 'ACTING'], ...entries.map((e) => [e.pg, osdSet(e.osds), osdSet(e.up), osdSet(e.acting)])];
  return [...(entries.length === 0 ? [] : table(rows)), `${entries.length} pg_temp entries (epoch ${String(r['epoch'])})`].join('\n');
}

function formatBlocklist(r: R): string {
  const entries = (r['blocklist'] as { instance: string; expiresMs: number }[] | undefined) ?? [];
  return [...entries.map((e) => `${e.instance} ${new Date(e.expiresMs).toISOString()}`), `listed ${entries.length} entries (epoch ${String(r['epoch'])})`].join('\n');
}

function formatStatus(r: R): string {
  const osds = r['osds'] as { total: number; up: number; in: number };
  const checks = (r['checks'] as HealthCheck[] | undefined) ?? [];
  const states = Object.entries((r['pgStates'] as Record<string, number> | undefined) ?? {}).map(([s, n]) => `${n} ${s}`).join(', ');
  return [
    `  cluster: ${String(r['fsid'])}`,
    `  health:  ${String(r['health'])}`,
    ...checks.map((c) => `           ${c.code}: ${c.message}`),
    `  map:     epoch ${String(r['epoch'])}`,
    `  osds:    ${osds.total} osds: ${osds.up} up, ${osds.in} in`,
    `  pools:   ${String(r['pools'])} pools, ${String(r['pgs'])} pgs`,
    ...(states === '' ? [] : [`  pgs:     ${states}`]),
  ].join('\n');
}

function formatTree(r: R): string {
  const rows = (r['nodes'] as { depth: number; type: string; name: string; weight: number; up?: boolean; in?: boolean }[] | undefined) ?? [];
  const lines = [`${'NAME'.padEnd(28)} ${'TYPE'.padEnd(5)} ${'WEIGHT'.padStart(8)}  STATUS`];
  for (const row of rows) {
    const name = `${'  '.repeat(row.depth)}${row.name}`;
    const status = row.type === 'osd' ? `${row.up === true ? 'up' : 'down'} ${row.in === true ? 'in' : 'out'}` : '';
    lines.push(`${name.padEnd(28)} ${row.type.padEnd(5)} ${(row.weight / 0x10000).toFixed(3).padStart(8)}  ${status}`);
  }
  return lines.join('\n');
}

function formatDump(r: R): string {
  const osds = (r['osds'] as R[] | undefined) ?? [];
  return [
    `epoch ${String(r['epoch'])}`, `fsid ${String(r['fsid'])}`,
    ...osds.map((o) => `osd.${String(o['id'])} ${o['up'] === true ? 'up' : 'down'} ${o['in'] === true ? 'in' : 'out'} weight ${String(o['weight'])} host ${String(o['host'])} addr ${String(o['addr'])} up_from ${String(o['upFrom'])} down_at ${String(o['downAt'])}`),
    formatPools(r),
    // Ceph's `pg_temp 1.3 [4,0,2]` lines, with the up set they stand in for.
    ...((r['pgTemp'] as { pg: string; osds: number[]; up: number[] }[] | undefined) ?? []).map((t) => `pg_temp ${t.pg} [${t.osds.join(',')}] up [${t.up.join(',')}]`),
  ].join('\n');
}

function formatPools(r: R): string {
  const pools = (r['pools'] as R[] | undefined) ?? [];
  return pools.map((p) => `pool ${String(p['id'])} '${String(p['name'])}' size ${String(p['size'])} min_size ${String(p['minSize'])} pg_num ${String(p['pgNum'])} failure_domain ${String(p['failureDomain'])}`).join('\n');
}
