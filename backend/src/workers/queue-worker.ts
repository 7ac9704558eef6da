/**
 * A queue worker thread (`--workers N`): owns some of the device's virtqueues and runs their
 * requests on its own event loop, so a device's queues spread over cores. It maps guest
 * memory itself from the fds the main thread keeps open, polls its rings' kick eventfds and
 * signals their call eventfds, and opens the backing file itself. The vhost-user protocol
 * stays in the main thread; see protocol.ts for the messages and the fd-ownership rule.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import * as native from '../../../native/index.js';
import { BlkDevice } from '../blk/device.js';
import { FileStore } from '../block-store/file-store.js';
import type { MappedRegion } from '../memory/guest-memory.js';
import { mapRegion, MemoryTable } from '../memory/mapping.js';
import { ProtocolError } from '../vhost-user/errors.js';
import { recoverRing } from '../virtio/inflight.js';
import { SplitQueue } from '../virtio/split-queue.js';
import { Vring } from '../virtio/vring.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);
const log = pino({ level: init.logLevel, base: { daemon: 'vhost', worker: init.workerIndex } });
const store = FileStore.open(init.filePath, { readOnly: init.readOnly, direct: init.direct, io: init.io, serial: init.serial });
const memory = new MemoryTable();
const device = new BlkDevice({ store, numQueues: init.numQueues, log, writeback: init.writeback });
device.attach(memory);
device.on('broken', (err) => post({ kind: 'broken', code: err.code, message: err.message }));
const rings = new Map<number, Vring>();
/** Regions by identity, so a new table maps only what is new. */
let regions = new Map<string, MappedRegion>();
let inflight: { bytes: Uint8Array; mapping: ArrayBuffer; queueRegionBytes: number } | null = null;

const regionKey = (r: { gpaStart: number; sizeBytes: number; frontendVaStart: number }): string => `${r.gpaStart}:${r.sizeBytes}:${r.frontendVaStart}`;

function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    fs.closeSync(fd);
  } catch {
    // Why: already closed; nothing to do.
  }
}

function onMemory(m: Extract<ToWorker, { kind: 'memory' }>): void {
  const next = new Map<string, MappedRegion>();
  for (const desc of m.regions) {
    const key = regionKey(desc);
    const known = regions.get(key);
    if (known !== undefined) {
      next.set(key, known);
      continue;
    }
    const r = mapRegion(desc.fd, desc);
    if (r instanceof ProtocolError) return post({ kind: 'memory-mapped', generation: m.generation, error: r.message });
    next.set(key, r);
  }
  regions = next;
  const mem = memory.replace([...next.values()]);
  for (const v of rings.values()) if (v.queue !== null && v.addrs !== null) v.queue.bind(mem, v.addrs);
  post({ kind: 'memory-mapped', generation: m.generation });
}

function onInflight(m: Extract<ToWorker, { kind: 'inflight' }>): void {
  try {
    if (inflight !== null) native.unmap(inflight.mapping);
    const mapping = native.mapShared(m.fd, m.mmapSize, m.mmapOffset);
    inflight = { bytes: new Uint8Array(mapping), mapping, queueRegionBytes: m.queueRegionBytes };
    post({ kind: 'inflight-mapped' });
  } catch (err) {
    post({ kind: 'inflight-mapped', error: (err as Error).message });
  }
}

function onStart(m: Extract<ToWorker, { kind: 'start' }>): void {
  const mem = memory.current;
  const v = new Vring(m.index);
  v.size = m.size;
  v.addrs = { descGpa: m.descGpa, availGpa: m.availGpa, usedGpa: m.usedGpa };
  const queue = new SplitQueue(m.size);
  queue.eventIdx = m.eventIdx;
  if (mem === null || queue.bind(mem, v.addrs) !== null) {
    log.error({ queue: m.index }, 'ring outside the worker’s memory; not started');
    return;
  }
  queue.nextAvail = m.nextAvail;
  queue.nextUsed = m.nextUsed;
  v.queue = queue;
  v.kickFd = m.kickFd;
  v.callFd = m.callFd;
  v.enabled = true;
  v.started = true;
  let pending: number[] = [];
  if (inflight !== null) {
    const start = m.index * inflight.queueRegionBytes;
    const r = recoverRing(queue, inflight.bytes.subarray(start, start + inflight.queueRegionBytes));
    if (r instanceof Error) log.error({ queue: m.index, err: r }, 'inflight region does not match the ring');
    else {
      v.inflightState = r.state;
      pending = r.pending;
    }
  }
  rings.set(m.index, v);
  v.startPolling(() => {
    v.drainKick();
    device.processQueue(v);
  });
  if (pending.length > 0) {
    log.info({ queue: m.index, requests: pending.length }, 'resubmitting requests in flight before the reconnect');
    device.resubmit(v, pending);
  }
  device.processQueue(v);
}

function onStop(index: number): void {
  const v = rings.get(index);
  if (v === undefined) return post({ kind: 'stopped', index, nextAvail: -1, callFd: -1 });
  v.stop();
  v.whenIdle(() => {
    const queue = v.queue!;
    if (queue.bound && queue.needsNotification()) v.signalCall();
    closeQuietly(v.kickFd);
    rings.delete(index);
    post({ kind: 'stopped', index, nextAvail: queue.nextAvail, callFd: v.callFd });
  });
}

port.on('message', (m: ToWorker) => {
  switch (m.kind) {
    case 'memory':
      return onMemory(m);
    case 'inflight':
      return onInflight(m);
    case 'features':
      return device.setFeatures(BigInt(m.features));
    case 'start':
      return onStart(m);
    case 'set-call': {
      const v = rings.get(m.index);
      if (v === undefined) return closeQuietly(m.fd);
      closeQuietly(v.callFd);
      v.callFd = m.fd;
      return;
    }
    case 'stop':
      return onStop(m.index);
    case 'capacity':
      return device.setCapacity(m.sizeBytes);
    case 'writeback':
      return device.setWriteback(m.on);
    case 'reset':
      for (const v of rings.values()) v.stopPolling();
      rings.clear();
      memory.clear();
      regions = new Map();
      if (inflight !== null) native.unmap(inflight.mapping);
      inflight = null;
      return post({ kind: 'reset-done' });
    case 'stats': {
      let n = 0;
      for (const v of rings.values()) n += v.inflight;
      return post({ kind: 'stats', stats: device.stats, inflight: n });
    }
  }
});
post({ kind: 'ready' });
