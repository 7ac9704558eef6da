/**
 * The client entry point (librados' `Rados`): authenticate to the monitor, wait for the
 * latest map and an OSD ticket, then hand out an Objecter and per-pool `Images`. Used by the
 * CLI and by the vhost daemon's cluster store.
 */
import { ClusterError } from '../common/errors.js';
import type { Env } from '../env/env.js';
import type { ClusterMap } from '../map/cluster-map.js';
import { poolByName } from '../map/cluster-map.js';
import { MonClient } from '../mon/mon-client.js';
import type { SessionLimits } from '../msg/session.js';
import { Images } from './images.js';
import { Objecter } from './objecter.js';
import type { ObjecterLimits } from './objecter.js';

export interface ClusterClientOptions {
  env: Env;
  mon: { host: string; port: number };
  entity: string;
  key: Uint8Array;
  /** Time to get a map and a ticket (default 10 s). */
  connectTimeoutMs?: number;
  limits?: Partial<ObjecterLimits>;
  /** Monitor reconnect attempts before giving up (default: forever; the CLI uses a few). */
  monMaxAttempts?: number;
  /** Session limits of the client's messenger (monitor and OSD sessions; keepalive). */
  sessionLimits?: Partial<SessionLimits>;
}

/** A connected client: monitor session, map subscription, objecter. */
export class ClusterClient {
  private constructor(readonly env: Env, readonly mon: MonClient, readonly objecter: Objecter) {}

  /** Connects; `cb` gets the client once a map and a ticket are in hand. */
  static connect(o: ClusterClientOptions, cb: (err: ClusterError | null, client?: ClusterClient) => void): void {
    const mon = new MonClient({
      env: o.env, entity: o.entity, key: o.key, mon: o.mon, requestTimeoutMs: o.connectTimeoutMs ?? 10_000,
      ...(o.monMaxAttempts === undefined ? {} : { backoff: { initialMs: 100, maxMs: 1000, maxAttempts: o.monMaxAttempts } }),
      ...(o.sessionLimits === undefined ? {} : { limits: o.sessionLimits }),
    });
    let done = false;
    const finish = (err: ClusterError | null): void => {
      if (done) return;
      done = true;
      o.env.clearTimeout(timer);
      if (err !== null) { mon.close(); cb(err); return; }
      const objecter = new Objecter({ env: o.env, msgr: mon.msgr, mon, entity: o.entity, ...(o.limits === undefined ? {} : { limits: o.limits }) });
      cb(null, new ClusterClient(o.env, mon, objecter));
    };
    const timeoutMs = o.connectTimeoutMs ?? 10_000;
    const timer = o.env.setTimeout(() => finish(new ClusterError('CLU_ERR_UNAVAILABLE', `no map and ticket from the monitor at ${o.mon.host}:${o.mon.port} within ${timeoutMs} ms`)), timeoutMs);
    mon.on('authError', (err) => finish(err));
    mon.session.on('closed', (err) => finish(err ?? new ClusterError('CLU_ERR_UNAVAILABLE', 'monitor session closed')));
    mon.latestMap(() => mon.ticket((err) => finish(err)));
  }

  static connectAsync(o: ClusterClientOptions): Promise<ClusterClient> {
    return new Promise((resolve, reject) => ClusterClient.connect(o, (err, c) => (err || c === undefined ? reject(err) : resolve(c))));
  }

  /** The current map (always present after connect). */
  map(): ClusterMap { return this.mon.map()!; }

  /** Images of pool `name`; `CLU_ERR_NOT_FOUND` for an unknown pool. */
  images(poolName: string): Images | ClusterError {
    const pool = poolByName(this.map(), poolName);
    if (pool === undefined) return new ClusterError('CLU_ERR_NOT_FOUND', `pool ${poolName} does not exist`);
    return new Images(this.env, this.objecter, pool.id);
  }

  /** Closes the objecter and the monitor session. */
  close(): void {
    this.objecter.close();
    this.mon.close();
  }
}
