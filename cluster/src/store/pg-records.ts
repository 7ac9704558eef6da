/**
 * The per-PG metadata records of one PG (PG log entries, PG info, split marks), held as
 * one-byte strings instead of `Uint8Array`s.
 *
 * Why: an OSD at its PG-log bound holds ~190,000 records (64 PGs × 3000 entries × 3 replicas
 * / 3 OSDs). As `Uint8Array`s each record cost a typed-array object, an `ArrayBuffer`
 * object, a malloc'd backing store and V8's bookkeeping for it (~400 B, and every major GC
 * visits and sweeps all of them: a heap snapshot of an OSD after a 4k-write benchmark had
 * 123,000 ArrayBuffers, most of them PG-log records). A flat one-byte string is one heap
 * object of 16 B + its length, which the GC treats as a leaf. Records are read rarely (at
 * load and peering) and decoded at once, so the copy back to bytes on read costs nothing that
 * matters; writes pay one ~0.1 µs conversion.
 *
 * Each byte maps to the char code of the same value (latin1), so any bytes round-trip.
 */
import { bytesToLatin1, latin1ToBytes } from '../common/codec.js';


/** One PG's records: key → value, values stored as one-byte strings. */
export class PgRecords {
  private readonly m = new Map<string, string>();

  get size(): number {
    return this.m.size;
  }

  get(key: string): Uint8Array | undefined {
    const s = this.m.get(key);
    return s === undefined ? undefined : latin1ToBytes(s);
  }

  set(key: string, value: Uint8Array): void {
    this.m.set(key, bytesToLatin1(value));
  }

  /** Stores a value already in the string form (meta decoding). */
  setLatin1(key: string, value: string): void {
    this.m.set(key, value);
  }

  delete(key: string): void {
    this.m.delete(key);
  }

  /** [key, value] in insertion order, values decoded to bytes. */
  *entries(): IterableIterator<[string, Uint8Array]> {
    for (const [k, s] of this.m) yield [k, latin1ToBytes(s)];
  }

  /** [key, value as one-byte string] in insertion order (meta encoding). */
  latin1Entries(): IterableIterator<[string, string]> {
    return this.m.entries();
  }
}
