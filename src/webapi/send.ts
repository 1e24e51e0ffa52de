// The webapi's Send: checks the request, composes the message, and submits it like SMTP submission
// (From checks, DKIM signatures, local delivery and queueing) with the API's queue options. With a
// login address in FromIDLoginAddresses, each remote recipient gets a MAIL FROM address of its own
// with a unique id, so that a DSN coming back is matched with its message and recipient.
import fsp from 'node:fs/promises';
import { receivedHeader } from '../smtp/received.js';
import { parseMailbox, quoteLocalpart } from '../smtp/address.js';
import { normalizeDomain, splitAddress } from '../config/domains.js';
import { randomID, submitMessage, SubmitError, uniqueSenders } from '../smtpserver/submit.js';
import { suppressionLookup } from '../queue/suppression.js';
import { Flag } from '../store/flags.js';
import { parseMessage } from '../message/part.js';
import type { WebContext } from '../http/router.js';
import { compose, ComposeError, type File } from './compose.js';
import { APIError, bool, fields, str, type Caller } from './methods.js';
import type { FormPart } from './form.js';
import type { Addr } from '../webmail/compose.js';

/** As announced for SMTP FUTURERELEASE (RFC 4865). */
const maxHoldMs = 60 * 86400_000;
const maxRecipients = 1000;

const sendFields = [
  'From',
  'To',
  'CC',
  'BCC',
  'ReplyTo',
  'MessageID',
  'References',
  'Date',
  'Subject',
  'Text',
  'HTML',
  'Extra',
  'Headers',
  'InlineFiles',
  'AttachedFiles',
  'RequireTLS',
  'FutureRelease',
  'SaveSent',
];

export interface SendResult {
  MessageID: string;
  Submissions: { Address: string; QueueMsgID: number; FromID: string }[];
}

/** A checked address: the localpart as given, the domain in lower-case Unicode. */
function checkAddress(a: string): string {
  try {
    const { path, rest } = parseMailbox(a, true);
    const domain = normalizeDomain(path.domain);
    if (rest !== '' || !domain) throw new Error('bad domain');
    return `${quoteLocalpart(path.localpart)}@${domain}`;
  } catch {
    throw new APIError('badAddress', `invalid email address ${JSON.stringify(a)}`);
  }
}

function addrs(req: Record<string, unknown>, name: string): Addr[] {
  const v = req[name] ?? [];
  if (!Array.isArray(v)) throw new APIError('user', `field ${name} must be a list of {Name, Address}`);
  return v.map((x: unknown) => {
    if (typeof x !== 'object' || x === null || typeof (x as { Address?: unknown }).Address !== 'string') throw new APIError('user', `field ${name} must be a list of {Name, Address}`);
    const { Name, Address } = x as { Name?: unknown; Address: string };
    if (Name !== undefined && Name !== null && typeof Name !== 'string') throw new APIError('user', `Name in ${name} must be a string`);
    return { name: (Name as string | undefined) ?? '', address: checkAddress(Address) };
  });
}

function msgID(s: string, what: string): string {
  if (!/^<[^<>\s@]+@[^<>\s@]+>$/.test(s)) throw new APIError('malformedMessageID', `${what} must be of the form <id@domain>`);
  return s;
}

function date(req: Record<string, unknown>, name: string): Date | undefined {
  const s = str(req, name);
  if (!s) return undefined;
  const d = new Date(s);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/i.test(s) || Number.isNaN(d.getTime())) throw new APIError('user', `field ${name} must be a date-time like 2026-01-02T15:04:05Z`);
  return d;
}

function jsonFiles(req: Record<string, unknown>, name: string): File[] {
  const v = req[name] ?? [];
  if (!Array.isArray(v)) throw new APIError('user', `field ${name} must be a list of files`);
  return v.map((x: unknown) => {
    const f = (typeof x === 'object' && x !== null ? x : {}) as Record<string, unknown>;
    fields(f, ['Name', 'ContentType', 'ContentID', 'Data']);
    const data = str(f, 'Data', false).replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 !== 0) throw new APIError('user', `Data of a file in ${name} must be base64`);
    return { name: str(f, 'Name'), contentType: str(f, 'ContentType'), contentId: contentID(str(f, 'ContentID')), data: Buffer.from(data, 'base64') };
  });
}

function contentID(s: string): string {
  if (s === '') return '';
  const id = s.startsWith('<') ? s : `<${s}>`;
  if (!/^<[^<>\s]+>$/.test(id)) throw new APIError('user', `invalid ContentID ${JSON.stringify(s)}`);
  return id;
}

/** Files uploaded in a multipart/form-data request: "inlinefile" and "attachedfile" fields. */
function uploaded(files: FormPart[], kind: 'inlinefile' | 'attachedfile'): File[] {
  return files
    .filter((f) => f.name === kind)
    .map((f) => ({ name: f.filename ?? '', contentType: f.contentType ?? '', contentId: contentID(f.headers.get('content-id') ?? ''), data: f.data }));
}

export async function send(c: Caller, req: Record<string, unknown>, files: FormPart[], ctx: WebContext): Promise<SendResult> {
  fields(req, sendFields);
  const app = c.app;
  const cfg = app.config;
  const acc = cfg.domains.Accounts[c.account]!;
  const froms = addrs(req, 'From');
  if (froms.length > 1) throw new APIError('user', 'at most one From address');
  const from: Addr = froms[0] ?? { name: cfg.addresses.lookup(c.loginAddress)?.destination.FullName ?? acc.FullName ?? '', address: c.loginAddress };
  if (!app.localserve && cfg.addresses.lookup(from.address)?.account !== c.account) throw new APIError('user', `From address ${from.address} is not an address of the account`);
  const to = addrs(req, 'To');
  const cc = addrs(req, 'CC');
  const bcc = addrs(req, 'BCC');
  // One copy per address, in the order of To, CC and BCC.
  const recipients = [...new Map([...to, ...cc, ...bcc].map((a) => [a.address.toLowerCase(), a.address])).values()];
  if (recipients.length === 0) throw new APIError('user', 'no recipients in To, CC or BCC');
  if (recipients.length > maxRecipients) throw new APIError('recipientLimitReached', `at most ${maxRecipients} recipients`);
  for (const r of recipients) {
    const s = suppressionLookup(app.queue, c.account, r);
    if (s) throw new APIError('recipientSuppressed', `recipient ${r} is on the suppression list of the account (as ${s.baseaddress}${s.reason ? `: ${s.reason}` : ''})`);
  }
  const extra = req.Extra ?? {};
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra) || Object.entries(extra).some(([k, v]) => typeof v !== 'string' || k === '' || k.length > 256)) {
    throw new APIError('user', 'Extra must be an object with string values');
  }
  const headers = req.Headers ?? [];
  if (!Array.isArray(headers) || headers.some((h) => !Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || typeof h[1] !== 'string')) {
    throw new APIError('user', 'Headers must be a list of [name, value] pairs');
  }
  const requireTLS = req.RequireTLS;
  if (requireTLS !== undefined && requireTLS !== null && typeof requireTLS !== 'boolean') throw new APIError('user', 'RequireTLS must be true, false or null');
  const now = app.clock.now();
  const release = date(req, 'FutureRelease');
  if (release && release.getTime() - now > maxHoldMs) throw new APIError('user', 'FutureRelease is more than 60 days ahead');
  const refs = req.References ?? [];
  if (!Array.isArray(refs) || refs.some((r) => typeof r !== 'string')) throw new APIError('user', 'References must be a list of message-ids');
  const fromDomain = splitAddress(from.address)!.domain;
  const messageId = str(req, 'MessageID') ? msgID(str(req, 'MessageID'), 'MessageID') : `<${randomID()}${randomID()}@${normalizeDomain(fromDomain) ?? cfg.static_.Hostname}>`;

  let composed: { msg: Buffer; smtputf8: boolean };
  try {
    composed = compose({
      from,
      to,
      cc,
      replyTo: addrs(req, 'ReplyTo'),
      subject: str(req, 'Subject'),
      messageId,
      date: date(req, 'Date') ?? new Date(now),
      references: (refs as string[]).map((r) => msgID(r, 'References')),
      // RFC 8689 5: "TLS-Required: No" asks to deliver even without the TLS policies of the recipient.
      headers: [...(headers as [string, string][]), ...(requireTLS === false ? [['TLS-Required', 'No'] as [string, string]] : [])],
      text: str(req, 'Text'),
      html: str(req, 'HTML'),
      inline: [...jsonFiles(req, 'InlineFiles'), ...uploaded(files, 'inlinefile')],
      attached: [...jsonFiles(req, 'AttachedFiles'), ...uploaded(files, 'attachedfile')],
    });
  } catch (e) {
    if (e instanceof ComposeError) throw new APIError('user', e.message);
    throw e;
  }
  if (composed.msg.length > c.maxMessageSize) throw new APIError('user', `message too large, at most ${c.maxMessageSize} bytes`);

  const unique = uniqueSenders(cfg, c.account, c.loginAddress);
  const fromIds = new Map<string, string>();
  const id = `${ctx.cid.toString(36)}-${now.toString(36)}`;
  let r: Awaited<ReturnType<typeof submitMessage>>;
  try {
    r = await submitMessage(app, {
      account: c.account,
      mailFrom: from.address,
      recipients,
      msg: composed.msg,
      smtputf8: composed.smtputf8 || recipients.some((a) => /[^\x00-\x7f]/.test(a.slice(0, a.lastIndexOf('@')))),
      queue: {
        ...(requireTLS !== undefined && requireTLS !== null && { requireTLS }),
        ...(release && { nextAttempt: Math.max(release.getTime(), now), futureRelease: `HOLDUNTIL=${release.toISOString()}` }),
        extra: extra as Record<string, string>,
      },
      uniqueSender: unique
        ? (rcpt) => {
            const u = unique(rcpt);
            fromIds.set(rcpt, u.fromId);
            return u;
          }
        : undefined,
      // An API client has no EHLO name: its IP address stands for it (RFC 5321 4.4 allows a literal).
      received: (recipient) =>
        receivedHeader({
          helo: ctx.remoteIP.includes(':') ? `[IPv6:${ctx.remoteIP}]` : `[${ctx.remoteIP}]`,
          remoteIP: ctx.remoteIP,
          hostname: cfg.static_.Hostname,
          localIP: ctx.listener.IPs[0] ?? '0.0.0.0',
          with: ctx.tls ? 'HTTPS' : 'HTTP',
          id,
          recipient,
          date: new Date(now),
        }),
    });
  } catch (e) {
    if (e instanceof SubmitError) throw new APIError('user', e.message);
    throw e;
  }
  if (bool(req, 'SaveSent')) {
    const a = app.store.account(c.account);
    const sent = a.mailboxes().find((m) => m.specialuse === '\\Sent') ?? a.mailbox('Sent') ?? a.createMailbox('Sent', '\\Sent');
    const copy = Buffer.concat([r.prefix, composed.msg]);
    const file = await app.store.writeTemp(copy);
    try {
      await a.deliver(file, { mailbox: sent.name, flags: Flag.Seen, received: now, part: parseMessage(copy) });
    } finally {
      await fsp.rm(file.path, { force: true });
    }
  }
  const queued = new Map([...r.queuedMsgs, ...r.localMsgs].map((m) => [m.recipient.toLowerCase(), m]));
  c.log.info('webapi message submitted', { account: c.account, messageId: r.messageId, delivered: r.delivered.length, queued: r.queued.length });
  return {
    MessageID: r.messageId,
    Submissions: recipients.map((a) => {
      const m = queued.get(a.toLowerCase());
      return { Address: a, QueueMsgID: m?.id ?? 0, FromID: m?.fromid ?? fromIds.get(a) ?? '' };
    }),
  };
}
