import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainError, ipBytes, isLoopbackIP, parseDNSName, parseDomain, reverseName } from '../../src/dns/domain.js';

test('parseDomain gives both IDNA forms in lower case', () => {
  assert.deepEqual(parseDomain('Example.ORG'), { ascii: 'example.org', unicode: 'example.org' });
  assert.deepEqual(parseDomain('Bücher.Example.'), { ascii: 'xn--bcher-kva.example', unicode: 'bücher.example' });
  assert.deepEqual(parseDomain('XN--BCHER-KVA.example'), { ascii: 'xn--bcher-kva.example', unicode: 'bücher.example' });
  assert.deepEqual(parseDomain('faß.de'), { ascii: 'xn--fa-hia.de', unicode: 'faß.de' });
  assert.deepEqual(parseDomain('公司。example'), { ascii: 'xn--55qx5d.example', unicode: '公司.example' });
  assert.deepEqual(parseDomain('localhost'), { ascii: 'localhost', unicode: 'localhost' });
  assert.deepEqual(parseDomain('a-b.c0'), { ascii: 'a-b.c0', unicode: 'a-b.c0' });
});

test('parseDomain rejects invalid names with a reason', () => {
  const cases: [string, RegExp][] = [
    ['', /empty name/],
    ['.', /empty name/],
    ['a..b', /empty label/],
    ['.a', /empty label/],
    ['a.b..', /empty label/],
    ['x'.repeat(64) + '.example', /longer than 63/],
    [Array(64).fill('abc').join('.'), /longer than 253/],
    ['a'.repeat(5000), /too long/],
    ['-a.example', /hyphen/],
    ['a-.example', /hyphen/],
    ['a_b.example', /bad character/],
    ['a b.example', /bad character|invalid label/],
    ['exa$mple.com', /bad character/],
    ['xn--zz.example', /invalid A-label/],
    ['xn--a.example', /invalid A-label/],
    ['example.123', /all-numeric/],
    ['1.2.3.4', /all-numeric/],
    ['a\u0000b.example', /bad character/],
  ];
  for (const [input, reason] of cases) {
    assert.throws(() => parseDomain(input), (err: unknown) => err instanceof DomainError && reason.test(err.message), input);
  }
});

test('parseDNSName allows underscores and relaxed labels for looked-up names', () => {
  assert.equal(parseDNSName('_DMARC.Example.org').ascii, '_dmarc.example.org');
  assert.equal(parseDNSName('sel._domainkey.bücher.example').ascii, 'sel._domainkey.xn--bcher-kva.example');
  assert.equal(parseDNSName('4.3.2.1.in-addr.arpa.').ascii, '4.3.2.1.in-addr.arpa');
  assert.equal(parseDNSName('-x.example.123').ascii, '-x.example.123');
  assert.throws(() => parseDNSName('a b.example'), DomainError);
  assert.throws(() => parseDNSName('a..example'), DomainError);
  assert.throws(() => parseDNSName('*.example'), DomainError);
});

test('ipBytes parses IPv4 and all IPv6 forms', () => {
  assert.deepEqual([...ipBytes('192.0.2.1')!], [192, 0, 2, 1]);
  assert.equal(ipBytes('2001:db8::1')!.toString('hex'), '20010db8000000000000000000000001');
  assert.equal(ipBytes('::')!.toString('hex'), '0'.repeat(32));
  assert.equal(ipBytes('1::')!.toString('hex'), '0001' + '0'.repeat(28));
  assert.equal(ipBytes('::ffff:192.0.2.1')!.toString('hex'), '00000000000000000000ffffc0000201');
  assert.equal(ipBytes('1:2:3:4:5:6:7:8')!.toString('hex'), '00010002000300040005000600070008');
  for (const bad of ['', '1.2.3', '256.1.1.1', '01.2.3.4', '1::2::3', 'fe80::1%eth0', 'example.org', '::g']) assert.equal(ipBytes(bad), undefined, bad);
});

test('isLoopbackIP is true only for 127.0.0.0/8 and ::1', () => {
  for (const ip of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.equal(isLoopbackIP(ip), true, ip);
  for (const ip of ['128.0.0.1', '10.0.0.1', '::', '::2', '1::1', '::ffff:10.0.0.1', 'localhost', '', '::1%lo']) assert.equal(isLoopbackIP(ip), false, ip);
});

test('reverseName builds in-addr.arpa and ip6.arpa names', () => {
  assert.equal(reverseName('192.0.2.1'), '1.2.0.192.in-addr.arpa');
  assert.equal(reverseName('2001:db8::567:89ab'), 'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
  assert.equal(reverseName('::ffff:192.0.2.1'), '1.2.0.192.in-addr.arpa');
  assert.throws(() => reverseName('192.0.2'), /invalid IP address/);
});
