import { setMallocMmapThreshold } from '../../../native/index.js';

/**
 * The node flags every long-running strata daemon (mon, osd, vhost) is started with — the one
 * list the launchers share: `scripts/start-local-cluster.sh`, `scripts/quickstart.sh`, the
 * `strata` shebang (backend/src/main.ts), the test and benchmark spawners. A unit test
 * (cluster/test/daemon-node-flags.test.ts) keeps the shell copies equal to this one.
 *
 * `--initial-old-space-size=64` (MiB). Why: V8 schedules a full mark-compact when the "global"
 * size — old generation plus ArrayBuffer backing stores — passes a limit derived from the old
 * generation's live size. An OSD's old generation is small (10–40 MiB) while its I/O buffers
 * (socket chunks, 4096-aligned write buffers) turn over at 200+ MiB/s under 1 MiB writes, so
 * with the default the limit was ~26 MiB and every ~15 MiB of dead buffers cost a full GC:
 * 53 mark-compacts in 6 s per OSD, ~30 % of its CPU. Raising the old generation's floor to 64 MiB
 * raises that limit to ~128 MiB: 5–13 mark-compacts in the same run, OSD CPU per 1 MiB
 * replicated write 13.7 → 8–9 ms (`osd-bench --only seq`, docs/benchmarks.md). It is a floor
 * for GC scheduling, not a reservation: an idle daemon's RSS does not grow. It cannot be set
 * after start (`v8.setFlagsFromString` leaves the heap as configured) and Node refuses it in
 * NODE_OPTIONS, hence the launchers.
 *
 * `--max-semi-space-size=4` (MiB). Why: V8's young generation grows to three 16 MiB semi-spaces
 * under a steady allocation rate, and on an OSD under 4k writes that was ~40 MiB of its RSS.
 * With 4 MiB the scavenges are more frequent but each is smaller: OSD RSS at 4k QD16 176-179 →
 * 138-151 MiB with no measurable CPU change (three A/B pairs of `osd-bench --only w16`,
 * docs/benchmarks.md "Session 6").
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64', '--max-semi-space-size=4'];

/**
 * glibc's mmap threshold for the data-path daemons (OSD, vhost): allocations of 128 KiB and more
 * get pages of their own, returned on free. Why: by default glibc raises the threshold to the
 * size of each large block freed (up to 32 MiB), after which transient 1-4 MiB buffers (a
 * checkpoint's meta, a 4 MiB write beyond the bulk pool's cap) are carved from the brk heap, which
 * never shrinks below its highest live block. osd-bench, two alternating pairs: OSD RSS at 4k
 * QD16 132-149 → 116-119 MiB, after 1 MiB writes 145-165 → 134-142 MiB, CPU per op within the
 * noise (docs/benchmarks.md, "Session 6"). Set at start, not by MALLOC_MMAP_THRESHOLD_ in the
 * environment, so every launcher (systemd included) gets it.
 */
export const DAEMON_MMAP_THRESHOLD_BYTES = 128 * 1024;

/** Applies the daemons' in-process tuning (today: the malloc mmap threshold). */
export function tuneDaemonProcess(): void {
  setMallocMmapThreshold(DAEMON_MMAP_THRESHOLD_BYTES);
}

/** The log line of a daemon started without them (info: a performance hint, not a fault). */
export const DAEMON_FLAGS_HINT = 'node started without the daemon node flags: full GCs will be frequent under large I/O (docs/operations.md)';

/** True when this process was started with every daemon flag (a daemon logs a hint if not). */
export function hasDaemonNodeFlags(execArgv: readonly string[] = process.execArgv): boolean {
  return DAEMON_NODE_FLAGS.every((f) => execArgv.includes(f));
}
