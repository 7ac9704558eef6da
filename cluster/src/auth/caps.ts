/**
 * Capabilities: what an authenticated entity may do. Carried inside tickets, so an OSD enforces
 * them on every op without asking the monitor (cephx). The text syntax follows Ceph's
 * (docs.ceph.com "User Management", OSD caps), restricted to what strata implements:
 *
 * ```
 * mon caps   := "allow r" | "allow rw" | "allow *" | "profile rbd" | ""   ("" = no access;
 *               "profile rbd" = "allow r" plus `osd blocklist add`, what an image client needs
 *               to take over the lock of a dead writer — Ceph's rbd profile)
 * osd caps   := grant ("," grant)*  |  ""
 * grant      := "allow" SP access (SP match)*
 * access     := "r" | "rw" | "*"                                   ("*" = rw on everything)
 * match      := "pool=" NAME | "prefix=" OBJECT_NAME_PREFIX
 * ```
 * Examples: `allow rw pool=vms`, `allow r pool=vms prefix=rbd_data.abc`, `allow rw pool=a, allow
 * r pool=b`. A grant with no `pool=` matches every pool; one with no `prefix=` matches every
 * object. Access is the union of all matching grants (Ceph semantics): deny is the default.
 */
import { ClusterError } from '../common/errors.js';
import { CodecError } from '../common/codec.js';
import type { Reader, Writer } from '../common/codec.js';

/** Read-only or read-write. */
export type CapAccess = 'r' | 'rw';

/** One OSD grant. */
export interface OsdCapGrant {
  pool?: string;
  prefix?: string;
  access: CapAccess;
}

/** Parsed capabilities of an entity. */
export interface Caps {
  /** `rbd`: read, plus `osd blocklist add` (mon-protocol.ts `monCommandAllowed`). */
  mon: CapAccess | 'none' | 'rbd';
  osd: OsdCapGrant[];
}

/** What an op asks for: checked by `capsAllow`. */
export interface CapRequest {
  pool: string;
  objectName: string;
  write: boolean;
}

/** No access at all (the default for an unauthenticated or unknown entity). */
export const NO_CAPS: Readonly<Caps> = Object.freeze({ mon: 'none', osd: [] });

/** Everything (the `mon.` and `client.admin` style of entity). */
export const ALL_CAPS: Readonly<Caps> = Object.freeze({ mon: 'rw', osd: [{ access: 'rw' as const }] });

const NAME_RE = /^[A-Za-z0-9_.\-]{1,255}$/;

function invalid(message: string): ClusterError {
  return new ClusterError('CLU_ERR_INVALID', message);
}

function parseAccess(word: string | undefined): CapAccess | null {
  if (word === 'r') return 'r';
  if (word === 'rw' || word === '*') return 'rw';
  return null;
}

/** Parses a mon cap string. */
export function parseMonCaps(text: string): Caps['mon'] | ClusterError {
  const words = text.trim().split(/\s+/).filter((w) => w.length > 0);
  if (words.length === 0) return 'none';
  if (words.length === 2 && words[0] === 'profile' && words[1] === 'rbd') return 'rbd';
  const access = parseAccess(words[1]);
  if (words[0] !== 'allow' || access === null || words.length !== 2) return invalid(`bad mon caps "${text}"`);
  return access;
}

/** Parses one `allow ACCESS [pool=X] [prefix=Y]` grant. */
function parseGrant(text: string): OsdCapGrant | ClusterError {
  const words = text.trim().split(/\s+/);
  const access = parseAccess(words[1]);
  if (words[0] !== 'allow' || access === null) return invalid(`bad osd grant "${text}"`);
  const grant: OsdCapGrant = { access };
  for (const word of words.slice(2)) {
    const eq = word.indexOf('=');
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (eq <= 0 || !NAME_RE.test(value)) return invalid(`bad osd grant match "${word}"`);
    if (key === 'pool' && grant.pool === undefined) grant.pool = value;
    else if (key === 'prefix' && grant.prefix === undefined) grant.prefix = value;
    else return invalid(`unknown or repeated osd grant match "${word}"`);
  }
  return grant;
}

/** Parses an OSD cap string (comma-separated grants). */
export function parseOsdCaps(text: string): OsdCapGrant[] | ClusterError {
  if (text.trim() === '') return [];
  const grants: OsdCapGrant[] = [];
  for (const part of text.split(',')) {
    const g = parseGrant(part);
    if (g instanceof ClusterError) return g;
    grants.push(g);
  }
  return grants;
}

/** Parses the `caps mon` / `caps osd` strings of a keyring entry. */
export function parseCaps(text: { mon?: string; osd?: string }): Caps | ClusterError {
  const mon = parseMonCaps(text.mon ?? '');
  if (mon instanceof ClusterError) return mon;
  const osd = parseOsdCaps(text.osd ?? '');
  if (osd instanceof ClusterError) return osd;
  return { mon, osd };
}

/** Formats mon caps back to text (`parseMonCaps` inverse). */
export function formatMonCaps(mon: Caps['mon']): string {
  return mon === 'none' ? '' : mon === 'rbd' ? 'profile rbd' : `allow ${mon}`;
}

/** Formats OSD grants back to text (`parseOsdCaps` inverse). */
export function formatOsdCaps(grants: readonly OsdCapGrant[]): string {
  return grants
    .map((g) => ['allow', g.access, ...(g.pool === undefined ? [] : [`pool=${g.pool}`]), ...(g.prefix === undefined ? [] : [`prefix=${g.prefix}`])].join(' '))
    .join(', ');
}

/**
 * True when some grant allows the op. Why union of grants: it matches Ceph, and it keeps the
 * check monotonic (adding a grant never removes access).
 */
export function capsAllow(caps: Readonly<Caps>, req: CapRequest): boolean {
  for (const g of caps.osd) {
    if (g.pool !== undefined && g.pool !== req.pool) continue;
    if (g.prefix !== undefined && !req.objectName.startsWith(g.prefix)) continue;
    if (req.write && g.access !== 'rw') continue;
    return true;
  }
  return false;
}

/** True when the mon caps allow a read (or a write, with `write`). */
export function monCapsAllow(caps: Readonly<Caps>, write: boolean): boolean {
  return caps.mon === 'rw' || ((caps.mon === 'r' || caps.mon === 'rbd') && !write);
}

/** Binary encoding inside tickets: u8 mon (0 none, 1 r, 2 rw, 3 profile rbd), u16 count, grants. */
export function encodeCaps(w: Writer, caps: Readonly<Caps>): void {
  w.u8(caps.mon === 'none' ? 0 : caps.mon === 'r' ? 1 : caps.mon === 'rw' ? 2 : 3);
  w.u16(caps.osd.length);
  for (const g of caps.osd) {
    w.u8(g.access === 'r' ? 1 : 2);
    w.bool(g.pool !== undefined).str(g.pool ?? '');
    w.bool(g.prefix !== undefined).str(g.prefix ?? '');
  }
}

/** Inverse of `encodeCaps`; throws `CodecError` on malformed input. */
export function decodeCaps(r: Reader): Caps {
  const monCode = r.u8();
  if (monCode > 3) throw new CodecError(`bad mon cap code ${monCode}`);
  const mon = (['none', 'r', 'rw', 'rbd'] as const)[monCode]!;
  const count = r.u16();
  const osd: OsdCapGrant[] = [];
  for (let i = 0; i < count; i++) {
    const accessCode = r.u8();
    if (accessCode !== 1 && accessCode !== 2) throw new CodecError(`bad osd cap code ${accessCode}`);
    const access: CapAccess = accessCode === 1 ? 'r' : 'rw';
    const hasPool = r.bool();
    const pool = r.str(255);
    const hasPrefix = r.bool();
    const prefix = r.str(255);
    const g: OsdCapGrant = { access };
    if (hasPool) g.pool = pool;
    if (hasPrefix) g.prefix = prefix;
    osd.push(g);
  }
  return { mon, osd };
}
