/**
 * Operator view of an image's exclusive lock: who holds it, and breaking the lock of a holder
 * that is alive but must be stopped (a hung host) — RBD's `rbd lock ls` / `rbd lock rm`
 * (docs/images.md §Breaking a lock; CLI `strata image lock ls|break`).
 *
 * ```
 *  read:   header [stat, getattr fence, getattr lock.strata_lock] (FAILOK) → E, holders H
 *  break:  pick h in H (--holder, or the only one; none → NOT_FOUND not_locked)
 *          osd blocklist add h.client → epoch B; requireEpoch(B); wait for map ≥ B
 *          header [assert_attr fence == E, break_lock h.client h.cookie, setattr fence = E+1]
 * ```
 *
 * Why blocklist first: the holder is alive, so it may have writes in flight or issue more
 * until its lease lapses locally. Every op of the break carries mapEpoch ≥ B, so the header's
 * primary (and every OSD we touch afterwards) refuses h's ops before it runs ours.
 * Why the fence assertion: the lock may change hands between the read and the break (a
 * takeover bumps the fence); then the vector fails CANCELLED and breaks nothing of the new
 * holder. Why the fence bump: h's renewal asserts `fence == its epoch`, so even once its
 * blocklist entry expired (1 h) a woken holder finds its lock lost instead of re-taking it.
 */
import type { Logger } from 'pino';
import { ClusterError } from '../common/errors.js';
import type { PoolId } from '../common/ids.js';
import type { Env } from '../env/env.js';
import { ASSERT_F_ABSENT, LOCK_ATTR_PREFIX, OSD_FLAG_FAILOK, decodeLockState } from '../osd/osd-protocol.js';
import type { OsdOp } from '../osd/osd-protocol.js';
import { FENCE_ATTR, LOCK_NAME, decodeFence, encodeFence } from './image-format.js';
import type { Objecter } from './objecter.js';

export interface LockHolderInfo {
  /** Client instance (`entity/nonce`), the name `osd blocklist` takes. */
  client: string;
  cookie: string;
  /** Lease end on the header primary's wall clock (ms); 0 = no expiry. */
  expiresMs: number;
  /** Lapsed by this client's wall clock (the primary's clock decides; skew applies). */
  expired: boolean;
}

export interface ImageLockInfo {
  lockName: string;
  exclusive: boolean;
  /** The fencing epoch of the last lock acquisition (or break); 0 = never locked. */
  fenceEpoch: number;
  holders: LockHolderInfo[];
}

export interface BreakLockResult {
  holder: string;
  cookie: string;
  /** Whether the holder's lease had already lapsed (by our clock) when it was broken. */
  wasExpired: boolean;
  /** The map epoch that lists the holder as blocklisted. */
  blocklistEpoch: number;
  previousFenceEpoch: number;
  fenceEpoch: number;
}

export interface LockAdminTarget {
  env: Env;
  log: Logger;
  objecter: Objecter;
  pool: PoolId;
  /** Image name (messages only). */
  image: string;
  header: string;
}

function lockError(code: 'CLU_ERR_NOT_FOUND' | 'CLU_ERR_INVALID' | 'CLU_ERR_BUSY', reason: string, message: string, details: Record<string, unknown> = {}): ClusterError {
  return new ClusterError(code, message, { details: { ...details, reason } });
}

/** Reads the lock state of an image header (`CLU_ERR_NOT_FOUND` when the header is missing). */
export function readImageLock(t: LockAdminTarget, cb: (err: ClusterError | null, info?: ImageLockInfo) => void): void {
  const ops: OsdOp[] = [{ op: 'stat' }, { op: 'getattr', name: FENCE_ATTR }, { op: 'getattr', name: LOCK_ATTR_PREFIX + LOCK_NAME }];
  t.objecter.submit({ pool: t.pool, objectName: t.header, ops, flags: OSD_FLAG_FAILOK }, (err, res) => {
    if (err !== null || res === undefined) { cb(err ?? new ClusterError('CLU_ERR_IO', 'no reply')); return; }
    const [st, fence, lock] = res.reply.outs;
    if (st === undefined || st.result !== 0) { cb(new ClusterError('CLU_ERR_NOT_FOUND', `image ${t.image}: header ${t.header} missing`)); return; }
    let fenceEpoch = 0;
    let exclusive = true;
    let holders: LockHolderInfo[] = [];
    try {
      if (fence?.kind === 'attr' && fence.result === 0) fenceEpoch = decodeFence(fence.value);
      if (lock?.kind === 'attr' && lock.result === 0) {
        const s = decodeLockState(lock.value);
        const now = t.env.wallMs();
        exclusive = s.exclusive;
        holders = s.holders.map((h) => ({ client: h.client, cookie: h.cookie, expiresMs: h.expiresMs, expired: h.expiresMs !== 0 && h.expiresMs <= now }));
      }
    } catch (e) {
      cb(new ClusterError('CLU_ERR_DECODE', `image ${t.image}: bad lock or fence attribute`, { cause: e }));
      return;
    }
    cb(null, { lockName: LOCK_NAME, exclusive, fenceEpoch, holders });
  });
}

/**
 * Breaks the lock of `holder` (or of the only holder): blocklists its client instance, waits
 * for that map epoch, then removes its lock and bumps the fencing epoch in one fenced vector.
 */
export function breakImageLock(t: LockAdminTarget, holder: string | undefined, cb: (err: ClusterError | null, r?: BreakLockResult) => void): void {
  readImageLock(t, (err, info) => {
    if (err !== null || info === undefined) { cb(err); return; }
    const current = info.holders.map((h) => h.client);
    if (info.holders.length === 0) { cb(lockError('CLU_ERR_NOT_FOUND', 'not_locked', `image ${t.image} is not locked`)); return; }
    const picked = holder === undefined ? info.holders : info.holders.filter((h) => h.client === holder);
    if (picked.length === 0) {
      cb(lockError('CLU_ERR_NOT_FOUND', 'holder_mismatch', `image ${t.image} is not locked by ${holder ?? '?'} (holder: ${current.join(', ')})`, { holders: current }));
      return;
    }
    if (picked.length > 1) {
      cb(lockError('CLU_ERR_INVALID', 'ambiguous_holder', `image ${t.image} has ${picked.length} lock holders (${current.join(', ')}): name one with --holder`, { holders: current }));
      return;
    }
    const h = picked[0]!;
    if (h.client === t.objecter.clientId) {
      cb(lockError('CLU_ERR_INVALID', 'own_lock', `the lock of ${t.image} is held by this client instance (${h.client}); close the image instead`));
      return;
    }
    t.log.warn({ image: t.image, holder: h.client, cookie: h.cookie, fenceEpoch: info.fenceEpoch }, 'breaking an image lock: blocklisting its holder');
    t.objecter.blocklist(h.client, (err2, epoch) => {
      if (err2 !== null || epoch === undefined) { cb(err2 ?? new ClusterError('CLU_ERR_IO', 'blocklist: no epoch')); return; }
      t.objecter.requireEpoch(epoch);
      t.objecter.waitForEpoch(epoch, (err3) => {
        if (err3 !== null) { cb(err3); return; }
        const E = info.fenceEpoch;
        const ops: OsdOp[] = [
          E === 0
            ? { op: 'assert_attr', name: FENCE_ATTR, value: new Uint8Array(0), mode: ASSERT_F_ABSENT }
            : { op: 'assert_attr', name: FENCE_ATTR, value: encodeFence(E), mode: 0 },
          { op: 'break_lock', name: LOCK_NAME, client: h.client, cookie: h.cookie },
          { op: 'setattr', name: FENCE_ATTR, value: encodeFence(E + 1) },
        ];
        t.objecter.submit({ pool: t.pool, objectName: t.header, ops }, (err4) => {
          if (err4?.code === 'CLU_ERR_CANCELLED') {
            cb(lockError('CLU_ERR_BUSY', 'lock_changed', `the lock of ${t.image} changed hands while breaking it (fencing epoch no longer ${E}); ${h.client} stays blocklisted; run 'image lock ls' again`, { holder: h.client, blocklistEpoch: epoch }));
            return;
          }
          if (err4?.code === 'CLU_ERR_NOT_FOUND') {
            cb(lockError('CLU_ERR_NOT_FOUND', 'not_locked', `${h.client} released the lock of ${t.image} before the break; it stays blocklisted`, { holder: h.client, blocklistEpoch: epoch }));
            return;
          }
          if (err4 !== null) { cb(err4); return; }
          t.log.warn({ image: t.image, holder: h.client, blocklistEpoch: epoch, fenceEpoch: E + 1 }, 'image lock broken');
          cb(null, { holder: h.client, cookie: h.cookie, wasExpired: h.expired, blocklistEpoch: epoch, previousFenceEpoch: E, fenceEpoch: E + 1 });
        });
      });
    });
  });
}
