import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyDANE, type Verification } from '../../src/dane/verify.js';
import { spkiOf } from '../../src/dane/tlsa.js';
import { issueCert } from './certs.js';
import type { TLSARecord } from '../../src/dns/types.js';
import { intermediate, leaf, leafUnder, root, rsaLeaf, selfSigned, selfSignedFor, tlsa } from './certs.js';

const names = ['mx.example.org'];
const chain = [leaf.certDER, intermediate.certDER, root.certDER];

function verified(v: Verification, record?: TLSARecord): void {
  assert.equal(v.verified, true, v.verified ? '' : v.reason);
  if (record && v.verified) assert.deepEqual(v.record, record);
}

function rejected(v: Verification, resultType: string, reason: RegExp): void {
  assert.equal(v.verified, false);
  if (!v.verified) {
    assert.equal(v.resultType, resultType, v.reason);
    assert.match(v.reason, reason);
  }
}

test('DANE-EE 3 1 1 matches a self-signed leaf; another key does not', () => {
  const r = tlsa(3, 1, 1, selfSigned);
  verified(verifyDANE([r], [selfSigned.certDER], { names }), r);
  rejected(verifyDANE([tlsa(3, 1, 1, selfSignedFor(['mx.example.org']))], [selfSigned.certDER], { names }), 'certificate-not-trusted', /no DANE-EE record matches/);
});

test('DANE-EE 3 0 1, 3 1 2, 3 0 0 and 3 1 0 match; EC and RSA keys', () => {
  for (const r of [tlsa(3, 0, 1, selfSigned), tlsa(3, 1, 2, selfSigned), tlsa(3, 0, 0, selfSigned), tlsa(3, 1, 0, selfSigned)]) {
    verified(verifyDANE([r], [selfSigned.certDER], { names }), r);
  }
  verified(verifyDANE([tlsa(3, 1, 1, rsaLeaf)], [rsaLeaf.certDER, intermediate.certDER], { names }));
  // The same key in a new certificate still matches 3 1 1, not 3 0 1.
  const renewed = issueCert({ names: ['mx.example.org'], key: selfSigned.key });
  verified(verifyDANE([tlsa(3, 1, 1, selfSigned)], [renewed.certDER], { names }));
  rejected(verifyDANE([tlsa(3, 0, 1, selfSigned)], [renewed.certDER], { names }), 'certificate-not-trusted', /./);
});

test('DANE-EE ignores names and expiry (RFC 7672 3.1.1)', () => {
  const expired = selfSignedFor(['somewhere.else.example'], -1);
  verified(verifyDANE([tlsa(3, 1, 1, expired)], [expired.certDER], { names }));
  verified(verifyDANE([tlsa(3, 1, 1, selfSigned)], [selfSigned.certDER], { names: [] }));
  // Only the leaf counts for DANE-EE, not other certificates of the chain.
  rejected(verifyDANE([tlsa(3, 1, 1, intermediate)], chain, { names }), 'certificate-not-trusted', /no DANE-EE record/);
});

test('DANE-TA 2 0 1 for the root or the intermediate verifies the chain', () => {
  verified(verifyDANE([tlsa(2, 0, 1, root)], chain, { names }));
  verified(verifyDANE([tlsa(2, 0, 1, intermediate)], chain, { names }));
  verified(verifyDANE([tlsa(2, 1, 1, intermediate)], chain.slice(0, 2), { names }));
  verified(verifyDANE([tlsa(2, 1, 2, root)], chain, { names: ['MX.example.org'] }));
  // Any one of the names will do.
  verified(verifyDANE([tlsa(2, 0, 1, root)], chain, { names: ['example.org', 'mx.example.org'] }));
  // Order of the certificates after the leaf does not matter.
  verified(verifyDANE([tlsa(2, 0, 1, root)], [leaf.certDER, root.certDER, intermediate.certDER], { names }));
});

test('DANE-TA with the wrong name fails as a host mismatch', () => {
  rejected(verifyDANE([tlsa(2, 0, 1, root)], chain, { names: ['mx.example.net'] }), 'certificate-host-mismatch', /not for mx\.example\.net/);
  rejected(verifyDANE([tlsa(2, 0, 1, root)], chain, { names: ['example.org'] }), 'certificate-host-mismatch', /./);
  rejected(verifyDANE([tlsa(2, 0, 1, root)], chain, { names: [] }), 'certificate-host-mismatch', /./);
});

test('DANE-TA wildcards stand for exactly one whole label (RFC 7672 3.2.3)', () => {
  const wild = leafUnder(intermediate, ['*.example.org']);
  const c = [wild.certDER, intermediate.certDER];
  const r = [tlsa(2, 0, 1, intermediate)];
  verified(verifyDANE(r, c, { names: ['mx.example.org'] }));
  rejected(verifyDANE(r, c, { names: ['a.mx.example.org'] }), 'certificate-host-mismatch', /./);
  rejected(verifyDANE(r, c, { names: ['example.org'] }), 'certificate-host-mismatch', /./);
  const partial = leafUnder(intermediate, ['mx*.example.org']);
  rejected(verifyDANE(r, [partial.certDER, intermediate.certDER], { names: ['mx1.example.org'] }), 'certificate-host-mismatch', /./);
});

test('DANE-TA checks the validity of the certificates below the anchor', () => {
  const expired = leafUnder(intermediate, ['mx.example.org'], -1);
  rejected(verifyDANE([tlsa(2, 0, 1, root)], [expired.certDER, intermediate.certDER, root.certDER], { names }), 'certificate-expired', /expired or not yet valid/);
  // A clock before the certificates were made.
  rejected(verifyDANE([tlsa(2, 0, 1, root)], chain, { names, now: Date.now() - 86400_000 }), 'certificate-expired', /./);
  verified(verifyDANE([tlsa(2, 0, 1, root)], chain, { names, now: Date.now() + 86400_000 }));
});

test('a DANE-TA anchor in full may be left out of the chain; a digest may not', () => {
  const withoutRoot = chain.slice(0, 2);
  verified(verifyDANE([{ usage: 2, selector: 1, matchingType: 0, data: spkiOf(root.certDER) }], withoutRoot, { names }));
  verified(verifyDANE([{ usage: 2, selector: 0, matchingType: 0, data: root.certDER }], withoutRoot, { names }));
  verified(verifyDANE([{ usage: 2, selector: 0, matchingType: 0, data: intermediate.certDER }], [leaf.certDER], { names }));
  rejected(verifyDANE([tlsa(2, 0, 1, root)], withoutRoot, { names }), 'certificate-not-trusted', /no TLSA record matches/);
  // Missing intermediate: the leaf does not chain to the root.
  rejected(verifyDANE([tlsa(2, 0, 1, root)], [leaf.certDER, root.certDER], { names }), 'certificate-not-trusted', /./);
});

test('DANE-TA does not accept the leaf as its own anchor', () => {
  rejected(verifyDANE([tlsa(2, 0, 1, selfSigned)], [selfSigned.certDER], { names }), 'certificate-not-trusted', /./);
  rejected(verifyDANE([tlsa(2, 1, 1, leaf)], chain, { names }), 'certificate-not-trusted', /./);
  // Not even a self-signed leaf that says it is a CA, given in full.
  const caLeaf = issueCert({ names: ['mx.example.org'], isCA: true });
  for (const r of [tlsa(2, 0, 0, caLeaf), tlsa(2, 0, 1, caLeaf), tlsa(2, 1, 1, caLeaf)]) {
    rejected(verifyDANE([r], [caLeaf.certDER], { names }), 'certificate-not-trusted', /./);
  }
  // A bare key is an anchor for what it signed, as OpenSSL has it, names still checked.
  verified(verifyDANE([tlsa(2, 1, 0, caLeaf)], [caLeaf.certDER], { names }));
  rejected(verifyDANE([tlsa(2, 1, 0, caLeaf)], [caLeaf.certDER], { names: ['mx.example.net'] }), 'certificate-host-mismatch', /./);
});

test('DANE-TA rejects a chain with a forged issuer', () => {
  // Same issuer name as the real intermediate, but another key.
  const fake = issueCert({ names: ['Postern Test Intermediate'], isCA: true });
  const forged = leafUnder(fake, ['mx.example.org']);
  rejected(verifyDANE([tlsa(2, 0, 1, root)], [forged.certDER, intermediate.certDER, root.certDER], { names }), 'certificate-not-trusted', /./);
  rejected(verifyDANE([tlsa(2, 0, 1, intermediate)], [forged.certDER, intermediate.certDER], { names }), 'certificate-not-trusted', /./);
});

test('DANE-TA needs a CA: a leaf cannot issue another', () => {
  const notCA = issueCert({ names: ['Postern Test Leaf CA'] });
  const under = leafUnder(notCA, ['mx.example.org']);
  rejected(verifyDANE([tlsa(2, 0, 1, notCA)], [under.certDER, notCA.certDER], { names }), 'certificate-not-trusted', /./);
});

test('unusable records are ignored; with none usable nothing verifies', () => {
  const pkix = [tlsa(0, 0, 1, root), tlsa(1, 1, 1, leaf), tlsa(1, 0, 0, leaf)];
  const malformed = [
    { usage: 3, selector: 1, matchingType: 1, data: tlsa(3, 1, 1, leaf).data.subarray(0, 31) },
    { usage: 3, selector: 1, matchingType: 9, data: tlsa(3, 1, 1, leaf).data },
    { usage: 3, selector: 7, matchingType: 1, data: tlsa(3, 1, 1, leaf).data },
  ];
  rejected(verifyDANE([...pkix, ...malformed], chain, { names }), 'tlsa-invalid', /no usable TLSA records/);
  const good = tlsa(3, 1, 1, leaf);
  verified(verifyDANE([...pkix, ...malformed, good], chain, { names }), good);
});

test('an empty or unparsable chain is rejected', () => {
  rejected(verifyDANE([tlsa(3, 1, 1, leaf)], [], { names }), 'certificate-not-trusted', /no server certificate/);
  rejected(verifyDANE([tlsa(3, 1, 1, leaf)], [Buffer.from('junk')], { names }), 'certificate-not-trusted', /./);
  rejected(verifyDANE([tlsa(2, 0, 1, root)], [Buffer.from('junk'), root.certDER], { names }), 'validation-failure', /does not parse/);
});

test('hostile chains stay cheap', () => {
  const junk = Array.from({ length: 5000 }, (_, i) => Buffer.alloc(100, i));
  const many = Array.from({ length: 40 }, () => intermediate.certDER);
  const start = performance.now();
  rejected(verifyDANE([tlsa(2, 0, 1, root)], [leaf.certDER, ...junk], { names }), 'certificate-not-trusted', /./);
  rejected(verifyDANE([tlsa(2, 0, 1, root)], [leaf.certDER, ...many], { names }), 'certificate-not-trusted', /./);
  assert.ok(performance.now() - start < 2000);
});
