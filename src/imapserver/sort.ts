// SORT (RFC 5256 3) with DISPLAYFROM/DISPLAYTO (RFC 5957), and the base subject (RFC 5256 2.1)
// that SORT and THREAD share.
import libmime from 'libmime';
import type { Parser } from './parse.js';
import { parseSearchCriteria, parseMessageDate, loadEnvelope, fold, type MessageSource, type SearchProgram } from './search.js';
import type { MessageRow } from '../store/account.js';
import type { Envelope } from '../message/part.js';
import { decodeHeaderText, bytesToText } from '../message/header.js';
import { isGroup, displayMailbox, type AddressItem } from '../message/address.js';

export type SortKey = 'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO' | 'DISPLAYFROM' | 'DISPLAYTO';
export interface SortCriterion {
  key: SortKey;
  reverse: boolean;
}

const sortKeys: SortKey[] = ['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO', 'DISPLAYFROM', 'DISPLAYTO'];

/** Parses what follows "SORT" or "UID SORT": (criteria) charset keys, to the end (RFC 5256 5). */
export function parseSort(p: Parser, opts: { utf8: boolean }): { criteria: SortCriterion[]; program: SearchProgram } {
  p.space();
  p.expect('(');
  const criteria: SortCriterion[] = [];
  do {
    const reverse = p.take('REVERSE ');
    const key = p.keyword() as SortKey;
    if (!sortKeys.includes(key)) throw p.error(`unknown sort criterion ${key}`);
    criteria.push({ key, reverse });
  } while (p.maybeSpace());
  p.expect(')');
  p.space();
  return { criteria, program: parseSearchCriteria(p, opts) };
}

/** Subject header value (a header byte string, see message/header.ts) to text. */
function subjectText(subject: string): string {
  // Already text when it holds characters beyond a byte.
  if (/[^\x00-\xff]/.test(subject)) return subject.includes('=?') ? libmime.decodeWords(subject) : subject;
  return decodeHeaderText(subject);
}

const leader = /^(?:\[[^[\]]*\] *)*(?:re|fwd?) *(?:\[[^[\]]*\] *)?:/i;
const blob = /^\[[^[\]]*\] */;

/**
 * The base subject (RFC 5256 2.1), and whether extracting it found the subject of a reply or
 * forward: a removed subj-refwd, "(fwd)" trailer, or "[fwd: ...]" (RFC 5256 4, REFERENCES).
 */
export function subjectInfo(subject: string): { base: string; replyOrForward: boolean } {
  // (1) Decode encoded-words; tabs and line breaks become spaces, runs of spaces one.
  let s = subjectText(subject).replace(/[\t\r\n]/g, ' ').replace(/ {2,}/g, ' ');
  let refwd = false;
  for (;;) {
    // (2) Remove subj-trailer ("(fwd)" / WSP) from the end, repeatedly.
    for (;;) {
      if (s.endsWith(' ')) s = s.slice(0, -1);
      else if (s.slice(-5).toLowerCase() === '(fwd)') {
        s = s.slice(0, -5);
        refwd = true;
      } else break;
    }
    // (3)-(5) Remove subj-leaders, and a subj-blob when text remains after it, until neither applies.
    for (let again = true; again; ) {
      again = false;
      let m: RegExpExecArray | null;
      while ((m = leader.exec(s)) || s.startsWith(' ')) {
        if (m) refwd = true;
        s = s.slice(m ? m[0].length : 1);
        again = true;
      }
      const b = blob.exec(s);
      if (b && b[0].length < s.length) {
        s = s.slice(b[0].length);
        again = true;
      }
    }
    // (6) "[fwd:" ... "]" around the whole: unwrap and start over from (2).
    if (s.length >= 6 && s.slice(0, 5).toLowerCase() === '[fwd:' && s.endsWith(']')) {
      s = s.slice(5, -1);
      refwd = true;
      continue;
    }
    return { base: s, replyOrForward: refwd };
  }
}

/** The base subject of a Subject value (RFC 5256 2.1). */
export function baseSubject(subject: string): string {
  return subjectInfo(subject).base;
}

/** The sent date (RFC 5256 2.2): the Date field in UTC, else the INTERNALDATE. */
export function sentDate(env: Envelope, row: MessageRow): number {
  return (env.date !== undefined ? parseMessageDate(env.date)?.ms : undefined) ?? row.received;
}

/** First address of an envelope list as IMAP shows it: a group is first its name as addr-mailbox. */
function firstAddress(list: AddressItem[] | undefined): { name?: string; mailbox?: string; host?: string } | undefined {
  const a = list?.[0];
  if (!a) return undefined;
  return isGroup(a) ? { mailbox: a.group } : a;
}

function addrMailbox(list: AddressItem[] | undefined): string {
  const m = firstAddress(list)?.mailbox;
  return m ? bytesToText(m) : '';
}

/** RFC 5957 3: decoded display name, else mailbox@host, else the mailbox. */
function displayAddress(list: AddressItem[] | undefined): string {
  const a = firstAddress(list);
  if (!a) return '';
  if (a.name) {
    const name = displayMailbox(a).name;
    if (name) return name;
  }
  const mb = a.mailbox ? bytesToText(a.mailbox) : '';
  return a.mailbox !== undefined && a.host !== undefined ? `${mb}@${bytesToText(a.host)}` : mb;
}

function sortValue(key: SortKey, row: MessageRow, env: Envelope): string | number {
  switch (key) {
    case 'ARRIVAL':
      return row.received;
    case 'SIZE':
      return row.size;
    case 'DATE':
      return sentDate(env, row);
    case 'SUBJECT':
      return fold(baseSubject(env.subject ?? ''));
    case 'FROM':
    case 'TO':
    case 'CC':
      // RFC 5256 3: addr-mailbox of the first address; absent is the empty string, first.
      return fold(addrMailbox(env[key === 'FROM' ? 'from' : key === 'TO' ? 'to' : 'cc']));
    case 'DISPLAYFROM':
    case 'DISPLAYTO':
      return fold(displayAddress(env[key === 'DISPLAYFROM' ? 'from' : 'to']));
  }
}

/**
 * Orders the UIDs (a search result) by the criteria. Messages equal on all criteria stay in
 * sequence order, also under REVERSE (RFC 5256 3).
 */
export async function sortMessages(criteria: readonly SortCriterion[], uids: readonly number[], src: MessageSource): Promise<number[]> {
  const byUid = new Map<number, [MessageRow, number]>();
  src.rows.forEach((r, i) => byUid.set(r.uid, [r, i]));
  const needEnvelope = criteria.some((c) => c.key !== 'ARRIVAL' && c.key !== 'SIZE');
  const items: { uid: number; seq: number; values: (string | number)[] }[] = [];
  for (const uid of uids) {
    const found = byUid.get(uid);
    if (!found) continue;
    const [row, seq] = found;
    const env = needEnvelope ? await loadEnvelope(src, row) : {};
    items.push({ uid, seq, values: criteria.map((c) => sortValue(c.key, row, env)) });
  }
  items.sort((x, y) => {
    for (let i = 0; i < criteria.length; i++) {
      const a = x.values[i]!;
      const b = y.values[i]!;
      if (a === b) continue;
      const c = a < b ? -1 : 1;
      return criteria[i]!.reverse ? -c : c;
    }
    return x.seq - y.seq;
  });
  return items.map((i) => i.uid);
}

/**
 * The untagged SORT response without "* " and CRLF: UIDs or sequence numbers in order, and
 * the highest mod-sequence when a MODSEQ key was used and something matched (RFC 7162 3.1.9).
 */
export function sortResponse(program: SearchProgram, sorted: readonly number[], o: { uid: boolean; rows: readonly MessageRow[] }): string {
  const info = new Map<number, [number, number]>();
  o.rows.forEach((r, i) => info.set(r.uid, [i + 1, r.modseq]));
  const nums = sorted.map((u) => (o.uid ? u : (info.get(u)?.[0] ?? 0))).filter((n) => n > 0);
  const ms = program.modseq && sorted.length ? ` (MODSEQ ${sorted.reduce((h, u) => Math.max(h, info.get(u)?.[1] ?? 0), 0)})` : '';
  return `SORT${nums.map((n) => ' ' + n).join('')}${ms}`;
}
