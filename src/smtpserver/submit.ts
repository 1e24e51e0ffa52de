// Message submission (RFC 6409): checks of the From header against the authenticated
// account, the Message-ID and Date a client left out, and DKIM signatures of the From domain.
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { parseHeader, type Header } from '../message/header.js';
import { sign, type SignOptions } from '../dkim/sign.js';
import { formatDate, returnPathHeader } from '../smtp/received.js';
import { fromAddresses } from './rules.js';
import { splitAddress, normalizeDomain } from '../config/domains.js';
import type { Config } from '../config/load.js';
import type { Destination } from '../config/domains.js';
import type { App } from '../server/app.js';
import { asciiDomain } from '../smtp/address.js';
import { organizationalDomain } from '../dmarc/lookup.js';
import { parseMessage } from '../message/part.js';
import { quotaAllows } from '../store/mailboxops.js';
import type { EnqueueOptions, QueueMsg } from '../queue/store.js';
import { deliveryResult } from '../webhook/events.js';
import { Log } from '../log/log.js';

const log = Log.pkg('smtpserver');

export class SubmitError extends Error {}

const keyCache = new Map<string, { mtimeMs: number; key: KeyObject }>();

function loadKey(file: string): KeyObject {
  let mtimeMs: number;
  try {
    mtimeMs = fs.statSync(file).mtimeMs;
  } catch (e) {
    // After dropping privileges a root-only key can no longer be read: use the one loaded at start.
    const c = keyCache.get(file);
    if (c) return c.key;
    throw e;
  }
  const c = keyCache.get(file);
  if (c && c.mtimeMs === mtimeMs) return c.key;
  const key = createPrivateKey(fs.readFileSync(file));
  keyCache.set(file, { mtimeMs, key });
  return key;
}

/** Signing options for each selector a domain signs with (keys loaded once, see loadKey). */
export function signOptions(config: Config, domain: string, now: Date): SignOptions[] {
  const dkim = config.domains.Domains[domain]?.DKIM;
  if (!dkim) return [];
  return dkim.Sign.map((sel) => {
    const s = dkim.Selectors[sel]!;
    return {
      domain,
      selector: sel,
      privateKey: loadKey(config.resolve(s.PrivateKeyFile)),
      headerCanon: s.HeaderCanon,
      bodyCanon: s.BodyCanon,
      headers: s.Headers.length ? s.Headers : undefined,
      oversign: !s.NoOversign,
      expiration: s.ExpirationSeconds,
      timestamp: now,
    };
  });
}

/** Loads all configured DKIM keys, e.g. before giving up the privileges to read them. */
export function preloadDKIMKeys(config: Config): void {
  for (const d of Object.values(config.domains.Domains)) {
    for (const s of Object.values(d.DKIM.Selectors)) loadKey(config.resolve(s.PrivateKeyFile));
  }
}

export interface Submitted {
  /** Header lines to put before the message: DKIM signatures, then added Message-ID and Date. */
  prefix: Buffer;
  header: Header;
  messageId: string;
  subject: string;
}

/**
 * Checks and completes a submitted message. From must hold only addresses of the account
 * (RFC 6409 8.1 lets the server enforce this); the first From address's domain signs.
 */
export async function prepareSubmission(config: Config, account: string, msg: Buffer, now: Date, checkFrom = true): Promise<Submitted> {
  const header = parseHeader(msg);
  const from = fromAddresses(header);
  if (from.length === 0 && checkFrom) throw new SubmitError('message has no From address');
  for (const a of checkFrom ? from : []) {
    if (config.addresses.lookup(a)?.account !== account) throw new SubmitError(`From address ${a} is not an address of the authenticated account`);
  }
  let added = '';
  let messageId = header.get('message-id')?.value ?? '';
  // RFC 6409 8.2 and 8.3: the submission server may add Date and Message-ID.
  if (!messageId) {
    messageId = `<${randomBytes(12).toString('base64url')}@${config.static_.Hostname}>`;
    added += `Message-ID: ${messageId}\r\n`;
  }
  if (!header.get('date')) added += `Date: ${formatDate(now)}\r\n`;
  const domain = from.length ? normalizeDomain(splitAddress(from[0]!)!.domain) : undefined;
  const dkim = domain ? config.domains.Domains[domain]?.DKIM : undefined;
  let signatures = '';
  if (dkim && dkim.Sign.length > 0) {
    const opts = signOptions(config, domain!, now);
    try {
      signatures = await sign(Buffer.concat([Buffer.from(added), msg]), opts);
    } catch (e) {
      // A message that cannot be signed (e.g. several From fields) is still sent, unsigned.
      log.error('dkim signing failed', { domain, err: e as Error });
    }
  }
  return { prefix: Buffer.from(signatures + added), header, messageId, subject: header.get('subject')?.value ?? '' };
}

/** A lower-case random id: some systems change the case of addresses they bounce to. */
export function randomID(): string {
  const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length: 20 }, () => abc[randomInt(abc.length)]).join('');
}

/**
 * For a login address listed in the account's FromIDLoginAddresses: a MAIL FROM address of its
 * own for each remote recipient, the login address with the domain's catch-all separator and a
 * random id (jane+<id>@example.com), so that a DSN coming back is matched with its message and
 * recipient. Undefined for other login addresses.
 */
export function uniqueSenders(config: Config, account: string, loginAddress: string | undefined): ((recipient: string) => { sender: string; fromId: string }) | undefined {
  const acc = config.domains.Accounts[account];
  const login = loginAddress && splitAddress(loginAddress);
  if (!acc || !login || !acc.FromIDLoginAddresses.some((a) => a.toLowerCase() === loginAddress.toLowerCase())) return undefined;
  const sep = config.domains.Domains[normalizeDomain(login.domain) ?? '']?.LocalpartCatchallSeparator;
  if (!sep) return undefined;
  return () => {
    const fromId = randomID();
    return { sender: `${login.localpart}${sep}${fromId}@${login.domain}`, fromId };
  };
}

/**
 * Local recipients of a submission, once delivered: queue ids for them (retired at once as
 * delivered) and "delivered" webhook events, as for remote recipients.
 */
export function localDelivered(app: App, o: { account: string; sender: string; recipients: string[]; size: number; messageId: string; subject: string; extra?: Record<string, string> }): QueueMsg[] {
  if (o.recipients.length === 0) return [];
  try {
    const msgs = app.queue.recordLocalDeliveries(o, app.clock.now(), app.config.static_.Queue.RetiredDays * 86400_000);
    deliveryResult(app, msgs, { kind: 'delivered', final: true, reply: '250 2.0.0 delivered to local mailbox' });
    return msgs;
  } catch (e) {
    // The message is delivered: bookkeeping that fails must not turn that into an error.
    log.error('recording local deliveries', { account: o.account, err: e as Error });
    return [];
  }
}

export interface SubmitMessage {
  account: string;
  /** Envelope sender (MAIL FROM). */
  mailFrom: string;
  /** Envelope recipients. */
  recipients: string[];
  msg: Buffer;
  /** The Received header field for a copy going to a recipient (undefined: several), ending in CRLF. */
  received(recipient: string | undefined): string;
  /** A recipient address has a non-ASCII localpart (RFC 6531). */
  smtputf8?: boolean;
  /** Queueing as requested through an API (webapi): TLS requirement, release time, metadata for webhooks. */
  queue?: Partial<Pick<EnqueueOptions, 'requireTLS' | 'nextAttempt' | 'futureRelease' | 'extra'>>;
  /** A MAIL FROM of its own per remote recipient (FromIDLoginAddresses): each is queued separately. */
  uniqueSender?: (recipient: string) => { sender: string; fromId: string };
}

export interface SubmitResult {
  messageId: string;
  /** Header lines to put before the message, as for SMTP submission: DKIM signatures, added fields. */
  prefix: Buffer;
  delivered: string[];
  queued: string[];
  /** The queue entries, one per remote recipient in order. */
  queuedMsgs: QueueMsg[];
  /** Entries of the retired queue for the local recipients, delivered. */
  localMsgs: QueueMsg[];
}

/**
 * Submits a message composed by a client other than an SMTP one (webmail): the same checks and
 * DKIM signing as SMTP submission, delivery into local accounts and queueing for the others.
 * Quotas of local recipients are checked before anything is delivered or queued, so a refused
 * message went nowhere.
 */
export async function submitMessage(app: App, o: SubmitMessage): Promise<SubmitResult> {
  const now = app.clock.now();
  // localserve accepts any From, as its SMTP submission does.
  const sub = await prepareSubmission(app.config, o.account, o.msg, new Date(now), !app.localserve);
  const local: { address: string; account: string; destination: Destination }[] = [];
  const remote: string[] = [];
  for (const address of o.recipients) {
    const r = app.config.addresses.lookup(address);
    if (app.localserve) {
      // As localserve's SMTP: every recipient is the local account.
      local.push({ address, account: r?.account ?? Object.keys(app.config.domains.Accounts)[0] ?? 'postern', destination: r?.destination ?? { Mailbox: 'Inbox', Rulesets: [] } });
    } else if (r) local.push({ address, account: r.account, destination: r.destination });
    else if (app.config.addresses.isLocalDomain(address.slice(address.lastIndexOf('@') + 1))) throw new SubmitError(`no such user: ${address}`);
    else remote.push(address);
  }
  const targets = new Map<string, { account: string; mailbox: string; rcpts: string[] }>();
  for (const r of local) {
    const k = `${r.account}\0${r.destination.Mailbox}`;
    const t = targets.get(k) ?? { account: r.account, mailbox: r.destination.Mailbox, rcpts: [] };
    t.rcpts.push(r.address);
    targets.set(k, t);
  }
  for (const t of targets.values()) {
    const limit = app.config.domains.Accounts[t.account]?.QuotaMessageSize ?? 0;
    if (!quotaAllows(app.store.account(t.account), limit, o.msg.length + sub.prefix.length + 1024)) throw new SubmitError(`mailbox of ${t.rcpts[0]} is full`);
  }
  const file = await app.store.writeTemp(o.msg);
  const queuedMsgs: QueueMsg[] = [];
  try {
    // Replies from people the account wrote to are from known correspondents (reputation).
    app.store.account(o.account).recordRecipients(
      o.recipients.map((a) => {
        const domain = asciiDomain(a.slice(a.lastIndexOf('@') + 1));
        return { address: a, domain, orgDomain: organizationalDomain(domain) };
      }),
      now,
    );
    const groups = o.uniqueSender ? remote.map((a) => ({ rcpts: [a], ...o.uniqueSender!(a) })) : remote.length ? [{ rcpts: remote, sender: o.mailFrom, fromId: undefined }] : [];
    for (const g of groups) {
      const msgs = app.queue.enqueue(file, {
        account: o.account,
        sender: g.sender,
        fromId: g.fromId,
        recipients: g.rcpts.map((a) => ({ address: a, domain: asciiDomain(a.slice(a.lastIndexOf('@') + 1)) })),
        prefix: Buffer.concat([Buffer.from(o.received(g.rcpts.length === 1 ? g.rcpts[0] : undefined)), sub.prefix]),
        has8bit: o.msg.some((b) => b > 127),
        smtputf8: o.smtputf8 ?? false,
        requireTLS: o.queue?.requireTLS ?? (/^TLS-Required:\s*No\s*$/im.test(sub.header.get('tls-required')?.raw.toString('latin1') ?? '') ? false : null),
        nextAttempt: o.queue?.nextAttempt ?? now,
        futureRelease: o.queue?.futureRelease,
        extra: o.queue?.extra,
        messageId: sub.messageId,
        subject: sub.subject,
      });
      queuedMsgs.push(...msgs);
      log.info('queued', { account: o.account, from: g.sender, rcpts: g.rcpts });
    }
    // The structure of the file; delivery moves its offsets past the prefix.
    const part = parseMessage(o.msg);
    for (const t of targets.values()) {
      const received = Buffer.from(returnPathHeader(o.mailFrom) + o.received(t.rcpts.length === 1 && o.recipients.length === 1 ? t.rcpts[0] : undefined));
      await app.store.account(t.account).deliver(file, { mailbox: t.mailbox, prefix: Buffer.concat([received, sub.prefix]), received: now, part });
    }
    if (local.length) log.info('delivered', { account: o.account, from: o.mailFrom, rcpts: local.map((r) => r.address) });
  } finally {
    await fs.promises.rm(file.path, { force: true });
  }
  const localMsgs = localDelivered(app, {
    account: o.account,
    sender: o.mailFrom,
    recipients: local.map((r) => r.address),
    size: o.msg.length + sub.prefix.length,
    messageId: sub.messageId,
    subject: sub.subject,
    extra: o.queue?.extra,
  });
  return { messageId: sub.messageId, prefix: sub.prefix, delivered: local.map((r) => r.address), queued: remote, queuedMsgs, localMsgs };
}
