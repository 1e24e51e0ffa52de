// Tag=value lists, RFC 6376 3.2, used by DKIM-Signature fields and key records.

import { trimEnd } from './message.js';

export class TagError extends Error {
  override name = 'TagError';
}

interface TagSpan {
  name: string;
  value: string;
  /** Offsets in the input of the value's first char and of the end of its tag-spec. */
  valueStart: number;
  end: number;
}

/** RFC 1035 names as DKIM uses them: d=, s= and the i= domain (RFC 6376 3.5). */
export const DOMAIN = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
/** RFC 5322 3.6.8 field-name. */
export const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

const trimFWS = (s: string) => trimEnd(s.replace(/^[ \t\r\n]+/, ''), ' \t\r\n');
// VALCHAR (RFC 6376 3.2) plus 8-bit bytes for UTF-8 (RFC 8616), and FWS inside a value.
const BAD_VALUE = /[^\x21-\x3a\x3c-\x7e\x80-\xff \t\r\n]/;

/** Quotes input for an error message, shortened: messages end up in header fields. */
export function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? s.slice(0, 40) + '...' : s);
}

function spans(s: string): TagSpan[] {
  const out: TagSpan[] = [];
  let start = 0;
  while (start <= s.length) {
    let end = s.indexOf(';', start);
    if (end < 0) end = s.length;
    const spec = s.slice(start, end);
    // RFC 6376 3.2 allows an empty spec only after a final ";"; stray ";;" are tolerated too.
    if (trimFWS(spec) !== '') {
      const eq = spec.indexOf('=');
      if (eq < 0) throw new TagError(`tag without "=": ${quote(trimFWS(spec))}`);
      const name = trimFWS(spec.slice(0, eq));
      if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) throw new TagError(`invalid tag name ${quote(name)}`);
      const value = trimFWS(spec.slice(eq + 1));
      if (BAD_VALUE.test(value)) throw new TagError(`invalid character in tag ${name}`);
      out.push({ name, value, valueStart: start + eq + 1, end });
    }
    start = end + 1;
  }
  return out;
}

/** Parses a tag-list; tag names are case-sensitive and may not repeat (RFC 6376 3.2). */
export function parseTags(s: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const { name, value } of spans(s)) {
    if (tags.has(name)) throw new TagError(`duplicate tag ${name}`);
    tags.set(name, value);
  }
  return tags;
}

/**
 * A DKIM-Signature field with its b= value and the whitespace around it removed, as it is
 * hashed (RFC 6376 3.7). `raw` is the whole field, name included.
 */
export function withoutSignature(raw: string): string {
  const colon = raw.indexOf(':');
  const b = spans(raw.slice(colon + 1)).find((t) => t.name === 'b');
  if (!b) return raw;
  return raw.slice(0, colon + 1 + b.valueStart) + raw.slice(colon + 1 + b.end);
}

/** Removes FWS from a base64 value and decodes it; rejects other characters. */
export function decodeBase64(value: string, tag: string): Buffer {
  const s = value.replace(/[ \t\r\n]+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) throw new TagError(`invalid base64 in ${tag}=`);
  return Buffer.from(s, 'base64');
}

/** Splits a colon-separated list, trimming FWS around each item. */
export function colonList(value: string): string[] {
  return value.split(':').map((v) => trimFWS(v));
}

/** Decodes dkim-quoted-printable (RFC 6376 2.11): FWS is dropped, =XX is one byte. */
export function decodeQP(value: string, tag: string): string {
  const s = value.replace(/[ \t\r\n]+/g, '');
  if (/=(?![0-9A-Fa-f]{2})/.test(s)) throw new TagError(`invalid quoted-printable in ${tag}=`);
  return s.replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
