/**
 * The client workload (stage 2/3 of the simulator): `clientCount` client processes, each with
 * its own MonClient and the production `Objecter` (cluster/src/client/objecter.ts), issue
 * whole-object writes (`writefull`, random content from the seed) and whole-object reads over
 * `objectCount` objects of the pool, at most `MAX_INFLIGHT_PER_CLIENT` at once. Every write
 * and read goes into `History` (history.ts); the checkers:
 * - read validity: each read's value (hash of the bytes, or 'absent' on NOT_FOUND) must be
 *   one `History.allowed` returns for the read's interval;
 * - durability: after faults stop and the cluster is live, one final read of every object
 *   must return an allowed value (no acked write lost or rolled back);
 * - version order: later acked writes carry greater versions.
 *
 * Runs with the real OSD (osd-impl.ts 'real', the default); the stand-in serves no data.
 */
import { crc32c } from '../src/common/crc32c.js';
import type { ClusterError } from '../src/common/errors.js';
import type { PoolId } from '../src/common/ids.js';
import { poolByName } from '../src/map/cluster-map.js';
import { MonClient } from '../src/mon/mon-client.js';
import { Objecter } from '../src/client/objecter.js';
import type { ObjecterResult } from '../src/client/objecter.js';
import type { SimCluster } from './cluster.js';
import { MON_HOST, MON_PORT, POOL_NAME } from './cluster.js';
import type { Verdict } from './checkers.js';
import { ABSENT, History } from './history.js';
import type { ValueHash } from './history.js';
import type { Workload } from './osd-impl.js';
import type { SimOptions } from './options.js';
import type { SimProcess } from './process.js';
import type { SimRng } from './rng.js';

const MAX_INFLIGHT_PER_CLIENT = 4;

function valueHash(bytes: Uint8Array): ValueHash {
  return `${bytes.length}:${crc32c(bytes).toString(16)}`;
}

interface Client { name: string; proc: SimProcess; mon: MonClient; objecter: Objecter; rng: SimRng; inflight: number }

/** The Objecter-driven workload with its model and checkers. */
export class ObjecterWorkload implements Workload {
  readonly history = new History();
  private readonly clients: Client[] = [];
  private issuing = false;
  private reads = 0;
  private readsChecked = 0;
  private finalPending = 0;

  constructor(private readonly c: SimCluster, private readonly o: SimOptions, private readonly verdict: Verdict) {}

  start(): void {
    for (let i = 0; i < this.o.clientCount; i++) {
      const { proc, env, entity, key } = this.c.newClientProc(i);
      const mon = new MonClient({ env, entity, key, mon: { host: MON_HOST, port: MON_PORT } });
      mon.subscribe();
      mon.ticket(() => undefined);
      const objecter = new Objecter({ env, msgr: mon.msgr, mon, entity });
      const client: Client = { name: entity, proc, mon, objecter, rng: this.c.world.stream(`workload:${i}`), inflight: 0 };
      this.clients.push(client);
      this.scheduleNext(client);
    }
    this.issuing = true;
  }

  stopIssuing(): void { this.issuing = false; }

  quiet(): boolean {
    return this.clients.every((c) => c.inflight === 0) && this.finalPending === 0;
  }

  describePending(): unknown {
    return this.clients.map((c) => ({ client: c.name, inflight: c.inflight, stats: c.objecter.stats() }));
  }

  stats(): Record<string, unknown> {
    return { writesAcked: this.history.acked, writesFailed: this.history.failed, reads: this.reads, readsChecked: this.readsChecked };
  }

  private now(): number { return this.c.world.sched.now; }

  private poolId(client: Client): PoolId | undefined {
    const map = client.mon.map();
    return map === undefined ? undefined : poolByName(map, POOL_NAME)?.id;
  }

  private scheduleNext(client: Client): void {
    const delay = client.rng.exponential(this.o.opIntervalMeanMs);
    client.proc.defer(delay, `${client.name} workload`, () => {
      if (!this.issuing) return;
      if (client.inflight < MAX_INFLIGHT_PER_CLIENT) this.issue(client);
      this.scheduleNext(client);
    });
  }

  private issue(client: Client): void {
    const pool = this.poolId(client);
    if (pool === undefined) return;
    const object = `obj.${client.rng.int(this.o.objectCount)}`;
    if (client.rng.chance(this.o.writeFraction)) this.write(client, pool, object);
    else this.read(client, pool, object, false);
  }

  private write(client: Client, pool: PoolId, object: string): void {
    const len = 1 + client.rng.int(this.o.maxObjectBytes);
    const data = client.rng.bytes(len);
    const rec = this.history.begin(object, client.name, this.now(), valueHash(data));
    client.inflight++;
    client.objecter.submit({ pool, objectName: object, ops: [{ op: 'writefull', length: len }], data: [data] }, (err, res) => {
      client.inflight--;
      if (err !== null || res === undefined) { this.history.fail(rec, this.now()); return; }
      this.history.ack(rec, this.now(), { epoch: res.reply.version.epoch, seq: Number(res.reply.version.seq) });
    });
  }

  private read(client: Client, pool: PoolId, object: string, final: boolean): void {
    const start = this.now();
    client.inflight++;
    if (final) this.finalPending++;
    this.reads++;
    client.objecter.submit({ pool, objectName: object, ops: [{ op: 'read', offset: 0, length: this.o.maxObjectBytes }] }, (err, res) => {
      client.inflight--;
      if (final) this.finalPending--;
      const got = readValue(err, res);
      if (got === null) {
        if (final) this.verdict.fail('durability', `final read of ${object} failed: ${err?.code ?? 'no result'}`);
        return;
      }
      this.readsChecked++;
      const allowed = this.history.allowed(object, start, this.now());
      if (!allowed.has(got)) {
        this.verdict.fail(final ? 'durability' : 'read-validity', `${client.name} read ${object} = ${got}, allowed: ${[...allowed].join(' | ')}`, { startMs: start, writes: this.history.describe(object) });
      }
    });
  }

  /** Final durability pass: read every object once (run the scheduler until `quiet`). */
  readBackAll(): void {
    const client = this.clients[0];
    if (client === undefined) return;
    const pool = this.poolId(client);
    if (pool === undefined) { this.verdict.fail('durability', 'client has no map for the final read-back'); return; }
    for (const object of this.history.objects()) this.read(client, pool, object, true);
    const v = this.history.versionOrderViolation();
    if (v !== null) this.verdict.fail('version-order', v);
  }
}

function readValue(err: ClusterError | null, res: ObjecterResult | undefined): ValueHash | null {
  if (err !== null) return err.code === 'CLU_ERR_NOT_FOUND' ? ABSENT : null;
  if (res === undefined) return null;
  let n = 0;
  for (const d of res.data) n += d.length;
  const bytes = new Uint8Array(n);
  let off = 0;
  for (const d of res.data) { bytes.set(d, off); off += d.length; }
  return valueHash(bytes);
}
