/**
 * `strata vhost`: serve a file or block device as a vhost-user-blk device, following QEMU's
 * "Backend program conventions" (docs/interop/vhost-user.rst): --socket-path or --fd,
 * --print-capabilities, no daemonizing, logs on stdout, clean exit on SIGTERM/SIGINT.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { FileStore } from './block-store/file-store.js';
import { ControlServer } from './control-server.js';
import { VhostDaemon } from './daemon.js';
import { parseSize } from './size.js';

export { parseSize };

export const VHOST_USAGE = `Usage: strata vhost (--socket-path PATH | --fd N) --file PATH [options]

Serves a raw file or block device to a QEMU guest as a vhost-user-blk device.

  --socket-path PATH   listen on this Unix socket (QEMU connects as the client)
  --fd N               listen on an inherited, already listening socket fd
  --file PATH          raw file or block device to serve (alias: --blk-file)
  --size SIZE          create or grow the file to SIZE (bytes, or with K/M/G/T suffix)
  --read-only          refuse writes (VIRTIO_BLK_F_RO)
  --num-queues N       queues offered to the guest (default 4; QEMU's num-queues must be <= N)
  --workers N          run the queues on N worker threads (queue i on worker i mod N); 1 (the
                       default) runs everything on one event loop, best for small VMs
  --direct             open with O_DIRECT (bypass the host page cache)
  --io MODE            sync|async|auto: preadv/pwritev on the event loop (sync) or on the
                       threadpool (async); auto = sync for tmpfs/ramfs files (default auto)
  --writethrough       report a write-through cache (every write made durable before completion)
  --serial ID          GET_ID answer, up to 20 bytes (default: the file's base name)
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
  if (file === undefined) throw new Error('--file is required');
  if ((values['socket-path'] === undefined) === (values.fd === undefined)) throw new Error('exactly one of --socket-path and --fd is required');
  if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > 64) throw new Error('--num-queues must be 1..64');
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new Error('--workers must be 1..64');
  const io = values.io;
  if (io !== 'sync' && io !== 'async' && io !== 'auto') throw new Error('--io must be sync, async or auto');

  const log = pino({ level: values['log-level'], base: { daemon: 'vhost' } });
  const store = FileStore.open(file, {
    readOnly: values['read-only'],
    direct: values.direct,
    io,
    ...(values.size === undefined ? {} : { sizeBytes: parseSize(values.size) }),
    ...(values.serial === undefined ? {} : { serial: values.serial }),
  });
  log.info({ file, sizeBytes: store.sizeBytes, io: store.syncIo ? 'sync' : 'async', direct: values.direct, readOnly: store.readOnly }, 'store opened');
  const daemon = new VhostDaemon({
    store,
    numQueues,
    log,
    writeback: !values.writethrough,
    workers: { count: workers, store: { filePath: file, readOnly: values['read-only'], direct: values.direct, io, serial: store.serial } },
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
