// The JSON bodies of webhooks, and the parsed view of a stored message they share with the
// webapi's MessageGet. Field names follow mox's webhooks, so applications written for one work
// with the other; new fields may be added, and receivers should ignore fields they do not know.
import type { Part, Envelope } from '../message/part.js';
import { isGroup, displayMailbox, parseAddressList, type AddressItem } from '../message/address.js';
import { decodeHeaderText, parseHeader, bytesToText } from '../message/header.js';
import { decodedSize, decodedText } from '../message/decode.js';
import type { outgoingEvents } from '../config/domains.js';

export type OutgoingEvent = (typeof outgoingEvents)[number];

export interface NameAddress {
  Name: string;
  Address: string;
}

/** An event about an outgoing message: from a delivery attempt, or from a DSN that came back. */
export interface Outgoing {
  Version: 0;
  Event: OutgoingEvent;
  /** The event comes from an incoming DSN. */
  DSN: boolean;
  /** The failure put the recipient on the account's suppression list. */
  Suppressing: boolean;
  QueueMsgID: number;
  FromID: string;
  MessageID: string;
  Subject: string;
  /** When the webhook was queued, ISO 8601. */
  WebhookQueued: string;
  SMTPCode: number;
  SMTPEnhancedCode: string;
  Error: string;
  Extra: Record<string, string>;
}

export interface Structure {
  ContentType: string;
  ContentTypeParams: Record<string, string>;
  ContentID: string;
  DecodedSize: number;
  Parts: Structure[];
}

/** A message in parsed form: the webapi's Message, and the header part of an incoming webhook. */
export interface ParsedMessage {
  From: NameAddress[];
  To: NameAddress[];
  CC: NameAddress[];
  BCC: NameAddress[];
  ReplyTo: NameAddress[];
  Subject: string;
  MessageID: string;
  InReplyTo: string;
  References: string[];
  /** From the Date header, ISO 8601, or null. */
  Date: string | null;
  Text: string;
  HTML: string;
}

export interface IncomingMeta {
  MsgID: number;
  MailFrom: string;
  MailFromValidated: boolean;
  MsgFromValidated: boolean;
  RcptTo: string;
  DKIMVerifiedDomains: string[];
  RemoteIP: string;
  Received: string;
  MailboxName: string;
  /** Automated (auto-submitted, list or bulk) mail, which should not get automatic replies. */
  Automated: boolean;
}

export type Incoming = { Version: 0 } & ParsedMessage & { Structure: Structure; Meta: IncomingMeta };

/** Texts in webhooks and MessageGet are cut here; MessagePartGet returns whole parts. */
const maxText = 1024 * 1024;

export function structure(msg: Buffer, p: Part): Structure {
  const params: Record<string, string> = {};
  for (const [k, v] of p.params ?? []) params[k.toLowerCase()] = bytesToText(v);
  return {
    ContentType: `${p.type}/${p.subtype}`,
    ContentTypeParams: params,
    ContentID: p.id ? bytesToText(p.id) : '',
    DecodedSize: p.parts || p.type === 'multipart' ? 0 : decodedSize(msg, p),
    Parts: (p.parts ?? []).map((c) => structure(msg, c)),
  };
}

/** The part at a path of indexes into the parts of multiparts, e.g. [0, 2]. */
export function partAt(root: Part, path: number[]): Part | undefined {
  let p: Part | undefined = root;
  for (const i of path) p = p?.parts?.[i];
  return p;
}

function addresses(items: AddressItem[] | undefined): NameAddress[] {
  const out: NameAddress[] = [];
  for (const it of items ?? []) {
    for (const m of isGroup(it) ? it.members : [it]) {
      const d = displayMailbox(m);
      out.push({ Name: d.name, Address: d.address });
    }
  }
  return out;
}

const ids = (v: string | undefined) => (v ? [...bytesToText(v).matchAll(/<[^<>\s]*>/g)].map((m) => m[0]) : []);

function text(msg: Buffer, p: Part): string {
  const t = decodedText(msg, p).replace(/\r\n/g, '\n');
  return t.length > maxText ? t.slice(0, maxText) : t;
}

/** Header fields and first text and HTML parts (not attachments) of a message. */
export function parsedMessage(msg: Buffer, root: Part): ParsedMessage {
  const env: Envelope = root.envelope ?? {};
  const header = parseHeader(msg.subarray(root.start, root.body));
  const date = env.date ? new Date(Date.parse(bytesToText(env.date))) : undefined;
  let textPart: Part | undefined;
  let htmlPart: Part | undefined;
  // Parts of this message only: the text of an attached message is not this message's text.
  const walk = (p: Part) => {
    if (p.parts) return p.parts.forEach(walk);
    if (p.disposition === 'attachment' || p.type !== 'text') return;
    if (p.subtype === 'plain') textPart ??= p;
    if (p.subtype === 'html') htmlPart ??= p;
  };
  walk(root);
  return {
    From: addresses(env.from),
    To: addresses(env.to),
    CC: addresses(env.cc),
    BCC: addresses(env.bcc),
    ReplyTo: addresses(env.replyTo),
    Subject: env.subject ? decodeHeaderText(env.subject) : '',
    MessageID: env.messageId ? bytesToText(env.messageId).trim() : '',
    InReplyTo: ids(env.inReplyTo)[0] ?? '',
    References: ids(header.get('references')?.value),
    Date: date && !Number.isNaN(date.getTime()) ? date.toISOString() : null,
    Text: textPart ? text(msg, textPart) : '',
    HTML: htmlPart ? text(msg, htmlPart) : '',
  };
}

/** Automatic messages (RFC 3834 5, RFC 2369 lists, bulk precedence) that should not be answered automatically. */
export function automated(msg: Buffer, root: Part): boolean {
  const h = parseHeader(msg.subarray(root.start, root.body));
  const auto = h.get('auto-submitted')?.value.trim().toLowerCase();
  if (auto && auto !== 'no') return true;
  if (h.get('list-id') || h.get('list-unsubscribe') || h.get('list-post')) return true;
  return /^(bulk|list|junk)$/i.test(h.get('precedence')?.value.trim() ?? '');
}

/** Addresses of an address-list header value, e.g. for checks of a composed message. */
export function headerAddresses(value: string): NameAddress[] {
  return addresses(parseAddressList(value));
}
