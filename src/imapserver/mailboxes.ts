// Mailbox commands: LIST with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE
// (RFC 6154) and LIST-METADATA (RFC 9590); LSUB; STATUS; CREATE with CREATE-SPECIAL-USE;
// DELETE; RENAME; SUBSCRIBE; UNSUBSCRIBE; NAMESPACE; GETMETADATA and SETMETADATA (RFC 5464);
// GETQUOTAROOT, GETQUOTA and SETQUOTA (RFC 9208).
import { ConnClosed } from '../proto/conn.js';
import { register, No, Bad, appendLimit, type Result, type State } from './registry.js';
import type { Parser } from './parse.js';
import { Session } from './session.js';
import { decodeUTF7, UTF7Error } from './utf7.js';
import { mailboxKey, type MailboxRow } from '../store/account.js';
import { separator } from '../store/names.js';
import * as ops from '../store/mailboxops.js';

/** Runs a store operation, its errors becoming NO responses with their response code. */
function op<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ops.MailboxError) throw new No(e.message, e.code);
    throw e;
  }
}

/** Name for clients: "INBOX" in upper case, also as first level of its children (RFC 9051 5.1). */
function display(name: string): string {
  return name === 'Inbox' || name.startsWith('Inbox' + separator) ? 'INBOX' + name.slice(5) : name;
}

function nameOut(s: Session, name: string): Buffer {
  return s.mailboxOut(display(name));
}

/** A reference or pattern as sent: modified UTF-7 unless UTF-8 is enabled (RFC 3501 5.1.3, RFC 6855 3). */
function decodeName(s: Session, raw: string): string {
  if (s.utf8) return raw;
  try {
    return decodeUTF7(raw);
  } catch (e) {
    if (e instanceof UTF7Error) return raw;
    throw e;
  }
}

function existing(s: Session, name: string): MailboxRow {
  const mb = s.account!.mailbox(name);
  if (!mb) throw new No('no such mailbox', 'NONEXISTENT');
  return mb;
}

/** Other sessions of the same account that have one of the mailboxes selected. */
function selectedBy(s: Session, ids: Set<number>): Session[] {
  const out: Session[] = [];
  for (const o of s.app.sessions) if (o instanceof Session && o.account === s.account && o.selected && ids.has(o.selected.mailbox.id)) out.push(o);
  return out;
}

function cmdCreate(s: Session, p: Parser): undefined {
  p.space();
  let name = s.mailboxArg(p);
  let use = '';
  if (p.maybeSpace()) {
    // RFC 4466 create parameters; RFC 6154 3: USE with special-use attributes.
    p.expect('(');
    do {
      const param = p.atom().toUpperCase();
      if (param !== 'USE') throw new Bad(`unknown CREATE parameter ${param}`);
      p.space();
      const uses = p.flagList();
      if (uses.length > 1) throw new No('a mailbox can have only one special use', 'USEATTR');
      use = uses[0] ?? '';
    } while (p.maybeSpace());
    p.expect(')');
  }
  p.end();
  // RFC 9051 6.3.4: a trailing separator only declares the intent to create children.
  if (name.endsWith(separator)) name = name.slice(0, -1);
  op(() => ops.createMailbox(s.account!, name, use));
  return;
}

function cmdDelete(s: Session, p: Parser): undefined {
  p.space();
  const name = s.mailboxArg(p);
  p.end();
  const mb = op(() => ops.deleteMailbox(s.account!, name, s));
  // RFC 2180 3 allows ending other sessions that have the mailbox selected: their
  // message sequence numbers can no longer be kept. This session only leaves it.
  for (const o of selectedBy(s, new Set([mb.id]))) {
    if (o === s) {
      s.deselect();
      s.untagged('OK [CLOSED] selected mailbox deleted');
      continue;
    }
    o.untagged('BYE selected mailbox was deleted');
    o.conn.discardBuffered();
    o.conn.abort(new ConnClosed());
  }
  return;
}

function cmdRename(s: Session, p: Parser): undefined {
  p.space();
  const from = s.mailboxArg(p);
  p.space();
  const to = s.mailboxArg(p);
  p.end();
  const moved = op(() => ops.renameMailbox(s.account!, from, to, s));
  // RFC 2180 3: sessions keep a renamed mailbox selected, under its new name.
  const names = new Map(moved.map((m) => [m.mailbox.id, m.name]));
  for (const o of selectedBy(s, new Set(names.keys()))) o.selected!.mailbox.name = names.get(o.selected!.mailbox.id)!;
  return;
}

function cmdSubscribe(s: Session, p: Parser, subscribe: boolean): undefined {
  p.space();
  const name = s.mailboxArg(p);
  p.end();
  // RFC 9051 6.3.7, 6.3.8: names need not exist; both commands succeed when nothing changes.
  op(() => (subscribe ? ops.subscribe(s.account!, name) : ops.unsubscribe(s.account!, name)));
  return;
}

const statusNames = ['MESSAGES', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'DELETED', 'SIZE', 'RECENT', 'HIGHESTMODSEQ', 'APPENDLIMIT', 'DELETED-STORAGE'];

function statusItems(s: Session, p: Parser): string[] {
  p.expect('(');
  const items: string[] = [];
  do {
    const it = p.atom().toUpperCase();
    if (!statusNames.includes(it)) throw new Bad(`unknown status item ${it}`);
    // RFC 7162 3.1: asking for HIGHESTMODSEQ enables CONDSTORE.
    if (it === 'HIGHESTMODSEQ') s.enable('CONDSTORE');
    items.push(it);
  } while (p.maybeSpace());
  p.expect(')');
  return items;
}

function quotaLimit(s: Session): number {
  return s.app.config.domains.Accounts[s.accountName!]?.QuotaMessageSize ?? 0;
}

/** Largest message APPEND accepts now (RFC 7889): the fixed limit, or less when the quota leaves less room. */
function appendLimitNow(s: Session): number {
  const q = quotaLimit(s);
  return q > 0 ? Math.max(0, Math.min(appendLimit, q - ops.quotaUsage(s.account!))) : appendLimit;
}

function statusResponse(s: Session, mb: MailboxRow, items: string[]): void {
  const acc = s.account!;
  const c = acc.counts(mb.id);
  const vals = items.map((it) => {
    switch (it) {
      case 'MESSAGES':
        return c.messages;
      case 'UIDNEXT':
        return mb.uidnext;
      case 'UIDVALIDITY':
        return mb.uidvalidity;
      case 'UNSEEN':
        return c.unseen;
      case 'DELETED':
        return c.deleted;
      case 'SIZE':
        return c.size;
      case 'RECENT':
        return 0;
      case 'HIGHESTMODSEQ':
        return mb.highestmodseq;
      case 'APPENDLIMIT':
        return appendLimitNow(s);
      default:
        // DELETED-STORAGE, in units of 1024 octets (RFC 9208).
        return Math.ceil(ops.deletedSize(acc, mb.id) / 1024);
    }
  });
  s.untagged(Buffer.concat([Buffer.from('STATUS '), nameOut(s, mb.name), Buffer.from(` (${items.map((it, i) => `${it} ${vals[i]}`).join(' ')})`)]));
}

function cmdStatus(s: Session, p: Parser): undefined {
  p.space();
  const name = s.mailboxArg(p);
  p.space();
  const items = statusItems(s, p);
  p.end();
  statusResponse(s, existing(s, name), items);
  return;
}

/** LIST pattern to a regular expression: "*" matches anything, "%" anything but the separator (RFC 9051 6.3.9). */
export function listRegexp(pattern: string, flags = 'su'): RegExp {
  let re = '';
  for (const c of pattern) {
    if (c === '*') re += '.*';
    else if (c === '%') re += `[^${separator}]*`;
    else re += c.replace(/[.+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, flags);
}

const selectOptions = ['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE'];
const returnOptions = ['SUBSCRIBED', 'CHILDREN', 'SPECIAL-USE', 'STATUS', 'METADATA'];

function cmdList(s: Session, p: Parser, lsub: boolean): undefined {
  p.space();
  let extended = false;
  const select = new Set<string>();
  if (!lsub && p.take('(')) {
    // RFC 5258 3: selection options; unknown ones are an error.
    extended = true;
    for (let first = true; !p.take(')'); first = false) {
      if (!first) p.space();
      const o = p.atom().toUpperCase();
      if (!selectOptions.includes(o)) throw new Bad(`unknown LIST selection option ${o}`);
      select.add(o);
    }
    p.space();
  }
  if (select.has('RECURSIVEMATCH') && !select.has('SUBSCRIBED') && !select.has('SPECIAL-USE')) throw new Bad('RECURSIVEMATCH needs another selection option');
  const ref = decodeName(s, p.astring());
  p.space();
  const raw: string[] = [];
  if (!lsub && p.take('(')) {
    // RFC 5258 3: several patterns.
    extended = true;
    do raw.push(p.listMailbox());
    while (p.maybeSpace());
    p.expect(')');
  } else raw.push(p.listMailbox());
  const ret = new Set<string>();
  let status: string[] | undefined;
  let metadata: string[] | undefined;
  if (!lsub && p.take(' RETURN (')) {
    extended = true;
    for (let first = true; !p.take(')'); first = false) {
      if (!first) p.space();
      const o = p.atom().toUpperCase();
      if (!returnOptions.includes(o)) throw new Bad(`unknown LIST return option ${o}`);
      if (o === 'STATUS') {
        p.space();
        status = statusItems(s, p);
      } else if (o === 'METADATA') {
        p.space();
        metadata = entryNames(p, false);
      }
      ret.add(o);
    }
  }
  p.end();
  const cmd = lsub ? 'LSUB' : 'LIST';
  if (!extended && raw[0] === '') {
    // RFC 9051 6.3.9: an empty pattern asks for the hierarchy delimiter.
    s.untagged(`${cmd} (\\Noselect) "${separator}" ""`);
    return;
  }
  // INBOX is case-insensitive, also as the first level of its children.
  const patterns = raw.filter((x) => x !== '').map((x) => (ref + decodeName(s, x)).replace(/^inbox(?=\/|$)/i, 'INBOX'));
  const matcher = (pats: string[]) => {
    const res = pats.map((x) => listRegexp(x));
    const resInbox = pats.map((x) => listRegexp(x, 'isu'));
    return (n: string) => (n === 'Inbox' ? resInbox.some((r) => r.test('INBOX')) : res.some((r) => r.test(display(n))));
  };
  const matches = matcher(patterns);
  // RFC 9051 6.3.9, RFC 3501 6.3.9: levels of hierarchy are returned for a trailing "%".
  const matchesLevel = matcher(patterns.filter((x) => x.endsWith('%')));

  const acc = s.account!;
  const boxes = new Map(acc.mailboxes().map((m) => [mailboxKey(m.name), m]));
  const subs = new Set(acc.subscriptions().map(mailboxKey));
  // Every mailbox and subscribed name, and the hierarchy levels above them.
  const names = new Map<string, string>();
  const parentKeys = new Set<string>();
  const add = (n: string, isBox: boolean) => {
    const levels = n.split(separator);
    for (let i = levels.length; i >= 1; i--) {
      const x = levels.slice(0, i).join(separator);
      const k = mailboxKey(x);
      if (i < levels.length && isBox) parentKeys.add(k);
      if (!names.has(k)) names.set(k, boxes.get(k)?.name ?? x);
    }
  };
  for (const m of boxes.values()) add(m.name, true);
  for (const n of acc.subscriptions()) add(n, false);

  const bySubscription = lsub || select.has('SUBSCRIBED');
  const byUse = select.has('SPECIAL-USE');
  const selective = bySubscription || byUse;
  const satisfies = (k: string) => (bySubscription ? subs.has(k) : boxes.has(k)) && (!byUse || !!boxes.get(k)?.specialuse);
  // Names with a descendant that is selected but matches no pattern: returned for
  // RECURSIVEMATCH with CHILDINFO (RFC 5258 3.5), by LSUB with \Noselect (RFC 3501
  // 6.3.9), and by LIST as a hierarchy level when they are no mailbox (RFC 9051 6.3.9).
  const childInfo = new Set<string>();
  for (const [k, n] of names) {
    if (!satisfies(k) || matches(n)) continue;
    const levels = n.split(separator);
    for (let i = 1; i < levels.length; i++) childInfo.add(mailboxKey(levels.slice(0, i).join(separator)));
  }
  const criteria = [bySubscription && '"SUBSCRIBED"', byUse && '"SPECIAL-USE"'].filter(Boolean).join(' ');

  const sorted = [...names].sort(([, a], [, b]) => (display(a) < display(b) ? -1 : display(a) > display(b) ? 1 : 0));
  for (const [k, n] of sorted) {
    if (!matches(n)) continue;
    const mb = boxes.get(k);
    const selected = satisfies(k);
    if (!selected) {
      const placeholder = select.has('RECURSIVEMATCH') || ((lsub || (!selective && !mb)) && matchesLevel(n));
      if (!placeholder || !childInfo.has(k)) continue;
    }
    const attrs: string[] = [];
    // RFC 5258 3: \NonExistent (implying \Noselect) for names that are no mailbox.
    if (lsub) {
      if (!selected || !mb) attrs.push('\\Noselect');
    } else if (!mb) attrs.push(selective ? '\\NonExistent' : '\\Noselect');
    // RFC 3348, RFC 5258 4: children attributes, always included.
    if (parentKeys.has(k)) attrs.push('\\HasChildren');
    else if (mb) attrs.push('\\HasNoChildren');
    if (!lsub && (select.has('SUBSCRIBED') || ret.has('SUBSCRIBED')) && subs.has(k)) attrs.push('\\Subscribed');
    // RFC 6154 2: special-use attributes are returned even when not asked for.
    if (mb?.specialuse) attrs.push(mb.specialuse);
    const ext = select.has('RECURSIVEMATCH') && childInfo.has(k) ? ` ("CHILDINFO" (${criteria}))` : '';
    s.untagged(Buffer.concat([Buffer.from(`${cmd} (${attrs.join(' ')}) "${separator}" `), nameOut(s, n), Buffer.from(ext)]));
    // RFC 5819 2: STATUS of selectable mailboxes follows their LIST response.
    if (mb && status) statusResponse(s, mb, status);
    if (mb && metadata) metadataResponse(s, mb, ops.getMetadata(acc, mb.id, metadata, 0));
  }
  return;
}

/** One entry name (RFC 5464 3.2); syntax errors are BAD. */
function entryName(p: Parser, forSet: boolean): string {
  const r = ops.checkEntryName(p.astring(), forSet);
  if (typeof r !== 'string') throw new Bad(r.error);
  return r;
}

/** entries: one entry name or a parenthesized list (RFC 5464 5). */
function entryNames(p: Parser, forSet: boolean): string[] {
  if (!p.take('(')) return [entryName(p, forSet)];
  const names: string[] = [];
  do names.push(entryName(p, forSet));
  while (p.maybeSpace());
  p.expect(')');
  return names;
}

/** Quoted string when it is plain ASCII, else a literal; literal8 when it holds NUL (RFC 5464 5). */
function stringOut(v: Buffer): Buffer {
  if (v.length < 1024 && v.every((c) => c >= 0x20 && c < 0x7f)) return Buffer.from(`"${v.toString('latin1').replace(/(["\\])/g, '\\$1')}"`);
  return Buffer.concat([Buffer.from(`${v.includes(0) ? '~' : ''}{${v.length}}\r\n`), v]);
}

/** METADATA response (RFC 5464 4.4); mb undefined for server entries. */
function metadataResponse(s: Session, mb: MailboxRow | undefined, entries: ops.MetadataEntry[]): void {
  if (!entries.length) return;
  const parts: Buffer[] = [Buffer.from('METADATA '), mb ? nameOut(s, mb.name) : Buffer.from('""'), Buffer.from(' (')];
  entries.forEach((e, i) => parts.push(Buffer.from(i ? ' ' : ''), stringOut(Buffer.from(e.name)), Buffer.from(' '), stringOut(e.value)));
  parts.push(Buffer.from(')'));
  s.untagged(Buffer.concat(parts));
}

/** Mailbox of a metadata command; "" stands for the server (RFC 5464 3.1). */
function metadataMailbox(s: Session, name: string): MailboxRow | undefined {
  return name === '' ? undefined : existing(s, name);
}

function cmdGetMetadata(s: Session, p: Parser): Result {
  p.space();
  let maxSize = -1;
  let depth = 0;
  if (p.take('(')) {
    // RFC 5464 4.2.1, 4.2.2: MAXSIZE and DEPTH options.
    do {
      const o = p.atom().toUpperCase();
      p.space();
      if (o === 'MAXSIZE') maxSize = p.number();
      else if (o === 'DEPTH') {
        const d = p.atom().toLowerCase();
        if (d !== '0' && d !== '1' && d !== 'infinity') throw new Bad('DEPTH must be 0, 1 or infinity');
        depth = d === 'infinity' ? Infinity : Number(d);
      } else throw new Bad(`unknown GETMETADATA option ${o}`);
    } while (p.maybeSpace());
    p.expect(')');
    p.space();
  }
  const name = s.mailboxArg(p);
  p.space();
  const names = entryNames(p, false);
  p.end();
  const mb = metadataMailbox(s, name);
  let longest = -1;
  const entries = ops.getMetadata(s.account!, mb?.id ?? 0, names, depth).filter((e) => {
    if (maxSize < 0 || e.value.length <= maxSize) return true;
    longest = Math.max(longest, e.value.length);
    return false;
  });
  metadataResponse(s, mb, entries);
  // RFC 5464 4.2.1: the size of the largest entry left out.
  return longest >= 0 ? `[METADATA LONGENTRIES ${longest}] GETMETADATA completed` : undefined;
}

function cmdSetMetadata(s: Session, p: Parser): undefined {
  p.space();
  const name = s.mailboxArg(p);
  p.space();
  p.expect('(');
  const entries: { name: string; value: Buffer | null }[] = [];
  do {
    const entry = entryName(p, true);
    p.space();
    // RFC 5464 4.3: NIL removes the entry; values may be binary (literal8).
    const value = p.take('NIL') ? null : p.peek() === 0x22 ? p.quoted() : p.literal(true);
    entries.push({ name: entry, value });
  } while (p.maybeSpace());
  p.expect(')');
  p.end();
  const mb = metadataMailbox(s, name);
  // Private entries are supported everywhere, so METADATA NOPRIVATE never applies.
  op(() => ops.setMetadata(s.account!, mb?.id ?? 0, entries));
  return;
}

/** QUOTA response for the account's root "" (RFC 9208): only limited resources are listed, STORAGE in KiB (5.1). */
function quotaResponse(s: Session): void {
  const limit = quotaLimit(s);
  if (limit > 0) s.untagged(`QUOTA "" (STORAGE ${Math.ceil(ops.quotaUsage(s.account!) / 1024)} ${Math.floor(limit / 1024)})`);
}

function cmdGetQuotaRoot(s: Session, p: Parser): undefined {
  p.space();
  const mb = existing(s, s.mailboxArg(p));
  p.end();
  // RFC 9208 4.1.2: one quota root, "", for all mailboxes of the account.
  s.untagged(Buffer.concat([Buffer.from('QUOTAROOT '), nameOut(s, mb.name), Buffer.from(' ""')]));
  quotaResponse(s);
  return;
}

function cmdGetQuota(s: Session, p: Parser): undefined {
  p.space();
  const root = p.astring();
  p.end();
  if (root !== '') throw new No('no such quota root', 'NONEXISTENT');
  quotaResponse(s);
  return;
}

function cmdSetQuota(_s: Session, p: Parser): undefined {
  p.space();
  p.astring();
  p.space();
  p.expect('(');
  for (let first = true; !p.take(')'); first = false) {
    if (!first) p.space();
    p.atom();
    p.space();
    p.number();
  }
  p.end();
  // RFC 9208 4.1.3: a server may refuse; limits come from the account configuration.
  throw new No('quota is set by the administrator in domains.conf', 'NOPERM');
}

const authed: { states: State[] } = { states: ['auth', 'selected'] };
register(['CREATE'], { ...authed, run: cmdCreate }, ['CREATE-SPECIAL-USE']);
register(['DELETE'], { ...authed, run: cmdDelete });
register(['RENAME'], { ...authed, run: cmdRename });
register(['SUBSCRIBE', 'UNSUBSCRIBE'], { ...authed, run: (s, p, c) => cmdSubscribe(s, p, c.name === 'SUBSCRIBE') });
register(['LIST', 'LSUB'], { ...authed, run: (s, p, c) => cmdList(s, p, c.name === 'LSUB') }, ['CHILDREN', 'SPECIAL-USE', 'LIST-EXTENDED', 'LIST-STATUS']);
register(['STATUS'], { ...authed, run: cmdStatus }, ['STATUS=SIZE']);
register(['GETMETADATA'], { ...authed, run: cmdGetMetadata }, ['METADATA', 'LIST-METADATA']);
register(['SETMETADATA'], { ...authed, run: cmdSetMetadata });
register(['GETQUOTAROOT'], { ...authed, run: cmdGetQuotaRoot }, ['QUOTA', 'QUOTA=RES-STORAGE']);
register(['GETQUOTA'], { ...authed, run: cmdGetQuota });
register(['SETQUOTA'], { ...authed, run: cmdSetQuota });
register(
  ['NAMESPACE'],
  {
    ...authed,
    run(s, p) {
      p.end();
      s.untagged(`NAMESPACE (("" "${separator}")) NIL NIL`);
      return undefined;
    },
  },
  ['NAMESPACE'],
);
