// The configurable web server: static files with ranges and conditional requests, gzip, directory
// listings, redirects (per handler, whole domains, plain HTTP to HTTPS), a reverse proxy to a local
// HTTP and WebSocket backend, internal services at another path, and configuration changes
// applied while running.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import bcrypt from 'bcryptjs';
import { freePorts, startServe, type TestServer } from '../helpers/server.js';
import { editDomains } from '../smtpserver/helpers.js';
import { addListenerLines } from '../webapi/helpers.js';

let srv: TestServer;
let backend: http.Server;
let wss: WebSocketServer;
const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
const wsSeen: http.IncomingHttpHeaders[] = [];
const bigCSS = Array.from({ length: 400 }, (_, i) => `.c${i} { color: red; margin: ${i}px; }`).join('\n') + '\n';

before(async () => {
  backend = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const out = JSON.stringify({ url: req.url, body });
      res.writeHead(201, { 'Content-Type': 'application/json', 'X-Backend': '1', Connection: 'close', 'Content-Length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  wss = new WebSocketServer({ server: backend, path: '/base/ws' });
  wss.on('connection', (ws, req) => {
    wsSeen.push(req.headers);
    ws.on('message', (data, binary) => ws.send(binary ? Buffer.concat([Buffer.from([0xff]), data as Buffer]) : `echo: ${(data as Buffer).toString()}`, { binary }));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const backendPort = (backend.address() as AddressInfo).port;
  const [closedPort] = await freePorts(1);

  srv = await startServe();
  const cdir = path.dirname(srv.configFile);
  fs.mkdirSync(path.join(cdir, 'site', 'dir'), { recursive: true });
  fs.mkdirSync(path.join(cdir, 'site', 'list'), { recursive: true });
  fs.mkdirSync(path.join(cdir, 'site2'));
  fs.writeFileSync(path.join(cdir, 'site', 'hello.txt'), 'hello, world\n');
  fs.writeFileSync(path.join(cdir, 'site', 'style.css'), bigCSS);
  fs.writeFileSync(path.join(cdir, 'site', 'dir', 'index.html'), '<h1>index</h1>\n');
  fs.writeFileSync(path.join(cdir, 'site', 'list', 'a<b>.txt'), 'a');
  fs.writeFileSync(path.join(cdir, 'site2', 'only-here.txt'), 'from site2\n');
  fs.writeFileSync(path.join(cdir, 'adminpasswd'), bcrypt.hashSync('admin-secret', 4) + '\n');
  // The admin pages share the plain HTTP port; requests for hosts without handlers reach them.
  await addListenerLines(
    srv,
    `    WebserverHTTP:\n      Enabled: true\n      Port: ${srv.ports.http}\n    WebserverHTTPS:\n      Enabled: true\n      Port: ${srv.ports.https}\n    AdminHTTP:\n      Enabled: true\n      Port: ${srv.ports.http}\n`,
  );
  await editDomains(
    srv,
    '        Mailbox: Archive',
    `WebDomainRedirects:
  old.example.test: www.example.test
WebHandlers:
  - LogName: static
    Domain: www.example.test
    PathRegexp: ^/static/
    Compress: true
    WebStatic:
      StripPrefix: /static/
      Root: site
      ListFiles: true
      ResponseHeaders:
        Cache-Control: max-age=60
  - Domain: www.example.test
    PathRegexp: ^/
    DontRedirectPlainHTTP: true
    WebStatic:
      Root: site2
      ContinueNotFound: true
  - LogName: app
    Domain: www.example.test
    PathRegexp: ^/app/
    WebForward:
      StripPath: true
      URL: http://127.0.0.1:${backendPort}/base/
      ResponseHeaders:
        X-Proxied: "yes"
  - Domain: www.example.test
    PathRegexp: ^/down/
    WebForward:
      URL: http://127.0.0.1:${closedPort}/
  - Domain: www.example.test
    PathRegexp: ^/old/
    WebRedirect:
      OrigPathRegexp: ^/old/(.*)$
      ReplacePath: /new/$1
      StatusCode: 307
  - Domain: go.example.test
    PathRegexp: ^/
    WebRedirect:
      BaseURL: https://www.example.org
  - Domain: www.example.test
    PathRegexp: ^/api/
    WebInternal:
      BasePath: /api/
      Service: webapi
`,
  );
});

after(async () => {
  for (const c of wss?.clients ?? []) c.terminate();
  wss?.close();
  await new Promise((r) => backend?.close(r));
  await srv?.close();
});

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(o: { tls?: boolean; host?: string; path: string; method?: string; headers?: Record<string, string>; body?: string }): Promise<Res> {
  const mod = o.tls === false ? http : https;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      {
        host: '127.0.0.1',
        port: o.tls === false ? srv.ports.http : srv.ports.https,
        path: o.path,
        method: o.method ?? 'GET',
        headers: { Host: o.host ?? 'www.example.test', ...o.headers },
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

test('plain HTTP is redirected to HTTPS, whole domains to their target, with path and query', async () => {
  let r = await request({ tls: false, path: '/app/x?y=1' });
  assert.equal(r.status, 308);
  assert.equal(r.headers.location, `https://www.example.test:${srv.ports.https}/app/x?y=1`);
  r = await request({ tls: false, host: 'old.example.test', path: '/a/b?c=d' });
  assert.equal(r.status, 308);
  assert.equal(r.headers.location, `https://www.example.test:${srv.ports.https}/a/b?c=d`);
  // A handler may serve plain HTTP.
  r = await request({ tls: false, path: '/only-here.txt' });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'from site2\n');
  // Hosts without handlers are left to the services of the port: none here.
  r = await request({ tls: false, host: 'unknown.example.test', path: '/' });
  assert.equal(r.status, 404);
});

test('static files: types, validators, conditional requests and byte ranges', async () => {
  let r = await request({ path: '/static/hello.txt' });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hello, world\n');
  assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'max-age=60');
  assert.equal(r.headers['accept-ranges'], 'bytes');
  const etag = r.headers.etag!;
  const lastModified = r.headers['last-modified']!;
  assert.match(etag, /^"[^"]+"$/);

  r = await request({ path: '/static/hello.txt', headers: { 'If-None-Match': `"other", ${etag}` } });
  assert.equal(r.status, 304);
  assert.equal(r.body.length, 0);
  assert.equal(r.headers.etag, etag);
  r = await request({ path: '/static/hello.txt', headers: { 'If-None-Match': 'W/' + etag } });
  assert.equal(r.status, 304, 'weak comparison for If-None-Match');
  r = await request({ path: '/static/hello.txt', headers: { 'If-Modified-Since': lastModified } });
  assert.equal(r.status, 304);
  r = await request({ path: '/static/hello.txt', headers: { 'If-Modified-Since': new Date(Date.parse(lastModified) - 10_000).toUTCString() } });
  assert.equal(r.status, 200);
  r = await request({ path: '/static/hello.txt', headers: { 'If-Match': '"nope"' } });
  assert.equal(r.status, 412);

  r = await request({ path: '/static/hello.txt', headers: { Range: 'bytes=2-5' } });
  assert.equal(r.status, 206);
  assert.equal(r.body.toString(), 'llo,');
  assert.equal(r.headers['content-range'], 'bytes 2-5/13');
  r = await request({ path: '/static/hello.txt', headers: { Range: 'bytes=-6' } });
  assert.equal(r.body.toString(), 'world\n');
  r = await request({ path: '/static/hello.txt', headers: { Range: 'bytes=7-' } });
  assert.equal(r.body.toString(), 'world\n');
  r = await request({ path: '/static/hello.txt', headers: { Range: 'bytes=100-' } });
  assert.equal(r.status, 416);
  assert.equal(r.headers['content-range'], 'bytes */13');
  // The range applies only while the client's copy is current (If-Range).
  r = await request({ path: '/static/hello.txt', headers: { Range: 'bytes=2-5', 'If-Range': '"stale"' } });
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 13);
  r = await request({ path: '/static/hello.txt', headers: { Range: 'bytes=2-5', 'If-Range': etag } });
  assert.equal(r.status, 206);
  r = await request({ path: '/static/hello.txt', method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], '13');
  assert.equal(r.body.length, 0);
  r = await request({ path: '/static/hello.txt', method: 'POST', body: 'x' });
  assert.equal(r.status, 405);
});

test('gzip for compressible types, with its own entity tag', async () => {
  const plain = await request({ path: '/static/style.css' });
  assert.equal(plain.headers['content-encoding'], undefined);
  const r = await request({ path: '/static/style.css', headers: { 'Accept-Encoding': 'br;q=1, gzip;q=0.8' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.equal(r.headers.vary, 'Accept-Encoding');
  assert.ok(r.body.length < bigCSS.length / 3, `compressed to ${r.body.length} bytes`);
  assert.equal(gunzipSync(r.body).toString(), bigCSS);
  assert.notEqual(r.headers.etag, plain.headers.etag);
  const again = await request({ path: '/static/style.css', headers: { 'Accept-Encoding': 'gzip', 'If-None-Match': r.headers.etag! } });
  assert.equal(again.status, 304);
  const refused = await request({ path: '/static/style.css', headers: { 'Accept-Encoding': 'gzip;q=0' } });
  assert.equal(refused.headers['content-encoding'], undefined);
});

test('directories: redirect to the slash, index.html, listings, and no way out of the root', async () => {
  let r = await request({ path: '/static/dir?x=1' });
  assert.equal(r.status, 308);
  assert.equal(r.headers.location, '/static/dir/?x=1');
  r = await request({ path: '/static/dir/' });
  assert.equal(r.body.toString(), '<h1>index</h1>\n');
  r = await request({ path: '/static/list/' });
  assert.equal(r.status, 200);
  assert.match(r.body.toString(), /a&#60;b&#62;\.txt/);
  assert.match(r.body.toString(), /href="a%3Cb%3E\.txt"/);
  for (const p of ['/static/../postern.conf', '/static/%2e%2e/postern.conf', '/static/..%2fpostern.conf', '/static/nothing.txt']) {
    r = await request({ path: p });
    assert.equal(r.status, 404, p);
  }
});

test('a static handler with ContinueNotFound passes missing files on to the next handler', async () => {
  let r = await request({ path: '/only-here.txt' });
  assert.equal(r.body.toString(), 'from site2\n');
  r = await request({ path: '/app/continued' });
  assert.equal(r.status, 201);
  assert.equal(JSON.parse(r.body.toString()).url, '/base/continued');
});

test('reverse proxy: path, method, body, forwarding headers and response headers pass through; 502 without backend', async () => {
  seen.length = 0;
  const r = await request({ path: '/app/echo?x=1', method: 'POST', body: 'the body', headers: { 'Content-Type': 'text/plain', 'X-Custom': 'kept', 'X-Forwarded-For': '192.0.2.1' } });
  assert.equal(r.status, 201);
  assert.equal(r.headers['x-backend'], '1');
  assert.equal(r.headers['x-proxied'], 'yes');
  assert.deepEqual(JSON.parse(r.body.toString()), { url: '/base/echo?x=1', body: 'the body' });
  const h = seen[0]!.headers;
  assert.equal(seen[0]!.method, 'POST');
  assert.equal(h.host, 'www.example.test');
  assert.equal(h['x-custom'], 'kept');
  assert.equal(h['x-forwarded-for'], '192.0.2.1, 127.0.0.1');
  assert.equal(h['x-forwarded-host'], 'www.example.test');
  assert.equal(h['x-forwarded-proto'], 'https');
  const down = await request({ path: '/down/x' });
  assert.equal(down.status, 502);
});

test('WebSocket connections pass through the proxy, frames in both directions', async () => {
  wsSeen.length = 0;
  const ws = new WebSocket(`wss://127.0.0.1:${srv.ports.https}/app/ws`, { headers: { Host: 'www.example.test' }, rejectUnauthorized: false });
  const received: (string | Buffer)[] = [];
  const next = () => new Promise<void>((r) => ws.once('message', (d, binary) => (received.push(binary ? (d as Buffer) : (d as Buffer).toString()), r())));
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  ws.send('hi');
  await next();
  ws.send(Buffer.from([1, 2, 3]), { binary: true });
  await next();
  ws.send('x'.repeat(100_000));
  await next();
  assert.equal(received[0], 'echo: hi');
  assert.deepEqual(received[1], Buffer.from([0xff, 1, 2, 3]));
  assert.equal(received[2], 'echo: ' + 'x'.repeat(100_000));
  assert.equal(wsSeen[0]!['x-forwarded-proto'], 'https');
  assert.equal(wsSeen[0]!['x-forwarded-for'], '127.0.0.1');
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  ws.close(4000);
  assert.equal(await closed, 4000);
  // An upgrade request to a static path is answered as a plain request.
  const r = await request({ path: '/static/hello.txt', headers: { Connection: 'Upgrade', Upgrade: 'websocket' } });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hello, world\n');
});

test('redirects by path rewrite with a status, and to a base URL keeping path and query', async () => {
  let r = await request({ path: '/old/a/b?q=1' });
  assert.equal(r.status, 307);
  assert.equal(r.headers.location, '/new/a/b?q=1');
  r = await request({ host: 'go.example.test', path: '/p/q?x=1' });
  assert.equal(r.status, 308);
  assert.equal(r.headers.location, 'https://www.example.org/p/q?x=1');
});

test('an internal service mounted at another path', async () => {
  const r = await request({ path: '/api/v0/' });
  assert.equal(r.status, 200);
  assert.match(r.body.toString(), /Postern webapi v0/);
  const d = await request({ path: '/api/v0/openapi.json' });
  assert.equal(JSON.parse(d.body.toString()).openapi, '3.1.0');
});

test('handlers added to domains.conf apply without restart', async () => {
  let r = await request({ host: 'new.example.test', path: '/hello.txt' });
  assert.equal(r.status, 404);
  await editDomains(srv, 'WebHandlers:', '  - Domain: new.example.test\n    PathRegexp: ^/\n    WebStatic:\n      Root: site\n');
  r = await request({ host: 'new.example.test', path: '/hello.txt' });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hello, world\n');
});

test('the admin pages show the handlers and save edited ones, refusing invalid ones with the field at fault', async () => {
  const base = `http://127.0.0.1:${srv.ports.http}/admin/api/`;
  const login = await fetch(base + 'login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ password: 'admin-secret' }) });
  assert.equal(login.status, 200);
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  const { csrf } = (await login.json()) as { csrf: string };
  const call = async (method: string, args: unknown) => {
    const r = await fetch(base + method, { method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: cookie, 'X-Postern-CSRF': csrf }, body: JSON.stringify(args) });
    return { status: r.status, json: (await r.json()) as Record<string, unknown> };
  };
  const cur = await call('webserver', {});
  assert.equal(cur.status, 200);
  const handlers = cur.json.WebHandlers as Record<string, unknown>[];
  assert.equal(handlers[1]!.LogName, 'static');
  assert.deepEqual(cur.json.WebDomainRedirects, { 'old.example.test': 'www.example.test' });

  const bad = await call('webserverSave', { WebDomainRedirects: {}, WebHandlers: [...handlers, { Domain: 'x.example.test', PathRegexp: '/no-caret', WebStatic: { Root: 'site' }, WebForward: { URL: 'http://127.0.0.1:1/' } }] });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error as string, /WebHandlers\.\d+\.PathRegexp: must start with \^/);
  assert.match(bad.json.error as string, /exactly one of WebStatic, WebRedirect, WebForward, WebInternal/);
  let r = await request({ tls: false, host: 'old.example.test', path: '/' });
  assert.equal(r.status, 308, 'unchanged after a refused edit');

  const saved = await call('webserverSave', {
    WebDomainRedirects: {},
    WebHandlers: [{ LogName: 'admin-added', Domain: 'admin.example.test', PathRegexp: '^/', DontRedirectPlainHTTP: true, WebRedirect: { BaseURL: 'https://elsewhere.example', StatusCode: 302 } }, ...handlers],
  });
  assert.equal(saved.status, 200, JSON.stringify(saved.json));
  r = await request({ tls: false, host: 'admin.example.test', path: '/x' });
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, 'https://elsewhere.example/x');
  r = await request({ tls: false, host: 'old.example.test', path: '/' });
  assert.equal(r.status, 404, 'domain redirect removed');
  const text = fs.readFileSync(path.join(path.dirname(srv.configFile), 'domains.conf'), 'utf8');
  assert.match(text, /LogName: admin-added/);
  assert.doesNotMatch(text, /WebDomainRedirects/);
  assert.match(text, /# Test domains\./, 'comments kept');
});
