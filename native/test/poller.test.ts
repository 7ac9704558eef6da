// Checks Poller on Node's real event loop: it fires READABLE on eventfd readiness (8 bytes
// written with fs.writeSync), microtasks queued in a callback run before the next callback of
// the same poll phase (MakeCallback semantics: two eventfds made ready together; this test
// fails with a plain napi_call_function), a promise resolved in the callback settles
// promptly, stop() silences it and
// start() resumes it, close() is idempotent and no callback fires after it even with the fd
// still readable, DISCONNECT is reported when a socketpair peer closes, and libuv's one-poller
// per-fd rule surfaces as EEXIST. Child processes check that a throwing callback becomes an
// uncaught exception and that a worker with live pollers tears down cleanly.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

import * as native from '../index.js';
import { indexUrl, runChild, waitFor } from './helpers.js';

const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

function kick(fd: number): void {
  fs.writeSync(fd, ONE);
}

function drain(fd: number): void {
  try {
    fs.readSync(fd, Buffer.alloc(8));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
  }
}

test('event bits match libuv', (t) => {
  t.is(native.READABLE, 1);
  t.is(native.WRITABLE, 2);
  t.is(native.DISCONNECT, 4);
  t.is(native.Poller.READABLE, 1);
  t.is(native.Poller.WRITABLE, 2);
  t.is(native.Poller.DISCONNECT, 4);
});

test('fires on eventfd readiness with (0, READABLE) and this = the poller', async (t) => {
  const fd = native.eventfd(0, true);
  const order: string[] = [];
  let fired!: () => void;
  const firedPromise = new Promise<void>((resolve) => (fired = resolve));
  let receiver: unknown;
  const poller = new native.Poller(fd, function (this: unknown, status, events) {
    receiver = this;
    order.push(`event:${status}:${events}`);
    drain(fd);
    setImmediate(() => order.push('immediate'));
    void Promise.resolve().then(() => order.push('microtask'));
    fired();
  });
  t.teardown(() => {
    poller.close();
    fs.closeSync(fd);
  });
  poller.start(native.READABLE);
  await sleep(20);
  t.deepEqual(order, [], 'nothing before the eventfd is written');
  kick(fd);
  await firedPromise;
  await new Promise((resolve) => setImmediate(resolve));
  await sleep(5);
  t.deepEqual(order, ['event:0:1', 'microtask', 'immediate']);
  t.is(receiver, poller);
});

test('microtasks run right after each callback, before the next callback of the same poll phase', async (t) => {
  // Two eventfds made ready together come back from one epoll_wait; with MakeCallback
  // semantics each callback's microtask runs before the other callback (a plain call would
  // leave both microtasks until something else drains the queue).
  const fds = [native.eventfd(0, true), native.eventfd(0, true)];
  const order: string[] = [];
  const pollers = fds.map(
    (fd, i) =>
      new native.Poller(fd, () => {
        drain(fd);
        order.push(`event${i}`);
        void Promise.resolve().then(() => order.push(`micro${i}`));
      }),
  );
  t.teardown(() => {
    for (const poller of pollers) poller.close();
    for (const fd of fds) fs.closeSync(fd);
  });
  for (const poller of pollers) poller.start(native.READABLE);
  await sleep(10);
  for (const fd of fds) kick(fd);
  await waitFor(() => order.length === 4, 'both events and both microtasks');
  const first = order[0]?.slice(-1);
  const second = first === '0' ? '1' : '0';
  t.deepEqual(order, [`event${first}`, `micro${first}`, `event${second}`, `micro${second}`]);
});

test('a promise resolved inside the callback settles promptly', async (t) => {
  const fd = native.eventfd(0, true);
  let resolveIt!: (v: number) => void;
  const settled = new Promise<number>((resolve) => (resolveIt = resolve));
  const poller = new native.Poller(fd, (_status, events) => {
    drain(fd);
    resolveIt(events);
  });
  t.teardown(() => {
    poller.close();
    fs.closeSync(fd);
  });
  poller.start(native.READABLE);
  kick(fd);
  const start = process.hrtime.bigint();
  const winner = await Promise.race([settled, sleep(1000).then(() => -1)]);
  t.is(winner, native.READABLE);
  t.true(process.hrtime.bigint() - start < 500_000_000n);
});

test('stop() silences the poller and start() resumes it', async (t) => {
  const fd = native.eventfd(0, true);
  let calls = 0;
  const poller = new native.Poller(fd, () => {
    calls++;
    drain(fd);
  });
  t.teardown(() => {
    poller.close();
    fs.closeSync(fd);
  });
  poller.start(native.READABLE);
  kick(fd);
  await waitFor(() => calls === 1, 'the first event');
  poller.stop();
  kick(fd); // stays readable: nobody drains it while stopped
  await sleep(50);
  t.is(calls, 1, 'no callback while stopped');
  poller.start(native.READABLE);
  await waitFor(() => calls === 2, 'the pending readiness after start()');
  await sleep(20);
  t.is(calls, 2, 'drained: no further events');
});

test('close() is idempotent, no callback fires after it, and then closing the fd is safe', async (t) => {
  const fd = native.eventfd(0, true);
  let calls = 0;
  const poller = new native.Poller(fd, () => calls++);
  poller.start(native.READABLE | native.WRITABLE);
  kick(fd); // readable and writable: would fire on every loop turn
  poller.close();
  t.notThrows(() => poller.close());
  t.notThrows(() => poller.stop());
  fs.closeSync(fd);
  await sleep(50);
  t.is(calls, 0);
  t.like(t.throws(() => poller.start(native.READABLE)), { code: 'ERR_POLLER_CLOSED' });
});

test('closing from inside the callback stops further callbacks', async (t) => {
  const fd = native.eventfd(1, true); // readable at once and never drained
  t.teardown(() => fs.closeSync(fd));
  let calls = 0;
  const poller = new native.Poller(fd, () => {
    calls++;
    poller.close();
  });
  t.teardown(() => poller.close());
  poller.start(native.READABLE);
  await waitFor(() => calls > 0, 'the first event');
  await sleep(50);
  t.is(calls, 1);
});

test('one poller per fd: a second one is EEXIST while the first is started, until it is closed', (t) => {
  const fd = native.eventfd(0, true);
  const first = new native.Poller(fd, () => undefined);
  // libuv registers the fd with the loop on start, so that is when a second handle clashes.
  first.start(native.READABLE);
  const error = t.throws(() => new native.Poller(fd, () => undefined));
  t.like(error, { code: 'EEXIST', errno: -os.constants.errno.EEXIST, syscall: 'uv_poll_init' });
  first.close();
  const second = new native.Poller(fd, () => undefined);
  second.close();
  fs.closeSync(fd);
});

test('reports DISCONNECT when the socket peer closes', async (t) => {
  const [a, b] = native.socketpair();
  let seen = 0;
  const done = new Promise<void>((resolve) => {
    const poller = new native.Poller(b, (status, events) => {
      t.is(status, 0);
      seen |= events;
      poller.close();
      resolve();
    });
    poller.start(native.READABLE | native.DISCONNECT);
  });
  fs.closeSync(a);
  await done;
  t.is(seen & native.DISCONNECT, native.DISCONNECT);
  t.deepEqual(native.recvMsg(b, new Uint8Array(4), 0), { bytes: 0, fds: [] });
  fs.closeSync(b);
});

test('Poller rejects bad arguments', (t) => {
  const fd = native.eventfd(0, true);
  t.throws(() => new native.Poller('x' as unknown as number, () => undefined), {
    instanceOf: TypeError,
    message: "Poller: argument 'fd' must be a number",
  });
  t.throws(() => new native.Poller(fd, 5 as unknown as () => void), {
    instanceOf: TypeError,
    message: /'onEvents' must be a function/,
  });
  const poller = new native.Poller(fd, () => undefined);
  t.throws(() => poller.start(0), { instanceOf: RangeError, message: /Poller.start: argument 'events'/ });
  t.throws(() => poller.start(8), { instanceOf: RangeError });
  poller.close();
  fs.closeSync(fd);
  // epoll cannot watch a regular file.
  const fileFd = fs.openSync(process.execPath, 'r');
  t.like(t.throws(() => new native.Poller(fileFd, () => undefined)), { code: 'EPERM', syscall: 'uv_poll_init' });
  fs.closeSync(fileFd);
});

test('an exception thrown by the callback is an uncaught exception', async (t) => {
  const child = await runChild(`
    import fs from 'node:fs';
    process.on('uncaughtException', (error) => {
      console.log('caught:' + error.message);
      process.exit(0);
    });
    const fd = N.eventfd(1, true);
    const poller = new N.Poller(fd, () => { throw new Error('boom-from-poller'); });
    poller.start(N.READABLE);
  `);
  t.is(child.status, 0, child.stderr);
  t.is(child.stdout.trim(), 'caught:boom-from-poller');
});

test('a worker with live pollers tears down cleanly (env cleanup hook)', async (t) => {
  // Worker teardown runs the env cleanup hooks (ours closes live pollers and waits for their
  // close callbacks), finalizes the wrapped objects and closes the worker's uv loop; a handle
  // freed too early or a callback into a terminating isolate aborts the whole process (this
  // test caught the latter). It checks the outcome, not that the hook itself ran.
  const workerSource = `
    // ESM: the worker inherits the parent's --input-type=module.
    import { parentPort } from 'node:worker_threads';
    import * as N from ${JSON.stringify(indexUrl)};
    {
      const fds = [N.eventfd(1, true), N.eventfd(0, true), N.eventfd(0, true)];
      const started = new N.Poller(fds[0], () => undefined);
      started.start(N.READABLE); // fires on every loop turn until teardown
      const stopped = new N.Poller(fds[1], () => undefined);
      stopped.start(N.READABLE);
      stopped.stop();
      const closed = new N.Poller(fds[2], () => undefined);
      closed.close();
      globalThis.keep = [started, stopped, closed];
      parentPort.postMessage('ready');
    }
  `;
  const child = await runChild(`
    import { Worker } from 'node:worker_threads';
    for (let i = 0; i < 3; i++) {
      const worker = new Worker(${JSON.stringify(workerSource)}, { eval: true });
      await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
      await new Promise((resolve) => setTimeout(resolve, 20));
      await worker.terminate();
    }
    console.log('ok');
  `);
  t.is(child.signal, null, child.stderr);
  t.is(child.status, 0, child.stderr);
  t.is(child.stdout.trim(), 'ok');
});
