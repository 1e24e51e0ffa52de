// Accepting connections for a protocol: plain or implicit TLS, connection limits per
// network, and tracking of open sockets for shutdown.
import net from 'node:net';
import tls from 'node:tls';
import { isLoopback, type App } from './app.js';
import type { CertStore } from '../tls/certs.js';
import type { ConnectionLimiter } from '../limits/limiter.js';
import { plainIP } from '../smtp/received.js';
import type { Log } from '../log/log.js';

export interface ListenOptions {
  ip: string;
  port: number;
  /** Implicit TLS with these certificates; client certificates are requested for SASL EXTERNAL. */
  tls?: CertStore;
  limiter: ConnectionLimiter;
  /** Sent to a client over the connection limits before closing. */
  tooMany: string;
  log: Log;
  /** Open sockets, destroyed at shutdown if still open. */
  sockets: Set<net.Socket>;
  onSocket(socket: net.Socket | tls.TLSSocket): void;
}

/** Starts a listener; resolves once it accepts connections. */
export function listen(app: App, o: ListenOptions): Promise<net.Server> {
  const accept = (socket: net.Socket) => {
    const ip = plainIP(socket.remoteAddress);
    socket.on('error', () => {});
    // Connection limits per network; localserve lets loopback clients open as many as they like.
    if (!(app.localserve && isLoopback(ip))) {
      const release = app.limits.connectionRate.canAdd(ip) ? o.limiter.acquire(ip) : undefined;
      if (!release) {
        o.log.info('too many connections', { remote: ip });
        socket.end(o.tooMany);
        return;
      }
      app.limits.connectionRate.add(ip);
      socket.once('close', release);
    }
    o.sockets.add(socket);
    socket.on('close', () => o.sockets.delete(socket));
    socket.setNoDelay(true);
    o.onSocket(socket);
  };
  const server = o.tls ? tls.createServer(o.tls.serverOptions({ requestCert: true, rejectUnauthorized: false }), accept) : net.createServer(accept);
  if (server instanceof tls.Server) server.on('tlsClientError', (e) => o.log.debug('tls handshake failed', e));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.ip, port: o.port, ipv6Only: o.ip.includes(':') }, () => {
      server.off('error', reject);
      o.log.info('listening', { ip: o.ip, port: o.port, tls: o.tls !== undefined });
      resolve(server);
    });
  });
}
