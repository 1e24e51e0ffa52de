// SEARCH with ESEARCH and SEARCHRES, SORT, THREAD, and multi-mailbox ESEARCH (RFC 7377).
import fs from 'node:fs/promises';
import { register, Bad, No, type CommandContext } from './registry.js';
import { parseSearch, evaluate, searchResponse, type MessageSource, type SearchProgram } from './search.js';
import { parseSort, sortMessages, sortResponse } from './sort.js';
import { parseThread, threadMessages, threadResponse } from './thread.js';
import type { Parser } from './parse.js';
import type { Session } from './session.js';
import type { Account, MailboxRow, MessageRow } from '../store/account.js';
import { astringOut } from './parse.js';

/**
 * The selected mailbox's messages as the client numbers them: messages it has not been told
 * about yet are left out, and removed ones it still counts stay as placeholders.
 */
function rowsOf(s: Session, mailboxId: number, uids: readonly number[]): MessageRow[] {
  const byUid = new Map(s.account!.messages(mailboxId).map((r) => [r.uid, r]));
  return uids.map(
    (uid) =>
      byUid.get(uid) ?? { id: -1, mailboxId, uid, modseq: 0, createmodseq: 0, flags: 0, keywords: [], size: 0, prefixSize: 0, received: 0, savedate: null, ghost: true },
  );
}

function source(acc: Account, rows: MessageRow[]): MessageSource {
  return {
    rows,
    part: (r) => acc.part(r),
    read: (r) => acc.readMessage(r),
    // Only the header is read for header keys: prefix plus the file up to the body.
    async header(r) {
      const part = acc.part(r);
      if (!part) return acc.readMessage(r);
      const prefix = acc.prefix(r);
      const n = Math.max(0, part.body - prefix.length);
      const fh = await fs.open(acc.messagePath(r.id));
      try {
        const b = Buffer.alloc(n);
        const { bytesRead } = await fh.read(b, 0, n, 0);
        return Buffer.concat([prefix, b.subarray(0, bytesRead)]);
      } finally {
        await fh.close();
      }
    },
  };
}

async function run(s: Session, program: SearchProgram, rows: MessageRow[]): Promise<number[]> {
  if (program.modseq) s.enable('CONDSTORE');
  return evaluate(program, { ...source(s.account!, rows), saved: s.saved, now: s.app.clock.now() });
}

async function cmdSearch(s: Session, p: Parser, c: CommandContext): Promise<undefined> {
  s.requireUID(c.uid);
  const program = parseSearch(p, { utf8: s.utf8 });
  const rows = rowsOf(s, s.selected!.mailbox.id, s.selected!.uids);
  let uids: number[];
  try {
    uids = await run(s, program, rows);
  } catch (e) {
    // RFC 5182 2.1: a failed SEARCH with SAVE empties the saved result.
    if (program.returns?.has('SAVE')) s.saved = [];
    throw e;
  }
  const r = searchResponse(program, uids, { tag: c.tag, uid: c.uid, rev2: s.rev2 || program.returns !== undefined, rows });
  if (r.save) s.saved = r.save;
  if (r.response) s.untagged(r.response);
  return undefined;
}

async function cmdSort(s: Session, p: Parser, c: CommandContext): Promise<undefined> {
  s.requireUID(c.uid);
  const { criteria, program } = parseSort(p, { utf8: s.utf8 });
  const rows = rowsOf(s, s.selected!.mailbox.id, s.selected!.uids);
  const uids = await run(s, program, rows);
  const sorted = await sortMessages(criteria, uids, source(s.account!, rows));
  s.untagged(sortResponse(program, sorted, { uid: c.uid, rows }));
  return undefined;
}

async function cmdThread(s: Session, p: Parser, c: CommandContext): Promise<undefined> {
  s.requireUID(c.uid);
  const { algorithm, program } = parseThread(p, { utf8: s.utf8 });
  const rows = rowsOf(s, s.selected!.mailbox.id, s.selected!.uids);
  const uids = await run(s, program, rows);
  const threads = await threadMessages(algorithm, uids, source(s.account!, rows));
  s.untagged(threadResponse(threads, { uid: c.uid, rows }));
  return undefined;
}

/** RFC 7377 2: the mailboxes named by the source options of "ESEARCH IN (...)". */
function searchSources(s: Session, p: Parser): MailboxRow[] {
  const acc = s.account!;
  const all = acc.mailboxes();
  const out = new Map<number, MailboxRow>();
  const add = (mb: MailboxRow | undefined) => mb && out.set(mb.id, mb);
  p.expect('(');
  do {
    const kw = p.atom().toLowerCase();
    if (kw === 'selected' || kw === 'selected-delayed') add(s.selected?.mailbox);
    else if (kw === 'inboxes') add(acc.mailbox('Inbox'));
    else if (kw === 'personal') all.forEach(add);
    else if (kw === 'subscribed') {
      const subs = new Set(acc.subscriptions());
      all.filter((m) => subs.has(m.name)).forEach(add);
    } else if (kw === 'subtree' || kw === 'subtree-one' || kw === 'mailboxes') {
      p.space();
      for (const n of s.mailboxList(p)) {
        const base = acc.mailbox(n);
        if (kw === 'mailboxes') add(base);
        else {
          add(base);
          const prefix = (base?.name ?? n) + '/';
          all.filter((m) => m.name.startsWith(prefix) && (kw === 'subtree' || !m.name.slice(prefix.length).includes('/'))).forEach(add);
        }
      }
    } else throw new Bad(`unknown search source ${kw}`);
  } while (p.maybeSpace());
  p.expect(')');
  return [...out.values()];
}

async function cmdESearch(s: Session, p: Parser, c: CommandContext): Promise<undefined> {
  p.space();
  if (!p.take('IN ')) throw new Bad('expected IN (source options)');
  const boxes = searchSources(s, p);
  const program = parseSearch(p, { utf8: s.utf8 });
  // RFC 7377 2.1: SAVE is only for the selected mailbox in a regular SEARCH.
  if (program.returns?.has('SAVE')) throw new Bad('SAVE not allowed with multi-mailbox search');
  for (const mb of boxes) {
    const rows = mb.id === s.selected?.mailbox.id ? rowsOf(s, mb.id, s.selected.uids) : s.account!.messages(mb.id);
    const uids = await run(s, { ...program, key: replaceSeqKeys(program.key) }, rows);
    if (uids.length === 0) continue;
    const r = searchResponse(program, uids, { tag: c.tag, uid: true, rev2: true, rows });
    if (!r.response) continue;
    // RFC 7377 2.1: the correlator names the mailbox and its UIDVALIDITY.
    const head = Buffer.from(`ESEARCH (TAG "${c.tag}" MAILBOX `);
    const tail = r.response.slice(`ESEARCH (TAG "${c.tag}"`.length);
    s.untagged(Buffer.concat([head, astringOut(s.utf8 ? mb.name : mailboxUTF7(s, mb.name), s.utf8), Buffer.from(` UIDVALIDITY ${mb.uidvalidity}${tail}`)]));
  }
  return undefined;
}

function mailboxUTF7(s: Session, name: string): string {
  return s.mailboxOut(name).toString('latin1').replace(/^"|"$/g, '');
}

/** RFC 7377 2: message sequence numbers have no meaning across mailboxes. */
function replaceSeqKeys(k: SearchProgram['key']): SearchProgram['key'] {
  if (k.type === 'seq' && !k.uid) throw new No('message sequence numbers are not allowed in a multi-mailbox search', 'CANNOT');
  if (k.type === 'and') return { type: 'and', keys: k.keys.map(replaceSeqKeys) };
  if (k.type === 'or') return { type: 'or', a: replaceSeqKeys(k.a), b: replaceSeqKeys(k.b) };
  if (k.type === 'not') return { type: 'not', key: replaceSeqKeys(k.key) };
  return k;
}

register(['SEARCH', 'UID SEARCH'], { states: ['selected'], run: cmdSearch }, ['ESEARCH', 'SEARCHRES', 'WITHIN']);
register(['SORT', 'UID SORT'], { states: ['selected'], run: cmdSort }, ['SORT', 'SORT=DISPLAY']);
register(['THREAD', 'UID THREAD'], { states: ['selected'], run: cmdThread }, ['THREAD=ORDEREDSUBJECT', 'THREAD=REFERENCES']);
register(['ESEARCH'], { states: ['auth', 'selected'], run: cmdESearch }, ['MULTISEARCH']);
