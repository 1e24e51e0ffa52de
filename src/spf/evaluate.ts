// check_host() of RFC 7208 4 and 5 with the processing limits of 4.6.4, and the HELO and MAIL FROM
// identity checks of RFC 7208 2.3 and 2.4.

import { domainToASCII } from 'node:url';
import { DNSError, type DNSResult, type Resolver } from '../dns/types.js';
import { dottedIP, formatIP, inPrefix, parseIP, unmapIPv4, type IP } from './ip.js';
import {
  formatTerm,
  isSPFRecord,
  parse,
  parseMacroString,
  quote,
  SPFSyntaxError,
  type Directive,
  type MacroLetter,
  type MacroString,
  type SPFRecord,
} from './parse.js';

export type SPFStatus = 'none' | 'neutral' | 'pass' | 'fail' | 'softfail' | 'temperror' | 'permerror';

export interface SPFResult {
  result: SPFStatus;
  /** The term that decided the result, e.g. "-all" or "include:_spf.example.com". */
  mechanism?: string;
  /** Text from the exp= modifier, only for fail (RFC 7208 6.2). Comes from a third party. */
  explanation?: string;
  /** The domain whose policy was checked. */
  domain: string;
  /** True if every DNS answer the verdict rests on was DNSSEC-validated. */
  authentic: boolean;
  /** DNS-querying terms evaluated, counted against the limit (RFC 7208 4.6.4). */
  lookups: number;
  /** Why this result was reached. */
  reason?: string;
}

export interface CheckHostParams {
  /** The SMTP client's address. */
  ip: string;
  domain: string;
  /** local@domain, or postmaster@<helo> for the HELO identity. */
  sender: string;
  helo: string;
  /** Name of the host doing the check, for the "r" macro. */
  receivingHost: string;
}

export interface CheckHostOptions {
  /** Limit on DNS-querying terms (RFC 7208 4.6.4); default 10. */
  maxLookups?: number;
  /** Limit on void lookups (RFC 7208 4.6.4); default 2. */
  maxVoidLookups?: number;
  /** Time limit for one evaluation, after which the result is temperror (RFC 7208 4.6.4); default 20 s. */
  timeoutMs?: number;
  /** Clock for the "t" macro, in milliseconds since the epoch. */
  now?: () => number;
}

/** Ends the evaluation with an error result. */
class Abort extends Error {
  constructor(
    readonly status: 'temperror' | 'permerror',
    message: string,
  ) {
    super(message);
  }
}

/** A DNS query failed other than with "not found" (RFC 7208 5: temperror unless noted otherwise). */
class LookupFailed extends Abort {
  constructor(message: string) {
    super('temperror', message);
  }
}

interface Outcome {
  result: 'none' | 'neutral' | 'pass' | 'fail' | 'softfail';
  mechanism?: string;
  explanation?: string;
  reason: string;
}

// Bounds the work a hostile record can cause through macros such as %{s} repeated many times.
const MAX_EXPANSION = 8192;
// RFC 7208 4.6.4: address lookups per "mx", names per "ptr".
const MAX_NAMES = 10;

const RESULTS = { '+': 'pass', '-': 'fail', '~': 'softfail', '?': 'neutral' } as const;

class Evaluation {
  lookups = 0;
  authentic = true;
  private voids = 0;
  private readonly deadline: number;
  private validated?: Promise<{ names: string[]; isVoid: boolean }>;

  constructor(
    private readonly resolver: Resolver,
    private readonly ip: IP,
    private readonly sender: { local: string; domain: string },
    private readonly helo: string,
    private readonly receivingHost: string,
    private readonly opts: Required<CheckHostOptions>,
  ) {
    this.deadline = Date.now() + opts.timeoutMs;
  }

  /** The check_host() function for one domain; errors are thrown as Abort. */
  async run(domain: string, included: boolean): Promise<Outcome> {
    // RFC 7208 4.3
    if (!isValidDomain(domain)) return { result: 'none', reason: `${quote(domain)} is not a valid domain name` };
    // RFC 7208 4.4, 4.5
    const txts = await this.query((r) => r.lookupTXT(domain), `TXT ${domain}`);
    const records = (txts ?? []).filter(isSPFRecord);
    if (records.length === 0) return { result: 'none', reason: `no SPF record at ${domain}` };
    if (records.length > 1) throw new Abort('permerror', `${domain} has ${records.length} SPF records`);
    let record: SPFRecord;
    try {
      record = parse(records[0]!);
    } catch (err) {
      if (err instanceof SPFSyntaxError) throw new Abort('permerror', `SPF record of ${domain}: ${err.message}`);
      throw err;
    }

    // RFC 7208 4.6.2: the first matching mechanism decides.
    for (const term of record.terms) {
      if (term.type !== 'directive' || !(await this.matches(term, domain))) continue;
      const mechanism = formatTerm(term);
      const result = RESULTS[term.qualifier];
      // RFC 7208 6.2: an explanation only for fail, and never from an included record.
      const explanation = result === 'fail' && !included && record.exp ? await this.explain(record.exp, domain) : undefined;
      return { result, mechanism, reason: `${domain} matched ${mechanism}`, ...(explanation ? { explanation } : {}) };
    }

    // RFC 7208 6.1. A record with "all" never gets here, so its redirect is ignored as required.
    if (record.redirect) {
      this.countTerm();
      const target = await this.target(record.redirect, domain);
      const out = await this.run(target, included);
      if (out.result === 'none') throw new Abort('permerror', `redirect=${target}: ${out.reason}`);
      return out;
    }
    // RFC 7208 4.7
    return { result: 'neutral', reason: `no mechanism of ${domain} matched` };
  }

  private async matches(d: Directive, domain: string): Promise<boolean> {
    if (d.mechanism === 'all') return true; // RFC 7208 5.1
    if (d.mechanism === 'ip4' || d.mechanism === 'ip6') {
      // RFC 7208 5.6
      const net = parseIP(d.ip!)!;
      return inPrefix(this.ip, net, net.family === 4 ? (d.cidr4 ?? 32) : (d.cidr6 ?? 128));
    }
    this.countTerm();
    const target = d.domain ? await this.target(d.domain, domain) : domain;
    switch (d.mechanism) {
      case 'include': {
        // RFC 7208 5.2: temperror and permerror propagate as thrown Aborts.
        const out = await this.run(target, true);
        if (out.result === 'none') throw new Abort('permerror', `include:${target}: ${out.reason}`);
        return out.result === 'pass';
      }
      case 'a': {
        // RFC 7208 5.3
        const addrs = await this.query((r) => this.lookupAddr(r, target), `address of ${target}`);
        if (!addrs?.length) this.voidLookup();
        return this.anyMatch(addrs, d);
      }
      case 'mx': {
        // RFC 7208 5.4; no implicit MX, and a null MX (RFC 7505) names no host.
        const mxs = await this.query((r) => r.lookupMX(target), `MX ${target}`);
        if (!mxs?.length) this.voidLookup();
        const hosts = [...(mxs ?? [])].sort((a, b) => a.preference - b.preference).filter((mx) => mx.exchange !== '');
        for (const [i, { exchange }] of hosts.entries()) {
          if (i >= MAX_NAMES) throw new Abort('permerror', `mx:${target} needs more than ${MAX_NAMES} address lookups`);
          const addrs = await this.query((r) => this.lookupAddr(r, exchange), `address of ${exchange}`);
          if (this.anyMatch(addrs, d)) return true;
        }
        return false;
      }
      case 'ptr': {
        // RFC 7208 5.5
        const { names, isVoid } = await this.validatedNames();
        if (isVoid) this.voidLookup();
        return names.some((name) => isSubdomain(name, target));
      }
      case 'exists': {
        // RFC 7208 5.7: an A query whatever the client's address family.
        const addrs = await this.query((r) => r.lookupA(target), `A ${target}`);
        if (!addrs?.length) this.voidLookup();
        return !!addrs?.length;
      }
    }
  }

  /** RFC 7208 5: A records for an IPv4 client, AAAA for IPv6. */
  private lookupAddr(r: Resolver, name: string): Promise<DNSResult<string[]>> {
    return this.ip.family === 4 ? r.lookupA(name) : r.lookupAAAA(name);
  }

  /** Whether any of the addresses is in the client's network of the given prefix lengths. */
  private anyMatch(addrs: string[] | undefined, d: { cidr4?: number; cidr6?: number } = {}): boolean {
    const bits = this.ip.family === 4 ? (d.cidr4 ?? 32) : (d.cidr6 ?? 128);
    return (addrs ?? []).some((a) => {
      const ip = parseIP(a);
      return ip !== undefined && inPrefix(this.ip, ip, bits);
    });
  }

  /** The client's validated host names (RFC 7208 5.5), shared by "ptr" and %{p}. */
  private validatedNames(): Promise<{ names: string[]; isVoid: boolean }> {
    this.validated ??= (async () => {
      const ipText = formatIP(this.ip);
      let ptrs: string[] | undefined;
      try {
        ptrs = await this.query((r) => r.lookupPTR(ipText), `PTR ${ipText}`);
      } catch (err) {
        // RFC 7208 5.5: a failed PTR lookup means no match.
        if (err instanceof LookupFailed) return { names: [], isVoid: false };
        throw err;
      }
      // RFC 7208 4.6.4: names after the first 10 are ignored.
      const checked = await Promise.all(
        (ptrs ?? []).slice(0, MAX_NAMES).map(async (name) => {
          try {
            const addrs = await this.query((r) => this.lookupAddr(r, name), `address of ${name}`);
            return this.anyMatch(addrs) ? trimDot(name) : undefined;
          } catch (err) {
            // RFC 7208 5.5: a name whose address lookup fails is skipped.
            if (err instanceof LookupFailed) return undefined;
            throw err;
          }
        }),
      );
      return { names: checked.filter((n) => n !== undefined), isVoid: !ptrs?.length };
    })();
    return this.validated;
  }

  /** Expands a domain-spec into a <target-name> (RFC 7208 4.8). */
  private async target(spec: MacroString, domain: string): Promise<string> {
    let name = await this.expand(spec, domain);
    if (name.endsWith('.')) name = name.slice(0, -1);
    // RFC 7208 7.3: an over-long name loses labels from the left.
    while (name.length > 253 && name.includes('.')) name = name.slice(name.indexOf('.') + 1);
    if (!isValidName(name)) throw new Abort('permerror', `invalid target name ${quote(name)}`);
    return name;
  }

  /** RFC 7208 7 */
  private async expand(ms: MacroString, domain: string): Promise<string> {
    let out = '';
    for (const part of ms) {
      if (part.type === 'literal') out += part.text;
      else if (part.type === 'escape') out += part.text === '%%' ? '%' : part.text === '%_' ? ' ' : '%20';
      else {
        // RFC 7208 7.3: split on the delimiters, reverse, keep the right-hand parts, join with ".".
        let parts = split(await this.macroValue(part.letter, domain), part.delimiters || '.');
        if (part.reverse) parts.reverse();
        if (part.keep !== undefined) parts = parts.slice(-part.keep);
        const value = parts.join('.');
        out += part.urlEscape ? urlEscape(value) : value;
      }
      if (out.length > MAX_EXPANSION) throw new Abort('permerror', `macro expansion longer than ${MAX_EXPANSION} characters`);
    }
    return out;
  }

  /** RFC 7208 7.3 */
  private async macroValue(letter: MacroLetter, domain: string): Promise<string> {
    switch (letter) {
      case 's':
        return `${this.sender.local}@${this.sender.domain}`;
      case 'l':
        return this.sender.local;
      case 'o':
        return this.sender.domain;
      case 'd':
        return domain;
      case 'i':
        return dottedIP(this.ip);
      case 'p': {
        // The domain itself, else a subdomain of it, else any validated name, else "unknown".
        const { names } = await this.validatedNames();
        const lower = domain.toLowerCase();
        return names.find((n) => n.toLowerCase() === lower) ?? names.find((n) => isSubdomain(n, domain)) ?? names[0] ?? 'unknown';
      }
      case 'v':
        return this.ip.family === 4 ? 'in-addr' : 'ip6';
      case 'h':
        return this.helo;
      case 'c':
        return formatIP(this.ip);
      case 'r':
        return this.receivingHost || 'unknown';
      case 't':
        return String(Math.floor(this.opts.now() / 1000));
    }
  }

  /** RFC 7208 6.2: any problem fetching or expanding the explanation means there is none. */
  private async explain(spec: MacroString, domain: string): Promise<string | undefined> {
    try {
      const target = await this.target(spec, domain);
      const txts = await this.query((r) => r.lookupTXT(target), `TXT ${target}`, false);
      if (txts?.length !== 1) return undefined;
      return await this.expand(parseMacroString(txts[0]!, 'explain'), domain);
    } catch {
      return undefined;
    }
  }

  /** RFC 7208 4.6.4: the limit on terms that query DNS. */
  private countTerm(): void {
    if (this.lookups >= this.opts.maxLookups) {
      throw new Abort('permerror', `more than ${this.opts.maxLookups} DNS-querying terms`);
    }
    this.lookups++;
  }

  /** RFC 7208 4.6.4: the limit on terms whose query found nothing. */
  private voidLookup(): void {
    if (++this.voids > this.opts.maxVoidLookups) {
      throw new Abort('permerror', `more than ${this.opts.maxVoidLookups} void DNS lookups`);
    }
  }

  /**
   * One DNS query, bounded by the evaluation's time limit. Resolves to undefined when the name or
   * record type does not exist (RFC 7208 5: like an empty answer).
   */
  private async query<T>(q: (r: Resolver) => Promise<DNSResult<T>>, what: string, forVerdict = true): Promise<T | undefined> {
    const remaining = this.deadline - Date.now();
    // RFC 7208 4.6.4: exceeding the time limit gives temperror.
    if (remaining <= 0) throw new Abort('temperror', 'time limit for SPF evaluation exceeded');
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Abort('temperror', 'time limit for SPF evaluation exceeded')), Math.min(remaining, 2 ** 31 - 1));
    });
    try {
      const res = await Promise.race([q(this.resolver), expired]);
      if (forVerdict && !res.authentic) this.authentic = false;
      return res.records;
    } catch (err) {
      if (err instanceof Abort) throw err;
      // A "not found" carries no DNSSEC status here, so it cannot count as authentic.
      if (forVerdict) this.authentic = false;
      if (err instanceof DNSError && err.notFound) return undefined;
      throw new LookupFailed(`DNS lookup of ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function split(value: string, delimiters: string): string[] {
  const parts = [''];
  for (const ch of value) {
    if (delimiters.includes(ch)) parts.push('');
    else parts[parts.length - 1] += ch;
  }
  return parts;
}

/** RFC 7208 7.3, RFC 3986 2.3: everything but unreserved characters is percent-encoded. */
function urlEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function trimDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function isSubdomain(name: string, domain: string): boolean {
  const n = trimDot(name).toLowerCase();
  const d = domain.toLowerCase();
  return n === d || n.endsWith(`.${d}`);
}

/** A name DNS can carry: 1 to 63 visible ASCII characters per label, 253 in all. */
function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => /^[\x21-\x7e]{1,63}$/.test(l));
}

/** RFC 7208 4.3: a well-formed, multi-label domain name whose top label is not numeric. */
function isValidDomain(domain: string): boolean {
  return isValidName(domain) && /\.[^.]*[a-z-][^.]*$/i.test(domain);
}

/** Lower case, no trailing dot, and RFC 7208 4.3: internationalized names as A-labels. */
function normalizeDomain(domain: string): string {
  const d = trimDot(domain.trim()).toLowerCase();
  return /[^\x00-\x7f]/.test(d) ? domainToASCII(d) : d;
}

/**
 * The check_host() function of RFC 7208 4: the verdict of <domain>'s SPF policy on the client
 * address. Never throws for anything found in DNS; throws TypeError for an invalid `ip`.
 */
export async function checkHost(params: CheckHostParams, resolver: Resolver, opts: CheckHostOptions = {}): Promise<SPFResult> {
  const parsed = parseIP(params.ip);
  if (!parsed) throw new TypeError(`invalid IP address ${quote(params.ip)}`);
  const domain = normalizeDomain(params.domain);
  const at = params.sender.lastIndexOf('@');
  const sender = {
    // RFC 7208 4.3: a missing local-part becomes "postmaster".
    local: (at < 0 ? '' : params.sender.slice(0, at)) || 'postmaster',
    domain: normalizeDomain(params.sender.slice(at + 1)),
  };
  const ev = new Evaluation(resolver, unmapIPv4(parsed), sender, params.helo, params.receivingHost, {
    maxLookups: opts.maxLookups ?? 10,
    maxVoidLookups: opts.maxVoidLookups ?? 2,
    timeoutMs: opts.timeoutMs ?? 20_000,
    now: opts.now ?? Date.now,
  });
  let out: Outcome | { result: 'temperror' | 'permerror'; reason: string };
  try {
    out = await ev.run(domain, false);
  } catch (err) {
    out = err instanceof Abort ? { result: err.status, reason: err.message } : { result: 'temperror', reason: `internal error: ${String(err)}` };
  }
  return { ...out, domain, authentic: ev.authentic, lookups: ev.lookups };
}

export interface VerifyParams {
  ip: string;
  /** The MAIL FROM address without angle brackets; "" for the null reverse-path. */
  mailFrom: string;
  helo: string;
  receivingHost: string;
}

export interface VerifyResult {
  /** The identity whose result stands: "helo" when the HELO check failed, else "mailfrom". */
  identity: 'helo' | 'mailfrom';
  /** The <sender> checked for that identity. */
  sender: string;
  result: SPFResult;
  /** The HELO identity check, done when HELO is a multi-label domain name. */
  helo?: SPFResult;
  /** The MAIL FROM identity check, skipped when the HELO check failed. */
  mailFrom?: SPFResult;
}

/** SPF for a received message: the HELO identity (RFC 7208 2.3), then MAIL FROM (RFC 7208 2.4). */
export async function verify(params: VerifyParams, resolver: Resolver, opts?: CheckHostOptions): Promise<VerifyResult> {
  const { ip, helo, receivingHost } = params;
  const heloSender = `postmaster@${helo}`;
  // RFC 7208 2.3: only possible for a valid multi-label domain name; a fail settles the session.
  const heloResult = isValidDomain(normalizeDomain(helo))
    ? await checkHost({ ip, domain: helo, sender: heloSender, helo, receivingHost }, resolver, opts)
    : undefined;
  if (heloResult?.result === 'fail') return { identity: 'helo', sender: heloSender, result: heloResult, helo: heloResult };
  // RFC 7208 2.4: the null reverse-path stands for postmaster@<helo>, which the HELO check covered.
  const sender = params.mailFrom || heloSender;
  const mailFrom =
    params.mailFrom === '' && heloResult
      ? heloResult
      : await checkHost({ ip, domain: sender.slice(sender.lastIndexOf('@') + 1), sender, helo, receivingHost }, resolver, opts);
  return { identity: 'mailfrom', sender, result: mailFrom, helo: heloResult, mailFrom };
}
