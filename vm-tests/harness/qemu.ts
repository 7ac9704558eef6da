// QEMU command-line builder for VM-test guests, and accelerator selection.
//
// A guest is q35 with shared memfd RAM (vhost-user needs the back-end to map guest memory),
// the kernel and initramfs from scripts/build-guest-image.sh, the serial console on stdio,
// -no-reboot (the guest's poweroff/panic ends QEMU), a job script in fw_cfg opt/strata/job and
// zero or more vhost-user-blk-pci disks.
//
// Accelerator: env STRATA_ACCEL = kvm | tcg | auto (default auto). auto probes KVM once with a
// time-limited boot of the guest image (it must print STRATA-BEGIN) and caches the verdict in
// .cache/accel.json, keyed by host kernel and guest image; it falls back to TCG
// (`-accel tcg,thread=multi -cpu max`). /dev/kvm may be present yet unusable (on the project's
// machines it is PVM, where stock kernels hang after "Probing EDD"), hence the probe.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MARKER_BEGIN, SerialConsole } from './serial.js';
import { acquireSlot, cacheDir, killTree, onProcessExit, repoRoot } from './util.js';

export type Accel = 'kvm' | 'tcg';

export interface VhostUserDisk {
  socketPath: string;
  numQueues: number;
  queueSize?: number;
  /** Adds reconnect=1 to the chardev (QEMU 7.2 syntax; seconds). */
  reconnect?: boolean;
}

export interface QemuOptions {
  accel: Accel;
  vcpus: number;
  memMiB: number;
  kernel: string;
  initrd: string;
  /** Extra kernel command-line words (after "console=ttyS0 quiet panic=1"). */
  append?: string[];
  disks: VhostUserDisk[];
  /** Host file passed as fw_cfg opt/strata/job. */
  jobFile?: string;
}

export const QEMU_BINARY = process.env['STRATA_QEMU'] ?? 'qemu-system-x86_64';

export interface GuestImage {
  kernel: string;
  initrd: string;
  stamp: string;
}

/** Paths of the guest kernel and initramfs; throws with the fix when they are missing. */
export function guestImage(): GuestImage {
  const dir = path.join(repoRoot(), '.cache', 'guest');
  const kernel = path.join(dir, 'vmlinuz');
  const initrd = path.join(dir, 'initramfs.cpio.gz');
  for (const f of [kernel, initrd]) {
    if (!fs.existsSync(f)) {
      throw new Error(`vm-tests: guest image ${f} is missing: run \`bash scripts/build-guest-image.sh\` (scripts/setup.sh does)`);
    }
  }
  let stamp = '';
  try {
    stamp = fs.readFileSync(path.join(dir, 'stamp'), 'utf8');
  } catch {
    /* built by hand */
  }
  return { kernel, initrd, stamp };
}

/** QEMU option values escape commas by doubling them. */
export function qemuEscape(value: string): string {
  return value.replace(/,/g, ',,');
}

export function buildQemuArgs(o: QemuOptions): string[] {
  const mem = `${o.memMiB}M`;
  const args = [
    '-nodefaults',
    '-no-user-config',
    '-machine', 'q35',
    ...(o.accel === 'kvm'
      ? ['-accel', 'kvm', '-cpu', 'host,-arch-capabilities']
      : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
    '-smp', String(o.vcpus),
    '-m', mem,
    '-object', `memory-backend-memfd,id=mem,size=${mem},share=on`,
    '-numa', 'node,memdev=mem',
    '-kernel', o.kernel,
    '-initrd', o.initrd,
    '-append', ['console=ttyS0', 'quiet', 'panic=1', ...(o.append ?? [])].join(' '),
    '-display', 'none',
    '-serial', 'stdio',
    '-monitor', 'none',
    '-no-reboot',
  ];
  o.disks.forEach((d, i) => {
    args.push('-chardev', `socket,id=vub${i},path=${qemuEscape(d.socketPath)}${d.reconnect ? ',reconnect=1' : ''}`);
    args.push('-device', `vhost-user-blk-pci,chardev=vub${i},num-queues=${d.numQueues}` +
      (d.queueSize !== undefined ? `,queue-size=${d.queueSize}` : ''));
  });
  if (o.jobFile !== undefined) args.push('-fw_cfg', `name=opt/strata/job,file=${qemuEscape(o.jobFile)}`);
  return args;
}

// --- accelerator selection ---------------------------------------------------------------------

const KVM_PROBE_TIMEOUT_MS = Number(process.env['STRATA_KVM_PROBE_TIMEOUT_MS'] ?? 20_000);
let accelPromise: Promise<Accel> | undefined;

/** STRATA_ACCEL=kvm|tcg force a choice; auto (default) uses the cached or probed verdict. */
export function resolveAccel(): Promise<Accel> {
  accelPromise ??= resolveAccelOnce();
  return accelPromise;
}

async function resolveAccelOnce(): Promise<Accel> {
  const env = (process.env['STRATA_ACCEL'] ?? 'auto').toLowerCase();
  if (env === 'kvm' || env === 'tcg') return env;
  if (env !== 'auto') throw new Error(`STRATA_ACCEL must be kvm, tcg or auto (got "${env}")`);
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return 'tcg';
  }
  const image = guestImage();
  // Keyed by host kernel and guest kernel only: rebuilding the initramfs needs no new probe.
  const guestKernel = image.stamp.split('\n').find((l) => l.startsWith('kernel=')) ?? '';
  const key = `${os.release()}|${guestKernel}|${fs.statSync(image.kernel).size}`;
  const cacheFile = path.join(cacheDir(), 'accel.json');
  const readCache = (): Accel | undefined => {
    try {
      const c = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as { key?: string; accel?: string };
      if (c.key === key && (c.accel === 'kvm' || c.accel === 'tcg')) return c.accel;
    } catch {
      /* no cache yet */
    }
    return undefined;
  };
  const cached = readCache();
  if (cached) return cached;
  // One prober at a time across ava worker processes; the others read its verdict.
  const release = await acquireSlot('kvm-probe', 1, 3 * KVM_PROBE_TIMEOUT_MS + 30_000);
  try {
    const again = readCache();
    if (again) return again;
    const probe = await probeKvm(image);
    const accel: Accel = probe.ok ? 'kvm' : 'tcg';
    fs.writeFileSync(cacheFile, JSON.stringify({ key, accel, probedAt: new Date().toISOString(), detail: probe.detail }, null, 2));
    if (!probe.ok) {
      process.stderr.write(`vm-tests: KVM probe failed (${probe.detail}); using TCG. Cached in ${cacheFile}.\n`);
    }
    return accel;
  } finally {
    release();
  }
}

/** Boots the guest image under KVM without a disk or job and waits for STRATA-BEGIN. */
export async function probeKvm(image: GuestImage): Promise<{ ok: boolean; detail: string }> {
  const args = buildQemuArgs({
    accel: 'kvm', vcpus: 1, memMiB: 256, kernel: image.kernel, initrd: image.initrd, disks: [],
    append: ['strata.timeout=30'],
  });
  const con = new SerialConsole();
  let stderr = '';
  const child = spawn('timeout', ['-k', '5', String(Math.ceil(KVM_PROBE_TIMEOUT_MS / 1000) + 10), QEMU_BINARY, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const unhook = onProcessExit(() => child.pid !== undefined && killTree(child.pid, 'SIGKILL'));
  child.stdout.on('data', (b: Buffer) => con.push(b));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.on('close', (code) => con.end(`qemu exited with ${code}`));
  try {
    await con.waitFor(MARKER_BEGIN, KVM_PROBE_TIMEOUT_MS, 'STRATA-BEGIN under KVM');
    return { ok: true, detail: 'guest reached /init' };
  } catch (err) {
    const lastLine = con.tail(3).split('\n').filter(Boolean).pop() ?? '';
    return { ok: false, detail: `${(err as Error).message.split('\n')[0]}; qemu stderr: ${stderr.trim().slice(0, 300)}; last console line: ${lastLine}` };
  } finally {
    if (child.pid !== undefined) killTree(child.pid, 'SIGKILL');
    unhook();
  }
}
