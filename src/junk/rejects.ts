// The Rejects mailbox: a copy of each refused message, so a user can find a legitimate one
// (e.g. a sign-up confirmation) that was refused. Copies are deduplicated by Message-ID or
// content hash, removed when the same message is delivered later, and kept for a limited time
// and number.
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import type { Account, MessageMeta } from '../store/account.js';
import type { Store } from '../store/store.js';
import { Flag } from '../store/flags.js';
import { parseMessage } from '../message/part.js';
import type { Filter } from './filter.js';
import type { JunkSettings } from './settings.js';

/** Identity of a message across delivery attempts: its Message-ID, else a hash of its content. */
export function rejectKey(messageId: string, msg: Buffer): string {
  return messageId ? `id:${messageId}` : `sha256:${crypto.createHash('sha256').update(msg).digest('base64')}`;
}

export class Rejects {
  constructor(
    private readonly acc: Account,
    private readonly filter: Filter,
    private readonly store: Store,
  ) {}

  private copyOf(key: string, mailbox: string): { mailboxId: number; uid: number } | undefined {
    const msgid = this.filter.db.prepare('SELECT msgid FROM reject WHERE key = ?').pluck().get(key) as number | undefined;
    const mb = mailbox && this.acc.mailbox(mailbox);
    if (msgid === undefined || !mb) return undefined;
    const uid = this.acc.db.prepare('SELECT uid FROM message WHERE id = ? AND mailbox_id = ?').pluck().get(msgid, mb.id) as number | undefined;
    return uid === undefined ? undefined : { mailboxId: mb.id, uid };
  }

  /** Keeps a copy of a refused message, marked seen so it draws no attention. */
  async add(s: JunkSettings, key: string, msg: Buffer, prefix: string, meta: MessageMeta, now: number): Promise<void> {
    if (!s.rejectsMailbox || this.copyOf(key, s.rejectsMailbox)) return;
    const file = await this.store.writeTemp(msg);
    try {
      const d = await this.acc.deliver(file, { mailbox: s.rejectsMailbox, prefix: Buffer.from(prefix), flags: Flag.Seen, received: now, part: parseMessage(msg), meta });
      this.filter.db.prepare('INSERT INTO reject (key, msgid) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET msgid = excluded.msgid').run(key, d.id);
    } finally {
      await fsp.rm(file.path, { force: true });
    }
    this.tidy(s, now);
  }

  /** The message was delivered after all: its refused copy goes. */
  remove(s: JunkSettings, key: string): void {
    const c = this.copyOf(key, s.rejectsMailbox);
    if (c) this.acc.expunge(c.mailboxId, [c.uid]);
    this.filter.db.prepare('DELETE FROM reject WHERE key = ?').run(key);
  }

  /** Removes copies past the retention time and beyond the maximum count, oldest first. */
  tidy(s: JunkSettings, now: number): number {
    const mb = s.rejectsMailbox && this.acc.mailbox(s.rejectsMailbox);
    if (!mb) return 0;
    const old = this.acc.db.prepare('SELECT uid FROM message WHERE mailbox_id = ? AND received < ?').pluck().all(mb.id, now - s.keepRejectsMs) as number[];
    const n = this.acc.counts(mb.id).messages - old.length;
    const excess = n > s.maxRejects ? (this.acc.db.prepare('SELECT uid FROM message WHERE mailbox_id = ? AND received >= ? ORDER BY received, uid LIMIT ?').pluck().all(mb.id, now - s.keepRejectsMs, n - s.maxRejects) as number[]) : [];
    const uids = [...old, ...excess];
    if (uids.length) this.acc.expunge(mb.id, uids);
    // Keys of copies that are gone (ids only grow, so all below the oldest copy left).
    const oldest = this.acc.db.prepare('SELECT min(id) FROM message WHERE mailbox_id = ?').pluck().get(mb.id) as number | null;
    this.filter.db.prepare('DELETE FROM reject WHERE msgid < ?').run(oldest ?? Number.MAX_SAFE_INTEGER);
    return uids.length;
  }
}
