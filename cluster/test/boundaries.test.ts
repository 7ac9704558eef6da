/**
 * Checks the Env boundary (GUIDE §4): no file in cluster/src except env/real*.ts touches the
 * wall clock, global timers, Math.random, crypto.randomBytes or node:fs. How: read every .ts
 * file under cluster/src, strip comments and string-free lines of comments, grep tokens.
 */
import test from 'ava';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(fileURLToPath(import.meta.url), '../../../..');
const srcRoot = join(repoRoot, 'cluster/src');

const FORBIDDEN: readonly [string, RegExp][] = [
  ['Date.now', /\bDate\.now\s*\(/],
  ['new Date()', /\bnew\s+Date\s*\(\s*\)/],
  ['performance.now', /\bperformance\.now\b/],
  ['setTimeout', /(?<![.\w])setTimeout\s*\(/],
  ['setInterval', /(?<![.\w])setInterval\s*\(/],
  ['setImmediate', /(?<![.\w])setImmediate\s*\(/],
  ['Math.random', /\bMath\.random\b/],
  ['randomBytes', /\brandomBytes\b/],
  ['node:fs', /['"](node:)?fs(\/promises)?['"]/],
  ['process.hrtime', /\bprocess\.hrtime\b/],
];

/** An interface method declaration such as `setTimeout(cb: () => void, delayMs: number): TimerHandle;`. */
const INTERFACE_MEMBER = /^\s*(setTimeout|setImmediate)\(.*\):\s*\w+;\s*$/;

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTs(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Removes block and line comments (good enough for our sources: no comment markers in strings we check). */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

const allowed = (rel: string): boolean => /^env\/real[^/]*\.ts$/.test(rel);

test('only env/real*.ts touches clocks, global timers, randomness and node:fs', (t) => {
  const violations: string[] = [];
  for (const file of listTs(srcRoot)) {
    const rel = relative(srcRoot, file).split('\\').join('/');
    if (allowed(rel)) continue;
    const lines = stripComments(readFileSync(file, 'utf8')).split('\n');
    lines.forEach((line, i) => {
      if (INTERFACE_MEMBER.test(line)) return;
      for (const [name, re] of FORBIDDEN) if (re.test(line)) violations.push(`${rel}:${i + 1}: ${name}`);
    });
  }
  t.deepEqual(violations, []);
});

test('the checker itself catches a forbidden token outside comments', (t) => {
  const src = '// Date.now() in a comment is fine\nconst x = Date.now();\n/* setTimeout( */';
  const hits = stripComments(src).split('\n').filter((l) => FORBIDDEN.some(([, re]) => re.test(l)));
  t.deepEqual(hits, ['const x = Date.now();']);
});
