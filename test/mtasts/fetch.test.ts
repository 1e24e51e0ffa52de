import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { fetchPolicy, PolicyFetchError, type FetchOptions, type PolicyFailureType } from '../../src/mtasts/fetch.js';
import { StubResolver } from '../../src/dns/stub.js';
import { startDNSServer } from '../helpers/dnsserver.js';
import { ca, enforcePolicy, leafFor, otherCA, startPolicyServer } from './helpers.js';

const good = await startPolicyServer(leafFor(['mta-sts.example.org']), enforcePolicy);
const wrongName = await startPolicyServer(leafFor(['mta-sts.example.net']), enforcePolicy);
const untrusted = await startPolicyServer(leafFor(['mta-sts.example.org'], otherCA), enforcePolicy);
const expired = await startPolicyServer(leafFor(['mta-sts.example.org'], ca, -1), enforcePolicy);
const wildcard = await startPolicyServer(leafFor(['*.example.org']), enforcePolicy);
after(() => Promise.all([good, wrongName, untrusted, expired, wildcard].map((s) => s.close())));

const opts = (port: number, more: FetchOptions = {}): FetchOptions => ({ host: '127.0.0.1', port, ca: ca.certPEM, timeout: 5000, ...more });

async function fails(p: Promise<unknown>, type: PolicyFailureType, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof PolicyFetchError, String(err));
    assert.equal(err.resultType, type, err.message);
    assert.match(err.message, re);
    return true;
  });
}

test('fetches and parses the policy, with SNI and Host naming the policy host', async () => {
  const n = good.seen.length;
  const r = await fetchPolicy('example.org', opts(good.port));
  assert.equal(r.text, enforcePolicy);
  assert.deepEqual(r.policy, { version: 'STSv1', mode: 'enforce', mx: ['mx.example.org', '*.backup.example.org'], maxAge: 86400 });
  assert.deepEqual(good.seen.slice(n), [{ path: '/.well-known/mta-sts.txt', host: 'mta-sts.example.org', servername: 'mta-sts.example.org' }]);
});

test('a wildcard certificate for the policy host is valid', async () => {
  assert.equal((await fetchPolicy('EXAMPLE.org.', opts(wildcard.port))).policy.mode, 'enforce');
});

test('the host name is resolved with the given resolver', async () => {
  const dns = await startDNSServer({ records: { 'mta-sts.example.org': { A: ['127.0.0.1'] } } });
  try {
    const resolver = new StubResolver({ servers: [dns.address], cacheSize: 0 });
    const r = await fetchPolicy('example.org', { port: good.port, ca: ca.certPEM, resolver, timeout: 5000 });
    assert.equal(r.policy.mode, 'enforce');
    assert.ok(dns.queries.some((q) => q.name === 'mta-sts.example.org' && q.type === 'A'));
    await fails(fetchPolicy('example.net', { port: good.port, ca: ca.certPEM, resolver, timeout: 5000 }), 'sts-policy-fetch-error', /mta-sts\.example\.net/);
  } finally {
    await dns.close();
  }
});

test('certificate problems are sts-webpki-invalid', async () => {
  await fails(fetchPolicy('example.org', opts(wrongName.port)), 'sts-webpki-invalid', /mta-sts\.example\.org/);
  await fails(fetchPolicy('example.org', opts(untrusted.port)), 'sts-webpki-invalid', /certificate not valid: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  await fails(fetchPolicy('example.org', opts(expired.port)), 'sts-webpki-invalid', /certificate not valid: CERT_HAS_EXPIRED/);
  // Without the test CA, node's roots do not trust the server either.
  await fails(fetchPolicy('example.org', opts(good.port, { ca: undefined })), 'sts-webpki-invalid', /certificate not valid: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
});

test('HTTP errors and redirects are sts-policy-fetch-error; a redirect is not followed', async () => {
  const srv = await startPolicyServer(leafFor(['mta-sts.example.org']));
  try {
    srv.handle = (_req, res) => {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not here');
    };
    await fails(fetchPolicy('example.org', opts(srv.port)), 'sts-policy-fetch-error', /HTTP status 404/);
    srv.handle = (_req, res) => {
      res.writeHead(301, { Location: 'https://mta-sts.example.org/elsewhere.txt' });
      res.end();
    };
    const n = srv.seen.length;
    await fails(fetchPolicy('example.org', opts(srv.port)), 'sts-policy-fetch-error', /HTTP status 301, redirect to "https:\/\/mta-sts.example.org\/elsewhere.txt" not followed/);
    assert.equal(srv.seen.length, n + 1);
  } finally {
    await srv.close();
  }
});

test('content type and size: sts-policy-invalid', async () => {
  const srv = await startPolicyServer(leafFor(['mta-sts.example.org']));
  try {
    srv.handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(enforcePolicy);
    };
    await fails(fetchPolicy('example.org', opts(srv.port)), 'sts-policy-invalid', /content type "text\/html", expected text\/plain/);
    srv.handle = (_req, res) => {
      res.writeHead(200);
      res.end(enforcePolicy);
    };
    await fails(fetchPolicy('example.org', opts(srv.port)), 'sts-policy-invalid', /content type ""/);
    srv.handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'TEXT/Plain;charset=us-ascii' });
      res.end(enforcePolicy);
    };
    assert.equal((await fetchPolicy('example.org', opts(srv.port))).policy.mode, 'enforce');

    srv.handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(70000) });
      res.end('x'.repeat(70000));
    };
    await fails(fetchPolicy('example.org', opts(srv.port)), 'sts-policy-invalid', /larger than 65536 bytes/);
    // Without a length, the body is cut off once past the limit, while the server is still sending.
    let sent = 0;
    srv.handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      const chunk = Buffer.alloc(16384, 'x');
      const timer = setInterval(() => {
        if (res.destroyed || sent > 50 * 1024 * 1024) return clearInterval(timer), res.destroy();
        res.write(chunk);
        sent += chunk.length;
      }, 1);
    };
    await fails(fetchPolicy('example.org', opts(srv.port)), 'sts-policy-invalid', /larger than 65536 bytes/);
    assert.ok(sent < 10 * 1024 * 1024, `${sent} bytes sent`);
  } finally {
    await srv.close();
  }
});

test('a policy that does not parse is sts-policy-invalid and says where', async () => {
  const srv = await startPolicyServer(leafFor(['mta-sts.example.org']), 'version: STSv1\nmode: strict\nmax_age: 1\n');
  try {
    await fails(fetchPolicy('example.org', opts(srv.port)), 'sts-policy-invalid', /line 2: mode must be/);
  } finally {
    await srv.close();
  }
});

test('slow and silent servers time out', async () => {
  const srv = await startPolicyServer(leafFor(['mta-sts.example.org']));
  try {
    // Headers at once, then one byte every 50 ms: never done within the timeout.
    srv.handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write('x')), 50);
    };
    let start = performance.now();
    await fails(fetchPolicy('example.org', opts(srv.port, { timeout: 400 })), 'sts-policy-fetch-error', /no complete response within 400 ms/);
    assert.ok(performance.now() - start < 2000);
    srv.handle = () => {};
    start = performance.now();
    await fails(fetchPolicy('example.org', opts(srv.port, { timeout: 300 })), 'sts-policy-fetch-error', /within 300 ms/);
    assert.ok(performance.now() - start < 2000);
  } finally {
    await srv.close();
  }
  // A TCP server that never starts TLS.
  const silent = net.createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const conns: net.Socket[] = [];
  silent.on('connection', (c) => conns.push(c));
  try {
    await fails(fetchPolicy('example.org', opts((silent.address() as net.AddressInfo).port, { timeout: 300 })), 'sts-policy-fetch-error', /within 300 ms/);
  } finally {
    for (const c of conns) c.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test('refused connections and servers that hang up are sts-policy-fetch-error', async () => {
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await fails(fetchPolicy('example.org', opts(port)), 'sts-policy-fetch-error', /ECONNREFUSED/);

  const srv = await startPolicyServer(leafFor(['mta-sts.example.org']));
  try {
    srv.handle = (req) => req.socket.destroy();
    await fails(fetchPolicy('example.org', opts(srv.port)), 'sts-policy-fetch-error', /socket hang up|ECONNRESET/);
    srv.handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '1000' });
      res.write('version: STSv1\n');
      setTimeout(() => res.destroy(), 20);
    };
    await fails(fetchPolicy('example.org', opts(srv.port)), 'sts-policy-fetch-error', /./);
  } finally {
    await srv.close();
  }
});

test('an invalid domain is rejected before any connection', async () => {
  await assert.rejects(fetchPolicy('exa mple.org', opts(good.port)), /invalid domain name/);
});
