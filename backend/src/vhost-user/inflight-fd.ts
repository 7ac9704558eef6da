/**
 * The shared inflight region (INFLIGHT_SHMFD) that lets a restarted back-end resubmit the
 * requests in flight at a crash: GET_INFLIGHT_FD allocates it in a memfd, SET_INFLIGHT_FD
 * maps the one QEMU kept, and a starting ring reconciles its part with the used ring. With
 * queue workers, each maps the region too before the answer goes out.
 */
import * as native from '../../../native/index.js';
import { closeFds } from '../memory/mapping.js';
import { queueRegionBytes, recoverRing } from '../virtio/inflight.js';
import type { Vring } from '../virtio/vring.js';
import { ProtocolError } from './errors.js';
import { decodeInflight, encodeInflight } from './message.js';
import { ACK_OK, type BackendSession, type Outcome } from './outcome.js';

/** The shared inflight region (GET/SET_INFLIGHT_FD), mapped here. */
export interface InflightRegion {
  bytes: Uint8Array;
  mapping: ArrayBuffer;
  numQueues: number;
  queueSize: number;
  queueRegionBytes: number;
}

/**
 * Attaches the ring's part of the inflight region and reconciles it with the used ring
 * (libvhost-user vu_check_queue_inflights): next avail = used idx + heads still in flight.
 */
export function recoverInflight(s: BackendSession, v: Vring): number[] | Error {
  const region = s.inflightRegion;
  const queue = v.queue;
  if (region === null || queue === null || !queue.bound) return [];
  if (v.index >= region.numQueues || queue.size > region.queueSize) return new Error('ring does not fit the inflight region');
  const start = v.index * region.queueRegionBytes;
  const r = recoverRing(queue, region.bytes.subarray(start, start + region.queueRegionBytes));
  if (r instanceof Error) return r;
  v.inflightState = r.state;
  return r.pending;
}

/** GET_INFLIGHT_FD: we allocate the region in a memfd and hand QEMU the fd to keep. */
export function getInflightFd(s: BackendSession, p: Uint8Array): Outcome {
  const m = decodeInflight(p);
  if (m instanceof ProtocolError) return m;
  if (m.numQueues === 0 || m.numQueues > s.vrings.length || m.queueSize === 0 || m.queueSize > s.device.maxQueueSize) {
    return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `inflight region for ${m.numQueues} queues of ${m.queueSize}`);
  }
  const perQueue = queueRegionBytes(m.queueSize);
  const mmapSize = perQueue * m.numQueues;
  const fd = native.memfdCreate('strata-inflight', mmapSize);
  mapInflight(s, fd, mmapSize, 0, m.numQueues, m.queueSize);
  const answer: Outcome = { kind: 'reply-fd', payload: encodeInflight({ mmapSize, mmapOffset: 0, numQueues: m.numQueues, queueSize: m.queueSize }), fd };
  return shareInflight(s, fd, mmapSize, 0, m.numQueues, m.queueSize, answer, false);
}

/** With workers, each maps the inflight region too before `answer` goes out. */
function shareInflight(s: BackendSession, fd: number, mmapSize: number, mmapOffset: number, numQueues: number, queueSize: number, answer: Outcome, closeAfter: boolean): Outcome {
  const workers = s.workers;
  if (workers === null) {
    if (closeAfter) closeFds([fd]);
    return answer;
  }
  const message = { kind: 'inflight' as const, fd, mmapSize, mmapOffset, numQueues, queueSize, queueRegionBytes: queueRegionBytes(queueSize) };
  return {
    kind: 'deferred-outcome',
    run: (done) =>
      workers.mapInflight(message, (errors) => {
        if (closeAfter) closeFds([fd]);
        done(errors.length === 0 ? answer : new ProtocolError('VHU_ERR_MEMORY', `queue workers could not map the inflight region: ${errors.join('; ')}`));
      }),
  };
}

/** SET_INFLIGHT_FD: the region a previous back-end (or this one) created, from QEMU. */
export function setInflightFd(s: BackendSession, p: Uint8Array, fds: number[]): Outcome {
  const m = decodeInflight(p);
  if (m instanceof ProtocolError) return m;
  const fd = fds[0]!;
  const perQueue = queueRegionBytes(m.queueSize);
  if (m.numQueues === 0 || m.queueSize === 0 || m.mmapSize < perQueue * m.numQueues || m.mmapOffset % 4096 !== 0) {
    return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `inflight region of ${m.mmapSize} bytes for ${m.numQueues}×${m.queueSize}`);
  }
  try {
    mapInflight(s, fd, m.mmapSize, m.mmapOffset, m.numQueues, m.queueSize);
  } catch (err) {
    closeFds(fds);
    return new ProtocolError('VHU_ERR_MEMORY', 'mapping the inflight region failed', { cause: err });
  }
  return shareInflight(s, fd, m.mmapSize, m.mmapOffset, m.numQueues, m.queueSize, ACK_OK, true);
}

function mapInflight(s: BackendSession, fd: number, mmapSize: number, mmapOffset: number, numQueues: number, queueSize: number): void {
  unmapInflight(s);
  const mapping = native.mapShared(fd, mmapSize, mmapOffset);
  s.inflightRegion = { bytes: new Uint8Array(mapping), mapping, numQueues, queueSize, queueRegionBytes: queueRegionBytes(queueSize) };
}

/** Drops our mapping of the inflight region, if any. */
export function unmapInflight(s: BackendSession): void {
  if (s.inflightRegion !== null) native.unmap(s.inflightRegion.mapping);
  s.inflightRegion = null;
}
