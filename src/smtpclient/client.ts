// Outbound SMTP client over a socket the caller has connected: greeting, EHLO, STARTTLS, AUTH, and
// delivery of messages to several recipients with per-recipient results, on one connection that
// can carry several messages. Every failure is returned or thrown as an SMTPError.
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { parseDomain } from '../dns/domain.js';
import { Conn, ConnClosed, ReadTimeout } from '../proto/conn.js';
import { preferredChannelBinding } from '../sasl/channelbinding.js';
import { CLIENT_MECHANISMS, clientMechanism, pickMechanism } from '../sasl/client.js';
import { DotStuffer } from './dotstuff.js';
import { SMTPError, type Step } from './error.js';
import { orcpt, xtext } from './params.js';
import { ProtocolError, type Reply, readReply } from './reply.js';

/** Timeouts in milliseconds. */
export interface Timeouts {
  greeting: number;
  /** EHLO, HELO, STARTTLS, AUTH, RSET and QUIT. */
  command: number;
  mail: number;
  rcpt: number;
  /** Reply to DATA. */
  dataInit: number;
  /** Waiting for the server to take more message data. */
  dataBlock: number;
  /** Reply after the message data, for DATA and each BDAT chunk. */
  dataEnd: number;
  /** TLS handshake. */
  tls: number;
}

// RFC 5321 4.5.3.2; the RFC sets no limit for the TLS handshake.
export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {
  greeting: 5 * 60_000,
  command: 5 * 60_000,
  mail: 5 * 60_000,
  rcpt: 5 * 60_000,
  dataInit: 2 * 60_000,
  dataBlock: 3 * 60_000,
  dataEnd: 10 * 60_000,
  tls: 60_000,
};

export interface PeerCertificates {
  /** DER certificates, leaf first, as sent by the server and completed from the trust anchors. */
  chain: Buffer[];
  /** Whether the chain is valid to the trust anchors (PKIX) and the leaf matches the TLS name. */
  pkixValid: boolean;
  /** Why PKIX verification failed. */
  pkixError?: string;
  socket: tls.TLSSocket;
}

export interface TLSOptions {
  /**
   * none: no STARTTLS. opportunistic: STARTTLS when offered, any certificate accepted.
   * required: STARTTLS must succeed; the certificate is judged only by `verify` (as for DANE).
   * verified: STARTTLS must succeed with a certificate that is PKIX-valid for `name`.
   */
  mode: 'none' | 'opportunistic' | 'required' | 'verified';
  /**
   * Opportunistic only: go on in plain text when the server does not offer STARTTLS or refuses it.
   * A failed handshake leaves the connection unusable: fall back by dialing again with mode none.
   */
  allowPlain?: boolean;
  /** Name the certificate must match; also sent with SNI unless it is an IP address. Required for verified. */
  name?: string;
  /** PKIX trust anchors; node's bundled roots when absent. */
  ca?: tls.SecureContextOptions['ca'];
  /** More options for tls.connect, e.g. minVersion or a client certificate. */
  options?: tls.ConnectionOptions;
  /**
   * Called once the handshake is done and before anything is sent over TLS, e.g. to check TLSA
   * records (RFC 7672 2.2). Throwing rejects the server. A hook that returns makes the connection
   * count as verified, as for REQUIRETLS.
   */
  verify?: (peer: PeerCertificates) => void | Promise<void>;
}

export interface AuthOptions {
  username: string;
  password: string;
  /** Mechanisms that may be used; all that Postern implements when absent. */
  mechanisms?: readonly string[];
  /** Allow PLAIN and LOGIN without TLS, where they expose the password. */
  allowPlaintext?: boolean;
}

export interface ClientOptions {
  /** Our host name for EHLO and HELO (RFC 5321 4.1.1.1): an ASCII domain or an address literal. */
  hostname: string;
  tls?: TLSOptions;
  auth?: AuthOptions;
  timeouts?: Partial<Timeouts>;
  /** Longest reply line accepted; RFC 5321 4.5.3.1.5 says 512 but servers send more. Default 4096. */
  maxReplyLine?: number;
}

export interface Extensions {
  pipelining: boolean;
  /** Declared maximum message size (RFC 1870), 0 for no limit, undefined without SIZE. */
  size?: number;
  eightBitMIME: boolean;
  smtpUTF8: boolean;
  startTLS: boolean;
  /** SASL mechanisms in upper case (RFC 4954). */
  auth: string[];
  chunking: boolean;
  binaryMIME: boolean;
  dsn: boolean;
  requireTLS: boolean;
  enhancedStatusCodes: boolean;
  /** LIMITS (RFC 9422). */
  rcptMax?: number;
  mailMax?: number;
}

export type Notify = 'SUCCESS' | 'FAILURE' | 'DELAY';

export interface Recipient {
  /** Address as localpart@domain, the domain in Unicode or ASCII form; "postmaster" alone is allowed. */
  address: string;
  /** DSN NOTIFY (RFC 3461 4.1), sent only if the server offers DSN. */
  notify?: 'NEVER' | Notify[];
  /** DSN ORCPT (RFC 3461 4.2): the original recipient address. */
  orcpt?: string;
}

export interface Message {
  /** Reverse path, "" for the null sender. */
  from: string;
  recipients: Recipient[];
  /**
   * The message with CRLF line endings: a Buffer, or a function returning its data, called once
   * for each transaction (LIMITS RCPTMAX can split recipients over several).
   */
  data: Buffer | (() => AsyncIterable<Buffer>);
  /** Size in bytes, for the SIZE parameter; taken from a Buffer when absent. */
  size?: number;
  /** Body type; for a Buffer 7BIT or 8BITMIME is found from its bytes, streamed data counts as 7BIT unless set. */
  body?: '7BIT' | '8BITMIME' | 'BINARYMIME';
  /** The message needs SMTPUTF8 for other reasons than its addresses, e.g. UTF-8 header fields. */
  smtputf8?: boolean;
  /** DSN RET and ENVID (RFC 3461 4.3, 4.4). */
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  /** REQUIRETLS (RFC 8689). */
  requireTLS?: boolean;
}

export interface RecipientResult {
  recipient: Recipient;
  /** Set when the recipient was not delivered. */
  error?: SMTPError;
  /** The server's reply accepting the message, when delivered. */
  reply?: Reply;
}

interface Pending {
  result: RecipientResult;
  path: string;
}

interface Transaction {
  mail: string;
  smtputf8: boolean;
  data: Message['data'];
}

const MAX_REPLY_LINES = 256;
const CHUNK = 1024 * 1024;
const MAX_AUTH_ROUNDS = 10;

class Timeout extends Error {}

// Message data failed to read: the transaction must be abandoned without ending the data.
class SourceError extends Error {}

function noExtensions(): Extensions {
  return {
    pipelining: false,
    eightBitMIME: false,
    smtpUTF8: false,
    startTLS: false,
    auth: [],
    chunking: false,
    binaryMIME: false,
    dsn: false,
    requireTLS: false,
    enhancedStatusCodes: false,
  };
}

// RFC 5321 4.1.1.1: EHLO reply lines after the first are "keyword [params]".
function parseExtensions(lines: string[]): Extensions {
  const ext = noExtensions();
  const count = (s: string | undefined) => (s !== undefined && /^[1-9][0-9]{0,9}$/.test(s) ? Number(s) : undefined);
  for (const line of lines.slice(1)) {
    const [word = '', ...params] = line.slice(4).trim().split(/\s+/);
    let keyword = word.toUpperCase();
    // Servers older than RFC 4954 announce "AUTH=mech ...".
    if (keyword.startsWith('AUTH=')) {
      params.unshift(keyword.slice(5));
      keyword = 'AUTH';
    }
    switch (keyword) {
      case 'PIPELINING':
        ext.pipelining = true;
        break;
      case 'SIZE':
        ext.size = count(params[0]) ?? 0;
        break;
      case '8BITMIME':
        ext.eightBitMIME = true;
        break;
      case 'SMTPUTF8':
        ext.smtpUTF8 = true;
        break;
      case 'STARTTLS':
        ext.startTLS = true;
        break;
      case 'AUTH':
        ext.auth.push(...params.filter((p) => p !== '').map((p) => p.toUpperCase()));
        break;
      case 'CHUNKING':
        ext.chunking = true;
        break;
      case 'BINARYMIME':
        ext.binaryMIME = true;
        break;
      case 'DSN':
        ext.dsn = true;
        break;
      case 'REQUIRETLS':
        ext.requireTLS = true;
        break;
      case 'ENHANCEDSTATUSCODES':
        ext.enhancedStatusCodes = true;
        break;
      case 'LIMITS':
        for (const p of params) {
          const [name = '', value] = p.toUpperCase().split('=');
          if (name === 'RCPTMAX') ext.rcptMax = count(value);
          else if (name === 'MAILMAX') ext.mailMax = count(value);
        }
        break;
    }
  }
  return ext;
}

// Address for MAIL FROM or RCPT TO, with the domain in ASCII so that only a non-ASCII localpart
// needs SMTPUTF8 (RFC 6531 3.2). Throws for addresses that cannot be sent.
function wireAddress(address: string, sender: boolean): string {
  if (/[\x00-\x1f\x7f]/.test(address)) throw new Error('control character in address');
  if (address === '' && sender) return '';
  // RFC 5321 4.1.1.3: "Postmaster" without domain is a valid recipient.
  if (!sender && address.toLowerCase() === 'postmaster') return address;
  const at = address.lastIndexOf('@');
  if (at <= 0) throw new Error('address without localpart and domain');
  const domain = address.slice(at + 1);
  return `${address.slice(0, at)}@${domain.startsWith('[') ? domain : parseDomain(domain).ascii}`;
}

function has8bit(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! > 0x7f) return true;
  return false;
}

async function* chunks(data: Message['data']): AsyncIterable<Buffer> {
  if (Buffer.isBuffer(data)) {
    for (let i = 0; i < data.length; i += CHUNK) yield data.subarray(i, i + CHUNK);
    return;
  }
  try {
    for await (const b of data()) yield b;
  } catch (e) {
    throw new SourceError(`reading message: ${e instanceof Error ? e.message : String(e)}`);
  }
}

// The certificates the server sent, as node links them, leaf first; self-signed ones link to themselves.
function peerChain(ts: tls.TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let c: tls.DetailedPeerCertificate | undefined = ts.getPeerCertificate(true);
  while (c?.raw !== undefined && chain.length < 16) {
    chain.push(c.raw);
    if (c.issuerCertificate === c) break;
    c = c.issuerCertificate;
  }
  return chain;
}

export class SMTPClient {
  greeting?: Reply;
  /** Extensions from the last EHLO; none after HELO. */
  extensions: Extensions = noExtensions();
  /** The TLS socket, once STARTTLS succeeded or when given one for implicit TLS. */
  tlsSocket?: tls.TLSSocket;
  /** The certificate was verified: by PKIX or the verify hook, or by node for a TLS socket given to open. */
  tlsVerified = false;
  /** The SASL mechanism used to authenticate. */
  authMechanism?: string;
  private readonly conn: Conn;
  private readonly timeouts: Timeouts;
  private readonly maxLine: number;
  private step: Step = 'greeting';
  private transactions = 0;
  private broken?: SMTPError;

  private constructor(
    socket: Socket,
    private readonly options: ClientOptions,
  ) {
    if (!/^[\x21-\x7e]+$/.test(options.hostname)) throw new Error(`invalid EHLO hostname ${JSON.stringify(options.hostname)}`);
    if (options.tls?.mode === 'verified' && !options.tls.name) throw new Error('TLS mode verified needs a name');
    this.conn = new Conn(socket);
    // Implicit TLS (RFC 8314 3.3): the caller made and verified the TLS connection.
    if (socket instanceof tls.TLSSocket) {
      this.tlsSocket = socket;
      this.tlsVerified = socket.authorized;
    }
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.maxLine = options.maxReplyLine ?? 4096;
  }

  /**
   * Reads the greeting, says EHLO, and does STARTTLS and AUTH as the options ask. The socket may
   * be a TLS socket for implicit TLS, and then no STARTTLS is done. Rejects with an
   * SMTPError after closing the connection; rejects with an Error, destroying the socket, for
   * invalid options.
   */
  static async open(socket: Socket, options: ClientOptions): Promise<SMTPClient> {
    let c: SMTPClient;
    try {
      c = new SMTPClient(socket, options);
    } catch (e) {
      socket.destroy();
      throw e;
    }
    try {
      await c.setup();
      return c;
    } catch (e) {
      const err = c.fail(e);
      // RFC 5321 4.1.1.10: a session that still works ends with QUIT, as after a 554 greeting (RFC 5321 3.1).
      await c.quit();
      throw err;
    }
  }

  /** The connection can no longer be used. */
  get closed(): boolean {
    return this.broken !== undefined || this.conn.closed;
  }

  private async setup(): Promise<void> {
    this.greeting = await this.reply(this.timeouts.greeting);
    if (this.greeting.code !== 220) throw SMTPError.fromReply('greeting', this.greeting);
    await this.hello();
    await this.startTLS();
    if (this.options.auth) await this.authenticate(this.options.auth);
  }

  // Runs f, closing the connection if it takes longer than ms; Conn's own read timeout only bounds
  // each wait for data, not a server that trickles bytes.
  private async timed<T>(ms: number, f: () => Promise<T>): Promise<T> {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      this.conn.destroy();
    }, ms);
    try {
      const r = await f();
      if (!expired) return r;
    } catch (e) {
      if (!expired && !(e instanceof ReadTimeout)) throw e;
    } finally {
      clearTimeout(timer);
    }
    throw new Timeout(`timed out after ${ms / 1000}s`);
  }

  private async reply(ms: number): Promise<Reply> {
    const r = await this.timed(ms, () => readReply(this.conn, this.maxLine, MAX_REPLY_LINES, ms));
    if (r.code === 421) throw SMTPError.fromReply(this.step, r);
    return r;
  }

  private command(line: string, ms: number): Promise<Reply> {
    this.conn.write(`${line}\r\n`);
    return this.reply(ms);
  }

  // Turns any failure into an SMTPError; failures of the connection close it for good.
  private fail(e: unknown): SMTPError {
    let err: SMTPError;
    if (e instanceof SMTPError) err = e;
    else {
      const text =
        e instanceof ConnClosed
          ? 'connection closed by server'
          : e instanceof ProtocolError
            ? `protocol error: ${e.message}`
            : e instanceof Error
              ? e.message
              : String(e);
      // RFC 3463 3.5: X.4.2 is a broken connection.
      err = new SMTPError({ step: this.step, text, enhanced: '4.4.2', connection: true });
    }
    if (err.connection) {
      this.broken ??= err;
      if (!this.conn.closed) this.conn.destroy();
    }
    return err;
  }

  private async hello(): Promise<void> {
    this.step = 'ehlo';
    const r = await this.command(`EHLO ${this.options.hostname}`, this.timeouts.command);
    if (r.code === 250) {
      this.extensions = parseExtensions(r.lines);
      return;
    }
    // RFC 5321 4.1.1.1: a server that does not know EHLO fails it; HELO is the fallback.
    if (r.code < 500) throw SMTPError.fromReply('ehlo', r);
    const h = await this.command(`HELO ${this.options.hostname}`, this.timeouts.command);
    if (h.code !== 250) throw SMTPError.fromReply('ehlo', h);
    this.extensions = noExtensions();
  }

  private async startTLS(): Promise<void> {
    const o = this.options.tls;
    if (o === undefined || o.mode === 'none' || this.tlsSocket) return;
    this.step = 'starttls';
    const plainOK = o.mode === 'opportunistic' && o.allowPlain === true;
    if (!this.extensions.startTLS) {
      if (plainOK) return;
      // X.7.10 "encryption needed" (RFC 5248 registry).
      throw new SMTPError({ step: 'starttls', text: 'server does not offer STARTTLS', enhanced: '4.7.10' });
    }
    const r = await this.command('STARTTLS', this.timeouts.command);
    if (r.code !== 220) {
      if (plainOK) return;
      throw SMTPError.fromReply('starttls', r);
    }
    // RFC 3463 3.8: X.7.5 is a cryptographic failure.
    const tlsError = (text: string) => new SMTPError({ step: 'starttls', text, enhanced: '4.7.5', connection: true });
    // A refused certificate ends the connection with a TLS close, after the handshake finished.
    const refuse = (text: string) => {
      this.conn.close();
      return tlsError(text);
    };
    let ts: tls.TLSSocket;
    try {
      // Verification happens below, so that all modes report it the same way and the hook runs
      // before anything is sent. RFC 6066 3: SNI carries host names, not IP addresses.
      ts = await this.conn.startTLSClient(
        {
          ...o.options,
          ca: o.ca ?? o.options?.ca,
          servername: o.name !== undefined && isIP(o.name) === 0 ? o.name : undefined,
          rejectUnauthorized: false,
          checkServerIdentity: () => undefined,
        },
        this.timeouts.tls,
      );
    } catch (e) {
      throw tlsError(`TLS handshake: ${e instanceof Error ? e.message : String(e)}`);
    }
    let pkixError = ts.authorized ? undefined : `certificate not trusted: ${ts.authorizationError}`;
    if (pkixError === undefined) {
      pkixError = o.name === undefined ? 'no name to verify the certificate against' : tls.checkServerIdentity(o.name, ts.getPeerCertificate())?.message;
    }
    if (o.mode === 'verified' && pkixError !== undefined) throw refuse(pkixError);
    if (o.verify) {
      try {
        await o.verify({ chain: peerChain(ts), pkixValid: pkixError === undefined, pkixError, socket: ts });
      } catch (e) {
        throw refuse(`certificate rejected: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    this.tlsSocket = ts;
    this.tlsVerified = o.mode === 'verified' || o.verify !== undefined;
    // RFC 3207 4.2: forget what the server said before TLS and ask again.
    await this.hello();
  }

  // RFC 4954 4.
  private async authenticate(a: AuthOptions): Promise<void> {
    this.step = 'auth';
    const offered = this.extensions.auth;
    const binding = this.tlsSocket ? preferredChannelBinding(this.tlsSocket, 'client') : undefined;
    const allowed = (a.mechanisms ?? CLIENT_MECHANISMS).filter(
      (m) => this.tlsSocket !== undefined || a.allowPlaintext === true || !['PLAIN', 'LOGIN'].includes(m.toUpperCase()),
    );
    const name = pickMechanism(offered, { allowed, channelBinding: binding !== undefined });
    if (name === undefined) {
      const text = `no allowed authentication mechanism offered (server offers: ${offered.join(' ') || 'none'})`;
      throw new SMTPError({ step: 'auth', text, enhanced: '4.7.0' });
    }
    // RFC 5802 6: with plain SCRAM, announce binding support only when the server offered no -PLUS.
    const announce = name.endsWith('-PLUS') || (name.startsWith('SCRAM') && !offered.some((m) => m.endsWith('-PLUS')));
    const m = clientMechanism(name, { username: a.username, password: a.password, channelBinding: announce ? binding : undefined });
    const initial = m.initialResponse === undefined ? '' : ` ${m.initialResponse.length ? m.initialResponse.toString('base64') : '='}`;
    let r = await this.command(`AUTH ${name}${initial}`, this.timeouts.command);
    for (let round = 0; r.code === 334; round++) {
      let answer: Buffer;
      try {
        if (round === MAX_AUTH_ROUNDS) throw new Error('too many challenges');
        answer = await m.step(Buffer.from(r.lines[0]!.slice(4), 'base64'));
      } catch (e) {
        // RFC 4954 4: "*" cancels the exchange.
        await this.command('*', this.timeouts.command);
        throw new SMTPError({ step: 'auth', text: `authentication aborted: ${e instanceof Error ? e.message : String(e)}` });
      }
      r = await this.command(answer.toString('base64'), this.timeouts.command);
    }
    if (r.code !== 235) throw SMTPError.fromReply('auth', r);
    try {
      m.finish();
    } catch (e) {
      throw new SMTPError({ step: 'auth', text: e instanceof Error ? e.message : String(e), enhanced: '4.7.0', connection: true });
    }
    this.authMechanism = name;
  }

  /**
   * Delivers a message, in several transactions when the server limits recipients per
   * transaction. Never rejects: the result of each recipient, in order, says what happened.
   * One delivery at a time per client.
   */
  async deliver(msg: Message): Promise<RecipientResult[]> {
    const results: RecipientResult[] = msg.recipients.map((recipient) => ({ recipient }));
    const failAll = (error: SMTPError) => {
      for (const r of results) r.error ??= error;
      return results;
    };
    this.step = 'mail';
    if (this.closed) return failAll(this.broken ?? new SMTPError({ step: 'mail', text: 'connection closed', enhanced: '4.4.2', connection: true }));

    const ext = this.extensions;
    const permanent = (text: string, enhanced: string) => failAll(new SMTPError({ step: 'mail', text, enhanced, permanent: true }));
    let from: string;
    try {
      from = wireAddress(msg.from, true);
    } catch (e) {
      return permanent(`invalid sender address ${JSON.stringify(msg.from)}: ${(e as Error).message}`, '5.1.7');
    }
    const pending: Pending[] = [];
    for (const result of results) {
      try {
        pending.push({ result, path: wireAddress(result.recipient.address, false) });
      } catch (e) {
        const text = `invalid recipient address ${JSON.stringify(result.recipient.address)}: ${(e as Error).message}`;
        result.error = new SMTPError({ step: 'rcpt', text, enhanced: '5.1.3', permanent: true });
      }
    }
    const utf8Addresses = /[^\x00-\x7f]/.test(from) || pending.some((p) => /[^\x00-\x7f]/.test(p.path));
    const smtputf8 = msg.smtputf8 === true || utf8Addresses;
    const body = msg.body ?? (Buffer.isBuffer(msg.data) && has8bit(msg.data) ? '8BITMIME' : '7BIT');
    const size = msg.size ?? (Buffer.isBuffer(msg.data) ? msg.data.length : undefined);

    // RFC 8689 4.1: only over TLS verified by DANE or MTA-STS, to a server that offers REQUIRETLS.
    if (msg.requireTLS && !(this.tlsVerified && ext.requireTLS)) {
      const why = !this.tlsSocket ? 'connection is not TLS' : !this.tlsVerified ? 'TLS certificate not verified' : 'server does not offer REQUIRETLS';
      return permanent(`REQUIRETLS cannot be honoured: ${why}`, '5.7.30');
    }
    // RFC 6531 3.4: without SMTPUTF8 at the server the message cannot be delivered as is; X.6.7
    // is for non-ASCII addresses, X.6.9 for UTF-8 header fields.
    if (smtputf8 && !ext.smtpUTF8) {
      return permanent('message needs SMTPUTF8, which the server does not offer', utf8Addresses ? '5.6.7' : '5.6.9');
    }
    // RFC 6152 3: 8-bit data only to servers with 8BITMIME; RFC 3030 3: BINARYMIME needs CHUNKING.
    if (body === '8BITMIME' && !ext.eightBitMIME) return permanent('message has 8-bit data and the server does not offer 8BITMIME', '5.6.3');
    if (body === 'BINARYMIME' && !(ext.binaryMIME && ext.chunking)) return permanent('binary message and the server does not offer BINARYMIME with CHUNKING', '5.6.3');
    // RFC 1870 6: do not send what the server declared too large.
    if (ext.size && size !== undefined && size > ext.size) return permanent(`message of ${size} bytes exceeds the server's limit of ${ext.size}`, '5.3.4');

    const params: string[] = [];
    if (ext.size !== undefined && size !== undefined) params.push(`SIZE=${size}`);
    if (body !== '7BIT') params.push(`BODY=${body}`);
    if (smtputf8) params.push('SMTPUTF8');
    if (msg.requireTLS) params.push('REQUIRETLS');
    if (ext.dsn && msg.ret) params.push(`RET=${msg.ret}`);
    if (ext.dsn && msg.envid !== undefined) params.push(`ENVID=${xtext(msg.envid)}`);
    const t: Transaction = { mail: `MAIL FROM:<${from}>${params.map((p) => ` ${p}`).join('')}`, smtputf8, data: msg.data };

    let queue = pending;
    while (queue.length > 0) {
      if (this.closed) {
        for (const p of queue) p.result.error ??= this.broken ?? new SMTPError({ step: 'mail', text: 'connection closed', enhanced: '4.4.2', connection: true });
        break;
      }
      // RFC 9422 4.1: MAILMAX bounds the transactions of a session.
      if (ext.mailMax !== undefined && this.transactions >= ext.mailMax) {
        const error = new SMTPError({ step: 'mail', text: 'transaction limit of the session reached', enhanced: '4.5.3' });
        for (const p of queue) p.result.error = error;
        break;
      }
      // RFC 9422 4.2: at most RCPTMAX recipients per transaction.
      const n = ext.rcptMax ?? queue.length;
      const retry = await this.transaction(queue.slice(0, n), t);
      queue = [...retry, ...queue.slice(n)];
    }
    return results;
  }

  // One MAIL transaction; returns recipients to try again in a new transaction.
  private async transaction(batch: Pending[], t: Transaction): Promise<Pending[]> {
    const ext = this.extensions;
    const timeouts = this.timeouts;
    this.transactions++;
    let open = false;
    try {
      this.step = 'mail';
      const rcpts = batch.map((p) => {
        const r = p.result.recipient;
        let line = `RCPT TO:<${p.path}>`;
        if (ext.dsn && r.notify?.length) line += ` NOTIFY=${r.notify === 'NEVER' ? 'NEVER' : r.notify.join(',')}`;
        if (ext.dsn && r.orcpt !== undefined) line += ` ORCPT=${orcpt(r.orcpt, t.smtputf8)}`;
        return line;
      });
      // RFC 2920 3.1: with PIPELINING, MAIL and the RCPTs go in one group and the replies come in order.
      const pipelined = ext.pipelining;
      if (pipelined) this.conn.write([t.mail, ...rcpts].map((l) => `${l}\r\n`).join(''));
      const mail = pipelined ? await this.reply(timeouts.mail) : await this.command(t.mail, timeouts.mail);
      if (mail.code !== 250) {
        const error = SMTPError.fromReply('mail', mail);
        for (const p of batch) p.result.error = error;
      }
      this.step = 'rcpt';
      const replies: Reply[] = [];
      if (pipelined) for (const _ of rcpts) replies.push(await this.reply(timeouts.rcpt));
      else if (mail.code === 250) for (const l of rcpts) replies.push(await this.command(l, timeouts.rcpt));
      if (mail.code !== 250) return [];
      open = true;

      const accepted: Pending[] = [];
      const tooMany: Pending[] = [];
      batch.forEach((p, i) => {
        const r = replies[i]!;
        if (r.code >= 200 && r.code < 300) accepted.push(p);
        else {
          p.result.error = SMTPError.fromReply('rcpt', r);
          if (r.code === 452) tooMany.push(p);
        }
      });
      if (accepted.length === 0) return [];
      // RFC 5321 4.5.3.1.10: recipients refused with 452 after others were accepted go in a later transaction.
      for (const p of tooMany) p.result.error = undefined;

      this.step = 'data';
      const final = ext.chunking ? await this.bdat(t) : await this.data(t);
      if (final.code >= 200 && final.code < 300) {
        open = false;
        for (const p of accepted) p.result.reply = final;
      } else {
        const error = SMTPError.fromReply('data', final);
        for (const p of accepted) p.result.error = error;
      }
      return tooMany;
    } catch (e) {
      const error = this.fail(e);
      for (const p of batch) if (p.result.reply === undefined) p.result.error ??= error;
      return [];
    } finally {
      if (open && !this.closed) await this.rset();
    }
  }

  // RFC 5321 4.1.1.4.
  private async data(t: Transaction): Promise<Reply> {
    const r = await this.command('DATA', this.timeouts.dataInit);
    if (r.code !== 354) {
      if (r.code < 400) throw new ProtocolError(`unexpected reply to DATA: ${r.lines[0]}`);
      return r;
    }
    const stuffer = new DotStuffer();
    for await (const chunk of chunks(t.data)) {
      for (const b of stuffer.push(chunk)) this.conn.write(b);
      await this.drain();
    }
    this.conn.write(stuffer.end());
    return this.reply(this.timeouts.dataEnd);
  }

  // RFC 3030 2: chunks need no dot-stuffing and the last one is marked LAST. With PIPELINING,
  // chunks do not wait for the replies to earlier ones.
  private async bdat(t: Transaction): Promise<Reply> {
    let unread = 0;
    let result: Reply | undefined;
    const readReplies = async (all: boolean) => {
      while (unread > 0 && (all || !this.extensions.pipelining || this.conn.buffered > 0)) {
        const r = await this.reply(this.timeouts.dataEnd);
        unread--;
        // RFC 3030 2: after a failed chunk no further chunks are sent.
        if (result === undefined || result.code < 300) result = r;
      }
    };
    const send = async (pieces: Buffer[], length: number, last: boolean) => {
      this.conn.write(`BDAT ${length}${last ? ' LAST' : ''}\r\n`);
      for (const b of pieces) this.conn.write(b);
      unread++;
      await this.drain();
      await readReplies(last);
    };
    let pieces: Buffer[] = [];
    let length = 0;
    for await (const b of chunks(t.data)) {
      pieces.push(b);
      length += b.length;
      if (length >= CHUNK) {
        await send(pieces, length, false);
        pieces = [];
        length = 0;
        if (result !== undefined && result.code >= 300) break;
      }
    }
    if (result === undefined || result.code < 300) await send(pieces, length, true);
    await readReplies(true);
    return result!;
  }

  // RFC 5321 4.5.3.2.5: the server must take data within the data block timeout.
  private drain(): Promise<void> {
    return this.timed(this.timeouts.dataBlock, () => this.conn.drain());
  }

  private async rset(): Promise<void> {
    try {
      const r = await this.command('RSET', this.timeouts.command);
      if (r.code !== 250) throw new ProtocolError(`RSET failed: ${r.lines[0]}`);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Says QUIT (RFC 5321 4.1.1.10) and closes the connection; never rejects. */
  async quit(): Promise<void> {
    if (!this.closed) {
      try {
        await this.command('QUIT', this.timeouts.command);
      } catch {
        // The server may close without a reply; the connection ends either way.
      }
    }
    this.close();
  }

  /** Closes the connection without QUIT. */
  close(): void {
    if (!this.conn.closed) this.conn.close();
  }
}
