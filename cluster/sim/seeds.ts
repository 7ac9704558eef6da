/**
 * `node dist/cluster/sim/seeds.js [--random=K] [--budget-ms=N]`: the CI seed runner. Runs every
 * seed of regression-seeds.txt, every known-failing seed (reported, never failing the run),
 * then up to K random seeds while the wall-clock budget lasts. Prints one line per seed and,
 * for each failure, the reproduce line. Exit 1 if a regression or random seed failed.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { optionsFromSeed } from './options.js';
import { parseSeed, seedFromBigInt } from './rng.js';
import { reportResult, runSimulation } from './run.js';
import { knownFailure, readSeedList } from './seed-list.js';

function main(): number {
  const { values } = parseArgs({ options: { random: { type: 'string' }, 'budget-ms': { type: 'string' }, quiet: { type: 'boolean' } } });
  const randomCount = Number(values.random ?? '4');
  const budgetMs = Number(values['budget-ms'] ?? '45000');
  const start = performance.now();
  const out = (s: string): void => { process.stdout.write(s + '\n'); };
  let failed = 0;
  const runOne = (text: string, kind: string): boolean => {
    const r = runSimulation(optionsFromSeed(parseSeed(text)), { wallClock: () => performance.now(), logLines: 60 });
    if (r.ok) out(`${kind} ${r.seed} PASS ${(r.wallMs / 1000).toFixed(2)}s events=${r.events} trace=${r.trace}`);
    else reportResult(r, (s) => out(`${kind} ${s}`));
    return r.ok;
  };
  for (const s of readSeedList('regression-seeds.txt')) if (!runOne(s, 'regression')) failed++;
  for (const s of readSeedList('known-failing-seeds.txt')) {
    const r = runSimulation(optionsFromSeed(parseSeed(s)), { wallClock: () => performance.now() });
    out(`known-failing ${r.seed} ${r.ok ? 'PASSES NOW (move it to regression-seeds.txt)' : `still fails: ${r.violations[0]?.message ?? ''}`}`);
  }
  for (let i = 0; i < randomCount && performance.now() - start < budgetMs; i++) {
    const seed = seedFromBigInt(randomBytes(8).readBigUInt64LE(0));
    const r = runSimulation(optionsFromSeed(seed), { wallClock: () => performance.now(), logLines: 60 });
    const known = r.ok ? null : knownFailure(r.violations);
    if (r.ok) out(`random ${r.seed} PASS ${(r.wallMs / 1000).toFixed(2)}s events=${r.events} trace=${r.trace}`);
    else if (known !== null) out(`random ${r.seed} known failure: ${known} (reproduce: node dist/cluster/sim/main.js --seed=${r.seed})`);
    else { reportResult(r, (s) => out(`random ${s}`)); failed++; out(`new failing seed: ${seed.text} (add it to cluster/sim/regression-seeds.txt once understood)`); }
  }
  out(`sim seeds: ${failed} failed, ${((performance.now() - start) / 1000).toFixed(1)}s`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
