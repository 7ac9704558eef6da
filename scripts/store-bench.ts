/**
 * Object-store benchmark on a real disk (issue #5 performance targets). Runs, in one process:
 *   - raw fdatasync latency (4 KiB pwrite + fdatasync at random offsets of a preallocated file)
 *   - 4 KiB random write at QD1 and QD16 (small writes: journal-resident until checkpoint)
 *   - 4 KiB random read at QD1 (blocks on the data file after a checkpoint; page cache warm)
 *   - 1 MiB sequential write at QD1 (direct path: data file + a small journal record)
 * and prints IOPS, MiB/s, p50/p99 latency, CPU µs per op (process.cpuUsage) and RSS.
 *
 * Usage: node dist/scripts/store-bench.js [--dir=/var/tmp/strata-bench] [--ops=2000] [--journal-io=inline|pool] [--json]
 * Use a real disk (/var/tmp), not tmpfs: the point is the cost of fdatasync.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import type { ObjectName, PoolId } from '../cluster/src/common/ids.js';
import type { Net } from '../cluster/src/env/net.js';
import { createRealEnv } from '../cluster/src/env/real.js';
import { ObjectStore } from '../cluster/src/store/object-store.js';
import { Transaction } from '../cluster/src/store/types.js';
import type { JournalIo, ObjectId } from '../cluster/src/store/types.js';

const arg = (name: string, dflt: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
const journalIoArg = (v: string): JournalIo => (v === 'pool' || v === 'inline' ? v : 'auto');
const DIR = arg('dir', '/var/tmp/strata-store-bench');
const OPS = Number(arg('ops', '2000'));
const OBJECT_BYTES = 4 * 1024 * 1024;
const OBJECTS = 64;

interface Result { name: string; ops: number; iops: number; mibps: number; p50Us: number; p99Us: number; cpuUsPerOp: number; userUsPerOp: number; rssMiB: number }

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

function summarize(name: string, lat: number[], wallMs: number, bytesPerOp: number, cpu: NodeJS.CpuUsage): Result {
  lat.sort((a, b) => a - b);
  const ops = lat.length;
  return {
    name, ops,
    iops: Math.round(ops / (wallMs / 1000)),
    mibps: Math.round((ops * bytesPerOp) / (wallMs / 1000) / 1048576 * 10) / 10,
    p50Us: Math.round(pct(lat, 0.5) * 1000),
    p99Us: Math.round(pct(lat, 0.99) * 1000),
    cpuUsPerOp: Math.round((cpu.user + cpu.system) / ops * 10) / 10,
    userUsPerOp: Math.round(cpu.user / ops * 10) / 10,
    rssMiB: Math.round(process.memoryUsage().rss / 1048576),
  };
}

/** Raw fdatasync cost on this disk, for reference. */
function rawSync(n: number): Promise<Result> {
  const path = `${DIR}/raw-sync`;
  fs.writeFileSync(path, new Uint8Array(16 * 1024 * 1024));
  fs.fdatasyncSync(fs.openSync(path, 'r+'));
  const fd = fs.openSync(path, 'r+');
  const buf = new Uint8Array(4096).fill(7);
  const lat: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  return new Promise((resolve) => {
    const one = (i: number): void => {
      if (i === n) {
        fs.closeSync(fd);
        return resolve(summarize('raw pwrite 4k + fdatasync QD1', lat, performance.now() - t0, 4096, process.cpuUsage(cpu0)));
      }
      const s = performance.now();
      fs.write(fd, buf, 0, 4096, Math.floor(Math.random() * 4096) * 4096, () => fs.fdatasync(fd, () => { lat.push(performance.now() - s); one(i + 1); }));
    };
    one(0);
  });
}

const obj = (i: number): ObjectId => ({ pool: 1 as PoolId, name: `bench.${i}` as ObjectName });

function writeRun(store: ObjectStore, name: string, n: number, qd: number, size: number, pick: (i: number) => { o: ObjectId; off: number }): Promise<Result> {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 13) & 0xff;
  const lat: number[] = [];
  let issued = 0;
  let done = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const issue = (): void => {
      const i = issued++;
      const { o, off } = pick(i);
      data[0] = i & 0xff;
      const s = performance.now();
      store.submit(new Transaction().write(o, off, data).setVersion(o, { epoch: 1, seq: i }), (e) => {
        if (e) return reject(e);
        lat.push(performance.now() - s);
        if (++done === n) return resolve(summarize(name, lat, performance.now() - t0, size, process.cpuUsage(cpu0)));
        if (issued < n) issue();
      });
    };
    for (let k = 0; k < qd && issued < n; k++) issue();
  });
}

function readRun(store: ObjectStore, n: number): Promise<Result> {
  const lat: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const one = (i: number): void => {
      if (i === n) return resolve(summarize('4k random read QD1', lat, performance.now() - t0, 4096, process.cpuUsage(cpu0)));
      const s = performance.now();
      store.read(obj(Math.floor(Math.random() * OBJECTS)), Math.floor(Math.random() * 256) * 4096, 4096, (e) => {
        if (e && e.code !== 'CLU_ERR_NOT_FOUND') return reject(e);
        lat.push(performance.now() - s);
        one(i + 1);
      });
    };
    one(0);
  });
}

async function main(): Promise<void> {
  fs.rmSync(DIR, { recursive: true, force: true });
  fs.mkdirSync(DIR, { recursive: true });
  const results: Result[] = [];
  results.push(await rawSync(Math.min(OPS, 1000)));
  const env = createRealEnv({ log: pino({ level: 'warn' }), net: {} as Net });
  const store = await new Promise<ObjectStore>((resolve, reject) => ObjectStore.open(env, { dir: `${DIR}/osd`, journalIo: journalIoArg(arg('journal-io', 'auto')) }, (e, s) => (e || !s ? reject(e) : resolve(s))));
  const rnd4k = (): { o: ObjectId; off: number } => ({ o: obj(Math.floor(Math.random() * OBJECTS)), off: Math.floor(Math.random() * (OBJECT_BYTES / 4096)) * 4096 });
  results.push(await writeRun(store, '4k random write QD1', OPS, 1, 4096, rnd4k));
  results.push(await writeRun(store, '4k random write QD16', OPS * 2, 16, 4096, rnd4k));
  await new Promise<void>((resolve, reject) => store.checkpoint((e) => (e ? reject(e) : resolve())));
  results.push(await readRun(store, OPS));
  const seq = (i: number): { o: ObjectId; off: number } => ({ o: obj(100 + Math.floor(i / 4)), off: (i % 4) * 1048576 });
  results.push(await writeRun(store, '1M sequential write QD1', Math.max(50, Math.floor(OPS / 10)), 1, 1048576, seq));
  const stats = store.stats();
  await new Promise<void>((resolve, reject) => store.close((e) => (e ? reject(e) : resolve())));
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ results, stats }, null, 2)}\n`);
  } else {
    process.stdout.write(`dir ${DIR}\n`);
    process.stdout.write(`${'test'.padEnd(32)} ${'ops'.padStart(6)} ${'IOPS'.padStart(7)} ${'MiB/s'.padStart(7)} ${'p50 µs'.padStart(8)} ${'p99 µs'.padStart(8)} ${'CPU µs/op'.padStart(10)} ${'user µs/op'.padStart(10)} ${'RSS MiB'.padStart(8)}\n`);
    for (const r of results) {
      process.stdout.write(`${r.name.padEnd(32)} ${String(r.ops).padStart(6)} ${String(r.iops).padStart(7)} ${String(r.mibps).padStart(7)} ${String(r.p50Us).padStart(8)} ${String(r.p99Us).padStart(8)} ${String(r.cpuUsPerOp).padStart(10)} ${String(r.userUsPerOp).padStart(10)} ${String(r.rssMiB).padStart(8)}\n`);
    }
    process.stdout.write(`store: ${JSON.stringify(stats)}\n`);
  }
  fs.rmSync(DIR, { recursive: true, force: true });
}

main().catch((e: unknown) => { process.stderr.write(`${String(e)}\n`); process.exit(1); });
