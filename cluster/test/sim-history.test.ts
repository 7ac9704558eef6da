/**
 * The acknowledged-write model behind the durability and read-validity checkers: which values
 * a read may return given acked, failed and in-flight writes, and the version-order check.
 */
import test from 'ava';
import { ABSENT, History } from '../sim/history.js';

test('a read after an acked write must see it, or a later/overlapping one', (t) => {
  const h = new History();
  const w1 = h.begin('o', 'c0', 0, 'v1');
  h.ack(w1, 10, { epoch: 1, seq: 1 });
  t.deepEqual([...h.allowed('o', 20, 30)], ['v1']);
  const w2 = h.begin('o', 'c0', 40, 'v2');
  t.deepEqual([...h.allowed('o', 45, 46)].sort(), ['v1', 'v2']); // In flight: either.
  h.ack(w2, 50, { epoch: 1, seq: 2 });
  t.deepEqual([...h.allowed('o', 60, 61)], ['v2']); // v1 is superseded: never again.
  t.is(h.versionOrderViolation(), null);
});

test('concurrent acked writes may land in either order; failed writes stay possible', (t) => {
  const h = new History();
  t.deepEqual([...h.allowed('o', 0, 1)], [ABSENT]);
  const a = h.begin('o', 'c0', 0, 'a');
  const b = h.begin('o', 'c1', 1, 'b');
  h.ack(a, 10, { epoch: 1, seq: 2 });
  h.ack(b, 11, { epoch: 1, seq: 1 });
  t.deepEqual([...h.allowed('o', 20, 21)].sort(), ['a', 'b']);
  const f = h.begin('o', 'c0', 30, 'f');
  h.fail(f, 40);
  t.true(h.allowed('o', 100, 101).has('f'));
  t.false(h.allowed('o', 100, 101).has(ABSENT));
});

test('version order: a later write with a smaller version is reported', (t) => {
  const h = new History();
  const a = h.begin('o', 'c0', 0, 'a');
  h.ack(a, 10, { epoch: 2, seq: 5 });
  const b = h.begin('o', 'c0', 20, 'b');
  h.ack(b, 30, { epoch: 2, seq: 3 });
  t.regex(h.versionOrderViolation() ?? '', /later write/);
});
