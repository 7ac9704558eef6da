// A real libvirtd (Debian's libvirt-daemon-system, installed by scripts/setup.sh) runs a guest
// whose disk is a strata vhost-user-blk socket: the domain XML comes from scripts/libvirt-xml.ts
// (the generator the quick start prints its snippet with), `virsh define` + `virsh start`, the
// guest sees the disk with 2 queues, fio 4 KiB random writes at QD1 and QD32 over both queues
// read back with crc32c (verify_fatal), the guest powers off, `virsh destroy` + `undefine`.
//
// libvirtd here: when a system libvirtd already answers on /run/libvirt/libvirt-sock the test
// uses it (qemu:///system). Otherwise (containers without a service manager, like the project's
// machines) it starts its own `libvirtd` in the foreground with a test-local config (its
// sockets and log in a temp dir, so nothing of the host's setup is needed) and, if no virtlogd
// answers, a `virtlogd` too (libvirt's QEMU driver logs QEMU's output through it); both are
// stopped at the end. libvirt's root-mode QEMU driver still keeps its state in /run/libvirt and
// /var/lib/libvirt, so two of these tests cannot run at once on one machine (the VM slot
// serialises them). QEMU runs as root for this domain (a DAC <seclabel>) because the socket,
// the disk file and the guest image live in root-only directories.
//
// Domain type: 'qemu' (TCG) unless STRATA_ACCEL=kvm ('kvm'). The first `virsh define` after a
// fresh install probes QEMU's capabilities (tens of seconds under TCG load), hence its timeout.
import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { libvirtDomainXml } from '../../scripts/libvirt-xml.js';
import { createDiskFile, startStrata, type BackendHandle } from '../harness/backends.js';
import { composeJob } from '../harness/guest.js';
import { guestImage, QEMU_BINARY } from '../harness/qemu.js';
import { cleanConsoleText, parseMarkers } from '../harness/serial.js';
import { acquireSlot, cacheDir, sleep } from '../harness/util.js';
import { CASE_TIMEOUT_MS, fioJobs, readJob } from '../harness/vm-case.js';

const SYSTEM_SOCK = '/run/libvirt/libvirt-sock';
const VIRTLOGD_SOCK = '/run/libvirt/virtlogd-sock';
const DOMAIN_PREFIX = 'strata-libvirt-test-';

function which(cmd: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** True when something accepts connections on the Unix socket (bounded 2 s). */
function answers(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!fs.existsSync(sock)) return resolve(false);
    const c = net.connect(sock);
    const t = setTimeout(() => { c.destroy(); resolve(false); }, 2_000);
    c.once('connect', () => { clearTimeout(t); c.destroy(); resolve(true); });
    c.once('error', () => { clearTimeout(t); resolve(false); });
  });
}

interface Daemon { name: string; child: ChildProcess; exited: Promise<void>; status(): string | undefined }

function startDaemon(name: string, cmd: string, args: string[], logPath: string): Daemon {
  const fd = fs.openSync(logPath, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  let st: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on('exit', (code, sig) => { st = sig ? `killed by ${sig}` : `exit code ${code}`; resolve(); });
    child.on('error', (err) => { st = `spawn error: ${err.message}`; resolve(); });
  });
  return { name, child, exited, status: () => st };
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (d.status() !== undefined) return;
  d.child.kill('SIGTERM');
  const t = setTimeout(() => d.child.kill('SIGKILL'), 10_000);
  await d.exited;
  clearTimeout(t);
}

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number, died?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    const d = died?.();
    if (d !== undefined) throw new Error(`${what}: ${d}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

const kind: 'qemu' | 'kvm' = (process.env['STRATA_ACCEL'] ?? '').toLowerCase() === 'kvm' ? 'kvm' : 'qemu';

test(`libvirt: define + start a domain with a strata vhost-user disk, fio crc32c verify, destroy (${kind})`, async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const libvirtd = which('libvirtd');
  const virtlogd = which('virtlogd');
  const virsh = which('virsh');
  if (libvirtd === undefined || virsh === undefined || virtlogd === undefined) {
    t.fail(`libvirt is not installed (libvirtd=${libvirtd ?? 'missing'}, virtlogd=${virtlogd ?? 'missing'}, virsh=${virsh ?? 'missing'}): ` +
      'run `bash scripts/setup.sh` (it installs libvirt-daemon-system and libvirt-clients)');
    return;
  }
  const image = guestImage();
  const logDir = cacheDir('vm-logs', `libvirt-${kind}`);
  for (const f of fs.readdirSync(logDir)) fs.rmSync(path.join(logDir, f), { recursive: true, force: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-lv-'));
  fs.chmodSync(tmp, 0o700);
  const cleanups: (() => Promise<void> | void)[] = [];
  t.teardown(async () => {
    for (const c of cleanups.reverse()) {
      try { await c(); } catch { /* best effort */ }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  // One guest at a time across ava workers (and this test owns libvirt's QEMU driver state).
  const release = await acquireSlot('vm', Math.max(1, Number(process.env['STRATA_VM_PARALLEL'] ?? 1)), 900_000);
  cleanups.push(release);

  // --- libvirtd (and virtlogd) ----------------------------------------------------------------
  let uri = 'qemu:///system';
  if (await answers(SYSTEM_SOCK)) {
    t.log(`using the running system libvirtd (${SYSTEM_SOCK})`);
  } else {
    if (!(await answers(VIRTLOGD_SOCK))) {
      fs.writeFileSync(path.join(tmp, 'virtlogd.conf'), `log_outputs = "3:file:${path.join(logDir, 'virtlogd.log')}"\n`);
      const vl = startDaemon('virtlogd', virtlogd, ['-f', path.join(tmp, 'virtlogd.conf'), '-p', path.join(tmp, 'virtlogd.pid')], path.join(logDir, 'virtlogd.out'));
      cleanups.push(() => stopDaemon(vl));
      await waitFor('virtlogd to listen on ' + VIRTLOGD_SOCK, () => answers(VIRTLOGD_SOCK), 15_000, () => (vl.status() === undefined ? undefined : `virtlogd exited (${vl.status()})`));
    }
    const runDir = path.join(tmp, 'run');
    fs.mkdirSync(runDir, { mode: 0o700 });
    fs.writeFileSync(path.join(tmp, 'libvirtd.conf'), [
      `unix_sock_dir = "${runDir}"`,
      'unix_sock_rw_perms = "0700"',
      'auth_unix_rw = "none"',
      'auth_unix_ro = "none"',
      `log_outputs = "3:file:${path.join(logDir, 'libvirtd.log')}"`,
      '',
    ].join('\n'));
    const lv = startDaemon('libvirtd', libvirtd, ['-f', path.join(tmp, 'libvirtd.conf'), '-p', path.join(tmp, 'libvirtd.pid')], path.join(logDir, 'libvirtd.out'));
    cleanups.push(() => stopDaemon(lv));
    const sock = path.join(runDir, 'libvirt-sock');
    await waitFor('libvirtd to listen on ' + sock, () => answers(sock), 30_000, () => {
      const s = lv.status();
      if (s === undefined) return undefined;
      let out = '';
      try { out = fs.readFileSync(path.join(logDir, 'libvirtd.out'), 'utf8').slice(-1500); } catch { /* none */ }
      return `libvirtd exited (${s}); its output:\n${out}`;
    });
    uri = `qemu:///system?socket=${sock}`;
    t.log(`started libvirtd ${lv.child.pid} with a test-local config (${uri})`);
  }
  const vsh = (args: string[], timeoutMs = 60_000): Promise<{ code: number; out: string }> =>
    new Promise((resolve) => {
      execFile(virsh, ['-c', uri, ...args], { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
        resolve({ code, out: `${stdout}${stderr}`.trim() + (err !== null && (err as { killed?: boolean }).killed ? ` (virsh killed after ${timeoutMs} ms)` : '') });
      });
    });
  const version = await vsh(['version'], 60_000);
  t.is(version.code, 0, `virsh version failed: ${version.out}`);
  t.log(version.out.split('\n').filter((l) => /library|hypervisor/i.test(l)).join('; '));
  // Leftovers of an aborted earlier run.
  const listed = await vsh(['list', '--all', '--name']);
  for (const n of listed.out.split('\n').map((s) => s.trim()).filter((s) => s.startsWith(DOMAIN_PREFIX))) {
    await vsh(['destroy', n]);
    await vsh(['undefine', n]);
  }

  // --- strata serving a disk ------------------------------------------------------------------
  const disk = createDiskFile('libvirt', 256);
  cleanups.push(() => disk.remove());
  const socketPath = path.join(tmp, 'vda.sock');
  const backend: BackendHandle = await startStrata({ socketPath, file: disk.path, numQueues: 2, readOnly: false, logPath: path.join(logDir, 'backend.log') });
  cleanups.push(() => backend.stop());

  // --- the domain -------------------------------------------------------------------------------
  const jobFile = path.join(tmp, 'job.sh');
  fs.writeFileSync(jobFile, composeJob(readJob('multiqueue.sh'), { 'multiqueue-verify.fio': readJob('multiqueue-verify.fio') }));
  const consoleLog = path.join(tmp, 'console.log');
  const name = `${DOMAIN_PREFIX}${process.pid}`;
  const jobTimeoutS = 240;
  const xml = libvirtDomainXml({
    name, type: kind, memMiB: 1024, vcpus: 2,
    disks: [{ socketPath, target: 'vda', queues: 2 }],
    kernel: image.kernel, initrd: image.initrd, cmdline: `console=ttyS0 quiet panic=1 strata.timeout=${jobTimeoutS}`,
    fwcfg: [{ name: 'opt/strata/job', file: jobFile }],
    serialLogFile: consoleLog,
    emulator: which(QEMU_BINARY) ?? QEMU_BINARY,
    runAsRoot: true,
  });
  const xmlFile = path.join(tmp, 'domain.xml');
  fs.writeFileSync(xmlFile, xml);
  fs.writeFileSync(path.join(logDir, 'domain.xml'), xml);
  const defined = await vsh(['define', xmlFile], 300_000);
  t.is(defined.code, 0, `virsh define failed: ${defined.out}\n${xml}`);
  if (defined.code !== 0) return;
  let undefined_ = false;
  cleanups.push(async () => {
    await vsh(['destroy', name]);
    if (!undefined_) await vsh(['undefine', name]);
  });
  const t0 = Date.now();
  const started = await vsh(['start', name], 120_000);
  t.is(started.code, 0, `virsh start failed: ${started.out}`);
  if (started.code !== 0) return;
  const readConsole = (): string => {
    try { return cleanConsoleText(fs.readFileSync(consoleLog, 'utf8')); } catch { return ''; }
  };
  try {
    await waitFor('STRATA-RESULT on the serial console', () => /STRATA-RESULT rc=/.test(readConsole()), (jobTimeoutS + 90) * 1000,
      () => (backend.exitStatus() === undefined ? undefined : `the strata daemon exited (${backend.exitStatus()})`));
  } finally {
    fs.copyFileSync(consoleLog, path.join(logDir, 'console.log'));
  }
  const ranMs = Date.now() - t0;
  const m = parseMarkers(readConsole().split('\n'));
  const tail = readConsole().split('\n').slice(-40).join('\n');
  t.log(`guest: kernel ${m.kernel ?? '?'}, job rc ${m.rc}, start → result ${(ranMs / 1000).toFixed(1)} s; logs ${logDir}`);
  t.is(m.rc, 0, `guest job failed\n${tail}\n${m.dmesg.slice(-20).join('\n')}`);
  t.is(m.kv['hw_queues'], '2', `the guest should see vda with 2 hardware queues\n${tail}`);
  const text = m.jsonText['mq'];
  t.truthy(text, `fio produced no JSON\n${tail}`);
  if (text !== undefined) {
    const jobs = fioJobs(JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)));
    t.is(jobs.length, 4, 'expected 2 QD1 + 2 QD32 fio jobs');
    for (const j of jobs) {
      t.is(j.error ?? -1, 0, `fio job ${j.jobname ?? '?'} error ${j.error}`);
      const w = j.write?.io_bytes ?? 0;
      t.true(w > 0 && (j.read?.io_bytes ?? 0) >= w, `fio job ${j.jobname ?? '?'} wrote ${w} and verified ${j.read?.io_bytes ?? 0} bytes`);
    }
  }
  // The guest powered off (on_poweroff = destroy): the domain is shut off; destroy is then a no-op.
  await waitFor('the domain to shut off', async () => /shut off/.test((await vsh(['domstate', name])).out), 30_000);
  await vsh(['destroy', name]);
  const und = await vsh(['undefine', name]);
  t.is(und.code, 0, `virsh undefine failed: ${und.out}`);
  undefined_ = und.code === 0;
  const after = await vsh(['list', '--all', '--name']);
  t.false(after.out.split('\n').includes(name), 'the domain is still defined after undefine');
  t.is(backend.exitStatus(), undefined, `the strata daemon exited during the run (${backend.exitStatus()})`);
});
