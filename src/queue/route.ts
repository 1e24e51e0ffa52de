// Choosing the transport of a delivery attempt: an explicit transport set on the message, else
// the first matching route of the account, the sender domain, then the global routes, else
// direct delivery. Evaluated per attempt, so routes can fall back after failed attempts.
import type { Config } from '../config/load.js';
import type { Route } from '../config/domains.js';
import type { StaticConfig, Transport } from '../config/static.js';
import { normalizeDomain } from '../config/domains.js';
import { parseDomain } from '../dns/domain.js';
import { addressDomain } from './store.js';

export interface Chosen {
  /** Transport name, "" for direct delivery without a configured transport. */
  name: string;
  transport?: Transport;
}

const kinds = ['Submissions', 'Submission', 'SMTP', 'Socks', 'Direct', 'Fail'] as const;

/** Checks what the schema cannot: one kind per transport, and routes that name transports. */
export function checkTransports(s: StaticConfig): string[] {
  const errors: string[] = [];
  for (const [name, t] of Object.entries(s.Transports)) {
    const set = kinds.filter((k) => t[k] !== undefined);
    if (set.length !== 1) errors.push(`transport ${name}: needs exactly one of ${kinds.join(', ')}, has ${set.join(', ') || 'none'}`);
  }
  s.Routes.forEach((r, i) => {
    if (!s.Transports[r.Transport]) errors.push(`Routes.${i}: unknown transport ${r.Transport}`);
  });
  return errors;
}

function ascii(d: string): string {
  try {
    return parseDomain(d).ascii;
  } catch {
    return d.toLowerCase();
  }
}

// A leading dot matches subdomains, as in mox.
function domainMatches(list: string[], domain: string): boolean {
  if (list.length === 0) return true;
  const d = ascii(domain);
  return list.some((p) => (p.startsWith('.') ? d.endsWith(`.${ascii(p.slice(1))}`) : ascii(p) === d));
}

export interface RouteInput {
  account: string;
  sender: string;
  recipientdomain: string;
  /** Failed attempts so far. */
  attempts: number;
  /** Transport set on the message with the queue commands, "" for none. */
  transport: string;
}

export function chooseTransport(config: Config, m: RouteInput): Chosen {
  const transports = config.static_.Transports;
  if (m.transport) {
    const t = transports[m.transport];
    if (!t) throw new Error(`unknown transport ${m.transport}`);
    return { name: m.transport, transport: t };
  }
  const senderDomain = addressDomain(m.sender);
  const domain = normalizeDomain(senderDomain);
  const routes: Route[] = [
    ...(config.domains.Accounts[m.account]?.Routes ?? []),
    ...((domain && config.domains.Domains[domain]?.Routes) || []),
    ...config.static_.Routes,
  ];
  for (const r of routes) {
    if (r.MinimumAttempts > m.attempts) continue;
    if (!domainMatches(r.FromDomain, senderDomain) || !domainMatches(r.ToDomain, m.recipientdomain)) continue;
    const t = transports[r.Transport];
    if (!t) throw new Error(`route names unknown transport ${r.Transport}`);
    return { name: r.Transport, transport: t };
  }
  return { name: '' };
}
