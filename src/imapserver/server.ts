// IMAP listeners: plain with STARTTLS (143) and implicit TLS (993).
import type net from 'node:net';
import { Session, type ImapListenerOptions } from './session.js';
import type { App } from '../server/app.js';
import { listen } from '../server/listen.js';
import { Log } from '../log/log.js';

const log = Log.pkg('imapserver');

export function listenIMAP(app: App, ip: string, port: number, opts: ImapListenerOptions, sockets: Set<net.Socket>): Promise<net.Server> {
  return listen(app, {
    ip,
    port,
    tls: opts.implicitTLS ? opts.certs : undefined,
    limiter: app.limits.connections.imap,
    tooMany: '* BYE [UNAVAILABLE] too many connections from your network, try again later\r\n',
    log,
    sockets,
    onSocket: (socket) => void new Session(app, socket, opts).run().catch((e) => log.error('session failed', e as Error)),
  });
}
