/**
 * The daemon's local control interface: HTTP/1.1 over a Unix socket (mode 0600), so only the
 * host's operator (and the tools it runs) can reach it; the guest never can.
 *
 *   GET  /status            → 200 DaemonStatus as JSON
 *   POST /resize            body {"size": "2G"} or {"sizeBytes": N}
 *                           → 200 {"sizeBytes": N, "notified": bool}; 400 bad input;
 *                             409 shrink refused; 501 store cannot grow
 *
 * Why HTTP: curl and every language speak it (`curl --unix-socket S http://x/status`); node's
 * own http module serves it with no dependency.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { Logger } from 'pino';
import type { VhostDaemon } from './daemon.js';
import { parseSize } from './size.js';

const MAX_BODY_BYTES = 4096;

export class ControlServer {
  private server: http.Server | null = null;

  constructor(
    private readonly socketPath: string,
    private readonly daemon: VhostDaemon,
    private readonly log: Logger,
  ) {}

  start(cb: (err: Error | null) => void): void {
    fs.rmSync(this.socketPath, { force: true });
    const server = http.createServer((req, res) => this.route(req, res));
    server.on('error', (err) => cb(err));
    server.listen(this.socketPath, () => {
      fs.chmodSync(this.socketPath, 0o600);
      this.log.info({ controlSocket: this.socketPath }, 'control socket listening');
      cb(null);
    });
    this.server = server;
  }

  stop(cb: () => void): void {
    const server = this.server;
    this.server = null;
    if (server === null) return cb();
    server.close(() => {
      fs.rmSync(this.socketPath, { force: true });
      cb();
    });
    server.closeAllConnections();
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    if (req.method === 'GET' && req.url === '/status') return send(200, this.daemon.status());
    if (req.method === 'POST' && req.url === '/resize') return this.readJson(req, send, (body) => this.resize(body, send));
    send(404, { error: 'not found', routes: ['GET /status', 'POST /resize'] });
  }

  private readJson(req: http.IncomingMessage, send: (code: number, body: unknown) => void, then: (body: Record<string, unknown>) => void): void {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > MAX_BODY_BYTES) req.destroy();
    });
    req.on('end', () => {
      try {
        const body: unknown = JSON.parse(text);
        if (typeof body !== 'object' || body === null) throw new Error('not an object');
        then(body as Record<string, unknown>);
      } catch {
        send(400, { error: 'body must be a JSON object' });
      }
    });
  }

  private resize(body: Record<string, unknown>, send: (code: number, body: unknown) => void): void {
    let sizeBytes: number;
    try {
      if (typeof body.sizeBytes === 'number') sizeBytes = body.sizeBytes;
      else if (typeof body.size === 'string') sizeBytes = parseSize(body.size);
      else throw new Error('give "size" (e.g. "2G") or "sizeBytes"');
    } catch (err) {
      return send(400, { error: (err as Error).message });
    }
    this.daemon.resize(sizeBytes, (err, result) => {
      if (err === null) return send(200, result);
      const code = (err as NodeJS.ErrnoException).code;
      const status = code === 'ESHRINK' ? 409 : code === 'ENOTSUP' || code === 'EROFS' ? 501 : code === 'EINVAL' ? 400 : 500;
      send(status, { error: err.message, code });
    });
  }
}
