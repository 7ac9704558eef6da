/**
 * Admin command execution on the monitor (`strata status`, `osd tree`, `pool create`, `auth
 * add`, `pg ls`, `osd pg-temp ls|rm`, …): one flat dispatch from a validated `MonCommand` to the monitor core or the auth
 * database, with a JSON-able result. Run to completion; answers through `cb`.
 *
 * Key material (`auth add`, `auth get`) is never returned in clear: the keyring text is sealed
 * with the requesting entity's own key (AES-256-GCM, `auth/ticket.ts` `seal`), because
 * sessions are signed, not encrypted. The CLI opens it with the key it authenticated with.
 */
import { ClusterError } from '../common/errors.js';
import type { Env } from '../env/env.js';
import { parseCaps } from '../auth/caps.js';
import { isValidEntityName, serializeKeyring } from '../auth/keyring.js';
import type { KeyringEntry } from '../auth/keyring.js';
import { seal } from '../auth/ticket.js';
import { BLOCKLIST_DEFAULT_MS } from '../map/cluster-map.js';
import type { ClusterMap } from '../map/cluster-map.js';
import type { PoolChanges } from '../map/incremental.js';
import type { AuthDb } from './auth-db.js';
import type { MonCommand } from './mon-protocol.js';
import type { EpochCallback, MonitorCore } from './monitor-core.js';
import { pgTempEntries } from './pg-list.js';

/** AAD of a sealed keyring in an `auth add` / `auth get` reply. */
export const SEALED_KEYRING_AAD = new TextEncoder().encode('strata-keyring-v1');

/** What a command may touch. */
export interface MonCommandContext {
  env: Env;
  core: MonitorCore;
  auth: AuthDb;
  /** Key of the requesting entity (to seal key material for it). */
  requesterKey: Uint8Array | undefined;
  /** Closes the sessions of an entity whose key was removed. */
  closeSessionsOf(entity: string): void;
}

type Result = Record<string, unknown>;
type Cb = (err: ClusterError | null, result?: Result) => void;

/** Runs one admin command. */
export function executeMonCommand(ctx: MonCommandContext, cmd: MonCommand, cb: Cb): void {
  const { core } = ctx;
  const epochOnly: EpochCallback = (err, r) => (err !== null ? cb(err) : cb(null, { epoch: r?.epoch }));
  switch (cmd.prefix) {
    case 'status': return cb(null, { ...core.status() });
    case 'osd tree': return cb(null, { epoch: core.map().epoch, nodes: core.osdTree() });
    case 'osd dump': return cb(null, mapToJson(core.map()));
    case 'osd out': return core.osdAdmin(cmd.id, 'out', epochOnly);
    case 'osd in': return core.osdAdmin(cmd.id, 'in', epochOnly);
    case 'osd down': return core.osdAdmin(cmd.id, 'down', epochOnly);
    case 'osd rm': return core.osdAdmin(cmd.id, 'rm', epochOnly);
    case 'pool create': {
      const { name, size, minSize, pgNum, failureDomain } = cmd;
      return core.poolCreate({ name, size, minSize, pgNum, failureDomain }, (err, r) =>
        (err !== null ? cb(err) : cb(null, { epoch: r?.epoch, poolId: r?.poolId })));
    }
    case 'pool ls': return cb(null, { epoch: core.map().epoch, pools: core.poolLs() });
    case 'pool set': {
      const changes = poolChanges(cmd.key, cmd.value);
      if (changes instanceof ClusterError) return failSoon(ctx, cb, changes);
      return core.poolSet(cmd.name, changes, epochOnly);
    }
    case 'pool rm': return core.poolRemove(cmd.name, epochOnly);
    case 'auth ls': return cb(null, { entities: ctx.auth.list().map((e) => describe(ctx.auth.get(e))) });
    case 'auth get': {
      const entry = ctx.auth.get(cmd.entity);
      if (entry === undefined) return failSoon(ctx, cb, new ClusterError('CLU_ERR_NOT_FOUND', `entity ${cmd.entity}`));
      return cb(null, withSealedKeyring(ctx, entry));
    }
    case 'auth add': case 'auth caps': {
      const bad = checkEntityCaps(cmd.entity, cmd.caps);
      if (bad !== undefined) return failSoon(ctx, cb, bad);
      const done = (err: ClusterError | null, entry?: KeyringEntry): void => (err !== null || entry === undefined ? cb(err) : cb(null, withSealedKeyring(ctx, entry)));
      if (cmd.prefix === 'auth add') ctx.auth.add(cmd.entity, cmd.caps, done);
      else ctx.auth.setCaps(cmd.entity, cmd.caps, done);
      return;
    }
    case 'balancer status': return cb(null, { ...core.balancerStatus() });
    case 'balancer run': {
      const opts = { ...(cmd.maxChanges === undefined ? {} : { maxChanges: cmd.maxChanges }), ...(cmd.maxDeviation === undefined ? {} : { maxDeviation: cmd.maxDeviation }) };
      return core.balancerRun(opts, (err, r) => (err !== null ? cb(err) : cb(null, { ...r })));
    }
    case 'osd blocklist add':
      return core.blocklistAdd(cmd.instance, (cmd.expireSeconds ?? BLOCKLIST_DEFAULT_MS / 1000) * 1000, (err, r) =>
        (err !== null ? cb(err) : cb(null, { epoch: r?.epoch, instance: cmd.instance, expiresMs: r?.expiresMs })));
    case 'osd blocklist rm': return core.blocklistRm(cmd.instance, epochOnly);
    case 'osd blocklist ls': {
      const map = core.map();
      const entries = [...map.blocklist].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([instance, expiresMs]) => ({ instance, expiresMs }));
      return cb(null, { epoch: map.epoch, blocklist: entries });
    }
    case 'pg ls': {
      const r = core.pgLs({ ...(cmd.pool === undefined ? {} : { pool: cmd.pool }), ...(cmd.state === undefined ? {} : { state: cmd.state }) });
      return r instanceof ClusterError ? failSoon(ctx, cb, r) : cb(null, { ...r });
    }
    case 'osd pg-temp ls': return cb(null, { epoch: core.map().epoch, pgTemp: pgTempEntries(core.map()) });
    case 'osd pg-temp rm': return core.pgTempRemove(cmd.pg, (err, r) => (err !== null ? cb(err) : cb(null, { epoch: r?.epoch, pg: cmd.pg })));
    case 'auth rm':
      return ctx.auth.remove(cmd.entity, (err) => {
        if (err !== null) return cb(err);
        ctx.closeSessionsOf(cmd.entity);
        cb(null, { removed: cmd.entity });
      });
  }
}

function failSoon(ctx: MonCommandContext, cb: Cb, err: ClusterError): void {
  ctx.env.setImmediate(() => cb(err));
}

function checkEntityCaps(entity: string, caps: { mon: string; osd: string }): ClusterError | undefined {
  if (!isValidEntityName(entity)) return new ClusterError('CLU_ERR_INVALID', `bad entity name "${entity}" (want client.NAME or osd.N)`);
  const parsed = parseCaps(caps);
  return parsed instanceof ClusterError ? parsed : undefined;
}

function describe(e: KeyringEntry | undefined): Result {
  return e === undefined ? {} : { entity: e.entity, caps: { ...e.capsText } };
}

function withSealedKeyring(ctx: MonCommandContext, entry: KeyringEntry): Result {
  const out = describe(entry);
  if (ctx.requesterKey === undefined) return out;
  const text = new TextEncoder().encode(serializeKeyring(new Map([[entry.entity, entry]])));
  out['sealedKeyring'] = Buffer.from(seal(ctx.requesterKey, text, SEALED_KEYRING_AAD, ctx.env.rng)).toString('base64');
  return out;
}

/** `pool set NAME KEY VALUE` keys, Ceph names: size, min_size, pg_num, failure_domain. */
function poolChanges(key: string, value: string): PoolChanges | ClusterError {
  const n = Number(value);
  const int = Number.isInteger(n) && /^\d+$/.test(value);
  switch (key) {
    case 'size': return int ? { size: n } : badValue(key, value);
    case 'min_size': return int ? { minSize: n } : badValue(key, value);
    case 'pg_num': return int ? { pgNum: n } : badValue(key, value);
    case 'failure_domain': return value === 'host' || value === 'osd' ? { failureDomain: value } : badValue(key, value);
    default: return new ClusterError('CLU_ERR_INVALID', `unknown pool key "${key}" (size, min_size, pg_num, failure_domain)`);
  }
}

function badValue(key: string, value: string): ClusterError {
  return new ClusterError('CLU_ERR_INVALID', `bad value "${value}" for ${key}`);
}

/** The map as JSON (`strata osd dump --json`). */
export function mapToJson(map: ClusterMap): Result {
  return {
    epoch: map.epoch,
    fsid: map.fsid,
    modifiedMs: map.modifiedMs,
    osds: [...map.osds.values()].sort((a, b) => a.id - b.id).map((o) => ({
      id: o.id, uuid: o.uuid, addr: o.addr, up: o.up, in: o.in, weight: o.weight / 0x10000,
      host: o.location.host, ...(o.location.rack === undefined ? {} : { rack: o.location.rack }), upFrom: o.upFrom, downAt: o.downAt,
      ...(o.autoOut ? { autoOut: true } : {}),
    })),
    pools: [...map.pools.values()].sort((a, b) => a.id - b.id),
    ...(map.blocklist.size === 0 ? {} : { blocklist: [...map.blocklist].sort(([a], [b]) => (a < b ? -1 : 1)).map(([instance, expiresMs]) => ({ instance, expiresMs })) }),
    // pg_temp with the acting set it gives (docs/replication.md §4 step 5a).
    ...(map.pgTemp.size === 0 ? {} : { pgTemp: pgTempEntries(map) }),
  };
}
