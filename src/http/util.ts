// Small pieces shared by the web handlers: responses, request bodies, security headers and
// the built front-end assets.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A failure shown to the client with its status code. */
export class HTTPError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Headers for the pages of Postern's own applications: scripts only from our own files (no
 * inline scripts, so injected markup cannot run), no framing (clickjacking), no MIME sniffing,
 * and no full URLs leaking in Referer headers.
 */
export function securityHeaders(res: ServerResponse): void {
  res.setHeader(
    'Content-Security-Policy',
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}

export function sendJSON(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value ?? null);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendText(res: ServerResponse, status: number, text: string, type = 'text/plain; charset=utf-8', extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

/** Reads a request body into memory, refusing more than max bytes. */
export async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new HTTPError(413, 'request too large');
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > max) throw new HTTPError(413, 'request too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readJSON(req: IncomingMessage, max = 1 << 20): Promise<Record<string, unknown>> {
  const body = await readBody(req, max);
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HTTPError(400, 'request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HTTPError(400, 'request body must be a JSON object');
  return v as Record<string, unknown>;
}

/** The directory with the built front-end: dist/web of the package, from src/http or dist/http alike. */
export const webDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'web');

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

interface Asset {
  data: Buffer;
  etag: string;
  mtimeMs: number;
}
const assets = new Map<string, Asset>();

/**
 * Serves a file of the built front-end with an ETag, so browsers revalidate cheaply. Files are
 * cached in memory and reread when they change (a rebuild while running).
 */
export function serveAsset(req: IncomingMessage, res: ServerResponse, name: string): void {
  const file = path.join(webDir, name);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    sendText(res, 404, name.endsWith('.html') ? 'front-end not built: run "npm run build"\n' : 'not found\n');
    return;
  }
  let a = assets.get(name);
  if (!a || a.mtimeMs !== st.mtimeMs) {
    const data = fs.readFileSync(file);
    a = { data, etag: `"${createHash('sha256').update(data).digest('base64url').slice(0, 22)}"`, mtimeMs: st.mtimeMs };
    assets.set(name, a);
  }
  const headers = { ETag: a.etag, 'Cache-Control': 'no-cache', 'Content-Type': types[path.extname(name)] ?? 'application/octet-stream' };
  if (req.headers['if-none-match'] === a.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Length': a.data.length });
  res.end(req.method === 'HEAD' ? undefined : a.data);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Value of a cookie in the request. */
export function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** Content-Disposition for a download, with an RFC 6266/8187 encoded name for non-ASCII. */
export function attachment(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}
