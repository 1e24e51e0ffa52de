// MIME structure of a stored message (RFC 2045, RFC 2046, RFC 5322, RFC 6532).
//
// parseMessage() walks the message once, keeping a stack of the active
// multipart boundaries, so the work is linear in the message size however
// deep the nesting. The result is a plain JSON tree of byte offsets and
// header values (header byte strings, see header.ts): it is stored at
// delivery and answers FETCH, SEARCH and display without reparsing.

import { isGroup, parseAddressList, type AddressItem } from './address.js';
import { scanHeader, unfold } from './header.js';
import { parseMimeValue, type Params } from './params.js';

export interface Envelope {
  date?: string;
  subject?: string;
  from?: AddressItem[];
  sender?: AddressItem[];
  replyTo?: AddressItem[];
  to?: AddressItem[];
  cc?: AddressItem[];
  bcc?: AddressItem[];
  inReplyTo?: string;
  messageId?: string;
}

export interface Part {
  /** Offset of the part's header (its MIME header, or the message header). */
  start: number;
  /** Offset of the body, just past the header and its blank line. */
  body: number;
  /** Offset just past the body; a multipart child excludes the line break before the next delimiter (RFC 2046 5.1.1). */
  end: number;
  /**
   * Lines in the body: its line breaks (RFC 5322 2.1: a line ends with CRLF;
   * bare LF counted too). Absent on a parsed multipart, where IMAP has no use for it.
   */
  lines?: number;
  /** Media type and subtype, lower-cased (RFC 2045 5.1: case-insensitive). */
  type: string;
  subtype: string;
  params?: Params;
  id?: string;
  description?: string;
  /** Content-Transfer-Encoding, lower-cased; absent means 7bit (RFC 2045 6.1). */
  encoding?: string;
  md5?: string;
  /** Content-Disposition type, lower-cased (RFC 2183). */
  disposition?: string;
  dispositionParams?: Params;
  language?: string[];
  location?: string;
  /** On the top part and on the root part of each encapsulated message. */
  envelope?: Envelope;
  /** The encapsulated message of a message/rfc822 or message/global part. */
  message?: Part;
  /** Children of a multipart; absent when the multipart was not parsed (no boundary, or a limit). */
  parts?: Part[];
}

export interface ParseOptions {
  /** Multipart and message nesting beyond this depth (default 32, at most 1000) is left unparsed (opaque). */
  maxDepth?: number;
  /** Total parts (default 10000); beyond it, multiparts get no further children. */
  maxParts?: number;
}

const LF = 10;
const CR = 13;
const DASH = 45;
const NL_DASHES = Buffer.from('\n--', 'latin1');
// RFC 2046 5.1.1 allows 70; longer ones are still accepted up to a line.
const MAX_BOUNDARY = 998;
const MAX_ADDRESSES = 1000;

const ENVELOPE_FIELDS: Record<string, keyof Envelope> = {
  date: 'date',
  subject: 'subject',
  from: 'from',
  sender: 'sender',
  'reply-to': 'replyTo',
  to: 'to',
  cc: 'cc',
  bcc: 'bcc',
  'in-reply-to': 'inReplyTo',
  'message-id': 'messageId',
};
const ADDRESS_FIELDS = new Set(['from', 'sender', 'replyTo', 'to', 'cc', 'bcc']);
const MIME_FIELDS = new Set([
  'content-type',
  'content-transfer-encoding',
  'content-id',
  'content-description',
  'content-disposition',
  'content-language',
  'content-location',
  'content-md5',
]);

interface Delimiter {
  /** Offset of the delimiter line. */
  at: number;
  /** Index of the boundary in the stack. */
  level: number;
  close: boolean;
  /** Offset after the delimiter line. */
  next: number;
}

/** Parse a message into its MIME tree. Never throws on malformed input. */
export function parseMessage(buf: Buffer, opts: ParseOptions = {}): Part {
  // The parser recurses once per level, so the depth also bounds the stack.
  return new Parser(buf, Math.min(opts.maxDepth ?? 32, 1000), opts.maxParts ?? 10000).entity(0, 0, false, true)[0];
}

class Parser {
  private bounds: Buffer[] = [];
  private count = 0;
  private readonly isDelimiter = (pos: number) => this.delimiterAt(pos) !== null;

  constructor(
    private readonly buf: Buffer,
    private readonly maxDepth: number,
    private readonly maxParts: number,
  ) {}

  /** Parse one entity (header + body) starting at `start`; returns it and the delimiter that ended it. */
  entity(start: number, depth: number, inDigest: boolean, isMessage: boolean): [Part, Delimiter | null] {
    const buf = this.buf;
    this.count++;
    const fields = new Map<string, [number, number]>();
    let body = scanHeader(
      buf,
      start,
      buf.length,
      (ns, ne, vs, fe) => {
        if (ne - ns > 27 || ne - ns < 2) return;
        const name = buf.toString('latin1', ns, ne).toLowerCase();
        // MIME fields: the first occurrence counts. Envelope fields: the last, as DKIM signs
        // the last instance of a repeated field (RFC 6376 5.4.2) and that is what gets verified.
        if (MIME_FIELDS.has(name) ? !fields.has(name) : isMessage && name in ENVELOPE_FIELDS) fields.set(name, [vs, fe]);
      },
      this.bounds.length ? this.isDelimiter : undefined,
    );
    const value = (name: string) => {
      const r = fields.get(name);
      return r ? unfold(buf, r[0], r[1]) : undefined;
    };

    const part = { start, body, end: body } as Part;
    setContentType(part, value('content-type'), inDigest);
    const cte = value('content-transfer-encoding');
    if (cte !== undefined) {
      const token = parseMimeValue(cte).value.toLowerCase();
      if (token) part.encoding = token;
    }
    const id = value('content-id');
    if (id !== undefined) part.id = id;
    const description = value('content-description');
    if (description !== undefined) part.description = description;
    const disposition = value('content-disposition');
    if (disposition !== undefined) {
      const d = parseMimeValue(disposition);
      if (d.value) {
        part.disposition = d.value.toLowerCase();
        if (d.params.length) part.dispositionParams = d.params;
      }
    }
    const language = value('content-language');
    if (language !== undefined) {
      // RFC 3282 2: a comma-separated list of language tags, comments allowed
      const tags = language
        .replace(/\([^)]*\)/g, ' ')
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t);
      if (tags.length) part.language = tags;
    }
    const location = value('content-location');
    if (location !== undefined) part.location = location;
    const md5 = value('content-md5');
    if (md5 !== undefined) part.md5 = md5;
    if (isMessage) part.envelope = envelope(fields, value);

    let stop: Delimiter | null;
    const canNest = depth < this.maxDepth && this.count < this.maxParts;
    const boundary = part.type === 'multipart' ? getBoundary(part.params) : undefined;
    if (part.type === 'multipart' && !boundary) {
      // RFC 2046 5.1.1 makes the boundary mandatory; without one the parts cannot be
      // found, so the body is shown as text, the default of RFC 2045 5.2.
      part.type = 'text';
      part.subtype = 'plain';
      part.params = [['charset', 'us-ascii']];
    }
    if (boundary && canNest) {
      stop = this.multipart(part, boundary, depth);
    } else if (
      part.type === 'message' &&
      (part.subtype === 'rfc822' || part.subtype === 'global') &&
      canNest &&
      isIdentityEncoding(part.encoding) &&
      !(this.bounds.length && this.delimiterAt(body))
    ) {
      // RFC 2046 5.2.1 / RFC 6532 3.7: the body is a complete message.
      const [inner, d] = this.entity(body, depth + 1, false, true);
      part.message = inner;
      stop = d;
      part.end = d ? Math.max(body, d.at - eolBefore(buf, d.at)) : buf.length;
    } else {
      stop = this.findDelimiter(body);
      if (stop?.at === body) {
        // Nothing between header and delimiter: the last line break belongs to the
        // delimiter (RFC 2046 5.1.1), so the header ends before it and the body is empty.
        part.body = Math.max(start, body - eolBefore(buf, body));
      }
      part.end = stop ? Math.max(part.body, stop.at - eolBefore(buf, stop.at)) : buf.length;
    }
    if (!part.parts) part.lines = this.lines(part);
    return [part, stop];
  }

  /** Lines of a body, reusing the counts of nested parts so that each byte is counted once. */
  private lines(p: Part): number {
    if (p.lines !== undefined) return p.lines;
    const inner = p.message ? [p.message] : p.parts;
    if (!inner) return countLines(this.buf, p.body, p.end);
    let n = 0;
    let pos = p.body;
    for (const c of inner) {
      n += countLines(this.buf, pos, c.body) + this.lines(c);
      pos = c.end;
    }
    return n + countLines(this.buf, pos, p.end);
  }

  private multipart(part: Part, boundary: string, depth: number): Delimiter | null {
    const buf = this.buf;
    const level = this.bounds.length;
    this.bounds.push(Buffer.from('--' + boundary, 'latin1'));
    const parts: Part[] = [];
    part.parts = parts;
    let d = this.findDelimiter(part.body); // everything before it is preamble
    while (d && d.level === level && !d.close && this.count < this.maxParts) {
      const [child, next] = this.entity(d.next, depth + 1, part.subtype === 'digest', false);
      parts.push(child);
      d = next;
    }
    this.bounds.pop();
    if (d && d.level === level) {
      // Close delimiter (or the part limit): the rest up to an outer delimiter is epilogue.
      d = this.findDelimiter(d.next);
    }
    part.end = d ? Math.max(part.body, d.at - eolBefore(buf, d.at)) : buf.length;
    return d;
  }

  /** The first delimiter line of any active boundary at or after line start `pos`. */
  private findDelimiter(pos: number): Delimiter | null {
    if (!this.bounds.length) return null;
    const buf = this.buf;
    for (let line = pos; ; ) {
      const d = this.delimiterAt(line);
      if (d) return d;
      const nl = buf.indexOf(NL_DASHES, line);
      if (nl < 0) return null;
      line = nl + 1;
    }
  }

  /**
   * Whether the line at `pos` starts with "--boundary" of an active multipart.
   * Like common practice, any text may follow the boundary; when boundaries
   * share a prefix the longest match wins.
   */
  private delimiterAt(pos: number): Delimiter | null {
    const buf = this.buf;
    if (buf[pos] !== DASH || buf[pos + 1] !== DASH) return null;
    let level = -1;
    let len = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      const b = this.bounds[i]!;
      if (b.length > len && buf[pos + 2] === b[2] && pos + b.length <= buf.length && buf.compare(b, 0, b.length, pos, pos + b.length) === 0) {
        level = i;
        len = b.length;
      }
    }
    if (level < 0) return null;
    const nl = buf.indexOf(LF, pos + len);
    return {
      at: pos,
      level,
      close: buf[pos + len] === DASH && buf[pos + len + 1] === DASH,
      next: nl < 0 ? buf.length : nl + 1,
    };
  }
}

function eolBefore(buf: Buffer, pos: number): number {
  if (pos >= 1 && buf[pos - 1] === LF) return pos >= 2 && buf[pos - 2] === CR ? 2 : 1;
  return 0;
}

function countLines(buf: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) if (buf[i] === LF) n++;
  return n;
}

function isIdentityEncoding(cte: string | undefined): boolean {
  return cte === undefined || cte === '7bit' || cte === '8bit' || cte === 'binary';
}

function getBoundary(params: Params | undefined): string | undefined {
  const b = params?.find(([k]) => k === 'boundary')?.[1];
  return b && b.length <= MAX_BOUNDARY && !/[\r\n]/.test(b) ? b : undefined;
}

// RFC 2045 5.1 token: no CTLs, space or tspecials
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~\x80-\xff]+$/;

function setContentType(part: Part, header: string | undefined, inDigest: boolean): void {
  if (header !== undefined) {
    const { value, params } = parseMimeValue(header);
    const slash = value.indexOf('/');
    const type = value.slice(0, slash).toLowerCase();
    const subtype = value.slice(slash + 1).toLowerCase();
    if (slash > 0 && TOKEN.test(type) && TOKEN.test(subtype)) {
      part.type = type;
      part.subtype = subtype;
      if (params.length) part.params = params;
      return;
    }
    // RFC 2045 5.2: an invalid Content-Type means the default, text/plain; charset=us-ascii.
  }
  if (inDigest && header === undefined) {
    // RFC 2046 5.1.5: the default in a digest is message/rfc822
    part.type = 'message';
    part.subtype = 'rfc822';
  } else {
    part.type = 'text';
    part.subtype = 'plain';
    part.params = [['charset', 'us-ascii']];
  }
}

function envelope(fields: Map<string, [number, number]>, value: (name: string) => string | undefined): Envelope {
  const env: Envelope = {};
  for (const [name, key] of Object.entries(ENVELOPE_FIELDS)) {
    if (!fields.has(name)) continue;
    const v = value(name)!;
    if (ADDRESS_FIELDS.has(key)) {
      const list = capAddresses(parseAddressList(v));
      if (list.length) (env as Record<string, AddressItem[]>)[key] = list;
    } else {
      (env as Record<string, string>)[key] = v;
    }
  }
  return env;
}

/** Keep at most MAX_ADDRESSES mailboxes of a field, so hostile headers cannot bloat the stored tree. */
function capAddresses(list: AddressItem[]): AddressItem[] {
  let left = MAX_ADDRESSES;
  const out: AddressItem[] = [];
  for (const item of list) {
    if (left <= 0) break;
    if (isGroup(item)) {
      const members = item.members.slice(0, left);
      left -= Math.max(1, members.length);
      out.push(members.length === item.members.length ? item : { group: item.group, members });
    } else {
      left--;
      out.push(item);
    }
  }
  return out;
}

/** Depth-first list of all parts, encapsulated messages included. */
export function allParts(root: Part): Part[] {
  const out: Part[] = [];
  const walk = (p: Part) => {
    out.push(p);
    if (p.message) walk(p.message);
    p.parts?.forEach(walk);
  };
  walk(root);
  return out;
}
