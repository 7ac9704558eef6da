/**
 * Feature bits: virtio device/transport bits, the vhost-user bit that gates protocol
 * features, and the vhost-user protocol feature bits. 64-bit masks are the one place we use
 * `bigint` (GUIDE §2 "Number types").
 *
 * Names are the spec's (VIRTIO 1.2 §6 "Reserved Feature Bits", §5.2.3; QEMU
 * docs/interop/vhost-user.rst "Protocol features").
 */

export const bit = (n: number): bigint => 1n << BigInt(n);

/** virtio-blk device feature bits (VIRTIO 1.2 §5.2.3). */
export const VIRTIO_BLK_F_SIZE_MAX = bit(1);
export const VIRTIO_BLK_F_SEG_MAX = bit(2);
export const VIRTIO_BLK_F_GEOMETRY = bit(4);
export const VIRTIO_BLK_F_RO = bit(5);
export const VIRTIO_BLK_F_BLK_SIZE = bit(6);
export const VIRTIO_BLK_F_FLUSH = bit(9);
export const VIRTIO_BLK_F_TOPOLOGY = bit(10);
export const VIRTIO_BLK_F_CONFIG_WCE = bit(11);
export const VIRTIO_BLK_F_MQ = bit(12);
export const VIRTIO_BLK_F_DISCARD = bit(13);
export const VIRTIO_BLK_F_WRITE_ZEROES = bit(14);

/** Transport feature bits (VIRTIO 1.2 §6). */
export const VIRTIO_F_NOTIFY_ON_EMPTY = bit(24);
export const VIRTIO_RING_F_INDIRECT_DESC = bit(28);
export const VIRTIO_RING_F_EVENT_IDX = bit(29);
export const VIRTIO_F_VERSION_1 = bit(32);
export const VIRTIO_F_RING_PACKED = bit(34);

/** vhost-user: set in GET_FEATURES when GET/SET_PROTOCOL_FEATURES are supported. */
export const VHOST_USER_F_PROTOCOL_FEATURES = bit(30);
/** vhost: dirty page logging for live migration (not offered yet). */
export const VHOST_F_LOG_ALL = bit(26);

/** vhost-user protocol feature bits (vhost-user.rst "Protocol features"). */
export const VHOST_USER_PROTOCOL_F_MQ = bit(0);
export const VHOST_USER_PROTOCOL_F_LOG_SHMFD = bit(1);
export const VHOST_USER_PROTOCOL_F_REPLY_ACK = bit(3);
export const VHOST_USER_PROTOCOL_F_BACKEND_REQ = bit(5);
export const VHOST_USER_PROTOCOL_F_CONFIG = bit(9);
export const VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD = bit(10);
export const VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD = bit(12);
export const VHOST_USER_PROTOCOL_F_RESET_DEVICE = bit(13);
export const VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS = bit(15);
export const VHOST_USER_PROTOCOL_F_STATUS = bit(16);

/** True when every bit of `mask` is set in `features`. */
export function hasFeature(features: bigint, mask: bigint): boolean {
  return (features & mask) === mask;
}

/** Names of the set bits, for logs. */
export function featureBits(features: bigint): number[] {
  const bits: number[] = [];
  for (let i = 0; i < 64; i++) if ((features >> BigInt(i)) & 1n) bits.push(i);
  return bits;
}
