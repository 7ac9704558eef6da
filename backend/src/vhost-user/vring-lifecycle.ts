/**
 * Starting and stopping rings (vhost-user.rst "Starting and stopping rings"): SET_VRING_KICK
 * starts a ring (here, or in its queue worker), SET_VRING_CALL/ERR set its eventfds,
 * SET_VRING_ENABLE enables it, and GET_VRING_BASE stops it and answers once its in-flight
 * requests drained (or after DRAIN_TIMEOUT_MS).
 */
import { closeFds } from '../memory/mapping.js';
import type { Vring } from '../virtio/vring.js';
import { ProtocolError } from './errors.js';
import { recoverInflight } from './inflight-fd.js';
import { FrontendReq as R, VHOST_USER_VRING_IDX_MASK, decodeU64, encodeVringState } from './message.js';
import { ACK_OK, decodeRingState, vringAt, type BackendSession, type Outcome } from './outcome.js';

/** How long GET_VRING_BASE waits for in-flight requests before answering anyway. */
const DRAIN_TIMEOUT_MS = 30_000;

export function getVringBase(s: BackendSession, p: Uint8Array): Outcome {
  const r = decodeRingState(s, p);
  if (r instanceof ProtocolError) return r;
  const { st, v } = r;
  const workers = s.workers;
  if (v.inWorker && workers !== null) {
    return {
      kind: 'deferred',
      run: (send) =>
        workers.stopRing(v.index, (nextAvail, callFd) => {
          v.backFromWorker(callFd);
          if (nextAvail >= 0) v.base = nextAvail;
          if (v.queue !== null) v.queue.nextAvail = v.base;
          send(encodeVringState({ index: st.index, num: v.base }));
        }),
    };
  }
  v.stop();
  return {
    kind: 'deferred',
    run: (send) => {
      let answered = false;
      const answer = (): void => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        const queue = v.queue;
        if (queue !== null && queue.bound && queue.needsNotification()) v.signalCall();
        v.setFd('kick', -1);
        v.base = queue?.nextAvail ?? v.base;
        send(encodeVringState({ index: st.index, num: v.base }));
      };
      const timer = setTimeout(() => {
        s.log.error({ queue: st.index, inflight: v.inflight }, 'GET_VRING_BASE: requests still in flight after the drain timeout');
        answer();
      }, DRAIN_TIMEOUT_MS);
      v.whenIdle(answer);
    },
  };
}

export function setVringFd(s: BackendSession, request: number, p: Uint8Array, fds: number[]): Outcome {
  const word = decodeU64(p);
  if (word instanceof ProtocolError) return word;
  const index = Number(word & BigInt(VHOST_USER_VRING_IDX_MASK));
  const v = vringAt(s, index);
  if (v instanceof ProtocolError) return v;
  const fd = fds[0] ?? -1;
  if (v.inWorker && s.workers !== null && request !== R.SET_VRING_ERR) {
    if (request === R.SET_VRING_KICK) {
      s.log.warn({ queue: index }, 'SET_VRING_KICK on a running ring without GET_VRING_BASE; ignored');
      closeFds(fds);
    } else s.workers.send(s.workers.workerOf(index), { kind: 'set-call', index, fd });
    return ACK_OK;
  }
  if (request === R.SET_VRING_CALL) v.setFd('call', fd);
  else if (request === R.SET_VRING_ERR) v.setFd('err', fd);
  else startRing(s, v, fd);
  return ACK_OK;
}

/** SET_VRING_KICK: the ring starts (vhost-user.rst "Starting and stopping rings"). */
function startRing(s: BackendSession, v: Vring, kickFd: number): void {
  v.setFd('kick', kickFd);
  if (kickFd < 0) {
    s.log.warn({ queue: v.index }, 'kick without fd (polling mode) is not supported; ring stays stopped');
    return;
  }
  if (s.workers !== null) {
    v.started = true;
    if (v.enabled) startInWorker(s, v);
    return;
  }
  const resubmit = recoverInflight(s, v);
  if (resubmit instanceof Error) {
    s.log.error({ queue: v.index, err: resubmit }, 'inflight region does not match the ring; not tracking this ring');
  }
  v.started = true;
  v.startPolling(() => {
    v.drainKick();
    s.device.processQueue(v);
  });
  if (Array.isArray(resubmit) && resubmit.length > 0) {
    s.log.info({ queue: v.index, requests: resubmit.length }, 'resubmitting requests in flight before the reconnect');
    s.device.resubmit(v, resubmit);
  }
  s.device.processQueue(v);
}

/**
 * Hands a started, enabled ring to its worker, with its kick and call fds (the worker owns
 * them until it stops the ring). Inflight recovery and resubmission happen in the worker.
 */
function startInWorker(s: BackendSession, v: Vring): void {
  const workers = s.workers!;
  const queue = v.queue;
  if (queue === null || !queue.bound || v.addrs === null) {
    s.log.warn({ queue: v.index }, 'ring started before its addresses were set; not started');
    return;
  }
  workers.send(workers.workerOf(v.index), {
    kind: 'start',
    index: v.index,
    size: queue.size,
    ...v.addrs,
    nextAvail: queue.nextAvail,
    nextUsed: queue.nextUsed,
    eventIdx: queue.eventIdx,
    kickFd: v.kickFd,
    callFd: v.callFd,
    resubmit: [],
  });
  v.kickFd = -1;
  v.callFd = -1;
  v.inWorker = true;
}

export function setVringEnable(s: BackendSession, p: Uint8Array): Outcome {
  const r = decodeRingState(s, p);
  if (r instanceof ProtocolError) return r;
  const { st, v } = r;
  if (st.num > 1) return new ProtocolError('VHU_ERR_BAD_PAYLOAD', `SET_VRING_ENABLE ${st.num}`);
  v.enabled = st.num === 1;
  // Why no stop on disable in worker mode: QEMU disables rings right before GET_VRING_BASE,
  // which stops and drains them; a few requests processed in between are harmless.
  if (s.workers !== null) {
    if (v.enabled && v.started && !v.inWorker) startInWorker(s, v);
    return ACK_OK;
  }
  if (v.enabled) s.device.processQueue(v);
  return ACK_OK;
}
