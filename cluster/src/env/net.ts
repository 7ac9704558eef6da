/**
 * The network as the cluster core sees it: byte streams between addresses, callbacks only
 * (no Promises, so simulated runs stay deterministic). `real-net.ts` implements it over
 * `node:net`; the simulator implements it over its packet model.
 */

/** One connected byte stream. */
export interface NetSocket {
  /** "host:port" of the peer, for logs. */
  readonly remoteAddress: string;
  /**
   * Queues the chunks in order (a writev; no copies). Returns false when the kernel/socket
   * buffer is above its high-water mark: wait for `onDrain` before writing more.
   */
  write(chunks: readonly Uint8Array[]): boolean;
  /** Sets the data handler; chunks are owned by the receiver. */
  onData(cb: (chunk: Uint8Array) => void): void;
  onDrain(cb: () => void): void;
  /** Called once when the stream is closed for any reason; `err` when abnormal. */
  onClose(cb: (err: Error | undefined) => void): void;
  /** Closes the stream; `onClose` fires once. */
  close(): void;
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
  /** Connects to host:port. */
  connect(host: string, port: number, cb: (err: Error | null, socket?: NetSocket) => void): void;
}
