/**
 * What handling one front-end message produced (GUIDE §6), and the per-connection state the
 * message handlers share. The handlers (memory-table, vring-setup, vring-lifecycle,
 * inflight-fd, device-config, feature-negotiation) take a `BackendSession` and return an
 * `Outcome`; handler.ts owns the session and turns outcomes into replies or a close.
 */
import type { Logger } from 'pino';
import type { BlkDevice } from '../blk/device.js';
import type { MemoryTable } from '../memory/mapping.js';
import type { MappedRegion } from '../memory/guest-memory.js';
import type { Vring } from '../virtio/vring.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import { ProtocolError } from './errors.js';
import type { InflightRegion } from './inflight-fd.js';
import { decodeVringState, type VringState } from './message.js';

/** What handling a message produced. */
export type Outcome =
  | { kind: 'reply'; payload: Uint8Array }
  | { kind: 'reply-fd'; payload: Uint8Array; fd: number }
  | { kind: 'ack'; ok: boolean }
  | { kind: 'deferred'; run: (reply: (payload: Uint8Array) => void) => void }
  | { kind: 'deferred-outcome'; run: (done: (outcome: Outcome) => void) => void }
  | ProtocolError;

export const ACK_OK: Outcome = { kind: 'ack', ok: true };
export const ACK_FAIL: Outcome = { kind: 'ack', ok: false };
export const reply = (payload: Uint8Array): Outcome => ({ kind: 'reply', payload });

/** The state of one front-end connection, shared by the message handlers. */
export interface BackendSession {
  readonly memory: MemoryTable;
  readonly vrings: Vring[];
  readonly device: BlkDevice;
  readonly log: Logger;
  /** Queue workers (--workers ≥ 2); null runs every queue on this thread. */
  readonly workers: WorkerPool | null;
  ackedFeatures: bigint;
  ackedProtocolFeatures: bigint;
  regions: MappedRegion[];
  inflightRegion: InflightRegion | null;
  backendReqFd: number;
}

/** The ring at a front-end-supplied index, or VHU_ERR_BAD_QUEUE_INDEX. */
export function vringAt(s: BackendSession, index: number): Vring | ProtocolError {
  const v = s.vrings[index];
  return v ?? new ProtocolError('VHU_ERR_BAD_QUEUE_INDEX', `queue index ${index} >= ${s.vrings.length}`);
}

/** A vhost_vring_state payload and the ring it names; a ProtocolError for a bad payload or index. */
export function decodeRingState(s: BackendSession, p: Uint8Array): { st: VringState; v: Vring } | ProtocolError {
  const st = decodeVringState(p);
  if (st instanceof ProtocolError) return st;
  const v = vringAt(s, st.index);
  if (v instanceof ProtocolError) return v;
  return { st, v };
}
