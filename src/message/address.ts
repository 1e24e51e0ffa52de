// Address lists (RFC 5322 3.4, obsolete forms 4.4; UTF-8 per RFC 6532).
//
// The parser works on any JS string; applied to a header byte string (see
// header.ts) its results are byte strings too. Display names are returned
// as written (quotes removed, RFC 2047 encoded-words kept), which is what
// IMAP ENVELOPE sends; displayMailbox() gives decoded text.

import libmime from 'libmime';
import { bytesToText } from './header.js';

export interface Mailbox {
  /** Display name (phrase), or the comment of an addr-spec without one. */
  name?: string;
  /** Obsolete source route (RFC 5322 4.4 obs-route), e.g. "@a.example,@b.example". */
  adl?: string;
  /** Local part, quotes removed. */
  mailbox?: string;
  /** Domain, or domain literal with its brackets. */
  host?: string;
}

export interface Group {
  group: string;
  members: Mailbox[];
}

export type AddressItem = Mailbox | Group;

export function isGroup(item: AddressItem): item is Group {
  return (item as Group).group !== undefined;
}

type TokenKind = 'atom' | 'quoted' | 'literal' | 'special' | 'comment';
interface Token {
  kind: TokenKind;
  text: string;
  /** Whitespace or a comment precedes the token. */
  space: boolean;
}

const SPECIALS = '<>@,;:.';

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let space = false;
  const n = s.length;
  while (i < n) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      space = true;
      i++;
    } else if (c === '(') {
      // RFC 5322 3.2.2: comments nest; an unclosed one runs to the end.
      let depth = 1;
      let text = '';
      i++;
      while (i < n && depth > 0) {
        const d = s[i]!;
        if (d === '\\' && i + 1 < n) {
          text += s[i + 1];
          i += 2;
          continue;
        }
        if (d === '(') depth++;
        else if (d === ')' && --depth === 0) break;
        if (d !== '\r' && d !== '\n') text += d;
        i++;
      }
      i++;
      out.push({ kind: 'comment', text: text.trim(), space: true });
      space = true;
    } else if (c === '"') {
      let text = '';
      i++;
      while (i < n && s[i] !== '"') {
        const d = s[i]!;
        if (d === '\\' && i + 1 < n) {
          text += s[i + 1];
          i += 2;
          continue;
        }
        if (d !== '\r' && d !== '\n') text += d; // RFC 5322 3.2.4: folding inside quotes is not content
        i++;
      }
      i++;
      out.push({ kind: 'quoted', text, space });
      space = false;
    } else if (c === '[') {
      const close = s.indexOf(']', i);
      const stop = close < 0 ? n : close + 1;
      out.push({ kind: 'literal', text: s.slice(i, stop).replace(/[\r\n]/g, ''), space });
      space = false;
      i = stop;
    } else if (SPECIALS.includes(c)) {
      out.push({ kind: 'special', text: c, space });
      space = false;
      i++;
    } else {
      const start = i;
      while (i < n && !' \t\r\n()"[<>@,;:.'.includes(s[i]!)) i++;
      out.push({ kind: 'atom', text: s.slice(start, i), space });
      space = false;
    }
  }
  return out;
}

/** Words joined as written: one space where the input had whitespace or a comment. */
function phrase(tokens: Token[]): string {
  let s = '';
  for (const t of tokens) {
    if (t.kind === 'comment') continue;
    if (s && t.space) s += ' ';
    s += t.text;
  }
  return s;
}

/** Concatenation ignoring CFWS, as in dot-atom and obs-local-part/obs-domain. */
function joined(tokens: Token[]): string {
  let s = '';
  for (const t of tokens) if (t.kind !== 'comment') s += t.text;
  return s;
}

function addrSpec(tokens: Token[], into: Mailbox): void {
  let at = -1;
  for (let i = tokens.length - 1; i >= 0; i--) {
    const t = tokens[i]!;
    if (t.kind === 'special' && t.text === '@') {
      at = i;
      break;
    }
  }
  const local = at < 0 ? tokens : tokens.slice(0, at);
  const mailbox = at < 0 ? phrase(local) : joined(local);
  if (mailbox) into.mailbox = mailbox;
  if (at >= 0) {
    const host = joined(tokens.slice(at + 1));
    if (host) into.host = host;
  }
}

function angleAddr(tokens: Token[], into: Mailbox): void {
  // RFC 5322 4.4 obs-route: "@a,@b:" before the addr-spec
  let colon = -1;
  if (tokens[0]?.kind === 'special' && tokens[0].text === '@') {
    colon = tokens.findIndex((t) => t.kind === 'special' && t.text === ':');
  }
  if (colon >= 0) {
    const adl = joined(tokens.slice(0, colon));
    if (adl) into.adl = adl;
  }
  addrSpec(tokens.slice(colon + 1), into);
}

/** Parse an address-list; never throws, drops what cannot be an address. */
export function parseAddressList(input: string): AddressItem[] {
  const tokens = tokenize(input);
  const items: AddressItem[] = [];
  let group: Group | undefined;
  let cur: Token[] = [];
  let angle: Token[] | undefined;
  let before: Token[] = [];

  const finish = () => {
    const m: Mailbox = {};
    if (angle) {
      const name = phrase(before);
      if (name) m.name = name;
      angleAddr(angle, m);
    } else {
      addrSpec(cur, m);
      // RFC 5322 obsoletes it, but "addr (Name)" still carries the name in a comment.
      const comment = cur.filter((t) => t.kind === 'comment' && t.text).pop();
      if (comment && m.mailbox !== undefined) m.name = comment.text;
    }
    if (m.mailbox !== undefined || m.host !== undefined) {
      if (group) group.members.push(m);
      else items.push(m);
    }
    cur = [];
    before = [];
    angle = undefined;
  };

  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'special') {
      if (t.text === ',') {
        finish();
        continue;
      }
      if (t.text === '<' && !angle) {
        before = cur;
        angle = [];
        // Collect to ">" (or the end); "," and ":" here belong to an obs-route.
        for (i++; i < tokens.length; i++) {
          const a = tokens[i]!;
          if (a.kind === 'special' && a.text === '>') break;
          angle.push(a);
        }
        continue;
      }
      if (t.text === ':' && !group && !angle) {
        group = { group: phrase(cur), members: [] }; // RFC 5322 3.4 group
        cur = [];
        continue;
      }
      if (t.text === ';') {
        finish();
        if (group) items.push(group);
        group = undefined;
        continue;
      }
    }
    if (angle) {
      // Text after the angle address is garbage; a trailing comment may still name it.
      if (t.kind === 'comment' && !before.some((b) => b.kind !== 'comment')) before.push({ ...t, kind: 'atom' });
      continue;
    }
    cur.push(t);
  }
  finish();
  if (group) items.push(group);
  return items;
}

/** Decoded text of a mailbox parsed from a header byte string. */
export function displayMailbox(m: Mailbox): { name: string; address: string } {
  let name = m.name ? bytesToText(m.name) : '';
  if (name.includes('=?')) name = libmime.decodeWords(name);
  const local = m.mailbox ? bytesToText(m.mailbox) : '';
  const address = m.host ? `${local}@${bytesToText(m.host)}` : local;
  return { name, address };
}
