// Mailbox operations on an account beyond single inserts: hierarchy-aware create, delete
// and rename, subscriptions, metadata entries (RFC 5464) and quota usage (RFC 9208).
// Errors carry the IMAP response code that describes them (RFC 5530, RFC 9051 7.1).
import { mailboxKey, type Account, type Change, type MailboxRow } from './account.js';
import { checkMailboxName, separator } from './names.js';

export class MailboxError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Special uses a real mailbox can have (RFC 6154 2); \All and \Flagged would be virtual. */
export const specialUses = ['\\Archive', '\\Drafts', '\\Junk', '\\Sent', '\\Trash'];

export const metadataMaxValue = 64 * 1024;
export const metadataMaxEntries = 256;
const metadataMaxName = 1024;
/** Entry that mirrors a mailbox's special use (RFC 6154 4), not stored in the metadata table. */
export const specialUseEntry = '/private/specialuse';

function valid(name: string): string {
  const c = checkMailboxName(name);
  if ('error' in c) throw new MailboxError(c.error, 'CANNOT');
  return c.name;
}

/** Checks a new name; parent levels that exist keep their spelling, so children share their parent's. */
function validNew(acc: Account, name: string): string {
  const levels = valid(name).split(separator);
  let out = '';
  for (const [i, level] of levels.entries()) {
    const n = out ? out + separator + level : level;
    out = i < levels.length - 1 ? (acc.mailbox(n)?.name ?? n) : n;
  }
  return out;
}

function isUnder(key: string, parentKey: string): boolean {
  return key.startsWith(parentKey + separator);
}

/** Canonical special-use attribute, or an error for one this server cannot assign. */
export function checkSpecialUse(acc: Account, use: string, exceptId = 0): string {
  if (use === '') return '';
  const canon = specialUses.find((u) => u.toLowerCase() === use.toLowerCase());
  if (!canon) throw new MailboxError(`special-use ${use} not supported`, 'USEATTR');
  // One mailbox per special use, so clients agree on where sent mail goes.
  const other = acc.db.prepare('SELECT name FROM mailbox WHERE specialuse = ? AND id != ?').pluck().get(canon, exceptId) as string | undefined;
  if (other !== undefined) throw new MailboxError(`special-use ${canon} already used by mailbox "${other}"`, 'USEATTR');
  return canon;
}

/** Creates missing parent levels of name, within the caller's transaction. */
function createParents(acc: Account, name: string): void {
  const levels = name.split(separator);
  for (let i = 1; i < levels.length; i++) {
    const n = levels.slice(0, i).join(separator);
    if (!acc.mailbox(n)) acc.createMailbox(n);
  }
}

/** Creates a mailbox and its missing parents (RFC 9051 6.3.4), with an optional special use (RFC 6154 3). */
export function createMailbox(acc: Account, name: string, specialUse = ''): MailboxRow {
  const n = validNew(acc, name);
  if (acc.mailbox(n)) throw new MailboxError('mailbox already exists', 'ALREADYEXISTS');
  return acc.db.transaction(() => {
    const use = checkSpecialUse(acc, specialUse);
    createParents(acc, n);
    return acc.createMailbox(n, use);
  })();
}

/**
 * Deletes a mailbox with its messages and metadata (RFC 9051 6.3.5). A mailbox with
 * children is refused: all our names are real mailboxes, and turning the name into a
 * \Noselect placeholder would leave a name that can neither hold mail nor be recreated
 * as-is. Message files are removed later, as other sessions may still be reading them.
 */
export function deleteMailbox(acc: Account, name: string, origin?: unknown): MailboxRow {
  const mb = acc.mailbox(name);
  if (!mb) throw new MailboxError('no such mailbox', 'NONEXISTENT');
  if (mb.name === 'Inbox') throw new MailboxError('INBOX cannot be deleted', 'CANNOT');
  const key = mailboxKey(mb.name);
  if (acc.mailboxes().some((m) => isUnder(mailboxKey(m.name), key))) throw new MailboxError('mailbox has children, delete them first', 'HASCHILDREN');
  acc.db.transaction(() => {
    acc.db.prepare('INSERT OR REPLACE INTO removedfile (id, at) SELECT id, ? FROM message WHERE mailbox_id = ?').run(Date.now(), mb.id);
    acc.db.prepare('DELETE FROM message WHERE mailbox_id = ?').run(mb.id);
    acc.db.prepare('DELETE FROM expunged WHERE mailbox_id = ?').run(mb.id);
    acc.db.prepare('DELETE FROM metadata WHERE mailbox_id = ?').run(mb.id);
    // The UIDVALIDITY counter is account-wide: a mailbox created later under this name gets a new one.
    acc.db.prepare('DELETE FROM mailbox WHERE id = ?').run(mb.id);
  })();
  acc.emit('changes', [{ type: 'mailbox', mailboxId: mb.id, name: mb.name, removed: true }] satisfies Change[], origin);
  return mb;
}

/**
 * Renames a mailbox and its children (RFC 9051 6.3.6), creating missing parents of the
 * new name. Renaming INBOX moves its messages to a new mailbox and leaves INBOX, and its
 * children, in place. Special use, metadata and UIDVALIDITY stay with each mailbox.
 * Returns the renamed mailboxes with their new names.
 */
export function renameMailbox(acc: Account, from: string, to: string, origin?: unknown): { mailbox: MailboxRow; name: string }[] {
  const src = acc.mailbox(from);
  if (!src) throw new MailboxError('no such mailbox', 'NONEXISTENT');
  const dst = validNew(acc, to);
  const srcKey = mailboxKey(src.name);
  const dstKey = mailboxKey(dst);
  if (src.name === 'Inbox') {
    if (acc.mailbox(dst)) throw new MailboxError('target mailbox already exists', 'ALREADYEXISTS');
    const uids = acc.messages(src.id).map((m) => m.uid);
    let created!: MailboxRow;
    acc.db.transaction(() => {
      createParents(acc, dst);
      created = acc.createMailbox(dst);
      if (uids.length) acc.copy(src.id, uids, created.id, true, origin);
      subscribeRenamed(acc, [[src.name, dst]]);
    })();
    return [{ mailbox: created, name: dst }];
  }
  if (dst === src.name) throw new MailboxError('mailbox already has that name', 'ALREADYEXISTS');
  if (isUnder(dstKey, srcKey)) throw new MailboxError('cannot rename a mailbox to below itself', 'CANNOT');
  const tree = acc.mailboxes().filter((m) => m.id === src.id || isUnder(mailboxKey(m.name), srcKey));
  const ids = new Set(tree.map((m) => m.id));
  const moves = tree.map((m) => ({ mailbox: m, name: valid(dst + m.name.slice(src.name.length)) }));
  for (const { name } of moves) {
    const have = acc.mailbox(name);
    if (have && !ids.has(have.id)) throw new MailboxError(`mailbox "${name}" already exists`, 'ALREADYEXISTS');
  }
  acc.db.transaction(() => {
    createParents(acc, dst);
    const set = acc.db.prepare('UPDATE mailbox SET name = ?, namekey = ? WHERE id = ?');
    // Two steps: a new name may be the old name of another mailbox in the same tree.
    for (const { mailbox } of moves) set.run(mailbox.name, `\0${mailbox.id}`, mailbox.id);
    for (const { mailbox, name } of moves) set.run(name, mailboxKey(name), mailbox.id);
    subscribeRenamed(
      acc,
      moves.map((m) => [m.mailbox.name, m.name]),
    );
  })();
  acc.emit(
    'changes',
    moves.map(({ mailbox, name }) => ({ type: 'mailbox', mailboxId: mailbox.id, name, oldName: mailbox.name })),
    origin,
  );
  return moves;
}

/**
 * Subscribes new names of subscribed mailboxes. The old names stay subscribed: the server
 * must not remove subscriptions on its own (RFC 9051 6.3.7).
 */
function subscribeRenamed(acc: Account, pairs: [string, string][]): void {
  const subs = new Set(acc.subscriptions().map(mailboxKey));
  for (const [from, to] of pairs) if (subs.has(mailboxKey(from))) subscribe(acc, to);
}

/** Adds a subscription; the name need not exist (RFC 9051 6.3.7), spelled as the mailbox if it does. */
export function subscribe(acc: Account, name: string): void {
  const n = acc.mailbox(name)?.name ?? validNew(acc, name);
  acc.db.transaction(() => {
    unsubscribe(acc, n);
    acc.db.prepare('INSERT INTO subscription (name) VALUES (?)').run(n);
  })();
}

export function unsubscribe(acc: Account, name: string): void {
  const key = mailboxKey(name);
  const del = acc.db.prepare('DELETE FROM subscription WHERE name = ?');
  for (const s of acc.subscriptions()) if (mailboxKey(s) === key) del.run(s);
}

/** Total size of all messages of the account, in bytes. */
export function quotaUsage(acc: Account): number {
  return acc.db.prepare('SELECT coalesce(sum(size), 0) FROM message').pluck().get() as number;
}

/** Whether addBytes more fit in the account's quota; limit 0 is unlimited. */
export function quotaAllows(acc: Account, limit: number, addBytes: number): boolean {
  return limit <= 0 || quotaUsage(acc) + addBytes <= limit;
}

/** Total size of messages marked \Deleted in a mailbox, for STATUS DELETED-STORAGE (RFC 9208). */
export function deletedSize(acc: Account, mailboxId: number): number {
  return acc.db.prepare('SELECT coalesce(sum(size), 0) FROM message WHERE mailbox_id = ? AND (flags & 8) != 0').pluck().get(mailboxId) as number;
}

/**
 * Checks a metadata entry name (RFC 5464 3.2) and returns it lower-cased for storage and
 * comparison. Names start with /private or /shared; entries need a name below those.
 */
export function checkEntryName(name: string, forSet: boolean): string | { error: string } {
  if (Buffer.byteLength(name) > metadataMaxName) return { error: 'entry name too long' };
  // RFC 5464 3.2: no wildcards, no NUL or other control characters, no empty components.
  if (/[*%\x00-\x1f\x7f]/.test(name)) return { error: 'entry name with wildcards or control characters' };
  if (!/^\/(private|shared)(\/[^/]+)*$/i.test(name)) return { error: 'entry name must start with /private or /shared, with non-empty components' };
  if (forSet && name.split('/').length < 3) return { error: 'entry name needs a component below /private or /shared' };
  return name.toLowerCase();
}

export interface MetadataEntry {
  name: string;
  value: Buffer;
}

/**
 * Entries of a mailbox (mailboxId 0: the server) for the requested (lower-cased) names,
 * and below them up to depth levels (Infinity for all), in name order (RFC 5464 4.2.2).
 */
export function getMetadata(acc: Account, mailboxId: number, names: string[], depth: number): MetadataEntry[] {
  const rows = acc.db.prepare('SELECT name, value FROM metadata WHERE mailbox_id = ? ORDER BY name').all(mailboxId) as MetadataEntry[];
  if (mailboxId) {
    const use = acc.mailboxById(mailboxId)?.specialuse;
    if (use) rows.push({ name: specialUseEntry, value: Buffer.from(use) });
  }
  const want = (n: string) =>
    names.some((r) => {
      if (n === r) return true;
      if (!n.startsWith(r + '/')) return false;
      return n.slice(r.length + 1).split('/').length <= depth;
    });
  return rows.filter((r) => want(r.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Sets (value) or removes (null) entries atomically (RFC 5464 4.3). The special-use entry
 * of a mailbox changes its special use (RFC 6154 4).
 */
export function setMetadata(acc: Account, mailboxId: number, entries: { name: string; value: Buffer | null }[]): void {
  for (const e of entries) {
    if (e.value && e.value.length > metadataMaxValue) throw new MailboxError('metadata value too large', `METADATA MAXSIZE ${metadataMaxValue}`);
  }
  acc.db.transaction(() => {
    const put = acc.db.prepare('INSERT INTO metadata (mailbox_id, name, value) VALUES (?, ?, ?) ON CONFLICT (mailbox_id, name) DO UPDATE SET value = excluded.value');
    const del = acc.db.prepare('DELETE FROM metadata WHERE mailbox_id = ? AND name = ?');
    for (const e of entries) {
      if (mailboxId && e.name === specialUseEntry) {
        const use = checkSpecialUse(acc, e.value?.toString('utf8').trim() ?? '', mailboxId);
        acc.db.prepare('UPDATE mailbox SET specialuse = ? WHERE id = ?').run(use, mailboxId);
      } else if (e.value) put.run(mailboxId, e.name, e.value);
      else del.run(mailboxId, e.name);
    }
    const n = acc.db.prepare('SELECT count(*) FROM metadata').pluck().get() as number;
    if (n > metadataMaxEntries) throw new MailboxError(`too many metadata entries, at most ${metadataMaxEntries}`, 'METADATA TOOMANY');
  })();
}
