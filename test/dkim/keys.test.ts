import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';

import {
  genEd25519,
  genRSA,
  KeyRecordError,
  loadPrivateKey,
  parseKeyRecord,
  recordPublicKey,
  txtRecord,
  txtStrings,
  zoneTXT,
} from '../../src/dkim/keys.js';

test('genEd25519 gives PKCS#8 PEM whose record holds the raw 32-byte key (RFC 8463 4.2)', async () => {
  const pem = await genEd25519();
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
  const record = txtRecord(pem);
  assert.match(record, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
  const parsed = parseKeyRecord(record);
  assert.equal(parsed.keyType, 'ed25519');
  assert.equal(parsed.data.length, 32);
  assert.equal(recordPublicKey(parsed).export({ format: 'jwk' }).x, createPublicKey(createPrivateKey(pem)).export({ format: 'jwk' }).x);
});

test('genRSA gives PKCS#8 PEM of the requested size; its record holds the SPKI', async () => {
  const pem = await genRSA(1024);
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal(createPrivateKey(pem).asymmetricKeyDetails?.modulusLength, 1024);
  const record = txtRecord(pem);
  assert.match(record, /^v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ/);
  const pub = recordPublicKey(parseKeyRecord(record));
  assert.equal(pub.asymmetricKeyDetails?.modulusLength, 1024);
  await assert.rejects(genRSA(512), RangeError);
});

test('RSA keys are refused below 1024 bits, other key types always', () => {
  const small = generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey;
  assert.throws(() => loadPrivateKey(small), RangeError);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  assert.throws(() => loadPrivateKey(ec), TypeError);
  assert.throws(() => txtRecord(ec), TypeError);
});

test('a bare PKCS#1 RSA key in p= is accepted', () => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const p = publicKey.export({ type: 'pkcs1', format: 'der' }).toString('base64');
  assert.equal(recordPublicKey(parseKeyRecord(`k=rsa; p=${p}`)).asymmetricKeyType, 'rsa');
});

test('TXT values are split in character-strings of at most 255 bytes and quoted for zone files', () => {
  const record = 'v=DKIM1; k=rsa; p=' + 'A'.repeat(600);
  const parts = txtStrings(record);
  assert.deepEqual(
    parts.map((p) => p.length),
    [255, 255, 108],
  );
  assert.equal(parts.join(''), record);
  assert.equal(zoneTXT(record), parts.map((p) => `"${p}"`).join(' '));
  assert.equal(zoneTXT('a"b\\c'), '"a\\"b\\\\c"');
  assert.deepEqual(txtStrings(''), ['']);
});

test('key record tags and defaults (RFC 6376 3.6.1)', () => {
  const r = parseKeyRecord('v=DKIM1; p=AQ AB');
  assert.deepEqual(r, { keyType: 'rsa', hashes: undefined, services: ['*'], flags: [], data: Buffer.from([1, 0, 1]) });
  const s = parseKeyRecord('v=DKIM1; h=SHA256 : sha1; k=ED25519; n=note; s=email:*; t=y:S; x=unknown; p=');
  assert.deepEqual(s, { keyType: 'ed25519', hashes: ['sha256', 'sha1'], services: ['email', '*'], flags: ['y', 's'], data: Buffer.alloc(0) });
});

test('malformed key records are refused', () => {
  for (const bad of ['v=DKIM2; p=AQAB', 'k=rsa; v=DKIM1; p=AQAB', 'v=DKIM1; k=rsa', 'v=DKIM1; p=AQ!B', 'p=AQAB; p=AQAB', 'v=DKIM1 p=AQAB']) {
    assert.throws(() => parseKeyRecord(bad), KeyRecordError, bad);
  }
  assert.throws(() => recordPublicKey(parseKeyRecord('k=ed25519; p=AQAB')), KeyRecordError);
  assert.throws(() => recordPublicKey(parseKeyRecord('k=rsa; p=AQAB')), KeyRecordError);
  assert.throws(() => recordPublicKey(parseKeyRecord('k=dsa; p=AQAB')), KeyRecordError);
});

test('a key of the other type in p= is refused', async () => {
  const ed = parseKeyRecord(txtRecord(await genEd25519()));
  const { publicKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  assert.throws(() => recordPublicKey(parseKeyRecord(`k=rsa; p=${spki}`)), KeyRecordError);
  assert.throws(() => recordPublicKey({ ...ed, keyType: 'rsa' }), KeyRecordError);
});
