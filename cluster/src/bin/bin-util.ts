/**
 * Shared plumbing of the cluster binaries (`strata mon`, `strata osd`, the admin CLI): the
 * real Env with one root logger, keyring files over `env.disk` (0600, atomic), host:port
 * parsing, the client configuration (flags → env vars → config file) and exit codes.
 *
 * Why keyring files go through `env.disk` and not node:fs: the boundary test keeps node:fs in
 * env/real*.ts only, and `createRealDisk` already creates files with mode 0600 and offers the
 * fsync/rename steps an atomic replace needs.
 */
import pino from 'pino';
import type { Logger } from 'pino';
import { ClusterError } from '../common/errors.js';
import type { ClusterErrorCode } from '../common/errors.js';
import type { Env } from '../env/env.js';
import { createRealEnv } from '../env/real.js';
import { RealNet } from '../env/real-net.js';
import { loadKeyring } from '../auth/keyring.js';
import type { Keyring, KeyringFileIo } from '../auth/keyring.js';
import { readWholeFile, writeFileAtomic } from '../env/disk-file.js';

/**
 * Exit codes of every cluster command (docs/operations.md):
 * 0 ok · 1 error · 2 usage · 3 not found · 4 already exists · 5 authentication or permission
 * denied · 6 unavailable (monitor unreachable, timeout).
 */
export const EXIT = { OK: 0, ERROR: 1, USAGE: 2, NOT_FOUND: 3, EXISTS: 4, DENIED: 5, UNAVAILABLE: 6 } as const;

/** Exit code for a cluster error code. */
export function exitCodeFor(code: ClusterErrorCode | string | undefined): number {
  switch (code) {
    case 'CLU_ERR_NOT_FOUND': case 'ENOENT': return EXIT.NOT_FOUND;
    case 'CLU_ERR_EXISTS': return EXIT.EXISTS;
    case 'CLU_ERR_AUTH': case 'CLU_ERR_PERM': case 'EACCES': return EXIT.DENIED;
    case 'CLU_ERR_UNAVAILABLE': case 'CLU_ERR_TIMEOUT': case 'CLU_ERR_CONN_CLOSED': case 'CLU_ERR_CANCELLED': return EXIT.UNAVAILABLE;
    default: return EXIT.ERROR;
  }
}

/** A usage error: printed with the command's usage text, exit 2. */
export class UsageError extends Error {}

/** The root logger of a daemon (JSON on stdout) or of the CLI (stderr, quiet by default). */
export function rootLogger(o: { daemon: string; level: string; stderr?: boolean; bindings?: Record<string, unknown> }): Logger {
  return pino({
    level: o.level,
    base: { daemon: o.daemon, ...o.bindings },
    redact: ['*.key', '*.secret', 'ticket', '*.ticket', '*.sessionKey'],
  }, pino.destination({ fd: o.stderr === true ? 2 : 1, sync: true }));
}

/** The production Env over a root logger. */
export function realEnv(log: Logger): Env {
  return createRealEnv({ log, net: new RealNet() });
}

/** Keyring files through `env.disk`: read whole; write tmp (0600) → fdatasync → rename → fsync dir. */
export function keyringFileIo(env: Env): KeyringFileIo {
  return {
    readFile: (path, cb) => readWholeFile(env.disk, path, (err, bytes) => cb(err, err ? '' : new TextDecoder().decode(bytes))),
    writeFileAtomic: (path, text, _mode, cb) => {
      const { dir, name } = splitPath(path);
      env.disk.mkdir(dir, (err) => {
        if (err) { cb(err); return; }
        writeFileAtomic(env.disk, dir, name, new TextEncoder().encode(text), cb);
      });
    },
  };
}

/** Loads a keyring, with a clear error for a missing or malformed file. */
export function loadKeyringFile(env: Env, path: string, cb: (err: Error | null, ring?: Keyring) => void): void {
  loadKeyring(keyringFileIo(env), path, (err, ring) => {
    if (err !== null) {
      const code = (err as { code?: string }).code;
      cb(Object.assign(new Error(`cannot read keyring ${path}: ${code ?? ''} ${err.message}`.trim()), { code }));
      return;
    }
    cb(null, ring);
  });
}

/** Splits "a/b/c" into dir "a/b" and name "c" ("." for a bare name). */
export function splitPath(path: string): { dir: string; name: string } {
  const i = path.lastIndexOf('/');
  if (i < 0) return { dir: '.', name: path };
  return { dir: i === 0 ? '/' : path.slice(0, i), name: path.slice(i + 1) };
}

/** Parses "host:port" (port 0–65535). */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^([^\s:]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || port > 65535) throw new UsageError(`${what} must be HOST:PORT, got '${text}'`);
  return { host: m[1]!, port };
}

/** Parses a non-negative integer option. */
export function parseIntOption(text: string | undefined, what: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a non-negative integer, got '${text}'`);
  return Number(text);
}

/** Client settings after flags, environment and config file. */
export interface ClientConfig {
  mon: string;
  keyring: string;
  name: string;
}

/** Default config file; `STRATA_CONF` overrides the path. */
export const DEFAULT_CONF_PATH = '/etc/strata/strata.conf';

/**
 * Resolves `--mon/--keyring/--name`: flag, else `STRATA_MON`/`STRATA_KEYRING`/`STRATA_NAME`,
 * else `mon = …`, `keyring = …`, `name = …` lines of the config file, else defaults
 * (`127.0.0.1:6789`, `/etc/strata/keyring`, `client.admin`).
 */
export function resolveClientConfig(env: Env, flags: Partial<ClientConfig>, cb: (cfg: ClientConfig) => void): void {
  const vars = process.env;
  const path = vars['STRATA_CONF'] ?? DEFAULT_CONF_PATH;
  readWholeFile(env.disk, path, (err, bytes) => {
    const file = err ? {} : parseConf(new TextDecoder().decode(bytes));
    cb({
      mon: flags.mon ?? vars['STRATA_MON'] ?? file['mon'] ?? '127.0.0.1:6789',
      keyring: flags.keyring ?? vars['STRATA_KEYRING'] ?? file['keyring'] ?? '/etc/strata/keyring',
      name: flags.name ?? vars['STRATA_NAME'] ?? file['name'] ?? 'client.admin',
    });
  });
}

/** `key = value` lines; `#`/`;` comments and `[section]` lines are ignored. */
export function parseConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

/** Message and exit code for an error reaching the top of a command. */
export function describeError(err: unknown): { message: string; exitCode: number } {
  if (err instanceof UsageError) return { message: err.message, exitCode: EXIT.USAGE };
  if (err instanceof ClusterError) return { message: `${err.message} (${err.code})`, exitCode: exitCodeFor(err.code) };
  const e = err as { message?: string; code?: string };
  return { message: e.message ?? String(err), exitCode: exitCodeFor(e.code) };
}

/** Flushes the logger, then exits. */
export function flushAndExit(log: Logger, exit: (code: number) => void, code: number): void {
  log.flush();
  exit(code);
}
