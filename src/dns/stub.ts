// Stub resolver: sends recursive queries to the configured resolvers over UDP, falling back to
// TCP for truncated answers, and caches answers and denials for their TTL.

import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { DNSError, type DNSErrorCode, type DNSResult, type MXRecord, type Resolver, type SRVRecord, type TLSARecord } from './types.js';
import { DomainError, isLoopbackIP, parseDNSName, reverseName } from './domain.js';
import { parseServerAddress, systemServers, type ServerAddress } from './config.js';

export interface StubResolverOptions {
  /** Resolver addresses, "host:port" ("127.0.0.1:53", "[::1]:5353"). Default: /etc/resolv.conf. */
  servers?: string[];
  /** Milliseconds to wait for one answer from one server. Default 5000, as resolv.conf(5). */
  timeout?: number;
  /** Rounds over all servers for timeouts and network errors. Default 2, as resolv.conf(5). */
  attempts?: number;
  /** Maximum number of cached answers and denials; 0 disables the cache. Default 10000. */
  cacheSize?: number;
  /** Clock in milliseconds for cache expiry. Default Date.now. */
  now?: () => number;
}

type QType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME' | 'PTR' | 'NS' | 'SRV' | 'TLSA';

interface Answer {
  /** Records of the queried type at the end of any CNAME chain. */
  records: dnsPacket.Answer[];
  authentic: boolean;
}

type CacheEntry = { expires: number } & ({ answer: Answer } | { error: DNSErrorCode; message: string });

// RFC 6891 6.2.5; 1232 avoids IP fragmentation (DNS Flag Day 2020).
const EDNS_UDP_SIZE = 1232;
// RFC 1034 3.6.2 allows CNAME chains but a resolver must detect loops; no RFC sets a length.
const MAX_CNAMES = 16;
// Cache policy: positive answers at most a day, denials at most three hours (RFC 2308 5).
const MAX_TTL = 86400;
const MAX_NEGATIVE_TTL = 3 * 3600;

/** An error from one exchange with one server. `answered` means the server replied. */
class ExchangeError extends Error {
  constructor(
    readonly code: DNSErrorCode,
    readonly answered: boolean,
    message: string,
  ) {
    super(message);
  }
}

interface Query {
  name: string;
  type: QType;
  edns: boolean;
}

export class StubResolver implements Resolver {
  private readonly servers: ServerAddress[];
  private readonly timeout: number;
  private readonly attempts: number;
  private readonly cacheSize: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<Answer>>();

  constructor(opts: StubResolverOptions = {}) {
    this.servers = (opts.servers ?? systemServers()).map(parseServerAddress);
    if (this.servers.length === 0) throw new Error('no DNS servers configured');
    this.timeout = opts.timeout ?? 5000;
    this.attempts = Math.max(1, opts.attempts ?? 2);
    this.cacheSize = opts.cacheSize ?? 10000;
    this.now = opts.now ?? Date.now;
  }

  async lookupTXT(name: string): Promise<DNSResult<string[]>> {
    const r = await this.query(name, 'TXT');
    // RFC 7208 3.3: the character-strings of one record are joined without spaces. Joining the
    // bytes before decoding keeps UTF-8 sequences that straddle two strings intact.
    const records = r.records.flatMap((a) => (a.type === 'TXT' ? [Buffer.concat([a.data].flat().map((s) => Buffer.from(s))).toString('utf8')] : []));
    return { records, authentic: r.authentic };
  }

  async lookupMX(name: string): Promise<DNSResult<MXRecord[]>> {
    const r = await this.query(name, 'MX');
    const records = r.records.flatMap((a) => (a.type === 'MX' ? [{ preference: a.data.preference ?? 0, exchange: hostName(a.data.exchange) }] : []));
    return { records, authentic: r.authentic };
  }

  lookupA(name: string): Promise<DNSResult<string[]>> {
    return this.strings(name, 'A');
  }

  lookupAAAA(name: string): Promise<DNSResult<string[]>> {
    return this.strings(name, 'AAAA');
  }

  async lookupIP(name: string): Promise<DNSResult<string[]>> {
    const [v4, v6] = await Promise.allSettled([this.lookupA(name), this.lookupAAAA(name)]);
    if (v4.status === 'fulfilled' && v6.status === 'fulfilled') {
      return { records: [...v4.value.records, ...v6.value.records], authentic: v4.value.authentic && v6.value.authentic };
    }
    if (v4.status === 'fulfilled') return v4.value;
    if (v6.status === 'fulfilled') return v6.value;
    const errors = [v4.reason, v6.reason];
    // The more temporary error wins, then NXDOMAIN over NODATA.
    throw errors.find((e) => !(e instanceof DNSError) || e.temporary) ?? errors.find((e) => e.code === 'NXDOMAIN') ?? errors[0];
  }

  async lookupPTR(ip: string): Promise<DNSResult<string[]>> {
    let name: string;
    try {
      name = reverseName(ip);
    } catch (err) {
      // Like an invalid name, an invalid address cannot exist in the DNS.
      throw new DNSError('NXDOMAIN', ip, 'PTR', `dns PTR ${JSON.stringify(ip.slice(0, 64))}: ${(err as Error).message}`);
    }
    return this.strings(name, 'PTR');
  }

  async lookupCNAME(name: string): Promise<DNSResult<string>> {
    const r = await this.strings(name, 'CNAME');
    return { records: r.records[0]!, authentic: r.authentic };
  }

  lookupNS(name: string): Promise<DNSResult<string[]>> {
    return this.strings(name, 'NS');
  }

  async lookupSRV(name: string): Promise<DNSResult<SRVRecord[]>> {
    const r = await this.query(name, 'SRV');
    const records = r.records.flatMap((a) =>
      a.type === 'SRV' ? [{ priority: a.data.priority ?? 0, weight: a.data.weight ?? 0, port: a.data.port, target: hostName(a.data.target) }] : [],
    );
    return { records, authentic: r.authentic };
  }

  async lookupTLSA(name: string): Promise<DNSResult<TLSARecord[]>> {
    const r = await this.query(name, 'TLSA');
    const records = r.records.flatMap((a) =>
      // Copied so the record does not keep the whole message buffer alive.
      a.type === 'TLSA' ? [{ usage: a.data.usage, selector: a.data.selector, matchingType: a.data.matchingType, data: Buffer.from(a.data.certificate) }] : [],
    );
    return { records, authentic: r.authentic };
  }

  /** Drops all cached answers and denials. */
  clearCache(): void {
    this.cache.clear();
  }

  private async strings(name: string, type: 'A' | 'AAAA' | 'CNAME' | 'PTR' | 'NS'): Promise<DNSResult<string[]>> {
    const r = await this.query(name, type);
    const records = r.records.flatMap((a) => (a.type === type ? [type === 'A' || type === 'AAAA' ? a.data : hostName(a.data)] : []));
    return { records, authentic: r.authentic };
  }

  /** Answer from the cache, a lookup already under way, or the network. */
  private async query(input: string, type: QType): Promise<Answer> {
    let name: string;
    try {
      name = parseDNSName(input).ascii;
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      // A name that is not valid cannot exist, so callers treat it like NXDOMAIN.
      throw new DNSError('NXDOMAIN', input, type, `dns ${type}: ${err.message}`);
    }
    const key = `${type} ${name}`;
    const cached = this.cache.get(key);
    if (cached && cached.expires > this.now()) {
      // Refresh the entry's position for least-recently-used eviction.
      this.cache.delete(key);
      this.cache.set(key, cached);
      if ('answer' in cached) return cached.answer;
      throw new DNSError(cached.error, name, type, cached.message);
    }
    this.cache.delete(key);
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.resolve(name, type).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private store(key: string, ttl: number, entry: { answer: Answer } | { error: DNSErrorCode; message: string }): void {
    if (this.cacheSize <= 0 || ttl <= 0) return;
    this.cache.set(key, { expires: this.now() + ttl * 1000, ...entry });
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= this.cacheSize) break;
      this.cache.delete(oldest);
    }
  }

  /** Tries each server in turn, for several rounds while servers do not answer. */
  private async resolve(name: string, type: QType): Promise<Answer> {
    const key = `${type} ${name}`;
    const answered = new Set<ServerAddress>();
    let failure: ExchangeError | undefined;
    for (let round = 0; round < this.attempts; round++) {
      for (const server of this.servers) {
        if (answered.has(server)) continue;
        let response: dnsPacket.DecodedPacket;
        try {
          response = await this.exchange(server, { name, type, edns: true });
        } catch (caught) {
          const err = caught instanceof ExchangeError ? caught : new ExchangeError('NETWORK', false, `${describe(server)}: ${String(caught)}`);
          if (err.answered) answered.add(server);
          // An error the server sent says more than a timeout from another.
          if (!failure || err.answered || !failure.answered) failure = err;
          continue;
        }
        // RFC 4035 3.2.3, RFC 6840 5.7: only a validating resolver on this host is trusted.
        const authentic = response.flag_ad && isLoopbackIP(server.host);
        const result = interpret(response, name, type, authentic);
        if ('answer' in result) {
          this.store(key, result.ttl, { answer: result.answer });
          return result.answer;
        }
        const message = `dns ${type} ${name}: ${result.message}`;
        if (result.ttl !== undefined) this.store(key, result.ttl, { error: result.error, message });
        throw new DNSError(result.error, name, type, message);
      }
      if (answered.size === this.servers.length) break;
    }
    throw new DNSError(failure!.code, name, type, `dns ${type} ${name}: ${failure!.message}`);
  }

  /**
   * One query to one server over UDP, repeated over TCP when truncated (RFC 7766 5), and without
   * EDNS when the server rejects it (RFC 6891 7). Returns NOERROR and NXDOMAIN responses.
   */
  private async exchange(server: ServerAddress, q: Query): Promise<dnsPacket.DecodedPacket> {
    let response = await this.udp(server, q);
    if (response.flag_tc) response = await this.tcp(server, q);
    const rcode = rcodeOf(response);
    if (rcode === 1 && q.edns) return this.exchange(server, { ...q, edns: false });
    if (rcode === 0 || rcode === 3) return response;
    const code: DNSErrorCode = rcode === 1 ? 'FORMERR' : rcode === 2 ? 'SERVFAIL' : rcode === 5 ? 'REFUSED' : 'OTHER';
    throw new ExchangeError(code, true, `${describe(server)} answered with rcode ${rcode}`);
  }

  private udp(server: ServerAddress, q: Query): Promise<dnsPacket.DecodedPacket> {
    const id = randomInt(0x10000);
    const msg = encodeQuery(id, q);
    return new Promise((resolve, reject) => {
      // A fresh socket per query gets a new random source port from the system (RFC 5452 4.5).
      const sock = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
      let finished = false;
      const done = (err: ExchangeError | undefined, res?: dnsPacket.DecodedPacket) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        sock.close();
        if (err) reject(err);
        else resolve(res!);
      };
      const timer = setTimeout(() => done(new ExchangeError('TIMEOUT', false, `no answer from ${describe(server)} over UDP`)), this.timeout);
      sock.on('error', (err) => done(new ExchangeError('NETWORK', false, `${describe(server)} over UDP: ${err.message}`)));
      sock.on('message', (data) => {
        // RFC 5452 9.1: anything that is not the answer to our question is ignored, so that
        // forged or stray datagrams cannot end the exchange.
        if (data.length < 2 || data.readUInt16BE(0) !== id) return;
        const res = decodeResponse(data, id, q);
        if (res === 'mismatch') return;
        done(typeof res === 'string' ? new ExchangeError('FORMERR', true, `bad answer from ${describe(server)} over UDP: ${res}`) : undefined, res as dnsPacket.DecodedPacket);
      });
      // Connected, so the kernel drops datagrams from other addresses and reports refused ports.
      sock.connect(server.port, server.host, (err?: Error) => {
        if (err) done(new ExchangeError('NETWORK', false, `${describe(server)} over UDP: ${err.message}`));
        else sock.send(msg);
      });
    });
  }

  private tcp(server: ServerAddress, q: Query): Promise<dnsPacket.DecodedPacket> {
    const id = randomInt(0x10000);
    const msg = encodeQuery(id, q);
    const frame = Buffer.alloc(2 + msg.length);
    // RFC 1035 4.2.2: two-octet length prefix.
    frame.writeUInt16BE(msg.length);
    msg.copy(frame, 2);
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: server.host, port: server.port });
      const chunks: Buffer[] = [];
      let received = 0;
      let finished = false;
      const done = (err: ExchangeError | undefined, res?: dnsPacket.DecodedPacket) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err);
        else resolve(res!);
      };
      const timer = setTimeout(() => done(new ExchangeError('TIMEOUT', false, `no answer from ${describe(server)} over TCP`)), this.timeout);
      sock.on('error', (err) => done(new ExchangeError('NETWORK', false, `${describe(server)} over TCP: ${err.message}`)));
      sock.on('connect', () => sock.write(frame));
      sock.on('end', () => done(new ExchangeError('NETWORK', false, `${describe(server)} closed the TCP connection early`)));
      sock.on('data', (chunk) => {
        chunks.push(chunk);
        received += chunk.length;
        if (received < 2) return;
        const all = Buffer.concat(chunks);
        const len = all.readUInt16BE(0);
        // At most 2 + 65535 bytes are kept: the rest of the stream is not read.
        if (received < 2 + len) {
          chunks.length = 0;
          chunks.push(all);
          return;
        }
        const res = decodeResponse(all.subarray(2, 2 + len), id, q);
        // Only one query is sent on this connection, so any other answer is an error.
        done(typeof res === 'string' ? new ExchangeError('FORMERR', true, `bad answer from ${describe(server)} over TCP: ${res}`) : undefined, res as dnsPacket.DecodedPacket);
      });
    });
  }
}

function encodeQuery(id: number, q: Query): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    // RFC 6840 5.7: AD in a query asks a validating resolver to report authenticity.
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
    questions: [{ name: q.name, type: q.type, class: 'IN' }],
    additionals: q.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
  });
}

/** The decoded response, 'mismatch' if it answers another query, or a reason it is malformed. */
function decodeResponse(data: Buffer, id: number, q: Query): dnsPacket.DecodedPacket | string {
  let res: dnsPacket.DecodedPacket;
  try {
    res = dnsPacket.decode(data);
  } catch (err) {
    return `malformed message (${(err as Error).message})`;
  }
  const question = res.questions?.[0];
  // RFC 5452 9.1: ID, question name (compared case-insensitively, RFC 4343) and type must match.
  if (res.id !== id || !res.flag_qr || res.questions?.length !== 1 || !question) return 'mismatch';
  if (question.name.toLowerCase() !== q.name || question.type !== q.type || question.class !== 'IN') return 'mismatch';
  return res;
}

/** Four-bit RCODE extended by the OPT record's upper bits (RFC 6891 6.1.3). */
function rcodeOf(res: dnsPacket.DecodedPacket): number {
  const opt = res.additionals?.find((a): a is dnsPacket.OptAnswer => a.type === 'OPT');
  return ((opt?.extendedRcode ?? 0) << 4) | ((res.flags ?? 0) & 0xf);
}

type Interpretation = { answer: Answer; ttl: number } | { error: 'NXDOMAIN' | 'NODATA' | 'OTHER'; message: string; ttl?: number };

/** Follows CNAMEs in the answer section and classifies the response (RFC 1034 4.3.2, RFC 2308 2). */
function interpret(res: dnsPacket.DecodedPacket, qname: string, type: QType, authentic: boolean): Interpretation {
  const answers = (res.answers ?? []).filter((a) => a.type !== 'OPT' && (a.class ?? 'IN') === 'IN') as Exclude<dnsPacket.Answer, dnsPacket.OptAnswer>[];
  let name = qname;
  let ttl = MAX_TTL;
  const seen = new Set<string>();
  for (;;) {
    seen.add(name);
    const owned = answers.filter((a) => a.name.toLowerCase() === name);
    const records = owned.filter((a) => a.type === type);
    if (records.length > 0) {
      for (const r of records) ttl = Math.min(ttl, ttlOf(r));
      return { answer: { records, authentic }, ttl };
    }
    const cname = type === 'CNAME' ? undefined : owned.find((a) => a.type === 'CNAME');
    if (!cname || cname.type !== 'CNAME') break;
    ttl = Math.min(ttl, ttlOf(cname));
    name = hostName(cname.data);
    if (seen.has(name)) return { error: 'OTHER', message: `CNAME loop at ${name}` };
    if (seen.size > MAX_CNAMES) return { error: 'OTHER', message: `more than ${MAX_CNAMES} CNAMEs` };
  }
  // RFC 2308 5: a denial is cached for the SOA's TTL bounded by its MINIMUM field, and not at all
  // without an SOA. RFC 6604 2.1: after CNAMEs, the RCODE is about the last name.
  const soa = (res.authorities ?? []).find((a) => a.type === 'SOA');
  const negativeTTL = soa?.type === 'SOA' ? Math.min(ttl, ttlOf(soa), soa.data.minimum ?? 0, MAX_NEGATIVE_TTL) : undefined;
  const via = name === qname ? '' : ` (via CNAME to ${name})`;
  if (rcodeOf(res) === 3) return { error: 'NXDOMAIN', message: `no such domain${via}`, ttl: negativeTTL };
  return { error: 'NODATA', message: `no ${type} records${via}`, ttl: negativeTTL };
}

/** RFC 2181 8: a TTL with the most significant bit set is treated as zero. */
function ttlOf(a: { ttl?: number }): number {
  const t = a.ttl ?? 0;
  return t >= 0x80000000 ? 0 : t;
}

/** Lower case without trailing dot; the root "." becomes "" (null MX, RFC 7505; "no service", RFC 2782). */
function hostName(name: string): string {
  return name === '.' ? '' : name.toLowerCase().replace(/\.$/, '');
}

function describe(s: ServerAddress): string {
  return net.isIPv6(s.host) ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}
