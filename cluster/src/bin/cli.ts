/**
 * The admin CLI: `strata status`, `strata osd tree|dump|out|in|down|rm`, `strata pool
 * create|ls|set|rm`, `strata auth add|caps|ls|get|rm`, `strata object stat` (a client
 * op through an OSD, to check tickets and caps end to end) and `strata pg scrub PGID
 * [--repair]` (an admin request to the PG's primary OSD), `strata balancer run|status`
 * (pg_upmap_items balancer in the monitor), `strata pg ls` and `strata osd pg-temp ls|rm`
 * (per-PG state and pg_temp entries, from the monitor). Each run: resolve the config,
 * load the keyring, authenticate to the monitor with the entity's key, send one
 * `MSG_MON_COMMAND`, print the result (text, or `--json`), exit with a documented code
 * (bin-util.ts `EXIT`).
 */
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { ClusterError } from '../common/errors.js';
import type { Env } from '../env/env.js';
import { parseKeyring, saveKeyring } from '../auth/keyring.js';
import { open } from '../auth/ticket.js';
import type { ClusterMap } from '../map/cluster-map.js';
import { poolByName } from '../map/cluster-map.js';
import { MonClient } from '../mon/mon-client.js';
import { SEALED_KEYRING_AAD } from '../mon/mon-commands.js';
import { PG_LS_STATE_WORDS } from '../mon/pg-list.js';
import { decodeOsdStatReply, encodeOsdStat } from '../mon/mon-protocol.js';
import { MsgType } from '../msg/types.js';
import { objectToPg, pgToOsds } from '../placement/placement.js';
import { parsePgId, pgIdToString } from '../common/ids.js';
import type { OsdId, PgId } from '../common/ids.js';
import { encodeScrubRequest } from '../osd/osd-peer-protocol.js';
import type { ScrubResult } from '../osd/osd-core.js';
import { EXIT, UsageError, describeError, flushAndExit, keyringFileIo, loadKeyringFile, parseHostPort, parseIntOption, realEnv, resolveClientConfig, rootLogger } from './bin-util.js';
import { formatCommandResult } from './cli-format.js';

/** Usage of the admin commands. */
export const CLI_USAGE = `Admin commands (talk to the monitor):
  strata status
  strata osd tree | osd dump
  strata osd out|in|down|rm ID
  strata osd blocklist add INSTANCE [SECONDS] | osd blocklist rm INSTANCE | osd blocklist ls
                                                               (INSTANCE = client.NAME/NONCE, or client.NAME for all its instances; default 3600 s; add: mon 'allow rw' or 'profile rbd')
  strata pool create NAME [--size 3] [--min-size 2] [--pg-num 64] [--failure-domain host|osd]
  strata pool ls | pool set NAME KEY VALUE | pool rm NAME      (keys: size min_size pg_num failure_domain)
  strata auth add ENTITY [--caps 'mon=allow r' 'osd=allow rw pool=vms'] [-o FILE]
  strata auth caps ENTITY 'mon=…' 'osd=…' | auth ls | auth get ENTITY [-o FILE] | auth rm ENTITY
  strata object stat POOL OBJECT                               (client op through the PG's primary OSD)
  strata pg scrub PGID [--repair]                              (PGID = POOL.SEED, e.g. 1.1f; compare replicas, repair from the authoritative copy)
  strata pg ls [POOL] [--state WORD]                           (one row per PG: state its primary reported, up, acting, primary, report age;
                                                                WORD e.g. degraded, undersized, remapped, backfilling, peering, incomplete, down, inconsistent, stale, unknown)
  strata osd pg-temp ls | osd pg-temp rm PGID                  (pg_temp entries with their up and acting sets; rm: mon 'allow rw', the OSD may ask again)
  strata balancer run [--max-changes N] [--max-deviation N]    (pg_upmap_items: even out replicas per OSD; default 1000 moves, ±1 replica)
  strata balancer status                                       (per-pool, per-OSD replica counts vs weight-proportional target)
Common options:
  --mon HOST:PORT   (env STRATA_MON, config 'mon = …', default 127.0.0.1:6789)
  --keyring PATH    (env STRATA_KEYRING, config 'keyring = …', default /etc/strata/keyring)
  --name ENTITY     (env STRATA_NAME, config 'name = …', default client.admin)
  --json            machine-readable output     --timeout-ms N   per-request timeout (default 10000)
  config file: $STRATA_CONF or /etc/strata/strata.conf (key = value lines)
Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 exists, 5 auth/permission denied, 6 monitor/OSD unavailable`;

/** `strata osd` words that are admin commands (anything else is the OSD daemon). */
export const OSD_ADMIN_WORDS = ['tree', 'dump', 'out', 'in', 'down', 'rm', 'blocklist', 'pg-temp'] as const;

interface CliOptions {
  json: boolean; timeoutMs: number; output: string | undefined;
  size: number; minSize: number; pgNum: number; failureDomain: string;
  caps: string[];
  repair: boolean;
  maxChanges: number | undefined; maxDeviation: number | undefined;
  /** `pg ls --state WORD`. */
  state?: string;
}

/** Runs one admin command; `words` are the positional words after `strata`. */
export function runCli(argv: string[], exit: (code: number) => void): void {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      mon: { type: 'string' }, keyring: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' },
      'timeout-ms': { type: 'string' }, output: { type: 'string', short: 'o' }, size: { type: 'string' },
      'min-size': { type: 'string' }, 'pg-num': { type: 'string' }, 'failure-domain': { type: 'string' },
      caps: { type: 'string', multiple: true }, 'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      repair: { type: 'boolean' }, 'max-changes': { type: 'string' }, 'max-deviation': { type: 'string' },
      state: { type: 'string' },
    },
  });
  if (values.help === true) { process.stdout.write(CLI_USAGE + '\n'); exit(EXIT.OK); return; }
  const size = parseIntOption(values.size, '--size', 3);
  const opts: CliOptions = {
    json: values.json === true, timeoutMs: parseIntOption(values['timeout-ms'], '--timeout-ms', 10_000), output: values.output,
    size, minSize: parseIntOption(values['min-size'], '--min-size', Math.max(1, size - 1)),
    pgNum: parseIntOption(values['pg-num'], '--pg-num', 64), failureDomain: values['failure-domain'] ?? 'host',
    caps: values.caps ?? [],
    repair: values.repair === true,
    maxChanges: values['max-changes'] === undefined ? undefined : parseIntOption(values['max-changes'], '--max-changes', 0),
    maxDeviation: values['max-deviation'] === undefined ? undefined : parseIntOption(values['max-deviation'], '--max-deviation', 1),
    ...(values.state === undefined ? {} : { state: values.state }),
  };
  const built = buildCommand(positionals, opts);
  // Why: `strata … | head` closes stdout early; that is not an error of the command.
  process.stdout.on('error', (e: { code?: string }) => { if (e.code === 'EPIPE') exit(EXIT.OK); });
  const log = rootLogger({ daemon: 'cli', level: values['log-level'] ?? process.env['STRATA_LOG_LEVEL'] ?? 'fatal', stderr: true });
  const env = realEnv(log);
  resolveClientConfig(env, { ...(values.mon === undefined ? {} : { mon: values.mon }), ...(values.keyring === undefined ? {} : { keyring: values.keyring }), ...(values.name === undefined ? {} : { name: values.name }) }, (cfg) => {
    const monAddr = parseHostPortOrExit(cfg.mon, exit);
    if (monAddr === undefined) return;
    loadKeyringFile(env, cfg.keyring, (err, ring) => {
      const entry = ring?.get(cfg.name);
      if (err !== null || entry === undefined) {
        return finish(log, exit, err ?? new ClusterError('CLU_ERR_NOT_FOUND', `keyring ${cfg.keyring} has no entry ${cfg.name}`), opts);
      }
      const mon = new MonClient({
        env, entity: cfg.name, key: entry.key, mon: monAddr, requestTimeoutMs: opts.timeoutMs,
        backoff: { initialMs: 100, maxMs: 1000, maxAttempts: 6 },
      });
      const done = (e: unknown, text?: string): void => {
        mon.close();
        if (e !== null && e !== undefined) { finish(log, exit, withHint(e, cfg.name, cfg.mon), opts); return; }
        if (text !== undefined) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
        flushAndExit(log, exit, EXIT.OK);
      };
      if (built.kind === 'object-stat') { objectStat(env, mon, built.pool, built.object, opts, done); return; }
      if (built.kind === 'pg-scrub') { pgScrub(env, mon, built.pg, opts, done); return; }
      mon.command(built.cmd, (e, result) => {
        if (e !== null || result === undefined) { done(e); return; }
        const prefix = String(built.cmd['prefix']);
        if (result['sealedKeyring'] !== undefined) { writeKeyring(env, entry.key, result, opts, prefix, done); return; }
        done(null, opts.json ? JSON.stringify(result, null, 2) : prefix.startsWith('balancer ') ? formatBalancer(prefix, result) : formatCommandResult(prefix, result));
      });
    });
  });
}

type Built = { kind: 'mon'; cmd: Record<string, unknown> } | { kind: 'object-stat'; pool: string; object: string } | { kind: 'pg-scrub'; pg: PgId };

/** Turns CLI words into a monitor command (`prefix` = Ceph-style words). */
export function buildCommand(words: string[], o: CliOptions): Built {
  const [w0, w1, ...rest] = words;
  const need = (n: number, usage: string): string[] => {
    if (rest.length !== n) throw new UsageError(`usage: strata ${usage}`);
    return rest;
  };
  const mon = (cmd: Record<string, unknown>): Built => ({ kind: 'mon', cmd });
  if (w0 === 'pg' && w1 === 'scrub') {
    const [id] = need(1, 'pg scrub PGID [--repair]');
    const pg = parsePgId(id ?? '');
    if (pg === undefined) throw new UsageError(`bad PGID '${id ?? ''}' (want POOL.SEED, e.g. 1.1f)`);
    return { kind: 'pg-scrub', pg };
  }
  if (w0 === 'pg' && w1 === 'ls') {
    if (rest.length > 1) throw new UsageError('usage: strata pg ls [POOL] [--state WORD]');
    const [pool] = rest;
    if (o.state !== undefined && !PG_LS_STATE_WORDS.includes(o.state)) throw new UsageError(`bad --state '${o.state}' (one of ${PG_LS_STATE_WORDS.join(', ')})`);
    return mon({ prefix: 'pg ls', ...(pool === undefined ? {} : { pool }), ...(o.state === undefined ? {} : { state: o.state }) });
  }
  if (w0 === 'osd' && w1 === 'pg-temp') {
    const [verb, pg, ...extra] = rest;
    if (verb === 'ls' && pg === undefined) return mon({ prefix: 'osd pg-temp ls' });
    if (verb === 'rm' && pg !== undefined && extra.length === 0) {
      if (parsePgId(pg) === undefined) throw new UsageError(`bad PGID '${pg}' (want POOL.SEED, e.g. 1.1f)`);
      return mon({ prefix: 'osd pg-temp rm', pg });
    }
    throw new UsageError('usage: strata osd pg-temp ls | osd pg-temp rm PGID');
  }
  if (w0 === 'status' && w1 === undefined) return mon({ prefix: 'status' });
  if (w0 === 'osd' && (w1 === 'tree' || w1 === 'dump')) { need(0, `osd ${w1}`); return mon({ prefix: `osd ${w1}` }); }
  if (w0 === 'osd' && (w1 === 'out' || w1 === 'in' || w1 === 'down' || w1 === 'rm')) {
    const [id] = need(1, `osd ${w1} ID`);
    const n = /^(osd\.)?(\d+)$/.exec(id ?? '');
    if (n === null) throw new UsageError(`bad OSD id '${id}'`);
    return mon({ prefix: `osd ${w1}`, id: Number(n[2]) });
  }
  if (w0 === 'osd' && w1 === 'blocklist') {
    const [verb, instance, seconds, ...extra] = rest;
    const usage = 'osd blocklist add INSTANCE [SECONDS] | osd blocklist rm INSTANCE | osd blocklist ls';
    if (verb === 'ls' && instance === undefined) return mon({ prefix: 'osd blocklist ls' });
    if (verb === 'rm' && instance !== undefined && seconds === undefined) return mon({ prefix: 'osd blocklist rm', instance });
    if (verb === 'add' && instance !== undefined && extra.length === 0) {
      if (seconds === undefined) return mon({ prefix: 'osd blocklist add', instance });
      if (!/^[1-9]\d{0,9}$/.test(seconds)) throw new UsageError(`bad expiry '${seconds}' (want whole seconds)`);
      return mon({ prefix: 'osd blocklist add', instance, expireSeconds: Number(seconds) });
    }
    throw new UsageError(`usage: strata ${usage}`);
  }
  if (w0 === 'pool' && w1 === 'create') {
    const [name] = need(1, 'pool create NAME [--size N] [--min-size N] [--pg-num N] [--failure-domain host|osd]');
    if (o.failureDomain !== 'host' && o.failureDomain !== 'osd') throw new UsageError('--failure-domain must be host or osd');
    return mon({ prefix: 'pool create', name, size: o.size, minSize: o.minSize, pgNum: o.pgNum, failureDomain: o.failureDomain });
  }
  if (w0 === 'pool' && w1 === 'ls') { need(0, 'pool ls'); return mon({ prefix: 'pool ls' }); }
  if (w0 === 'pool' && w1 === 'set') { const [name, key, value] = need(3, 'pool set NAME KEY VALUE'); return mon({ prefix: 'pool set', name, key, value }); }
  if (w0 === 'pool' && w1 === 'rm') { const [name] = need(1, 'pool rm NAME'); return mon({ prefix: 'pool rm', name }); }
  if (w0 === 'auth' && (w1 === 'add' || w1 === 'caps')) {
    const [entity, ...capWords] = rest;
    if (entity === undefined) throw new UsageError(`usage: strata auth ${w1} ENTITY [--caps 'mon=…' 'osd=…']`);
    return mon({ prefix: `auth ${w1}`, entity, caps: parseCapsWords([...o.caps, ...capWords]) });
  }
  if (w0 === 'auth' && w1 === 'ls') { need(0, 'auth ls'); return mon({ prefix: 'auth ls' }); }
  if (w0 === 'auth' && (w1 === 'get' || w1 === 'rm')) { const [entity] = need(1, `auth ${w1} ENTITY`); return mon({ prefix: `auth ${w1}`, entity }); }
  if (w0 === 'balancer' && w1 === 'status') { need(0, 'balancer status'); return mon({ prefix: 'balancer status' }); }
  if (w0 === 'balancer' && w1 === 'run') {
    need(0, 'balancer run [--max-changes N] [--max-deviation N]');
    return mon({ prefix: 'balancer run', ...(o.maxChanges === undefined ? {} : { maxChanges: o.maxChanges }), ...(o.maxDeviation === undefined ? {} : { maxDeviation: o.maxDeviation }) });
  }
  if (w0 === 'object' && w1 === 'stat') { const [pool, object] = need(2, 'object stat POOL OBJECT'); return { kind: 'object-stat', pool: pool!, object: object! }; }
  throw new UsageError(`unknown command 'strata ${words.join(' ')}'`);
}

type Rec = Record<string, unknown>;

/** Text output of `balancer run` / `balancer status` (pure). */
export function formatBalancer(prefix: string, r: Rec): string {
  const dev = (p: Rec): string => `${Number(p['maxDeviation']).toFixed(2)} replicas (${Number(p['maxDeviationPct']).toFixed(1)}%)`;
  if (prefix === 'balancer run') {
    const before = (r['before'] as Rec[] | undefined) ?? [];
    const after = (r['after'] as Rec[] | undefined) ?? [];
    const head = Number(r['changedPgs']) === 0
      ? `nothing to do (epoch ${String(r['epoch'])})`
      : `${String(r['moves'])} replica moves, ${String(r['cleaned'])} pgs cleaned, ${String(r['changedPgs'])} pgs changed (epoch ${String(r['epoch'])})`;
    return [head, ...before.map((b, i) => `  pool ${String(b['name'])}: max deviation ${dev(b)} → ${after[i] === undefined ? '?' : dev(after[i])}`)].join('\n');
  }
  const lines = [`epoch ${String(r['epoch'])}  auto ${r['auto'] === true ? 'on' : 'off'}  last run epoch ${String(r['lastRunEpoch'])}`];
  for (const p of (r['pools'] as Rec[] | undefined) ?? []) {
    lines.push(`pool ${String(p['pool'])} '${String(p['name'])}': max deviation ${dev(p)}, ${String(p['upmappedPgs'])} pgs with upmap items`);
    lines.push(`  ${'OSD'.padEnd(8)} ${'PGS'.padStart(6)} ${'TARGET'.padStart(8)} ${'DEV'.padStart(7)}`);
    for (const o of (p['osds'] as Rec[] | undefined) ?? []) {
      const count = Number(o['count']);
      const target = Number(o['target']);
      const pct = target > 0 ? ((100 * (count - target)) / target).toFixed(1) + '%' : '-';
      lines.push(`  ${`osd.${String(o['osd'])}`.padEnd(8)} ${String(count).padStart(6)} ${target.toFixed(1).padStart(8)} ${pct.padStart(7)}`);
    }
  }
  return lines.join('\n');
}

/** `mon=allow r` / `osd=allow rw pool=vms` words → caps text. */
function parseCapsWords(words: string[]): { mon: string; osd: string } {
  const caps = { mon: '', osd: '' };
  for (const w of words) {
    const m = /^(mon|osd)\s*=\s*(.*)$/.exec(w);
    if (m === null) throw new UsageError(`bad caps '${w}' (want 'mon=allow r' or 'osd=allow rw pool=NAME')`);
    caps[m[1] as 'mon' | 'osd'] = m[2]!.trim();
  }
  return caps;
}

function parseHostPortOrExit(text: string, exit: (code: number) => void): { host: string; port: number } | undefined {
  try {
    return parseHostPort(text, '--mon');
  } catch (e) {
    process.stderr.write(`strata: ${(e as Error).message}\n`);
    exit(EXIT.USAGE);
    return undefined;
  }
}

/** Opens the sealed keyring of `auth add/get/caps`, prints or writes it (`-o FILE`, 0600). */
function writeKeyring(env: Env, myKey: Uint8Array, result: Record<string, unknown>, o: CliOptions, prefix: string, done: (e: unknown, text?: string) => void): void {
  const plain = open(myKey, Uint8Array.from(Buffer.from(String(result['sealedKeyring']), 'base64')), SEALED_KEYRING_AAD);
  if (plain instanceof ClusterError) { done(plain); return; }
  const text = new TextDecoder().decode(plain);
  const { sealedKeyring: _sealed, ...rest } = result;
  if (o.output === undefined) { done(null, o.json ? JSON.stringify({ ...rest, keyring: text }, null, 2) : text); return; }
  const ring = parseKeyring(text);
  if (ring instanceof ClusterError) { done(ring); return; }
  saveKeyring(keyringFileIo(env), o.output, ring, (err) => {
    if (err !== null) done(err);
    else done(null, o.json ? JSON.stringify({ ...rest, keyringFile: o.output }, null, 2) : `${prefix}: ${String(rest['entity'])} written to ${o.output}`);
  });
}

/** `strata object stat POOL OBJECT`: map → PG → primary → ticket session → MSG_OSD_OP_STAT. */
function objectStat(env: Env, mon: MonClient, poolName: string, object: string, o: CliOptions, done: (e: unknown, text?: string) => void): void {
  const deadline = env.setTimeout(() => done(new ClusterError('CLU_ERR_TIMEOUT', `no map from the monitor in ${o.timeoutMs} ms`)), o.timeoutMs);
  mon.latestMap((map: ClusterMap) => {
    env.clearTimeout(deadline);
    const pool = poolByName(map, poolName);
    if (pool === undefined) { done(new ClusterError('CLU_ERR_NOT_FOUND', `pool ${poolName}`)); return; }
    const pg = objectToPg(pool, object);
    const m = pgToOsds(map, pg);
    const primary = map.osds.get(m.primary as OsdId);
    if (primary === undefined) { done(new ClusterError('CLU_ERR_UNAVAILABLE', `pg ${pgIdToString(pg)} has no primary up`)); return; }
    mon.ticket((err, t) => {
      if (err !== null || t === undefined) { done(err); return; }
      const s = mon.msgr.connect(parseHostPort(primary.addr, 'osd addr'), { credentials: () => ({ method: 'ticket', ticket: t.ticket, sessionKey: t.sessionKey }) });
      s.request({ type: MsgType.MSG_OSD_OP_STAT, payload: encodeOsdStat(poolName, object), epoch: map.epoch }, { timeoutMs: o.timeoutMs }, (err2, reply) => {
        if (err2 !== null || reply === undefined) { done(err2); return; }
        const r = decodeOsdStatReply(reply.payload);
        const facts = { pool: poolName, object, pg: pgIdToString(pg), osd: primary.id, exists: r.exists, sizeBytes: r.sizeBytes };
        if (!r.exists) { done(new ClusterError('CLU_ERR_NOT_FOUND', `${poolName}/${object}: no such object (pg ${facts.pg} on osd.${primary.id})`)); return; }
        done(null, o.json ? JSON.stringify(facts) : `${poolName}/${object} size ${r.sizeBytes} (pg ${facts.pg}, osd.${primary.id})`);
      });
    });
  });
}

/**
 * `strata pg scrub PGID [--repair]`: map → the PG's primary → ticket session →
 * MSG_OSD_PG_SCRUB (admin: the entity needs 'mon=allow rw'). The primary compares object
 * versions and checksums across the acting set and, with --repair, rewrites bad copies from
 * the authoritative one. Exit 0 when the PG is consistent (or was repaired), 1 otherwise.
 */
function pgScrub(env: Env, mon: MonClient, pg: PgId, o: CliOptions, done: (e: unknown, text?: string) => void): void {
  const deadline = env.setTimeout(() => done(new ClusterError('CLU_ERR_TIMEOUT', `no map from the monitor in ${o.timeoutMs} ms`)), o.timeoutMs);
  mon.latestMap((map: ClusterMap) => {
    env.clearTimeout(deadline);
    const pool = map.pools.get(pg.pool);
    if (pool === undefined) { done(new ClusterError('CLU_ERR_NOT_FOUND', `pool ${pg.pool}`)); return; }
    if (pg.seed >= pool.pgNum) { done(new ClusterError('CLU_ERR_NOT_FOUND', `pg ${pgIdToString(pg)}: pool ${pool.name} has ${pool.pgNum} PGs`)); return; }
    const primary = map.osds.get(pgToOsds(map, pg).primary as OsdId);
    if (primary === undefined || !primary.up) { done(new ClusterError('CLU_ERR_UNAVAILABLE', `pg ${pgIdToString(pg)} has no primary up`)); return; }
    mon.ticket((err, t) => {
      if (err !== null || t === undefined) { done(err); return; }
      const s = mon.msgr.connect(parseHostPort(primary.addr, 'osd addr'), { credentials: () => ({ method: 'ticket', ticket: t.ticket, sessionKey: t.sessionKey }) });
      s.request({ type: MsgType.MSG_OSD_PG_SCRUB, payload: encodeScrubRequest(pg.pool, pg.seed, o.repair), epoch: map.epoch }, { timeoutMs: o.timeoutMs }, (err2, reply) => {
        s.close();
        if (err2 !== null || reply === undefined) { done(err2); return; }
        const r = JSON.parse(new TextDecoder().decode(reply.payload)) as ScrubResult;
        const bad = r.inconsistent.length > 0 && r.repaired < r.inconsistent.length;
        const text = o.json ? JSON.stringify({ ...r, osd: primary.id }, null, 2)
          : [`pg ${r.pg} (osd.${primary.id}): ${r.objects} objects scrubbed, ${r.inconsistent.length} inconsistent, ${r.repaired} repaired`,
            ...r.inconsistent.map((x) => `  ${x.object} on osd.${x.osd}: ${x.reason}`)].join('\n');
        if (!bad) { done(null, text); return; }
        process.stdout.write(text + '\n');
        done(new ClusterError('CLU_ERR_IO', `pg ${r.pg} is inconsistent (run with --repair)`));
      });
    });
  });
}

function withHint(e: unknown, name: string, monAddr: string): unknown {
  if (e instanceof ClusterError && e.code === 'CLU_ERR_AUTH') {
    return new ClusterError('CLU_ERR_AUTH', `authentication as ${name} failed at ${monAddr}: ${e.message} (check --name and --keyring)`);
  }
  if (e instanceof ClusterError && (e.code === 'CLU_ERR_UNAVAILABLE' || e.code === 'CLU_ERR_CANCELLED')) {
    return new ClusterError('CLU_ERR_UNAVAILABLE', `cannot reach the monitor at ${monAddr}: ${e.message}`);
  }
  return e;
}

function finish(log: Logger, exit: (code: number) => void, err: unknown, o: CliOptions): void {
  const d = describeError(err);
  if (o.json) process.stdout.write(JSON.stringify({ error: d.message, code: (err as { code?: string }).code ?? 'ERROR' }) + '\n');
  process.stderr.write(`strata: ${d.message}\n`);
  flushAndExit(log, exit, d.exitCode);
}
