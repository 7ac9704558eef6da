/**
 * Errors of the vhost-user layer and below, each with a stable `code` (undici style; tests
 * assert on the code, never on the text). A `ProtocolError` closes the connection; a
 * `QueueError` marks one device broken (GUIDE §6).
 */
export type ProtocolErrorCode =
  | 'VHU_ERR_BAD_HEADER'
  | 'VHU_ERR_BAD_SIZE'
  | 'VHU_ERR_BAD_PAYLOAD'
  | 'VHU_ERR_UNEXPECTED_FDS'
  | 'VHU_ERR_MISSING_FD'
  | 'VHU_ERR_UNKNOWN_REQUEST'
  | 'VHU_ERR_BAD_QUEUE_INDEX'
  | 'VHU_ERR_BAD_STATE'
  | 'VHU_ERR_FEATURES'
  | 'VHU_ERR_MEMORY'
  | 'VHU_ERR_SOCKET';

export class ProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ProtocolError';
  }
}

export type QueueErrorCode =
  | 'VQ_ERR_AVAIL_IDX_JUMP'
  | 'VQ_ERR_BAD_HEAD'
  | 'VQ_ERR_BAD_RING_ADDRESS'
  | 'VQ_ERR_NOT_READY'
  | 'VQ_ERR_TOO_MANY_INFLIGHT';

export class QueueError extends Error {
  constructor(
    readonly code: QueueErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'QueueError';
  }
}
