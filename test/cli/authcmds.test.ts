// The message authentication commands (dkim, spf, dmarc, dns) run as the real command line,
// against a scriptable DNS server on loopback named as Resolver in postern.conf.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { postern, tempDir } from '../helpers/server.js';
import { startDNSServer, type DNSServer } from '../helpers/dnsserver.js';
import { genEd25519, genRSA, parseKeyRecord, recordPublicKey, txtRecord } from '../../src/dkim/keys.js';
import { parseReport } from '../../src/dmarcrpt/report.js';

let dns: DNSServer;
let dir: string;
let conf: string;
let rsaPEM: string;
let edPEM: string;

const run = (args: string[], input?: string) => postern(['--config', conf, ...args], { input });

function message(opts: { from?: string; body?: string } = {}): string {
  return [
    `From: Jane <${opts.from ?? 'jane@example.test'}>`,
    'To: bob@remote.test',
    'Subject: lunch',
    'Date: Mon, 1 Jun 2026 12:00:00 +0000',
    'Message-ID: <lunch-1@example.test>',
    '',
    opts.body ?? 'Shall we meet at noon?\r\nJane',
    '',
  ].join('\r\n');
}

function writeMessage(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

/** The character-strings of zone file TXT data: "..." "...". */
function zoneStrings(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1]!.replace(/\\(.)/g, '$1'));
  assert.equal(s.trim().replace(re, '').trim(), '', `unexpected text outside quotes: ${s}`);
  return out;
}

before(async () => {
  rsaPEM = await genRSA(2048);
  edPEM = await genEd25519();
  dns = await startDNSServer({
    records: {
      'rsa1._domainkey.example.test': { TXT: [txtRecord(rsaPEM)] },
      'ed1._domainkey.example.test': { TXT: [txtRecord(edPEM)] },
      'example.test': {
        TXT: ['v=spf1 ip4:127.0.0.1 ~ip4:127.0.0.2 -all exp=explain.example.test', 'unrelated text'],
        MX: [
          { preference: 20, exchange: 'mx2.example.test' },
          { preference: 10, exchange: 'mx1.example.test' },
        ],
        NS: ['ns1.example.test'],
      },
      'explain.example.test': { TXT: ['%{i} may not send mail for %{d}'] },
      '_dmarc.example.test': { TXT: ['v=DMARC1; p=reject; rua=mailto:dmarc@example.test'] },
      'mx1.example.test': { A: ['127.0.0.10'], AAAA: ['::1'] },
      'www.example.test': { CNAME: 'mx1.example.test' },
      '10.0.0.127.in-addr.arpa': { PTR: ['mx1.example.test'] },
      '_submissions._tcp.example.test': { SRV: [{ priority: 0, weight: 1, port: 465, target: 'mx1.example.test' }] },
      '_25._tcp.mx1.example.test': { TLSA: [{ usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) }] },
      'other.test': { TXT: ['v=spf1 -all'] },
    },
  });
  dir = tempDir();
  fs.mkdirSync(path.join(dir, 'dkim'));
  fs.writeFileSync(path.join(dir, 'dkim', 'rsa1.pem'), rsaPEM);
  fs.writeFileSync(path.join(dir, 'dkim', 'ed1.pem'), edPEM);
  conf = path.join(dir, 'postern.conf');
  fs.writeFileSync(conf, `Hostname: mail.example.test\nResolver: "${dns.address}"\nPostmaster:\n  Account: jane\nListeners: {}\n`);
  fs.writeFileSync(
    path.join(dir, 'domains.conf'),
    `Domains:
  example.test:
    DKIM:
      Selectors:
        rsa1:
          PrivateKeyFile: dkim/rsa1.pem
        ed1:
          PrivateKeyFile: dkim/ed1.pem
          HeaderCanon: simple
      Sign:
        - rsa1
        - ed1
  other.test: {}
Accounts:
  jane:
    Domain: example.test
    Destinations:
      jane@example.test: {}
      jane@other.test: {}
`,
  );
});

after(async () => {
  await dns?.close();
});

test('dkim genrsa, gened25519 and txt: usable keys and a publishable record', async () => {
  const [rsa, ed] = await Promise.all([postern(['dkim', 'genrsa']), postern(['dkim', 'gened25519'])]);
  assert.equal(rsa.code, 0, rsa.stderr);
  assert.equal(ed.code, 0, ed.stderr);
  assert.match(rsa.stdout, /^-----BEGIN PRIVATE KEY-----\n/);
  const rsaKey = createPrivateKey(rsa.stdout);
  assert.equal(rsaKey.asymmetricKeyType, 'rsa');
  assert.equal(rsaKey.asymmetricKeyDetails?.modulusLength, 2048);
  const edKey = createPrivateKey(ed.stdout);
  assert.equal(edKey.asymmetricKeyType, 'ed25519');

  for (const [pem, type, strings] of [
    [rsa.stdout, 'rsa', 2],
    [ed.stdout, 'ed25519', 1],
  ] as const) {
    const txt = await postern(['dkim', 'txt'], { input: pem });
    assert.equal(txt.code, 0, txt.stderr);
    const parts = zoneStrings(txt.stdout);
    // RFC 1035 3.3.14: no character-string over 255 bytes; an RSA-2048 record needs two.
    assert.equal(parts.length, strings);
    for (const p of parts) assert.ok(Buffer.byteLength(p) <= 255, `string of ${Buffer.byteLength(p)} bytes`);
    const record = parseKeyRecord(parts.join(''));
    assert.equal(record.keyType, type);
    const published = recordPublicKey(record).export({ type: 'spki', format: 'der' });
    assert.deepEqual(published, createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'der' }));
  }

  const bad = await postern(['dkim', 'txt'], { input: 'not a key\n' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /private key/);
});

test('dkim lookup prints the fields of the key record', async () => {
  dns.set('flagged._domainkey.example.test', 'TXT', ['v=DKIM1; k=rsa; h=sha256; s=email; t=y:s; p=' + txtRecord(rsaPEM).split('p=')[1]]);
  const r = await run(['dkim', 'lookup', 'flagged', 'example.test']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^name: flagged\._domainkey\.example\.test$/m);
  assert.match(r.stdout, /^key type: rsa$/m);
  assert.match(r.stdout, /^hashes: sha256$/m);
  assert.match(r.stdout, /^services: email$/m);
  assert.match(r.stdout, /^flags: y, s \(testing\)$/m);
  assert.match(r.stdout, /^public key: rsa, 2048 bits$/m);
  assert.match(r.stdout, /^dnssec: not authentic$/m);

  const ed = await run(['dkim', 'lookup', 'ed1', 'example.test']);
  assert.equal(ed.code, 0, ed.stderr);
  assert.match(ed.stdout, /^key type: ed25519$/m);
  assert.match(ed.stdout, /^flags: none$/m);

  dns.set('revoked._domainkey.example.test', 'TXT', ['v=DKIM1; p=']);
  const revoked = await run(['dkim', 'lookup', 'revoked', 'example.test']);
  assert.equal(revoked.code, 1);
  assert.match(revoked.stdout, /revoked/);

  const missing = await run(['dkim', 'lookup', 'nosuch', 'example.test']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no DKIM key record at nosuch\._domainkey\.example\.test/);
});

test('dkim sign then verify passes; a changed body fails', async () => {
  const file = writeMessage('plain.eml', message());
  const signed = await run(['dkim', 'sign', file]);
  assert.equal(signed.code, 0, signed.stderr);
  assert.ok(signed.stdout.endsWith(message()), 'original message follows the signatures');
  const sigs = signed.stdout.match(/^DKIM-Signature:/gm) ?? [];
  assert.equal(sigs.length, 2);
  assert.ok(signed.stdout.startsWith('DKIM-Signature:'));
  assert.match(signed.stdout, /a=rsa-sha256;[^]*s=rsa1;/);
  assert.match(signed.stdout, /a=ed25519-sha256;[^]*c=simple\/relaxed;[^]*s=ed1;/);

  const signedFile = writeMessage('signed.eml', signed.stdout);
  const v = await run(['dkim', 'verify', signedFile]);
  assert.equal(v.code, 0, v.stderr);
  const lines = v.stdout.trim().split('\n');
  assert.equal(lines.length, 2, v.stdout);
  assert.match(lines[0]!, /^pass domain=example\.test selector=rsa1 algorithm=rsa-sha256\b/);
  assert.match(lines[1]!, /^pass domain=example\.test selector=ed1 algorithm=ed25519-sha256\b/);

  // Standard input works too.
  const stdin = await run(['dkim', 'verify', '-'], signed.stdout);
  assert.equal(stdin.stdout, v.stdout);

  const tampered = writeMessage('tampered.eml', signed.stdout.replace('at noon', 'at midnight'));
  const t = await run(['dkim', 'verify', tampered]);
  assert.equal(t.code, 0, 'failing signatures are a result, not an error');
  const tl = t.stdout.trim().split('\n');
  assert.equal(tl.length, 2);
  for (const l of tl) assert.match(l, /^fail domain=example\.test selector=\w+ algorithm=\S+ .*reason="body hash did not verify"/);

  const unsigned = await run(['dkim', 'verify', file]);
  assert.equal(unsigned.code, 0);
  assert.equal(unsigned.stdout.trim(), 'no DKIM signatures');

  const missing = await run(['dkim', 'verify', path.join(dir, 'nosuch.eml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nosuch\.eml: no such file/);
});

test('dkim sign keeps bare LF line ends and refuses a domain without DKIM configuration', async () => {
  const lf = writeMessage('lf.eml', message().replace(/\r\n/g, '\n'));
  const s = await run(['dkim', 'sign', lf]);
  assert.equal(s.code, 0, s.stderr);
  assert.ok(!s.stdout.includes('\r'), 'no CR in output of an LF message');
  const v = await run(['dkim', 'verify', '-'], s.stdout);
  assert.equal(v.stdout.match(/^pass /gm)?.length, 2, v.stdout);

  const other = writeMessage('other.eml', message({ from: 'jane@other.test' }));
  const r = await run(['dkim', 'sign', other]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /domain other\.test has no DKIM selectors/);
  assert.equal(r.stdout, '');

  const foreign = writeMessage('foreign.eml', message({ from: 'someone@elsewhere.test' }));
  const f = await run(['dkim', 'sign', foreign]);
  assert.equal(f.code, 1);
  assert.match(f.stderr, /elsewhere\.test is not configured/);
});

test('spf check: pass, softfail, fail with explanation, none', async () => {
  const pass = await run(['spf', 'check', 'example.test', '127.0.0.1']);
  assert.equal(pass.code, 0, pass.stderr);
  assert.match(pass.stdout, /^result: pass$/m);
  assert.match(pass.stdout, /^mechanism: ip4:127\.0\.0\.1$/m);
  assert.doesNotMatch(pass.stdout, /explanation/);

  const soft = await run(['spf', 'check', 'example.test', '127.0.0.2']);
  assert.match(soft.stdout, /^result: softfail$/m);
  assert.match(soft.stdout, /^mechanism: ~ip4:127\.0\.0\.2$/m);

  const fail = await run(['spf', 'check', 'example.test', '127.0.0.3']);
  assert.equal(fail.code, 0);
  assert.match(fail.stdout, /^result: fail$/m);
  assert.match(fail.stdout, /^mechanism: -all$/m);
  // RFC 7208 6.2: the exp= text with its macros expanded.
  assert.match(fail.stdout, /^explanation: 127\.0\.0\.3 may not send mail for example\.test$/m);

  const none = await run(['spf', 'check', 'nospf.example.test', '127.0.0.1']);
  assert.match(none.stdout, /^result: none$/m);

  const badIP = await run(['spf', 'check', 'example.test', '127.0.0']);
  assert.equal(badIP.code, 2);
  assert.match(badIP.stderr, /invalid IP address/);
});

test('spf parse prints the normalized record or the syntax error', async () => {
  const ok = await postern(['spf', 'parse', 'v=spf1 +MX  a:Mail.Example.test/24 ip6:::1 ?include:_spf.example.test ~ALL']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'v=spf1 mx a:Mail.Example.test/24 ip6:::1 ?include:_spf.example.test ~all\n');

  const joined = await postern(['spf', 'parse', '--', 'v=spf1', 'ip4:127.0.0.0/8', '-all']);
  assert.equal(joined.code, 0, joined.stderr);
  assert.equal(joined.stdout, 'v=spf1 ip4:127.0.0.0/8 -all\n');

  for (const [txt, error] of [
    ['v=spf1 ip4:127.0.0.0/33 -all', /invalid CIDR length "\/33" \(must be 0 to 32\) in term "ip4:127\.0\.0\.0\/33"/],
    ['v=spf1 foo:bar -all', /unknown mechanism "foo"/],
    ['v=spf1 redirect=a.test redirect=b.test', /more than one redirect modifier/],
    ['spf1 -all', /does not start with "v=spf1"/],
    ['v=spf1 exists:%{x}.test', /unknown macro letter "x"/],
  ] as const) {
    const r = await postern(['spf', 'parse', txt]);
    assert.equal(r.code, 1, txt);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, error);
  }
});

test('spf lookup prints the SPF record among the TXT records', async () => {
  const r = await run(['spf', 'lookup', 'example.test']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'v=spf1 ip4:127.0.0.1 ~ip4:127.0.0.2 -all exp=explain.example.test\n');
  const none = await run(['spf', 'lookup', 'mx1.example.test']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no SPF record for mx1\.example\.test/);
});

test('dmarc lookup finds the record at the domain or its organizational domain', async () => {
  const direct = await run(['dmarc', 'lookup', 'example.test']);
  assert.equal(direct.code, 0, direct.stderr);
  assert.match(direct.stdout, /^found at: _dmarc\.example\.test$/m);
  assert.match(direct.stdout, /^record: v=DMARC1; p=reject; rua=mailto:dmarc@example\.test$/m);

  const org = await run(['dmarc', 'lookup', 'mail.example.test']);
  assert.equal(org.code, 0, org.stderr);
  assert.match(org.stdout, /^domain: mail\.example\.test$/m);
  assert.match(org.stdout, /^found at: _dmarc\.example\.test \(organizational domain\)$/m);
  assert.match(org.stdout, /^policy: reject, subdomains reject, 100%$/m);

  // A record at the subdomain itself wins.
  dns.set('_dmarc.sub.example.test', 'TXT', ['v=DMARC1; p=quarantine; adkim=s; pct=50; bogus']);
  const sub = await run(['dmarc', 'lookup', 'sub.example.test']);
  assert.equal(sub.code, 0, sub.stderr);
  assert.match(sub.stdout, /^found at: _dmarc\.sub\.example\.test$/m);
  assert.match(sub.stdout, /^normalized: v=DMARC1; p=quarantine; adkim=s; pct=50$/m);
  assert.match(sub.stdout, /^alignment: dkim strict, spf relaxed$/m);
  assert.match(sub.stdout, /^warning: ignored malformed tag "bogus"$/m);

  const none = await run(['dmarc', 'lookup', 'other.test']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no DMARC record for other\.test/);
});

test('dmarc verify: pass for signed mail, fail for forged mail, with Authentication-Results', async () => {
  const signed = await run(['dkim', 'sign', '-'], message());
  assert.equal(signed.code, 0, signed.stderr);

  // SPF and DKIM both pass.
  const both = await run(['dmarc', 'verify', '127.0.0.1', 'jane@example.test', 'client.test'], signed.stdout);
  assert.equal(both.code, 0, both.stderr);
  assert.match(both.stdout, /^spf: pass identity=mailfrom domain=example\.test mechanism=ip4:127\.0\.0\.1/m);
  assert.match(both.stdout, /^dmarc: pass from=example\.test record=_dmarc\.example\.test policy=reject/m);
  assert.match(both.stdout, /^Authentication-Results: mail\.example\.test;$/m);
  assert.match(both.stdout, /^\tspf=pass smtp\.mailfrom=example\.test;$/m);
  assert.match(both.stdout, /^\tdmarc=pass \(p=reject dis=none\) header\.from=example\.test;$/m);
  assert.match(both.stdout, /^Received-SPF: pass /m);

  // From an address SPF refuses, DKIM alone carries DMARC.
  const dkimOnly = await run(['dmarc', 'verify', '127.0.0.3', 'jane@example.test', 'client.test'], signed.stdout);
  assert.equal(dkimOnly.code, 0, dkimOnly.stderr);
  assert.match(dkimOnly.stdout, /^spf: fail /m);
  assert.equal(dkimOnly.stdout.match(/^dkim: pass domain=example\.test/gm)?.length, 2);
  assert.match(dkimOnly.stdout, /\tdkim=pass header\.d=example\.test header\.s=rsa1 header\.a=rsa-sha256\s+header\.b=("?)[A-Za-z0-9+/]{8}\1;/);
  assert.match(dkimOnly.stdout, /\tdmarc=pass /);
  assert.match(dkimOnly.stdout, /^dmarc: pass .*aligned-spf=no aligned-dkim=pass/m);

  // A forger's message: unsigned, other envelope domain, unlisted IP.
  const forged = await run(['dmarc', 'verify', '127.0.0.9', 'bounce@other.test', 'forger.test'], message({ body: 'Please wire the money.' }));
  assert.equal(forged.code, 0, forged.stderr);
  assert.match(forged.stdout, /^dkim: none \(no signatures\)$/m);
  assert.match(forged.stdout, /^dmarc: fail from=example\.test .*policy=reject disposition=reject/m);
  assert.match(forged.stdout, /\tspf=fail smtp\.mailfrom=other\.test;/);
  assert.match(forged.stdout, /\tdkim=none;/);
  assert.match(forged.stdout, /\tdmarc=fail \(p=reject dis=reject\) header\.from=example\.test;/);

  // A signed message whose body was changed fails DKIM, and so DMARC.
  const tampered = await run(['dmarc', 'verify', '127.0.0.3', 'jane@example.test', 'client.test'], signed.stdout.replace('at noon?', 'at one?'));
  assert.match(tampered.stdout, /\tdkim=fail reason="body hash did not verify"/);
  assert.match(tampered.stdout, /\tdmarc=fail /);

  const usage = await run(['dmarc', 'verify', 'not-an-ip', 'a@b.test', 'c.test'], message());
  assert.equal(usage.code, 2);
});

test('dmarc checkreportaddrs verifies external destinations (RFC 7489 7.1)', async () => {
  const ok = await run(['dmarc', 'checkreportaddrs', 'example.test']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^rua mailto:dmarc@example\.test: internal$/m);

  dns.set('_dmarc.ext.test', 'TXT', ['v=DMARC1; p=none; rua=mailto:agg@reports.test,mailto:r@other.test!10m; ruf=ftp://reports.test/x']);
  dns.set('ext.test._report._dmarc.reports.test', 'TXT', ['v=DMARC1']);
  const r = await run(['dmarc', 'checkreportaddrs', 'ext.test']);
  assert.equal(r.code, 1, 'an unauthorized destination is a problem');
  assert.match(r.stdout, /^rua mailto:agg@reports\.test: authorized by ext\.test\._report\._dmarc\.reports\.test/m);
  assert.match(r.stdout, /^rua mailto:r@other\.test: unauthorized \(no TXT record at ext\.test\._report\._dmarc\.other\.test\)$/m);
  assert.match(r.stdout, /^ruf ftp:\/\/reports\.test\/x: unsupported/m);

  // Once the other destination agrees, everything is fine.
  dns.set('ext.test._report._dmarc.other.test', 'TXT', ['v=DMARC1']);
  dns.set('_dmarc.ext.test', 'TXT', ['v=DMARC1; p=none; rua=mailto:agg@reports.test,mailto:r@other.test!10m']);
  const fixed = await run(['dmarc', 'checkreportaddrs', 'ext.test']);
  assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
  assert.match(fixed.stdout, /^rua mailto:r@other\.test: authorized/m);
});

test('dmarc parsereportmsg prints the aggregate report of a message as JSON', async () => {
  const name = 'yahoo.com!example.org!1717372800!1717459199.xml.gz';
  const gz = fs.readFileSync(new URL(`../fixtures/dmarcrpt/${name}`, import.meta.url));
  const b = 'report-boundary';
  const msg = [
    'From: noreply@dmarc.yahoo.com',
    'To: dmarc@example.org',
    'Subject: Report Domain: example.org Submitter: yahoo.com',
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain',
    '',
    'Aggregate report attached.',
    `--${b}`,
    `Content-Type: application/gzip; name="${name}"`,
    `Content-Disposition: attachment; filename="${name}"`,
    'Content-Transfer-Encoding: base64',
    '',
    gz.toString('base64').replace(/.{76}/g, '$&\r\n'),
    `--${b}--`,
    '',
  ].join('\r\n');
  const file = writeMessage('report.eml', msg);
  const r = await postern(['dmarc', 'parsereportmsg', file]);
  assert.equal(r.code, 0, r.stderr);
  const parsed = JSON.parse(r.stdout) as ReturnType<typeof parseReport>;
  assert.deepEqual(parsed, JSON.parse(JSON.stringify(parseReport(gunzipSync(gz)))));
  assert.equal(parsed.reportMetadata.orgName.toLowerCase().includes('yahoo'), true);
  assert.equal(parsed.policyPublished.domain, 'example.org');
  assert.ok(parsed.records.length > 0);

  // A file without a report is reported; the good one is still printed.
  const plain = writeMessage('noreport.eml', message());
  const mixed = await postern(['dmarc', 'parsereportmsg', plain, file]);
  assert.equal(mixed.code, 1);
  assert.match(mixed.stderr, /noreport\.eml: no report in message/);
  assert.deepEqual(JSON.parse(mixed.stdout), parsed);
});

test('dns lookup prints records of each type and DNSSEC status', async () => {
  const cases: [string, string, string[]][] = [
    ['a', 'mx1.example.test', ['127.0.0.10']],
    ['aaaa', 'mx1.example.test', ['::1']],
    ['ips', 'mx1.example.test', ['127.0.0.10', '::1']],
    ['mx', 'example.test', ['10 mx1.example.test', '20 mx2.example.test']],
    ['cname', 'www.example.test', ['mx1.example.test']],
    ['ns', 'example.test', ['ns1.example.test']],
    ['txt', 'other.test', ['v=spf1 -all']],
    ['srv', '_submissions._tcp.example.test', ['0 1 465 mx1.example.test']],
    ['tlsa', '_25._tcp.mx1.example.test', [`3 1 1 ${'ab'.repeat(32)}`]],
    ['ptr', '127.0.0.10', ['mx1.example.test']],
  ];
  for (const [type, name, want] of cases) {
    const r = await run(['dns', 'lookup', type, name]);
    assert.equal(r.code, 0, `${type} ${name}: ${r.stderr}`);
    assert.deepEqual(r.stdout.trim().split('\n'), [...want, 'dnssec: not authentic'], `${type} ${name}`);
  }

  // The AD bit from a resolver on loopback is trusted.
  dns.behave('mx1.example.test', 'ad');
  const ad = await run(['dns', 'lookup', 'A', 'mx1.example.test']);
  assert.equal(ad.stdout, '127.0.0.10\ndnssec: authentic\n');
  dns.behave('mx1.example.test', null);

  const nx = await run(['dns', 'lookup', 'a', 'nosuch.example.test']);
  assert.equal(nx.code, 1);
  assert.match(nx.stderr, /no such domain/);
  const nodata = await run(['dns', 'lookup', 'mx', 'mx1.example.test']);
  assert.equal(nodata.code, 1);
  assert.match(nodata.stderr, /no MX records/);
  const badType = await run(['dns', 'lookup', 'hinfo', 'example.test']);
  assert.equal(badType.code, 2);
  assert.match(badType.stderr, /unknown type "hinfo"/);
});
