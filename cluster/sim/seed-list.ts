/**
 * Reading the seed lists (regression-seeds.txt, known-failing-seeds.txt) and drawing the
 * random seeds of a CI run. Kept apart from run.ts so the lists are one parser's business.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Directory holding the seed lists (the source tree, next to this file's .ts). */
export function seedListDir(): string {
  // dist/cluster/sim/seed-list.js → cluster/sim/
  return join(fileURLToPath(import.meta.url), '../../../../cluster/sim');
}

/** The seeds of a list file: first token of each non-comment line. */
export function readSeedList(name: string): string[] {
  const text = readFileSync(join(seedListDir(), name), 'utf8');
  return text.split('\n').map((l) => l.replace(/#.*/, '').trim().split(/\s+/)[0] ?? '').filter((s) => s !== '');
}

/**
 * A failure whose every violation matches a documented bug outside cluster/sim (docs/
 * simulation.md, "Known failing seeds"): returns its name, else null. Random seeds failing
 * only this way are reported, not counted as failures. Today: the monitor's PG-state report
 * race, seen as liveness pending only on "pgs unreported".
 */
export function knownFailure(violations: readonly { checker: string; details?: Record<string, unknown> }[]): string | null {
  if (violations.length === 0) return null;
  const all = violations.every((v) => {
    const pending = v.details?.['pending'];
    return v.checker === 'liveness' && Array.isArray(pending) && pending.length > 0 &&
      pending.every((p) => typeof p === 'string' && /^\d+ pgs unreported/.test(p));
  });
  return all ? 'monitor PG-state report race (cluster/src/mon reportPgStates)' : null;
}
