#!/usr/bin/env -S node --initial-old-space-size=64 --max-semi-space-size=4
/**
 * The `strata` command: a thin dispatcher to subcommands. Keep it small (Cloud Hypervisor's
 * main.rs shape): parse, build real dependencies, start.
 */
import { VHOST_USAGE, runVhost } from './vhost-command.js';
import { runVhostCtl } from './vhost-ctl-command.js';
import { CLUSTER_USAGE, runClusterCommand } from '../../cluster/src/bin/commands.js';

const USAGE = `Usage: strata <command> [options]

Commands:
  vhost     serve a file or block device to a QEMU guest over vhost-user-blk
  vhost-ctl status and online resize of a running 'strata vhost' (control socket)
${CLUSTER_USAGE}

Run 'strata <command> --help' for a command's options.`;

// Why: the threadpool carries every file I/O (preadv/pwritev/fdatasync); libuv's default of
// 4 threads caps a QD32 guest. It must be set before the pool is first used.
process.env.UV_THREADPOOL_SIZE ??= '16';

function main(argv: string[]): void {
  const [command, ...rest] = argv;
  const exit = (code: number): void => {
    process.exitCode = code;
    // Why: exit even if a handle (a poller, the stdout stream) is still referenced.
    setImmediate(() => process.exit(code));
  };
  try {
    switch (command) {
      case 'vhost':
        return runVhost(rest, exit);
      case 'vhost-ctl':
        return runVhostCtl(rest, exit);
      case undefined:
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        return exit(command === undefined ? 2 : 0);
      default:
        if (runClusterCommand(argv, exit)) return;
        process.stderr.write(`strata: unknown command '${command}'\n${USAGE}\n`);
        return exit(2);
    }
  } catch (err) {
    process.stderr.write(`strata ${command}: ${(err as Error).message}\n`);
    if (command === 'vhost') process.stderr.write(VHOST_USAGE + '\n');
    exit(1);
  }
}

main(process.argv.slice(2));
