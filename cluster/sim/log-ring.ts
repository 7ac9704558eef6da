/**
 * Simulation logging: one pino root logger whose lines go into an in-memory ring buffer
 * (dumped only on failure), stamped with SIMULATED time (`timestamp: () => ',"time":' +
 * now`), so the log of a seed is itself deterministic. `--verbose` also echoes every line.
 */
import pino from 'pino';
import type { Logger } from 'pino';

/** A bounded ring of log lines. */
export class LogRing {
  private readonly lines: string[];
  private next = 0;
  private count = 0;
  /** Echo lines as they come (--verbose). */
  echo: ((line: string) => void) | null = null;

  constructor(readonly capacity: number) {
    this.lines = new Array<string>(capacity);
  }

  write(line: string): void {
    const s = line.endsWith('\n') ? line.slice(0, -1) : line;
    this.lines[this.next] = s;
    this.next = (this.next + 1) % this.capacity;
    this.count++;
    this.echo?.(s);
  }

  /** The last `n` lines, oldest first. */
  tail(n: number): string[] {
    const have = Math.min(this.count, this.capacity, n);
    const out: string[] = [];
    for (let i = have; i > 0; i--) out.push(this.lines[(this.next - i + this.capacity * 2) % this.capacity]!);
    return out;
  }

  /** Lines written in total. */
  get written(): number { return this.count; }
}

/** The root logger of a run. */
export function simLogger(ring: LogRing, level: string, now: () => number): Logger {
  return pino({
    level,
    base: null,
    timestamp: () => `,"time":${Math.round(now() * 1000) / 1000}`,
    redact: ['*.key', '*.secret', 'ticket', '*.ticket', '*.sessionKey'],
  }, { write: (s: string) => ring.write(s) });
}
