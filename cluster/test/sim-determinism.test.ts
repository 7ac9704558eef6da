/**
 * The simulator is deterministic: the same seed run twice gives the same event-trace hash,
 * event count and simulated end time; different seeds give different traces. Also checks
 * the scheduler's guard: a Promise (microtask) created inside an event is reported as a leak.
 */
import test from 'ava';
import { optionsFromSeed } from '../sim/options.js';
import { parseSeed } from '../sim/rng.js';
import { runSimulation } from '../sim/run.js';
import { Scheduler } from '../sim/scheduler.js';

// Trimmed to the first EVENTS events (bootstrap, warmup and the start of the fault phase with
// the real OSD and the workload) so the test stays within the CI budget; a full run of the
// same seeds happens in sim-seeds.test.ts.
const EVENTS = 8000;

test('the same seed produces the same trace hash twice', (t) => {
  for (const s of ['0x1', '0x6']) {
    const a = runSimulation(optionsFromSeed(parseSeed(s), { maxEvents: EVENTS }));
    const b = runSimulation(optionsFromSeed(parseSeed(s), { maxEvents: EVENTS }));
    t.is(a.trace, b.trace, `seed ${s}`);
    t.is(a.events, b.events);
    t.is(a.simMs, b.simMs);
    t.deepEqual(a.stats, b.stats);
  }
});

test('a run with a PG split (pool set pg_num during the fault phase) produces the same trace twice', (t) => {
  // Seed 0x6 with its split moved to the start of the fault phase (t = 4 s) so the prefix covers
  // it and 3 s of the OSDs splitting and peering the children.
  const o = { maxEvents: EVENTS, splitAtMs: 1, splitPgNum: 2 * optionsFromSeed(parseSeed('0x6')).pgNum };
  const a = runSimulation(optionsFromSeed(parseSeed('0x6'), o));
  const b = runSimulation(optionsFromSeed(parseSeed('0x6'), o));
  t.true(((a.stats['split'] as { doneMs: number } | undefined)?.doneMs ?? -1) > 0, `split acknowledged within the prefix: ${JSON.stringify(a.stats['split'])}`);
  t.is(a.trace, b.trace);
  t.is(a.events, b.events);
  t.deepEqual(a.stats, b.stats);
});

test('different seeds produce different traces', (t) => {
  const a = runSimulation(optionsFromSeed(parseSeed('0x2'), { maxEvents: EVENTS }));
  const b = runSimulation(optionsFromSeed(parseSeed('0x3'), { maxEvents: EVENTS }));
  t.not(a.trace, b.trace);
});

test('a Promise created inside an event is reported as a nondeterminism leak', (t) => {
  const sched = new Scheduler({ guard: true });
  sched.after(5, null, 'clean event', () => undefined);
  sched.after(10, null, 'leaky event', () => { void Promise.resolve(1).then(() => undefined); });
  sched.run();
  sched.dispose();
  t.true(sched.leaks.some((l) => l.label === 'leaky event' && l.type === 'PROMISE'));
  t.false(sched.leaks.some((l) => l.label === 'clean event'));
});

test('the scheduler fires in (time, insertion) order and skips cancelled events', (t) => {
  const sched = new Scheduler();
  const order: string[] = [];
  sched.after(10, null, 'b', () => order.push('b'));
  sched.after(5, null, 'a', () => order.push('a'));
  sched.after(10, null, 'c', () => order.push('c'));
  const d = sched.after(7, null, 'd', () => order.push('d'));
  sched.cancel(d);
  sched.run();
  t.deepEqual(order, ['a', 'b', 'c']);
  t.is(sched.now, 10);
});
