// Registration of web handlers. The web server (server.ts) dispatches each request in this order:
//
//  1. handlers from registerFirst(), for every request on every web port: ACME http-01 and
//     tls-alpn-01 challenges must be answered whatever else is configured;
//  2. host-based services enabled on the port: MTA-STS policies (mta-sts.<domain>), client
//     autoconfig (autoconfig.<domain>) and autodiscover (autodiscover.<domain>);
//  3. the listener's web services (Account, Admin, Webmail, WebAPI, Metrics) enabled on the port,
//     by longest configured Path prefix; each is the handler given to registerService();
//  4. handlers from registerFallback(), e.g. a configured web server with static files,
//     redirects and reverse proxies;
//  5. 404.
//
// A module mounts itself by calling registerService('Webmail', handler) when it is imported; the
// handler then receives every request under the configured WebmailHTTP(S).Path, with ctx.base set
// to that path. Handlers of steps 1 and 4 return true when they answered the request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { App } from '../server/app.js';
import type { Listener } from '../config/static.js';
import type { Log } from '../log/log.js';

export interface WebContext {
  app: App;
  /** Name of the listener in postern.conf, and its configuration. */
  listenerName: string;
  listener: Listener;
  tls: boolean;
  /** Client IP address, IPv4-mapped IPv6 addresses as plain IPv4. */
  remoteIP: string;
  /** Host of the request without port, lower case, from the Host header or TLS SNI. */
  host: string;
  url: URL;
  /** Path prefix the handler is mounted at, e.g. "/admin/"; "/" outside services. */
  base: string;
  cid: number;
  log: Log;
}

/** Answers a request; for first and fallback handlers, true means the request was handled. */
export type WebHandler = (req: IncomingMessage, res: ServerResponse, ctx: WebContext) => boolean | void | Promise<boolean | void>;

/** The listener web services that modules implement, named as in postern.conf without HTTP/HTTPS. */
export type ServiceKind = 'Account' | 'Admin' | 'Webmail' | 'WebAPI' | 'Metrics';

const first: WebHandler[] = [];
const fallback: WebHandler[] = [];
const services = new Map<ServiceKind, WebHandler>();

/** Adds a handler tried before all others on every web port (ACME challenges). */
export function registerFirst(h: WebHandler): void {
  first.push(h);
}

/** Adds a handler tried when no service matched, e.g. configured web server routes. */
export function registerFallback(h: WebHandler): void {
  fallback.push(h);
}

/** Sets the implementation of a listener web service; the last registration wins. */
export function registerService(kind: ServiceKind, h: WebHandler): void {
  services.set(kind, h);
}

export function firstHandlers(): readonly WebHandler[] {
  return first;
}

export function fallbackHandlers(): readonly WebHandler[] {
  return fallback;
}

export function serviceHandler(kind: ServiceKind): WebHandler | undefined {
  return services.get(kind);
}
