// Content-Transfer-Encoding decoding (RFC 2045 6) and body text.
// Decoders are lenient: invalid input is skipped or kept, never an error.

import { decodeCharset } from './charset.js';
import { getParam } from './params.js';
import type { Part } from './part.js';

// 6-bit values of the base64 alphabet (RFC 2045 6.8 table 1), -1 elsewhere
const B64 = new Int8Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => (B64[c.charCodeAt(0)] = i));

/**
 * Base64 (RFC 2045 6.8). Characters outside the alphabet are ignored; "="
 * ends a quantum, so several concatenated encodings decode in sequence. With
 * out === null only the decoded length is computed.
 */
function base64(src: Buffer, out: Buffer | null): number {
  let n = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    const v = B64[c]!;
    if (v < 0) {
      if (c === 61) bits = acc = 0; // "=": drop the partial quantum
      continue;
    }
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out) out[n] = (acc >> bits) & 0xff;
      n++;
    }
  }
  return n;
}

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  c |= 32;
  return c >= 97 && c <= 102 ? c - 87 : -1;
}

/**
 * Quoted-printable (RFC 2045 6.7): "=XX" octets, "=" at the end of a line is
 * a soft break, trailing whitespace on a line is transport padding (rule 3).
 * A "=" not followed by either is kept as it is.
 */
function quotedPrintable(src: Buffer, out: Buffer): number {
  let n = 0;
  const len = src.length;
  for (let i = 0; i < len; ) {
    const c = src[i]!;
    if (c === 32 || c === 9) {
      let j = i;
      while (j < len && (src[j] === 32 || src[j] === 9)) j++;
      if (j === len || src[j] === 10 || (src[j] === 13 && src[j + 1] === 10)) {
        i = j; // rule 3: trailing whitespace is removed
        continue;
      }
      while (i < j) out[n++] = src[i++]!;
      continue;
    }
    if (c !== 61) {
      out[n++] = c;
      i++;
      continue;
    }
    const h1 = i + 1 < len ? hex(src[i + 1]!) : -1;
    const h2 = i + 2 < len ? hex(src[i + 2]!) : -1;
    if (h1 >= 0 && h2 >= 0) {
      out[n++] = (h1 << 4) | h2;
      i += 3;
      continue;
    }
    // soft line break: "=" [WSP] CRLF (rule 5)
    let j = i + 1;
    while (j < len && (src[j] === 32 || src[j] === 9)) j++;
    if (j === len) {
      i = j;
      continue;
    }
    if (src[j] === 10) {
      i = j + 1;
      continue;
    }
    if (src[j] === 13 && src[j + 1] === 10) {
      i = j + 2;
      continue;
    }
    out[n++] = c;
    i++;
  }
  return n;
}

/** Decode bytes in the given transfer encoding; unknown encodings are returned as they are. */
export function decodeTransfer(src: Buffer, encoding: string | undefined): Buffer {
  if (encoding === 'base64') {
    const out = Buffer.allocUnsafe(Math.ceil((src.length * 3) / 4));
    return out.subarray(0, base64(src, out));
  }
  if (encoding === 'quoted-printable') {
    const out = Buffer.allocUnsafe(src.length);
    return out.subarray(0, quotedPrintable(src, out));
  }
  return src;
}

/** The raw body bytes of a part within its message. */
export function rawBody(msg: Buffer, part: Part): Buffer {
  return msg.subarray(part.body, part.end);
}

/** The decoded body bytes of a part (a view into msg for identity encodings). */
export function decodedBody(msg: Buffer, part: Part): Buffer {
  return decodeTransfer(rawBody(msg, part), part.encoding);
}

/** Size of the decoded body, as for IMAP BINARY.SIZE (RFC 3516 4.2). */
export function decodedSize(msg: Buffer, part: Part): number {
  const raw = rawBody(msg, part);
  if (part.encoding === 'base64') return base64(raw, null);
  return part.encoding === 'quoted-printable' ? decodedBody(msg, part).length : raw.length;
}

/**
 * The body of a part as text: transfer encoding removed and charset
 * converted (RFC 2046 4.1.2). Unknown or missing charsets are guessed
 * (UTF-8 if valid, else windows-1252).
 */
export function decodedText(msg: Buffer, part: Part): string {
  return decodeCharset(decodedBody(msg, part), getParam(part.params, 'charset'));
}
