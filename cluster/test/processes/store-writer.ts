/**
 * Child process for store-crash.test.ts: opens an ObjectStore on real files (real Env, real
 * fdatasync) and runs a write storm until killed. Protocol on stdout, one line each:
 *   S <id> <obj> <sectorOffset> <sectorCount>   submitted
 *   C <id>                                      committed (durable)
 * Every 512-byte sector written by transaction <id> holds `sectorPattern(id, obj, sector)`,
 * so the parent can tell, after a kill -9, which write each sector shows and that no sector is
 * torn. Usage: node store-writer.js <dir> <firstId> <seed> [pool|inline] [direct|buffered]
 */
import { writeSync } from 'node:fs';
import pino from 'pino';
import type { ObjectName, PoolId } from '../../src/common/ids.js';
import type { Net } from '../../src/env/net.js';
import { createRealEnv } from '../../src/env/real.js';
import { ObjectStore } from '../../src/store/object-store.js';
import { Transaction } from '../../src/store/types.js';

/** Sectors per object (256 KiB objects). */
export const OBJECT_SECTORS = 512;
/** Objects the storm writes to. */
export const OBJECTS = 12;

/** The content transaction `id` writes into `sector` of object `obj`. */
export function sectorPattern(id: number, obj: number, sector: number): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  v.setUint32(0, id, true);
  v.setUint32(4, obj, true);
  v.setUint32(8, sector, true);
  for (let i = 12; i < 512; i++) b[i] = (id * 31 + sector * 7 + i) & 0xff;
  return b;
}

function main(): void {
  const [dir, firstIdArg, seedArg, journalIoArg, dataIoArg] = process.argv.slice(2);
  if (dir === undefined) throw new Error('usage: store-writer.js <dir> <firstId> <seed> [pool|inline]');
  const journalIo = journalIoArg === 'inline' || journalIoArg === 'auto' ? journalIoArg : 'pool';
  const dataIo = dataIoArg === 'buffered' ? 'buffered' : 'direct';
  let id = Number(firstIdArg ?? 1);
  let rng = Number(seedArg ?? 1) >>> 0 || 1;
  const rand = (n: number): number => { rng ^= rng << 13; rng >>>= 0; rng ^= rng >>> 17; rng ^= rng << 5; rng >>>= 0; return rng % n; };
  const net = {} as Net;
  const env = createRealEnv({ log: pino({ level: 'warn' }, pino.destination(2)), net });
  ObjectStore.open(env, { dir, journalBytes: 8 * 1024 * 1024, directWriteBytes: 64 * 1024, journalIo, dataIo }, (err, store) => {
    if (err || store === undefined) { process.stderr.write(`open failed: ${String(err)}\n`); process.exit(2); }
    writeSync(1, `I journalDirect=${store.stats().journalDirectIo} dataDirect=${store.stats().directIo}\n`);
    let inflight = 0;
    const submitOne = (): void => {
      const obj = rand(OBJECTS);
      const kind = rand(10);
      // Mostly 4 KiB aligned, some sector-sized (read-modify-write), some 64-128 KiB (direct).
      const count = kind < 6 ? 8 : kind < 8 ? 1 + rand(8) : 128 + 8 * rand(17);
      const sector = kind < 6 ? 8 * rand(OBJECT_SECTORS / 8) : kind < 8 ? rand(OBJECT_SECTORS - 8) : 8 * rand((OBJECT_SECTORS - count) / 8 + 1);
      const myId = id++;
      const data = new Uint8Array(count * 512);
      for (let i = 0; i < count; i++) data.set(sectorPattern(myId, obj, sector + i), i * 512);
      const name = `obj${obj}` as ObjectName;
      const txn = new Transaction().write({ pool: 1 as PoolId, name }, sector * 512, data).setVersion({ pool: 1 as PoolId, name }, { epoch: 1, seq: myId });
      // Half the big writes are handed off (the OSD's case): their unaligned buffer then takes
      // the store's copy-for-O_DIRECT path; the others are copied by the store (aligned).
      if (kind >= 8 && rand(2) === 0) txn.handOff = true;
      // Why writeSync: process.stdout on a pipe queues in user space once the pipe is full, and
      // a SIGKILL then loses lines; an "S" line lost while its write reached the disk made the
      // parent see an id it never heard of (seen with O_DIRECT data writes, ids past the last S).
      writeSync(1, `S ${myId} ${obj} ${sector} ${count}\n`);
      inflight++;
      store.submit(txn, (e) => {
        if (e) { process.stderr.write(`commit failed: ${e.message}\n`); process.exit(3); }
        writeSync(1, `C ${myId}\n`);
        inflight--;
        pump();
      });
    };
    const pump = (): void => { while (inflight < 8) submitOne(); };
    pump();
  });
}

if (process.argv[1]?.endsWith('store-writer.js') === true) main();
