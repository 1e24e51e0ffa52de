// DNS blocklist lookups (RFC 5782) against the loopback test DNS server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDNSServer, type DNSServer } from '../helpers/dnsserver.js';
import { StubResolver } from '../../src/dns/stub.js';
import { DNSBLs, checkHealth, lookup, queryName } from '../../src/dnsbl/dnsbl.js';

let dns: DNSServer;
let resolver: StubResolver;

before(async () => {
  dns = await startDNSServer();
  resolver = new StubResolver({ servers: [dns.address], timeout: 500, attempts: 1, cacheSize: 0 });
  dns.set('2.0.0.127.bl.example', 'A', ['127.0.0.2']);
  dns.set('2.0.0.127.bl.example', 'TXT', ['test listing']);
  dns.set('10.2.0.192.bl.example', 'A', ['127.0.0.4']);
  dns.set(queryName('2001:db8::1', 'bl.example'), 'A', ['127.0.0.2']);
  // A zone that lists everything, as happens when a blocklist domain lapses.
  for (const ip of ['127.0.0.1', '127.0.0.2', '192.0.2.1']) dns.set(queryName(ip, 'broken.example'), 'A', ['127.0.0.2']);
  // A zone answering with addresses outside 127/8.
  dns.set('2.0.0.127.wild.example', 'A', ['192.0.2.80']);
});
after(async () => {
  await dns.close();
});

test('query names: IPv4 octets and IPv6 nibbles reversed (RFC 5782 2.1, 2.4)', () => {
  assert.equal(queryName('192.0.2.99', 'bl.example'), '99.2.0.192.bl.example');
  assert.equal(queryName('::ffff:192.0.2.99', 'bl.example'), '99.2.0.192.bl.example');
  // The example of RFC 5782 2.4.
  assert.equal(queryName('2001:db8:1:2:3:4:567:89ab', 'ugly.example.com'), 'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com');
  assert.throws(() => queryName('not-an-ip', 'bl.example'));
});

test('lookup: listed with explanation, listed without, not listed, IPv6, bad answers', async () => {
  assert.deepEqual(await lookup(resolver, 'bl.example', '127.0.0.2'), { status: 'fail', explanation: 'test listing' });
  assert.deepEqual(await lookup(resolver, 'bl.example', '192.0.2.10'), { status: 'fail', explanation: undefined });
  assert.deepEqual(await lookup(resolver, 'bl.example', '192.0.2.11'), { status: 'pass' });
  assert.equal((await lookup(resolver, 'bl.example', '2001:db8::1')).status, 'fail');
  assert.equal((await lookup(resolver, 'bl.example', '2001:db8::2')).status, 'pass');
  assert.equal((await lookup(resolver, 'wild.example', '127.0.0.2')).status, 'temperror');
  dns.behave('3.2.0.192.bl.example', 'servfail');
  assert.equal((await lookup(resolver, 'bl.example', '192.0.2.3')).status, 'temperror');
});

test('health: 127.0.0.2 listed and 127.0.0.1 not', async () => {
  assert.equal(await checkHealth(resolver, 'bl.example'), undefined);
  assert.match((await checkHealth(resolver, 'broken.example'))!, /127\.0\.0\.1 should not be listed/);
  assert.match((await checkHealth(resolver, 'empty.example'))!, /127\.0\.0\.2 should be listed, got pass/);
});

test('an unhealthy zone is skipped; health is checked again after 4 hours', async () => {
  let now = 1_000_000;
  const bls = new DNSBLs(resolver, ['broken.example', 'bl.example'], { now: () => now });
  assert.deepEqual(await bls.listed('192.0.2.1'), undefined, 'broken.example lists it, but is unhealthy');
  assert.deepEqual(await bls.listed('192.0.2.10'), { zone: 'bl.example', explanation: undefined });
  const healthQueries = () => dns.queries.filter((q) => q.name === '2.0.0.127.broken.example' && q.type === 'A').length;
  const before = healthQueries();
  await bls.listed('192.0.2.1');
  assert.equal(healthQueries(), before, 'health verdict cached');
  now += 4 * 3600_000 + 1;
  await bls.listed('192.0.2.1');
  assert.equal(healthQueries(), before + 1, 'health checked again');
});
