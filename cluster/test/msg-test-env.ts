/**
 * Helpers for messenger and auth tests: a real Env over 127.0.0.1 whose pino output is kept in
 * memory (tests assert on log lines), a seeded Rng for reproducible keys, and a Net wrapper
 * that lets a test rewrite outgoing chunks (tampering, corruption).
 */
import pino from 'pino';
import { generateKey, makeKeyringEntry } from '../src/auth/keyring.js';
import type { KeyringEntry } from '../src/auth/keyring.js';
import { ClusterError } from '../src/common/errors.js';
import type { Logger } from 'pino';
import type { Env, Rng } from '../src/env/env.js';
import type { Net, NetSocket } from '../src/env/net.js';
import { createRealEnv } from '../src/env/real.js';
import { RealNet } from '../src/env/real-net.js';

/** Captured log lines (parsed JSON). */
export interface LogSink {
  lines: Record<string, unknown>[];
  log: Logger;
}

export function memoryLogger(level = 'debug'): LogSink {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level, redact: ['*.key', '*.secret', 'ticket'] }, {
    write(s: string): void { lines.push(JSON.parse(s) as Record<string, unknown>); },
  });
  return { lines, log };
}

/** A deterministic Rng (xorshift32) for keys in tests. */
export function seededRng(seed: number): Rng {
  let x = seed >>> 0 || 1;
  const u32 = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  return { u32, bytes: (n) => Uint8Array.from({ length: n }, () => u32() & 0xff) };
}

/** Rewrites each write's chunk list before it reaches the real socket. */
export type WriteTap = (chunks: readonly Uint8Array[]) => readonly Uint8Array[];

/** A Net whose connected sockets pass writes through `tap.fn` (settable later). */
export function tappedNet(inner: Net, tap: { fn: WriteTap | null }): Net {
  const wrap = (s: NetSocket): NetSocket => ({
    get remoteAddress() { return s.remoteAddress; },
    write: (chunks) => s.write(tap.fn === null ? chunks : tap.fn(chunks)),
    onData: (cb, target) => s.onData(cb, target),
    onDrain: (cb) => s.onDrain(cb),
    onClose: (cb) => s.onClose(cb),
    close: () => s.close(),
    destroy: () => s.destroy(),
  });
  return {
    listen: (host, port, onConn, cb) => inner.listen(host, port, (s) => onConn(wrap(s)), cb),
    connect: (host, port, cb) => inner.connect(host, port, (err, s) => cb(err, s === undefined ? undefined : wrap(s))),
  };
}

/** A real Env with an in-memory log; `net` may be wrapped. */
export function testEnv(opts: { net?: Net; level?: string } = {}): Env & { sink: LogSink } {
  const sink = memoryLogger(opts.level ?? 'debug');
  const env = createRealEnv({ log: sink.log, net: opts.net ?? new RealNet() });
  return Object.assign(env, { sink });
}

/** Waits (polling the real event loop) until `cond()` or the deadline. */
export function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve();
      else if (Date.now() - start > timeoutMs) reject(new Error('waitFor timed out'));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

/** A keyring entry with a key derived from its name (reproducible), for tests that run a monitor. */
export function testKeyringEntry(name: string, mon: string, osd = ''): KeyringEntry {
  const e = makeKeyringEntry(name, generateKey(seededRng(name.length * 7919 + name.charCodeAt(name.length - 1))), { mon, osd });
  if (e instanceof ClusterError) throw e;
  return e;
}
