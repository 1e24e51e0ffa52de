// DMARC evaluation from given SPF and DKIM results: alignment, policy selection, pct sampling,
// errors and several authors (RFC 7489 3.1, 6.3, 6.6).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authResults, delivery, fromDomains, isAligned, verify, type DMARCResult, type VerifyParams } from '../../src/dmarc/verify.js';
import { parseHeader } from '../../src/message/header.js';
import type { RecordSets } from '../helpers/dnsserver.js';
import { zone } from './helpers.js';

const RECORDS: Record<string, RecordSets> = {
  '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject; sp=quarantine'] },
  '_dmarc.own.example.org': { TXT: ['v=DMARC1; p=none'] },
  '_dmarc.strict.example': { TXT: ['v=DMARC1; p=reject; adkim=s; aspf=s'] },
  '_dmarc.example.co.uk': { TXT: ['v=DMARC1; p=reject'] },
  '_dmarc.half.example': { TXT: ['v=DMARC1; p=reject; pct=50'] },
  '_dmarc.halfq.example': { TXT: ['v=DMARC1; p=quarantine; pct=50'] },
  '_dmarc.zero.example': { TXT: ['v=DMARC1; p=reject; pct=0'] },
  '_dmarc.broken.example': { TXT: ['v=DMARC1; p=maybe'] },
};

const spfPass = (domain: string) => ({ result: 'pass' as const, domain });
const dkimPass = (domain: string) => ({ status: 'pass' as const, domain });
const never = () => {
  throw new Error('random() must not be called');
};

async function run(t: Parameters<typeof zone>[0], params: Partial<VerifyParams> & { from: VerifyParams['from'] }, random: () => number = never): Promise<DMARCResult> {
  const { resolver } = await zone(t, RECORDS);
  return verify({ dkim: [], ...params }, resolver, { random });
}

const domains = (...d: string[]) => ({ domains: d, errors: [] });

test('alignment: strict needs the same name, relaxed the same organizational domain', () => {
  const cases: [string, string, boolean, boolean][] = [
    // from, authenticated domain, relaxed, strict
    ['example.org', 'example.org', true, true],
    ['example.org', 'EXAMPLE.ORG.', true, true],
    ['example.org', 'mail.example.org', true, false],
    ['news.example.org', 'example.org', true, false],
    ['news.example.org', 'bounce.example.org', true, false],
    ['example.org', 'example.com', false, false],
    ['example.org', 'notexample.org', false, false],
    ['a.example.co.uk', 'b.example.co.uk', true, false],
    ['example.co.uk', 'other.co.uk', false, false],
    ['example.co.uk', 'co.uk', false, false],
    ['alice.github.io', 'bob.github.io', true, false],
    ['example.org', '', false, false],
    ['example.org', 'not a domain', false, false],
  ];
  for (const [from, d, relaxed, strict] of cases) {
    assert.equal(isAligned(from, d, 'r'), relaxed, `${from} ${d} relaxed`);
    assert.equal(isAligned(from, d, 's'), strict, `${from} ${d} strict`);
  }
});

test('aligned SPF pass alone passes', async (t) => {
  const r = await run(t, { from: domains('example.org'), spf: spfPass('bounce.example.org') });
  assert.equal(r.status, 'pass');
  assert.equal(r.alignedSPFPass, true);
  assert.equal(r.alignedDKIMPass, false);
  assert.equal(r.reject, false);
  assert.equal(r.policy, 'reject');
  assert.equal(r.disposition, 'none');
  assert.equal(r.recordDomain, 'example.org');
});

test('aligned DKIM pass alone passes, among other signatures', async (t) => {
  const r = await run(t, {
    from: domains('example.org'),
    spf: { result: 'fail', domain: 'example.org' },
    dkim: [{ status: 'fail', domain: 'example.org' }, dkimPass('esp.example'), dkimPass('mail.example.org')],
  });
  assert.equal(r.status, 'pass');
  assert.equal(r.alignedDKIMPass, true);
  assert.equal(r.alignedSPFPass, false);
});

test('passes of unaligned identifiers fail, and p=reject rejects', async (t) => {
  const r = await run(t, { from: domains('example.org'), spf: spfPass('esp.example'), dkim: [dkimPass('esp.example'), { status: 'fail', domain: 'example.org' }] });
  assert.equal(r.status, 'fail');
  assert.equal(r.policy, 'reject');
  assert.equal(r.disposition, 'reject');
  assert.equal(r.reject, true);
  assert.equal(r.sampledOut, false);
  assert.equal(delivery(r), 'reject');
});

test('strict alignment refuses subdomains', async (t) => {
  const sub = await run(t, { from: domains('strict.example'), spf: spfPass('mail.strict.example'), dkim: [dkimPass('mail.strict.example')] });
  assert.equal(sub.status, 'fail');
  assert.equal(sub.reject, true);
  const exact = await run(t, { from: domains('strict.example'), dkim: [dkimPass('strict.example')] });
  assert.equal(exact.status, 'pass');
});

test('multi-label public suffixes: organizational domains under co.uk', async (t) => {
  const pass = await run(t, { from: domains('a.example.co.uk'), dkim: [dkimPass('example.co.uk')] });
  assert.equal(pass.status, 'pass');
  assert.equal(pass.recordDomain, 'example.co.uk');
  const fail = await run(t, { from: domains('example.co.uk'), dkim: [dkimPass('co.uk'), dkimPass('other.co.uk')], spf: spfPass('other.co.uk') });
  assert.equal(fail.status, 'fail');
  assert.equal(fail.reject, true);
});

test('p applies at the domain with the record, sp to subdomains covered by the organizational record', async (t) => {
  const org = await run(t, { from: domains('example.org') });
  assert.equal(org.status, 'fail');
  assert.equal(org.policy, 'reject');
  const sub = await run(t, { from: domains('sub.example.org') });
  assert.equal(sub.recordDomain, 'example.org');
  assert.equal(sub.policy, 'quarantine');
  assert.equal(sub.disposition, 'quarantine');
  assert.equal(sub.reject, true);
  assert.equal(delivery(sub), 'reject');
  assert.equal(delivery(sub, { quarantine: 'junk' }), 'junk');
  // A subdomain with its own record uses its p=, whatever the sp= above it says (RFC 7489 6.3).
  const own = await run(t, { from: domains('own.example.org') });
  assert.equal(own.recordDomain, 'own.example.org');
  assert.equal(own.policy, 'none');
  assert.equal(own.reject, false);
  assert.equal(delivery(own), 'accept');
  // Without sp=, p applies to subdomains.
  const uk = await run(t, { from: domains('www.example.co.uk') });
  assert.equal(uk.policy, 'reject');
});

test('pct samples failures with the random source; sampled-out ones get the next weaker policy', async (t) => {
  const inside = await run(t, { from: domains('half.example') }, () => 0.49);
  assert.deepEqual([inside.disposition, inside.sampledOut, inside.reject], ['reject', false, true]);
  const outside = await run(t, { from: domains('half.example') }, () => 0.5);
  // RFC 7489 6.6.4: reject sampled out becomes quarantine.
  assert.deepEqual([outside.policy, outside.disposition, outside.sampledOut, outside.reject], ['reject', 'quarantine', true, true]);
  const q = await run(t, { from: domains('halfq.example') }, () => 0.99);
  assert.deepEqual([q.policy, q.disposition, q.sampledOut, q.reject], ['quarantine', 'none', true, false]);
  assert.equal(delivery(q), 'accept');
  const zero = await run(t, { from: domains('zero.example') }, () => 0);
  assert.deepEqual([zero.disposition, zero.sampledOut, zero.reject], ['quarantine', true, true]);
  // pct=100 and passes never draw a number.
  assert.equal((await run(t, { from: domains('example.org') }, never)).reject, true);
  assert.equal((await run(t, { from: domains('half.example'), dkim: [dkimPass('half.example')] }, never)).status, 'pass');
  // The status is fail either way: pct changes the treatment, not the verdict.
  assert.equal(outside.status, 'fail');
});

test('no record gives none, with alignment still reported', async (t) => {
  const r = await run(t, { from: domains('nodmarc.example'), dkim: [dkimPass('nodmarc.example')] });
  assert.equal(r.status, 'none');
  assert.equal(r.record, undefined);
  assert.equal(r.policy, 'none');
  assert.equal(r.alignedDKIMPass, true);
  assert.equal(r.reject, false);
  assert.equal(authResults(r), 'dmarc=none header.from=nodmarc.example');
});

test('an invalid record gives permerror without policy', async (t) => {
  const r = await run(t, { from: domains('broken.example') });
  assert.equal(r.status, 'permerror');
  assert.equal(r.reject, false);
  assert.match(authResults(r), /^dmarc=permerror reason="invalid DMARC record at _dmarc\.broken\.example: invalid p=maybe and no valid rua=" header\.from=broken\.example$/);
});

test('DNS errors give temperror, and delivery fails closed', async (t) => {
  const { dns, resolver } = await zone(t, RECORDS);
  dns.behave('_dmarc.example.org', 'servfail');
  const r = await verify({ from: domains('example.org'), dkim: [] }, resolver);
  assert.equal(r.status, 'temperror');
  assert.equal(r.reject, false);
  assert.equal(delivery(r), 'tempfail');
});

test('a temporary error for an aligned identifier gives temperror instead of fail', async (t) => {
  const dkimTemp = await run(t, { from: domains('example.org'), dkim: [{ status: 'temperror', domain: 'example.org' }] });
  assert.equal(dkimTemp.status, 'temperror');
  assert.equal(dkimTemp.reject, false);
  const spfTemp = await run(t, { from: domains('example.org'), spf: { result: 'temperror', domain: 'mail.example.org' } });
  assert.equal(spfTemp.status, 'temperror');
  // Not for identifiers that could not align anyway.
  const other = await run(t, { from: domains('example.org'), spf: { result: 'temperror', domain: 'esp.example' }, dkim: [{ status: 'temperror', domain: 'esp.example' }] });
  assert.equal(other.status, 'fail');
  // And a pass elsewhere still passes.
  const pass = await run(t, { from: domains('example.org'), spf: spfPass('example.org'), dkim: [{ status: 'temperror', domain: 'example.org' }] });
  assert.equal(pass.status, 'pass');
});

test('From domains: one per message, IDN as A-label, groups, errors', () => {
  const h = (s: string) => parseHeader(Buffer.from(s + '\r\n\r\n', 'utf8'));
  assert.deepEqual(fromDomains(h('From: Alice <alice@Example.ORG>')), domains('example.org'));
  assert.deepEqual(fromDomains(h('From: a@example.org, "B" <b@EXAMPLE.org>')), domains('example.org'));
  assert.deepEqual(fromDomains(h('From: a@bücher.example')), domains('xn--bcher-kva.example'));
  assert.deepEqual(fromDomains(h('From: team: a@example.org, b@example.net;')), domains('example.org', 'example.net'));
  assert.deepEqual(fromDomains(h('Subject: x')), { domains: [], errors: ['no From header field'] });
  assert.deepEqual(fromDomains(h('From: a@example.org\r\nFrom: b@example.org')), { domains: ['example.org'], errors: ['2 From header fields'] });
  assert.equal(fromDomains(h('From: undisclosed:;')).errors.length, 1);
  assert.equal(fromDomains(h('From: a@[192.0.2.1]')).errors.length, 1);
  assert.equal(fromDomains(h('From: nodomain')).errors.length, 1);
  assert.equal(fromDomains(h('From: a@-bad-.example')).errors.length, 1);
});

test('no From domain gives permerror', async (t) => {
  const r = await run(t, { from: parseHeader(Buffer.from('Subject: hi\r\n\r\n')) });
  assert.equal(r.status, 'permerror');
  assert.equal(r.domain, '');
  assert.equal(r.reject, false);
  assert.equal(authResults(r), 'dmarc=permerror reason="no From header field"');
  assert.equal((await run(t, { from: domains() })).reason, 'no From domain');
});

test('several author domains: the least favourable result stands (RFC 7489 6.6.1)', async (t) => {
  // A passing author domain cannot shield a forged one.
  const forged = await run(t, { from: domains('attacker.example', 'example.org'), dkim: [dkimPass('attacker.example')] });
  assert.equal(forged.status, 'fail');
  assert.equal(forged.domain, 'example.org');
  assert.equal(forged.reject, true);
  assert.match(forged.reason ?? '', /2 results for the From header/);
  // The strictest disposition among failures.
  const strictest = await run(t, { from: domains('own.example.org', 'sub.example.org', 'example.co.uk') });
  assert.equal(strictest.domain, 'example.co.uk');
  assert.equal(strictest.disposition, 'reject');
  // A domain without DMARC makes the whole message none rather than pass.
  const mixed = await run(t, { from: domains('example.org', 'nodmarc.example'), spf: spfPass('example.org') });
  assert.equal(mixed.status, 'none');
  // An unusable address alongside a failing one does not turn the failure into permerror.
  const header = parseHeader(Buffer.from('From: a@[192.0.2.1], b@example.org\r\n\r\n'));
  const withLiteral = await run(t, { from: header });
  assert.equal(withLiteral.status, 'fail');
  assert.equal(withLiteral.reject, true);
  // All passing: pass.
  const both = await run(t, { from: domains('example.org', 'example.co.uk'), dkim: [dkimPass('example.org'), dkimPass('example.co.uk')] });
  assert.equal(both.status, 'pass');
});

test('the DNSSEC status of the record is reported', async (t) => {
  const { dns, resolver } = await zone(t, RECORDS);
  dns.authentic = true;
  assert.equal((await verify({ from: domains('example.org'), dkim: [] }, resolver)).authentic, true);
  dns.authentic = false;
  assert.equal((await verify({ from: domains('example.org'), dkim: [] }, resolver)).authentic, false);
});

test('authResults shows the policy and disposition in a comment', async (t) => {
  const fail = await run(t, { from: domains('sub.example.org') });
  assert.equal(authResults(fail), 'dmarc=fail (p=reject sp=quarantine dis=quarantine) header.from=sub.example.org');
  const pass = await run(t, { from: domains('example.co.uk'), dkim: [dkimPass('example.co.uk')] });
  assert.equal(authResults(pass), 'dmarc=pass (p=reject dis=none) header.from=example.co.uk');
});
