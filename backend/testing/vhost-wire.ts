/**
 * The front-end side of the vhost-user wire, shared by the test front-ends (TestFrontend and
 * the fuzzers' bare ones) and the hostile-input tests: little-endian payload builders, raw
 * headers, the memory-table and vring-address payloads for one guest RAM region, and a reader
 * that reassembles the back-end's replies from a non-blocking socket.
 */
import fs from 'node:fs';
import * as native from '../../native/index.js';
import { HEADER_SIZE, decodeHeader, type MessageHeader } from '../src/vhost-user/message.js';
import type { MockSplitQueue } from './mock-driver.js';

/** A u64 payload (SET_FEATURES, SET_VRING_KICK/CALL, ...). */
export const u64 = (v: bigint | number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
};

/** Two u32s: a vhost_vring_state { index, num }. */
export const u32pair = (a: number, b: number): Uint8Array => {
  const out = new Uint8Array(8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, a >>> 0, true);
  dv.setUint32(4, b >>> 0, true);
  return out;
};

/** A raw 12-byte header with any request, flags and size (valid or not). */
export const vhostHeader = (request: number, flags: number, size: number): Uint8Array => {
  const out = new Uint8Array(HEADER_SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, request >>> 0, true);
  dv.setUint32(4, flags >>> 0, true);
  dv.setUint32(8, size >>> 0, true);
  return out;
};

/** Guest RAM as the front-end shares it: one region at `gpaBase`, mapped at `vaBase` in the front-end. */
export interface GuestLayout {
  gpaBase: number;
  vaBase: number;
  memBytes: number;
}

/** SET_MEM_TABLE's payload for the one region of `g` (mmap offset 0). */
export function memTablePayload(g: GuestLayout): Uint8Array {
  const p = new Uint8Array(8 + 8 * 32);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, 1, true);
  dv.setBigUint64(8, BigInt(g.gpaBase), true);
  dv.setBigUint64(16, BigInt(g.memBytes), true);
  dv.setBigUint64(24, BigInt(g.vaBase), true);
  dv.setBigUint64(32, 0n, true);
  return p;
}

/** SET_VRING_ADDR's payload for ring `index` laid out as `mq` in the guest RAM of `g`. */
export function vringAddrPayload(g: GuestLayout, index: number, mq: MockSplitQueue): Uint8Array {
  const p = new Uint8Array(40);
  const dv = new DataView(p.buffer);
  const va = (gpa: number): bigint => BigInt(gpa - g.gpaBase + g.vaBase);
  dv.setUint32(0, index, true);
  dv.setBigUint64(8, va(mq.descGpa), true);
  dv.setBigUint64(16, va(mq.usedGpa), true);
  dv.setBigUint64(24, va(mq.availGpa), true);
  return p;
}

export interface WireMessage {
  header: MessageHeader;
  payload: Uint8Array;
}

/** Reassembles whole messages from what a non-blocking vhost-user socket delivers. */
export class MessageReader {
  private pending = new Uint8Array(0);
  private readonly scratch = new Uint8Array(65536);

  constructor(private readonly fd: number) {}

  /**
   * Reads all the socket has now, handing the fds received to `onFds` as they arrive, and
   * returns the whole messages buffered; null when the peer closed (or the read failed).
   */
  read(onFds: (fds: readonly number[]) => void): WireMessage[] | null {
    for (;;) {
      let r: native.RecvResult | null;
      try {
        r = native.recvMsg(this.fd, this.scratch, 8);
      } catch {
        r = { bytes: 0, fds: [] };
      }
      if (r === null) break;
      onFds(r.fds);
      if (r.bytes === 0) return null;
      const next = new Uint8Array(this.pending.length + r.bytes);
      next.set(this.pending);
      next.set(this.scratch.subarray(0, r.bytes), this.pending.length);
      this.pending = next;
    }
    const out: WireMessage[] = [];
    while (this.pending.length >= HEADER_SIZE) {
      const header = decodeHeader(this.pending, 0);
      if (this.pending.length < HEADER_SIZE + header.size) break;
      out.push({ header, payload: this.pending.slice(HEADER_SIZE, HEADER_SIZE + header.size) });
      this.pending = this.pending.subarray(HEADER_SIZE + header.size);
    }
    return out;
  }
}

/** Eventfds this process holds (the daemon runs in-process, so its fds count too). */
export function eventfdCount(): number {
  let n = 0;
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${name}`) === 'anon_inode:[eventfd]') n++;
    } catch {
      // the fd of the directory listing itself is gone by now
    }
  }
  return n;
}
