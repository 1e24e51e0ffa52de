// IMAP renderings of a parsed message (src/message/part.ts): ENVELOPE, BODY
// and BODYSTRUCTURE (RFC 9051 7.5.2, RFC 3501 7.4.2), and the byte ranges of
// BODY[section] (RFC 9051 6.4.5).
//
// Renderers return a Buffer holding the data item's value, e.g. "(...)",
// ready to follow "ENVELOPE " or "BODYSTRUCTURE " on the wire: strings that
// cannot be quoted are sent as literals, whose counts are in bytes.

import { isUtf8 } from 'node:buffer';
import { isGroup, type AddressItem, type Mailbox } from '../message/address.js';
import { parseHeader } from '../message/header.js';
import type { Envelope, Part } from '../message/part.js';
import type { Params } from '../message/params.js';

export interface RenderOptions {
  /**
   * The client enabled UTF8=ACCEPT or IMAP4rev2 (RFC 6855 3, RFC 9051):
   * valid UTF-8 may then be sent in quoted strings, RFC 2231 parameter
   * values are sent decoded, and message/global is shown as an
   * encapsulated message.
   */
  utf8?: boolean;
}

/** A string (header byte string, see message/header.ts) as quoted or literal; NIL if undefined. */
function str(v: string | undefined, o: RenderOptions): string {
  if (v === undefined) return 'NIL';
  // NUL can be in neither quoted strings nor literals (RFC 9051 CHAR8 is %x01-ff).
  if (v.includes('\0')) v = v.replace(/\0/g, '');
  let quotable = !/[\r\n]/.test(v);
  if (quotable && /[\x80-\xff]/.test(v)) {
    // RFC 9051 QUOTED-CHAR admits UTF-8 only; RFC 3501 admits no 8-bit at all.
    quotable = !!o.utf8 && isUtf8(Buffer.from(v, 'latin1'));
  }
  if (quotable) return '"' + v.replace(/["\\]/g, '\\$&') + '"';
  return `{${v.length}}\r\n${v}`;
}

// RFC 2231 7 attribute-char: printable ASCII except space, "*", "'", "%" and tspecials
const ATTRIBUTE_CHAR = /[!#$&+\-.0-9A-Z^_`a-z{|}~]/;

function params(list: Params | undefined, o: RenderOptions): string {
  if (!list?.length) return 'NIL';
  const out: string[] = [];
  for (const [name, value] of list) {
    if (!o.utf8 && /[\x80-\xff]/.test(value) && isUtf8(Buffer.from(value, 'latin1'))) {
      // RFC 9051 7.5.2 wants RFC 2231 decoded values, but without UTF-8 on the
      // connection the 7-bit RFC 2231 form is the one a client can interpret.
      let enc = "utf-8''";
      for (const ch of value) enc += ATTRIBUTE_CHAR.test(ch) ? ch : '%' + ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
      out.push(str(name + '*', o), str(enc, o));
    } else {
      out.push(str(name, o), str(value, o));
    }
  }
  return '(' + out.join(' ') + ')';
}

function addresses(list: AddressItem[] | undefined, o: RenderOptions): string {
  if (!list?.length) return 'NIL';
  let s = '(';
  const mailbox = (m: Mailbox) => {
    // A NIL host marks group syntax (RFC 9051 7.5.2), so a plain address missing parts gets "".
    s += `(${str(m.name, o)} ${str(m.adl, o)} ${str(m.mailbox ?? '', o)} ${str(m.host ?? '', o)})`;
  };
  for (const item of list) {
    if (isGroup(item)) {
      s += `(NIL NIL ${str(item.group, o)} NIL)`;
      item.members.forEach(mailbox);
      s += '(NIL NIL NIL NIL)';
    } else mailbox(item);
  }
  return s + ')';
}

function envelopeString(env: Envelope | undefined, o: RenderOptions): string {
  const e = env ?? {};
  // RFC 9051 7.5.2: absent or empty Sender and Reply-To take the value of From.
  return (
    '(' +
    [
      str(e.date, o),
      str(e.subject, o),
      addresses(e.from, o),
      addresses(e.sender ?? e.from, o),
      addresses(e.replyTo ?? e.from, o),
      addresses(e.to, o),
      addresses(e.cc, o),
      addresses(e.bcc, o),
      str(e.inReplyTo, o),
      str(e.messageId, o),
    ].join(' ') +
    ')'
  );
}

function disposition(p: Part, o: RenderOptions): string {
  return p.disposition === undefined ? 'NIL' : `(${str(p.disposition, o)} ${params(p.dispositionParams, o)})`;
}

function language(p: Part, o: RenderOptions): string {
  return p.language ? '(' + p.language.map((l) => str(l, o)).join(' ') + ')' : 'NIL';
}

// RFC 9051 7.5.2 body-type-mpart needs at least one body: an empty multipart gets an empty text part.
const EMPTY_PART: Part = { start: 0, body: 0, end: 0, lines: 0, type: 'text', subtype: 'plain', params: [['charset', 'us-ascii']] };

function bodyString(p: Part, ext: boolean, o: RenderOptions): string {
  if (p.parts) {
    const kids = p.parts.length ? p.parts : [EMPTY_PART];
    let s = kids.map((c) => '(' + bodyString(c, ext, o) + ')').join('') + ' ' + str(p.subtype, o);
    if (ext) s += ` ${params(p.params, o)} ${disposition(p, o)} ${language(p, o)} ${str(p.location, o)}`;
    return s;
  }
  let list = p.params;
  if (p.type === 'text' && !list?.some(([k]) => k === 'charset')) {
    // RFC 2046 4.1.2: a text part without charset is US-ASCII; say so explicitly.
    list = [...(list ?? []), ['charset', 'us-ascii']];
  }
  // RFC 3501 knows only MESSAGE/RFC822 as encapsulated message; RFC 9051 adds GLOBAL (RFC 6532 3.7).
  const isMessage = p.type === 'message' && (p.subtype === 'rfc822' || (p.subtype === 'global' && !!o.utf8));
  let s = `${str(p.type, o)} ${str(p.subtype, o)} ${params(list, o)} ${str(p.id, o)} ${str(p.description, o)} ${str(p.encoding ?? '7bit', o)} ${p.end - p.body}`;
  if (isMessage) {
    // An encapsulated message that was not parsed (encoded, or past a nesting limit) still needs
    // an envelope and a body in this form: empty ones.
    const inner = p.message ? bodyString(p.message, ext, o) : bodyString(EMPTY_PART, ext, o);
    s += ` ${envelopeString(p.message?.envelope, o)} (${inner}) ${p.lines ?? 0}`;
  } else if (p.type === 'text') {
    s += ` ${p.lines ?? 0}`;
  }
  if (ext) s += ` ${str(p.md5, o)} ${disposition(p, o)} ${language(p, o)} ${str(p.location, o)}`;
  return s;
}

/** ENVELOPE of a message (the top part, or a part's encapsulated message). */
export function renderEnvelope(env: Envelope | undefined, o: RenderOptions = {}): Buffer {
  return Buffer.from(envelopeString(env, o), 'latin1');
}

/** BODY: the structure without extension data. */
export function renderBody(root: Part, o: RenderOptions = {}): Buffer {
  return Buffer.from('(' + bodyString(root, false, o) + ')', 'latin1');
}

/** BODYSTRUCTURE: the structure with extension data. */
export function renderBodyStructure(root: Part, o: RenderOptions = {}): Buffer {
  return Buffer.from('(' + bodyString(root, true, o) + ')', 'latin1');
}

export type SectionText = 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

/** A BODY[section] specifier (RFC 9051 6.4.5). */
export interface Section {
  /** Part numbers, e.g. [1, 2, 3] for "1.2.3"; empty for the message itself. */
  part: number[];
  text?: SectionText;
  /** Field names for HEADER.FIELDS and HEADER.FIELDS.NOT. */
  fields?: string[];
}

/**
 * Parse a section specifier as between the brackets of BODY[...], e.g.
 * "1.2.HEADER.FIELDS (From To)". Field names may be atoms or quoted
 * strings; a command parser that handles literals can build a Section
 * itself. Returns null if the syntax is invalid.
 */
export function parseSection(spec: string): Section | null {
  const part: number[] = [];
  let rest = spec;
  for (let m; (m = /^([1-9][0-9]{0,8})(\.|$)/.exec(rest)); ) {
    part.push(Number(m[1]));
    rest = rest.slice(m[0].length);
    if (!m[2]) break;
    if (!rest) return null; // trailing "."
  }
  const m = /^(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?(?: \((.*)\))?$/i.exec(rest);
  if (!m) return null;
  const text = m[1]?.toUpperCase() as SectionText | undefined;
  const hasList = m[2] !== undefined;
  if ((text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT') !== hasList) return null;
  if (text === 'MIME' && !part.length) return null;
  const s: Section = { part };
  if (text) s.text = text;
  if (hasList) {
    const fields: string[] = [];
    const list = m[2]!.trim();
    const re = /\s*(?:"((?:[^"\\]|\\.)*)"|([^\s"()]+))/y;
    while (re.lastIndex < list.length) {
      const f = re.exec(list);
      if (!f) return null;
      fields.push(f[1] !== undefined ? f[1].replace(/\\(.)/g, '$1') : f[2]!);
    }
    if (!fields.length) return null;
    s.fields = fields;
  }
  return s;
}

/** Sub-parts addressed by the next part number (RFC 9051 6.4.5). */
function children(p: Part, isMessage: boolean): Part[] {
  if (!isMessage && p.message) return children(p.message, true);
  if (p.parts) return p.parts;
  // A message that is not multipart has one part: its body.
  return isMessage ? [p] : [];
}

/** The part with this part number (e.g. [1, 2]), or null if there is none. */
export function findPart(root: Part, path: number[]): Part | null {
  let cur = root;
  let isMessage = true;
  for (const n of path) {
    const next = children(cur, isMessage)[n - 1];
    if (!next) return null;
    cur = next;
    isMessage = false;
  }
  return cur;
}

/**
 * The byte range of a section, or null if the part does not exist or has
 * no such section. HEADER.FIELDS[.NOT] yields the header range to filter
 * with sectionBytes().
 */
export function sectionRange(root: Part, s: Section): { start: number; end: number } | null {
  let msg: Part | undefined = root;
  if (s.part.length) {
    const p = findPart(root, s.part);
    if (!p) return null;
    if (!s.text) return { start: p.body, end: p.end };
    if (s.text === 'MIME') return { start: p.start, end: p.body };
    // HEADER and TEXT address an encapsulated message (RFC 9051 6.4.5).
    msg = p.message;
    if (!msg) return null;
  } else if (!s.text) {
    return { start: root.start, end: root.end };
  }
  return s.text === 'TEXT' ? { start: msg.body, end: msg.end } : { start: msg.start, end: msg.body };
}

/** The bytes of BODY[section] of a message (before any <partial> slicing). */
export function sectionBytes(message: Buffer, root: Part, s: Section): Buffer | null {
  const r = sectionRange(root, s);
  if (!r) return null;
  if (s.text !== 'HEADER.FIELDS' && s.text !== 'HEADER.FIELDS.NOT') return message.subarray(r.start, r.end);
  const names = new Set(s.fields!.map((f) => f.toLowerCase()));
  const keep = s.text === 'HEADER.FIELDS';
  const out: Buffer[] = [];
  const header = parseHeader(message, r.start, r.end);
  for (const f of header.fields) {
    if (names.has(f.key) !== keep) continue;
    out.push(f.raw);
    if (f.raw[f.raw.length - 1] !== 10) out.push(CRLF);
  }
  // RFC 9051 6.4.5: the blank line is always included, except when the message has none.
  const last = header.fields[header.fields.length - 1];
  out.push(message.subarray(last ? last.end : r.start, r.end));
  return Buffer.concat(out);
}

const CRLF = Buffer.from('\r\n');
