// Postern's DMARC verdicts against mailauth's authenticate(), an independent implementation, on
// messages signed by Postern's DKIM signer. Postern resolves over the test DNS server; mailauth
// gets the same zone through its resolver option in node:dns shape. Where the two differ, the
// case records mailauth's verdict and the RFC text behind Postern's:
//
// - strict alignment (adkim=s, aspf=s) with a subdomain signer or bounce domain: mailauth pass,
//   Postern fail. RFC 7489 3.1.1 and 3.1.2: in strict mode only an exact match aligns.
// - a From domain under a private-section public suffix (alice.github.io) with the record at
//   github.io: mailauth none, Postern pass. RFC 7489 3.2 lets the receiver pick its public suffix
//   list; Postern uses the ICANN section only (see organizationalDomain), so github.io is the
//   Organizational Domain and its record and signature apply.
// - an invalid p= and no rua: mailauth fail, Postern permerror. RFC 7489 6.6.3 step 6: such a
//   record gets no DMARC processing; RFC 7489 11.2 calls that a permanent error.
// - "v=dmarc1" in lower case: mailauth fail, Postern none. RFC 7489 6.4 gives "DMARC1" in hex,
//   which is case-sensitive (RFC 5234 2.3), and 6.6.3 step 2 discards other records.
// - a temporary DNS error for the only aligned signature's key: mailauth fail, Postern temperror.
//   RFC 7489 11.2: temperror when a later attempt might produce a final result, as a retry could
//   verify the signature.
// - several From addresses in different domains, and no From at all: mailauth gives no DMARC
//   result; Postern evaluates every author domain and keeps the least favourable (RFC 7489 6.6.1:
//   check each domain and apply the strictest policy among the failures), and has permerror
//   without a From domain (RFC 7489 6.6.1 needs one; 11.2 permerror).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate as mailauth } from 'mailauth';
import { genEd25519, txtRecord, txtStrings } from '../../src/dkim/keys.js';
import { sign } from '../../src/dkim/sign.js';
import { StubResolver } from '../../src/dns/stub.js';
import { startDNSServer, type RecordSets } from '../helpers/dnsserver.js';
import { authenticate } from './helpers.js';

const KEY = await genEd25519();
const KEY_RECORD = txtRecord(KEY);

type Entry = { TXT?: string[]; A?: string[] } | 'SERVFAIL';
type Zone = Record<string, Entry>;

const BASE: Zone = {
  'example.org': { TXT: ['v=spf1 ip4:192.0.2.10 -all'] },
  'bounce.example.org': { TXT: ['v=spf1 ip4:192.0.2.11 -all'] },
  'esp.example': { TXT: ['v=spf1 ip4:198.51.100.0/24 -all'] },
  'bounce.strict.example': { TXT: ['v=spf1 ip4:192.0.2.12 -all'] },
  '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject; rua=mailto:dmarc@example.org'] },
  '_dmarc.strict.example': { TXT: ['v=DMARC1; p=reject; adkim=s; aspf=s'] },
  '_dmarc.example.co.uk': { TXT: ['v=DMARC1; p=quarantine'] },
  '_dmarc.github.io': { TXT: ['v=DMARC1; p=reject'] },
  '_dmarc.xn--bcher-kva.example': { TXT: ['v=DMARC1; p=reject'] },
};

interface Case {
  name: string;
  from: string;
  mailFrom: string;
  ip: string;
  /** Domains that sign, each with selector "ed". */
  signers?: string[];
  /** Change the body after signing. */
  tamper?: boolean;
  zone?: Zone;
  expect: string;
  mailauth?: { result: string; why: string };
}

const ESP = { mailFrom: 'b@esp.example', ip: '198.51.100.7' };

const cases: Case[] = [
  { name: 'aligned DKIM, exact', from: 'alice@example.org', ...ESP, signers: ['example.org'], expect: 'pass' },
  { name: 'aligned DKIM, relaxed subdomain signer', from: 'alice@example.org', ...ESP, signers: ['mail.example.org'], expect: 'pass' },
  { name: 'aligned SPF, unsigned', from: 'alice@example.org', mailFrom: 'bounce@example.org', ip: '192.0.2.10', expect: 'pass' },
  { name: 'aligned SPF, relaxed bounce domain', from: 'alice@example.org', mailFrom: 'x@bounce.example.org', ip: '192.0.2.11', expect: 'pass' },
  { name: 'nothing aligned under p=reject', from: 'alice@example.org', ...ESP, signers: ['esp.example'], expect: 'fail' },
  { name: 'SPF fail and a broken signature', from: 'alice@example.org', mailFrom: 'alice@example.org', ip: '203.0.113.9', signers: ['example.org'], tamper: true, expect: 'fail' },
  { name: 'SPF softfail aligned', from: 'alice@example.org', mailFrom: 'a@soft.example.org', ip: '203.0.113.9', zone: { 'soft.example.org': { TXT: ['v=spf1 ~all'] } }, expect: 'fail' },
  { name: 'no DMARC record', from: 'carol@nodmarc.example', ...ESP, signers: ['esp.example'], expect: 'none' },
  { name: 'record at the organizational domain, unaligned', from: 'news@news.example.org', ...ESP, signers: ['esp.example'], expect: 'fail' },
  { name: 'record at the organizational domain, aligned signer', from: 'news@news.example.org', ...ESP, signers: ['example.org'], expect: 'pass' },
  {
    name: 'subdomain record with p=none under an organizational p=reject',
    from: 'a@lax.example.org',
    ...ESP,
    zone: { '_dmarc.lax.example.org': { TXT: ['v=DMARC1; p=none'] } },
    expect: 'fail',
  },
  { name: 'pct=0 does not change the verdict', from: 'a@pct.example', ...ESP, zone: { '_dmarc.pct.example': { TXT: ['v=DMARC1; p=reject; pct=0'] } }, expect: 'fail' },
  {
    name: 'strict DKIM alignment, subdomain signer',
    from: 'a@strict.example',
    ...ESP,
    signers: ['mail.strict.example'],
    expect: 'fail',
    mailauth: { result: 'pass', why: 'RFC 7489 3.1.1: strict alignment needs identical domains' },
  },
  {
    name: 'strict SPF alignment, subdomain bounce domain',
    from: 'a@strict.example',
    mailFrom: 'x@bounce.strict.example',
    ip: '192.0.2.12',
    expect: 'fail',
    mailauth: { result: 'pass', why: 'RFC 7489 3.1.2: strict alignment needs identical domains' },
  },
  { name: 'strict DKIM alignment, exact signer', from: 'a@strict.example', ...ESP, signers: ['strict.example'], expect: 'pass' },
  { name: 'multi-label public suffix, relaxed', from: 'a@mail.example.co.uk', ...ESP, signers: ['example.co.uk'], expect: 'pass' },
  { name: 'a public suffix as signer does not align', from: 'a@example.co.uk', ...ESP, signers: ['co.uk'], expect: 'fail' },
  {
    name: 'private-section suffix',
    from: 'a@alice.github.io',
    ...ESP,
    signers: ['github.io'],
    expect: 'pass',
    mailauth: { result: 'none', why: 'RFC 7489 3.2: the ICANN section makes github.io the Organizational Domain' },
  },
  {
    name: 'two DMARC records',
    from: 'a@two.example',
    ...ESP,
    zone: { '_dmarc.two.example': { TXT: ['v=DMARC1; p=reject', 'v=DMARC1; p=none'] } },
    expect: 'none',
  },
  {
    name: 'invalid p= without rua',
    from: 'a@badp.example',
    ...ESP,
    zone: { '_dmarc.badp.example': { TXT: ['v=DMARC1; p=bogus'] } },
    expect: 'permerror',
    mailauth: { result: 'fail', why: 'RFC 7489 6.6.3 step 6 and 11.2: no DMARC processing, a permanent error' },
  },
  {
    name: 'invalid p= with rua reads as p=none',
    from: 'a@badp.example',
    ...ESP,
    zone: { '_dmarc.badp.example': { TXT: ['v=DMARC1; p=bogus; rua=mailto:d@badp.example'] } },
    expect: 'fail',
  },
  {
    name: 'lower-case version',
    from: 'a@lower.example',
    ...ESP,
    zone: { '_dmarc.lower.example': { TXT: ['v=dmarc1; p=reject'] } },
    expect: 'none',
    mailauth: { result: 'fail', why: 'RFC 7489 6.4 and 6.6.3 step 2: "DMARC1" is case-sensitive' },
  },
  { name: 'DNS failure for the DMARC record', from: 'a@example.org', ...ESP, signers: ['example.org'], zone: { '_dmarc.example.org': 'SERVFAIL' }, expect: 'temperror' },
  {
    name: 'DNS failure for the aligned signature key',
    from: 'a@example.org',
    ...ESP,
    signers: ['example.org'],
    zone: { 'ed._domainkey.example.org': 'SERVFAIL' },
    expect: 'temperror',
    mailauth: { result: 'fail', why: 'RFC 7489 11.2: a retry might verify the aligned signature' },
  },
  { name: 'IDN From domain', from: 'a@bücher.example', ...ESP, signers: ['xn--bcher-kva.example'], expect: 'pass' },
  {
    name: 'two From addresses in different domains',
    from: 'a@esp.example, ceo@example.org',
    ...ESP,
    signers: ['esp.example'],
    expect: 'fail',
    mailauth: { result: 'no result', why: 'RFC 7489 6.6.1: each author domain is checked; example.org fails' },
  },
  {
    name: 'no From',
    from: '',
    ...ESP,
    expect: 'permerror',
    mailauth: { result: 'no result', why: 'RFC 7489 6.6.1 needs an author domain; 11.2 permerror' },
  },
];

/** Every signing domain gets the same key under selector "ed". */
function fullZone(c: Case): Zone {
  const keys = Object.fromEntries((c.signers ?? []).map((d) => [`ed._domainkey.${d}`, { TXT: [KEY_RECORD] }]));
  return { ...BASE, ...keys, ...c.zone };
}

async function message(c: Case): Promise<Buffer> {
  const lines = [...(c.from ? [`From: ${c.from}`] : []), 'To: bob@example.net', 'Subject: Quarterly numbers', 'Date: Mon, 3 Jun 2024 10:00:00 +0200', 'Message-ID: <q1@example.org>', ''];
  const msg = [...lines, 'See attached.', ''].join('\r\n');
  const signers = (c.signers ?? []).map((domain) => ({ domain, selector: 'ed', privateKey: KEY }));
  const header = signers.length ? await sign(Buffer.from(msg), signers) : '';
  const out = header + msg;
  return Buffer.from(c.tamper ? out.replace('See attached.', 'See the link.') : out);
}

const NODE_ERRORS = { SERVFAIL: 'ESERVFAIL' };

/** The zone as node:dns's resolve() would answer: TXT as string[][], errors with codes. */
function nodeResolver(zone: Zone) {
  return async (name: string, type: string): Promise<string[][] | string[]> => {
    const fail = (code: string) => Object.assign(new Error(`${type} ${name}: ${code}`), { code });
    const entry = zone[name.toLowerCase().replace(/\.$/, '')];
    if (entry === undefined) throw fail('ENOTFOUND');
    if (entry === 'SERVFAIL') throw fail(NODE_ERRORS.SERVFAIL);
    if (type === 'TXT' && entry.TXT) return entry.TXT.map(txtStrings);
    if (type === 'A' && entry.A) return entry.A;
    throw fail('ENODATA');
  };
}

async function postern(c: Case, zone: Zone, msg: Buffer): Promise<string> {
  const records: Record<string, RecordSets> = {};
  for (const [name, e] of Object.entries(zone)) records[name] = e === 'SERVFAIL' ? { A: ['192.0.2.99'] } : e;
  const dns = await startDNSServer({ records });
  try {
    for (const [name, e] of Object.entries(zone)) if (e === 'SERVFAIL') dns.behave(name, 'servfail');
    const resolver = new StubResolver({ servers: [dns.address], timeout: 300, attempts: 1, cacheSize: 0 });
    const r = await authenticate(msg, { ip: c.ip, mailFrom: c.mailFrom, helo: 'client.example' }, resolver);
    return r.dmarc.status;
  } finally {
    await dns.close();
  }
}

async function theirs(c: Case, zone: Zone, msg: Buffer): Promise<string> {
  const res = await mailauth(msg, {
    ip: c.ip,
    helo: 'client.example',
    sender: c.mailFrom,
    mta: 'mx.postern.example',
    resolver: nodeResolver(zone),
    disableArc: true,
    disableBimi: true,
  });
  return res.dmarc ? res.dmarc.status.result : 'no result';
}

for (const c of cases) {
  test(`oracle: ${c.name}`, async () => {
    const zone = fullZone(c);
    const msg = await message(c);
    const [ours, other] = await Promise.all([postern(c, zone, msg), theirs(c, zone, msg)]);
    assert.equal(ours, c.expect, 'Postern');
    assert.equal(other, c.mailauth?.result ?? c.expect, `mailauth${c.mailauth ? '' : ' (no difference expected)'}`);
  });
}
