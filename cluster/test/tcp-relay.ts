/**
 * A TCP relay on 127.0.0.1 for half-open connection tests: `blackhole()` makes every connection
 * open now drop all bytes in both directions, silently (no FIN, no RST), as when the peer died
 * (or its host lost power) while partitioned; connections made later pass normally.
 */
import { createConnection, createServer } from 'node:net';
import type { Socket } from 'node:net';

export interface TcpRelay {
  port: number;
  /** Connections accepted so far. */
  connections: () => number;
  blackhole: () => void;
  close: () => void;
}

/** A relay to 127.0.0.1:`port`. */
export function tcpRelay(port: number): Promise<TcpRelay> {
  const pairs: { a: Socket; b: Socket; dead: boolean }[] = [];
  const server = createServer((a) => {
    const b = createConnection({ host: '127.0.0.1', port });
    const pair = { a, b, dead: false };
    pairs.push(pair);
    a.on('data', (d) => { if (!pair.dead) b.write(d); });
    b.on('data', (d) => { if (!pair.dead) a.write(d); });
    // A dead pair never closes its other end: that is the half-open connection.
    a.on('close', () => { if (!pair.dead) b.destroy(); });
    b.on('close', () => { if (!pair.dead) a.destroy(); });
    a.on('error', () => undefined);
    b.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    resolve({
      port: typeof addr === 'object' && addr !== null ? addr.port : 0,
      connections: () => pairs.length,
      blackhole: () => { for (const p of pairs) p.dead = true; },
      close: () => { for (const p of pairs) { p.a.destroy(); p.b.destroy(); } server.close(); },
    });
  }));
}
