// Resolver interface shared by everything that looks up DNS: SPF, DKIM, DMARC, MTA-STS, DANE,
// the SMTP client and DNSBL checks. The stub resolver implements it; tests may inject fixtures.

/** Outcome class of a failed lookup. NXDOMAIN and NODATA are "not found"; others are temporary. */
export type DNSErrorCode = 'NXDOMAIN' | 'NODATA' | 'SERVFAIL' | 'REFUSED' | 'TIMEOUT' | 'FORMERR' | 'NETWORK' | 'OTHER';

export class DNSError extends Error {
  constructor(
    readonly code: DNSErrorCode,
    readonly qname: string,
    readonly qtype: string,
    message?: string,
  ) {
    super(message ?? `dns ${qtype} ${qname}: ${code}`);
    this.name = 'DNSError';
  }
  /** True for NXDOMAIN and NODATA: the name or record type does not exist (RFC 2308). */
  get notFound(): boolean {
    return this.code === 'NXDOMAIN' || this.code === 'NODATA';
  }
  /** True when a later retry may succeed. */
  get temporary(): boolean {
    return !this.notFound;
  }
}

/** Records plus whether a validating resolver vouched for them (AD bit, RFC 4035 3.2.3). */
export interface DNSResult<T> {
  records: T;
  authentic: boolean;
}

export interface MXRecord {
  preference: number;
  /** Host name without trailing dot, lower case. "" for a null MX (RFC 7505). */
  exchange: string;
}

export interface TLSARecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

export interface SRVRecord {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export interface Resolver {
  /** TXT records, each record's character-strings concatenated (RFC 7208 3.3). */
  lookupTXT(name: string): Promise<DNSResult<string[]>>;
  lookupMX(name: string): Promise<DNSResult<MXRecord[]>>;
  lookupA(name: string): Promise<DNSResult<string[]>>;
  lookupAAAA(name: string): Promise<DNSResult<string[]>>;
  /** A and AAAA together; fails only if both fail (then with the more temporary error). */
  lookupIP(name: string): Promise<DNSResult<string[]>>;
  /** Reverse lookup of an IP address; names without trailing dot. */
  lookupPTR(ip: string): Promise<DNSResult<string[]>>;
  lookupCNAME(name: string): Promise<DNSResult<string>>;
  lookupNS(name: string): Promise<DNSResult<string[]>>;
  lookupSRV(name: string): Promise<DNSResult<SRVRecord[]>>;
  lookupTLSA(name: string): Promise<DNSResult<TLSARecord[]>>;
}
