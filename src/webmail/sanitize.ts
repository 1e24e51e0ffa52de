// Allow-list sanitizer for HTML message bodies shown in the webmail.
//
// The input is tokenized much like a browser does (HTML Living Standard 13.2.5: tags, attributes,
// comments, raw text elements) and written out again with only the allowed elements and
// attributes; attribute values are written as decoded here and re-escaped, so the browser sees
// exactly what was checked. Nothing that can run survives (scripts, event handlers, javascript:
// URLs, forms, frames, objects, SVG and MathML), and nothing loads from elsewhere unless asked:
// remote images become placeholders and CSS url()s are dropped. The result is shown in a
// sandboxed frame with a Content-Security-Policy that blocks scripts and remote loads anyway, so a
// mistake here does not turn into script execution or a tracking request.

export interface SanitizeOptions {
  /** Keep http(s) images and CSS url()s: the user asked for remote content. */
  remote: boolean;
  /** A data: URL for an inline part by Content-ID (RFC 2392 cid: URLs), if the message has it. */
  cid?(id: string): string | undefined;
}

export interface Sanitized {
  /** The body content (with its style sheets), to be placed in a document of our own. */
  html: string;
  /** Distinct remote resources that were left out. */
  remoteBlocked: number;
}

// Elements kept, with their content. Others are dropped but their content is kept, except for
// those in dropWithContent.
const allowed = new Set(
  (
    'a abbr address article aside b bdi bdo big blockquote br caption center cite code col colgroup dd del details dfn div dl dt em ' +
    'figcaption figure font footer h1 h2 h3 h4 h5 h6 header hr i img ins kbd li main mark nav ol p pre q rp rt ruby s samp section ' +
    'small span strike strong sub summary sup table tbody td tfoot th thead time tr tt u ul var wbr'
  ).split(' '),
);
const voidElements = new Set('area base br col embed hr img input link meta param source track wbr'.split(' '));
// Raw text and RCDATA elements (13.2.5.2): their content is not markup, and they are left out
// whole, except style whose sheet is cleaned and kept.
const rawText = new Set('script style textarea title xmp iframe noembed noframes noscript plaintext'.split(' '));
// Elements whose content has no business in a message view: foreign content (SVG, MathML) parses
// differently, templates and selects hold markup that is not shown.
const dropWithContent = new Set('svg math template select object applet'.split(' '));

const globalAttrs = new Set('align alt bgcolor border cellpadding cellspacing class color cols dir face height hspace lang nowrap size style title valign vspace width'.split(' '));
const elementAttrs: Record<string, Set<string>> = {
  a: new Set(['href', 'name']),
  img: new Set(['src']),
  ol: new Set(['type', 'start', 'reversed']),
  ul: new Set(['type']),
  li: new Set(['type', 'value']),
  td: new Set(['colspan', 'rowspan', 'headers', 'scope', 'background']),
  th: new Set(['colspan', 'rowspan', 'headers', 'scope', 'background']),
  table: new Set(['background', 'frame', 'rules']),
  tr: new Set(['background']),
  col: new Set(['span']),
  colgroup: new Set(['span']),
  time: new Set(['datetime']),
  del: new Set(['datetime']),
  ins: new Set(['datetime']),
  details: new Set(['open']),
  div: new Set(['background']),
};

// Named character references that matter in attribute values: URLs and their separators. Others
// stay as written, and so mean the same to the browser after re-escaping.
const named: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', colon: ':', semi: ';', comma: ',', period: '.', sol: '/',
  bsol: '\\', lpar: '(', rpar: ')', tab: '\t', newline: '\n', num: '#', excl: '!', quest: '?', equals: '=', percnt: '%',
  plus: '+', commat: '@', lowbar: '_', dollar: '$', ast: '*', copy: '\u00a9', reg: '\u00ae', hellip: '\u2026', mdash: '\u2014', ndash: '\u2013',
};
// Legacy references recognised without ";" (13.5), the ones seen in mail.
const legacy = new Set(['amp', 'lt', 'gt', 'quot', 'nbsp', 'copy', 'reg']);

/** Decodes character references in an attribute value (13.2.5.72, in attribute context). */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(?:#[xX]([0-9a-fA-F]+);?|#([0-9]+);?|([a-zA-Z][a-zA-Z0-9]*)(;?))/g, (m, hex: string, dec: string, name: string, semi: string, off: number) => {
    if (hex || dec) {
      const n = hex ? parseInt(hex, 16) : parseInt(dec, 10);
      return n === 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff) ? '\ufffd' : String.fromCodePoint(n);
    }
    const v = named[name];
    if (v === undefined) return m;
    if (semi) return v;
    // Without ";" only legacy names count, and not before "=" or an alphanumeric (13.2.5.73).
    const next = s[off + m.length];
    return legacy.has(name) && !(next && /[=a-zA-Z0-9]/.test(next)) ? v : m;
  });
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function escapeHTML(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** What a URL found in a message may become. */
type URLUse = 'link' | 'image';

class Cleaner {
  private readonly blocked = new Set<string>();

  constructor(private readonly o: SanitizeOptions) {}

  get remoteBlocked(): number {
    return this.blocked.size;
  }

  /**
   * The URL to write, or undefined to leave the attribute out. Browsers strip leading and
   * trailing C0 controls and spaces and remove tabs and newlines anywhere (URL Standard 4.4), so
   * the scheme is judged after doing the same.
   */
  url(raw: string, use: URLUse): string | undefined {
    const u = raw.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, '').replace(/[\t\n\r]/g, '');
    const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(u)?.[1]?.toLowerCase();
    if (use === 'link') {
      if (scheme === 'http' || scheme === 'https' || scheme === 'mailto') return u;
      // Fragment links stay within the message.
      return scheme === undefined && u.startsWith('#') ? u : undefined;
    }
    if (scheme === 'cid') {
      let id = u.slice(4);
      try {
        id = decodeURIComponent(id);
      } catch {
        // RFC 2392: %-encoded; a malformed one is used as written.
      }
      return this.o.cid?.(id);
    }
    if (scheme === 'data') return /^data:image\/(png|gif|jpeg|webp|bmp);base64,[A-Za-z0-9+/=\s]*$/i.test(u) ? u : undefined;
    if (scheme === 'http' || scheme === 'https') {
      if (this.o.remote) return u;
      this.blocked.add(u);
      return undefined;
    }
    // Relative URLs have no base in a message; other schemes do not belong in an image.
    return undefined;
  }

  /**
   * Cleans a style sheet or a style attribute. CSS escapes are decoded first so that "u\72l("
   * is seen as "url("; the output escapes backslashes and "<" again, so it cannot form new
   * escapes or end the style element.
   */
  css(input: string): string {
    let s = input
      .replace(/\/\*[\s\S]*?(\*\/|$)/g, ' ')
      .replace(/\\([0-9a-fA-F]{1,6})[ \t\n\r\f]?|\\([^\n\r\f])|\\[\n\r\f]/g, (_m, hex: string | undefined, ch: string | undefined) => {
        if (hex) {
          const n = parseInt(hex, 16);
          return n === 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff) ? '\ufffd' : String.fromCodePoint(n);
        }
        return ch ?? '';
      })
      .replace(/\0/g, '\ufffd');
    // Sheets that load other sheets or fonts; the CSP blocks them too.
    s = s.replace(/@import[^;{]*(;|$)/gi, '').replace(/@(charset|namespace)[^;{]*(;|$)/gi, '');
    // Old script-running CSS (IE expressions, behaviors, XBL bindings).
    s = s.replace(/expression\s*\(|behaviou?r\s*:|-moz-binding\s*:|javascript\s*:/gi, 'blocked-');
    const out: string[] = [];
    let last = 0;
    const re = /url\(\s*(?:"([^"]*)"|'([^']*)'|([^)"'\s]*))\s*\)|(?:-webkit-)?image(?:-set)?\(|\bsrc\(/gi;
    for (let m = re.exec(s); m; m = re.exec(s)) {
      out.push(this.cssText(s.slice(last, m.index)));
      last = m.index + m[0].length;
      if (!m[0].toLowerCase().startsWith('url')) {
        // image(), image-set() and src() take URLs as plain strings; made invalid unless remote content is allowed.
        out.push(this.o.remote ? this.cssText(m[0]) : 'blocked(');
        continue;
      }
      const u = this.url(m[1] ?? m[2] ?? m[3] ?? '', 'image');
      out.push(u === undefined ? 'none' : `url("${u.replace(/[\\"<\n\r]/g, (c) => `\\${c.charCodeAt(0).toString(16)} `)}")`);
    }
    out.push(this.cssText(s.slice(last)));
    return out.join('');
  }

  /** CSS outside url()s. A url( the pattern did not take (e.g. unclosed, which CSS still loads) is made invalid. */
  private cssText(s: string): string {
    return s.replace(/url\(/gi, 'blocked(').replace(/[\\<]/g, (c) => (c === '\\' ? '\\5c ' : '\\3c '));
  }
}

interface Attr {
  name: string;
  value: string;
}

/** Sanitizes an HTML document or fragment for display. */
export function sanitizeHTML(input: string, o: SanitizeOptions): Sanitized {
  const src = input.replace(/\0/g, '\ufffd');
  const c = new Cleaner(o);
  const out: string[] = [];
  const open: string[] = [];
  // Depth inside elements dropped with their content.
  let skip = 0;
  const skipStack: string[] = [];
  const n = src.length;
  let i = 0;

  const text = (t: string) => {
    if (!skip && t) out.push(t.replace(/>/g, '&gt;'));
  };

  while (i < n) {
    const lt = src.indexOf('<', i);
    if (lt < 0) {
      text(src.slice(i));
      break;
    }
    text(src.slice(i, lt));
    i = lt;
    const next = src[i + 1];
    if (src.startsWith('<!--', i)) {
      // 13.2.5.43 and on: "<!-->" and "<!--->" are empty comments; "--!>" also ends one.
      if (src.startsWith('<!-->', i)) i += 5;
      else if (src.startsWith('<!--->', i)) i += 6;
      else {
        const m = /--!?>/g;
        m.lastIndex = i + 4;
        const e = m.exec(src);
        i = e ? e.index + e[0].length : n;
      }
      continue;
    }
    if (next === '!' || next === '?' || (next === '/' && src[i + 2] === '>')) {
      // Doctype, CDATA outside foreign content, processing instructions: bogus comments to ">".
      const e = src.indexOf('>', i);
      i = e < 0 ? n : e + 1;
      continue;
    }
    const end = next === '/';
    const nameStart = end ? i + 2 : i + 1;
    if (!/[a-zA-Z]/.test(src[nameStart] ?? '')) {
      if (end) {
        // "</" and a non-letter starts a bogus comment (13.2.5.7).
        const e = src.indexOf('>', i);
        i = e < 0 ? n : e + 1;
      } else {
        if (!skip) out.push('&lt;');
        i++;
      }
      continue;
    }
    const tag = readTag(src, nameStart);
    if (!tag) break; // End of input inside a tag: the tag is dropped (13.2.5.32, eof-in-tag).
    i = tag.next;
    const name = tag.name;
    if (end) {
      if (skip) {
        if (skipStack[skipStack.length - 1] === name) {
          skipStack.pop();
          skip--;
        }
        continue;
      }
      const at = open.lastIndexOf(name);
      if (at < 0) continue;
      while (open.length > at) out.push(`</${open.pop()}>`);
      continue;
    }
    if (rawText.has(name)) {
      // The content runs to the matching end tag; plaintext to the end of input.
      let close = n;
      let after = n;
      if (name !== 'plaintext') {
        const re = new RegExp(`</${name}(?=[\\t\\n\\f\\r />])`, 'gi');
        re.lastIndex = i;
        const m = re.exec(src);
        if (m) {
          close = m.index;
          const e = readTag(src, m.index + 2);
          after = e ? e.next : n;
        }
      }
      if (name === 'style' && !skip) out.push(`<style>${c.css(src.slice(i, close))}</style>`);
      i = after;
      continue;
    }
    if (skip || dropWithContent.has(name)) {
      if (!tag.selfClosing && !voidElements.has(name)) {
        skip++;
        skipStack.push(name);
      }
      continue;
    }
    // The body's colours and background are kept on a wrapper.
    const el = name === 'body' ? 'div' : name;
    if (!allowed.has(el)) continue;
    const attrs = cleanAttrs(el, tag.attrs, c);
    const bg = name === 'body' ? attrs.find((a) => a.name === 'bgcolor') : undefined;
    if (bg && /^#?[a-zA-Z0-9]+$/.test(bg.value)) {
      // A div has no bgcolor; its colour goes into the style.
      const style = attrs.find((a) => a.name === 'style');
      if (style) style.value = `background-color:${bg.value};${style.value}`;
      else attrs.push({ name: 'style', value: `background-color:${bg.value}` });
    }
    if (el === 'img' && !attrs.some((a) => a.name === 'src')) {
      // A placeholder of the image's size, so the layout holds.
      attrs.push({ name: 'data-blocked', value: '' });
    }
    if (el === 'a' && attrs.some((a) => a.name === 'href' && !a.value.startsWith('#'))) {
      attrs.push({ name: 'target', value: '_blank' }, { name: 'rel', value: 'noopener noreferrer' });
    }
    out.push(`<${el}${attrs.map((a) => (a.value === '' && a.name !== 'alt' ? ` ${a.name}` : ` ${a.name}="${escapeAttr(a.value)}"`)).join('')}>`);
    if (!voidElements.has(el)) open.push(el);
  }
  while (open.length) out.push(`</${open.pop()}>`);
  return { html: out.join(''), remoteBlocked: c.remoteBlocked };
}

function cleanAttrs(el: string, attrs: Attr[], c: Cleaner): Attr[] {
  const out: Attr[] = [];
  const seen = new Set<string>();
  for (const a of attrs) {
    // 13.2.5.33: a repeated attribute is ignored.
    if (seen.has(a.name)) continue;
    seen.add(a.name);
    if (!globalAttrs.has(a.name) && !elementAttrs[el]?.has(a.name)) continue;
    const v = decodeEntities(a.value);
    if (a.name === 'href') {
      const u = c.url(v, 'link');
      if (u !== undefined) out.push({ name: 'href', value: u });
    } else if (a.name === 'src' || a.name === 'background') {
      const u = c.url(v, 'image');
      if (u !== undefined) out.push({ name: a.name, value: u });
    } else if (a.name === 'style') {
      out.push({ name: 'style', value: c.css(v) });
    } else out.push({ name: a.name, value: v });
  }
  return out;
}

/**
 * Reads a tag's name and attributes from the name's first character, as the tokenizer does
 * (13.2.5.8 to 13.2.5.40). Returns undefined when the input ends inside the tag.
 */
function readTag(s: string, at: number): { name: string; attrs: Attr[]; selfClosing: boolean; next: number } | undefined {
  const n = s.length;
  let i = at;
  while (i < n && !/[\t\n\f\r />]/.test(s[i]!)) i++;
  const name = s.slice(at, i).toLowerCase();
  const attrs: Attr[] = [];
  let selfClosing = false;
  for (;;) {
    while (i < n && /[\t\n\f\r ]/.test(s[i]!)) i++;
    if (i >= n) return undefined;
    const ch = s[i]!;
    if (ch === '>') return { name, attrs, selfClosing, next: i + 1 };
    if (ch === '/') {
      i++;
      selfClosing = s[i] === '>';
      continue;
    }
    // An attribute name may start with "=" (13.2.5.32) and runs to white space, "/", ">" or "=".
    const ns = i;
    i++;
    while (i < n && !/[\t\n\f\r />=]/.test(s[i]!)) i++;
    const aname = s.slice(ns, i).toLowerCase();
    selfClosing = false;
    while (i < n && /[\t\n\f\r ]/.test(s[i]!)) i++;
    let value = '';
    if (s[i] === '=') {
      i++;
      while (i < n && /[\t\n\f\r ]/.test(s[i]!)) i++;
      const q = s[i];
      if (q === '"' || q === "'") {
        const e = s.indexOf(q, i + 1);
        if (e < 0) return undefined;
        value = s.slice(i + 1, e);
        i = e + 1;
      } else {
        const vs = i;
        while (i < n && !/[\t\n\f\r >]/.test(s[i]!)) i++;
        value = s.slice(vs, i);
      }
    }
    attrs.push({ name: aname, value });
  }
}

const baseStyle =
  'html{color-scheme:light}body{margin:8px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;background:#fff;overflow-wrap:anywhere}' +
  'img{max-width:100%;height:auto}img[data-blocked]{display:inline-block;min-width:16px;min-height:16px;background:#eef0f3;outline:1px dashed #b9c0c9}' +
  'pre{white-space:pre-wrap}blockquote{margin-left:0.5em;padding-left:0.8em;border-left:3px solid #dde1e6}';

/** The document shown in the message frame: our base style, then the sanitized body. */
export function messageDocument(body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><style>${baseStyle}</style></head><body>${body}</body></html>`;
}
