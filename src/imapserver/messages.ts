// Message commands: FETCH, STORE, COPY, MOVE, EXPUNGE, CLOSE, UNSELECT, APPEND, REPLACE.
import fsp from 'node:fs/promises';
import { register, No, Bad, appendLimit, type CommandContext } from './registry.js';
import { ReadAhead } from './readahead.js';
import type { MessageRow } from '../store/account.js';
import { parseFetchAtts, fetchItems, needsContent, needsPart, setsSeen, structureKinds, FetchError, type Fetched } from './fetch.js';
import { hasRendered, rendered } from './rendercache.js';
import { formatSet, formatOrdered } from './uidset.js';
import type { Parser } from './parse.js';
import type { Session } from './session.js';
import { parseMessage, type Part } from '../message/part.js';
import { Flag, flagList, flagNames, parseFlags } from '../store/flags.js';
import type { MsgFile } from '../store/tempfile.js';
import { quotaAllows } from '../store/mailboxops.js';

async function cmdFetch(s: Session, p: Parser, c: CommandContext): Promise<undefined> {
  const uid = c.uid;
  s.requireUID(uid);
  p.space();
  const set = p.seqSet();
  p.space();
  const atts = parseFetchAtts(p);
  let changedSince: number | undefined;
  let vanished = false;
  if (p.maybeSpace()) {
    // RFC 7162 3.1.4 and 3.2.6: fetch modifiers.
    p.expect('(');
    do {
      const m = p.atom().toUpperCase();
      if (m === 'CHANGEDSINCE') {
        p.space();
        changedSince = p.number();
      } else if (m === 'VANISHED') vanished = true;
      else throw new Bad(`unknown fetch modifier ${m}`);
    } while (p.maybeSpace());
    p.expect(')');
    if (vanished && (!uid || changedSince === undefined || !s.enabled.has('QRESYNC'))) throw new Bad('VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC');
  }
  p.end();
  if (changedSince !== undefined || atts.some((a) => a.name === 'MODSEQ')) s.enable('CONDSTORE');
  const sel = s.selected!;
  if (vanished) {
    // RFC 7162 3.2.6: expunged UIDs within the set, changed since the given modseq.
    const inSet = new Set(s.expandUIDs(set.saved ? { ranges: [] } : set));
    const gone = (s.account!.db.prepare('SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid').pluck().all(sel.mailbox.id, changedSince) as number[]).filter((u) => inSet.has(u));
    if (gone.length) s.untagged(`VANISHED (EARLIER) ${formatSet(gone)}`);
  }
  const uids = s.resolve(set, uid);
  const withPart = needsPart(atts);
  const content = needsContent(atts);
  const markSeen = setsSeen(atts) && !sel.readOnly;
  const acc = s.account!;
  const rows = acc.messagesByUid(sel.mailbox.id, uids);
  const todo: MessageRow[] = [];
  for (const u of uids) {
    const row = rows.get(u);
    if (!row) continue; // Expunged by another session; the EXPUNGE comes later.
    if (changedSince !== undefined && row.modseq <= changedSince) continue;
    todo.push(row);
  }
  const files = content ? new ReadAhead(todo, (r) => acc.readMessage(r), (r) => r.size) : undefined;
  // Metadata FETCHes repeat: structure items rendered before need no structure now.
  const kinds = withPart ? structureKinds(atts) : undefined;
  const isRendered = (r: MessageRow) => !!kinds && kinds.every((k) => hasRendered(acc, r.id, k, s.utf8));
  let done = 0;
  let parts: Map<number, Part> | undefined;
  let partsEnd = 0;
  for (let i = 0; i < todo.length; i++) {
    let row = todo[i]!;
    const u = row.uid;
    const seq = s.seqOf(u);
    const f: Fetched = { row, seq };
    if (files) f.msg = await files.get(i);
    if (withPart && !isRendered(row)) {
      // Structures of the next messages in one query, for a long run of messages.
      if (todo.length > 20 && i >= partsEnd) {
        parts = acc.parts(todo.slice(i, i + 200).filter((r) => !isRendered(r)));
        partsEnd = i + 200;
      }
      // The structure is stored at delivery; only messages from before that are parsed now.
      f.part = parts ? parts.get(row.id) : acc.part(row);
      if (!f.part) f.part = parseMessage((f.msg ??= await acc.readMessage(row)));
    }
    let flagsChanged = false;
    if (markSeen && !(row.flags & Flag.Seen)) {
      row = acc.storeFlags(sel.mailbox.id, [u], '+', ['\\Seen'], s)[0] ?? row;
      f.row = row;
      flagsChanged = true;
    }
    let items: Buffer[];
    try {
      items = fetchItems(f, atts, { utf8: s.utf8, uid, condstore: s.condstore, render: (kind, render) =>
          rendered(acc, row.id, kind, s.utf8, () => {
            // Left out above when it was rendered before; it was dropped from the cache since.
            f.part ??= acc.part(row);
            return render();
          }),
      });
    } catch (e) {
      if (e instanceof FetchError) throw new No(e.message, e.code);
      throw e;
    }
    // RFC 9051 6.4.5: a \Seen set as side effect is reported.
    if (flagsChanged && !atts.some((a) => a.name === 'FLAGS')) items.push(Buffer.from(` FLAGS (${flagList(row.flags, row.keywords).join(' ')})`));
    s.conn.write(s.fetchResponse(seq, u, items));
    // Back-pressure: wait for the client only when much is buffered.
    if (s.conn.socket.writableLength > 1 << 20) await s.conn.drain();
    // RFC 9585: progress of long commands.
    if (++done % 1000 === 0 && todo.length >= 2000) s.untagged(`OK [INPROGRESS ("${c.tag}" ${done} ${todo.length})] fetching`);
  }
  return;
}

function cmdStore(s: Session, p: Parser, uid: boolean): string | undefined {
  s.requireUID(uid);
  p.space();
  const set = p.seqSet();
  p.space();
  let unchangedSince: number | undefined;
  if (p.take('(')) {
    // RFC 7162 3.1.3: conditional STORE.
    p.expect('UNCHANGEDSINCE');
    p.space();
    unchangedSince = p.number();
    p.expect(')');
    p.space();
    s.enable('CONDSTORE');
  }
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
  let uids = s.resolve(set, uid);
  for (const f of flags) if (f.startsWith('\\') && !flagNames.some(([n]) => n.toLowerCase() === f.toLowerCase())) throw new Bad(`unknown system flag ${f}`);
  const acc = s.account!;
  const modified: number[] = [];
  if (unchangedSince !== undefined) {
    uids = uids.filter((u) => {
      const m = acc.message(sel.mailbox.id, u);
      if (m && m.modseq > unchangedSince!) modified.push(uid ? u : s.seqOf(u));
      return !m || m.modseq <= unchangedSince!;
    });
  }
  const changed = new Set(acc.storeFlags(sel.mailbox.id, uids, op, flags, s).map((m) => m.uid));
  if (silent && !(s.condstore && changed.size)) return modified.length ? `[MODIFIED ${formatSet(modified)}] conditional store completed` : undefined;
  const rows = acc.messagesByUid(sel.mailbox.id, uids);
  for (const u of uids) {
    // With .SILENT, only a client using CONDSTORE hears about the new modseq (RFC 7162 3.1.3).
    if (silent && !(s.condstore && changed.has(u))) continue;
    const m = rows.get(u);
    if (!m) continue;
    const parts = [uid ? `UID ${u}` : '', silent ? '' : `FLAGS (${flagList(m.flags, m.keywords).join(' ')})`, s.condstore ? `MODSEQ (${m.modseq})` : ''].filter(Boolean);
    s.conn.write(s.fetchResponse(s.seqOf(u), u, parts.join(' ')));
  }
  if (modified.length) return `[MODIFIED ${formatSet(modified)}] conditional store completed`;
  return undefined;
}

function targetMailbox(s: Session, p: Parser) {
  const name = s.mailboxArg(p);
  const mb = s.account!.mailbox(name);
  // RFC 9051 6.4.7: TRYCREATE tells the client the mailbox can be created.
  if (!mb) throw new No('no such mailbox', 'TRYCREATE');
  return mb;
}

function cmdCopy(s: Session, p: Parser, uid: boolean, move: boolean): string {
  s.requireUID(uid);
  p.space();
  const set = p.seqSet();
  p.space();
  const dst = targetMailbox(s, p);
  p.end();
  if (move) s.writable();
  const sel = s.selected!;
  const uids = s.resolve(set, uid);
  if (uids.length === 0) return `${move ? 'MOVE' : 'COPY'} completed, no messages`;
  if (dst.id === sel.mailbox.id && move) throw new No('cannot move to the same mailbox', 'CANNOT');
  const pairs = s.account!.copy(sel.mailbox.id, uids, dst.id, move, s);
  const code = `COPYUID ${dst.uidvalidity} ${formatOrdered(pairs.map(([a]) => a))} ${formatOrdered(pairs.map(([, b]) => b))}`;
  if (!move) return `[${code}] COPY completed`;
  // RFC 6851 4.3: COPYUID in an untagged OK before the expunges.
  s.untagged(`OK [${code}] moved`);
  s.expunged(pairs.map(([a]) => a));
  return 'MOVE completed';
}

interface AppendMessage {
  flags: string[];
  received?: number;
  data: { data: Buffer } | { file: MsgFile };
}

/** append-message: [flag-list] [date-time] (literal / literal8 / "UTF8 (" literal8 ")"). */
function parseAppendMessage(p: Parser): AppendMessage {
  let flags: string[] = [];
  let received: number | undefined;
  if (p.peek() === 0x28) {
    flags = p.flagList();
    p.space();
  }
  if (p.peek() === 0x22) {
    received = p.dateTime();
    p.space();
  }
  let data: AppendMessage['data'];
  // RFC 6855 4: UTF-8 messages as "UTF8 (~{n}...)".
  if (p.take('UTF8 (')) {
    data = p.literalData();
    p.expect(')');
  } else data = p.literalData();
  if (flags.some((f) => f.toLowerCase() === '\\recent')) throw new Bad('\\Recent cannot be set');
  return { flags, received, data };
}

/** Stores appended messages in one transaction (RFC 3502: all or nothing). Returns their UIDs. */
async function appendAll(s: Session, mailbox: string, msgs: AppendMessage[]): Promise<number[]> {
  const acc = s.account!;
  const files: MsgFile[] = [];
  const owned: string[] = [];
  try {
    let total = 0;
    for (const m of msgs) {
      const f = 'file' in m.data ? m.data.file : await s.app.store.writeTemp(m.data.data);
      if (!('file' in m.data)) owned.push(f.path);
      files.push(f);
      total += f.size;
    }
    if (total > appendLimit) throw new No('message larger than APPENDLIMIT', 'TOOBIG');
    // RFC 9208 5.1: OVERQUOTA when the messages would exceed the limit.
    if (!quotaAllows(acc, s.app.config.domains.Accounts[s.accountName!]?.QuotaMessageSize ?? 0, total)) throw new No('quota exceeded', 'OVERQUOTA');
    const parsed = await Promise.all(files.map(async (f) => parseMessage(await fsp.readFile(f.path))));
    // Issued together, the deliveries share one commit.
    const done = await Promise.all(
      msgs.map((m, i) => {
        const { flags, keywords } = parseFlags(m.flags);
        return acc.deliver(files[i]!, { mailbox, flags, keywords, received: m.received ?? s.app.clock.now(), part: parsed[i] });
      }),
    );
    return done.map((d) => d.uid);
  } finally {
    for (const p of owned) await fsp.rm(p, { force: true });
  }
}

async function cmdAppend(s: Session, p: Parser): Promise<string> {
  p.space();
  const mb = targetMailbox(s, p);
  const msgs: AppendMessage[] = [];
  while (p.maybeSpace()) msgs.push(parseAppendMessage(p));
  p.end();
  if (msgs.length === 0) throw new Bad('missing message');
  const uids = await appendAll(s, mb.name, msgs);
  // RFC 4315 3: APPENDUID with the new UIDs.
  return `[APPENDUID ${mb.uidvalidity} ${formatOrdered(uids)}] APPEND completed`;
}

/** REPLACE (RFC 8508): append the new version, then expunge the old one. */
async function cmdReplace(s: Session, p: Parser, uid: boolean): Promise<string> {
  s.requireUID(uid);
  p.space();
  const n = p.nzNumber();
  p.space();
  const mb = targetMailbox(s, p);
  p.space();
  const msg = parseAppendMessage(p);
  p.end();
  s.writable();
  const sel = s.selected!;
  const old = uid ? n : sel.uids[n - 1];
  if (old === undefined || (uid && s.seqOf(old) === 0)) throw new Bad('no such message');
  const [newUid] = await appendAll(s, mb.name, [msg]);
  s.untagged(`OK [APPENDUID ${mb.uidvalidity} ${newUid}] replacement appended`);
  s.expunged(s.account!.expunge(sel.mailbox.id, [old], s));
  return 'REPLACE completed';
}

register(['FETCH', 'UID FETCH'], { states: ['selected'], run: (s, p, c) => cmdFetch(s, p, c) }, ['BINARY', 'SAVEDATE', 'PREVIEW', 'INPROGRESS']);
register(['STORE', 'UID STORE'], { states: ['selected'], run: (s, p, c) => cmdStore(s, p, c.uid) });
register(['COPY', 'UID COPY'], { states: ['selected'], run: (s, p, c) => cmdCopy(s, p, c.uid, false) });
register(['MOVE', 'UID MOVE'], { states: ['selected'], run: (s, p, c) => cmdCopy(s, p, c.uid, true) }, ['MOVE']);
register(['APPEND'], { states: ['auth', 'selected'], run: (s, p) => cmdAppend(s, p) }, ['MULTIAPPEND', `APPENDLIMIT=${appendLimit}`]);
register(['REPLACE', 'UID REPLACE'], { states: ['selected'], run: (s, p, c) => cmdReplace(s, p, c.uid) }, ['REPLACE']);
register(
  ['CLOSE', 'UNSELECT'],
  {
    states: ['selected'],
    run(s, p, c) {
      p.end();
      if (c.name === 'CLOSE' && !s.selected!.readOnly) s.expungeDeleted(undefined, false);
      s.deselect();
      return undefined;
    },
  },
  ['UNSELECT'],
);
register(['EXPUNGE'], {
  states: ['selected'],
  run(s, p) {
    p.end();
    s.writable();
    s.expungeDeleted(undefined, true);
    return undefined;
  },
});
register(
  ['UID EXPUNGE'],
  {
    states: ['selected'],
    run(s, p) {
      p.space();
      const set = p.seqSet();
      p.end();
      s.writable();
      s.expungeDeleted(new Set(s.resolve(set, true)), true);
      return undefined;
    },
  },
  ['UIDPLUS'],
);
