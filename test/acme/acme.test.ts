// ACME against pebble: certificates obtained with tls-alpn-01 (and external account binding),
// served to TLS clients by SNI and without, on demand for allowed names only, renewed before
// expiry with the host keys kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { freePorts, tempDir, TestServer, type Ports } from '../helpers/server.js';
import { startDNSServer, type DNSServer } from '../helpers/dnsserver.js';
import { deriveCredentials } from '../../src/sasl/credentials.js';
import { Store } from '../../src/store/store.js';
import { generateKey } from '../../src/acme/manager.js';
import { pebbleInstalled, startPebble, type Pebble } from './pebble.js';

const skip = pebbleInstalled ? false : 'pebble is not installed (apt-get install pebble)';

interface Setup {
  server: TestServer;
  pebble: Pebble;
  dns: DNSServer;
  ports: Ports;
  hostKeys: { ecdsa: string; rsa: string };
}

/** A server whose only listener gets its certificates from pebble. */
async function setup(o: { validitySeconds?: number; challenge: string; eab?: boolean }): Promise<Setup> {
  const dns = await startDNSServer();
  for (const n of ['mail.example.test', 'mta-sts.example.test', 'autoconfig.example.test', 'other.example.test']) dns.set(n, 'A', ['127.0.0.1']);
  const [smtp, submission, submissions, imap, imaps, httpPort] = (await freePorts(6)) as [number, number, number, number, number, number];
  const ports: Ports = { smtp, submission, submissions, imap, imaps, http: httpPort, https: 0 };
  const eab = { 'kid-1': 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W' };
  const pebble = await startPebble({ dns: dns.address, httpPort, tlsPort: imaps, validitySeconds: o.validitySeconds, eab: o.eab ? eab : undefined });
  const dir = tempDir();
  const cdir = path.join(dir, 'config');
  fs.mkdirSync(path.join(cdir, 'hostkeys'), { recursive: true });
  const hostKeys = { ecdsa: generateKey('ecdsap256'), rsa: generateKey('rsa2048') };
  fs.writeFileSync(path.join(cdir, 'hostkeys', 'ecdsa.pem'), hostKeys.ecdsa);
  fs.writeFileSync(path.join(cdir, 'hostkeys', 'rsa.pem'), hostKeys.rsa);
  fs.copyFileSync(pebble.caFile, path.join(cdir, 'pebble-https.pem'));
  const svc = (name: string, port: number) => `    ${name}:\n      Enabled: true\n      Port: ${port}\n`;
  fs.writeFileSync(
    path.join(cdir, 'postern.conf'),
    `Hostname: mail.example.test
DataDir: ../data
Postmaster:
  Account: jane
Resolver: "${dns.address}"
Queue:
  Paused: true
ACME:
  pebble:
    DirectoryURL: ${pebble.directoryURL}
    ContactEmail: admin@example.test
    CAFile: pebble-https.pem
    ChallengeTypes: [${o.challenge}]
${o.eab ? `    ExternalAccountBinding:\n      KeyID: kid-1\n      HMACKey: ${eab['kid-1']}\n` : ''}Listeners:
  test:
    IPs: ["127.0.0.1"]
    TLS:
      ACME: pebble
      HostPrivateKeyFiles: [hostkeys/ecdsa.pem, hostkeys/rsa.pem]
${svc('SMTP', smtp)}${svc('Submission', submission)}${svc('Submissions', submissions)}${svc('IMAP', imap)}${svc('IMAPS', imaps)}${svc('AccountHTTP', httpPort)}`,
  );
  fs.writeFileSync(
    path.join(cdir, 'domains.conf'),
    `Domains:
  example.test: {}
Accounts:
  jane:
    Domain: example.test
    Destinations:
      jane@example.test: {}
`,
  );
  const store = new Store(path.join(dir, 'data'));
  store.account('jane').setCredentials(await deriveCredentials('secret-pass'));
  store.close();
  const configFile = path.join(cdir, 'postern.conf');
  const server = new TestServer(dir, configFile, ports, '', ['--config', configFile, 'serve']);
  server.dns = dns;
  await server.start();
  return { server, pebble, dns, ports, hostKeys };
}

async function teardown(s: Setup): Promise<void> {
  await s.server.close();
  await s.pebble.stop();
}

/** The certificate chain a TLS client gets, verified against the given roots. */
function peerCert(port: number, servername: string | undefined, ca: string, extra: tls.ConnectionOptions = {}): Promise<tls.DetailedPeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ca, ...extra, ...(servername ? {} : { checkServerIdentity: () => undefined }) }, () => {
      const c = s.getPeerCertificate(true);
      s.end();
      resolve(c);
    });
    s.on('error', reject);
  });
}

function spki(pem: string): string {
  return createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('hex');
}

function certSPKI(c: tls.PeerCertificate): string {
  return new X509Certificate(c.raw).publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timeout waiting for ${what}: ${String(last)}`);
}

test('tls-alpn-01 with external account binding: host certificate with the host keys, on-demand names, renewal', { skip, timeout: 240_000 }, async () => {
  // Issued certificates expire 30 days and 20 seconds after issue: renewal (30 days before) is due at once.
  const s = await setup({ challenge: 'tls-alpn-01', eab: true, validitySeconds: 30 * 86400 + 20 });
  try {
    const root = await s.pebble.root();
    // The host name's certificate is requested at start; until then a self-signed one is served.
    const first = await until('host certificate', async () => {
      const c = await peerCert(s.ports.imaps, 'mail.example.test', root);
      return c.subjectaltname?.includes('DNS:mail.example.test') ? c : undefined;
    });
    assert.equal(certSPKI(first), spki(s.hostKeys.ecdsa), 'ECDSA host key in the certificate');
    // Clients that only do RSA get the certificate of the RSA host key.
    const rsa = await peerCert(s.ports.imaps, 'mail.example.test', root, { sigalgs: 'RSA-PSS+SHA256:rsa_pkcs1_sha256', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    assert.equal(certSPKI(rsa), spki(s.hostKeys.rsa), 'RSA host key in the certificate');
    // Without SNI: the host certificate as well.
    const nosni = await peerCert(s.ports.submissions, undefined, root);
    assert.ok(nosni.subjectaltname?.includes('DNS:mail.example.test'), nosni.subjectaltname);
    // STARTTLS-less implicit TLS on another port, and on-demand names of the domain.
    const mtasts = await peerCert(s.ports.imaps, 'mta-sts.example.test', root);
    assert.equal(mtasts.subjectaltname, 'DNS:mta-sts.example.test');
    // A name that is not ours gets no certificate of its own.
    const other = await peerCert(s.ports.imaps, 'other.example.test', root, { checkServerIdentity: () => undefined });
    assert.ok(!other.subjectaltname?.includes('other.example.test'), other.subjectaltname);
    assert.ok(!s.server.output.includes('"name":"other.example.test"'), 'no order for other.example.test');

    // Renewal: a new certificate (other serial), same host key.
    const renewed = await until('renewed certificate', async () => {
      const c = await peerCert(s.ports.imaps, 'mail.example.test', root);
      return c.serialNumber !== first.serialNumber ? c : undefined;
    });
    assert.equal(certSPKI(renewed), spki(s.hostKeys.ecdsa));
    assert.match(s.server.output, /renewing certificate/);
    assert.match(s.server.output, /tls-alpn-01 challenge answered/);
    // The account and certificates are kept: after a restart they are served without new orders.
    const orders = (s.server.output.match(/certificate obtained/g) ?? []).length;
    // Served just before the restart: renewals of these short-lived test certificates go on meanwhile.
    const before = await peerCert(s.ports.imaps, 'mta-sts.example.test', root);
    await s.server.restart();
    const again = await peerCert(s.ports.imaps, 'mta-sts.example.test', root);
    // The stored certificate, unless it came due for renewal (every 20 s here) right then.
    if (again.serialNumber !== before.serialNumber) assert.match(s.server.output, /renewing certificate/, 'a different certificate after the restart without a renewal');
    assert.ok(fs.existsSync(path.join(s.server.dataDir, 'acme', 'pebble', 'account.json')));
    assert.ok(orders >= 2);
  } finally {
    await teardown(s);
  }
});

test('http-01 on the web port, certificate on demand for the client settings name', { skip, timeout: 180_000 }, async () => {
  const s = await setup({ challenge: 'http-01' });
  try {
    const root = await s.pebble.root();
    const host = await until('host certificate', async () => {
      const c = await peerCert(s.ports.submissions, 'mail.example.test', root);
      return c.subjectaltname?.includes('DNS:mail.example.test') ? c : undefined;
    });
    assert.equal(certSPKI(host), spki(s.hostKeys.ecdsa));
    assert.match(s.server.output, /http-01 challenge answered/);
    assert.doesNotMatch(s.server.output, /tls-alpn-01 challenge answered/);
    // A name added to domains.conf is allowed at once.
    s.dns.set('imap.example.test', 'A', ['127.0.0.1']);
    let c = await peerCert(s.ports.imaps, 'imap.example.test', root, { checkServerIdentity: () => undefined });
    assert.ok(!c.subjectaltname?.includes('imap.example.test'));
    const file = path.join(path.dirname(s.server.configFile), 'domains.conf');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('example.test: {}', 'example.test:\n    ClientSettingsDomain: imap.example.test'));
    c = await until('client settings certificate', async () => {
      const x = await peerCert(s.ports.imaps, 'imap.example.test', root, { checkServerIdentity: () => undefined });
      return x.subjectaltname === 'DNS:imap.example.test' ? x : undefined;
    });
    assert.ok(c.valid_to);
  } finally {
    await teardown(s);
  }
});
