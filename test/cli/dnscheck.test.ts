// "config dnscheck" against a test resolver serving the records of "config dnsrecords": clean
// when all are published, and each deliberately broken record, the reverse DNS and a blocklist
// listing are reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { postern, tempDir } from '../helpers/server.js';
import { startDNSServer, type DNSServer, type RecordSets } from '../helpers/dnsserver.js';
import { Config } from '../../src/config/load.js';
import { domainRecords } from '../../src/quickstart/zone.js';
import { genRSA, txtRecord } from '../../src/dkim/keys.js';

const unquote = (v: string) => [...v.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1')).join('');
const trim = (n: string) => n.replace(/\.$/, '');

/** Publishes every record of the domain (except CAA, which the test server does not know). */
function publish(dns: DNSServer, config: Config, domain: string): void {
  const zone = new Map<string, RecordSets>();
  for (const r of domainRecords(config, domain)) {
    const sets = zone.get(trim(r.name)) ?? {};
    zone.set(trim(r.name), sets);
    const f = r.value.split(' ');
    switch (r.type) {
      case 'A':
      case 'AAAA':
        sets[r.type] = [...(sets[r.type] ?? []), r.value];
        break;
      case 'MX':
        sets.MX = [...(sets.MX ?? []), { preference: Number(f[0]), exchange: trim(f[1]!) }];
        break;
      case 'TXT':
        sets.TXT = [...(sets.TXT ?? []), unquote(r.value)];
        break;
      case 'CNAME':
        sets.CNAME = trim(r.value);
        break;
      case 'SRV':
        sets.SRV = [...(sets.SRV ?? []), { priority: Number(f[0]), weight: Number(f[1]), port: Number(f[2]), target: f[3] === '.' ? '' : trim(f[3]!) }];
        break;
      case 'TLSA':
        sets.TLSA = [...(sets.TLSA ?? []), { usage: Number(f[0]), selector: Number(f[1]), matchingType: Number(f[2]), data: f[3]! }];
        break;
    }
  }
  for (const [name, sets] of zone) for (const [k, v] of Object.entries(sets)) dns.set(name, k as keyof RecordSets, v as never);
}

test('dnscheck is clean with the suggested records and finds each broken one', { timeout: 120_000 }, async () => {
  const dns = await startDNSServer();
  const dir = tempDir('postern-dnscheck-');
  try {
    const qs = await postern(['quickstart', '-dir', dir, '-skipdial', '-hostname', 'mail.example.test', '-resolver', dns.address, '-ips', '192.0.2.10', 'jane@example.test']);
    assert.equal(qs.code, 0, qs.stderr);
    const configFile = path.join(dir, 'config', 'postern.conf');
    const config = Config.load(configFile);
    publish(dns, config, 'example.test');
    dns.set('10.2.0.192.in-addr.arpa', 'PTR', ['mail.example.test']);

    let r = await postern(['--config', configFile, 'config', 'dnscheck', 'example.test']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^0 error\(s\)/m);
    assert.match(r.stdout, /^ok +MX example\.test\./m);
    assert.match(r.stdout, /^ok +TLSA _25\._tcp\.mail\.example\.test\./m);
    assert.match(r.stdout, /^ok +reverse DNS of 192\.0\.2\.10: mail\.example\.test$/m);
    assert.match(r.stdout, /^ok +192\.0\.2\.10 not listed in sbl\.spamhaus\.org$/m);

    // Break everything at once; each problem gets its own line.
    dns.set('example.test', 'MX', [{ preference: 10, exchange: 'mx.elsewhere.example' }]);
    dns.set('example.test', 'TXT', undefined);
    dns.set(`${new Date().getUTCFullYear()}a._domainkey.example.test`, 'TXT', [txtRecord(await genRSA(2048))]);
    dns.set('_dmarc.example.test', 'TXT', ['v=DMARC1; p=none']);
    dns.set('_mta-sts.example.test', 'TXT', ['v=STSv1; id=old1']);
    dns.set('_smtp._tls.example.test', 'TXT', undefined);
    dns.set('_imaps._tcp.example.test', 'SRV', [{ priority: 0, weight: 1, port: 143, target: 'mail.example.test' }]);
    dns.set('autoconfig.example.test', 'CNAME', undefined);
    dns.set('_25._tcp.mail.example.test', 'TLSA', [{ usage: 3, selector: 1, matchingType: 1, data: '00'.repeat(32) }]);
    dns.set('10.2.0.192.in-addr.arpa', 'PTR', undefined);
    dns.set('10.2.0.192.bl.spamcop.net', 'A', ['127.0.0.2']);

    r = await postern(['--config', configFile, 'config', 'dnscheck', 'example.test']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const expect: [RegExp, string][] = [
      [/^ERROR +MX example\.test\.: the MX records do not name mail\.example\.test/m, 'MX'],
      [/^ERROR +TXT example\.test\.: no spf1 record/m, 'SPF'],
      [/^ERROR +TXT \d{4}a\._domainkey\.example\.test\.: the published key differs/m, 'DKIM'],
      [/^warning +TXT _dmarc\.example\.test\.: policy is none/m, 'DMARC'],
      [/^warning +TXT _mta-sts\.example\.test\.: id differs/m, 'MTA-STS'],
      [/^warning +TXT _smtp\._tls\.example\.test\.: no TLSRPTv1 record/im, 'TLSRPT'],
      [/^warning +SRV _imaps\._tcp\.example\.test\.: differs/m, 'SRV'],
      [/^warning +CNAME autoconfig\.example\.test\.: no record/m, 'autoconfig'],
      [/^warning +TLSA _25\._tcp\.mail\.example\.test\.: no record matches the host key/m, 'TLSA'],
      [/^ERROR +reverse DNS of 192\.0\.2\.10: none/m, 'reverse DNS'],
      [/^ERROR +192\.0\.2\.10 is listed in blocklist bl\.spamcop\.net/m, 'DNSBL'],
    ];
    for (const [re, what] of expect) assert.match(r.stdout, re, `${what}:\n${r.stdout}`);
    assert.match(r.stdout, /^[5-9] error\(s\), \d+ warning\(s\)$/m);
  } finally {
    await dns.close();
  }
});
