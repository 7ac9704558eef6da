/**
 * `node dist/scripts/floor-bench.js [--dir /var/tmp] [--rounds 20000]`: what this machine
 * charges for the parts a replicated write is made of, with no strata code involved, so the
 * OSD benchmark's CPU per op can be read against a floor (docs/benchmarks.md, issue #5).
 *
 * 1. One TCP message exchange over 127.0.0.1 between two processes (4 KiB request, 64 B
 *    reply, TCP_NODELAY): CPU µs per round trip of each side, and the round-trip time —
 *    in C (scripts/floor/pingpong.c, compiled here with gcc; blocking sockets, no runtime)
 *    and in Node (net.Socket, one process per side, as the OSDs are); each with one pair
 *    alone (the CPUs go idle between messages, as at queue depth 1) and with two pairs at
 *    once (the CPUs never idle): on a VM the difference is what a halt and wake-up cost.
 * 2. A 4 KiB write in Node: `fs.write` (libuv thread pool: hand-off to a pool thread and
 *    back) against `fs.writeSync` (the same pwrite on the main thread), on `--dir`.
 * 3. A durable 4 KiB write on `--dir`: pwrite with O_DSYNC, latency.
 * 4. The disk as a replicated write and a read meet it: three durable 4 KiB writes issued at
 *    once to three files (O_DSYNC | O_DIRECT, as the three OSDs' journals do; all on one disk
 *    here), latency until the last completes; a 4 KiB O_DIRECT read at a random offset of a
 *    256 MiB file, latency; 1 MiB O_DIRECT writes to three files, 4 in flight, MiB/s (what
 *    three replicas of a 1 MiB write stream need, per replica-MiB).
 * 5. What those make of the QD1 latency goals: the floor of a replicated 4 KiB write and of a
 *    4 KiB read at QD1, with Node exchanges and with C's.
 *
 * Then the floor of one replicated 4 KiB write (size 3): 6 exchange sides (client 1, primary
 * 3 — client, two replicas — each replica 1) plus 3 journal writes, for C with in-thread I/O
 * and for Node with pool I/O. All loops are bounded by --rounds.
 */
import { execFile, execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alignedBytes } from '../cluster/src/common/aligned.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] ?? dflt : dflt;
};
const ROUNDS = Math.max(1000, Math.min(1_000_000, Number(arg('--rounds', '20000')) || 20000));
const DIR = arg('--dir', '/var/tmp');
const REQ = 4096;
const REP = 64;

const cpuUs = (): number => { const u = process.cpuUsage(); return u.user + u.system; };

interface Exchange { clientCpuUs: number; serverCpuUs: number; rttUs: number }

/** Runs `file args` and parses its JSON output. */
function runJson(file: string, args: string[]): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', timeout: 120_000 }, (err, out) => {
      if (err !== null) { reject(err); return; }
      try { resolve(JSON.parse(out) as Exchange); } catch (e) { reject(e as Error); }
    });
  });
}

/**
 * The C ping-pong, compiled into a temporary directory: one pair alone (the CPUs idle between
 * messages), then two pairs at once (the CPUs never idle). Null when gcc is missing.
 */
async function cPingPong(): Promise<{ alone: Exchange; busy: Exchange } | null> {
  const src = join(fileURLToPath(import.meta.url), '../../../scripts/floor/pingpong.c');
  const dir = fs.mkdtempSync(join(tmpdir(), 'strata-floor-'));
  try {
    const bin = join(dir, 'pingpong');
    execFileSync('gcc', ['-O2', '-o', bin, src], { stdio: 'ignore' });
    const args = [String(ROUNDS), String(REQ), String(REP)];
    const alone = await runJson(bin, args);
    const [busy] = await Promise.all([runJson(bin, args), runJson(bin, args)]);
    return { alone, busy: busy! };
  } catch (e) {
    process.stderr.write(`C ping-pong skipped: ${(e as Error).message.split('\n')[0]}\n`);
    return null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Server side of the Node ping-pong (a forked copy of this script). */
function nodeServer(): void {
  const warm = Math.floor(ROUNDS / 10);
  let n = 0;
  let pending = 0;
  let c0 = 0;
  const rep = Buffer.alloc(REP, 1);
  const srv = net.createServer({ noDelay: true }, (c) => {
    c.on('data', (d: Buffer) => {
      pending += d.length;
      while (pending >= REQ) {
        pending -= REQ;
        if (n++ === warm) c0 = cpuUs();
        c.write(rep);
      }
      if (n === ROUNDS) { process.send!({ cpuUs: cpuUs() - c0 }); srv.close(); c.end(); }
    });
  });
  srv.listen(0, '127.0.0.1', () => process.send!({ port: (srv.address() as net.AddressInfo).port }));
}

function nodePingPong(): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--server', '--rounds', String(ROUNDS)], { stdio: 'inherit' });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('node ping-pong timed out')); }, 120_000);
    child.once('message', (m: { port: number }) => {
      const warm = Math.floor(ROUNDS / 10);
      const req = Buffer.alloc(REQ, 7);
      let n = 0;
      let got = 0;
      let c0 = 0;
      let t0 = 0;
      const c = net.connect({ host: '127.0.0.1', port: m.port, noDelay: true }, () => c.write(req));
      c.on('data', (d: Buffer) => {
        got += d.length;
        while (got >= REP) {
          got -= REP;
          if (++n === warm) { c0 = cpuUs(); t0 = performance.now(); }
          if (n === ROUNDS) {
            const done = n - warm;
            const clientCpuUs = (cpuUs() - c0) / done;
            const rttUs = ((performance.now() - t0) * 1000) / done;
            child.once('message', (s: { cpuUs: number }) => {
              clearTimeout(timer);
              c.destroy();
              resolve({ clientCpuUs, serverCpuUs: s.cpuUs / done, rttUs });
            });
            return;
          }
          c.write(req);
        }
      });
    });
  });
}

/** CPU µs per 4 KiB write: through the libuv pool (`fs.write`) and on the main thread. */
function fsWrites(): Promise<{ asyncCpuUs: number; syncCpuUs: number; dsyncLatUs: number }> {
  const path = join(DIR, `strata-floor-${process.pid}`);
  const fd = fs.openSync(path, 'w');
  const buf = Buffer.alloc(4096, 3);
  const n = Math.min(ROUNDS, 20_000);
  return new Promise((resolve) => {
    let i = 0;
    const c0 = cpuUs();
    const next = (): void => {
      if (i === n) {
        const asyncCpuUs = (cpuUs() - c0) / n;
        const s0 = cpuUs();
        for (let j = 0; j < n; j++) fs.writeSync(fd, buf, 0, 4096, (j % 256) * 4096);
        const syncCpuUs = (cpuUs() - s0) / n;
        fs.closeSync(fd);
        const dfd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_DSYNC);
        const m = Math.min(n, 2000);
        const t0 = performance.now();
        for (let j = 0; j < m; j++) fs.writeSync(dfd, buf, 0, 4096, (j % 256) * 4096);
        const dsyncLatUs = ((performance.now() - t0) * 1000) / m;
        fs.closeSync(dfd);
        fs.rmSync(path, { force: true });
        resolve({ asyncCpuUs, syncCpuUs, dsyncLatUs });
        return;
      }
      fs.write(fd, buf, 0, 4096, (i++ % 256) * 4096, next);
    };
    next();
  });
}

interface DiskFloor { dsync3LatUs: number; directReadLatUs: number; replicatedMiBps: number }

/** Section 4: three durable writes at once, a direct random read, three-file 1 MiB write rate. */
async function diskFloor(): Promise<DiskFloor> {
  const c = fs.constants;
  const paths = [0, 1, 2].map((i) => join(DIR, `strata-floor-${process.pid}-${i}`));
  // O_DIRECT wants an aligned address (the shim tells where the 4096 boundary is).
  const aligned = (bytes: number, fill: number): Uint8Array => alignedBytes(bytes).fill(fill);
  try {
    const fds = paths.map((p) => fs.openSync(p, c.O_RDWR | c.O_CREAT | c.O_DSYNC | c.O_DIRECT, 0o600));
    const small = aligned(4096, 5);
    const write = (fd: number, buf: Uint8Array, pos: number): Promise<void> => new Promise((res, rej) => fs.write(fd, buf, 0, buf.length, pos, (e) => (e ? rej(e) : res())));
    for (const fd of fds) fs.writeSync(fd, aligned(1 << 20, 1), 0, 1 << 20, 0); // allocated blocks: overwrites, as a journal
    const rounds = Math.min(ROUNDS, 2000);
    let t0 = performance.now();
    for (let r = 0; r < rounds; r++) await Promise.all(fds.map((fd) => write(fd, small, (r % 256) * 4096)));
    const dsync3LatUs = ((performance.now() - t0) * 1000) / rounds;
    for (const fd of fds) fs.closeSync(fd);
    // 256 MiB laid out with 1 MiB direct writes (nothing in the page cache), then random reads.
    const rfd = fs.openSync(paths[0]!, c.O_RDWR | c.O_DIRECT);
    const big = aligned(1 << 20, 9);
    for (let m = 0; m < 256; m++) fs.writeSync(rfd, big, 0, big.length, m << 20);
    const rbuf = aligned(4096, 0);
    let x = 0x9e3779b9;
    t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      fs.readSync(rfd, rbuf, 0, 4096, (x % 65536) * 4096);
    }
    const directReadLatUs = ((performance.now() - t0) * 1000) / rounds;
    fs.closeSync(rfd);
    // 1 MiB direct writes to the three files, 4 in flight in all (libuv's pool has 4 threads), 768 MiB.
    const wfds = paths.map((p) => fs.openSync(p, c.O_RDWR | c.O_DIRECT));
    const total = 768;
    let issued = 0;
    t0 = performance.now();
    await Promise.all([0, 1, 2, 3].map(async () => {
      while (issued < total) {
        const i = issued++;
        await write(wfds[i % 3]!, big, Math.floor(i / 3) << 20);
      }
    }));
    const replicatedMiBps = total / ((performance.now() - t0) / 1000);
    for (const fd of wfds) fs.closeSync(fd);
    return { dsync3LatUs, directReadLatUs, replicatedMiBps };
  } finally {
    for (const p of paths) fs.rmSync(p, { force: true });
  }
}

/** Two Node pairs at once: this process's pair and one in a second copy of this script. */
async function nodePingPongBusy(): Promise<Exchange> {
  const self = fileURLToPath(import.meta.url);
  const [mine] = await Promise.all([nodePingPong(), runJson(process.execPath, [self, '--node-pair', '--rounds', String(ROUNDS)])]);
  return mine;
}

async function main(): Promise<void> {
  const c = await cPingPong();
  const js = await nodePingPong();
  const jsBusy = await nodePingPongBusy();
  const w = await fsWrites();
  const d = await diskFloor();
  const f = (x: number): string => x.toFixed(1).padStart(7);
  const out = process.stdout;
  out.write(`floor-bench: ${ROUNDS} rounds, 4 KiB request / 64 B reply over 127.0.0.1, writes on ${DIR}\n\n`);
  out.write('| part | CPU µs (client side) | CPU µs (server side) | latency µs |\n|---|---:|---:|---:|\n');
  if (c !== null) {
    out.write(`| TCP exchange, C, one pair (CPUs idle between messages) | ${f(c.alone.clientCpuUs)} | ${f(c.alone.serverCpuUs)} | ${f(c.alone.rttUs)} |\n`);
    out.write(`| TCP exchange, C, two pairs at once (CPUs never idle) | ${f(c.busy.clientCpuUs)} | ${f(c.busy.serverCpuUs)} | ${f(c.busy.rttUs)} |\n`);
  }
  out.write(`| TCP exchange, Node, one pair | ${f(js.clientCpuUs)} | ${f(js.serverCpuUs)} | ${f(js.rttUs)} |\n`);
  out.write(`| TCP exchange, Node, two pairs at once | ${f(jsBusy.clientCpuUs)} | ${f(jsBusy.serverCpuUs)} | ${f(jsBusy.rttUs)} |\n`);
  out.write(`| 4 KiB fs.write (libuv pool) | ${f(w.asyncCpuUs)} | | |\n`);
  out.write(`| 4 KiB fs.writeSync (main thread) | ${f(w.syncCpuUs)} | | |\n`);
  out.write(`| 4 KiB pwrite O_DSYNC | | | ${f(w.dsyncLatUs)} |\n`);
  out.write(`| three 4 KiB pwrites O_DSYNC\\|O_DIRECT at once, three files (until the last) | | | ${f(d.dsync3LatUs)} |\n`);
  out.write(`| 4 KiB pread O_DIRECT, random offset of 256 MiB | | | ${f(d.directReadLatUs)} |\n`);
  out.write(`| 1 MiB pwrites O_DIRECT to three files, 4 in flight: ${d.replicatedMiBps.toFixed(0)} MiB/s in all, ${(d.replicatedMiBps / 3).toFixed(0)} MiB/s per replica | | | |\n\n`);
  const side = (e: Exchange): number => (e.clientCpuUs + e.serverCpuUs) / 2;
  const nodeFloor = 6 * side(js) + 3 * w.asyncCpuUs;
  out.write('Floor of one replicated 4 KiB write (6 exchange sides + 3 journal writes), CPU summed over processes:\n');
  if (c !== null) {
    out.write(`  C, in-thread I/O, CPUs idle between messages: ${(6 * side(c.alone) + 3 * w.syncCpuUs).toFixed(0)} µs\n`);
    out.write(`  C, in-thread I/O, CPUs never idle:            ${(6 * side(c.busy) + 3 * w.syncCpuUs).toFixed(0)} µs\n`);
  }
  out.write(`  Node, pool I/O, one pair:                     ${nodeFloor.toFixed(0)} µs   (issue #5 goal: 60 µs)\n`);
  out.write(`  Node, pool I/O, two pairs at once:            ${(6 * side(jsBusy) + 3 * w.asyncCpuUs).toFixed(0)} µs\n`);
  out.write(`Latency floor at QD1 (two exchanges in sequence + one durable write): ${(2 * js.rttUs + w.dsyncLatUs).toFixed(0)} µs (Node); goal 500 µs\n`);
  // The replicated write at QD1 waits for the last of three journal writes on this one disk.
  out.write(`Replicated 4 KiB write at QD1 (client→primary and primary→replica exchanges, three journal writes at once on this disk): ${(2 * js.rttUs + d.dsync3LatUs).toFixed(0)} µs with Node exchanges, ${c !== null ? (2 * c.alone.rttUs + d.dsync3LatUs).toFixed(0) : '–'} µs with C's\n`);
  out.write(`4 KiB read at QD1 (one exchange + one direct read): ${(js.rttUs + d.directReadLatUs).toFixed(0)} µs with Node exchanges, ${c !== null ? (c.alone.rttUs + d.directReadLatUs).toFixed(0) : '–'} µs with C's\n`);
  out.write(`1 MiB writes, size 3, all replicas on this disk: at most ${(d.replicatedMiBps / 3).toFixed(0)} MiB/s of client data\n`);
}

if (process.argv.includes('--server')) nodeServer();
else if (process.argv.includes('--node-pair')) void nodePingPong().then((e) => process.stdout.write(`${JSON.stringify(e)}\n`));
else main().catch((e: unknown) => { process.stderr.write(`floor-bench failed: ${String(e)}\n`); process.exit(1); });
