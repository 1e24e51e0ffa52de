// One SMTP connection: the command state machine of RFC 5321 with ESMTP extensions, for
// incoming mail (port 25) and message submission (RFC 6409, ports 587 and 465).
import fsp from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Conn, ConnClosed, ReadTimeout } from '../proto/conn.js';
import { readData } from '../smtp/data.js';
import { parseHelo, parsePathParams, pathString, needsUTF8, asciiDomain, quoteLocalpart, type Path } from '../smtp/address.js';
import { receivedHeader, plainIP, formatDate, returnPathHeader } from '../smtp/received.js';
import { injectedError, injectedStage, injectedTimeoutMs, type Injected } from './localserve.js';
import { analyze, iprev, spfCheck, type Analysis } from './analyze.js';
import { recordIncoming } from '../reports/incoming.js';
import { localDelivered, prepareSubmission, SubmitError, uniqueSenders, type Submitted } from './submit.js';
import { chooseMailbox, fromAddresses } from './rules.js';
import { organizationalDomain } from '../dmarc/lookup.js';
import { reputationPrefixes } from '../limits/limiter.js';
import { bytesToText, decodeHeaderText, type Header } from '../message/header.js';
import { isLoopback, newCid, ShuttingDown, type App } from '../server/app.js';
import type { CertStore } from '../tls/certs.js';
import type { AuthConn } from '../server/auth.js';
import type { MsgFile, TempFile } from '../store/tempfile.js';
import type { Destination } from '../config/domains.js';
import { shiftPart, type MessageMeta } from '../store/account.js';
import { quotaAllows } from '../store/mailboxops.js';
import { parseMessage } from '../message/part.js';
import type { IprevResult } from '../dmarc/authres.js';
import type { VerifyResult as SPFVerify } from '../spf/evaluate.js';
import { smtpConnections, smtpDelivered, smtpRejected, observeSMTPCommand } from '../metrics/metrics.js';
import { Log } from '../log/log.js';
import { incomingDelivered, submissionExtra } from '../webhook/events.js';

export type Kind = 'smtp' | 'submission' | 'submissions';

export interface ListenerOptions {
  kind: Kind;
  hostname: string;
  certs?: CertStore;
  maxMessageSize: number;
  /** STARTTLS not offered (port 25 option). */
  noSTARTTLS?: boolean;
  /** Allow AUTH and submission without TLS (dangerous). */
  noRequireTLS?: boolean;
  /** Port 25: refuse mail without TLS. */
  requireSTARTTLS?: boolean;
}

const maxLine = 1000; // RFC 5321 4.5.3.1.4, including CRLF
const cmdTimeout = 5 * 60_000; // RFC 5321 4.5.3.2.7
const dataTimeout = 10 * 60_000;
const maxRecipients = 1000; // announced with LIMITS RCPTMAX (RFC 9422)
const maxErrors = 10;
const maxHoldSeconds = 60 * 86400; // FUTURERELEASE maximum, as announced (RFC 4865 3)

interface Recipient {
  path: Path;
  /** Local delivery: account and destination. */
  account?: string;
  destination?: Destination;
  /** DSN (RFC 3461 4.1, 4.2). */
  notify?: string;
  orcpt?: string;
  injected?: Injected;
}

interface Transaction {
  from: Path | null;
  utf8: boolean;
  body: '7BIT' | '8BITMIME' | 'BINARYMIME';
  requireTLS: boolean;
  ret?: string;
  envid?: string;
  /** FUTURERELEASE: release time, and the request as given. */
  holdUntil?: number;
  futureRelease?: string;
  rcpts: Recipient[];
  spf?: Promise<SPFVerify>;
  /** BDAT chunks so far (RFC 3030). */
  chunks?: { file: TempFile; size: number; tooLarge: boolean };
}

class Reply extends Error {
  constructor(
    readonly code: number,
    readonly ecode: string,
    text: string,
    readonly close = false,
    /** Reason label for the rejects metric. */
    readonly reason?: string,
  ) {
    super(text);
  }
}

const log = Log.pkg('smtpserver');

/** xtext decoding (RFC 3461 4): "+" followed by two hex digits. */
function xtextDecode(s: string): string {
  return s.replace(/\+([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
const xtextValid = (s: string) => /^([\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/.test(s);

export class Session {
  readonly cid = newCid();
  private readonly conn: Conn;
  private readonly log: Log;
  private readonly remoteIP: string;
  private readonly localIP: string;
  private tls?: TLSSocket;
  private helo?: string;
  private ehlo = false;
  private account?: string;
  private authUser?: string;
  private tx?: Transaction;
  private errors = 0;
  private quit = false;
  private stopping = false;
  private awaitingCommand = false;
  private iprev?: Promise<IprevResult>;
  /** After a message was refused as spam, every command is answered a second late. */
  private slow = false;

  constructor(
    private readonly app: App,
    socket: Socket | TLSSocket,
    private readonly opts: ListenerOptions,
  ) {
    this.conn = new Conn(socket);
    this.remoteIP = plainIP(socket.remoteAddress);
    this.localIP = plainIP(socket.localAddress);
    if (opts.kind === 'submissions') this.tls = socket as TLSSocket;
    this.log = log.with({ cid: this.cid, remote: this.remoteIP, kind: opts.kind });
  }

  private get submission(): boolean {
    return this.opts.kind !== 'smtp';
  }

  private write(code: number, ecode: string | undefined, text: string): void {
    const line = `${code} ${ecode ? ecode + ' ' : ''}${text}`;
    this.log.trace('reply', { line });
    this.conn.write(line + '\r\n');
  }

  /** At shutdown: close now if idle, else after the current command. */
  shutdown(): void {
    this.stopping = true;
    if (this.awaitingCommand) this.conn.abort(new ShuttingDown());
  }

  async run(): Promise<void> {
    this.log.info('new connection', { local: this.localIP });
    this.app.sessions.add(this);
    smtpConnections.inc({ kind: this.opts.kind });
    try {
      if (!this.submission) this.iprev = iprev(this.app.resolver, this.remoteIP);
      this.write(220, undefined, `${this.opts.hostname} ESMTP Postern`);
      while (!this.quit) {
        if (this.stopping) throw new ShuttingDown();
        // Replies to pipelined commands are flushed when the client has nothing queued (RFC 2920 3.2).
        this.awaitingCommand = true;
        const { line, ok } = await this.conn.readLine(maxLine - 2, cmdTimeout).finally(() => (this.awaitingCommand = false));
        if (!ok) {
          this.bad(500, '5.5.2', 'line too long');
          continue;
        }
        await this.command(line.toString('utf8'));
      }
    } catch (e) {
      if (e instanceof ReadTimeout) {
        this.write(421, '4.4.2', `${this.opts.hostname} timeout, closing connection`);
      } else if (e instanceof ShuttingDown) {
        this.write(421, '4.3.2', `${this.opts.hostname} shutting down, try again later`);
      } else if (e instanceof Reply) {
        this.write(e.code, e.ecode, e.message);
      } else if (!(e instanceof ConnClosed)) {
        this.log.error('session error', e as Error);
        this.write(421, '4.3.0', 'internal error, closing connection');
      }
    } finally {
      this.app.sessions.delete(this);
      await this.tx?.chunks?.file.discard();
      this.conn.close();
      this.log.info('connection closed', { read: this.conn.bytesRead, written: this.conn.bytesWritten });
    }
  }

  private bad(code: number, ecode: string, text: string): void {
    this.write(code, ecode, text);
    if (++this.errors >= maxErrors) throw new Reply(421, '4.5.0', 'too many errors, closing connection', true);
  }

  private async command(line: string): Promise<void> {
    if (this.slow) await new Promise((res) => setTimeout(res, 1000));
    const sp = line.indexOf(' ');
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? '' : line.slice(sp + 1);
    this.log.trace('command', verb === 'AUTH' ? { verb } : { line });
    const start = performance.now();
    try {
      // RFC 3030 2: a transaction with BDAT cannot continue with other commands but BDAT/RSET/QUIT.
      if (this.tx?.chunks && !['BDAT', 'RSET', 'QUIT', 'NOOP'].includes(verb)) {
        await this.resetTx();
        throw new Reply(503, '5.5.1', 'BDAT transaction aborted by other command');
      }
      switch (verb) {
        case 'EHLO':
        case 'HELO':
          return await this.cmdHello(verb === 'EHLO', arg);
        case 'STARTTLS':
          return await this.cmdStartTLS(arg);
        case 'AUTH':
          return await this.cmdAuth(arg);
        case 'MAIL':
          return await this.cmdMail(arg);
        case 'RCPT':
          return await this.cmdRcpt(arg);
        case 'DATA':
          return await this.cmdData(arg);
        case 'BDAT':
          return await this.cmdBdat(arg);
        case 'RSET':
          await this.resetTx();
          return this.write(250, '2.0.0', 'ok');
        case 'NOOP':
          return this.write(250, '2.0.0', 'ok');
        case 'VRFY':
        case 'EXPN':
          // RFC 5321 3.5.3: no address verification; say we will try delivery.
          return this.write(252, '2.5.0', 'cannot verify, but will attempt delivery');
        case 'HELP':
          return this.write(214, '2.0.0', 'see RFC 5321');
        case 'QUIT':
          this.quit = true;
          return this.write(221, '2.0.0', `${this.opts.hostname} closing connection`);
        default:
          return this.bad(500, '5.5.2', 'unknown command');
      }
    } catch (e) {
      if (!(e instanceof Reply) || e.close) throw e;
      if (['MAIL', 'RCPT', 'DATA', 'BDAT'].includes(verb)) smtpRejected.inc({ kind: this.opts.kind, reason: e.reason ?? `${verb.toLowerCase()} ${e.ecode}` });
      // Protocol errors count toward closing the connection; refusals of addresses or content do not.
      if ([500, 501, 502, 503, 504, 555].includes(e.code)) this.bad(e.code, e.ecode, e.message);
      else this.write(e.code, e.ecode, e.message);
    } finally {
      observeSMTPCommand(this.opts.kind, verb, start);
    }
  }

  private async resetTx(): Promise<void> {
    await this.tx?.chunks?.file.discard();
    this.tx = undefined;
  }

  private tlsAvailable(): boolean {
    return this.opts.certs !== undefined && !this.opts.noSTARTTLS;
  }

  /** Plain-text credentials are accepted over TLS, or when configured, or from loopback in localserve. */
  private authAllowed(): boolean {
    return this.tls !== undefined || !!this.opts.noRequireTLS || (this.app.localserve && isLoopback(this.remoteIP));
  }

  private authConn(): AuthConn {
    return { protocol: 'smtp', remoteIP: this.remoteIP, tls: this.tls, cid: this.cid, plainAllowed: this.authAllowed() };
  }

  private async cmdHello(ehlo: boolean, arg: string): Promise<void> {
    const a = arg.trim();
    if (a === '') throw new Reply(501, '5.5.4', 'missing domain');
    try {
      this.helo = parseHelo(a);
    } catch (e) {
      // Submission clients often send bare host names; only checked strictly for incoming mail.
      if (!this.submission && this.app.config.static_.Pedantic) throw new Reply(501, '5.5.4', `invalid domain: ${(e as Error).message}`);
      this.helo = a.split(' ')[0]!;
    }
    this.ehlo = ehlo;
    await this.resetTx();
    if (!ehlo) return this.write(250, undefined, this.opts.hostname);
    const ext = ['PIPELINING', `SIZE ${this.opts.maxMessageSize}`];
    if (!this.tls && this.tlsAvailable()) ext.push('STARTTLS');
    // RFC 8689 4: REQUIRETLS is only offered over TLS.
    if (this.tls) ext.push('REQUIRETLS');
    if (this.submission && this.authAllowed()) ext.push(`AUTH ${this.app.auth.mechanisms(this.authConn()).join(' ')}`);
    if (this.submission) {
      // RFC 4865 3: maximum interval in seconds and latest date-time.
      const max = new Date(this.app.clock.now() + maxHoldSeconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
      ext.push(`FUTURERELEASE ${maxHoldSeconds} ${max}`);
    }
    ext.push('ENHANCEDSTATUSCODES', '8BITMIME', 'BINARYMIME', 'CHUNKING', 'DSN', `LIMITS RCPTMAX=${maxRecipients}`, 'SMTPUTF8');
    const lines = [`${this.opts.hostname} greets ${this.helo}`, ...ext];
    lines.forEach((l, i) => this.conn.write(`250${i === lines.length - 1 ? ' ' : '-'}${l}\r\n`));
  }

  private async cmdStartTLS(arg: string): Promise<void> {
    if (arg !== '') throw new Reply(501, '5.5.4', 'no parameters allowed');
    if (this.tls) throw new Reply(503, '5.5.1', 'already in TLS');
    if (!this.tlsAvailable()) throw new Reply(502, '5.5.1', 'STARTTLS not available');
    this.write(220, '2.0.0', 'ready to start TLS');
    try {
      this.tls = await this.conn.startTLS(this.opts.certs!.serverOptions({ requestCert: this.submission, rejectUnauthorized: false }), cmdTimeout);
    } catch (e) {
      this.log.info('tls handshake failed', e as Error);
      throw new ConnClosed();
    }
    this.log.debug('tls started', { version: this.tls.getProtocol(), cipher: this.tls.getCipher().standardName });
    // RFC 3207 4.2: forget everything learned before TLS.
    this.helo = undefined;
    this.ehlo = false;
    await this.resetTx();
  }

  private async cmdAuth(arg: string): Promise<void> {
    if (!this.submission) throw new Reply(503, '5.5.1', 'authentication not available on this port');
    if (!this.helo) throw new Reply(503, '5.5.1', 'say EHLO first');
    if (this.account) throw new Reply(503, '5.5.1', 'already authenticated');
    if (this.tx) throw new Reply(503, '5.5.1', 'not during a mail transaction');
    // RFC 4954 4 and 6: encryption required for plain-text mechanisms.
    if (!this.authAllowed()) throw new Reply(538, '5.7.11', 'encryption required for authentication');
    const [mechName = '', initial] = arg.split(' ');
    const conn = this.authConn();
    if (!this.app.auth.allowed(this.remoteIP)) {
      throw new Reply(454, '4.7.0', 'too many authentication failures from your network, try again later');
    }
    const name = mechName.toUpperCase();
    const mech = this.app.auth.mechanisms(conn).includes(name) ? this.app.auth.mechanism(name, conn) : undefined;
    if (!mech) throw new Reply(504, '5.5.4', 'unrecognized authentication mechanism');
    let data: Buffer | undefined = initial === undefined ? undefined : initial === '=' ? Buffer.alloc(0) : decodeB64(initial);
    for (;;) {
      const r = await mech.step(data);
      if (r.type === 'challenge') {
        this.write(334, undefined, r.data.toString('base64'));
        data = await this.authResponse();
        continue;
      }
      if (r.type === 'success') {
        if (r.data) {
          // RFC 4954 4: additional data with success goes in a challenge, answered empty.
          this.write(334, undefined, r.data.toString('base64'));
          const empty = await this.authResponse();
          if (empty.length) throw new Reply(501, '5.5.2', 'expected empty response');
        }
        this.account = r.account;
        this.authUser = r.username;
        this.app.auth.succeed(conn, r.username, r.account, mech.name);
        return this.write(235, '2.7.0', 'authentication successful');
      }
      if (r.reason === 'malformed') throw new Reply(501, '5.5.2', r.message);
      this.app.auth.fail(conn, '', mech.name, r.message);
      const delay = this.app.auth.failureDelay(this.remoteIP);
      if (delay) await new Promise((res) => setTimeout(res, delay));
      throw new Reply(535, '5.7.8', 'authentication credentials invalid');
    }
  }

  private async authResponse(): Promise<Buffer> {
    const { line, ok } = await this.conn.readLine(12288, cmdTimeout);
    if (!ok) throw new Reply(500, '5.5.6', 'authentication line too long');
    const s = line.toString('ascii');
    // RFC 4954 4: "*" cancels the exchange.
    if (s === '*') throw new Reply(501, '5.0.0', 'authentication cancelled');
    return decodeB64(s);
  }

  private loopbackLocalserve(): boolean {
    return this.app.localserve && isLoopback(this.remoteIP);
  }

  private async cmdMail(arg: string): Promise<void> {
    if (!this.helo) throw new Reply(503, '5.5.1', 'say EHLO or HELO first');
    if (this.tx) throw new Reply(503, '5.5.1', 'already in a mail transaction');
    if (this.submission && !this.account) throw new Reply(530, '5.7.0', 'authentication required');
    if (this.submission && !this.tls && !this.opts.noRequireTLS && !this.loopbackLocalserve()) throw new Reply(530, '5.7.0', 'TLS required');
    if (!this.submission && this.opts.requireSTARTTLS && !this.tls) throw new Reply(530, '5.7.0', 'STARTTLS required');
    if (!/^from:/i.test(arg)) throw new Reply(501, '5.5.4', 'expected MAIL FROM:<address>');
    let parsed: ReturnType<typeof parsePathParams>;
    try {
      parsed = parsePathParams(arg.slice(5).trimStart(), { utf8: true, allowNull: true, pedantic: this.app.config.static_.Pedantic });
    } catch (e) {
      throw new Reply(501, '5.1.7', `bad sender address: ${(e as Error).message}`);
    }
    const { path, params } = parsed;
    const tx: Transaction = { from: path, utf8: false, body: '7BIT', requireTLS: false, rcpts: [] };
    for (const [k, v] of params) {
      switch (k) {
        case 'SIZE':
          // RFC 1870 6.
          if (v === undefined || !/^\d{1,20}$/.test(v)) throw new Reply(501, '5.5.4', 'bad SIZE parameter');
          if (Number(v) > this.opts.maxMessageSize) throw new Reply(552, '5.3.4', 'message too large');
          break;
        case 'BODY': {
          // RFC 6152 2, RFC 3030 3.
          const b = v?.toUpperCase();
          if (b !== '7BIT' && b !== '8BITMIME' && b !== 'BINARYMIME') throw new Reply(501, '5.5.4', 'unsupported BODY value');
          tx.body = b;
          break;
        }
        case 'SMTPUTF8':
          if (v !== undefined) throw new Reply(501, '5.5.4', 'SMTPUTF8 takes no value');
          tx.utf8 = true;
          break;
        case 'AUTH':
          // RFC 4954 5: accepted and ignored.
          break;
        case 'RET':
          // RFC 3461 4.3.
          if (v?.toUpperCase() !== 'FULL' && v?.toUpperCase() !== 'HDRS') throw new Reply(501, '5.5.4', 'RET must be FULL or HDRS');
          tx.ret = v.toUpperCase();
          break;
        case 'ENVID':
          // RFC 3461 4.4: xtext, at most 100 characters.
          if (v === undefined || v.length > 100 || !xtextValid(v)) throw new Reply(501, '5.5.4', 'bad ENVID');
          tx.envid = xtextDecode(v);
          break;
        case 'REQUIRETLS':
          // RFC 8689 4.1: only over TLS.
          if (v !== undefined) throw new Reply(501, '5.5.4', 'REQUIRETLS takes no value');
          if (!this.tls) throw new Reply(530, '5.7.10', 'REQUIRETLS needs a TLS connection');
          tx.requireTLS = true;
          break;
        case 'HOLDFOR':
        case 'HOLDUNTIL': {
          // RFC 4865 3: submission only, one of the two, within the announced maximum.
          if (!this.submission) throw new Reply(555, '5.5.4', `${k} only on submission`);
          if (tx.holdUntil !== undefined) throw new Reply(501, '5.5.4', 'only one of HOLDFOR and HOLDUNTIL');
          const now = this.app.clock.now();
          let until: number;
          if (k === 'HOLDFOR') {
            if (v === undefined || !/^\d{1,10}$/.test(v)) throw new Reply(501, '5.5.4', 'bad HOLDFOR value');
            until = now + Number(v) * 1000;
          } else {
            until = v === undefined ? NaN : Date.parse(v);
            if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(v ?? '') || Number.isNaN(until)) throw new Reply(501, '5.5.4', 'bad HOLDUNTIL value');
          }
          if (until - now > maxHoldSeconds * 1000) throw new Reply(554, '5.5.4', 'release time too far in the future');
          tx.holdUntil = Math.max(until, now);
          tx.futureRelease = `${k}=${v}`;
          break;
        }
        default:
          throw new Reply(555, '5.5.4', `unrecognized parameter ${k}`);
      }
    }
    if (path && needsUTF8(path) && !tx.utf8) throw new Reply(553, '5.6.7', 'non-ASCII address requires SMTPUTF8');
    if (this.app.localserve && path && injectedStage(path.localpart) === 'mailfrom') {
      const inj = injectedError(path.localpart);
      if (inj === 'timeout') return this.hang();
      if (inj) throw new Reply(inj.code, inj.ecode, inj.text);
    }
    if (this.submission && path && !this.app.localserve) {
      const r = this.app.config.addresses.lookup(pathString(path));
      if (!r || r.account !== this.account) throw new Reply(550, '5.7.1', 'sender address not of the authenticated account');
    }
    if (!this.submission) {
      tx.spf = spfCheck(this.app.resolver, this.remoteIP, path ? `${quoteLocalpart(path.localpart)}@${asciiDomain(path.domain)}` : '', this.helo.replace(/^\[|\]$/g, ''), this.opts.hostname);
      tx.spf.catch(() => {});
    }
    this.tx = tx;
    this.write(250, '2.1.0', 'ok');
  }

  private async cmdRcpt(arg: string): Promise<void> {
    const tx = this.tx;
    if (!tx) throw new Reply(503, '5.5.1', 'need MAIL first');
    if (!/^to:/i.test(arg)) throw new Reply(501, '5.5.4', 'expected RCPT TO:<address>');
    if (tx.rcpts.length >= maxRecipients) throw new Reply(452, '4.5.3', `too many recipients, at most ${maxRecipients}`);
    let parsed: ReturnType<typeof parsePathParams>;
    try {
      parsed = parsePathParams(arg.slice(3).trimStart(), { utf8: true, allowNull: false, pedantic: this.app.config.static_.Pedantic });
    } catch (e) {
      throw new Reply(501, '5.1.3', `bad recipient address: ${(e as Error).message}`);
    }
    const path = parsed.path!;
    const rcpt: Recipient = { path };
    for (const [k, v] of parsed.params) {
      if (k === 'NOTIFY') {
        // RFC 3461 4.1: NEVER alone, or a list of SUCCESS, FAILURE, DELAY.
        const list = (v ?? '').toUpperCase().split(',');
        const ok = list.length > 0 && (list.join() === 'NEVER' || list.every((x) => ['SUCCESS', 'FAILURE', 'DELAY'].includes(x)));
        if (!ok || new Set(list).size !== list.length) throw new Reply(501, '5.5.4', 'bad NOTIFY parameter');
        rcpt.notify = list.join(',');
      } else if (k === 'ORCPT') {
        // RFC 3461 4.2: addr-type ";" xtext.
        const m = /^([A-Za-z0-9-]+);(.+)$/.exec(v ?? '');
        if (!m || !xtextValid(m[2]!) || (v ?? '').length > 500) throw new Reply(501, '5.5.4', 'bad ORCPT parameter');
        rcpt.orcpt = `${m[1]};${xtextDecode(m[2]!)}`;
      } else throw new Reply(555, '5.5.4', `unrecognized parameter ${k}`);
    }
    if (needsUTF8(path) && !tx.utf8) throw new Reply(553, '5.6.7', 'non-ASCII address requires SMTPUTF8');
    const addr = pathString(path);
    if (this.app.localserve) {
      const stage = injectedStage(path.localpart);
      if (stage === 'rcptto') {
        const inj = injectedError(path.localpart);
        if (inj === 'timeout') return this.hang();
        if (inj) throw new Reply(inj.code, inj.ecode, inj.text);
      }
      const r = this.app.config.addresses.lookup(addr);
      rcpt.account = r?.account ?? Object.keys(this.app.config.domains.Accounts)[0] ?? 'postern';
      rcpt.destination = r?.destination ?? { Mailbox: 'Inbox', Rulesets: [] };
      rcpt.injected = stage === 'data' ? injectedError(path.localpart) : undefined;
      tx.rcpts.push(rcpt);
      return this.write(250, '2.1.5', 'ok');
    }
    const r = this.app.config.addresses.lookup(addr);
    if (r) {
      rcpt.account = r.account;
      rcpt.destination = r.destination;
    } else if (this.app.config.addresses.isLocalDomain(path.domain)) {
      throw new Reply(550, '5.1.1', 'no such user', false, 'unknown-user');
    } else if (!this.submission) {
      throw new Reply(550, '5.7.1', 'relaying not permitted', false, 'relay');
    }
    tx.rcpts.push(rcpt);
    this.write(250, '2.1.5', 'ok');
  }

  /** Keeps the client waiting without reply, for localserve's "timeout" localparts, until it gives up. */
  private async hang(): Promise<void> {
    this.conn.flush();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise((res) => (timer = setTimeout(res, injectedTimeoutMs).unref())),
      new Promise((res) => this.conn.socket.once('close', res)),
    ]);
    clearTimeout(timer);
    throw new Reply(421, '4.4.2', 'timeout', true);
  }

  private checkDataAllowed(): Transaction {
    const tx = this.tx;
    if (!tx) throw new Reply(503, '5.5.1', 'need MAIL first');
    if (tx.rcpts.length === 0) throw new Reply(503, '5.5.1', 'need RCPT first');
    return tx;
  }

  private async cmdData(arg: string): Promise<void> {
    if (arg !== '') throw new Reply(501, '5.5.4', 'no parameters allowed');
    const tx = this.checkDataAllowed();
    // RFC 3030 3: BINARYMIME messages must be sent with BDAT.
    if (tx.body === 'BINARYMIME') throw new Reply(503, '5.5.1', 'BODY=BINARYMIME requires BDAT');
    this.write(354, undefined, 'go ahead, end with <CRLF>.<CRLF>');
    const tmp = await this.app.store.tempFile();
    try {
      const r = await readData(this.conn, (b) => tmp.write(b), this.opts.maxMessageSize, dataTimeout);
      if (r.smuggling) {
        this.log.info('message rejected: smtp smuggling', { reason: r.smuggling });
        throw new Reply(500, '5.5.2', `bad line ending in message (${r.smuggling}), possible SMTP smuggling attempt`, false, 'smuggling');
      }
      if (r.tooLarge) throw new Reply(552, '5.3.4', 'message too large', false, 'size');
      await this.finishMessage(tx, await tmp.finish());
    } finally {
      await tmp.discard();
      this.tx = undefined;
    }
  }

  /** BDAT size [LAST] (RFC 3030 2): the chunk's octets follow the command line as is. */
  private async cmdBdat(arg: string): Promise<void> {
    const m = /^(\d{1,15})( +LAST)? *$/i.exec(arg);
    if (!m) {
      // The chunk size is unknown, so the stream cannot be resynchronized.
      throw new Reply(501, '5.5.4', 'bad BDAT syntax, closing connection', true);
    }
    const size = Number(m[1]);
    const last = m[2] !== undefined;
    let tx: Transaction | undefined;
    try {
      tx = this.checkDataAllowed();
    } catch (e) {
      // The chunk's data must still be read and dropped (RFC 3030 2).
      await this.skip(size);
      throw e;
    }
    tx.chunks ??= { file: await this.app.store.tempFile(), size: 0, tooLarge: false };
    const c = tx.chunks;
    let left = size;
    while (left > 0) {
      const b = await this.conn.readChunk(dataTimeout);
      const take = b.subarray(0, left);
      if (b.length > left) this.conn.unread(b.subarray(left));
      left -= take.length;
      c.size += take.length;
      if (c.size > this.opts.maxMessageSize) c.tooLarge = true;
      else c.file.write(take);
    }
    if (!last) {
      await c.file.drain();
      return this.write(250, '2.0.0', `${size} octets received`);
    }
    try {
      if (c.tooLarge) throw new Reply(552, '5.3.4', 'message too large', false, 'size');
      const file = await c.file.finish();
      if (tx.body !== 'BINARYMIME') {
        // Same line-ending rules as DATA: no bare CR, which other servers may take as line end.
        const data = await fsp.readFile(file.path);
        const i = data.findIndex((b, j) => b === 13 && data[j + 1] !== 10);
        if (i >= 0) throw new Reply(500, '5.5.2', 'bare carriage return in message, possible SMTP smuggling attempt', false, 'smuggling');
      }
      await this.finishMessage(tx, file);
    } finally {
      await c.file.discard();
      this.tx = undefined;
    }
  }

  private async skip(n: number): Promise<void> {
    while (n > 0) {
      const b = await this.conn.readChunk(dataTimeout);
      if (b.length > n) this.conn.unread(b.subarray(n));
      n -= Math.min(n, b.length);
    }
  }

  private protocolName(tx: Transaction): string {
    // RFC 3848 and RFC 6531 3.7.4 protocol names.
    if (!this.ehlo) return 'SMTP';
    return `${tx.utf8 ? 'UTF8SMTP' : 'ESMTP'}${this.tls ? 'S' : ''}${this.account ? 'A' : ''}`;
  }

  private received(tx: Transaction, id: string, recipient: string | undefined): string {
    return receivedHeader({
      helo: this.helo!,
      remoteIP: this.remoteIP,
      hostname: this.opts.hostname,
      localIP: this.localIP,
      with: this.protocolName(tx),
      id,
      recipient,
      tlsCipher: this.tls?.getCipher().standardName,
      tlsVersion: this.tls?.getProtocol() ?? undefined,
      date: new Date(this.app.clock.now()),
    });
  }

  /** Processes a complete message: checks, then local delivery and queueing, then the reply. */
  private async finishMessage(tx: Transaction, file: MsgFile): Promise<void> {
    const injected = tx.rcpts.find((r) => r.injected)?.injected;
    if (injected === 'timeout') return this.hang();
    if (injected) throw new Reply(injected.code, injected.ecode, injected.text);
    // Software on this machine (scripts, a local relay) is not rate limited.
    if (!this.submission && !isLoopback(this.remoteIP) && !this.app.limits.deliveries.canAdd(this.remoteIP)) {
      throw new Reply(451, '4.7.0', 'too many messages from your network, try again later', false, 'rate-limit');
    }
    const id = `${this.cid.toString(36)}-${this.app.clock.now().toString(36)}`;
    const msg = await fsp.readFile(file.path);
    const mailFrom = tx.from ? pathString(tx.from) : '';
    if (this.submission) await this.submit(tx, file, msg, id, mailFrom);
    else await this.incoming(tx, file, msg, id, mailFrom);
    if (!this.submission) this.app.limits.deliveries.add(this.remoteIP);
    this.write(250, '2.0.0', `ok, id ${id}`);
  }

  private async incoming(tx: Transaction, file: MsgFile, msg: Buffer, id: string, mailFrom: string): Promise<void> {
    const a = await analyze({
      resolver: this.app.resolver,
      hostname: this.opts.hostname,
      remoteIP: this.remoteIP,
      helo: this.helo!,
      mailFrom,
      msg,
      spf: tx.spf!,
      iprev: this.iprev!,
      now: new Date(this.app.clock.now()),
    });
    const logAuth = { spf: a.spf.result.result, dkim: a.dkim.map((d) => `${d.status}:${d.domain}`), dmarc: `${a.dmarc.status}:${a.dmarc.domain}`, iprev: a.iprev.result };
    this.log.info('message authentication', logAuth);
    recordIncoming(this.app, { remoteIP: this.remoteIP, mailFrom, recipients: tx.rcpts.map((r) => pathString(r.path)), msg, analysis: a });
    // RFC 7489 6.6.3: honour the sender domain's reject policy, unless every recipient's
    // domain is configured to take such messages (into Junk); one reply covers all recipients.
    let junkAll = false;
    if (a.dmarcAction === 'reject' && !this.app.localserve) {
      if (!tx.rcpts.every((r) => this.app.config.domains.Domains[r.path.domain]?.AcceptDMARCRejects)) {
        this.log.info('message rejected by dmarc policy', { domain: a.dmarc.domain });
        throw new Reply(550, '5.7.1', `DMARC policy of ${a.dmarc.domain} says to reject this message: ${a.dmarc.reason ?? 'no aligned SPF or DKIM pass'}`, false, 'dmarc');
      }
      junkAll = true;
    } else if (a.dmarcAction === 'tempfail' && !this.app.localserve) {
      // RFC 7489 6.6.3, 11.2: the policy could not be evaluated now; the sender retries.
      throw new Reply(451, '4.7.1', `DMARC check of ${a.dmarc.domain} failed temporarily, try again later`, false, 'dmarc-temperror');
    }
    // RFC 8601 5: results that claim to be ours but came with the message are removed.
    const forged = a.header.getAll('authentication-results').filter((f) => authservID(f.value) === this.opts.hostname.toLowerCase());
    if (forged.length) {
      const pieces: Buffer[] = [];
      let at = 0;
      for (const f of forged) {
        pieces.push(msg.subarray(at, f.start));
        at = f.end;
      }
      const kept = Buffer.concat([...pieces, msg.subarray(at)]);
      this.log.info('removed authentication-results fields claiming to be ours', { count: forged.length });
      const clean = await this.app.store.writeTemp(kept);
      try {
        return await this.deliverLocal(tx, clean, kept, id, mailFrom, Buffer.from(a.headers), a, junkAll);
      } finally {
        await fsp.rm(clean.path, { force: true });
      }
    }
    await this.deliverLocal(tx, file, msg, id, mailFrom, Buffer.from(a.headers), a, junkAll);
  }

  private async submit(tx: Transaction, file: MsgFile, msg: Buffer, id: string, mailFrom: string): Promise<void> {
    let sub: Submitted;
    try {
      // localserve accepts any From, for testing software that sends as anyone.
      sub = await prepareSubmission(this.app.config, this.account!, msg, new Date(this.app.clock.now()), !this.app.localserve);
    } catch (e) {
      if (e instanceof SubmitError) throw new Reply(550, '5.7.1', e.message, false, 'from');
      throw e;
    }
    const local = tx.rcpts.filter((r) => r.account);
    const remote = tx.rcpts.filter((r) => !r.account);
    // Replies from people the account wrote to are from known correspondents (reputation).
    this.app.store.account(this.account!).recordRecipients(
      tx.rcpts.map((r) => {
        const domain = asciiDomain(r.path.domain);
        return { address: pathString(r.path), domain, orgDomain: organizationalDomain(domain) };
      }),
      this.app.clock.now(),
    );
    const extra = submissionExtra(sub.header);
    // With a login address in FromIDLoginAddresses, each remote recipient gets a MAIL FROM of its own.
    const unique = uniqueSenders(this.app.config, this.account!, this.authUser);
    const groups = unique ? remote.map((r) => ({ rcpts: [r], ...unique(pathString(r.path)) })) : remote.length ? [{ rcpts: remote, sender: mailFrom, fromId: undefined }] : [];
    for (const g of groups) {
      // Identical for all recipients, so the queue can send one copy per destination host.
      const prefix = Buffer.concat([Buffer.from(this.received(tx, id, g.rcpts.length === 1 ? pathString(g.rcpts[0]!.path) : undefined)), sub.prefix]);
      this.app.queue.enqueue(file, {
        account: this.account!,
        sender: g.sender,
        fromId: g.fromId,
        recipients: g.rcpts.map((r) => ({ address: pathString(r.path), domain: asciiDomain(r.path.domain), notify: r.notify, orcpt: r.orcpt })),
        prefix,
        has8bit: tx.body !== '7BIT' || msg.some((b) => b > 127),
        smtputf8: tx.utf8,
        requireTLS: tx.requireTLS ? true : /^TLS-Required:\s*No\s*$/im.test(sub.header.get('tls-required')?.raw.toString('latin1') ?? '') ? false : null,
        dsnRet: tx.ret,
        dsnEnvid: tx.envid,
        futureRelease: tx.futureRelease,
        nextAttempt: tx.holdUntil ?? this.app.clock.now(),
        messageId: sub.messageId,
        subject: sub.subject,
        extra,
      });
      smtpDelivered.inc({ kind: this.opts.kind, result: 'queued' });
      this.log.info('queued', { from: g.sender, rcpts: g.rcpts.map((r) => pathString(r.path)), hold: tx.holdUntil ? formatDate(new Date(tx.holdUntil)) : undefined });
    }
    if (local.length) {
      await this.deliverLocal({ ...tx, rcpts: local }, file, msg, id, mailFrom, sub.prefix);
      localDelivered(this.app, {
        account: this.account!,
        sender: mailFrom,
        recipients: local.map((r) => pathString(r.path)),
        size: file.size + sub.prefix.length,
        messageId: sub.messageId,
        subject: sub.subject,
        extra,
      });
    }
  }

  /** What reputation checks need to know about how an incoming message arrived. */
  private messageMeta(a: Analysis, mailFrom: string, tx: Transaction): MessageMeta {
    const from = fromAddresses(a.header)[0] ?? '';
    const fromDomain = addrDomain(from);
    const env = base(a.header);
    return {
      remoteIP: this.remoteIP,
      remoteIPMasks: reputationPrefixes(this.remoteIP),
      ehloDomain: this.helo!.toLowerCase(),
      mailFrom: mailFrom.toLowerCase(),
      mailFromDomain: tx.from ? asciiDomain(tx.from.domain) : '',
      msgFrom: from,
      msgFromDomain: fromDomain,
      msgFromOrgDomain: fromDomain ? organizationalDomain(fromDomain) : '',
      ehloValidated: a.spf.helo?.result === 'pass',
      mailFromValidated: a.spf.mailFrom?.result === 'pass',
      msgFromValidated: a.dmarc.status === 'pass',
      dkimDomains: [...new Set(a.dkim.filter((d) => d.status === 'pass').map((d) => d.domain.toLowerCase()))],
      messageId: env.messageId,
      subject: env.subject,
    };
  }

  /** Delivers to local accounts: one copy per account and mailbox, whatever the number of addresses. */
  private async deliverLocal(tx: Transaction, file: MsgFile, msg: Buffer, id: string, mailFrom: string, extra: Buffer, a?: Analysis, junkAll = false): Promise<void> {
    const header = a?.header;
    // Structure of the message file: delivery moves its offsets past the prefix it stores.
    const base = parseMessage(msg);
    const meta = a ? this.messageMeta(a, mailFrom, tx) : undefined;
    const targets = new Map<string, { account: string; mailbox: string; rcpts: Recipient[] }>();
    for (const r of tx.rcpts) {
      let mailbox = r.destination!.Mailbox;
      if (header && a) mailbox = chooseMailbox(r.destination!, { mailFrom, header, verifiedDomains: a.verifiedDomains });
      if (junkAll) mailbox = 'Junk';
      const k = `${r.account}\0${mailbox}`;
      const t = targets.get(k) ?? { account: r.account!, mailbox, rcpts: [] };
      t.rcpts.push(r);
      targets.set(k, t);
    }
    // Over-quota accounts make the whole message wait: one reply covers all recipients.
    for (const t of targets.values()) {
      const limit = this.app.config.domains.Accounts[t.account]?.QuotaMessageSize ?? 0;
      if (!quotaAllows(this.app.store.account(t.account), limit, file.size + extra.length + 1024)) {
        throw new Reply(452, '4.2.2', 'mailbox full, try again later', false, 'quota');
      }
    }
    const results = await Promise.all(
      [...targets.values()].map(async (t) => {
        let mailbox = t.mailbox;
        if (a && this.app.hooks.incoming) {
          const v = await this.app.hooks.incoming({ account: t.account, mailbox, remoteIP: this.remoteIP, mailFrom, msg, analysis: a });
          if (v.delayMs && !this.app.localserve) await new Promise((res) => setTimeout(res, v.delayMs));
          if (v.action === 'reject' && !this.app.localserve) {
            // RFC 5321 4.2.5: looks temporary, so a legitimate sender's server tells its user; later
            // commands on this connection are answered slowly.
            this.slow = true;
            return { t, rejected: v.reason ?? 'rejected', code: v.code, ecode: v.ecode };
          }
          if (v.action === 'junk' && !this.app.localserve) mailbox = 'Junk';
          if (v.action === 'accept' && v.mailbox && !this.app.localserve) mailbox = v.mailbox;
        }
        const received = Buffer.from(
          returnPathHeader(mailFrom) + this.received(tx, id, t.rcpts.length === 1 && tx.rcpts.length === 1 ? pathString(t.rcpts[0]!.path) : undefined),
        );
        const now = this.app.clock.now();
        const prefix = Buffer.concat([received, extra]);
        const d = await this.app.store.account(t.account).deliver(file, { mailbox, prefix, received: now, part: base, meta });
        if (meta) {
          incomingDelivered(this.app, {
            account: t.account,
            msgId: d.id,
            mailbox,
            rcptTo: t.rcpts.map((r) => pathString(r.path)),
            mailFrom,
            remoteIP: this.remoteIP,
            message: () => Buffer.concat([received, extra, msg]),
            part: shiftPart(base, prefix.length),
            received: now,
            mailFromValidated: !!meta.mailFromValidated,
            msgFromValidated: !!meta.msgFromValidated,
            dkimDomains: meta.dkimDomains ?? [],
          });
        }
        return { t, rejected: undefined, code: undefined, ecode: undefined };
      }),
    );
    const rejected = results.filter((r) => r.rejected);
    if (rejected.length === results.length && rejected.length > 0) {
      const r = rejected[0]!;
      throw new Reply(r.code ?? 451, r.ecode ?? '4.3.0', `message not accepted: ${r.rejected}`, false, 'content');
    }
    smtpDelivered.inc({ kind: this.opts.kind, result: 'delivered' });
    this.log.info('delivered', {
      from: mailFrom,
      rcpts: tx.rcpts.map((r) => pathString(r.path)),
      size: file.size,
      account: this.account,
      user: this.authUser,
    });
  }
}

/** The domain of an address, lower-cased ASCII. */
function addrDomain(addr: string): string {
  const i = addr.lastIndexOf('@');
  return i < 0 ? '' : asciiDomain(addr.slice(i + 1).toLowerCase());
}

/** The authserv-id of an Authentication-Results value (RFC 8601 2.2), lower-cased. */
function authservID(value: string): string {
  return value.replace(/\([^)]*\)/g, ' ').trim().split(/[\s;]/)[0]!.toLowerCase();
}

/** Message-ID and decoded Subject of a header. */
function base(h: Header): { messageId: string; subject: string } {
  const id = h.get('message-id')?.value ?? '';
  const subject = h.get('subject')?.value ?? '';
  return { messageId: bytesToText(id).trim(), subject: decodeHeaderText(subject).slice(0, 500) };
}

function decodeB64(s: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new Reply(501, '5.5.2', 'invalid base64');
  return Buffer.from(s, 'base64');
}
