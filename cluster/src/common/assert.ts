/**
 * Assertions for invariants (GUIDE §6, TigerStyle): they stay on in production, and a failure
 * crashes the process because the state can no longer be trusted. Expected failures use
 * `ClusterError` instead. Split compound conditions so the failing one is obvious.
 */
import nodeAssert from 'node:assert/strict';

/** Re-export of `node:assert/strict` for callers that want `assert.equal` etc. */
export const assertStrict = nodeAssert;

/** Throws an AssertionError unless `cond` is truthy. */
export function assert(cond: unknown, message?: string): asserts cond {
  if (!cond) nodeAssert.fail(message ?? 'assertion failed');
}

/** Marks code that must be unreachable (exhaustive switches). */
export function unreachable(value: never, message = 'unreachable'): never {
  return nodeAssert.fail(`${message}: ${String(value)}`);
}

/** Asserts `v` is an integer in [min, max]. */
export function assertIntInRange(v: number, min: number, max: number, what: string): void {
  assert(Number.isInteger(v), `${what} not an integer: ${v}`);
  assert(v >= min, `${what} below ${min}: ${v}`);
  assert(v <= max, `${what} above ${max}: ${v}`);
}
