// The configurable web server: WebDomainRedirects and WebHandlers of domains.conf, served on the
// ports of listeners with WebserverHTTP or WebserverHTTPS. As in mox, a request is matched after
// the ACME, MTA-STS and autoconfig handlers and before the services of the port, so a site can use
// paths a service would otherwise take. The configuration is read at each request: edits apply at once.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebContext } from '../http/router.js';
import { serviceHandler, type ServiceKind } from '../http/router.js';
import { sendText } from '../http/util.js';
import { normalizeDomain, type WebHandler } from '../config/domains.js';
import { serveStatic, staticExists } from './static.js';
import { forward, forwardUpgrade } from './forward.js';

const regexps = new Map<string, RegExp>();

/** Compiled path expressions, kept across requests; configured expressions are few. */
export function regexp(src: string): RegExp {
  let re = regexps.get(src);
  if (!re) {
    re = new RegExp(src, 'u');
    if (regexps.size > 1000) regexps.clear();
    regexps.set(src, re);
  }
  return re;
}

/** The HTTPS URL of the same request on another host, with the listener's web server port if not 443. */
function httpsURL(ctx: WebContext, host: string, pathAndQuery: string): string {
  const w = ctx.listener.WebserverHTTPS;
  const port = w.Enabled && w.Port !== 443 ? `:${w.Port}` : '';
  return `https://${host.includes(':') ? `[${host}]` : host}${port}${pathAndQuery}`;
}

function redirect(res: ServerResponse, status: number, location: string): void {
  res.writeHead(status, { Location: location, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 0 });
  res.end();
}

interface Match {
  handler: WebHandler;
  name: string;
  /** What PathRegexp matched. */
  matched: string;
}

/** The handlers for the request's host and path, in configured order. */
function* matches(ctx: WebContext): Generator<Match> {
  const host = normalizeDomain(ctx.host) ?? ctx.host;
  const handlers = ctx.app.config.domains.WebHandlers;
  for (let i = 0; i < handlers.length; i++) {
    const h = handlers[i]!;
    if (h.Domain !== host) continue;
    const m = regexp(h.PathRegexp).exec(ctx.url.pathname);
    if (m) yield { handler: h, name: h.LogName ?? String(i), matched: m[0] };
  }
}

/** Serves a request with the configured handlers; false when none took it. */
export async function serveWebHandlers(req: IncomingMessage, res: ServerResponse, ctx: WebContext): Promise<boolean> {
  const host = normalizeDomain(ctx.host) ?? ctx.host;
  const target = ctx.app.config.domains.WebDomainRedirects[host];
  if (target) {
    ctx.log.debug('web domain redirect', { host, target });
    redirect(res, 308, httpsURL(ctx, target, ctx.url.pathname + ctx.url.search));
    return true;
  }
  for (const m of matches(ctx)) {
    const h = m.handler;
    if (!ctx.tls && !h.DontRedirectPlainHTTP) {
      redirect(res, 308, httpsURL(ctx, ctx.host, ctx.url.pathname + ctx.url.search));
      return true;
    }
    const log = ctx.log.with({ handler: m.name });
    log.debug('web handler', { method: req.method, path: ctx.url.pathname });
    if (h.WebStatic) {
      if (await serveStatic(h.WebStatic, h.Compress, req, res, { ...ctx, log })) return true;
      continue;
    }
    if (h.WebRedirect) {
      const r = h.WebRedirect;
      let p = ctx.url.pathname;
      if (r.OrigPathRegexp) {
        const re = regexp(r.OrigPathRegexp);
        if (!re.test(p)) {
          sendText(res, 404, 'not found\n');
          return true;
        }
        p = p.replace(re, r.ReplacePath ?? '');
      }
      let location = p + ctx.url.search;
      if (r.BaseURL) {
        const u = new URL(r.BaseURL);
        u.pathname = p;
        // Queries of the base URL and of the request are combined.
        for (const [k, v] of ctx.url.searchParams) u.searchParams.append(k, v);
        location = u.href;
      }
      redirect(res, r.StatusCode, location);
      return true;
    }
    if (h.WebForward) {
      await forward(h.WebForward, h.Compress, m.matched, req, res, { ...ctx, log });
      return true;
    }
    if (h.WebInternal) {
      await internal(h.WebInternal, req, res, ctx);
      return true;
    }
  }
  return false;
}

const services: Record<NonNullable<WebHandler['WebInternal']>['Service'], ServiceKind> = { admin: 'Admin', account: 'Account', webmail: 'Webmail', webapi: 'WebAPI' };

async function internal(w: NonNullable<WebHandler['WebInternal']>, req: IncomingMessage, res: ServerResponse, ctx: WebContext): Promise<void> {
  const p = ctx.url.pathname;
  if (p + '/' === w.BasePath) return redirect(res, 308, w.BasePath + ctx.url.search);
  const h = serviceHandler(services[w.Service]);
  if (!p.startsWith(w.BasePath) || !h) return sendText(res, 404, 'not found\n');
  await h(req, res, { ...ctx, base: w.BasePath });
}

/** Takes a WebSocket (or other upgrade) request for a reverse-proxied site; false leaves it to plain request handling. */
export function upgradeWebHandlers(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: WebContext): boolean {
  if (ctx.app.config.domains.WebDomainRedirects[normalizeDomain(ctx.host) ?? ctx.host]) return false;
  for (const m of matches(ctx)) {
    const h = m.handler;
    if (h.WebStatic?.ContinueNotFound && !staticExists(h.WebStatic, ctx)) continue;
    if (!h.WebForward || (!ctx.tls && !h.DontRedirectPlainHTTP)) return false;
    forwardUpgrade(h.WebForward, m.matched, req, socket, head, { ...ctx, log: ctx.log.with({ handler: m.name }) });
    return true;
  }
  return false;
}
