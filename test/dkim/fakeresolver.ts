// In-memory Resolver for DKIM tests: TXT answers from a map, errors on demand.

import { DNSError, type DNSErrorCode, type DNSResult, type Resolver } from '../../src/dns/types.js';

export class FakeResolver implements Resolver {
  /** Name (lower case, no trailing dot) to TXT records, or to the error code a lookup gets. */
  readonly txt = new Map<string, string[] | DNSErrorCode>();
  /** Names whose answers carry the DNSSEC authentic flag. */
  readonly authentic = new Set<string>();

  constructor(records: Record<string, string | string[]> = {}) {
    for (const [name, r] of Object.entries(records)) this.txt.set(name, typeof r === 'string' ? [r] : r);
  }

  async lookupTXT(name: string): Promise<DNSResult<string[]>> {
    const key = name.toLowerCase().replace(/\.$/, '');
    const r = this.txt.get(key);
    if (r === undefined) throw new DNSError('NXDOMAIN', key, 'TXT');
    if (typeof r === 'string') throw new DNSError(r, key, 'TXT');
    return { records: r, authentic: this.authentic.has(key) };
  }

  private none(qtype: string, name: string): never {
    throw new DNSError('NODATA', name, qtype);
  }
  async lookupMX(name: string): Promise<never> {
    this.none('MX', name);
  }
  async lookupA(name: string): Promise<never> {
    this.none('A', name);
  }
  async lookupAAAA(name: string): Promise<never> {
    this.none('AAAA', name);
  }
  async lookupIP(name: string): Promise<never> {
    this.none('A', name);
  }
  async lookupPTR(ip: string): Promise<never> {
    this.none('PTR', ip);
  }
  async lookupCNAME(name: string): Promise<never> {
    this.none('CNAME', name);
  }
  async lookupNS(name: string): Promise<never> {
    this.none('NS', name);
  }
  async lookupSRV(name: string): Promise<never> {
    this.none('SRV', name);
  }
  async lookupTLSA(name: string): Promise<never> {
    this.none('TLSA', name);
  }
}

/**
 * The same records as a mailauth resolver: (name, rrtype) => TXT as string[][], errors coded
 * ENOTFOUND, ENODATA or ESERVFAIL like node:dns.
 */
export function mailauthResolver(fake: FakeResolver): (name: string, rrtype: string) => Promise<string[][]> {
  return async (name, rrtype) => {
    const r = rrtype === 'TXT' ? fake.txt.get(name.toLowerCase().replace(/\.$/, '')) : undefined;
    if (Array.isArray(r)) return r.map((s) => [s]);
    const code = r === undefined || r === 'NXDOMAIN' ? 'ENOTFOUND' : r === 'NODATA' ? 'ENODATA' : 'ESERVFAIL';
    throw Object.assign(new Error(`queryTxt ${code} ${name}`), { code });
  };
}
