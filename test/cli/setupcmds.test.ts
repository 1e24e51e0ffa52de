// Lookup and inspection commands: tlsrpt lookup and parsereportmsg, mtasts lookup, dane
// makerecord, dial and dialmx, message parse, config ensureacmehostprivatekeys.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { freePorts, postern, tempDir } from '../helpers/server.js';
import { startDNSServer, type DNSServer } from '../helpers/dnsserver.js';
import { selfSigned } from '../../src/tls/selfsigned.js';
import { composeReportMessage } from '../../src/tlsrpt/message.js';
import { parseReport } from '../../src/tlsrpt/report.js';
import { generateKey } from '../../src/acme/manager.js';

let dns: DNSServer;
let dir: string;
let configFile: string;
let smtpPort: number;
let mtastsPort: number;
const mtasts = selfSigned(['mta-sts.example.org']);

before(async () => {
  dns = await startDNSServer();
  dir = tempDir('postern-cli-');
  [smtpPort, mtastsPort] = (await freePorts(2)) as [number, number];
  fs.mkdirSync(path.join(dir, 'config'));
  fs.writeFileSync(path.join(dir, 'config', 'ca.pem'), mtasts.certPEM);
  configFile = path.join(dir, 'config', 'postern.conf');
  fs.writeFileSync(
    configFile,
    `Hostname: mail.example.test
Postmaster:
  Account: jane
Listeners:
  public:
    IPs: ["127.0.0.1"]
    TLS:
      ACME: pebble
ACME:
  pebble:
    DirectoryURL: https://127.0.0.1:1/dir
Resolver: "${dns.address}"
Queue:
  CAFiles: [ca.pem]
  MTASTSPort: ${mtastsPort}
  SMTPPort: ${smtpPort}
`,
  );
});

after(async () => {
  await dns?.close();
});

const cli = (args: string[], input?: string) => postern(['--config', configFile, ...args], { input });

test('tlsrpt lookup and mtasts lookup with policy fetch', async () => {
  dns.set('_smtp._tls.example.org', 'TXT', ['v=TLSRPTv1; rua=mailto:tls@example.org,https://reports.example.org/tls']);
  let r = await cli(['tlsrpt', 'lookup', 'example.org']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /report to: tls@example\.org \(mailto\)/);
  assert.match(r.stdout, /report to: https:\/\/reports\.example\.org\/tls \(https\)/);
  r = await cli(['tlsrpt', 'lookup', 'nothing.example']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no TLSRPT record/);

  dns.set('_mta-sts.example.org', 'TXT', ['v=STSv1; id=20240601']);
  dns.set('mta-sts.example.org', 'A', ['127.0.0.1']);
  const server = https.createServer({ key: mtasts.keyPEM, cert: mtasts.certPEM }, (req, res) => {
    res.writeHead(req.url === '/.well-known/mta-sts.txt' ? 200 : 404, { 'Content-Type': 'text/plain' });
    res.end('version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmax_age: 604800\r\n');
  });
  await new Promise<void>((res) => server.listen(mtastsPort, '127.0.0.1', res));
  try {
    r = await cli(['mtasts', 'lookup', 'example.org']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /record: v=STSv1; id=20240601/);
    assert.match(r.stdout, /mode: enforce/);
    assert.match(r.stdout, /mx: mx1\.example\.org/);
  } finally {
    server.close();
  }
});

test('tlsrpt parsereportmsg reads gzip and JSON report messages and refuses others', async () => {
  const fx = (n: string) => fs.readFileSync(new URL(`../fixtures/tlsrpt/${n}`, import.meta.url));
  const google = path.join(dir, 'google.eml');
  fs.writeFileSync(google, composeReportMessage({ from: 'noreply-smtp-tls-reporting@google.com', to: 'tls@example.org', submitter: 'google.com', report: parseReport(fx('google-style.json')) }));
  const ms = path.join(dir, 'microsoft.eml');
  fs.writeFileSync(ms, composeReportMessage({ from: 'tlsrpt-noreply@microsoft.com', to: 'tls@example.org', submitter: 'microsoft.com', report: parseReport(fx('microsoft-style.json')), gzip: false }));
  const plain = path.join(dir, 'plain.eml');
  fs.writeFileSync(plain, 'From: a@example.org\r\nSubject: hi\r\n\r\nno report\r\n');
  const r = await cli(['tlsrpt', 'parsereportmsg', google, ms, plain]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /plain\.eml: no TLS report/);
  const docs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { 'organization-name': string; policies: unknown[] });
  assert.deepEqual(
    docs.map((d) => d['organization-name']),
    ['Google Inc.', JSON.parse(fx('microsoft-style.json').toString())['organization-name']],
  );
});

test('dane makerecord from certificate and keys', async () => {
  const { keyPEM, certPEM } = selfSigned(['mail.example.org']);
  fs.writeFileSync(path.join(dir, 'c.pem'), certPEM);
  fs.writeFileSync(path.join(dir, 'k.pem'), keyPEM);
  const spki = createHash('sha256').update(new X509Certificate(certPEM).publicKey.export({ type: 'spki', format: 'der' })).digest('hex').toUpperCase();
  for (const args of [['3', '1', '1', 'c.pem'], ['dane-ee', 'spki', 'sha2-256', 'k.pem']]) {
    const r = await cli(['dane', 'makerecord', ...args.slice(0, 3), path.join(dir, args[3]!)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `3 1 1 ${spki}`);
  }
  const full = await cli(['dane', 'makerecord', 'dane-ta', 'cert', 'full', path.join(dir, 'c.pem')]);
  assert.equal(full.stdout.trim(), `2 0 0 ${new X509Certificate(certPEM).raw.toString('hex').toUpperCase()}`);
  const bad = await cli(['dane', 'makerecord', '3', 'cert', '1', path.join(dir, 'k.pem')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /needs a certificate/);
});

function spkiHash(pem: string): string {
  return createHash('sha256').update(createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'der' })).digest('hex');
}

test('dane dial verifies with DANE-EE and relays; a wrong record fails', async () => {
  const { keyPEM, certPEM } = selfSigned(['tls.example.org']);
  const server = tls.createServer({ key: keyPEM, cert: certPEM }, (s) => s.pipe(s));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as net.AddressInfo).port;
  dns.authentic = true;
  dns.set('tls.example.org', 'A', ['127.0.0.1']);
  dns.set(`_${port}._tcp.tls.example.org`, 'TLSA', [{ usage: 3, selector: 1, matchingType: 1, data: spkiHash(keyPEM) }]);
  try {
    let r = await cli(['dane', 'dial', `tls.example.org:${port}`], 'hello over dane\n');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /verified with TLSA record 3 1 1/);
    assert.equal(r.stdout, 'hello over dane\n');
    dns.set(`_${port}._tcp.tls.example.org`, 'TLSA', [{ usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) }]);
    r = await cli(['dane', 'dial', `tls.example.org:${port}`], 'x\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /DANE verification failed/);
    assert.equal(r.stdout, '');
  } finally {
    dns.authentic = false;
    server.close();
  }
});

test('dane dialmx: MX lookup, EHLO and STARTTLS, DANE verification, then relaying', async () => {
  const { keyPEM, certPEM } = selfSigned(['mx.dane.example']);
  // A minimal SMTP server with STARTTLS.
  const server = net.createServer((sock) => {
    sock.write('220 mx.dane.example ESMTP\r\n');
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      for (let i; (i = buf.indexOf('\r\n')) >= 0; ) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (/^EHLO /i.test(line)) sock.write('250-mx.dane.example\r\n250 STARTTLS\r\n');
        else if (/^STARTTLS/i.test(line)) {
          sock.off('data', onData);
          sock.write('220 go ahead\r\n');
          const t = new tls.TLSSocket(sock, { isServer: true, key: keyPEM, cert: certPEM });
          t.on('data', (x: Buffer) => {
            for (const l of x.toString().split('\r\n').filter(Boolean)) {
              if (/^QUIT/i.test(l)) t.end('221 bye\r\n');
              else t.write('250 ok over tls\r\n');
            }
          });
          t.on('error', () => {});
          return;
        }
      }
    };
    sock.on('data', onData);
    sock.on('error', () => {});
  });
  await new Promise<void>((res) => server.listen(smtpPort, '127.0.0.1', res));
  dns.authentic = true;
  dns.set('dane.example', 'MX', [{ preference: 10, exchange: 'mx.dane.example' }]);
  dns.set('mx.dane.example', 'A', ['127.0.0.1']);
  dns.set(`_${smtpPort}._tcp.mx.dane.example`, 'TLSA', [{ usage: 3, selector: 1, matchingType: 1, data: spkiHash(keyPEM) }]);
  try {
    const r = await cli(['dane', 'dialmx', 'dane.example'], 'EHLO client.example\r\nQUIT\r\n');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /connected to mx\.dane\.example \(127\.0\.0\.1\).*verified with DANE|verified with TLSA record/s);
    assert.match(r.stdout, /250 ok over tls/);
    assert.match(r.stdout, /221 bye/);
  } finally {
    dns.authentic = false;
    server.close();
  }
});

test('message parse prints the MIME structure', async () => {
  const file = fileURLPath('../fixtures/mime/03-multipart-mixed-attach.eml');
  const r = await cli(['message', 'parse', file]);
  assert.equal(r.code, 0, r.stderr);
  const root = JSON.parse(r.stdout) as { type: string; subtype: string; parts: { type: string }[]; envelope?: { subject?: string } };
  assert.equal(`${root.type}/${root.subtype}`.toLowerCase(), 'multipart/mixed');
  assert.ok(root.parts.length >= 2);
});

function fileURLPath(rel: string): string {
  return new URL(rel, import.meta.url).pathname;
}

test('config ensureacmehostprivatekeys keeps the key of an obtained certificate and makes the other', async () => {
  const host = 'mail.example.test';
  // A certificate from an earlier ACME order for the host, with its ECDSA key.
  const key = generateKey('ecdsap256');
  const certsDir = path.join(dir, 'data', 'acme', 'pebble', 'certs');
  fs.mkdirSync(certsDir, { recursive: true });
  const { certPEM } = selfSigned([host]);
  fs.writeFileSync(path.join(certsDir, `${host}.ecdsap256.pem`), key + certPEM);
  fs.writeFileSync(path.join(dir, 'config', 'domains.conf'), 'Domains:\n  example.test: {}\nAccounts:\n  jane:\n    Domain: example.test\n    Destinations:\n      jane@example.test: {}\n');
  const r = await cli(['config', 'ensureacmehostprivatekeys']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${host} ecdsap256: hostkeys/${host}\\.ecdsap256\\.pem \\(acme certificate\\)`));
  assert.match(r.stdout, new RegExp(`${host} rsa2048: hostkeys/${host}\\.rsa2048\\.pem \\(generated\\)`));
  assert.match(r.stdout, /HostPrivateKeyFiles:\n {8}- hostkeys\/mail\.example\.test\.ecdsap256\.pem\n {8}- hostkeys\/mail\.example\.test\.rsa2048\.pem/);
  assert.equal(fs.readFileSync(path.join(dir, 'config', 'hostkeys', `${host}.ecdsap256.pem`), 'utf8'), key);
  const rsa = createPrivateKey(fs.readFileSync(path.join(dir, 'config', 'hostkeys', `${host}.rsa2048.pem`)));
  assert.equal(rsa.asymmetricKeyDetails?.modulusLength, 2048);
  // Running it again changes nothing.
  const again = await cli(['config', 'ensureacmehostprivatekeys']);
  assert.match(again.stdout, /ecdsap256: .*\(existing file\)/);
});
