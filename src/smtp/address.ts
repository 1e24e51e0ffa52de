// SMTP envelope grammar: paths, mailboxes and ESMTP parameters (RFC 5321 4.1.2, RFC 6531 3.3).
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { normalizeDomain } from '../config/domains.js';

export interface Path {
  /** Localpart as sent, quoted-string decoded. */
  localpart: string;
  /** Domain in lower-case Unicode form, or an address literal like "[1.2.3.4]". */
  domain: string;
}

export class SyntaxError extends Error {}

export function pathString(p: Path): string {
  return `${quoteLocalpart(p.localpart)}@${p.domain}`;
}

const atext = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+$/u;

/** Localpart in dot-string form if possible, else as quoted-string (RFC 5321 4.1.2). */
export function quoteLocalpart(lp: string): string {
  if (lp !== '' && lp.split('.').every((a) => atext.test(a))) return lp;
  return `"${lp.replace(/(["\\])/g, '\\$1')}"`;
}

/**
 * Parses a Mailbox (RFC 5321 4.1.2) at the start of s, returning it and the rest.
 * utf8: whether non-ASCII is allowed (SMTPUTF8, RFC 6531 3.3).
 */
export function parseMailbox(s: string, utf8: boolean): { path: Path; rest: string } {
  let i = 0;
  let localpart = '';
  if (s[0] === '"') {
    i = 1;
    for (;;) {
      const c = s[i];
      if (c === undefined) throw new SyntaxError('unterminated quoted localpart');
      if (c === '"') break;
      if (c === '\\') {
        const n = s[i + 1];
        if (n === undefined || n < ' ' || n > '~') throw new SyntaxError('bad quoted-pair in localpart');
        localpart += n;
        i += 2;
        continue;
      }
      if (c < ' ' || c === '\x7f') throw new SyntaxError('control character in localpart');
      localpart += c;
      i++;
    }
    i++;
  } else {
    const m = /^[^@\s<>()\[\]\\,;:"]+/.exec(s);
    if (!m) throw new SyntaxError('missing localpart');
    localpart = m[0];
    if (!localpart.split('.').every((a) => atext.test(a))) throw new SyntaxError('invalid localpart');
    i = localpart.length;
  }
  if (localpart.length > 64 * 4) throw new SyntaxError('localpart too long');
  if (s[i] !== '@') throw new SyntaxError('missing @ in address');
  i++;
  const { domain, rest } = parseDomainOrLiteral(s.slice(i));
  // RFC 6531 3.3: UTF-8 only after the SMTPUTF8 parameter.
  if (!utf8 && /[^\x00-\x7f]/.test(s.slice(0, s.length - rest.length))) throw new SyntaxError('non-ASCII address without SMTPUTF8');
  return { path: { localpart, domain }, rest };
}

function parseDomainOrLiteral(s: string): { domain: string; rest: string } {
  if (s[0] === '[') {
    const end = s.indexOf(']');
    if (end < 0) throw new SyntaxError('unterminated address literal');
    const lit = s.slice(1, end);
    const ip = lit.toLowerCase().startsWith('ipv6:') ? lit.slice(5) : lit;
    const fam = isIP(ip);
    if (fam === 0 || (fam === 6 && !lit.toLowerCase().startsWith('ipv6:'))) throw new SyntaxError('invalid address literal');
    return { domain: `[${lit}]`, rest: s.slice(end + 1) };
  }
  const m = /^[^\s<>()\[\]\\,;:"@]+/.exec(s);
  if (!m) throw new SyntaxError('missing domain');
  const domain = normalizeDomain(m[0]);
  if (!domain) throw new SyntaxError(`invalid domain ${m[0]}`);
  return { domain, rest: s.slice(m[0].length) };
}

/** Parses a domain or address literal that must make up all of s, e.g. the EHLO argument. */
export function parseHelo(s: string): string {
  const { domain, rest } = parseDomainOrLiteral(s);
  if (rest !== '') throw new SyntaxError('junk after domain');
  return domain;
}

/**
 * Parses "<path>" or "<>" for MAIL FROM/RCPT TO, then the ESMTP parameters.
 * Source routes ("<@a,@b:user@c>") are accepted and ignored (RFC 5321 4.1.2, C).
 */
export function parsePathParams(
  s: string,
  opts: { utf8: boolean; allowNull: boolean; pedantic: boolean },
): { path: Path | null; params: Map<string, string | undefined> } {
  if (s[0] !== '<') {
    if (opts.pedantic) throw new SyntaxError('missing "<" around address');
    // Common broken clients send the address without brackets.
    const sp = s.indexOf(' ');
    const addr = sp < 0 ? s : s.slice(0, sp);
    return parsePathParams(`<${addr}>${sp < 0 ? '' : s.slice(sp)}`, opts);
  }
  let inner = s.slice(1);
  if (inner.startsWith('@')) {
    const colon = inner.indexOf(':');
    if (colon < 0) throw new SyntaxError('bad source route');
    inner = inner.slice(colon + 1);
  }
  let path: Path | null = null;
  let rest: string;
  if (inner.startsWith('>')) {
    if (!opts.allowNull) throw new SyntaxError('empty path not allowed');
    rest = inner.slice(1);
  } else {
    const r = parseMailbox(inner, true);
    if (!r.rest.startsWith('>')) throw new SyntaxError('missing ">" after address');
    path = r.path;
    rest = r.rest.slice(1);
  }
  return { path, params: parseParams(rest) };
}

/** ESMTP parameters: SP keyword["=" value], keywords case-insensitive (RFC 5321 4.1.2). */
export function parseParams(s: string): Map<string, string | undefined> {
  const params = new Map<string, string | undefined>();
  if (s.trim() === '') return params;
  if (!s.startsWith(' ')) throw new SyntaxError('expected space before parameters');
  for (const p of s.trim().split(/ +/)) {
    const eq = p.indexOf('=');
    const k = (eq < 0 ? p : p.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(k)) throw new SyntaxError(`invalid parameter ${p}`);
    if (params.has(k)) throw new SyntaxError(`duplicate parameter ${k}`);
    params.set(k, eq < 0 ? undefined : p.slice(eq + 1));
  }
  return params;
}

/** Whether an address needs SMTPUTF8. */
export function needsUTF8(p: Path): boolean {
  return /[^\x00-\x7f]/.test(p.localpart + p.domain);
}

/** Domain in ASCII (A-label) form for DNS and other servers; address literals unchanged. */
export function asciiDomain(domain: string): string {
  return domain.startsWith('[') ? domain : domainToASCII(domain) || domain;
}
