// Composes the message of a webapi Send on the header and encoding helpers of the webmail's
// composer: text and HTML as multipart/alternative (RFC 2046 5.1.4), inline files with
// multipart/related (RFC 2387), attachments with multipart/mixed, and custom header fields.
import { randomBytes } from 'node:crypto';
import libmime from 'libmime';
import { formatDate } from '../smtp/received.js';
import { addressField, base64Lines, field, needsUTF8, param, quotedPrintable, unstructured, type Addr } from '../webmail/compose.js';

export interface File {
  name: string;
  contentType: string;
  /** With angle brackets, for "cid:" references from HTML; empty for none. */
  contentId: string;
  data: Buffer;
}

export interface Composition {
  from: Addr;
  to: Addr[];
  cc: Addr[];
  replyTo: Addr[];
  subject: string;
  messageId: string;
  date: Date;
  references: string[];
  headers: [string, string][];
  text: string;
  html: string;
  inline: File[];
  attached: File[];
}

export class ComposeError extends Error {}

/** Fields the composition writes itself; a custom header cannot replace them. */
const reserved = new Set(['from', 'to', 'cc', 'bcc', 'reply-to', 'subject', 'message-id', 'date', 'in-reply-to', 'references', 'mime-version', 'content-type', 'content-transfer-encoding', 'sender']);

interface Entity {
  head: string;
  body: string;
}

/** A text part: 7bit for plain short-lined ASCII, else quoted-printable UTF-8 (RFC 2045 6.7). */
function textEntity(subtype: 'plain' | 'html', s: string): Entity {
  const text = s.replace(/\r?\n|\r/g, '\r\n');
  const plain = !/[^\x01-\x7e\r\n\t]/.test(text) && text.split('\r\n').every((l) => l.length <= 78);
  return {
    head: `Content-Type: text/${subtype}; charset=${plain ? 'us-ascii' : 'utf-8'}\r\nContent-Transfer-Encoding: ${plain ? '7bit' : 'quoted-printable'}\r\n`,
    body: plain ? text : quotedPrintable(text),
  };
}

function fileEntity(f: File, disposition: 'inline' | 'attachment'): Entity {
  const given = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i.test(f.contentType) ? f.contentType.toLowerCase() : '';
  const type = given || (f.name && libmime.detectMimeType(f.name)) || 'application/octet-stream';
  const name = f.name ? param('name', f.name) : '';
  let head = `Content-Type: ${type}${name}\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: ${disposition}${f.name ? param('filename', f.name) : ''}\r\n`;
  if (f.contentId) head += `Content-ID: ${f.contentId}\r\n`;
  return { head, body: base64Lines(f.data) };
}

function multipart(subtype: string, parts: Entity[], extra = ''): Entity {
  // "=_" cannot occur in quoted-printable or base64 content, so the boundary cannot either.
  const boundary = `=_postern_${randomBytes(12).toString('hex')}`;
  const body = parts.map((p) => `--${boundary}\r\n${p.head}\r\n${p.body}\r\n`).join('') + `--${boundary}--\r\n`;
  return { head: `Content-Type: multipart/${subtype}; boundary="${boundary}"${extra}\r\n`, body };
}

/** The message with CRLF line endings, and whether an address needs SMTPUTF8 (RFC 6531). */
export function compose(c: Composition): { msg: Buffer; smtputf8: boolean } {
  let head = field('Date', formatDate(c.date));
  head += addressField('From', [c.from]);
  if (c.to.length) head += addressField('To', c.to);
  if (c.cc.length) head += addressField('Cc', c.cc);
  if (c.replyTo.length) head += addressField('Reply-To', c.replyTo);
  if (c.subject) head += field('Subject', unstructured(c.subject));
  head += field('Message-ID', c.messageId);
  // RFC 5322 3.6.4: In-Reply-To names the parent, References the chain up to and including it.
  if (c.references.length) {
    head += field('In-Reply-To', c.references[c.references.length - 1]!);
    head += field('References', c.references.join(' '));
  }
  let agent = false;
  for (const [k, v] of c.headers) {
    if (!/^[\x21-\x39\x3b-\x7e]+$/.test(k)) throw new ComposeError(`invalid header field name ${JSON.stringify(k)}`);
    if (reserved.has(k.toLowerCase())) throw new ComposeError(`header ${k} is set from the request fields, not with Headers`);
    if (/[\r\n\0]/.test(v)) throw new ComposeError(`header ${k} has a line break`);
    if (/^(user-agent|x-mailer)$/i.test(k)) agent = true;
    head += field(k, unstructured(v));
  }
  if (!agent) head += 'User-Agent: postern-webapi\r\n';
  head += 'MIME-Version: 1.0\r\n';

  const texts: Entity[] = [];
  if (c.text) texts.push(textEntity('plain', c.text));
  if (c.html) texts.push(textEntity('html', c.html));
  if (texts.length === 0) throw new ComposeError('a message needs Text or HTML');
  // The alternatives in increasing order of preference: HTML last.
  let root = texts.length === 2 ? multipart('alternative', texts) : texts[0]!;
  if (c.inline.length) {
    const type = /^Content-Type: ([^;\r\n]+)/.exec(root.head)![1]!;
    // RFC 2387 3.1: the type parameter names the type of the root part.
    root = multipart('related', [root, ...c.inline.map((f) => fileEntity(f, 'inline'))], `; type="${type}"`);
  }
  if (c.attached.length) root = multipart('mixed', [root, ...c.attached.map((f) => fileEntity(f, 'attachment'))]);
  const smtputf8 = [c.from, ...c.to, ...c.cc, ...c.replyTo].some((a) => needsUTF8(a.address));
  return { msg: Buffer.from(`${head}${root.head}\r\n${root.body}`, 'utf8'), smtputf8 };
}
