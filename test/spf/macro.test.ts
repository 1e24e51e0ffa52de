// Macro expansion (RFC 7208 7), observed through explanations (exp=) and through the names that
// exists: looks up.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CheckHostParams } from '../../src/spf/evaluate.js';
import { reverseName, type Zone } from './fakeresolver.js';
import { check, IP4, IP6, spf } from './helpers.js';

/** The explanation a fail gives when the exp= TXT record is `text`. */
async function explain(text: string, params: Partial<CheckHostParams> = {}, extra: Zone = {}, now?: () => number) {
  const zone = spf('v=spf1 -all exp=explain.example.com', { 'explain.example.com': { TXT: [text] }, ...extra });
  const r = await check(zone, params, now ? { now } : undefined);
  assert.equal(r.result, 'fail');
  return r.explanation;
}

/** The SPF result when exists: looks up `spec` and only `name` has an A record. */
async function exists(spec: string, name: string, params: Partial<CheckHostParams> = {}) {
  return (await check(spf(`v=spf1 exists:${spec} -all`, { [name]: { A: ['127.0.0.2'] } }), params)).result;
}

// RFC 7208 7.4: sender strong-bad@email.example.com, client 192.0.2.3 or 2001:db8::cb01.
const letters: [string, string][] = [
  ['%{s}', 'strong-bad@email.example.com'],
  ['%{o}', 'email.example.com'],
  ['%{d}', 'email.example.com'],
  ['%{d4}', 'email.example.com'],
  ['%{d3}', 'email.example.com'],
  ['%{d2}', 'example.com'],
  ['%{d1}', 'com'],
  ['%{dr}', 'com.example.email'],
  ['%{d2r}', 'example.email'],
  ['%{l}', 'strong-bad'],
  ['%{l-}', 'strong.bad'],
  ['%{lr}', 'strong-bad'],
  ['%{lr-}', 'bad.strong'],
  ['%{l1r-}', 'strong'],
];

const strings: [string, string][] = [
  ['%{ir}.%{v}._spf.%{d2}', '3.2.0.192.in-addr._spf.example.com'],
  ['%{lr-}.lp._spf.%{d2}', 'bad.strong.lp._spf.example.com'],
  ['%{lr-}.lp.%{ir}.%{v}._spf.%{d2}', 'bad.strong.lp.3.2.0.192.in-addr._spf.example.com'],
  ['%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}', '3.2.0.192.in-addr.strong.lp._spf.example.com'],
  ['%{d2}.trusted-domains.example.net', 'example.com.trusted-domains.example.net'],
];

const ipv6Example = '1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com';

test('RFC 7208 7.4 macro letter examples', async () => {
  for (const [macro, expansion] of letters) assert.equal(await explain(macro), expansion, macro);
});

test('RFC 7208 7.4 macro-string examples, as text and as looked-up names', async () => {
  for (const [macro, expansion] of strings) {
    assert.equal(await explain(macro), expansion, macro);
    assert.equal(await exists(macro, expansion), 'pass', macro);
    assert.equal(await exists(macro, `x.${expansion}`), 'fail', macro);
  }
});

test('RFC 7208 7.4 IPv6 example', async () => {
  assert.equal(await explain('%{ir}.%{v}._spf.%{d2}', { ip: IP6 }), ipv6Example);
  assert.equal(await exists('%{ir}.%{v}._spf.%{d2}', ipv6Example, { ip: IP6 }), 'pass');
});

test('%{i} of IPv6 is 32 dotted nibbles; an IPv4-mapped client expands as IPv4', async () => {
  assert.equal(await explain('%{i}', { ip: '2001:db8::1' }), '2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1');
  assert.equal(await explain('%{i} %{v} %{c}', { ip: '::ffff:192.0.2.3' }), '192.0.2.3 in-addr 192.0.2.3');
});

test('%{c} is the readable client address (RFC 5952 for IPv6)', async () => {
  assert.equal(await explain('%{c}'), '192.0.2.3');
  assert.equal(await explain('%{c}', { ip: '2001:0DB8:0000:0000:0000:0000:0000:CB01' }), IP6);
  assert.equal(await explain('%{c}', { ip: '2001:db8:0:0:1:0:0:1' }), '2001:db8::1:0:0:1');
  assert.equal(await explain('%{c}', { ip: '2001:db8:0:1:1:1:1:1' }), '2001:db8:0:1:1:1:1:1');
  assert.equal(await explain('%{c}', { ip: '::' }), '::');
});

test('%{v}, %{h}, %{r} and %{t}', async () => {
  assert.equal(await explain('%{v}'), 'in-addr');
  assert.equal(await explain('%{v}', { ip: IP6 }), 'ip6');
  assert.equal(await explain('%{h}'), 'mx.example.org');
  assert.equal(await explain('%{h2}', { helo: 'a.b.example.net' }), 'example.net');
  assert.equal(await explain('%{r}'), 'mx.postern.example');
  assert.equal(await explain('%{r}', { receivingHost: '' }), 'unknown');
  assert.equal(await explain('%{t}', {}, {}, () => 1_700_000_000_999), '1700000000');
});

test('%{p} is the validated client name: the domain, else a subdomain, else any', async () => {
  const ptr = (names: string[]): Zone => ({
    [reverseName(IP4)]: { PTR: names },
    ...Object.fromEntries(names.map((n) => [n, { A: [IP4] }])),
  });
  // RFC 7208 7.4: "The PTR domain name of the client IP is mx.example.org."
  assert.equal(await explain('%{p}', {}, ptr(['mx.example.org'])), 'mx.example.org');
  assert.equal(await explain('%{p}', {}, ptr(['mx.example.org', 'mail.email.example.com'])), 'mail.email.example.com');
  const own = ptr(['mx.example.org', 'a.email.example.com', 'email.example.com']);
  own['email.example.com'] = { ...own['email.example.com'], TXT: ['v=spf1 -all exp=explain.example.com'] };
  assert.equal(await explain('%{p}', {}, own), 'email.example.com');
  assert.equal(await explain('%{p}', {}, { [reverseName(IP4)]: { PTR: ['forged.email.example.com'] } }), 'unknown');
  assert.equal(await explain('%{p}'), 'unknown');
  assert.equal(await explain('%{p}', {}, { [reverseName(IP4)]: { PTR: 'SERVFAIL' } }), 'unknown');
});

test('%{p} in a domain-spec', async () => {
  const zone = spf('v=spf1 exists:%{p}.allowed.example.net -all', {
    [reverseName(IP4)]: { PTR: ['mx.example.org'] },
    'mx.example.org': { A: [IP4] },
    'mx.example.org.allowed.example.net': { A: ['127.0.0.2'] },
  });
  assert.equal((await check(zone)).result, 'pass');
});

test('upper-case macros are URL-escaped (RFC 7208 7.3)', async () => {
  assert.equal(await explain('%{S}'), 'strong-bad%40email.example.com');
  assert.equal(await explain('%{L}', { sender: 'a+b/c=d~e_f.g@email.example.com' }), 'a%2Bb%2Fc%3Dd~e_f.g');
  assert.equal(await explain('%{L}', { sender: 'jos\u00e9@email.example.com' }), 'jos%C3%A9');
  assert.equal(await explain('%{L1R+}', { sender: 'a+b@email.example.com' }), 'a');
  assert.equal(await exists('%{L}.users.example.com', 'x%2By.users.example.com', { sender: 'x+y@email.example.com' }), 'pass');
});

test('the escapes %%, %_ and %- (RFC 7208 7.1)', async () => {
  assert.equal(await explain('100%% %_ %-'), '100%   %20');
  assert.equal(await exists('a%%b.example.com', 'a%b.example.com'), 'pass');
});

test('every delimiter splits, and parts are joined with dots', async () => {
  const sender = 'a.b-c+d,e/f_g=h@email.example.com';
  assert.equal(await explain('%{l}', { sender }), 'a.b-c+d,e/f_g=h');
  assert.equal(await explain('%{l-+,/_=}', { sender }), 'a.b.c.d.e.f.g.h');
  assert.equal(await explain('%{l.-+,/_=}', { sender }), 'a.b.c.d.e.f.g.h');
  assert.equal(await explain('%{lr-+,/_=}', { sender }), 'h.g.f.e.d.c.a.b');
  assert.equal(await explain('%{l2r-+,/_=}', { sender }), 'c.a.b');
  assert.equal(await explain('%{lr+}', { sender }), 'd,e/f_g=h.a.b-c');
  assert.equal(await explain('%{l--}', { sender: 'x-y@email.example.com' }), 'x.y');
});

test('a part count larger than the number of parts keeps them all', async () => {
  assert.equal(await explain('%{d127}'), 'email.example.com');
  assert.equal(await explain('%{d99999999999999999999}'), 'email.example.com');
  assert.equal(await explain('%{i127r}'), '3.2.0.192');
});

test('%{d} follows include and redirect, %{o} and %{s} do not', async () => {
  const zone = spf('v=spf1 redirect=next.example.net', { 'next.example.net': { TXT: ['v=spf1 -all exp=explain.example.net'] }, 'explain.example.net': { TXT: ['%{d} %{o} %{s}'] } });
  assert.equal((await check(zone)).explanation, 'next.example.net email.example.com strong-bad@email.example.com');
});

test('%{s}, %{l} and %{o} for an empty local-part use postmaster', async () => {
  assert.equal(await explain('%{s} %{l} %{o}', { sender: '@email.example.com' }), 'postmaster@email.example.com postmaster email.example.com');
});

test('the HELO identity expands with postmaster@<helo>', async () => {
  const zone = { 'mx.example.org': { TXT: ['v=spf1 -all exp=e.example.org'] }, 'e.example.org': { TXT: ['%{s} %{d} %{h}'] } };
  const r = await check(zone, { domain: 'mx.example.org', sender: 'postmaster@mx.example.org' });
  assert.equal(r.explanation, 'postmaster@mx.example.org mx.example.org mx.example.org');
});

test('macro letters c, r and t in a domain-spec give permerror', async () => {
  for (const m of ['%{c}', '%{r}', '%{t}']) {
    assert.equal((await check(spf(`v=spf1 exists:${m}.example.com -all`))).result, 'permerror', m);
  }
});
