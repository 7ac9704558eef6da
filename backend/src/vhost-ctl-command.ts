/**
 * `strata vhost-ctl`: talks to a running `strata vhost` over its control socket.
 *
 *   strata vhost-ctl --control-socket PATH status
 *   strata vhost-ctl --control-socket PATH resize SIZE
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

export const VHOST_CTL_USAGE = `Usage: strata vhost-ctl --control-socket PATH (status | resize SIZE)

  status        print the daemon's status and I/O statistics as JSON
  resize SIZE   grow the served disk to SIZE (e.g. 20G); the guest sees it without a reboot

Exit codes: 0 ok, 1 error (daemon refused or unreachable), 2 usage.`;

export function runVhostCtl(argv: string[], exit: (code: number) => void): void {
  const { values, positionals } = parseArgs({ args: argv, options: { 'control-socket': { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } }, allowPositionals: true });
  if (values.help) {
    process.stdout.write(VHOST_CTL_USAGE + '\n');
    return exit(0);
  }
  const socketPath = values['control-socket'];
  const [verb, arg] = positionals;
  if (socketPath === undefined || (verb !== 'status' && verb !== 'resize') || (verb === 'resize') !== (arg !== undefined)) {
    process.stderr.write(VHOST_CTL_USAGE + '\n');
    return exit(2);
  }
  const body = verb === 'resize' ? JSON.stringify({ size: arg }) : undefined;
  const req = http.request({ socketPath, path: verb === 'status' ? '/status' : '/resize', method: verb === 'status' ? 'GET' : 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    res.on('end', () => {
      const ok = res.statusCode === 200;
      (ok ? process.stdout : process.stderr).write(text);
      exit(ok ? 0 : 1);
    });
  });
  req.on('error', (err) => {
    process.stderr.write(`strata vhost-ctl: cannot reach ${socketPath}: ${err.message}\n`);
    exit(1);
  });
  req.end(body);
}
