// SPF record syntax (RFC 7208 4.5, 4.6.1, 5, 6 and 7.1): text to terms and back.

import { parseIP } from './ip.js';

export type Qualifier = '+' | '-' | '~' | '?';
export type MechanismName = 'all' | 'include' | 'a' | 'mx' | 'ptr' | 'ip4' | 'ip6' | 'exists';
export type MacroLetter = 's' | 'l' | 'o' | 'd' | 'i' | 'p' | 'h' | 'c' | 'r' | 't' | 'v';

export type MacroPart =
  | { type: 'literal'; text: string }
  | { type: 'escape'; text: '%%' | '%_' | '%-' }
  | {
      type: 'macro';
      letter: MacroLetter;
      /** Written in upper case: the value is URL-escaped. */
      urlEscape: boolean;
      /** Number of right-hand parts to keep. */
      keep?: number;
      reverse: boolean;
      /** Delimiters as written; "" means the default ".". */
      delimiters: string;
    };

export type MacroString = MacroPart[];

/**
 * Where a macro-string appears: a domain-spec, the text of an explanation (which may contain spaces
 * and the letters c, r and t), or the value of an unknown modifier (checked for syntax only).
 */
export type MacroContext = 'domain' | 'explain' | 'modifier';

export interface Directive {
  type: 'directive';
  qualifier: Qualifier;
  mechanism: MechanismName;
  /** The domain-spec of include, a, mx, ptr and exists; absent means the current domain. */
  domain?: MacroString;
  /** The network of ip4 and ip6, as written. */
  ip?: string;
  /** Prefix length applied to IPv4 addresses (ip4, a, mx). */
  cidr4?: number;
  /** Prefix length applied to IPv6 addresses (ip6, a, mx). */
  cidr6?: number;
}

export interface Modifier {
  type: 'modifier';
  /** Lower case. */
  name: string;
  value: MacroString;
}

export type Term = Directive | Modifier;

export interface SPFRecord {
  /** Mechanisms and modifiers in record order. */
  terms: Term[];
  redirect?: MacroString;
  exp?: MacroString;
}

export class SPFSyntaxError extends Error {
  constructor(
    readonly detail: string,
    /** The offending term, when the error is inside one. */
    readonly term?: string,
  ) {
    super(term === undefined ? detail : `${detail} in term ${quote(term)}`);
    this.name = 'SPFSyntaxError';
  }
}

/** Quotes text for messages, shortened so hostile input cannot bloat logs or headers. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}

/** RFC 7208 4.5: the version section "v=spf1", ended by a space or the end of the record. */
export function isSPFRecord(txt: string): boolean {
  return /^v=spf1(?: |$)/i.test(txt);
}

/** Parses an SPF record; throws SPFSyntaxError on any syntax error (a permerror, RFC 7208 4.6). */
export function parse(txt: string): SPFRecord {
  if (!isSPFRecord(txt)) throw new SPFSyntaxError('record does not start with "v=spf1"');
  const record: SPFRecord = { terms: [] };
  // RFC 7208 4.6.1: terms are separated by one or more SP; no other white space is allowed.
  for (const text of txt.slice(6).split(' ')) {
    if (text === '') continue;
    let term: Term;
    try {
      term = parseTerm(text);
    } catch (err) {
      if (err instanceof SPFSyntaxError && err.term === undefined) throw new SPFSyntaxError(err.detail, text);
      throw err;
    }
    if (term.type === 'modifier' && (term.name === 'redirect' || term.name === 'exp')) {
      // RFC 7208 6: each at most once.
      if (record[term.name]) throw new SPFSyntaxError(`more than one ${term.name} modifier`, text);
      record[term.name] = term.value;
    }
    record.terms.push(term);
  }
  return record;
}

function parseTerm(text: string): Term {
  // RFC 7208 4.6.1: modifier = name "=" macro-string, name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
  const mod = /^([a-z][a-z0-9_.-]*)=(.*)$/is.exec(text);
  if (mod) {
    const name = mod[1]!.toLowerCase();
    const known = name === 'redirect' || name === 'exp';
    return { type: 'modifier', name, value: known ? parseDomainSpec(mod[2]!) : parseMacroString(mod[2]!, 'modifier') };
  }
  let qualifier: Qualifier = '+';
  let rest = text;
  if ('+-~?'.includes(text[0]!)) {
    qualifier = text[0] as Qualifier;
    rest = text.slice(1);
  }
  const sep = rest.search(/[:/]/);
  const name = (sep < 0 ? rest : rest.slice(0, sep)).toLowerCase();
  const arg = sep < 0 ? '' : rest.slice(sep);
  const d: Directive = { type: 'directive', qualifier, mechanism: name as MechanismName };
  // RFC 7208 5: mechanism syntax.
  switch (name) {
    case 'all':
      if (arg) throw new SPFSyntaxError('"all" takes no argument');
      break;
    case 'include':
    case 'exists':
      if (!arg.startsWith(':')) throw new SPFSyntaxError(`"${name}" needs ":" and a domain-spec`);
      d.domain = parseDomainSpec(arg.slice(1));
      break;
    case 'ptr':
      if (arg && !arg.startsWith(':')) throw new SPFSyntaxError('"ptr" takes only ":" and a domain-spec');
      if (arg) d.domain = parseDomainSpec(arg.slice(1));
      break;
    case 'a':
    case 'mx': {
      // dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ], after the optional domain-spec
      const m = /^(.*?)(?:\/(\d+))?(?:\/\/(\d+))?$/s.exec(arg)!;
      if (m[1]!.startsWith(':')) d.domain = parseDomainSpec(m[1]!.slice(1));
      else if (m[1]) throw new SPFSyntaxError(`invalid dual-cidr-length ${quote(arg)}`);
      d.cidr4 = cidrLength(m[2], 32);
      d.cidr6 = cidrLength(m[3], 128);
      break;
    }
    case 'ip4':
    case 'ip6': {
      const m = /^:([^/]*)(?:\/(.*))?$/s.exec(arg);
      if (!m) throw new SPFSyntaxError(`"${name}" needs ":" and a network`);
      // RFC 7208 5.6: a complete address (ip4-network has no leading zeros, ip6-network is RFC 4291 2.2)
      if (parseIP(m[1]!)?.family !== (name === 'ip4' ? 4 : 6)) {
        throw new SPFSyntaxError(`invalid ${name === 'ip4' ? 'IPv4' : 'IPv6'} network ${quote(m[1]!)}`);
      }
      d.ip = m[1]!;
      if (name === 'ip4') d.cidr4 = cidrLength(m[2], 32);
      else d.cidr6 = cidrLength(m[2], 128);
      break;
    }
    default:
      throw new SPFSyntaxError(`unknown mechanism ${quote(name)}`);
  }
  return d;
}

/** RFC 7208 5.6: ip4-cidr-length and ip6-cidr-length, decimal without leading zeros. */
function cidrLength(text: string | undefined, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^(?:0|[1-9]\d{0,2})$/.test(text) || Number(text) > max) {
    throw new SPFSyntaxError(`invalid CIDR length "/${text.slice(0, 10)}" (must be 0 to ${max})`);
  }
  return Number(text);
}

/** RFC 7208 7.1: domain-spec = macro-string domain-end. */
function parseDomainSpec(text: string): MacroString {
  if (text === '') throw new SPFSyntaxError('missing domain-spec');
  const ms = parseMacroString(text, 'domain');
  const last = ms[ms.length - 1]!;
  if (last.type === 'literal') {
    // domain-end = ( "." toplabel [ "." ] ) / macro-expand
    const t = last.text.endsWith('.') ? last.text.slice(0, -1) : last.text;
    const dot = t.lastIndexOf('.');
    const top = t.slice(dot + 1);
    if (dot < 0 || !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i.test(top) || !/[a-z-]/i.test(top)) {
      throw new SPFSyntaxError(`domain-spec ${quote(text)} must end with a macro or a dot and a top-level label`);
    }
  }
  return ms;
}

/** Parses a macro-string (RFC 7208 7.1); explain-strings also allow spaces. */
export function parseMacroString(text: string, context: MacroContext): MacroString {
  const parts: MacroPart[] = [];
  let literal = '';
  const flush = () => {
    if (literal) parts.push({ type: 'literal', text: literal });
    literal = '';
  };
  for (let i = 0; i < text.length; ) {
    const ch = text[i]!;
    if (ch !== '%') {
      // macro-literal = %x21-24 / %x26-7E; explain-string = *( macro-string / SP )
      const code = ch.charCodeAt(0);
      if ((code < 0x21 || code > 0x7e) && !(code === 0x20 && context === 'explain')) {
        throw new SPFSyntaxError(`invalid character ${JSON.stringify(ch)} at offset ${i}`);
      }
      literal += ch;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '%' || next === '_' || next === '-') {
      flush();
      parts.push({ type: 'escape', text: `%${next}` });
      i += 2;
      continue;
    }
    // RFC 7208 7.1: a "%" not followed by "{", "%", "-" or "_" is a syntax error.
    if (next !== '{') throw new SPFSyntaxError(`"%" at offset ${i} is not followed by "{", "%", "_" or "-"`);
    const end = text.indexOf('}', i + 2);
    if (end < 0) throw new SPFSyntaxError(`macro at offset ${i} has no closing "}"`);
    const body = text.slice(i + 2, end);
    // macro-expand = "%{" macro-letter transformers *delimiter "}", transformers = *DIGIT [ "r" ]
    const m = /^([a-z])(\d*)(r?)([.\-+,/_=]*)$/i.exec(body);
    if (!m) throw new SPFSyntaxError(`invalid macro ${quote(`%{${body}}`)}`);
    const letter = m[1]!.toLowerCase();
    if (!'slodiphcrtv'.includes(letter)) throw new SPFSyntaxError(`unknown macro letter ${quote(m[1]!)}`);
    // RFC 7208 7.3: c, r and t are allowed only in explanation text.
    if (context === 'domain' && 'crt'.includes(letter)) {
      throw new SPFSyntaxError(`macro letter "${letter}" is only allowed in explanation text`);
    }
    // RFC 7208 7.1: the DIGIT transformer must be nonzero.
    if (m[2] && Number(m[2]) === 0) throw new SPFSyntaxError(`macro ${quote(`%{${body}}`)} keeps zero parts`);
    flush();
    parts.push({
      type: 'macro',
      letter: letter as MacroLetter,
      urlEscape: m[1] !== letter,
      ...(m[2] ? { keep: Number(m[2]) } : {}),
      reverse: m[3] !== '',
      delimiters: m[4]!,
    });
    i = end + 1;
  }
  flush();
  return parts;
}

export function formatMacroString(ms: MacroString): string {
  return ms
    .map((p) => {
      if (p.type !== 'macro') return p.text;
      const letter = p.urlEscape ? p.letter.toUpperCase() : p.letter;
      return `%{${letter}${p.keep ?? ''}${p.reverse ? 'r' : ''}${p.delimiters}}`;
    })
    .join('');
}

/** One term in canonical form; the "+" qualifier is left out. */
export function formatTerm(t: Term): string {
  if (t.type === 'modifier') return `${t.name}=${formatMacroString(t.value)}`;
  let s = (t.qualifier === '+' ? '' : t.qualifier) + t.mechanism;
  if (t.domain) s += `:${formatMacroString(t.domain)}`;
  if (t.ip !== undefined) s += `:${t.ip}`;
  if (t.cidr4 !== undefined) s += `/${t.cidr4}`;
  if (t.cidr6 !== undefined) s += t.mechanism === 'ip6' ? `/${t.cidr6}` : `//${t.cidr6}`;
  return s;
}

export function format(record: SPFRecord): string {
  return ['v=spf1', ...record.terms.map(formatTerm)].join(' ');
}
