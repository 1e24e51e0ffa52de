// quickstart in a temporary directory with a loopback test resolver: the written configuration
// passes "config test", the server starts with it (moved to loopback and free ports), the
// generated password logs in, the DNS records load as a zone, and blocklisted IPs are reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { parseDocument } from 'yaml';
import { freePorts, postern, tempDir, TestServer, type Ports } from '../helpers/server.js';
import { startDNSServer } from '../helpers/dnsserver.js';

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => execFile(cmd, args, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr })));
}

const hasNamedCheckzone = fs.existsSync('/usr/bin/named-checkzone') || fs.existsSync('/usr/sbin/named-checkzone');

/** Moves every enabled service of every listener to loopback and a free port, and ACME to nowhere. */
async function overridePorts(configFile: string): Promise<Ports> {
  const doc = parseDocument(fs.readFileSync(configFile, 'utf8'));
  const [smtp, submissions, imaps, https, http, metrics] = (await freePorts(6)) as number[];
  const ports: Ports = { smtp: smtp!, submission: 0, submissions: submissions!, imap: 0, imaps: imaps!, http: http!, https: https! };
  const set = (l: string, svc: string, port: number) => {
    if (doc.hasIn(['Listeners', l, svc])) doc.setIn(['Listeners', l, svc, 'Port'], port);
  };
  doc.setIn(['Listeners', 'public', 'IPs'], doc.createNode(['127.0.0.1']));
  doc.setIn(['Listeners', 'internal', 'IPs'], doc.createNode(['127.0.0.1']));
  for (const [svc, port] of [['SMTP', smtp], ['Submissions', submissions], ['IMAPS', imaps], ['AutoconfigHTTPS', https], ['MTASTSHTTPS', https]] as const) set('public', svc, port!);
  for (const svc of ['AccountHTTP', 'AdminHTTP', 'WebmailHTTP', 'WebAPIHTTP']) set('internal', svc, http!);
  set('internal', 'MetricsHTTP', metrics!);
  // Certificates cannot be had here: requests fail at once, and a self-signed one is served.
  doc.setIn(['ACME', 'lets-encrypt', 'DirectoryURL'], 'https://127.0.0.1:1/directory');
  fs.writeFileSync(configFile, String(doc));
  return ports;
}

/** Logs in over IMAPS; resolves with the tagged reply line. */
function imapLogin(port: number, user: string, pass: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // Without SNI: the certificate is the self-signed stand-in while ACME cannot be reached.
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    let buf = '';
    let sent = false;
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      if (!sent && buf.startsWith('* OK') && buf.includes('\r\n')) {
        sent = true;
        s.write(`a LOGIN ${JSON.stringify(user)} ${JSON.stringify(pass)}\r\n`);
      }
      const m = /(?:^|\r\n)a (OK|NO|BAD)[^\r]*\r\n/.exec(buf);
      if (m) {
        s.end();
        resolve(m[0].trim());
      }
    });
    s.on('error', reject);
  });
}

test('quickstart writes a configuration that passes config test and serves, with the DNS records as a zone', { timeout: 180_000 }, async () => {
  const dns = await startDNSServer();
  // 192.0.2.10 is on one of the checked blocklists.
  dns.set('10.2.0.192.sbl.spamhaus.org', 'A', ['127.0.0.2']);
  dns.set('10.2.0.192.sbl.spamhaus.org', 'TXT', ['https://check.spamhaus.example/sbl/query/SBL1']);
  const dir = tempDir('postern-quickstart-');
  const r = await postern(['quickstart', '-dir', dir, '-skipdial', '-hostname', 'mail.example.test', '-resolver', dns.address, '-ips', '192.0.2.10', 'jane@example.test', 'mailuser']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const password = /password \(shown only now[^\n]*\n\n\s+(\S+)/.exec(r.stdout)?.[1];
  assert.ok(password && /^[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}$/.test(password), r.stdout);
  assert.match(r.stdout, /192\.0\.2\.10 is LISTED in sbl\.spamhaus\.org: https:\/\/check\.spamhaus\.example/);
  assert.match(r.stdout, /not listed|bl\.spamcop\.net/);
  assert.doesNotMatch(r.stdout, /Outgoing SMTP/, '-skipdial');
  for (const what of ['IN MX    10 mail.example.test.', '_dmarc.example.test.', 'rua=mailto:dmarcreports@example.test', '_mta-sts.example.test.', '_smtp._tls.example.test.', '_submissions._tcp.example.test.', 'IN CAA', 'IN TLSA  3 1 1 ', 'systemctl enable --now postern.service']) {
    assert.ok(r.stdout.includes(what), `${what} in output`);
  }
  // Three DKIM selectors: two RSA for rotation and one Ed25519; the TLSA records are the host keys'.
  assert.equal((r.stdout.match(/_domainkey\.example\.test\. +IN TXT +"v=DKIM1; k=rsa/g) ?? []).length, 2);
  assert.equal((r.stdout.match(/_domainkey\.example\.test\. +IN TXT +"v=DKIM1; k=ed25519/g) ?? []).length, 1);
  assert.equal((r.stdout.match(/IN TLSA/g) ?? []).length, 2);
  const unit = fs.readFileSync(path.join(dir, 'postern.service'), 'utf8');
  assert.match(unit, /^User=mailuser$/m);
  assert.match(unit, new RegExp(`^WorkingDirectory=${dir}$`, 'm'));
  assert.match(unit, /^ExecStart=.* serve$/m);
  const configFile = path.join(dir, 'config', 'postern.conf');
  const printed = await postern(['--config', configFile, 'config', 'printservice', '--user', 'mailuser']);
  assert.equal(printed.stdout.trim(), unit.trim());

  const t = await postern(['--config', configFile, 'config', 'test']);
  assert.equal(t.code, 0, t.stderr);
  // Running it again would overwrite the account: refused.
  const again = await postern(['quickstart', '-dir', dir, '-skipdial', '-hostname', 'mail.example.test', '-resolver', dns.address, 'jane@example.test']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /exists already/);

  // The zone file output loads with BIND's checker once it has an SOA and NS.
  const zone = await postern(['--config', configFile, 'config', 'dnsrecords', 'example.test']);
  assert.equal(zone.code, 0, zone.stderr);
  if (hasNamedCheckzone) {
    const zfile = path.join(dir, 'example.test.zone');
    fs.writeFileSync(zfile, `$TTL 300\n@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300\n@ IN NS ns1.example.test.\nns1 IN A 192.0.2.53\n${zone.stdout}`);
    const chk = await run('named-checkzone', ['-i', 'local', 'example.test', zfile]);
    assert.equal(chk.code, 0, chk.out);
    assert.match(chk.out, /OK/);
  }

  // Served on loopback and free ports: the generated password logs in.
  const ports = await overridePorts(configFile);
  const srv = new TestServer(dir, configFile, ports, '', ['--config', configFile, 'serve']);
  srv.dns = dns;
  try {
    await srv.start();
    assert.match(await imapLogin(ports.imaps, 'jane@example.test', password!), /^a OK/);
    assert.match(await imapLogin(ports.imaps, 'jane@example.test', 'wrong-password'), /^a NO/);
  } finally {
    await srv.close();
  }
});

test('quickstart -existing-webserver: certificate files instead of ACME, MTA-STS and autoconfig behind a proxy', { timeout: 120_000 }, async () => {
  const dns = await startDNSServer();
  const dir = tempDir('postern-quickstart-');
  try {
    const r = await postern(['quickstart', '-dir', dir, '-skipdial', '-existing-webserver', '-hostname', 'mx.example.test', '-resolver', dns.address, '-ips', '127.0.0.1', 'admin@example.test']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const configFile = path.join(dir, 'config', 'postern.conf');
    const conf = fs.readFileSync(configFile, 'utf8');
    assert.doesNotMatch(conf, /^ACME:|ACME: lets-encrypt/m);
    assert.match(conf, /CertFile: \/etc\/letsencrypt\/live\/mx\.example\.test\/fullchain\.pem/);
    const doc = parseDocument(conf).toJS() as { Listeners: Record<string, Record<string, { Port?: number; NonTLS?: boolean }>> };
    assert.deepEqual(doc.Listeners.internal!.MTASTSHTTPS, { Enabled: true, Port: 81, NonTLS: true });
    assert.equal(doc.Listeners.public!.MTASTSHTTPS, undefined);
    assert.match(r.stdout, /forward https:\/\/mta-sts\.example\.test\/ and https:\/\/autoconfig\.example\.test\/ to http:\/\/127\.0\.0\.1:81\//);
    assert.match(r.stdout, /Blocklists: no public IP to check/);
    const t = await postern(['--config', configFile, 'config', 'test']);
    assert.equal(t.code, 0, t.stderr);
  } finally {
    await dns.close();
  }
});
