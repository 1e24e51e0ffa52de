import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { lookupDANE } from '../../src/dane/lookup.js';
import { StubResolver } from '../../src/dns/stub.js';
import { startDNSServer } from '../helpers/dnsserver.js';
import { leaf, root, tlsa } from './certs.js';

const ee = tlsa(3, 1, 1, leaf);
const ta = tlsa(2, 0, 1, root);
const pkix = tlsa(1, 1, 1, leaf);

const dns = await startDNSServer({ authentic: true });
after(() => dns.close());
const resolver = new StubResolver({ servers: [dns.address], cacheSize: 0, timeout: 300, attempts: 1 });

beforeEach(() => {
  dns.behave('*', null);
  for (const name of ['mx.example.org', 'alias.example.org', 'target.example.net', 'mx.unusable.example', 'loop1.example', 'loop2.example']) {
    dns.behave(name, null);
    dns.behave(`_25._tcp.${name}`, null);
  }
  dns.set('mx.example.org', 'A', ['127.0.0.1']);
  dns.set('mx.example.org', 'AAAA', ['::1']);
  dns.set('_25._tcp.mx.example.org', 'TLSA', [ee, ta]);
  dns.set('alias.example.org', 'CNAME', 'target.example.net');
  dns.set('target.example.net', 'A', ['127.0.0.2']);
  dns.set('_25._tcp.target.example.net', 'TLSA', [ee]);
  dns.set('_25._tcp.alias.example.org', 'TLSA', [ta]);
  dns.set('mx.unusable.example', 'A', ['127.0.0.3']);
  dns.set('_25._tcp.mx.unusable.example', 'TLSA', [pkix, { usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(5) }]);
  dns.queries.length = 0;
});

test('authentic addresses and TLSA records: DANE is required', async () => {
  assert.deepEqual(await lookupDANE(resolver, 'MX.example.org.'), {
    status: 'dane-required',
    records: [ee, ta],
    baseDomain: 'mx.example.org',
    names: ['mx.example.org'],
    addresses: ['127.0.0.1', '::1'],
  });
});

test('another port is looked up under its own name', async () => {
  dns.set('_465._tcp.mx.example.org', 'TLSA', [ta]);
  const r = await lookupDANE(resolver, 'mx.example.org', { port: 465 });
  assert.equal(r.status, 'dane-required');
  assert.deepEqual(r.status === 'dane-required' && r.records, [ta]);
});

test('addresses without the AD bit: no DANE, and no TLSA lookup', async () => {
  dns.behave('mx.example.org', 'noad');
  const r = await lookupDANE(resolver, 'mx.example.org');
  assert.deepEqual(r, { status: 'no-dane', requireTLS: false, reason: 'addresses of mx.example.org are not DNSSEC-signed', addresses: ['127.0.0.1', '::1'] });
  assert.ok(!dns.queries.some((q) => q.type === 'TLSA'));
});

test('TLSA records without the AD bit are ignored', async () => {
  dns.behave('_25._tcp.mx.example.org', 'noad');
  const r = await lookupDANE(resolver, 'mx.example.org');
  assert.equal(r.status, 'no-dane');
  assert.equal(r.status === 'no-dane' && r.requireTLS, false);
});

test('without the AD bit anywhere, nothing is DANE', async () => {
  dns.authentic = false;
  try {
    assert.equal((await lookupDANE(resolver, 'mx.example.org')).status, 'no-dane');
    assert.equal((await lookupDANE(resolver, 'alias.example.org')).status, 'no-dane');
  } finally {
    dns.authentic = true;
  }
});

test('no TLSA records: no DANE', async () => {
  dns.set('_25._tcp.mx.example.org', 'TLSA', undefined);
  const r = await lookupDANE(resolver, 'mx.example.org');
  assert.deepEqual(r, { status: 'no-dane', requireTLS: false, reason: 'no DNSSEC-authentic TLSA records for mx.example.org', addresses: ['127.0.0.1', '::1'] });
});

test('only unusable TLSA records: no DANE, but TLS stays mandatory', async () => {
  const r = await lookupDANE(resolver, 'mx.unusable.example');
  assert.equal(r.status, 'no-dane');
  assert.equal(r.status === 'no-dane' && r.requireTLS, true);
  assert.match(r.status === 'no-dane' ? r.reason : '', /no usable TLSA records at _25\._tcp\.mx\.unusable\.example/);
});

test('usable records are kept, unusable ones dropped', async () => {
  dns.set('_25._tcp.mx.example.org', 'TLSA', [pkix, ee]);
  const r = await lookupDANE(resolver, 'mx.example.org');
  assert.deepEqual(r.status === 'dane-required' && r.records, [ee]);
});

test('a failed TLSA lookup is a temporary failure, not the absence of DANE', async () => {
  dns.behave('_25._tcp.mx.example.org', 'servfail');
  const r = await lookupDANE(resolver, 'mx.example.org');
  assert.equal(r.status, 'temporary-failure');
  assert.match(r.status === 'temporary-failure' ? r.reason : '', /TLSA records at _25\._tcp\.mx\.example\.org/);
  dns.behave('_25._tcp.mx.example.org', null);
  dns.behave('_25._tcp.mx.example.org', 'timeout');
  assert.equal((await lookupDANE(resolver, 'mx.example.org')).status, 'temporary-failure');
});

test('failed or empty address lookups are temporary failures', async () => {
  dns.behave('mx.example.org', 'servfail');
  assert.equal((await lookupDANE(resolver, 'mx.example.org')).status, 'temporary-failure');
  const missing = await lookupDANE(resolver, 'missing.example.org');
  assert.equal(missing.status, 'temporary-failure');
  assert.match(missing.status === 'temporary-failure' ? missing.reason : '', /missing\.example\.org/);
});

test('a secure CNAME: records at the target come first, with both names allowed', async () => {
  const r = await lookupDANE(resolver, 'alias.example.org');
  assert.deepEqual(r, {
    status: 'dane-required',
    records: [ee],
    baseDomain: 'target.example.net',
    names: ['target.example.net', 'alias.example.org'],
    addresses: ['127.0.0.2'],
  });
});

test('a secure CNAME without records at the target: records at the host name', async () => {
  dns.set('_25._tcp.target.example.net', 'TLSA', undefined);
  const r = await lookupDANE(resolver, 'alias.example.org');
  assert.equal(r.status, 'dane-required');
  if (r.status === 'dane-required') {
    assert.deepEqual(r.records, [ta]);
    assert.equal(r.baseDomain, 'alias.example.org');
    assert.deepEqual(r.names, ['alias.example.org', 'target.example.net']);
  }
  dns.behave('_25._tcp.target.example.net', 'noad');
  dns.set('_25._tcp.target.example.net', 'TLSA', [ee]);
  const insecure = await lookupDANE(resolver, 'alias.example.org');
  assert.equal(insecure.status === 'dane-required' && insecure.baseDomain, 'alias.example.org');
});

test('a CNAME loop fails', async () => {
  dns.set('loop1.example', 'CNAME', 'loop2.example');
  dns.set('loop2.example', 'CNAME', 'loop1.example');
  assert.equal((await lookupDANE(resolver, 'loop1.example')).status, 'temporary-failure');
});
