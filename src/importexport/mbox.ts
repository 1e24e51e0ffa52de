// mbox files (RFC 4155): messages, each after a "From " line with the envelope sender and
// an asctime date, with body lines quoted the "mboxrd" way (qmail's mbox(5)): a line
// matching /^>*From / gets one more ">" on writing and loses one on reading, so quoting
// is reversible. Flags are the Status and X-Status headers (mutt, Dovecot) and keywords
// X-Keywords (Dovecot); they are taken out of the message on import and written at the
// end of the header on export.
import { Flag } from '../store/flags.js';
import { lines, toLF, headerEnd } from './stream.js';
import { keywordFlags, extraKeywords } from './flags.js';

export interface MboxMessage {
  /** The message as found, line endings unchanged. */
  data: Buffer;
  flags: number;
  keywords: string[];
  /** From the "From " line, ms since epoch. */
  received?: number;
  /** Envelope sender from the "From " line, when it looks like an address. */
  mailFrom?: string;
}

export class MboxError extends Error {}

const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** asctime(3) form in UTC, as RFC 4155 asks for the "From " line: "Thu Jan  1 00:00:00 2024". */
export function asctime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** The date of a "From " line; writers add a zone before or after the year, or none (then UTC). */
export function parseAsctime(s: string): number | undefined {
  const m = /^(?:[A-Za-z]{3},? +)?([A-Za-z]{3}) +(\d{1,2}) +(\d{1,2}):(\d{2})(?::(\d{2}))?(?: +([A-Z]{1,5}|[+-]\d{4}))? +(\d{4})(?: +([+-]\d{4}))?/.exec(s.trim());
  if (!m) return undefined;
  const mon = months.findIndex((x) => x.toLowerCase() === m[1]!.toLowerCase());
  if (mon < 0) return undefined;
  const t = Date.UTC(Number(m[7]), mon, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5] ?? 0));
  const zone = /^[+-]\d{4}$/.test(m[6] ?? '') ? m[6]! : m[8];
  if (!zone) return t;
  const off = (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3))) * 60_000;
  return zone[0] === '-' ? t + off : t - off;
}

const fromLine = /^From /;
const quoted = /^>+From /;
const isBlank = (l: Buffer) => (l.length === 1 && l[0] === 10) || (l.length === 2 && l[0] === 13 && l[1] === 10);

/**
 * Messages of an mbox file, one at a time: memory is bounded by the largest message. A
 * "From " line starts a message at the start of the file or after a blank line; the blank
 * line before it belongs to the separator, not to the message.
 */
export async function* readMbox(input: AsyncIterable<Buffer | string>, o: { maxMessageSize?: number } = {}): AsyncGenerator<MboxMessage> {
  const max = o.maxMessageSize ?? 256 << 20;
  let cur: Collector | undefined;
  let prevBlank = true;
  let n = 0;
  for await (const line of lines(input)) {
    if (prevBlank && line.length >= 5 && fromLine.test(line.subarray(0, 5).toString('latin1'))) {
      if (cur) yield cur.finish();
      cur = new Collector(line.toString('latin1'), ++n, max);
      prevBlank = false;
      continue;
    }
    prevBlank = isBlank(line);
    if (!cur) {
      // Only blank lines may precede the first message.
      if (!prevBlank) throw new MboxError('not an mbox file: does not start with a "From " line');
      continue;
    }
    cur.add(line);
  }
  if (cur) yield cur.finish();
}

/** Builds one message from its lines: unquoting, and taking out the flag headers. */
class Collector {
  private parts: Buffer[] = [];
  private size = 0;
  private inHeader = true;
  /** Inside a flag header's continuation lines. */
  private skipping = false;
  private status = '';
  private xstatus = '';
  private xkeywords = '';
  private lastHeader: 'status' | 'x-status' | 'x-keywords' | '' = '';
  private readonly received?: number;
  private readonly mailFrom?: string;

  constructor(
    from: string,
    private readonly n: number,
    private readonly max: number,
  ) {
    const m = /^From +(\S*)(?: +(.*))?$/.exec(from.replace(/\r?\n$/, ''));
    this.received = m?.[2] ? parseAsctime(m[2]) : undefined;
    if (m?.[1] && m[1].includes('@')) this.mailFrom = m[1];
  }

  add(line: Buffer): void {
    if (line[0] === 62 && quoted.test(line.subarray(0, Math.min(line.length, 64)).toString('latin1'))) line = line.subarray(1);
    if (this.inHeader) {
      if (isBlank(line)) this.inHeader = false;
      else if (this.skipping && (line[0] === 32 || line[0] === 9)) {
        if (this.lastHeader === 'x-keywords') this.xkeywords += ' ' + line.toString('utf8').trim();
        return;
      } else {
        this.skipping = false;
        const m = /^(status|x-status|x-keywords)[ \t]*:(.*)$/is.exec(line.subarray(0, 4096).toString('utf8'));
        if (m) {
          const v = m[2]!.trim();
          this.lastHeader = m[1]!.toLowerCase() as Collector['lastHeader'];
          if (this.lastHeader === 'status') this.status += v;
          else if (this.lastHeader === 'x-status') this.xstatus += v;
          else this.xkeywords += ' ' + v;
          this.skipping = true;
          return;
        }
      }
    }
    this.size += line.length;
    if (this.size > this.max) throw new MboxError(`message ${this.n} is larger than ${this.max} bytes`);
    this.parts.push(line);
  }

  finish(): MboxMessage {
    let parts = this.parts;
    // The blank line before the next "From " line, or at the end, is the separator.
    const last = parts[parts.length - 1];
    if (last && isBlank(last)) parts = parts.slice(0, -1);
    let flags = 0;
    if (this.status.includes('R')) flags |= Flag.Seen;
    const xs = this.xstatus;
    if (xs.includes('A')) flags |= Flag.Answered;
    if (xs.includes('F')) flags |= Flag.Flagged;
    if (xs.includes('T')) flags |= Flag.Draft;
    if (xs.includes('D')) flags |= Flag.Deleted;
    const kw = keywordFlags(this.xkeywords.split(/[\s,]+/).filter(Boolean));
    return { data: Buffer.concat(parts), flags: flags | kw.flags, keywords: kw.keywords, received: this.received, mailFrom: this.mailFrom };
  }
}

export interface MboxOut {
  /** The stored message, CRLF line endings. */
  data: Buffer;
  flags: number;
  keywords: readonly string[];
  received: number;
  mailFrom?: string;
}

/** One message as mbox text: "From " line, LF line endings, flag headers, quoting, separator. */
export function formatMbox(m: MboxOut): Buffer {
  const msg = toLF(m.data);
  const from = `From ${m.mailFrom && !/\s/.test(m.mailFrom) ? m.mailFrom : 'MAILER-DAEMON'} ${asctime(m.received)}\n`;
  let xstatus = '';
  if (m.flags & Flag.Answered) xstatus += 'A';
  if (m.flags & Flag.Flagged) xstatus += 'F';
  if (m.flags & Flag.Draft) xstatus += 'T';
  if (m.flags & Flag.Deleted) xstatus += 'D';
  const kw = extraKeywords(m.flags, m.keywords);
  const status = `Status: ${m.flags & Flag.Seen ? 'RO' : 'O'}\n${xstatus ? `X-Status: ${xstatus}\n` : ''}${kw.length ? `X-Keywords: ${kw.join(' ')}\n` : ''}`;
  // Flag headers go last in the header, where mutt and Dovecot put them.
  const he = headerEnd(msg);
  let header: Buffer;
  let body: Buffer;
  if (he < 0) {
    const ends = msg.length === 0 || msg[msg.length - 1] === 10;
    header = Buffer.concat([msg, Buffer.from(ends ? '' : '\n')]);
    body = Buffer.from('\n');
  } else {
    const blank = msg[he - 2] === 13 ? 3 : 2;
    header = msg.subarray(0, he - blank + 1);
    body = msg.subarray(he - blank + 1);
  }
  const text = Buffer.concat([header, Buffer.from(status), body]);
  const out: Buffer[] = [Buffer.from(from)];
  let start = 0;
  while (start < text.length) {
    let nl = text.indexOf(10, start);
    if (nl < 0) nl = text.length - 1;
    const line = text.subarray(start, nl + 1);
    if ((line[0] === 70 || line[0] === 62) && /^>*From /.test(line.subarray(0, 64).toString('latin1'))) out.push(Buffer.from('>'));
    out.push(line);
    start = nl + 1;
  }
  if (text.length && text[text.length - 1] !== 10) out.push(Buffer.from('\n'));
  out.push(Buffer.from('\n'));
  return Buffer.concat(out);
}
