// Messages composed in the webmail: header fields (RFC 5322 3.6) with non-ASCII text as RFC 2047
// encoded-words, the text in quoted-printable when it is not plain short-lined ASCII (RFC 2045
// 6.7), and attachments in multipart/mixed (RFC 2046 5.1.3) as base64 with RFC 2231 file names.
import { randomBytes } from 'node:crypto';
import libmime from 'libmime';
import { isGroup, parseAddressList } from '../message/address.js';
import { asciiDomain, parseMailbox, quoteLocalpart } from '../smtp/address.js';
import { formatDate } from '../smtp/received.js';

export interface Addr {
  name?: string;
  address: string;
}

export interface Attachment {
  name: string;
  type: string;
  data: Buffer;
}

export interface Composed {
  from: Addr;
  to: Addr[];
  cc: Addr[];
  bcc: Addr[];
  subject: string;
  text: string;
  /** Message-ID with angle brackets. */
  messageId: string;
  date: Date;
  inReplyTo?: string;
  references?: string[];
  attachments: Attachment[];
}

/** Parses what a user typed into an address field: "Name <a@b>, c@d". Throws on an invalid address. */
export function parseAddresses(input: string): Addr[] {
  const out: Addr[] = [];
  for (const item of parseAddressList(input.replace(/[\r\n]+/g, ' '))) {
    for (const m of isGroup(item) ? item.members : [item]) {
      const address = `${m.mailbox ?? ''}@${m.host ?? ''}`;
      if (!m.mailbox || !m.host) throw new Error(`invalid address "${m.mailbox ?? m.host ?? ''}"`);
      try {
        const p = parseMailbox(`${quoteLocalpart(m.mailbox)}@${m.host}`, true);
        if (p.rest !== '') throw new Error('trailing text');
      } catch {
        throw new Error(`invalid address "${address}"`);
      }
      out.push(m.name ? { name: m.name, address } : { address });
    }
  }
  return out;
}

/** Whether the address needs SMTPUTF8 (RFC 6531): a non-ASCII localpart. */
export function needsUTF8(address: string): boolean {
  return /[^\x00-\x7f]/.test(address.slice(0, address.lastIndexOf('@')));
}

/** Address for headers and the envelope: localpart quoted where needed, domain in A-labels. */
export function canonicalAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return `${quoteLocalpart(address.slice(0, at))}@${asciiDomain(address.slice(at + 1).toLowerCase())}`;
}

const atextPhrase = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/;

/** A display name as a phrase (RFC 5322 3.2.5), quoted or encoded as needed (RFC 2047 5(3)). */
function phrase(name: string): string {
  const n = name.replace(/[\r\n\t]+/g, ' ').trim();
  if (atextPhrase.test(n)) return n;
  // B encoding: Q in a phrase is limited to a few characters, and B is as readable to software.
  if (/[^\x20-\x7e]/.test(n)) return libmime.encodeWord(n, 'B', 52);
  return `"${n.replace(/(["\\])/g, '\\$1')}"`;
}

export function formatAddress(a: Addr): string {
  const addr = canonicalAddress(a.address);
  return a.name?.trim() ? `${phrase(a.name)} <${addr}>` : addr;
}

/** Unstructured text (e.g. Subject) with non-ASCII words encoded (RFC 2047 2, 5(1)). */
export function unstructured(s: string): string {
  const t = s.replace(/[\r\n]+/g, ' ');
  return /[^\x20-\x7e]/.test(t) ? libmime.encodeWords(t, 'Q', 52) : t;
}

/** A header field folded at white space to lines of at most 78 characters (RFC 5322 2.2.3). */
export function field(name: string, value: string): string {
  return libmime.foldLines(`${name}: ${value}`, 76) + '\r\n';
}

export function addressField(name: string, list: Addr[]): string {
  // Folding happens between addresses, never within one.
  const parts = list.map(formatAddress);
  let out = `${name}: `;
  let line = out.length;
  parts.forEach((p, i) => {
    const s = p + (i < parts.length - 1 ? ',' : '');
    if (i > 0 && line + 1 + s.length > 78) {
      out += '\r\n ';
      line = 1;
    } else if (i > 0) {
      out += ' ';
      line++;
    }
    out += s;
    line += s.length;
  });
  return out + '\r\n';
}

/** A MIME parameter, RFC 2231 encoded and continued when not plain ASCII or long. */
export function param(key: string, value: string): string {
  return libmime
    .buildHeaderParam(key, value, 60)
    .map((p) => `;\r\n ${p.key}=${p.key.endsWith('*') ? p.value : `"${String(p.value).replace(/(["\\])/g, '\\$1')}"`}`)
    .join('');
}

/** Quoted-printable (RFC 2045 6.7) of UTF-8 text with CRLF line breaks, lines at most 76 characters. */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\r\n')) {
    const b = Buffer.from(line, 'utf8');
    let cur = '';
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      // Rule 3: white space at the end of a line would be removed in transport, so it is encoded.
      const literal = (c >= 33 && c <= 126 && c !== 61) || ((c === 32 || c === 9) && i < b.length - 1);
      const t = literal ? String.fromCharCode(c) : `=${c.toString(16).toUpperCase().padStart(2, '0')}`;
      if (cur.length + t.length > 75) {
        out.push(cur + '=');
        cur = '';
      }
      cur += t;
    }
    out.push(cur);
  }
  return out.join('\r\n');
}

export function base64Lines(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

/** The text part: 7bit when it can be, else quoted-printable; UTF-8 either way. */
function textPart(text: string): { headers: string; body: string } {
  const crlf = text.replace(/\r?\n|\r/g, '\r\n');
  const plain = !/[^\x00-\x7f]/.test(crlf) && crlf.split('\r\n').every((l) => l.length <= 78) && !/[\x00\x7f]/.test(crlf);
  return {
    headers: `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: ${plain ? '7bit' : 'quoted-printable'}\r\n`,
    body: plain ? crlf : quotedPrintable(crlf),
  };
}

/** A forwarded message may stay message/rfc822 only with an identity encoding (RFC 2046 5.2.1). */
function attachmentPart(a: Attachment): { headers: string; body: string } {
  const type = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i.test(a.type) ? a.type.toLowerCase() : 'application/octet-stream';
  if (type === 'message/rfc822') {
    const s = a.data.toString('latin1');
    const lines = s.split('\n');
    if (lines.every((l) => l.length <= 998) && !s.includes('\0')) {
      const body = s.replace(/\r?\n/g, '\r\n');
      return { headers: `Content-Type: message/rfc822${param('name', a.name)}\r\nContent-Disposition: attachment${param('filename', a.name)}\r\nContent-Transfer-Encoding: ${/[\x80-\xff]/.test(s) ? '8bit' : '7bit'}\r\n`, body };
    }
  }
  const t = type === 'message/rfc822' ? 'application/octet-stream' : type;
  return {
    headers: `Content-Type: ${t}${param('name', a.name)}\r\nContent-Disposition: attachment${param('filename', a.name)}\r\nContent-Transfer-Encoding: base64\r\n`,
    body: base64Lines(a.data),
  };
}

/**
 * The message as RFC 5322 text. Bcc is written only for the copy kept in Sent or Drafts (RFC 5322
 * 3.6.3 leaves it to the implementation; the recipients must not see it).
 */
export function composeMessage(c: Composed, opts: { bcc: boolean }): Buffer {
  let h = '';
  h += field('Date', formatDate(c.date));
  h += addressField('From', [c.from]);
  if (c.to.length) h += addressField('To', c.to);
  if (c.cc.length) h += addressField('Cc', c.cc);
  if (opts.bcc && c.bcc.length) h += addressField('Bcc', c.bcc);
  h += field('Subject', unstructured(c.subject));
  h += field('Message-ID', c.messageId);
  // RFC 5322 3.6.4: In-Reply-To names the parent, References the chain up to and including it.
  if (c.inReplyTo) h += field('In-Reply-To', c.inReplyTo);
  if (c.references?.length) h += field('References', c.references.join(' '));
  h += 'MIME-Version: 1.0\r\n';
  const text = textPart(c.text);
  if (!c.attachments.length) return Buffer.from(h + text.headers + '\r\n' + text.body + '\r\n', 'utf8');
  const boundary = `=_postern_${randomBytes(12).toString('hex')}`;
  const parts = [text, ...c.attachments.map(attachmentPart)];
  const chunks: Buffer[] = [Buffer.from(`${h}Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\nThis is a message in MIME format.\r\n`, 'utf8')];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\n${p.headers}\r\n`, 'utf8'), Buffer.from(p.body + '\r\n', p === text ? 'utf8' : 'latin1'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/** A new Message-ID (RFC 5322 3.6.4) at the host. */
export function newMessageId(hostname: string): string {
  return `<${randomBytes(16).toString('base64url')}@${hostname}>`;
}
