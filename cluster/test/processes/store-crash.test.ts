/**
 * Real crash test of ObjectStore: a child process (store-writer.js: real Env, real files under
 * os.tmpdir(), real fdatasync) runs a write storm at queue depth 8 and reports each submitted
 * and committed transaction on stdout; the test kills it with SIGKILL at a random moment,
 * reopens the store in-process and checks every 512-byte sector: it must be intact (one
 * writer's exact pattern), every committed write must be visible unless a later write to the
 * same sector replaced it, and only writes submitted after the last committed one may appear
 * instead. Five kills on the same store, bounded to well under 30 s; once with the journal
 * written through the thread pool, once inline and once `auto` (`journalIo`).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { ObjectName, PoolId } from '../../src/common/ids.js';
import type { Net } from '../../src/env/net.js';
import { createRealEnv } from '../../src/env/real.js';
import { ObjectStore } from '../../src/store/object-store.js';
import type { JournalIo } from '../../src/store/types.js';
import { OBJECTS, OBJECT_SECTORS, sectorPattern } from './store-writer.js';

const WRITER = join(fileURLToPath(import.meta.url), '../store-writer.js');

interface Submit { id: number; obj: number; sector: number; count: number }

function runWriter(dir: string, firstId: number, seed: number, killAfterMs: number, journalIo: JournalIo, dataIo: 'direct' | 'buffered'): Promise<{ submits: Submit[]; committed: Set<number>; info: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dir, String(firstId), String(seed), journalIo, dataIo], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (timer === undefined && out.includes('\nC ')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (d: Buffer) => { errText += d.toString(); });
    const guard = setTimeout(() => child.kill('SIGKILL'), 8000);
    // Why 'close', not 'exit': 'exit' can fire before the last stdout bytes were read, and a
    // lost "S id" line would make a submitted write look like one that was never sent.
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') return reject(new Error(`writer exited ${code} ${signal}: ${errText}`));
      const submits: Submit[] = [];
      const committed = new Set<number>();
      let info = '';
      for (const line of out.split('\n')) {
        if (line.startsWith('I ')) info = line.slice(2);
        const f = line.split(' ');
        if (f[0] === 'S' && f.length === 5) submits.push({ id: Number(f[1]), obj: Number(f[2]), sector: Number(f[3]), count: Number(f[4]) });
        if (f[0] === 'C' && f.length === 2 && f[1] !== '') committed.add(Number(f[1]));
      }
      resolve({ submits, committed, info });
    });
  });
}

function openReal(dir: string): Promise<ObjectStore> {
  const env = createRealEnv({ log: pino({ level: 'warn' }), net: {} as Net });
  return new Promise((resolve, reject) => ObjectStore.open(env, { dir }, (e, s) => (e || !s ? reject(e) : resolve(s))));
}

function readAll(s: ObjectStore, obj: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    s.read({ pool: 1 as PoolId, name: `obj${obj}` as ObjectName }, 0, OBJECT_SECTORS * 512, (e, d) => {
      if (e?.code === 'CLU_ERR_NOT_FOUND') return resolve(new Uint8Array(0));
      return e ? reject(e) : resolve(d);
    });
  });
}

/** Per sector: which ids may show (last committed writer, or any later-submitted one). */
function allowedIds(submits: readonly Submit[], committed: ReadonlySet<number>): Map<string, { lastCommitted: number; later: Set<number> }> {
  const m = new Map<string, { lastCommitted: number; later: Set<number> }>();
  for (const s of submits) {
    for (let k = s.sector; k < s.sector + s.count; k++) {
      const key = `${s.obj}:${k}`;
      const e = m.get(key) ?? { lastCommitted: 0, later: new Set<number>() };
      if (committed.has(s.id)) { e.lastCommitted = s.id; e.later.clear(); } else e.later.add(s.id);
      m.set(key, e);
    }
  }
  return m;
}

const DATA_IO = process.env['STRATA_TEST_DATA_IO'] === 'buffered' ? 'buffered' : 'direct';
for (const journalIo of ['pool', 'inline', 'auto'] as const) {
test(`kill -9 during a write storm loses no committed write and tears no sector (journal I/O ${journalIo}, data I/O ${DATA_IO})`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-store-crash-'));
  const submits: Submit[] = [];
  const committed = new Set<number>();
  try {
    for (let round = 0; round < 5; round++) {
      const r = await runWriter(dir, round * 10_000_000 + 1, 1000 + round, 200 + Math.floor(Math.random() * 800), journalIo, DATA_IO);
      submits.push(...r.submits);
      for (const id of r.committed) committed.add(id);
      if (round === 0) t.log(`store I/O: ${r.info}`);
      const store = await openReal(dir);
      const allowed = allowedIds(submits, committed);
      let checked = 0;
      for (let obj = 0; obj < OBJECTS; obj++) {
        const data = await readAll(store, obj);
        for (let k = 0; k < OBJECT_SECTORS; k++) {
          const a = allowed.get(`${obj}:${k}`);
          if (a === undefined) continue;
          const sector = data.subarray(k * 512, (k + 1) * 512);
          const id = sector.length === 512 ? new DataView(sector.buffer, sector.byteOffset).getUint32(0, true) : 0;
          const ok = (id === a.lastCommitted || a.later.has(id)) && (id === 0 ? sector.every((b) => b === 0) : Buffer.compare(sector, sectorPattern(id, obj, k)) === 0);
          if (!ok) {
            const dv = new DataView(sector.buffer, sector.byteOffset);
            const stamp = sector.length === 512 ? `obj${dv.getUint32(4, true)} sector ${dv.getUint32(8, true)}` : 'short';
            t.fail(`round ${round} obj${obj} sector ${k}: shows id ${id} (stamped ${stamp}, submitted later: ${a.later.has(id)}), last committed ${a.lastCommitted}; round's last S line: id ${r.submits.at(-1)?.id}`);
          }
          checked++;
        }
      }
      t.log(`round ${round}: ${r.submits.length} submitted, ${r.committed.size} committed, ${checked} sectors verified`);
      t.true(r.committed.size > 0);
      await new Promise<void>((resolve, reject) => store.close((e) => (e ? reject(e) : resolve())));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
}
