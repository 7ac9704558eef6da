/**
 * Slots for the index's in-memory block images (journal-resident blocks), carved from 1 MiB
 * chunks and freed explicitly.
 *
 * Why: a resident block lives from its write until the checkpoint that moves it to the data
 * file, seconds later. As an ArrayBuffer of its own (a received frame's data) it is promoted to
 * V8's old generation, and once the checkpoint drops it, its malloc'd backing store is freed only
 * by the next mark-compact: an OSD under 4k writes held ~90 MiB of malloc heap for ≤ 28 MiB of
 * live images (docs/benchmarks.md, "Session 6"). A slot is given back the moment the index lets
 * go of it, so memory follows the live set; frame buffers die young instead.
 *
 * Who may hold a view of a slot: readers copy out of it synchronously (reads, read-modify-write
 * bases); a checkpoint writes flushed blocks straight from their slots, and `pin`s the pool
 * meanwhile, so a slot freed during its writes (the block was overwritten) is reused only after
 * they completed (`unpin`).
 *
 * Chunks are filled lowest first, and a chunk that empties is dropped (after the first `keep`),
 * so a burst's memory goes back once its blocks are checkpointed.
 */
import { assert } from '../common/assert.js';
import { BLOCK_BYTES } from './types.js';

const SLOTS_PER_CHUNK = 256;
const CHUNK_BYTES = SLOTS_PER_CHUNK * BLOCK_BYTES;

class Chunk {
  readonly bytes = new Uint8Array(CHUNK_BYTES);
  /** Free slot numbers (a stack). */
  readonly free = new Uint16Array(SLOTS_PER_CHUNK);
  freeCount = SLOTS_PER_CHUNK;
  /** 1 for a slot handed out (catches a double free). */
  readonly used = new Uint8Array(SLOTS_PER_CHUNK);

  constructor(readonly n: number) {
    for (let i = 0; i < SLOTS_PER_CHUNK; i++) this.free[i] = SLOTS_PER_CHUNK - 1 - i;
  }
}

/** A pool of 4 KiB block slots. */
export class BlockPool {
  private readonly chunks: (Chunk | undefined)[] = [];
  private readonly byBuffer = new Map<ArrayBufferLike, Chunk>();
  /** Slots handed out and not yet freed. */
  usedSlots = 0;
  /** Every chunk below this index exists and is full (where `chunkWithRoom` starts looking). */
  private firstRoom = 0;
  private pins = 0;
  /** Slots freed while pinned, reusable at the last `unpin`. */
  private deferred: Uint8Array[] = [];

  /** `keep`: chunks never dropped when empty (a floor that saves re-allocating them). */
  constructor(private readonly keep = 2) {}

  /** Bytes of chunks held. */
  get heldBytes(): number { return this.byBuffer.size * CHUNK_BYTES; }

  /** A slot holding a copy of `image` (BLOCK_BYTES long). */
  copyIn(image: Uint8Array): Uint8Array {
    assert(image.length === BLOCK_BYTES, 'block image size');
    const c = this.chunkWithRoom();
    const slot = c.free[--c.freeCount]!;
    c.used[slot] = 1;
    this.usedSlots++;
    const view = c.bytes.subarray(slot * BLOCK_BYTES, (slot + 1) * BLOCK_BYTES);
    view.set(image);
    return view;
  }

  /** Gives a slot back; the caller's views of it must no longer be used. */
  free(view: Uint8Array): void {
    if (this.pins > 0) this.deferred.push(view);
    else this.release(view);
  }

  /** Holds every slot freed from now on until the matching `unpin` (I/O from slots in flight). */
  pin(): void {
    this.pins++;
  }

  unpin(): void {
    assert(this.pins > 0, 'block pool: unpin without pin');
    if (--this.pins > 0) return;
    const d = this.deferred;
    this.deferred = [];
    for (const v of d) this.release(v);
  }

  /** A sort key that orders slots by address within a chunk (adjacent slots get adjacent keys). */
  slotOrder(view: Uint8Array): number {
    const c = this.byBuffer.get(view.buffer);
    assert(c !== undefined, 'block pool: not a slot');
    return c.n * SLOTS_PER_CHUNK + view.byteOffset / BLOCK_BYTES;
  }

  private release(view: Uint8Array): void {
    const c = this.byBuffer.get(view.buffer);
    // A chunk's bytes are a buffer of their own: a slot's byteOffset is its place in the chunk.
    assert(c !== undefined && view.length === BLOCK_BYTES && view.byteOffset % BLOCK_BYTES === 0, 'block pool: not a slot');
    const slot = view.byteOffset / BLOCK_BYTES;
    assert(c.used[slot] === 1, 'block pool: double free');
    c.used[slot] = 0;
    c.free[c.freeCount++] = slot;
    this.usedSlots--;
    if (c.n < this.firstRoom) this.firstRoom = c.n;
    if (c.freeCount === SLOTS_PER_CHUNK && c.n >= this.keep) {
      this.chunks[c.n] = undefined;
      this.byBuffer.delete(c.bytes.buffer);
    }
  }

  /** The lowest chunk with a free slot; a new chunk in the lowest hole (or at the end) if none. */
  private chunkWithRoom(): Chunk {
    let n = this.firstRoom;
    while (n < this.chunks.length && this.chunks[n] !== undefined && this.chunks[n]!.freeCount === 0) n++;
    this.firstRoom = n;
    const found = this.chunks[n];
    if (found !== undefined) return found;
    const c = new Chunk(n);
    this.chunks[n] = c;
    this.byBuffer.set(c.bytes.buffer, c);
    return c;
  }
}
