// RFC 8463 appendix A: the published Ed25519 and RSA example.
//
// Findings: taken with the RFC's page indentation removed (continuation lines keep one leading
// space) and CRLF line ends, both published signatures verify with the A.2 keys. The Ed25519
// signature is Ed25519 over the SHA-256 hash of the signed header data, as RFC 8463 section 3
// says; signing the data itself, a reading some implementations took, gives another signature
// that does not verify. Ed25519 is deterministic, so signing with the A.1 secret key reproduces
// the published b= exactly. The A.1 "secret key" is the 32-byte seed of RFC 8032 test 1 and
// the A.2 p= is its public key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';

import { canonHeader, signedFields } from '../../src/dkim/canon.js';
import { txtRecord } from '../../src/dkim/keys.js';
import { MessageReader } from '../../src/dkim/message.js';
import { withoutSignature } from '../../src/dkim/tags.js';
import { verify } from '../../src/dkim/verify.js';
import { FakeResolver } from './fakeresolver.js';
import { chunked } from './helpers.js';

const SIGNED = [
  'DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;',
  ' d=football.example.com; i=@football.example.com;',
  ' q=dns/txt; s=brisbane; t=1528637909; h=from : to :',
  ' subject : date : message-id : from : subject : date;',
  ' bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;',
  ' b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus',
  ' Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==',
  'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;',
  ' d=football.example.com; i=@football.example.com;',
  ' q=dns/txt; s=test; t=1528637909; h=from : to : subject :',
  ' date : message-id : from : subject : date;',
  ' bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;',
  ' b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3',
  ' DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz',
  ' dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=',
  'From: Joe SixPack <joe@football.example.com>',
  'To: Suzie Q <suzie@shopping.example.net>',
  'Subject: Is dinner ready?',
  'Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)',
  'Message-ID: <20030712040037.46341.5F8J@football.example.com>',
  '',
  'Hi.',
  '',
  'We lost the game.  Are you hungry yet?',
  '',
  'Joe.',
  '',
  '',
].join('\r\n');

const SEED = 'nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=';
const ED_RECORD = 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=';
const RSA_RECORD =
  'v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB';

function resolver(): FakeResolver {
  return new FakeResolver({
    'brisbane._domainkey.football.example.com': ED_RECORD,
    'test._domainkey.football.example.com': RSA_RECORD,
  });
}

const now = new Date('2024-01-01T00:00:00Z');

test('both published signatures verify', async () => {
  const results = await verify(Buffer.from(SIGNED), resolver(), { now });
  assert.deepEqual(
    results.map((r) => [r.status, r.selector, r.algorithm, r.identity]),
    [
      ['pass', 'brisbane', 'ed25519-sha256', '@football.example.com'],
      ['pass', 'test', 'rsa-sha256', '@football.example.com'],
    ],
  );
  const streamed = await verify(chunked(SIGNED, 5), resolver(), { now });
  assert.deepEqual(
    streamed.map((r) => r.status),
    ['pass', 'pass'],
  );
});

test('changes to the example fail under both algorithms', async () => {
  const statuses = async (m: string) => (await verify(Buffer.from(m), resolver(), { now })).map((r) => r.reason);
  assert.deepEqual(await statuses(SIGNED.replace('hungry', 'angry')), ['body hash did not verify', 'body hash did not verify']);
  assert.deepEqual(await statuses(SIGNED.replace('dinner', 'lunch')), ['signature did not verify', 'signature did not verify']);
  // h= lists From twice, so a From added on top breaks both signatures.
  assert.deepEqual(await statuses(SIGNED.replace('From: Joe', 'From: Mallory <m@evil.example>\r\nFrom: Joe')), [
    'signature did not verify',
    'signature did not verify',
  ]);
});

test('the A.1 secret key reproduces the published Ed25519 signature over the SHA-256 hash', async () => {
  const seed = Buffer.from(SEED, 'base64');
  const x = Buffer.from(ED_RECORD.split('p=')[1]!, 'base64');
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x: x.toString('base64url') }, format: 'jwk' });
  assert.equal(txtRecord(key), ED_RECORD);

  const fields = await new MessageReader(Buffer.from(SIGNED)).header();
  const names = ['from', 'to', 'subject', 'date', 'message-id', 'from', 'subject', 'date'];
  const data = signedFields(fields, names, 0, 'relaxed') + canonHeader(withoutSignature(fields[0]!.raw), 'relaxed').slice(0, -2);
  assert.equal(
    data,
    'from:Joe SixPack <joe@football.example.com>\r\n' +
      'to:Suzie Q <suzie@shopping.example.net>\r\n' +
      'subject:Is dinner ready?\r\n' +
      'date:Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n' +
      'message-id:<20030712040037.46341.5F8J@football.example.com>\r\n' +
      'dkim-signature:v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; i=@football.example.com; ' +
      'q=dns/txt; s=brisbane; t=1528637909; h=from : to : subject : date : message-id : from : subject : date; ' +
      'bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=',
  );
  const hashed = cryptoSign(null, createHash('sha256').update(data).digest(), key).toString('base64');
  assert.equal(hashed, '/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==');
  // Signing the data without hashing it first does not give the published signature.
  const unhashed = cryptoSign(null, Buffer.from(data), key);
  assert.notEqual(unhashed.toString('base64'), hashed);
  assert.equal(cryptoVerify(null, createHash('sha256').update(data).digest(), createPublicKey(key), unhashed), false);
});
