// DNS records for a domain and the check of what a DNS server publishes against them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate, createHash } from 'node:crypto';
import { tempDir } from '../helpers/server.js';
import { startDNSServer } from '../helpers/dnsserver.js';
import { Config } from '../../src/config/load.js';
import { resolverFor } from '../../src/server/resolver.js';
import { genEd25519, txtRecord } from '../../src/dkim/keys.js';
import { selfSigned } from '../../src/tls/selfsigned.js';
import { dnsCheck, dnsRecords, mtastsPolicy, zoneText } from '../../src/dnsrecords/dnsrecords.js';

const dns = await startDNSServer();
after(() => dns.close());

async function setup(): Promise<{ config: Config; dkim: string; cert: string }> {
  const dir = tempDir();
  const key = await genEd25519();
  fs.writeFileSync(path.join(dir, 'dkim.pem'), key);
  const { keyPEM, certPEM } = selfSigned(['mail.example.test']);
  fs.writeFileSync(path.join(dir, 'tls.key'), keyPEM);
  fs.writeFileSync(path.join(dir, 'tls.crt'), certPEM);
  fs.writeFileSync(
    path.join(dir, 'postern.conf'),
    `Hostname: mail.example.test
Postmaster:
  Account: jane
Resolver: "${dns.address}"
Listeners:
  public:
    IPs: ["192.0.2.10", "2001:db8::10"]
    TLS:
      KeyCerts:
        - CertFile: tls.crt
          KeyFile: tls.key
    SMTP:
      Enabled: true
    Submissions:
      Enabled: true
    IMAPS:
      Enabled: true
  internal:
    IPs: ["127.0.0.1"]
    IMAP:
      Enabled: true
      Port: 1143
`,
  );
  fs.writeFileSync(
    path.join(dir, 'domains.conf'),
    `Domains:
  example.test:
    DKIM:
      Selectors:
        s1:
          PrivateKeyFile: dkim.pem
      Sign: [s1]
    MTASTS:
      PolicyID: abc123
      Mode: testing
Accounts:
  jane:
    Domain: example.test
    Destinations:
      jane@example.test: {}
      dmarc-reports@example.test: {}
`,
  );
  return { config: Config.load(path.join(dir, 'postern.conf')), dkim: txtRecord(key), cert: certPEM };
}

test('records name the host, ports of public listeners, keys and report addresses', async () => {
  const { config, dkim, cert } = await setup();
  const records = dnsRecords(config, 'example.test');
  const get = (purpose: string) => records.filter((r) => r.purpose === purpose).map((r) => `${r.name} ${r.type} ${r.value}`);
  assert.deepEqual(get('host-ip'), ['mail.example.test. A 192.0.2.10', 'mail.example.test. AAAA 2001:db8::10']);
  assert.deepEqual(get('mx'), ['example.test. MX 10 mail.example.test.']);
  assert.deepEqual(get('dkim:s1'), [`s1._domainkey.example.test. TXT "${dkim}"`]);
  assert.deepEqual(get('dmarc'), ['_dmarc.example.test. TXT "v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.test"']);
  assert.deepEqual(get('tlsrpt'), ['_smtp._tls.example.test. TXT "v=TLSRPTv1; rua=mailto:postmaster@example.test"']);
  assert.deepEqual(get('mtasts'), ['_mta-sts.example.test. TXT "v=STSv1; id=abc123"']);
  // The loopback-only listener's IMAP is not for clients elsewhere; POP3 is not offered.
  assert.deepEqual(get('srv:_imaps._tcp'), ['_imaps._tcp.example.test. SRV 0 1 993 mail.example.test.']);
  assert.deepEqual(get('srv:_imap._tcp'), ['_imap._tcp.example.test. SRV 0 0 0 .']);
  assert.deepEqual(get('srv:_submissions._tcp'), ['_submissions._tcp.example.test. SRV 0 1 465 mail.example.test.']);
  assert.deepEqual(get('srv:_pop3._tcp'), ['_pop3._tcp.example.test. SRV 0 0 0 .']);
  assert.deepEqual(get('caa'), ['example.test. CAA 0 issue "letsencrypt.org"']);
  const spki = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  assert.deepEqual(get('tlsa'), [`_25._tcp.mail.example.test. TLSA 3 1 1 ${createHash('sha256').update(spki).digest('hex')}`]);
  assert.deepEqual(
    dnsRecords(config, 'example.test', { acme: { caDomain: 'letsencrypt.org', accountURI: 'https://acme.example/acct/1' } }).find((r) => r.purpose === 'caa')?.value,
    '0 issue "letsencrypt.org; accounturi=https://acme.example/acct/1"',
  );
  assert.equal(mtastsPolicy(config, 'example.test'), 'version: STSv1\r\nmode: testing\r\nmx: mail.example.test\r\nmax_age: 86400\r\n');
  const zone = zoneText(records);
  assert.match(zone, /^; DKIM public key of selector s1/m);
  assert.match(zone, /^example\.test\.\s+IN MX\s+10 mail\.example\.test\.$/m);
  config.close();
});

test('the check reports wrong and missing records', async () => {
  const { config, dkim } = await setup();
  const resolver = resolverFor(config.static_);
  dns.set('example.test', 'MX', [{ preference: 10, exchange: 'mail.example.test' }]);
  dns.set('example.test', 'TXT', ['v=spf1 mx -all', 'google-site-verification=x']);
  dns.set('mail.example.test', 'A', ['192.0.2.10']);
  dns.set('_dmarc.example.test', 'TXT', ['v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.test']);
  dns.set('s1._domainkey.example.test', 'TXT', [dkim.replace(/p=.*/, 'p=AAAAC3NzaC1lZDI1NTE5AAAAIGZvb2Jhcg==')]);
  dns.set('_mta-sts.example.test', 'TXT', ['v=STSv1; id=old1']);
  dns.set('_imaps._tcp.example.test', 'SRV', [{ priority: 0, weight: 1, port: 993, target: 'mail.example.test' }]);
  let c = await dnsCheck(config, resolver, 'example.test');
  const status = (purpose: string) => c.results.find((r) => r.purpose === purpose)?.status;
  assert.equal(status('mx'), 'ok');
  assert.equal(status('spf'), 'ok');
  assert.equal(status('dmarc'), 'ok');
  assert.equal(status('host-ip'), 'ok');
  assert.equal(status('srv:_imaps._tcp'), 'ok');
  assert.equal(status('dkim:s1'), 'error');
  assert.equal(status('mtasts'), 'warning');
  assert.equal(status('tlsrpt'), 'warning');
  assert.deepEqual(c.errors, ['TXT s1._domainkey.example.test.: the published key differs from the configured one: signatures fail']);

  dns.set('s1._domainkey.example.test', 'TXT', [dkim]);
  dns.set('example.test', 'MX', [{ preference: 10, exchange: 'mx.elsewhere.example' }]);
  dns.set('example.test', 'TXT', ['v=spf1 -all', 'v=spf1 mx -all']);
  // A new resolver: the first one caches the earlier answers.
  c = await dnsCheck(config, resolverFor(config.static_), 'example.test');
  assert.equal(status('dkim:s1'), 'ok');
  assert.equal(status('mx'), 'error');
  assert.equal(status('spf'), 'error');
  assert.match(c.results.find((r) => r.purpose === 'spf')!.message, /2 records/);
  config.close();
});
