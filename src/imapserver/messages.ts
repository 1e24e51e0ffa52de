// Message commands of the selected state: FETCH, STORE, EXPUNGE, CLOSE, UNSELECT.
import { register, No, Bad } from './registry.js';
import { parseFetchAtts, fetchItems, needsContent, needsPart, setsSeen, FetchError, type Fetched } from './fetch.js';
import type { Parser } from './parse.js';
import type { Session } from './session.js';
import { parseMessage } from '../message/part.js';
import { Flag, flagList, flagNames } from '../store/flags.js';

async function cmdFetch(s: Session, p: Parser, uid: boolean): Promise<undefined> {
  p.space();
  const set = p.seqSet();
  p.space();
  const atts = parseFetchAtts(p);
  p.end();
  const sel = s.selected!;
  const uids = s.resolve(set, uid);
  const withPart = needsPart(atts);
  const content = needsContent(atts) || withPart;
  const markSeen = setsSeen(atts) && !sel.readOnly;
  const acc = s.account!;
  for (const u of uids) {
    let row = acc.message(sel.mailbox.id, u);
    if (!row) continue; // Expunged by another session; the EXPUNGE comes later.
    const seq = s.seqOf(u);
    const f: Fetched = { row, seq };
    if (content) f.msg = await acc.readMessage(row);
    if (withPart) f.part = acc.part(row) ?? parseMessage(f.msg!);
    let flagsChanged = false;
    if (markSeen && !(row.flags & Flag.Seen)) {
      row = acc.storeFlags(sel.mailbox.id, [u], '+', ['\\Seen'], s)[0] ?? row;
      f.row = row;
      flagsChanged = true;
    }
    let items: Buffer[];
    try {
      items = fetchItems(f, atts, { utf8: s.utf8, uid, condstore: false });
    } catch (e) {
      if (e instanceof FetchError) throw new No(e.message, e.code);
      throw e;
    }
    if (flagsChanged && !atts.some((a) => a.name === 'FLAGS')) items.push(Buffer.from(` FLAGS (${flagList(row.flags, row.keywords).join(' ')})`));
    s.conn.write(Buffer.concat([Buffer.from(`* ${seq} FETCH (`), ...items, Buffer.from(')\r\n')]));
    if (content) await s.conn.drain();
  }
  return;
}

function cmdStore(s: Session, p: Parser, uid: boolean): undefined {
  p.space();
  const set = p.seqSet();
  p.space();
  let op: '+' | '-' | '=' = '=';
  if (p.take('+')) op = '+';
  else if (p.take('-')) op = '-';
  p.expect('FLAGS');
  const silent = p.take('.SILENT');
  p.space();
  const flags = p.flagList(true);
  p.end();
  s.writable();
  const sel = s.selected!;
  const uids = s.resolve(set, uid);
  for (const f of flags) if (f.startsWith('\\') && !flagNames.some(([n]) => n.toLowerCase() === f.toLowerCase())) throw new Bad(`unknown system flag ${f}`);
  s.account!.storeFlags(sel.mailbox.id, uids, op, flags, s);
  if (silent) return;
  for (const u of uids) {
    const m = s.account!.message(sel.mailbox.id, u);
    if (!m) continue;
    s.untagged(`${s.seqOf(u)} FETCH (${uid ? `UID ${u} ` : ''}FLAGS (${flagList(m.flags, m.keywords).join(' ')}))`);
  }
  return;
}

register(['FETCH', 'UID FETCH'], { states: ['selected'], run: (s, p, c) => cmdFetch(s, p, c.uid) });
register(['STORE', 'UID STORE'], { states: ['selected'], run: (s, p, c) => cmdStore(s, p, c.uid) });
register(['CLOSE', 'UNSELECT'], {
  states: ['selected'],
  run(s, p, c) {
    p.end();
    if (c.name === 'CLOSE' && !s.selected!.readOnly) s.expungeDeleted(undefined, false);
    s.deselect();
    return undefined;
  },
}, ['UNSELECT']);
register(['EXPUNGE'], {
  states: ['selected'],
  run(s, p) {
    p.end();
    s.writable();
    s.expungeDeleted(undefined, true);
    return undefined;
  },
});
register(['UID EXPUNGE'], {
  states: ['selected'],
  run(s, p) {
    p.space();
    const set = p.seqSet();
    p.end();
    s.writable();
    s.expungeDeleted(new Set(s.resolve(set, true)), true);
    return undefined;
  },
}, ['UIDPLUS']);
