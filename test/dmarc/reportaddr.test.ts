// Verification of external report destinations (RFC 7489 7.1) over the test DNS server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRecord } from '../../src/dmarc/record.js';
import { checkReportAddress, checkReportAddresses, mailtoAddress } from '../../src/dmarc/reportaddr.js';
import { queried, zone } from './helpers.js';

test('mailto URIs with one address', () => {
  assert.deepEqual(mailtoAddress('mailto:dmarc@Example.ORG'), { address: 'dmarc@example.org', domain: 'example.org' });
  assert.deepEqual(mailtoAddress('MAILTO:d%2Bagg@example.org?subject=x'), { address: 'd+agg@example.org', domain: 'example.org' });
  assert.deepEqual(mailtoAddress('mailto:r@bücher.example'), { address: 'r@xn--bcher-kva.example', domain: 'xn--bcher-kva.example' });
  for (const bad of ['https://r.example/dmarc', 'mailto:', 'mailto:nodomain', 'mailto:a@x.example%2Cb@y.example', 'mailto:%zz@example.org', 'mailto:a@-x-.example', 'mailto:@example.org']) {
    assert.equal(mailtoAddress(bad), undefined, bad);
  }
});

test('destinations in the same organizational domain need no consent', async (t) => {
  const { dns, resolver } = await zone(t, {});
  const r = await checkReportAddress('example.org', { uri: 'mailto:dmarc@reports.example.org' }, resolver);
  assert.equal(r.status, 'internal');
  const sub = await checkReportAddress('mail.example.org', { uri: 'mailto:dmarc@example.org' }, resolver);
  assert.equal(sub.status, 'internal');
  assert.deepEqual(dns.queries, []);
});

test('an external destination is authorized by a v=DMARC1 record at <domain>._report._dmarc.<host>', async (t) => {
  const { dns, resolver } = await zone(t, { 'example.org._report._dmarc.rep.example': { TXT: ['v=DMARC1;'] } });
  const r = await checkReportAddress('example.org', { uri: 'mailto:agg@rep.example', maxBytes: 1024 }, resolver);
  assert.equal(r.status, 'authorized');
  assert.equal(r.name, 'example.org._report._dmarc.rep.example');
  assert.equal(r.address, 'agg@rep.example');
  assert.equal(r.override, undefined);
  assert.deepEqual(queried(dns), ['example.org._report._dmarc.rep.example']);
});

test('without consent the destination is unauthorized', async (t) => {
  const { resolver } = await zone(t, {
    'other.example._report._dmarc.rep.example': { TXT: ['v=DMARC1'] },
    'example.net._report._dmarc.rep.example': { TXT: ['v=spf1 -all', 'v=DMARC1; p=reject; p=none'] },
  });
  const none = await checkReportAddress('example.org', { uri: 'mailto:agg@rep.example' }, resolver);
  assert.equal(none.status, 'unauthorized');
  assert.match(none.reason ?? '', /no TXT record/);
  // Records that are not DMARC, or do not parse, are discarded (RFC 7489 7.1 step 5).
  const bad = await checkReportAddress('example.net', { uri: 'mailto:agg@rep.example' }, resolver);
  assert.equal(bad.status, 'unauthorized');
  assert.match(bad.reason ?? '', /no v=DMARC1 record/);
});

test('DNS failures give temperror', async (t) => {
  const { dns, resolver } = await zone(t, { 'example.org._report._dmarc.rep.example': { TXT: ['v=DMARC1'] } });
  dns.behave('example.org._report._dmarc.rep.example', 'servfail');
  assert.equal((await checkReportAddress('example.org', { uri: 'mailto:agg@rep.example' }, resolver)).status, 'temperror');
});

test('the consent record may replace the destination, but only at the same host (RFC 7489 7.1 step 8)', async (t) => {
  const { resolver } = await zone(t, {
    'example.org._report._dmarc.rep.example': { TXT: ['v=DMARC1; rua=mailto:example-org@rep.example!5m, mailto:elsewhere@other.example; ruf=mailto:f@rep.example'] },
  });
  const r = await checkReportAddress('example.org', { uri: 'mailto:agg@rep.example' }, resolver);
  assert.equal(r.status, 'authorized');
  assert.deepEqual(r.override, [{ uri: 'mailto:example-org@rep.example', maxBytes: 5 * 1024 * 1024 }]);
  assert.match(r.reason ?? '', /1 rua override/);
  const ruf = await checkReportAddress('example.org', { uri: 'mailto:x@rep.example' }, resolver, 'ruf');
  assert.deepEqual(ruf.override, [{ uri: 'mailto:f@rep.example' }]);
});

test('all destinations of a record, rua and ruf', async (t) => {
  const { resolver } = await zone(t, { 'example.org._report._dmarc.rep.example': { TXT: ['v=DMARC1'] } });
  const { record } = parseRecord('v=DMARC1; p=none; rua=mailto:d@example.org,mailto:a@rep.example,https://rep.example/in; ruf=mailto:f@nope.example');
  const checks = await checkReportAddresses('example.org', record, resolver);
  assert.deepEqual(
    checks.map((c) => [c.uri.uri, c.status]),
    [
      ['mailto:d@example.org', 'internal'],
      ['mailto:a@rep.example', 'authorized'],
      ['https://rep.example/in', 'unsupported'],
      ['mailto:f@nope.example', 'unauthorized'],
    ],
  );
});

test('consent names longer than DNS allows are not looked up', async (t) => {
  const { dns, resolver } = await zone(t, {});
  const policy = `${'a'.repeat(63)}.${'b'.repeat(63)}.example.org`;
  const r = await checkReportAddress(policy, { uri: `mailto:x@${'c'.repeat(63)}.${'d'.repeat(40)}.example` }, resolver);
  assert.equal(r.status, 'unauthorized');
  assert.match(r.reason ?? '', /too long/);
  assert.deepEqual(dns.queries, []);
});
