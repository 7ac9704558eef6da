/**
 * The model of acknowledged writes the data checkers use (pure; no I/O). Each object's
 * history is a list of whole-object writes (`writefull`) with their real-time interval
 * [startMs, endMs] and outcome:
 * - 'acked': the cluster acknowledged it (version and data hash known);
 * - 'failed': the client got an error or gave up — the write may or may not have applied,
 *   so it stays a possible value (it is never required);
 * - in flight: no end yet.
 *
 * The values a read spanning [rs, re] may legally return (linearizability of single-object
 * registers, with uncertain writes allowed to take effect):
 * - every acked write W that finished before rs and is not superseded — W is superseded when
 *   another write acked before rs STARTED after W finished (it is then certainly later);
 * - "absent" when no write acked before rs;
 * - every write (acked, failed or in flight) whose interval overlaps the read;
 * - every failed write that started before re (it may have taken effect late).
 * Durability is the same question asked with no write in flight, after faults stopped: the
 * final read must be one of these values, i.e. an acked write is never lost or rolled back.
 */

/** Hash of an object value; 'absent' = the object does not exist. */
export type ValueHash = string;
export const ABSENT: ValueHash = 'absent';

/** One write in an object's history. */
export interface WriteRecord {
  readonly client: string;
  readonly startMs: number;
  endMs: number | null;
  outcome: 'pending' | 'acked' | 'failed';
  readonly value: ValueHash;
  version: { epoch: number; seq: number } | null;
}

/** Histories of all objects. */
export class History {
  private readonly writes = new Map<string, WriteRecord[]>();
  acked = 0;
  failed = 0;

  /** Records the start of a write; returns its record (completed by `ack`/`fail`). */
  begin(object: string, client: string, startMs: number, value: ValueHash): WriteRecord {
    const w: WriteRecord = { client, startMs, endMs: null, outcome: 'pending', value, version: null };
    const list = this.writes.get(object) ?? [];
    list.push(w);
    this.writes.set(object, list);
    return w;
  }

  ack(w: WriteRecord, endMs: number, version: { epoch: number; seq: number }): void {
    w.endMs = endMs;
    w.outcome = 'acked';
    w.version = version;
    this.acked++;
  }

  fail(w: WriteRecord, endMs: number): void {
    w.endMs = endMs;
    w.outcome = 'failed';
    this.failed++;
  }

  /** Objects with at least one write. */
  objects(): string[] {
    return [...this.writes.keys()].sort();
  }

  /** The last `n` writes of `object`, for a violation's details. */
  describe(object: string, n = 8): string[] {
    const list = this.writes.get(object) ?? [];
    return list.slice(-n).map((w) => `${w.client} [${w.startMs.toFixed(1)}, ${w.endMs === null ? '…' : w.endMs.toFixed(1)}] ${w.outcome} ${w.value}${w.version === null ? '' : ` v${w.version.epoch}.${w.version.seq}`}`);
  }

  /** True when some write has no outcome yet. */
  hasPending(): boolean {
    for (const list of this.writes.values()) if (list.some((w) => w.outcome === 'pending')) return true;
    return false;
  }

  /** The values a read of `object` over [rs, re] may return (see the module comment). */
  allowed(object: string, rs: number, re: number): Set<ValueHash> {
    const list = this.writes.get(object) ?? [];
    const out = new Set<ValueHash>();
    const ackedBefore = list.filter((w) => w.outcome === 'acked' && w.endMs! < rs);
    if (ackedBefore.length === 0) out.add(ABSENT);
    // W is superseded when some write acked before rs started after W ended (never W itself).
    let latestStart = -Infinity;
    for (const x of ackedBefore) latestStart = Math.max(latestStart, x.startMs);
    for (const w of ackedBefore) if (!(latestStart > w.endMs!)) out.add(w.value);
    for (const w of list) {
      const overlaps = w.startMs <= re && (w.endMs === null || w.endMs >= rs);
      if (overlaps) out.add(w.value);
      if (w.outcome === 'failed' && w.startMs <= re) out.add(w.value);
      if (w.outcome === 'pending' && w.startMs <= re) out.add(w.value);
    }
    return out;
  }

  /**
   * Version order: an acked write that started after another acked write finished must have
   * a greater version. Returns a description of the first violation, or null.
   */
  versionOrderViolation(): string | null {
    for (const [obj, list] of this.writes) {
      const acked = list.filter((w) => w.outcome === 'acked');
      for (const a of acked) for (const b of acked) {
        if (b.startMs <= a.endMs!) continue;
        const va = a.version!;
        const vb = b.version!;
        if (vb.epoch < va.epoch || (vb.epoch === va.epoch && vb.seq <= va.seq)) {
          return `${obj}: write acked at ${a.endMs} has version ${va.epoch}.${va.seq}, a later write (started ${b.startMs}) has ${vb.epoch}.${vb.seq}`;
        }
      }
    }
    return null;
  }
}
