// Whole evaluations as a receiving server runs them: SPF and DKIM verified over the test DNS
// server, messages signed with Postern's signer, then DMARC and the Authentication-Results field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authenticationResults } from '../../src/dmarc/authres.js';
import { genEd25519, txtRecord } from '../../src/dkim/keys.js';
import { sign } from '../../src/dkim/sign.js';
import type { RecordSets } from '../helpers/dnsserver.js';
import { authenticate, zone } from './helpers.js';

const orgKey = await genEd25519();
const espKey = await genEd25519();

const RECORDS: Record<string, RecordSets> = {
  'example.org': { TXT: ['v=spf1 ip4:192.0.2.10 -all'] },
  '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject; rua=mailto:dmarc@example.org'] },
  'ed._domainkey.example.org': { TXT: [txtRecord(orgKey)] },
  'esp.example': { TXT: ['v=spf1 ip4:198.51.100.0/24 -all'] },
  'ed._domainkey.esp.example': { TXT: [txtRecord(espKey)] },
  'nodmarc.example': { TXT: ['v=spf1 ip4:192.0.2.20 -all'] },
};

function message(from: string): string {
  return [`From: Alice <${from}>`, 'To: bob@example.net', 'Subject: Report', 'Date: Mon, 3 Jun 2024 10:00:00 +0200', 'Message-ID: <m1@example.org>', '', 'Numbers attached.', ''].join('\r\n');
}

async function signed(msg: string, ...by: ('org' | 'esp')[]): Promise<Buffer> {
  const opts = by.map((k) => (k === 'org' ? { domain: 'example.org', selector: 'ed', privateKey: orgKey } : { domain: 'esp.example', selector: 'ed', privateKey: espKey }));
  return Buffer.from((opts.length ? await sign(Buffer.from(msg), opts) : '') + msg);
}

test('aligned SPF pass: the message passes without a signature', async (t) => {
  const { resolver } = await zone(t, RECORDS);
  const r = await authenticate(await signed(message('alice@example.org')), { ip: '192.0.2.10', mailFrom: 'bounce@example.org', helo: 'mail.example.org' }, resolver);
  assert.equal(r.spfResult.result, 'pass');
  assert.deepEqual(r.dkim, []);
  assert.equal(r.dmarc.status, 'pass');
  assert.equal(r.dmarc.alignedSPFPass, true);
  assert.equal(r.dmarc.reject, false);
});

test('aligned DKIM pass: a message sent through a provider passes on its signature', async (t) => {
  const { resolver } = await zone(t, RECORDS);
  const msg = await signed(message('alice@example.org'), 'org', 'esp');
  const r = await authenticate(msg, { ip: '198.51.100.7', mailFrom: 'b+123@esp.example', helo: 'out.esp.example' }, resolver);
  assert.equal(r.spfResult.result, 'pass');
  assert.equal(r.spfResult.domain, 'esp.example');
  assert.deepEqual(
    r.dkim.map((d) => [d.domain, d.status]),
    [
      ['example.org', 'pass'],
      ['esp.example', 'pass'],
    ],
  );
  assert.equal(r.dmarc.status, 'pass');
  assert.equal(r.dmarc.alignedSPFPass, false);
  assert.equal(r.dmarc.alignedDKIMPass, true);

  const header = authenticationResults({ authservID: 'mx.postern.example', spf: { result: r.spfResult, identity: 'mailfrom' }, dkim: r.dkim, dmarc: r.dmarc });
  assert.ok(header.startsWith('Authentication-Results: mx.postern.example;\r\n\tspf=pass smtp.mailfrom=esp.example;\r\n\tdkim=pass header.d=example.org'));
  assert.match(header, /;\r\n\tdmarc=pass \(p=reject dis=none\) header\.from=example\.org\r\n$/);
  assert.equal(header.split('\r\n').filter((l) => l.startsWith('\tdkim=pass')).length, 2);
  for (const line of header.split('\r\n')) assert.ok(line.length <= 78, line);
});

test('both failing under p=reject: rejected', async (t) => {
  const { resolver } = await zone(t, RECORDS);
  // Only the provider signed, and SPF authenticates only the provider's bounce domain.
  const viaESP = await authenticate(await signed(message('alice@example.org'), 'esp'), { ip: '198.51.100.7', mailFrom: 'b@esp.example', helo: 'out.esp.example' }, resolver);
  assert.equal(viaESP.dmarc.status, 'fail');
  assert.equal(viaESP.dmarc.reject, true);
  assert.equal(viaESP.dmarc.disposition, 'reject');
  // A forgery: wrong IP for example.org's SPF and a signature broken by a changed body.
  const forged = Buffer.from((await signed(message('alice@example.org'), 'org')).toString().replace('Numbers', 'Invoices'));
  const r = await authenticate(forged, { ip: '203.0.113.66', mailFrom: 'alice@example.org', helo: 'bad.example' }, resolver);
  assert.equal(r.spfResult.result, 'fail');
  assert.equal(r.dkim[0]?.status, 'fail');
  assert.equal(r.dmarc.status, 'fail');
  assert.equal(r.dmarc.reject, true);
  const header = authenticationResults({ authservID: 'mx.postern.example', spf: { result: r.spfResult, identity: 'mailfrom' }, dkim: r.dkim, dmarc: r.dmarc });
  assert.match(header, /\tspf=fail smtp\.mailfrom=example\.org;\r\n/);
  assert.match(header, /\tdmarc=fail \(p=reject dis=reject\) header\.from=example\.org\r\n$/);
});

test('no DMARC record: none, whatever SPF and DKIM say', async (t) => {
  const { resolver } = await zone(t, RECORDS);
  const r = await authenticate(await signed(message('carol@nodmarc.example'), 'esp'), { ip: '203.0.113.1', mailFrom: 'carol@nodmarc.example', helo: 'x.example' }, resolver);
  assert.equal(r.spfResult.result, 'fail');
  assert.equal(r.dmarc.status, 'none');
  assert.equal(r.dmarc.reject, false);
});

test('the null reverse-path is judged on the HELO identity', async (t) => {
  const { resolver } = await zone(t, { ...RECORDS, 'mail.example.org': { TXT: ['v=spf1 ip4:192.0.2.10 -all'] } });
  const r = await authenticate(await signed(message('postmaster@example.org')), { ip: '192.0.2.10', mailFrom: '', helo: 'mail.example.org' }, resolver);
  assert.equal(r.spfResult.domain, 'mail.example.org');
  assert.equal(r.dmarc.status, 'pass');
  assert.equal(r.dmarc.alignedSPFPass, true);
});
