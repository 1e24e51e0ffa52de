// DMARC evaluation of a received message (RFC 7489 4.2, 6.6) and its Authentication-Results
// method (RFC 7489 11.2).

import type { DKIMResult } from '../dkim/verify.js';
import { DomainError, parseDomain, parseDNSName } from '../dns/domain.js';
import type { Resolver } from '../dns/types.js';
import { isGroup, parseAddressList, type Mailbox } from '../message/address.js';
import { bytesToText, type Header } from '../message/header.js';
import type { SPFResult } from '../spf/evaluate.js';
import { lookupRecord, organizationalDomain } from './lookup.js';
import type { Alignment, DMARCRecord, Policy } from './record.js';

export type DMARCStatus = 'pass' | 'fail' | 'none' | 'temperror' | 'permerror';

export interface DMARCResult {
  status: DMARCStatus;
  /** The RFC5322.From domain evaluated, A-label form; '' when the message has none. */
  domain: string;
  /** Where the record was found: the From domain or its Organizational Domain. */
  recordDomain?: string;
  record?: DMARCRecord;
  /** The policy the record asks for this domain: p, or sp for a subdomain (RFC 7489 6.3); 'none' without record. */
  policy: Policy;
  /**
   * What to do with the message after pct sampling (RFC 7489 6.6.4): the policy on a failure that
   * was sampled in, one step less strict when sampled out, and 'none' unless the status is fail.
   * Aggregate reports call this the disposition.
   */
  disposition: Policy;
  /** The failure was sampled out by pct (RFC 7489 6.6.4), so disposition is below policy. */
  sampledOut: boolean;
  /** The message fails DMARC and its disposition is quarantine or reject. */
  reject: boolean;
  alignedSPFPass: boolean;
  alignedDKIMPass: boolean;
  /** The DMARC record was DNSSEC-validated. */
  authentic: boolean;
  reason?: string;
}

export interface VerifyParams {
  /** The message header, or the From domains already taken from it with fromDomains(). */
  from: Header | FromDomains;
  /**
   * The SPF result of the MAIL FROM identity, with the domain it checked (RFC 7489 4.1). For the
   * null reverse-path that is the HELO check (RFC 7208 2.4). Undefined when SPF was not checked.
   */
  spf?: Pick<SPFResult, 'result' | 'domain'>;
  /** Results of the message's DKIM signatures. */
  dkim: Pick<DKIMResult, 'status' | 'domain'>[];
}

export interface VerifyOptions {
  /** Random numbers in [0, 1) for pct sampling; default Math.random. */
  random?: () => number;
}

export interface FromDomains {
  /** Distinct author domains in A-label form, in header order. */
  domains: string[];
  /** Why some or all authors have no usable domain. */
  errors: string[];
}

/** The author domains in the From header fields (RFC 7489 6.6.1), A-labels as DMARC requires. */
export function fromDomains(header: Header): FromDomains {
  const out: FromDomains = { domains: [], errors: [] };
  const fields = header.getAll('from');
  if (fields.length === 0) out.errors.push('no From header field');
  if (fields.length > 1) out.errors.push(`${fields.length} From header fields`);
  for (const field of fields) {
    // RFC 6854 allows a group in From; its members are the authors.
    const mailboxes: Mailbox[] = parseAddressList(field.value).flatMap((item) => (isGroup(item) ? item.members : [item]));
    if (mailboxes.length === 0) out.errors.push('From header field without address');
    for (const m of mailboxes) {
      const host = m.host === undefined ? '' : bytesToText(m.host);
      if (host === '' || host.startsWith('[')) {
        out.errors.push(`From address without domain name: ${JSON.stringify(host.slice(0, 80))}`);
        continue;
      }
      try {
        const d = parseDomain(host).ascii;
        if (!out.domains.includes(d)) out.domains.push(d);
      } catch (e) {
        if (!(e instanceof DomainError)) throw e;
        out.errors.push(`From address domain: ${e.message}`);
      }
    }
  }
  return out;
}

/** A-label form of an authenticated domain, or undefined when it is not a domain name. */
function normalize(domain: string): string | undefined {
  try {
    return parseDNSName(domain).ascii;
  } catch {
    return undefined;
  }
}

/**
 * Identifier alignment (RFC 7489 3.1): strict needs the same name, relaxed the same
 * Organizational Domain. `fromDomain` is in A-label form.
 */
export function isAligned(fromDomain: string, domain: string, mode: Alignment): boolean {
  const d = normalize(domain);
  if (d === undefined) return false;
  if (d === fromDomain) return true;
  return mode === 'r' && organizationalDomain(d) === organizationalDomain(fromDomain);
}

const LESS_STRICT: Record<Policy, Policy> = { reject: 'quarantine', quarantine: 'none', none: 'none' };

async function evaluate(domain: string, params: VerifyParams, resolver: Resolver, random: () => number): Promise<DMARCResult> {
  const lookup = await lookupRecord(domain, resolver);
  const record = lookup.record;
  const adkim = record?.adkim ?? 'r';
  const aspf = record?.aspf ?? 'r';
  const spf = params.spf;
  const spfAligned = spf !== undefined && isAligned(domain, spf.domain, aspf);
  const dkimAligned = params.dkim.filter((r) => isAligned(domain, r.domain, adkim));
  // RFC 7489 4.2: a pass needs an aligned identifier that SPF or DKIM authenticated. A passing
  // signature under a testing key (t=y) counts too: RFC 6376 3.6.1 is about not penalising failing
  // ones, which DKIM verification already reports as none, and such keys are common in production.
  const result: DMARCResult = {
    status: 'none',
    domain,
    policy: 'none',
    disposition: 'none',
    sampledOut: false,
    reject: false,
    alignedSPFPass: spfAligned && spf.result === 'pass',
    alignedDKIMPass: dkimAligned.some((r) => r.status === 'pass'),
    authentic: lookup.authentic,
  };
  if (lookup.reason) result.reason = lookup.reason;
  if (lookup.status === 'found' || lookup.status === 'permerror') result.recordDomain = lookup.domain;
  if (lookup.status !== 'found' || !record) {
    result.status = lookup.status === 'found' ? 'none' : lookup.status;
    return result;
  }
  result.record = record;
  // RFC 7489 6.3 sp: for subdomains, when the record came from the Organizational Domain.
  result.policy = lookup.domain !== domain ? (record.subdomainPolicy ?? record.policy) : record.policy;
  if (result.alignedSPFPass || result.alignedDKIMPass) {
    result.status = 'pass';
    return result;
  }
  // RFC 7489 11.2 temperror: a retry could still authenticate an aligned identifier.
  if ((spfAligned && spf.result === 'temperror') || dkimAligned.some((r) => r.status === 'temperror')) {
    result.status = 'temperror';
    result.reason = 'no aligned pass, and a temporary error for an aligned identifier';
    return result;
  }
  result.status = 'fail';
  result.reason = 'no aligned SPF or DKIM pass';
  // RFC 7489 6.6.4: the policy for pct percent of failing mail; sampled-out mail gets the next weaker one.
  const sampled = record.pct >= 100 || (record.pct > 0 && random() * 100 < record.pct);
  result.sampledOut = !sampled;
  result.disposition = sampled ? result.policy : LESS_STRICT[result.policy];
  result.reject = result.disposition !== 'none';
  return result;
}

const POLICY_RANK: Record<Policy, number> = { none: 0, quarantine: 1, reject: 2 };
const STATUS_RANK: Record<DMARCStatus, number> = { pass: 0, none: 1, permerror: 2, temperror: 3, fail: 4 };

function worse(a: DMARCResult, b: DMARCResult): boolean {
  if (STATUS_RANK[a.status] !== STATUS_RANK[b.status]) return STATUS_RANK[a.status] > STATUS_RANK[b.status];
  return POLICY_RANK[a.disposition] > POLICY_RANK[b.disposition];
}

/**
 * DMARC for a received message. A message is meant to have exactly one author domain (RFC 7489
 * 6.6.1). With several, each is checked and the least favourable result stands: a failure with
 * the strictest disposition first, as RFC 7489 6.6.1 asks, then temperror, permerror, none and
 * last pass. So a message passes only if every author domain passes, and adding an author in a
 * domain one controls, or an unusable one, cannot shield a forged author from its policy.
 * Without any author domain the result is permerror.
 */
export async function verify(params: VerifyParams, resolver: Resolver, opts: VerifyOptions = {}): Promise<DMARCResult> {
  const random = opts.random ?? Math.random;
  const from = 'domains' in params.from ? params.from : fromDomains(params.from);
  const domains = [...new Set(from.domains.map((d) => d.toLowerCase().replace(/\.$/, '')))];
  const results = await Promise.all(domains.map((d) => evaluate(d, params, resolver, random)));
  if (from.errors.length > 0 || domains.length === 0) {
    results.push({
      status: 'permerror',
      domain: '',
      policy: 'none',
      disposition: 'none',
      sampledOut: false,
      reject: false,
      alignedSPFPass: false,
      alignedDKIMPass: false,
      authentic: false,
      reason: from.errors.join('; ') || 'no From domain',
    });
  }
  let result = results[0]!;
  for (const r of results.slice(1)) if (worse(r, result)) result = r;
  if (results.length > 1) result.reason = [`${results.length} results for the From header, least favourable shown`, result.reason].filter(Boolean).join(': ');
  return result;
}

/**
 * What delivery should do: reject, deliver as junk, ask to try later, or accept. Like mox, a
 * quarantine disposition is rejected unless `quarantine` is 'junk'. A temperror fails closed
 * (RFC 7489 6.6.3 leaves the choice to the receiver): a retry gives a definite verdict.
 */
export function delivery(r: DMARCResult, opts: { quarantine?: 'reject' | 'junk' } = {}): 'accept' | 'junk' | 'reject' | 'tempfail' {
  if (r.status === 'temperror') return 'tempfail';
  if (!r.reject) return 'accept';
  return r.disposition === 'quarantine' && opts.quarantine === 'junk' ? 'junk' : 'reject';
}

/**
 * The dmarc resinfo of Authentication-Results (RFC 7489 11.2, RFC 8601 2.2), e.g.
 * "dmarc=fail (p=reject dis=reject) header.from=example.org".
 */
export function authResults(r: DMARCResult): string {
  let s = `dmarc=${r.status}`;
  if (r.reason && (r.status === 'temperror' || r.status === 'permerror')) {
    s += ` reason="${r.reason.replace(/[^\x20-\x7e]/g, '?').replace(/[\\"]/g, '\\$&')}"`;
  }
  if (r.record) s += ` (p=${r.record.policy}${r.record.subdomainPolicy ? ` sp=${r.record.subdomainPolicy}` : ''} dis=${r.disposition})`;
  if (r.domain) s += ` header.from=${r.domain}`;
  return s;
}
