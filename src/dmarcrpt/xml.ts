// A small XML parser for the documents Postern reads from other parties, such as DMARC aggregate
// reports. It builds a tree of elements with attributes and text, knows the five predefined
// entities and character references (XML 1.0 4.6, 4.1), and refuses document type declarations,
// so no entity can be defined or fetched. Input size, nesting depth and element count are capped,
// and every construct is scanned in linear time.

import { TextDecoder } from 'node:util';

export interface XMLElement {
  /** The name as written, with any namespace prefix. */
  name: string;
  attrs: Record<string, string>;
  children: XMLElement[];
  /** Character data directly inside the element, references decoded, CDATA included. */
  text: string;
}

export interface XMLLimits {
  /** Largest document in bytes; default 20 MiB. */
  maxBytes?: number;
  /** Deepest nesting of elements; default 64. */
  maxDepth?: number;
  /** Most elements in the document; default 1,000,000. */
  maxElements?: number;
  /** Most attributes on one element; default 64. */
  maxAttributes?: number;
}

export class XMLError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XMLError';
  }
}

export const MAX_XML_BYTES = 20 * 1024 * 1024;

/** The element name without namespace prefix. */
export function localName(e: XMLElement): string {
  return e.name.slice(e.name.indexOf(':') + 1);
}

/** Escapes text for element content or a double-quoted attribute value. */
export function escapeXML(s: string): string {
  // XML 1.0 2.2: characters outside Char cannot appear in a document at all; 2.11: a CR would read as LF.
  return s.replace(/[&<>"\r]|[^\t\n\x20-\uFFFD]/g, (c) => {
    switch (c) {
      case '\r':
        return '&#13;';
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      default:
        return '\uFFFD';
    }
  });
}

/** Decodes the bytes of a document: a BOM, else the encoding declaration, else UTF-8 (XML 1.0 4.3.3, appendix F). */
function decode(input: Buffer): string {
  if (input[0] === 0xfe && input[1] === 0xff) return new TextDecoder('utf-16be').decode(input.subarray(2));
  if (input[0] === 0xff && input[1] === 0xfe) return new TextDecoder('utf-16le').decode(input.subarray(2));
  const decl = /^(?:\xef\xbb\xbf)?<\?xml[^>]{0,200}?encoding[ \t\r\n]*=[ \t\r\n]*["']([A-Za-z][A-Za-z0-9._-]{0,40})["']/.exec(input.subarray(0, 300).toString('latin1'));
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(decl?.[1] ?? 'utf-8');
  } catch {
    throw new XMLError(`unsupported encoding ${JSON.stringify(decl?.[1])}`);
  }
  return decoder.decode(input);
}

const NAME = /[A-Za-z_:\u00C0-\uFFFF][A-Za-z0-9_:.\-\u00B7\u00C0-\uFFFF]*/y;
const SPACE = /[ \t\r\n]*/y;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** XML 1.0 2.2 Char. */
function isChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Parses a document and returns its root element. Throws XMLError. */
export function parseXML(input: string | Buffer, limits: XMLLimits = {}): XMLElement {
  const maxBytes = limits.maxBytes ?? MAX_XML_BYTES;
  const maxDepth = limits.maxDepth ?? 64;
  const maxElements = limits.maxElements ?? 1_000_000;
  const maxAttributes = limits.maxAttributes ?? 64;
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > maxBytes) throw new XMLError(`document of ${size} bytes is larger than ${maxBytes}`);
  // XML 1.0 2.11: line ends read as a single LF.
  const s = (typeof input === 'string' ? input : decode(input)).replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  let pos = 0;
  let elements = 0;

  const fail = (message: string, at = pos): never => {
    let line = 1;
    let nl = -1;
    for (let i = s.indexOf('\n'); i !== -1 && i < at; i = s.indexOf('\n', i + 1)) {
      line++;
      nl = i;
    }
    throw new XMLError(`${message} at line ${line}, column ${at - nl}`);
  };
  const skipSpace = () => {
    SPACE.lastIndex = pos;
    SPACE.exec(s);
    pos = SPACE.lastIndex;
  };
  const name = (): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(s);
    if (!m) fail('expected a name');
    pos = NAME.lastIndex;
    return m![0];
  };
  const skipTo = (end: string, what: string) => {
    const i = s.indexOf(end, pos);
    if (i < 0) fail(`unterminated ${what}`);
    const body = s.slice(pos, i);
    pos = i + end.length;
    return body;
  };
  /** XML 1.0 2.2: control characters other than white space cannot appear. */
  const checkChars = (raw: string, start: number): string => {
    for (let i = 0; i < raw.length; i++) {
      const c = raw.charCodeAt(i);
      if (c < 0x20 && c !== 0x9 && c !== 0xa) fail('control character', start + i);
    }
    return raw;
  };
  /** Text with references decoded (XML 1.0 4.6 predefined entities, 4.1 character references). */
  const chars = (raw: string, start: number): string => {
    checkChars(raw, start);
    if (!raw.includes('&')) return raw;
    let out = '';
    let from = 0;
    for (let amp = raw.indexOf('&'); amp !== -1; amp = raw.indexOf('&', from)) {
      const semi = raw.indexOf(';', amp);
      const ref = semi < 0 || semi - amp > 12 ? '' : raw.slice(amp + 1, semi);
      let value = PREDEFINED[ref];
      if (value === undefined) {
        const m = /^#(?:([0-9]{1,7})|x([0-9A-Fa-f]{1,6}))$/.exec(ref);
        const cp = m ? (m[1] !== undefined ? Number(m[1]) : parseInt(m[2]!, 16)) : -1;
        if (!isChar(cp)) fail(ref === '' ? 'malformed reference' : `unknown or invalid reference &${ref};`, start + amp);
        value = String.fromCodePoint(cp);
      }
      out += raw.slice(from, amp) + value;
      from = semi + 1;
    }
    return out + raw.slice(from);
  };
  /** Comments, processing instructions and white space, as allowed outside the root element. */
  const misc = () => {
    for (;;) {
      skipSpace();
      if (s.startsWith('<!--', pos)) {
        pos += 4;
        skipTo('-->', 'comment');
      } else if (s.startsWith('<?', pos)) {
        pos += 2;
        skipTo('?>', 'processing instruction');
      } else if (s.startsWith('<!DOCTYPE', pos) || s.startsWith('<!doctype', pos)) {
        fail('document type declarations are not allowed');
      } else {
        return;
      }
    }
  };

  const element = (depth: number): XMLElement => {
    if (depth > maxDepth) fail(`elements nested deeper than ${maxDepth}`);
    if (++elements > maxElements) fail(`more than ${maxElements} elements`);
    pos++; // "<"
    const e: XMLElement = { name: name(), attrs: Object.create(null) as Record<string, string>, children: [], text: '' };
    let count = 0;
    for (;;) {
      const before = pos;
      skipSpace();
      if (s.startsWith('/>', pos)) {
        pos += 2;
        return e;
      }
      if (s[pos] === '>') {
        pos++;
        break;
      }
      if (pos === before) fail('expected white space, ">" or "/>"');
      const attr = name();
      skipSpace();
      if (s[pos] !== '=') fail(`expected "=" after attribute ${attr}`);
      pos++;
      skipSpace();
      const quote = s[pos];
      if (quote !== '"' && quote !== "'") fail('expected a quoted attribute value');
      pos++;
      const start = pos;
      const raw = skipTo(quote!, 'attribute value');
      if (raw.includes('<')) fail('"<" in attribute value', start);
      // XML 1.0 2.3 and 3.1: unique attribute names; 3.3.3: white space in values reads as spaces.
      if (attr in e.attrs) fail(`duplicate attribute ${attr}`, start);
      if (++count > maxAttributes) fail(`more than ${maxAttributes} attributes`);
      e.attrs[attr] = chars(raw.replace(/[\t\n]/g, ' '), start);
    }
    for (;;) {
      const lt = s.indexOf('<', pos);
      if (lt < 0) fail(`element ${e.name} is not closed`);
      if (lt > pos) e.text += chars(s.slice(pos, lt), pos);
      pos = lt;
      if (s.startsWith('</', pos)) {
        pos += 2;
        const close = name();
        if (close !== e.name) fail(`</${close}> closes <${e.name}>`);
        skipSpace();
        if (s[pos] !== '>') fail('expected ">"');
        pos++;
        return e;
      }
      if (s.startsWith('<!--', pos)) {
        pos += 4;
        skipTo('-->', 'comment');
      } else if (s.startsWith('<![CDATA[', pos)) {
        pos += 9;
        const start = pos;
        e.text += checkChars(skipTo(']]>', 'CDATA section'), start);
      } else if (s.startsWith('<?', pos)) {
        pos += 2;
        skipTo('?>', 'processing instruction');
      } else if (s.startsWith('<!', pos)) {
        fail('declarations are not allowed');
      } else {
        e.children.push(element(depth + 1));
      }
    }
  };

  misc();
  if (s[pos] !== '<') fail(pos >= s.length ? 'no root element' : 'text before the root element');
  const root = element(1);
  misc();
  if (pos < s.length) fail('content after the root element');
  return root;
}
