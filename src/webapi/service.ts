// The webapi service (WebAPIHTTP/WebAPIHTTPS of a listener): POST <base>v0/<Method> with HTTP basic
// authentication (RFC 7617) and a JSON request, answered with JSON (or bytes for the raw methods);
// errors are status 400 with {Code, Message}. A GET of a method URL shows a form with an example
// request, <base>v0/ lists the methods, and <base>v0/openapi.json describes the API.
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { registerService, type WebContext } from '../http/router.js';
import { readBody, securityHeaders, sendJSON, sleep, HTTPError } from '../http/util.js';
import { Log } from '../log/log.js';
import { methods, APIError, type Caller, type Raw } from './methods.js';
import { send } from './send.js';
import { parseRequest, FormError } from './form.js';
import { methodDocs, openapi } from './openapi.js';

const log = Log.pkg('webapi');

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res: ServerResponse, req: IncomingMessage, title: string, body: string): void {
  securityHeaders(res);
  const html = `<!doctype html>\n<html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body>\n${body}\n</body></html>\n`;
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html), 'Cache-Control': 'no-cache' });
  res.end(req.method === 'HEAD' ? undefined : html);
}

function indexPage(req: IncomingMessage, res: ServerResponse): void {
  const items = methodDocs.map((m) => `<li><a href="${m.name}">${m.name}</a>: ${esc(m.summary)}</li>`).join('\n');
  page(
    res,
    req,
    'Postern webapi',
    `<h1>Postern webapi v0</h1>
<p>Call a method with an HTTP POST to its URL, with HTTP basic authentication (an email address of the account and its password) and the request as JSON, either as the body (application/json) or in form field "request". Results are JSON; errors have status 400 and a JSON object with Code and Message. The API is described in <a href="openapi.json">openapi.json</a> (OpenAPI 3.1), including the webhooks.</p>
<ul>\n${items}\n</ul>`,
  );
}

function methodPage(req: IncomingMessage, res: ServerResponse, name: string): void {
  const m = methodDocs.find((d) => d.name === name)!;
  const files =
    name === 'Send'
      ? '<p>Inline files: <input type="file" name="inlinefile" multiple></p>\n<p>Attached files: <input type="file" name="attachedfile" multiple></p>\n'
      : '';
  const result = m.raw ? `<p>The result is the bytes, as ${esc(m.result)}.</p>` : m.resultExample !== undefined ? `<h2>Example result</h2>\n<pre>${esc(JSON.stringify(m.resultExample, null, 2))}</pre>` : '';
  page(
    res,
    req,
    `webapi ${name}`,
    `<h1>${name}</h1>
<p>${esc(m.summary)} Request fields: see ${esc(m.request)} in <a href="openapi.json">openapi.json</a>.</p>
<form method="post" action="${name}" enctype="${name === 'Send' ? 'multipart/form-data' : 'application/x-www-form-urlencoded'}">
<p><textarea name="request" rows="20" cols="100">${esc(JSON.stringify(m.example, null, 2))}</textarea></p>
${files}<p><button type="submit">Call ${name}</button> (your browser asks for the account's email address and password)</p>
</form>
${result}`,
  );
}

/**
 * Recently verified credentials, so that each call of an application does not pay for a bcrypt
 * check (about 75 ms). Keyed by a keyed hash of user name and password; an entry ends after 5
 * minutes, or when the password or the address changes.
 */
const verified = new Map<string, { account: string; changed: number; until: number }>();
const cacheKey = randomBytes(32);

/** The account of the basic authentication credentials; failures count against the network like other logins. */
async function authenticate(req: IncomingMessage, ctx: WebContext): Promise<{ account: string; loginAddress: string }> {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m) throw new APIError('unauthorized', 'HTTP basic authentication required, with an email address of the account as user name');
  const creds = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = creds.indexOf(':');
  const username = creds.slice(0, i < 0 ? creds.length : i).normalize('NFC');
  const password = i < 0 ? '' : creds.slice(i + 1);
  const auth = ctx.app.auth;
  const conn = { protocol: 'http' as const, remoteIP: ctx.remoteIP, cid: ctx.cid };
  if (!auth.allowed(ctx.remoteIP)) throw new APIError('unauthorized', 'too many failed logins from your network, try again later');
  const key = createHmac('sha256', cacheKey).update(`${username}\0${password}`).digest('base64');
  const hit = verified.get(key);
  const store = ctx.app.store;
  if (hit && hit.until > Date.now() && ctx.app.config.addresses.loginAccount(username) === hit.account && store.account(hit.account).credentialsChanged() === hit.changed) {
    return { account: hit.account, loginAddress: username };
  }
  const account = password ? await auth.password(username, password) : undefined;
  if (!account) {
    auth.fail(conn, username, 'webapi-basic', 'bad credentials');
    await sleep(auth.failureDelay(ctx.remoteIP));
    throw new APIError('unauthorized', 'wrong user name or password');
  }
  auth.succeed(conn, username, account, 'webapi-basic');
  if (verified.size >= 1000) verified.delete(verified.keys().next().value!);
  verified.set(key, { account, changed: store.account(account).credentialsChanged(), until: Date.now() + 5 * 60_000 });
  return { account, loginAddress: username };
}

/**
 * Browsers keep basic authentication credentials and send them with requests another site makes
 * them send, e.g. by a form: such requests are refused (Fetch Metadata, or an Origin of another host).
 */
function crossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site !== 'same-origin' && site !== 'none';
  const origin = req.headers.origin;
  if (!origin || origin === 'null') return origin === 'null';
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) return void res.destroy();
  if (status === 401) res.setHeader('WWW-Authenticate', 'Basic realm="postern webapi", charset="UTF-8"');
  sendJSON(res, status, { Code: code, Message: message });
}

async function call(req: IncomingMessage, res: ServerResponse, ctx: WebContext, name: string): Promise<void> {
  const clog = log.with({ cid: ctx.cid, method: name });
  try {
    if (crossSite(req)) throw new APIError('protocol', 'cross-site request refused');
    const who = await authenticate(req, ctx);
    const maxMessageSize = ctx.listener.SMTP.MaxMessageSize;
    // Room for files as base64 in JSON, a third larger than the message.
    const body = await readBody(req, Math.ceil(maxMessageSize * 1.4) + (1 << 20));
    const { request, files } = parseRequest(req.headers['content-type'], body);
    if (typeof request !== 'object' || request === null || Array.isArray(request)) throw new APIError('protocol', 'request must be a JSON object');
    const c: Caller = { app: ctx.app, account: who.account, loginAddress: who.loginAddress, log: clog.with({ account: who.account }), maxMessageSize };
    const args = request as Record<string, unknown>;
    const result = name === 'Send' ? await send(c, args, files, ctx) : await methods[name]!(c, args, files);
    if (methodDocs.find((d) => d.name === name)?.raw) {
      const r = result as Raw;
      res.writeHead(200, { 'Content-Type': r.contentType, 'Content-Length': r.data.length, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
      res.end(r.data);
      return;
    }
    sendJSON(res, 200, result ?? {});
  } catch (e) {
    if (e instanceof APIError) {
      clog.debug('webapi call failed', { code: e.code, err: e.message });
      return sendError(res, e.code === 'unauthorized' ? 401 : 400, e.code, e.message);
    }
    if (e instanceof FormError) return sendError(res, 400, 'protocol', e.message);
    if (e instanceof HTTPError) return sendError(res, e.status, 'protocol', e.message);
    clog.error('webapi call failed', { err: e as Error });
    sendError(res, 400, 'server', 'internal error');
  }
}

registerService('WebAPI', async (req, res, ctx) => {
  const rel = ctx.url.pathname.slice(ctx.base.length);
  const get = req.method === 'GET' || req.method === 'HEAD';
  if (rel === '' || rel === 'v0') {
    res.writeHead(308, { Location: `${ctx.base}v0/`, 'Content-Length': 0 });
    return void res.end();
  }
  if (!rel.startsWith('v0/')) return sendError(res, 404, 'notFound', 'unknown API version, use v0');
  const name = rel.slice(3);
  if (name === '' && get) return indexPage(req, res);
  if (name === 'openapi.json' && get) return sendJSON(res, 200, openapi());
  if (!methodDocs.some((d) => d.name === name)) return sendError(res, 404, 'notFound', `unknown method ${name}`);
  if (get) return methodPage(req, res, name);
  if (req.method !== 'POST') {
    res.setHeader('Allow', 'GET, HEAD, POST');
    return sendError(res, 405, 'protocol', 'method not allowed, use POST');
  }
  await call(req, res, ctx, name);
});
