// The webmail application at WebmailHTTP(S).Path: the page, a JSON API for mailboxes, message
// lists, messages, flags, moves, junk marking, composing, drafts and sending, downloads of
// attachments and of the sanitized HTML of messages, and a server-sent event stream of changes.
//
// HTML of messages is served as its own document for a sandboxed frame: sanitized (sanitize.ts),
// with a Content-Security-Policy that allows no scripts and no loads except inline images and,
// when the user asks, remote images.
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { registerService, type WebContext, type WebHandler } from '../http/router.js';
import { webState, type WebState } from '../http/services.js';
import { webApp, argInt, argStr, type ApiMethod, type RawHandler } from '../http/webapp.js';
import { WebAuth, type Session } from '../http/session.js';
import { HTTPError, attachment, securityHeaders, serveAsset } from '../http/util.js';
import type { Account, Change, MailboxRow, MessageRow } from '../store/account.js';
import { Flag, flagList } from '../store/flags.js';
import { createMailbox } from '../store/mailboxops.js';
import { parseMessage } from '../message/part.js';
import { decodedBody } from '../message/decode.js';
import { getParam } from '../message/params.js';
import { receivedHeader } from '../smtp/received.js';
import { submitMessage } from '../smtpserver/submit.js';
import { composeMessage, needsUTF8, newMessageId, parseAddresses, type Addr, type Attachment } from './compose.js';
import { conversationOf, listConversations, listPage, messageView, partAt, partName, renderHTML, searchPage } from './messages.js';

const pageCSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Types shown in the browser when viewing an attachment; others are always downloaded. */
const viewable = /^(image\/(png|jpeg|gif|webp|bmp)|text\/plain|application\/pdf)$/;

const auths = new WeakMap<WebState, WebAuth>();
const apps = new WeakMap<WebState, WebHandler>();

interface Upload {
  path: string;
  account: string;
  name: string;
  type: string;
  size: number;
  created: number;
}

/** Files uploaded for messages being composed, by id; they live in the store's tmp directory. */
const uploads = new Map<string, Upload>();
const uploadMaxAge = 86400_000;

async function dropUpload(id: string): Promise<void> {
  const u = uploads.get(id);
  uploads.delete(id);
  if (u) await fsp.rm(u.path, { force: true });
}

function account(ctx: WebContext, s: Session): Account {
  return ctx.app.store.account(s.account);
}

function mailboxArg(acc: Account, a: Record<string, unknown>, name = 'mailbox'): MailboxRow {
  const mb = acc.mailboxById(argInt(a, name));
  if (!mb) throw new Error('no such mailbox');
  return mb;
}

function uidsArg(a: Record<string, unknown>): number[] {
  const v = a.uids;
  if (!Array.isArray(v) || !v.length || v.length > 10_000 || !v.every((x) => Number.isSafeInteger(x) && x > 0)) throw new Error('uids must be a list of message UIDs');
  return v as number[];
}

function messageArg(acc: Account, mb: MailboxRow, uid: number): MessageRow {
  const row = acc.message(mb.id, uid);
  if (!row) throw new HTTPError(404, 'no such message');
  return row;
}

/** The mailbox with a special use (RFC 6154), else by its usual name, created when missing. */
function special(acc: Account, use: string, name: string): MailboxRow {
  return acc.mailboxes().find((m) => m.specialuse === use) ?? acc.mailbox(name) ?? createMailbox(acc, name, acc.mailboxes().some((m) => m.specialuse === use) ? '' : use);
}

function mailboxes(acc: Account) {
  return acc.mailboxes().map((m) => {
    const c = acc.counts(m.id);
    return { id: m.id, name: m.name, specialUse: m.specialuse, total: c.messages, unread: c.unseen, size: c.size };
  });
}

// Flags the page may set: the system flags a user changes and the junk training keywords.
const settable = new Set(['\\Seen', '\\Flagged', '\\Answered', '$Forwarded', '$Junk', '$NotJunk']);

function flagsArg(a: Record<string, unknown>, name: string): string[] {
  const v = a[name] ?? [];
  if (!Array.isArray(v) || !v.every((f) => typeof f === 'string' && settable.has(f))) throw new Error(`${name} must be a list of ${[...settable].join(', ')}`);
  return v as string[];
}

/** The addresses the account may send from; catch-alls are not addresses. */
function fromAddresses(ctx: WebContext, s: Session): string[] {
  const own = ctx.app.config.addresses.addressesOf(s.account).filter((a) => !a.startsWith('@'));
  return own.includes(s.loginAddress.toLowerCase()) || !s.loginAddress ? own : [s.loginAddress, ...own];
}

interface ComposeArgs {
  from: Addr;
  to: Addr[];
  cc: Addr[];
  bcc: Addr[];
  subject: string;
  text: string;
  inReplyTo?: string;
  references: string[];
  attachments: Attachment[];
  uploadIds: string[];
}

const messageIdPattern = /^<[^<>\s]+>$/;

/** Reads the compose form and fetches its attachments: uploads, or parts of stored messages (forwards, drafts). */
async function composeArgs(a: Record<string, unknown>, s: Session, ctx: WebContext, requireRecipients: boolean): Promise<ComposeArgs> {
  const acc = account(ctx, s);
  const fromAddr = argStr(a, 'from');
  if (!ctx.app.localserve && !fromAddresses(ctx, s).some((x) => x.toLowerCase() === fromAddr.toLowerCase())) throw new Error(`${fromAddr} is not an address of your account`);
  const fullName = ctx.app.config.domains.Accounts[s.account]?.FullName;
  const list = (k: string) => parseAddresses(argStr(a, k, true));
  const to = list('to');
  const cc = list('cc');
  const bcc = list('bcc');
  if (requireRecipients && !to.length && !cc.length && !bcc.length) throw new Error('the message needs a recipient');
  const inReplyTo = argStr(a, 'inReplyTo', true);
  if (inReplyTo && !messageIdPattern.test(inReplyTo)) throw new Error('inReplyTo must be a message ID');
  const references = Array.isArray(a.references) ? a.references : [];
  if (!references.every((r) => typeof r === 'string' && messageIdPattern.test(r))) throw new Error('references must be message IDs');
  const attachments: Attachment[] = [];
  const uploadIds: string[] = [];
  for (const x of Array.isArray(a.attachments) ? (a.attachments as Record<string, unknown>[]) : []) {
    if (typeof x !== 'object' || x === null) throw new Error('attachments must be objects');
    if (typeof x.upload === 'string') {
      const u = uploads.get(x.upload);
      if (!u || u.account !== s.account) throw new Error('an uploaded attachment is gone, add it again');
      attachments.push({ name: u.name, type: u.type, data: await fsp.readFile(u.path) });
      uploadIds.push(x.upload);
    } else {
      const mb = mailboxArg(acc, x);
      const row = messageArg(acc, mb, argInt(x, 'uid'));
      const path = argStr(x, 'path');
      const msg = await acc.readMessage(row);
      const p = partAt(acc.part(row) ?? parseMessage(msg), path);
      if (!p || p.parts) throw new Error('no such attachment');
      attachments.push({ name: partName(p, path), type: `${p.type}/${p.subtype}`, data: p.message ? msg.subarray(p.body, p.end) : decodedBody(msg, p) });
    }
  }
  return {
    from: fullName ? { name: fullName, address: fromAddr } : { address: fromAddr },
    to,
    cc,
    bcc,
    subject: argStr(a, 'subject', true),
    text: argStr(a, 'text', true),
    inReplyTo: inReplyTo || undefined,
    references: references as string[],
    attachments,
    uploadIds,
  };
}

/** Stores a message in a mailbox (Sent, Drafts) with flags; returns its UID. */
async function store(ctx: WebContext, acc: Account, mailbox: MailboxRow, msg: Buffer, flags: number): Promise<number> {
  const file = await ctx.app.store.writeTemp(msg);
  try {
    return (await acc.deliver(file, { mailbox: mailbox.name, flags, part: parseMessage(msg), received: ctx.app.clock.now() })).uid;
  } finally {
    await fsp.rm(file.path, { force: true });
  }
}

/** Removes the draft a sent or newly saved message replaces. */
function dropDraft(acc: Account, a: Record<string, unknown>): void {
  const d = a.draft as Record<string, unknown> | undefined;
  if (!d || typeof d !== 'object') return;
  const mb = acc.mailboxById(argInt(d, 'mailbox'));
  const row = mb && acc.message(mb.id, argInt(d, 'uid'));
  if (mb && row && row.flags & Flag.Draft) acc.expunge(mb.id, [row.uid]);
}

function maxMessageSize(ctx: WebContext): number {
  return ctx.listener.SMTP.MaxMessageSize;
}

function methods(): Record<string, ApiMethod> {
  return {
    init: (_a, s, ctx) => ({
      account: s.account,
      loginAddress: s.loginAddress,
      fullName: ctx.app.config.domains.Accounts[s.account]?.FullName ?? '',
      addresses: fromAddresses(ctx, s),
      mailboxes: mailboxes(account(ctx, s)),
      maxMessageSize: maxMessageSize(ctx),
    }),
    mailboxes: (_a, s, ctx) => mailboxes(account(ctx, s)),
    list: async (a, s, ctx) => {
      const acc = account(ctx, s);
      const mb = mailboxArg(acc, a);
      const offset = Math.max(0, argInt(a, 'offset'));
      const limit = Math.min(200, Math.max(1, argInt(a, 'limit')));
      const search = argStr(a, 'search', true).trim();
      const t0 = performance.now();
      const r = search
        ? await searchPage(acc, mb, search, offset, limit, ctx.app.clock.now())
        : a.threads === true
          ? await listConversations(acc, mb, offset, limit)
          : await listPage(acc, mb, offset, limit);
      return { ...r, ms: Math.round((performance.now() - t0) * 10) / 10 };
    },
    message: async (a, s, ctx) => {
      const acc = account(ctx, s);
      const mb = mailboxArg(acc, a);
      const row = messageArg(acc, mb, argInt(a, 'uid'));
      if (a.markRead === true && !(row.flags & Flag.Seen)) acc.storeFlags(mb.id, [row.uid], '+', ['\\Seen']);
      const view = await messageView(acc, acc.message(mb.id, row.uid) ?? row);
      return { ...view, mailbox: mb.id, conversation: await conversationOf(acc, mb, row.uid) };
    },
    flags: (a, s, ctx) => {
      const acc = account(ctx, s);
      const mb = mailboxArg(acc, a);
      const uids = uidsArg(a);
      const add = flagsArg(a, 'add');
      const remove = flagsArg(a, 'remove');
      if (add.length) acc.storeFlags(mb.id, uids, '+', add);
      if (remove.length) acc.storeFlags(mb.id, uids, '-', remove);
    },
    move: (a, s, ctx) => {
      const acc = account(ctx, s);
      const mb = mailboxArg(acc, a);
      const to = mailboxArg(acc, a, 'to');
      if (to.id !== mb.id) acc.copy(mb.id, uidsArg(a), to.id, true);
    },
    // Deleting moves to Trash; in Trash it removes for good.
    remove: (a, s, ctx) => {
      const acc = account(ctx, s);
      const mb = mailboxArg(acc, a);
      const trash = special(acc, '\\Trash', 'Trash');
      if (mb.id === trash.id) acc.expunge(mb.id, uidsArg(a));
      else acc.copy(mb.id, uidsArg(a), trash.id, true);
    },
    // The junk filter learns from $Junk and $NotJunk (src/junk/train.ts): marking sets one and
    // clears the other, and moves the messages to Junk, or from Junk back to the Inbox.
    junk: (a, s, ctx) => {
      const acc = account(ctx, s);
      const mb = mailboxArg(acc, a);
      const uids = uidsArg(a);
      const junk = a.junk === true;
      acc.storeFlags(mb.id, uids, '-', [junk ? '$NotJunk' : '$Junk']);
      acc.storeFlags(mb.id, uids, '+', [junk ? '$Junk' : '$NotJunk']);
      const junkbox = special(acc, '\\Junk', 'Junk');
      if (junk && mb.id !== junkbox.id) acc.copy(mb.id, uids, junkbox.id, true);
      if (!junk && mb.id === junkbox.id) acc.copy(mb.id, uids, acc.mailbox('Inbox')!.id, true);
    },
    createMailbox: (a, s, ctx) => {
      createMailbox(account(ctx, s), argStr(a, 'name'));
      return mailboxes(account(ctx, s));
    },
    send: async (a, s, ctx) => {
      const acc = account(ctx, s);
      const c = await composeArgs(a, s, ctx, true);
      const msgArgs = { ...c, messageId: newMessageId(ctx.app.config.static_.Hostname), date: new Date(ctx.app.clock.now()) };
      const msg = composeMessage(msgArgs, { bcc: false });
      if (msg.length > maxMessageSize(ctx)) throw new Error(`message too large, at most ${maxMessageSize(ctx)} bytes`);
      const recipients = [...new Map([...c.to, ...c.cc, ...c.bcc].map((x) => [x.address.toLowerCase(), x.address])).values()];
      const id = `${ctx.cid.toString(36)}-${ctx.app.clock.now().toString(36)}`;
      const localIP = ctx.listener.IPs[0] ?? '0.0.0.0';
      const r = await submitMessage(ctx.app, {
        account: s.account,
        mailFrom: c.from.address,
        recipients,
        msg,
        smtputf8: [c.from, ...c.to, ...c.cc, ...c.bcc].some((x) => needsUTF8(x.address)),
        // The web client has no EHLO name: its IP address stands for it (RFC 5321 4.4 allows a literal).
        received: (recipient) =>
          receivedHeader({
            helo: ctx.remoteIP.includes(':') ? `[IPv6:${ctx.remoteIP}]` : `[${ctx.remoteIP}]`,
            remoteIP: ctx.remoteIP,
            hostname: ctx.app.config.static_.Hostname,
            localIP,
            with: ctx.tls ? 'HTTPS' : 'HTTP',
            id,
            recipient,
            date: new Date(ctx.app.clock.now()),
          }),
      });
      ctx.log.info('webmail message submitted', { account: s.account, messageId: r.messageId, delivered: r.delivered.length, queued: r.queued.length });
      // The copy in Sent keeps Bcc, so the sender sees whom it went to.
      const sent = special(acc, '\\Sent', 'Sent');
      const uid = await store(ctx, acc, sent, composeMessage(msgArgs, { bcc: true }), Flag.Seen);
      const answer = a.answer as Record<string, unknown> | undefined;
      if (answer && typeof answer === 'object') {
        const mb = acc.mailboxById(argInt(answer, 'mailbox'));
        if (mb) acc.storeFlags(mb.id, [argInt(answer, 'uid')], '+', [answer.forward === true ? '$Forwarded' : '\\Answered']);
      }
      dropDraft(acc, a);
      for (const u of c.uploadIds) await dropUpload(u);
      return { messageId: r.messageId, delivered: r.delivered, queued: r.queued, sent: { mailbox: sent.id, uid } };
    },
    saveDraft: async (a, s, ctx) => {
      const acc = account(ctx, s);
      const c = await composeArgs(a, s, ctx, false);
      const msg = composeMessage({ ...c, messageId: newMessageId(ctx.app.config.static_.Hostname), date: new Date(ctx.app.clock.now()) }, { bcc: true });
      if (msg.length > maxMessageSize(ctx)) throw new Error(`message too large, at most ${maxMessageSize(ctx)} bytes`);
      const drafts = special(acc, '\\Drafts', 'Drafts');
      const uid = await store(ctx, acc, drafts, msg, Flag.Draft | Flag.Seen);
      dropDraft(acc, a);
      for (const u of c.uploadIds) await dropUpload(u);
      // The attachments now live in the draft; the page refers to them there from now on.
      const view = await messageView(acc, acc.message(drafts.id, uid)!);
      return { mailbox: drafts.id, uid, attachments: view.attachments.map((x) => ({ ...x, mailbox: drafts.id, uid })) };
    },
  };
}

/** A message from the query string of a download. */
function queryMessage(ctx: WebContext, s: Session): { acc: Account; mb: MailboxRow; row: MessageRow } {
  const q = ctx.url.searchParams;
  const acc = account(ctx, s);
  const mb = acc.mailboxById(Number(q.get('mailbox')));
  const row = mb && acc.message(mb.id, Number(q.get('uid')));
  if (!mb || !row) throw new HTTPError(404, 'no such message');
  return { acc, mb, row };
}

const downloads: Record<string, RawHandler> = {
  /** The sanitized HTML of a message, as the document of the message frame. */
  html: async (req, res, s, ctx) => {
    const { acc, row } = queryMessage(ctx, s);
    const remote = ctx.url.searchParams.get('remote') === '1';
    const msg = await acc.readMessage(row);
    const { doc } = renderHTML(msg, acc.part(row) ?? parseMessage(msg), remote);
    const img = remote ? 'data: https: http:' : 'data:';
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      // The policy travels with the document: opened on its own it is as locked down as in the frame.
      'Content-Security-Policy': `sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox; default-src 'none'; img-src ${img}; style-src 'unsafe-inline'; font-src data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'`,
      'X-Frame-Options': 'SAMEORIGIN',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : doc);
  },
  /** An attachment, shown in the browser when its type is safe to show, else downloaded. */
  part: async (req, res, s, ctx) => {
    const { acc, row } = queryMessage(ctx, s);
    const msg = await acc.readMessage(row);
    const path = ctx.url.searchParams.get('path') ?? '';
    const p = partAt(acc.part(row) ?? parseMessage(msg), path);
    if (!p || p.parts) throw new HTTPError(404, 'no such part');
    const type = `${p.type}/${p.subtype}`;
    const data = p.message ? msg.subarray(p.body, p.end) : decodedBody(msg, p);
    const view = ctx.url.searchParams.get('download') !== '1' && viewable.test(type);
    const charset = p.type === 'text' ? `; charset=${/^[\w.:-]+$/.test(getParam(p.params, 'charset') ?? '') ? getParam(p.params, 'charset') : 'utf-8'}` : '';
    res.writeHead(200, {
      'Content-Type': view ? type + charset : 'application/octet-stream',
      'Content-Disposition': view ? attachment(partName(p, path)).replace(/^attachment/, 'inline') : attachment(partName(p, path)),
      'Content-Length': data.length,
      // PDFs need the browser's viewer, which a sandbox disables; nothing else gets to run anything.
      'Content-Security-Policy': `${type === 'application/pdf' ? '' : 'sandbox; '}default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; object-src 'self'`,
      'Cache-Control': 'private, max-age=3600',
    });
    res.end(req.method === 'HEAD' ? undefined : data);
  },
  /** The message as stored, for "view source" and saving. */
  raw: async (req, res, s, ctx) => {
    const { acc, row } = queryMessage(ctx, s);
    const msg = await acc.readMessage(row);
    const download = ctx.url.searchParams.get('download') === '1';
    res.writeHead(200, {
      'Content-Type': download ? 'message/rfc822' : 'text/plain; charset=utf-8',
      'Content-Disposition': download ? attachment(`message-${row.uid}.eml`) : 'inline',
      'Content-Length': msg.length,
      'Content-Security-Policy': "sandbox; default-src 'none'",
      'Cache-Control': 'private, no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : msg);
  },
  /** A draft as compose fields, its attachments by reference. */
  draft: async (_req, res, s, ctx) => {
    const { acc, mb, row } = queryMessage(ctx, s);
    const v = await messageView(acc, row);
    const fmt = (l: { name: string; address: string }[]) => l.map((x) => (x.name ? `${x.name.replace(/[",<>]/g, '')} <${x.address}>` : x.address)).join(', ');
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(
      JSON.stringify({
        from: v.from[0]?.address ?? '',
        to: fmt(v.to),
        cc: fmt(v.cc),
        bcc: fmt(v.bcc),
        subject: v.subject,
        text: v.text,
        inReplyTo: v.inReplyTo,
        references: v.references,
        attachments: v.attachments.map((x) => ({ ...x, mailbox: mb.id, uid: row.uid })),
        draft: { mailbox: mb.id, uid: row.uid },
      }),
    );
  },
  /**
   * Server-sent events (HTML Living Standard 9.2) with the account's changes: new, removed and
   * moved messages, flag changes and mailbox changes, with the new counts of the mailboxes
   * concerned. Bursts are sent together.
   */
  events: (req, res, s, ctx) => {
    const acc = account(ctx, s);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.write('retry: 3000\n\n');
    let pending: Change[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      const changes = pending;
      pending = [];
      const ids = new Set(changes.map((c) => c.mailboxId));
      const counts = mailboxes(acc).filter((m) => ids.has(m.id));
      const mailboxChanged = changes.some((c) => c.type === 'mailbox');
      const brief = changes.map((c) =>
        c.type === 'remove'
          ? { type: c.type, mailbox: c.mailboxId, uids: c.uids }
          : c.type === 'mailbox'
            ? { type: c.type, mailbox: c.mailboxId }
            : { type: c.type, mailbox: c.mailboxId, uid: c.uid, flags: flagList(c.flags, c.keywords) },
      );
      res.write(`event: changes\ndata: ${JSON.stringify({ changes: brief.slice(0, 1000), truncated: brief.length > 1000, mailboxes: mailboxChanged ? mailboxes(acc) : counts, mailboxList: mailboxChanged })}\n\n`);
    };
    const listener = (changes: Change[]) => {
      pending.push(...changes);
      timer ??= setTimeout(flush, 50);
    };
    acc.on('changes', listener);
    // Comments keep proxies and the browser from taking the stream for dead.
    const ping = setInterval(() => res.write(': ping\n\n'), 25_000);
    req.on('close', () => {
      acc.off('changes', listener);
      clearInterval(ping);
      clearTimeout(timer);
    });
  },
};

const uploadHandlers: Record<string, RawHandler> = {
  /** An attachment for a message being composed: the file is the body, its name and type in the query. */
  upload: async (req, res, s, ctx) => {
    const now = ctx.app.clock.now();
    for (const [id, u] of uploads) if (now - u.created > uploadMaxAge) await dropUpload(id);
    const q = ctx.url.searchParams;
    const name = (q.get('name') ?? 'attachment').replace(/[\x00-\x1f\x7f/\\]/g, '_').slice(0, 255) || 'attachment';
    const type = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i.test(q.get('type') ?? '') ? q.get('type')!.toLowerCase() : 'application/octet-stream';
    const max = maxMessageSize(ctx);
    if (Number(req.headers['content-length'] ?? 0) > max) throw new HTTPError(413, `file too large, at most ${max} bytes`);
    const t = await ctx.app.store.tempFile();
    try {
      for await (const chunk of req) {
        if (t.size + (chunk as Buffer).length > max) throw new HTTPError(413, `file too large, at most ${max} bytes`);
        t.write(chunk as Buffer);
        await t.drain();
      }
    } catch (e) {
      await t.discard();
      throw e;
    }
    const f = await t.finish();
    const id = randomBytes(16).toString('base64url');
    uploads.set(id, { path: f.path, account: s.account, name, type, size: f.size, created: now });
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({ upload: id, name, type, size: f.size }) + '\n');
  },
};

export function webmailApp(state: WebState): WebHandler {
  let h = apps.get(state);
  if (h) return h;
  let auth = auths.get(state);
  if (!auth) auths.set(state, (auth = new WebAuth(state.sessions, 'account', 'postern_webmail')));
  const api = webApp({
    auth,
    name: 'webmail',
    check: async (c, ctx) => {
      const account = await ctx.app.auth.password(c.username, c.password);
      return account ? { account } : undefined;
    },
    methods: methods(),
    downloads,
    uploads: uploadHandlers,
  });
  h = (req: IncomingMessage, res: ServerResponse, ctx: WebContext) => {
    const rel = ctx.url.pathname.slice(ctx.base.length);
    if ((req.method === 'GET' || req.method === 'HEAD') && (rel === '' || rel === 'index.html' || rel === 'webmail.css')) {
      // As the other applications, but the page frames the message documents of its own origin.
      securityHeaders(res);
      res.setHeader('Content-Security-Policy', pageCSP);
      return serveAsset(req, res, rel === 'webmail.css' ? rel : 'webmail.html');
    }
    return api(req, res, ctx);
  };
  apps.set(state, h);
  return h;
}

registerService('Webmail', (req, res, ctx) => webmailApp(webState(ctx.app))(req, res, ctx));
