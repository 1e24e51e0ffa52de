// Static files of the web server: conditional requests (RFC 9110 13), single byte ranges
// (RFC 9110 14), directory index and listing, and gzip for compressible types.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { IncomingMessage, ServerResponse } from 'node:http';
import libmime from 'libmime';
import type { WebContext } from '../http/router.js';
import { sendText } from '../http/util.js';
import type { WebHandler } from '../config/domains.js';

type Static = NonNullable<WebHandler['WebStatic']>;

/** Types whose content compresses well; images, archives and video are compressed already. */
export function compressible(type: string): boolean {
  const t = type.split(';')[0]!.trim().toLowerCase();
  return t.startsWith('text/') || /^application\/(javascript|json|xml|wasm|x-javascript|ld\+json|manifest\+json)$/.test(t) || /\+(json|xml)$/.test(t) || t === 'image/svg+xml';
}

/** Whether the client takes gzip (RFC 9110 12.5.3): listed, or matched by "*", with a q-value above 0. */
export function acceptsGzip(req: IncomingMessage): boolean {
  let star = false;
  for (const item of (req.headers['accept-encoding'] ?? '').split(',')) {
    const [coding, ...params] = item.trim().toLowerCase().split(';');
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((x) => x !== undefined);
    const ok = q === undefined || Number(q) > 0;
    if (coding === 'gzip' || coding === 'x-gzip') return ok;
    if (coding === '*') star = ok;
  }
  return star;
}

export function contentType(file: string): string {
  const t = libmime.detectMimeType(path.basename(file)) || 'application/octet-stream';
  return t.startsWith('text/') || t === 'application/javascript' || t === 'application/json' || t === 'image/svg+xml' ? `${t}; charset=utf-8` : t;
}

/** The file a request path names, or undefined for a path that is not below the prefix. */
function filePath(s: Static, ctx: WebContext): { rel: string; file: string } | undefined {
  let rel: string;
  try {
    rel = decodeURIComponent(ctx.url.pathname);
  } catch {
    return undefined;
  }
  if (rel.includes('\0')) return undefined;
  if (s.StripPrefix) {
    if (!rel.startsWith(s.StripPrefix)) return undefined;
    rel = '/' + rel.slice(s.StripPrefix.length).replace(/^\/+/, '');
  }
  // A normalized absolute path cannot climb above the root with "..".
  rel = path.posix.normalize(rel);
  return { rel, file: path.join(ctx.app.config.resolve(s.Root), rel) };
}

/** For upgrade requests: whether a handler with ContinueNotFound has a file for the path. */
export function staticExists(s: Static, ctx: WebContext): boolean {
  const f = filePath(s, ctx);
  return f !== undefined && fs.existsSync(f.file);
}

/** Entity tags compare by opaque value; weak comparison ignores the W/ prefix (RFC 9110 8.8.3.2). */
function etagMatches(header: string, etag: string, weak: boolean): boolean {
  if (header.trim() === '*') return true;
  const bare = (t: string) => (weak ? t.replace(/^W\//, '') : t);
  return header.split(',').some((t) => {
    const v = t.trim();
    return (weak || !v.startsWith('W/')) && bare(v) === bare(etag);
  });
}

/** HTTP dates have whole seconds; a file modified within the second counts as that second. */
const seconds = (ms: number) => Math.floor(ms / 1000);

type Range = { start: number; end: number } | 'unsatisfiable' | undefined;

/** A single byte range (RFC 9110 14.1.2); several ranges and bad syntax are ignored: the whole file is sent. */
function parseRange(h: string | undefined, size: number): Range {
  const m = h && /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(h);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** Serves a file or directory; false when the file does not exist and the handler continues. */
export async function serveStatic(s: Static, compress: boolean, req: IncomingMessage, res: ServerResponse, ctx: WebContext): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    // Other methods may be for a later handler, e.g. a reverse proxy behind static files.
    if (s.ContinueNotFound && !staticExists(s, ctx)) return false;
    sendText(res, 405, 'method not allowed\n', undefined, { Allow: 'GET, HEAD' });
    return true;
  }
  const f = filePath(s, ctx);
  if (!f) {
    if (s.ContinueNotFound) return false;
    sendText(res, 404, 'not found\n');
    return true;
  }
  let file = f.file;
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
    if (st.isDirectory()) {
      if (!ctx.url.pathname.endsWith('/')) {
        // Relative links in the index resolve against the directory.
        res.writeHead(308, { Location: ctx.url.pathname + '/' + ctx.url.search, 'Content-Length': 0 });
        res.end();
        return true;
      }
      try {
        file = path.join(file, 'index.html');
        st = await fs.promises.stat(file);
      } catch {
        if (!s.ListFiles) {
          sendText(res, 403, 'directory listing not allowed\n');
          return true;
        }
        await listing(f.file, f.rel, s, req, res);
        return true;
      }
    }
    if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EACCES') throw e;
    if (s.ContinueNotFound) return false;
    sendText(res, 404, 'not found\n');
    return true;
  }
  await sendFile(file, st, s, compress, req, res);
  return true;
}

async function sendFile(file: string, st: fs.Stats, s: Static, compress: boolean, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const type = contentType(file);
  const gzip = compress && compressible(type) && acceptsGzip(req) && req.headers.range === undefined;
  // Each representation has its own tag (RFC 9110 8.8.3); the gzip one differs from the plain one.
  const base = `${st.size.toString(36)}-${Math.floor(st.mtimeMs).toString(36)}`;
  const etag = `"${base}${gzip ? '-gz' : ''}"`;
  const mtime = seconds(st.mtimeMs);
  const headers: Record<string, string | number> = {
    'Content-Type': type,
    ETag: etag,
    'Last-Modified': new Date(mtime * 1000).toUTCString(),
    'Accept-Ranges': 'bytes',
    ...(compress && { Vary: 'Accept-Encoding' }),
    ...s.ResponseHeaders,
  };
  const h = req.headers;
  const date = (v: string | undefined) => (v === undefined ? NaN : seconds(Date.parse(v)));
  // RFC 9110 13.2.2: preconditions in this order; a failed If-Match or If-Unmodified-Since is 412.
  if (h['if-match'] !== undefined ? !etagMatches(h['if-match'], etag, false) : mtime > date(h['if-unmodified-since'])) {
    res.writeHead(412, { ETag: etag, 'Content-Length': 0 });
    res.end();
    return;
  }
  const notModified = h['if-none-match'] !== undefined ? etagMatches(h['if-none-match'], etag, true) : mtime <= date(h['if-modified-since']);
  if (notModified) {
    const { 'Content-Type': _t, 'Accept-Ranges': _a, ...rest } = headers;
    res.writeHead(304, rest);
    res.end();
    return;
  }
  // RFC 9110 13.1.5: a Range applies only while the representation is the one the client has.
  const ir = h['if-range'] as string | undefined;
  const rangeOK = ir === undefined || (ir.startsWith('"') ? ir === etag : date(ir) === mtime);
  const range = rangeOK ? parseRange(h.range, st.size) : undefined;
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'Content-Range': `bytes */${st.size}`, 'Content-Length': 0 });
    res.end();
    return;
  }
  if (gzip) {
    res.writeHead(200, { ...headers, 'Content-Encoding': 'gzip' });
    if (req.method === 'HEAD') return void res.end();
    await pipeline(fs.createReadStream(file), createGzip(), res).catch(() => res.destroy());
    return;
  }
  const { start, end } = range ?? { start: 0, end: st.size - 1 };
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
  res.writeHead(range ? 206 : 200, { ...headers, 'Content-Length': Math.max(0, end - start + 1) });
  if (req.method === 'HEAD' || st.size === 0) return void res.end();
  await pipeline(fs.createReadStream(file, { start, end }), res).catch(() => res.destroy());
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function listing(dir: string, rel: string, s: Static, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const entries = await fs.promises.readdir(dir, { withFileTypes: true });
  const rows: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(path.join(dir, e.name));
    } catch {
      continue;
    }
    const name = e.name + (st.isDirectory() ? '/' : '');
    rows.push(`<tr><td><a href="${esc(encodeURIComponent(e.name) + (st.isDirectory() ? '/' : ''))}">${esc(name)}</a></td><td>${st.isDirectory() ? '' : st.size}</td><td>${new Date(st.mtimeMs).toISOString()}</td></tr>`);
  }
  const title = esc(rel);
  const html = `<!doctype html>\n<html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><table><tr><th>Name</th><th>Size</th><th>Modified</th></tr>${rel !== '/' ? '<tr><td><a href="../">../</a></td><td></td><td></td></tr>' : ''}${rows.join('')}</table></body></html>\n`;
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html), 'Cache-Control': 'no-cache', ...s.ResponseHeaders });
  res.end(req.method === 'HEAD' ? undefined : html);
}
