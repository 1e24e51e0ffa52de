// Header block splitting (RFC 5322 2.2, 3.6, 4.5).
//
// Header data is handled as "byte strings": JS strings in which every char
// code (0-255) stands for one byte of the message (latin1 mapping). They
// round-trip exactly through Buffer.from(s, 'latin1'), survive JSON, and let
// 8-bit garbage and RFC 6532 UTF-8 alike be kept without loss. Use
// bytesToText() or decodeHeaderText() to get display text.

import { isUtf8 } from 'node:buffer';
import libmime from 'libmime';
import charsets from 'libmime/lib/charset.js';

const LF = 10;
const CR = 13;
const SP = 32;
const HT = 9;
const COLON = 58;

export class HeaderField {
  constructor(
    readonly buf: Buffer,
    /** Field name as written, whitespace before the colon removed (RFC 5322 4.5.8 obs-optional). A line without colon yields the whole line, with hasColon false. */
    readonly name: string,
    /** Offset of the first byte of the field. */
    readonly start: number,
    /** Offset just past the colon (equals end of first line when there is no colon). */
    readonly valueStart: number,
    /** Offset just past the field's final line terminator (or end of input). */
    readonly end: number,
    readonly hasColon: boolean,
  ) {}

  /** Lower-cased name, for case-insensitive comparison (RFC 5322 1.2.2). */
  get key(): string {
    return this.name.toLowerCase();
  }

  /** The exact bytes of the field, folding and line terminator included. */
  get raw(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }

  /** The bytes after the colon, folding and line terminator included. */
  get rawValue(): Buffer {
    return this.buf.subarray(this.valueStart, this.end);
  }

  /** Unfolded value as a byte string, surrounding whitespace trimmed. */
  get value(): string {
    return unfold(this.buf, this.valueStart, this.end);
  }
}

/** Unfold (RFC 5322 2.2.3: remove CRLF/LF, keep the WSP after it) and trim a byte range. */
export function unfold(buf: Buffer, start: number, end: number): string {
  while (start < end && isWsp(buf[start]!)) start++;
  while (end > start && isWsp(buf[end - 1]!)) end--;
  const s = buf.toString('latin1', start, end);
  return s.includes('\n') ? s.replace(/\r?\n/g, '') : s;
}

function isWsp(c: number): boolean {
  return c === SP || c === HT || c === CR || c === LF;
}

export class Header {
  private index?: Map<string, HeaderField[]>;
  constructor(
    readonly fields: HeaderField[],
    /** Offset of the first header byte. */
    readonly start: number,
    /** Offset where the body starts: just past the empty line, or where the header stopped. */
    readonly end: number,
  ) {}

  /** All fields with this name, in message order. */
  getAll(name: string): HeaderField[] {
    if (!this.index) {
      this.index = new Map();
      for (const f of this.fields) {
        const k = f.key;
        const list = this.index.get(k);
        if (list) list.push(f);
        else this.index.set(k, [f]);
      }
    }
    return this.index.get(name.toLowerCase()) ?? [];
  }

  /** The first field with this name. */
  get(name: string): HeaderField | undefined {
    return this.getAll(name)[0];
  }
}

/** Called for each field: name as [nameStart, nameEnd), value from valueStart, field ends at end. */
export type FieldVisitor = (nameStart: number, nameEnd: number, valueStart: number, end: number, hasColon: boolean) => void;

/**
 * Walk the header fields of buf[start, end) without allocating per field.
 * The header ends at the first empty line (RFC 5322 2.1), at `end`, or at a
 * line for which `stop(lineStart, lineEnd)` is true (a MIME boundary in a
 * part missing its blank line). Bare LF is accepted as a line terminator.
 * Returns the offset of the body.
 */
export function scanHeader(
  buf: Buffer,
  start: number,
  end: number,
  visit: FieldVisitor,
  stop?: (lineStart: number, lineEnd: number) => boolean,
): number {
  let pos = start;
  let fStart = -1;
  let nameEnd = 0;
  let valueStart = 0;
  let colon = false;
  const flush = (fieldEnd: number) => {
    if (fStart >= 0) visit(fStart, nameEnd, valueStart, fieldEnd, colon);
    fStart = -1;
  };
  while (pos < end) {
    let nl = buf.indexOf(LF, pos);
    if (nl < 0 || nl >= end) nl = end;
    const next = nl < end ? nl + 1 : end;
    const lineEnd = nl > pos && buf[nl - 1] === CR ? nl - 1 : nl;
    if (lineEnd === pos) {
      flush(pos);
      return next;
    }
    const c = buf[pos];
    if (stop && c === 45 && stop(pos, lineEnd)) {
      flush(pos);
      return pos;
    }
    if ((c === SP || c === HT) && fStart >= 0) {
      pos = next; // RFC 5322 2.2.3: continuation of the previous field
      continue;
    }
    flush(pos);
    fStart = pos;
    let i = pos;
    while (i < lineEnd && buf[i] !== COLON) i++;
    colon = i < lineEnd;
    valueStart = colon ? i + 1 : lineEnd;
    while (i > pos && (buf[i - 1] === SP || buf[i - 1] === HT)) i--;
    nameEnd = i;
    pos = next;
  }
  flush(end);
  return end;
}

/** Split buf[start, end) into header fields. */
export function parseHeader(
  buf: Buffer,
  start = 0,
  end = buf.length,
  stop?: (lineStart: number, lineEnd: number) => boolean,
): Header {
  const fields: HeaderField[] = [];
  const bodyStart = scanHeader(
    buf,
    start,
    end,
    (ns, ne, vs, fe, hasColon) => fields.push(new HeaderField(buf, buf.toString('latin1', ns, ne), ns, vs, fe, hasColon)),
    stop,
  );
  return new Header(fields, start, bodyStart);
}

/** Byte string to text: UTF-8 when valid (RFC 6532), else windows-1252. */
export function bytesToText(bstr: string): string {
  if (!/[\x80-\xff]/.test(bstr)) return bstr;
  const b = Buffer.from(bstr, 'latin1');
  return isUtf8(b) ? b.toString('utf8') : charsets.decode(b, 'windows-1252');
}

/** Byte string of an unstructured field (e.g. Subject) to display text, RFC 2047 encoded-words decoded. */
export function decodeHeaderText(bstr: string): string {
  const s = bytesToText(bstr);
  return s.includes('=?') ? libmime.decodeWords(s) : s;
}

/** Text to the byte string of its UTF-8 encoding. */
export function textToBytes(text: string): string {
  return /[^\x00-\x7f]/.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text;
}
