/**
 * The cluster half of the `strata` dispatcher (backend/src/main.ts delegates here):
 *
 *   strata mon …                   monitor daemon (bin/mon.ts)
 *   strata osd --id N …            OSD placeholder daemon (bin/osd.ts)
 *   strata osd tree|dump|out|…     admin commands (bin/cli.ts)
 *   strata status | pool … | auth … | object stat … | pg scrub|ls … | balancer run|status
 *   strata image … | bench …       images and benchmarks (bin/image-cli.ts)
 *
 * `strata osd` is dispatched by its second word: an admin word (`tree`, `out`, …) is a CLI
 * command, anything else (options) starts the daemon.
 */
import { CLI_USAGE, OSD_ADMIN_WORDS, runCli } from './cli.js';
import { describeError } from './bin-util.js';
import { IMAGE_USAGE, runImageCli } from './image-cli.js';
import { MON_USAGE, runMon } from './mon.js';
import { OSD_USAGE, runOsd } from './osd.js';

/** Usage lines for the top-level `strata` help. */
export const CLUSTER_USAGE = `  mon       run the cluster monitor (strata mon --help)
  osd       run an OSD (strata osd --help) or an OSD admin command (tree, dump, out, in, down, rm, blocklist, pg-temp)
  status    cluster health; also: pool, auth, object, pg, balancer (see below)

${CLI_USAGE}

${IMAGE_USAGE}`;

/**
 * Runs a cluster command. Returns false when `argv[0]` is not one (the caller prints its
 * usage); otherwise the command calls `exit` exactly once, possibly later.
 */
export function runClusterCommand(argv: string[], exit: (code: number) => void): boolean {
  const [command, sub] = argv;
  let usage = CLI_USAGE;
  try {
    switch (command) {
      case 'mon':
        usage = MON_USAGE;
        runMon(argv.slice(1), exit);
        return true;
      case 'osd':
        if (sub !== undefined && (OSD_ADMIN_WORDS as readonly string[]).includes(sub)) runCli(argv, exit);
        else { usage = OSD_USAGE; runOsd(argv.slice(1), exit); }
        return true;
      case 'image': case 'bench':
        usage = IMAGE_USAGE;
        runImageCli(argv, exit);
        return true;
      case 'status': case 'pool': case 'auth': case 'object': case 'pg': case 'balancer':
        runCli(argv, exit);
        return true;
      default:
        return false;
    }
  } catch (err) {
    const d = describeError(err);
    process.stderr.write(`strata ${command ?? ''}: ${d.message}\n`);
    if (d.exitCode === 2) process.stderr.write(usage + '\n');
    exit(String((err as { code?: string }).code ?? '').startsWith('ERR_PARSE_ARGS') ? 2 : d.exitCode);
    return true;
  }
}
