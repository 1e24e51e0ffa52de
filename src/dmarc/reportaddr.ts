// Report destinations of a DMARC record: mailto URIs, and the check that a destination outside the
// Domain Owner's Organizational Domain agreed to receive its reports (RFC 7489 7.1).

import { DomainError, parseDomain } from '../dns/domain.js';
import { DNSError, type Resolver } from '../dns/types.js';
import { organizationalDomain } from './lookup.js';
import { DMARCRecordError, isDMARCRecord, parseRecord, type DMARCRecord, type ReportURI } from './record.js';

export type ReportAddressStatus =
  /** Same Organizational Domain as the policy: no check needed. */
  | 'internal'
  /** The destination published its consent. */
  | 'authorized'
  /** No consent found: reports must not be sent there. */
  | 'unauthorized'
  /** The consent lookup failed; try again later. */
  | 'temperror'
  /** Not a mailto URI with one address, the only kind Postern sends to (RFC 7489 6.2). */
  | 'unsupported';

export interface ReportAddressCheck {
  uri: ReportURI;
  status: ReportAddressStatus;
  /** The mailto address and its domain in A-label form. */
  address?: string;
  host?: string;
  /** The consent record's name, <policy domain>._report._dmarc.<host>. */
  name?: string;
  /** Destinations the consent record puts in place of this one (RFC 7489 7.1 step 8). */
  override?: ReportURI[];
  /** The consent record was DNSSEC-validated. */
  authentic: boolean;
  reason?: string;
}

/**
 * The single address of a mailto URI (RFC 6068 2), with its domain in A-label form; undefined for
 * other URIs, several addresses or an invalid domain. Header fields after "?" are ignored.
 */
export function mailtoAddress(uri: string): { address: string; domain: string } | undefined {
  const m = /^mailto:([^?]*)/i.exec(uri);
  if (!m) return undefined;
  let to: string;
  try {
    to = decodeURIComponent(m[1]!);
  } catch {
    return undefined;
  }
  const at = to.lastIndexOf('@');
  if (at <= 0 || to.includes(',') || /[\s<>]/.test(to)) return undefined;
  try {
    const domain = parseDomain(to.slice(at + 1)).ascii;
    return { address: `${to.slice(0, at)}@${domain}`, domain };
  } catch (e) {
    if (e instanceof DomainError) return undefined;
    throw e;
  }
}

/**
 * Checks one report destination of the record published for `policyDomain` (the domain the DMARC
 * record was found at). `tag` says which list the URI came from, for overrides.
 */
export async function checkReportAddress(policyDomain: string, uri: ReportURI, resolver: Resolver, tag: 'rua' | 'ruf' = 'rua'): Promise<ReportAddressCheck> {
  const mailto = mailtoAddress(uri.uri);
  if (!mailto) return { uri, status: 'unsupported', authentic: false, reason: 'not a mailto URI with one valid address' };
  const out: ReportAddressCheck = { uri, status: 'unauthorized', address: mailto.address, host: mailto.domain, authentic: false };
  const policy = parseDomain(policyDomain).ascii;
  // RFC 7489 7.1: only destinations outside the policy's Organizational Domain need consent.
  if (organizationalDomain(mailto.domain) === organizationalDomain(policy)) return { ...out, status: 'internal' };
  // RFC 7489 7.1 steps 1 to 3
  const name = `${policy}._report._dmarc.${mailto.domain}`;
  out.name = name;
  // RFC 1035 2.3.4: a longer name cannot exist, so neither can the consent.
  if (name.length > 253) return { ...out, reason: 'consent record name too long' };
  let txts: string[];
  try {
    const r = await resolver.lookupTXT(name);
    txts = r.records;
    out.authentic = r.authentic;
  } catch (e) {
    if (e instanceof DNSError && e.notFound) return { ...out, reason: `no TXT record at ${name}` };
    // RFC 7489 7.1 step 4: a temporary error may be retried later.
    return { ...out, status: 'temperror', reason: `looking up ${name}: ${e instanceof Error ? e.message : String(e)}` };
  }
  // RFC 7489 7.1 step 5: records that start with v=DMARC1 and parse as a tag list.
  const records: DMARCRecord[] = [];
  for (const txt of txts.filter(isDMARCRecord)) {
    try {
      records.push(parseRecord(txt, { policyRequired: false }).record);
    } catch (e) {
      if (!(e instanceof DMARCRecordError)) throw e;
    }
  }
  // RFC 7489 7.1 step 6
  if (records.length === 0) return { ...out, reason: `no v=DMARC1 record at ${name}` };
  out.status = 'authorized';
  // RFC 7489 7.1 step 8: the override must stay at the same destination host.
  const replacement = records.find((r) => r[tag].length > 0)?.[tag] ?? [];
  const sameHost = replacement.filter((u) => mailtoAddress(u.uri)?.domain === mailto.domain);
  if (sameHost.length > 0) out.override = sameHost;
  if (sameHost.length < replacement.length) out.reason = `ignored ${replacement.length - sameHost.length} ${tag} override(s) at another host`;
  return out;
}

/** Checks every rua and ruf destination of a record found at `policyDomain`, for `postern dmarc checkreportaddrs`. */
export async function checkReportAddresses(policyDomain: string, record: Pick<DMARCRecord, 'rua' | 'ruf'>, resolver: Resolver): Promise<ReportAddressCheck[]> {
  return Promise.all([
    ...record.rua.map((u) => checkReportAddress(policyDomain, u, resolver, 'rua')),
    ...record.ruf.map((u) => checkReportAddress(policyDomain, u, resolver, 'ruf')),
  ]);
}
