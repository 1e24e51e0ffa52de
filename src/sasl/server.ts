// Server side of the SASL mechanisms (RFC 4422) as step-driven exchanges, independent of the
// framing of SMTP AUTH and IMAP AUTHENTICATE: the protocol code decodes base64, handles '*'
// cancellation and '=' empty initial responses, and passes raw client messages to step().
import { createHash, createHmac, randomBytes, timingSafeEqual, type X509Certificate } from 'node:crypto';
import { CHANNEL_BINDING_TYPES, type ChannelBindingType } from './channelbinding.js';
import { type StoredCredentials, verifyPassword } from './credentials.js';
import { hmacMD5FromState } from './md5.js';
import {
  HASH_SIZE,
  MIN_ITERATIONS,
  NONCE,
  type ScramHash,
  decodeBase64,
  decodeSaslname,
  decodeUTF8,
  hmac,
  parseAttributes,
  sha,
  xor,
} from './scram.js';

/**
 * Why an exchange failed: `bad-credentials` (wrong password or unknown user, or a SCRAM channel
 * binding mismatch or downgrade; counts toward failure limits), `not-authorized` (authenticated,
 * but the requested authorization identity is not the user's own) or `malformed`.
 */
export type FailureReason = 'bad-credentials' | 'not-authorized' | 'malformed';

export type StepResult<A> =
  /** Send `data` as a challenge and pass the client's answer to the next step(). */
  | { type: 'challenge'; data: Buffer }
  /**
   * Authenticated. `data` is additional data for the client (the SCRAM server-final message); a
   * protocol that cannot carry it with its success reply sends it as a challenge first and
   * expects an empty answer.
   */
  | { type: 'success'; username: string; account: A; data?: Buffer }
  /** Failed; `data`, when present, is a SCRAM server-final error message (RFC 5802 7). */
  | { type: 'failure'; reason: FailureReason; message: string; data?: Buffer };

export interface ServerOptions<A> {
  /** Maps an NFC-normalized username (an email address) to its account; undefined if unknown. */
  lookup(username: string): Promise<{ account: A; credentials: StoredCredentials } | undefined>;
  /** Host name for CRAM-MD5 challenges. */
  hostname: string;
  /** Channel binding data of this connection, undefined where the type is not available. */
  channelBinding?(type: ChannelBindingType): Promise<Buffer | undefined> | Buffer | undefined;
  /** The certificate the client presented in the TLS handshake, for EXTERNAL. */
  tlsClientCertificate?(): X509Certificate | undefined;
  /** Finds the account that registered a public key with this fingerprint (`publicKeyFingerprint`). */
  lookupCertificate?(fingerprint: Buffer): Promise<{ username: string; account: A } | undefined>;
}

export interface ServerMechanism<A> {
  readonly name: string;
  /**
   * Advances the exchange. The first call gets the initial response (undefined when the client
   * sent none), later calls the client's answers to challenges. Steps must not overlap. Rejects
   * only when a callback does (e.g. the account store is unavailable).
   */
  step(clientData: Buffer | undefined): Promise<StepResult<A>>;
}

/** Largest client message accepted by any mechanism. */
export const MAX_CLIENT_MESSAGE = 4096;
const MAX_USERNAME = 320;

type Exchange<A> = AsyncGenerator<Buffer, StepResult<A>, Buffer | undefined>;
type Flow<A> = (options: ServerOptions<A>, initial: Buffer | undefined) => Exchange<A>;

const malformed = (message: string, data?: Buffer): StepResult<never> => ({ type: 'failure', reason: 'malformed', message, data });
const badCredentials = (message: string, data?: Buffer): StepResult<never> => ({ type: 'failure', reason: 'bad-credentials', message, data });
const notAuthorized = (message: string): StepResult<never> => ({ type: 'failure', reason: 'not-authorized', message });

/** NFC-normalizes a username; undefined when empty, over-long or containing control characters. */
export function normalizeUsername(username: string): string | undefined {
  const s = username.normalize('NFC');
  // eslint-disable-next-line no-control-regex
  return s === '' || s.length > MAX_USERNAME || /[\x00-\x1f\x7f-\x9f]/.test(s) ? undefined : s;
}

/** SHA-256 of a certificate's SubjectPublicKeyInfo, the form in which EXTERNAL keys are registered. */
export function publicKeyFingerprint(cert: X509Certificate): Buffer {
  return createHash('sha256')
    .update(cert.publicKey.export({ type: 'spki', format: 'der' }))
    .digest();
}

// A cost-10 bcrypt hash of a random value, checked for unknown users so that a missing account
// takes as long to reject as a wrong password.
const UNKNOWN_USER_BCRYPT = '$2b$10$gLXwdw9Uqy8PA3XHEmPUyuemtAcKAKEQ2CN3uiVX1VVuSoVvX8T..';

// PLAIN and LOGIN both end in a password check against the bcrypt hash.
async function checkPassword<A>(
  options: ServerOptions<A>,
  rawUsername: string,
  password: string,
  authzid = '',
): Promise<StepResult<A>> {
  const username = normalizeUsername(rawUsername);
  if (username === undefined) return malformed('invalid username');
  const found = await options.lookup(username);
  const ok = await verifyPassword(found?.credentials ?? { bcrypt: UNKNOWN_USER_BCRYPT }, password);
  if (found === undefined || !ok) return badCredentials('invalid username or password');
  // Authorization as another user is not supported: authzid must be absent or the user itself.
  if (authzid !== '' && authzid.normalize('NFC') !== username) return notAuthorized('authorization identity is not the user');
  return { type: 'success', username, account: found.account };
}

// RFC 4616 2: message = [authzid] NUL authcid NUL passwd, each UTF-8 without NUL.
async function* plain<A>(options: ServerOptions<A>, initial: Buffer | undefined): Exchange<A> {
  const message = initial ?? (yield Buffer.alloc(0));
  const text = message && decodeUTF8(message);
  if (text === undefined) return malformed('message is not UTF-8');
  const parts = text.split('\0');
  if (parts.length !== 3) return malformed('message must have three NUL-separated fields');
  const [authzid, authcid, passwd] = parts as [string, string, string];
  if (authcid === '' || passwd === '') return malformed('empty username or password');
  return checkPassword(options, authcid, passwd, authzid);
}

// draft-murchison-sasl-login: prompts "Username:" and "Password:"; a non-empty initial response
// is the username.
async function* login<A>(options: ServerOptions<A>, initial: Buffer | undefined): Exchange<A> {
  const user = initial !== undefined && initial.length > 0 ? initial : yield Buffer.from('Username:');
  const pass = yield Buffer.from('Password:');
  const username = user && decodeUTF8(user);
  const password = pass && decodeUTF8(pass);
  if (username === undefined || password === undefined) return malformed('username or password is not UTF-8');
  if (username.includes('\0') || password.includes('\0')) return malformed('NUL in username or password');
  if (password === '') return malformed('empty password');
  return checkPassword(options, username, password);
}

// RFC 2195 2: challenge is a msg-id; the response is "username SP hex(HMAC-MD5(password, challenge))".
async function* cramMD5<A>(options: ServerOptions<A>, initial: Buffer | undefined): Exchange<A> {
  if (initial !== undefined) return malformed('CRAM-MD5 takes no initial response');
  const challenge = Buffer.from(`<${randomBytes(8).readBigUInt64BE()}.${Date.now()}@${options.hostname}>`);
  const response = yield challenge;
  const text = response && decodeUTF8(response);
  const m = text === undefined ? null : /^(.+) ([0-9a-fA-F]{32})$/s.exec(text);
  if (!m) return malformed('response must be a username, a space and a 32-digit hex digest');
  const username = normalizeUsername(m[1]!);
  if (username === undefined) return malformed('invalid username');
  const found = await options.lookup(username);
  const state = found
    ? { inner: Buffer.from(found.credentials.cramMD5.inner, 'hex'), outer: Buffer.from(found.credentials.cramMD5.outer, 'hex') }
    : { inner: randomBytes(16), outer: randomBytes(16) };
  const expected = hmacMD5FromState(state, challenge);
  const ok = timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
  if (found === undefined || !ok) return badCredentials('invalid username or password');
  return { type: 'success', username, account: found.account };
}

// Salts for unknown users derive from a per-process secret, so probing a name twice gives the same
// salt and a SCRAM server-first message reveals nothing about whether the account exists.
const unknownUserSecret = randomBytes(32);

function scram<A>(hash: ScramHash, plus: boolean): Flow<A> {
  return async function* (options, initial) {
    // Failures are also reported in a server-final message "e=..." (RFC 5802 7).
    const scramError = (e: string) => Buffer.from(`e=${e}`);
    const first = initial ?? (yield Buffer.alloc(0));
    const firstText = first && decodeUTF8(first);
    if (firstText === undefined) return malformed('client-first-message is not UTF-8', scramError('invalid-encoding'));

    // RFC 5802 7: gs2-header = gs2-cbind-flag "," [authzid] ","
    const gs2 = /^(n|y|p=([A-Za-z0-9.-]+)),(?:a=([^,]*))?,/.exec(firstText);
    if (!gs2) return malformed('invalid GS2 header', scramError('other-error'));
    const gs2Header = gs2[0];
    const authzid = gs2[3] === undefined ? '' : decodeSaslname(gs2[3]);
    if (authzid === undefined) return malformed('invalid authzid encoding', scramError('invalid-username-encoding'));

    // RFC 5802 6: the flag must match the mechanism, and "y" from a client means it saw no
    // -PLUS offer although we make one: a downgrade.
    let binding: Buffer = Buffer.alloc(0);
    const flag = gs2[1]![0];
    if (plus !== (flag === 'p')) {
      const message = plus ? 'channel binding required by -PLUS mechanism' : 'channel binding requested without -PLUS mechanism';
      return malformed(message, scramError('other-error'));
    }
    if (flag === 'y' && (await offersChannelBinding(options))) {
      return badCredentials('client signalled a channel binding downgrade', scramError('server-does-support-channel-binding'));
    }
    if (flag === 'p') {
      const type = gs2[2]! as ChannelBindingType;
      if (!CHANNEL_BINDING_TYPES.includes(type)) {
        return malformed(`unsupported channel binding type ${type}`, scramError('unsupported-channel-binding-type'));
      }
      const data = await options.channelBinding?.(type);
      if (data === undefined) return malformed(`channel binding ${type} not available`, scramError('channel-binding-not-supported'));
      binding = data;
    }

    const clientFirstBare = firstText.slice(gs2Header.length);
    const bare = parseAttributes(clientFirstBare);
    if (bare?.[0]?.name === 'm') return malformed('mandatory extension not supported', scramError('extensions-not-supported'));
    if (bare === undefined || bare.length < 2 || bare[0]!.name !== 'n' || bare[1]!.name !== 'r') {
      return malformed('invalid client-first-message', scramError('other-error'));
    }
    const decoded = decodeSaslname(bare[0]!.value);
    const username = decoded === undefined ? undefined : normalizeUsername(decoded);
    if (username === undefined) return malformed('invalid username', scramError('invalid-username-encoding'));
    const clientNonce = bare[1]!.value;
    if (!NONCE.test(clientNonce)) return malformed('invalid nonce', scramError('other-error'));

    const found = await options.lookup(username);
    const stored = found?.credentials[hash === 'sha1' ? 'scramSHA1' : 'scramSHA256'];
    const salt = stored
      ? Buffer.from(stored.salt, 'base64')
      : createHmac('sha256', unknownUserSecret).update(`${hash} ${username}`).digest().subarray(0, 16);
    const iterations = stored?.iterations ?? MIN_ITERATIONS;
    const storedKey = stored ? Buffer.from(stored.storedKey, 'base64') : randomBytes(HASH_SIZE[hash]);
    const serverKey = stored ? Buffer.from(stored.serverKey, 'base64') : randomBytes(HASH_SIZE[hash]);
    if (storedKey.length !== HASH_SIZE[hash] || serverKey.length !== HASH_SIZE[hash]) {
      throw new Error(`stored SCRAM keys for ${username} are corrupt`);
    }

    const nonce = clientNonce + randomBytes(18).toString('base64');
    const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
    const final = yield Buffer.from(serverFirst);

    // RFC 5802 7: client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const finalText = final && decodeUTF8(final);
    if (finalText === undefined) return malformed('client-final-message is not UTF-8', scramError('invalid-encoding'));
    const proofAt = finalText.lastIndexOf(',p=');
    const withoutProof = finalText.slice(0, proofAt);
    const attrs = proofAt < 0 ? undefined : parseAttributes(withoutProof);
    if (attrs === undefined || attrs.length < 2 || attrs[0]!.name !== 'c' || attrs[1]!.name !== 'r') {
      return malformed('invalid client-final-message', scramError('other-error'));
    }
    const proof = decodeBase64(finalText.slice(proofAt + 3));
    if (proof?.length !== HASH_SIZE[hash]) return malformed('invalid proof encoding', scramError('invalid-encoding'));
    if (attrs[1]!.value !== nonce) return malformed('nonce mismatch', scramError('other-error'));
    // RFC 5802 5.1: c= is the base64 of the gs2 header followed by the channel binding data.
    const cbind = decodeBase64(attrs[0]!.value);
    if (cbind === undefined) return malformed('invalid channel binding encoding', scramError('invalid-encoding'));
    if (!cbind.equals(Buffer.concat([Buffer.from(gs2Header), binding]))) {
      return badCredentials('channel binding mismatch', scramError('channel-bindings-dont-match'));
    }

    // RFC 5802 3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); StoredKey = H(ClientKey)
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    const clientKey = xor(proof, hmac(hash, storedKey, authMessage));
    if (!timingSafeEqual(sha(hash, clientKey), storedKey) || found === undefined) {
      return badCredentials('invalid username or password', scramError('invalid-proof'));
    }
    if (authzid !== '' && authzid.normalize('NFC') !== username) return notAuthorized('authorization identity is not the user');
    const verifier = `v=${hmac(hash, serverKey, authMessage).toString('base64')}`;
    return { type: 'success', username, account: found.account, data: Buffer.from(verifier) };
  };
}

async function offersChannelBinding<A>(options: ServerOptions<A>): Promise<boolean> {
  for (const type of CHANNEL_BINDING_TYPES) if ((await options.channelBinding?.(type)) !== undefined) return true;
  return false;
}

// RFC 4422 appendix A: the message is the authorization identity, empty to act as the identity
// the TLS client certificate establishes.
async function* external<A>(options: ServerOptions<A>, initial: Buffer | undefined): Exchange<A> {
  const message = initial ?? (yield Buffer.alloc(0));
  const authzid = message && decodeUTF8(message);
  if (authzid === undefined) return malformed('authorization identity is not UTF-8');
  const cert = options.tlsClientCertificate?.();
  if (cert === undefined) return badCredentials('no TLS client certificate');
  const found = await options.lookupCertificate?.(publicKeyFingerprint(cert));
  if (found === undefined) return badCredentials('TLS client certificate is not registered');
  const username = found.username.normalize('NFC');
  if (authzid !== '' && authzid.normalize('NFC') !== username) return notAuthorized('authorization identity is not the certificate owner');
  return { type: 'success', username, account: found.account };
}

const FLOWS = new Map<string, Flow<unknown>>([
  ['PLAIN', plain],
  ['LOGIN', login],
  ['CRAM-MD5', cramMD5],
  ['SCRAM-SHA-1', scram('sha1', false)],
  ['SCRAM-SHA-1-PLUS', scram('sha1', true)],
  ['SCRAM-SHA-256', scram('sha256', false)],
  ['SCRAM-SHA-256-PLUS', scram('sha256', true)],
  ['EXTERNAL', external],
]);

/**
 * Starts the server side of a mechanism (name case-insensitive). Undefined for unknown names, for
 * -PLUS without a channelBinding callback and for EXTERNAL without the certificate callbacks;
 * callers must also refuse mechanisms they did not advertise.
 */
export function serverMechanism<A>(name: string, options: ServerOptions<A>): ServerMechanism<A> | undefined {
  const upper = name.toUpperCase();
  const flow = FLOWS.get(upper) as Flow<A> | undefined;
  if (flow === undefined) return undefined;
  if (upper.endsWith('-PLUS') && options.channelBinding === undefined) return undefined;
  if (upper === 'EXTERNAL' && (options.tlsClientCertificate === undefined || options.lookupCertificate === undefined)) return undefined;
  let exchange: Exchange<A> | undefined;
  let finished = false;
  return {
    name: upper,
    async step(clientData) {
      if (finished) return malformed('exchange already finished');
      if (clientData !== undefined && clientData.length > MAX_CLIENT_MESSAGE) {
        finished = true;
        return malformed('client message too long');
      }
      if (exchange !== undefined && clientData === undefined) {
        finished = true;
        return malformed('missing client response');
      }
      let r: IteratorResult<Buffer, StepResult<A>>;
      try {
        if (exchange === undefined) {
          exchange = flow(options, clientData);
          r = await exchange.next();
        } else {
          r = await exchange.next(clientData);
        }
      } catch (err) {
        finished = true;
        throw err;
      }
      if (!r.done) return { type: 'challenge', data: r.value };
      finished = true;
      return r.value;
    },
  };
}

/**
 * Mechanisms to advertise, strongest first. Without TLS only those that do not reveal the password
 * are offered; -PLUS needs channel binding data for the connection, EXTERNAL a client certificate.
 */
export function advertisedMechanisms(connection: { tls: boolean; channelBinding: boolean; clientCertificate?: boolean }): string[] {
  const mechanisms: string[] = [];
  if (connection.tls && connection.channelBinding) mechanisms.push('SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS');
  mechanisms.push('SCRAM-SHA-256', 'SCRAM-SHA-1', 'CRAM-MD5');
  if (connection.tls) mechanisms.push('PLAIN', 'LOGIN');
  if (connection.tls && connection.clientCertificate) mechanisms.push('EXTERNAL');
  return mechanisms;
}
