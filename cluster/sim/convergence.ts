/**
 * Convergence checker (real OSD only): after faults stopped and every PG is active+clean,
 * read every acting OSD's `ObjectStore` DIRECTLY (no protocol: `listObjects`, `stat`, `read`)
 * and compare, per PG of the monitor's current map, the set of objects, each object's version,
 * size and content (crc32c of the whole object) across the PG's acting set. Any difference is
 * a replica that did not converge (recovery/backfill missed it, or a write applied on some
 * replicas only). Also fails when an acting OSD is not running or its store is not open.
 */
import { crc32c } from '../src/common/crc32c.js';
import type { ObjectName, OsdId } from '../src/common/ids.js';
import { pgSeed } from '../src/common/ids.js';
import type { ClusterMap } from '../src/map/cluster-map.js';
import { objectToPg, pgToOsds } from '../src/placement/placement.js';
import type { ObjectStore } from '../src/store/object-store.js';
import type { Verdict } from './checkers.js';

/** One replica's view of one object. */
interface Copy { version: string; size: number; crc: string }

/** Starts the comparison; `done()` tells when every read completed. */
export class ConvergenceCheck {
  private pending = 0;
  private readonly copies = new Map<string, Map<OsdId, Map<string, Copy>>>(); // pg → osd → object → copy
  objectsCompared = 0;

  constructor(private readonly verdict: Verdict) {}

  start(map: ClusterMap, storeOf: (osd: OsdId) => ObjectStore | null): void {
    for (const pool of map.pools.values()) {
      for (let s = 0; s < pool.pgNum; s++) {
        const pg = { pool: pool.id, seed: pgSeed(s) };
        const key = `${pool.id}.${s.toString(16)}`;
        const acting = pgToOsds(map, pg).acting.filter((o) => o >= 0);
        if (acting.length < pool.size) this.verdict.fail('convergence', `pg ${key}: acting set ${JSON.stringify(acting)} smaller than size ${pool.size}`);
        const perOsd = new Map<OsdId, Map<string, Copy>>();
        this.copies.set(key, perOsd);
        for (const osd of acting) {
          const store = storeOf(osd);
          if (store === null) { this.verdict.fail('convergence', `pg ${key}: acting osd.${osd} has no open store`); continue; }
          const objs = new Map<string, Copy>();
          perOsd.set(osd, objs);
          for (const id of store.listObjects(pool.id, (o) => objectToPg(pool, o.name).seed === s)) {
            const st = store.stat(id);
            if (st === undefined) continue;
            const copy: Copy = { version: st.version === undefined ? 'none' : `${st.version.epoch}.${st.version.seq}`, size: st.sizeBytes, crc: 'pending' };
            objs.set(id.name, copy);
            this.pending++;
            store.read({ pool: pool.id, name: id.name as ObjectName }, 0, st.sizeBytes, (err, data) => {
              this.pending--;
              copy.crc = err !== null ? `error:${err.code}` : crc32c(data).toString(16);
            });
          }
        }
      }
    }
  }

  done(): boolean { return this.pending === 0; }

  /** Compares the copies (call once `done()`). */
  finish(): void {
    if (this.pending > 0) { this.verdict.fail('convergence', `${this.pending} replica reads did not complete`); return; }
    for (const [pg, perOsd] of this.copies) {
      const names = new Set<string>();
      for (const objs of perOsd.values()) for (const n of objs.keys()) names.add(n);
      for (const name of [...names].sort()) {
        this.objectsCompared++;
        const seen = [...perOsd].map(([osd, objs]) => {
          const c = objs.get(name);
          return { osd, v: c === undefined ? 'missing' : `v${c.version} ${c.size}B crc ${c.crc}` };
        });
        if (new Set(seen.map((x) => x.v)).size > 1 || seen.some((x) => x.v.includes('error'))) {
          this.verdict.fail('convergence', `pg ${pg} object ${name} differs across the acting set`, { copies: seen });
        }
      }
    }
  }
}
