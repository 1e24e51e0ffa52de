// In-memory Resolver for SPF tests: records by owner name, with injectable DNS failures.

import { DNSError, type DNSErrorCode, type DNSResult, type MXRecord, type Resolver } from '../../src/dns/types.js';
import { dottedIP, parseIP } from '../../src/spf/ip.js';

/** A failure to answer with instead of records; HANG never answers. */
export type Failure = DNSErrorCode | 'HANG';

export interface Entry {
  TXT?: string[] | Failure;
  A?: string[] | Failure;
  AAAA?: string[] | Failure;
  /** [preference, exchange]; exchange "" is a null MX. */
  MX?: [number, string][] | Failure;
  PTR?: string[] | Failure;
  /** Overrides the resolver-wide DNSSEC status for this name. */
  authentic?: boolean;
}

export type Zone = Record<string, Entry>;

type RRType = 'TXT' | 'A' | 'AAAA' | 'MX' | 'PTR';

/** DNS names compare case-insensitively, with or without the root dot. */
function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** The reverse-mapping name of an address, as used for PTR queries. */
export function reverseName(ip: string): string {
  const parsed = parseIP(ip);
  if (!parsed) throw new Error(`bad IP ${ip}`);
  return `${dottedIP(parsed).split('.').reverse().join('.')}.${parsed.family === 4 ? 'in-addr' : 'ip6'}.arpa`;
}

export class FakeResolver implements Resolver {
  /** Every query made, as "TYPE name", for checking how much work a case caused. */
  readonly queries: string[] = [];

  private readonly zone: Zone;

  constructor(
    zone: Zone,
    private readonly authentic = false,
  ) {
    this.zone = Object.fromEntries(Object.entries(zone).map(([name, entry]) => [normalize(name), entry]));
  }

  /** Answers like a DNS server would for the zone: NXDOMAIN, NODATA, a failure or the records. */
  async raw<T>(name: string, type: RRType): Promise<DNSResult<T[]>> {
    const key = normalize(name);
    this.queries.push(`${type} ${key}`);
    const entry = this.zone[key];
    if (!entry) throw new DNSError('NXDOMAIN', name, type);
    const data = entry[type];
    if (data === undefined) throw new DNSError('NODATA', name, type);
    if (data === 'HANG') return new Promise(() => {});
    if (typeof data === 'string') throw new DNSError(data, name, type);
    return { records: data as T[], authentic: entry.authentic ?? this.authentic };
  }

  lookupTXT(name: string) {
    return this.raw<string>(name, 'TXT');
  }
  async lookupMX(name: string): Promise<DNSResult<MXRecord[]>> {
    const res = await this.raw<[number, string]>(name, 'MX');
    return { ...res, records: res.records.map(([preference, exchange]) => ({ preference, exchange })) };
  }
  lookupA(name: string) {
    return this.raw<string>(name, 'A');
  }
  lookupAAAA(name: string) {
    return this.raw<string>(name, 'AAAA');
  }
  async lookupIP(name: string): Promise<DNSResult<string[]>> {
    const [a, aaaa] = await Promise.allSettled([this.lookupA(name), this.lookupAAAA(name)]);
    if (a.status === 'rejected' && aaaa.status === 'rejected') throw a.reason;
    const ok = [a, aaaa].filter((r) => r.status === 'fulfilled').map((r) => r.value);
    return { records: ok.flatMap((r) => r.records), authentic: ok.every((r) => r.authentic) };
  }
  lookupPTR(ip: string) {
    return this.raw<string>(reverseName(ip), 'PTR');
  }
  lookupCNAME(name: string): Promise<DNSResult<string>> {
    return Promise.reject(new DNSError('NODATA', name, 'CNAME'));
  }
  lookupNS(name: string): Promise<DNSResult<string[]>> {
    return Promise.reject(new DNSError('NODATA', name, 'NS'));
  }
  lookupSRV(name: string): Promise<DNSResult<never[]>> {
    return Promise.reject(new DNSError('NODATA', name, 'SRV'));
  }
  lookupTLSA(name: string): Promise<DNSResult<never[]>> {
    return Promise.reject(new DNSError('NODATA', name, 'TLSA'));
  }
}
