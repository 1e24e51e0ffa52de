// The webapi's methods other than Send: the suppression list and the account's stored messages.
// Each gets the JSON request and answers a JSON result, or bytes for the raw methods.
import type { App } from '../server/app.js';
import type { Account, MessageRow } from '../store/account.js';
import type { Log } from '../log/log.js';
import { flagList } from '../store/flags.js';
import { parseMessage, type Part } from '../message/part.js';
import { decodedBody } from '../message/decode.js';
import { getParam } from '../message/params.js';
import { bytesToText } from '../message/header.js';
import { suppressionAdd, suppressionList, suppressionLookup, suppressionRemove } from '../queue/suppression.js';
import { parsedMessage, partAt, structure, type ParsedMessage, type Structure } from '../webhook/payload.js';
import type { FormPart } from './form.js';

/** An error answered with status 400 and {Code, Message}. */
export class APIError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Caller {
  app: App;
  account: string;
  loginAddress: string;
  log: Log;
  /** Largest message the listener accepts. */
  maxMessageSize: number;
}

/** Bytes with a content type, for MessageRawGet and MessagePartGet. */
export interface Raw {
  contentType: string;
  data: Buffer;
}

export type Method = (c: Caller, req: Record<string, unknown>, files: FormPart[]) => unknown;

/** Checks a request against the fields a method knows, so a misspelled field is an error rather than ignored. */
export function fields(req: Record<string, unknown>, known: string[]): void {
  const unknown = Object.keys(req).filter((k) => !known.includes(k));
  if (unknown.length) throw new APIError('user', `unknown request field ${unknown.join(', ')} (known: ${known.join(', ') || 'none'})`);
}

export function str(req: Record<string, unknown>, name: string, optional = true): string {
  const v = req[name];
  if (v === undefined || v === null) {
    if (optional) return '';
    throw new APIError('user', `field ${name} is required`);
  }
  if (typeof v !== 'string') throw new APIError('user', `field ${name} must be a string`);
  return v;
}

export function bool(req: Record<string, unknown>, name: string): boolean {
  const v = req[name];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new APIError('user', `field ${name} must be true or false`);
  return v;
}

function int(req: Record<string, unknown>, name: string): number {
  const v = req[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new APIError('user', `field ${name} must be an integer`);
  return v;
}

function strings(req: Record<string, unknown>, name: string): string[] {
  const v = req[name] ?? [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new APIError('user', `field ${name} must be a list of strings`);
  return v as string[];
}

function address(req: Record<string, unknown>, name: string): string {
  const a = str(req, name, false);
  if (!/^[^@\s]+@[^@\s]+$/.test(a)) throw new APIError('badAddress', `invalid email address ${JSON.stringify(a)}`);
  return a;
}

function msgByID(acc: Account, req: Record<string, unknown>): MessageRow {
  const id = int(req, 'MsgID');
  const r = acc.db.prepare('SELECT mailbox_id, uid FROM message WHERE id = ?').get(id) as { mailbox_id: number; uid: number } | undefined;
  const m = r && acc.message(r.mailbox_id, r.uid);
  if (!m) throw new APIError('notFound', 'message not found');
  return m;
}

async function loaded(c: Caller, req: Record<string, unknown>): Promise<{ acc: Account; m: MessageRow; msg: Buffer; part: Part }> {
  const acc = c.app.store.account(c.account);
  const m = msgByID(acc, req);
  const msg = await acc.readMessage(m);
  return { acc, m, msg, part: acc.part(m) ?? parseMessage(msg) };
}

/** Flags and keywords: IMAP atoms (RFC 9051 9 flag-keyword), or system flags with a backslash. */
function flags(req: Record<string, unknown>): string[] {
  const list = strings(req, 'Flags');
  for (const f of list) if (!/^\\?[^\s(){%*"\\\]\x00-\x1f\x7f]+$/.test(f)) throw new APIError('user', `invalid flag ${JSON.stringify(f)}`);
  return list;
}

export interface MessageGetResult {
  Message: ParsedMessage;
  Structure: Structure;
  Meta: {
    Size: number;
    DSN: boolean;
    Flags: string[];
    MailFrom: string;
    MailFromValidated: boolean;
    MsgFrom: string;
    MsgFromValidated: boolean;
    DKIMVerifiedDomains: string[];
    RemoteIP: string;
    MailboxName: string;
  };
}

export const methods: Record<string, Method> = {
  SuppressionList: (c, req) => {
    fields(req, []);
    return {
      Suppressions: suppressionList(c.app.queue, c.account).map((s) => ({
        ID: s.id,
        Created: new Date(s.created).toISOString(),
        Account: s.account,
        BaseAddress: s.baseaddress,
        OriginalAddress: s.originaladdress,
        Manual: !!s.manual,
        Reason: s.reason,
      })),
    };
  },
  SuppressionAdd: (c, req) => {
    fields(req, ['EmailAddress', 'Manual', 'Reason']);
    const a = address(req, 'EmailAddress');
    suppressionAdd(c.app.queue, c.account, a, { manual: bool(req, 'Manual'), reason: str(req, 'Reason'), now: c.app.clock.now() });
    return {};
  },
  SuppressionRemove: (c, req) => {
    fields(req, ['EmailAddress']);
    if (!suppressionRemove(c.app.queue, c.account, address(req, 'EmailAddress'))) throw new APIError('notFound', 'address not on the suppression list');
    return {};
  },
  SuppressionPresent: (c, req) => {
    fields(req, ['EmailAddress']);
    return { Present: suppressionLookup(c.app.queue, c.account, address(req, 'EmailAddress')) !== undefined };
  },
  MessageGet: async (c, req): Promise<MessageGetResult> => {
    fields(req, ['MsgID']);
    const { acc, m, msg, part } = await loaded(c, req);
    const meta = acc.db.prepare('SELECT mailfrom, mailfromvalidated, msgfrom, msgfromvalidated, dkimdomains, remoteip FROM message WHERE id = ?').get(m.id) as {
      mailfrom: string;
      mailfromvalidated: number;
      msgfrom: string;
      msgfromvalidated: number;
      dkimdomains: string;
      remoteip: string;
    };
    const report = part.type === 'multipart' && part.subtype === 'report' ? getParam(part.params, 'report-type')?.toLowerCase() : undefined;
    return {
      Message: parsedMessage(msg, part),
      Structure: structure(msg, part),
      Meta: {
        Size: m.size,
        DSN: report === 'delivery-status' || report === 'global-delivery-status',
        Flags: flagList(m.flags, m.keywords),
        MailFrom: meta.mailfrom,
        MailFromValidated: !!meta.mailfromvalidated,
        MsgFrom: meta.msgfrom,
        MsgFromValidated: !!meta.msgfromvalidated,
        DKIMVerifiedDomains: meta.dkimdomains.trim() ? meta.dkimdomains.trim().split(' ') : [],
        RemoteIP: meta.remoteip,
        MailboxName: acc.mailboxById(m.mailboxId)?.name ?? '',
      },
    };
  },
  MessageRawGet: async (c, req): Promise<Raw> => {
    fields(req, ['MsgID']);
    const { msg } = await loaded(c, req);
    return { contentType: 'message/rfc822', data: msg };
  },
  MessagePartGet: async (c, req): Promise<Raw> => {
    fields(req, ['MsgID', 'PartPath']);
    const path = req.PartPath ?? [];
    if (!Array.isArray(path) || path.some((i) => !Number.isSafeInteger(i) || (i as number) < 0)) throw new APIError('user', 'PartPath must be a list of indexes');
    const { msg, part } = await loaded(c, req);
    const p = partAt(part, path as number[]);
    if (!p || p.parts) throw new APIError('notFound', p ? 'part is a multipart, give the path of one of its parts' : 'part not found');
    const charset = getParam(p.params, 'charset');
    return { contentType: `${p.type}/${p.subtype}${charset ? `; charset=${bytesToText(charset)}` : ''}`, data: decodedBody(msg, p) };
  },
  MessageDelete: (c, req) => {
    fields(req, ['MsgID']);
    const acc = c.app.store.account(c.account);
    const m = msgByID(acc, req);
    acc.expunge(m.mailboxId, [m.uid]);
    return {};
  },
  MessageFlagsAdd: (c, req) => {
    fields(req, ['MsgID', 'Flags']);
    const acc = c.app.store.account(c.account);
    const m = msgByID(acc, req);
    acc.storeFlags(m.mailboxId, [m.uid], '+', flags(req));
    return {};
  },
  MessageFlagsRemove: (c, req) => {
    fields(req, ['MsgID', 'Flags']);
    const acc = c.app.store.account(c.account);
    const m = msgByID(acc, req);
    acc.storeFlags(m.mailboxId, [m.uid], '-', flags(req));
    return {};
  },
  MessageMove: (c, req) => {
    fields(req, ['MsgID', 'DestMailboxName']);
    const acc = c.app.store.account(c.account);
    const m = msgByID(acc, req);
    const dst = acc.mailbox(str(req, 'DestMailboxName', false));
    if (!dst) throw new APIError('notFound', 'destination mailbox not found');
    if (dst.id !== m.mailboxId) acc.copy(m.mailboxId, [m.uid], dst.id, true);
    return {};
  },
};
