/**
 * Ring configuration before a ring starts: SET_VRING_NUM (size), SET_VRING_ADDR (front-end
 * addresses, translated and bound in the current memory generation) and SET_VRING_BASE
 * (next avail index). Sizes, bases and addresses from the front-end are checked here.
 */
import { SplitQueue } from '../virtio/split-queue.js';
import type { Vring } from '../virtio/vring.js';
import { ProtocolError } from './errors.js';
import * as f from './features.js';
import { decodeVringAddr } from './message.js';
import { ACK_OK, decodeRingState, vringAt, type BackendSession, type Outcome } from './outcome.js';

export function setVringNum(s: BackendSession, p: Uint8Array): Outcome {
  const r = decodeRingState(s, p);
  if (r instanceof ProtocolError) return r;
  const { st, v } = r;
  const n = st.num;
  if (n === 0 || n > s.device.maxQueueSize || (n & (n - 1)) !== 0) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `queue size ${n} is not a power of 2 in [1, ${s.device.maxQueueSize}]`);
  v.size = n;
  return ACK_OK;
}

export function setVringAddr(s: BackendSession, p: Uint8Array): Outcome {
  const a = decodeVringAddr(p);
  if (a instanceof ProtocolError) return a;
  const v = vringAt(s, a.index);
  if (v instanceof ProtocolError) return v;
  if (v.size === 0) return new ProtocolError('VHU_ERR_BAD_STATE', 'SET_VRING_ADDR before SET_VRING_NUM');
  v.frontendAddrs = { desc: a.descFrontendVa, avail: a.availFrontendVa, used: a.usedFrontendVa };
  v.queue = new SplitQueue(v.size);
  v.queue.eventIdx = f.hasFeature(s.ackedFeatures, f.VIRTIO_RING_F_EVENT_IDX);
  v.queue.nextAvail = v.base;
  const err = bindQueue(s, v);
  if (err) return err;
  // libvhost-user: the used index continues from what the ring shows (a reconnect).
  v.queue.nextUsed = v.queue.usedRingIdx();
  return ACK_OK;
}

/** Translates the ring's front-end addresses and binds the queue's views. */
export function bindQueue(s: BackendSession, v: Vring): ProtocolError | null {
  const mem = s.memory.current;
  const fa = v.frontendAddrs!;
  if (mem === null) return new ProtocolError('VHU_ERR_BAD_STATE', 'ring address before SET_MEM_TABLE');
  const descGpa = mem.frontendVaToGpa(fa.desc);
  const availGpa = mem.frontendVaToGpa(fa.avail);
  const usedGpa = mem.frontendVaToGpa(fa.used);
  if (descGpa === null || availGpa === null || usedGpa === null) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', 'ring address outside guest memory');
  v.addrs = { descGpa, availGpa, usedGpa };
  const err = v.queue!.bind(mem, v.addrs);
  if (err !== null) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', err.message);
  return null;
}

export function setVringBase(s: BackendSession, p: Uint8Array): Outcome {
  const r = decodeRingState(s, p);
  if (r instanceof ProtocolError) return r;
  const { st, v } = r;
  if (st.num > 0xffff) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `split ring base ${st.num} > 0xffff`);
  v.base = st.num;
  if (v.queue !== null) v.queue.nextAvail = st.num;
  return ACK_OK;
}
