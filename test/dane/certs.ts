// Certificates for the DANE tests: a root, an intermediate and leaves, made fresh for each run.

import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { issueCert as issueAny, type CertOptions, type Issued } from '../../src/tls/selfsigned.js';
import { associationData } from '../../src/dane/tlsa.js';
import type { TLSARecord } from '../../src/dns/types.js';

/**
 * issueCert with another draw when the random serial number comes out with a leading zero byte,
 * which is not minimal DER and which OpenSSL refuses ("illegal padding").
 */
export function issueCert(o: CertOptions): Issued {
  for (;;) {
    const c = issueAny(o);
    try {
      new X509Certificate(c.certDER);
      return c;
    } catch {
      // Draw again.
    }
  }
}

const by = (c: Issued) => ({ certDER: c.certDER, key: c.key, name: c.name });

export const root = issueCert({ names: ['Postern Test Root'], isCA: true });
export const intermediate = issueCert({ names: ['Postern Test Intermediate'], isCA: true, issuer: by(root) });
/** Leaf for mx.example.org under the intermediate. */
export const leaf = issueCert({ names: ['mx.example.org'], issuer: by(intermediate) });
/** Self-signed leaf, as common with DANE-EE. */
export const selfSigned = issueCert({ names: ['mx.example.org'] });
/** A leaf with an RSA key, signed by the intermediate. */
export const rsaLeaf = issueCert({ names: ['mx.example.org'], issuer: by(intermediate), key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey });

export function leafUnder(issuer: Issued, names: string[], days?: number): Issued {
  return issueCert({ names, days, issuer: by(issuer) });
}

export function selfSignedFor(names: string[], days?: number): Issued {
  return issueCert({ names, days });
}

/** A record for a certificate. */
export function tlsa(usage: number, selector: number, matchingType: number, cert: Issued): TLSARecord {
  return { usage, selector, matchingType, data: associationData(cert.certDER, selector, matchingType) };
}
