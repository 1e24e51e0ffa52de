// Checks of a data directory, typically a backup or a restored copy: databases are
// intact (SQLite integrity_check), upgraded to the current schema, every message in an
// index has its file with the recorded size, no message file is unknown to its index,
// and UIDs, UIDNEXT, UIDVALIDITY and mod-sequences are consistent (RFC 9051 2.3.1.1,
// RFC 7162 3.1). With fix, unknown message files are moved to <dir>/moved/: a message
// delivered later could get their id, and storing it would fail.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from '../store/schema.js';
import { msgsPerDir } from '../store/account.js';
import { QueueStore } from '../queue/store.js';

export interface VerifyResult {
  /** Problems found and not fixed. */
  problems: string[];
  /** Stray files moved away (with fix). */
  moved: string[];
  databases: number;
  messages: number;
}

function integrity(db: Database.Database, rel: string, problems: string[]): void {
  const rows = db.pragma('integrity_check') as { integrity_check: string }[];
  const bad = rows.map((r) => r.integrity_check).filter((s) => s !== 'ok');
  for (const b of bad.slice(0, 20)) problems.push(`${rel}: ${b}`);
}

export function verifyDataDir(dataDir: string, o: { fix?: boolean } = {}): VerifyResult {
  const dir = path.resolve(dataDir);
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`${dir}: not a directory`);
  const r: VerifyResult = { problems: [], moved: [], databases: 0, messages: 0 };
  const checked = new Set<string>();

  /** Message files in <msgDir>/<group>/<id> that are not known: moved with fix, else reported. */
  const strays = (msgDir: string, known: (id: number) => boolean) => {
    if (!fs.existsSync(msgDir)) return;
    for (const g of fs.readdirSync(msgDir)) {
      const gdir = path.join(msgDir, g);
      const isGroup = /^\d+$/.test(g) && fs.statSync(gdir).isDirectory();
      for (const f of isGroup ? fs.readdirSync(gdir) : ['']) {
        const p = f ? path.join(gdir, f) : gdir;
        const ok = isGroup && /^\d+$/.test(f) && Math.floor(Number(f) / msgsPerDir) === Number(g) && known(Number(f));
        if (ok) continue;
        const rel = path.relative(dir, p);
        if (o.fix) {
          const to = path.join(dir, 'moved', rel);
          fs.mkdirSync(path.dirname(to), { recursive: true, mode: 0o700 });
          fs.renameSync(p, to);
          r.moved.push(`${rel} -> ${path.relative(dir, to)}`);
        } else r.problems.push(`${rel}: file not in the index (use -fix to move it away)`);
      }
    }
  };

  const accountsDir = path.join(dir, 'accounts');
  for (const name of fs.existsSync(accountsDir) ? fs.readdirSync(accountsDir).sort() : []) {
    const adir = path.join(accountsDir, name);
    const index = path.join(adir, 'index.db');
    if (!fs.existsSync(index)) continue;
    checked.add(index);
    const rel = path.relative(dir, index);
    const db = new Database(index, { fileMustExist: true });
    try {
      r.databases++;
      integrity(db, rel, r.problems);
      // Opening upgrades the schema, as the server would.
      migrate(db);
      verifyAccount(db, name, adir, r, strays);
    } catch (e) {
      r.problems.push(`${rel}: ${(e as Error).message}`);
    } finally {
      db.close();
    }
  }

  const qindex = path.join(dir, 'queue', 'index.db');
  if (fs.existsSync(qindex)) {
    checked.add(qindex);
    try {
      new QueueStore(dir).close();
      const db = new Database(qindex, { fileMustExist: true });
      try {
        r.databases++;
        integrity(db, 'queue/index.db', r.problems);
        const qmsg = path.join(dir, 'queue', 'msg');
        const files = new Set<number>();
        for (const m of db.prepare('SELECT id, fileid, size, length(prefix) AS plen FROM msg').iterate() as IterableIterator<{ id: number; fileid: number; size: number; plen: number }>) {
          files.add(m.fileid);
          const st = fs.statSync(path.join(qmsg, String(Math.floor(m.fileid / msgsPerDir)), String(m.fileid)), { throwIfNoEntry: false });
          if (!st) r.problems.push(`queue message ${m.id}: message file ${m.fileid} missing`);
          else if (st.size + m.plen !== m.size) r.problems.push(`queue message ${m.id}: size ${m.size} recorded, ${st.size + m.plen} stored`);
        }
        strays(qmsg, (id) => files.has(id));
      } finally {
        db.close();
      }
    } catch (e) {
      r.problems.push(`queue/index.db: ${(e as Error).message}`);
    }
  }

  // Any other database: intact is all that can be said.
  const walk = (d: string) => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) {
        if (p !== path.join(dir, 'moved') && p !== path.join(dir, 'tmp') && ent.name !== 'msg') walk(p);
      } else if (ent.isFile() && ent.name.endsWith('.db') && !checked.has(p)) {
        try {
          const db = new Database(p, { fileMustExist: true });
          try {
            r.databases++;
            integrity(db, path.relative(dir, p), r.problems);
          } finally {
            db.close();
          }
        } catch (e) {
          r.problems.push(`${path.relative(dir, p)}: ${(e as Error).message}`);
        }
      }
    }
  };
  walk(dir);
  return r;
}

interface MailboxState {
  name: string;
  uidnext: number;
  uidvalidity: number;
  highestmodseq: number;
  maxModseq: number;
}

function verifyAccount(db: Database.Database, name: string, adir: string, r: VerifyResult, strays: (msgDir: string, known: (id: number) => boolean) => void): void {
  const p = (s: string) => r.problems.push(`account ${name}: ${s}`);
  const meta = (k: string) => (db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(k) as number | undefined) ?? 0;
  const modseq = meta('modseq');
  const uidvalidity = meta('uidvalidity');
  const mailboxes = new Map<number, MailboxState>();
  for (const m of db.prepare('SELECT id, name, uidnext, uidvalidity, highestmodseq FROM mailbox').all() as (MailboxState & { id: number })[]) {
    mailboxes.set(m.id, { ...m, maxModseq: 0 });
    if (m.uidvalidity > uidvalidity) p(`mailbox ${m.name}: UIDVALIDITY ${m.uidvalidity} above the account's last assigned ${uidvalidity} (run fixuidmeta)`);
    if (m.highestmodseq > modseq) p(`mailbox ${m.name}: HIGHESTMODSEQ ${m.highestmodseq} above the account's ${modseq}`);
  }
  const msgDir = path.join(adir, 'msg');
  const ids = new Set<number>();
  const rows = db.prepare('SELECT id, mailbox_id, uid, modseq, size, length(prefix) AS plen FROM message').iterate() as IterableIterator<{
    id: number;
    mailbox_id: number;
    uid: number;
    modseq: number;
    size: number;
    plen: number;
  }>;
  for (const m of rows) {
    r.messages++;
    ids.add(m.id);
    const mb = mailboxes.get(m.mailbox_id);
    if (!mb) {
      p(`message ${m.id}: in mailbox ${m.mailbox_id}, which does not exist`);
      continue;
    }
    if (m.uid < 1 || m.uid >= mb.uidnext) p(`mailbox ${mb.name}: message UID ${m.uid} not below UIDNEXT ${mb.uidnext} (run fixuidmeta)`);
    if (m.modseq > modseq) p(`mailbox ${mb.name}: message UID ${m.uid} has MODSEQ ${m.modseq}, above the account's ${modseq}`);
    mb.maxModseq = Math.max(mb.maxModseq, m.modseq);
    const st = fs.statSync(path.join(msgDir, String(Math.floor(m.id / msgsPerDir)), String(m.id)), { throwIfNoEntry: false });
    if (!st) p(`mailbox ${mb.name}: message UID ${m.uid} (id ${m.id}): message file missing`);
    else if (st.size + m.plen !== m.size) p(`mailbox ${mb.name}: message UID ${m.uid} (id ${m.id}): size ${m.size} recorded, ${st.size + m.plen} stored (run fixmsgsize)`);
  }
  for (const e of db.prepare('SELECT mailbox_id, max(uid) AS uid, max(modseq) AS modseq FROM expunged GROUP BY mailbox_id').all() as { mailbox_id: number; uid: number; modseq: number }[]) {
    const mb = mailboxes.get(e.mailbox_id);
    if (!mb) continue;
    if (e.uid >= mb.uidnext) p(`mailbox ${mb.name}: expunged UID ${e.uid} not below UIDNEXT ${mb.uidnext} (run fixuidmeta)`);
    mb.maxModseq = Math.max(mb.maxModseq, e.modseq);
  }
  for (const mb of mailboxes.values()) {
    if (mb.maxModseq > mb.highestmodseq) p(`mailbox ${mb.name}: HIGHESTMODSEQ ${mb.highestmodseq} below a message's ${mb.maxModseq} (run recalculatemailboxcounts)`);
  }
  // Files of expunged messages wait for removal a while: they are known too.
  const removed = new Set(db.prepare('SELECT id FROM removedfile').pluck().all() as number[]);
  strays(msgDir, (id) => ids.has(id) || removed.has(id));
}
