/**
 * `strata osd`: the OSD process. It opens the object store in `--data` (ObjectStore) and runs
 * the data path (`OsdCore`: replication, peering, recovery, scrub; docs/replication.md) behind
 * the same command line and behaviours the placeholder had:
 *
 * - authenticates to the monitor as `osd.N` (its key in `--keyring`), fetches the OSD service
 *   secret (sealed with its key) and accepts only ticket-authenticated sessions with it;
 * - boots (`MSG_MON_OSD_BOOT` with a uuid kept in `DATA/uuid`), beacons every second, and
 *   boots again when a beacon answers `boot-required` (it was marked down);
 * - subscribes to the map and reports, after each new map, every PG it is primary for as
 *   `active` — honest: it has no data, so never `clean`, and `strata status` says so;
 * - heartbeats the other up OSDs (`MSG_OSD_PING` over ticket sessions) and reports failures
 *   to the monitor: `refused` on ECONNREFUSED (the monitor marks the peer down at once) and
 *   `timeout` when no reply came for `--heartbeat-grace-ms` (withdrawn when it answers again);
 * - serves `MSG_OSD_OP_STAT` with the OSD caps check every real op will do (`capsAllow`),
 *   answering "does not exist" (no data) when allowed, `CLU_ERR_PERM` when not, and
 *   `CLU_ERR_WRONG_TARGET` when it is not the PG's primary;
 * - exits 0 on SIGTERM/SIGINT after closing its sessions.
 */
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { ClusterError } from '../common/errors.js';
import type { ObjectName, OsdId } from '../common/ids.js';
import { NO_OSD, pgIdToString } from '../common/ids.js';
import type { Env } from '../env/env.js';
import { joinPath } from '../env/env.js';
import { capsAllow } from '../auth/caps.js';
import { authPolicy } from '../auth/handshake.js';
import type { ClusterMap } from '../map/cluster-map.js';
import { poolByName, WEIGHT_ONE } from '../map/cluster-map.js';
import { readWholeFile, writeFileAtomic } from '../env/disk-file.js';
import { MonClient } from '../mon/mon-client.js';
import { decodeOsdPing, decodeOsdStat, encodeOsdPing, encodeOsdStatReply } from '../mon/mon-protocol.js';
import { uuidFromBytes } from '../mon/monitor-core.js';
import { DEFAULT_SESSION_LIMITS, Messenger } from '../msg/messenger.js';
import type { InboundMessage, Session } from '../msg/session.js';
import { MsgType } from '../msg/types.js';
import { PeerHeartbeats } from '../osd/peer-heartbeats.js';
import { objectToPg, pgToOsds } from '../placement/placement.js';
import { DAEMON_FLAGS_HINT, DAEMON_NODE_FLAGS, hasDaemonNodeFlags, tuneDaemonProcess } from '../common/daemon-node-flags.js';
import { OsdCore } from '../osd/osd-core.js';
import { ObjectStore } from '../store/object-store.js';
import type { JournalIo } from '../store/types.js';
import { EXIT, UsageError, describeError, flushAndExit, loadKeyringFile, parseHostPort, parseIntOption, realEnv, rootLogger } from './bin-util.js';

/** Usage of `strata osd` (the daemon). */
export const OSD_USAGE = `Usage: strata osd --id N --data DIR --addr HOST:PORT --mon HOST:PORT --keyring PATH --host NAME [options]

  --id N                     OSD id (the keyring must hold osd.N)
  --data DIR                 data directory (holds the OSD's uuid)
  --addr HOST:PORT           listen address of this OSD
  --mon HOST:PORT            monitor address
  --keyring PATH             keyring with the osd.N entry
  --host NAME                CRUSH host of this OSD (failure domain 'host')
  --rack NAME                CRUSH rack (optional)
  --weight W                 CRUSH weight for a new OSD (default 1.0)
  --beacon-interval-ms N     beacon period (default 1000)
  --heartbeat-interval-ms N  peer ping period (default 1000)
  --heartbeat-grace-ms N     report a silent peer after N ms (default 3000)
  --scrub-interval-ms N      scrub one PG every N ms (default 0 = off)
  --ms-keepalive-interval-ms N   ping a session silent for N ms (default 1000; 0 = off)
  --ms-keepalive-timeout-ms N    reset a session silent for N ms (default the larger of
                             10000 and 3 x the heartbeat grace; must exceed the grace, so
                             failure detection acts before a session reset)
  --journal-mib N            journal size of a new store (default 64)
  --journal-io auto|inline|pool  journal writes on the event loop's thread (inline: no
                             thread hand-offs), through the I/O thread pool (pool: the loop
                             keeps receiving meanwhile; slow disks), or auto (default):
                             inline for a lone record, the pool for a batch
                             (docs/object-store.md, "Journal I/O")
  --data-io direct|buffered  big writes' data-file pwrites with O_DIRECT (default: no copy
                             into the page cache; falls back to buffered where the file
                             system refuses it, e.g. old tmpfs) or buffered (docs/object-store.md)
  --log-level LEVEL          pino level (default info)`;

interface OsdArgs {
  id: OsdId; data: string; addr: { host: string; port: number }; mon: { host: string; port: number }; keyring: string;
  host: string; rack: string | undefined; weight: number; beaconMs: number; hbIntervalMs: number; hbGraceMs: number; logLevel: string;
  scrubMs: number; journalMib: number; journalIo: JournalIo; dataIo: 'direct' | 'buffered';
  keepaliveIntervalMs: number; keepaliveTimeoutMs: number;
}

/** Parses `strata osd` arguments (exported for tests); throws UsageError on bad input. */
export function parseOsdArgs(argv: string[]): OsdArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      id: { type: 'string' }, data: { type: 'string' }, addr: { type: 'string' }, mon: { type: 'string' }, keyring: { type: 'string' },
      host: { type: 'string' }, rack: { type: 'string' }, weight: { type: 'string' }, 'beacon-interval-ms': { type: 'string' },
      'heartbeat-interval-ms': { type: 'string' }, 'heartbeat-grace-ms': { type: 'string' }, 'log-level': { type: 'string' },
      'scrub-interval-ms': { type: 'string' }, 'journal-mib': { type: 'string' }, 'journal-io': { type: 'string' },
      'data-io': { type: 'string' }, 'ms-keepalive-interval-ms': { type: 'string' }, 'ms-keepalive-timeout-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return 'help';
  for (const k of ['id', 'data', 'addr', 'mon', 'keyring', 'host'] as const) if (values[k] === undefined) throw new UsageError(`--${k} is required`);
  const weight = values.weight === undefined ? 1 : Number(values.weight);
  const journalIo = values['journal-io'] ?? 'auto';
  if (journalIo !== 'pool' && journalIo !== 'inline' && journalIo !== 'auto') throw new UsageError('--journal-io must be auto, inline or pool');
  const dataIo = values['data-io'] ?? 'direct';
  if (dataIo !== 'direct' && dataIo !== 'buffered') throw new UsageError('--data-io must be direct or buffered');
  if (!(weight > 0 && weight < 65536)) throw new UsageError('--weight must be a positive number');
  const hbGraceMs = parseIntOption(values['heartbeat-grace-ms'], '--heartbeat-grace-ms', 3000);
  const keepaliveIntervalMs = parseIntOption(values['ms-keepalive-interval-ms'], '--ms-keepalive-interval-ms', DEFAULT_SESSION_LIMITS.keepaliveIntervalMs);
  const keepaliveTimeoutMs = parseIntOption(values['ms-keepalive-timeout-ms'], '--ms-keepalive-timeout-ms',
    Math.max(DEFAULT_SESSION_LIMITS.keepaliveTimeoutMs, 3 * hbGraceMs));
  // Why: a session reset before the heartbeat grace would hide a dead peer from failure detection.
  if (keepaliveIntervalMs > 0 && !(keepaliveTimeoutMs > keepaliveIntervalMs && keepaliveTimeoutMs > hbGraceMs)) {
    throw new UsageError('--ms-keepalive-timeout-ms must exceed --ms-keepalive-interval-ms and --heartbeat-grace-ms');
  }
  return {
    id: parseIntOption(values.id, '--id', 0) as OsdId, data: values.data!, addr: parseHostPort(values.addr!, '--addr'),
    mon: parseHostPort(values.mon!, '--mon'), keyring: values.keyring!, host: values.host!, rack: values.rack,
    weight: Math.round(weight * WEIGHT_ONE), beaconMs: parseIntOption(values['beacon-interval-ms'], '--beacon-interval-ms', 1000),
    hbIntervalMs: parseIntOption(values['heartbeat-interval-ms'], '--heartbeat-interval-ms', 1000),
    hbGraceMs, logLevel: values['log-level'] ?? 'info', keepaliveIntervalMs, keepaliveTimeoutMs,
    scrubMs: parseIntOption(values['scrub-interval-ms'], '--scrub-interval-ms', 0), journalMib: parseIntOption(values['journal-mib'], '--journal-mib', 64),
    journalIo, dataIo,
  };
}

/** Runs `strata osd --id N …`. */
export function runOsd(argv: string[], exit: (code: number) => void): void {
  const args = parseOsdArgs(argv);
  if (args === 'help') { process.stdout.write(OSD_USAGE + '\n'); exit(EXIT.OK); return; }
  const log = rootLogger({ daemon: 'osd', level: args.logLevel, bindings: { osd: args.id } });
  if (!hasDaemonNodeFlags()) log.info({ flags: DAEMON_NODE_FLAGS }, '%s', DAEMON_FLAGS_HINT);
  tuneDaemonProcess();
  const env = realEnv(log);
  const fail = (err: unknown): void => {
    const d = describeError(err);
    log.error({ err }, 'osd failed');
    process.stderr.write(`strata osd: ${d.message}\n`);
    flushAndExit(log, exit, d.exitCode);
  };
  loadKeyringFile(env, args.keyring, (err, ring) => {
    const entity = `osd.${args.id}`;
    const entry = ring?.get(entity);
    if (err !== null || entry === undefined) { fail(err ?? new UsageError(`keyring ${args.keyring} has no ${entity}`)); return; }
    loadOrCreateUuid(env, args.data, (err2, uuid) => {
      if (err2 !== null || uuid === undefined) { fail(err2); return; }
      ObjectStore.open(env, { dir: joinPath(args.data, 'store'), journalBytes: args.journalMib * 1024 * 1024, journalIo: args.journalIo, dataIo: args.dataIo }, (err3, store) => {
        if (err3 !== null || store === undefined) { fail(err3); return; }
        const osd = new Osd(env, log, args, entry.key, uuid, store, fail);
        osd.start();
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) return;
          stopping = true;
          log.info({ signal }, 'osd stopping');
          osd.stop();
          store.close(() => flushAndExit(log, exit, EXIT.OK));
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
  });
}

/** Reads DATA/uuid, or creates it (atomically) on first start. */
function loadOrCreateUuid(env: Env, dir: string, cb: (err: Error | null, uuid?: string) => void): void {
  env.disk.mkdir(dir, (err) => {
    if (err) { cb(err); return; }
    readWholeFile(env.disk, joinPath(dir, 'uuid'), (err2, bytes) => {
      if (err2 === null) { cb(null, new TextDecoder().decode(bytes).trim()); return; }
      if (err2.code !== 'ENOENT') { cb(err2); return; }
      const uuid = uuidFromBytes(env.rng.bytes(16));
      writeFileAtomic(env.disk, dir, 'uuid', new TextEncoder().encode(uuid + '\n'), (err3) => cb(err3, uuid));
    });
  });
}

/** The OSD process state: monitor client, listener, peer heartbeats, the data path. */
class Osd {
  private readonly msgr: Messenger;
  private readonly mon: MonClient;
  private secret: Uint8Array | undefined;
  private booting = false;
  private readonly heartbeats: PeerHeartbeats;
  private readonly core: OsdCore;

  constructor(private readonly env: Env, private readonly log: Logger, private readonly a: OsdArgs, key: Uint8Array,
    private readonly uuid: string, private readonly store: ObjectStore, private readonly fail: (err: unknown) => void) {
    this.msgr = new Messenger({
      env, entity: `osd.${a.id}`,
      limits: { keepaliveIntervalMs: a.keepaliveIntervalMs, keepaliveTimeoutMs: a.keepaliveTimeoutMs },
      auth: authPolicy({ allowUnauthenticated: false, serviceSecret: () => this.secret }),
      credentials: () => {
        const t = this.mon.currentTicket();
        return t === undefined ? { method: 'none' } : { method: 'ticket', ticket: t.ticket, sessionKey: t.sessionKey };
      },
    });
    this.mon = new MonClient({ env, entity: `osd.${a.id}`, key, mon: a.mon, msgr: this.msgr });
    this.mon.on('authError', (err) => log.error({ err }, 'monitor rejected our key'));
    this.heartbeats = new PeerHeartbeats({ env, log, id: a.id, msgr: this.msgr, mon: this.mon, intervalMs: a.hbIntervalMs, graceMs: a.hbGraceMs });
    this.mon.on('map', (map) => this.onMap(map));
    this.mon.on('connected', () => { const m = this.mon.map(); if (m !== undefined) this.reportPgs(m); });
    this.msgr.handle(MsgType.MSG_OSD_PING, (req, s) => this.onPing(req, s));
    this.msgr.handle(MsgType.MSG_OSD_OP_STAT, (req, s) => this.onStat(req, s));
    this.core = new OsdCore({
      env, log: log.child({ component: 'osd-core' }), id: a.id, store, msgr: this.msgr,
      reportPgStates: (states) => this.mon.reportPgStates(a.id, states),
      recordPgHistory: (pg, op, set, cb) => this.mon.pgHistory(a.id, pg, op, set, (err) => cb(err)),
      requestPgTemp: (pg, osds, cb) => this.mon.pgTemp(a.id, pg, osds, (err) => cb(err)),
      reportFailure: (osd) => { this.log.warn({ peer: osd }, 'peer refused data connection; reporting'); this.mon.reportFailure(osd, 'refused'); },
      scrubIntervalMs: a.scrubMs,
    });
  }

  start(): void {
    this.mon.serviceSecret((err, secret) => {
      if (err !== null || secret === undefined) {
        if (err?.code === 'CLU_ERR_AUTH' || err?.code === 'CLU_ERR_PERM') { this.fail(err); return; }
        this.log.warn({ err }, 'service secret not available yet; retrying');
        this.env.setTimeout(() => this.start(), 1000);
        return;
      }
      this.secret = secret;
      this.msgr.listen(this.a.addr.host, this.a.addr.port, (err2, port) => {
        if (err2 !== null || port === undefined) { this.fail(err2); return; }
        this.a.addr = { host: this.a.addr.host, port };
        this.boot();
        this.mon.subscribe();
        this.fetchTicket();
        this.mon.startBeacons(this.a.id, this.a.beaconMs, (r) => {
          if (r === 'boot-required' || r === 'unknown-osd') this.boot();
        });
        this.heartbeats.start();
      });
    });
  }

  stop(): void {
    this.core.stop();
    this.heartbeats.stop();
    this.mon.close();
    this.msgr.shutdown();
  }

  /**
   * The first ticket, retried until it arrives: MonClient renews a ticket only after a fetch
   * succeeded, so a first fetch lost to a monitor reset left the OSD without one and every
   * peer refused its sessions (simulator seed 0x1fd6d26400eb6ed8).
   */
  private fetchTicket(): void {
    this.mon.ticket((err) => {
      if (err === null) return;
      this.log.warn({ err }, 'no ticket yet; retrying');
      this.env.setTimeout(() => this.fetchTicket(), 1000);
    });
  }

  private boot(): void {
    if (this.booting) return;
    this.booting = true;
    const location = this.a.rack === undefined ? { host: this.a.host } : { host: this.a.host, rack: this.a.rack };
    const addr = `${this.a.addr.host}:${this.a.addr.port}`;
    this.mon.boot({ uuid: this.uuid, addr, location, osdId: this.a.id, weight: this.a.weight }, (err, r) => {
      this.booting = false;
      if (err !== null || r === undefined) {
        if (err?.code === 'CLU_ERR_PERM') { this.fail(err); return; }
        this.log.warn({ err }, 'boot failed; retrying on the next beacon');
        return;
      }
      this.log.info({ epoch: r.epoch, addr }, 'osd booted');
    });
  }

  private onMap(map: ClusterMap): void {
    this.core.handleMap(map);
    this.reportPgs(map);
    this.heartbeats.handleMap(map);
  }

  /** PG states come from the data path (primary PGs only). */
  private reportPgs(map: ClusterMap): void {
    const me = map.osds.get(this.a.id);
    if (me === undefined || !me.up) return;
    const states = this.core.pgStates();
    if (Object.keys(states).length > 0) this.mon.reportPgStates(this.a.id, states);
  }

  private onPing(req: InboundMessage, s: Session): void {
    if (!(s.peer?.entity.startsWith('osd.') ?? false)) { s.replyError(req, new ClusterError('CLU_ERR_PERM', 'pings are for OSDs')); return; }
    try {
      decodeOsdPing(req.payload);
    } catch (e) {
      s.replyError(req, new ClusterError('CLU_ERR_DECODE', 'bad ping', { cause: e }));
      return;
    }
    s.reply(req, { type: req.type, payload: encodeOsdPing(this.a.id, this.mon.map()?.epoch ?? 0) });
  }

  private onStat(req: InboundMessage, s: Session): void {
    const reply = (err: ClusterError): void => s.replyError(req, err);
    let op: { pool: string; objectName: string };
    try {
      op = decodeOsdStat(req.payload);
    } catch (e) {
      reply(new ClusterError('CLU_ERR_DECODE', 'bad stat request', { cause: e }));
      return;
    }
    const map = this.mon.map();
    const pool = map === undefined ? undefined : poolByName(map, op.pool);
    if (map === undefined || pool === undefined) { reply(new ClusterError('CLU_ERR_NOT_FOUND', `pool ${op.pool}`)); return; }
    // Caps first: a client must not learn placement facts about pools it may not read.
    if (s.peer === null || !capsAllow(s.peer.caps, { pool: op.pool, objectName: op.objectName, write: false })) {
      reply(new ClusterError('CLU_ERR_PERM', `${s.peer?.entity ?? 'peer'} may not read pool ${op.pool}`));
      return;
    }
    const pg = objectToPg(pool, op.objectName);
    const primary = pgToOsds(map, pg).primary;
    if (primary !== this.a.id) {
      reply(new ClusterError('CLU_ERR_WRONG_TARGET', `pg ${pgIdToString(pg)} primary is ${primary === NO_OSD ? 'none' : `osd.${primary}`}`));
      return;
    }
    const st = this.store.stat({ pool: pool.id, name: op.objectName as ObjectName });
    s.reply(req, { type: req.type, payload: encodeOsdStatReply(st !== undefined, st?.sizeBytes ?? 0), epoch: map.epoch });
  }
}
