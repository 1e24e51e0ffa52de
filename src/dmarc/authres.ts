// The Authentication-Results header field (RFC 8601 2.2) a receiving server adds to a message,
// with the results of SPF, DKIM, DMARC and iprev.

import { authResults as dkimResults, type DKIMResult } from '../dkim/verify.js';
import { authResultsSPF } from '../spf/header.js';
import type { SPFResult } from '../spf/evaluate.js';
import { authResults as dmarcResult, type DMARCResult } from './verify.js';

export interface IprevResult {
  /** RFC 8601 2.7.3 */
  result: 'pass' | 'fail' | 'temperror' | 'permerror';
  /** The SMTP client's address. */
  ip: string;
  /** The name its reverse lookup gave, shown in a comment. */
  name?: string;
}

export interface AuthResultsParams {
  /** authserv-id: the name of the receiving host (RFC 8601 2.5). */
  authservID: string;
  spf?: { result: SPFResult; identity: 'mailfrom' | 'helo' };
  /** DKIM results; an empty list gives dkim=none, undefined leaves DKIM out. */
  dkim?: DKIMResult[];
  dmarc?: DMARCResult;
  iprev?: IprevResult;
}

const MAX_LINE = 78; // RFC 5322 2.1.1

/** RFC 8601 2.2 value: a token (RFC 2045 5.1) or else a quoted-string. */
function value(s: string): string {
  const v = s.replace(/[^\x20-\x7e]/g, '?');
  return /^[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+$/.test(v) ? v : `"${v.replace(/[\\"]/g, '\\$&')}"`;
}

function iprev(r: IprevResult): string {
  const name = r.name ? ` (${r.name.replace(/[^\x21-\x7e]/g, '?').replace(/[\\()]/g, '\\$&')})` : '';
  return `iprev=${r.result} policy.iprev=${value(r.ip)}${name}`;
}

/**
 * The whole Authentication-Results field, ending in CRLF, to prepend to a message: the
 * authserv-id, then one result per method (spf, each dkim signature, dmarc, iprev), each on a
 * line of its own; longer results are folded at spaces to lines of at most 78 characters where
 * possible. Folding inserts CRLF before an existing space, so unfolding restores every value.
 */
export function authenticationResults(p: AuthResultsParams): string {
  const resinfos: string[] = [];
  if (p.spf) resinfos.push(authResultsSPF(p.spf.result, p.spf.identity));
  if (p.dkim) resinfos.push(...dkimResults(p.dkim));
  if (p.dmarc) resinfos.push(dmarcResult(p.dmarc));
  if (p.iprev) resinfos.push(iprev(p.iprev));
  const head = `Authentication-Results: ${value(p.authservID)};`;
  // RFC 8601 2.2 no-result
  if (resinfos.length === 0) return `${head} none\r\n`;
  const lines = resinfos.map((r, i) => fold('\t' + r + (i < resinfos.length - 1 ? ';' : '')));
  return [head, ...lines].join('\r\n') + '\r\n';
}

function fold(text: string): string {
  const words = text.split(' ');
  let out = words[0]!;
  let line = out.length;
  for (const w of words.slice(1)) {
    if (line + 1 + w.length > MAX_LINE) {
      out += '\r\n ' + w;
      line = 1 + w.length;
    } else {
      out += ' ' + w;
      line += 1 + w.length;
    }
  }
  return out;
}
