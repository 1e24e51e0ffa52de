// The web server of a listener: one HTTP or HTTPS server per IP and port, serving the web
// services enabled for that port in postern.conf, dispatched as described in router.ts.
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { App } from '../server/app.js';
import { newCid } from '../server/app.js';
import type { Listener } from '../config/static.js';
import type { CertStore } from '../tls/certs.js';
import { plainIP } from '../smtp/received.js';
import { Log } from '../log/log.js';
import { fallbackHandlers, firstHandlers, serviceHandler, type ServiceKind, type WebContext } from './router.js';
import { sendText } from './util.js';
import { autoconfigHandler, autodiscoverHandler, mtastsHandler } from './wellknown.js';
import { serveWebHandlers, upgradeWebHandlers } from '../webserver/webserver.js';
import './services.js';
import '../webapi/service.js';

const log = Log.pkg('http');

/** What one port of a listener serves. */
export interface PortPlan {
  port: number;
  tls: boolean;
  /** Longest path first. */
  services: { kind: ServiceKind; path: string }[];
  mtasts: boolean;
  autoconfig: boolean;
  /** Serves the WebHandlers and WebDomainRedirects of domains.conf, before the services. */
  webserver: boolean;
}

const kinds = ['Account', 'Admin', 'Webmail', 'WebAPI'] as const;

/** Groups the enabled web services of a listener by port; throws on a port wanted both with and without TLS. */
export function planPorts(name: string, l: Listener, hasCerts: boolean): PortPlan[] {
  const ports = new Map<number, PortPlan>();
  const use = (what: string, port: number, tls: boolean): PortPlan => {
    if (tls && !hasCerts) throw new Error(`listener ${name}: ${what} needs TLS certificates`);
    let p = ports.get(port);
    if (!p) ports.set(port, (p = { port, tls, services: [], mtasts: false, autoconfig: false, webserver: false }));
    if (p.tls !== tls) throw new Error(`listener ${name}: port ${port} is used both with and without TLS (${what})`);
    return p;
  };
  for (const kind of kinds) {
    for (const tls of [false, true]) {
      const field = `${kind}HTTP${tls ? 'S' : ''}` as const;
      const s = l[field];
      if (s.Enabled) use(field, s.Port, tls).services.push({ kind, path: s.Path });
    }
  }
  if (l.MetricsHTTP.Enabled) use('MetricsHTTP', l.MetricsHTTP.Port, false).services.push({ kind: 'Metrics', path: l.MetricsHTTP.Path });
  if (l.AutoconfigHTTPS.Enabled) use('AutoconfigHTTPS', l.AutoconfigHTTPS.Port, !l.AutoconfigHTTPS.NonTLS).autoconfig = true;
  if (l.MTASTSHTTPS.Enabled) use('MTASTSHTTPS', l.MTASTSHTTPS.Port, !l.MTASTSHTTPS.NonTLS).mtasts = true;
  if (l.WebserverHTTP.Enabled) use('WebserverHTTP', l.WebserverHTTP.Port, false).webserver = true;
  if (l.WebserverHTTPS.Enabled) use('WebserverHTTPS', l.WebserverHTTPS.Port, true).webserver = true;
  for (const p of ports.values()) {
    p.services.sort((a, b) => b.path.length - a.path.length);
    const paths = p.services.map((s) => s.path);
    const dup = paths.find((x, i) => paths.indexOf(x) !== i);
    if (dup) throw new Error(`listener ${name}: port ${p.port} has two services at path ${dup}`);
  }
  return [...ports.values()];
}

function hostOf(req: http.IncomingMessage): string {
  const h = (req.headers.host ?? '').toLowerCase();
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(h) ?? /^([^:]*)(?::\d+)?$/.exec(h);
  return (m?.[1] ?? '').replace(/\.$/, '');
}

function webContext(app: App, name: string, l: Listener, plan: PortPlan, req: http.IncomingMessage): WebContext | undefined {
  const cid = newCid();
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
  return {
    app,
    listenerName: name,
    listener: l,
    tls: plan.tls,
    remoteIP: plainIP(req.socket.remoteAddress),
    host: hostOf(req),
    url,
    base: '/',
    cid,
    log: log.with({ cid }),
  };
}

async function dispatch(app: App, name: string, l: Listener, plan: PortPlan, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const ctx = webContext(app, name, l, plan, req);
  if (!ctx) return sendText(res, 400, 'bad request\n');
  const url = ctx.url;
  ctx.log.debug('request', { method: req.method, host: ctx.host, path: url.pathname, remote: ctx.remoteIP });
  for (const h of firstHandlers()) if (await h(req, res, ctx)) return;
  const p = url.pathname;
  if (plan.mtasts && p === '/.well-known/mta-sts.txt' && ctx.host.startsWith('mta-sts.')) return mtastsHandler(req, res, ctx);
  if (plan.autoconfig) {
    if (p === '/mail/config-v1.1.xml' || p === '/.well-known/autoconfig/mail/config-v1.1.xml') return autoconfigHandler(req, res, ctx);
    if (p.toLowerCase() === '/autodiscover/autodiscover.xml') return autodiscoverHandler(req, res, ctx);
  }
  // As in mox, configured handlers may take over paths of the services on their domains.
  if (plan.webserver && (await serveWebHandlers(req, res, ctx))) return;
  for (const s of plan.services) {
    if (p + '/' === s.path) {
      res.writeHead(308, { Location: s.path + url.search });
      res.end();
      return;
    }
    if (!p.startsWith(s.path)) continue;
    const h = serviceHandler(s.kind);
    if (!h) return sendText(res, 404, `${s.kind} not available\n`);
    await h(req, res, { ...ctx, base: s.path });
    return;
  }
  for (const h of fallbackHandlers()) if (await h(req, res, ctx)) return;
  sendText(res, 404, 'not found\n');
}

/** Starts the web servers of a listener, one per IP and planned port. */
export async function startWeb(
  app: App,
  name: string,
  l: Listener,
  certs: CertStore | undefined,
  add: (service: string, ip: string, port: number, start: () => Promise<net.Server>) => Promise<void>,
  sockets: Set<net.Socket>,
): Promise<void> {
  const plans = planPorts(name, l, certs !== undefined);
  for (const ip of l.IPs) {
    for (const plan of plans) {
      await add(plan.tls ? 'https' : 'http', ip, plan.port, () => {
        const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
          dispatch(app, name, l, plan, req, res).catch((e) => {
            log.error('web request failed', { path: req.url, err: e as Error });
            if (!res.headersSent) sendText(res, 500, 'internal error\n');
            else res.destroy();
          });
        };
        const server = plan.tls ? https.createServer({ ...certs!.serverOptions(), ALPNProtocols: ['http/1.1'] }, onRequest) : http.createServer(onRequest);
        if (plan.webserver) {
          // WebSocket connections for reverse-proxied sites; other upgrades are ignored (RFC 9110 7.8) and answered as plain requests.
          server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
            const ctx = webContext(app, name, l, plan, req);
            if (ctx && upgradeWebHandlers(req, socket, head, ctx)) return;
            socket.on('error', () => socket.destroy());
            const res = new http.ServerResponse(req);
            res.shouldKeepAlive = false;
            res.assignSocket(socket);
            res.on('finish', () => socket.end());
            onRequest(req, res);
          });
        }
        // Slow clients must not hold sockets forever.
        server.headersTimeout = 30_000;
        server.requestTimeout = 0;
        server.keepAliveTimeout = 30_000;
        server.on('connection', (socket: net.Socket) => {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
        });
        server.on('clientError', (_e, socket) => socket.destroy());
        return new Promise((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: ip, port: plan.port, ipv6Only: ip.includes(':') }, () => {
            server.off('error', reject);
            log.info('listening', { ip, port: plan.port, tls: plan.tls, services: plan.services.map((s) => `${s.kind} ${s.path}`) });
            resolve(server);
          });
        });
      });
    }
  }
}
