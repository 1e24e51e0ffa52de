// Encodings of ESMTP parameter values sent by the client.

/** xtext (RFC 3461 4): printable ASCII except "+" and "=", everything else as "+HH" of its UTF-8 bytes. */
export function xtext(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b > 0x20 && b < 0x7f && b !== 0x2b && b !== 0x3d ? String.fromCharCode(b) : `+${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * ORCPT value for an original recipient address: "rfc822" with xtext for ASCII addresses (RFC 3461
 * 4.2), else "utf-8" (RFC 6533 3) with characters other than printable ASCII and "+", "=", "\"
 * written as \x{HEX}; when SMTPUTF8 is in use, non-ASCII characters may stay as they are.
 */
export function orcpt(address: string, smtputf8: boolean): string {
  if (/^[\x00-\x7f]*$/.test(address)) return `rfc822;${xtext(address)}`;
  let out = '';
  for (const ch of address) {
    const cp = ch.codePointAt(0)!;
    const plain = (cp > 0x20 && cp < 0x7f && ch !== '+' && ch !== '=' && ch !== '\\') || (smtputf8 && cp > 0x7f);
    out += plain ? ch : `\\x{${cp.toString(16).toUpperCase()}}`;
  }
  return `utf-8;${out}`;
}
