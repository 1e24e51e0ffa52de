// SMTP listeners: plain (SMTP, submission with STARTTLS) and implicit TLS (submissions).
import net from 'node:net';
import tls from 'node:tls';
import { Session, type ListenerOptions } from './session.js';
import type { App } from '../server/app.js';
import { Log } from '../log/log.js';

const log = Log.pkg('smtpserver');

/** Starts an SMTP listener; resolves once it accepts connections. */
export function listenSMTP(app: App, ip: string, port: number, opts: ListenerOptions, sockets: Set<net.Socket>): Promise<net.Server> {
  const onSocket = (socket: net.Socket) => {
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
