/**
 * Messages between the main thread (vhost-user protocol) and queue workers (request
 * processing). Plain objects over `postMessage`; fds travel as numbers (one process).
 *
 * Fd ownership, the rule that keeps a worker from ever touching a closed or re-used fd:
 *  - memory and inflight fds stay open in the main thread until every worker acked mapping;
 *  - a started ring's kick and call fds belong to its worker: `start` hands them over,
 *    `set-call` replaces the call fd (the worker closes the old one), and `stopped` hands the
 *    call fd back (the worker closes the kick fd).
 */
import type { BlkDeviceStats } from '../blk/device.js';
import type { MemoryRegionDesc } from '../vhost-user/message.js';

export interface WorkerInit {
  workerIndex: number;
  filePath: string;
  readOnly: boolean;
  direct: boolean;
  io: 'sync' | 'async' | 'auto';
  numQueues: number;
  serial: string;
  writeback: boolean;
  logLevel: string;
}

export type ToWorker =
  | { kind: 'memory'; generation: number; regions: (MemoryRegionDesc & { fd: number })[] }
  | { kind: 'inflight'; fd: number; mmapSize: number; mmapOffset: number; numQueues: number; queueSize: number; queueRegionBytes: number }
  | { kind: 'features'; features: string }
  | {
      kind: 'start';
      index: number;
      size: number;
      descGpa: number;
      availGpa: number;
      usedGpa: number;
      nextAvail: number;
      nextUsed: number;
      eventIdx: boolean;
      kickFd: number;
      callFd: number;
      resubmit: number[];
    }
  | { kind: 'set-call'; index: number; fd: number }
  | { kind: 'stop'; index: number }
  | { kind: 'capacity'; sizeBytes: number }
  | { kind: 'writeback'; on: boolean }
  | { kind: 'reset' }
  | { kind: 'stats' };

export type FromWorker =
  | { kind: 'ready' }
  | { kind: 'memory-mapped'; generation: number; error?: string }
  | { kind: 'inflight-mapped'; error?: string }
  | { kind: 'stopped'; index: number; nextAvail: number; callFd: number }
  | { kind: 'reset-done' }
  | { kind: 'broken'; code: string; message: string }
  | { kind: 'stats'; stats: BlkDeviceStats; inflight: number };
