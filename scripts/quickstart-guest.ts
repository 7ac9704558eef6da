/**
 * The quick start's `--boot-guest` step: boots the test guest image against an already
 * served vhost-user-blk socket, runs fio (random write with crc32c verify, random read,
 * sequential 1M) on /dev/vda and prints a result table. Exit status 0 only if fio verified.
 *
 *   node dist/scripts/quickstart-guest.js --socket /var/lib/strata/quickstart/vm1-disk0.sock
 */
import { parseArgs } from 'node:util';
import { composeJob, runGuest } from '../vm-tests/harness/guest.js';

const { values } = parseArgs({ options: { socket: { type: 'string' }, 'num-queues': { type: 'string', default: '2' } } });
if (values.socket === undefined) {
  process.stderr.write('usage: quickstart-guest --socket PATH\n');
  process.exit(2);
}

const jobs: [string, string][] = [
  ['randwrite-verify', '--rw=randwrite --bs=4k --iodepth=16 --size=64m --verify=crc32c --verify_fatal=1 --do_verify=1'],
  ['randread-4k', '--rw=randread --bs=4k --iodepth=16 --size=64m --time_based --runtime=5'],
  ['seqwrite-1m', '--rw=write --bs=1m --iodepth=4 --size=128m'],
];
const body = jobs
  .map(([name, args]) => `strata_fio ${name} --name=${name} --filename=/dev/vda --ioengine=libaio --direct=1 ${args}`)
  .join('\n');

interface FioJob {
  jobname: string;
  error: number;
  read: { iops: number; bw: number };
  write: { iops: number; bw: number };
}

const result = await runGuest({ name: 'quickstart', job: composeJob(body), disks: [{ socketPath: values.socket, numQueues: Number(values['num-queues']) }], vcpus: 1 });
console.log(`guest: accel ${result.accel}, boot ${(result.bootMs / 1000).toFixed(1)} s, rc ${result.rc}`);
console.log('job                 IOPS      MiB/s   errors');
for (const [name] of jobs) {
  const json = result.fioJson[name] as { jobs?: FioJob[] } | undefined;
  const job = json?.jobs?.[0];
  if (job === undefined) {
    console.log(`${name.padEnd(18)}  (no result)`);
    continue;
  }
  const side = job.write.iops > job.read.iops ? job.write : job.read;
  console.log(`${name.padEnd(18)}  ${side.iops.toFixed(0).padStart(8)}  ${(side.bw / 1024).toFixed(1).padStart(8)}   ${job.error}`);
}
if (result.rc !== 0) {
  console.log(result.tail(30));
  process.exit(1);
}
console.log('fio verify passed: every block read back matched its crc32c.');
