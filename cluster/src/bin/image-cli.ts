/**
 * `strata image …` and `strata bench …`: image management and I/O benchmarking in the spirit
 * of `rbd` (docs/images.md, docs/operations.md). Each run: resolve the client config (flags →
 * env → config file, as the admin CLI), load the keyring, connect a ClusterClient (map +
 * ticket), run one command through the client library's Promise facade, exit with the CLI's
 * documented codes (0 ok, 1 error, 2 usage, 3 not found, 4 exists, 5 auth/permission,
 * 6 unavailable).
 *
 * Files for import/export go through `env.disk` (the boundary rule: only env/real*.ts touches
 * node:fs); `-` means stdin/stdout.
 */
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { ClusterError } from '../common/errors.js';
import type { Env, Fd } from '../env/env.js';
import { ClusterClient } from '../client/cluster-client.js';
import type { Image } from '../client/image.js';
import type { Images } from '../client/images.js';
import type { BreakLockResult, ImageLockInfo } from '../client/image-lock-admin.js';
import { EXIT, UsageError, describeError, flushAndExit, loadKeyringFile, parseHostPort, realEnv, resolveClientConfig, rootLogger } from './bin-util.js';

export const IMAGE_USAGE = `Image commands (pool/image; sizes take K, M, G, T suffixes, powers of 1024):
  strata image create POOL/NAME --size SIZE [--object-size 4M] [--stripe-unit SIZE --stripe-count N]
  strata image ls POOL                          strata image info POOL/NAME
  strata image resize POOL/NAME --size SIZE [--allow-shrink]
  strata image rm POOL/NAME                     strata image rename POOL/NAME NEWNAME
  strata image import FILE|- POOL/NAME [--object-size 4M]   (zero blocks are skipped: the image stays thin)
  strata image export POOL/NAME FILE|-
  strata image lock ls POOL/NAME                (exclusive-lock holder, lease expiry, fencing epoch)
  strata image lock break POOL/NAME [--holder INSTANCE]   (blocklists the holder, then removes its lock)
  strata bench POOL/NAME --io-type read|write|rw [--io-size 4K] [--io-threads 16] [--io-pattern seq|rand]
               [--io-total 256M] [--rw-mix-read 70] [--warmup-total 0] [--json]
Common options: --mon, --keyring, --name, --json, --timeout-ms (see the admin commands)`;

const K = 1024;

/** Parses "10G", "4M", "512", "64K" (powers of 1024). */
export function parseSize(text: string | undefined, what: string): number {
  if (text === undefined) throw new UsageError(`${what} is required`);
  const m = /^(\d+)([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (m === null) throw new UsageError(`${what} must be a size like 10G or 4096, got '${text}'`);
  const mult = { '': 1, K, M: K ** 2, G: K ** 3, T: K ** 4 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const n = Number(m[1]) * mult;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${what} too large`);
  return n;
}

function splitSpec(spec: string | undefined, usage: string): { pool: string; image: string } {
  const m = /^([^/\s]+)\/([^/\s@]+)$/.exec(spec ?? '');
  if (m === null) throw new UsageError(`expected POOL/IMAGE, got '${spec ?? ''}' (usage: strata ${usage})`);
  return { pool: m[1]!, image: m[2]! };
}

type Values = Record<string, string | boolean | undefined>;

/** Runs `strata image …` (words[0] === 'image') or `strata bench …`. */
export function runImageCli(argv: string[], exit: (code: number) => void): void {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      mon: { type: 'string' }, keyring: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' },
      'timeout-ms': { type: 'string' }, size: { type: 'string' }, 'object-size': { type: 'string' }, 'stripe-unit': { type: 'string' },
      'stripe-count': { type: 'string' }, 'allow-shrink': { type: 'boolean' }, 'io-type': { type: 'string' }, 'io-size': { type: 'string' },
      'io-threads': { type: 'string' }, 'io-pattern': { type: 'string' }, 'io-total': { type: 'string' }, 'rw-mix-read': { type: 'string' }, 'warmup-total': { type: 'string' },
      'log-level': { type: 'string' }, holder: { type: 'string' }, help: { type: 'boolean', short: 'h' }, 'no-progress': { type: 'boolean' },
    },
  });
  if (values.help === true) { process.stdout.write(IMAGE_USAGE + '\n'); exit(EXIT.OK); return; }
  const run = buildImageCommand(positionals, values);
  process.stdout.on('error', (e: { code?: string }) => { if (e.code === 'EPIPE') exit(EXIT.OK); });
  const log = rootLogger({ daemon: 'cli', level: (values['log-level'] as string | undefined) ?? process.env['STRATA_LOG_LEVEL'] ?? 'fatal', stderr: true });
  const env = realEnv(log);
  const flags = { ...(values.mon === undefined ? {} : { mon: values.mon as string }), ...(values.keyring === undefined ? {} : { keyring: values.keyring as string }), ...(values.name === undefined ? {} : { name: values.name as string }) };
  resolveClientConfig(env, flags, (cfg) => {
    loadKeyringFile(env, cfg.keyring, (err, ring) => {
      const entry = ring?.get(cfg.name);
      if (err !== null || entry === undefined) {
        finish(log, exit, err ?? new ClusterError('CLU_ERR_NOT_FOUND', `keyring ${cfg.keyring} has no entry ${cfg.name} (missing key)`), values);
        return;
      }
      let mon: { host: string; port: number };
      try { mon = parseHostPort(cfg.mon, '--mon'); } catch (e) { finish(log, exit, e, values); return; }
      const timeoutMs = Number(values['timeout-ms'] ?? 10_000);
      ClusterClient.connect({ env, mon, entity: cfg.name, key: entry.key, connectTimeoutMs: timeoutMs, monMaxAttempts: 6 }, (err2, client) => {
        if (err2 !== null || client === undefined) { finish(log, exit, err2, values); return; }
        run({ env, client, json: values.json === true }).then((text) => {
          client.close();
          if (text !== '') process.stdout.write(text.endsWith('\n') ? text : text + '\n');
          flushAndExit(log, exit, EXIT.OK);
        }, (e: unknown) => { client.close(); finish(log, exit, e, values); });
      });
    });
  });
}

interface Ctx { env: Env; client: ClusterClient; json: boolean }
type Run = (ctx: Ctx) => Promise<string>;

function imagesOf(ctx: Ctx, pool: string): Images {
  const r = ctx.client.images(pool);
  if (r instanceof ClusterError) throw r;
  return r;
}

/** Validates the words into a runnable command (usage errors before any connection). */
export function buildImageCommand(words: string[], v: Values): Run {
  const [w0, w1, ...rest] = words;
  const need = (n: number, usage: string): string[] => {
    if (rest.length !== n) throw new UsageError(`usage: strata ${usage}`);
    return rest;
  };
  if (w0 === 'bench') {
    const spec = splitSpec(w1, 'bench POOL/NAME --io-type read|write|rw');
    if (rest.length !== 0) throw new UsageError('usage: strata bench POOL/NAME [options]');
    const opts = benchOptions(v);
    return (ctx) => runBench(ctx, spec, opts);
  }
  if (w0 !== 'image') throw new UsageError(`unknown command 'strata ${words.join(' ')}'`);
  switch (w1) {
    case 'create': {
      const [s] = need(1, 'image create POOL/NAME --size SIZE');
      const spec = splitSpec(s, 'image create POOL/NAME --size SIZE');
      const sizeBytes = parseSize(v['size'] as string | undefined, '--size');
      if (sizeBytes % 512 !== 0) throw new UsageError(`--size ${sizeBytes} is not a multiple of 512`);
      const objectSize = v['object-size'] === undefined ? undefined : parseSize(v['object-size'] as string, '--object-size');
      const stripeUnit = v['stripe-unit'] === undefined ? undefined : parseSize(v['stripe-unit'] as string, '--stripe-unit');
      const stripeCount = v['stripe-count'] === undefined ? undefined : Number(v['stripe-count']);
      if ((stripeUnit === undefined) !== (stripeCount === undefined)) throw new UsageError('--stripe-unit and --stripe-count go together');
      const layout = { ...(objectSize === undefined ? {} : { objectSize }), ...(stripeUnit === undefined ? {} : { stripeUnit }), ...(stripeCount === undefined ? {} : { stripeCount }) };
      return async (ctx) => {
        const id = await imagesOf(ctx, spec.pool).createAsync(spec.image, { sizeBytes, layout });
        return ctx.json ? JSON.stringify({ pool: spec.pool, image: spec.image, id, sizeBytes }) : '';
      };
    }
    case 'ls': {
      const [pool] = need(1, 'image ls POOL');
      return async (ctx) => {
        const names = await imagesOf(ctx, pool!).listAsync();
        return ctx.json ? JSON.stringify(names) : names.join('\n');
      };
    }
    case 'info': {
      const spec = splitSpec(need(1, 'image info POOL/NAME')[0], 'image info POOL/NAME');
      return async (ctx) => formatInfo(await imagesOf(ctx, spec.pool).infoAsync(spec.image), spec.pool, ctx.json);
    }
    case 'resize': {
      const spec = splitSpec(need(1, 'image resize POOL/NAME --size SIZE')[0], 'image resize POOL/NAME --size SIZE');
      const sizeBytes = parseSize(v['size'] as string | undefined, '--size');
      if (sizeBytes % 512 !== 0) throw new UsageError(`--size ${sizeBytes} is not a multiple of 512`);
      return async (ctx) => {
        const img = await imagesOf(ctx, spec.pool).openAsync(spec.image);
        try {
          if (sizeBytes < img.sizeBytes && v['allow-shrink'] !== true) throw new UsageError(`shrinking ${spec.image} from ${img.sizeBytes} to ${sizeBytes} bytes discards data: add --allow-shrink`);
          await img.resizeAsync(sizeBytes);
        } finally { await img.closeAsync(); }
        return '';
      };
    }
    case 'rm': {
      const spec = splitSpec(need(1, 'image rm POOL/NAME')[0], 'image rm POOL/NAME');
      return async (ctx) => { await imagesOf(ctx, spec.pool).removeAsync(spec.image); return ''; };
    }
    case 'rename': {
      const [s, to] = need(2, 'image rename POOL/NAME NEWNAME');
      const spec = splitSpec(s, 'image rename POOL/NAME NEWNAME');
      const target = to!.includes('/') ? splitSpec(to, 'image rename POOL/NAME POOL/NEWNAME') : { pool: spec.pool, image: to! };
      if (target.pool !== spec.pool) throw new UsageError('rename cannot move an image to another pool');
      return async (ctx) => { await imagesOf(ctx, spec.pool).renameAsync(spec.image, target.image); return ''; };
    }
    case 'import': {
      const [file, s] = need(2, 'image import FILE|- POOL/NAME');
      const spec = splitSpec(s, 'image import FILE|- POOL/NAME');
      const objectSize = v['object-size'] === undefined ? undefined : parseSize(v['object-size'] as string, '--object-size');
      return (ctx) => runImport(ctx, file!, spec, objectSize, v['no-progress'] !== true);
    }
    case 'export': {
      const [s, file] = need(2, 'image export POOL/NAME FILE|-');
      const spec = splitSpec(s, 'image export POOL/NAME FILE|-');
      return (ctx) => runExport(ctx, spec, file!, v['no-progress'] !== true);
    }
    case 'lock': {
      const [sub, s, ...extra] = rest;
      if (sub === 'ls' && extra.length === 0 && v['holder'] === undefined) {
        const spec = splitSpec(s, 'image lock ls POOL/NAME');
        return async (ctx) => formatLockInfo(await imagesOf(ctx, spec.pool).lockInfoAsync(spec.image), spec, ctx.env.wallMs(), ctx.json);
      }
      if (sub === 'break' && extra.length === 0) {
        const spec = splitSpec(s, 'image lock break POOL/NAME [--holder INSTANCE]');
        const holder = v['holder'] as string | undefined;
        if (holder !== undefined && !/^[^/\s]+\/[^/\s]+$/.test(holder)) throw new UsageError(`--holder takes a client instance ENTITY/NONCE (as 'image lock ls' shows), got '${holder}'`);
        return async (ctx) => formatBreak(await imagesOf(ctx, spec.pool).breakLockAsync(spec.image, holder), spec, ctx.json);
      }
      throw new UsageError('usage: strata image lock ls POOL/NAME | strata image lock break POOL/NAME [--holder INSTANCE]');
    }
    default:
      throw new UsageError(`unknown command 'strata ${words.join(' ')}'`);
  }
}

/** "in 23.4s" / "expired 5.2s ago" (relative to `nowMs`, this host's wall clock). */
function relativeMs(ms: number): string {
  const s = Math.abs(ms) / 1000;
  const t = s < 120 ? `${s.toFixed(1)}s` : s < 7200 ? `${(s / 60).toFixed(1)}m` : `${(s / 3600).toFixed(1)}h`;
  return ms > 0 ? `in ${t}` : `expired ${t} ago`;
}

/** `image lock ls`: one row per holder (rbd lock ls), or the JSON object. */
export function formatLockInfo(i: ImageLockInfo, spec: { pool: string; image: string }, nowMs: number, json: boolean): string {
  if (json) {
    return JSON.stringify({
      pool: spec.pool, image: spec.image, lockName: i.lockName, exclusive: i.exclusive, fenceEpoch: i.fenceEpoch,
      holders: i.holders.map((h) => ({ ...h, expiresInMs: h.expiresMs === 0 ? null : h.expiresMs - nowMs })),
    });
  }
  if (i.holders.length === 0) return `image ${spec.pool}/${spec.image} is not locked (fencing epoch ${i.fenceEpoch})`;
  const rows = i.holders.map((h) => [h.client, h.cookie, h.expiresMs === 0 ? 'never' : `${relativeMs(h.expiresMs - nowMs)} (${new Date(h.expiresMs).toISOString()})`]);
  const w0 = Math.max(6, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(6, ...rows.map((r) => r[1]!.length));
  const n = i.holders.length;
  return [
    `There ${n === 1 ? 'is 1' : `are ${n}`} ${i.exclusive ? 'exclusive' : 'shared'} lock${n === 1 ? '' : 's'} on ${spec.pool}/${spec.image} (fencing epoch ${i.fenceEpoch}).`,
    `${'Holder'.padEnd(w0)}  ${'Cookie'.padEnd(w1)}  Lease expires`,
    ...rows.map((r) => `${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]!}`),
  ].join('\n');
}

/** `image lock break`: what was done. */
export function formatBreak(r: BreakLockResult, spec: { pool: string; image: string }, json: boolean): string {
  if (json) return JSON.stringify({ pool: spec.pool, image: spec.image, ...r });
  return [
    `blocklisted ${r.holder} (map epoch ${r.blocklistEpoch}): the OSDs refuse its I/O`,
    `broke its lock on ${spec.pool}/${spec.image} (cookie ${r.cookie}${r.wasExpired ? ', lease already lapsed' : ''}); fencing epoch ${r.previousFenceEpoch} -> ${r.fenceEpoch}`,
    `a new writer can open the image now; the old one must reopen (a new instance) once it is stopped`,
  ].join('\n');
}

function formatInfo(i: import('../client/image.js').ImageInfo, pool: string, json: boolean): string {
  if (json) return JSON.stringify({ pool, ...i });
  return [
    `image '${i.name}' (id ${i.id}) in pool '${pool}':`,
    `\tsize ${humanBytes(i.sizeBytes)} (${i.sizeBytes} bytes) in objects of ${humanBytes(i.layout.objectSize)}`,
    `\tstripe unit ${humanBytes(i.layout.stripeUnit)}, stripe count ${i.layout.stripeCount}`,
    `\tused ${humanBytes(i.usedBytes)} in ${i.objectCount} objects (before replication)`,
    `\tfeatures 0x${i.features.toString(16)}, created ${new Date(i.createdMs).toISOString()}`,
  ].join('\n');
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let x = n;
  while (x >= 1024 && u < units.length - 1) { x /= 1024; u++; }
  return `${u === 0 ? x : x.toFixed(x < 10 ? 2 : 1)} ${units[u]}`;
}

// ----- import / export (bounded pipelines: at most QUEUE chunks in flight). -----

const CHUNK = 4 * 1024 * 1024;
const QUEUE = 8;

/** A progress bar on stderr when it is a terminal (rbd's "Importing image: 42% complete"). */
function progress(label: string, enabled: boolean): (done: number, total: number) => void {
  const tty = enabled && process.stderr.isTTY === true;
  let last = -1;
  return (done, total) => {
    if (!tty) return;
    const pct = total > 0 ? Math.floor((done / total) * 100) : 0;
    if (pct === last) return;
    last = pct;
    const width = 30;
    const fill = Math.round((pct / 100) * width);
    process.stderr.write(`\r${label}: [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${pct}%${pct === 100 ? '\n' : ''}`);
  };
}

function diskCall<T>(fn: (cb: (err: Error | null, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
}

async function runImport(ctx: Ctx, file: string, spec: { pool: string; image: string }, objectSize: number | undefined, showProgress: boolean): Promise<string> {
  const images = imagesOf(ctx, spec.pool);
  const disk = ctx.env.disk;
  const fromStdin = file === '-';
  const fd = fromStdin ? undefined : await diskCall<Fd>((cb) => disk.open(file, { readOnly: true }, cb));
  const fileSize = fd === undefined ? 0 : await diskCall<number>((cb) => disk.fsize(fd, cb));
  // Stdin: unknown length; the image grows as data arrives and is rounded up to 512 bytes.
  await images.createAsync(spec.image, { sizeBytes: roundUp512(fileSize), ...(objectSize === undefined ? {} : { layout: { objectSize } }) });
  const img = await images.openAsync(spec.image);
  const bar = progress('Importing image', showProgress);
  let offset = 0;
  const inflight = new Set<Promise<void>>();
  const read = fromStdin ? stdinChunks() : fileChunks(ctx.env, fd!, fileSize);
  try {
    for await (const chunk of read) {
      if (fromStdin && offset + chunk.length > img.sizeBytes) await img.resizeAsync(roundUp512(offset + chunk.length + 64 * CHUNK));
      for (const run of nonZeroRuns(chunk)) {
        const p: Promise<void> = img.writeAsync(offset + run.start, chunk.subarray(run.start, run.end)).finally(() => inflight.delete(p));
        inflight.add(p);
        if (inflight.size >= QUEUE) await Promise.race(inflight);
      }
      offset += chunk.length;
      bar(offset, fromStdin ? offset : fileSize);
    }
    await Promise.all(inflight);
    if (fromStdin) await img.resizeAsync(roundUp512(offset));
    bar(1, 1);
  } finally {
    await img.closeAsync();
    if (fd !== undefined) await diskCall<null>((cb) => disk.close(fd, (e) => cb(e, null)));
  }
  return ctx.json ? JSON.stringify({ image: spec.image, bytes: offset }) : '';
}

async function* fileChunks(env: Env, fd: Fd, size: number): AsyncGenerator<Uint8Array> {
  for (let pos = 0; pos < size; pos += CHUNK) {
    const buf = new Uint8Array(Math.min(CHUNK, size - pos));
    const n = await diskCall<number>((cb) => env.disk.pread(fd, buf, pos, cb));
    yield buf.subarray(0, n);
  }
}

async function* stdinChunks(): AsyncGenerator<Uint8Array> {
  let pending: Buffer[] = [];
  let len = 0;
  for await (const piece of process.stdin as AsyncIterable<Buffer>) {
    pending.push(piece);
    len += piece.length;
    if (len >= CHUNK) {
      const all = Buffer.concat(pending);
      let pos = 0;
      for (; pos + CHUNK <= all.length; pos += CHUNK) yield all.subarray(pos, pos + CHUNK);
      pending = [all.subarray(pos)];
      len = all.length - pos;
    }
  }
  if (len > 0) yield Buffer.concat(pending);
}

async function runExport(ctx: Ctx, spec: { pool: string; image: string }, file: string, showProgress: boolean): Promise<string> {
  const img = await imagesOf(ctx, spec.pool).openAsync(spec.image, { readOnly: true });
  const disk = ctx.env.disk;
  const toStdout = file === '-';
  const fd = toStdout ? undefined : await diskCall<Fd>((cb) => disk.open(file, { create: true, truncate: true }, cb));
  const bar = progress('Exporting image', showProgress);
  const size = img.sizeBytes;
  try {
    // Read ahead QUEUE chunks; write them in order.
    const reads: Promise<Uint8Array>[] = [];
    let next = 0;
    const issue = (): void => { while (reads.length < QUEUE && next < size) { const n = Math.min(CHUNK, size - next); reads.push(img.readAsync(next, n)); next += n; } };
    issue();
    let offset = 0;
    while (reads.length > 0) {
      const chunk = await reads.shift()!;
      issue();
      if (fd === undefined) await writeStdout(chunk);
      else await diskCall<null>((cb) => disk.pwrite(fd, chunk, offset, (e) => cb(e, null)));
      offset += chunk.length;
      bar(offset, size);
    }
    if (fd !== undefined) await diskCall<null>((cb) => disk.fdatasync(fd, (e) => cb(e, null)));
    bar(1, 1);
  } finally {
    await img.closeAsync();
    if (fd !== undefined) await diskCall<null>((cb) => disk.close(fd, (e) => cb(e, null)));
  }
  return toStdout ? '' : ctx.json ? JSON.stringify({ image: spec.image, bytes: size, file }) : '';
}

function writeStdout(chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

/** Sparse granularity of import (rbd's --sparse-size default). */
const SPARSE_BYTES = 4096;

/** Runs of `chunk` made of non-zero 4 KiB blocks (zero blocks are not written: thin import). */
function nonZeroRuns(chunk: Uint8Array): { start: number; end: number }[] {
  const runs: { start: number; end: number }[] = [];
  for (let pos = 0; pos < chunk.length; pos += SPARSE_BYTES) {
    const end = Math.min(chunk.length, pos + SPARSE_BYTES);
    if (isZero(chunk.subarray(pos, end))) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.end === pos) last.end = end; else runs.push({ start: pos, end });
  }
  return runs;
}

function isZero(b: Uint8Array): boolean {
  const words = b.length >>> 3;
  const v = new Float64Array(b.buffer, b.byteOffset, (b.byteOffset & 7) === 0 ? words : 0);
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) return false;
  for (let i = v.length * 8; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function roundUp512(n: number): number { return Math.ceil(n / 512) * 512; }

// ----- bench (rbd bench). -----

interface BenchOptions { ioType: 'read' | 'write' | 'rw'; ioSize: number; threads: number; pattern: 'seq' | 'rand'; total: number; mixRead: number; warmup: number }

function benchOptions(v: Values): BenchOptions {
  const ioType = v['io-type'];
  if (ioType !== 'read' && ioType !== 'write' && ioType !== 'rw') throw new UsageError('--io-type must be read, write or rw');
  const pattern = (v['io-pattern'] ?? 'seq') as string;
  if (pattern !== 'seq' && pattern !== 'rand') throw new UsageError('--io-pattern must be seq or rand');
  const ioSize = parseSize((v['io-size'] as string | undefined) ?? '4K', '--io-size');
  if (ioSize === 0 || ioSize % 512 !== 0) throw new UsageError('--io-size must be a positive multiple of 512');
  const threads = Number(v['io-threads'] ?? 16);
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new UsageError('--io-threads must be 1..1024');
  const mixRead = Number(v['rw-mix-read'] ?? 70);
  if (!(mixRead >= 0 && mixRead <= 100)) throw new UsageError('--rw-mix-read must be 0..100');
  const warmup = parseSize((v['warmup-total'] as string | undefined) ?? '0', '--warmup-total');
  return { ioType, ioSize, threads, pattern, total: parseSize((v['io-total'] as string | undefined) ?? '1G', '--io-total'), mixRead, warmup };
}

async function runBench(ctx: Ctx, spec: { pool: string; image: string }, o: BenchOptions): Promise<string> {
  const img = await imagesOf(ctx, spec.pool).openAsync(spec.image, { readOnly: o.ioType === 'read' });
  try {
    return await benchImage(ctx, img, o);
  } finally {
    await img.closeAsync();
  }
}

async function benchImage(ctx: Ctx, img: Image, o: BenchOptions): Promise<string> {
  const slots = Math.floor(img.sizeBytes / o.ioSize);
  if (slots === 0) throw new ClusterError('CLU_ERR_INVALID', `image of ${img.sizeBytes} bytes is smaller than --io-size`);
  // --warmup-total: the same workload first, unmeasured and silent, in this process (fio's
  // ramp_time). Why in-process: the client is JIT-compiled, and a daemon that serves an image
  // runs for days; a fresh process measures V8 compiling the I/O path for its first seconds.
  const warmupOps = Math.floor(o.warmup / o.ioSize);
  if (warmupOps > 0) await benchRun(ctx, img, o, slots, warmupOps, true);
  const r = { ...await benchRun(ctx, img, o, slots, Math.max(1, Math.floor(o.total / o.ioSize)), false), warmupOps };
  if (ctx.json) return JSON.stringify(r);
  return `elapsed: ${r.elapsedSec.toFixed(2)}  ops: ${r.ops}  ops/sec: ${r.iops.toFixed(1)}  bytes/sec: ${r.mibPerSec.toFixed(2)} MiB/s  ` +
    `lat avg ${r.latMsAvg.toFixed(3)} ms  p50 ${r.latMsP50.toFixed(3)} ms  p99 ${r.latMsP99.toFixed(3)} ms  max ${r.latMsMax.toFixed(3)} ms`;
}

/** What one bench run measured (the JSON output, with `warmupOps` added). */
interface BenchResult {
  ioType: string; ioSize: number; threads: number; pattern: string; ops: number; reads: number; elapsedSec: number;
  iops: number; mibPerSec: number; latMsAvg: number; latMsP50: number; latMsP99: number; latMsMax: number;
}

/** Runs `ops` I/Os of the workload; `quiet`: no header or per-second lines (the warm-up). */
async function benchRun(ctx: Ctx, img: Image, o: BenchOptions, slots: number, ops: number, quiet: boolean): Promise<BenchResult> {
  const env = ctx.env;
  const lat = new Float64Array(ops);
  const bufs = Array.from({ length: o.threads }, (_, i) => new Uint8Array(o.ioSize).fill(0x5a ^ i));
  let issued = 0;
  let completed = 0;
  let seqPos = 0;
  let reads = 0;
  // Why a local xorshift seeded once: env.rng is crypto-grade (a syscall-backed fill per call),
  // too slow to sit on a benchmark's per-op path.
  let x = env.rng.u32() || 1;
  const rnd = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x1_0000_0000; };
  const start = env.nowMs();
  if (!ctx.json && !quiet) process.stdout.write(`bench  type ${o.ioType} io_size ${o.ioSize} io_threads ${o.threads} bytes ${ops * o.ioSize} pattern ${o.pattern === 'rand' ? 'random' : 'sequential'}\n  SEC       OPS   OPS/SEC   BYTES/SEC\n`);
  let lastReportMs = start;
  let lastReportOps = 0;
  await new Promise<void>((resolve, reject) => {
    const one = (slot: number): void => {
      if (issued >= ops) return;
      const i = issued++;
      const offset = (o.pattern === 'seq' ? (seqPos++ % slots) : Math.floor(rnd() * slots)) * o.ioSize;
      const isRead = o.ioType === 'read' || (o.ioType === 'rw' && rnd() * 100 < o.mixRead);
      if (isRead) reads++;
      const t0 = env.nowMs();
      const done = (err: ClusterError | null): void => {
        if (err !== null) { reject(err); return; }
        const now = env.nowMs();
        lat[i] = now - t0;
        completed++;
        if (!ctx.json && !quiet && now - lastReportMs >= 1000) {
          const rate = ((completed - lastReportOps) * 1000) / (now - lastReportMs);
          process.stdout.write(`${String(Math.round((now - start) / 1000)).padStart(5)} ${String(completed).padStart(9)} ${rate.toFixed(1).padStart(9)}   ${humanBytes(rate * o.ioSize)}/s\n`);
          lastReportMs = now;
          lastReportOps = completed;
        }
        if (completed === ops) resolve(); else one(slot);
      };
      if (isRead) img.readv(offset, [bufs[slot]!], done); else img.writev(offset, [bufs[slot]!], done);
    };
    for (let s = 0; s < o.threads; s++) one(s);
  });
  const elapsedMs = env.nowMs() - start;
  lat.sort();
  const pct = (p: number): number => lat[Math.min(ops - 1, Math.floor((p / 100) * ops))]!;
  const iops = (ops * 1000) / elapsedMs;
  return {
    ioType: o.ioType, ioSize: o.ioSize, threads: o.threads, pattern: o.pattern, ops, reads, elapsedSec: elapsedMs / 1000,
    iops, mibPerSec: (iops * o.ioSize) / (1024 * 1024), latMsAvg: lat.reduce((a, b) => a + b, 0) / ops, latMsP50: pct(50), latMsP99: pct(99), latMsMax: lat[ops - 1]!,
  };
}

function finish(log: Logger, exit: (code: number) => void, err: unknown, v: Values): void {
  const d = describeError(err);
  const reason = err instanceof ClusterError ? err.details?.['reason'] : undefined;
  if (v.json === true) process.stdout.write(JSON.stringify({ error: d.message, code: (err as { code?: string } | null)?.code ?? 'ERROR', ...(typeof reason === 'string' ? { reason } : {}) }) + '\n');
  process.stderr.write(`strata: ${d.message}\n`);
  flushAndExit(log, exit, d.exitCode);
}
