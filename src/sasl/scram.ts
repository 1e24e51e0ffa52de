// SCRAM primitives shared by the server and client mechanisms (RFC 5802, RFC 7677).
import { createHash, createHmac, pbkdf2 } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

export type ScramHash = 'sha1' | 'sha256';

/** Digest size in bytes of each SCRAM hash. */
export const HASH_SIZE: Record<ScramHash, number> = { sha1: 20, sha256: 32 };

/** RFC 7677 4: at least 4096 iterations; also the count used for newly stored keys. */
export const MIN_ITERATIONS = 4096;

export function hmac(hash: ScramHash, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(hash, key).update(data).digest();
}

export function sha(hash: ScramHash, data: Buffer): Buffer {
  return createHash(hash).update(data).digest();
}

/** RFC 5802 2.2: Hi() is PBKDF2 with HMAC as the PRF; the password must already be prepared. */
export function saltedPassword(hash: ScramHash, password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return pbkdf2Async(Buffer.from(password, 'utf8'), salt, iterations, HASH_SIZE[hash], hash);
}

/** RFC 5802 3: the keys derived from SaltedPassword. */
export function scramKeys(hash: ScramHash, salted: Buffer): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmac(hash, salted, 'Client Key');
  return { clientKey, storedKey: sha(hash, clientKey), serverKey: hmac(hash, salted, 'Server Key') };
}

export function xor(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((x, i) => x ^ b[i]!));
}

/** RFC 5802 7: saslname escapes ',' as =2C and '=' as =3D. */
export function encodeSaslname(s: string): string {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** Undoes saslname escaping; undefined for any other use of '=' (RFC 5802 5.1). */
export function decodeSaslname(s: string): string | undefined {
  if (/=(?!2C|3D)/.test(s)) return undefined;
  return s.replace(/=2C|=3D/g, (m) => (m === '=2C' ? ',' : '='));
}

/** RFC 5802 7: printable ASCII except ','. */
export const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** Strict base64 (RFC 5802 7 uses RFC 4648 base64 with padding). */
export function decodeBase64(s: string): Buffer | undefined {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

/**
 * Splits "k=v,k=v" into attributes, requiring each to be a single letter followed by '='.
 * Returns undefined for anything else.
 */
export function parseAttributes(s: string): { name: string; value: string }[] | undefined {
  const out: { name: string; value: string }[] = [];
  for (const part of s.split(',')) {
    if (!/^[A-Za-z]=/.test(part)) return undefined;
    out.push({ name: part[0]!, value: part.slice(2) });
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes strict UTF-8, or undefined. */
export function decodeUTF8(data: Buffer): string | undefined {
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}
