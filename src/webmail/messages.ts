// What the webmail shows of messages: pages of a mailbox's list (by the index, newest first),
// conversations (RFC 5256 REFERENCES threading), search, and one message with its text, sanitized
// HTML and attachments. Message files are immutable, so what is derived from them (list
// summaries, threading data) is cached by message id; the cache is bounded.
import fs from 'node:fs';
import libmime from 'libmime';
import type { Account, MailboxRow, MessageRow } from '../store/account.js';
import { Flag, flagList } from '../store/flags.js';
import { parseMessage, type Envelope, type Part } from '../message/part.js';
import { isGroup, displayMailbox, type AddressItem } from '../message/address.js';
import { decodeHeaderText, parseHeader } from '../message/header.js';
import { decodedBody, decodedSize, decodedText } from '../message/decode.js';
import { getParam } from '../message/params.js';
import { preview } from '../message/preview.js';
import { threadMessages, messageIds, type ThreadNode } from '../imapserver/thread.js';
import { evaluate, type MessageSource, type SearchKey } from '../imapserver/search.js';
import { sentDate } from '../imapserver/sort.js';
import { messageDocument, sanitizeHTML, escapeHTML } from './sanitize.js';

export interface Address {
  name: string;
  address: string;
}

export interface Summary {
  from: Address[];
  to: Address[];
  subject: string;
  /** Sent date (Date field), else the arrival time; ms. */
  date: number;
  attachments: boolean;
  preview: string;
}

export interface ListItem extends Summary {
  uid: number;
  flags: string[];
  size: number;
  received: number;
  /** In conversation view: the messages of the conversation in this mailbox and the unread ones, oldest first. */
  thread?: { uids: number[]; unread: number[]; count: number };
}

export interface ListResult {
  total: number;
  offset: number;
  items: ListItem[];
}

const maxCached = 50_000;

interface ThreadMeta {
  env: Envelope;
  /** The References field, or "" (RFC 5256 4 uses its message IDs). */
  refs: string;
}

interface Cache {
  summaries: Map<number, Summary>;
  meta: Map<number, ThreadMeta>;
  /** Conversations of a mailbox, valid while its key (UIDNEXT and count) is unchanged. */
  threads: Map<number, { key: string; list: number[][] }>;
}

const caches = new WeakMap<Account, Cache>();

function cache(acc: Account): Cache {
  let c = caches.get(acc);
  if (!c) caches.set(acc, (c = { summaries: new Map(), meta: new Map(), threads: new Map() }));
  return c;
}

function remember<K, V>(m: Map<K, V>, k: K, v: V): V {
  // Insertion order is age: the oldest entries go first.
  if (m.size >= maxCached) m.delete(m.keys().next().value as K);
  m.set(k, v);
  return v;
}

export function addresses(list: AddressItem[] | undefined): Address[] {
  const out: Address[] = [];
  for (const item of list ?? []) for (const m of isGroup(item) ? item.members : [item]) out.push(displayMailbox(m));
  return out;
}

/** Bytes [start, end) of the stored message (delivery prefix plus file), without reading the rest. */
export function readRange(acc: Account, row: MessageRow, start: number, end: number): Buffer {
  const prefix = row.prefixSize ? acc.prefix(row) : Buffer.alloc(0);
  const parts: Buffer[] = [];
  if (start < prefix.length) parts.push(prefix.subarray(start, Math.min(end, prefix.length)));
  if (end > prefix.length) {
    const from = Math.max(start, prefix.length) - prefix.length;
    const fd = fs.openSync(acc.messagePath(row.id), 'r');
    try {
      const buf = Buffer.alloc(end - prefix.length - from);
      const n = fs.readSync(fd, buf, 0, buf.length, from);
      parts.push(buf.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

async function structure(acc: Account, row: MessageRow): Promise<Part> {
  return acc.part(row) ?? parseMessage(await acc.readMessage(row));
}

/** Leaves shown as the message text (not attachments), depth first; one choice per alternative. */
function textLeaves(p: Part, html: boolean): Part[] {
  if (p.parts) {
    if (p.subtype === 'alternative') {
      // RFC 2046 5.1.4: the last alternative is the richest; take the last of the wanted kind.
      const kids = p.parts.map((c) => textLeaves(c, html)).filter((l) => l.length);
      const want = kids.filter((l) => l.some((x) => x.subtype === (html ? 'html' : 'plain')));
      return (want.length ? want[want.length - 1] : kids[kids.length - 1]) ?? [];
    }
    if (p.subtype === 'related') return textLeaves(p.parts[0] ?? p, html);
    return p.parts.flatMap((c) => textLeaves(c, html));
  }
  if (p.message) return [];
  if (p.type !== 'text' || (p.subtype !== 'plain' && p.subtype !== 'html')) return [];
  if (p.disposition === 'attachment' || getParam(p.dispositionParams, 'filename') !== undefined) return [];
  return [p];
}

function hasAttachments(p: Part): boolean {
  const shown = new Set([...textLeaves(p, true), ...textLeaves(p, false)]);
  return attachmentParts(p).some((a) => !shown.has(a.part) && !(a.related && contentId(a.part)));
}

/** List summary: envelope fields and a preview read from the first text part only. */
async function summary(acc: Account, row: MessageRow): Promise<Summary> {
  const c = cache(acc);
  const have = c.summaries.get(row.id);
  if (have) return have;
  const part = await structure(acc, row);
  const env = part.envelope ?? {};
  let text = '';
  const leaf = textLeaves(part, false)[0];
  if (leaf) {
    // A preview needs the start of the text only: a part of a large message is not read whole.
    const body = readRange(acc, row, leaf.body, Math.min(leaf.end, leaf.body + 16384));
    const part = { ...leaf, start: 0, body: 0, end: body.length };
    // HTML is reduced to its text here, so a <title> or <head> does not open the preview.
    if (leaf.subtype === 'html') {
      const t = Buffer.from(htmlToText(decodedText(body, part)));
      text = preview(t, { start: 0, body: 0, end: t.length, type: 'text', subtype: 'plain', params: [['charset', 'utf-8']] });
    } else text = preview(body, part);
  }
  return remember(c.summaries, row.id, {
    from: addresses(env.from),
    to: addresses(env.to),
    subject: decodeHeaderText(env.subject ?? ''),
    date: sentDate(env, row),
    attachments: hasAttachments(part),
    preview: text,
  });
}

async function item(acc: Account, row: MessageRow): Promise<ListItem> {
  return { uid: row.uid, flags: flagList(row.flags, row.keywords), size: row.size, received: row.received, ...(await summary(acc, row)) };
}

/**
 * A page of a mailbox, newest first. The page is read through the (mailbox_id, uid) index with
 * LIMIT/OFFSET, so its cost does not grow with the mailbox: UIDs are in arrival order.
 */
export async function listPage(acc: Account, mb: MailboxRow, offset: number, limit: number): Promise<ListResult> {
  const total = acc.db.prepare('SELECT count(*) FROM message WHERE mailbox_id = ?').pluck().get(mb.id) as number;
  const uids = acc.db.prepare('SELECT uid FROM message WHERE mailbox_id = ? ORDER BY uid DESC LIMIT ? OFFSET ?').pluck().all(mb.id, limit, offset) as number[];
  const items: ListItem[] = [];
  for (const uid of uids) {
    const row = acc.message(mb.id, uid);
    if (row) items.push(await item(acc, row));
  }
  return { total, offset, items };
}

/** Threading data of the rows, from the stored structure and the References field of the header. */
function threadMeta(acc: Account, rows: readonly MessageRow[]): Map<number, ThreadMeta> {
  const c = cache(acc);
  const missing = rows.filter((r) => !c.meta.has(r.id));
  if (missing.length) {
    // The envelope and the header's end come from the index; only the header is read.
    const q = acc.db.prepare("SELECT json_extract(part, '$.envelope') AS env, json_extract(part, '$.body') AS body FROM message WHERE id = ?");
    for (const r of missing) {
      const x = q.get(r.id) as { env: string | null; body: number | null } | undefined;
      let env: Envelope = {};
      let refs = '';
      if (x?.body != null) {
        env = x.env ? (JSON.parse(x.env) as Envelope) : {};
        refs = parseHeader(readRange(acc, r, 0, x.body)).getAll('references').pop()?.value ?? '';
      } else {
        const msg = fs.readFileSync(acc.messagePath(r.id));
        const whole = Buffer.concat([acc.prefix(r), msg]);
        env = parseMessage(whole).envelope ?? {};
        refs = parseHeader(whole).getAll('references').pop()?.value ?? '';
      }
      remember(c.meta, r.id, { env, refs });
    }
  }
  return c.meta;
}

/**
 * The conversations of a mailbox as lists of UIDs, oldest message first within one, and the
 * conversations ordered by their newest arrival, newest first.
 */
export async function conversations(acc: Account, mb: MailboxRow): Promise<number[][]> {
  const c = cache(acc);
  const count = acc.db.prepare('SELECT count(*) FROM message WHERE mailbox_id = ?').pluck().get(mb.id) as number;
  const key = `${mb.uidnext}:${count}`;
  const have = c.threads.get(mb.id);
  if (have?.key === key) return have.list;
  const rows = acc.messages(mb.id);
  const meta = threadMeta(acc, rows);
  const src: MessageSource = {
    rows,
    part: (r) => ({ envelope: meta.get(r.id)?.env ?? {} }) as Part,
    read: (r) => acc.readMessage(r),
    header: async (r) => Buffer.from(`References: ${meta.get(r.id)?.refs ?? ''}\r\n\r\n`, 'latin1'),
  };
  const trees = await threadMessages('REFERENCES', rows.map((r) => r.uid), src);
  const flat = (n: ThreadNode): number[] => {
    const out: number[] = [];
    const stack = [n];
    while (stack.length) {
      const x = stack.pop()!;
      if (x.uid !== undefined) out.push(x.uid);
      for (let i = x.children.length - 1; i >= 0; i--) stack.push(x.children[i]!);
    }
    return out;
  };
  // UIDs grow with arrival: a conversation's newest arrival is its largest UID.
  const newest = (l: number[]) => l.reduce((a, b) => (b > a ? b : a), 0);
  const list = trees.map((t) => flat(t).sort((a, b) => a - b)).filter((l) => l.length).map((l) => ({ l, n: newest(l) })).sort((a, b) => b.n - a.n).map((x) => x.l);
  c.threads.set(mb.id, { key, list });
  return list;
}

/** A page of conversations: each item is the newest message, with the conversation's counts. */
export async function listConversations(acc: Account, mb: MailboxRow, offset: number, limit: number): Promise<ListResult> {
  const all = await conversations(acc, mb);
  const items: ListItem[] = [];
  for (const uids of all.slice(offset, offset + limit)) {
    const rows = uids.map((u) => acc.message(mb.id, u)).filter((r): r is MessageRow => r !== undefined);
    if (!rows.length) continue;
    const newest = rows.reduce((a, b) => (b.uid > a.uid ? b : a));
    const it = await item(acc, newest);
    // The conversation's senders, in order, once each.
    const from = new Map<string, Address>();
    let attachments = false;
    for (const r of rows) {
      const s = await summary(acc, r);
      for (const f of s.from) if (!from.has(f.address.toLowerCase())) from.set(f.address.toLowerCase(), f);
      attachments ||= s.attachments;
    }
    const flags = new Set(rows.flatMap((r) => flagList(r.flags, r.keywords)));
    // The conversation is read only when all of it is.
    if (rows.some((r) => !(r.flags & Flag.Seen))) flags.delete('\\Seen');
    items.push({ ...it, from: [...from.values()], attachments, flags: [...flags], thread: { uids: rows.map((r) => r.uid), unread: rows.filter((r) => !(r.flags & Flag.Seen)).map((r) => r.uid), count: rows.length } });
  }
  return { total: all.length, offset, items };
}

/** The conversation a message is in, as UIDs oldest first. */
export async function conversationOf(acc: Account, mb: MailboxRow, uid: number): Promise<number[]> {
  return (await conversations(acc, mb)).find((l) => l.includes(uid)) ?? [uid];
}

/**
 * A search program from what the user typed: words are searched in the whole message (IMAP
 * TEXT); "from:", "to:", "subject:" look in those fields; "is:unread", "is:read", "is:flagged",
 * "is:answered" test flags. All terms must match. Quotes group words.
 */
export function searchKey(q: string): SearchKey {
  const keys: SearchKey[] = [];
  for (const m of q.matchAll(/(?:(\w+):)?(?:"([^"]*)"|(\S+))/g)) {
    const field = m[1]?.toLowerCase();
    const text = m[2] ?? m[3] ?? '';
    if (field === 'from' || field === 'subject') keys.push({ type: 'envelope', field, text });
    else if (field === 'to') keys.push({ type: 'or', a: { type: 'envelope', field: 'to', text }, b: { type: 'envelope', field: 'cc', text } });
    else if (field === 'is') {
      const flag: Record<string, [number, boolean]> = { unread: [Flag.Seen, false], read: [Flag.Seen, true], seen: [Flag.Seen, true], flagged: [Flag.Flagged, true], starred: [Flag.Flagged, true], answered: [Flag.Answered, true] };
      const f = flag[text.toLowerCase()];
      if (!f) throw new Error(`unknown search term is:${text}`);
      keys.push({ type: 'flag', bit: f[0], set: f[1] });
    } else keys.push({ type: 'text', text: m[1] ? `${m[1]}:${text}` : text });
  }
  return keys.length ? { type: 'and', keys } : { type: 'all' };
}

/** Search results of a mailbox, newest first, a page of them. */
export async function searchPage(acc: Account, mb: MailboxRow, q: string, offset: number, limit: number, now: number): Promise<ListResult> {
  const rows = acc.messages(mb.id);
  const uids = await evaluate({ key: searchKey(q), modseq: false }, { rows, now, part: (r) => acc.part(r), read: (r) => acc.readMessage(r) });
  uids.reverse();
  const items: ListItem[] = [];
  for (const uid of uids.slice(offset, offset + limit)) {
    const row = acc.message(mb.id, uid);
    if (row) items.push(await item(acc, row));
  }
  return { total: uids.length, offset, items };
}

/** A part by its path of child indexes ("" is the message, "1.0" the first child of the second child). */
export function partAt(root: Part, path: string): Part | undefined {
  let p: Part | undefined = root;
  for (const s of path ? path.split('.') : []) {
    if (!/^\d+$/.test(s)) return undefined;
    p = p?.parts?.[Number(s)];
  }
  return p;
}

export interface AttachmentInfo {
  path: string;
  name: string;
  type: string;
  size: number;
  /** Content-ID without brackets, for inline images. */
  cid?: string;
}

/** Leaves that are not multiparts, with their paths; encapsulated messages are leaves. */
function attachmentParts(root: Part): { part: Part; path: string; related: boolean }[] {
  const out: { part: Part; path: string; related: boolean }[] = [];
  const walk = (p: Part, path: string, related: boolean) => {
    if (p.parts) p.parts.forEach((c, i) => walk(c, path ? `${path}.${i}` : String(i), p.subtype === 'related' && i > 0));
    else if (path !== '' || p.type !== 'text') out.push({ part: p, path, related });
  };
  walk(root, '', false);
  return out;
}

/** A part's file name: Content-Disposition filename, Content-Type name (RFC 2183, 2231, 2047), or made up. */
export function partName(p: Part, path: string): string {
  const raw = getParam(p.dispositionParams, 'filename') ?? getParam(p.params, 'name');
  // Only the last path component, and no control characters, whatever the sender wrote.
  const name = raw ? decodeHeaderText(raw).split(/[/\\]/).pop()!.replace(/[\x00-\x1f\x7f]/g, '').trim() : '';
  if (name) return name;
  if (p.type === 'message') return `message-${path || '0'}.eml`;
  return `part-${path || '0'}.${libmime.detectExtension(`${p.type}/${p.subtype}`) || 'bin'}`;
}

function contentId(p: Part): string | undefined {
  const id = p.id?.trim().replace(/^<|>$/g, '');
  return id || undefined;
}

export interface MessageView extends Omit<Summary, 'attachments' | 'preview'> {
  uid: number;
  flags: string[];
  size: number;
  received: number;
  cc: Address[];
  bcc: Address[];
  replyTo: Address[];
  messageId: string;
  inReplyTo: string;
  references: string[];
  /** The text to read and to quote: the text parts, or the HTML parts as text. */
  text: string;
  /** The message has HTML to show (in the frame, from the html download). */
  html: boolean;
  /** Remote resources the HTML would load. */
  remoteBlocked: number;
  attachments: AttachmentInfo[];
  /** The message as a draft can be edited again. */
  draft: boolean;
}

/** HTML to plain text, for quoting and the text view of HTML-only messages. */
export function htmlToText(html: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };
  return html
    .replace(/<(script|style|title|head)\b[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<br\b[^>]*>/gi, '\n')
    .replace(/<\/?(p|div|li|tr|h[1-6]|blockquote|pre|table|ul|ol|hr)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,6});/gi, (e, n: string) => {
      if (n[0] !== '#') return named[n.toLowerCase()] ?? e;
      const cp = n[1] === 'x' || n[1] === 'X' ? parseInt(n.slice(2), 16) : parseInt(n.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : e;
    })
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Inline parts by Content-ID as data: URLs, for cid: images in HTML; 10 MB in all at most. */
function cidURLs(msg: Buffer, root: Part): Map<string, string> {
  const out = new Map<string, string>();
  let budget = 10 << 20;
  for (const { part } of attachmentParts(root)) {
    const id = contentId(part);
    if (!id || part.type !== 'image' || !/^(png|gif|jpeg|webp|bmp)$/.test(part.subtype)) continue;
    const data = decodedBody(msg, part);
    if ((budget -= data.length) < 0) break;
    out.set(id, `data:image/${part.subtype};base64,${data.toString('base64')}`);
  }
  return out;
}

/** The HTML of the message's text leaves: HTML parts sanitized, text parts escaped. */
export function renderHTML(msg: Buffer, root: Part, remote: boolean): { doc: string; remoteBlocked: number } {
  const cids = cidURLs(msg, root);
  let blocked = 0;
  const body = textLeaves(root, true)
    .map((p) => {
      const t = decodedText(msg, p);
      if (p.subtype !== 'html') return `<pre>${escapeHTML(t)}</pre>`;
      const s = sanitizeHTML(t, { remote, cid: (id) => cids.get(id) });
      blocked += s.remoteBlocked;
      return s.html;
    })
    .join('<hr>');
  return { doc: messageDocument(body), remoteBlocked: blocked };
}

export async function messageView(acc: Account, row: MessageRow): Promise<MessageView> {
  const msg = await acc.readMessage(row);
  const root = acc.part(row) ?? parseMessage(msg);
  const env = root.envelope ?? {};
  const plain = textLeaves(root, false);
  const rich = textLeaves(root, true);
  const html = rich.some((p) => p.subtype === 'html');
  const text = plain.map((p) => (p.subtype === 'html' ? htmlToText(decodedText(msg, p)) : decodedText(msg, p))).join('\n\n').replace(/\r\n/g, '\n');
  const shown = new Set([...plain, ...rich]);
  const attachments: AttachmentInfo[] = [];
  for (const { part, path, related } of attachmentParts(root)) {
    if (shown.has(part)) continue;
    // Resources of an HTML body (RFC 2387) are shown in it, not listed.
    if (related && contentId(part) && html) continue;
    const cid = contentId(part);
    attachments.push({ path, name: partName(part, path), type: `${part.type}/${part.subtype}`, size: decodedSize(msg, part), ...(cid ? { cid } : {}) });
  }
  const refs = parseHeader(msg, 0, root.body).getAll('references').pop()?.value ?? '';
  return {
    uid: row.uid,
    flags: flagList(row.flags, row.keywords),
    size: row.size,
    received: row.received,
    from: addresses(env.from),
    to: addresses(env.to),
    cc: addresses(env.cc),
    bcc: addresses(env.bcc),
    replyTo: addresses(env.replyTo),
    subject: decodeHeaderText(env.subject ?? ''),
    date: sentDate(env, row),
    messageId: env.messageId?.trim() ?? '',
    inReplyTo: env.inReplyTo?.trim() ?? '',
    references: messageIds(refs).map((id) => `<${id}>`),
    attachments,
    text,
    html,
    remoteBlocked: html ? renderHTML(msg, root, false).remoteBlocked : 0,
    draft: (row.flags & Flag.Draft) !== 0,
  };
}
