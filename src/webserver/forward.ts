// Reverse proxy of the web server: requests and WebSocket connections (RFC 6455 4) are passed to a
// backend with X-Forwarded-For, -Host and -Proto; hop-by-hop fields stay on their hop (RFC 9110 7.6.1).
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { WebContext } from '../http/router.js';
import { sendText } from '../http/util.js';
import type { WebHandler } from '../config/domains.js';
import { acceptsGzip, compressible } from './static.js';

type Forward = NonNullable<WebHandler['WebForward']>;

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Header fields without the hop-by-hop ones, including those the Connection field names. */
function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((s) => s.trim()),
  );
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !hopByHop.has(k) && !named.has(k)) out[k] = v;
  return out;
}

function backendRequest(f: Forward, matched: string, req: http.IncomingMessage, ctx: WebContext, upgrade?: string): http.ClientRequest {
  const base = new URL(f.URL);
  let p = ctx.url.pathname;
  if (f.StripPath) p = '/' + p.slice(matched.length).replace(/^\/+/, '');
  const target = new URL(base.href);
  target.pathname = base.pathname.replace(/\/+$/, '') + p;
  target.search = ctx.url.search;
  const headers = endToEnd(req.headers);
  const prior = req.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = prior ? `${prior}, ${ctx.remoteIP}` : ctx.remoteIP;
  headers['x-forwarded-host'] = req.headers.host ?? ctx.host;
  headers['x-forwarded-proto'] = ctx.tls ? 'https' : 'http';
  if (upgrade) {
    headers.connection = 'Upgrade';
    headers.upgrade = upgrade;
  }
  const mod = target.protocol === 'https:' ? https : http;
  // The original Host is kept, so name-based backends and absolute links work as on the site itself.
  return mod.request(target, { method: req.method, headers, servername: target.hostname, agent: false });
}

/** Proxies a request and its response; 502 when the backend cannot be reached. */
export async function forward(f: Forward, compress: boolean, matched: string, req: http.IncomingMessage, res: http.ServerResponse, ctx: WebContext): Promise<void> {
  const preq = backendRequest(f, matched, req, ctx);
  res.once('close', () => {
    if (!res.writableFinished) preq.destroy();
  });
  let pres: http.IncomingMessage;
  try {
    pres = await new Promise<http.IncomingMessage>((resolve, reject) => {
      preq.once('response', resolve);
      preq.once('error', reject);
      pipeline(req, preq).catch(reject);
    });
  } catch (e) {
    ctx.log.info('forwarding request failed', { url: f.URL, err: e as Error });
    if (!res.headersSent) sendText(res, 502, 'bad gateway\n');
    else res.destroy();
    return;
  }
  const headers = endToEnd(pres.headers);
  Object.assign(headers, f.ResponseHeaders);
  const type = String(pres.headers['content-type'] ?? '');
  const gzip = compress && pres.statusCode === 200 && !pres.headers['content-encoding'] && compressible(type) && acceptsGzip(req) && req.method !== 'HEAD';
  if (compress) headers.vary = pres.headers.vary ? `${pres.headers.vary}, Accept-Encoding` : 'Accept-Encoding';
  if (gzip) {
    delete headers['content-length'];
    headers['content-encoding'] = 'gzip';
  }
  res.writeHead(pres.statusCode ?? 502, pres.statusMessage, headers);
  await pipeline(gzip ? [pres, createGzip(), res] : [pres, res]).catch(() => res.destroy());
}

/** Raw HTTP/1.1 response head for a socket taken over from the server. */
function head(status: number, message: string, rawHeaders: string[], extra: Record<string, string>): string {
  const lines = [`HTTP/1.1 ${status} ${message}`];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) lines.push(`${rawHeaders[i]}: ${rawHeaders[i + 1]}`);
  for (const [k, v] of Object.entries(extra)) lines.push(`${k}: ${v}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

/**
 * Proxies an upgrade request: after the backend's 101 the two connections are joined, so WebSocket
 * frames pass unchanged in both directions. A backend that refuses gets its answer passed on.
 */
export function forwardUpgrade(f: Forward, matched: string, req: http.IncomingMessage, socket: Duplex, early: Buffer, ctx: WebContext): void {
  const preq = backendRequest(f, matched, req, ctx, String(req.headers.upgrade));
  socket.on('error', () => preq.destroy());
  preq.once('upgrade', (pres, psock, phead) => {
    psock.on('error', () => socket.destroy());
    socket.on('close', () => psock.destroy());
    psock.on('close', () => socket.destroy());
    socket.write(head(pres.statusCode ?? 101, pres.statusMessage ?? 'Switching Protocols', pres.rawHeaders, f.ResponseHeaders));
    if (phead.length) socket.write(phead);
    if (early.length) psock.write(early);
    psock.pipe(socket);
    socket.pipe(psock);
  });
  preq.once('response', (pres) => {
    const raw = pres.rawHeaders.filter((_, i, a) => !hopByHop.has(a[i - (i % 2)]!.toLowerCase()));
    socket.write(head(pres.statusCode ?? 502, pres.statusMessage ?? '', raw, { ...f.ResponseHeaders, Connection: 'close', 'Transfer-Encoding': 'chunked' }));
    pres.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from(`${d.length.toString(16)}\r\n`), d, Buffer.from('\r\n')])));
    pres.on('end', () => socket.end('0\r\n\r\n'));
    pres.on('error', () => socket.destroy());
  });
  preq.once('error', (e) => {
    ctx.log.info('forwarding upgrade failed', { url: f.URL, err: e });
    socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad gateway\n');
  });
  preq.end();
}
