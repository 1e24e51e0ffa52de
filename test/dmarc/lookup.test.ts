// The Organizational Domain (RFC 7489 3.2) and policy discovery (RFC 7489 6.6.3) over the test DNS server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lookupRecord, organizationalDomain } from '../../src/dmarc/lookup.js';
import { queried, zone } from './helpers.js';

test('organizational domains from the ICANN section of the public suffix list', () => {
  const cases: [string, string][] = [
    ['example.org', 'example.org'],
    ['mail.example.org', 'example.org'],
    ['a.b.c.example.org', 'example.org'],
    ['Mail.Example.ORG.', 'example.org'],
    ['example.co.uk', 'example.co.uk'],
    ['a.b.example.co.uk', 'example.co.uk'],
    ['co.uk', 'co.uk'],
    ['org', 'org'],
    // Wildcard and exception rules: *.kawasaki.jp, !city.kawasaki.jp.
    ['a.b.c.kawasaki.jp', 'b.c.kawasaki.jp'],
    ['www.city.kawasaki.jp', 'city.kawasaki.jp'],
    // IDN suffix 公司.cn in A-label form.
    ['mail.example.xn--55qx5d.cn', 'example.xn--55qx5d.cn'],
    // Private-section suffixes are not used.
    ['alice.github.io', 'github.io'],
    ['bucket.s3.amazonaws.com', 'amazonaws.com'],
    // Names under an unlisted top-level domain: the default rule "*".
    ['mail.example.test', 'example.test'],
  ];
  for (const [domain, org] of cases) assert.equal(organizationalDomain(domain), org, domain);
});

test('the record at the From domain wins', async (t) => {
  const { dns, resolver } = await zone(t, {
    '_dmarc.mail.example.org': { TXT: ['v=DMARC1; p=quarantine'] },
    '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject'] },
  });
  const r = await lookupRecord('mail.example.org', resolver);
  assert.equal(r.status, 'found');
  assert.equal(r.domain, 'mail.example.org');
  assert.equal(r.record?.policy, 'quarantine');
  assert.deepEqual(queried(dns), ['_dmarc.mail.example.org']);
});

test('without a record at the From domain, the Organizational Domain is asked', async (t) => {
  const { dns, resolver } = await zone(t, {
    'mail.example.org': { A: ['192.0.2.1'] },
    '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject; sp=none'] },
    '_dmarc.x.example.co.uk': { TXT: ['v=spf1 -all'] },
    '_dmarc.example.co.uk': { TXT: ['v=DMARC1; p=quarantine'] },
  });
  const r = await lookupRecord('a.b.mail.example.org', resolver);
  assert.equal(r.status, 'found');
  assert.equal(r.domain, 'example.org');
  assert.equal(r.record?.subdomainPolicy, 'none');
  assert.deepEqual(queried(dns), ['_dmarc.a.b.mail.example.org', '_dmarc.example.org']);
  // A TXT record that is not DMARC does not count as one (RFC 7489 6.6.3 step 2).
  const uk = await lookupRecord('x.example.co.uk', resolver);
  assert.equal(uk.status, 'found');
  assert.equal(uk.domain, 'example.co.uk');
});

test('no record anywhere gives none; an organizational domain is asked only once', async (t) => {
  const { dns, resolver } = await zone(t, { 'example.org': { A: ['192.0.2.1'] } });
  const r = await lookupRecord('example.org', resolver);
  assert.equal(r.status, 'none');
  assert.deepEqual(queried(dns), ['_dmarc.example.org']);
  dns.queries.length = 0;
  assert.equal((await lookupRecord('www.example.org', resolver)).status, 'none');
  assert.deepEqual(queried(dns), ['_dmarc.www.example.org', '_dmarc.example.org']);
});

test('several DMARC records mean none, without falling back (RFC 7489 6.6.3 step 5)', async (t) => {
  const { dns, resolver } = await zone(t, {
    '_dmarc.mail.example.org': { TXT: ['v=DMARC1; p=none', 'v=DMARC1; p=reject', 'unrelated'] },
    '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject'] },
  });
  const r = await lookupRecord('mail.example.org', resolver);
  assert.equal(r.status, 'none');
  assert.match(r.reason ?? '', /2 DMARC records/);
  assert.deepEqual(queried(dns), ['_dmarc.mail.example.org']);
});

test('an invalid record is a permerror and stops discovery', async (t) => {
  const { dns, resolver } = await zone(t, {
    '_dmarc.mail.example.org': { TXT: ['v=DMARC1; p=bogus'] },
    '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject'] },
  });
  const r = await lookupRecord('mail.example.org', resolver);
  assert.equal(r.status, 'permerror');
  assert.equal(r.txt, 'v=DMARC1; p=bogus');
  assert.match(r.reason ?? '', /invalid p=bogus/);
  assert.deepEqual(queried(dns), ['_dmarc.mail.example.org']);
});

test('DNS failures give temperror, at the From domain and at the Organizational Domain', async (t) => {
  const { dns, resolver } = await zone(t, { '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject'] } });
  dns.behave('_dmarc.example.org', 'servfail');
  const r = await lookupRecord('example.org', resolver);
  assert.equal(r.status, 'temperror');
  assert.match(r.reason ?? '', /_dmarc\.example\.org/);
  assert.equal((await lookupRecord('sub.example.org', resolver)).status, 'temperror');
  dns.behave('_dmarc.example.org', null);
  dns.behave('_dmarc.sub.example.org', 'timeout');
  const timeout = await lookupRecord('sub.example.org', resolver);
  assert.equal(timeout.status, 'temperror');
  assert.equal(timeout.domain, 'sub.example.org');
  dns.behave('_dmarc.sub.example.org', 'refused');
  assert.equal((await lookupRecord('sub.example.org', resolver)).status, 'temperror');
  dns.behave('_dmarc.sub.example.org', null);
  assert.equal((await lookupRecord('sub.example.org', resolver)).status, 'found');
});

test('the authentic flag follows the DNSSEC status of the answer', async (t) => {
  const { dns, resolver } = await zone(t, { '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject'] } });
  assert.equal((await lookupRecord('example.org', resolver)).authentic, false);
  dns.authentic = true;
  assert.equal((await lookupRecord('example.org', resolver)).authentic, true);
});

test('a From domain too long for a _dmarc name goes straight to the Organizational Domain', async (t) => {
  const { dns, resolver } = await zone(t, { '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject'] } });
  const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(58)}.example.org`;
  assert.equal(long.length, 253);
  const r = await lookupRecord(long, resolver);
  assert.equal(r.status, 'found');
  assert.deepEqual(queried(dns), ['_dmarc.example.org']);
});

test('a record split into several character-strings is joined', async (t) => {
  const { resolver } = await zone(t, { '_dmarc.example.org': { TXT: [['v=DMARC1; p=re', 'ject; rua=mailto:d@example.org']] } });
  const r = await lookupRecord('example.org', resolver);
  assert.equal(r.record?.policy, 'reject');
  assert.equal(r.record?.rua[0]?.uri, 'mailto:d@example.org');
});
