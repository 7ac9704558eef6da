/** Shared set-up for backend integration tests: a daemon on a temp socket over a /dev/shm file. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { BlockStore } from '../src/block-store/block-store.js';
import { FileStore } from '../src/block-store/file-store.js';
import { VhostDaemon } from '../src/daemon.js';
import { TestFrontend } from '../testing/test-frontend.js';

export interface Fixture {
  dir: string;
  socketPath: string;
  filePath: string;
  store: FileStore;
  /** What the daemon serves: `opts.store` when given, else `store`. */
  served: BlockStore;
  daemon: VhostDaemon;
  connect(): TestFrontend;
  cleanup(): Promise<void>;
}

export function startDaemon(
  opts: { sizeBytes?: number; numQueues?: number; readOnly?: boolean; workers?: number; prefill?: (fd: number) => void; store?: BlockStore; storeFactory?: (inner: FileStore) => BlockStore; log?: Logger } = {},
): Fixture {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, 'strata-test-'));
  const socketPath = path.join(dir, 'vhost.sock');
  const filePath = path.join(dir, 'disk.raw');
  const sizeBytes = opts.sizeBytes ?? 8 << 20;
  const fd = fs.openSync(filePath, 'w+');
  fs.ftruncateSync(fd, sizeBytes);
  opts.prefill?.(fd);
  fs.closeSync(fd);
  const store = FileStore.open(filePath, { readOnly: opts.readOnly ?? false, serial: 'strata-test-disk' });
  const served = opts.store ?? opts.storeFactory?.(store) ?? store;
  const log = opts.log ?? pino({ level: process.env.STRATA_TEST_LOG ?? 'silent' });
  const workers = opts.workers === undefined ? {} : { workers: { count: opts.workers, store: { filePath, readOnly: opts.readOnly ?? false, direct: false, io: 'auto' as const, serial: 'strata-test-disk' } } };
  const daemon = new VhostDaemon({ store: served, numQueues: opts.numQueues ?? 2, log, socketPath, ...workers });
  daemon.start();
  const frontends: TestFrontend[] = [];
  return {
    dir,
    socketPath,
    filePath,
    store,
    served,
    daemon,
    connect() {
      const fe = TestFrontend.connect(socketPath);
      // Why once: TestFrontend.close() closes its fds every time it is called, and cleanup()
      // closes every front-end again. Tests in a file run concurrently in one process, so a
      // second close would hit fd numbers another test has been given since (its socket).
      const closeOnce = fe.close.bind(fe);
      let released = false;
      fe.close = () => {
        if (released) return;
        released = true;
        closeOnce();
      };
      frontends.push(fe);
      return fe;
    },
    async cleanup() {
      for (const fe of frontends) fe.close();
      await new Promise<void>((r) => daemon.stop(r));
      await new Promise<void>((r) => store.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A recognisable pattern for sector-granular data checks. */
export function pattern(lengthBytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(lengthBytes);
  for (let i = 0; i < lengthBytes; i++) out[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}
