// One SMTP connection: the command state machine of RFC 5321 with ESMTP extensions, for
// incoming mail (port 25) and message submission (RFC 6409, ports 587 and 465).
import fsp from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Conn, ConnClosed, ReadTimeout } from '../proto/conn.js';
import { readData } from '../smtp/data.js';
import { SyntaxError as AddrSyntaxError, parseHelo, parsePathParams, pathString, needsUTF8, type Path } from '../smtp/address.js';
import { receivedHeader, plainIP } from '../smtp/received.js';
import { injectedError, injectedStage, injectedTimeoutMs, type Injected } from './localserve.js';
import { isLoopback, newCid, ShuttingDown, type App } from '../server/app.js';
import type { CertStore } from '../tls/certs.js';
import type { AuthConn } from '../server/auth.js';
import type { MsgFile } from '../store/tempfile.js';
import { parseMessage } from '../message/part.js';
import { Log } from '../log/log.js';

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
const maxRecipients = 1000; // announced with LIMITS RCPTMAX
const maxErrors = 10;

interface Recipient {
  path: Path;
  account: string;
  mailbox: string;
  injected?: Injected;
}

class Reply extends Error {
  constructor(
    readonly code: number,
    readonly ecode: string,
    text: string,
    readonly close = false,
  ) {
    super(text);
  }
}

const log = Log.pkg('smtpserver');

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
  private mailFrom?: Path | null;
  private mailUTF8 = false;
  private rcpts: Recipient[] = [];
  private errors = 0;
  private quit = false;
  private stopping = false;
  private awaitingCommand = false;

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
    try {
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
      this.conn.close();
      this.log.info('connection closed', { read: this.conn.bytesRead, written: this.conn.bytesWritten });
    }
  }

  private bad(code: number, ecode: string, text: string): void {
    this.write(code, ecode, text);
    if (++this.errors >= maxErrors) throw new Reply(421, '4.5.0', 'too many errors, closing connection', true);
  }

  private async command(line: string): Promise<void> {
    const sp = line.indexOf(' ');
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? '' : line.slice(sp + 1);
    this.log.trace('command', verb === 'AUTH' ? { verb } : { line });
    try {
      switch (verb) {
        case 'EHLO':
        case 'HELO':
          return this.cmdHello(verb === 'EHLO', arg);
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
        case 'RSET':
          this.reset();
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
      if (e.code >= 500) this.bad(e.code, e.ecode, e.message);
      else this.write(e.code, e.ecode, e.message);
    }
  }

  private reset(): void {
    this.mailFrom = undefined;
    this.mailUTF8 = false;
    this.rcpts = [];
  }

  private tlsAvailable(): boolean {
    return this.opts.certs !== undefined && !this.opts.noSTARTTLS;
  }

  /** Plain-text credentials are accepted over TLS, or when configured, or from loopback in localserve. */
  private authAllowed(): boolean {
    return this.tls !== undefined || !!this.opts.noRequireTLS || (this.app.localserve && isLoopback(this.remoteIP));
  }

  private cmdHello(ehlo: boolean, arg: string): void {
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
    this.reset();
    if (!ehlo) return this.write(250, undefined, this.opts.hostname);
    const ext = ['PIPELINING', `SIZE ${this.opts.maxMessageSize}`];
    if (!this.tls && this.tlsAvailable()) ext.push('STARTTLS');
    if (this.submission && this.authAllowed()) {
      const conn: AuthConn = { protocol: 'smtp', remoteIP: this.remoteIP, tls: this.tls, cid: this.cid, plainAllowed: this.authAllowed() };
      ext.push(`AUTH ${this.app.auth.mechanisms(conn).join(' ')}`);
    }
    ext.push('ENHANCEDSTATUSCODES', '8BITMIME', `LIMITS RCPTMAX=${maxRecipients}`, 'SMTPUTF8');
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
    this.reset();
  }

  private async cmdAuth(arg: string): Promise<void> {
    if (!this.submission) throw new Reply(503, '5.5.1', 'authentication not available on this port');
    if (!this.helo) throw new Reply(503, '5.5.1', 'say EHLO first');
    if (this.account) throw new Reply(503, '5.5.1', 'already authenticated');
    if (this.mailFrom !== undefined) throw new Reply(503, '5.5.1', 'not during a mail transaction');
    // RFC 4954 4 and 6: encryption required for plain-text mechanisms.
    if (!this.authAllowed()) throw new Reply(538, '5.7.11', 'encryption required for authentication');
    const [mechName = '', initial] = arg.split(' ');
    const conn: AuthConn = { protocol: 'smtp', remoteIP: this.remoteIP, tls: this.tls, cid: this.cid, plainAllowed: this.authAllowed() };
    if (!this.app.auth.allowed(this.remoteIP)) {
      throw new Reply(454, '4.7.0', 'too many authentication failures from your network, try again later');
    }
    const mech = this.app.auth.mechanisms(conn).includes(mechName.toUpperCase()) ? this.app.auth.mechanism(mechName.toUpperCase(), conn) : undefined;
    if (!mech) throw new Reply(504, '5.5.4', 'unrecognized authentication mechanism');
    let data: Buffer | undefined = initial === undefined ? undefined : initial === '=' ? Buffer.alloc(0) : decodeB64(initial);
    let username = '';
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
      username = username || r.message;
      this.app.auth.fail(conn, username, mech.name, r.message);
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

  private async cmdMail(arg: string): Promise<void> {
    if (!this.helo) throw new Reply(503, '5.5.1', 'say EHLO or HELO first');
    if (this.mailFrom !== undefined) throw new Reply(503, '5.5.1', 'already in a mail transaction');
    if (this.submission && !this.account) throw new Reply(530, '5.7.0', 'authentication required');
    if (this.submission && !this.tls && !this.opts.noRequireTLS && !(this.app.localserve && isLoopback(this.remoteIP))) {
      throw new Reply(530, '5.7.0', 'TLS required');
    }
    if (!this.submission && this.opts.requireSTARTTLS && !this.tls) throw new Reply(530, '5.7.0', 'STARTTLS required');
    if (!/^from:/i.test(arg)) throw new Reply(501, '5.5.4', 'expected MAIL FROM:<address>');
    let parsed: ReturnType<typeof parsePathParams>;
    try {
      parsed = parsePathParams(arg.slice(5).trimStart(), { utf8: true, allowNull: true, pedantic: this.app.config.static_.Pedantic });
    } catch (e) {
      throw new Reply(501, '5.1.7', `bad sender address: ${(e as Error).message}`);
    }
    const { path, params } = parsed;
    let utf8 = false;
    for (const [k, v] of params) {
      switch (k) {
        case 'SIZE': {
          // RFC 1870 6.
          if (v === undefined || !/^\d{1,20}$/.test(v)) throw new Reply(501, '5.5.4', 'bad SIZE parameter');
          if (Number(v) > this.opts.maxMessageSize) throw new Reply(552, '5.3.4', 'message too large');
          break;
        }
        case 'BODY':
          // RFC 6152 2.
          if (v === undefined || !['7BIT', '8BITMIME'].includes(v.toUpperCase())) throw new Reply(501, '5.5.4', 'unsupported BODY value');
          break;
        case 'SMTPUTF8':
          if (v !== undefined) throw new Reply(501, '5.5.4', 'SMTPUTF8 takes no value');
          utf8 = true;
          break;
        case 'AUTH':
          // RFC 4954 5: accepted and ignored.
          break;
        default:
          throw new Reply(555, '5.5.4', `unrecognized parameter ${k}`);
      }
    }
    if (path && needsUTF8(path) && !utf8) throw new Reply(553, '5.6.7', 'non-ASCII address requires SMTPUTF8');
    if (this.app.localserve && path && injectedStage(path.localpart) === 'mailfrom') {
      const inj = injectedError(path.localpart);
      if (inj === 'timeout') return this.hang();
      if (inj) throw new Reply(inj.code, inj.ecode, inj.text);
    }
    if (this.submission && path && !this.app.localserve) {
      const r = this.app.config.addresses.lookup(pathString(path));
      if (!r || r.account !== this.account) throw new Reply(550, '5.7.1', 'sender address not of the authenticated account');
    }
    this.mailFrom = path;
    this.mailUTF8 = utf8;
    this.write(250, '2.1.0', 'ok');
  }

  private async cmdRcpt(arg: string): Promise<void> {
    if (this.mailFrom === undefined) throw new Reply(503, '5.5.1', 'need MAIL first');
    if (!/^to:/i.test(arg)) throw new Reply(501, '5.5.4', 'expected RCPT TO:<address>');
    if (this.rcpts.length >= maxRecipients) throw new Reply(452, '4.5.3', `too many recipients, at most ${maxRecipients}`);
    let parsed: ReturnType<typeof parsePathParams>;
    try {
      parsed = parsePathParams(arg.slice(3).trimStart(), { utf8: true, allowNull: false, pedantic: this.app.config.static_.Pedantic });
    } catch (e) {
      throw new Reply(501, '5.1.3', `bad recipient address: ${(e as Error).message}`);
    }
    const path = parsed.path!;
    for (const k of parsed.params.keys()) throw new Reply(555, '5.5.4', `unrecognized parameter ${k}`);
    if (needsUTF8(path) && !this.mailUTF8) throw new Reply(553, '5.6.7', 'non-ASCII address requires SMTPUTF8');
    const addr = pathString(path);
    if (this.app.localserve) {
      const stage = injectedStage(path.localpart);
      if (stage === 'rcptto') {
        const inj = injectedError(path.localpart);
        if (inj === 'timeout') return this.hang();
        if (inj) throw new Reply(inj.code, inj.ecode, inj.text);
      }
      const r = this.app.config.addresses.lookup(addr);
      const account = r?.account ?? this.localserveAccount();
      this.rcpts.push({ path, account, mailbox: r?.destination.Mailbox ?? 'Inbox', injected: stage === 'data' ? injectedError(path.localpart) : undefined });
      return this.write(250, '2.1.5', 'ok');
    }
    const r = this.app.config.addresses.lookup(addr);
    if (r) {
      this.rcpts.push({ path, account: r.account, mailbox: r.destination.Mailbox });
      return this.write(250, '2.1.5', 'ok');
    }
    if (this.app.config.addresses.isLocalDomain(path.domain)) throw new Reply(550, '5.1.1', 'no such user');
    if (this.submission) throw new Reply(451, '4.3.0', 'delivery to remote domains is not available yet');
    throw new Reply(550, '5.7.1', 'relaying not permitted');
  }

  private localserveAccount(): string {
    return Object.keys(this.app.config.domains.Accounts)[0] ?? 'postern';
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

  private async cmdData(arg: string): Promise<void> {
    if (arg !== '') throw new Reply(501, '5.5.4', 'no parameters allowed');
    if (this.mailFrom === undefined) throw new Reply(503, '5.5.1', 'need MAIL first');
    if (this.rcpts.length === 0) throw new Reply(503, '5.5.1', 'need RCPT first');
    this.write(354, undefined, 'go ahead, end with <CRLF>.<CRLF>');
    const tmp = await this.app.store.tempFile();
    let file: MsgFile | undefined;
    try {
      const r = await readData(this.conn, (b) => tmp.write(b), this.opts.maxMessageSize, dataTimeout);
      if (r.smuggling) {
        this.log.info('message rejected: smtp smuggling', { reason: r.smuggling });
        throw new Reply(500, '5.5.2', `bad line ending in message (${r.smuggling}), possible SMTP smuggling attempt`);
      }
      if (r.tooLarge) throw new Reply(552, '5.3.4', 'message too large');
      file = await tmp.finish();
      await this.deliver(file);
    } finally {
      await tmp.discard();
      this.reset();
    }
  }

  private async deliver(file: MsgFile): Promise<void> {
    const injected = this.rcpts.find((r) => r.injected)?.injected;
    if (injected === 'timeout') return this.hang();
    if (injected) throw new Reply(injected.code, injected.ecode, injected.text);
    const id = `${this.cid.toString(36)}-${Date.now().toString(36)}`;
    // RFC 3848 and RFC 6531 3.7.4 protocol names.
    const withProto = !this.ehlo ? 'SMTP' : `${this.mailUTF8 ? 'UTF8SMTP' : 'ESMTP'}${this.tls ? 'S' : ''}${this.account ? 'A' : ''}`;
    const cipher = this.tls?.getCipher();
    const part = parseMessage(await fsp.readFile(file.path));
    // One delivery per account and mailbox, even if several addresses lead there.
    const targets = new Map<string, Recipient[]>();
    for (const r of this.rcpts) {
      const k = `${r.account}\0${r.mailbox}`;
      targets.set(k, [...(targets.get(k) ?? []), r]);
    }
    await Promise.all(
      [...targets.values()].map((rs) => {
        const first = rs[0]!;
        const received = receivedHeader({
          helo: this.helo!,
          remoteIP: this.remoteIP,
          hostname: this.opts.hostname,
          localIP: this.localIP,
          with: withProto,
          id,
          recipient: rs.length === 1 && this.rcpts.length === 1 ? pathString(first.path) : undefined,
          tlsCipher: cipher?.standardName,
          tlsVersion: this.tls?.getProtocol() ?? undefined,
          date: new Date(this.app.clock.now()),
        });
        return this.app.store.account(first.account).deliver(file, { mailbox: first.mailbox, prefix: Buffer.from(received), received: this.app.clock.now(), part });
      }),
    );
    this.log.info('delivered', {
      from: this.mailFrom ? pathString(this.mailFrom) : '',
      rcpts: this.rcpts.map((r) => pathString(r.path)),
      size: file.size,
      account: this.account,
      user: this.authUser,
    });
    this.write(250, '2.0.0', `ok, id ${id}`);
  }
}

function decodeB64(s: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new Reply(501, '5.5.2', 'invalid base64');
  return Buffer.from(s, 'base64');
}
