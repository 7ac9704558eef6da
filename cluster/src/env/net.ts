/**
 * The network as the cluster core sees it: byte streams between addresses, callbacks only
 * (no Promises, so simulated runs stay deterministic). `real-net.ts` implements it over
 * `node:net`; the simulator implements it over its packet model.
 *
 * Contract every implementation keeps (the messenger relies on it):
 * - Callbacks are never invoked synchronously from inside the call that registered them or
 *   that caused them (`write`, `close`, `connect`, `listen`).
 * - Bytes arrive in order, exactly once, until close; chunk boundaries are arbitrary.
 * - Errors are Node-style: `err.code` is the errno name. A refused connect reports
 *   `code: 'ECONNREFUSED'` (the monitor marks an OSD down at once on it, as Ceph does).
 * - `onClose` fires exactly once per socket, after which no `onData`/`onDrain` fires.
 */

/** A Node-style network error (`code` = `ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`, …). */
export interface NetError extends Error {
  code?: string;
}

/** One connected byte stream. */
export interface NetSocket {
  /** "host:port" of the peer, for logs. */
  readonly remoteAddress: string;
  /**
   * Queues the chunks in order (a writev; no copies). Returns false when the kernel/socket
   * buffer is above its high-water mark: wait for `onDrain` before writing more.
   */
  write(chunks: readonly Uint8Array[]): boolean;
  /**
   * Sets the data handler; chunks are owned by the receiver. `readTarget`, when given, is asked
   * before each read where the next bytes may go directly: a view the receiver owns (e.g. the
   * rest of a big frame's data buffer), or null for the usual chunk. The chunk passed to `cb`
   * is then a prefix of that view, already in place. A Net that cannot read into it ignores it.
   */
  onData(cb: (chunk: Uint8Array) => void, readTarget?: () => Uint8Array | null): void;
  onDrain(cb: () => void): void;
  /** Called once when the stream is closed for any reason; `err` when abnormal. */
  onClose(cb: (err: Error | undefined) => void): void;
  /**
   * Closes the stream gracefully: bytes already accepted by `write` are still sent, then the
   * stream ends. `onClose` fires once. Idempotent.
   */
  close(): void;
  /** Closes at once, discarding unsent bytes (used after a protocol violation). Idempotent. */
  destroy(): void;
}

export interface NetServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  close(): void;
}

export interface Net {
  /** Listens on host:port (port 0 = any). `onConnection` is called for every accepted stream. */
  listen(
    host: string,
    port: number,
    onConnection: (socket: NetSocket) => void,
    cb: (err: Error | null, server?: NetServer) => void,
  ): void;
  /** Connects to host:port. On failure `err.code` says why (`ECONNREFUSED`, …). */
  connect(host: string, port: number, cb: (err: NetError | null, socket?: NetSocket) => void): void;
}
