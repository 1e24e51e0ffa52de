// Where webhook events come from: results of delivery attempts of the queue, messages removed from
// the queue, and incoming messages, which are either DSNs about messages sent with a unique MAIL
// FROM address (FromIDLoginAddresses) or mail for the account's incoming webhook.
import type { App } from '../server/app.js';
import type { QueueMsg, RetiredMsg } from '../queue/store.js';
import { suppressible, suppressionAdd } from '../queue/suppression.js';
import type { Part } from '../message/part.js';
import { decodedBody } from '../message/decode.js';
import { decodeHeaderText, type Header } from '../message/header.js';
import { normalizeDomain, splitAddress } from '../config/domains.js';
import { Log } from '../log/log.js';
import { queueIncoming, queueOutgoing } from './hooks.js';
import { automated, parsedMessage, structure, type OutgoingEvent } from './payload.js';

const log = Log.pkg('webhook');

function extraOf(m: { extra?: string }): Record<string, string> {
  try {
    return JSON.parse(m.extra ?? '{}') as Record<string, string>;
  } catch {
    return {};
  }
}

/**
 * Webhook metadata of a message submitted over SMTP, from its "X-Postern-Extra-<key>: <value>"
 * header fields, as the webapi's Extra. The fields stay in the message.
 */
export function submissionExtra(h: Header): Record<string, string> {
  const extra: Record<string, string> = {};
  for (const f of h.fields) {
    const m = /^x-postern-extra-(.+)$/i.exec(f.name);
    if (m && !Object.hasOwn(extra, m[1]!)) extra[m[1]!] = decodeHeaderText(f.value).trim();
  }
  return extra;
}

/** The reply code at the start of an SMTP reply text, e.g. 550 of "550 5.1.1 no such user". */
const replyCode = (s: string | undefined) => Number(/^([2-5]\d\d)\b/.exec(s ?? '')?.[1] ?? 0);

export interface AttemptResult {
  kind: 'delivered' | 'permanent' | 'temporary';
  /** No more attempts follow. */
  final: boolean;
  /** The recipient is on the suppression list; nothing was sent. */
  suppressed?: boolean;
  /** Enhanced status code (RFC 3463). */
  status?: string;
  /** The reply of the remote server, or our explanation. */
  diag?: string;
  /** diag is an SMTP reply of the remote server. */
  smtp?: boolean;
  reply?: string;
}

/**
 * Webhook events, and suppression of addresses that turned out bad, for the result of a delivery
 * attempt. Never throws: delivery bookkeeping must not fail because of webhooks.
 */
export function deliveryResult(app: App, msgs: QueueMsg[], r: AttemptResult): void {
  for (const m of msgs) {
    // Messages from the null sender are our own DSNs and reports, not the account's mail.
    if (m.sender === '') continue;
    try {
      const event: OutgoingEvent = r.kind === 'delivered' ? 'delivered' : r.suppressed ? 'suppressed' : r.final ? 'failed' : 'delayed';
      let suppressing = false;
      if (event === 'failed' && r.status && suppressible(r.status)) {
        suppressing = suppressionAdd(app.queue, m.account, m.recipient, { manual: false, reason: `delivery failed permanently: ${r.diag ?? r.status}`, now: app.clock.now() });
        if (suppressing) log.info('recipient suppressed after failed delivery', { account: m.account, recipient: m.recipient, status: r.status });
      }
      queueOutgoing(app, {
        account: m.account,
        event,
        queueMsgId: m.id,
        fromId: m.fromid ?? '',
        messageId: m.messageid,
        subject: m.subject,
        extra: extraOf(m),
        suppressing,
        smtpCode: r.kind === 'delivered' ? replyCode(r.reply) || 250 : r.smtp ? replyCode(r.diag) : 0,
        enhancedCode: r.kind === 'delivered' ? '' : (r.status ?? ''),
        error: r.kind === 'delivered' ? '' : (r.diag ?? ''),
      });
    } catch (e) {
      log.error('queueing webhook for delivery result', { id: m.id, err: e as Error });
    }
  }
}

/** Events for messages taken out of the queue by an administrator. */
export function removedFromQueue(app: App, msgs: QueueMsg[], event: 'canceled' | 'failed', reason: string): void {
  for (const m of msgs) {
    try {
      queueOutgoing(app, { account: m.account, event, queueMsgId: m.id, fromId: m.fromid ?? '', messageId: m.messageid, subject: m.subject, extra: extraOf(m), error: reason });
    } catch (e) {
      log.error('queueing webhook for removed message', { id: m.id, err: e as Error });
    }
  }
}

/** A queued or retired message the account sent with this unique id in its MAIL FROM address. */
function messageByFromID(app: App, account: string, fromid: string): QueueMsg | RetiredMsg | undefined {
  const db = app.queue.db;
  return (db.prepare('SELECT * FROM msg WHERE account = ? AND fromid = ?').get(account, fromid) ??
    db.prepare('SELECT * FROM retired WHERE account = ? AND fromid = ?').get(account, fromid)) as QueueMsg | RetiredMsg | undefined;
}

/** The unique id in a recipient address like "jane+<id>@example.com", for an address in the account's FromIDLoginAddresses. */
export function fromIDOf(app: App, account: string, rcpt: string): string | undefined {
  const acc = app.config.domains.Accounts[account];
  const at = splitAddress(rcpt);
  const domain = at && normalizeDomain(at.domain);
  const sep = domain && app.config.domains.Domains[domain]?.LocalpartCatchallSeparator;
  if (!acc?.FromIDLoginAddresses.length || !sep || !at) return undefined;
  const i = at.localpart.indexOf(sep);
  if (i <= 0) return undefined;
  const base = `${at.localpart.slice(0, i)}@${domain}`.toLowerCase();
  if (!acc.FromIDLoginAddresses.some((a) => a.toLowerCase() === base)) return undefined;
  return at.localpart.slice(i + sep.length);
}

const actions: Record<string, OutgoingEvent> = { failed: 'failed', delayed: 'delayed', delivered: 'delivered', relayed: 'relayed', expanded: 'expanded' };

interface DSNRecipient {
  action: string;
  status: string;
  diagnostic: string;
}

/** The per-recipient fields of a delivery-status part (RFC 3464 2.1: blocks separated by empty lines, the first per message). */
export function dsnRecipients(msg: Buffer, root: Part): DSNRecipient[] | undefined {
  const find = (p: Part): Part | undefined =>
    p.type === 'message' && (p.subtype === 'delivery-status' || p.subtype === 'global-delivery-status') ? p : p.parts?.map(find).find((x) => x);
  const report = root.type === 'multipart' && root.subtype === 'report' ? find(root) : undefined;
  if (!report) return undefined;
  const text = decodedBody(msg, report).toString('utf8').replace(/\r\n/g, '\n').replace(/\n[ \t]+/g, ' ');
  const blocks = text.split(/\n\s*\n/).filter((b) => b.trim());
  return blocks.slice(1).map((b) => {
    const f = new Map<string, string>();
    for (const line of b.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) f.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    return { action: (f.get('action') ?? '').toLowerCase(), status: f.get('status')?.split(/\s/)[0] ?? '', diagnostic: f.get('diagnostic-code') ?? '' };
  });
}

export interface IncomingDelivery {
  account: string;
  /** Id of the stored message, for the webapi. */
  msgId: number;
  mailbox: string;
  rcptTo: string[];
  mailFrom: string;
  remoteIP: string;
  /** The stored message (delivery prefix and file), read only when needed, and its structure. */
  message: () => Buffer;
  part: Part;
  received: number;
  mailFromValidated: boolean;
  msgFromValidated: boolean;
  dkimDomains: string[];
}

/**
 * Handles a message delivered into an account from the internet: a message to a unique MAIL FROM
 * address of a message we sent is taken as a DSN about it (an outgoing event, and suppression of a
 * bad address); other messages go to the incoming webhook. Never throws.
 */
export function incomingDelivered(app: App, d: IncomingDelivery): void {
  try {
    for (const rcpt of d.rcptTo) {
      const fromid = fromIDOf(app, d.account, rcpt);
      const sent = fromid && messageByFromID(app, d.account, fromid);
      if (sent) return dsnReceived(app, d.account, d.message(), d.part, sent);
    }
    const acc = app.config.domains.Accounts[d.account];
    if (!acc?.IncomingWebhook) return;
    const msg = d.message();
    queueIncoming(app, d.account, {
      Version: 0,
      ...parsedMessage(msg, d.part),
      Structure: structure(msg, d.part),
      Meta: {
        MsgID: d.msgId,
        MailFrom: d.mailFrom,
        MailFromValidated: d.mailFromValidated,
        MsgFromValidated: d.msgFromValidated,
        RcptTo: d.rcptTo[0] ?? '',
        DKIMVerifiedDomains: d.dkimDomains,
        RemoteIP: d.remoteIP,
        Received: new Date(d.received).toISOString(),
        MailboxName: d.mailbox,
        Automated: automated(msg, d.part),
      },
    });
  } catch (e) {
    log.error('webhook for incoming message', { account: d.account, err: e as Error });
  }
}

function dsnReceived(app: App, account: string, msg: Buffer, part: Part, sent: QueueMsg | RetiredMsg): void {
  const base = { account, queueMsgId: sent.id, fromId: sent.fromid, messageId: sent.messageid, subject: sent.subject, extra: extraOf(sent), dsn: true };
  const rcpts = dsnRecipients(msg, part);
  // Each unique address was used for one recipient, so the first recipient block is about it.
  const r = rcpts?.[0];
  if (!r) {
    queueOutgoing(app, { ...base, event: 'unrecognized', error: rcpts ? 'DSN without recipient' : 'message is not a DSN' });
    return;
  }
  const event = actions[r.action] ?? 'unrecognized';
  let suppressing = false;
  if (event === 'failed' && suppressible(r.status)) {
    suppressing = suppressionAdd(app.queue, account, sent.recipient, { manual: false, reason: `DSN: ${r.diagnostic || r.status}`, now: app.clock.now() });
    if (suppressing) log.info('recipient suppressed after DSN', { account, recipient: sent.recipient, status: r.status });
  }
  const diag = r.diagnostic.replace(/^smtp\s*;\s*/i, '');
  queueOutgoing(app, {
    ...base,
    event,
    suppressing,
    smtpCode: /^smtp\s*;/i.test(r.diagnostic) ? replyCode(diag) : 0,
    enhancedCode: r.status,
    error: event === 'delivered' ? '' : diag || (event === 'unrecognized' ? `unknown action ${r.action}` : ''),
  });
  log.info('dsn matched to sent message', { account, queuemsgid: sent.id, event, status: r.status });
}
