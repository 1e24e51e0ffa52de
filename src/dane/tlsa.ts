// TLSA record data (RFC 6698 2.1): what a record's selector picks from a certificate and how its
// matching type compares it, and which records SMTP can use (RFC 7672 3.1).

import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import type { TLSARecord } from '../dns/types.js';

export const Usage = { PKIX_TA: 0, PKIX_EE: 1, DANE_TA: 2, DANE_EE: 3 } as const;
export const Selector = { CERT: 0, SPKI: 1 } as const;
export const MatchingType = { FULL: 0, SHA256: 1, SHA512: 2 } as const;

/** The DER element at `pos`: its tag and where its contents start and end. */
function element(der: Buffer, pos: number): { tag: number; start: number; end: number } {
  if (pos + 2 > der.length) throw new Error('truncated DER');
  const tag = der[pos]!;
  let len = der[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > der.length) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  if (start + len > der.length) throw new Error('truncated DER');
  return { tag, start, end: start + len };
}

/** The certificate's SubjectPublicKeyInfo exactly as encoded in it (RFC 5280 4.1). */
export function spkiOf(certDER: Buffer): Buffer {
  const cert = element(certDER, 0);
  const tbs = element(certDER, cert.start);
  let pos = tbs.start;
  // The optional explicit version, then serial, signature, issuer, validity and subject.
  if (element(certDER, pos).tag === 0xa0) pos = element(certDER, pos).end;
  for (let i = 0; i < 5; i++) pos = element(certDER, pos).end;
  const spki = element(certDER, pos);
  if (spki.tag !== 0x30 || spki.end > tbs.end) throw new Error('no SubjectPublicKeyInfo');
  return certDER.subarray(pos, spki.end);
}

/** The record data for a certificate under a selector and matching type (RFC 6698 2.1.2, 2.1.3). */
export function associationData(certDER: Buffer, selector: number, matchingType: number): Buffer {
  const selected = selector === Selector.CERT ? certDER : spkiOf(certDER);
  return digest(selected, matchingType);
}

function digest(data: Buffer, matchingType: number): Buffer {
  if (matchingType === MatchingType.SHA256) return createHash('sha256').update(data).digest();
  if (matchingType === MatchingType.SHA512) return createHash('sha512').update(data).digest();
  return data;
}

/** Whether a record matches a certificate. */
export function matches(r: TLSARecord, certDER: Buffer): boolean {
  try {
    return associationData(certDER, r.selector, r.matchingType).equals(r.data);
  } catch {
    return false;
  }
}

/**
 * Whether SMTP can use a record: DANE-TA or DANE-EE (RFC 7672 3.1.3 leaves out the PKIX usages),
 * a known selector and matching type, and data of the right form (RFC 7671 4.1). Other records
 * are ignored, as if absent.
 */
export function isUsable(r: TLSARecord): boolean {
  if (r.usage !== Usage.DANE_TA && r.usage !== Usage.DANE_EE) return false;
  if (r.selector !== Selector.CERT && r.selector !== Selector.SPKI) return false;
  switch (r.matchingType) {
    case MatchingType.SHA256:
      return r.data.length === 32;
    case MatchingType.SHA512:
      return r.data.length === 64;
    case MatchingType.FULL:
      try {
        if (r.selector === Selector.CERT) new X509Certificate(r.data);
        else createPublicKey({ key: r.data, format: 'der', type: 'spki' });
        return true;
      } catch {
        return false;
      }
    default:
      return false;
  }
}

export function usableRecords(records: TLSARecord[]): TLSARecord[] {
  return records.filter(isUsable);
}

/**
 * Builds a TLSA record from a PEM certificate, public key or private key, or a DER certificate,
 * as for "postern dane makerecord". The first PEM block counts.
 */
export function makeTLSARecord(usage: number, selector: number, matchingType: number, input: string | Buffer): TLSARecord {
  if (![0, 1, 2, 3].includes(usage)) throw new Error(`unknown usage ${usage}: 0 to 3`);
  if (![0, 1].includes(selector)) throw new Error(`unknown selector ${selector}: 0 (certificate) or 1 (public key)`);
  if (![0, 1, 2].includes(matchingType)) throw new Error(`unknown matching type ${matchingType}: 0 (full), 1 (SHA-256) or 2 (SHA-512)`);
  let selected: Buffer;
  const text = Buffer.isBuffer(input) ? input.toString('latin1') : input;
  const pem = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/.exec(text);
  if (pem?.[1] === 'CERTIFICATE' || (!pem && Buffer.isBuffer(input))) {
    const der = pem ? Buffer.from(pem[2]!, 'base64') : (input as Buffer);
    try {
      new X509Certificate(der);
    } catch (err) {
      throw new Error(`not a valid certificate: ${(err as Error).message}`);
    }
    selected = selector === Selector.CERT ? der : spkiOf(der);
  } else if (pem && /^(PUBLIC KEY|(RSA |EC )?PRIVATE KEY)$/.test(pem[1]!)) {
    if (selector === Selector.CERT) throw new Error('selector 0 needs a certificate, not a key');
    selected = createPublicKey(pem[0]).export({ format: 'der', type: 'spki' });
  } else {
    throw new Error('expected a PEM certificate, public key or private key');
  }
  return { usage, selector, matchingType, data: digest(selected, matchingType) };
}

/** Presentation form, as in a zone file: "3 1 1 A0B1…" (RFC 6698 2.2). */
export function formatTLSA(r: TLSARecord): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex').toUpperCase()}`;
}
