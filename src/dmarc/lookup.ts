// The Organizational Domain (RFC 7489 3.2) and DMARC policy discovery (RFC 7489 6.6.3).

import { getDomain } from 'tldts';
import { DNSError, type Resolver } from '../dns/types.js';
import { DMARCRecordError, isDMARCRecord, parseRecord, type DMARCRecord } from './record.js';

/**
 * The Organizational Domain of a domain in A-label form: its public suffix plus one label
 * (RFC 7489 3.2). A domain that is itself a public suffix, or has no suffix, stands for itself.
 *
 * Only the ICANN section of the Public Suffix List is used, not the private one. The private
 * section lists names where one company hands out subdomains (github.io, blogspot.com,
 * s3.amazonaws.com); RFC 7489 3.2 asks for "a" public suffix list, and using the private entries
 * would make every tenant its own Organizational Domain, so the company's DMARC record at its
 * own domain would no longer cover their names through sp=, and mail from user.github.io would
 * not align with a DKIM signature by github.io. Mox makes the same choice.
 */
export function organizationalDomain(domain: string): string {
  const d = domain.toLowerCase().replace(/\.$/, '');
  return getDomain(d, { allowPrivateDomains: false, extractHostname: false, validateHostname: false }) ?? d;
}

export type LookupStatus = 'found' | 'none' | 'temperror' | 'permerror';

export interface RecordLookup {
  status: LookupStatus;
  /** The domain whose _dmarc name gave the record or the error; the last one queried otherwise. */
  domain: string;
  record?: DMARCRecord;
  /** The record's TXT text, also on permerror. */
  txt?: string;
  /** Problems in the record that were ignored (RFC 7489 6.3). */
  warnings: string[];
  /** The record's answer was DNSSEC-validated. */
  authentic: boolean;
  reason?: string;
}

type Query = { status: 'records'; txts: string[]; authentic: boolean } | { status: 'temperror'; reason: string };

// RFC 1035 2.3.4: names longer than this cannot exist, so neither can their records.
const MAX_NAME = 253;

async function query(domain: string, resolver: Resolver): Promise<Query> {
  const name = `_dmarc.${domain}`;
  if (name.length > MAX_NAME) return { status: 'records', txts: [], authentic: false };
  try {
    const r = await resolver.lookupTXT(name);
    // RFC 7489 6.6.3 steps 2 and 4: only records starting with v=DMARC1 count.
    return { status: 'records', txts: r.records.filter(isDMARCRecord), authentic: r.authentic };
  } catch (e) {
    if (e instanceof DNSError && e.notFound) return { status: 'records', txts: [], authentic: false };
    return { status: 'temperror', reason: `looking up ${name}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * Finds the DMARC record for an RFC5322.From domain (A-label form): at _dmarc.<domain>, or when
 * there is none, at _dmarc.<organizational domain> (RFC 7489 6.6.3).
 */
export async function lookupRecord(fromDomain: string, resolver: Resolver): Promise<RecordLookup> {
  const from = fromDomain.toLowerCase().replace(/\.$/, '');
  let domain = from;
  let q = await query(domain, resolver);
  // RFC 7489 6.6.3 step 3: the Organizational Domain only when the From domain has no DMARC record at all.
  const org = organizationalDomain(from);
  if (q.status === 'records' && q.txts.length === 0 && org !== from) {
    domain = org;
    q = await query(domain, resolver);
  }
  // RFC 7489 6.6.3 last paragraph: how to handle DNS errors is the receiver's choice; reported as temperror.
  if (q.status === 'temperror') return { status: 'temperror', domain, warnings: [], authentic: false, reason: q.reason };
  const { txts, authentic } = q;
  // RFC 7489 6.6.3 step 5
  if (txts.length === 0) return { status: 'none', domain, warnings: [], authentic, reason: 'no DMARC record' };
  if (txts.length > 1) return { status: 'none', domain, warnings: [], authentic, reason: `${txts.length} DMARC records at _dmarc.${domain}` };
  const txt = txts[0]!;
  try {
    const { record, warnings } = parseRecord(txt);
    return { status: 'found', domain, record, txt, warnings, authentic };
  } catch (e) {
    if (!(e instanceof DMARCRecordError)) throw e;
    // RFC 7489 6.6.3 step 6.2: no DMARC processing; RFC 7489 11.2 names this permerror.
    return { status: 'permerror', domain, txt, warnings: [], authentic, reason: `invalid DMARC record at _dmarc.${domain}: ${e.message}` };
  }
}
