// Parser for IMAP command syntax (RFC 9051 9, RFC 3501 9) over a command whose literals
// have been read in: the buffer holds the command as the client sent it, with each literal's
// octets following its "{n}\r\n" announcement.

import type { MsgFile } from '../store/tempfile.js';

export class ParseError extends Error {}

export interface SeqRange {
  /** 0 stands for "*". */
  start: number;
  end: number;
}
/** A sequence set; "$" (RFC 5182 SEARCHRES) is the saved result. */
export type SeqSet = { ranges: SeqRange[]; saved?: false } | { saved: true; ranges: [] };

const months = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

// atom-specials: "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]" (RFC 9051 9).
function isAtomChar(c: number): boolean {
  return c > 0x20 && c !== 0x7f && c !== 0x28 && c !== 0x29 && c !== 0x7b && c !== 0x25 && c !== 0x2a && c !== 0x22 && c !== 0x5c && c !== 0x5d;
}
const isAstringChar = (c: number) => isAtomChar(c) || c === 0x5d;
const isListChar = (c: number) => isAstringChar(c) || c === 0x25 || c === 0x2a;

export class Parser {
  pos = 0;

  constructor(
    readonly buf: Buffer,
    /** UTF-8 allowed in quoted strings (IMAP4rev2 / UTF8=ACCEPT). */
    readonly utf8 = true,
    /** Literals stored in files instead of the buffer, by the offset where their data would start. */
    readonly externals = new Map<number, MsgFile>(),
  ) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  peek(): number | undefined {
    return this.buf[this.pos];
  }

  error(what: string): ParseError {
    const near = this.buf.subarray(this.pos, this.pos + 20).toString('latin1').replace(/[\r\n]/g, ' ');
    return new ParseError(`${what}${this.done ? ' at end of command' : ` near "${near}"`}`);
  }

  end(): void {
    if (!this.done) throw this.error('unexpected data');
  }

  space(): void {
    if (this.buf[this.pos] !== 0x20) throw this.error('expected space');
    this.pos++;
  }

  /** Consumes a space if present. */
  maybeSpace(): boolean {
    if (this.buf[this.pos] === 0x20) {
      this.pos++;
      return true;
    }
    return false;
  }

  /** Consumes the literal text, case-insensitive, if present. */
  take(s: string): boolean {
    const end = this.pos + s.length;
    if (end > this.buf.length) return false;
    if (this.buf.toString('latin1', this.pos, end).toLowerCase() !== s.toLowerCase()) return false;
    this.pos = end;
    return true;
  }

  expect(s: string): void {
    if (!this.take(s)) throw this.error(`expected "${s}"`);
  }

  private run(pred: (c: number) => boolean): string {
    const start = this.pos;
    while (this.pos < this.buf.length && pred(this.buf[this.pos]!)) this.pos++;
    return this.buf.toString('utf8', start, this.pos);
  }

  tag(): string {
    const t = this.run((c) => isAstringChar(c) && c !== 0x2b);
    if (t === '') throw this.error('expected tag');
    return t;
  }

  atom(): string {
    const a = this.run(isAtomChar);
    if (a === '') throw this.error('expected atom');
    return a;
  }

  /** An atom, upper-cased, e.g. a command name or fetch attribute. */
  keyword(): string {
    const a = this.run((c) => isAtomChar(c) && c !== 0x5b && c !== 0x3c);
    if (a === '') throw this.error('expected keyword');
    return a.toUpperCase();
  }

  number(): number {
    const s = this.run((c) => c >= 0x30 && c <= 0x39);
    if (s === '' || s.length > 20) throw this.error('expected number');
    const n = Number(s);
    if (!Number.isSafeInteger(n)) throw this.error('number too large');
    return n;
  }

  nzNumber(): number {
    const n = this.number();
    if (n === 0) throw this.error('expected non-zero number');
    return n;
  }

  /** A 32-bit number, as UIDs and sequence numbers are. */
  number32(): number {
    const n = this.number();
    if (n > 0xffffffff) throw this.error('number too large');
    return n;
  }

  quoted(): Buffer {
    if (this.buf[this.pos] !== 0x22) throw this.error('expected quoted string');
    this.pos++;
    const out: number[] = [];
    for (;;) {
      const c = this.buf[this.pos];
      if (c === undefined) throw this.error('unterminated quoted string');
      this.pos++;
      if (c === 0x22) break;
      if (c === 0x5c) {
        const n = this.buf[this.pos];
        if (n !== 0x22 && n !== 0x5c) throw this.error('bad escape in quoted string');
        out.push(n);
        this.pos++;
        continue;
      }
      if (c === 0x0d || c === 0x0a || c === 0) throw this.error('CR, LF or NUL in quoted string');
      // 8-bit data is accepted in quoted strings, as many IMAP4rev1 clients send it (RFC 9051 allows UTF-8).
      out.push(c);
    }
    return Buffer.from(out);
  }

  /** A literal "{n}" or "{n+}" / "{n-}" followed by CRLF and n octets; "~{n}" when binary allowed. */
  literal(binary = false): Buffer {
    if (binary && this.buf[this.pos] === 0x7e) this.pos++;
    if (this.buf[this.pos] !== 0x7b) throw this.error('expected literal');
    this.pos++;
    const n = this.number();
    if (this.buf[this.pos] === 0x2b || this.buf[this.pos] === 0x2d) this.pos++;
    if (this.buf[this.pos] !== 0x7d || this.buf[this.pos + 1] !== 0x0d || this.buf[this.pos + 2] !== 0x0a) throw this.error('bad literal');
    this.pos += 3;
    if (this.pos + n > this.buf.length) throw this.error('short literal');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** A literal (incl. literal8 "~{n}") whose data is in the buffer or in a file (APPEND messages). */
  literalData(): { data: Buffer } | { file: MsgFile } {
    if (this.buf[this.pos] === 0x7e) this.pos++;
    if (this.buf[this.pos] !== 0x7b) throw this.error('expected literal');
    const open = this.pos;
    this.pos++;
    const n = this.number();
    if (this.buf[this.pos] === 0x2b || this.buf[this.pos] === 0x2d) this.pos++;
    if (this.buf[this.pos] !== 0x7d || this.buf[this.pos + 1] !== 0x0d || this.buf[this.pos + 2] !== 0x0a) throw this.error('bad literal');
    const file = this.externals.get(this.pos + 3);
    if (file) {
      this.pos += 3;
      return { file };
    }
    this.pos = open;
    return { data: this.literal(true) };
  }

  string(): Buffer {
    return this.buf[this.pos] === 0x22 ? this.quoted() : this.literal();
  }

  astringBuf(): Buffer {
    const c = this.buf[this.pos];
    if (c === 0x22 || c === 0x7b) return this.string();
    const start = this.pos;
    while (this.pos < this.buf.length && isAstringChar(this.buf[this.pos]!)) this.pos++;
    if (start === this.pos) throw this.error('expected string');
    return this.buf.subarray(start, this.pos);
  }

  astring(): string {
    const b = this.astringBuf();
    const s = b.toString('utf8');
    if (s.includes('\ufffd') && !b.includes(Buffer.from('\ufffd'))) throw this.error('invalid UTF-8');
    return s;
  }

  /** nstring: string or NIL. */
  nstring(): string | null {
    if (this.take('NIL')) return null;
    return this.string().toString('utf8');
  }

  /** list-mailbox: wildcards allowed (RFC 9051 6.3.9). */
  listMailbox(): string {
    const c = this.buf[this.pos];
    if (c === 0x22 || c === 0x7b) return this.string().toString('utf8');
    const s = this.run(isListChar);
    if (s === '') throw this.error('expected mailbox pattern');
    return s;
  }

  /** A flag: system flag "\Name", keyword atom; "\*" only when allowed. */
  flag(allowWildcard = false): string {
    if (this.buf[this.pos] === 0x5c) {
      this.pos++;
      if (allowWildcard && this.take('*')) return '\\*';
      return '\\' + this.atom();
    }
    return this.atom();
  }

  /** "(" flag *(SP flag) ")", or a single flag when parens are optional. */
  flagList(parensOptional = false): string[] {
    const paren = this.buf[this.pos] === 0x28;
    if (!paren && !parensOptional) throw this.error('expected flag list');
    if (paren) this.pos++;
    const flags: string[] = [];
    if (paren && this.buf[this.pos] === 0x29) {
      this.pos++;
      return flags;
    }
    for (;;) {
      flags.push(this.flag());
      if (paren && this.buf[this.pos] === 0x29) {
        this.pos++;
        return flags;
      }
      if (!paren && this.buf[this.pos] !== 0x20) return flags;
      if (!paren && this.buf[this.pos + 1] !== 0x5c && !isAtomChar(this.buf[this.pos + 1] ?? 0)) return flags;
      this.space();
    }
  }

  seqSet(): SeqSet {
    if (this.take('$')) return { saved: true, ranges: [] };
    const ranges: SeqRange[] = [];
    for (;;) {
      const a = this.take('*') ? 0 : this.number32();
      let b = a;
      if (this.take(':')) b = this.take('*') ? 0 : this.number32();
      if ((a === 0 && this.buf[this.pos - 1] !== 0x2a) || (b === 0 && this.buf[this.pos - 1] !== 0x2a)) throw this.error('sequence number 0');
      ranges.push({ start: a, end: b });
      if (!this.take(',')) break;
    }
    return { ranges };
  }

  /** date: d-Mon-yyyy, optionally quoted (RFC 9051 9 "date"). Returns UTC midnight ms. */
  date(): number {
    const quoted = this.take('"');
    const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})/.exec(this.buf.toString('latin1', this.pos, this.pos + 11));
    if (!m) throw this.error('expected date');
    const mon = months.indexOf(m[2]!.toLowerCase());
    if (mon < 0) throw this.error('bad month');
    this.pos += m[0].length;
    if (quoted) this.expect('"');
    return Date.UTC(Number(m[3]), mon, Number(m[1]));
  }

  /** date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 9051 9). Returns ms since epoch. */
  dateTime(): number {
    const m = /^"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"/.exec(this.buf.toString('latin1', this.pos, this.pos + 28));
    if (!m) throw this.error('expected date-time');
    const mon = months.indexOf(m[2]!.toLowerCase());
    if (mon < 0) throw this.error('bad month');
    this.pos += m[0].length;
    const zone = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
    return Date.UTC(Number(m[3]), mon, Number(m[1]!.trim()), Number(m[4]), Number(m[5]), Number(m[6])) - zone * 60_000;
  }
}

/** Formats an INTERNALDATE (RFC 9051 9 "date-time"), in UTC. */
export function formatDateTime(ms: number): string {
  const d = new Date(ms);
  const mon = months[d.getUTCMonth()]!;
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `"${p2(d.getUTCDate())}-${mon[0]!.toUpperCase()}${mon.slice(1)}-${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000"`;
}

/** Encodes a string for a response: atom-safe quoted string, or literal when needed. */
export function astringOut(s: string | Buffer, utf8: boolean): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  let quotable = b.length < 1024;
  for (const c of b) {
    if (c === 0x0d || c === 0x0a || c === 0 || (c >= 0x80 && !utf8)) {
      quotable = false;
      break;
    }
  }
  if (quotable) return Buffer.from(`"${b.toString('utf8').replace(/(["\\])/g, '\\$1')}"`);
  return Buffer.concat([Buffer.from(`{${b.length}}\r\n`), b]);
}
