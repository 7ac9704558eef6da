/**
 * `node dist/cluster/sim/main.js --seed=0x… [--events=N] [--verbose] [--osd=stub|real]`
 *
 * Runs one deterministic simulation. Every option comes from the seed (options.ts); without
 * --seed a random one is drawn (and printed). Exit 0 when every checker passes; 1 on a
 * violation, with `reproduce: node dist/cluster/sim/main.js --seed=0x…` and the last log
 * lines (simulated time stamps); 2 on usage errors.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { optionsFromSeed } from './options.js';
import { parseSeed, seedFromBigInt } from './rng.js';
import { reportResult, runSimulation } from './run.js';

function main(): number {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' }, events: { type: 'string' }, verbose: { type: 'boolean' }, osd: { type: 'string' },
      'log-lines': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write('Usage: node dist/cluster/sim/main.js [--seed=0xHEX] [--events=N] [--verbose] [--osd=stub|real] [--log-lines=N]\n');
    return 0;
  }
  let seed;
  try {
    seed = values.seed === undefined ? seedFromBigInt(randomBytes(8).readBigUInt64LE(0)) : parseSeed(values.seed);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  const events = values.events === undefined ? 0 : Number(values.events);
  const o = optionsFromSeed(seed, events > 0 ? { maxEvents: events } : {});
  const r = runSimulation(o, {
    verbose: values.verbose === true, wallClock: () => performance.now(),
    ...(values.osd === undefined ? {} : { osdImpl: values.osd }),
    ...(values['log-lines'] === undefined ? {} : { logLines: Number(values['log-lines']) }),
  });
  reportResult(r, (s) => process.stdout.write(s + '\n'));
  return r.ok ? 0 : 1;
}

process.exitCode = main();
