// DKIM signing, RFC 6376 5, with rsa-sha256 and ed25519-sha256 (RFC 8463).

import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { domainToASCII } from 'node:url';

import { type Canon, canonHeader, hashBody, signedFields } from './canon.js';
import { loadPrivateKey } from './keys.js';
import { type HeaderField, type MessageInput, MessageError, MessageReader } from './message.js';
import { DOMAIN, FIELD_NAME } from './tags.js';

export interface SignOptions {
  /** d=: the signing domain. */
  domain: string;
  /** s=: the key is published at <selector>._domainkey.<domain>. */
  selector: string;
  /** RSA (1024 to 8192 bits) or Ed25519; a KeyObject or PKCS#8 PEM. */
  privateKey: KeyObject | string | Buffer;
  /** Default "relaxed". */
  headerCanon?: Canon;
  /** Default "relaxed". */
  bodyCanon?: Canon;
  /** Header fields to sign; From is required (RFC 6376 5.4). Default DEFAULT_HEADERS. */
  headers?: string[];
  /** List each header once more than it occurs, so none can be added later (RFC 6376 8.15). Default true. */
  oversign?: boolean;
  /** Seconds until x= expiry; 0 omits x=. Default 72 hours. */
  expiration?: number;
  /** t=; default now. */
  timestamp?: Date;
  /** i=: an address or "@domain" at d= or a subdomain of it. */
  identity?: string;
}

export const DEFAULT_HEADERS = [
  'From',
  'To',
  'Cc',
  'Bcc',
  'Reply-To',
  'References',
  'In-Reply-To',
  'Subject',
  'Date',
  'Message-ID',
  'Content-Type',
];

const DEFAULT_EXPIRATION = 72 * 3600;
const MAX_LINE = 78; // RFC 5322 2.1.1

interface Prepared {
  key: KeyObject;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  domain: string;
  selector: string;
  headerCanon: Canon;
  bodyCanon: Canon;
  headers: string[];
  oversign: boolean;
  time: number;
  expires?: number;
  identity?: string;
}

/**
 * Signs a message with one or more keys, reading it once. Returns the DKIM-Signature fields,
 * one per key, each folded and ending in CRLF, to prepend to the message.
 */
export async function sign(message: MessageInput, options: SignOptions | SignOptions[]): Promise<string> {
  const list = (Array.isArray(options) ? options : [options]).map(prepare);
  if (list.length === 0) throw new TypeError('no signing keys');
  const reader = new MessageReader(message);
  try {
    const fields = await reader.header();
    if (fields.some((f) => f.key === '')) throw new MessageError('header line that is not a field');
    // RFC 5322 3.6: exactly one From, which every signature covers.
    const froms = fields.filter((f) => f.key === 'from').length;
    if (froms !== 1) throw new MessageError(`message has ${froms} From fields, need exactly 1`);
    const canons = [...new Set(list.map((p) => p.bodyCanon))];
    const bodies = await hashBody(
      reader.body(),
      canons.map((canon) => ({ canon })),
    );
    return list.map((p) => signOne(p, fields, bodies[canons.indexOf(p.bodyCanon)]!.hash)).join('');
  } finally {
    await reader.close();
  }
}

function prepare(o: SignOptions): Prepared {
  const key = loadPrivateKey(o.privateKey);
  const domain = asciiDomain(o.domain, 'domain');
  const selector = asciiDomain(o.selector, 'selector');
  const headers: string[] = [];
  for (const h of o.headers ?? DEFAULT_HEADERS) {
    if (!FIELD_NAME.test(h)) throw new TypeError(`invalid header field name ${JSON.stringify(h)}`);
    if (!headers.some((x) => x.toLowerCase() === h.toLowerCase())) headers.push(h);
  }
  if (!headers.some((h) => h.toLowerCase() === 'from')) throw new TypeError('From must be signed (RFC 6376 5.4)');
  const expiration = o.expiration ?? DEFAULT_EXPIRATION;
  if (!Number.isSafeInteger(expiration) || expiration < 0) throw new RangeError('expiration must be whole seconds');
  const time = Math.floor((o.timestamp ?? new Date()).getTime() / 1000);
  if (!Number.isSafeInteger(time) || time < 0) throw new RangeError('invalid timestamp');
  return {
    key,
    algorithm: key.asymmetricKeyType === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
    domain,
    selector,
    headerCanon: canonOption(o.headerCanon),
    bodyCanon: canonOption(o.bodyCanon),
    headers,
    oversign: o.oversign ?? true,
    time,
    expires: expiration > 0 ? time + expiration : undefined,
    identity: o.identity === undefined ? undefined : identityTag(o.identity, domain),
  };
}

function canonOption(c: Canon | undefined): Canon {
  if (c === undefined) return 'relaxed';
  if (c !== 'simple' && c !== 'relaxed') throw new TypeError(`unknown canonicalization ${String(c)}`);
  return c;
}

/** RFC 6376 3.5 d=: internationalized names as A-labels. */
function asciiDomain(name: string, what: string): string {
  const ascii = domainToASCII(name.toLowerCase());
  if (!DOMAIN.test(ascii)) throw new TypeError(`invalid ${what} ${JSON.stringify(name)}`);
  return ascii;
}

/** The i= value: dkim-quoted-printable (RFC 6376 2.11), its domain at or below d= (3.5). */
function identityTag(identity: string, domain: string): string {
  const at = identity.lastIndexOf('@');
  if (at < 0) throw new TypeError('identity needs an "@"');
  const idDomain = asciiDomain(identity.slice(at + 1), 'identity domain');
  if (idDomain !== domain && !idDomain.endsWith('.' + domain)) {
    throw new TypeError(`identity domain ${idDomain} is not ${domain} or a subdomain of it`);
  }
  let local = '';
  for (const b of Buffer.from(identity.slice(0, at), 'utf8')) {
    const safe = (b >= 0x21 && b <= 0x3a) || b === 0x3c || (b >= 0x3e && b <= 0x7e);
    local += safe ? String.fromCharCode(b) : '=' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return local + '@' + idDomain;
}

function signOne(p: Prepared, fields: HeaderField[], bodyHash: Buffer): string {
  // RFC 6376 5.4.2: each listed name signs the next instance from the bottom; listing a name
  // once more than it occurs signs its absence.
  const h: string[] = [];
  for (const name of p.headers) {
    const n = fields.filter((f) => f.key === name.toLowerCase()).length + (p.oversign ? 1 : 0);
    for (let i = 0; i < n; i++) h.push(name);
  }
  const fold = new Folder('DKIM-Signature:');
  fold.add(' ', 'v=1;');
  fold.add(' ', `a=${p.algorithm};`);
  fold.add(' ', `c=${p.headerCanon}/${p.bodyCanon};`);
  fold.add(' ', `d=${p.domain};`);
  fold.add(' ', `s=${p.selector};`);
  if (p.identity !== undefined) fold.add(' ', `i=${p.identity};`);
  fold.add(' ', `t=${p.time};`);
  if (p.expires !== undefined) fold.add(' ', `x=${p.expires};`);
  h.forEach((name, i) => fold.add(i === 0 ? ' ' : '', (i === 0 ? 'h=' : ':') + name + (i === h.length - 1 ? ';' : '')));
  fold.add(' ', `bh=${bodyHash.toString('base64')};`);
  fold.add(' ', 'b=');

  // RFC 6376 3.7: the signed fields, then this field with an empty b= and no final CRLF.
  let data = signedFields(fields, h, -1, p.headerCanon);
  data += canonHeader(fold.text(), p.headerCanon).slice(0, -2);
  const bytes = Buffer.from(data, 'latin1');
  const signature =
    p.algorithm === 'rsa-sha256'
      ? cryptoSign('sha256', bytes, p.key)
      : // RFC 8463 3: Ed25519 signs the SHA-256 hash of the data.
        cryptoSign(null, createHash('sha256').update(bytes).digest(), p.key);
  fold.fill(signature.toString('base64'));
  return fold.text() + '\r\n';
}

/** Folds a header field into lines of at most 78 chars, breaking only where FWS may go. */
class Folder {
  private readonly lines: string[] = [];
  private line: string;

  constructor(start: string) {
    this.line = start;
  }

  /** Appends text after sep, or on a new line if it does not fit. */
  add(sep: string, text: string): void {
    if (this.line.length + sep.length + text.length <= MAX_LINE) {
      this.line += sep + text;
    } else {
      this.lines.push(this.line);
      this.line = '\t' + text;
    }
  }

  /** Appends base64 text, filling lines: FWS may go anywhere in it (RFC 6376 2.4). */
  fill(text: string): void {
    for (let i = 0; i < text.length; ) {
      let room = MAX_LINE - this.line.length;
      if (room <= 0) {
        this.lines.push(this.line);
        this.line = '\t';
        room = MAX_LINE - 1;
      }
      this.line += text.slice(i, i + room);
      i += room;
    }
  }

  text(): string {
    return [...this.lines, this.line].join('\r\n');
  }
}
