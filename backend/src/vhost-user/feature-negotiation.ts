/**
 * Feature negotiation: GET/SET_FEATURES (the device's virtio features plus
 * VHOST_USER_F_PROTOCOL_FEATURES) and GET/SET_PROTOCOL_FEATURES. Acking anything not offered
 * is VHU_ERR_FEATURES.
 */
import { ProtocolError } from './errors.js';
import * as f from './features.js';
import { decodeU64, encodeU64 } from './message.js';
import { ACK_OK, reply, type BackendSession, type Outcome } from './outcome.js';

/** Protocol features we offer. */
export const OFFERED_PROTOCOL_FEATURES =
  f.VHOST_USER_PROTOCOL_F_MQ |
  f.VHOST_USER_PROTOCOL_F_REPLY_ACK |
  f.VHOST_USER_PROTOCOL_F_BACKEND_REQ |
  f.VHOST_USER_PROTOCOL_F_CONFIG |
  f.VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD |
  f.VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS;

/** The virtio features we offer: the device's, plus the vhost-user protocol-features bit. */
const offeredFeatures = (s: BackendSession): bigint => s.device.deviceFeatures | f.VHOST_USER_F_PROTOCOL_FEATURES;

export function getFeatures(s: BackendSession): Outcome {
  return reply(encodeU64(offeredFeatures(s)));
}

export function setFeatures(s: BackendSession, p: Uint8Array): Outcome {
  const v = decodeU64(p);
  if (v instanceof ProtocolError) return v;
  const offered = offeredFeatures(s);
  if ((v & ~offered) !== 0n) return new ProtocolError('VHU_ERR_FEATURES', `front-end acked features not offered: 0x${(v & ~offered).toString(16)}`);
  s.ackedFeatures = v;
  s.device.setFeatures(v);
  s.workers?.broadcast({ kind: 'features', features: v.toString() });
  // vhost-user.rst "Ring states": without PROTOCOL_FEATURES rings start enabled.
  if (!f.hasFeature(v, f.VHOST_USER_F_PROTOCOL_FEATURES)) for (const ring of s.vrings) ring.enabled = true;
  for (const ring of s.vrings) if (ring.queue) ring.queue.eventIdx = f.hasFeature(v, f.VIRTIO_RING_F_EVENT_IDX);
  s.log.info({ features: `0x${v.toString(16)}` }, 'features negotiated');
  return ACK_OK;
}

export function getProtocolFeatures(): Outcome {
  return reply(encodeU64(OFFERED_PROTOCOL_FEATURES));
}

export function setProtocolFeatures(s: BackendSession, p: Uint8Array): Outcome {
  const v = decodeU64(p);
  if (v instanceof ProtocolError) return v;
  if ((v & ~OFFERED_PROTOCOL_FEATURES) !== 0n) return new ProtocolError('VHU_ERR_FEATURES', `protocol features not offered: 0x${(v & ~OFFERED_PROTOCOL_FEATURES).toString(16)}`);
  s.ackedProtocolFeatures = v;
  return ACK_OK;
}
