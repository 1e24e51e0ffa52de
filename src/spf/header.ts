// The Received-SPF header field (RFC 7208 9.1) and the spf method of Authentication-Results
// (RFC 8601 2.7.2).

import type { SPFResult } from './evaluate.js';

export interface ReceivedSPFParams {
  result: SPFResult;
  identity: 'mailfrom' | 'helo';
  /** The <sender> that was checked: the MAIL FROM address, or postmaster@<helo>. */
  sender: string;
  clientIP: string;
  helo: string;
  /** Name of the receiving host. */
  receiver: string;
}

const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;

/** Control characters could break the header apart; they never belong in these values. */
function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, ' ');
}

/** RFC 7208 9.1: key-value-pair values are a dot-atom or a quoted-string. */
function value(s: string): string {
  const v = clean(s);
  return DOT_ATOM.test(v) ? v : `"${v.replace(/[\\"]/g, '\\$&')}"`;
}

function comment(p: ReceivedSPFParams): string {
  const { receiver, sender, clientIP: ip } = p;
  const text = {
    pass: `domain of ${sender} designates ${ip} as permitted sender`,
    fail: `domain of ${sender} does not designate ${ip} as permitted sender`,
    softfail: `domain of transitioning ${sender} does not designate ${ip} as permitted sender`,
    neutral: `${ip} is neither permitted nor denied by domain of ${sender}`,
    none: `domain of ${sender} does not designate permitted sender hosts`,
    temperror: `temporary error while checking the domain of ${sender}`,
    permerror: `permanent error in the SPF policy of the domain of ${sender}`,
  }[p.result.result];
  return `(${clean(`${receiver}: ${text}`).replace(/[\\()]/g, '\\$&')})`;
}

/**
 * The Received-SPF header field, folded to lines of at most 78 characters where possible, without
 * the final CRLF.
 */
export function receivedSPF(p: ReceivedSPFParams): string {
  const r = p.result;
  const pairs: [string, string][] = [
    ['client-ip', p.clientIP],
    ['envelope-from', p.sender],
    ['helo', p.helo],
    ['receiver', p.receiver],
    ['identity', p.identity],
  ];
  // RFC 7208 9.1: "default" when the record was evaluated and no mechanism matched.
  const mechanism = r.mechanism ?? (r.result === 'neutral' ? 'default' : undefined);
  if (mechanism) pairs.push(['mechanism', mechanism]);
  if (r.reason && (r.result === 'temperror' || r.result === 'permerror')) pairs.push(['problem', r.reason]);
  const kv = pairs.filter(([, v]) => v !== '').map(([k, v]) => `${k}=${value(v)}`);
  const tokens = [`Received-SPF: ${r.result}`, ...comment(p).split(' '), ...kv.map((t, i) => (i < kv.length - 1 ? `${t};` : t))];
  // RFC 5322 2.2.3: fold only at white space.
  let out = tokens[0]!;
  let line = out.length;
  for (const t of tokens.slice(1)) {
    if (line + 1 + t.length > 78) {
      out += `\r\n\t${t}`;
      line = 1 + t.length;
    } else {
      out += ` ${t}`;
      line += 1 + t.length;
    }
  }
  return out;
}

/**
 * The spf resinfo of Authentication-Results, e.g. "spf=pass smtp.mailfrom=example.org"; the
 * property names the checked domain under the identity's SMTP command (RFC 8601 2.7.2, 2.3).
 */
export function authResultsSPF(result: SPFResult, identity: 'mailfrom' | 'helo'): string {
  // RFC 8601 2.2: pvalue is a token (RFC 2045 5.1) or a quoted-string.
  const d = clean(result.domain);
  const pvalue = /^[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+$/.test(d) ? d : `"${d.replace(/[\\"]/g, '\\$&')}"`;
  return `spf=${result.result} smtp.${identity}=${pvalue}`;
}
