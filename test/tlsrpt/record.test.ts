import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { lookupTLSRPTRecord, parseTLSRPTRecord, TLSRPTRecordError } from '../../src/tlsrpt/record.js';
import { StubResolver } from '../../src/dns/stub.js';
import { startDNSServer } from '../helpers/dnsserver.js';

test('the examples of RFC 8460 3.1', () => {
  const mail = parseTLSRPTRecord('v=TLSRPTv1;rua=mailto:reports@example.com');
  assert.deepEqual(mail.rua, [{ uri: 'mailto:reports@example.com', type: 'mailto', address: 'reports@example.com' }]);
  const web = parseTLSRPTRecord('v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt');
  assert.equal(web.rua.length, 1);
  const d = web.rua[0]!;
  assert.equal(d.type, 'https');
  assert.equal(d.type === 'https' && d.url.href, 'https://reporting.example.com/v1/tlsrpt');
});

test('several destinations, spacing, a trailing semicolon and extensions', () => {
  const r = parseTLSRPTRecord('v=TLSRPTv1 ; rua=mailto:a@example.org , https://r.example.org/x,MAILTO:b%2Bx@Example.ORG?subject=hi ;ext=1;');
  assert.deepEqual(
    r.rua.map((d) => (d.type === 'mailto' ? d.address : d.url.href)),
    ['a@example.org', 'https://r.example.org/x', 'b+x@example.org'],
  );
  assert.deepEqual(r.extensions, { ext: '1' });
});

test('URIs of other schemes are left out; with none left the record is unusable', () => {
  assert.deepEqual(
    parseTLSRPTRecord('v=TLSRPTv1; rua=ftp://x.example.org/,mailto:a@example.org').rua.map((d) => d.uri),
    ['mailto:a@example.org'],
  );
  assert.throws(() => parseTLSRPTRecord('v=TLSRPTv1; rua=ftp://x.example.org/'), /no mailto: or https: URI/);
});

test('malformed records are rejected with the reason', () => {
  const cases: [string, RegExp][] = [
    ['v=TLSRPTv1', /missing rua/],
    ['v=TLSRPTv1; ext=1', /missing rua/],
    ['rua=mailto:a@example.org; v=TLSRPTv1', /must start with "v=TLSRPTv1"/],
    ['v=TLSRPTv2; rua=mailto:a@example.org', /must start with/],
    ['v=TLSRPTv1; rua=mailto:a@example.org; rua=mailto:b@example.org', /duplicate rua/],
    ['v=TLSRPTv1; v=TLSRPTv1; rua=mailto:a@example.org', /duplicate v/],
    ['v=TLSRPTv1; rua', /not name=value/],
    ['v=TLSRPTv1; rua=', /is not a URI/],
    ['v=TLSRPTv1; rua=reports@example.org', /is not a URI/],
    ['v=TLSRPTv1; rua=mailto:', /no valid address/],
    ['v=TLSRPTv1; rua=mailto:@example.org', /no valid address/],
    ['v=TLSRPTv1; rua=mailto:a@', /empty name/],
    ['v=TLSRPTv1; rua=mailto:a@exa mple.org', /no valid address/],
    ['v=TLSRPTv1; rua=mailto:a%ZZ@example.org', /bad percent-encoding/],
    ['v=TLSRPTv1; rua=https://', /not a valid URL/],
    ['v=TLSRPTv1; rua=mailto:a@example.org; _x=1', /invalid field name/],
    ['v=TLSRPTv1; rua=mailto:a@example.org; x=a b', /invalid value/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseTLSRPTRecord(text), (err: unknown) => err instanceof TLSRPTRecordError && re.test(err.message), text);
  }
});

test('hostile records fail fast with short messages', () => {
  const start = performance.now();
  for (const text of ['v=TLSRPTv1; rua=' + 'a'.repeat(60000), 'v=TLSRPTv1; rua=mailto:' + ','.repeat(60000), 'v=TLSRPTv1' + ' ;'.repeat(30000) + 'x']) {
    assert.throws(
      () => parseTLSRPTRecord(text),
      (err: unknown) => err instanceof TLSRPTRecordError && err.message.length < 200,
    );
  }
  assert.ok(performance.now() - start < 500);
});

const dns = await startDNSServer({
  records: {
    '_smtp._tls.one.example': { TXT: ['v=spf1 -all', 'v=TLSRPTv1; rua=mailto:tls@one.example'] },
    '_smtp._tls.two.example': { TXT: ['v=TLSRPTv1; rua=mailto:a@two.example', 'v=TLSRPTv1; rua=mailto:b@two.example'] },
    '_smtp._tls.bad.example': { TXT: ['v=TLSRPTv1; rua=nothing'] },
  },
});
after(() => dns.close());
const resolver = new StubResolver({ servers: [dns.address], cacheSize: 0, timeout: 300, attempts: 1 });

test('lookup: one record, several, a bad one, none, a failure', async () => {
  const one = await lookupTLSRPTRecord(resolver, 'one.example');
  assert.equal(one.status === 'found' && one.record.rua[0]?.uri, 'mailto:tls@one.example');
  const two = await lookupTLSRPTRecord(resolver, 'two.example');
  assert.deepEqual(two, { status: 'none', reason: '2 TLSRPT records' });
  const bad = await lookupTLSRPTRecord(resolver, 'bad.example');
  assert.match(bad.status === 'none' ? bad.reason : '', /invalid TLSRPT record/);
  assert.deepEqual(await lookupTLSRPTRecord(resolver, 'missing.example'), { status: 'none', reason: 'no TLSRPT record' });
  dns.behave('_smtp._tls.one.example', 'servfail', 1);
  assert.equal((await lookupTLSRPTRecord(resolver, 'one.example')).status, 'temporary-failure');
});
