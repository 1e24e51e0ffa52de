import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHost } from '../../src/spf/evaluate.js';
import { FakeResolver, reverseName, type Zone } from './fakeresolver.js';
import { base, check, IP4, IP6, spf } from './helpers.js';

// RFC 7208 4.4, 4.5: record lookup and selection.

test('no TXT records at all gives none', async () => {
  const r = await check({});
  assert.equal(r.result, 'none');
  assert.equal(r.domain, 'email.example.com');
});

test('TXT records that are not SPF records give none', async () => {
  const r = await check({ 'email.example.com': { TXT: ['google-site-verification=abc', 'v=spf10 +all', ' v=spf1 +all'] } });
  assert.equal(r.result, 'none');
});

test('the SPF record is picked out from other TXT records', async () => {
  const r = await check({ 'email.example.com': { TXT: ['some other text', 'v=spf1 ip4:192.0.2.3 -all', 'v=DMARC1'] } });
  assert.equal(r.result, 'pass');
  assert.equal(r.mechanism, 'ip4:192.0.2.3');
});

test('two SPF records give permerror', async () => {
  const r = await check({ 'email.example.com': { TXT: ['v=spf1 +all', 'v=spf1 -all'] } });
  assert.equal(r.result, 'permerror');
  assert.match(r.reason!, /2 SPF records/);
});

test('the version is matched case-insensitively', async () => {
  assert.equal((await check(spf('V=SPF1 +ALL'))).result, 'pass');
});

test('a TXT lookup failure gives temperror, NXDOMAIN gives none', async () => {
  assert.equal((await check({ 'email.example.com': { TXT: 'SERVFAIL' } })).result, 'temperror');
  assert.equal((await check({ 'email.example.com': { TXT: 'TIMEOUT' } })).result, 'temperror');
  assert.equal((await check({ 'email.example.com': { TXT: 'REFUSED' } })).result, 'temperror');
  assert.equal((await check({ 'email.example.com': { TXT: 'NXDOMAIN' } })).result, 'none');
});

test('a malformed or single-label domain gives none without a lookup (RFC 7208 4.3)', async () => {
  for (const domain of ['localhost', 'a..example.com', `${'x'.repeat(64)}.example.com`, '192.0.2.1', '[192.0.2.1]', '']) {
    const resolver = new FakeResolver({});
    const r = await checkHost({ ...base, domain }, resolver);
    assert.equal(r.result, 'none', domain);
    assert.deepEqual(resolver.queries, [], domain);
  }
});

test('a domain with a trailing dot or upper case is the same domain', async () => {
  const r = await check(spf('v=spf1 ip4:192.0.2.3 -all'), { domain: 'Email.Example.COM.' });
  assert.equal(r.result, 'pass');
  assert.equal(r.domain, 'email.example.com');
});

test('an internationalized domain is looked up as A-labels', async () => {
  const r = await check({ 'xn--bcher-kva.example': { TXT: ['v=spf1 ip4:192.0.2.3 -all'] } }, { domain: 'bücher.example', sender: 'a@bücher.example' });
  assert.equal(r.result, 'pass');
  assert.equal(r.domain, 'xn--bcher-kva.example');
});

// RFC 7208 4.6: syntax errors anywhere give permerror, before any mechanism is tried.

test('a syntax error after a matching mechanism still gives permerror', async () => {
  for (const record of ['v=spf1 +all foo:bar', 'v=spf1 ip4:192.0.2.3 ip4:192.0.2', 'v=spf1 +all exists:%(ir).example.com', 'v=spf1 all redirect=a.example redirect=b.example']) {
    const r = await check(spf(record));
    assert.equal(r.result, 'permerror', record);
  }
});

test('terms may be separated by several spaces and followed by spaces', async () => {
  assert.equal((await check(spf('v=spf1   ip4:192.0.2.3    -all   '))).result, 'pass');
});

test('a tab between terms is a syntax error', async () => {
  assert.equal((await check(spf('v=spf1 ip4:192.0.2.3\t-all'))).result, 'permerror');
});

test('a record without terms is neutral', async () => {
  const r = await check(spf('v=spf1'));
  assert.equal(r.result, 'neutral');
  assert.equal(r.mechanism, undefined);
});

test('mechanism and modifier names are case-insensitive', async () => {
  const zone = spf('v=spf1 IP4:192.0.2.99 Include:Other.Example.Com REDIRECT=third.example.com', {
    'other.example.com': { TXT: ['v=spf1 -ALL'] },
    'third.example.com': { TXT: ['v=spf1 A:HOST.example.com ~all'] },
    'host.example.com': { A: ['192.0.2.3'] },
  });
  const r = await check(zone);
  assert.equal(r.result, 'pass');
  assert.equal(r.mechanism, 'a:HOST.example.com');
});

// RFC 7208 4.6.2, 5.1: qualifiers and "all".

test('each qualifier gives its result', async () => {
  const cases = { '+all': 'pass', all: 'pass', '-all': 'fail', '~all': 'softfail', '?all': 'neutral' } as const;
  for (const [term, result] of Object.entries(cases)) {
    const r = await check(spf(`v=spf1 ${term}`));
    assert.equal(r.result, result, term);
    assert.equal(r.mechanism, term.replace('+', ''));
  }
});

test('qualifiers apply to any mechanism', async () => {
  assert.equal((await check(spf('v=spf1 -ip4:192.0.2.3 +all'))).result, 'fail');
  assert.equal((await check(spf('v=spf1 ~ip4:192.0.2.0/24 +all'))).result, 'softfail');
  assert.equal((await check(spf('v=spf1 ?ip4:192.0.2.3 -all'))).result, 'neutral');
});

test('no matching mechanism and no redirect is neutral', async () => {
  const r = await check(spf('v=spf1 ip4:198.51.100.1'));
  assert.equal(r.result, 'neutral');
  assert.equal(r.mechanism, undefined);
});

test('the first matching mechanism wins', async () => {
  const r = await check(spf('v=spf1 ~ip4:192.0.2.0/24 -ip4:192.0.2.3 +all'));
  assert.equal(r.result, 'softfail');
  assert.equal(r.mechanism, '~ip4:192.0.2.0/24');
});

// RFC 7208 5.6: ip4 and ip6.

test('ip4 with and without CIDR lengths', async () => {
  const cases: [string, string][] = [
    ['ip4:192.0.2.3', 'pass'],
    ['ip4:192.0.2.4', 'neutral'],
    ['ip4:192.0.2.0/24', 'pass'],
    ['ip4:192.0.2.0/31', 'neutral'],
    ['ip4:192.0.2.2/31', 'pass'],
    ['ip4:0.0.0.0/0', 'pass'],
    ['ip4:192.0.3.0/23', 'pass'],
    ['ip4:192.0.4.0/23', 'neutral'],
    ['ip4:192.0.2.3/32', 'pass'],
  ];
  for (const [term, result] of cases) assert.equal((await check(spf(`v=spf1 ${term}`))).result, result, term);
});

test('ip6 with and without CIDR lengths', async () => {
  const cases: [string, string][] = [
    ['ip6:2001:db8::cb01', 'pass'],
    ['ip6:2001:DB8:0:0:0:0:0:CB01', 'pass'],
    ['ip6:2001:db8::cb02', 'neutral'],
    ['ip6:2001:db8::/32', 'pass'],
    ['ip6:2001:db9::/32', 'neutral'],
    ['ip6:2001:db8::cb00/127', 'pass'],
    ['ip6:::/0', 'pass'],
  ];
  for (const [term, result] of cases) assert.equal((await check(spf(`v=spf1 ${term}`), { ip: IP6 })).result, result, term);
});

test('ip4 never matches an IPv6 client and ip6 never matches an IPv4 client', async () => {
  assert.equal((await check(spf('v=spf1 ip4:0.0.0.0/0'), { ip: IP6 })).result, 'neutral');
  assert.equal((await check(spf('v=spf1 ip6:::/0'))).result, 'neutral');
});

test('an IPv4-mapped IPv6 client is treated as IPv4 (RFC 7208 5)', async () => {
  assert.equal((await check(spf('v=spf1 ip4:192.0.2.0/24 -all'), { ip: '::ffff:192.0.2.3' })).result, 'pass');
  assert.equal((await check(spf('v=spf1 ip6:::ffff:192.0.2.0/120 -all'), { ip: '::ffff:192.0.2.3' })).result, 'fail');
  const zone = spf('v=spf1 a:h.example.com -all', { 'h.example.com': { A: ['192.0.2.3'], AAAA: ['::ffff:192.0.2.3'] } });
  assert.equal((await check(zone, { ip: '::ffff:192.0.2.3' })).result, 'pass');
});

// RFC 7208 5.3: a.

test('a without domain-spec looks up the current domain', async () => {
  const zone = spf('v=spf1 a -all', { 'email.example.com': { TXT: ['v=spf1 a -all'], A: ['192.0.2.3'] } });
  const r = await check(zone);
  assert.equal(r.result, 'pass');
  assert.equal(r.lookups, 1);
});

test('a with a domain-spec and CIDR lengths', async () => {
  const hosts = { 'h.example.com': { A: ['192.0.2.200'], AAAA: ['2001:db8::1'] } };
  const cases: [string, string, string][] = [
    ['a:h.example.com', IP4, 'fail'],
    ['a:h.example.com/24', IP4, 'pass'],
    ['a:h.example.com/24//64', IP4, 'pass'],
    ['a:h.example.com//64', IP4, 'fail'],
    ['a:h.example.com//64', IP6, 'pass'],
    ['a:h.example.com/24', IP6, 'fail'],
    ['a:h.example.com/32//112', IP6, 'pass'],
    ['a:h.example.com//120', IP6, 'fail'],
  ];
  for (const [term, ip, result] of cases) {
    const r = await check(spf(`v=spf1 ${term} -all`, hosts), { ip });
    assert.equal(r.result, result, `${term} ${ip}`);
  }
});

test('a uses AAAA records for an IPv6 client and A records for IPv4', async () => {
  const zone = spf('v=spf1 a:h.example.com -all', { 'h.example.com': { A: ['192.0.2.3'], AAAA: ['2001:db8::cb01'] } });
  assert.equal((await check(zone)).result, 'pass');
  assert.equal((await check(zone, { ip: IP6 })).result, 'pass');
  const v4only = spf('v=spf1 a:h.example.com -all', { 'h.example.com': { A: [IP4] } });
  assert.equal((await check(v4only, { ip: IP6 })).result, 'fail');
});

test('a DNS failure in a mechanism gives temperror (RFC 7208 5)', async () => {
  assert.equal((await check(spf('v=spf1 a:h.example.com -all', { 'h.example.com': { A: 'SERVFAIL' } }))).result, 'temperror');
  assert.equal((await check(spf('v=spf1 a:h.example.com -all', { 'h.example.com': { A: 'TIMEOUT' } }))).result, 'temperror');
});

test('a name that does not exist is no match, not an error', async () => {
  const r = await check(spf('v=spf1 a:nothing.example.com -all'));
  assert.equal(r.result, 'fail');
  assert.equal(r.mechanism, '-all');
});

// RFC 7208 5.4: mx.

test('mx matches an address of any MX host, with CIDR lengths', async () => {
  const zone = spf('v=spf1 mx -all', {
    'email.example.com': { TXT: ['v=spf1 mx -all'], MX: [[10, 'mx1.example.com'], [20, 'mx2.example.com']] },
    'mx1.example.com': { A: ['198.51.100.1'] },
    'mx2.example.com': { A: ['192.0.2.3'] },
  });
  const r = await check(zone);
  assert.equal(r.result, 'pass');
  assert.equal(r.mechanism, 'mx');

  const cidr = spf('v=spf1 mx:m.example.com/30 -all', { 'm.example.com': { MX: [[0, 'mx.example.com']] }, 'mx.example.com': { A: ['192.0.2.1'] } });
  assert.equal((await check(cidr)).result, 'pass');
  const cidr6 = spf('v=spf1 mx:m.example.com//126 -all', { 'm.example.com': { MX: [[0, 'mx.example.com']] }, 'mx.example.com': { AAAA: ['2001:db8::cb03'] } });
  assert.equal((await check(cidr6, { ip: IP6 })).result, 'pass');
});

test('mx does not fall back to the address of the domain itself (RFC 7208 5.4)', async () => {
  const zone = spf('v=spf1 mx -all', { 'email.example.com': { TXT: ['v=spf1 mx -all'], A: ['192.0.2.3'] } });
  assert.equal((await check(zone)).result, 'fail');
});

test('a null MX names no host', async () => {
  const zone = spf('v=spf1 mx -all', { 'email.example.com': { TXT: ['v=spf1 mx -all'], MX: [[0, '']] } });
  assert.equal((await check(zone)).result, 'fail');
});

test('mx with more than 10 hosts: permerror only when the 11th would be looked up (RFC 7208 4.6.4)', async () => {
  const hosts = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`mx${i}.example.com`, { A: [`198.51.100.${i}`] }]));
  const mx: [number, string][] = Array.from({ length: 12 }, (_, i) => [i, `mx${i}.example.com`]);
  const zone = (ip: string) => ({ ...spf('v=spf1 mx -all', hosts), 'email.example.com': { TXT: ['v=spf1 mx -all'], MX: mx }, [`mx2.example.com`]: { A: [ip] } });
  assert.equal((await check(zone('192.0.2.3'))).result, 'pass');
  const r = await check(zone('198.51.100.2'));
  assert.equal(r.result, 'permerror');
  const ten = { ...spf('v=spf1 mx -all', hosts), 'email.example.com': { TXT: ['v=spf1 mx -all'], MX: mx.slice(0, 10) } };
  assert.equal((await check(ten)).result, 'fail');
});

test('mx hosts without addresses are skipped and are not void lookups', async () => {
  const zone = spf('v=spf1 mx -all', {
    'email.example.com': { TXT: ['v=spf1 mx -all'], MX: [[1, 'a.example.com'], [2, 'b.example.com'], [3, 'c.example.com'], [4, 'd.example.com']] },
    'd.example.com': { A: ['192.0.2.3'] },
  });
  assert.equal((await check(zone)).result, 'pass');
});

test('a failed address lookup of an MX host gives temperror', async () => {
  const zone = spf('v=spf1 mx -all', { 'email.example.com': { TXT: ['v=spf1 mx -all'], MX: [[1, 'a.example.com']] }, 'a.example.com': { A: 'SERVFAIL' } });
  assert.equal((await check(zone)).result, 'temperror');
});

// RFC 7208 5.5: ptr.

const ptrZone = (names: string[], extra = {}) => ({
  [reverseName(IP4)]: { PTR: names },
  [reverseName(IP6)]: { PTR: names },
  ...extra,
});

test('ptr matches a validated name under the target domain', async () => {
  const zone = spf('v=spf1 ptr -all', ptrZone(['mail.email.example.com'], { 'mail.email.example.com': { A: [IP4], AAAA: [IP6] } }));
  assert.equal((await check(zone)).result, 'pass');
  assert.equal((await check(zone, { ip: IP6 })).result, 'pass');
  const named = spf('v=spf1 ptr:example.org -all', ptrZone(['mx.example.org'], { 'mx.example.org': { A: [IP4] } }));
  assert.equal((await check(named)).result, 'pass');
  const exact = spf('v=spf1 ptr:mx.example.org -all', ptrZone(['MX.Example.org.'], { 'mx.example.org': { A: [IP4] } }));
  assert.equal((await check(exact)).result, 'pass');
});

test('ptr does not match a name that does not resolve back to the client', async () => {
  const zone = spf('v=spf1 ptr -all', ptrZone(['mail.email.example.com'], { 'mail.email.example.com': { A: ['192.0.2.99'] } }));
  assert.equal((await check(zone)).result, 'fail');
});

test('ptr does not match a name outside the target domain, nor a lookalike suffix', async () => {
  const zone = spf('v=spf1 ptr -all', ptrZone(['mail.badexample.com', 'notemail.example.com'], {
    'mail.badexample.com': { A: [IP4] },
    'notemail.example.com': { A: [IP4] },
  }));
  assert.equal((await check(zone)).result, 'fail');
});

test('ptr: a failed PTR lookup is no match, not temperror', async () => {
  const zone = spf('v=spf1 ptr -all', { [reverseName(IP4)]: { PTR: 'SERVFAIL' } });
  assert.equal((await check(zone)).result, 'fail');
});

test('ptr: a name whose address lookup fails is skipped', async () => {
  const zone = spf('v=spf1 ptr -all', ptrZone(['a.email.example.com', 'b.email.example.com'], {
    'a.email.example.com': { A: 'SERVFAIL' },
    'b.email.example.com': { A: [IP4] },
  }));
  assert.equal((await check(zone)).result, 'pass');
});

test('ptr: only the first 10 PTR names are considered (RFC 7208 4.6.4)', async () => {
  const names = Array.from({ length: 11 }, (_, i) => `h${i}.email.example.com`);
  const zone = spf('v=spf1 ptr -all', ptrZone(names, { 'h10.email.example.com': { A: [IP4] } }));
  assert.equal((await check(zone)).result, 'fail');
  const zone9 = spf('v=spf1 ptr -all', ptrZone(names, { 'h9.email.example.com': { A: [IP4] } }));
  assert.equal((await check(zone9)).result, 'pass');
});

// RFC 7208 5.7: exists.

test('exists matches when the name has an A record, for IPv6 clients too', async () => {
  const zone = spf('v=spf1 exists:%{ir}.%{v}.list.example.com -all', {
    '3.2.0.192.in-addr.list.example.com': { A: ['127.0.0.2'] },
    [`${reverseName(IP6).replace(/\.ip6\.arpa$/, '')}.ip6.list.example.com`]: { A: ['127.0.0.2'] },
  });
  assert.equal((await check(zone)).result, 'pass');
  assert.equal((await check(zone, { ip: IP6 })).result, 'pass');
  assert.equal((await check(zone, { ip: '192.0.2.4' })).result, 'fail');
});

test('exists uses A even for an IPv6 client', async () => {
  const zone = spf('v=spf1 exists:x.example.com -all', { 'x.example.com': { AAAA: ['2001:db8::1'] } });
  assert.equal((await check(zone, { ip: IP6 })).result, 'fail');
});

// RFC 7208 5.2: include.

test('include matches only when the included domain passes', async () => {
  const results: [string, string][] = [
    ['+all', 'pass'],
    ['-all', 'fail'],
    ['~all', 'fail'],
    ['?all', 'fail'],
    ['ip4:198.51.100.1', 'fail'],
  ];
  for (const [included, expected] of results) {
    const r = await check(spf('v=spf1 include:inc.example.com -all', { 'inc.example.com': { TXT: [`v=spf1 ${included}`] } }));
    assert.equal(r.result, expected, included);
    if (expected === 'pass') assert.equal(r.mechanism, 'include:inc.example.com');
  }
});

test('the include qualifier applies to a pass of the included domain', async () => {
  const r = await check(spf('v=spf1 ~include:inc.example.com +all', { 'inc.example.com': { TXT: ['v=spf1 ip4:192.0.2.0/24'] } }));
  assert.equal(r.result, 'softfail');
});

test('include of a domain without an SPF record gives permerror', async () => {
  assert.equal((await check(spf('v=spf1 include:none.example.com +all'))).result, 'permerror');
  const txt = spf('v=spf1 include:none.example.com +all', { 'none.example.com': { TXT: ['not spf'] } });
  assert.equal((await check(txt)).result, 'permerror');
});

test('include with temperror or permerror in the included domain propagates them', async () => {
  const temp = spf('v=spf1 include:inc.example.com +all', { 'inc.example.com': { TXT: 'SERVFAIL' } });
  assert.equal((await check(temp)).result, 'temperror');
  const perm = spf('v=spf1 include:inc.example.com +all', { 'inc.example.com': { TXT: ['v=spf1 foo'] } });
  assert.equal((await check(perm)).result, 'permerror');
  const deep = spf('v=spf1 include:inc.example.com +all', {
    'inc.example.com': { TXT: ['v=spf1 a:h.example.com'] },
    'h.example.com': { A: 'TIMEOUT' },
  });
  assert.equal((await check(deep)).result, 'temperror');
});

test('include evaluates macros against the included domain', async () => {
  const zone = spf('v=spf1 include:inc.example.com -all', {
    'inc.example.com': { TXT: ['v=spf1 exists:%{d}.%{o}.check.example.net'] },
    'inc.example.com.email.example.com.check.example.net': { A: ['127.0.0.1'] },
  });
  assert.equal((await check(zone)).result, 'pass');
});

// RFC 7208 6.1: redirect.

test('redirect takes the result of the target domain', async () => {
  const zone = spf('v=spf1 redirect=_spf.example.com', { '_spf.example.com': { TXT: ['v=spf1 ip4:192.0.2.0/24 -all'] } });
  const r = await check(zone);
  assert.equal(r.result, 'pass');
  assert.equal(r.mechanism, 'ip4:192.0.2.0/24');
  assert.equal((await check(zone, { ip: '198.51.100.1' })).result, 'fail');
});

test('redirect to a domain without an SPF record gives permerror', async () => {
  assert.equal((await check(spf('v=spf1 redirect=nothing.example.com'))).result, 'permerror');
});

test('redirect is used only after all mechanisms fail to match, wherever it stands', async () => {
  const zone = spf('v=spf1 redirect=_spf.example.com ip4:192.0.2.3', { '_spf.example.com': { TXT: ['v=spf1 -all'] } });
  assert.equal((await check(zone)).result, 'pass');
  assert.equal((await check(zone, { ip: '198.51.100.1' })).result, 'fail');
});

test('redirect is ignored when the record has "all"', async () => {
  const resolver = new FakeResolver(spf('v=spf1 ?all redirect=_spf.example.com', { '_spf.example.com': { TXT: ['v=spf1 +all'] } }));
  const r = await checkHost(base, resolver);
  assert.equal(r.result, 'neutral');
  assert.equal(r.lookups, 0);
});

test('redirect changes %{d} to the target domain', async () => {
  const zone = spf('v=spf1 redirect=_spf.example.com', {
    '_spf.example.com': { TXT: ['v=spf1 a:%{d} -all'], A: [IP4] },
  });
  assert.equal((await check(zone)).result, 'pass');
});

// RFC 7208 4.6.4: limits.

test('ten DNS-querying terms are allowed, the eleventh gives permerror', async () => {
  const names = (n: number) => Array.from({ length: n }, (_, i) => `a:h${i}.example.com`).join(' ');
  const hosts = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`h${i}.example.com`, { A: ['198.51.100.1'] }]));
  const ten = await check(spf(`v=spf1 ${names(10)} -all`, hosts));
  assert.equal(ten.result, 'fail');
  assert.equal(ten.lookups, 10);
  const eleven = await check(spf(`v=spf1 ${names(11)} -all`, hosts));
  assert.equal(eleven.result, 'permerror');
  assert.match(eleven.reason!, /more than 10/);
});

test('the lookup limit counts include and redirect across records', async () => {
  const zone = spf('v=spf1 include:i1.example.com redirect=r.example.com', {
    'i1.example.com': { TXT: ['v=spf1 a:h.example.com mx:h.example.com ?exists:h.example.com'] },
    'r.example.com': { TXT: ['v=spf1 include:i2.example.com -all'] },
    'i2.example.com': { TXT: ['v=spf1 a:h.example.com a:h.example.com a:h.example.com a:h.example.com ptr -all'] },
    'h.example.com': { A: ['198.51.100.1'], MX: [[0, 'h.example.com']] },
  });
  // include, a, mx, exists, redirect, include, a x4 = 10; the ptr would be the eleventh.
  const r = await check(zone);
  assert.equal(r.result, 'permerror');
  assert.equal(r.lookups, 10);
});

test('terms after a match are not evaluated, so they do not count', async () => {
  const many = Array.from({ length: 20 }, (_, i) => `a:h${i}.example.com`).join(' ');
  const r = await check(spf(`v=spf1 ip4:192.0.2.3 ${many} -all`));
  assert.equal(r.result, 'pass');
  assert.equal(r.lookups, 0);
});

test('ip4, ip6 and all do not count against the limit', async () => {
  const many = Array.from({ length: 30 }, (_, i) => `ip4:198.51.100.${i} ip6:2001:db8::${i}`).join(' ');
  assert.equal((await check(spf(`v=spf1 ${many} -all`))).result, 'fail');
});

test('an include loop ends in permerror', async () => {
  const zone = {
    'email.example.com': { TXT: ['v=spf1 include:loop.example.com -all'] },
    'loop.example.com': { TXT: ['v=spf1 include:email.example.com'] },
  };
  const resolver = new FakeResolver(zone);
  const r = await checkHost(base, resolver);
  assert.equal(r.result, 'permerror');
  assert.ok(resolver.queries.length <= 11);
});

test('a redirect loop ends in permerror', async () => {
  const r = await check(spf('v=spf1 redirect=email.example.com'));
  assert.equal(r.result, 'permerror');
});

test('two void lookups are allowed, the third gives permerror', async () => {
  const two = await check(spf('v=spf1 a:n1.example.com exists:n2.example.com ip4:192.0.2.3'));
  assert.equal(two.result, 'pass');
  const three = await check(spf('v=spf1 a:n1.example.com mx:n2.example.com ptr:n3.example.com ip4:192.0.2.3'));
  assert.equal(three.result, 'permerror');
  assert.match(three.reason!, /void/);
  const nodata = await check(spf('v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com ip4:192.0.2.3', {
    'n1.example.com': { TXT: ['x'] },
    'n2.example.com': { A: [] },
    'n3.example.com': { MX: [[1, 'x.example.com']] },
  }));
  assert.equal(nodata.result, 'permerror');
});

test('the void lookup limit can be configured', async () => {
  const r = await check(spf('v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com ip4:192.0.2.3'), {}, { maxVoidLookups: 3 });
  assert.equal(r.result, 'pass');
});

test('an AAAA query without answers for an IPv6 client is a void lookup', async () => {
  const hosts = { 'h1.example.com': { A: ['198.51.100.1'] }, 'h2.example.com': { A: ['198.51.100.2'] }, 'h3.example.com': { A: ['198.51.100.3'] } };
  const r = await check(spf('v=spf1 a:h1.example.com a:h2.example.com a:h3.example.com ip6:2001:db8::/32', hosts), { ip: IP6 });
  assert.equal(r.result, 'permerror');
});

test('a resolver that never answers gives temperror once the time limit passes', async () => {
  const started = Date.now();
  const r = await check(spf('v=spf1 a:slow.example.com -all', { 'slow.example.com': { A: 'HANG' } }), {}, { timeoutMs: 100 });
  assert.equal(r.result, 'temperror');
  assert.ok(Date.now() - started < 5000);
});

test('a huge record with many macros is bounded and gives permerror', async () => {
  const spec = '%{s}'.repeat(3000) + '.example.com';
  const r = await check(spf(`v=spf1 exists:${spec} -all`), { sender: `${'x'.repeat(200)}@email.example.com` });
  assert.equal(r.result, 'permerror');
});

// RFC 7208 4.8, 7.3: target names.

test('an over-long target name loses labels from the left', async () => {
  const local = 'a'.repeat(60);
  const expected = `${local}.${local}.${local}.example.com`;
  const zone = spf('v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.example.com -all', { [expected]: { A: ['127.0.0.1'] } });
  assert.equal((await check(zone, { sender: `${local}@email.example.com` })).result, 'pass');
});

test('a target name with a label over 63 characters gives permerror', async () => {
  const r = await check(spf('v=spf1 exists:%{l}.example.com -all'), { sender: `${'a'.repeat(64)}@email.example.com` });
  assert.equal(r.result, 'permerror');
});

test('a trailing dot in a domain-spec is allowed', async () => {
  const zone = spf('v=spf1 a:h.example.com. -all', { 'h.example.com': { A: [IP4] } });
  assert.equal((await check(zone)).result, 'pass');
});

// RFC 7208 6.2: exp.

test('exp gives an explanation for fail, expanded with macros', async () => {
  const zone = spf('v=spf1 -all exp=explain.example.com', { 'explain.example.com': { TXT: ['%{i} is not one of %{d}\'s designated mail servers.'] } });
  const r = await check(zone);
  assert.equal(r.result, 'fail');
  assert.equal(r.explanation, "192.0.2.3 is not one of email.example.com's designated mail servers.");
});

test('exp is not fetched unless the result is fail', async () => {
  for (const q of ['~', '?', '+']) {
    const resolver = new FakeResolver(spf(`v=spf1 ${q}all exp=explain.example.com`, { 'explain.example.com': { TXT: ['text'] } }));
    const r = await checkHost(base, resolver);
    assert.equal(r.explanation, undefined, q);
    assert.ok(!resolver.queries.includes('TXT explain.example.com'), q);
  }
});

test('a broken exp leaves fail without explanation', async () => {
  const cases: Zone[] = [{}, { 'explain.example.com': { TXT: ['one', 'two'] } }, { 'explain.example.com': { TXT: ['bad %x macro'] } }, { 'explain.example.com': { TXT: 'SERVFAIL' } }];
  for (const extra of cases) {
    const r = await check(spf('v=spf1 -all exp=explain.example.com', extra));
    assert.equal(r.result, 'fail');
    assert.equal(r.explanation, undefined);
  }
});

test('exp of an included record is not used; exp of the including record is', async () => {
  const zone = spf('v=spf1 include:inc.example.com -all exp=mine.example.com', {
    'inc.example.com': { TXT: ['v=spf1 -all exp=theirs.example.com'] },
    'mine.example.com': { TXT: ['mine'] },
    'theirs.example.com': { TXT: ['theirs'] },
  });
  assert.equal((await check(zone)).explanation, 'mine');
});

test('with redirect, exp of the target is used and exp of the original is not', async () => {
  const extra = { 'orig.example.com': { TXT: ['original'] }, 'target.example.com': { TXT: ['target'] } };
  const withExp = spf('v=spf1 redirect=r.example.com exp=orig.example.com', { ...extra, 'r.example.com': { TXT: ['v=spf1 -all exp=target.example.com'] } });
  assert.equal((await check(withExp)).explanation, 'target');
  const without = spf('v=spf1 redirect=r.example.com exp=orig.example.com', { ...extra, 'r.example.com': { TXT: ['v=spf1 -all'] } });
  const r = await check(without);
  assert.equal(r.result, 'fail');
  assert.equal(r.explanation, undefined);
});

test('the exp lookup does not count against the lookup limit', async () => {
  const names = Array.from({ length: 10 }, (_, i) => `a:h${i}.example.com`).join(' ');
  const hosts = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`h${i}.example.com`, { A: ['198.51.100.1'] }]));
  const r = await check(spf(`v=spf1 ${names} -all exp=e.example.com`, { ...hosts, 'e.example.com': { TXT: ['no'] } }));
  assert.equal(r.result, 'fail');
  assert.equal(r.explanation, 'no');
});

// Sender handling (RFC 7208 4.3).

test('a sender without local-part is postmaster', async () => {
  const zone = spf('v=spf1 exists:%{l}.users.example.com -all', { 'postmaster.users.example.com': { A: ['127.0.0.1'] } });
  assert.equal((await check(zone, { sender: '@email.example.com' })).result, 'pass');
  assert.equal((await check(zone, { sender: 'email.example.com' })).result, 'pass');
});

// DNSSEC status.

test('authentic only when every answer was validated', async () => {
  const zone = spf('v=spf1 a:h.example.com -all', { 'h.example.com': { A: [IP4] } });
  assert.equal((await checkHost(base, new FakeResolver(zone, true))).authentic, true);
  assert.equal((await checkHost(base, new FakeResolver(zone, false))).authentic, false);
  const mixed = spf('v=spf1 a:h.example.com -all', { 'h.example.com': { A: [IP4], authentic: false } });
  assert.equal((await checkHost(base, new FakeResolver(mixed, true))).authentic, false);
});

test('an invalid client address is a programming error', async () => {
  await assert.rejects(checkHost({ ...base, ip: 'not-an-ip' }, new FakeResolver({})), TypeError);
});

test('arbitrary records always give one of the seven results', async () => {
  let seed = 11;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const terms = ['a', 'mx', 'ptr', 'a:%{d}', 'exists:%{ir}.x.example.com', 'include:email.example.com', 'redirect=email.example.com', 'a:h.example.com/24', 'mx//64', 'ip4:192.0.2.0/24', '-all', 'exp=%{l}.example.com', '%{p}', 'include:%{o}'];
  const allowed = ['none', 'neutral', 'pass', 'fail', 'softfail', 'temperror', 'permerror'];
  for (let i = 0; i < 300; i++) {
    const record = ['v=spf1', ...Array.from({ length: rand(6) + 1 }, () => terms[rand(terms.length)])].join(' ');
    const zone = spf(record, { 'h.example.com': { A: [IP4] }, [reverseName(IP4)]: { PTR: ['h.example.com'] } });
    zone['email.example.com']!.MX = [[0, 'h.example.com']];
    const r = await check(zone);
    assert.ok(allowed.includes(r.result), record);
    assert.ok(r.lookups <= 10, record);
  }
});
