// SEARCH (RFC 9051 6.4.4, RFC 3501 6.4.4): the search program, its evaluation over the
// selected mailbox, and the SEARCH/ESEARCH responses (RFC 4731, RFC 5182, RFC 7162 3.1.5).
//
// Evaluation is three-valued: each message is first tested on its index row alone (flags,
// sizes, dates, UIDs); only when that cannot decide is the envelope, the header or the content
// loaded, so a search on flags reads no message files.
import { isUtf8 } from 'node:buffer';
import type { Parser, SeqSet } from './parse.js';
import { No, Bad } from './registry.js';
import type { MessageRow } from '../store/account.js';
import { Flag, flagBit } from '../store/flags.js';
import { parseMessage, allParts, type Envelope, type Part } from '../message/part.js';
import { parseHeader, bytesToText, decodeHeaderText, type Header } from '../message/header.js';
import { isGroup, displayMailbox, type AddressItem } from '../message/address.js';
import { decodedText } from '../message/decode.js';

export type ReturnOption = 'MIN' | 'MAX' | 'ALL' | 'COUNT' | 'SAVE';

export type SearchKey =
  | { type: 'and'; keys: SearchKey[] }
  | { type: 'or'; a: SearchKey; b: SearchKey }
  | { type: 'not'; key: SearchKey }
  | { type: 'all' }
  | { type: 'none' }
  | { type: 'seq'; set: SeqSet; uid: boolean }
  | { type: 'flag'; bit: number; set: boolean }
  /** Keyword lower-cased: keywords are case-insensitive (RFC 9051 2.3.2). */
  | { type: 'keyword'; keyword: string; set: boolean }
  /** date is UTC midnight of the day. */
  | { type: 'date'; field: 'internal' | 'sent' | 'saved'; op: 'before' | 'on' | 'since'; date: number }
  | { type: 'size'; op: 'larger' | 'smaller'; size: number }
  | { type: 'within'; op: 'older' | 'younger'; seconds: number }
  | { type: 'modseq'; modseq: number }
  | { type: 'envelope'; field: 'from' | 'to' | 'cc' | 'bcc' | 'subject'; text: string }
  | { type: 'header'; field: string; text: string }
  | { type: 'body' | 'text'; text: string };

export interface SearchProgram {
  key: SearchKey;
  /** RETURN options (RFC 4731); undefined when RETURN was absent. "RETURN ()" means ALL. */
  returns?: Set<ReturnOption>;
  charset?: string;
  /** A MODSEQ key is used: responses carry the highest mod-sequence, and CONDSTORE is enabled (RFC 7162 3.1). */
  modseq: boolean;
}

export interface MessageSource {
  /** Messages of the selected mailbox in sequence order: rows[i] has sequence number i + 1. */
  rows: readonly MessageRow[];
  /** The stored MIME structure (Account.part); when undefined the message is read and parsed. */
  part(row: MessageRow): Part | undefined | Promise<Part | undefined>;
  /** The message as stored, delivery prefix included (Account.readMessage). */
  read(row: MessageRow): Promise<Buffer>;
  /** Only the header section, when it can be read more cheaply than the whole message. */
  header?(row: MessageRow): Promise<Buffer>;
}

export interface SearchContext extends MessageSource {
  /** UIDs of the saved search result, for "$" (RFC 5182); absent means empty. */
  saved?: readonly number[];
  /** Current time in ms, for OLDER/YOUNGER. */
  now: number;
}

const maxDepth = 100;
const charsets = ['UTF-8', 'US-ASCII'];

/**
 * Parses what follows "SEARCH" or "UID SEARCH": [RETURN (...)] [CHARSET x] keys, to the end of
 * the command. With opts.utf8 (UTF8=ACCEPT or IMAP4rev2), 8-bit strings must be valid UTF-8.
 */
export function parseSearch(p: Parser, opts: { utf8: boolean }): SearchProgram {
  p.space();
  let returns: Set<ReturnOption> | undefined;
  if (p.take('RETURN ')) {
    returns = new Set();
    p.expect('(');
    while (!p.take(')')) {
      if (returns.size) p.space();
      const o = p.keyword();
      // RFC 9051 6.4.4: result options the server does not know are a BAD.
      if (!['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE'].includes(o)) throw new Bad(`unknown search return option ${o}`);
      returns.add(o as ReturnOption);
    }
    p.space();
  }
  let charset: string | undefined;
  if (p.take('CHARSET ')) {
    charset = checkCharset(p.astring());
    p.space();
  }
  return { ...parseKeys(p, opts), returns, charset };
}

/**
 * RFC 5256 search-criteria, for SORT and THREAD: a mandatory charset, then the keys, to the end.
 */
export function parseSearchCriteria(p: Parser, opts: { utf8: boolean }): SearchProgram {
  const charset = checkCharset(p.astring());
  p.space();
  return { ...parseKeys(p, opts), charset };
}

function checkCharset(name: string): string {
  const cs = name.toUpperCase();
  // RFC 9051 6.4.4: NO, not BAD, for an unsupported charset, with BADCHARSET (7.1).
  if (!charsets.includes(cs)) throw new No(`charset ${name} not supported`, `BADCHARSET (${charsets.join(' ')})`);
  return cs;
}

function parseKeys(p: Parser, opts: { utf8: boolean }): { key: SearchKey; modseq: boolean } {
  const st = { modseq: false, utf8: opts.utf8 };
  const keys = [parseKey(p, st, 0)];
  while (p.maybeSpace()) keys.push(parseKey(p, st, 0));
  p.end();
  return { key: keys.length === 1 ? keys[0]! : { type: 'and', keys }, modseq: st.modseq };
}

function searchString(p: Parser, utf8: boolean): string {
  const b = p.astringBuf();
  if (isUtf8(b)) return b.toString('utf8');
  // RFC 6855 3: once UTF-8 is enabled, 8-bit strings must be UTF-8.
  if (utf8) throw new Bad('search string is not valid UTF-8');
  return bytesToText(b.toString('latin1'));
}

const flagKeys: Record<string, [number, boolean]> = {
  ANSWERED: [Flag.Answered, true],
  DELETED: [Flag.Deleted, true],
  DRAFT: [Flag.Draft, true],
  FLAGGED: [Flag.Flagged, true],
  SEEN: [Flag.Seen, true],
  UNANSWERED: [Flag.Answered, false],
  UNDELETED: [Flag.Deleted, false],
  UNDRAFT: [Flag.Draft, false],
  UNFLAGGED: [Flag.Flagged, false],
  UNSEEN: [Flag.Seen, false],
};

const dateKeys: Record<string, [field: 'internal' | 'sent' | 'saved', op: 'before' | 'on' | 'since']> = {
  BEFORE: ['internal', 'before'],
  ON: ['internal', 'on'],
  SINCE: ['internal', 'since'],
  SENTBEFORE: ['sent', 'before'],
  SENTON: ['sent', 'on'],
  SENTSINCE: ['sent', 'since'],
  SAVEDBEFORE: ['saved', 'before'],
  SAVEDON: ['saved', 'on'],
  SAVEDSINCE: ['saved', 'since'],
};

function parseKey(p: Parser, st: { modseq: boolean; utf8: boolean }, depth: number): SearchKey {
  if (depth > maxDepth) throw p.error('search keys nested too deeply');
  const c = p.peek();
  if (c === 0x28) {
    p.pos++;
    const keys = [parseKey(p, st, depth + 1)];
    while (!p.take(')')) {
      p.space();
      keys.push(parseKey(p, st, depth + 1));
    }
    return keys.length === 1 ? keys[0]! : { type: 'and', keys };
  }
  if (c !== undefined && ((c >= 0x30 && c <= 0x39) || c === 0x2a || c === 0x24)) return { type: 'seq', set: p.seqSet(), uid: false };
  const kw = p.keyword();
  const arg = () => {
    p.space();
    return searchString(p, st.utf8);
  };
  if (kw in flagKeys) {
    const [bit, set] = flagKeys[kw]!;
    return { type: 'flag', bit, set };
  }
  if (kw in dateKeys) {
    const [field, op] = dateKeys[kw]!;
    p.space();
    return { type: 'date', field, op, date: p.date() };
  }
  switch (kw) {
    case 'ALL':
      return { type: 'all' };
    // Postern keeps no \Recent (IMAP4rev2 dropped it): no message is recent, so RECENT and
    // NEW (RECENT UNSEEN) match nothing, OLD and UNRECENT everything (RFC 3501 6.4.4).
    case 'RECENT':
    case 'NEW':
      return { type: 'none' };
    case 'OLD':
    case 'UNRECENT':
      return { type: 'all' };
    case 'SAVEDATESUPPORTED':
      // RFC 8514 4.3: every mailbox keeps save dates.
      return { type: 'all' };
    case 'BCC':
    case 'CC':
    case 'FROM':
    case 'SUBJECT':
    case 'TO':
      return { type: 'envelope', field: kw.toLowerCase() as 'from', text: arg() };
    case 'BODY':
    case 'TEXT':
      return { type: kw === 'BODY' ? 'body' : 'text', text: arg() };
    case 'HEADER': {
      p.space();
      const field = p.astring().toLowerCase();
      return { type: 'header', field, text: arg() };
    }
    case 'KEYWORD':
    case 'UNKEYWORD': {
      p.space();
      const kwd = p.atom();
      const set = kw === 'KEYWORD';
      // Well-known keywords live in the flags bitmask (store/flags.ts).
      const bit = flagBit(kwd);
      return bit ? { type: 'flag', bit, set } : { type: 'keyword', keyword: kwd.toLowerCase(), set };
    }
    case 'LARGER':
    case 'SMALLER':
      p.space();
      return { type: 'size', op: kw === 'LARGER' ? 'larger' : 'smaller', size: p.number() };
    case 'OLDER':
    case 'YOUNGER':
      p.space();
      return { type: 'within', op: kw === 'OLDER' ? 'older' : 'younger', seconds: p.nzNumber() };
    case 'NOT':
      p.space();
      return { type: 'not', key: parseKey(p, st, depth + 1) };
    case 'OR': {
      p.space();
      const a = parseKey(p, st, depth + 1);
      p.space();
      return { type: 'or', a, b: parseKey(p, st, depth + 1) };
    }
    case 'UID':
      p.space();
      return { type: 'seq', set: p.seqSet(), uid: true };
    case 'MODSEQ': {
      p.space();
      // RFC 7162 3.1.5: an optional entry name and type; without per-flag mod-sequences they are ignored.
      if (p.peek() === 0x22) {
        const entry = p.quoted().toString('utf8');
        if (!entry.toLowerCase().startsWith('/flags/')) throw p.error('bad MODSEQ entry name');
        p.space();
        if (!['priv', 'shared', 'all'].includes(p.atom().toLowerCase())) throw p.error('bad MODSEQ entry type');
        p.space();
      }
      st.modseq = true;
      return { type: 'modseq', modseq: p.number() };
    }
  }
  throw p.error(`unknown search key ${kw}`);
}

// Data a key needs beyond the index row.
const ROW = 0;
const ENV = 1;
const HDR = 2;
const BODY = 3;

function levels(k: SearchKey, into: Set<number>): Set<number> {
  switch (k.type) {
    case 'and':
      k.keys.forEach((x) => levels(x, into));
      break;
    case 'or':
      levels(k.a, into);
      levels(k.b, into);
      break;
    case 'not':
      levels(k.key, into);
      break;
    case 'envelope':
      into.add(ENV);
      break;
    case 'date':
      if (k.field === 'sent') into.add(ENV);
      break;
    case 'header':
      into.add(HDR);
      break;
    case 'body':
    case 'text':
      into.add(BODY);
      break;
  }
  return into;
}

interface Msg {
  row: MessageRow;
  level: number;
  part?: Part;
  header?: Header;
  msg?: Buffer;
  /** Decoded texts, as they are, and folded (sfold) when a search needs that. */
  headerText?: string;
  bodyText?: string[];
  headerFolded?: string;
  bodyFolded?: string[];
}

/** undefined: cannot decide with the data loaded so far. */
type Test = (m: Msg) => boolean | undefined;

const DAY = 86_400_000;

/**
 * Case-insensitive comparison form of text: RFC 5051 i;unicode-casemap (upper case, then
 * NFKD), as RFC 5255 I18NLEVEL=1 asks for SEARCH, SORT and THREAD.
 */
export function fold(s: string): string {
  return /^[\x00-\x7f]*$/.test(s) ? s.toUpperCase() : s.toUpperCase().normalize('NFKD');
}

const monthNames = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
// RFC 5322 4.3 obs-zone; military zones are unreliable and count as -0000.
const zoneNames: Record<string, number> = { ut: 0, gmt: 0, z: 0, est: -300, edt: -240, cst: -360, cdt: -300, mst: -420, mdt: -360, pst: -480, pdt: -420 };

/**
 * A Date field (RFC 5322 3.3, obsolete forms of 4.3): `day` is UTC midnight of the date as
 * written, disregarding time and zone (for SENT* searches); `ms` is the instant, normalized to
 * UTC (for sorting, RFC 5256 2.2), with an invalid zone taken as UTC and an invalid time as
 * 00:00:00. undefined when there is no valid date.
 */
export function parseMessageDate(value: string): { day: number; ms: number } | undefined {
  let s = value;
  for (let prev = ''; prev !== s; ) [prev, s] = [s, s.replace(/\([^()]*\)/g, ' ')];
  const m = /^\s*(?:[a-z]+\s*,\s*)?(\d{1,2})\s*([a-z]{3})[a-z]*\s*(\d{2,4})\b(?:\s*(\d{1,2})\s*:\s*(\d{1,2})(?:\s*:\s*(\d{1,2}))?\b)?\s*([+-]\d{4}|[a-z]+)?/i.exec(s);
  if (!m) return undefined;
  const mon = monthNames.indexOf(m[2]!.toLowerCase());
  const d = Number(m[1]);
  let y = Number(m[3]);
  // RFC 5322 4.3: two-digit years below 50 are 20xx, others and three-digit years 19xx.
  if (m[3]!.length === 2) y += y < 50 ? 2000 : 1900;
  else if (m[3]!.length === 3) y += 1900;
  const day = Date.UTC(y, mon, d);
  if (mon < 0 || new Date(day).getUTCDate() !== d) return undefined;
  let [h, mi, sec] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  if (h > 23 || mi > 59 || sec > 60) [h, mi, sec] = [0, 0, 0];
  let zone = 0;
  const z = m[7];
  if (z && (z[0] === '+' || z[0] === '-')) {
    const hh = Number(z.slice(1, 3));
    const mm = Number(z.slice(3, 5));
    if (hh <= 23 && mm <= 59) zone = (z[0] === '-' ? -1 : 1) * (hh * 60 + mm);
  } else if (z) zone = zoneNames[z.toLowerCase()] ?? 0;
  return { day, ms: day + ((h * 60 + mi) * 60 + sec) * 1000 - zone * 60_000 };
}

/** fold() with runs of white space as one space, so that phrases match across line breaks. */
function sfold(s: string): string {
  return fold(s).replace(/\s+/g, ' ');
}

const ascii = /^[\x00-\x7f]*$/;

/**
 * A test whether sfold(text) contains sfold(needle). When both are ASCII, folding is upper-casing
 * ASCII letters and collapsing white space, which a case-insensitive regular expression matches
 * without making folded copies of large texts; others are compared folded.
 */
function containsFolded(needle: string): (text: string, folded: () => string) => boolean {
  const folded = sfold(needle);
  if (!ascii.test(needle)) return (_t, f) => f().includes(folded);
  const re = new RegExp(
    needle
      .split(/(\s+)/)
      .map((x, i) => (i % 2 ? '\\s+' : x.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')))
      .join(''),
    'i',
  );
  return (t, f) => (ascii.test(t) ? re.test(t) : f().includes(folded));
}

/** The envelope of a message: from the stored structure, or parsed from the message. */
export async function loadEnvelope(src: MessageSource, row: MessageRow): Promise<Envelope> {
  const part = (await src.part(row)) ?? parseMessage(await src.read(row));
  return part.envelope ?? {};
}

/** Header of a message, read cheaply when the source allows. */
export async function loadHeader(src: MessageSource, row: MessageRow): Promise<Header> {
  const b = src.header ? await src.header(row) : await src.read(row);
  return parseHeader(b);
}

function compile(k: SearchKey, ctx: SearchContext): Test {
  switch (k.type) {
    case 'and': {
      const ts = k.keys.map((x) => compile(x, ctx));
      return (m) => {
        let r: boolean | undefined = true;
        for (const t of ts) {
          const v = t(m);
          if (v === false) return false;
          if (v === undefined) r = undefined;
        }
        return r;
      };
    }
    case 'or': {
      const a = compile(k.a, ctx);
      const b = compile(k.b, ctx);
      return (m) => {
        const x = a(m);
        if (x === true) return true;
        const y = b(m);
        return y === true ? true : x === undefined || y === undefined ? undefined : false;
      };
    }
    case 'not': {
      const t = compile(k.key, ctx);
      return (m) => {
        const v = t(m);
        return v === undefined ? undefined : !v;
      };
    }
    case 'all':
      return () => true;
    case 'none':
      return () => false;
    case 'seq': {
      const set = resolveSet(k.set, k.uid, ctx);
      return (m) => set.has(m.row.uid);
    }
    case 'flag':
      return (m) => ((m.row.flags & k.bit) !== 0) === k.set;
    case 'keyword':
      return (m) => m.row.keywords.some((w) => w.toLowerCase() === k.keyword) === k.set;
    case 'size':
      return k.op === 'larger' ? (m) => m.row.size > k.size : (m) => m.row.size < k.size;
    case 'modseq':
      return (m) => m.row.modseq >= k.modseq;
    case 'within': {
      // RFC 5032 2: compared to the second; OLDER includes the target time, YOUNGER too.
      const target = Math.floor(ctx.now / 1000) - k.seconds;
      return k.op === 'older' ? (m) => Math.floor(m.row.received / 1000) <= target : (m) => Math.floor(m.row.received / 1000) >= target;
    }
    case 'date': {
      const cmp = k.op === 'before' ? (d: number) => d < k.date : k.op === 'on' ? (d: number) => d === k.date : (d: number) => d >= k.date;
      // INTERNALDATE and save date are taken in UTC (they have no zone of their own); a
      // message without save date uses its INTERNALDATE (RFC 8514 4.3).
      if (k.field === 'internal') return (m) => cmp(Math.floor(m.row.received / DAY) * DAY);
      if (k.field === 'saved') return (m) => cmp(Math.floor((m.row.savedate ?? m.row.received) / DAY) * DAY);
      // RFC 9051 6.4.4: the Date field's own date, "disregarding time and timezone"; a
      // message without a valid Date field matches no SENT* key.
      return (m) => {
        if (m.level < ENV) return undefined;
        const d = m.part!.envelope?.date;
        const day = d === undefined ? undefined : parseMessageDate(d)?.day;
        return day !== undefined && cmp(day);
      };
    }
    case 'envelope': {
      const needle = sfold(k.text);
      return (m) => {
        if (m.level < ENV) return undefined;
        const env = m.part!.envelope ?? {};
        if (k.field === 'subject') return env.subject !== undefined && sfold(decodeHeaderText(env.subject)).includes(needle);
        return addressTexts(env[k.field]).some((s) => sfold(s).includes(needle));
      };
    }
    case 'header': {
      const needle = sfold(k.text);
      return (m) => {
        if (m.level < HDR) return undefined;
        // RFC 9051 6.4.4: an empty string matches any message that has the field.
        return m.header!.getAll(k.field).some((f) => {
          if (!needle) return true;
          const v = f.value;
          return sfold(decodeHeaderText(v)).includes(needle) || (v.includes('=?') && sfold(bytesToText(v)).includes(needle));
        });
      };
    }
    case 'body':
    case 'text': {
      const contains = containsFolded(k.text);
      return (m) => {
        if (m.level < BODY) return undefined;
        if (k.type === 'text' && contains(headerText(m), () => (m.headerFolded ??= sfold(m.headerText!)))) return true;
        const texts = bodyText(m);
        return texts.some((t, i) => contains(t, () => (m.bodyFolded ??= texts.map(sfold))[i]!));
      };
    }
  }
}

/** The UIDs a sequence set or UID set names among the rows; "*" is the last message (RFC 9051 9). */
function resolveSet(set: SeqSet, uid: boolean, ctx: SearchContext): Set<number> {
  const rows = ctx.rows;
  // RFC 5182 2.1: an unset saved result is the empty set, not an error.
  if (set.saved) return new Set(ctx.saved ?? []);
  const out = new Set<number>();
  if (!rows.length) return out;
  for (const r of set.ranges) {
    if (uid) {
      const max = rows[rows.length - 1]!.uid;
      let [a, b] = [r.start || max, r.end || max];
      if (a > b) [a, b] = [b, a];
      let lo = 0;
      let hi = rows.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (rows[mid]!.uid < a) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < rows.length && rows[i]!.uid <= b; i++) out.add(rows[i]!.uid);
    } else {
      let [a, b] = [r.start || rows.length, r.end || rows.length];
      if (a > b) [a, b] = [b, a];
      for (let i = a; i <= Math.min(b, rows.length); i++) out.add(rows[i - 1]!.uid);
    }
  }
  return out;
}

/** Addresses as written and as displayed (RFC 2047 decoded), so either form is found. */
function addressTexts(list: AddressItem[] | undefined): string[] {
  if (!list) return [];
  const raw: string[] = [];
  const shown: string[] = [];
  for (const item of list) {
    const members = isGroup(item) ? item.members : [item];
    if (isGroup(item)) {
      raw.push(bytesToText(item.group));
      shown.push(decodeHeaderText(item.group));
    }
    for (const a of members) {
      const addr = a.host ? `${a.mailbox ?? ''}@${a.host}` : (a.mailbox ?? '');
      raw.push(bytesToText(a.name ? `${a.name} <${addr}>` : addr));
      const d = displayMailbox(a);
      shown.push(d.name ? `${d.name} <${d.address}>` : d.address);
    }
  }
  return [raw.join(', '), shown.join(', ')];
}

/** The top-level header as decoded "Name: value" lines. */
function headerText(m: Msg): string {
  m.headerText ??= m.header!.fields.map((f) => `${f.name}: ${decodeHeaderText(f.value)}`).join('\n');
  return m.headerText;
}

/**
 * Decoded text of the body: the text parts (transfer encoding and charset decoded, HTML
 * reduced to its text) and the headers of encapsulated messages. Other media types are
 * left out, as RFC 9051 6.4.4 allows.
 */
function bodyText(m: Msg): string[] {
  if (m.bodyText) return m.bodyText;
  const out: string[] = [];
  const msg = m.msg!;
  for (const p of allParts(m.part!)) {
    if (p.message) {
      const h = parseHeader(msg, p.message.start, p.message.body);
      out.push(h.fields.map((f) => `${f.name}: ${decodeHeaderText(f.value)}`).join('\n'));
    } else if (!p.parts && p.type === 'text') {
      const t = decodedText(msg, p);
      out.push(p.subtype === 'html' ? htmlText(t) : t);
    }
  }
  m.bodyText = out;
  return out;
}

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function htmlText(s: string): string {
  return s
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    // Block elements separate words, inline ones (<b>, <span>) do not.
    .replace(/<\/?(?:p|br|div|li|ul|ol|tr|td|th|table|h[1-6]|blockquote|pre|hr)\b[^>]*>/gi, ' ')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,6});/gi, (e, n: string) => {
      if (n[0] !== '#') return entities[n.toLowerCase()] ?? e;
      const cp = n[1] === 'x' || n[1] === 'X' ? parseInt(n.slice(2), 16) : parseInt(n.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : e;
    });
}

async function load(m: Msg, level: number, ctx: SearchContext): Promise<void> {
  const row = m.row;
  if (level === ENV) {
    m.part ??= (await ctx.part(row)) ?? parseMessage((m.msg ??= await ctx.read(row)));
  } else if (level === HDR) {
    if (m.msg) m.header ??= parseHeader(m.msg);
    else m.header ??= await loadHeader(ctx, row);
  } else {
    m.msg ??= await ctx.read(row);
    m.part ??= (await ctx.part(row)) ?? parseMessage(m.msg);
    m.header ??= parseHeader(m.msg);
  }
  m.level = level;
}

// Messages whose contents are being loaded at the same time, to overlap file reads.
const window = 8;

/** Evaluates the program over ctx.rows; returns the UIDs of the matching messages, in sequence order. */
export async function evaluate(program: SearchProgram, ctx: SearchContext): Promise<number[]> {
  const test = compile(program.key, ctx);
  const steps = [...levels(program.key, new Set())].sort((a, b) => a - b);
  const rows = ctx.rows;
  const hit = new Uint8Array(rows.length);
  const inflight = new Set<Promise<void>>();
  let failed: { e: unknown } | undefined;
  const decide = async (m: Msg): Promise<boolean> => {
    for (const l of steps) {
      await load(m, l, ctx);
      const r = test(m);
      if (r !== undefined) return r;
    }
    return false;
  };
  for (let i = 0; i < rows.length && !failed; i++) {
    if (rows[i]!.ghost) continue;
    const m: Msg = { row: rows[i]!, level: ROW };
    const r = test(m);
    if (r !== undefined) {
      hit[i] = r ? 1 : 0;
      continue;
    }
    const p: Promise<void> = decide(m).then(
      (v) => {
        hit[i] = v ? 1 : 0;
        inflight.delete(p);
      },
      (e: unknown) => {
        failed ??= { e };
        inflight.delete(p);
      },
    );
    inflight.add(p);
    if (inflight.size >= window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  if (failed) throw failed.e;
  const out: number[] = [];
  for (let i = 0; i < rows.length; i++) if (hit[i]) out.push(rows[i]!.uid);
  return out;
}

/** Ascending numbers as a compact sequence set, e.g. "1:3,9" (RFC 9051 9 sequence-set). */
export function sequenceSet(nums: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < nums.length; ) {
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j]! + 1) j++;
    out.push(j > i ? `${nums[i]}:${nums[j]}` : `${nums[i]}`);
    i = j + 1;
  }
  return out.join(',');
}

export interface SearchResponseOptions {
  tag: string;
  /** UID SEARCH: numbers are UIDs, and ESEARCH says UID. */
  uid: boolean;
  /** IMAP4rev2 is enabled: ESEARCH is the only result (RFC 9051 6.4.4). */
  rev2: boolean;
  /** The rows the search ran over, in sequence order. */
  rows: readonly MessageRow[];
}

/**
 * The untagged response of a SEARCH, without the leading "* " and the CRLF: "SEARCH 1 2"
 * or "ESEARCH (TAG "a") ...", or undefined when none is sent (RETURN (SAVE) alone). Also the
 * UIDs to keep as the saved result when SAVE was asked (RFC 9051 6.4.4.1, RFC 5182 2.4).
 */
export function searchResponse(program: SearchProgram, uids: readonly number[], o: SearchResponseOptions): { response?: string; save?: number[] } {
  const seqOf = new Map<number, number>();
  const modseqOf = new Map<number, number>();
  o.rows.forEach((r, i) => {
    seqOf.set(r.uid, i + 1);
    modseqOf.set(r.uid, r.modseq);
  });
  const nums = o.uid ? [...uids] : uids.map((u) => seqOf.get(u) ?? 0).filter((n) => n > 0);
  const highest = (list: readonly number[]) => list.reduce((h, u) => Math.max(h, modseqOf.get(u) ?? 0), 0);
  const ret = program.returns;
  if (!ret && !o.rev2) {
    // RFC 7162 3.1.6: with a MODSEQ key, a non-empty result ends with the highest mod-sequence.
    const ms = program.modseq && uids.length ? ` (MODSEQ ${highest(uids)})` : '';
    return { response: `SEARCH${nums.map((n) => ' ' + n).join('')}${ms}` };
  }
  const opts = !ret || ret.size === 0 ? new Set<ReturnOption>(['ALL']) : ret;
  const all = opts.has('ALL') || opts.has('COUNT');
  let save: number[] | undefined;
  if (opts.has('SAVE')) {
    // RFC 9051 6.4.4.1 table 4: with MIN and/or MAX alone, only those are saved.
    save = all || (!opts.has('MIN') && !opts.has('MAX')) ? [...uids] : [...new Set([opts.has('MIN') ? uids[0] : undefined, opts.has('MAX') ? uids[uids.length - 1] : undefined])].filter((u): u is number => u !== undefined);
  }
  // RFC 9051 6.4.4: SAVE alone suppresses the ESEARCH response.
  if (opts.size === 1 && opts.has('SAVE')) return { save };
  let s = `ESEARCH (TAG "${o.tag}")${o.uid ? ' UID' : ''}`;
  const picked: number[] = [];
  if (uids.length && opts.has('MIN')) {
    s += ` MIN ${nums[0]}`;
    picked.push(uids[0]!);
  }
  if (uids.length && opts.has('MAX')) {
    s += ` MAX ${nums[nums.length - 1]}`;
    picked.push(uids[uids.length - 1]!);
  }
  if (opts.has('COUNT')) s += ` COUNT ${uids.length}`;
  if (uids.length && opts.has('ALL')) s += ` ALL ${sequenceSet(nums)}`;
  // RFC 4731 3.2: the mod-sequence covers the messages returned: MIN/MAX alone, or all.
  if (program.modseq && uids.length) s += ` MODSEQ ${highest(all ? uids : picked)}`;
  return { response: s, save };
}
