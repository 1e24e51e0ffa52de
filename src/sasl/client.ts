// Client side of the SASL mechanisms, for Postern's own SMTP client authenticating to a smarthost.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ChannelBinding } from './channelbinding.js';
import { preparePassword } from './credentials.js';
import {
  MIN_ITERATIONS,
  NONCE,
  type ScramHash,
  decodeBase64,
  decodeUTF8,
  encodeSaslname,
  hmac,
  parseAttributes,
  saltedPassword,
  scramKeys,
  xor,
} from './scram.js';

/** Mechanisms the client implements, strongest first. */
export const CLIENT_MECHANISMS = [
  'SCRAM-SHA-256-PLUS',
  'SCRAM-SHA-256',
  'SCRAM-SHA-1-PLUS',
  'SCRAM-SHA-1',
  'CRAM-MD5',
  'PLAIN',
  'LOGIN',
] as const;

export type ClientMechanismName = (typeof CLIENT_MECHANISMS)[number];

/** Highest SCRAM iteration count accepted from a server, bounding the work it can make us do. */
export const MAX_ITERATIONS = 1_000_000;

export interface ClientOptions {
  username: string;
  password: string;
  /**
   * Channel binding of the connection. Required for -PLUS; with plain SCRAM its presence makes the
   * client announce that it supports binding but the server offered none (flag "y", RFC 5802 6),
   * so pass it only when the server did not offer -PLUS.
   */
  channelBinding?: ChannelBinding;
  /** SCRAM client nonce; random when absent. Fixed values are only for reproducing test vectors. */
  nonce?: string;
}

export interface ClientMechanism {
  readonly name: ClientMechanismName;
  /**
   * The client's first message: sent with the AUTH command, or as the answer to the server's
   * first, empty challenge when the protocol has no initial response. Undefined for mechanisms
   * where the server speaks first.
   */
  readonly initialResponse: Buffer | undefined;
  /** Answers a server challenge; throws when the server's message is invalid or an error. */
  step(challenge: Buffer): Promise<Buffer>;
  /**
   * Called when the server reports success, with any additional data it sent with it. Throws
   * unless the server has proven knowledge of the password where the mechanism allows (SCRAM).
   */
  finish(data?: Buffer): void;
}

/**
 * Picks the strongest mechanism that the server offers, that `allowed` permits (all when absent)
 * and, for -PLUS, for which channel binding is available.
 */
export function pickMechanism(
  offered: readonly string[],
  options: { allowed?: readonly string[]; channelBinding: boolean },
): ClientMechanismName | undefined {
  const has = (list: readonly string[], name: string) => list.some((m) => m.toUpperCase() === name);
  return CLIENT_MECHANISMS.find(
    (name) =>
      has(offered, name) &&
      (options.allowed === undefined || has(options.allowed, name)) &&
      (options.channelBinding || !name.endsWith('-PLUS')),
  );
}

/** Creates a client mechanism; throws for unknown names or -PLUS without channel binding. */
export function clientMechanism(name: string, options: ClientOptions): ClientMechanism {
  const upper = name.toUpperCase();
  switch (upper) {
    case 'PLAIN':
      return plain(options);
    case 'LOGIN':
      return login(options);
    case 'CRAM-MD5':
      return cramMD5(options);
    case 'SCRAM-SHA-1':
    case 'SCRAM-SHA-256':
    case 'SCRAM-SHA-1-PLUS':
    case 'SCRAM-SHA-256-PLUS':
      return scram(upper, options);
  }
  throw new Error(`unsupported SASL mechanism ${name}`);
}

// Mechanisms without server authentication accept success as is.
const noServerProof = () => undefined;

// RFC 4616 2, without authzid; the server prepares the password.
function plain(options: ClientOptions): ClientMechanism {
  const message = Buffer.from(`\0${options.username}\0${options.password}`, 'utf8');
  let sent = false;
  return {
    name: 'PLAIN',
    initialResponse: message,
    async step(challenge) {
      // Only a server that refused the initial response asks again, with an empty challenge.
      if (sent || challenge.length !== 0) throw new Error('unexpected PLAIN challenge');
      sent = true;
      return message;
    },
    finish: noServerProof,
  };
}

// draft-murchison-sasl-login: the first challenge asks for the username, the second for the password.
function login(options: ClientOptions): ClientMechanism {
  const answers = [options.username, options.password];
  return {
    name: 'LOGIN',
    initialResponse: undefined,
    async step() {
      const answer = answers.shift();
      if (answer === undefined) throw new Error('unexpected LOGIN challenge');
      return Buffer.from(answer, 'utf8');
    },
    finish: noServerProof,
  };
}

// RFC 2195 2; the password is prepared as for Postern's stored CRAM-MD5 state.
function cramMD5(options: ClientOptions): ClientMechanism {
  const password = preparePassword(options.password);
  let answered = false;
  return {
    name: 'CRAM-MD5',
    initialResponse: undefined,
    async step(challenge) {
      if (answered || challenge.length === 0) throw new Error('unexpected CRAM-MD5 challenge');
      answered = true;
      const digest = createHmac('md5', Buffer.from(password, 'utf8')).update(challenge).digest('hex');
      return Buffer.from(`${options.username} ${digest}`, 'utf8');
    },
    finish: noServerProof,
  };
}

function scram(name: 'SCRAM-SHA-1' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256-PLUS', options: ClientOptions): ClientMechanism {
  const hash: ScramHash = name.startsWith('SCRAM-SHA-256') ? 'sha256' : 'sha1';
  const plus = name.endsWith('-PLUS');
  const binding = options.channelBinding;
  if (plus && binding === undefined) throw new Error(`${name} needs channel binding`);
  // RFC 5802 2.2: Normalize(password) is SASLprep.
  const password = preparePassword(options.password);
  const nonce = options.nonce ?? randomBytes(24).toString('base64');
  if (!NONCE.test(nonce)) throw new Error('invalid SCRAM nonce');

  // RFC 5802 6: "p=type" with -PLUS, "y" when we could bind but the server offered no -PLUS.
  const gs2Header = `${plus ? `p=${binding!.type}` : binding ? 'y' : 'n'},,`;
  const clientFirstBare = `n=${encodeSaslname(options.username.normalize('NFC'))},r=${nonce}`;
  let expectedVerifier: Buffer | undefined;
  let verified = false;

  const verify = (serverFinal: Buffer) => {
    if (verified) throw new Error('unexpected SCRAM message after server-final');
    if (expectedVerifier === undefined) throw new Error('SCRAM server-final before server-first');
    const text = decodeUTF8(serverFinal) ?? '';
    const attrs = parseAttributes(text);
    if (attrs?.[0]?.name === 'e') throw new Error(`SCRAM server error: ${attrs[0].value}`);
    const signature = attrs?.[0]?.name === 'v' ? decodeBase64(attrs[0].value) : undefined;
    if (signature === undefined) throw new Error('invalid SCRAM server-final message');
    // RFC 5802 3: the server proves it knows ServerKey.
    if (signature.length !== expectedVerifier.length || !timingSafeEqual(signature, expectedVerifier)) {
      throw new Error('SCRAM server signature does not match');
    }
    verified = true;
  };

  return {
    name,
    initialResponse: Buffer.from(gs2Header + clientFirstBare, 'utf8'),
    async step(challenge) {
      if (expectedVerifier !== undefined) {
        verify(challenge);
        return Buffer.alloc(0);
      }
      const serverFirst = decodeUTF8(challenge);
      const attrs = serverFirst === undefined ? undefined : parseAttributes(serverFirst);
      if (attrs?.[0]?.name === 'm') throw new Error('SCRAM server requires an unsupported extension');
      if (attrs?.[0]?.name === 'e') throw new Error(`SCRAM server error: ${attrs[0].value}`);
      if (attrs === undefined || attrs.length < 3 || attrs[0]!.name !== 'r' || attrs[1]!.name !== 's' || attrs[2]!.name !== 'i') {
        throw new Error('invalid SCRAM server-first message');
      }
      const combinedNonce = attrs[0]!.value;
      const salt = decodeBase64(attrs[1]!.value);
      const iterations = /^[1-9][0-9]{0,9}$/.test(attrs[2]!.value) ? Number(attrs[2]!.value) : 0;
      // RFC 5802 5.1: the server's nonce extends ours.
      if (!combinedNonce.startsWith(nonce) || combinedNonce.length === nonce.length || !NONCE.test(combinedNonce)) {
        throw new Error('SCRAM server nonce does not extend the client nonce');
      }
      if (salt === undefined || salt.length === 0) throw new Error('invalid SCRAM salt');
      // RFC 7677 4: fewer than 4096 iterations would make a captured proof cheap to attack.
      if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) throw new Error(`SCRAM iteration count ${attrs[2]!.value} not accepted`);

      const cbind = Buffer.concat([Buffer.from(gs2Header), plus ? binding!.data : Buffer.alloc(0)]);
      const withoutProof = `c=${cbind.toString('base64')},r=${combinedNonce}`;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const { clientKey, storedKey, serverKey } = scramKeys(hash, await saltedPassword(hash, password, salt, iterations));
      const proof = xor(clientKey, hmac(hash, storedKey, authMessage));
      expectedVerifier = hmac(hash, serverKey, authMessage);
      return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
    },
    finish(data) {
      if (!verified && data !== undefined && data.length > 0) verify(data);
      if (!verified) throw new Error('server reported success without proving knowledge of the password');
    },
  };
}
