/**
 * The only backend file that maps and unmaps guest memory (native `mapShared`/`unmap`).
 * Also owns the memory-table lifecycle: generations, in-flight pins and deferred unmap
 * (rust-vmm `GuestMemoryAtomic` as a TypeScript pattern, GUIDE §2 "Guest-memory lifetime").
 */
import fs from 'node:fs';
import * as native from '../../../native/index.js';
import { GuestMemory, type MappedRegion, type MemoryWindow } from './guest-memory.js';
import type { MemoryRegionDesc } from '../vhost-user/message.js';
import { ProtocolError } from '../vhost-user/errors.js';

/** Largest single mapping; bigger regions are split into windows. */
export const WINDOW_BYTES = 1 << 30;
const PAGE_BYTES = 4096;

/** Maps one region from `fd` (the fd is not closed here). */
export function mapRegion(fd: number, desc: MemoryRegionDesc): MappedRegion | ProtocolError {
  const windows: MemoryWindow[] = [];
  const mappings: ArrayBuffer[] = [];
  try {
    for (let regionOffset = 0; regionOffset < desc.sizeBytes; regionOffset += WINDOW_BYTES) {
      const sizeBytes = Math.min(WINDOW_BYTES, desc.sizeBytes - regionOffset);
      const fileOffset = desc.mmapOffset + regionOffset;
      const pad = fileOffset % PAGE_BYTES; // Why: mmap offsets must be page-aligned.
      const ab = native.mapShared(fd, sizeBytes + pad, fileOffset - pad);
      mappings.push(ab);
      windows.push({ gpaStart: desc.gpaStart + regionOffset, sizeBytes, bytes: new Uint8Array(ab, pad, sizeBytes) });
    }
  } catch (err) {
    for (const ab of mappings) native.unmap(ab);
    return new ProtocolError('VHU_ERR_MEMORY', `mmap of guest region at gpa 0x${desc.gpaStart.toString(16)} failed`, { cause: err });
  }
  return { ...desc, windows, mappings, refs: 0 };
}

/** Unmaps a region no generation holds (e.g. the rest of a SET_MEM_TABLE that failed). */
export function unmapRegion(region: MappedRegion): void {
  if (region.refs > 0) throw new Error('invariant: unmapRegion on a region in use');
  for (const ab of region.mappings) native.unmap(ab);
  region.mappings = [];
  region.windows = [];
}

function releaseRegion(region: MappedRegion): void {
  region.refs--;
  if (region.refs === 0) unmapRegion(region);
}

/**
 * The current memory generation plus retired ones still pinned by in-flight requests.
 * A retired generation is unmapped only when its last request completes, so a slow request
 * never writes into memory that was unmapped (or, worse, re-used by a new mapping).
 */
export class MemoryTable {
  private generationCount = 0;
  private currentMemory: GuestMemory | null = null;

  get current(): GuestMemory | null {
    return this.currentMemory;
  }

  /** Installs `regions` as the new generation; the old one retires. */
  replace(regions: MappedRegion[]): GuestMemory {
    for (const r of regions) r.refs++;
    const next = new GuestMemory(regions, ++this.generationCount);
    const prev = this.currentMemory;
    this.currentMemory = next;
    if (prev !== null) this.retire(prev);
    return next;
  }

  /** Drops every region (connection closed); in-flight requests keep theirs until done. */
  clear(): void {
    const prev = this.currentMemory;
    this.currentMemory = null;
    if (prev !== null) this.retire(prev);
  }

  /** Pins the current generation for one request. */
  pin(mem: GuestMemory): void {
    mem.inflight++;
  }

  /** Unpins; unmaps a retired generation when its last request is done. */
  unpin(mem: GuestMemory): void {
    mem.inflight--;
    if (mem.retired && mem.inflight === 0) this.release(mem);
  }

  private retire(mem: GuestMemory): void {
    mem.retired = true;
    if (mem.inflight === 0) this.release(mem);
  }

  private release(mem: GuestMemory): void {
    for (const r of mem.regions) releaseRegion(r);
  }
}

/** Closes fds that arrived with a message and are not kept. */
export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      // Why: an fd we were sent may already be invalid; nothing else to do.
    }
  }
}
