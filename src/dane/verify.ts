// Verifying the certificate chain an SMTP server presented against its TLSA records
// (RFC 6698, RFC 7671, RFC 7672 3).

import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { TLSARecord } from '../dns/types.js';
import type { ResultType } from '../tlsrpt/report.js';
import { matches, MatchingType, Selector, Usage, usableRecords } from './tlsa.js';

export interface VerifyOptions {
  /**
   * Names a certificate verified through DANE-TA must match (RFC 7672 3.2.3): the TLSA base
   * domain, the MX host name, and the next-hop domain when the MX lookup was DNSSEC-authentic.
   */
  names: string[];
  /** Milliseconds since the epoch, for validity periods under DANE-TA. Default Date.now(). */
  now?: number;
}

export type Verification =
  | { verified: true; record: TLSARecord }
  /** With the TLS report result type for the failure (RFC 8460 4.3.1). */
  | { verified: false; reason: string; resultType: ResultType };

// Chains are short; a bound keeps hostile ones cheap.
const MAX_CHAIN = 16;

/**
 * Checks a server's certificate chain (DER, leaf first, as presented) against TLSA records that
 * came from a DNSSEC-authentic answer. Unusable records are ignored; with none left, nothing
 * can be verified. DANE-EE pins the leaf whatever its names and dates (RFC 7672 3.1.1);
 * DANE-TA names a trust anchor the leaf must chain to, with names and dates checked
 * (RFC 7672 3.1.2, 3.2).
 */
export function verifyDANE(records: TLSARecord[], chain: Buffer[], opts: VerifyOptions): Verification {
  const usable = usableRecords(records);
  if (usable.length === 0) return { verified: false, reason: 'no usable TLSA records', resultType: 'tlsa-invalid' };
  const leafDER = chain[0];
  if (!leafDER) return { verified: false, reason: 'no server certificate', resultType: 'certificate-not-trusted' };
  for (const r of usable) {
    if (r.usage === Usage.DANE_EE && matches(r, leafDER)) return { verified: true, record: r };
  }
  const anchors = usable.filter((r) => r.usage === Usage.DANE_TA);
  if (anchors.length === 0) return { verified: false, reason: 'no DANE-EE record matches the server certificate', resultType: 'certificate-not-trusted' };
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafDER);
  } catch (err) {
    return { verified: false, reason: `server certificate does not parse: ${(err as Error).message}`, resultType: 'validation-failure' };
  }
  const certs = chain.slice(1, MAX_CHAIN).flatMap((der) => {
    try {
      return [{ der, x: new X509Certificate(der) }];
    } catch {
      return [];
    }
  });
  return verifyTA(anchors, { der: leafDER, x: leaf }, certs, opts);
}

interface Cert {
  der: Buffer;
  x: X509Certificate;
}

/**
 * RFC 7671 5.2: the trust anchor is a certificate the chain leads to, or, for records carrying
 * the full certificate or key, one the server need not send (RFC 7671 5.2.2, 5.2.3).
 */
function verifyTA(anchors: TLSARecord[], leaf: Cert, certs: Cert[], opts: VerifyOptions): Verification {
  const now = opts.now ?? Date.now();
  // RFC 7672 3.2.3: wildcards only as the whole left-most label, standing for one label.
  const nameOK = opts.names.some(
    (n) => leaf.x.checkHost(n, { subject: 'default', wildcards: true, partialWildcards: false, multiLabelWildcards: false, singleLabelSubdomains: false }) !== undefined,
  );
  // The leaf is not its own trust anchor, also when the record carries it in full; a bare key
  // that signed the leaf is an anchor even if it is the leaf's own key, as for OpenSSL.
  const inDNS = anchors.flatMap((r) => {
    const ta = anchorFromRecord(r);
    return ta && !ta.cert?.raw.equals(leaf.der) ? [{ r, ...ta }] : [];
  });
  const path = [leaf];
  for (let cur = leaf; path.length <= MAX_CHAIN; ) {
    const inChain = path.length > 1 ? anchors.find((r) => matches(r, cur.der)) : undefined;
    const fromDNS = inChain ? undefined : inDNS.find((a) => (!a.cert || (a.cert.ca && cur.x.checkIssued(a.cert))) && signedBy(cur.x, a.key));
    const record = inChain ?? fromDNS?.r;
    if (record) {
      // The anchor itself is trusted as it is; the certificates below it must be current.
      const below = inChain ? path.slice(0, -1) : path;
      const stale = below.find((c) => !(Date.parse(c.x.validFrom) <= now && now <= Date.parse(c.x.validTo)));
      if (stale) return { verified: false, reason: `certificate ${JSON.stringify(stale.x.subject.replace(/\n/g, ', ').slice(0, 200))} is expired or not yet valid`, resultType: 'certificate-expired' };
      if (!nameOK) return { verified: false, reason: `server certificate is not for ${opts.names.join(', ') || 'any allowed name'}`, resultType: 'certificate-host-mismatch' };
      return { verified: true, record };
    }
    const issuer = certs.find((c) => !path.includes(c) && c.x.ca && cur.x.checkIssued(c.x) && signedBy(cur.x, c.x.publicKey));
    if (!issuer) break;
    path.push(issuer);
    cur = issuer;
  }
  return { verified: false, reason: 'no TLSA record matches the server certificate or a trust anchor it chains to', resultType: 'certificate-not-trusted' };
}

/** The key, and certificate if any, of a DANE-TA record that carries them in full. */
function anchorFromRecord(r: TLSARecord): { key: KeyObject; cert?: X509Certificate } | undefined {
  if (r.matchingType !== MatchingType.FULL) return undefined;
  try {
    if (r.selector === Selector.SPKI) return { key: createPublicKey({ key: r.data, format: 'der', type: 'spki' }) };
    const cert = new X509Certificate(r.data);
    return { key: cert.publicKey, cert };
  } catch {
    return undefined;
  }
}

function signedBy(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.verify(key);
  } catch {
    return false;
  }
}
