// The outbound queue's storage: one message file per submission under data/queue/msg and
// one index row per recipient in data/queue/index.db. A message is durable in the queue
// before the submission gets its 250 reply, with the same rules as account delivery.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { openDatabase } from '../store/sqlite.js';
import { fsyncDir, type MsgFile } from '../store/tempfile.js';
import { parseDomain } from '../dns/domain.js';

const perDir = 8192;

const schema = [
  `
  CREATE TABLE msg (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Message file shared by the recipients of one submission.
    fileid INTEGER NOT NULL,
    created INTEGER NOT NULL,
    account TEXT NOT NULL,
    -- SMTP MAIL FROM; empty for the null sender (DSNs).
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    -- ASCII (A-label) form, for grouping deliveries per destination.
    recipientdomain TEXT NOT NULL,
    size INTEGER NOT NULL,
    -- Header lines added at submission (DKIM-Signature, Received, ...), sent before the file.
    prefix BLOB NOT NULL DEFAULT x'',
    has8bit INTEGER NOT NULL DEFAULT 0,
    smtputf8 INTEGER NOT NULL DEFAULT 0,
    -- RFC 8689: NULL when not requested; 1 with REQUIRETLS; 0 with "TLS-Required: No".
    requiretls INTEGER,
    -- RFC 3461 DSN parameters.
    dsnret TEXT,
    dsnenvid TEXT,
    dsnnotify TEXT,
    dsnorcpt TEXT,
    -- RFC 4865 FUTURERELEASE: the client's request, kept for DSNs.
    futurerelease TEXT,
    nextattempt INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    maxattempts INTEGER NOT NULL DEFAULT 8,
    lastattempt INTEGER,
    lasterror TEXT,
    hold INTEGER NOT NULL DEFAULT 0,
    transport TEXT NOT NULL DEFAULT '',
    messageid TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT ''
  ) STRICT;
  CREATE INDEX msg_next ON msg (hold, nextattempt);
  CREATE INDEX msg_file ON msg (fileid);
  CREATE TABLE fileseq (id INTEGER PRIMARY KEY AUTOINCREMENT) STRICT;
  `,
  `
  -- Details of the last failure, JSON {status, mta, diag}, for DSNs (RFC 3464 2.3).
  ALTER TABLE msg ADD COLUMN lastdetail TEXT;
  -- A "delayed" DSN was sent.
  ALTER TABLE msg ADD COLUMN delaydsn INTEGER NOT NULL DEFAULT 0;
  -- TLS reports are not themselves counted in TLS reports (RFC 8460 5.3).
  ALTER TABLE msg ADD COLUMN istlsreport INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE holdrule (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL DEFAULT '',
    senderdomain TEXT NOT NULL DEFAULT '',
    recipientdomain TEXT NOT NULL DEFAULT ''
  ) STRICT;
  -- Delivered and failed recipients, kept for a while after they left the queue.
  CREATE TABLE retired (
    id INTEGER PRIMARY KEY,
    created INTEGER NOT NULL,
    account TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    recipientdomain TEXT NOT NULL,
    size INTEGER NOT NULL,
    messageid TEXT NOT NULL,
    subject TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    transport TEXT NOT NULL,
    success INTEGER NOT NULL,
    lasterror TEXT,
    retired INTEGER NOT NULL,
    keepuntil INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX retired_keep ON retired (keepuntil);
  -- Outcome of one TLS session or policy lookup, for daily TLS reports (RFC 8460 4).
  CREATE TABLE tlsresult (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    policydomain TEXT NOT NULL,
    -- Start of the UTC day, ms since epoch.
    day INTEGER NOT NULL,
    -- A PolicyResult of src/tlsrpt/report.ts as JSON.
    result TEXT NOT NULL
  ) STRICT;
  CREATE INDEX tlsresult_day ON tlsresult (day);
  `,
  `
  -- Unique id in the MAIL FROM address (FromIDLoginAddresses), and metadata of the submitter as a
  -- JSON object of strings; both go into webhooks about the message.
  ALTER TABLE msg ADD COLUMN fromid TEXT NOT NULL DEFAULT '';
  ALTER TABLE msg ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
  ALTER TABLE retired ADD COLUMN fromid TEXT NOT NULL DEFAULT '';
  ALTER TABLE retired ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
  CREATE INDEX msg_fromid ON msg (fromid) WHERE fromid != '';
  CREATE INDEX retired_fromid ON retired (fromid) WHERE fromid != '';
  -- Addresses an account does not send to; see suppression.ts.
  CREATE TABLE suppression (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created INTEGER NOT NULL,
    account TEXT NOT NULL,
    baseaddress TEXT NOT NULL,
    originaladdress TEXT NOT NULL,
    manual INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    UNIQUE (account, baseaddress)
  ) STRICT;
  -- Webhook posts waiting for (another) attempt; see src/webhook.
  CREATE TABLE hook (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    url TEXT NOT NULL,
    auth TEXT NOT NULL DEFAULT '',
    incoming INTEGER NOT NULL,
    -- For outgoing events: the queue message, its ids and the event.
    queuemsgid INTEGER NOT NULL DEFAULT 0,
    fromid TEXT NOT NULL DEFAULT '',
    messageid TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    event TEXT NOT NULL DEFAULT '',
    payload TEXT NOT NULL,
    submitted INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    nextattempt INTEGER NOT NULL,
    -- JSON list of attempts: {start, duration, success, code, error, response}.
    results TEXT NOT NULL DEFAULT '[]'
  ) STRICT;
  CREATE INDEX hook_next ON hook (nextattempt);
  CREATE INDEX hook_msg ON hook (account, queuemsgid);
  CREATE TABLE hookretired (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    url TEXT NOT NULL,
    incoming INTEGER NOT NULL,
    queuemsgid INTEGER NOT NULL,
    fromid TEXT NOT NULL,
    messageid TEXT NOT NULL,
    subject TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    submitted INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    results TEXT NOT NULL,
    success INTEGER NOT NULL,
    -- The newer hook about the same message that made this one unnecessary, 0 if none.
    supersededby INTEGER NOT NULL DEFAULT 0,
    retired INTEGER NOT NULL,
    keepuntil INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX hookretired_keep ON hookretired (keepuntil);
  `,
];

export interface QueueRecipient {
  address: string;
  domain: string;
  notify?: string;
  orcpt?: string;
}

export interface EnqueueOptions {
  account: string;
  sender: string;
  recipients: QueueRecipient[];
  prefix?: Buffer;
  has8bit?: boolean;
  smtputf8?: boolean;
  requireTLS?: boolean | null;
  dsnRet?: string;
  dsnEnvid?: string;
  futureRelease?: string;
  /** First attempt, ms since epoch; now unless held for future release. */
  nextAttempt: number;
  messageId?: string;
  subject?: string;
  /** Attempts before giving up; the configured maximum when absent. */
  maxAttempts?: number;
  isTLSReport?: boolean;
  /** Unique id in the sender address, for matching DSNs and webhooks. */
  fromId?: string;
  /** Metadata of the submitter, passed on in webhooks. */
  extra?: Record<string, string>;
}

export interface QueueMsg {
  id: number;
  fileid: number;
  created: number;
  account: string;
  sender: string;
  recipient: string;
  recipientdomain: string;
  size: number;
  has8bit: number;
  smtputf8: number;
  requiretls: number | null;
  dsnret: string | null;
  dsnenvid: string | null;
  dsnnotify: string | null;
  dsnorcpt: string | null;
  futurerelease: string | null;
  nextattempt: number;
  attempts: number;
  maxattempts: number;
  lastattempt: number | null;
  lasterror: string | null;
  hold: number;
  transport: string;
  messageid: string;
  subject: string;
  lastdetail: string | null;
  /** Present in rows read with all columns. */
  prefix?: Buffer;
  delaydsn: number;
  istlsreport: number;
  fromid: string;
  /** JSON object of strings. */
  extra: string;
}

export interface HoldRule {
  id: number;
  /** Empty strings match everything. */
  account: string;
  senderdomain: string;
  recipientdomain: string;
}

export interface RetiredMsg {
  id: number;
  created: number;
  account: string;
  sender: string;
  recipient: string;
  recipientdomain: string;
  size: number;
  messageid: string;
  subject: string;
  attempts: number;
  transport: string;
  success: number;
  lasterror: string | null;
  retired: number;
  keepuntil: number;
  fromid: string;
  extra: string;
}

/** Selects queued messages; all given fields must match. */
export interface Filter {
  ids?: number[];
  account?: string;
  /** Sender domain, ASCII or Unicode. */
  fromDomain?: string;
  toDomain?: string;
  recipient?: string;
  transport?: string;
  hold?: boolean;
}

/** The domain of an address, lower case; "" for the null sender. */
export function addressDomain(addr: string): string {
  const at = addr.lastIndexOf('@');
  return at < 0 ? '' : addr.slice(at + 1).toLowerCase();
}

/** Whether a hold rule applies; domains compare in ASCII form. */
export function holdMatches(h: Omit<HoldRule, 'id'>, account: string, senderDomain: string, recipientDomain: string): boolean {
  const eq = (rule: string, v: string) => rule === '' || asciiOr(rule) === asciiOr(v);
  return (h.account === '' || h.account === account) && eq(h.senderdomain, senderDomain) && eq(h.recipientdomain, recipientDomain);
}

function asciiOr(d: string): string {
  try {
    return parseDomain(d).ascii;
  } catch {
    return d.toLowerCase();
  }
}

export class QueueStore extends EventEmitter {
  readonly db: Database.Database;
  readonly dir: string;
  /** Default for messages enqueued without their own maximum. */
  maxAttempts = 8;

  constructor(dataDir: string) {
    super();
    this.dir = path.join(dataDir, 'queue');
    fs.mkdirSync(path.join(this.dir, 'msg'), { recursive: true, mode: 0o700 });
    this.db = openDatabase(path.join(this.dir, 'index.db'), { durable: true, migrations: schema });
  }

  filePath(fileid: number): string {
    return path.join(this.dir, 'msg', String(Math.floor(fileid / perDir)), String(fileid));
  }

  /** Adds a message for its recipients, durably, before returning. */
  enqueue(file: MsgFile, o: EnqueueOptions): QueueMsg[] {
    const prefix = o.prefix ?? Buffer.alloc(0);
    const ids: number[] = [];
    this.db.transaction(() => {
      const fileid = Number(this.db.prepare('INSERT INTO fileseq DEFAULT VALUES').run().lastInsertRowid);
      const dst = this.filePath(fileid);
      fs.mkdirSync(path.dirname(dst), { recursive: true, mode: 0o700 });
      fs.rmSync(dst, { force: true });
      fs.linkSync(file.path, dst);
      fsyncDir(path.dirname(dst));
      const ins = this.db.prepare(
        `INSERT INTO msg (fileid, created, account, sender, recipient, recipientdomain, size, prefix, has8bit, smtputf8, requiretls,
          dsnret, dsnenvid, dsnnotify, dsnorcpt, futurerelease, nextattempt, messageid, subject, maxattempts, istlsreport, hold, fromid, extra)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const rules = this.holdRules();
      for (const r of o.recipients) {
        const held = rules.some((h) => holdMatches(h, o.account, addressDomain(o.sender), r.domain));
        const info = ins.run(
          fileid,
          Date.now(),
          o.account,
          o.sender,
          r.address,
          r.domain,
          prefix.length + file.size,
          prefix,
          o.has8bit ? 1 : 0,
          o.smtputf8 ? 1 : 0,
          o.requireTLS === undefined || o.requireTLS === null ? null : o.requireTLS ? 1 : 0,
          o.dsnRet ?? null,
          o.dsnEnvid ?? null,
          r.notify ?? null,
          r.orcpt ?? null,
          o.futureRelease ?? null,
          o.nextAttempt,
          o.messageId ?? '',
          o.subject ?? '',
          o.maxAttempts ?? this.maxAttempts,
          o.isTLSReport ? 1 : 0,
          held ? 1 : 0,
          o.fromId ?? '',
          JSON.stringify(o.extra ?? {}),
        );
        ids.push(Number(info.lastInsertRowid));
      }
    })();
    const msgs = ids.map((id) => this.get(id)!);
    this.emit('added', msgs);
    return msgs;
  }

  get(id: number): QueueMsg | undefined {
    return this.db.prepare('SELECT * FROM msg WHERE id = ?').get(id) as QueueMsg | undefined;
  }

  list(): QueueMsg[] {
    return this.db.prepare('SELECT * FROM msg ORDER BY id').all() as QueueMsg[];
  }

  prefix(id: number): Buffer {
    return (this.db.prepare('SELECT prefix FROM msg WHERE id = ?').pluck().get(id) as Buffer | undefined) ?? Buffer.alloc(0);
  }

  /** Removes recipients' rows, and message files no longer used by any. */
  remove(ids: number[]): void {
    const files = new Set<number>();
    this.db.transaction(() => {
      for (const id of ids) {
        const m = this.get(id);
        if (!m) continue;
        files.add(m.fileid);
        this.db.prepare('DELETE FROM msg WHERE id = ?').run(id);
      }
    })();
    this.dropUnusedFiles([...files]);
  }

  /** Queued messages matching a filter, in id order. */
  select(f: Filter = {}): QueueMsg[] {
    return this.list().filter((m) => matches(m, f));
  }

  /** Updates the given columns of messages. */
  update(ids: number[], set: Partial<Pick<QueueMsg, 'hold' | 'nextattempt' | 'transport' | 'attempts' | 'lastattempt' | 'lasterror' | 'lastdetail' | 'delaydsn' | 'maxattempts' | 'requiretls'>>): void {
    const cols = Object.keys(set);
    if (cols.length === 0 || ids.length === 0) return;
    const stmt = this.db.prepare(`UPDATE msg SET ${cols.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`);
    const values = Object.values(set);
    this.db.transaction(() => {
      for (const id of ids) stmt.run(...values, id);
    })();
    this.emit('changed');
  }

  /** Moves delivered or failed recipients to the retired list and removes them from the queue. */
  retire(msgs: QueueMsg[], success: boolean, lasterror: string | null, now: number, keepMs: number, removeFiles = true): void {
    const ins = this.db.prepare(
      `INSERT OR REPLACE INTO retired (id, created, account, sender, recipient, recipientdomain, size, messageid, subject, attempts, transport, success, lasterror, retired, keepuntil, fromid, extra)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const m of msgs) {
        ins.run(m.id, m.created, m.account, m.sender, m.recipient, m.recipientdomain, m.size, m.messageid, m.subject, m.attempts, m.transport, success ? 1 : 0, lasterror, now, now + keepMs, m.fromid ?? '', m.extra ?? '{}');
      }
      this.db.prepare('DELETE FROM retired WHERE keepuntil < ?').run(now);
      for (const m of msgs) this.db.prepare('DELETE FROM msg WHERE id = ?').run(m.id);
    })();
    if (removeFiles) this.dropUnusedFiles(msgs.map((m) => m.fileid));
  }

  /**
   * Records recipients that a submission delivered into local accounts as delivered queue
   * messages, retired at once: they get a queue id like remote recipients (for the webapi's
   * answer, webhooks and "queue retired list") without ever waiting in the queue.
   */
  recordLocalDeliveries(o: { account: string; sender: string; recipients: string[]; size: number; messageId: string; subject: string; extra?: Record<string, string> }, now: number, keepMs: number): QueueMsg[] {
    let msgs: QueueMsg[] = [];
    this.db.transaction(() => {
      const ids: number[] = [];
      const ins = this.db.prepare(
        `INSERT INTO msg (fileid, created, account, sender, recipient, recipientdomain, size, prefix, nextattempt, messageid, subject, maxattempts, hold, extra, attempts, transport)
         VALUES (0, ?, ?, ?, ?, ?, ?, x'', ?, ?, ?, 0, 1, ?, 1, 'local')`,
      );
      for (const r of o.recipients) {
        const domain = r.slice(r.lastIndexOf('@') + 1).toLowerCase();
        ids.push(Number(ins.run(now, o.account, o.sender, r, domain, o.size, now, o.messageId, o.subject, JSON.stringify(o.extra ?? {})).lastInsertRowid));
      }
      msgs = ids.map((id) => this.get(id)!);
      this.retire(msgs, true, null, now, keepMs, false);
    })();
    return msgs;
  }

  /** Removes the message files no queued recipient uses anymore. */
  dropUnusedFiles(fileids: number[]): void {
    for (const f of new Set(fileids)) {
      if (!this.db.prepare('SELECT 1 FROM msg WHERE fileid = ?').get(f)) fs.rmSync(this.filePath(f), { force: true });
    }
  }

  retired(): RetiredMsg[] {
    return this.db.prepare('SELECT * FROM retired ORDER BY retired, id').all() as RetiredMsg[];
  }

  holdRules(): HoldRule[] {
    return this.db.prepare('SELECT * FROM holdrule ORDER BY id').all() as HoldRule[];
  }

  /** Adds a hold rule and holds the queued messages it matches. */
  addHoldRule(r: Omit<HoldRule, 'id'>): HoldRule {
    const id = Number(this.db.prepare('INSERT INTO holdrule (account, senderdomain, recipientdomain) VALUES (?, ?, ?)').run(r.account, r.senderdomain, r.recipientdomain).lastInsertRowid);
    const held = this.list().filter((m) => !m.hold && holdMatches(r, m.account, addressDomain(m.sender), m.recipientdomain));
    this.update(
      held.map((m) => m.id),
      { hold: 1 },
    );
    return { id, ...r };
  }

  removeHoldRule(id: number): boolean {
    return this.db.prepare('DELETE FROM holdrule WHERE id = ?').run(id).changes > 0;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function matches(m: QueueMsg, f: Filter): boolean {
  if (f.ids && !f.ids.includes(m.id)) return false;
  if (f.account !== undefined && m.account !== f.account) return false;
  if (f.fromDomain !== undefined && asciiOr(addressDomain(m.sender)) !== asciiOr(f.fromDomain)) return false;
  if (f.toDomain !== undefined && m.recipientdomain !== asciiOr(f.toDomain)) return false;
  if (f.recipient !== undefined && m.recipient.toLowerCase() !== f.recipient.toLowerCase()) return false;
  if (f.transport !== undefined && m.transport !== f.transport) return false;
  if (f.hold !== undefined && !!m.hold !== f.hold) return false;
  return true;
}
