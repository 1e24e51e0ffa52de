// IMAP listeners: plain with STARTTLS (143) and implicit TLS (993).
import net from 'node:net';
import tls from 'node:tls';
import { Session, type ImapListenerOptions } from './session.js';
import type { App } from '../server/app.js';
import { Log } from '../log/log.js';

const log = Log.pkg('imapserver');

export function listenIMAP(app: App, ip: string, port: number, opts: ImapListenerOptions, sockets: Set<net.Socket>): Promise<net.Server> {
  const onSocket = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    new Session(app, socket, opts).run().catch((e) => log.error('session failed', e as Error));
  };
  const server = opts.implicitTLS ? tls.createServer(opts.certs!.serverOptions({ requestCert: true, rejectUnauthorized: false }), (s) => onSocket(s)) : net.createServer(onSocket);
  if (server instanceof tls.Server) server.on('tlsClientError', (e) => log.debug('tls handshake failed', e));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: ip, port, ipv6Only: ip.includes(':') }, () => {
      server.off('error', reject);
      log.info('listening', { tls: opts.implicitTLS, ip, port });
      resolve(server);
    });
  });
}
