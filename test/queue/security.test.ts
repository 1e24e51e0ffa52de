// Transport security of outbound delivery: MTA-STS policies fetched over HTTPS with a test CA,
// DANE with TLSA records that the DNS server marks authentic or not, REQUIRETLS, and the
// daily TLS report about the sessions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { issueCert, type Issued } from '../../src/tls/selfsigned.js';
import { makeTLSARecord } from '../../src/dane/tlsa.js';
import { reportFromMessage } from '../../src/tlsrpt/message.js';
import { startServe, tempDir, type TestServer } from '../helpers/server.js';
import { startFakeSMTP, type FakeServer } from '../helpers/smtpfake.js';
import { startReceiver, submit, waitFor, bobInbox, janeInbox, queued, header, mx } from './helpers.js';

let receiver: TestServer;
let sender: TestServer;
let policyServer: https.Server;
const fakes: FakeServer[] = [];
let ca: Issued;
const leaf = (names: string[]) => issueCert({ names, issuer: { certDER: ca.certDER, key: ca.key, name: ca.name } });
const policies: Record<string, string> = {};
/** TLS reports posted to https://tlsrpt.remote.test/ (RFC 8460 3). */
const posted: { method: string; url: string; type: string; body: Buffer }[] = [];

before(async () => {
  ca = issueCert({ names: ['Postern Test CA'], isCA: true });
  const dir = tempDir();
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, ca.certPEM);
  const sts = leaf(['mta-sts.remote.test', 'mta-sts.badsts.test', 'tlsrpt.remote.test']);
  policyServer = https.createServer({ cert: sts.certPEM, key: sts.keyPEM }, (req, res) => {
    if (req.headers.host?.startsWith('tlsrpt.remote.test')) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posted.push({ method: req.method ?? '', url: req.url ?? '', type: req.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
        res.writeHead(posted.length === 1 ? 503 : 201).end();
      });
      return;
    }
    const policy = policies[(req.headers.host ?? '').replace(/^mta-sts\./, '')];
    if (req.url !== '/.well-known/mta-sts.txt' || !policy) return res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end(policy);
  });
  await new Promise<void>((r) => policyServer.listen(0, '127.0.0.1', r));
  const mx1 = leaf(['mx.remote.test']);
  receiver = await startReceiver({
    tls: { certPEM: mx1.certPEM, keyPEM: mx1.keyPEM },
    accounts: '  bob:\n    Domain: remote.test\n    Destinations:\n      bob@remote.test: {}\n      tlsrpt@remote.test: {}\n',
  });
  sender = await startServe({
    queue: `SMTPPort: ${receiver.ports.smtp}\nCAFiles: ["${caFile}"]\nMTASTSPort: ${(policyServer.address() as AddressInfo).port}\nMaxAttempts: 3`,
  });
  // Answers are DNSSEC-authentic unless a test says otherwise for a name.
  sender.dns.authentic = true;
  for (const d of ['remote.test', 'badsts.test']) {
    sender.dns.set(`_mta-sts.${d}`, 'TXT', ['v=STSv1; id=20260101']);
    sender.dns.set(`mta-sts.${d}`, 'A', ['127.0.0.1']);
    policies[d] = `version: STSv1\r\nmode: enforce\r\nmx: mx.${d}\r\nmax_age: 604800\r\n`;
  }
  mx(sender, 'remote.test', 'mx.remote.test');
});

after(async () => {
  for (const f of fakes) await f.close();
  policyServer?.close();
  await sender?.close();
  await receiver?.close();
});

async function fake(ip: string, domain: string, o: Omit<Parameters<typeof startFakeSMTP>[0], 'host' | 'port'>): Promise<FakeServer> {
  const f = await startFakeSMTP({ host: ip, port: receiver.ports.smtp, ...o });
  fakes.push(f);
  mx(sender, domain, `mx.${domain}`, ip);
  return f;
}

async function nextAttempt(to: string): Promise<void> {
  const before = (await queued(sender)).find((m) => m.recipient === to);
  assert.ok(before, `${to} not queued`);
  await sender.advanceClock(before.nextattempt - Date.now() + 1000);
  await waitFor(`attempt ${before.attempts + 1} for ${to}`, async () => {
    const m = (await queued(sender)).find((x) => x.recipient === to);
    return !m || m.attempts > before.attempts;
  });
}

const dsnFor = (rcpt: string) => waitFor(`dsn for ${rcpt}`, async () => (await janeInbox(sender)).map(String).find((m) => m.includes(`Final-Recipient: rfc822;${rcpt}`)));

test('MTA-STS enforce: delivered over TLS verified with the CA from the config', async () => {
  await submit(sender, ['bob@remote.test'], 'sts ok');
  const msg = await waitFor('message at bob', async () => (await bobInbox(receiver)).find((m) => header(m, 'subject') === 'sts ok'));
  // The receiver's Received field records the TLS session.
  assert.match(header(msg, 'received') ?? '', /tls|TLS/);
});

test('MTA-STS enforce with a certificate that does not match: no delivery, retries, then a DSN', async () => {
  const wrong = leaf(['other.example']);
  const f = await fake('127.0.0.11', 'badsts.test', { tls: { certPEM: wrong.certPEM, keyPEM: wrong.keyPEM } });
  await submit(sender, ['x@badsts.test'], 'sts bad');
  const q = await waitFor('first attempt', async () => (await queued(sender)).find((m) => m.recipient === 'x@badsts.test' && m.attempts === 1 && m.lasterror));
  assert.match(q.lasterror!, /certificate|altnames|Hostname/i);
  assert.ok(f.connections >= 1);
  await nextAttempt('x@badsts.test');
  await nextAttempt('x@badsts.test');
  const dsn = await dsnFor('x@badsts.test');
  assert.match(dsn, /Action: failed/);
  assert.equal(f.received.length, 0);
  assert.equal((await queued(sender)).filter((m) => m.recipient === 'x@badsts.test').length, 0);
});

test('DANE: a TLSA record that does not match the certificate prevents delivery', async () => {
  const cert = issueCert({ names: ['mx.dane.test'] });
  const other = issueCert({ names: ['mx.dane.test'] });
  const f = await fake('127.0.0.12', 'dane.test', { tls: { certPEM: cert.certPEM, keyPEM: cert.keyPEM } });
  sender.dns.set('_25._tcp.mx.dane.test', 'TLSA', [makeTLSARecord(3, 1, 1, other.certPEM)]);
  await submit(sender, ['x@dane.test'], 'dane mismatch');
  const q = await waitFor('first attempt', async () => (await queued(sender)).find((m) => m.recipient === 'x@dane.test' && m.attempts === 1 && m.lasterror));
  assert.match(q.lasterror!, /DANE/);
  assert.equal(f.received.length, 0);
  assert.ok(f.connections >= 1);
  await sender.ctl('queue drop', { recipient: 'x@dane.test' });
});

test('DANE: TLSA records without the AD bit are ignored', async () => {
  const cert = issueCert({ names: ['mx.noad.test'] });
  const other = issueCert({ names: ['mx.noad.test'] });
  const f = await fake('127.0.0.13', 'noad.test', { tls: { certPEM: cert.certPEM, keyPEM: cert.keyPEM } });
  sender.dns.set('_25._tcp.mx.noad.test', 'TLSA', [makeTLSARecord(3, 1, 1, other.certPEM)]);
  sender.dns.behave('_25._tcp.mx.noad.test', 'noad');
  await submit(sender, ['x@noad.test'], 'dane unsigned');
  await waitFor('delivered', () => f.received.length === 1);
  assert.equal(f.received[0]!.tls, true);
});

test('DANE and REQUIRETLS: delivered to a peer that offers REQUIRETLS and matches its TLSA record', async () => {
  const cert = issueCert({ names: ['mx.danegood.test'] });
  const f = await fake('127.0.0.14', 'danegood.test', { tls: { certPEM: cert.certPEM, keyPEM: cert.keyPEM }, extensions: ['REQUIRETLS'] });
  sender.dns.set('_25._tcp.mx.danegood.test', 'TLSA', [makeTLSARecord(3, 1, 1, cert.certPEM)]);
  await submit(sender, ['x@danegood.test'], 'requiretls ok', { mailParams: 'REQUIRETLS' });
  await waitFor('delivered', () => f.received.length === 1);
  assert.equal(f.received[0]!.tls, true);
  assert.match(f.received[0]!.lines[0]!, / REQUIRETLS/);
});

test('REQUIRETLS to a peer without REQUIRETLS: not delivered, DSN to the sender', async () => {
  const cert = issueCert({ names: ['mx.noreqtls.test'] });
  const f = await fake('127.0.0.15', 'noreqtls.test', { tls: { certPEM: cert.certPEM, keyPEM: cert.keyPEM } });
  sender.dns.set('_25._tcp.mx.noreqtls.test', 'TLSA', [makeTLSARecord(3, 1, 1, cert.certPEM)]);
  await submit(sender, ['x@noreqtls.test'], 'requiretls refused', { mailParams: 'REQUIRETLS' });
  const dsn = await dsnFor('x@noreqtls.test');
  assert.match(dsn, /Status: 5\.7\.30/);
  assert.match(dsn, /REQUIRETLS/);
  assert.equal(f.received.length, 0);
});

test('a daily TLS report goes to the policy domain that asks for it, by mail and HTTPS', async () => {
  const port = (policyServer.address() as AddressInfo).port;
  sender.dns.set('tlsrpt.remote.test', 'A', ['127.0.0.1']);
  sender.dns.set('_smtp._tls.badsts.test', 'TXT', [`v=TLSRPTv1; rua=mailto:tlsrpt@remote.test,https://tlsrpt.remote.test:${port}/reports`]);
  await sender.advanceClock(86400_000);
  const msg = await waitFor('tls report', async () => (await bobInbox(receiver)).find((m) => header(m, 'tls-report-domain') === 'badsts.test'));
  const report = reportFromMessage(msg);
  const p = report.policies.find((x) => x.policyType === 'sts' && x.policyDomain === 'badsts.test' && x.failedSessions > 0);
  assert.ok(p, JSON.stringify(report.policies));
  assert.ok(p.failures.some((d) => d.resultType === 'certificate-host-mismatch' || d.resultType === 'certificate-not-trusted'), JSON.stringify(p.failures));
  assert.deepEqual(p.mxHosts, ['mx.badsts.test']);

  // The first POST gets a 503 and is retried (after a minute: the test does not wait for that).
  await waitFor('report posted', () => posted.length >= 1);
  const post = posted[0]!;
  assert.equal(post.method, 'POST');
  assert.equal(post.url, '/reports');
  assert.equal(post.type, 'application/tlsrpt+gzip');
  const json = JSON.parse(gunzipSync(post.body).toString('utf8')) as { policies: { policy: { 'policy-domain': string }; summary: { 'total-failure-session-count': number } }[] };
  const bad = json.policies.find((x) => x.policy['policy-domain'] === 'badsts.test');
  assert.ok(bad && bad.summary['total-failure-session-count'] > 0, JSON.stringify(json));
});
