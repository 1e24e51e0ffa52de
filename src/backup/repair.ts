// Repairs of an account's index, for use after a restore or a bug: each returns lines
// describing what it found and changed. They change the index directly and keep the
// account's own counters (mod-sequence, last UIDVALIDITY) as they are, so they are safe on
// the Account of a running server; operations that change UIDs or UIDVALIDITY make IMAP
// clients resynchronize (RFC 9051 2.3.1.1), and sessions still open should be ended.
import fsp from 'node:fs/promises';
import { setImmediate as yieldNow } from 'node:timers/promises';
import type { Account, MailboxRow } from '../store/account.js';
import { parseMessage } from '../message/part.js';
import { bytesToText, decodeHeaderText } from '../message/header.js';

export class RepairError extends Error {}

function targets(acc: Account, mailbox?: string): MailboxRow[] {
  if (mailbox === undefined || mailbox === '') return acc.mailboxes();
  const mb = /^\d+$/.test(mailbox) ? (acc.mailboxById(Number(mailbox)) ?? acc.mailbox(mailbox)) : acc.mailbox(mailbox);
  if (!mb) throw new RepairError(`no mailbox ${JSON.stringify(mailbox)}`);
  return [mb];
}

/** The next UIDVALIDITY of the account, as Account assigns them: one counter, never reused. */
function nextUIDValidity(acc: Account): number {
  const v = ((acc.db.prepare("SELECT value FROM meta WHERE key = 'uidvalidity'").pluck().get() as number | undefined) ?? 0) + 1;
  acc.db.prepare("INSERT INTO meta (key, value) VALUES ('uidvalidity', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(v);
  return v;
}

/** New UIDVALIDITY for one or all mailboxes: clients discard what they cached and fetch again. */
export function bumpUIDValidity(acc: Account, mailbox?: string): string[] {
  return acc.db.transaction(() =>
    targets(acc, mailbox).map((mb) => {
      const v = nextUIDValidity(acc);
      acc.db.prepare('UPDATE mailbox SET uidvalidity = ? WHERE id = ?').run(v, mb.id);
      return `${mb.name}: UIDVALIDITY ${mb.uidvalidity} -> ${v}`;
    }),
  )();
}

/**
 * Numbers the messages of one or all mailboxes 1, 2, ... in their current order, sets
 * UIDNEXT after them and bumps UIDVALIDITY, as UIDs may only change with it. The record
 * of expunged UIDs goes too: it described the old numbering.
 */
export function reassignUIDs(acc: Account, mailbox?: string): string[] {
  return acc.db.transaction(() =>
    targets(acc, mailbox).map((mb) => {
      const ids = acc.db.prepare('SELECT id FROM message WHERE mailbox_id = ? ORDER BY uid').pluck().all(mb.id) as number[];
      // Negative first: the new numbers may be old numbers of other messages.
      acc.db.prepare('UPDATE message SET uid = -uid WHERE mailbox_id = ?').run(mb.id);
      const set = acc.db.prepare('UPDATE message SET uid = ? WHERE id = ?');
      ids.forEach((id, i) => set.run(i + 1, id));
      acc.db.prepare('DELETE FROM expunged WHERE mailbox_id = ?').run(mb.id);
      const v = nextUIDValidity(acc);
      acc.db.prepare('UPDATE mailbox SET uidnext = ?, uidvalidity = ? WHERE id = ?').run(ids.length + 1, v, mb.id);
      return `${mb.name}: ${ids.length} messages renumbered, UIDNEXT ${mb.uidnext} -> ${ids.length + 1}, UIDVALIDITY ${mb.uidvalidity} -> ${v}`;
    }),
  )();
}

/**
 * UIDNEXT above every UID used in each mailbox (also expunged ones: a UID must never be
 * reused, RFC 9051 2.3.1.1), and the account's UIDVALIDITY counter at or above every
 * mailbox's UIDVALIDITY.
 */
export function fixUIDMeta(acc: Account): string[] {
  return acc.db.transaction(() => {
    const out: string[] = [];
    for (const mb of acc.mailboxes()) {
      const max = acc.db
        .prepare('SELECT max(coalesce((SELECT max(uid) FROM message WHERE mailbox_id = ?), 0), coalesce((SELECT max(uid) FROM expunged WHERE mailbox_id = ?), 0))')
        .pluck()
        .get(mb.id, mb.id) as number;
      if (mb.uidnext <= max) {
        acc.db.prepare('UPDATE mailbox SET uidnext = ? WHERE id = ?').run(max + 1, mb.id);
        out.push(`${mb.name}: UIDNEXT ${mb.uidnext} -> ${max + 1}`);
      }
    }
    const last = (acc.db.prepare("SELECT value FROM meta WHERE key = 'uidvalidity'").pluck().get() as number | undefined) ?? 0;
    const max = (acc.db.prepare('SELECT max(uidvalidity) FROM mailbox').pluck().get() as number | null) ?? 0;
    if (max > last) {
      acc.db.prepare("INSERT INTO meta (key, value) VALUES ('uidvalidity', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(max);
      out.push(`account UIDVALIDITY counter ${last} -> ${max}`);
    }
    return out;
  })();
}

interface Msg {
  id: number;
  mailbox_id: number;
  uid: number;
  size: number;
  prefix: Buffer;
}

/** All messages in id order, in pages, yielding to the event loop between them. */
async function* allMessages(acc: Account): AsyncGenerator<Msg> {
  const page = acc.db.prepare('SELECT id, mailbox_id, uid, size, prefix FROM message WHERE id > ? ORDER BY id LIMIT 200');
  let after = 0;
  for (;;) {
    const rows = page.all(after) as Msg[];
    if (rows.length === 0) return;
    yield* rows;
    after = rows[rows.length - 1]!.id;
    await yieldNow();
  }
}

async function stored(acc: Account, m: Msg): Promise<Buffer> {
  const file = await fsp.readFile(acc.messagePath(m.id));
  return m.prefix.length ? Buffer.concat([m.prefix, file]) : file;
}

function mailboxName(acc: Account, id: number): string {
  return acc.mailboxById(id)?.name ?? `#${id}`;
}

/** Sizes equal to delivery prefix plus message file; a message whose size was wrong is parsed again too. */
export async function fixMsgSize(acc: Account): Promise<string[]> {
  const out: string[] = [];
  const set = acc.db.prepare('UPDATE message SET size = ?, part = ? WHERE id = ?');
  for await (const m of allMessages(acc)) {
    let data: Buffer;
    try {
      data = await stored(acc, m);
    } catch (e) {
      out.push(`${mailboxName(acc, m.mailbox_id)} UID ${m.uid}: cannot read message file: ${(e as Error).message}`);
      continue;
    }
    if (data.length === m.size) continue;
    set.run(data.length, JSON.stringify(parseMessage(data)), m.id);
    out.push(`${mailboxName(acc, m.mailbox_id)} UID ${m.uid}: size ${m.size} -> ${data.length}`);
  }
  return out;
}

/** Parses every message again and stores the new structure, e.g. after parser improvements. */
export async function reparse(acc: Account): Promise<string[]> {
  const set = acc.db.prepare('UPDATE message SET part = ? WHERE id = ?');
  let n = 0;
  const failed: string[] = [];
  for await (const m of allMessages(acc)) {
    try {
      set.run(JSON.stringify(parseMessage(await stored(acc, m))), m.id);
      n++;
    } catch (e) {
      failed.push(`${mailboxName(acc, m.mailbox_id)} UID ${m.uid}: ${(e as Error).message}`);
    }
  }
  return [...failed, `${n} messages parsed`];
}

/**
 * Postern keeps no message counters: STATUS counts are computed from the index. What is
 * kept per mailbox is the list of keywords in use (for FLAGS) and HIGHESTMODSEQ, which
 * must not be below any message's or expunged UID's mod-sequence (RFC 7162 3.1.2.1).
 * Both are recomputed; the counts and the account's total size (its quota use) are listed.
 */
export function recalculateMailboxCounts(acc: Account): string[] {
  return acc.db.transaction(() => {
    const out: string[] = [];
    let total = 0;
    for (const mb of acc.mailboxes()) {
      const c = acc.counts(mb.id);
      total += c.size;
      const used = acc.db.prepare('SELECT DISTINCT k.value FROM message, json_each(message.keywords) AS k WHERE message.mailbox_id = ?').pluck().all(mb.id) as string[];
      const have = new Set(mb.keywords.map((k) => k.toLowerCase()));
      const missing = [...new Set(used.filter((k) => !have.has(k.toLowerCase())))];
      if (missing.length) {
        acc.db.prepare('UPDATE mailbox SET keywords = ? WHERE id = ?').run(JSON.stringify([...mb.keywords, ...missing]), mb.id);
        out.push(`${mb.name}: keywords added to the mailbox's list: ${missing.join(' ')}`);
      }
      const maxModseq = acc.db
        .prepare('SELECT max(coalesce((SELECT max(modseq) FROM message WHERE mailbox_id = ?), 0), coalesce((SELECT max(modseq) FROM expunged WHERE mailbox_id = ?), 0))')
        .pluck()
        .get(mb.id, mb.id) as number;
      if (maxModseq > mb.highestmodseq) {
        acc.db.prepare('UPDATE mailbox SET highestmodseq = ? WHERE id = ?').run(maxModseq, mb.id);
        out.push(`${mb.name}: HIGHESTMODSEQ ${mb.highestmodseq} -> ${maxModseq}`);
      }
      out.push(`${mb.name}: ${c.messages} messages, ${c.unseen} unseen, ${c.deleted} deleted, ${c.size} bytes`);
    }
    out.push(`account: ${total} bytes in all mailboxes`);
    return out;
  })();
}

/**
 * THREAD responses (RFC 5256) are computed from message headers when asked; what the
 * index keeps per message for threading and for lookups by Message-ID is the Message-ID
 * and the decoded Subject. They are set again for every message, from its structure.
 */
export async function reassignThreads(acc: Account): Promise<string[]> {
  const get = acc.db.prepare('SELECT part, messageid, subject FROM message WHERE id = ?');
  const set = acc.db.prepare('UPDATE message SET messageid = ?, subject = ? WHERE id = ?');
  let n = 0;
  let changed = 0;
  for await (const m of allMessages(acc)) {
    const row = get.get(m.id) as { part: string | null; messageid: string; subject: string };
    const env = (row.part ? JSON.parse(row.part) : parseMessage(await stored(acc, m))).envelope as { messageId?: string; subject?: string } | undefined;
    const messageId = env?.messageId ? bytesToText(env.messageId).trim() : '';
    const subject = env?.subject ? decodeHeaderText(env.subject).slice(0, 500) : '';
    n++;
    if (messageId === row.messageid && subject === row.subject) continue;
    set.run(messageId, subject, m.id);
    changed++;
  }
  return [`${n} messages, ${changed} changed`];
}

export const repairs = {
  bumpuidvalidity: (acc: Account, mailbox?: string) => bumpUIDValidity(acc, mailbox),
  reassignuids: (acc: Account, mailbox?: string) => reassignUIDs(acc, mailbox),
  fixuidmeta: (acc: Account) => fixUIDMeta(acc),
  fixmsgsize: (acc: Account) => fixMsgSize(acc),
  reparse: (acc: Account) => reparse(acc),
  recalculatemailboxcounts: (acc: Account) => recalculateMailboxCounts(acc),
  reassignthreads: (acc: Account) => reassignThreads(acc),
} satisfies Record<string, (acc: Account, mailbox?: string) => string[] | Promise<string[]>>;

export type RepairName = keyof typeof repairs;

/** Repairs after which IMAP clients must start over with the mailbox. */
export const changesUIDs: ReadonlySet<string> = new Set(['bumpuidvalidity', 'reassignuids']);
