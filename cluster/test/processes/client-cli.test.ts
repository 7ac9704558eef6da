/**
 * Runs the real `strata image …` and `strata bench …` commands as child processes against an
 * in-process monitor and fake OSDs (client-harness.ts) over TCP: create/ls/info/resize/
 * rename/rm with their documented exit codes, import/export round trips of a file (with zero
 * runs kept thin) and of stdin/stdout, and a short bench printing IOPS and latency.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serializeKeyring } from '../../src/auth/keyring.js';
import { TestCluster } from '../client-harness.js';

const main = join(fileURLToPath(import.meta.url), '../../../../backend/src/main.js');

interface Run { code: number; stdout: string; stderr: string; out: Buffer }

function strata(args: string[], env: Record<string, string>, stdin?: Buffer): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [main, ...args], { env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('close', (code) => { const b = Buffer.concat(out); resolve({ code: code ?? -1, stdout: b.toString(), stderr, out: b }); });
    if (stdin !== undefined) p.stdin.end(stdin); else p.stdin.end();
  });
}

test('strata image and bench commands: exit codes, import/export, bench output', async (t) => {
  const c = await TestCluster.start({ osds: 3 });
  const dir = mkdtempSync(join(tmpdir(), 'strata-cli-'));
  t.teardown(async () => { await c.stop(); rmSync(dir, { recursive: true, force: true }); });
  const keyring = join(dir, 'keyring');
  writeFileSync(keyring, serializeKeyring(new Map([['client.admin', c.ring.get('client.admin')!]])), { mode: 0o600 });
  const env = { STRATA_MON: `127.0.0.1:${c.monPort}`, STRATA_KEYRING: keyring, STRATA_NAME: 'client.admin', STRATA_CONF: join(dir, 'none.conf') };
  const run = (...a: string[]): Promise<Run> => strata(a, env);

  t.is((await run('image', 'create', 'vms/d1', '--size', '8M', '--object-size', '1M')).code, 0);
  t.is((await run('image', 'create', 'vms/d1', '--size', '8M')).code, 4);
  const odd = await run('image', 'create', 'vms/d2', '--size', '1000');
  t.is(odd.code, 2);
  t.regex(odd.stderr, /multiple of 512/);
  const unknown = await run('image', 'info', 'vms/nope');
  t.is(unknown.code, 3);
  t.regex(unknown.stderr, /does not exist/);
  t.is((await run('image', 'info', 'nopool/x')).code, 3);
  t.is((await strata(['image', 'ls', 'vms'], { ...env, STRATA_NAME: 'client.nobody' })).code, 3);
  t.is((await run('image', 'frobnicate')).code, 2);

  // Import a file with a zero run in the middle: it must stay thin and round-trip exactly.
  const src = Buffer.alloc(3 * 1024 * 1024 + 1000);
  for (let i = 0; i < 1024 * 1024; i++) src[i] = (i * 7) & 0xff;
  src.fill(0x33, 2 * 1024 * 1024 + 4096);
  writeFileSync(join(dir, 'in.raw'), src);
  t.is((await run('image', 'import', join(dir, 'in.raw'), 'vms/imp', '--object-size', '1M')).code, 0);
  const info = JSON.parse((await run('image', 'info', 'vms/imp', '--json')).stdout) as { sizeBytes: number; usedBytes: number };
  t.is(info.sizeBytes, 3 * 1024 * 1024 + 1024);
  t.true(info.usedBytes < src.length - 1024 * 1024 + 8192, `used ${info.usedBytes}`);
  t.is((await run('image', 'export', 'vms/imp', join(dir, 'out.raw'))).code, 0);
  const back = readFileSync(join(dir, 'out.raw'));
  t.true(back.subarray(0, src.length).equals(src));
  t.true(back.subarray(src.length).equals(Buffer.alloc(back.length - src.length)));

  // stdin → image → stdout.
  const small = Buffer.from('hello strata '.repeat(1000));
  t.is((await strata(['image', 'import', '-', 'vms/pipe'], env, small)).code, 0);
  const exported = await run('image', 'export', 'vms/pipe', '-');
  t.is(exported.code, 0);
  t.true(exported.out.subarray(0, small.length).equals(small));

  t.is((await run('image', 'resize', 'vms/d1', '--size', '4M')).code, 2); // Shrink needs --allow-shrink.
  t.is((await run('image', 'resize', 'vms/d1', '--size', '4M', '--allow-shrink')).code, 0);
  t.is((await run('image', 'rename', 'vms/d1', 'd9')).code, 0);
  t.deepEqual(JSON.parse((await run('image', 'ls', 'vms', '--json')).stdout), ['d9', 'imp', 'pipe']);

  const bench = await run('bench', 'vms/d9', '--io-type', 'write', '--io-size', '4K', '--io-threads', '4', '--io-pattern', 'rand', '--io-total', '512K', '--json');
  t.is(bench.code, 0, bench.stderr);
  const b = JSON.parse(bench.stdout) as { ops: number; iops: number; latMsP99: number };
  t.is(b.ops, 128);
  t.true(b.iops > 0 && b.latMsP99 > 0);
  const text = await run('bench', 'vms/d9', '--io-type', 'rw', '--io-size', '4K', '--io-threads', '2', '--io-total', '64K', '--warmup-total', '32K');
  t.regex(text.stdout, /ops: 16 +ops\/sec: [\d.]+ .*p99/); // The warm-up's 8 ops are not counted.
  t.is(text.stdout.split('bench  type').length, 2, 'one header: the warm-up is silent');
  t.is((await run('image', 'rm', 'vms/d9')).code, 0);
  t.is((await run('image', 'rm', 'vms/d9')).code, 3);
});
