/**
 * Guest memory as the back-end sees it: an immutable snapshot of mapped regions
 * (rust-vmm `GuestMemoryMmap`, libvhost-user `VuDevRegion`).
 *
 * Address spaces are named in every variable (GUIDE §1.4): `gpa` = guest physical address,
 * `frontendVa` = the front-end's (QEMU's) virtual address, used only by SET_VRING_ADDR.
 *
 * A region is exposed as windows of at most `WINDOW_BYTES` each, so that no single
 * ArrayBuffer exceeds what V8 accepts and a region of any size can be served. Translation
 * returns a view clipped at the end of its window; callers that need a longer range use
 * `gather`, which loops (libvhost-user `vu_gpa_to_va` semantics).
 */

/** One mmap'ed piece of a region. */
export interface MemoryWindow {
  gpaStart: number;
  sizeBytes: number;
  /** View of exactly this window's bytes. */
  bytes: Uint8Array;
}

/** A region mapped from one fd, shared between memory generations by reference count. */
export interface MappedRegion {
  gpaStart: number;
  sizeBytes: number;
  frontendVaStart: number;
  mmapOffset: number;
  windows: MemoryWindow[];
  /** The ArrayBuffers to unmap when the last generation using this region is released. */
  mappings: ArrayBuffer[];
  /** Generations holding this region. */
  refs: number;
}

/** One generation of the memory table. Requests pin the generation they started under. */
export class GuestMemory {
  /** Requests in flight that hold views into this generation. */
  inflight = 0;
  /** Set when a newer table replaced this one; unmapped once `inflight` reaches 0. */
  retired = false;
  private lastWindow: MemoryWindow | null = null;

  constructor(
    readonly regions: readonly MappedRegion[],
    readonly generation: number,
  ) {}

  /** Total bytes across regions. */
  get totalBytes(): number {
    let n = 0;
    for (const r of this.regions) n += r.sizeBytes;
    return n;
  }

  private findWindow(gpa: number): MemoryWindow | null {
    const last = this.lastWindow;
    if (last !== null && gpa >= last.gpaStart && gpa < last.gpaStart + last.sizeBytes) return last;
    for (const region of this.regions) {
      if (gpa < region.gpaStart || gpa >= region.gpaStart + region.sizeBytes) continue;
      for (const w of region.windows) {
        if (gpa >= w.gpaStart && gpa < w.gpaStart + w.sizeBytes) {
          this.lastWindow = w;
          return w;
        }
      }
    }
    return null;
  }

  /**
   * A view of guest memory starting at `gpa`, at most `lengthBytes` long, clipped at the end
   * of its window. `null` when `gpa` is not inside any region.
   */
  translate(gpa: number, lengthBytes: number): Uint8Array | null {
    const w = this.findWindow(gpa);
    if (w === null) return null;
    const offset = gpa - w.gpaStart;
    const n = Math.min(lengthBytes, w.sizeBytes - offset);
    return w.bytes.subarray(offset, offset + n);
  }

  /**
   * Appends views covering exactly [gpa, gpa + lengthBytes) to `out`. Returns false (and
   * leaves `out` with a partial list the caller discards) if any byte is outside guest memory.
   */
  gather(gpa: number, lengthBytes: number, out: Uint8Array[]): boolean {
    let remaining = lengthBytes;
    let cursor = gpa;
    while (remaining > 0) {
      const v = this.translate(cursor, remaining);
      if (v === null || v.length === 0) return false;
      out.push(v);
      remaining -= v.length;
      cursor += v.length;
    }
    return true;
  }

  /** Contiguous view of [gpa, gpa + lengthBytes) if it lies inside one window, else null. */
  contiguous(gpa: number, lengthBytes: number): Uint8Array | null {
    const v = this.translate(gpa, lengthBytes);
    return v !== null && v.length === lengthBytes ? v : null;
  }

  /** QEMU's userspace address → gpa (vhost-user SET_VRING_ADDR uses front-end VAs). */
  frontendVaToGpa(frontendVa: number): number | null {
    for (const r of this.regions) {
      if (frontendVa >= r.frontendVaStart && frontendVa < r.frontendVaStart + r.sizeBytes) {
        return r.gpaStart + (frontendVa - r.frontendVaStart);
      }
    }
    return null;
  }
}
