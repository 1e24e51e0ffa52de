// One IMAP connection (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1): reading commands with
// their literals, the state machine, and the untagged updates other sessions cause.
import fsp from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Conn, ConnClosed, ReadTimeout } from '../proto/conn.js';
import { Parser, ParseError, astringOut, type SeqSet } from './parse.js';
import { formatSet } from './uidset.js';
import { commands, capabilities as moduleCapabilities, register, silent, No, Bad, appendLimit, type State } from './registry.js';
import './mailboxes.js';
import './messages.js';
import './searchcmds.js';
import { eventsFor, type NotifySpec } from './notify.js';
import { encodeUTF7, decodeUTF7, UTF7Error } from './utf7.js';
import { isLoopback, newCid, ShuttingDown, type App } from '../server/app.js';
import type { CertStore } from '../tls/certs.js';
import type { MsgFile } from '../store/tempfile.js';
import type { AuthConn } from '../server/auth.js';
import type { Account, Change, MailboxRow } from '../store/account.js';
import { Flag, flagList, flagNames } from '../store/flags.js';
import { checkMailboxName, separator } from '../store/names.js';
import { plainIP } from '../smtp/received.js';
import { imapConnections, observeIMAPCommand } from '../metrics/metrics.js';
import { Log } from '../log/log.js';

const maxLine = 64 * 1024;
const maxCommand = 256 * 1024;
const notAuthTimeout = 60_000;
// RFC 9051 5.4: at least 30 minutes of inactivity before autologout.
const authTimeout = 30 * 60_000 + 10_000;
const maxBad = 20;
/**
 * Commands during which no EXPUNGE may be sent, as they use message sequence numbers
 * (RFC 9051 7.5.1; SORT and THREAD likewise, RFC 5256).
 */
const noExpunge = ['FETCH', 'STORE', 'SEARCH', 'SORT', 'THREAD'];

/** Extensions a client can turn on with ENABLE. */
const enableable = ['IMAP4REV2', 'UTF8=ACCEPT', 'CONDSTORE', 'QRESYNC', 'UIDONLY'];



export interface ImapListenerOptions {
  certs?: CertStore;
  implicitTLS: boolean;
  noRequireTLS?: boolean;
}

class Bye extends Error {}

interface Selected {
  mailbox: MailboxRow;
  readOnly: boolean;
  /** UIDs in sequence order: index + 1 is the message sequence number. */
  uids: number[];
  pending: Change[];
}

const log = Log.pkg('imapserver');

export class Session {
  readonly cid = newCid();
  readonly conn: Conn;
  readonly log: Log;
  readonly remoteIP: string;
  tls?: TLSSocket;
  state: 'notauth' | 'auth' | 'selected' | 'logout' = 'notauth';
  accountName?: string;
  account?: Account;
  username?: string;
  selected?: Selected;
  enabled = new Set<string>();
  /** The saved search result "$" (RFC 5182), as UIDs of the selected mailbox. */
  saved: number[] = [];
  /** Active NOTIFY request (RFC 5465), and notifications for other mailboxes not yet sent. */
  notify?: NotifySpec;
  private notifyStatus = new Set<number>();
  private notifyLines: Buffer[] = [];
  private bad = 0;
  private idling?: () => void;
  private stopping = false;
  private awaitingCommand = false;
  private readonly onChanges = (changes: Change[], origin: unknown) => this.changes(changes, origin);

  constructor(
    readonly app: App,
    socket: Socket | TLSSocket,
    readonly opts: ImapListenerOptions,
  ) {
    this.conn = new Conn(socket);
    this.remoteIP = plainIP(socket.remoteAddress);
    if (opts.implicitTLS) this.tls = socket as TLSSocket;
    this.log = log.with({ cid: this.cid, remote: this.remoteIP });
  }

  get utf8(): boolean {
    return this.enabled.has('IMAP4REV2') || this.enabled.has('UTF8=ACCEPT');
  }
  get rev2(): boolean {
    return this.enabled.has('IMAP4REV2');
  }

  private plainAllowed(): boolean {
    return this.tls !== undefined || !!this.opts.noRequireTLS || (this.app.localserve && isLoopback(this.remoteIP));
  }

  private authConn(): AuthConn {
    return { protocol: 'imap', remoteIP: this.remoteIP, tls: this.tls, cid: this.cid, plainAllowed: this.plainAllowed() };
  }

  capabilities(): string[] {
    const caps = ['IMAP4rev2', 'IMAP4rev1', 'ID', 'LITERAL+', 'SASL-IR', 'UTF8=ACCEPT', ...moduleCapabilities];
    if (this.state === 'notauth') {
      if (!this.tls && this.opts.certs) caps.push('STARTTLS');
      if (this.plainAllowed()) caps.push(...this.app.auth.mechanisms(this.authConn()).map((m) => `AUTH=${m}`));
      else caps.push('LOGINDISABLED');
    }
    return caps;
  }

  untagged(s: string | Buffer): void {
    this.conn.write(typeof s === 'string' ? `* ${s}\r\n` : Buffer.concat([Buffer.from('* '), s, Buffer.from('\r\n')]));
  }

  /** At shutdown: close now if idle, else after the current command. */
  shutdown(): void {
    this.stopping = true;
    if (this.awaitingCommand || this.idling) this.conn.abort(new ShuttingDown());
  }

  async run(): Promise<void> {
    this.log.info('new connection');
    this.app.sessions.add(this);
    imapConnections.inc({ tls: this.opts.implicitTLS ? 'implicit' : 'starttls' });
    try {
      this.untagged(`OK [CAPABILITY ${this.capabilities().join(' ')}] Postern IMAP ready`);
      while (this.state !== 'logout') {
        if (this.stopping) throw new ShuttingDown();
        this.awaitingCommand = true;
        const cmd = await this.readCommand().finally(() => (this.awaitingCommand = false));
        if (!cmd) continue;
        try {
          await this.execute(cmd.buf, cmd.externals);
        } finally {
          for (const f of cmd.externals.values()) await fsp.rm(f.path, { force: true });
        }
      }
    } catch (e) {
      if (e instanceof ReadTimeout) this.untagged('BYE autologout: idle too long');
      else if (e instanceof ShuttingDown) this.untagged('BYE server shutting down');
      else if (e instanceof Bye) this.untagged(`BYE ${e.message}`);
      else if (!(e instanceof ConnClosed)) {
        this.log.error('session error', e as Error);
        this.untagged('BYE internal error');
      }
    } finally {
      this.app.sessions.delete(this);
      this.account?.off('changes', this.onChanges);
      this.conn.close();
      this.log.info('connection closed', { read: this.conn.bytesRead, written: this.conn.bytesWritten });
    }
  }

  /**
   * Reads a command including its literals; answers limit violations itself and returns
   * undefined then. Message literals of APPEND and REPLACE go to temporary files.
   */
  private async readCommand(): Promise<{ buf: Buffer; externals: Map<number, MsgFile> } | undefined> {
    const timeout = this.state === 'notauth' ? notAuthTimeout : authTimeout;
    const parts: Buffer[] = [];
    const externals = new Map<number, MsgFile>();
    let total = 0;
    let append = false;
    try {
      for (;;) {
        const { line, ok } = await this.conn.readLine(maxLine, timeout);
        if (!ok) return this.tooBig([...parts, line], 'command line too long');
        if (parts.length === 0) append = this.state !== 'notauth' && /^\S+ (UID )?(APPEND|REPLACE) /i.test(line.toString('latin1', 0, 100));
        total += line.length;
        parts.push(line);
        const m = /\{(\d{1,20})([+-]?)\}$/.exec(line.subarray(Math.max(0, line.length - 24)).toString('latin1'));
        if (!m) break;
        const n = Number(m[1]);
        const sync = m[2] === '';
        // RFC 7888 4: non-synchronizing literals; RFC 7889: TOOBIG for oversized ones.
        const large = append && n > 8192;
        if (large ? n > appendLimit : total + n > maxCommand) {
          if (!sync) await this.skip(n);
          return this.tooBig(parts, large ? 'message larger than APPENDLIMIT' : 'literal too large', large ? 'NO' : 'BAD');
        }
        if (sync) {
          this.conn.write('+ go ahead\r\n');
          this.conn.flush();
        }
        parts.push(Buffer.from('\r\n'));
        if (large) {
          const tmp = await this.app.store.tempFile();
          try {
            for (let left = n; left > 0; ) {
              const b = await this.conn.readChunk(timeout);
              const take = b.subarray(0, left);
              if (b.length > left) this.conn.unread(b.subarray(left));
              tmp.write(take);
              left -= take.length;
              if (left > 0) await tmp.drain();
            }
            externals.set(total + 2, await tmp.finish());
          } catch (e) {
            await tmp.discard();
            throw e;
          }
          total += 2;
        } else {
          parts.push(await this.conn.readExact(n, timeout));
          total += 2 + n;
        }
      }
    } catch (e) {
      for (const f of externals.values()) await fsp.rm(f.path, { force: true });
      throw e;
    }
    return { buf: Buffer.concat(parts), externals };
  }

  private async skip(n: number): Promise<void> {
    while (n > 0) {
      const b = await this.conn.readChunk(authTimeout);
      if (b.length > n) this.conn.unread(b.subarray(n));
      n -= Math.min(n, b.length);
    }
  }

  private tooBig(parts: Buffer[], why: string, status: 'BAD' | 'NO' = 'BAD'): undefined {
    const tag = /^[^\s(){%*"\\\]+]+/.exec(parts[0]?.toString('latin1') ?? '')?.[0];
    if (++this.bad > maxBad) throw new Bye('too many bad commands');
    this.conn.write(`${tag ?? '*'} ${status} [TOOBIG] ${why}\r\n`);
    // Whatever else of the command follows cannot be interpreted: drop the connection's buffer.
    this.conn.discardBuffered();
    return undefined;
  }

  private async execute(buf: Buffer, externals: Map<number, MsgFile>): Promise<void> {
    const p = new Parser(buf, this.utf8, externals);
    let tag = '*';
    let name = '';
    const start = performance.now();
    try {
      tag = p.tag();
      p.space();
      name = p.keyword();
      if (name === 'UID') {
        p.space();
        name = 'UID ' + p.keyword();
      }
      this.log.trace('command', { tag, name });
      const text = await this.dispatch(tag, name, p);
      if (text === silent) return;
      this.flushChanges(!noExpunge.includes(name));
      this.conn.write(`${tag} OK ${text ?? `${name} completed`}\r\n`);
    } catch (e) {
      if (e instanceof ParseError || e instanceof Bad) {
        if (++this.bad > maxBad) throw new Bye('too many bad commands');
        const code = e instanceof Bad && e.code ? `[${e.code}] ` : '';
        this.conn.write(`${tag} BAD ${code}${e.message}\r\n`);
      } else if (e instanceof No) {
        this.flushChanges(!noExpunge.includes(name));
        this.conn.write(`${tag} NO ${e.code ? `[${e.code}] ` : ''}${e.message}\r\n`);
      } else throw e;
    } finally {
      if (name) observeIMAPCommand(name, start);
    }
  }

  need(...states: Session['state'][]): void {
    if (!states.includes(this.state)) throw new Bad(`command not allowed in state ${this.state}`);
  }

  private async dispatch(tag: string, name: string, p: Parser): Promise<string | typeof silent | undefined> {
    switch (name) {
      case 'CAPABILITY':
        p.end();
        this.untagged(`CAPABILITY ${this.capabilities().join(' ')}`);
        return;
      case 'NOOP':
      case 'CHECK':
        p.end();
        if (name === 'CHECK') this.need('selected');
        return;
      case 'LOGOUT':
        p.end();
        this.untagged('BYE logging out');
        this.state = 'logout';
        return;
      case 'ID':
        return this.cmdID(p);
      case 'STARTTLS':
        return this.cmdStartTLS(tag, p);
      case 'LOGIN':
        return this.cmdLogin(p);
      case 'AUTHENTICATE':
        return this.cmdAuthenticate(p);
    }
    const spec = commands.get(name);
    if (!spec) throw new Bad(`unknown command ${name}`);
    if (!spec.states.includes(this.state as State)) throw new Bad(`${name} not allowed in state ${this.state}`);
    return spec.run(this, p, { tag, name, uid: name.startsWith('UID ') });
  }

  private cmdID(p: Parser): undefined {
    p.space();
    // RFC 2971: parameters are informational only.
    if (!p.take('NIL')) {
      p.expect('(');
      const kv: string[] = [];
      while (!p.take(')')) {
        if (kv.length) p.space();
        kv.push(p.nstring() ?? '');
        if (kv.length > 60) throw new Bad('too many ID fields');
      }
      this.log.debug('client id', { id: kv.join(' ').slice(0, 500) });
    }
    p.end();
    this.untagged('ID ("name" "Postern")');
    return;
  }

  private async cmdStartTLS(tag: string, p: Parser): Promise<typeof silent> {
    p.end();
    this.need('notauth');
    if (this.tls || !this.opts.certs) throw new Bad('STARTTLS not available');
    this.conn.write(`${tag} OK begin TLS negotiation now\r\n`);
    try {
      this.tls = await this.conn.startTLS(this.opts.certs.serverOptions({ requestCert: true, rejectUnauthorized: false }), notAuthTimeout);
    } catch (e) {
      this.log.info('tls handshake failed', e as Error);
      throw new ConnClosed();
    }
    return silent;
  }

  private async loggedIn(account: string, username: string, mech: string): Promise<string> {
    this.app.auth.succeed(this.authConn(), username, account, mech);
    this.accountName = account;
    this.username = username;
    this.account = this.app.store.account(account);
    this.account.on('changes', this.onChanges);
    this.state = 'auth';
    return `[CAPABILITY ${this.capabilities().join(' ')}] logged in`;
  }

  private async failedLogin(username: string, mech: string, reason: string): Promise<never> {
    this.app.auth.fail(this.authConn(), username, mech, reason);
    const delay = this.app.auth.failureDelay(this.remoteIP);
    if (delay) await new Promise((res) => setTimeout(res, delay));
    throw new No('authentication failed', 'AUTHENTICATIONFAILED');
  }

  private async cmdLogin(p: Parser): Promise<string> {
    this.need('notauth');
    p.space();
    const user = p.astring();
    p.space();
    const pass = p.astringBuf().toString('utf8');
    p.end();
    // RFC 9051 6.2.3: LOGIN must not work without encryption unless configured otherwise.
    if (!this.plainAllowed()) throw new No('login without TLS not allowed, use STARTTLS', 'PRIVACYREQUIRED');
    if (!this.app.auth.allowed(this.remoteIP)) throw new No('too many failed logins from your network, try again later', 'UNAVAILABLE');
    const account = await this.app.auth.password(user, pass);
    if (!account) return this.failedLogin(user, 'LOGIN', 'bad username or password');
    return this.loggedIn(account, user, 'LOGIN');
  }

  private async cmdAuthenticate(p: Parser): Promise<string> {
    this.need('notauth');
    p.space();
    const mechName = p.atom().toUpperCase();
    let initial: Buffer | undefined;
    if (p.maybeSpace()) {
      // RFC 4959: SASL-IR initial response, "=" for empty.
      const s = p.atom();
      initial = s === '=' ? Buffer.alloc(0) : decodeB64(s);
    }
    p.end();
    if (!this.plainAllowed()) throw new No('authentication without TLS not allowed, use STARTTLS', 'PRIVACYREQUIRED');
    if (!this.app.auth.allowed(this.remoteIP)) throw new No('too many failed logins from your network, try again later', 'UNAVAILABLE');
    const conn = this.authConn();
    const mech = this.app.auth.mechanisms(conn).includes(mechName) ? this.app.auth.mechanism(mechName, conn) : undefined;
    if (!mech) throw new No('unsupported authentication mechanism', 'CANNOT');
    let data = initial;
    for (;;) {
      const r = await mech.step(data);
      if (r.type === 'challenge') {
        this.conn.write(`+ ${r.data.toString('base64')}\r\n`);
        data = await this.authResponse();
        continue;
      }
      if (r.type === 'success') {
        if (r.data) {
          this.conn.write(`+ ${r.data.toString('base64')}\r\n`);
          await this.authResponse();
        }
        return this.loggedIn(r.account, r.username, mech.name);
      }
      if (r.reason === 'malformed') throw new Bad(r.message);
      return this.failedLogin('', mech.name, r.message);
    }
  }

  private async authResponse(): Promise<Buffer> {
    const { line, ok } = await this.conn.readLine(maxLine, notAuthTimeout);
    if (!ok) throw new Bad('authentication response too long');
    const s = line.toString('latin1');
    // RFC 9051 6.2.2: "*" cancels.
    if (s === '*') throw new Bad('authentication cancelled');
    return decodeB64(s);
  }

  cmdEnable(p: Parser): undefined {
    const done: string[] = [];
    while (p.maybeSpace()) {
      const cap = p.atom().toUpperCase();
      if (enableable.includes(cap) && this.enable(cap)) done.push(cap);
    }
    p.end();
    // RFC 5161 3.1: only capabilities newly enabled are listed.
    this.untagged(`ENABLED${done.map((c) => ' ' + c).join('')}`);
    return;
  }


  /** Mailbox name from a client: modified UTF-7 unless UTF-8 was enabled. */
  mailboxArg(p: Parser): string {
    const raw = p.astring();
    let name = raw;
    if (!this.utf8) {
      try {
        name = decodeUTF7(raw);
      } catch (e) {
        if (!(e instanceof UTF7Error)) throw e;
        // RFC 9051 5.1.3: a name that is not valid modified UTF-7 is taken as it is.
      }
    }
    if (name.toLowerCase() === 'inbox') return 'Inbox';
    return name;
  }

  /** One mailbox, or a parenthesized list of them (RFC 5465 one-or-more-mailbox, RFC 7377). */
  mailboxList(p: Parser): string[] {
    if (!p.take('(')) return [this.mailboxArg(p)];
    const names: string[] = [];
    do names.push(this.mailboxArg(p));
    while (p.maybeSpace());
    p.expect(')');
    return names;
  }

  /** Mailbox name for a response. */
  mailboxOut(name: string): Buffer {
    // RFC 9051 5.1: INBOX is always shown as "INBOX", also as the parent of other mailboxes.
    const n = name === 'Inbox' ? 'INBOX' : name.startsWith('Inbox/') ? 'INBOX' + name.slice(5) : name;
    return astringOut(this.utf8 ? n : encodeUTF7(n), this.utf8);
  }

  deselect(): void {
    this.selected = undefined;
    this.saved = [];
    this.state = 'auth';
  }

  cmdSelect(p: Parser, readOnly: boolean): string {
    p.space();
    const name = this.mailboxArg(p);
    let qresync: { uidvalidity: number; modseq: number; known?: SeqSet } | undefined;
    if (p.maybeSpace()) {
      // RFC 7162 3.1.8 and 3.2.5: select parameters.
      p.expect('(');
      do {
        const param = p.atom().toUpperCase();
        if (param === 'CONDSTORE') this.enable('CONDSTORE');
        else if (param === 'QRESYNC') {
          if (!this.enabled.has('QRESYNC')) throw new Bad('QRESYNC must be enabled first');
          p.space();
          p.expect('(');
          const uidvalidity = p.nzNumber();
          p.space();
          const modseq = p.nzNumber();
          let known: SeqSet | undefined;
          if (p.maybeSpace() && p.peek() !== 0x28) known = p.seqSet();
          // The optional sequence match data is only an optimization; known UIDs suffice.
          if (p.maybeSpace() || p.peek() === 0x28) {
            p.expect('(');
            p.seqSet();
            p.space();
            p.seqSet();
            p.expect(')');
          }
          p.expect(')');
          qresync = { uidvalidity, modseq, known };
        } else throw new Bad(`unknown select parameter ${param}`);
      } while (p.maybeSpace());
      p.expect(')');
    }
    p.end();
    // RFC 7162 3.2.11: with QRESYNC, the end of the previous selection is announced.
    if (this.selected) {
      this.deselect();
      if (this.enabled.has('QRESYNC')) this.untagged('OK [CLOSED] previous mailbox closed');
    }
    // RFC 9051 6.3.2: a failed SELECT leaves no mailbox selected.
    const mb = this.account!.mailbox(name);
    if (!mb) throw new No('no such mailbox', 'NONEXISTENT');
    const msgs = this.account!.messages(mb.id);
    this.selected = { mailbox: mb, readOnly, uids: msgs.map((m) => m.uid), pending: [] };
    this.state = 'selected';
    const flags = [...flagNames.map(([n]) => n), ...mb.keywords];
    this.untagged(`FLAGS (${flags.join(' ')})`);
    this.untagged(`OK [PERMANENTFLAGS (${readOnly ? '' : flags.join(' ') + ' \\*'})] flags permitted`);
    this.untagged(`${msgs.length} EXISTS`);
    if (!this.rev2) {
      this.untagged('0 RECENT');
      const unseen = msgs.findIndex((m) => !(m.flags & Flag.Seen));
      if (unseen >= 0) this.untagged(`OK [UNSEEN ${unseen + 1}] first unseen`);
    }
    this.untagged(`OK [UIDVALIDITY ${mb.uidvalidity}] uid validity`);
    this.untagged(`OK [UIDNEXT ${mb.uidnext}] next uid`);
    if (this.condstore) this.untagged(`OK [HIGHESTMODSEQ ${mb.highestmodseq}] highest modseq`);
    if (this.rev2) this.untagged(Buffer.concat([Buffer.from(`LIST () "${separator}" `), this.mailboxOut(mb.name)]));
    if (qresync && qresync.uidvalidity === mb.uidvalidity) {
      // RFC 7162 3.2.5.1: expunges and changes since the client's modseq.
      const known = qresync.known ? new Set(this.expandUIDs(qresync.known)) : undefined;
      const gone = (this.account!.db.prepare('SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid').pluck().all(mb.id, qresync.modseq) as number[]).filter(
        (u) => !known || known.has(u),
      );
      if (gone.length) this.untagged(`VANISHED (EARLIER) ${formatSet(gone)}`);
      msgs.forEach((m, i) => {
        if (m.modseq > qresync!.modseq) this.conn.write(this.fetchResponse(i + 1, m.uid, `UID ${m.uid} FLAGS (${flagList(m.flags, m.keywords).join(' ')}) MODSEQ (${m.modseq})`));
      });
    }
    return `[${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${readOnly ? 'EXAMINE' : 'SELECT'} completed`;
  }

  /**
   * An untagged FETCH response with its data items (without parentheses): by sequence
   * number, or as UIDFETCH by UID once UIDONLY is enabled (RFC 9586 3.2).
   */
  fetchResponse(seq: number, uid: number, items: string | Buffer[]): Buffer {
    const data = typeof items === 'string' ? [Buffer.from(items)] : items;
    if (this.enabled.has('UIDONLY')) {
      // The UID is the response's number; a leading "UID n" item is left out.
      let b = Buffer.concat(data);
      const m = /^UID \d+ ?/.exec(b.toString('latin1', 0, 20));
      if (m) b = b.subarray(m[0].length);
      return Buffer.concat([Buffer.from(`* ${uid} UIDFETCH (`), b, Buffer.from(')\r\n')]);
    }
    return Buffer.concat([Buffer.from(`* ${seq} FETCH (`), ...data, Buffer.from(')\r\n')]);
  }

  /** RFC 9586 3: with UIDONLY, commands with message sequence numbers are refused. */
  requireUID(uid: boolean): void {
    if (!uid && this.enabled.has('UIDONLY')) throw new Bad('sequence numbers are not allowed with UIDONLY', 'UIDREQUIRED');
  }

  /** RFC 8437: back to the not-authenticated state, as after connecting. */
  unauthenticate(): void {
    this.selected = undefined;
    this.account?.off('changes', this.onChanges);
    this.account = undefined;
    this.accountName = undefined;
    this.username = undefined;
    this.enabled.clear();
    this.state = 'notauth';
  }

  /** UIDs of a UID set without looking at the mailbox, "*" being the highest possible. */
  expandUIDs(set: SeqSet): number[] {
    const out: number[] = [];
    for (const r of set.ranges) {
      let [a, b] = [r.start || 0xffffffff, r.end || 0xffffffff];
      if (a > b) [a, b] = [b, a];
      const last = this.selected?.mailbox.uidnext ?? b;
      for (let u = a; u <= Math.min(b, last) && out.length < 1_000_000; u++) out.push(u);
    }
    return out;
  }

  get vanished(): boolean {
    return this.enabled.has('QRESYNC') || this.enabled.has('UIDONLY');
  }

  get condstore(): boolean {
    return this.enabled.has('CONDSTORE');
  }

  /** Enables an extension (RFC 5161); QRESYNC implies CONDSTORE (RFC 7162 3.2.3). */
  enable(cap: string): boolean {
    if (this.enabled.has(cap)) return false;
    this.enabled.add(cap);
    if (cap === 'QRESYNC') this.enabled.add('CONDSTORE');
    return true;
  }

  /** Messages gone from the selected mailbox: renumbers and tells the client (EXPUNGE, or VANISHED with QRESYNC). */
  expunged(uids: number[]): void {
    const sel = this.selected!;
    const gone: number[] = [];
    for (const u of uids) {
      const seq = this.seqOf(u);
      if (!seq) continue;
      sel.uids.splice(seq - 1, 1);
      gone.push(u);
      if (!this.vanished) this.untagged(`${seq} EXPUNGE`);
    }
    // RFC 7162 3.2.10 and RFC 9586 3.3: VANISHED replaces EXPUNGE with QRESYNC or UIDONLY.
    if (gone.length && this.vanished) this.untagged(`VANISHED ${formatSet(gone)}`);
  }

  /** Resolves a sequence set to UIDs of the selected mailbox. */
  resolve(set: SeqSet, uid: boolean): number[] {
    const uids = this.selected!.uids;
    if (set.saved) {
      const have = new Set(uids);
      return this.saved.filter((u) => have.has(u));
    }
    const out = new Set<number>();
    if (uid) {
      const max = uids[uids.length - 1] ?? 0;
      for (const r of set.ranges) {
        let [a, b] = [r.start || max, r.end || max];
        if (a > b) [a, b] = [b, a];
        // Binary search for the first UID >= a.
        let lo = 0;
        let hi = uids.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (uids[mid]! < a) lo = mid + 1;
          else hi = mid;
        }
        for (let i = lo; i < uids.length && uids[i]! <= b; i++) out.add(uids[i]!);
      }
    } else {
      for (const r of set.ranges) {
        let [a, b] = [r.start || uids.length, r.end || uids.length];
        if (a > b) [a, b] = [b, a];
        // RFC 9051 6.4.5: an invalid message sequence number is an error.
        if (b > uids.length) throw new Bad('message sequence number out of range');
        for (let i = a; i <= b; i++) out.add(uids[i - 1]!);
      }
    }
    return [...out].sort((x, y) => x - y);
  }

  seqOf(uid: number): number {
    const uids = this.selected!.uids;
    let lo = 0;
    let hi = uids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (uids[mid]! < uid) lo = mid + 1;
      else hi = mid;
    }
    return uids[lo] === uid ? lo + 1 : 0;
  }

  writable(): void {
    if (this.selected!.readOnly) throw new No('mailbox is read-only', 'READ-ONLY');
  }

  /** Removes \Deleted messages (optionally only those in uids), sending EXPUNGE responses if asked. */
  expungeDeleted(only: Set<number> | undefined, respond: boolean): void {
    const sel = this.selected!;
    const del = this.account!.messages(sel.mailbox.id).filter((m) => m.flags & Flag.Deleted && (!only || only.has(m.uid)) && this.seqOf(m.uid) > 0);
    const removed = this.account!.expunge(
      sel.mailbox.id,
      del.map((m) => m.uid),
      this,
    );
    if (respond) this.expunged(removed);
    else for (const u of removed) sel.uids.splice(this.seqOf(u) - 1, 1);
  }


  async cmdIdle(p: Parser): Promise<string> {
    p.end();
    this.conn.write('+ idling\r\n');
    this.flushChanges(true);
    this.conn.flush();
    this.idling = () => {
      this.flushChanges(true);
      this.conn.flush();
    };
    try {
      const { line, ok } = await this.conn.readLine(maxLine, authTimeout);
      if (!ok || line.toString('latin1').toUpperCase() !== 'DONE') throw new Bad('expected DONE');
    } finally {
      this.idling = undefined;
    }
    return 'IDLE terminated';
  }

  /** Change events from the account, from this or other sessions and deliveries. */
  private changes(changes: Change[], origin: unknown): void {
    if (origin === this) return;
    const sel = this.selected;
    if (this.notify) this.notifyChanges(changes);
    if (sel) {
      const mine = changes.filter((c) => c.mailboxId === sel.mailbox.id && c.type !== 'mailbox');
      // RFC 5465 5.1: NOTIFY without events for the selected mailbox turns its updates off.
      const wanted = eventsFor(this, sel.mailbox.name, true);
      if (mine.length && (!wanted || wanted.size > 0)) sel.pending.push(...mine);
    }
    this.idling?.();
    // RFC 5465 4: with NOTIFY active, notifications go out without waiting for a command.
    if (this.notify && this.awaitingCommand && !this.idling) {
      this.flushChanges(true);
      this.conn.flush();
    }
  }

  /** Collects NOTIFY events of other mailboxes: STATUS for message events, LIST for names. */
  private notifyChanges(changes: Change[]): void {
    const acc = this.account!;
    for (const c of changes) {
      if (c.mailboxId === this.selected?.mailbox.id && c.type !== 'mailbox') continue;
      if (c.type === 'mailbox') {
        if (!eventsFor(this, c.name, false)?.has('MailboxName') && !(c.oldName && eventsFor(this, c.oldName, false)?.has('MailboxName'))) continue;
        // RFC 5465 5.4: created, deleted (\NonExistent) and renamed (OLDNAME, RFC 5465 5.4) mailboxes.
        const attrs = c.removed ? '\\NonExistent' : '';
        const old = c.oldName ? Buffer.concat([Buffer.from(' ("OLDNAME" ('), this.mailboxOut(c.oldName), Buffer.from('))')]) : Buffer.alloc(0);
        this.notifyLines.push(Buffer.concat([Buffer.from(`LIST (${attrs}) "${separator}" `), this.mailboxOut(c.name), old]));
        continue;
      }
      const mb = acc.mailboxById(c.mailboxId);
      if (!mb) continue;
      const ev = eventsFor(this, mb.name, false);
      const want = c.type === 'flags' ? ev?.has('FlagChange') : ev?.has('MessageNew');
      if (want) this.notifyStatus.add(mb.id);
    }
  }

  /** Untagged STATUS of a mailbox, as NOTIFY reports changes in other mailboxes (RFC 5465 5.2). */
  sendStatus(mailboxId: number): void {
    const mb = this.account!.mailboxById(mailboxId);
    if (!mb) return;
    const c = this.account!.counts(mb.id);
    const modseq = this.condstore ? ` HIGHESTMODSEQ ${mb.highestmodseq}` : '';
    this.untagged(Buffer.concat([Buffer.from('STATUS '), this.mailboxOut(mb.name), Buffer.from(` (MESSAGES ${c.messages} UIDNEXT ${mb.uidnext} UNSEEN ${c.unseen}${modseq})`)]));
  }

  /**
   * Sends pending changes as untagged responses. EXPUNGE must not be sent during FETCH,
   * STORE and SEARCH, as the client's sequence numbers would shift under it (RFC 9051 7.5.1).
   */
  flushChanges(expunges: boolean): void {
    for (const l of this.notifyLines.splice(0)) this.untagged(l);
    for (const id of this.notifyStatus) this.sendStatus(id);
    this.notifyStatus.clear();
    const sel = this.selected;
    if (!sel || !sel.pending.length) return;
    const keep: Change[] = [];
    let exists = false;
    for (const c of sel.pending) {
      if (c.type === 'add') {
        if (c.uid > (sel.uids[sel.uids.length - 1] ?? 0)) {
          sel.uids.push(c.uid);
          exists = true;
        }
      } else if (c.type === 'flags') {
        const seq = this.seqOf(c.uid);
        const modseq = this.condstore ? ` MODSEQ (${c.modseq})` : '';
        if (seq) this.conn.write(this.fetchResponse(seq, c.uid, `UID ${c.uid} FLAGS (${flagList(c.flags, c.keywords).join(' ')})${modseq}`));
      } else if (c.type === 'remove') {
        if (!expunges) {
          keep.push(c);
          continue;
        }
        if (exists) {
          this.untagged(`${sel.uids.length} EXISTS`);
          exists = false;
        }
        this.expunged(c.uids);
      }
    }
    if (exists) this.untagged(`${sel.uids.length} EXISTS`);
    sel.pending = keep;
  }
}


function decodeB64(s: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new Bad('invalid base64');
  return Buffer.from(s, 'base64');
}


register(['ENABLE'], { states: ['auth', 'selected'], run: (s, p) => s.cmdEnable(p) }, ['ENABLE', 'CONDSTORE', 'QRESYNC', 'UIDONLY']);
register(['SELECT', 'EXAMINE'], { states: ['auth', 'selected'], run: (s, p, c) => s.cmdSelect(p, c.name === 'EXAMINE') });
register(['IDLE'], { states: ['auth', 'selected'], run: (s, p) => s.cmdIdle(p) }, ['IDLE']);
register(
  ['COMPRESS'],
  {
    states: ['auth', 'selected'],
    run(s, p, c) {
      p.space();
      const alg = p.atom().toUpperCase();
      p.end();
      if (alg !== 'DEFLATE') throw new Bad('only DEFLATE is supported');
      // RFC 4978 3: once only.
      if (s.conn.compressed) throw new No('compression already active', 'COMPRESSIONACTIVE');
      s.conn.write(`${c.tag} OK DEFLATE active\r\n`);
      s.conn.startCompression();
      return silent;
    },
  },
  ['COMPRESS=DEFLATE'],
);
register(
  ['UNAUTHENTICATE'],
  {
    states: ['auth', 'selected'],
    run(s, p) {
      p.end();
      s.unauthenticate();
      return undefined;
    },
  },
  ['UNAUTHENTICATE'],
);
