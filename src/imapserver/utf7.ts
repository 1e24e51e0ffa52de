// Modified UTF-7 for mailbox names of IMAP4rev1 clients (RFC 3501 5.1.3). Clients that
// enable UTF8=ACCEPT or IMAP4rev2 use UTF-8 names instead (RFC 6855 3, RFC 9051 5.1).

export class UTF7Error extends Error {}

const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

export function encodeUTF7(s: string): string {
  let out = '';
  let pending: number[] = [];
  const flush = () => {
    if (!pending.length) return;
    const bytes = Buffer.alloc(pending.length * 2);
    pending.forEach((u, i) => bytes.writeUInt16BE(u, i * 2));
    out += '&' + bytes.toString('base64').replace(/=+$/, '').replace(/\//g, ',') + '-';
    pending = [];
  };
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      flush();
      out += c === 0x26 ? '&-' : s[i];
    } else pending.push(c);
  }
  flush();
  return out;
}

/** Decodes modified UTF-7; rejects non-canonical encodings so each name has one spelling. */
export function decodeUTF7(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) > 0x7e) throw new UTF7Error('non-ASCII character in modified UTF-7 name');
    if (c !== '&') {
      out += c;
      continue;
    }
    const end = s.indexOf('-', i + 1);
    if (end < 0) throw new UTF7Error('unterminated "&" sequence');
    const enc = s.slice(i + 1, end);
    i = end;
    if (enc === '') {
      out += '&';
      continue;
    }
    if ([...enc].some((ch) => !b64.includes(ch))) throw new UTF7Error('invalid character in "&" sequence');
    const bytes = Buffer.from(enc.replace(/,/g, '/'), 'base64');
    if (bytes.length % 2 !== 0 || bytes.length === 0) throw new UTF7Error('bad "&" sequence length');
    let chunk = '';
    for (let j = 0; j < bytes.length; j += 2) chunk += String.fromCharCode(bytes.readUInt16BE(j));
    // Printable ASCII must not be encoded (RFC 3501 5.1.3).
    if ([...chunk].some((ch) => ch.charCodeAt(0) >= 0x20 && ch.charCodeAt(0) <= 0x7e)) throw new UTF7Error('encoded printable ASCII');
    if (encodeUTF7(chunk) !== `&${enc}-`) throw new UTF7Error('non-canonical encoding');
    out += chunk;
  }
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(out)) throw new UTF7Error('unpaired surrogate');
  return out;
}
