// Interoperability with mailauth, an independent DKIM implementation: what Postern signs
// mailauth verifies, and what mailauth signs Postern verifies. Where the two verifiers give
// different verdicts the table below records both, with the RFC text behind Postern's:
//
// - body hash mismatch: mailauth "neutral", Postern "fail". RFC 6376 6.1.3 makes it a failed
//   verification (PERMFAIL, "body hash did not verify"), which RFC 8601 2.7.1 reports as fail.
// - expired signature (x= past): mailauth "neutral", Postern "permerror" (RFC 6376 6.1.1,
//   PERMFAIL "signature expired").
// - no key record: mailauth "neutral", Postern "permerror" (RFC 6376 6.1.2 step 3, PERMFAIL
//   "no key for signature"; RFC 8601 2.7.1 names a missing key as permerror).
// - revoked key (empty p=): mailauth "neutral", Postern "permerror" (RFC 6376 6.1.2 step 7).
// - rsa-sha1: mailauth "pass", Postern "fail" (RFC 8301 3.1: verifiers must not consider
//   rsa-sha1 signatures valid).
// - RSA key under 1024 bits: mailauth "policy", Postern "fail" (RFC 8301 3.2: such
//   signatures must not be considered valid, whatever the local policy).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';

import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';

import { genEd25519, genRSA, txtRecord } from '../../src/dkim/keys.js';
import { sign, type SignOptions } from '../../src/dkim/sign.js';
import { verify } from '../../src/dkim/verify.js';
import { FakeResolver, mailauthResolver } from './fakeresolver.js';
import { MESSAGE, NOW } from './helpers.js';

const rsaPEM = await genRSA();
const edPEM = await genEd25519();
const KEYS: Record<'rsa' | 'ed', string> = { rsa: rsaPEM, ed: edPEM };

function records(): FakeResolver {
  return new FakeResolver({
    'rsa._domainkey.example.org': txtRecord(rsaPEM),
    'ed._domainkey.example.org': txtRecord(edPEM),
  });
}

async function theirs(message: string, r = records()): Promise<string[]> {
  const res = await dkimVerify(Buffer.from(message), { resolver: mailauthResolver(r), curTime: NOW });
  return res.results.map((x) => x.status.result);
}

async function ours(message: string, r = records()): Promise<string[]> {
  return (await verify(Buffer.from(message), r, { now: NOW })).map((x) => x.status);
}

// mailauth reads keys from signatureData, which its type declarations do not show; hence the casts.
async function theirSignature(key: 'rsa' | 'ed', canonicalization: string, more: Record<string, unknown> = {}): Promise<string> {
  const res = await dkimSign(Buffer.from(MESSAGE), {
    signTime: NOW,
    signatureData: [
      {
        signingDomain: 'example.org',
        selector: key,
        privateKey: KEYS[key],
        algorithm: key === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
        canonicalization,
        ...more,
      },
    ],
  } as Parameters<typeof dkimSign>[1]);
  assert.deepEqual(res.errors, []);
  assert.match(res.signatures, /^DKIM-Signature:/);
  return res.signatures + MESSAGE;
}

const CANONS = ['simple/simple', 'simple/relaxed', 'relaxed/simple', 'relaxed/relaxed'];

test('mailauth verifies what Postern signs', async () => {
  for (const key of ['rsa', 'ed'] as const) {
    for (const c of CANONS) {
      const [headerCanon, bodyCanon] = c.split('/') as ['simple' | 'relaxed', 'simple' | 'relaxed'];
      const o: SignOptions = { domain: 'example.org', selector: key, privateKey: KEYS[key], headerCanon, bodyCanon, timestamp: NOW };
      const message = (await sign(Buffer.from(MESSAGE), o)) + MESSAGE;
      assert.deepEqual(await theirs(message), ['pass'], `${key} ${c}`);
    }
  }
  const both = (await sign(Buffer.from(MESSAGE), [
    { domain: 'example.org', selector: 'rsa', privateKey: rsaPEM, timestamp: NOW, identity: 'alice@example.org' },
    { domain: 'example.org', selector: 'ed', privateKey: edPEM, timestamp: NOW, oversign: false },
  ])) + MESSAGE;
  assert.deepEqual(await theirs(both), ['pass', 'pass']);
});

test('Postern verifies what mailauth signs', async () => {
  for (const key of ['rsa', 'ed'] as const) {
    for (const c of CANONS) assert.deepEqual(await ours(await theirSignature(key, c)), ['pass'], `${key} ${c}`);
  }
});

test('Postern honours a body length limit set by mailauth', async () => {
  const message = await theirSignature('ed', 'relaxed/relaxed', { maxBodyLength: 12 });
  assert.match(message, /l=12;/);
  const [r] = await verify(Buffer.from(message + 'appended\r\n'), records(), { now: NOW });
  assert.equal(r!.status, 'pass');
  assert.match(r!.reason!, /^l= covers 12 of/);
});

test('verdicts of both verifiers on broken messages', async () => {
  const signed = (await sign(Buffer.from(MESSAGE), { domain: 'example.org', selector: 'ed', privateKey: edPEM, timestamp: NOW, expiration: 60 })) + MESSAGE;
  const revoked = records();
  revoked.txt.set('ed._domainkey.example.org', ['v=DKIM1; k=ed25519; p=']);
  const missing = records();
  missing.txt.delete('ed._domainkey.example.org');
  const down = records();
  down.txt.set('ed._domainkey.example.org', 'SERVFAIL');
  const small = generateKeyPairSync('rsa', { modulusLength: 512, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const smallKeys = records();
  smallKeys.txt.set('small._domainkey.example.org', [txtRecordUnchecked(small.publicKey)]);
  const smallSigned = (
    await dkimSign(Buffer.from(MESSAGE), {
      signTime: NOW,
      signatureData: [{ signingDomain: 'example.org', selector: 'small', privateKey: small.privateKey }],
    } as Parameters<typeof dkimSign>[1])
  ).signatures + MESSAGE;
  const later = new Date(NOW.getTime() + 3600 * 1000);

  const cases: [string, string, FakeResolver, Date, string, string][] = [
    ['intact', signed, records(), NOW, 'pass', 'pass'],
    ['changed header', signed.replace('Lunch', 'Dinner'), records(), NOW, 'fail', 'fail'],
    ['changed body', signed.replace('noon', 'one'), records(), NOW, 'fail', 'neutral'],
    ['expired', signed, records(), later, 'permerror', 'neutral'],
    ['no key record', signed, missing, NOW, 'permerror', 'neutral'],
    ['revoked key', signed, revoked, NOW, 'permerror', 'neutral'],
    ['DNS failure', signed, down, NOW, 'temperror', 'temperror'],
    ['rsa-sha1', await theirSignature('rsa', 'relaxed/relaxed', { algorithm: 'rsa-sha1' }), records(), NOW, 'fail', 'pass'],
    ['512-bit RSA key', smallSigned, smallKeys, NOW, 'fail', 'policy'],
  ];
  for (const [name, message, r, now, postern, mailauth] of cases) {
    const p = (await verify(Buffer.from(message), r, { now })).map((x) => x.status);
    const m = (await dkimVerify(Buffer.from(message), { resolver: mailauthResolver(r), curTime: now })).results.map((x) => x.status.result);
    assert.deepEqual([p, m], [[postern], [mailauth]], name);
  }
});

/** A key record for a key Postern itself would refuse to sign with. */
function txtRecordUnchecked(publicKeyPEM: string): string {
  return `v=DKIM1; k=rsa; p=${publicKeyPEM.replace(/-----[^-]+-----|\s/g, '')}`;
}
