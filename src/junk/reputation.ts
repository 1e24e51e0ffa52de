// Sender reputation per account, from earlier messages and how they were classified later,
// following mox's steps (smtpserver/reputation.go): the From address, addresses the account
// wrote to, the From domain and its organizational domain (RFC 7489 3.2), verified DKIM and SPF
// domains, then the remote IP and its networks. The first step that finds messages decides.
//
// Every query reads at most a fixed number of rows through an index on (property, received),
// newest first, and only classified messages are looked at, so a decision costs the same in an
// account with a million messages as in an empty one.
import type Database from 'better-sqlite3';
import type { Account } from '../store/account.js';
import { Flag } from '../store/flags.js';
import type { JunkSettings } from './settings.js';

/** What is known about an incoming message's sender, in the form stored with messages. */
export interface Sender {
  remoteIP: string;
  /** IPv4 /26, /21, /16 or IPv6 /64, /48, /32, as stored (store/account.ts MessageMeta). */
  remoteIPMasks: [string, string, string];
  ipv4: boolean;
  ehloDomain: string;
  ehloValidated: boolean;
  mailFromDomain: string;
  mailFromValidated: boolean;
  msgFrom: string;
  msgFromDomain: string;
  msgFromOrgDomain: string;
  /** DMARC pass for the From domain. */
  msgFromValidated: boolean;
  dkimDomains: string[];
}

export type Method = 'msgfromfull' | 'msgtofull' | 'msgfromdomain' | 'msgfromorgdomain' | 'msgtodomain' | 'msgtoorgdomain' | 'dkimspf' | 'ip1' | 'ip2' | 'ip3' | 'none';

export interface Reputation {
  /** undefined: no signal either way. */
  junk?: boolean;
  /** Strong enough to decide without looking at the content. */
  conclusive: boolean;
  method: Method;
}

interface Row {
  spam: number;
  msgfrom: string;
  msgfromvalidated: number;
}

export type Class = 'junk' | 'ham' | undefined;

const day = 86400_000;
const year = 365 * day;

/** The mailboxes that classify the messages in them, by id. */
export interface MailboxRoles {
  junk: Set<number>;
  inbox: Set<number>;
  notJunk: Set<number>;
}

export function mailboxRoles(acc: Account, s: JunkSettings): MailboxRoles {
  const r: MailboxRoles = { junk: new Set(), inbox: new Set(), notJunk: new Set() };
  const notJunk = new Set(s.notJunkMailboxes.map((n) => n.toLowerCase()));
  for (const mb of acc.mailboxes()) {
    const name = mb.name.toLowerCase();
    if (mb.specialuse === '\\Junk' || name === 'junk') r.junk.add(mb.id);
    else if (name === 'inbox') r.inbox.add(mb.id);
    else if (notJunk.has(name)) r.notJunk.add(mb.id);
  }
  return r;
}

/**
 * What a message counts as, for reputation and for training: its $Junk/$NotJunk flags, else its
 * mailbox: Junk, Inbox (each after it was kept there a while) and the not-junk mailboxes. Others
 * (Rejects, Trash, Drafts, folders of the user's own) say nothing.
 */
export function classOf(m: { flags: number; mailbox_id: number; received: number }, roles: MailboxRoles, s: JunkSettings, now: number): Class {
  const junk = (m.flags & Flag.Junk) !== 0;
  const notJunk = (m.flags & Flag.NotJunk) !== 0;
  if (junk !== notJunk) return junk ? 'junk' : 'ham';
  if (junk) return undefined;
  if (roles.notJunk.has(m.mailbox_id)) return 'ham';
  const kept = s.keptMs > 0 && m.received <= now - s.keptMs;
  if (kept && roles.junk.has(m.mailbox_id)) return 'junk';
  if (kept && roles.inbox.has(m.mailbox_id)) return 'ham';
  return undefined;
}

const statements = new WeakMap<Database.Database, Map<string, Database.Statement>>();

function stmt(db: Database.Database, sql: string): Database.Statement {
  let m = statements.get(db);
  if (!m) statements.set(db, (m = new Map()));
  let st = m.get(sql);
  if (!st) m.set(sql, (st = db.prepare(sql)));
  return st;
}

/**
 * The history is the filter's record of classified messages (trained, in junkfilter.db), kept in
 * step with the messages by the trainer: unclassified mail is not in it, so each lookup reads
 * only rows that count.
 */
export function reputation(acc: Account, history: Database.Database, snd: Sender, now: number): Reputation {
  /** Newest classified messages with the property; with a filter, among the newest few. */
  const classified = (col: string, value: string, maxAge: number, limit: number, filter?: (r: Row) => boolean) => {
    const n = filter ? Math.max(50, limit * 4) : limit;
    const rows = stmt(history, `SELECT spam, msgfrom, msgfromvalidated FROM trained WHERE ${col} = ? AND received >= ? ORDER BY received DESC LIMIT ${n}`).all(value, now - maxAge) as Row[];
    return (filter ? rows.filter(filter) : rows).slice(0, limit).map((r) => ({ ...r, junk: r.spam === 1 }));
  };
  const sentTo = (col: string, value: string, maxAge: number) => stmt(acc.db, `SELECT 1 FROM recipient WHERE ${col} = ? AND sent >= ? LIMIT 1`).get(value, now - maxAge) !== undefined;

  if (snd.msgFromDomain) {
    // The same From address: the last one or two messages decide, conclusively when verified.
    const full = classified('msgfrom', snd.msgFrom, 3 * year, 2, (r) => !!r.msgfromvalidated === snd.msgFromValidated);
    if (full.length) return { junk: full[0]!.junk && (full.length === 1 || full[1]!.junk), conclusive: snd.msgFromValidated, method: 'msgfromfull' };
    if (!snd.msgFromValidated) {
      // Verified mail came from this address before, this one is not: likely forged.
      const v = classified('msgfrom', snd.msgFrom, 3 * year, 2, (r) => !!r.msgfromvalidated);
      if (v.length) return { junk: true, conclusive: v[0]!.junk && (v.length === 1 || v[1]!.junk), method: 'msgfromfull' };
    }
    if (sentTo('address', snd.msgFrom, 3 * year)) return { junk: false, conclusive: true, method: 'msgtofull' };
    for (const org of [false, true]) {
      const col = org ? 'msgfromorgdomain' : 'msgfromdomain';
      const value = org ? snd.msgFromOrgDomain : snd.msgFromDomain;
      const method = org ? 'msgfromorgdomain' : 'msgfromdomain';
      const msgs = classified(col, value, 2 * year, 20, (r) => !!r.msgfromvalidated === snd.msgFromValidated);
      if (msgs.length) {
        const ham = msgs.filter((m) => !m.junk).length;
        if ((100 * ham) / msgs.length > 80) return { junk: false, conclusive: true, method };
        // Only conclusive with spam from at least 3 different addresses of the domain.
        if (ham === 0) return { junk: true, conclusive: new Set(msgs.map((m) => m.msgfrom)).size >= 3, method };
        return { conclusive: false, method };
      }
      if (!snd.msgFromValidated) {
        const v = classified(col, value, 2 * year, 2, (r) => !!r.msgfromvalidated);
        if (v.length) return { junk: true, conclusive: v[0]!.junk && (v.length === 1 || v[1]!.junk), method };
      }
      if (sentTo(org ? 'orgdomain' : 'domain', value, 2 * year)) return { junk: false, conclusive: true, method: org ? 'msgtoorgdomain' : 'msgtodomain' };
    }
  }

  // Verified DKIM and SPF identities: the share of junk among their recent messages.
  const signals: number[] = [];
  let most = 0;
  for (const d of snd.dkimDomains) {
    const msgs = stmt(
      history,
      'SELECT t.spam FROM traineddkim d JOIN trained t ON t.msgid = d.msgid WHERE d.domain = ? AND d.received >= ? ORDER BY d.received DESC LIMIT 50',
    ).all(d, now - year / 2) as { spam: number }[];
    if (msgs.length) {
      signals.push(msgs.filter((m) => m.spam).length / msgs.length);
      most = Math.max(most, msgs.length);
    }
  }
  let spf: ReturnType<typeof classified> = [];
  if (snd.mailFromValidated && snd.mailFromDomain) spf = classified('mailfromdomain', snd.mailFromDomain, year / 2, 50);
  if (!spf.length && snd.ehloValidated && snd.ehloDomain) spf = classified('ehlodomain', snd.ehloDomain, year / 2, 50);
  if (spf.length) {
    signals.push(spf.filter((m) => m.junk).length / spf.length);
    most = Math.max(most, spf.length);
  }
  if (signals.length) {
    const ham = signals.filter((p) => p < 0.1).length;
    const spam = signals.filter((p) => p > 0.9).length;
    if (ham && !spam) return { junk: false, conclusive: true, method: 'dkimspf' };
    if (spam && !ham) return { junk: true, conclusive: most > 1, method: 'dkimspf' };
    return { conclusive: false, method: 'dkimspf' };
  }

  // The IP, then wider networks, which need more messages to be conclusive.
  const ipSteps: [string, string, number, Method][] = snd.ipv4
    ? [
        ['remoteip', snd.remoteIP, 2, 'ip1'],
        ['ip1', snd.remoteIPMasks[0], 5, 'ip2'],
        ['ip2', snd.remoteIPMasks[1], 10, 'ip3'],
      ]
    : [
        ['ip1', snd.remoteIPMasks[0], 2, 'ip1'],
        ['ip2', snd.remoteIPMasks[1], 5, 'ip2'],
        ['ip3', snd.remoteIPMasks[2], 10, 'ip3'],
      ];
  for (const [col, value, need, method] of ipSteps) {
    if (!value) continue;
    const msgs = classified(col, value, year / 4, 50);
    if (!msgs.length) continue;
    const pspam = msgs.filter((m) => m.junk).length / msgs.length;
    const junk = pspam < 0.25 ? false : pspam > 0.75 ? true : undefined;
    return { junk, conclusive: msgs.length >= need && (pspam <= 0.1 || pspam >= 0.9), method };
  }
  return { conclusive: false, method: 'none' };
}
