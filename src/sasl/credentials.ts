// Derived secrets stored per account. Postern never stores the password itself.
import { createHmac, randomBytes } from 'node:crypto';
import saslprep from '@mongodb-js/saslprep';
import bcrypt from 'bcryptjs';
import { hmacMD5State } from './md5.js';
import { MIN_ITERATIONS, type ScramHash, saltedPassword, scramKeys } from './scram.js';

/** Salted SCRAM keys (RFC 5802 3); binary values in base64. */
export interface ScramCredentials {
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

/**
 * Everything needed to check a password, JSON-serializable.
 *
 * The CRAM-MD5 states allow fast offline guessing if the store leaks; they are kept because some
 * clients still use CRAM-MD5, so the store must be protected like the passwords themselves.
 */
export interface StoredCredentials {
  /** bcrypt over a fixed-length digest of the prepared password, see `bcryptInput`. */
  bcrypt: string;
  scramSHA1: ScramCredentials;
  scramSHA256: ScramCredentials;
  /** HMAC-MD5 states after the key^ipad and key^opad blocks (RFC 2104 4), hex. */
  cramMD5: { inner: string; outer: string };
}

/**
 * bcrypt cost 10 (about 75 ms with bcryptjs): the minimum generally recommended, chosen because
 * bcryptjs runs on the main thread and IMAP clients log in often, so each point more doubles the
 * CPU a login flood costs. Offline resistance is bounded by the CRAM-MD5 state anyway.
 */
const BCRYPT_COST = 10;

/** Upper bound on prepared password size, in UTF-8 bytes, to bound hashing work. */
export const MAX_PASSWORD_BYTES = 1024;

/**
 * Prepares a password with SASLprep (RFC 4013, profile of RFC 3454 stringprep) for storing and
 * comparing. Throws on an empty result, prohibited or unassigned code points, or excessive size.
 */
export function preparePassword(password: string): string {
  let prepared: string;
  try {
    prepared = saslprep(password);
  } catch (err) {
    throw new Error(`password not acceptable: ${(err as Error).message.replace(/, see .*$/, '')}`);
  }
  if (prepared === '') throw new Error('password is empty');
  if (Buffer.byteLength(prepared, 'utf8') > MAX_PASSWORD_BYTES) throw new Error('password is too long');
  return prepared;
}

// bcrypt uses only the first 72 bytes of its input, so it is fed a keyed digest of the whole
// password instead; base64 keeps NUL bytes out of it.
function bcryptInput(prepared: string): string {
  return createHmac('sha256', 'postern bcrypt').update(prepared, 'utf8').digest('base64');
}

async function scramCredentials(hash: ScramHash, prepared: string): Promise<ScramCredentials> {
  const salt = randomBytes(16);
  const { storedKey, serverKey } = scramKeys(hash, await saltedPassword(hash, prepared, salt, MIN_ITERATIONS));
  return {
    salt: salt.toString('base64'),
    iterations: MIN_ITERATIONS,
    storedKey: storedKey.toString('base64'),
    serverKey: serverKey.toString('base64'),
  };
}

export async function deriveCredentials(password: string): Promise<StoredCredentials> {
  const prepared = preparePassword(password);
  const cram = hmacMD5State(Buffer.from(prepared, 'utf8'));
  return {
    bcrypt: await bcrypt.hash(bcryptInput(prepared), BCRYPT_COST),
    scramSHA1: await scramCredentials('sha1', prepared),
    scramSHA256: await scramCredentials('sha256', prepared),
    cramMD5: { inner: cram.inner.toString('hex'), outer: cram.outer.toString('hex') },
  };
}

/** Checks a password against the bcrypt hash; false also when the password cannot be prepared. */
export async function verifyPassword(creds: Pick<StoredCredentials, 'bcrypt'>, password: string): Promise<boolean> {
  let prepared: string;
  try {
    prepared = preparePassword(password);
  } catch {
    return false;
  }
  // Mail clients log in again and again with the same password: a recent success is
  // remembered under a keyed hash of hash and password, so a new password (new hash) never matches.
  const key = createHmac('sha256', cacheKey).update(creds.bcrypt).update('\0').update(prepared).digest('base64');
  const until = verified.get(key);
  if (until !== undefined && until > Date.now()) return true;
  // bcryptjs compares the computed hash with a constant-time loop.
  const ok = await bcrypt.compare(bcryptInput(prepared), creds.bcrypt);
  if (ok) {
    verified.delete(key);
    verified.set(key, Date.now() + 5 * 60_000);
    if (verified.size > 1000) verified.delete(verified.keys().next().value!);
  }
  return ok;
}

const cacheKey = randomBytes(32);
/** Recently verified passwords: keyed hash to expiry time, oldest first. */
const verified = new Map<string, number>();
