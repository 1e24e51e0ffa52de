// One of Postern's own web applications (admin, account): the page and its assets, login, and a
// JSON API under <base>api/<method>. API calls are POSTs with a JSON object of arguments and the
// CSRF header; the answer is the JSON result, or {"error": "..."} with a 4xx status. Downloads are
// GETs (safe: they change nothing, and the SameSite=Strict cookie is not sent cross-site).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebContext, WebHandler } from './router.js';
import type { Session, WebAuth } from './session.js';
import { ConfigInvalid } from '../config/load.js';
import { HTTPError, readJSON, securityHeaders, sendJSON, serveAsset } from './util.js';

export type ApiMethod = (args: Record<string, unknown>, s: Session, ctx: WebContext) => unknown;
export type RawHandler = (req: IncomingMessage, res: ServerResponse, s: Session, ctx: WebContext) => Promise<void> | void;

export interface WebAppSpec {
  auth: WebAuth;
  /** Name of the page and script in the built front-end: "<name>.html", "<name>.js". */
  name: string;
  /** Verifies login credentials; returns the account name ("" for the admin). */
  check(c: { username: string; password: string }, ctx: WebContext): Promise<{ account: string } | undefined>;
  methods: Record<string, ApiMethod>;
  /** GET <base>api/<name>: downloads. */
  downloads?: Record<string, RawHandler>;
  /** POST <base>api/<name> with a raw body instead of JSON arguments, e.g. uploads; CSRF still required. */
  uploads?: Record<string, RawHandler>;
  /** Called first for every request, e.g. to refuse clients by IP. */
  guard?(ctx: WebContext): void;
}

const assets = new Set(['style.css']);

export function webApp(spec: WebAppSpec): WebHandler {
  return async (req, res, ctx) => {
    securityHeaders(res);
    try {
      spec.guard?.(ctx);
      const rel = ctx.url.pathname.slice(ctx.base.length);
      const get = req.method === 'GET' || req.method === 'HEAD';
      if (get && (rel === '' || rel === 'index.html')) return serveAsset(req, res, `${spec.name}.html`);
      if (get && (rel === `${spec.name}.js` || assets.has(rel))) return serveAsset(req, res, rel);
      if (!rel.startsWith('api/')) throw new HTTPError(404, 'not found');
      const method = rel.slice(4);
      if (method === 'login') return await spec.auth.login(req, res, ctx, (c) => spec.check(c, ctx));
      if (method === 'logout') return spec.auth.logout(req, res, ctx);
      if (get) {
        const s = spec.auth.session(req, ctx, { csrf: false });
        if (method === 'session') return sendJSON(res, 200, { csrf: s.csrf, account: s.account, loginAddress: s.loginAddress });
        const d = spec.downloads?.[method];
        if (!d) throw new HTTPError(404, 'not found');
        return await asHTTPError(() => d(req, res, s, ctx));
      }
      const s = spec.auth.session(req, ctx, { csrf: true });
      const up = spec.uploads?.[method];
      if (up) return await asHTTPError(() => up(req, res, s, ctx));
      const m = Object.hasOwn(spec.methods, method) ? spec.methods[method] : undefined;
      if (!m) throw new HTTPError(404, `no method ${method}`);
      if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new HTTPError(415, 'content type must be application/json');
      const args = await readJSON(req);
      const result = await asHTTPError(() => m(args, s, ctx), ctx, method);
      sendJSON(res, 200, result ?? null);
    } catch (e) {
      if (!(e instanceof HTTPError)) throw e;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJSON(res, e.status, { error: e.message });
    }
  };
}

/** Failures of API methods are the client's (bad input, refused edits): answered with 400 and the message. */
async function asHTTPError<T>(f: () => T | Promise<T>, ctx?: WebContext, method?: string): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof HTTPError) throw e;
    ctx?.log.info('api call failed', { method, err: e as Error });
    // A refused config edit names the fields; the server's file paths are no business of the browser.
    if (e instanceof ConfigInvalid) throw new HTTPError(400, e.errors.map((x) => (x.path ? `${x.path}: ${x.message}` : x.message)).join('; '));
    throw new HTTPError(400, (e as Error).message);
  }
}

/** Argument helpers for API methods: they throw a readable error for a wrong type. */
export function argStr(args: Record<string, unknown>, name: string, optional = false): string {
  const v = args[name];
  if (v === undefined && optional) return '';
  if (typeof v !== 'string') throw new Error(`argument ${name} must be a string`);
  return v;
}

export function argInt(args: Record<string, unknown>, name: string): number {
  const v = args[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new Error(`argument ${name} must be an integer`);
  return v;
}
