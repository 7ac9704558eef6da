/**
 * The multiqueue benchmark in CI (issue #3): runs scripts/bench-multiqueue.ts briefly — guest
 * fio 4 KiB random reads at QD32 with one pinned fio process per queue, num-queues 1 and 2,
 * strata with --workers 1 and --workers 2 and qemu-storage-daemon — and checks that every
 * setting produced figures, that both queues carried I/O at 2 queues, and prints the table.
 * It asserts no throughput ratio: under TCG on 2 shared cores the guest is the bottleneck
 * (docs/benchmarks.md "Multiqueue and workers"); the figures are for the record.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { repoRoot } from '../harness/util.js';

interface Row {
  queues: number;
  backend: string;
  workers?: number;
  iops: number;
  ios: number;
  queuesWithIrqs?: number;
}

test('multiqueue benchmark: strata workers 1 and 2 and qemu-storage-daemon at 1 and 2 queues', async (t) => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'strata-mq-')), 'bench.json');
  const script = path.join(repoRoot(), 'dist/scripts/bench-multiqueue.js');
  const text = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [script, '--runtime', '3', '--queues', '1,2', '--disk-mib', '256', '--json', out], { timeout: 12 * 60_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      err ? reject(new Error(`bench-multiqueue failed: ${err.message}\n${stderr.slice(-3000)}`)) : resolve(stdout),
    );
  });
  t.log(text);
  const results = (JSON.parse(fs.readFileSync(out, 'utf8')) as { results: Row[] }).results;
  t.is(results.length, 6, 'three back-end settings × two queue counts');
  for (const r of results) t.true(r.iops > 0 && r.ios > 0, `${r.backend} w${r.workers ?? '-'} q${r.queues} produced I/O`);
  const twoQueueStrata = results.filter((r) => r.queues === 2 && r.backend === 'strata');
  t.is(twoQueueStrata.length, 2);
  for (const r of twoQueueStrata) t.is(r.queuesWithIrqs, 2, `both queues carried I/O (workers ${r.workers})`);
});
