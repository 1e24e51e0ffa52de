// DKIM keys: generation, the DNS key record (RFC 6376 3.6.1), and reading it back.

import { createPrivateKey, createPublicKey, generateKeyPair, KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

import { colonList, decodeBase64, parseTags, quote, TagError } from './tags.js';

const generate = promisify(generateKeyPair);

/** RFC 8301 3.2: signers must use RSA keys of at least 1024 bits. */
export const MIN_RSA_BITS = 1024;
/** Larger RSA keys are refused: verifying them is slow and nobody needs them. */
export const MAX_RSA_BITS = 8192;

/** A new RSA private key as PKCS#8 PEM. */
export async function genRSA(bits = 2048): Promise<string> {
  if (!Number.isInteger(bits) || bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw new RangeError(`RSA key size must be ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`);
  }
  const { privateKey } = await generate('rsa', {
    modulusLength: bits,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return privateKey;
}

/** A new Ed25519 private key as PKCS#8 PEM (RFC 8463). */
export async function genEd25519(): Promise<string> {
  const { privateKey } = await generate('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return privateKey;
}

/** Loads a signing key, refusing key types DKIM has no algorithm for and RSA keys that are too small. */
export function loadPrivateKey(key: KeyObject | string | Buffer): KeyObject {
  const k = key instanceof KeyObject ? key : createPrivateKey(key);
  if (k.type !== 'private') throw new TypeError('not a private key');
  if (k.asymmetricKeyType === 'rsa') {
    const bits = k.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
      throw new RangeError(`RSA key of ${bits} bits; DKIM needs ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`);
    }
  } else if (k.asymmetricKeyType !== 'ed25519') {
    throw new TypeError(`unsupported key type ${k.asymmetricKeyType}; DKIM signs with rsa or ed25519`);
  }
  return k;
}

/** The TXT record value publishing a private key's public half, e.g. "v=DKIM1; k=ed25519; p=...". */
export function txtRecord(privateKey: KeyObject | string | Buffer): string {
  const k = loadPrivateKey(privateKey);
  const pub = createPublicKey(k);
  if (k.asymmetricKeyType === 'ed25519') {
    // RFC 8463 4.2: p= holds the raw 32-byte public key.
    const x = pub.export({ format: 'jwk' }).x!;
    return `v=DKIM1; k=ed25519; p=${Buffer.from(x, 'base64url').toString('base64')}`;
  }
  // RFC 6376 3.6.1 and appendix C: an RSA p= is the DER SubjectPublicKeyInfo.
  return `v=DKIM1; k=rsa; p=${pub.export({ type: 'spki', format: 'der' }).toString('base64')}`;
}

/** Splits a TXT value into character-strings of at most 255 bytes (RFC 1035 3.3.14). */
export function txtStrings(record: string): string[] {
  const bytes = Buffer.from(record, 'utf8');
  const out: string[] = [];
  for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255).toString('utf8'));
  return out.length ? out : [''];
}

/** A TXT value as zone file text: quoted character-strings separated by spaces (RFC 1035 5.1). */
export function zoneTXT(record: string): string {
  return txtStrings(record)
    .map((s) => '"' + s.replace(/[\\"]/g, '\\$&') + '"')
    .join(' ');
}

export class KeyRecordError extends Error {
  override name = 'KeyRecordError';
}

export interface KeyRecord {
  /** k=, lower case; "rsa" by default. */
  keyType: string;
  /** h=, lower case; undefined allows every hash. */
  hashes?: string[];
  /** s=, lower case; ["*"] by default. */
  services: string[];
  /** t=, lower case, e.g. "y" (testing) and "s" (no subdomains in i=). */
  flags: string[];
  /** p= decoded; empty when the key is revoked. */
  data: Buffer;
}

/** Parses a key record (RFC 6376 3.6.1). */
export function parseKeyRecord(txt: string): KeyRecord {
  let tags: Map<string, string>;
  try {
    tags = parseTags(txt);
  } catch (e) {
    throw new KeyRecordError((e as Error).message);
  }
  const v = tags.get('v');
  // RFC 6376 3.6.1: v=, if present, is first and is exactly "DKIM1".
  if (v !== undefined && (v !== 'DKIM1' || tags.keys().next().value !== 'v')) {
    throw new KeyRecordError('v= must be the first tag and be DKIM1');
  }
  const p = tags.get('p');
  if (p === undefined) throw new KeyRecordError('missing p= tag');
  let data: Buffer;
  try {
    data = decodeBase64(p, 'p');
  } catch (e) {
    throw new KeyRecordError((e as TagError).message);
  }
  const list = (tag: string) => {
    const value = tags.get(tag);
    return value === undefined ? undefined : colonList(value.toLowerCase());
  };
  return {
    keyType: (tags.get('k') ?? 'rsa').toLowerCase(),
    hashes: list('h'),
    services: list('s') ?? ['*'],
    flags: list('t') ?? [],
    data,
  };
}

/** The public key in a record; throws KeyRecordError if it is not usable as its k= type. */
export function recordPublicKey(record: KeyRecord): KeyObject {
  let key: KeyObject | undefined;
  if (record.keyType === 'rsa') {
    // Some publishers put a bare PKCS#1 RSAPublicKey in p= (RFC 6376 3.6.1 reads that way).
    for (const type of ['spki', 'pkcs1'] as const) {
      try {
        key = createPublicKey({ key: record.data, format: 'der', type });
        break;
      } catch {
        // try the next encoding
      }
    }
  } else if (record.keyType === 'ed25519') {
    if (record.data.length !== 32) throw new KeyRecordError('ed25519 key must be 32 bytes');
    try {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: record.data.toString('base64url') }, format: 'jwk' });
    } catch {
      // reported below
    }
  } else {
    throw new KeyRecordError(`unsupported key type k=${quote(record.keyType)}`);
  }
  if (key?.asymmetricKeyType !== record.keyType) throw new KeyRecordError(`p= is not a valid ${record.keyType} public key`);
  return key;
}
