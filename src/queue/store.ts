// The outbound queue's storage: one message file per submission under data/queue/msg and
// one index row per recipient in data/queue/index.db. A message is durable in the queue
// before the submission gets its 250 reply, with the same rules as account delivery.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { fsyncDir, type MsgFile } from '../store/tempfile.js';

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
}

export class QueueStore extends EventEmitter {
  readonly db: Database.Database;
  readonly dir: string;

  constructor(dataDir: string) {
    super();
    this.dir = path.join(dataDir, 'queue');
    fs.mkdirSync(path.join(this.dir, 'msg'), { recursive: true, mode: 0o700 });
    this.db = new Database(path.join(this.dir, 'index.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < schema.length; v++) {
      this.db.transaction(() => {
        this.db.exec(schema[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
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
          dsnret, dsnenvid, dsnnotify, dsnorcpt, futurerelease, nextattempt, messageid, subject)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const r of o.recipients) {
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
    for (const f of files) {
      if (!this.db.prepare('SELECT 1 FROM msg WHERE fileid = ?').get(f)) fs.rmSync(this.filePath(f), { force: true });
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
