/**
 * `strata vhost`: serve a file or block device — or a cluster image (`--image POOL/NAME`) — as
 * a vhost-user-blk device, following QEMU's "Backend program conventions"
 * (docs/interop/vhost-user.rst): --socket-path or --fd, --print-capabilities, no daemonizing,
 * logs on stdout, clean exit on SIGTERM/SIGINT.
 *
 * One daemon serves one disk (a file or an image) on one socket (docs/e2e.md): a crash or an
 * upgrade restart touches one VM disk, and the daemon holds only that image's client key.
 */
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { BlockStore } from './block-store/block-store.js';
import { ClusterStore } from './block-store/cluster-store.js';
import { FileStore } from './block-store/file-store.js';
import { ControlServer } from './control-server.js';
import { VhostDaemon } from './daemon.js';
import type { DaemonSource } from './daemon.js';
import { ClusterClient } from '../../cluster/src/client/cluster-client.js';
import { loadKeyringFile, parseHostPort, realEnv, resolveClientConfig } from '../../cluster/src/bin/bin-util.js';
import { parseSize } from './size.js';
import { DAEMON_FLAGS_HINT, DAEMON_NODE_FLAGS, hasDaemonNodeFlags, tuneDaemonProcess } from '../../cluster/src/common/daemon-node-flags.js';

export { parseSize };

export const VHOST_USAGE = `Usage: strata vhost (--socket-path PATH | --fd N) (--file PATH | --image POOL/NAME) [options]

Serves a raw file or block device, or a cluster image, to a QEMU guest as a vhost-user-blk
device.

  --socket-path PATH   listen on this Unix socket (QEMU connects as the client)
  --fd N               listen on an inherited, already listening socket fd
  --file PATH          raw file or block device to serve (alias: --blk-file)
  --size SIZE          create or grow the file to SIZE (bytes, or with K/M/G/T suffix)
  --image POOL/NAME    serve a cluster image instead of a file (opened for write: takes the
                       image's exclusive lock; with --read-only, no lock)
  --mon HOST:PORT      monitor (default: STRATA_MON, 'mon =' in /etc/strata/strata.conf, 127.0.0.1:6789)
  --keyring PATH       keyring holding --name's key; must be mode 0600 (default: STRATA_KEYRING,
                       'keyring =' in the config file, /etc/strata/keyring)
  --name client.X      the client entity (default: STRATA_NAME, 'name =' in the config file,
                       client.admin); give it caps on the image's pool only
  --lock-lease-ms N    the image lock's lease (default 10000): a crashed daemon's lock lapses
                       after it, so a restarted daemon waits at most this long for the lock
  --lock-wait-ms N     how long to retry a lock held by another writer (default: lease + 5 s)
  --read-only          refuse writes (VIRTIO_BLK_F_RO)
  --num-queues N       queues offered to the guest (default 4; QEMU's num-queues must be <= N)
  --workers N          run the queues on N worker threads (queue i on worker i mod N); 1 (the
                       default) runs everything on one event loop, best for small VMs
  --direct             open with O_DIRECT (bypass the host page cache)
  --io MODE            sync|async|auto: preadv/pwritev on the event loop (sync) or on the
                       threadpool (async); auto = sync for tmpfs/ramfs files (default auto)
  --writethrough       report a write-through cache (every write made durable before completion)
  --serial ID          GET_ID answer, up to 20 bytes (default: the file's base name, or
                       strata-<image id>)
  --control-socket P   HTTP control socket for status and resize (default: <socket-path>.ctl)
  --log-level LEVEL    trace|debug|info|warn|error (default info)
  --print-capabilities print the back-end's capabilities as JSON and exit
  -h, --help           this text`;

/** Runs the daemon until a signal; returns the process exit code through `exit`. */
export function runVhost(argv: string[], exit: (code: number) => void): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      'socket-path': { type: 'string' },
      fd: { type: 'string' },
      file: { type: 'string' },
      'blk-file': { type: 'string' },
      size: { type: 'string' },
      image: { type: 'string' },
      mon: { type: 'string' },
      keyring: { type: 'string' },
      name: { type: 'string' },
      'lock-lease-ms': { type: 'string' },
      'lock-wait-ms': { type: 'string' },
      'read-only': { type: 'boolean', default: false },
      'num-queues': { type: 'string', default: '4' },
      workers: { type: 'string', default: '1' },
      direct: { type: 'boolean', default: false },
      io: { type: 'string', default: 'auto' },
      writethrough: { type: 'boolean', default: false },
      serial: { type: 'string' },
      'control-socket': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'print-capabilities': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(VHOST_USAGE + '\n');
    return exit(0);
  }
  if (values['print-capabilities']) {
    process.stdout.write(JSON.stringify({ type: 'block', features: ['read-only', 'blk-file'] }) + '\n');
    return exit(0);
  }
  // Why: rings and request headers are read through native-endian typed arrays.
  if (os.endianness() !== 'LE') throw new Error('strata vhost needs a little-endian host');
  const file = values.file ?? values['blk-file'];
  const numQueues = Number(values['num-queues']);
  const imageSpec = values.image;
  if ((file === undefined) === (imageSpec === undefined)) throw new Error('exactly one of --file and --image is required');
  if (imageSpec === undefined) {
    for (const o of ['mon', 'keyring', 'name', 'lock-lease-ms', 'lock-wait-ms'] as const) {
      if (values[o] !== undefined) throw new Error(`--${o} goes with --image`);
    }
  }
  if ((values['socket-path'] === undefined) === (values.fd === undefined)) throw new Error('exactly one of --socket-path and --fd is required');
  if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > 64) throw new Error('--num-queues must be 1..64');
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new Error('--workers must be 1..64');
  const io = values.io;
  if (io !== 'sync' && io !== 'async' && io !== 'auto') throw new Error('--io must be sync, async or auto');

  const log = pino({ level: values['log-level'], base: { daemon: 'vhost' } });
  if (!hasDaemonNodeFlags()) log.info({ flags: DAEMON_NODE_FLAGS }, '%s', DAEMON_FLAGS_HINT);
  tuneDaemonProcess();
  if (imageSpec !== undefined) {
    // Why refuse and not "each worker opens its own client": an image has one writer (the
    // exclusive lock), so two workers' clients would fence each other.
    if (workers > 1) throw new Error('--workers > 1 is not supported with --image (an image has exactly one writer: its exclusive lock); run one daemon per image');
    for (const o of ['size', 'direct'] as const) {
      if (values[o] !== undefined && values[o] !== false) throw new Error(`--${o} goes with --file (resize an image with 'strata image resize' or 'strata vhost-ctl resize')`);
    }
    if (values.io !== 'auto') throw new Error('--io goes with --file');
    const m = /^([^/\s]+)\/([^/\s@]+)$/.exec(imageSpec);
    if (m === null) throw new Error(`--image must be POOL/NAME, got '${imageSpec}'`);
    const leaseMs = values['lock-lease-ms'] === undefined ? 10_000 : Number(values['lock-lease-ms']);
    if (!Number.isInteger(leaseMs) || leaseMs < 1000) throw new Error('--lock-lease-ms must be an integer >= 1000');
    const lockWaitMs = values['lock-wait-ms'] === undefined ? leaseMs + 5_000 : Number(values['lock-wait-ms']);
    if (!Number.isInteger(lockWaitMs) || lockWaitMs < 0) throw new Error('--lock-wait-ms must be a non-negative integer');
    openImageStore({
      pool: m[1]!, image: m[2]!, readOnly: values['read-only'], leaseMs, lockWaitMs, log,
      ...(values.mon === undefined ? {} : { mon: values.mon }),
      ...(values.keyring === undefined ? {} : { keyring: values.keyring }),
      ...(values.name === undefined ? {} : { name: values.name }),
      ...(values.serial === undefined ? {} : { serial: values.serial }),
    }, (err, opened) => {
      if (err !== null || opened === undefined) {
        const msg = err?.message ?? 'open failed';
        log.error({ err, image: imageSpec }, 'cannot serve the image');
        process.stderr.write(`strata vhost: ${msg}\n`);
        log.flush();
        const code = (err as { code?: string } | null)?.code;
        return exit(code === 'CLU_ERR_AUTH' || code === 'CLU_ERR_PERM' || code === 'EKEYRINGMODE' ? 5 : code === 'CLU_ERR_NOT_FOUND' ? 3 : 1);
      }
      log.info({ image: imageSpec, id: opened.store.imageId, sizeBytes: opened.store.sizeBytes, readOnly: opened.store.readOnly, source: opened.source }, 'image opened');
      try {
        serve(values, numQueues, workers, opened.store, log, exit, opened.source, undefined);
      } catch (e) {
        process.stderr.write(`strata vhost: ${(e as Error).message}\n`);
        opened.store.close(() => exit(1));
      }
    });
    return;
  }
  const store = FileStore.open(file!, {
    readOnly: values['read-only'],
    direct: values.direct,
    io,
    ...(values.size === undefined ? {} : { sizeBytes: parseSize(values.size) }),
    ...(values.serial === undefined ? {} : { serial: values.serial }),
  });
  log.info({ file, sizeBytes: store.sizeBytes, io: store.syncIo ? 'sync' : 'async', direct: values.direct, readOnly: store.readOnly }, 'store opened');
  serve(values, numQueues, workers, store, log, exit, { kind: 'file', path: file! },
    { filePath: file!, readOnly: values['read-only'], direct: values.direct, io, serial: store.serial });
}

interface ServeValues {
  'socket-path'?: string | undefined;
  fd?: string | undefined;
  writethrough?: boolean | undefined;
  'control-socket'?: string | undefined;
}

/** Starts the daemon and the control socket on an open store; stops them on SIGTERM/SIGINT. */
function serve(
  values: ServeValues, numQueues: number, workers: number, store: BlockStore, log: Logger, exit: (code: number) => void,
  source: DaemonSource, workerStore: { filePath: string; readOnly: boolean; direct: boolean; io: 'sync' | 'async' | 'auto'; serial: string } | undefined,
): void {
  const daemon = new VhostDaemon({
    store,
    numQueues,
    log,
    source,
    writeback: !values.writethrough,
    ...(workerStore === undefined ? {} : { workers: { count: workers, store: workerStore } }),
    ...(values['socket-path'] === undefined ? {} : { socketPath: values['socket-path'] }),
    ...(values.fd === undefined ? {} : { listenFd: Number(values.fd) }),
  });
  daemon.start();
  const controlPath = values['control-socket'] ?? (values['socket-path'] === undefined ? undefined : `${values['socket-path']}.ctl`);
  const control = controlPath === undefined ? null : new ControlServer(controlPath, daemon, log);
  control?.start((err) => {
    if (err) log.error({ err }, 'control socket failed; serving without it');
  });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const closeControl = (next: () => void): void => (control === null ? next() : control.stop(next));
    closeControl(() =>
      daemon.stop(() =>
        store.close(() => {
          log.info('stopped');
          log.flush();
          exit(0);
        }),
      ),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

interface ImageOpenOptions {
  pool: string;
  image: string;
  readOnly: boolean;
  leaseMs: number;
  lockWaitMs: number;
  log: Logger;
  mon?: string;
  keyring?: string;
  name?: string;
  serial?: string;
}

/** Refuses a keyring that anyone but its owner can read (it holds the client's secret). */
export function keyringModeError(path: string): Error | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (err) {
    return Object.assign(new Error(`cannot read keyring ${path}: ${(err as Error).message}`), { code: (err as { code?: string }).code });
  }
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    return Object.assign(new Error(`keyring ${path} is readable or writable by group or others (mode ${mode}); it holds a secret key: chmod 600 ${path}`), { code: 'EKEYRINGMODE' });
  }
  return null;
}

/**
 * Client config (flags → STRATA_* env → config file), keyring check and load, connect, open
 * the image. A lock held by another writer (e.g. the previous daemon, killed: its lease has not
 * lapsed yet) is retried every second up to `lockWaitMs`.
 */
function openImageStore(o: ImageOpenOptions, cb: (err: Error | null, r?: { store: ClusterStore; source: DaemonSource }) => void): void {
  const env = realEnv(o.log.child({ component: 'cluster' }));
  const flags = { ...(o.mon === undefined ? {} : { mon: o.mon }), ...(o.keyring === undefined ? {} : { keyring: o.keyring }), ...(o.name === undefined ? {} : { name: o.name }) };
  resolveClientConfig(env, flags, (cfg) => {
    const bad = keyringModeError(cfg.keyring);
    if (bad !== null) return cb(bad);
    loadKeyringFile(env, cfg.keyring, (err, ring) => {
      if (err !== null) return cb(err);
      const entry = ring?.get(cfg.name);
      if (entry === undefined) return cb(Object.assign(new Error(`keyring ${cfg.keyring} has no key for ${cfg.name}`), { code: 'CLU_ERR_AUTH' }));
      let mon: { host: string; port: number };
      try {
        mon = parseHostPort(cfg.mon, '--mon');
      } catch (e) {
        return cb(e as Error);
      }
      // The daemon's client keeps reconnecting to the monitor (no attempt limit): a monitor
      // restart must not take the disk away.
      ClusterClient.connect({ env, mon, entity: cfg.name, key: entry.key, connectTimeoutMs: 15_000 }, (err2, client) => {
        if (err2 !== null || client === undefined) return cb(err2 ?? new Error('connect failed'));
        const deadline = Date.now() + o.lockWaitMs;
        const attempt = (): void => {
          ClusterStore.open(client, {
            pool: o.pool, image: o.image, readOnly: o.readOnly, ownClient: true, leaseMs: o.leaseMs,
            ...(o.serial === undefined ? {} : { serial: o.serial }),
          }, (err3, store) => {
            if (err3 === null && store !== undefined) {
              return cb(null, { store, source: { kind: 'image', pool: o.pool, image: o.image, id: store.imageId, mon: cfg.mon, client: cfg.name } });
            }
            const code = (err3 as { code?: string } | null)?.code;
            if (code === 'CLU_ERR_BUSY' && Date.now() < deadline) {
              o.log.warn({ image: `${o.pool}/${o.image}` }, 'image locked by another writer (a crashed daemon\'s lease has not lapsed yet?); retrying');
              setTimeout(attempt, 1000);
              return;
            }
            client.close();
            cb(err3 ?? new Error('open failed'));
          });
        };
        attempt();
      });
    });
  });
}
