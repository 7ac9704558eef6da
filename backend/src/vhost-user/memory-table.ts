/**
 * Guest memory from the front-end: SET_MEM_TABLE (a whole table), ADD_MEM_REG and REM_MEM_REG
 * (CONFIGURE_MEM_SLOTS). Each installs a new memory generation, re-binds every configured
 * ring in it and, with queue workers, has every worker map the same regions before the
 * request is acknowledged.
 */
import type { MappedRegion } from '../memory/guest-memory.js';
import { closeFds, mapRegion, unmapRegion } from '../memory/mapping.js';
import { ProtocolError } from './errors.js';
import { VHOST_USER_MAX_RAM_SLOTS, decodeMemRegMsg, decodeMemTable, type MemoryRegionDesc } from './message.js';
import { ACK_FAIL, ACK_OK, type BackendSession, type Outcome } from './outcome.js';
import { bindQueue } from './vring-setup.js';

/**
 * Installs a new memory generation and re-translates every configured ring in it. A ring
 * the new table does not cover is an error (libvhost-user vu_set_mem_table_exec panics):
 * its queue would otherwise keep views into the retired generation, which is unmapped
 * (its ArrayBuffers detached) as soon as no request pins it, and the next kick would throw.
 */
function installRegions(s: BackendSession, regions: MappedRegion[]): ProtocolError | null {
  s.regions = regions;
  const mem = s.memory.replace(regions);
  s.log.info({ regions: regions.length, totalBytes: mem.totalBytes, generation: mem.generation }, 'mem table set');
  for (const v of s.vrings) {
    if (v.frontendAddrs === null || v.queue === null) continue;
    const err = bindQueue(s, v);
    if (err !== null) {
      v.queue.unbind();
      return new ProtocolError(err.code, `queue ${v.index} after the memory table change: ${err.message}`);
    }
  }
  return null;
}

export function setMemTable(s: BackendSession, p: Uint8Array, fds: number[]): Outcome {
  const descs = decodeMemTable(p);
  if (descs instanceof ProtocolError) return descs;
  if (descs.length !== fds.length) return new ProtocolError('VHU_ERR_UNEXPECTED_FDS', `${descs.length} regions but ${fds.length} fds`);
  const mapped: MappedRegion[] = [];
  for (let i = 0; i < descs.length; i++) {
    const r = mapRegion(fds[i]!, descs[i]!);
    if (r instanceof ProtocolError) {
      for (const m of mapped) unmapRegion(m);
      return r;
    }
    mapped.push(r);
  }
  return installAndShare(s, mapped, new Map(mapped.map((r, i) => [r, fds[i]!])));
}

/**
 * Installs the regions here and, with workers, has every worker map them from the same
 * fds before the request is acknowledged (a later SET_VRING_KICK may start a ring there).
 * The fds are closed once nobody needs them: our mappings keep the memory.
 */
function installAndShare(s: BackendSession, regions: MappedRegion[], newFds: Map<MappedRegion, number>): Outcome {
  const err = installRegions(s, regions);
  const workers = s.workers;
  const mem = s.memory.current;
  if (err !== null || workers === null || mem === null) {
    closeFds([...newFds.values()]);
    return err ?? ACK_OK;
  }
  const message = { kind: 'memory' as const, generation: mem.generation, regions: regions.map((r) => ({ gpaStart: r.gpaStart, sizeBytes: r.sizeBytes, frontendVaStart: r.frontendVaStart, mmapOffset: r.mmapOffset, fd: newFds.get(r) ?? -1 })) };
  return {
    kind: 'deferred-outcome',
    run: (done) =>
      workers.mapMemory(message, (errors) => {
        closeFds([...newFds.values()]);
        done(errors.length === 0 ? ACK_OK : new ProtocolError('VHU_ERR_MEMORY', `queue workers could not map guest memory: ${errors.join('; ')}`));
      }),
  };
}

export function addMemReg(s: BackendSession, p: Uint8Array, fds: number[]): Outcome {
  const desc = decodeMemRegMsg(p);
  if (desc instanceof ProtocolError) return desc;
  if (s.regions.length >= VHOST_USER_MAX_RAM_SLOTS) return new ProtocolError('VHU_ERR_MEMORY', 'no free memory slot');
  const r = mapRegion(fds[0]!, desc);
  if (r instanceof ProtocolError) {
    closeFds(fds);
    return r;
  }
  return installAndShare(s, [...s.regions, r], new Map([[r, fds[0]!]]));
}

export function remMemReg(s: BackendSession, p: Uint8Array, fds: number[]): Outcome {
  closeFds(fds);
  const desc = decodeMemRegMsg(p);
  if (desc instanceof ProtocolError) return desc;
  const same = (r: MemoryRegionDesc): boolean => r.gpaStart === desc.gpaStart && r.sizeBytes === desc.sizeBytes && r.frontendVaStart === desc.frontendVaStart;
  const keep = s.regions.filter((r) => !same(r));
  if (keep.length === s.regions.length) return ACK_FAIL;
  return installAndShare(s, keep, new Map());
}
