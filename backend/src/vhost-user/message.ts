/**
 * vhost-user wire format (QEMU docs/interop/vhost-user.rst "Message Specification").
 *
 *   0        4        8        12
 *   +--------+--------+--------+-------------------+
 *   |request | flags  |  size  | payload (size B)  |
 *   +--------+--------+--------+-------------------+
 *   flags: bits 0-1 version (=1), bit 2 REPLY, bit 3 NEED_REPLY. Host byte order (LE here).
 *
 * One decoder per payload; each validates its struct and returns the value or a
 * `ProtocolError`. Nothing here throws on bad input from the front-end.
 */
import { ProtocolError } from './errors.js';

/** Front-end → back-end requests, spec names verbatim. */
export const FrontendReq = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_LOG_BASE: 6,
  SET_LOG_FD: 7,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  SET_VRING_ERR: 14,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  SEND_RARP: 19,
  NET_SET_MTU: 20,
  SET_BACKEND_REQ_FD: 21,
  IOTLB_MSG: 22,
  SET_VRING_ENDIAN: 23,
  GET_CONFIG: 24,
  SET_CONFIG: 25,
  CREATE_CRYPTO_SESSION: 26,
  CLOSE_CRYPTO_SESSION: 27,
  POSTCOPY_ADVISE: 28,
  POSTCOPY_LISTEN: 29,
  POSTCOPY_END: 30,
  GET_INFLIGHT_FD: 31,
  SET_INFLIGHT_FD: 32,
  GPU_SET_SOCKET: 33,
  RESET_DEVICE: 34,
  VRING_KICK: 35,
  GET_MAX_MEM_SLOTS: 36,
  ADD_MEM_REG: 37,
  REM_MEM_REG: 38,
  SET_STATUS: 39,
  GET_STATUS: 40,
} as const;
export type FrontendReqCode = (typeof FrontendReq)[keyof typeof FrontendReq];

/** Back-end → front-end requests on the backend channel (SET_BACKEND_REQ_FD). */
export const BackendReq = {
  IOTLB_MSG: 1,
  CONFIG_CHANGE_MSG: 2,
  VRING_HOST_NOTIFIER_MSG: 3,
} as const;

const requestNames = new Map<number, string>(Object.entries(FrontendReq).map(([k, v]) => [v, k]));
/** `VHOST_USER_<NAME>` for logs (libvhost-user's vu_request_to_string). */
export function requestName(request: number): string {
  return `VHOST_USER_${requestNames.get(request) ?? `UNKNOWN(${request})`}`;
}

export const HEADER_SIZE = 12;
export const VHOST_USER_VERSION = 0x1;
export const VHOST_USER_VERSION_MASK = 0x3;
export const VHOST_USER_REPLY_MASK = 0x4;
export const VHOST_USER_NEED_REPLY_MASK = 0x8;
/** rust-vmm MAX_MSG_SIZE: no legitimate payload is larger. */
export const MAX_PAYLOAD_SIZE = 4096;
/** Regions in one SET_MEM_TABLE (VHOST_MEMORY_BASELINE_NREGIONS). */
export const VHOST_MEMORY_BASELINE_NREGIONS = 8;
/** Slots we report for GET_MAX_MEM_SLOTS (CONFIGURE_MEM_SLOTS). */
export const VHOST_USER_MAX_RAM_SLOTS = 32;
/** Bit 8 of a vring-fd message payload: no fd attached (vhost-user.rst SET_VRING_KICK). */
export const VHOST_USER_VRING_NOFD_MASK = 0x100;
export const VHOST_USER_VRING_IDX_MASK = 0xff;
/** The spec's bound on a GET/SET_CONFIG payload. */
export const VHOST_USER_MAX_CONFIG_SIZE = 256;

export interface MessageHeader {
  request: number;
  flags: number;
  size: number;
}

export function decodeHeader(bytes: Uint8Array, offset: number): MessageHeader {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, HEADER_SIZE);
  return { request: dv.getUint32(0, true), flags: dv.getUint32(4, true), size: dv.getUint32(8, true) };
}

/** Encodes a reply: header with REPLY set and the version, then the payload. */
export function encodeReply(request: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, request, true);
  dv.setUint32(4, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, true);
  dv.setUint32(8, payload.length, true);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** Encodes a request (used by the test front-end and the backend channel). */
export function encodeRequest(request: number, payload: Uint8Array, needReply = false): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, request, true);
  dv.setUint32(4, VHOST_USER_VERSION | (needReply ? VHOST_USER_NEED_REPLY_MASK : 0), true);
  dv.setUint32(8, payload.length, true);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** Converts a u64 read as bigint to a safe JS number, or an error (GUIDE: u64ToSafeNumber). */
export function u64ToSafeNumber(v: bigint, what: string): number | ProtocolError {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `${what} exceeds 2^53`);
  return Number(v);
}

const view = (p: Uint8Array): DataView => new DataView(p.buffer, p.byteOffset, p.byteLength);

function expectSize(p: Uint8Array, size: number, what: string): ProtocolError | null {
  if (p.length !== size) return new ProtocolError('VHU_ERR_BAD_SIZE', `${what}: payload is ${p.length} bytes, expected ${size}`);
  return null;
}

/** u64 payload (features, protocol features, a vring-fd message's index word). */
export function decodeU64(p: Uint8Array): bigint | ProtocolError {
  const err = expectSize(p, 8, 'u64');
  if (err) return err;
  return view(p).getBigUint64(0, true);
}

export function encodeU64(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  view(out).setBigUint64(0, v, true);
  return out;
}

/** struct vhost_vring_state { unsigned int index; unsigned int num; } */
export interface VringState {
  index: number;
  num: number;
}
export function decodeVringState(p: Uint8Array): VringState | ProtocolError {
  const err = expectSize(p, 8, 'vhost_vring_state');
  if (err) return err;
  const dv = view(p);
  return { index: dv.getUint32(0, true), num: dv.getUint32(4, true) };
}
export function encodeVringState(s: VringState): Uint8Array {
  const out = new Uint8Array(8);
  const dv = view(out);
  dv.setUint32(0, s.index, true);
  dv.setUint32(4, s.num, true);
  return out;
}

/** struct vhost_vring_addr: addresses are front-end virtual addresses ("qva"). */
export interface VringAddr {
  index: number;
  flags: number;
  descFrontendVa: number;
  usedFrontendVa: number;
  availFrontendVa: number;
  logGuestAddr: number;
}
export function decodeVringAddr(p: Uint8Array): VringAddr | ProtocolError {
  const err = expectSize(p, 40, 'vhost_vring_addr');
  if (err) return err;
  const dv = view(p);
  const fields: number[] = [];
  for (const off of [8, 16, 24, 32]) {
    const v = u64ToSafeNumber(dv.getBigUint64(off, true), 'vring address');
    if (v instanceof ProtocolError) return v;
    fields.push(v);
  }
  return {
    index: dv.getUint32(0, true),
    flags: dv.getUint32(4, true),
    descFrontendVa: fields[0]!,
    usedFrontendVa: fields[1]!,
    availFrontendVa: fields[2]!,
    logGuestAddr: fields[3]!,
  };
}

/** VhostUserMemoryRegion { u64 guest_phys_addr, memory_size, userspace_addr, mmap_offset } */
export interface MemoryRegionDesc {
  gpaStart: number;
  sizeBytes: number;
  frontendVaStart: number;
  mmapOffset: number;
}
const REGION_SIZE = 32;

function decodeRegion(dv: DataView, off: number): MemoryRegionDesc | ProtocolError {
  const v: number[] = [];
  for (let i = 0; i < 4; i++) {
    const n = u64ToSafeNumber(dv.getBigUint64(off + i * 8, true), 'memory region field');
    if (n instanceof ProtocolError) return n;
    v.push(n);
  }
  const region = { gpaStart: v[0]!, sizeBytes: v[1]!, frontendVaStart: v[2]!, mmapOffset: v[3]! };
  if (region.sizeBytes === 0) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', 'memory region of size 0');
  if (region.gpaStart + region.sizeBytes > Number.MAX_SAFE_INTEGER) {
    return new ProtocolError('VHU_ERR_BAD_PAYLOAD', 'memory region wraps the address space');
  }
  return region;
}

/** VhostUserMemory { u32 nregions; u32 padding; VhostUserMemoryRegion regions[nregions] } */
export function decodeMemTable(p: Uint8Array): MemoryRegionDesc[] | ProtocolError {
  if (p.length < 8) return new ProtocolError('VHU_ERR_BAD_SIZE', 'SET_MEM_TABLE payload shorter than its header');
  const dv = view(p);
  const count = dv.getUint32(0, true);
  if (count === 0 || count > VHOST_MEMORY_BASELINE_NREGIONS) {
    return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `SET_MEM_TABLE with ${count} regions`);
  }
  // Why not exact: QEMU sends the full 8-slot array whatever nregions says.
  if (p.length < 8 + count * REGION_SIZE) {
    return new ProtocolError('VHU_ERR_BAD_SIZE', `SET_MEM_TABLE payload ${p.length} too short for ${count} regions`);
  }
  const regions: MemoryRegionDesc[] = [];
  for (let i = 0; i < count; i++) {
    const r = decodeRegion(dv, 8 + i * REGION_SIZE);
    if (r instanceof ProtocolError) return r;
    regions.push(r);
  }
  return regions;
}

/** VhostUserMemRegMsg { u64 padding; VhostUserMemoryRegion region } (ADD/REM_MEM_REG). */
export function decodeMemRegMsg(p: Uint8Array): MemoryRegionDesc | ProtocolError {
  const err = expectSize(p, 8 + REGION_SIZE, 'VhostUserMemRegMsg');
  if (err) return err;
  return decodeRegion(view(p), 8);
}

/** VhostUserConfig { u32 offset; u32 size; u32 flags; u8 payload[size] } */
export interface ConfigMsg {
  offset: number;
  size: number;
  flags: number;
  payload: Uint8Array;
}
export function decodeConfig(p: Uint8Array): ConfigMsg | ProtocolError {
  if (p.length < 12) return new ProtocolError('VHU_ERR_BAD_SIZE', 'config message shorter than 12 bytes');
  const dv = view(p);
  const offset = dv.getUint32(0, true);
  const size = dv.getUint32(4, true);
  const flags = dv.getUint32(8, true);
  if (size > VHOST_USER_MAX_CONFIG_SIZE || offset > VHOST_USER_MAX_CONFIG_SIZE || offset + size > VHOST_USER_MAX_CONFIG_SIZE) {
    return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `config window ${offset}+${size} out of range`);
  }
  if (p.length !== 12 + size) return new ProtocolError('VHU_ERR_BAD_SIZE', `config payload ${p.length} != 12 + ${size}`);
  return { offset, size, flags, payload: p.subarray(12) };
}
export function encodeConfig(c: ConfigMsg): Uint8Array {
  const out = new Uint8Array(12 + c.payload.length);
  const dv = view(out);
  dv.setUint32(0, c.offset, true);
  dv.setUint32(4, c.payload.length, true);
  dv.setUint32(8, c.flags, true);
  out.set(c.payload, 12);
  return out;
}

/** VhostUserInflight { u64 mmap_size; u64 mmap_offset; u16 num_queues; u16 queue_size } */
export interface InflightMsg {
  mmapSize: number;
  mmapOffset: number;
  numQueues: number;
  queueSize: number;
}
export function decodeInflight(p: Uint8Array): InflightMsg | ProtocolError {
  const err = expectSize(p, 24, 'VhostUserInflight');
  if (err) return err;
  const dv = view(p);
  const mmapSize = u64ToSafeNumber(dv.getBigUint64(0, true), 'inflight mmap_size');
  if (mmapSize instanceof ProtocolError) return mmapSize;
  const mmapOffset = u64ToSafeNumber(dv.getBigUint64(8, true), 'inflight mmap_offset');
  if (mmapOffset instanceof ProtocolError) return mmapOffset;
  return { mmapSize, mmapOffset, numQueues: dv.getUint16(16, true), queueSize: dv.getUint16(18, true) };
}
export function encodeInflight(m: InflightMsg): Uint8Array {
  const out = new Uint8Array(24);
  const dv = view(out);
  dv.setBigUint64(0, BigInt(m.mmapSize), true);
  dv.setBigUint64(8, BigInt(m.mmapOffset), true);
  dv.setUint16(16, m.numQueues, true);
  dv.setUint16(18, m.queueSize, true);
  return out;
}
