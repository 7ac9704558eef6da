/**
 * `strata osd` arguments: the messenger keepalive follows the heartbeat grace (a session must
 * not be reset before failure detection has had its chance), and bad combinations are refused.
 */
import test from 'ava';
import { parseOsdArgs } from '../src/bin/osd.js';
import { UsageError } from '../src/bin/bin-util.js';

const base = ['--id', '1', '--data', '/d', '--addr', '127.0.0.1:7001', '--mon', '127.0.0.1:6789', '--keyring', '/k', '--host', 'h1'];

function parsed(extra: string[]): Exclude<ReturnType<typeof parseOsdArgs>, 'help'> {
  const a = parseOsdArgs([...base, ...extra]);
  if (a === 'help') throw new Error('help');
  return a;
}

test('keepalive defaults: 1 s ping, 10 s reset, or 3x the heartbeat grace when that is longer', (t) => {
  t.like(parsed([]), { keepaliveIntervalMs: 1000, keepaliveTimeoutMs: 10_000, hbGraceMs: 3000 });
  t.like(parsed(['--heartbeat-grace-ms', '8000']), { keepaliveTimeoutMs: 24_000 });
  t.like(parsed(['--ms-keepalive-interval-ms', '500', '--ms-keepalive-timeout-ms', '4000']), { keepaliveIntervalMs: 500, keepaliveTimeoutMs: 4000 });
  t.like(parsed(['--ms-keepalive-interval-ms', '0']), { keepaliveIntervalMs: 0 }, '0 turns keepalive off');
});

test('a keepalive timeout not above the interval or the heartbeat grace is refused', (t) => {
  for (const extra of [
    ['--ms-keepalive-timeout-ms', '2000'], // below the 3 s grace
    ['--ms-keepalive-interval-ms', '5000', '--ms-keepalive-timeout-ms', '5000'],
    ['--heartbeat-grace-ms', '20000', '--ms-keepalive-timeout-ms', '15000'],
    ['--ms-keepalive-timeout-ms', 'soon'],
  ]) {
    t.throws(() => parsed(extra), { instanceOf: UsageError }, extra.join(' '));
  }
});
