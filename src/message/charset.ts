// Charset conversion of message text (RFC 2046 4.1.2, RFC 2231 4, RFC 2047 2).

import { isUtf8 } from 'node:buffer';
import libmime from 'libmime';
import charsets from 'libmime/lib/charset.js';

const supportCache = new Map<string, boolean>();

/** Whether bytes in this charset can be converted; unknown and refused (UTF-7) ones cannot. */
export function isSupportedCharset(charset: string): boolean {
  const key = charset.trim().toLowerCase();
  let ok = supportCache.get(key);
  if (ok === undefined) {
    ok = key !== '' && libmime.createDecodeStream(key).supported;
    if (supportCache.size < 1000) supportCache.set(key, ok);
  }
  return ok;
}

/**
 * Bytes in the given charset to text. A missing, us-ascii or unknown charset
 * is guessed: UTF-8 when the bytes are valid UTF-8, else windows-1252, so
 * undeclared 8-bit text stays readable.
 */
export function decodeCharset(buf: Buffer, charset: string | undefined): string {
  const cs = (charset ?? '').trim().toLowerCase();
  if (cs === 'utf-8' || cs === 'utf8') return buf.toString('utf8');
  if (cs && cs !== 'us-ascii' && cs !== 'ascii' && isSupportedCharset(cs)) return charsets.decode(buf, cs);
  if (isUtf8(buf)) return buf.toString('utf8');
  return charsets.decode(buf, 'windows-1252');
}
