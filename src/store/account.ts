// One account: its SQLite index (mailboxes, messages, flags, password) and message files.
// Only the server process changes messages; changes are broadcast to open sessions.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { migrations } from './schema.js';
import { openDatabase } from './sqlite.js';
import { readStoredFile } from './fileread.js';
import { fsyncDir, fsyncDirAsync, type MsgFile } from './tempfile.js';
import { parseFlags } from './flags.js';
import type { Part } from '../message/part.js';
import { parseHeader } from '../message/header.js';
import { Log } from '../log/log.js';


/** Messages whose structure is read with one query. */
const partChunk = 200;

export const msgsPerDir = 8192;

/**
 * Envelope fields added in the prefix (Message-ID and Date of a submission lacking them)
 * belong to the message's envelope too.
 */
function prefixEnvelope(p: Part, prefix: Buffer): Part {
  if (prefix.length === 0) return p;
  const h = parseHeader(prefix);
  const messageId = h.get('message-id')?.value;
  const date = h.get('date')?.value;
  if ((!messageId || p.envelope?.messageId) && (!date || p.envelope?.date)) return p;
  const envelope = { ...p.envelope };
  if (messageId && !envelope.messageId) envelope.messageId = messageId;
  if (date && !envelope.date) envelope.date = date;
  return { ...p, envelope };
}

/**
 * Structure of prefix + message from the structure of the message: the prefix is whole
 * header lines, so it only moves offsets, except where the top-level header starts.
 */
export function shiftPart(p: Part, n: number, top = true): Part {
  if (n === 0) return p;
  const q: Part = { ...p, start: top ? 0 : p.start + n, body: p.body + n, end: p.end + n };
  if (p.message) q.message = shiftPart(p.message, n, false);
  if (p.parts) q.parts = p.parts.map((c) => shiftPart(c, n, false));
  return q;
}

export interface MailboxRow {
  id: number;
  name: string;
  uidvalidity: number;
  uidnext: number;
  specialuse: string;
  highestmodseq: number;
  createmodseq: number;
  keywords: string[];
}

export interface MessageRow {
  id: number;
  mailboxId: number;
  uid: number;
  modseq: number;
  createmodseq: number;
  flags: number;
  keywords: string[];
  size: number;
  prefixSize: number;
  received: number;
  savedate: number | null;
  /**
   * A message removed while a session still counts it (the EXPUNGE is not sent yet): it keeps
   * the session's sequence numbers right and matches nothing.
   */
  ghost?: boolean;
}

export type Change =
  | { type: 'add'; mailboxId: number; uid: number; modseq: number; flags: number; keywords: string[]; size: number }
  | { type: 'flags'; mailboxId: number; uid: number; modseq: number; flags: number; keywords: string[]; oldFlags: number }
  | { type: 'remove'; mailboxId: number; uids: number[]; modseq: number }
  | { type: 'mailbox'; mailboxId: number; name: string; removed?: boolean; oldName?: string };

export interface DeliverOptions {
  mailbox: string;
  /** Header lines added at delivery, each ending in CRLF. */
  prefix?: Buffer;
  flags?: number;
  keywords?: string[];
  /** Internal date, ms since epoch. */
  received?: number;
  /** Parsed structure of the message file (without prefix); offsets are shifted past the prefix when stored. */
  part?: Part;
  /** Sent with the change event, so the session that caused it can skip it. */
  origin?: unknown;
  /** How an incoming message arrived, for reputation (indexed columns). */
  meta?: MessageMeta;
}

export interface MessageMeta {
  remoteIP?: string;
  /** Network prefixes of the remote IP, from limits/ipKeys-like masking: three sizes. */
  remoteIPMasks?: [string, string, string];
  ehloDomain?: string;
  mailFrom?: string;
  mailFromDomain?: string;
  msgFrom?: string;
  msgFromDomain?: string;
  msgFromOrgDomain?: string;
  ehloValidated?: boolean;
  mailFromValidated?: boolean;
  msgFromValidated?: boolean;
  dkimDomains?: string[];
  messageId?: string;
  subject?: string;
}

export interface Delivered {
  id: number;
  mailboxId: number;
  uid: number;
  modseq: number;
}

export const defaultMailboxes: [string, string][] = [
  ['Inbox', ''],
  ['Sent', '\\Sent'],
  ['Archive', '\\Archive'],
  ['Drafts', '\\Drafts'],
  ['Trash', '\\Trash'],
  ['Junk', '\\Junk'],
];

/** Case-folded mailbox name: "INBOX" in any case is the Inbox (RFC 9051 5.1). */
export function mailboxKey(name: string): string {
  const n = name.normalize('NFC');
  return n.toLowerCase() === 'inbox' ? 'inbox' : n.toLowerCase();
}

interface Pending {
  file: MsgFile;
  opts: DeliverOptions;
  resolve: (d: Delivered) => void;
  reject: (e: Error) => void;
}

type Row = Record<string, unknown>;

function mailboxRow(r: Row): MailboxRow {
  return {
    id: r.id as number,
    name: r.name as string,
    uidvalidity: r.uidvalidity as number,
    uidnext: r.uidnext as number,
    specialuse: r.specialuse as string,
    highestmodseq: r.highestmodseq as number,
    createmodseq: r.createmodseq as number,
    keywords: JSON.parse(r.keywords as string) as string[],
  };
}

function messageRow(r: Row): MessageRow {
  return {
    id: r.id as number,
    mailboxId: r.mailbox_id as number,
    uid: r.uid as number,
    modseq: r.modseq as number,
    createmodseq: r.createmodseq as number,
    flags: r.flags as number,
    keywords: JSON.parse(r.keywords as string) as string[],
    size: r.size as number,
    prefixSize: r.prefixsize as number,
    received: r.received as number,
    savedate: r.savedate as number | null,
  };
}

const messageColumns = 'id, mailbox_id, uid, modseq, createmodseq, flags, keywords, size, length(prefix) AS prefixsize, received, savedate';

export class Account extends EventEmitter {
  readonly db: Database.Database;
  private modseq: number;
  private pending: Pending[] = [];
  private flushScheduled = false;
  private flushing = false;
  private lastFlush = -Infinity;
  /** The highest message id handed out; see allocId. */
  private lastId = 0;
  private readonly log: Log;
  private readonly stmts;

  constructor(
    readonly name: string,
    readonly dir: string,
  ) {
    super();
    this.setMaxListeners(0);
    this.log = Log.pkg('store').with({ account: name });
    fs.mkdirSync(path.join(dir, 'msg'), { recursive: true, mode: 0o700 });
    // A commit returns only when it is on disk: the SMTP 250 depends on it.
    this.db = openDatabase(path.join(dir, 'index.db'), { durable: true, migrations });
    this.db.pragma('foreign_keys = ON');
    this.stmts = {
      mailboxByKey: this.db.prepare('SELECT * FROM mailbox WHERE namekey = ?'),
      mailboxById: this.db.prepare('SELECT * FROM mailbox WHERE id = ?'),
      mailboxes: this.db.prepare('SELECT * FROM mailbox ORDER BY name'),
      insertMessage: this.db.prepare(
        'INSERT INTO message (id, mailbox_id, uid, modseq, createmodseq, flags, keywords, size, prefix, received, savedate, part) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      bumpMailbox: this.db.prepare('UPDATE mailbox SET uidnext = uidnext + 1, highestmodseq = ? WHERE id = ?'),
      setModseq: this.db.prepare("INSERT INTO meta (key, value) VALUES ('modseq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
      messages: this.db.prepare(`SELECT ${messageColumns} FROM message WHERE mailbox_id = ? ORDER BY uid`),
      message: this.db.prepare(`SELECT ${messageColumns} FROM message WHERE mailbox_id = ? AND uid = ?`),
      messageRange: this.db.prepare(`SELECT ${messageColumns} FROM message WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid`),
      prefix: this.db.prepare('SELECT prefix FROM message WHERE id = ?'),
      part: this.db.prepare('SELECT part FROM message WHERE id = ?'),
    };
    this.modseq = (this.db.prepare("SELECT value FROM meta WHERE key = 'modseq'").pluck().get() as number | undefined) ?? 0;
    this.removeUncommittedFiles();
    if (this.db.prepare('SELECT count(*) FROM mailbox').pluck().get() === 0) {
      this.db.transaction(() => {
        for (const [name, use] of defaultMailboxes) {
          this.createMailboxTx(name, use);
          this.db.prepare('INSERT OR IGNORE INTO subscription (name) VALUES (?)').run(name);
        }
      })();
    }
  }

  /**
   * A crash between linking message files and committing their index entries leaves files
   * with ids the index does not have; no reply was sent for them, so they are removed. Such
   * ids are above the last committed one, or just below it when a copy committed meanwhile.
   */
  private removeUncommittedFiles(): void {
    const last = (this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'message'").pluck().get() as number | undefined) ?? 0;
    this.lastId = last;
    const window = 1000;
    const known = this.db.prepare('SELECT 1 FROM message WHERE id = ? UNION ALL SELECT 1 FROM removedfile WHERE id = ?').pluck();
    const msgDir = path.join(this.dir, 'msg');
    for (const g of fs.readdirSync(msgDir)) {
      if (!/^\d+$/.test(g) || (Number(g) + 1) * msgsPerDir <= last - window) continue;
      for (const f of fs.readdirSync(path.join(msgDir, g))) {
        if (!/^\d+$/.test(f)) continue;
        const id = Number(f);
        if (id > last || (id > last - window && known.get(id, id) === undefined)) {
          this.log.info('removing message file of uncommitted delivery', { file: f });
          fs.rmSync(path.join(msgDir, g, f), { force: true });
        }
      }
    }
  }
  private nextModseq(): number {
    this.modseq++;
    this.stmts.setModseq.run(this.modseq);
    return this.modseq;
  }

  private nextUIDValidity(): number {
    const v = ((this.db.prepare("SELECT value FROM meta WHERE key = 'uidvalidity'").pluck().get() as number | undefined) ?? 0) + 1;
    this.db.prepare("INSERT INTO meta (key, value) VALUES ('uidvalidity', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(v);
    return v;
  }

  private createMailboxTx(name: string, specialUse = ''): MailboxRow {
    const modseq = this.nextModseq();
    const info = this.db
      .prepare('INSERT INTO mailbox (name, namekey, uidvalidity, uidnext, specialuse, highestmodseq, createmodseq) VALUES (?, ?, ?, 1, ?, ?, ?)')
      .run(name, mailboxKey(name), this.nextUIDValidity(), specialUse, modseq, modseq);
    return this.mailboxById(Number(info.lastInsertRowid))!;
  }



  /** Creates a mailbox and any missing parents (delivery rules can name nested mailboxes). */
  private createMailboxPath(name: string): MailboxRow {
    const levels = name.split('/');
    for (let i = 1; i < levels.length; i++) {
      const parent = levels.slice(0, i).join('/');
      if (!this.mailbox(parent)) this.createMailboxTx(parent);
    }
    return this.createMailboxTx(name);
  }

  createMailbox(name: string, specialUse = ''): MailboxRow {
    const mb = this.db.transaction(() => this.createMailboxTx(name, specialUse))();
    this.emit('changes', [{ type: 'mailbox', mailboxId: mb.id, name: mb.name }]);
    return mb;
  }

  mailboxes(): MailboxRow[] {
    return (this.stmts.mailboxes.all() as Row[]).map(mailboxRow);
  }

  mailbox(name: string): MailboxRow | undefined {
    const r = this.stmts.mailboxByKey.get(mailboxKey(name)) as Row | undefined;
    return r && mailboxRow(r);
  }

  mailboxById(id: number): MailboxRow | undefined {
    const r = this.stmts.mailboxById.get(id) as Row | undefined;
    return r && mailboxRow(r);
  }

  subscriptions(): string[] {
    return this.db.prepare('SELECT name FROM subscription ORDER BY name').pluck().all() as string[];
  }

  messages(mailboxId: number): MessageRow[] {
    return (this.stmts.messages.all(mailboxId) as Row[]).map(messageRow);
  }

  /**
   * The rows of messages by UID, with as few queries as fit: a range query when the UIDs are
   * dense enough, else one query per message.
   */
  messagesByUid(mailboxId: number, uids: readonly number[]): Map<number, MessageRow> {
    const out = new Map<number, MessageRow>();
    if (uids.length === 0) return out;
    let min = uids[0]!;
    let max = min;
    for (const u of uids) {
      if (u < min) min = u;
      if (u > max) max = u;
    }
    if (uids.length > 20 && max - min < uids.length * 4) {
      const want = new Set(uids);
      for (const r of this.stmts.messageRange.iterate(mailboxId, min, max) as Iterable<Row>) {
        const uid = r.uid as number;
        if (want.has(uid)) out.set(uid, messageRow(r));
      }
    } else {
      for (const u of uids) {
        const m = this.message(mailboxId, u);
        if (m) out.set(u, m);
      }
    }
    return out;
  }

  message(mailboxId: number, uid: number): MessageRow | undefined {
    const r = this.stmts.message.get(mailboxId, uid) as Row | undefined;
    return r && messageRow(r);
  }

  /** Counts for STATUS. */
  counts(mailboxId: number): { messages: number; unseen: number; deleted: number; size: number } {
    const r = this.db
      .prepare('SELECT count(*) AS messages, coalesce(sum((flags & 1) = 0), 0) AS unseen, coalesce(sum((flags & 8) != 0), 0) AS deleted, coalesce(sum(size), 0) AS size FROM message WHERE mailbox_id = ?')
      .get(mailboxId) as { messages: number; unseen: number; deleted: number; size: number };
    return r;
  }

  messagePath(id: number): string {
    return path.join(this.dir, 'msg', String(Math.floor(id / msgsPerDir)), String(id));
  }

  /** The stored message: delivery prefix followed by the message file. */
  async readMessage(m: MessageRow): Promise<Buffer> {
    const prefix = this.prefix(m);
    const file = await readStoredFile(this.messagePath(m.id), m.size);
    return prefix.length ? Buffer.concat([prefix, file]) : file;
  }

  prefix(m: MessageRow): Buffer {
    if (m.prefixSize === 0) return Buffer.alloc(0);
    return (this.stmts.prefix.get(m.id) as { prefix: Buffer }).prefix;
  }

  /** The stored structure of a message (prefix plus file), if it was parsed at delivery. */
  part(m: MessageRow): Part | undefined {
    const json = (this.stmts.part.get(m.id) as { part: string | null } | undefined)?.part;
    return json ? (JSON.parse(json) as Part) : undefined;
  }

  /** The stored structures of many messages, read with a few queries instead of one per message. */
  parts(ms: readonly MessageRow[]): Map<number, Part> {
    const out = new Map<number, Part>();
    for (let i = 0; i < ms.length; i += partChunk) {
      const ids = ms.slice(i, i + partChunk).map((m) => m.id);
      const st = ids.length === partChunk ? (this.partsStmt ??= this.db.prepare(`SELECT id, part FROM message WHERE id IN (${Array(partChunk).fill('?').join(',')})`)) : this.db.prepare(`SELECT id, part FROM message WHERE id IN (${ids.map(() => '?').join(',')})`);
      for (const r of st.iterate(...ids) as Iterable<{ id: number; part: string | null }>) if (r.part) out.set(r.id, JSON.parse(r.part) as Part);
    }
    return out;
  }

  private partsStmt?: Database.Statement;

  /**
   * Adds a message to a mailbox, durably: when the promise resolves, the message file and
   * its directory entry are fsynced and the index transaction is committed. Deliveries
   * arriving together share one commit.
   */
  deliver(file: MsgFile, opts: DeliverOptions): Promise<Delivered> {
    return new Promise((resolve, reject) => {
      this.pending.push({ file, opts, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing || this.pending.length === 0) return;
    this.flushScheduled = true;
    // Under load (a commit just happened), wait a moment so more deliveries share the next
    // commit; otherwise commit at once.
    if (performance.now() - this.lastFlush < 5) setTimeout(() => void this.flush(), 2);
    else setImmediate(() => void this.flush());
  }

  /** The id for a new message row (and its file name): ids are handed out here only, in this process. */
  private allocId(): number {
    return ++this.lastId;
  }

  /**
   * Commits the pending deliveries. The files are linked under ids reserved now and their
   * directories fsynced (in the thread pool, while other work goes on), and only then does
   * the index name them: a crash in between leaves files the index does not know, which
   * removeUncommittedFiles deletes. Deliveries arriving meanwhile wait for the next commit.
   */
  private async flush(): Promise<void> {
    this.flushScheduled = false;
    if (this.flushing) return;
    this.flushing = true;
    this.lastFlush = performance.now();
    const batch = this.pending;
    this.pending = [];
    const changes: Change[] = [];
    const results: Delivered[] = [];
    const linked: string[] = [];
    try {
      const ids: number[] = [];
      const dirs = new Set<string>();
      for (const { file } of batch) {
        const id = this.allocId();
        const dst = this.messagePath(id);
        const dir = path.dirname(dst);
        if (!dirs.has(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        // A file left by a crash may hold this id.
        fs.rmSync(dst, { force: true });
        fs.linkSync(file.path, dst);
        linked.push(dst);
        dirs.add(dir);
        ids.push(id);
      }
      await Promise.all([...dirs].map(fsyncDirAsync));
      this.db.transaction(() => {
        const modseq = this.nextModseq();
        batch.forEach(({ file, opts }, i) => {
          const id = ids[i]!;
          const mb = this.mailbox(opts.mailbox) ?? this.createMailboxPath(opts.mailbox);
          const prefix = opts.prefix ?? Buffer.alloc(0);
          const flags = opts.flags ?? 0;
          const keywords = opts.keywords ?? [];
          const size = prefix.length + file.size;
          const received = opts.received ?? Date.now();
          const part = opts.part ? JSON.stringify(prefixEnvelope(shiftPart(opts.part, prefix.length), prefix)) : null;
          this.stmts.insertMessage.run(id, mb.id, mb.uidnext, modseq, modseq, flags, JSON.stringify(keywords), size, prefix, received, Date.now(), part);
          this.stmts.bumpMailbox.run(modseq, mb.id);
          if (keywords.length) this.addMailboxKeywords(mb, keywords);
          if (opts.meta) this.setMeta(id, received, opts.meta);
          results.push({ id, mailboxId: mb.id, uid: mb.uidnext, modseq });
          changes.push({ type: 'add', mailboxId: mb.id, uid: mb.uidnext, modseq, flags, keywords, size });
        });
      })();
    } catch (e) {
      this.log.error('delivery failed', e as Error);
      for (const f of linked) fs.rmSync(f, { force: true });
      for (const p of batch) p.reject(e as Error);
      return;
    } finally {
      this.flushing = false;
      this.scheduleFlush();
    }
    batch.forEach((p, i) => p.resolve(results[i]!));
    this.emit('changes', changes, batch.length === 1 ? batch[0]!.opts.origin : undefined);
  }

  private setMeta(id: number, received: number, m: MessageMeta): void {
    const masks = m.remoteIPMasks ?? ['', '', ''];
    this.db
      .prepare(
        `UPDATE message SET remoteip = ?, remoteipmask1 = ?, remoteipmask2 = ?, remoteipmask3 = ?, ehlodomain = ?, mailfrom = ?, mailfromdomain = ?,
          msgfrom = ?, msgfromdomain = ?, msgfromorgdomain = ?, ehlovalidated = ?, mailfromvalidated = ?, msgfromvalidated = ?, dkimdomains = ?, messageid = ?, subject = ?
         WHERE id = ?`,
      )
      .run(
        m.remoteIP ?? '',
        ...masks,
        m.ehloDomain ?? '',
        m.mailFrom ?? '',
        m.mailFromDomain ?? '',
        m.msgFrom ?? '',
        m.msgFromDomain ?? '',
        m.msgFromOrgDomain ?? '',
        m.ehloValidated ? 1 : 0,
        m.mailFromValidated ? 1 : 0,
        m.msgFromValidated ? 1 : 0,
        m.dkimDomains?.length ? ` ${m.dkimDomains.join(' ')} ` : '',
        m.messageId ?? '',
        m.subject ?? '',
        id,
      );
    const ins = this.db.prepare('INSERT OR IGNORE INTO messagedkim (message_id, domain, received) VALUES (?, ?, ?)');
    for (const d of m.dkimDomains ?? []) ins.run(id, d, received);
  }

  /** Records recipients of a message the account sent, so replies count as from known correspondents. */
  recordRecipients(rcpts: { address: string; domain: string; orgDomain: string }[], sent: number): void {
    const ins = this.db.prepare('INSERT OR IGNORE INTO recipient (address, domain, orgdomain, sent) VALUES (?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const r of rcpts) ins.run(r.address.toLowerCase(), r.domain, r.orgDomain, sent);
    })();
  }

  private addMailboxKeywords(mb: MailboxRow, keywords: string[]): void {
    const known = new Set(mb.keywords.map((k) => k.toLowerCase()));
    const add = keywords.filter((k) => !known.has(k.toLowerCase()));
    if (add.length) {
      mb.keywords = [...mb.keywords, ...add];
      this.db.prepare('UPDATE mailbox SET keywords = ? WHERE id = ?').run(JSON.stringify(mb.keywords), mb.id);
    }
  }

  /**
   * Changes flags of messages. Returns the messages changed, with their new state.
   * op: "+" adds, "-" removes, "=" replaces (RFC 9051 6.4.6).
   */
  storeFlags(mailboxId: number, uids: number[], op: '+' | '-' | '=', names: string[], origin?: unknown): MessageRow[] {
    const { flags, keywords } = parseFlags(names);
    const changed: MessageRow[] = [];
    const changes: Change[] = [];
    this.db.transaction(() => {
      let modseq = 0;
      const mb = this.mailboxById(mailboxId);
      if (!mb) return;
      const update = this.db.prepare('UPDATE message SET flags = ?, keywords = ?, modseq = ? WHERE id = ?');
      const rows = this.messagesByUid(mailboxId, uids);
      for (const uid of uids) {
        const m = rows.get(uid);
        if (!m) continue;
        const oldFlags = m.flags;
        let nf = m.flags;
        let nk = m.keywords;
        if (op === '+') {
          nf |= flags;
          const have = new Set(nk.map((k) => k.toLowerCase()));
          nk = nk.concat(keywords.filter((k) => !have.has(k.toLowerCase())));
        } else if (op === '-') {
          nf &= ~flags;
          const drop = new Set(keywords.map((k) => k.toLowerCase()));
          nk = nk.filter((k) => !drop.has(k.toLowerCase()));
        } else {
          nf = flags;
          nk = keywords;
        }
        if (nf === m.flags && JSON.stringify(nk) === JSON.stringify(m.keywords)) continue;
        if (!modseq) modseq = this.nextModseq();
        update.run(nf, JSON.stringify(nk), modseq, m.id);
        Object.assign(m, { flags: nf, keywords: nk, modseq });
        changed.push(m);
        changes.push({ type: 'flags', mailboxId, uid, modseq, flags: nf, keywords: nk, oldFlags });
      }
      if (modseq) this.db.prepare('UPDATE mailbox SET highestmodseq = ? WHERE id = ?').run(modseq, mailboxId);
      if (keywords.length) this.addMailboxKeywords(mb, keywords);
    })();
    if (changes.length) this.emit('changes', changes, origin);
    return changed;
  }

  /**
   * Copies messages to another mailbox (RFC 9051 6.4.7), or moves them (RFC 6851) keeping
   * their message files. Returns pairs of source and new UIDs, in source UID order.
   */
  copy(srcId: number, uids: number[], dstId: number, move: boolean, origin?: unknown): [number, number][] {
    const pairs: [number, number][] = [];
    const added: Change[] = [];
    let removeModseq = 0;
    this.db.transaction(() => {
      const dst = this.mailboxById(dstId);
      if (!dst) throw new Error('no such mailbox');
      const modseq = this.nextModseq();
      const dirs = new Set<string>();
      const moveRow = this.db.prepare('UPDATE message SET mailbox_id = ?, uid = ?, modseq = ?, createmodseq = ?, savedate = ? WHERE id = ?');
      const copyRow = this.db.prepare(
        `INSERT INTO message (id, mailbox_id, uid, modseq, createmodseq, flags, keywords, size, prefix, received, savedate, part)
         SELECT ?, ?, ?, ?, ?, flags, keywords, size, prefix, received, ?, part FROM message WHERE id = ?`,
      );
      const tomb = this.db.prepare('INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)');
      let uidnext = dst.uidnext;
      for (const uid of [...uids].sort((a, b) => a - b)) {
        const m = this.message(srcId, uid);
        if (!m) continue;
        const newUid = uidnext++;
        if (move) {
          moveRow.run(dstId, newUid, modseq, modseq, Date.now(), m.id);
          tomb.run(srcId, uid, modseq);
          removeModseq = modseq;
        } else {
          const id = this.allocId();
          copyRow.run(id, dstId, newUid, modseq, modseq, Date.now(), m.id);
          const path = this.messagePath(id);
          const dir = path.slice(0, path.lastIndexOf('/'));
          if (!dirs.has(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
          dirs.add(dir);
          fs.rmSync(path, { force: true });
          fs.linkSync(this.messagePath(m.id), path);
        }
        pairs.push([uid, newUid]);
        added.push({ type: 'add', mailboxId: dstId, uid: newUid, modseq, flags: m.flags, keywords: m.keywords, size: m.size });
        if (m.keywords.length) this.addMailboxKeywords(dst, m.keywords);
      }
      this.db.prepare('UPDATE mailbox SET uidnext = ?, highestmodseq = ? WHERE id = ?').run(uidnext, modseq, dstId);
      if (move && removeModseq) this.db.prepare('UPDATE mailbox SET highestmodseq = ? WHERE id = ?').run(modseq, srcId);
      for (const d of dirs) fsyncDir(d);
    })();
    if (pairs.length) {
      if (move) this.emit('changes', [{ type: 'remove', mailboxId: srcId, uids: pairs.map(([u]) => u), modseq: removeModseq }], origin);
      // The destination's new messages are news to every session, the mover's included.
      this.emit('changes', added, undefined);
    }
    return pairs;
  }

  /** Removes messages from a mailbox. Files are deleted later: other sessions may still read them. */
  expunge(mailboxId: number, uids: number[], origin?: unknown): number[] {
    const removed: number[] = [];
    let modseq = 0;
    this.db.transaction(() => {
      const del = this.db.prepare('DELETE FROM message WHERE id = ?');
      const tomb = this.db.prepare('INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)');
      const rm = this.db.prepare('INSERT OR REPLACE INTO removedfile (id, at) VALUES (?, ?)');
      for (const uid of uids) {
        const m = this.message(mailboxId, uid);
        if (!m) continue;
        if (!modseq) modseq = this.nextModseq();
        del.run(m.id);
        tomb.run(mailboxId, uid, modseq);
        rm.run(m.id, Date.now());
        removed.push(uid);
      }
      if (modseq) this.db.prepare('UPDATE mailbox SET highestmodseq = ? WHERE id = ?').run(modseq, mailboxId);
    })();
    if (removed.length) this.emit('changes', [{ type: 'remove', mailboxId, uids: removed, modseq }], origin);
    return removed;
  }

  /** Deletes files of messages removed before the given time. */
  removeFiles(before: number): number {
    const ids = this.db.prepare('SELECT id FROM removedfile WHERE at < ?').pluck().all(before) as number[];
    for (const id of ids) fs.rmSync(this.messagePath(id), { force: true });
    if (ids.length) this.db.prepare('DELETE FROM removedfile WHERE at < ?').run(before);
    return ids.length;
  }

  /** Stored login credentials (derived secrets, never the password). */
  credentials(): unknown {
    const r = this.db.prepare('SELECT credentials FROM password WHERE id = 1').pluck().get() as string | undefined;
    return r === undefined ? undefined : JSON.parse(r);
  }

  /** Changed-at time of the credentials, to invalidate login caches. */
  credentialsChanged(): number {
    return (this.db.prepare('SELECT changed FROM password WHERE id = 1').pluck().get() as number | undefined) ?? 0;
  }

  setCredentials(creds: unknown): void {
    this.db
      .prepare('INSERT INTO password (id, credentials, changed) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET credentials = excluded.credentials, changed = excluded.changed')
      .run(JSON.stringify(creds), Date.now());
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

