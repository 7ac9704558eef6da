/**
 * The device config space and the backend channel: GET_CONFIG/SET_CONFIG (the virtio-blk
 * config window; SET_CONFIG only toggles writeback), SET_BACKEND_REQ_FD, and the
 * CONFIG_CHANGE_MSG this back-end sends on that channel after an online resize.
 */
import * as native from '../../../native/index.js';
import { closeFds } from '../memory/mapping.js';
import { ProtocolError } from './errors.js';
import { BackendReq, decodeConfig, encodeConfig, encodeRequest } from './message.js';
import { ACK_FAIL, ACK_OK, reply, type BackendSession, type Outcome } from './outcome.js';

export function getConfig(s: BackendSession, p: Uint8Array): Outcome {
  const c = decodeConfig(p);
  if (c instanceof ProtocolError) return c;
  return reply(encodeConfig({ offset: c.offset, size: c.size, flags: c.flags, payload: s.device.getConfig(c.offset, c.size) }));
}

export function setConfig(s: BackendSession, p: Uint8Array): Outcome {
  const c = decodeConfig(p);
  if (c instanceof ProtocolError) return c;
  if (!s.device.setConfig(c.offset, c.payload)) return ACK_FAIL;
  s.workers?.broadcast({ kind: 'writeback', on: s.device.writebackEnabled });
  return ACK_OK;
}

/** SET_BACKEND_REQ_FD (and -1 at teardown): closes the previous channel, if any. */
export function setBackendReqFd(s: BackendSession, fd: number): void {
  if (s.backendReqFd >= 0) closeFds([s.backendReqFd]);
  s.backendReqFd = fd;
}

/**
 * Tells QEMU the config space changed (VHOST_USER_BACKEND_CONFIG_CHANGE_MSG on the backend
 * channel); QEMU re-reads it with GET_CONFIG and raises a config interrupt in the guest.
 * Returns false when no backend channel was negotiated.
 */
export function notifyConfigChange(s: BackendSession): boolean {
  if (s.backendReqFd < 0) return false;
  try {
    const sent = native.sendMsg(s.backendReqFd, encodeRequest(BackendReq.CONFIG_CHANGE_MSG, new Uint8Array(0)), []);
    return sent !== null;
  } catch (err) {
    s.log.warn({ err }, 'config change notification failed');
    return false;
  }
}
