// Checks the Unix-socket half of the shim against the kernel: fds really travel over
// socketpair() (identity and order checked through eventfd counters), data arrives intact into
// exactly the caller's view, truncated fd sets throw ECTRUNC without leaking fds (counted in
// /proc/self/fd), EOF is bytes 0, EAGAIN is null, and unixListen/unixConnect/accept work on a
// real path under os.tmpdir() with the NONBLOCK/CLOEXEC flags read back from /proc.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as native from '../index.js';
import { fdFlags, isOpen, O_CLOEXEC, openFdCount } from './helpers.js';

const O_NONBLOCK = fs.constants.O_NONBLOCK;

function eventfdCounter(fd: number): bigint {
  const buf = Buffer.alloc(8);
  fs.readSync(fd, buf, 0, 8, null);
  return buf.readBigUInt64LE(0);
}

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

function closeAll(fds: readonly number[]): void {
  for (const fd of fds) fs.closeSync(fd);
}

test('socketpair returns two connected non-blocking CLOEXEC sockets', (t) => {
  const [a, b] = native.socketpair();
  t.not(a, b);
  for (const fd of [a, b]) {
    t.is(fdFlags(fd) & O_NONBLOCK, O_NONBLOCK);
    t.is(fdFlags(fd) & O_CLOEXEC, O_CLOEXEC);
  }
  closeAll([a, b]);
});

for (const count of [0, 1, 8]) {
  test(`sendMsg/recvMsg pass ${count} fds with the data intact`, (t) => {
    const [a, b] = native.socketpair();
    const sent = Array.from({ length: count }, (_, i) => native.eventfd(100 + i, true));
    const data = pattern(4000, count);
    t.is(native.sendMsg(a, data, sent), data.length);

    const buf = new Uint8Array(8192);
    const result = native.recvMsg(b, buf, 32);
    if (result === null) return t.fail('recvMsg returned null with data pending');
    t.is(result.bytes, data.length);
    t.deepEqual(buf.subarray(0, result.bytes), data);
    t.is(result.fds.length, count);
    result.fds.forEach((fd, i) => {
      t.false(sent.includes(fd), 'a received fd is a new descriptor');
      t.is(fdFlags(fd) & O_CLOEXEC, O_CLOEXEC, 'MSG_CMSG_CLOEXEC applied');
      t.is(eventfdCounter(fd), BigInt(100 + i), 'same eventfd, same order');
    });
    closeAll([...sent, ...result.fds, a, b]);
  });
}

test('recvMsg writes into exactly the view it is given', (t) => {
  const [a, b] = native.socketpair();
  native.sendMsg(a, pattern(64, 1), []);
  const backing = new Uint8Array(32).fill(0xee);
  const result = native.recvMsg(b, backing.subarray(8, 24), 0);
  t.deepEqual(result, { bytes: 16, fds: [] });
  t.deepEqual(backing.subarray(0, 8), new Uint8Array(8).fill(0xee));
  t.deepEqual(backing.subarray(8, 24), pattern(64, 1).subarray(0, 16));
  t.deepEqual(backing.subarray(24), new Uint8Array(8).fill(0xee));
  closeAll([a, b]);
});

test('recvMsg without fds returns the shared frozen empty array', (t) => {
  const [a, b] = native.socketpair();
  const buf = new Uint8Array(8);
  native.sendMsg(a, pattern(1, 0), []);
  const first = native.recvMsg(b, buf, 4);
  native.sendMsg(a, pattern(1, 0), []);
  const second = native.recvMsg(b, buf, 4);
  t.true(first !== null && second !== null);
  t.is(first?.fds, second?.fds);
  t.true(Object.isFrozen(first?.fds));
  closeAll([a, b]);
});

test('recvMsg returns null on EAGAIN and bytes 0 on EOF', (t) => {
  const [a, b] = native.socketpair();
  t.is(native.recvMsg(b, new Uint8Array(16), 4), null);
  fs.closeSync(a);
  t.deepEqual(native.recvMsg(b, new Uint8Array(16), 4), { bytes: 0, fds: [] });
  fs.closeSync(b);
});

test('more fds than maxFds throws ECTRUNC and closes every fd that arrived', (t) => {
  const [a, b] = native.socketpair();
  const sent = Array.from({ length: 8 }, () => native.eventfd(0, true));
  // Warm up anything lazily allocated before counting.
  native.sendMsg(a, pattern(4, 0), []);
  native.recvMsg(b, new Uint8Array(4), 2);
  const before = openFdCount();
  for (const maxFds of [0, 2, 7]) {
    for (let i = 0; i < 10; i++) {
      t.is(native.sendMsg(a, pattern(16, i), sent), 16);
      const error = t.throws(() => native.recvMsg(b, new Uint8Array(64), maxFds));
      t.like(error, { code: 'ECTRUNC', syscall: 'recvmsg', errno: -os.constants.errno.EMSGSIZE });
    }
  }
  t.is(openFdCount(), before, 'no received fd left open');
  // The connection itself still works afterwards.
  native.sendMsg(a, pattern(3, 9), [sent[0] as number]);
  const result = native.recvMsg(b, new Uint8Array(8), 1);
  t.is(result?.fds.length, 1);
  closeAll([...sent, ...(result?.fds ?? []), a, b]);
});

test('sendMsg returns null once the socket buffer is full', (t) => {
  const [a, b] = native.socketpair();
  const chunk = new Uint8Array(65536);
  let total = 0;
  let last: number | null = 0;
  for (let i = 0; i < 10_000 && last !== null; i++) {
    last = native.sendMsg(a, chunk, []);
    if (last !== null) total += last;
  }
  t.is(last, null);
  t.true(total > 0);
  closeAll([a, b]);
});

test('sendMsg to a closed peer throws EPIPE instead of raising SIGPIPE', (t) => {
  const [a, b] = native.socketpair();
  fs.closeSync(b);
  t.like(t.throws(() => native.sendMsg(a, pattern(8, 0), [])), { code: 'EPIPE', syscall: 'sendmsg' });
  fs.closeSync(a);
});

test('socket calls reject bad arguments with TypeError/RangeError', (t) => {
  const [a, b] = native.socketpair();
  t.throws(() => native.recvMsg(b, new Uint16Array(4) as unknown as Uint8Array, 1), {
    instanceOf: TypeError,
    message: /recvMsg: argument 'buf' must be a Uint8Array/,
  });
  t.throws(() => native.recvMsg(b, new Uint8Array(0), 1), { instanceOf: RangeError, message: /'buf'/ });
  t.throws(() => native.recvMsg(b, new Uint8Array(4), 65), { instanceOf: RangeError, message: /'maxFds'/ });
  t.throws(() => native.recvMsg(1.5, new Uint8Array(4), 1), { instanceOf: RangeError, message: /'fd'/ });
  t.throws(() => native.sendMsg(a, new Uint8Array(1), new Array<number>(65).fill(0)), { instanceOf: RangeError });
  t.throws(() => native.sendMsg(a, new Uint8Array(0), [a]), { instanceOf: RangeError, message: /'data'/ });
  t.throws(() => native.sendMsg(a, new Uint8Array(1), [-1]), { instanceOf: RangeError, message: /'fds\[\]'/ });
  t.throws(() => native.sendMsg(a, new Uint8Array(1), 'x' as unknown as number[]), { instanceOf: TypeError });
  t.throws(() => native.unixListen('', 1), { instanceOf: RangeError });
  t.throws(() => native.unixListen('x'.repeat(200), 1), { instanceOf: RangeError, message: /at most 107 bytes/ });
  // A bad fd in the list is the kernel's to reject, as a SystemError.
  t.like(t.throws(() => native.sendMsg(a, new Uint8Array(1), [999_999])), { code: 'EBADF', syscall: 'sendmsg' });
  closeAll([a, b]);
});

test('unixListen, unixConnect and accept over a path in os.tmpdir()', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-native-'));
  const socketPath = path.join(dir, 'vhost.sock');
  const listenFd = native.unixListen(socketPath, 4);
  t.true(fs.statSync(socketPath).isSocket());
  t.is(native.accept(listenFd), null, 'nothing pending');

  const client = native.unixConnect(socketPath);
  const server = native.accept(listenFd);
  if (server === null) return t.fail('accept returned null with a connection pending');
  for (const fd of [listenFd, client, server]) {
    t.is(fdFlags(fd) & O_NONBLOCK, O_NONBLOCK);
    t.is(fdFlags(fd) & O_CLOEXEC, O_CLOEXEC);
  }
  t.is(native.accept(listenFd), null);

  const efd = native.eventfd(42, true);
  native.sendMsg(client, pattern(12, 3), [efd]);
  const buf = new Uint8Array(12);
  const result = native.recvMsg(server, buf, 4);
  t.is(result?.bytes, 12);
  t.deepEqual(buf, pattern(12, 3));
  const got = result?.fds[0];
  if (got === undefined) return t.fail('no fd received');
  t.is(eventfdCounter(got), 42n);
  native.sendMsg(server, pattern(5, 4), []);
  t.is(native.recvMsg(client, new Uint8Array(8), 0)?.bytes, 5);

  // A stale socket file from a previous listener is replaced.
  closeAll([listenFd, client, server, efd, got]);
  t.true(fs.existsSync(socketPath));
  const again = native.unixListen(socketPath, 4);
  const client2 = native.unixConnect(socketPath);
  t.not(native.accept(again), null);
  closeAll([again, client2]);
  fs.rmSync(dir, { recursive: true });
});

test('unixListen leaves a non-socket file alone; unixConnect reports the path', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-native-'));
  const filePath = path.join(dir, 'not-a-socket');
  fs.writeFileSync(filePath, 'keep me');
  t.like(t.throws(() => native.unixListen(filePath, 1)), { code: 'EADDRINUSE', syscall: 'bind', path: filePath });
  t.is(fs.readFileSync(filePath, 'utf8'), 'keep me');
  const missing = path.join(dir, 'missing.sock');
  const error = t.throws(() => native.unixConnect(missing));
  t.like(error, { code: 'ENOENT', errno: -os.constants.errno.ENOENT, syscall: 'connect', path: missing });
  t.regex(error?.message ?? '', /^connect failed: ENOENT/);
  fs.rmSync(dir, { recursive: true });
});

test('a closed fd fails with a SystemError-shaped EBADF', (t) => {
  const [a, b] = native.socketpair();
  closeAll([a, b]);
  t.false(isOpen(a));
  const error = t.throws(() => native.recvMsg(a, new Uint8Array(4), 0));
  t.like(error, { code: 'EBADF', errno: -os.constants.errno.EBADF, syscall: 'recvmsg' });
  t.like(t.throws(() => native.accept(a)), { code: 'EBADF', syscall: 'accept4' });
});
