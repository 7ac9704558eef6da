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
 * Documented bugs outside cluster/sim that a failure may match (docs/simulation.md, "Known
 * failing seeds"): a random seed whose every violation matches one is reported, not counted
 * as a failure. (Fixed and removed: the monitor's PG-state report race of seeds 0xd, 0x17, 0x20;
 * the PG whose whole acting set was backfilling staying down, seed 0x41648c7ed04b5099.)
 */
const KNOWN_BUGS: { name: string; matches: (v: { checker: string; details?: Record<string, unknown> }) => boolean }[] = [
];

/** The known bug every violation matches, or null. */
export function knownFailure(violations: readonly { checker: string; details?: Record<string, unknown> }[]): string | null {
  if (violations.length === 0) return null;
  for (const bug of KNOWN_BUGS) if (violations.every((v) => bug.matches(v))) return bug.name;
  return null;
}
