import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { StubResolver, type StubResolverOptions } from '../../src/dns/stub.js';
import { DNSError, type DNSErrorCode } from '../../src/dns/types.js';
import { startDNSServer, type DNSServer, type DNSServerOptions } from '../helpers/dnsserver.js';

const TLSA_HASH = 'a9b8c7d6e5f40312a9b8c7d6e5f40312a9b8c7d6e5f40312a9b8c7d6e5f40312';

const zone: DNSServerOptions['records'] = {
  'example.org': {
    A: ['192.0.2.1', '192.0.2.2'],
    AAAA: ['2001:db8::1'],
    MX: [
      { preference: 10, exchange: 'MX1.Example.org.' },
      { preference: 20, exchange: 'mx2.example.org' },
    ],
    TXT: ['v=spf1 -all', ['v=DMARC1; ', 'p=reject']],
    NS: ['NS1.example.org.', 'ns2.example.org'],
  },
  'null.example.org': { MX: [{ preference: 0, exchange: '' }] },
  'v6only.example.org': { AAAA: ['2001:db8::2'] },
  '_submission._tcp.example.org': { SRV: [{ priority: 0, weight: 1, port: 587, target: 'Mail.Example.org' }] },
  '_imap._tcp.example.org': { SRV: [{ priority: 0, weight: 0, port: 0, target: '' }] },
  '_25._tcp.mx1.example.org': { TLSA: [{ usage: 3, selector: 1, matchingType: 1, data: TLSA_HASH }] },
  '1.2.0.192.in-addr.arpa': { PTR: ['Host.Example.org.'] },
  '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa': { PTR: ['v6.example.org'] },
  'www.example.org': { CNAME: 'Alias.Example.org.' },
  'alias.example.org': { CNAME: 'example.org' },
  'dangling.example.org': { CNAME: 'missing.example.org' },
  'loop1.example.org': { CNAME: 'loop2.example.org' },
  'loop2.example.org': { CNAME: 'loop1.example.org' },
  'a.b.deep.example.org': { A: ['192.0.2.9'] },
  'short.example.org': { A: ['192.0.2.3'], ttl: 30 },
  'zero.example.org': { A: ['192.0.2.4'], ttl: 0 },
  'xn--bcher-kva.example': { A: ['192.0.2.5'] },
};

async function setup(t: TestContext, server: DNSServerOptions = {}, resolver: StubResolverOptions = {}): Promise<{ dns: DNSServer; r: StubResolver }> {
  const dns = await startDNSServer({ records: zone, ...server });
  t.after(() => dns.close());
  const r = new StubResolver({ servers: [dns.address], timeout: 300, attempts: 2, ...resolver });
  return { dns, r };
}

async function rejectsWith(p: Promise<unknown>, code: DNSErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DNSError, `not a DNSError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test('A, AAAA and lookupIP', async (t) => {
  const { r } = await setup(t);
  assert.deepEqual(await r.lookupA('example.org'), { records: ['192.0.2.1', '192.0.2.2'], authentic: false });
  assert.deepEqual(await r.lookupAAAA('example.org'), { records: ['2001:db8::1'], authentic: false });
  assert.deepEqual((await r.lookupIP('example.org')).records, ['192.0.2.1', '192.0.2.2', '2001:db8::1']);
  assert.deepEqual((await r.lookupIP('v6only.example.org')).records, ['2001:db8::2']);
  await rejectsWith(r.lookupIP('nx.example.org'), 'NXDOMAIN');
});

test('MX records, with names lower-cased and without trailing dot', async (t) => {
  const { r } = await setup(t);
  assert.deepEqual((await r.lookupMX('example.org')).records, [
    { preference: 10, exchange: 'mx1.example.org' },
    { preference: 20, exchange: 'mx2.example.org' },
  ]);
});

test('null MX comes back as exchange ""', async (t) => {
  const { r } = await setup(t);
  assert.deepEqual((await r.lookupMX('null.example.org')).records, [{ preference: 0, exchange: '' }]);
});

test('TXT character-strings are joined per record', async (t) => {
  const { r } = await setup(t);
  assert.deepEqual((await r.lookupTXT('example.org')).records, ['v=spf1 -all', 'v=DMARC1; p=reject']);
});

test('TXT records longer than 255 bytes', async (t) => {
  const { dns, r } = await setup(t);
  const long = 'v=DKIM1; k=rsa; p=' + 'A'.repeat(700);
  // The server cuts it into 255-byte character-strings; the resolver joins them.
  dns.set('long.example.org', 'TXT', [long]);
  assert.deepEqual((await r.lookupTXT('long.example.org')).records, [long]);
  assert.deepEqual(
    dns.queries.map((q) => q.transport),
    ['udp'],
  );
});

test('TXT record bytes are joined before UTF-8 decoding', async (t) => {
  const { dns, r } = await setup(t);
  // "prix: 5€ " is 11 bytes; after 243 more the second "€" takes bytes 254 to 256, across the cut.
  const text = 'prix: 5€ ' + 'x'.repeat(243) + '€ fin';
  dns.set('utf8.example.org', 'TXT', [text]);
  assert.deepEqual((await r.lookupTXT('utf8.example.org')).records, [text]);
});

test('NS, SRV, TLSA and CNAME records', async (t) => {
  const { r } = await setup(t);
  assert.deepEqual((await r.lookupNS('example.org')).records, ['ns1.example.org', 'ns2.example.org']);
  assert.deepEqual((await r.lookupSRV('_submission._tcp.example.org')).records, [{ priority: 0, weight: 1, port: 587, target: 'mail.example.org' }]);
  // RFC 6186 3.4: target "." means the service is not offered.
  assert.deepEqual((await r.lookupSRV('_imap._tcp.example.org')).records, [{ priority: 0, weight: 0, port: 0, target: '' }]);
  const tlsa = (await r.lookupTLSA('_25._tcp.mx1.example.org')).records;
  assert.equal(tlsa.length, 1);
  assert.deepEqual({ ...tlsa[0], data: tlsa[0]!.data.toString('hex') }, { usage: 3, selector: 1, matchingType: 1, data: TLSA_HASH });
  assert.deepEqual(await r.lookupCNAME('www.example.org'), { records: 'alias.example.org', authentic: false });
  await rejectsWith(r.lookupCNAME('example.org'), 'NODATA');
});

test('PTR lookups from IPv4 and IPv6 addresses', async (t) => {
  const { dns, r } = await setup(t);
  assert.deepEqual((await r.lookupPTR('192.0.2.1')).records, ['host.example.org']);
  assert.deepEqual((await r.lookupPTR('::ffff:192.0.2.1')).records, ['host.example.org']);
  assert.deepEqual((await r.lookupPTR('2001:db8::1')).records, ['v6.example.org']);
  await rejectsWith(r.lookupPTR('192.0.2.77'), 'NXDOMAIN');
  await rejectsWith(r.lookupPTR('not-an-ip'), 'NXDOMAIN', /invalid IP address/);
  assert.deepEqual(
    dns.queries.map((q) => q.name),
    ['1.2.0.192.in-addr.arpa', '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa', '77.2.0.192.in-addr.arpa'],
  );
});

test('NXDOMAIN and NODATA are told apart', async (t) => {
  const { r } = await setup(t);
  await assert.rejects(r.lookupMX('nx.example.org'), (err: DNSError) => err.code === 'NXDOMAIN' && err.notFound && !err.temporary);
  await rejectsWith(r.lookupMX('v6only.example.org'), 'NODATA');
  await rejectsWith(r.lookupTXT('null.example.org'), 'NODATA');
  // RFC 8020: a name with only descendants exists.
  await rejectsWith(r.lookupA('b.deep.example.org'), 'NODATA');
  await rejectsWith(r.lookupA('c.deep.example.org'), 'NXDOMAIN');
});

test('query names: case, trailing dot, IDN and invalid names', async (t) => {
  const { dns, r } = await setup(t);
  assert.deepEqual((await r.lookupA('EXAMPLE.Org.')).records, ['192.0.2.1', '192.0.2.2']);
  assert.deepEqual((await r.lookupA('Bücher.example')).records, ['192.0.2.5']);
  assert.deepEqual(
    dns.queries.map((q) => q.name),
    ['example.org', 'xn--bcher-kva.example'],
  );
  await rejectsWith(r.lookupA('bad..example.org'), 'NXDOMAIN', /empty label/);
  await rejectsWith(r.lookupTXT('x'.repeat(64) + '.example.org'), 'NXDOMAIN', /63/);
  assert.equal(dns.queries.length, 2);
});

test('answers with upper-case question and owner names are accepted', async (t) => {
  const { dns, r } = await setup(t);
  dns.behave('www.example.org', 'upcase');
  assert.deepEqual((await r.lookupA('www.example.org')).records, ['192.0.2.1', '192.0.2.2']);
});

test('queries carry RD, AD and EDNS0 with a 1232-byte UDP size, from random IDs and ports', async (t) => {
  const { dns, r } = await setup(t);
  for (const name of ['example.org', 'www.example.org', 'alias.example.org', 'null.example.org', 'v6only.example.org']) await r.lookupAAAA(name).catch(() => {});
  assert.equal(dns.queries.length, 5);
  for (const q of dns.queries) {
    assert.equal(q.rd, true);
    assert.equal(q.ad, true);
    assert.equal(q.udpSize, 1232);
    assert.equal(q.transport, 'udp');
  }
  assert.ok(new Set(dns.queries.map((q) => q.id)).size > 1);
  assert.ok(new Set(dns.queries.map((q) => q.port)).size > 1);
});

test('SERVFAIL and REFUSED are temporary errors, not retried at the same server', async (t) => {
  const { dns, r } = await setup(t);
  dns.behave('example.org', 'servfail');
  await assert.rejects(r.lookupMX('example.org'), (err: DNSError) => err.code === 'SERVFAIL' && err.temporary && !err.notFound);
  dns.behave('example.org', null);
  dns.behave('example.org', 'refused');
  await rejectsWith(r.lookupMX('example.org'), 'REFUSED');
  assert.equal(dns.queries.length, 2);
  // Errors are not cached.
  dns.behave('example.org', null);
  assert.equal((await r.lookupMX('example.org')).records.length, 2);
});

test('a timeout is retried, and a server that never answers gives TIMEOUT', async (t) => {
  const { dns, r } = await setup(t);
  dns.behave('example.org', 'timeout', 1);
  assert.deepEqual((await r.lookupA('example.org')).records, ['192.0.2.1', '192.0.2.2']);
  assert.equal(dns.queries.length, 2);

  dns.queries.length = 0;
  dns.behave('www.example.org', 'timeout');
  const start = Date.now();
  await rejectsWith(r.lookupA('www.example.org'), 'TIMEOUT');
  assert.equal(dns.queries.length, 2);
  assert.ok(Date.now() - start >= 550);
});

test('the next server is tried after a timeout, an error answer or a closed port', async (t) => {
  const { dns: first } = await setup(t);
  const { dns: second } = await setup(t);
  // A UDP port nothing listens on: the connected socket reports the refusal at once.
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
  const closedAddress = `127.0.0.1:${closed.address().port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));

  const r = new StubResolver({ servers: [closedAddress, first.address, second.address], timeout: 300, attempts: 1 });
  first.behave('*', 'timeout');
  assert.equal((await r.lookupA('example.org')).records.length, 2);
  first.behave('*', null);
  first.behave('*', 'servfail');
  assert.equal((await r.lookupMX('example.org')).records.length, 2);
  assert.deepEqual(
    first.queries.map((q) => q.type),
    ['A', 'MX'],
  );
  assert.deepEqual(
    second.queries.map((q) => q.type),
    ['A', 'MX'],
  );
  // When every server fails, an error answer is reported rather than the timeouts.
  second.behave('*', 'timeout');
  await rejectsWith(r.lookupTXT('example.org'), 'SERVFAIL');
});

test('a truncated UDP answer is repeated over TCP', async (t) => {
  const { dns, r } = await setup(t);
  dns.behave('example.org', 'truncate');
  assert.deepEqual((await r.lookupMX('example.org')).records.map((mx) => mx.exchange), ['mx1.example.org', 'mx2.example.org']);
  assert.deepEqual(
    dns.queries.map((q) => [q.type, q.transport]),
    [
      ['MX', 'udp'],
      ['MX', 'tcp'],
    ],
  );
});

test('an answer larger than the EDNS size comes over TCP', async (t) => {
  const { dns, r } = await setup(t);
  const records = Array.from({ length: 10 }, (_, i) => `record ${i} ` + 'k'.repeat(200));
  dns.set('big.example.org', 'TXT', records);
  assert.deepEqual((await r.lookupTXT('big.example.org')).records, records);
  assert.deepEqual(
    dns.queries.map((q) => q.transport),
    ['udp', 'tcp'],
  );
});

test('CNAME chains are followed, loops and dangling targets reported', async (t) => {
  const { dns, r } = await setup(t);
  assert.deepEqual((await r.lookupMX('www.example.org')).records.length, 2);
  assert.deepEqual((await r.lookupA('www.example.org')).records, ['192.0.2.1', '192.0.2.2']);
  await rejectsWith(r.lookupA('dangling.example.org'), 'NXDOMAIN', /via CNAME to missing\.example\.org/);
  await rejectsWith(r.lookupA('loop1.example.org'), 'OTHER', /CNAME loop/);
  for (let i = 0; i < 20; i++) dns.set(`c${i}.example.org`, 'CNAME', `c${i + 1}.example.org`);
  dns.set('c20.example.org', 'A', ['192.0.2.20']);
  assert.deepEqual((await r.lookupA('c4.example.org')).records, ['192.0.2.20']);
  await rejectsWith(r.lookupA('c0.example.org'), 'OTHER', /more than 16 CNAMEs/);
});

test('the AD bit from a loopback resolver makes answers authentic', async (t) => {
  const { dns, r } = await setup(t, { authentic: true });
  assert.equal((await r.lookupMX('example.org')).authentic, true);
  assert.equal((await r.lookupTLSA('_25._tcp.mx1.example.org')).authentic, true);
  dns.behave('www.example.org', 'noad');
  assert.equal((await r.lookupA('www.example.org')).authentic, false);
  dns.authentic = false;
  dns.behave('null.example.org', 'ad');
  assert.equal((await r.lookupMX('null.example.org')).authentic, true);
  assert.equal((await r.lookupA('example.org')).authentic, false);
  // lookupIP is authentic only if both answers are.
  dns.behave('v6only.example.org', 'ad');
  assert.equal((await r.lookupIP('v6only.example.org')).authentic, true);
  assert.equal((await r.lookupIP('example.org')).authentic, false);
});

test('IPv6 server address [::1]', async (t) => {
  const { dns, r } = await setup(t, { host: '::1', authentic: true });
  assert.match(dns.address, /^\[::1\]:\d+$/);
  assert.deepEqual(await r.lookupA('example.org'), { records: ['192.0.2.1', '192.0.2.2'], authentic: true });
  dns.behave('example.org', 'truncate');
  assert.equal((await r.lookupMX('example.org')).records.length, 2);
  assert.deepEqual(
    dns.queries.map((q) => q.transport),
    ['udp', 'udp', 'tcp'],
  );
});

test('answers are cached for their TTL', async (t) => {
  let now = 1_000_000;
  const { dns, r } = await setup(t, {}, { now: () => now });
  await r.lookupA('short.example.org');
  await r.lookupA('Short.Example.org.');
  assert.equal(dns.queries.length, 1);
  dns.set('short.example.org', 'A', ['192.0.2.33']);
  now += 29_000;
  assert.deepEqual((await r.lookupA('short.example.org')).records, ['192.0.2.3']);
  now += 1_000;
  assert.deepEqual((await r.lookupA('short.example.org')).records, ['192.0.2.33']);
  assert.equal(dns.queries.length, 2);
  // Other types of the same name are separate.
  await rejectsWith(r.lookupAAAA('short.example.org'), 'NODATA');
  assert.equal(dns.queries.length, 3);
  // TTL 0 is not cached.
  await r.lookupA('zero.example.org');
  await r.lookupA('zero.example.org');
  assert.equal(dns.queries.length, 5);
});

test('a CNAME chain is cached for its shortest TTL', async (t) => {
  let now = 0;
  const { dns, r } = await setup(t, {}, { now: () => now });
  dns.set('cn.example.org', 'CNAME', 'short.example.org');
  dns.set('cn.example.org', 'ttl', 3600);
  await r.lookupA('cn.example.org');
  now += 29_000;
  await r.lookupA('cn.example.org');
  assert.equal(dns.queries.length, 1);
  now += 1_000;
  await r.lookupA('cn.example.org');
  assert.equal(dns.queries.length, 2);
});

test('denials are cached for the SOA TTL, not without SOA', async (t) => {
  let now = 0;
  const { dns, r } = await setup(t, { negativeTTL: 10 }, { now: () => now });
  await rejectsWith(r.lookupA('nx.example.org'), 'NXDOMAIN');
  dns.set('nx.example.org', 'A', ['192.0.2.40']);
  await rejectsWith(r.lookupA('nx.example.org'), 'NXDOMAIN');
  await rejectsWith(r.lookupMX('v6only.example.org'), 'NODATA');
  await rejectsWith(r.lookupMX('v6only.example.org'), 'NODATA');
  assert.equal(dns.queries.length, 2);
  now += 10_000;
  assert.deepEqual((await r.lookupA('nx.example.org')).records, ['192.0.2.40']);
  assert.equal(dns.queries.length, 3);

  dns.behave('nosoa.example.org', 'nosoa');
  await rejectsWith(r.lookupA('nosoa.example.org'), 'NXDOMAIN');
  await rejectsWith(r.lookupA('nosoa.example.org'), 'NXDOMAIN');
  assert.equal(dns.queries.length, 5);
});

test('the cache is bounded, evicting the least recently used entry', async (t) => {
  const { dns, r } = await setup(t, {}, { cacheSize: 2 });
  await r.lookupA('example.org');
  await r.lookupAAAA('example.org');
  await r.lookupA('example.org');
  await r.lookupMX('example.org');
  assert.equal(dns.queries.length, 3);
  await r.lookupA('example.org');
  assert.equal(dns.queries.length, 3);
  await r.lookupAAAA('example.org');
  assert.equal(dns.queries.length, 4);
  r.clearCache();
  await r.lookupA('example.org');
  assert.equal(dns.queries.length, 5);
});

test('concurrent lookups of the same name share one query', async (t) => {
  const { dns, r } = await setup(t, {}, { cacheSize: 0 });
  const results = await Promise.all([r.lookupTXT('example.org'), r.lookupTXT('example.org'), r.lookupTXT('EXAMPLE.org')]);
  assert.equal(dns.queries.length, 1);
  for (const res of results) assert.equal(res.records.length, 2);
  await r.lookupTXT('example.org');
  assert.equal(dns.queries.length, 2);
});

test('forged, stray and malformed datagrams do not disturb the exchange', async (t) => {
  const { dns, r } = await setup(t);
  dns.behave('example.org', 'spoof');
  assert.deepEqual((await r.lookupA('example.org')).records, ['192.0.2.1', '192.0.2.2']);
  assert.equal(dns.queries.length, 1);
});

test('a server rejecting EDNS is asked again without it', async (t) => {
  const { dns, r } = await setup(t);
  dns.behave('example.org', 'noedns');
  assert.equal((await r.lookupMX('example.org')).records.length, 2);
  assert.deepEqual(
    dns.queries.map((q) => q.udpSize),
    [1232, undefined],
  );
});

test('hostile servers: undecodable answers and cut TCP streams give errors, not hangs', async (t) => {
  // Answers every query with its own ID and a header claiming 65535 records, but no records.
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const reply = Buffer.alloc(12);
    msg.copy(reply, 0, 0, 2);
    reply.writeUInt16BE(0x8180, 2);
    reply.writeUInt16BE(0xffff, 6);
    udp.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  t.after(() => udp.close());
  const r = new StubResolver({ servers: [`127.0.0.1:${udp.address().port}`], timeout: 2000, attempts: 1 });
  const start = Date.now();
  await rejectsWith(r.lookupA('example.org'), 'FORMERR', /malformed/);
  assert.ok(Date.now() - start < 1000);

  // A truncated answer over UDP sends the resolver to TCP, where the stream is cut short.
  const udp2 = dgram.createSocket('udp4');
  udp2.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const reply = dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.TRUNCATED_RESPONSE, questions: q.questions });
    udp2.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => udp2.bind(0, '127.0.0.1', resolve));
  t.after(() => udp2.close());
  // Announces a 64-byte message, sends three bytes and closes.
  const tcp2 = net.createServer((sock) => sock.end(Buffer.from([0x00, 0x40, 1, 2, 3])));
  await new Promise<void>((resolve) => tcp2.listen(udp2.address().port, '127.0.0.1', resolve));
  t.after(() => tcp2.close());
  const r2 = new StubResolver({ servers: [`127.0.0.1:${udp2.address().port}`], timeout: 2000, attempts: 1 });
  await rejectsWith(r2.lookupA('example.org'), 'NETWORK', /closed the TCP connection early/);
});
