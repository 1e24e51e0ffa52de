// A short plain-text preview of a message (RFC 8970 for IMAP; also for webmail lists).
import type { Part } from './part.js';
import { decodedText } from './decode.js';

const maxChars = 200;

/** First text/plain part, else the first text/html part, depth first. */
function textPart(p: Part, html: boolean): Part | undefined {
  if (p.message) return textPart(p.message, html);
  if (p.parts) {
    for (const c of p.parts) {
      const t = textPart(c, html);
      if (t) return t;
    }
    return undefined;
  }
  if (p.type !== 'text' || p.disposition === 'attachment') return undefined;
  return p.subtype === (html ? 'html' : 'plain') ? p : undefined;
}

/** RFC 8970 3: at most 200 characters of normalized text, without quoted replies and signatures. */
export function preview(msg: Buffer, root: Part): string {
  const plain = textPart(root, false);
  const part = plain ?? textPart(root, true);
  if (!part) return '';
  let text = decodedText(msg, part);
  if (!plain) {
    text = text
      .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
      .replace(/<[^>]*>/g, ' ')
      .replace(/&nbsp;/gi, ' ')
      .replace(/&amp;/gi, '&')
      .replace(/&lt;/gi, '<')
      .replace(/&gt;/gi, '>')
      .replace(/&quot;/gi, '"')
      .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d) % 0x110000));
  }
  const lines: string[] = [];
  for (const l of text.split(/\r?\n/)) {
    if (/^-- ?$/.test(l)) break; // Signature separator (RFC 3676 4.3; QP decoding may drop its space).
    if (/^\s*>/.test(l)) continue; // Quoted text.
    lines.push(l);
  }
  const norm = lines.join(' ').replace(/[\s\u0000-\u001f\u007f]+/g, ' ').trim();
  const chars = [...norm];
  return chars.length <= maxChars ? norm : chars.slice(0, maxChars).join('');
}
