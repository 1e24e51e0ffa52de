// Postern's check_host against mailauth's independent SPF implementation, both fed from the same
// in-memory zone. Where the two disagree, the case records mailauth's verdict and the RFC 7208
// section that Postern's verdict follows.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spf as mailauthSPF } from 'mailauth/lib/spf/index.js';
import { DNSError } from '../../src/dns/types.js';
import { checkHost, type SPFStatus } from '../../src/spf/evaluate.js';
import { FakeResolver, reverseName, type Zone } from './fakeresolver.js';
import { IP4, IP6 } from './helpers.js';

const NODE_CODES: Record<string, string> = { NXDOMAIN: 'ENOTFOUND', NODATA: 'ENODATA', SERVFAIL: 'ESERVFAIL', TIMEOUT: 'ETIMEOUT', REFUSED: 'EREFUSED' };

/** The zone in the shape of node:dns's resolve(): TXT as string[][], MX as {priority, exchange}, errors with codes. */
function nodeResolver(fake: FakeResolver) {
  return async (name: string, type: string): Promise<unknown> => {
    try {
      switch (type) {
        case 'TXT':
          return (await fake.raw<string>(name, 'TXT')).records.map((t) => [t]);
        case 'MX':
          return (await fake.lookupMX(name)).records.map((mx) => ({ priority: mx.preference, exchange: mx.exchange }));
        case 'A':
        case 'AAAA':
        case 'PTR':
          return (await fake.raw<string>(name, type)).records;
        default:
          throw new DNSError('NODATA', name, type);
      }
    } catch (err) {
      if (!(err instanceof DNSError)) throw err;
      throw Object.assign(new Error(`${type} ${name}: ${err.code}`), { code: NODE_CODES[err.code] ?? 'ESERVFAIL' });
    }
  };
}

interface Case {
  name: string;
  zone: Zone;
  /** SPF record of example.com, added to the zone. */
  record?: string;
  ip?: string;
  sender?: string;
  expect: SPFStatus;
  /** mailauth's verdict where it differs, and why Postern's follows RFC 7208. */
  mailauth?: { result: SPFStatus; why: string };
}

const hosts: Zone = {
  'h4.example.com': { A: [IP4] },
  'h6.example.com': { AAAA: [IP6] },
  'other4.example.com': { A: ['198.51.100.7'] },
  'mx.example.com': { A: ['198.51.100.25'] },
};

const cases: Case[] = [
  { name: 'no record', zone: {}, expect: 'none' },
  { name: 'only unrelated TXT', zone: { 'example.com': { TXT: ['hello', 'v=spf10 -all'] } }, expect: 'none' },
  { name: 'two records', zone: { 'example.com': { TXT: ['v=spf1 -all', 'v=spf1 +all'] } }, expect: 'permerror' },
  { name: 'empty record', zone: {}, record: 'v=spf1', expect: 'neutral' },
  { name: '+all', zone: {}, record: 'v=spf1 +all', expect: 'pass' },
  { name: 'bare all', zone: {}, record: 'v=spf1 all', expect: 'pass' },
  { name: '-all', zone: {}, record: 'v=spf1 -all', expect: 'fail' },
  { name: '~all', zone: {}, record: 'v=spf1 ~all', expect: 'softfail' },
  { name: '?all', zone: {}, record: 'v=spf1 ?all', expect: 'neutral' },
  { name: 'upper case', zone: {}, record: 'V=SPF1 IP4:192.0.2.3 -ALL', expect: 'pass' },
  { name: 'extra spaces', zone: {}, record: 'v=spf1   ip4:192.0.2.3   -all  ', expect: 'pass' },
  { name: 'ip4 exact', zone: {}, record: 'v=spf1 ip4:192.0.2.3 -all', expect: 'pass' },
  { name: 'ip4 other', zone: {}, record: 'v=spf1 ip4:192.0.2.4 -all', expect: 'fail' },
  { name: 'ip4 /24', zone: {}, record: 'v=spf1 ip4:192.0.2.0/24 -all', expect: 'pass' },
  { name: 'ip4 /31 miss', zone: {}, record: 'v=spf1 ip4:192.0.2.0/31 -all', expect: 'fail' },
  { name: 'ip4 for IPv6 client', zone: {}, record: 'v=spf1 ip4:0.0.0.0/0 -all', ip: IP6, expect: 'fail' },
  { name: 'ip6 exact', zone: {}, record: 'v=spf1 ip6:2001:db8::cb01 -all', ip: IP6, expect: 'pass' },
  { name: 'ip6 /32', zone: {}, record: 'v=spf1 ip6:2001:db8::/32 -all', ip: IP6, expect: 'pass' },
  { name: 'ip6 miss', zone: {}, record: 'v=spf1 ip6:2001:db9::/32 -all', ip: IP6, expect: 'fail' },
  { name: 'ip6 for IPv4 client', zone: {}, record: 'v=spf1 ip6:::/0 -all', expect: 'fail' },
  { name: 'mapped client with ip4', zone: {}, record: 'v=spf1 ip4:192.0.2.0/24 -all', ip: '::ffff:192.0.2.3', expect: 'pass' },
  { name: 'bad ip4', zone: {}, record: 'v=spf1 ip4:192.0.2 -all', expect: 'permerror' },
  { name: 'ip4 cidr 33', zone: {}, record: 'v=spf1 ip4:192.0.2.3/33 -all', expect: 'permerror' },
  { name: 'ip6 cidr 129', zone: {}, record: 'v=spf1 ip6:2001:db8::/129 -all', ip: IP6, expect: 'permerror' },
  { name: 'unknown mechanism', zone: {}, record: 'v=spf1 foo -all', expect: 'permerror' },
  { name: 'unknown modifier', zone: {}, record: 'v=spf1 ip4:192.0.2.3 x-extension=anything -all', expect: 'pass' },
  { name: 'a on domain', zone: { 'example.com': { A: [IP4] } }, record: 'v=spf1 a -all', expect: 'pass' },
  { name: 'a: other host', zone: hosts, record: 'v=spf1 a:h4.example.com -all', expect: 'pass' },
  { name: 'a: miss', zone: hosts, record: 'v=spf1 a:other4.example.com -all', expect: 'fail' },
  { name: 'a/24', zone: hosts, record: 'v=spf1 a:other4.example.com/8 -all', ip: '198.0.0.1', expect: 'pass' },
  { name: 'a IPv6', zone: hosts, record: 'v=spf1 a:h6.example.com -all', ip: IP6, expect: 'pass' },
  { name: 'a //64', zone: { 'h.example.com': { AAAA: ['2001:db8::1'] } }, record: 'v=spf1 a:h.example.com//64 -all', ip: IP6, expect: 'pass' },
  { name: 'a dual cidr', zone: { 'h.example.com': { A: ['192.0.2.200'], AAAA: ['2001:db8::1'] } }, record: 'v=spf1 a:h.example.com/24//64 -all', expect: 'pass' },
  { name: 'a nxdomain', zone: {}, record: 'v=spf1 a:nothing.example.com -all', expect: 'fail' },
  { name: 'a servfail', zone: { 'h.example.com': { A: 'SERVFAIL' } }, record: 'v=spf1 a:h.example.com -all', expect: 'temperror' },
  { name: 'a timeout', zone: { 'h.example.com': { A: 'TIMEOUT' } }, record: 'v=spf1 a:h.example.com -all', expect: 'temperror' },
  {
    name: 'mx',
    zone: { 'example.com': { MX: [[10, 'mx.example.com'], [20, 'h4.example.com']] }, ...hosts },
    record: 'v=spf1 mx -all',
    expect: 'pass',
  },
  { name: 'mx miss', zone: { 'example.com': { MX: [[10, 'mx.example.com']] }, ...hosts }, record: 'v=spf1 mx -all', expect: 'fail' },
  { name: 'mx no implicit', zone: { 'example.com': { A: [IP4] } }, record: 'v=spf1 mx -all', expect: 'fail' },
  { name: 'mx: other with cidr', zone: { 'm.example.com': { MX: [[0, 'mx.example.com']] }, ...hosts }, record: 'v=spf1 mx:m.example.com/24 -all', ip: '198.51.100.1', expect: 'pass' },
  {
    name: 'ptr',
    zone: { [reverseName(IP4)]: { PTR: ['mail.example.com'] }, 'mail.example.com': { A: [IP4] } },
    record: 'v=spf1 ptr -all',
    expect: 'pass',
  },
  {
    name: 'ptr unvalidated',
    zone: { [reverseName(IP4)]: { PTR: ['mail.example.com'] }, 'mail.example.com': { A: ['192.0.2.99'] } },
    record: 'v=spf1 ptr -all',
    expect: 'fail',
  },
  {
    name: 'ptr: other domain',
    zone: { [reverseName(IP4)]: { PTR: ['mail.example.net'] }, 'mail.example.net': { A: [IP4] } },
    record: 'v=spf1 ptr:example.net -all',
    expect: 'pass',
  },
  { name: 'exists', zone: { '3.2.0.192.list.example.com': { A: ['127.0.0.2'] } }, record: 'v=spf1 exists:%{ir}.list.example.com -all', expect: 'pass' },
  { name: 'exists miss', zone: {}, record: 'v=spf1 exists:%{ir}.list.example.com -all', expect: 'fail' },
  { name: 'include pass', zone: { 'inc.example.com': { TXT: ['v=spf1 ip4:192.0.2.0/24 -all'] } }, record: 'v=spf1 include:inc.example.com -all', expect: 'pass' },
  { name: 'include fail', zone: { 'inc.example.com': { TXT: ['v=spf1 -all'] } }, record: 'v=spf1 include:inc.example.com ~all', expect: 'softfail' },
  { name: 'include neutral', zone: { 'inc.example.com': { TXT: ['v=spf1 ?all'] } }, record: 'v=spf1 include:inc.example.com -all', expect: 'fail' },
  { name: 'include none', zone: {}, record: 'v=spf1 include:none.example.com -all', expect: 'permerror' },
  { name: 'include permerror', zone: { 'inc.example.com': { TXT: ['v=spf1 bad'] } }, record: 'v=spf1 include:inc.example.com -all', expect: 'permerror' },
  { name: 'include timeout', zone: { 'inc.example.com': { TXT: 'TIMEOUT' } }, record: 'v=spf1 include:inc.example.com -all', expect: 'temperror' },
  { name: 'include qualifier', zone: { 'inc.example.com': { TXT: ['v=spf1 +all'] } }, record: 'v=spf1 -include:inc.example.com +all', expect: 'fail' },
  { name: 'redirect', zone: { 'r.example.com': { TXT: ['v=spf1 ip4:192.0.2.3 -all'] } }, record: 'v=spf1 redirect=r.example.com', expect: 'pass' },
  { name: 'redirect fail', zone: { 'r.example.com': { TXT: ['v=spf1 -all'] } }, record: 'v=spf1 redirect=r.example.com', expect: 'fail' },
  { name: 'redirect none', zone: {}, record: 'v=spf1 redirect=none.example.com', expect: 'permerror' },
  { name: 'redirect with all', zone: { 'r.example.com': { TXT: ['v=spf1 -all'] } }, record: 'v=spf1 +all redirect=r.example.com', expect: 'pass' },
  { name: 'two redirects', zone: {}, record: 'v=spf1 redirect=a.example.com redirect=b.example.com', expect: 'permerror' },
  { name: 'redirect loop', zone: {}, record: 'v=spf1 redirect=example.com', expect: 'permerror' },
  {
    name: 'include loop',
    zone: { 'loop.example.com': { TXT: ['v=spf1 include:example.com'] } },
    record: 'v=spf1 include:loop.example.com -all',
    expect: 'permerror',
  },
  {
    name: 'ten lookups',
    zone: hosts,
    record: `v=spf1 ${'a:other4.example.com '.repeat(10)}-all`,
    expect: 'fail',
  },
  {
    name: 'eleven lookups',
    zone: hosts,
    record: `v=spf1 ${'a:other4.example.com '.repeat(11)}-all`,
    expect: 'permerror',
  },
  { name: 'two void lookups', zone: {}, record: 'v=spf1 a:n1.example.com a:n2.example.com ip4:192.0.2.3 -all', expect: 'pass' },
  { name: 'three void lookups', zone: {}, record: 'v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com ip4:192.0.2.3 -all', expect: 'permerror' },
  { name: 'macro %{d2}', zone: { 'example.com.allow.example.net': { A: ['127.0.0.1'] } }, record: 'v=spf1 exists:%{d2}.allow.example.net -all', expect: 'pass' },
  { name: 'macro %{l}', zone: { 'strong-bad.users.example.com': { A: ['127.0.0.1'] } }, record: 'v=spf1 exists:%{l}.users.example.com -all', expect: 'pass' },
  { name: 'macro %{lr-}', zone: { 'bad.strong.users.example.com': { A: ['127.0.0.1'] } }, record: 'v=spf1 exists:%{lr-}.users.example.com -all', expect: 'pass' },
  { name: 'macro %{ir}.%{v}', zone: { '3.2.0.192.in-addr._spf.example.com': { A: ['127.0.0.1'] } }, record: 'v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all', expect: 'pass' },
  {
    name: 'macro IPv6 %{ir}',
    zone: { '1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com': { A: ['127.0.0.1'] } },
    record: 'v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all',
    ip: IP6,
    expect: 'pass',
  },
  { name: 'bad macro', zone: {}, record: 'v=spf1 exists:%(ir).example.com -all', expect: 'permerror' },
  { name: 'empty local-part', zone: { 'postmaster.users.example.com': { A: ['127.0.0.1'] } }, record: 'v=spf1 exists:%{l}.users.example.com -all', sender: '@example.com', expect: 'pass' },
  { name: 'include with an all-numeric top label', zone: { '192.0.2.3': { TXT: ['v=spf1 +all'] } }, record: 'v=spf1 include:192.0.2.3 -all', expect: 'permerror' },
  { name: 'trailing dot after a macro', zone: { 'example.com': { A: [IP4] } }, record: 'v=spf1 a:%{d}. -all', expect: 'permerror' },
  { name: 'syntax error after a match', zone: {}, record: 'v=spf1 +all foo:bar', expect: 'permerror' },
  { name: 'numeric top label in a:', zone: {}, record: 'v=spf1 a:192.0.2.3 -all', expect: 'permerror' },
  { name: 'ptr with cidr', zone: {}, record: 'v=spf1 ptr/24 -all', expect: 'permerror' },
  { name: 'a/0 matches any IPv4', zone: hosts, record: 'v=spf1 a:other4.example.com/0 -all', expect: 'pass' },
  { name: 'nested include', zone: { 'i1.example.com': { TXT: ['v=spf1 include:i2.example.com -all'] }, 'i2.example.com': { TXT: ['v=spf1 ip4:192.0.2.3 -all'] } }, record: 'v=spf1 include:i1.example.com -all', expect: 'pass' },
  { name: 'include whose redirect has no record', zone: { 'inc.example.com': { TXT: ['v=spf1 redirect=none.example.com'] } }, record: 'v=spf1 include:inc.example.com -all', expect: 'permerror' },
  {
    name: 'mx with 11 hosts and no match',
    zone: { 'example.com': { MX: Array.from({ length: 11 }, (_, i): [number, string] => [i, `mx${i}.example.com`]) }, ...Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`mx${i}.example.com`, { A: ['198.51.100.1'] }])) },
    record: 'v=spf1 mx -all',
    expect: 'permerror',
  },
  {
    name: 'ptr with 11 names, the 11th valid',
    zone: { [reverseName(IP4)]: { PTR: Array.from({ length: 11 }, (_, i) => `h${i}.example.com`) }, 'h10.example.com': { A: [IP4] } },
    record: 'v=spf1 ptr -all',
    expect: 'fail',
  },
  { name: 'exp on fail', zone: { 'e.example.com': { TXT: ['go away'] } }, record: 'v=spf1 -all exp=e.example.com', expect: 'fail' },
  { name: '%{h}', zone: { 'mx.example.org.helo.example.com': { A: ['127.0.0.1'] } }, record: 'v=spf1 exists:%{h}.helo.example.com -all', expect: 'pass' },
  { name: 'tab between terms', zone: {}, record: 'v=spf1 ip4:192.0.2.3\t-all', expect: 'permerror' },
  // Differences found, with the RFC text Postern follows.
  {
    name: 'zero part count',
    zone: { 'example.com.allow.example.net': { A: ['127.0.0.1'] } },
    record: 'v=spf1 exists:%{d0}.allow.example.net -all',
    expect: 'permerror',
    mailauth: { result: 'pass', why: 'RFC 7208 7.1: a DIGIT transformer MUST be nonzero' },
  },
  {
    name: 'duplicate exp',
    zone: {},
    record: 'v=spf1 -all exp=a.example.com exp=b.example.com',
    expect: 'permerror',
    mailauth: { result: 'fail', why: 'RFC 7208 6: exp MUST NOT appear more than once, or the result is permerror' },
  },
  {
    name: 'upper-case macro',
    zone: { 'x%2By.users.example.com': { A: ['127.0.0.1'] } },
    record: 'v=spf1 exists:%{L}.users.example.com -all',
    sender: 'x+y@example.com',
    expect: 'pass',
    mailauth: { result: 'fail', why: 'RFC 7208 7.3: upper-case macros are URL-escaped, so %{L} expands to "x%2By"' },
  },
  {
    name: 'validated name %{p}',
    zone: {
      [reverseName(IP4)]: { PTR: ['mx.example.org'] },
      'mx.example.org': { A: [IP4] },
      'mx.example.org.allow.example.net': { A: ['127.0.0.1'] },
    },
    record: 'v=spf1 exists:%{p}.allow.example.net -all',
    expect: 'pass',
    mailauth: { result: 'fail', why: 'RFC 7208 7.3: %{p} is the validated PTR name of the client, not the sender domain' },
  },
  {
    name: 'over-long target name',
    zone: { [`${'a'.repeat(60)}.${'a'.repeat(60)}.${'a'.repeat(60)}.example.com`]: { A: ['127.0.0.1'] } },
    record: 'v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.example.com -all',
    sender: `${'a'.repeat(60)}@example.com`,
    expect: 'pass',
    mailauth: { result: 'fail', why: 'RFC 7208 7.3: names over 253 characters lose labels from the left' },
  },
  {
    name: 'include whose record lookup gets SERVFAIL',
    zone: { 'inc.example.com': { TXT: 'SERVFAIL' } },
    record: 'v=spf1 include:inc.example.com -all',
    expect: 'temperror',
    mailauth: { result: 'fail', why: 'RFC 7208 4.4 and 5.2: a server failure on the included record is temperror, not a non-match' },
  },
  {
    name: 'macro letter c outside exp',
    zone: { '192.0.2.3.example.com': { A: ['127.0.0.1'] } },
    record: 'v=spf1 exists:%{c}.example.com -all',
    expect: 'permerror',
    mailauth: { result: 'pass', why: 'RFC 7208 7.3: c, r and t are allowed only in exp text' },
  },
  {
    name: 'void AAAA lookups for an IPv6 client',
    zone: hosts,
    record: 'v=spf1 a:h4.example.com a:other4.example.com a:mx.example.com ip6:2001:db8::/32 -all',
    ip: IP6,
    expect: 'permerror',
    mailauth: { result: 'pass', why: 'RFC 7208 4.6.4: a query answered with no records is a void lookup; mailauth also asks for A and does not count it' },
  },
  {
    name: 'ptr with a failing PTR lookup',
    zone: { [reverseName(IP4)]: { PTR: 'SERVFAIL' } },
    record: 'v=spf1 ptr -all',
    expect: 'fail',
    mailauth: { result: 'temperror', why: 'RFC 7208 5.5: if a DNS error occurs during the PTR lookup, the mechanism fails to match' },
  },
];

for (const c of cases) {
  test(`same verdict as mailauth: ${c.name}`, async () => {
    const zone: Zone = { ...c.zone };
    if (c.record) zone['example.com'] = { ...zone['example.com'], TXT: [c.record] };
    const ip = c.ip ?? IP4;
    const sender = c.sender ?? 'strong-bad@example.com';
    const ours = await checkHost({ ip, domain: 'example.com', sender, helo: 'mx.example.org', receivingHost: 'mx.postern.example' }, new FakeResolver(zone));
    const theirs = await mailauthSPF({ ip, sender, helo: 'mx.example.org', mta: 'mx.postern.example', resolver: nodeResolver(new FakeResolver(zone)) as never });
    assert.equal(ours.result, c.expect, `postern: ${ours.reason}`);
    assert.equal(theirs.status.result, c.mailauth?.result ?? c.expect, `mailauth: ${theirs.status.comment}`);
  });
}
