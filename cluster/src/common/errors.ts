/**
 * Cluster-layer errors with stable string codes (undici style). Callers and tests branch on
 * `code`, never on message text (GUIDE §6). Control-plane code throws `ClusterError`; the data
 * path returns it as a value (`T | ClusterError`) instead of throwing.
 *
 * Why strings rather than numbers: they survive logs and JSON unchanged and `grep` finds both
 * the producer and the consumer. The wire encoding (messenger) maps each code to a fixed u16 via
 * `CLUSTER_ERROR_WIRE`, whose values must never be renumbered.
 */

/** Every stable cluster error code. Append only; never rename or remove. */
export const ClusterErrorCode = {
  /** An operation or wait exceeded its deadline. Timeouts fail loudly. */
  CLU_ERR_TIMEOUT: 'CLU_ERR_TIMEOUT',
  /** The sender's map epoch is older than the receiver's; fetch a newer map and retry. */
  CLU_ERR_EPOCH_STALE: 'CLU_ERR_EPOCH_STALE',
  /** Object, pool, OSD, key or entity does not exist. */
  CLU_ERR_NOT_FOUND: 'CLU_ERR_NOT_FOUND',
  /** Object, pool, OSD, key or entity already exists. */
  CLU_ERR_EXISTS: 'CLU_ERR_EXISTS',
  /** A request argument is out of range or malformed (caller bug, not corruption). */
  CLU_ERR_INVALID: 'CLU_ERR_INVALID',
  /** Authentication failed (bad key, bad signature, expired ticket). */
  CLU_ERR_AUTH: 'CLU_ERR_AUTH',
  /** Authenticated but not permitted (capabilities). */
  CLU_ERR_PERM: 'CLU_ERR_PERM',
  /** A wire or disk payload could not be decoded (truncated, bad version, bad CRC). */
  CLU_ERR_DECODE: 'CLU_ERR_DECODE',
  /** The local disk or a peer reported an I/O failure. */
  CLU_ERR_IO: 'CLU_ERR_IO',
  /** Out of space (disk full, pool quota). */
  CLU_ERR_NOSPC: 'CLU_ERR_NOSPC',
  /** Not enough replicas/OSDs/monitors to serve the request right now; retry later. */
  CLU_ERR_UNAVAILABLE: 'CLU_ERR_UNAVAILABLE',
  /** The connection or session was closed before a reply arrived. */
  CLU_ERR_CONN_CLOSED: 'CLU_ERR_CONN_CLOSED',
  /** The receiver is not the right target (not primary for the PG, not the leader). */
  CLU_ERR_WRONG_TARGET: 'CLU_ERR_WRONG_TARGET',
  /** The operation was cancelled by the caller or by shutdown. */
  CLU_ERR_CANCELLED: 'CLU_ERR_CANCELLED',
  /** Busy: a bounded queue or budget is full; back off and retry. */
  CLU_ERR_BUSY: 'CLU_ERR_BUSY',
  /** The request is well-formed but the feature is not supported by this peer/version. */
  CLU_ERR_UNSUPPORTED: 'CLU_ERR_UNSUPPORTED',
} as const;

/** Union of every stable cluster error code. */
export type ClusterErrorCode = (typeof ClusterErrorCode)[keyof typeof ClusterErrorCode];

/**
 * Fixed wire numbers for each code (0 is reserved for "ok"). Append only: a renumbering would
 * make old peers misread errors.
 */
export const CLUSTER_ERROR_WIRE: Readonly<Record<ClusterErrorCode, number>> = {
  CLU_ERR_TIMEOUT: 1,
  CLU_ERR_EPOCH_STALE: 2,
  CLU_ERR_NOT_FOUND: 3,
  CLU_ERR_EXISTS: 4,
  CLU_ERR_INVALID: 5,
  CLU_ERR_AUTH: 6,
  CLU_ERR_PERM: 7,
  CLU_ERR_DECODE: 8,
  CLU_ERR_IO: 9,
  CLU_ERR_NOSPC: 10,
  CLU_ERR_UNAVAILABLE: 11,
  CLU_ERR_CONN_CLOSED: 12,
  CLU_ERR_WRONG_TARGET: 13,
  CLU_ERR_CANCELLED: 14,
  CLU_ERR_BUSY: 15,
  CLU_ERR_UNSUPPORTED: 16,
};

const WIRE_TO_CODE: ReadonlyMap<number, ClusterErrorCode> = new Map(
  (Object.entries(CLUSTER_ERROR_WIRE) as [ClusterErrorCode, number][]).map(([code, n]) => [n, code]),
);

/** Returns the wire number of a code. */
export function clusterErrorToWire(code: ClusterErrorCode): number {
  return CLUSTER_ERROR_WIRE[code];
}

/** Returns the code for a wire number, or undefined when unknown (a newer peer's code). */
export function clusterErrorFromWire(n: number): ClusterErrorCode | undefined {
  return WIRE_TO_CODE.get(n);
}

/** Optional structured facts attached to an error (logged by pino's `err` serializer). */
export interface ClusterErrorOptions {
  /** The underlying error, if any (kept as standard `Error.cause`). */
  cause?: unknown;
  /** Extra machine-readable context, e.g. `{ epoch: 12, haveEpoch: 10 }`. */
  details?: Readonly<Record<string, unknown>>;
}

/** An expected cluster-layer failure with a stable `code`. */
export class ClusterError extends Error {
  readonly code: ClusterErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ClusterErrorCode, message: string, options: ClusterErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClusterError';
    this.code = code;
    this.details = options.details;
  }
}

/** True when `err` is a `ClusterError`, optionally with the given code. */
export function isClusterError(err: unknown, code?: ClusterErrorCode): err is ClusterError {
  if (!(err instanceof ClusterError)) return false;
  return code === undefined || err.code === code;
}

/** Shorthand constructor: `clusterError('CLU_ERR_NOT_FOUND', 'pool 3')`. */
export function clusterError(
  code: ClusterErrorCode,
  message: string,
  options: ClusterErrorOptions = {},
): ClusterError {
  return new ClusterError(code, message, options);
}

/**
 * Maps a Node-style SystemError code (`ENOENT`, `ENOSPC`, …) from `env.disk` to a cluster
 * code. Why: the disk layer speaks errno, the cluster API speaks `CLU_ERR_*`.
 */
export function clusterCodeFromErrno(errno: string | undefined): ClusterErrorCode {
  switch (errno) {
    case 'ENOENT': return 'CLU_ERR_NOT_FOUND';
    case 'EEXIST': return 'CLU_ERR_EXISTS';
    case 'ENOSPC': case 'EDQUOT': return 'CLU_ERR_NOSPC';
    case 'EACCES': case 'EPERM': return 'CLU_ERR_PERM';
    case 'EINVAL': return 'CLU_ERR_INVALID';
    case 'ETIMEDOUT': return 'CLU_ERR_TIMEOUT';
    case 'ECONNREFUSED': case 'ECONNRESET': case 'EPIPE': return 'CLU_ERR_CONN_CLOSED';
    case 'EAGAIN': case 'EBUSY': return 'CLU_ERR_BUSY';
    default: return 'CLU_ERR_IO';
  }
}
