// SMTP listeners: plain (SMTP, submission with STARTTLS) and implicit TLS (submissions).
import net from 'node:net';
import tls from 'node:tls';
import { Session, type ListenerOptions } from './session.js';
import { isLoopback, type App } from '../server/app.js';
import { plainIP } from '../smtp/received.js';
import { Log } from '../log/log.js';

const log = Log.pkg('smtpserver');
const TOOMANY = '421 4.7.0 too many connections from your network, try again later\r\n';

/** Starts an SMTP listener; resolves once it accepts connections. */
export function listenSMTP(app: App, ip: string, port: number, opts: ListenerOptions, sockets: Set<net.Socket>): Promise<net.Server> {
  const onSocket = (socket: net.Socket) => {
    const ip = plainIP(socket.remoteAddress);
    // Connection limits per network; localserve lets loopback clients open as many as they like.
    if (!(app.localserve && isLoopback(ip))) {
      const release = app.limits.connectionRate.canAdd(ip) ? app.limits.connections.smtp.acquire(ip) : undefined;
      if (!release) {
        log.info('too many connections', { remote: ip });
        socket.end(TOOMANY);
        socket.on('error', () => {});
        return;
      }
      app.limits.connectionRate.add(ip);
      socket.once('close', release);
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    new Session(app, socket, opts).run().catch((e) => log.error('session failed', e as Error));
  };
  const server =
    opts.kind === 'submissions'
      ? tls.createServer(opts.certs!.serverOptions({ requestCert: true, rejectUnauthorized: false }), (s) => onSocket(s))
      : net.createServer(onSocket);
  if (server instanceof tls.Server) server.on('tlsClientError', (e) => log.debug('tls handshake failed', e));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: ip, port, ipv6Only: ip.includes(':') }, () => {
      server.off('error', reject);
      log.info('listening', { kind: opts.kind, ip, port });
      resolve(server);
    });
  });
}
