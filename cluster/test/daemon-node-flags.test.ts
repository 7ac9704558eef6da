/**
 * The daemons' node flags (cluster/src/common/daemon-node-flags.ts) have copies where TypeScript
 * cannot be imported: the shell launchers and the `strata` shebang. This keeps them equal.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS, hasDaemonNodeFlags } from '../src/common/daemon-node-flags.js';

const repoRoot = join(fileURLToPath(import.meta.url), '../../../..');
const flags = DAEMON_NODE_FLAGS.join(' ');

for (const script of ['scripts/start-local-cluster.sh', 'scripts/quickstart.sh']) {
  test(`${script} starts daemons with DAEMON_NODE_FLAGS`, (t) => {
    const text = readFileSync(join(repoRoot, script), 'utf8');
    const m = /^\s*STRATA_DAEMON_NODE_FLAGS="([^"]*)"$/m.exec(text);
    t.truthy(m, 'no STRATA_DAEMON_NODE_FLAGS="…" line');
    t.is(m?.[1], flags);
    t.regex(text, /node \$STRATA_DAEMON_NODE_FLAGS /, 'the flags are not passed to node');
  });
}

test('the strata shebang carries DAEMON_NODE_FLAGS', (t) => {
  const first = readFileSync(join(repoRoot, 'backend/src/main.ts'), 'utf8').split('\n')[0];
  t.is(first, `#!/usr/bin/env -S node ${flags}`);
});

test('hasDaemonNodeFlags reads an argv', (t) => {
  t.true(hasDaemonNodeFlags([...DAEMON_NODE_FLAGS, '--trace-gc']));
  t.false(hasDaemonNodeFlags(['--trace-gc']));
});
