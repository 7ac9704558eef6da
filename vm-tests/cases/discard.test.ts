// Checks discard and write-zeroes: the guest writes a random 4 MiB pattern over 0..24 MiB with
// O_DIRECT, runs blkdiscard on 4..12 MiB and blkdiscard -z on 16..20 MiB, drops caches and reads
// back with O_DIRECT: those ranges must read as zeros (cmp against /dev/zero) and every other
// range must still hold the pattern (sha256). On the host, the disk file must agree.
import test from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { backendsUnderTest, fileBackend } from '../harness/backends.js';
import { assertJobPassed, CASE_TIMEOUT_MS, describe, runVmCase } from '../harness/vm-case.js';

const MiB = 1024 * 1024;

for (const kind of backendsUnderTest()) {
  test(`discarded and zeroed ranges read as zeros, the rest stays intact (${kind})`, async (t) => {
    t.timeout(CASE_TIMEOUT_MS);
    const hostRegions: Record<string, string> = {};
    const r = await runVmCase(t, {
      name: 'discard',
      backend: fileBackend(kind),
      diskMiB: 256,
      script: 'discard.sh',
      afterGuest: (file) => {
        const fd = fs.openSync(file, 'r');
        try {
          const buf = Buffer.alloc(4 * MiB);
          let first: string | undefined;
          for (let m = 0; m < 24; m += 4) {
            fs.readSync(fd, buf, 0, buf.length, m * MiB);
            const zero = buf.every((b) => b === 0);
            const sum = crypto.createHash('sha256').update(buf).digest('hex');
            if (m === 0) first = sum;
            hostRegions[`${m}-${m + 4}MiB`] = zero ? 'zero' : sum === first ? 'pattern' : 'other';
          }
        } finally {
          fs.closeSync(fd);
        }
      },
    });
    assertJobPassed(t, r);
    t.is(r.kv['discard_ok'], '1', describe(r));
    const expected: Record<string, string> = {
      '0-4MiB': 'pattern', '4-8MiB': 'zero', '8-12MiB': 'zero', '12-16MiB': 'pattern', '16-20MiB': 'zero', '20-24MiB': 'pattern',
    };
    for (const [region, want] of Object.entries(expected)) {
      t.is(r.kv[`region.${region}`], want, `guest view of ${region}\n${describe(r)}`);
    }
    t.deepEqual(hostRegions, expected, 'host view of the disk file after the guest finished');
  });
}
