/**
 * The fd-count check every message passes before any decoding (rust-vmm
 * `check_attached_files`): which requests carry exactly one fd, which carry one unless the
 * NOFD bit says otherwise, and which carry none.
 */
import type { IncomingMessage } from './connection.js';
import { ProtocolError } from './errors.js';
import { FrontendReq as R, VHOST_USER_VRING_NOFD_MASK, requestName } from './message.js';

/** Requests that carry exactly one fd. */
const ONE_FD_REQUESTS = new Set<number>([R.ADD_MEM_REG, R.SET_INFLIGHT_FD, R.SET_BACKEND_REQ_FD]);

/** Requests that carry exactly one fd unless the NOFD bit says otherwise. */
const VRING_FD_REQUESTS = new Set<number>([R.SET_VRING_KICK, R.SET_VRING_CALL, R.SET_VRING_ERR]);

/** Fd-count check before any decoding (rust-vmm check_attached_files). */
export function checkFds(msg: IncomingMessage): ProtocolError | null {
  const { request } = msg.header;
  const n = msg.fds.length;
  let expected: number | 'any-of-0-1' | 'payload';
  if (VRING_FD_REQUESTS.has(request)) expected = 'payload';
  else if (request === R.SET_MEM_TABLE) return n >= 1 ? null : new ProtocolError('VHU_ERR_MISSING_FD', 'SET_MEM_TABLE without fds');
  else if (ONE_FD_REQUESTS.has(request)) expected = 1;
  else if (request === R.REM_MEM_REG) expected = 'any-of-0-1';
  else expected = 0;
  if (expected === 'payload') {
    const word = msg.payload.length === 8 ? new DataView(msg.payload.buffer, msg.payload.byteOffset).getUint32(0, true) : 0;
    expected = word & VHOST_USER_VRING_NOFD_MASK ? 0 : 1;
  }
  if (expected === 'any-of-0-1') return n <= 1 ? null : new ProtocolError('VHU_ERR_UNEXPECTED_FDS', `${n} fds with REM_MEM_REG`);
  if (n > expected) return new ProtocolError('VHU_ERR_UNEXPECTED_FDS', `${requestName(request)} carried ${n} fds, expected ${expected}`);
  if (n < expected) return new ProtocolError('VHU_ERR_MISSING_FD', `${requestName(request)} carried ${n} fds, expected ${expected}`);
  return null;
}
