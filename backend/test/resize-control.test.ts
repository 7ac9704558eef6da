/**
 * Online resize and the control socket: a test front-end gives the daemon a backend channel
 * (SET_BACKEND_REQ_FD over a socketpair); a resize through the HTTP control socket must grow
 * the file, send VHOST_USER_BACKEND_CONFIG_CHANGE_MSG on that channel, and report the new
 * capacity in GET_CONFIG. Shrinking and bad input get 409/400 and change nothing.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import * as native from '../../native/index.js';
import { ControlServer } from '../src/control-server.js';
import { VHOST_USER_PROTOCOL_F_BACKEND_REQ, VHOST_USER_PROTOCOL_F_CONFIG, VHOST_USER_PROTOCOL_F_MQ, VHOST_USER_PROTOCOL_F_REPLY_ACK } from '../src/vhost-user/features.js';
import { BackendReq, FrontendReq, decodeHeader } from '../src/vhost-user/message.js';
import { startDaemon } from './helpers.js';

function httpCall(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: urlPath }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function waitReadable(fd: number, buf: Uint8Array, timeoutMs = 3000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = native.recvMsg(fd, buf, 4);
    if (r !== null) return r.bytes;
    if (Date.now() > deadline) throw new Error('nothing on the backend channel');
    await new Promise((res) => setTimeout(res, 5));
  }
}

test('resize over the control socket grows the disk and notifies the front-end', async (t) => {
  const fx = startDaemon({ sizeBytes: 4 << 20, numQueues: 1 });
  const control = new ControlServer(path.join(fx.dir, 'ctl.sock'), fx.daemon, pino({ level: 'silent' }));
  await new Promise<void>((r, j) => control.start((e) => (e ? j(e) : r())));
  t.teardown(async () => {
    await new Promise<void>((r) => control.stop(r));
    await fx.cleanup();
  });
  t.is(fs.statSync(path.join(fx.dir, 'ctl.sock')).mode & 0o777, 0o600, 'control socket is owner-only');
  const fe = fx.connect();
  await fe.negotiate({ numQueues: 1, queueSize: 64, protocolFeatures: VHOST_USER_PROTOCOL_F_MQ | VHOST_USER_PROTOCOL_F_REPLY_ACK | VHOST_USER_PROTOCOL_F_CONFIG | VHOST_USER_PROTOCOL_F_BACKEND_REQ });
  const [ours, theirs] = native.socketpair();
  t.is(await fe.callAck(FrontendReq.SET_BACKEND_REQ_FD, new Uint8Array(0), [theirs]), 0n);
  fs.closeSync(theirs);

  const before = await httpCall(path.join(fx.dir, 'ctl.sock'), 'GET', '/status');
  t.is(before.status, 200);
  t.is(before.json.sizeBytes, 4 << 20);
  t.true(before.json.connected as boolean);

  const res = await httpCall(path.join(fx.dir, 'ctl.sock'), 'POST', '/resize', { size: '8M' });
  t.is(res.status, 200);
  t.deepEqual(res.json, { sizeBytes: 8 << 20, notified: true });
  t.is(fs.statSync(fx.filePath).size, 8 << 20, 'the file grew');

  const buf = new Uint8Array(64);
  const n = await waitReadable(ours, buf);
  t.is(n, 12, 'a header-only message');
  t.is(decodeHeader(buf, 0).request, BackendReq.CONFIG_CHANGE_MSG);
  fs.closeSync(ours);

  const cfgReq = new Uint8Array(12 + 8);
  new DataView(cfgReq.buffer).setUint32(4, 8, true);
  const cfg = (await fe.call(FrontendReq.GET_CONFIG, cfgReq)).payload.subarray(12);
  t.is(new DataView(cfg.buffer, cfg.byteOffset).getBigUint64(0, true), BigInt((8 << 20) / 512), 'GET_CONFIG shows the new capacity');

  const shrink = await httpCall(path.join(fx.dir, 'ctl.sock'), 'POST', '/resize', { size: '2M' });
  t.is(shrink.status, 409);
  t.is(shrink.json.code, 'ESHRINK');
  const bad = await httpCall(path.join(fx.dir, 'ctl.sock'), 'POST', '/resize', { size: '1000' });
  t.is(bad.status, 400);
  t.is(fs.statSync(fx.filePath).size, 8 << 20, 'refused resizes changed nothing');
  t.is((await httpCall(path.join(fx.dir, 'ctl.sock'), 'GET', '/nope')).status, 404);
});
