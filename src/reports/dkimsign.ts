// DKIM signatures for messages the server sends itself (reports), from postmaster@<hostname>.
import type { Config } from '../config/load.js';
import { sign } from '../dkim/sign.js';
import { signOptions } from '../smtpserver/submit.js';
import { normalizeDomain } from '../config/domains.js';

/**
 * The configured domain that signs for a From domain: the domain itself or its nearest parent with
 * signing selectors. A parent's signature is aligned with the From domain under relaxed DKIM
 * alignment (RFC 7489 3.1.1), so reports from the host name pass DMARC of the parent domain.
 */
export function signingDomain(config: Config, fromDomain: string): string | undefined {
  const labels = (normalizeDomain(fromDomain) ?? fromDomain.toLowerCase()).split('.');
  for (let i = 0; i < labels.length - 1; i++) {
    const d = labels.slice(i).join('.');
    if (config.domains.Domains[d]?.DKIM.Sign.length) return d;
  }
  return undefined;
}

/** DKIM-Signature header fields for a message, or '' when no configured domain signs for it. */
export async function dkimSignatures(config: Config, fromDomain: string, msg: Buffer, now: Date): Promise<string> {
  const domain = signingDomain(config, fromDomain);
  if (!domain) return '';
  const opts = signOptions(config, domain, now);
  return sign(msg, opts);
}
