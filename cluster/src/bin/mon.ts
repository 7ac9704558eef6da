/**
 * `strata mon`: the monitor daemon (docs/operations.md).
 *
 *   strata mon --mkfs --data DIR --keyring PATH          initialise the store (and the keyring)
 *   strata mon --data DIR --addr HOST:PORT --keyring PATH run
 *
 * `--mkfs` creates the bootstrap keyring when PATH does not exist — `mon.`, `client.admin`
 * (`allow *` on mon and osd) and `service.osd` (the OSD service secret), mode 0600, written
 * atomically — imports it into the store's auth database and commits map epoch 1, then exits.
 * After that the store's auth database is authoritative (`strata auth …`).
 *
 * Runs until SIGTERM/SIGINT (clean exit 0). A store failure is fatal (exit 1): the state can
 * no longer be trusted, the supervisor restarts the process and the store replays its log.
 */
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import type { Env } from '../env/env.js';
import { ALL_CAPS } from '../auth/caps.js';
import { OSD_SERVICE_ENTITY, generateKey, saveKeyring } from '../auth/keyring.js';
import type { Keyring } from '../auth/keyring.js';
import { FileMonStore } from '../mon/file-mon-store.js';
import { MonServer, monMkfs } from '../mon/mon-server.js';
import {
  EXIT, UsageError, describeError, flushAndExit, keyringFileIo, loadKeyringFile, parseHostPort, parseIntOption, realEnv, rootLogger,
} from './bin-util.js';

/** Usage of `strata mon`. */
export const MON_USAGE = `Usage: strata mon --data DIR --keyring PATH (--mkfs | --addr HOST:PORT) [options]

  --data DIR                 monitor store directory
  --keyring PATH             bootstrap keyring (created by --mkfs when missing, mode 0600)
  --addr HOST:PORT           listen address (default 127.0.0.1:6789)
  --mkfs                     initialise DIR (and the keyring) and exit
  --osd-grace-ms N           mark an OSD down after N ms without a beacon (default 3000)
  --down-out-interval-ms N   mark a down OSD out after N ms (default 600000)
  --log-level LEVEL          pino level (default info)`;

/** Runs `strata mon`. */
export function runMon(argv: string[], exit: (code: number) => void): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' }, keyring: { type: 'string' }, addr: { type: 'string' }, mkfs: { type: 'boolean' },
      'osd-grace-ms': { type: 'string' }, 'down-out-interval-ms': { type: 'string' }, 'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) { process.stdout.write(MON_USAGE + '\n'); exit(EXIT.OK); return; }
  if (values.data === undefined) throw new UsageError('--data is required');
  if (values.keyring === undefined) throw new UsageError('--keyring is required');
  const addr = parseHostPort(values.addr ?? '127.0.0.1:6789', '--addr');
  const osdGraceMs = parseIntOption(values['osd-grace-ms'], '--osd-grace-ms', 3000);
  const downOutIntervalMs = parseIntOption(values['down-out-interval-ms'], '--down-out-interval-ms', 600_000);
  const log = rootLogger({ daemon: 'mon', level: values['log-level'] ?? 'info' });
  const env = realEnv(log);
  const store = new FileMonStore({ env, dir: values.data });
  const fail = (err: unknown): void => {
    const d = describeError(err);
    log.error({ err }, 'monitor failed');
    process.stderr.write(`strata mon: ${d.message}\n`);
    flushAndExit(log, exit, d.exitCode);
  };
  if (values.mkfs === true) { mkfs(env, log, values.data, values.keyring, exit, fail); return; }
  const server = new MonServer({
    env, store, osdGraceMs, downOutIntervalMs,
    onFatal: (err) => { log.fatal({ err }, 'monitor store failed; exiting'); flushAndExit(log, exit, EXIT.ERROR); },
  });
  server.start(addr.host, addr.port, (err, port) => {
    if (err !== null) { fail(err); return; }
    log.info({ addr: `${addr.host}:${port}`, epoch: server.monitor.map().epoch, fsid: server.monitor.map().fsid, osdGraceMs }, 'monitor ready');
    const stop = (signal: string): void => {
      log.info({ signal }, 'monitor stopping');
      server.stop(() => flushAndExit(log, exit, EXIT.OK));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** `--mkfs`: keyring (created when missing), auth import, epoch 1. */
function mkfs(env: Env, log: Logger, dir: string, keyringPath: string, exit: (code: number) => void, fail: (err: unknown) => void): void {
  loadKeyringFile(env, keyringPath, (err, existing) => {
    if (err !== null && (err as { code?: string }).code !== 'ENOENT') { fail(err); return; }
    const ring = existing ?? bootstrapKeyring(env);
    if (!ring.has('mon.') || !ring.has(OSD_SERVICE_ENTITY)) { fail(new UsageError(`keyring ${keyringPath} lacks mon. or ${OSD_SERVICE_ENTITY}`)); return; }
    const afterKeyring = (): void => {
      monMkfs({ env, store: new FileMonStore({ env, dir }), keyring: ring }, (err2, fsid) => {
        if (err2 !== null) { fail(err2); return; }
        log.info({ dir, fsid }, 'monitor store initialised');
        process.stdout.write(`strata mon: initialised ${dir} (fsid ${fsid}); keyring ${keyringPath}\n`);
        flushAndExit(log, exit, EXIT.OK);
      });
    };
    if (existing !== undefined) { afterKeyring(); return; }
    saveKeyring(keyringFileIo(env), keyringPath, ring, (err3) => (err3 !== null ? fail(err3) : afterKeyring()));
  });
}

/** mon., client.admin (allow * everywhere) and the OSD service secret, with fresh keys. */
function bootstrapKeyring(env: Env): Keyring {
  const ring: Keyring = new Map();
  ring.set('mon.', { entity: 'mon.', key: generateKey(env.rng), caps: { ...ALL_CAPS, osd: [...ALL_CAPS.osd] }, capsText: { mon: 'allow *', osd: 'allow *' } });
  ring.set('client.admin', { entity: 'client.admin', key: generateKey(env.rng), caps: { ...ALL_CAPS, osd: [...ALL_CAPS.osd] }, capsText: { mon: 'allow *', osd: 'allow *' } });
  ring.set(OSD_SERVICE_ENTITY, { entity: OSD_SERVICE_ENTITY, key: generateKey(env.rng), caps: { mon: 'none', osd: [] }, capsText: { mon: '', osd: '' } });
  return ring;
}
