/**
 * The image's exclusive lock with a lease, and its fencing epoch (docs/images.md §Lock).
 *
 * ```
 *  acquire:  [getattr fence, getattr lock.strata_lock] (FAILOK) → E, previous holders H
 *            [lock strata_lock cookie lease, assert_attr fence == E (absent if none), setattr fence = E+1]
 *            (one atomic vector on the header: the lock and the epoch bump cannot be separated)
 *  takeover: H non-empty (their lease expired on the primary, else the lock was BUSY):
 *            osd blocklist add h for each h in H → epoch B; objecter.requireEpoch(B); wait for
 *            map ≥ B; only then held. Every OSD makes our ops wait for their mapEpoch (≥ B), so
 *            each OSD we touch refuses the old holder's ops before it runs any of ours.
 *  renew:    every lease/3: [lock (same client+cookie renews), assert_attr fence == mine]
 *  lost:     renew answered BUSY or CANCELLED (someone else holds it / bumped the epoch) → fenced
 *  local:    writes are issued only while now < (send time of the last good renew) + lease − lease/10
 * ```
 *
 * Fencing of data objects is done by the image (image.ts `stampedWrite`): every data write
 * asserts the object's `fence` attr equals our epoch, restamping objects whose stamp is older
 * or absent, and refusing (fenced) when it is newer. A writer that lost its lease therefore
 * cannot change an object the new owner has written; it stops issuing writes at all once its
 * lease has lapsed by its own monotonic clock; and after a takeover the OSDs refuse it
 * outright (blocklisted), even on objects the new owner never wrote (docs/images.md §Takeover).
 * A lock of our own instance (same Objecter) is never blocklisted: the fence stamps cover it.
 */
import type { Logger } from 'pino';
import { ClusterError } from '../common/errors.js';
import type { PoolId } from '../common/ids.js';
import type { Env, TimerHandle } from '../env/env.js';
import { ASSERT_F_ABSENT, LOCK_ATTR_PREFIX, OSD_FLAG_FAILOK, decodeLockState } from '../osd/osd-protocol.js';
import type { OsdOp } from '../osd/osd-protocol.js';
import { FENCE_ATTR, LOCK_NAME, decodeFence, encodeFence } from './image-format.js';
import type { Objecter } from './objecter.js';

export interface ImageLockOptions {
  env: Env;
  log: Logger;
  objecter: Objecter;
  pool: PoolId;
  header: string;
  /** Lease length (default 30 s); renewed every third of it. */
  leaseMs: number;
  /** Called once when the lock is found lost (the image is then fenced). */
  onLost: (err: ClusterError) => void;
}

export type LockState = 'unlocked' | 'held' | 'lost';

/** The error every write of a fenced image gets. */
export function fencedError(why: string): ClusterError {
  return new ClusterError('CLU_ERR_PERM', `image lock lost (fenced): ${why}`, { details: { reason: 'fenced' } });
}

/** True for the error the OSDs (or our own map) give a blocklisted client instance. */
export function isBlocklistedError(err: ClusterError | null): boolean {
  return err !== null && err.code === 'CLU_ERR_PERM' && err.details?.['reason'] === 'blocklisted';
}

/** Lock holders in a `lock.<name>` attr value (a corrupt value reads as none, as on the OSD). */
function holdersOf(value: Uint8Array | undefined): string[] {
  if (value === undefined) return [];
  try {
    return decodeLockState(value).holders.map((h) => h.client);
  } catch {
    return [];
  }
}

export class ImageLock {
  state: LockState = 'unlocked';
  /** Our fencing epoch (valid while held). */
  epoch = 0;
  readonly cookie: string;
  private validUntilMs = 0;
  private timer: TimerHandle | null = null;
  private renewing = false;
  private paused = false;

  constructor(private readonly o: ImageLockOptions) {
    this.cookie = Buffer.from(o.env.rng.bytes(8)).toString('hex');
  }

  /** True while writes may be issued (held, and the lease has not lapsed locally). */
  valid(): boolean {
    return this.state === 'held' && this.o.env.nowMs() < this.validUntilMs;
  }

  /** Takes the lock and bumps the fencing epoch; `CLU_ERR_BUSY` when another client holds it. */
  acquire(cb: (err: ClusterError | null) => void, triesLeft = 5): void {
    const { objecter, pool, header } = this.o;
    const getattrs: OsdOp[] = [{ op: 'getattr', name: FENCE_ATTR }, { op: 'getattr', name: LOCK_ATTR_PREFIX + LOCK_NAME }];
    objecter.submit({ pool, objectName: header, ops: getattrs, flags: OSD_FLAG_FAILOK }, (err, res) => {
      if (err !== null && err.code !== 'CLU_ERR_NOT_FOUND') { cb(err); return; }
      const out = res?.reply.outs[0];
      const old = out !== undefined && out.kind === 'attr' && out.result === 0 ? decodeFence(out.value) : undefined;
      const lockOut = res?.reply.outs[1];
      // The fence assertion below ties this read to the lock we take: had anyone locked since,
      // E would have moved and the vector fails CANCELLED (we re-read).
      const previous = holdersOf(lockOut !== undefined && lockOut.kind === 'attr' && lockOut.result === 0 ? lockOut.value : undefined)
        .filter((c) => c !== objecter.clientId);
      const next = (old ?? 0) + 1;
      const sentMs = this.o.env.nowMs();
      const ops: OsdOp[] = [
        { op: 'lock', name: LOCK_NAME, cookie: this.cookie, durationMs: this.o.leaseMs, exclusive: true },
        old === undefined
          ? { op: 'assert_attr', name: FENCE_ATTR, value: new Uint8Array(0), mode: ASSERT_F_ABSENT }
          : { op: 'assert_attr', name: FENCE_ATTR, value: encodeFence(old), mode: 0 },
        { op: 'setattr', name: FENCE_ATTR, value: encodeFence(next) },
      ];
      objecter.submit({ pool, objectName: header, ops }, (err2) => {
        if (err2?.code === 'CLU_ERR_CANCELLED' && triesLeft > 1) { this.acquire(cb, triesLeft - 1); return; } // Raced a bump.
        if (err2 !== null) {
          cb(err2.code === 'CLU_ERR_BUSY' ? new ClusterError('CLU_ERR_BUSY', 'image is locked by another writer', { cause: err2 }) : err2);
          return;
        }
        this.fencePrevious([...new Set(previous)], (err3) => {
          if (err3 !== null) {
            // We hold the lock but could not fence the old holder: give the lock back.
            this.o.log.error({ err: err3, previous, header }, 'could not blocklist the previous lock holder; not taking over');
            objecter.submit({ pool, objectName: header, ops: [{ op: 'unlock', name: LOCK_NAME, cookie: this.cookie }] }, () => cb(err3));
            return;
          }
          this.state = 'held';
          this.epoch = next;
          this.validUntilMs = sentMs + this.o.leaseMs - Math.floor(this.o.leaseMs / 10);
          this.o.log.info({ epoch: next, header, tookOverFrom: previous }, 'image lock acquired');
          this.schedule();
          cb(null);
        });
      });
    });
  }

  /**
   * Takeover: blocklists each previous holder, then holds our ops until our map has the
   * blocklist epoch (and waits for it), so no OSD runs our ops before it refuses theirs.
   */
  private fencePrevious(previous: string[], cb: (err: ClusterError | null) => void): void {
    if (previous.length === 0) { this.o.env.setImmediate(() => cb(null)); return; }
    const { objecter } = this.o;
    let maxEpoch = 0;
    const next = (i: number): void => {
      if (i === previous.length) {
        objecter.requireEpoch(maxEpoch);
        objecter.waitForEpoch(maxEpoch, cb);
        return;
      }
      objecter.blocklist(previous[i]!, (err, epoch) => {
        if (err !== null || epoch === undefined) { cb(err ?? new ClusterError('CLU_ERR_IO', 'blocklist: no epoch')); return; }
        maxEpoch = Math.max(maxEpoch, epoch);
        next(i + 1);
      });
    };
    this.o.log.warn({ previous, header: this.o.header }, 'taking over an expired image lock: blocklisting its previous holder');
    next(0);
  }

  private schedule(): void {
    if (this.paused) return;
    this.timer = this.o.env.setTimeout(() => { this.timer = null; this.renew(); }, Math.max(10, Math.floor(this.o.leaseMs / 3)));
  }

  /** One renewal; also callable by a writer that finds its lease about to lapse. */
  renew(): void {
    if (this.state !== 'held' || this.renewing) return;
    this.renewing = true;
    const sentMs = this.o.env.nowMs();
    const { objecter, pool, header } = this.o;
    objecter.submit({
      pool, objectName: header, ops: [
        { op: 'lock', name: LOCK_NAME, cookie: this.cookie, durationMs: this.o.leaseMs, exclusive: true },
        { op: 'assert_attr', name: FENCE_ATTR, value: encodeFence(this.epoch), mode: 0 },
      ],
    }, (err) => {
      this.renewing = false;
      if (this.state !== 'held') return;
      if (err === null) this.validUntilMs = sentMs + this.o.leaseMs - Math.floor(this.o.leaseMs / 10);
      else if (err.code === 'CLU_ERR_BUSY' || err.code === 'CLU_ERR_CANCELLED') { this.markLost(`renewal refused (${err.code})`); return; }
      else if (isBlocklistedError(err)) { this.markLost('this client instance is blocklisted'); return; }
      else this.o.log.warn({ err }, 'image lock renewal failed; retrying');
      this.schedule();
    });
  }

  /** Fences this holder (renewal refused, or a data object carries a newer epoch). */
  markLost(why: string): void {
    if (this.state !== 'held') return;
    this.state = 'lost';
    if (this.timer !== null) { this.o.env.clearTimeout(this.timer); this.timer = null; }
    this.o.log.warn({ epoch: this.epoch, why }, 'image lock lost; fenced');
    this.o.onLost(fencedError(why));
  }

  /** Stops renewing and unlocks (best effort: an expired or broken lock is fine). */
  release(cb: (err: ClusterError | null) => void): void {
    if (this.timer !== null) { this.o.env.clearTimeout(this.timer); this.timer = null; }
    const wasHeld = this.state === 'held';
    this.state = 'unlocked';
    if (!wasHeld) { this.o.env.setImmediate(() => cb(null)); return; }
    const { objecter, pool, header } = this.o;
    objecter.submit({ pool, objectName: header, ops: [{ op: 'unlock', name: LOCK_NAME, cookie: this.cookie }] }, (err) => {
      cb(err === null || err.code === 'CLU_ERR_NOT_FOUND' ? null : err);
    });
  }

  /** Test hook: stop renewing without unlocking (a paused or partitioned writer). */
  pauseRenewalForTest(): void {
    this.paused = true;
    if (this.timer !== null) { this.o.env.clearTimeout(this.timer); this.timer = null; }
  }

  /** Test hook: pretend the local lease is still valid (to exercise OSD-side fencing). */
  forceLocallyValidForTest(): void {
    this.validUntilMs = Number.MAX_SAFE_INTEGER;
  }
}
