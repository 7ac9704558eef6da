/**
 * struct virtio_blk_config (VIRTIO 1.2 §5.2.4), little-endian:
 *
 *   0 le64 capacity            24 topology (8 B)            44 le32 discard_sector_alignment
 *   8 le32 size_max            32 u8 writeback              48 le32 max_write_zeroes_sectors
 *  12 le32 seg_max             33 u8 unused0                52 le32 max_write_zeroes_seg
 *  16 geometry (4 B)           34 le16 num_queues           56 u8 write_zeroes_may_unmap
 *  20 le32 blk_size            36 le32 max_discard_sectors  60.. secure erase, zoned (zeros)
 *                              40 le32 max_discard_seg
 *
 * plus the device feature set we offer.
 */
import {
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
} from '../vhost-user/features.js';

export const CONFIG_SPACE_BYTES = 96;
export const CONFIG_WRITEBACK_OFFSET = 32;

export interface BlkConfig {
  capacitySectors: number;
  sizeMaxBytes: number;
  segMax: number;
  blkSizeBytes: number;
  writeback: boolean;
  numQueues: number;
  maxDiscardSectors: number;
  maxDiscardSegments: number;
  discardSectorAlignment: number;
  maxWriteZeroesSectors: number;
  maxWriteZeroesSegments: number;
  writeZeroesMayUnmap: boolean;
}

/** Features offered for a device with the given options. */
export function blkDeviceFeatures(opts: { readOnly: boolean; numQueues: number }): bigint {
  let f =
    VIRTIO_F_VERSION_1 |
    VIRTIO_RING_F_INDIRECT_DESC |
    VIRTIO_RING_F_EVENT_IDX |
    VIRTIO_BLK_F_SIZE_MAX |
    VIRTIO_BLK_F_SEG_MAX |
    VIRTIO_BLK_F_BLK_SIZE |
    VIRTIO_BLK_F_FLUSH |
    VIRTIO_BLK_F_CONFIG_WCE |
    VIRTIO_BLK_F_MQ;
  if (opts.readOnly) f |= VIRTIO_BLK_F_RO;
  else f |= VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES;
  return f;
}

export function encodeBlkConfig(c: BlkConfig): Uint8Array {
  const out = new Uint8Array(CONFIG_SPACE_BYTES);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(c.capacitySectors), true);
  dv.setUint32(8, c.sizeMaxBytes, true);
  dv.setUint32(12, c.segMax, true);
  dv.setUint32(20, c.blkSizeBytes, true);
  // topology: physical_block_exp = log2(blk_size / 512); min/opt io size in blocks.
  dv.setUint8(24, Math.log2(c.blkSizeBytes / 512));
  dv.setUint16(26, 1, true);
  dv.setUint8(CONFIG_WRITEBACK_OFFSET, c.writeback ? 1 : 0);
  dv.setUint16(34, c.numQueues, true);
  dv.setUint32(36, c.maxDiscardSectors, true);
  dv.setUint32(40, c.maxDiscardSegments, true);
  dv.setUint32(44, c.discardSectorAlignment, true);
  dv.setUint32(48, c.maxWriteZeroesSectors, true);
  dv.setUint32(52, c.maxWriteZeroesSegments, true);
  dv.setUint8(56, c.writeZeroesMayUnmap ? 1 : 0);
  return out;
}
