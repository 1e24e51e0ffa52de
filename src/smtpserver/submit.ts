// Message submission (RFC 6409): checks of the From header against the authenticated
// account, the Message-ID and Date a client left out, and DKIM signatures of the From domain.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { parseHeader, type Header } from '../message/header.js';
import { sign, type SignOptions } from '../dkim/sign.js';
import { formatDate } from '../smtp/received.js';
import { fromAddresses } from './rules.js';
import { splitAddress, normalizeDomain } from '../config/domains.js';
import type { Config } from '../config/load.js';
import { Log } from '../log/log.js';

const log = Log.pkg('smtpserver');

export class SubmitError extends Error {}

const keyCache = new Map<string, { mtimeMs: number; key: KeyObject }>();

function loadKey(file: string): KeyObject {
  const st = fs.statSync(file);
  const c = keyCache.get(file);
  if (c && c.mtimeMs === st.mtimeMs) return c.key;
  const key = createPrivateKey(fs.readFileSync(file));
  keyCache.set(file, { mtimeMs: st.mtimeMs, key });
  return key;
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
    const opts: SignOptions[] = dkim.Sign.map((sel) => {
      const s = dkim.Selectors[sel]!;
      return {
        domain: domain!,
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
    try {
      signatures = await sign(Buffer.concat([Buffer.from(added), msg]), opts);
    } catch (e) {
      // A message that cannot be signed (e.g. several From fields) is still sent, unsigned.
      log.error('dkim signing failed', { domain, err: e as Error });
    }
  }
  return { prefix: Buffer.from(signatures + added), header, messageId, subject: header.get('subject')?.value ?? '' };
}
