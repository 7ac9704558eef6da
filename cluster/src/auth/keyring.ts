/**
 * Keyrings: the secret key and caps of each entity (`mon.`, `osd.N`, `client.NAME`, plus the
 * OSD service secret `service.osd`). The file format is Ceph's INI-like keyring, so operators
 * recognise it:
 *
 * ```
 * [client.vm1]
 *     key = 3q2+7w…base64 of 32 bytes…=
 *     caps mon = "allow r"
 *     caps osd = "allow rw pool=vms prefix=rbd_data.vm1"
 * ```
 *
 * Parsing and serializing are pure. File I/O goes through the injected `KeyringFileIo` (the
 * daemon's `bin/` wires it to `fs` with mode 0600 and an atomic rename), because `cluster/src`
 * may not touch `node:fs` and the simulator keeps keyrings in memory.
 *
 * Secrets never reach logs: `describeKeyring` and `KeyringEntry` consumers log entity names
 * only, and the root logger redacts `*.key`, `*.secret` and `ticket` (GUIDE §7).
 */
import { ClusterError } from '../common/errors.js';
import type { Rng } from '../env/env.js';
import { parseCaps } from './caps.js';
import type { Caps } from './caps.js';

/** Length of every secret key. */
export const KEY_BYTES = 32;
/** Required permission bits of a keyring file. */
export const KEYRING_FILE_MODE = 0o600;
/** Name of the entry that holds the OSD service secret (tickets are sealed with it). */
export const OSD_SERVICE_ENTITY = 'service.osd';

/** One entity's secret and caps (caps kept as text too, so a round trip is lossless). */
export interface KeyringEntry {
  entity: string;
  key: Uint8Array;
  caps: Caps;
  capsText: { mon: string; osd: string };
}

/** Entities by name, in file order. */
export type Keyring = Map<string, KeyringEntry>;

const ENTITY_RE = /^(mon\.|osd\.(0|[1-9][0-9]{0,8})|client\.[A-Za-z0-9_.\-]{1,64}|service\.[a-z]{1,16})$/;

/** True for `mon.`, `osd.N`, `client.NAME` and `service.NAME`. */
export function isValidEntityName(name: string): boolean {
  return ENTITY_RE.test(name);
}

/** A fresh random key from the injected rng (deterministic in simulation). */
export function generateKey(rng: Rng): Uint8Array {
  return rng.bytes(KEY_BYTES);
}

function bad(line: number, message: string): ClusterError {
  return new ClusterError('CLU_ERR_DECODE', `keyring line ${line}: ${message}`, { details: { line } });
}

function decodeKey(b64: string, line: number): Uint8Array | ClusterError {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return bad(line, 'key is not base64');
  const key = Uint8Array.from(Buffer.from(b64, 'base64'));
  if (key.length !== KEY_BYTES) return bad(line, `key must be ${KEY_BYTES} bytes, got ${key.length}`);
  return key;
}

interface Draft { entity: string; line: number; key?: Uint8Array; mon: string; osd: string }

function finishEntry(d: Draft): KeyringEntry | ClusterError {
  if (d.key === undefined) return bad(d.line, `entity ${d.entity} has no key`);
  const caps = parseCaps({ mon: d.mon, osd: d.osd });
  if (caps instanceof ClusterError) return bad(d.line, `entity ${d.entity}: ${caps.message}`);
  return { entity: d.entity, key: d.key, caps, capsText: { mon: d.mon, osd: d.osd } };
}

/** Applies one `name = value` line to the current draft entry. */
function applyField(d: Draft, name: string, value: string, line: number): ClusterError | null {
  const unquoted = value.startsWith('"') && value.endsWith('"') && value.length >= 2 ? value.slice(1, -1) : value;
  if (name === 'key') {
    const key = decodeKey(unquoted, line);
    if (key instanceof ClusterError) return key;
    d.key = key;
  } else if (name === 'caps mon') d.mon = unquoted;
  else if (name === 'caps osd') d.osd = unquoted;
  else return bad(line, `unknown field "${name}"`);
  return null;
}

/** Parses keyring text. Errors carry code `CLU_ERR_DECODE` and the line number. */
export function parseKeyring(text: string): Keyring | ClusterError {
  const ring: Keyring = new Map();
  let draft: Draft | null = null;
  const flush = (): ClusterError | null => {
    if (draft === null) return null;
    const e = finishEntry(draft);
    if (e instanceof ClusterError) return e;
    ring.set(e.entity, e);
    return null;
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const lineNo = i + 1;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section !== null) {
      const err = flush();
      if (err !== null) return err;
      const entity = section[1]!.trim();
      if (!isValidEntityName(entity)) return bad(lineNo, `bad entity name "${entity}"`);
      if (ring.has(entity)) return bad(lineNo, `duplicate entity ${entity}`);
      draft = { entity, line: lineNo, mon: '', osd: '' };
      continue;
    }
    const eq = line.indexOf('=');
    if (draft === null || eq <= 0) return bad(lineNo, 'expected [entity] or name = value');
    const err = applyField(draft, line.slice(0, eq).trim().replace(/\s+/g, ' '), line.slice(eq + 1).trim(), lineNo);
    if (err !== null) return err;
  }
  const err = flush();
  return err ?? ring;
}

/** Serializes a keyring (stable: entries in map order, caps only when non-empty). */
export function serializeKeyring(ring: Keyring): string {
  const out: string[] = [];
  for (const e of ring.values()) {
    out.push(`[${e.entity}]`);
    out.push(`\tkey = ${Buffer.from(e.key).toString('base64')}`);
    if (e.capsText.mon !== '') out.push(`\tcaps mon = "${e.capsText.mon}"`);
    if (e.capsText.osd !== '') out.push(`\tcaps osd = "${e.capsText.osd}"`);
  }
  return out.length === 0 ? '' : out.join('\n') + '\n';
}

/** Builds an entry from caps text; validates the name and caps. */
export function makeKeyringEntry(
  entity: string,
  key: Uint8Array,
  capsText: { mon?: string; osd?: string } = {},
): KeyringEntry | ClusterError {
  if (!isValidEntityName(entity)) return new ClusterError('CLU_ERR_INVALID', `bad entity name "${entity}"`);
  if (key.length !== KEY_BYTES) return new ClusterError('CLU_ERR_INVALID', `key must be ${KEY_BYTES} bytes`);
  const text = { mon: capsText.mon ?? '', osd: capsText.osd ?? '' };
  const caps = parseCaps(text);
  if (caps instanceof ClusterError) return caps;
  return { entity, key, caps, capsText: text };
}

/** Entity names and caps without keys, safe to log or print (`strata auth ls`). */
export function describeKeyring(ring: Keyring): { entity: string; caps: { mon: string; osd: string } }[] {
  return [...ring.values()].map((e) => ({ entity: e.entity, caps: { ...e.capsText } }));
}

/**
 * File access for keyrings, injected. `writeFileAtomic` must create the file with
 * `KEYRING_FILE_MODE` (0600) before any secret is written, fsync it and rename it into place.
 */
export interface KeyringFileIo {
  readFile(path: string, cb: (err: Error | null, text: string) => void): void;
  writeFileAtomic(path: string, text: string, mode: number, cb: (err: Error | null) => void): void;
}

/** Reads and parses a keyring file. */
export function loadKeyring(io: KeyringFileIo, path: string, cb: (err: Error | null, ring?: Keyring) => void): void {
  io.readFile(path, (err, text) => {
    if (err !== null) { cb(err); return; }
    const ring = parseKeyring(text);
    if (ring instanceof ClusterError) cb(ring);
    else cb(null, ring);
  });
}

/** Serializes and writes a keyring file with mode 0600. */
export function saveKeyring(io: KeyringFileIo, path: string, ring: Keyring, cb: (err: Error | null) => void): void {
  io.writeFileAtomic(path, serializeKeyring(ring), KEYRING_FILE_MODE, cb);
}
