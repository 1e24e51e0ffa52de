import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { formatTLSA, isUsable, makeTLSARecord, spkiOf, usableRecords } from '../../src/dane/tlsa.js';
import { leaf, root, rsaLeaf, selfSigned } from './certs.js';

test('the SubjectPublicKeyInfo is taken from the certificate as encoded', () => {
  for (const c of [leaf, rsaLeaf, selfSigned, root]) {
    const exported = new X509Certificate(c.certDER).publicKey.export({ format: 'der', type: 'spki' });
    assert.deepEqual(spkiOf(c.certDER), exported);
  }
  assert.throws(() => spkiOf(Buffer.from([0x30, 0x03, 0x30, 0x01])), /truncated DER/);
  assert.throws(() => spkiOf(Buffer.from([0x30, 0x85, 1, 1, 1, 1, 1])), /bad DER length/);
  assert.throws(() => spkiOf(Buffer.alloc(0)), /truncated DER/);
});

test('makerecord from a certificate, for every selector and matching type', () => {
  const spki = spkiOf(leaf.certDER);
  const want: Record<string, Buffer> = {
    '0 0': leaf.certDER,
    '0 1': createHash('sha256').update(leaf.certDER).digest(),
    '0 2': createHash('sha512').update(leaf.certDER).digest(),
    '1 0': spki,
    '1 1': createHash('sha256').update(spki).digest(),
    '1 2': createHash('sha512').update(spki).digest(),
  };
  for (const [sm, data] of Object.entries(want)) {
    const [s, m] = sm.split(' ').map(Number) as [number, number];
    assert.deepEqual(makeTLSARecord(3, s, m, leaf.certPEM), { usage: 3, selector: s, matchingType: m, data }, sm);
    assert.deepEqual(makeTLSARecord(2, s, m, leaf.certDER).data, data, sm);
  }
});

test('makerecord from a public or private key gives the certificate key record', () => {
  const fromCert = makeTLSARecord(3, 1, 1, rsaLeaf.certPEM);
  const publicPEM = createPublicKey(rsaLeaf.key).export({ format: 'pem', type: 'spki' }) as string;
  assert.deepEqual(makeTLSARecord(3, 1, 1, publicPEM), fromCert);
  assert.deepEqual(makeTLSARecord(3, 1, 1, rsaLeaf.keyPEM), fromCert);
  assert.deepEqual(makeTLSARecord(3, 1, 1, rsaLeaf.key.export({ format: 'pem', type: 'pkcs1' }) as string), fromCert);
  assert.deepEqual(makeTLSARecord(3, 1, 1, leaf.keyPEM), makeTLSARecord(3, 1, 1, leaf.certPEM));
  // The first PEM block counts, as in a file with the leaf and then its chain.
  assert.deepEqual(makeTLSARecord(3, 1, 1, leaf.certPEM + root.certPEM), makeTLSARecord(3, 1, 1, leaf.certPEM));
});

test('makerecord rejects what cannot be made', () => {
  assert.throws(() => makeTLSARecord(4, 1, 1, leaf.certPEM), /unknown usage 4/);
  assert.throws(() => makeTLSARecord(3, 2, 1, leaf.certPEM), /unknown selector 2/);
  assert.throws(() => makeTLSARecord(3, 1, 3, leaf.certPEM), /unknown matching type 3/);
  assert.throws(() => makeTLSARecord(3, 0, 1, leaf.keyPEM), /selector 0 needs a certificate/);
  assert.throws(() => makeTLSARecord(3, 1, 1, 'hello'), /expected a PEM certificate/);
  assert.throws(() => makeTLSARecord(3, 1, 1, Buffer.from('not DER')), /not a valid certificate/);
  assert.throws(() => makeTLSARecord(3, 1, 1, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), /not a valid certificate/);
});

test('presentation form', () => {
  assert.equal(formatTLSA({ usage: 3, selector: 1, matchingType: 1, data: Buffer.from('0a1bff', 'hex') }), '3 1 1 0A1BFF');
});

const openssl = ['/usr/bin/openssl', '/usr/local/bin/openssl'].find(existsSync);

test('the SHA-256 of the public key is what openssl computes', { skip: openssl ? false : 'needs openssl' }, () => {
  for (const c of [leaf, rsaLeaf]) {
    const pem = execFileSync(openssl!, ['x509', '-noout', '-pubkey'], { input: c.certPEM });
    const spki = execFileSync(openssl!, ['pkey', '-pubin', '-outform', 'DER'], { input: pem });
    const hex = createHash('sha256').update(spki).digest('hex').toUpperCase();
    assert.equal(formatTLSA(makeTLSARecord(3, 1, 1, c.certPEM)), `3 1 1 ${hex}`);
  }
});

test('usable records: DANE usages, known selectors and matching types, data of the right size', () => {
  const sha256 = Buffer.alloc(32, 1);
  const sha512 = Buffer.alloc(64, 1);
  const usable = [
    { usage: 3, selector: 1, matchingType: 1, data: sha256 },
    { usage: 2, selector: 0, matchingType: 2, data: sha512 },
    { usage: 3, selector: 0, matchingType: 0, data: leaf.certDER },
    { usage: 2, selector: 1, matchingType: 0, data: spkiOf(root.certDER) },
  ];
  const unusable = [
    { usage: 0, selector: 1, matchingType: 1, data: sha256 },
    { usage: 1, selector: 1, matchingType: 1, data: sha256 },
    { usage: 4, selector: 1, matchingType: 1, data: sha256 },
    { usage: 255, selector: 1, matchingType: 1, data: sha256 },
    { usage: 3, selector: 2, matchingType: 1, data: sha256 },
    { usage: 3, selector: 1, matchingType: 3, data: sha256 },
    { usage: 3, selector: 1, matchingType: 1, data: sha256.subarray(1) },
    { usage: 3, selector: 1, matchingType: 1, data: sha512 },
    { usage: 3, selector: 1, matchingType: 2, data: sha256 },
    { usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(0) },
    { usage: 3, selector: 0, matchingType: 0, data: Buffer.from('not a certificate') },
    { usage: 3, selector: 1, matchingType: 0, data: Buffer.from('not a key') },
    { usage: 3, selector: 1, matchingType: 0, data: Buffer.alloc(0) },
  ];
  for (const r of usable) assert.equal(isUsable(r), true, JSON.stringify(r));
  for (const r of unusable) assert.equal(isUsable(r), false, JSON.stringify(r));
  assert.deepEqual(usableRecords([...unusable, ...usable]), usable);
});
