// Mailbox commands: LIST, LSUB, STATUS, CREATE, SUBSCRIBE, UNSUBSCRIBE, NAMESPACE.
import { register, No, Bad } from './registry.js';
import { decodeUTF7 } from './utf7.js';
import type { Parser } from './parse.js';
import type { Session } from './session.js';
import { checkMailboxName, separator } from '../store/names.js';

function cmdCreate(s: Session, p: Parser): undefined {
  p.space();
  const name = s.mailboxArg(p);
  p.end();
  const c = checkMailboxName(name.endsWith(separator) ? name.slice(0, -1) : name);
  if ('error' in c) throw new No(c.error, 'CANNOT');
  if (s.account!.mailbox(c.name)) throw new No('mailbox already exists', 'ALREADYEXISTS');
  // RFC 9051 6.3.4: create missing parent levels too.
  const levels = c.name.split(separator);
  for (let i = 1; i <= levels.length; i++) {
    const n = levels.slice(0, i).join(separator);
    if (!s.account!.mailbox(n)) s.account!.createMailbox(n);
  }
  return;
}

function cmdSubscribe(s: Session, p: Parser, subscribe: boolean): undefined {
  p.space();
  const name = s.mailboxArg(p);
  p.end();
  const db = s.account!.db;
  if (subscribe) {
    if (!s.account!.mailbox(name)) throw new No('no such mailbox', 'NONEXISTENT');
    db.prepare('INSERT OR IGNORE INTO subscription (name) VALUES (?)').run(name);
  } else db.prepare('DELETE FROM subscription WHERE name = ?').run(name);
  return;
}

function cmdList(s: Session, p: Parser, lsub: boolean): undefined {
  p.space();
  const ref = s.mailboxArg(p);
  p.space();
  let pattern = p.listMailbox();
  p.end();
  if (!s.utf8) {
    try {
      pattern = decodeUTF7(pattern);
    } catch {
      // Keep as is.
    }
  }
  if (pattern === '') {
    // RFC 9051 6.3.9: empty pattern asks for the hierarchy delimiter.
    s.untagged(`${lsub ? 'LSUB' : 'LIST'} (\\Noselect) "${separator}" ""`);
    return;
  }
  const re = listRegexp(ref + pattern);
  const reInbox = new RegExp(re.source, 'isu');
  const mailboxes = s.account!.mailboxes();
  const names = new Set(mailboxes.map((m) => m.name));
  const subs = new Set(s.account!.subscriptions());
  for (const mb of mailboxes) {
    // RFC 9051 5.1: INBOX is case-insensitive, other names are not.
    if (mb.name === 'Inbox' ? !reInbox.test('INBOX') : !re.test(mb.name)) continue;
    if (lsub && !subs.has(mb.name)) continue;
    const attrs: string[] = [];
    const prefix = mb.name + separator;
    attrs.push([...names].some((n) => n.startsWith(prefix)) ? '\\HasChildren' : '\\HasNoChildren');
    if (mb.specialuse) attrs.push(mb.specialuse);
    if (subs.has(mb.name) && s.rev2 && !lsub) attrs.push('\\Subscribed');
    s.untagged(Buffer.concat([Buffer.from(`${lsub ? 'LSUB' : 'LIST'} (${attrs.join(' ')}) "${separator}" `), s.mailboxOut(mb.name)]));
  }
  return;
}

function cmdStatus(s: Session, p: Parser): undefined {
  p.space();
  const name = s.mailboxArg(p);
  p.space();
  p.expect('(');
  const items: string[] = [p.atom().toUpperCase()];
  while (p.maybeSpace()) items.push(p.atom().toUpperCase());
  p.expect(')');
  p.end();
  const mb = s.account!.mailbox(name);
  if (!mb) throw new No('no such mailbox', 'NONEXISTENT');
  const c = s.account!.counts(mb.id);
  const out: string[] = [];
  for (const it of items) {
    switch (it) {
      case 'MESSAGES':
        out.push(`MESSAGES ${c.messages}`);
        break;
      case 'UIDNEXT':
        out.push(`UIDNEXT ${mb.uidnext}`);
        break;
      case 'UIDVALIDITY':
        out.push(`UIDVALIDITY ${mb.uidvalidity}`);
        break;
      case 'UNSEEN':
        out.push(`UNSEEN ${c.unseen}`);
        break;
      case 'DELETED':
        out.push(`DELETED ${c.deleted}`);
        break;
      case 'SIZE':
        out.push(`SIZE ${c.size}`);
        break;
      case 'RECENT':
        out.push('RECENT 0');
        break;
      default:
        throw new Bad(`unknown status item ${it}`);
    }
  }
  s.untagged(Buffer.concat([Buffer.from('STATUS '), s.mailboxOut(mb.name), Buffer.from(` (${out.join(' ')})`)]));
  return;
}

/** LIST pattern to a regular expression: "*" matches anything, "%" anything but the separator (RFC 9051 6.3.9). */
export function listRegexp(pattern: string): RegExp {
  let re = '';
  for (const c of pattern) {
    if (c === '*') re += '.*';
    else if (c === '%') re += `[^${separator}]*`;
    else re += c.replace(/[.+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'su');
}

register(['CREATE'], { states: ['auth', 'selected'], run: (s, p) => cmdCreate(s, p) });
register(['SUBSCRIBE', 'UNSUBSCRIBE'], { states: ['auth', 'selected'], run: (s, p, c) => cmdSubscribe(s, p, c.name === 'SUBSCRIBE') });
register(['LIST', 'LSUB'], { states: ['auth', 'selected'], run: (s, p, c) => cmdList(s, p, c.name === 'LSUB') });
register(['STATUS'], { states: ['auth', 'selected'], run: (s, p) => cmdStatus(s, p) }, ['STATUS=SIZE']);
register(
  ['NAMESPACE'],
  {
    states: ['auth', 'selected'],
    run(s, p) {
      p.end();
      s.untagged(`NAMESPACE (("" "${separator}")) NIL NIL`);
      return undefined;
    },
  },
  ['NAMESPACE', 'CHILDREN', 'SPECIAL-USE'],
);
