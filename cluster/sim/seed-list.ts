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
