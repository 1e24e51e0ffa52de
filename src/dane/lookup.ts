// Finding the TLSA records of an MX host and what they require (RFC 7672 2.2).

import { parseDomain } from '../dns/domain.js';
import { DNSError, type Resolver, type TLSARecord } from '../dns/types.js';
import { usableRecords } from './tlsa.js';

export type DANELookup =
  | {
      status: 'dane-required';
      /** The usable records: the server's certificate must match one (RFC 7672 2.2). */
      records: TLSARecord[];
      /** Where the records were found, minus the "_25._tcp." prefix; also the name for SNI (RFC 7672 8.1). */
      baseDomain: string;
      /**
       * Names a DANE-TA certificate may match (RFC 7672 3.2.3). The caller adds the next-hop
       * domain when its MX lookup was DNSSEC-authentic.
       */
      names: string[];
      addresses: string[];
    }
  | {
      status: 'no-dane';
      /**
       * True when authentic TLSA records exist but none is usable: STARTTLS is still
       * mandatory, without authentication (RFC 7672 2.2).
       */
      requireTLS: boolean;
      reason: string;
      addresses: string[];
    }
  /** The host must not be used now: a lookup failed, perhaps through an attack on DNSSEC, or it has no address. */
  | { status: 'temporary-failure'; reason: string };

// The stub resolver bounds CNAME chains the same way.
const MAX_CNAMES = 16;

/**
 * Looks up the addresses and TLSA records of an MX host (RFC 7672 2.2). TLSA records count
 * only when the host's address records are DNSSEC-authentic (RFC 7672 2.2); a CNAME chain that
 * is authentic throughout makes its target the first candidate TLSA base domain, then the host
 * itself (RFC 7672 2.2.3, RFC 7671 7).
 */
export async function lookupDANE(resolver: Resolver, host: string, opts: { port?: number } = {}): Promise<DANELookup> {
  const h = parseDomain(host).ascii;
  const port = opts.port ?? 25;
  const failure = (what: string, err: unknown): DANELookup => ({
    status: 'temporary-failure',
    reason: `${what}: ${err instanceof Error ? err.message : String(err)}`,
  });

  let addresses: string[];
  let authentic: boolean;
  try {
    ({ records: addresses, authentic } = await resolver.lookupIP(h));
  } catch (err) {
    return failure(`addresses of ${h}`, err);
  }
  if (addresses.length === 0) return { status: 'temporary-failure', reason: `no addresses for ${h}` };
  if (!authentic) return { status: 'no-dane', requireTLS: false, reason: `addresses of ${h} are not DNSSEC-signed`, addresses };

  let expanded = h;
  let expandedSecure = true;
  for (let i = 0; ; i++) {
    if (i === MAX_CNAMES) return { status: 'temporary-failure', reason: `more than ${MAX_CNAMES} CNAMEs from ${h}` };
    let target: string;
    try {
      const r = await resolver.lookupCNAME(expanded);
      if (!r.authentic) {
        expandedSecure = false;
        break;
      }
      target = r.records;
    } catch (err) {
      if (err instanceof DNSError && err.notFound) break;
      return failure(`CNAME of ${expanded}`, err);
    }
    expanded = target;
  }
  const candidates = expandedSecure && expanded !== h ? [expanded, h] : [h];

  for (const base of candidates) {
    const name = `_${port}._tcp.${base}`;
    let r;
    try {
      r = await resolver.lookupTLSA(name);
    } catch (err) {
      if (err instanceof DNSError && err.notFound) continue;
      // RFC 7672 2.2.1: a failed TLSA lookup, as for a bogus answer, is not the same as no records.
      return failure(`TLSA records at ${name}`, err);
    }
    if (!r.authentic || r.records.length === 0) continue;
    const usable = usableRecords(r.records);
    if (usable.length === 0) return { status: 'no-dane', requireTLS: true, reason: `no usable TLSA records at ${name}`, addresses };
    const names = [...new Set([base, ...(expandedSecure ? [expanded] : []), h])];
    return { status: 'dane-required', records: usable, baseDomain: base, names, addresses };
  }
  return { status: 'no-dane', requireTLS: false, reason: `no DNSSEC-authentic TLSA records for ${h}`, addresses };
}
