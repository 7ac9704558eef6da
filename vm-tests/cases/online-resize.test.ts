// Online resize (issue #3): the disk grows from 256 MiB to 512 MiB while the guest runs, and
// the guest sees and uses the new space without a reboot.
//
// The guest writes and crc32c-verifies a pattern in the first 32 MiB, prints
// STRATA-STEP resize-wanted and polls /sys/block/vda/size (≤ 30 s). On that marker the host
// POSTs {"size":"512M"} to strata's control socket (HTTP over the Unix socket
// `<vhost socket>.ctl`, the daemon's default), which grows the file, updates the config space
// and sends VHOST_USER_BACKEND_CONFIG_CHANGE_MSG; QEMU re-reads the config and raises a config
// interrupt, and virtio-blk updates the capacity. The guest then checks 1048576 sectors,
// writes and verifies the whole new space (256..512 MiB, sequential 256 KiB plus random 4 KiB
// over its last 16 MiB) and re-verifies the original pattern (fio --verify_only and sha256).
// After the guest: GET /status reports 512 MiB and no errors, a shrink is refused (409), a bad
// size is refused (400), the `vhost-ctl` CLI reports the same size, and the file is 512 MiB.
//
// strata only: the resize goes through strata's control interface.
import test from 'ava';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { fileBackend, strataMain } from '../harness/backends.js';
import { sleep } from '../harness/util.js';
import { assertJobPassed, CASE_TIMEOUT_MS, describe, fioJobs, runVmCase } from '../harness/vm-case.js';

const MiB = 1024 * 1024;

interface HttpReply {
  status: number;
  body: string;
}

/** One HTTP request over a Unix socket, bounded by `timeoutMs`. */
function ctlRequest(socketPath: string, method: 'GET' | 'POST', urlPath: string, body?: unknown, timeoutMs = 5_000): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({
      socketPath,
      method,
      path: urlPath,
      headers: data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      timeout: timeoutMs,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} on ${socketPath}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

async function waitForSocket(p: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fs.statSync(p, { throwIfNoEntry: false })?.isSocket()) {
    if (Date.now() > deadline) {
      throw new Error(`the control socket ${p} did not appear within ${timeoutMs} ms (does the daemon have --control-socket? see \`vhost --help\`)`);
    }
    await sleep(50);
  }
}

function parseJson(reply: HttpReply): Record<string, unknown> {
  try {
    return JSON.parse(reply.body) as Record<string, unknown>;
  } catch {
    throw new Error(`not JSON (HTTP ${reply.status}): ${reply.body.slice(0, 300)}`);
  }
}

function runCli(args: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [strataMain(), 'vhost-ctl', ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

test('online resize 256 MiB -> 512 MiB reaches the guest without a reboot; new space verifies, old data intact (strata)', async (t) => {
  t.timeout(CASE_TIMEOUT_MS);
  const log: string[] = [];
  let resize: Promise<void> | undefined;
  let resizeError: string | undefined;
  let resizeReply: Record<string, unknown> | undefined;
  let resizeSentAt = 0;
  const after: { status?: Record<string, unknown>; shrink?: HttpReply; bad?: HttpReply; cli?: { code: number; stdout: string; stderr: string }; fileBytes?: number } = {};
  const r = await runVmCase(t, {
    name: 'online-resize',
    backend: fileBackend('strata'),
    diskMiB: 256,
    numQueues: 1,
    vcpus: 1,
    script: 'resize.sh',
    files: ['resize-pattern.fio', 'resize-newspace.fio'],
    jobTimeoutMs: 180_000,
    onLine: (line, ctl) => {
      if (!/STRATA-STEP resize-wanted/.test(line) || resize) return;
      const ctlSock = `${ctl.socketPath}.ctl`;
      resize = (async () => {
        try {
          await waitForSocket(ctlSock, 5_000);
          const before = await ctlRequest(ctlSock, 'GET', '/status');
          log.push(`status before: HTTP ${before.status} ${before.body.trim()}`);
          resizeSentAt = performance.now();
          const reply = await ctlRequest(ctlSock, 'POST', '/resize', { size: '512M' });
          log.push(`POST /resize {"size":"512M"} -> HTTP ${reply.status} ${reply.body.trim()} in ${Math.round(performance.now() - resizeSentAt)} ms`);
          if (reply.status !== 200) throw new Error(`POST /resize answered HTTP ${reply.status}: ${reply.body}`);
          resizeReply = parseJson(reply);
        } catch (err) {
          resizeError = (err as Error).message;
        }
      })();
    },
    beforeStop: async (ctl) => {
      await resize;
      const ctlSock = `${ctl.socketPath}.ctl`;
      if (resizeError !== undefined) return;
      try {
        after.status = parseJson(await ctlRequest(ctlSock, 'GET', '/status'));
        after.shrink = await ctlRequest(ctlSock, 'POST', '/resize', { sizeBytes: 128 * MiB });
        after.bad = await ctlRequest(ctlSock, 'POST', '/resize', { size: 'banana' });
        after.cli = await runCli(['--control-socket', ctlSock, 'status']);
        after.fileBytes = fs.statSync(ctl.diskPath).size;
      } catch (err) {
        resizeError = `after the guest: ${(err as Error).message}`;
      }
    },
  });
  await resize;
  for (const l of log) t.log(l);
  t.is(resizeError, undefined, `resize through the control socket failed: ${resizeError}\n${describe(r)}`);
  assertJobPassed(t, r, ['pattern', 'newspace'], { verify: true });
  for (const j of fioJobs(r.fioJson['pattern-again'])) {
    t.is(j.error ?? -1, 0, `re-verify of the original pattern: error=${j.error}\n${describe(r)}`);
    t.is(j.read?.io_bytes ?? 0, 32 * MiB, `re-verify read ${j.read?.io_bytes} bytes`);
  }
  t.is(r.kv['sectors_before'], String((256 * MiB) / 512), describe(r));
  t.is(r.kv['sectors_after'], String((512 * MiB) / 512), describe(r));
  t.is(r.kv['blockdev_bytes_after'], String(512 * MiB), describe(r));
  t.is(r.kv['pattern_sha256_after'], r.kv['pattern_sha256_before'], describe(r));
  t.is(resizeReply?.['sizeBytes'], 512 * MiB, `resize reply ${JSON.stringify(resizeReply)}`);
  t.is(resizeReply?.['notified'], true, `the daemon should have notified QEMU: ${JSON.stringify(resizeReply)}`);
  t.is(after.status?.['sizeBytes'], 512 * MiB, `status after: ${JSON.stringify(after.status)}`);
  const stats = after.status?.['stats'] as Record<string, number> | undefined;
  t.is(stats?.['errors'], 0, `status stats: ${JSON.stringify(stats)}`);
  t.true((stats?.['writes'] ?? 0) > 0, `status stats: ${JSON.stringify(stats)}`);
  t.is(after.shrink?.status, 409, `a shrink should be refused with 409: ${JSON.stringify(after.shrink)}`);
  t.is(after.bad?.status, 400, `a bad size should be refused with 400: ${JSON.stringify(after.bad)}`);
  t.is(after.cli?.code, 0, `vhost-ctl status: ${JSON.stringify(after.cli)}`);
  t.regex(after.cli?.stdout ?? '', new RegExp(String(512 * MiB)), `vhost-ctl status should print the size: ${JSON.stringify(after.cli)}`);
  t.is(after.fileBytes, 512 * MiB, 'the backing file should have grown to 512 MiB');
  const summary = `online-resize: guest saw ${r.kv['sectors_before']} -> ${r.kv['sectors_after']} sectors ` +
    `${r.kv['resize_seen_after_ms'] ?? '?'} ms (guest poll, 100 ms steps) after it asked; reply ${JSON.stringify(resizeReply)}; ` +
    `status after ${JSON.stringify(after.status)}`;
  t.log(summary);
  console.log(summary);
});
