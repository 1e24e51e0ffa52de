// Words of a message for the Bayesian junk filter: the decoded text of text/plain and text/html
// parts (nested messages included), lower-cased, with pairs of adjacent words, plus the From
// domain, the Subject's words and the hosts of links, each marked with where they came from.
import { parseMessage, allParts } from '../message/part.js';
import { decodedText } from '../message/decode.js';
import { parseHeader, decodeHeaderText } from '../message/header.js';
import { fromAddresses } from '../smtpserver/rules.js';
import { organizationalDomain } from '../dmarc/lookup.js';

/** Bounds the work for one message, whatever its size. */
const maxTextParts = 20;
const maxPartChars = 200_000;
const maxTokens = 20_000;

const wordRe = /[\p{L}\p{N}](?:[\p{L}\p{N}']*[\p{L}\p{N}])?/gu;
const urlRe = /\bhttps?:\/\/([a-z0-9.-]+)/gi;

/**
 * Whether a word carries meaning across messages. Numbers, very short and very long words, and
 * random-looking strings (tracking ids, base64 debris: long consonant runs) would only grow the
 * database.
 */
function useful(w: string): boolean {
  if (w.length < 3 || w.length > 25) return false;
  if (/^[\d']+$/.test(w)) return false;
  if (/\d.*\d.*\d.*\d/.test(w)) return false;
  return !/[bcdfghjklmnpqrstvwxz]{6}/.test(w);
}

/** Lower-cased useful words of a text, in order. */
export function words(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().matchAll(wordRe)) if (useful(m[0])) out.push(m[0]);
  return out;
}

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** Visible text of HTML, plus image alt texts and link hosts; script, style and svg skipped. */
export function htmlText(html: string): { text: string; hosts: string[] } {
  const hosts: string[] = [];
  let s = html.replace(/<!--[\s\S]*?-->/g, ' ').replace(/<(script|style|svg|head)\b[\s\S]*?<\/\1\s*>/gi, ' ');
  s = s.replace(/<[^>]*>/g, (tag) => {
    for (const m of tag.matchAll(/\bhref\s*=\s*["']?\s*https?:\/\/([a-z0-9.-]+)/gi)) hosts.push(m[1]!.toLowerCase());
    const alt = /\balt\s*=\s*("([^"]*)"|'([^']*)')/i.exec(tag);
    return alt ? ` ${alt[2] ?? alt[3]} ` : ' ';
  });
  s = s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (e, n: string) => {
    if (n[0] === '#') {
      const c = n[1] === 'x' || n[1] === 'X' ? parseInt(n.slice(2), 16) : parseInt(n.slice(1), 10);
      return c > 0 && c < 0x110000 ? String.fromCodePoint(c) : ' ';
    }
    return entities[n.toLowerCase()] ?? e;
  });
  return { text: s, hosts };
}

/** The tokens of a message, each once. */
export function tokenize(msg: Buffer): Set<string> {
  const out = new Set<string>();
  const add = (t: string) => {
    if (out.size < maxTokens) out.add(t);
  };
  const header = parseHeader(msg);
  for (const from of fromAddresses(header).slice(0, 1)) {
    const domain = from.slice(from.lastIndexOf('@') + 1);
    add(`from:${domain}`);
    add(`from:${organizationalDomain(domain)}`);
  }
  const subject = header.get('subject');
  if (subject) for (const w of words(decodeHeaderText(subject.value))) add(`subject:${w}`);

  const root = parseMessage(msg);
  let n = 0;
  for (const p of allParts(root)) {
    if (p.type !== 'text' || (p.subtype !== 'plain' && p.subtype !== 'html') || p.disposition === 'attachment') continue;
    if (++n > maxTextParts) break;
    let text = decodedText(msg, p).slice(0, maxPartChars);
    let hosts: string[];
    if (p.subtype === 'html') ({ text, hosts } = htmlText(text));
    else hosts = [...text.matchAll(urlRe)].map((m) => m[1]!.toLowerCase());
    for (const h of hosts) add(`url:${organizationalDomain(h.replace(/\.$/, ''))}`);
    const ws = words(text);
    for (let i = 0; i < ws.length && out.size < maxTokens; i++) {
      add(ws[i]!);
      if (i > 0) add(`${ws[i - 1]} ${ws[i]}`);
    }
  }
  return out;
}
