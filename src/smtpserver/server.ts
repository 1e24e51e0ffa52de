// SMTP listeners: plain (SMTP, submission with STARTTLS) and implicit TLS (submissions).
import type net from 'node:net';
import { Session, type ListenerOptions } from './session.js';
import type { App } from '../server/app.js';
import { listen } from '../server/listen.js';
import { Log } from '../log/log.js';

const log = Log.pkg('smtpserver');

/** Starts an SMTP listener; resolves once it accepts connections. */
export function listenSMTP(app: App, ip: string, port: number, opts: ListenerOptions, sockets: Set<net.Socket>): Promise<net.Server> {
  return listen(app, {
    ip,
    port,
    tls: opts.kind === 'submissions' ? opts.certs : undefined,
    limiter: app.limits.connections.smtp,
    tooMany: '421 4.7.0 too many connections from your network, try again later\r\n',
    log,
    sockets,
    onSocket: (socket) => void new Session(app, socket, opts).run().catch((e) => log.error('session failed', e as Error)),
  });
}
