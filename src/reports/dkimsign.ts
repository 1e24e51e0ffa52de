// DKIM signatures for messages the server sends itself (reports), from postmaster@<hostname>.
import fs from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import type { Config } from '../config/load.js';
import { sign, type SignOptions } from '../dkim/sign.js';
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
  const dkim = config.domains.Domains[domain]!.DKIM;
  const opts: SignOptions[] = dkim.Sign.map((sel) => {
    const s = dkim.Selectors[sel]!;
    return {
      domain,
      selector: sel,
      privateKey: createPrivateKey(fs.readFileSync(config.resolve(s.PrivateKeyFile))),
      headerCanon: s.HeaderCanon,
      bodyCanon: s.BodyCanon,
      headers: s.Headers.length ? s.Headers : undefined,
      oversign: !s.NoOversign,
      expiration: s.ExpirationSeconds,
      timestamp: now,
    };
  });
  return sign(msg, opts);
}
