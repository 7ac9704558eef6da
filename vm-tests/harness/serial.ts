// Serial-console reader for VM-test guests: turns QEMU's serial output (CRLF, ANSI escapes from
// the firmware) into clean lines, offers bounded waits that fail loudly with the last console
// lines, and parses the marker protocol printed by vm-tests/guest/init:
//
//   STRATA-BEGIN kernel=<release>       STRATA-KV <key>=<value>       STRATA-STEP <text>
//   STRATA-JSON-BEGIN <name> ... STRATA-JSON-END <name>                STRATA-FAIL <text>
//   STRATA-DMESG-BEGIN ... STRATA-DMESG-END                           STRATA-RESULT rc=<n>
//
// Markers are matched anywhere in a line, because a tool's progress output without a trailing
// newline (fio's ETA line, for instance) can precede them on the same console line.

/** Strips ANSI/VT100 escape sequences and stray control characters (keeps tabs). */
export function cleanConsoleText(s: string): string {
  return s
    .replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, '')
    .replace(/\x1b[@-Z\\-_]/g, '')
    .replace(/\x1b[()][A-Za-z0-9]/g, '')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

export class ConsoleError extends Error {
  constructor(message: string, readonly consoleTail: string) {
    super(`${message}\n--- last console lines ---\n${consoleTail}\n--- end of console ---`);
    this.name = 'ConsoleError';
  }
}

interface Waiter {
  match: (line: string) => boolean;
  resolve: (line: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  what: string;
}

/** Accumulates console output line by line and lets callers wait for a matching line. */
export class SerialConsole {
  private readonly lines: string[] = [];
  private partial = '';
  private waiters: Waiter[] = [];
  private endedReason: string | undefined;
  private readonly lineListeners: ((line: string) => void)[] = [];

  /** Feeds raw bytes from QEMU's serial output. */
  push(chunk: Buffer | string): void {
    const text = this.partial + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) this.addLine(cleanConsoleText(raw.replace(/\r/g, '')));
  }

  /** Marks the stream as finished (QEMU exited): pending waits fail at once. */
  end(reason: string): void {
    if (this.partial.length > 0) {
      this.addLine(cleanConsoleText(this.partial.replace(/\r/g, '')));
      this.partial = '';
    }
    this.endedReason ??= reason;
    const pending = this.waiters;
    this.waiters = [];
    for (const w of pending) {
      clearTimeout(w.timer);
      w.reject(new ConsoleError(`console ended (${reason}) while waiting for ${w.what}`, this.tail()));
    }
  }

  get ended(): boolean {
    return this.endedReason !== undefined;
  }

  onLine(listener: (line: string) => void): void {
    this.lineListeners.push(listener);
  }

  /** All complete lines so far. */
  allLines(): readonly string[] {
    return this.lines;
  }

  text(): string {
    return this.lines.join('\n') + (this.partial ? `\n${cleanConsoleText(this.partial)}` : '');
  }

  /** The last `n` lines (JSON blocks included), for failure messages. */
  tail(n = 40): string {
    const all = this.partial ? [...this.lines, cleanConsoleText(this.partial)] : this.lines;
    return all.slice(-n).join('\n');
  }

  /**
   * Resolves with the first line (already seen or future) matching `pattern`; rejects after
   * `timeoutMs` or when the console ends, with the console tail in the error.
   */
  waitFor(pattern: RegExp | ((line: string) => boolean), timeoutMs: number, what: string): Promise<string> {
    const match = typeof pattern === 'function' ? pattern : (l: string) => pattern.test(l);
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.endedReason !== undefined) {
      return Promise.reject(new ConsoleError(`console ended (${this.endedReason}) before ${what}`, this.tail()));
    }
    return new Promise<string>((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve,
        reject,
        what,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new ConsoleError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`, this.tail()));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  private addLine(line: string): void {
    this.lines.push(line);
    for (const l of this.lineListeners) l(line);
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.match(line)) {
        clearTimeout(w.timer);
        w.resolve(line);
      } else {
        still.push(w);
      }
    }
    this.waiters = still;
  }
}

export const MARKER_BEGIN = /STRATA-BEGIN\b/;
export const MARKER_RESULT = /STRATA-RESULT rc=(-?\d+)/;

export interface ParsedMarkers {
  begun: boolean;
  kernel: string | undefined;
  /** Exit status of the job; undefined when STRATA-RESULT never appeared. */
  rc: number | undefined;
  kv: Record<string, string>;
  steps: string[];
  failures: string[];
  /** Raw text between STRATA-JSON-BEGIN/END, by name. */
  jsonText: Record<string, string>;
  dmesg: string[];
  /** Console lines that are not markers and not inside JSON/dmesg blocks (the job's own output). */
  output: string[];
}

/** Parses the marker protocol out of console lines. */
export function parseMarkers(lines: readonly string[]): ParsedMarkers {
  const p: ParsedMarkers = {
    begun: false,
    kernel: undefined,
    rc: undefined,
    kv: {},
    steps: [],
    failures: [],
    jsonText: {},
    dmesg: [],
    output: [],
  };
  let jsonName: string | undefined;
  let jsonLines: string[] = [];
  let inDmesg = false;
  for (const line of lines) {
    if (jsonName !== undefined) {
      const end = /STRATA-JSON-END (\S+)/.exec(line);
      if (end) {
        // Keep text before the marker on the same line (JSON without a trailing newline).
        const before = line.slice(0, end.index);
        if (before.trim()) jsonLines.push(before);
        p.jsonText[jsonName] = jsonLines.join('\n');
        jsonName = undefined;
        jsonLines = [];
      } else {
        jsonLines.push(line);
      }
      continue;
    }
    if (inDmesg) {
      if (/STRATA-DMESG-END/.test(line)) inDmesg = false;
      else p.dmesg.push(line);
      continue;
    }
    let m: RegExpExecArray | null;
    if ((m = /STRATA-BEGIN(?: kernel=(\S+))?/.exec(line))) {
      p.begun = true;
      p.kernel = m[1];
    } else if ((m = /STRATA-JSON-BEGIN (\S+)/.exec(line))) {
      const before = line.slice(0, m.index);
      if (before.trim()) p.output.push(before);
      jsonName = m[1] ?? 'unnamed';
      jsonLines = [];
    } else if (/STRATA-DMESG-BEGIN/.test(line)) {
      inDmesg = true;
    } else if ((m = /STRATA-KV ([^=\s]+)=(.*)$/.exec(line))) {
      p.kv[m[1] ?? ''] = (m[2] ?? '').trim();
    } else if ((m = /STRATA-STEP (.*)$/.exec(line))) {
      p.steps.push(m[1] ?? '');
    } else if ((m = /STRATA-FAIL (.*)$/.exec(line))) {
      p.failures.push(m[1] ?? '');
    } else if ((m = MARKER_RESULT.exec(line))) {
      p.rc = Number(m[1]);
    } else {
      p.output.push(line);
    }
  }
  if (jsonName !== undefined) p.jsonText[jsonName] = jsonLines.join('\n');
  return p;
}
