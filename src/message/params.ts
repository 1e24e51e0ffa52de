// MIME header values with parameters: Content-Type (RFC 2045 5.1),
// Content-Disposition (RFC 2183 2), with RFC 2231 continuations and
// charsets. Input and output are header byte strings (see header.ts);
// RFC 2231 values are converted to the UTF-8 bytes of their text.

import { decodeCharset, isSupportedCharset } from './charset.js';
import { textToBytes } from './header.js';

export type Params = [name: string, value: string][];

export interface MimeValue {
  /** The leading token (e.g. "text/plain"), comments removed, as written. */
  value: string;
  /** Parameters in order of first appearance, names lower-cased. */
  params: Params;
}

function isWsp(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

/** Parse "value; a=b; c="d"" leniently: comments, missing semicolons, unterminated quotes. */
export function parseMimeValue(s: string): MimeValue {
  const n = s.length;
  let i = 0;
  const skipCfws = () => {
    for (;;) {
      while (i < n && isWsp(s[i])) i++;
      if (s[i] !== '(') return;
      // RFC 2045 5.1 allows RFC 822 comments; they nest.
      let depth = 0;
      for (; i < n; i++) {
        const c = s[i];
        if (c === '\\') i++;
        else if (c === '(') depth++;
        else if (c === ')' && --depth === 0) {
          i++;
          break;
        }
      }
    }
  };
  const readToken = (stop: string) => {
    const start = i;
    while (i < n && !isWsp(s[i]) && !stop.includes(s[i]!)) i++;
    return s.slice(start, i);
  };

  skipCfws();
  let value = readToken(';(');
  for (;;) {
    // RFC 2045 5.1 uses RFC 822 lexical rules: white space and comments may surround "/".
    const save = i;
    skipCfws();
    if (i < n && s[i] !== ';' && (s[i] === '/' || value.endsWith('/'))) value += readToken(';(');
    else {
      i = save;
      break;
    }
  }
  const raw: Params = [];
  while (i < n) {
    skipCfws();
    if (i >= n) break;
    if (s[i] === ';') {
      i++;
      continue;
    }
    const attr = readToken('=;("');
    skipCfws();
    if (s[i] !== '=') {
      if (!attr) i++; // a stray quote or parenthesis: step over it
      continue;
    }
    i++;
    skipCfws();
    let val: string;
    if (s[i] === '"') {
      val = '';
      for (i++; i < n && s[i] !== '"'; i++) {
        if (s[i] === '\\' && i + 1 < n) i++;
        val += s[i];
      }
      i++;
    } else {
      val = readToken(';');
      // A value with unquoted spaces ("name=my file.txt"): words up to the next ";" that
      // do not look like a parameter belong to it.
      const save = i;
      skipCfws();
      const semi = s.indexOf(';', i);
      const rest = s.slice(i, semi < 0 ? n : semi);
      if (rest && !rest.includes('=')) {
        val += ' ' + rest.trim();
        i = semi < 0 ? n : semi;
      } else i = save;
    }
    if (attr) raw.push([attr.toLowerCase(), val]);
  }
  return { value, params: mergeRfc2231(raw) };
}

interface Pending {
  plain?: string;
  segments?: { n: number; encoded: boolean; value: string }[];
}

/** RFC 2231 3 (continuations) and 4 (charset'language'%XX). */
function mergeRfc2231(raw: Params): Params {
  const byName = new Map<string, Pending>();
  for (const [attr, value] of raw) {
    const encoded = attr.endsWith('*');
    const a = encoded ? attr.slice(0, -1) : attr;
    const m = /^(.+)\*(\d{1,4})$/.exec(a);
    const name = m ? m[1]! : a;
    let p = byName.get(name);
    if (!p) byName.set(name, (p = {}));
    if (m || encoded) (p.segments ??= []).push({ n: m ? Number(m[2]) : 0, encoded, value });
    else p.plain ??= value;
  }
  const out: Params = [];
  for (const [name, p] of byName) {
    if (!p.segments) {
      out.push([name, p.plain!]);
      continue;
    }
    const segs = p.segments.sort((x, y) => x.n - y.n);
    let charset = '';
    const bytes: Buffer[] = [];
    segs.forEach((seg, idx) => {
      let v = seg.value;
      if (seg.encoded && idx === 0) {
        const q1 = v.indexOf("'");
        const q2 = q1 < 0 ? -1 : v.indexOf("'", q1 + 1);
        if (q2 >= 0) {
          charset = v.slice(0, q1);
          v = v.slice(q2 + 1);
        }
      }
      bytes.push(Buffer.from(seg.encoded ? percentDecode(v) : v, 'latin1'));
    });
    const buf = Buffer.concat(bytes);
    // An unknown charset leaves the octets as they are rather than guessing.
    const value = charset && isSupportedCharset(charset) ? textToBytes(decodeCharset(buf, charset)) : buf.toString('latin1');
    out.push([name, value]);
  }
  return out;
}

function percentDecode(v: string): string {
  return v.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** Case-insensitive parameter lookup. */
export function getParam(params: Params | undefined, name: string): string | undefined {
  const key = name.toLowerCase();
  return params?.find(([k]) => k === key)?.[1];
}
