import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { deriveCredentials, preparePassword, verifyPassword } from '../../src/sasl/credentials.js';
import { hmacMD5FromState } from '../../src/sasl/md5.js';
import { saltedPassword, scramKeys } from '../../src/sasl/scram.js';

test('derived credentials verify the password and survive JSON', async () => {
  const creds = JSON.parse(JSON.stringify(await deriveCredentials('correct horse')));
  assert.equal(await verifyPassword(creds, 'correct horse'), true);
  assert.equal(await verifyPassword(creds, 'correct horsE'), false);
  assert.equal(await verifyPassword(creds, ''), false);
  assert.equal(await verifyPassword(creds, 'bad\u0000'), false);
  assert.match(creds.bcrypt, /^\$2b\$10\$/);
  assert.ok(!JSON.stringify(creds).includes('correct horse'));
});

test('derived SCRAM and CRAM-MD5 state match the prepared password', async () => {
  const creds = await deriveCredentials('p\u00e4ss');
  for (const [hash, stored] of [['sha1', creds.scramSHA1], ['sha256', creds.scramSHA256]] as const) {
    assert.ok(stored.iterations >= 4096);
    const salted = await saltedPassword(hash, 'p\u00e4ss', Buffer.from(stored.salt, 'base64'), stored.iterations);
    const keys = scramKeys(hash, salted);
    assert.equal(keys.storedKey.toString('base64'), stored.storedKey);
    assert.equal(keys.serverKey.toString('base64'), stored.serverKey);
  }
  assert.notEqual(creds.scramSHA1.salt, creds.scramSHA256.salt);
  const state = { inner: Buffer.from(creds.cramMD5.inner, 'hex'), outer: Buffer.from(creds.cramMD5.outer, 'hex') };
  assert.deepEqual(hmacMD5FromState(state, Buffer.from('<1.2@x>')), createHmac('md5', 'p\u00e4ss').update('<1.2@x>').digest());
});

test('SASLprep: soft hyphen is mapped to nothing and compatibility forms are normalized', async () => {
  assert.equal(preparePassword('I\u00ADX'), 'IX');
  assert.equal(preparePassword('\u2168'), 'IX'); // RFC 4013 3 example: ROMAN NUMERAL NINE
  assert.equal(preparePassword('a\u00A0b'), 'a b'); // non-ASCII space mapped to SPACE
  const creds = await deriveCredentials('I\u00ADX');
  assert.equal(await verifyPassword(creds, 'IX'), true);
  assert.equal(await verifyPassword(creds, '\u2168'), true);
});

test('SASLprep: empty and prohibited passwords are rejected', async () => {
  for (const bad of ['', '\u00AD', 'a\u0007b', 'tab\there', '\u0627 1', 'x\uFFFD\uDFFF', 'private\uE000']) {
    await assert.rejects(deriveCredentials(bad), /password/, JSON.stringify(bad));
  }
  assert.throws(() => preparePassword('x'.repeat(1025)), /too long/);
});

test('passwords longer than 72 bytes are distinguished by their tail', async () => {
  const long = 'a'.repeat(80);
  const creds = await deriveCredentials(long + 'X');
  assert.equal(await verifyPassword(creds, long + 'X'), true);
  assert.equal(await verifyPassword(creds, long + 'Y'), false);
});

test('a verified password is remembered for its hash only', async () => {
  const creds = await deriveCredentials('remember me');
  assert.equal(await verifyPassword(creds, 'remember me'), true);
  const t0 = performance.now();
  assert.equal(await verifyPassword(creds, 'remember me'), true);
  assert.ok(performance.now() - t0 < 10, 'second check of the same password should not run bcrypt');
  assert.equal(await verifyPassword(creds, 'remember mE'), false);
  const changed = await deriveCredentials('a new password');
  assert.equal(await verifyPassword(changed, 'remember me'), false);
  assert.equal(await verifyPassword(changed, 'a new password'), true);
});
