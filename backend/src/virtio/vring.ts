/**
 * One virtqueue's full state as vhost-user configures it (rust-vmm `VringState`): the split
 * queue, its addresses, the kick/call/err eventfds and the poller on the kick fd.
 *
 * Lifecycle (vhost-user.rst "Ring states"):
 *
 *   SET_VRING_NUM/ADDR/BASE ──► configured ──SET_VRING_KICK──► started ──GET_VRING_BASE──► stopped
 *                                  ▲ enabled by SET_VRING_ENABLE 1 (or from the start when
 *                                  │ VHOST_USER_F_PROTOCOL_FEATURES is not negotiated)
 *
 * Node does eventfd reads and writes itself (`fs.readSync/writeSync` with 8 bytes); only the
 * poll on the kick fd is native.
 */
import fs from 'node:fs';
import * as native from '../../../native/index.js';
import type { QueueInflight } from './inflight.js';
import { SplitQueue, type QueueAddresses } from './split-queue.js';

const ONE_U64_LE = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);
const scratch8 = new Uint8Array(8);

export class Vring {
  queue: SplitQueue | null = null;
  size = 0;
  addrs: QueueAddresses | null = null;
  /** Frontend-VA addresses as received; re-translated when the memory table changes. */
  frontendAddrs: { desc: number; avail: number; used: number } | null = null;
  base = 0;
  kickFd = -1;
  callFd = -1;
  errFd = -1;
  enabled = false;
  started = false;
  /** Requests popped from this ring and not yet completed. */
  inflight = 0;
  /** This ring's part of the shared inflight region (INFLIGHT_SHMFD), if negotiated. */
  inflightState: QueueInflight | null = null;
  /** The ring runs in a queue worker, which owns its kick and call fds meanwhile. */
  inWorker = false;
  /** A completion was added since the last call signal. */
  notifyPending = false;
  /** Callbacks waiting for `inflight` to reach 0 (GET_VRING_BASE, disconnect). */
  private idleWaiters: (() => void)[] = [];
  private poller: native.Poller | null = null;

  constructor(readonly index: number) {}

  /** Accounts one finished request; wakes idle waiters at zero. */
  requestDone(): void {
    this.inflight--;
    if (this.inflight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Calls `cb` once no request popped from this ring is in flight. */
  whenIdle(cb: () => void): void {
    if (this.inflight === 0) cb();
    else this.idleWaiters.push(cb);
  }

  /** Starts polling the kick fd; `onKick` runs on every readiness event. */
  startPolling(onKick: () => void): void {
    this.stopPolling();
    if (this.kickFd < 0) return;
    const poller = new native.Poller(this.kickFd, (status) => {
      if (status < 0) return; // Why: an error on an eventfd poll only means "check again later".
      onKick();
    });
    poller.start(native.READABLE);
    this.poller = poller;
  }

  stopPolling(): void {
    if (this.poller !== null) {
      this.poller.close();
      this.poller = null;
    }
  }

  /** Consumes the eventfd counter. EAGAIN is a spurious wake-up, which libuv allows. */
  drainKick(): void {
    try {
      fs.readSync(this.kickFd, scratch8, 0, 8, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }

  /**
   * Signals the driver through the call eventfd. Returns the error when the fd cannot be
   * written (the front-end sent something that is not a writable eventfd): that fd is then
   * dropped, since throwing here (a setImmediate or teardown) would take the daemon down.
   */
  signalCall(): Error | null {
    if (this.callFd < 0) return null;
    try {
      fs.writeSync(this.callFd, ONE_U64_LE, 0, 8, null);
    } catch (err) {
      // EAGAIN: the counter is saturated; the driver will see it anyway.
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return null;
      this.setFd('call', -1);
      return err as Error;
    }
    return null;
  }

  /** Replaces one of the eventfds, closing the previous one (close order: poller first). */
  setFd(kind: 'kick' | 'call' | 'err', fd: number): void {
    if (kind === 'kick') {
      this.stopPolling();
      closeQuietly(this.kickFd);
      this.kickFd = fd;
    } else if (kind === 'call') {
      closeQuietly(this.callFd);
      this.callFd = fd;
    } else {
      closeQuietly(this.errFd);
      this.errFd = fd;
    }
  }

  /** Stops processing; keeps fds (GET_VRING_BASE). */
  stop(): void {
    this.stopPolling();
    this.started = false;
  }

  /** The ring's worker stopped it and handed its call fd back (it closed the kick fd). */
  backFromWorker(callFd: number): void {
    this.inWorker = false;
    this.started = false;
    this.callFd = callFd;
    this.kickFd = -1;
  }

  /** Releases every fd (connection closed or RESET_OWNER). */
  reset(): void {
    this.stop();
    // Why: completions of the last loop turn may not have been signalled yet.
    if (this.notifyPending) this.signalCall();
    for (const fd of [this.kickFd, this.callFd, this.errFd]) closeQuietly(fd);
    this.kickFd = this.callFd = this.errFd = -1;
    // Why: no unbind; requests still in flight complete through the queue object they
    // captured, whose views stay valid while their memory generation is pinned.
    this.queue = null;
    this.inflightState = null;
    this.addrs = null;
    this.frontendAddrs = null;
    this.size = 0;
    this.base = 0;
    this.enabled = false;
    this.inWorker = false;
    this.notifyPending = false;
  }
}

function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    fs.closeSync(fd);
  } catch {
    // Why: the fd came from the front-end; closing a stale one must not take us down.
  }
}
