/**
 * Messenger micro-benchmark over 127.0.0.1: a 4 KiB write-like request (small payload + 4 KiB
 * data) answered by a small reply, as the OSD data path will do. The server runs in a child
 * process (so the two sides get their own event loops). Reports QD1 round-trip latency
 * (mean/p50/p99 µs) and QD16 ops/s, unsigned and signed (ticket-authenticated session).
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/msg-bench.js [--seconds=2]
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { authPolicy } from '../cluster/src/auth/handshake.js';
import { parseCaps } from '../cluster/src/auth/caps.js';
import type { Caps } from '../cluster/src/auth/caps.js';
import { acceptTicketGrant, issueTicket } from '../cluster/src/auth/ticket.js';
import type { TicketCredentials } from '../cluster/src/auth/ticket.js';
import { crc32c, crc32cImpl } from '../cluster/src/common/crc32c.js';
import { createRealEnv } from '../cluster/src/env/real.js';
import { RealNet } from '../cluster/src/env/real-net.js';
import { Messenger } from '../cluster/src/msg/messenger.js';
import type { Session } from '../cluster/src/msg/session.js';
import { MsgType } from '../cluster/src/msg/types.js';

const SECRET = new Uint8Array(32).fill(7); // Bench only: a fixed service secret.
const seconds = Number(/--seconds=(\d+(?:\.\d+)?)/.exec(process.argv.join(' '))?.[1] ?? '2');
const env = createRealEnv({ log: pino({ level: 'warn' }), net: new RealNet() });

function server(): void {
  const msgr = new Messenger({ env, entity: 'osd.0', auth: authPolicy({ allowUnauthenticated: true, serviceSecret: () => SECRET }) });
  const ack = new Uint8Array(16);
  msgr.handle(MsgType.MSG_TEST_ECHO, (req, s) => s.reply(req, { type: req.type, payload: ack }));
  msgr.listen('127.0.0.1', 0, (err, port) => {
    if (err) throw err;
    process.send!({ port });
  });
}

function once(s: Session, payload: Uint8Array, data: Uint8Array, cb: () => void): void {
  s.request({ type: MsgType.MSG_TEST_ECHO, payload, data: [data] }, { timeoutMs: 10_000 }, (err) => {
    if (err) throw err;
    cb();
  });
}

function qd1(s: Session, payload: Uint8Array, data: Uint8Array, n: number, cb: (latUs: number[]) => void): void {
  const lat: number[] = [];
  const step = (): void => {
    if (lat.length === n) { cb(lat); return; }
    const t0 = process.hrtime.bigint();
    once(s, payload, data, () => { lat.push(Number(process.hrtime.bigint() - t0) / 1000); step(); });
  };
  step();
}

function qdN(s: Session, payload: Uint8Array, data: Uint8Array, depth: number, ms: number, cb: (ops: number) => void): void {
  let done = 0;
  let inflight = 0;
  const end = Date.now() + ms;
  const start = Date.now();
  const issue = (): void => {
    inflight++;
    once(s, payload, data, () => {
      inflight--;
      done++;
      if (Date.now() < end) issue();
      else if (inflight === 0) cb((done * 1000) / (Date.now() - start));
    });
  };
  for (let i = 0; i < depth; i++) issue();
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function runCase(name: string, s: Session, cb: () => void): void {
  const payload = new Uint8Array(48);
  const data = new Uint8Array(4096).map((_, i) => i);
  qd1(s, payload, data, 500, () => { // Warm-up.
    qd1(s, payload, data, Math.round(3000 * seconds), (lat) => {
      lat.sort((a, b) => a - b);
      const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
      qdN(s, payload, data, 16, seconds * 1000, (ops) => {
        console.log(`${name.padEnd(9)} QD1 rtt mean ${mean.toFixed(1)} µs, p50 ${pct(lat, 0.5).toFixed(1)} µs, p99 ${pct(lat, 0.99).toFixed(1)} µs | QD16 ${Math.round(ops)} ops/s (${((ops * 4096) / 1048576).toFixed(0)} MiB/s)`);
        cb();
      });
    });
  });
}

function crcBench(): void {
  for (const size of [4096, 1 << 20]) {
    const b = new Uint8Array(size).map((_, i) => i * 31);
    const iters = Math.max(20, Math.round((128 << 20) / size));
    for (let i = 0; i < 100; i++) crc32c(b);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) crc32c(b);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`crc32c (${crc32cImpl}) ${size} B: ${((size * iters) / s / 1e6).toFixed(0)} MB/s`);
  }
}

function client(port: number, done: () => void): void {
  const caps = parseCaps({ osd: 'allow rw' }) as Caps;
  const clientKey = new Uint8Array(32).fill(9);
  const grant = issueTicket({ serviceSecret: SECRET, clientKey, entity: 'client.bench', caps, nowWallMs: env.wallMs(), rng: env.rng });
  const creds = acceptTicketGrant(clientKey, 'client.bench', grant) as TicketCredentials;
  const plain = new Messenger({ env, entity: 'client.bench' });
  const signed = new Messenger({ env, entity: 'client.bench', credentials: () => ({ method: 'ticket', ticket: creds.ticket, sessionKey: creds.sessionKey }) });
  runCase('unsigned', plain.connect({ host: '127.0.0.1', port }), () => {
    runCase('signed', signed.connect({ host: '127.0.0.1', port }), () => {
      plain.shutdown();
      signed.shutdown();
      done();
    });
  });
}

if (process.argv.includes('--server')) {
  server();
} else {
  crcBench();
  const child = fork(fileURLToPath(import.meta.url), ['--server']);
  child.on('message', (m: { port: number }) => client(m.port, () => child.kill()));
}
