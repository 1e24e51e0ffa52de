// NOTIFY (RFC 5465): the client says which events in which mailboxes it wants to hear about;
// the server then reports them as they happen, also for mailboxes that are not selected.
import { register, Bad, No } from './registry.js';
import type { Parser } from './parse.js';
import type { Session } from './session.js';
import { separator } from '../store/names.js';

const supported = ['MessageNew', 'MessageExpunge', 'FlagChange', 'MailboxName', 'SubscriptionChange'] as const;
type Event = (typeof supported)[number];

export type Filter =
  | { kind: 'selected' | 'selected-delayed' | 'inboxes' | 'personal' | 'subscribed' }
  | { kind: 'subtree' | 'mailboxes'; names: string[] };

export interface Group {
  filter: Filter;
  events: Set<Event>;
}

export interface NotifySpec {
  groups: Group[];
}

function parseFilter(s: Session, p: Parser): Filter {
  const kind = p.atom().toLowerCase();
  switch (kind) {
    case 'selected':
    case 'selected-delayed':
    case 'inboxes':
    case 'personal':
    case 'subscribed':
      return { kind };
    case 'subtree':
    case 'mailboxes': {
      p.space();
      return { kind, names: s.mailboxList(p) };
    }
    default:
      throw new Bad(`unknown mailbox filter ${kind}`);
  }
}

function parseEvents(p: Parser): Set<Event> {
  const events = new Set<Event>();
  if (p.take('NONE')) return events;
  p.expect('(');
  do {
    const name = p.atom();
    const ev = supported.find((e) => e.toLowerCase() === name.toLowerCase());
    // RFC 5465 3.1: an unsupported event is refused, naming the supported ones.
    if (!ev) throw new No(`event ${name} not supported`, `BADEVENT (${supported.join(' ')})`);
    if (ev === 'MessageNew' && p.peek() === 0x20 && p.buf[p.pos + 1] === 0x28) {
      // Fetch attributes for new messages are accepted; a client fetches what it needs.
      p.space();
      let depth = 0;
      do {
        const c = p.buf[p.pos++];
        if (c === undefined) throw new Bad('unterminated fetch attributes');
        if (c === 0x28) depth++;
        if (c === 0x29) depth--;
      } while (depth > 0);
    }
    events.add(ev);
  } while (p.maybeSpace());
  p.expect(')');
  // RFC 5465 5: MessageNew and MessageExpunge come together; FlagChange needs both.
  const msg = events.has('MessageNew') || events.has('MessageExpunge') || events.has('FlagChange');
  if (msg && !(events.has('MessageNew') && events.has('MessageExpunge'))) throw new Bad('MessageNew and MessageExpunge must be requested together');
  return events;
}

/** Whether a mailbox name matches a group's filter (for other than the selected mailbox). */
export function matches(s: Session, f: Filter, name: string): boolean {
  switch (f.kind) {
    case 'selected':
    case 'selected-delayed':
      return false;
    case 'inboxes':
      return name === 'Inbox';
    case 'personal':
      return true;
    case 'subscribed':
      return s.account!.subscriptions().includes(name);
    case 'mailboxes':
      return f.names.includes(name);
    case 'subtree':
      return f.names.some((n) => name === n || name.startsWith(n + separator));
  }
}

/** Events the client asked for in a mailbox; undefined when NOTIFY is not active. */
export function eventsFor(s: Session, name: string, selected: boolean): Set<Event> | undefined {
  const spec = s.notify;
  if (!spec) return undefined;
  const out = new Set<Event>();
  for (const g of spec.groups) {
    const hit = selected ? g.filter.kind === 'selected' || g.filter.kind === 'selected-delayed' : matches(s, g.filter, name);
    if (hit) g.events.forEach((e) => out.add(e));
  }
  return out;
}

function cmdNotify(s: Session, p: Parser): undefined {
  p.space();
  if (p.take('NONE')) {
    p.end();
    s.notify = undefined;
    return;
  }
  p.expect('SET');
  let status = false;
  const groups: Group[] = [];
  while (p.maybeSpace()) {
    if (!groups.length && !status && p.take('STATUS')) {
      status = true;
      continue;
    }
    p.expect('(');
    const filter = parseFilter(s, p);
    p.space();
    const events = parseEvents(p);
    p.expect(')');
    groups.push({ filter, events });
  }
  p.end();
  if (groups.length === 0) throw new Bad('no event groups');
  s.notify = { groups };
  // RFC 5465 3.1: with STATUS, the current state of the mailboxes with message events.
  if (status) {
    for (const mb of s.account!.mailboxes()) {
      if (mb.id === s.selected?.mailbox.id) continue;
      if (eventsFor(s, mb.name, false)?.has('MessageNew')) s.sendStatus(mb.id);
    }
  }
  return;
}

register(['NOTIFY'], { states: ['auth', 'selected'], run: (s, p) => cmdNotify(s, p) }, ['NOTIFY']);
