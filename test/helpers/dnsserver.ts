// A scriptable DNS server for tests, answering over UDP and TCP on one loopback port, like a
// recursive resolver that knows the whole world from an in-memory zone map.
//
//   import { startDNSServer } from '../helpers/dnsserver.js';
//   const dns = await startDNSServer({
//     records: {
//       'example.org': { MX: [{ preference: 10, exchange: 'mx.example.org' }], TXT: ['v=spf1 -all'] },
//       'mx.example.org': { A: ['192.0.2.1'], AAAA: ['2001:db8::1'], ttl: 60 },
//       'www.example.org': { CNAME: 'example.org' },
//     },
//   });
//   const resolver = new StubResolver({ servers: [dns.address] });   // dns.address is "127.0.0.1:PORT"
//   dns.set('example.org', 'TXT', ['v=spf1 ip4:192.0.2.0/24 -all']);  // replace; undefined removes
//   dns.behave('example.org', 'servfail');       // every later query for the name
//   dns.behave('example.org', 'timeout', 1);     // only the next query, then normal again
//   dns.behave('example.org', null);             // clear the name's behaviours
//   dns.authentic = true;                        // AD bit on every answer ('ad'/'noad' per name win)
//   dns.queries                                  // [{ name, type, transport: 'udp' | 'tcp', ... }]
//   await dns.close();
//
// Record values: A/AAAA/NS/PTR are lists of strings; CNAME is one string; MX, SRV and TLSA use
// the shapes of src/dns/types.ts (MX exchange "" is a null MX; TLSA data may be a hex string).
// A TXT record is a string, cut into 255-byte character-strings as needed, or a list of strings
// sent as separate character-strings. Each name's "ttl" applies to its records (default 300).
//
// Answers: CNAME chains are followed inside the zone map and put in the answer; a name that is
// missing (and has no descendants) gets NXDOMAIN, a name with other types NODATA (NOERROR, empty
// answer), both with an SOA whose TTL and MINIMUM are negativeTTL (default 60). UDP answers larger
// than the client's EDNS size (512 without EDNS) are truncated, so the client must retry over TCP.
//
// Behaviours, per name or '*' for every name:
//   servfail, refused   answer with that RCODE
//   timeout             do not answer (UDP or TCP)
//   truncate            answer over UDP with TC=1 and no records; TCP answers normally
//   ad, noad            set or clear the AD bit regardless of dns.authentic
//   noedns              answer FORMERR to queries that carry an EDNS OPT record
//   nosoa               negative answers come without SOA (so must not be cached)
//   spoof               over UDP, first send junk, a reply with a wrong ID and one for another
//                       question, then the real answer
//   upcase              echo the question and owner names in upper case

import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { MXRecord, SRVRecord, TLSARecord } from '../../src/dns/types.js';

export interface RecordSets {
  A?: string[];
  AAAA?: string[];
  MX?: MXRecord[];
  TXT?: (string | string[])[];
  CNAME?: string;
  PTR?: string[];
  NS?: string[];
  SRV?: SRVRecord[];
  TLSA?: (Omit<TLSARecord, 'data'> & { data: Buffer | string })[];
  ttl?: number;
}

export type Behaviour = 'servfail' | 'refused' | 'timeout' | 'truncate' | 'ad' | 'noad' | 'noedns' | 'nosoa' | 'spoof' | 'upcase';

export interface DNSServerOptions {
  records?: Record<string, RecordSets>;
  /** Loopback address to listen on: "127.0.0.1" (default) or "::1". */
  host?: string;
  /** Set the AD bit on all answers. */
  authentic?: boolean;
  /** TTL of records of names without their own ttl. Default 300. */
  ttl?: number;
  /** TTL and MINIMUM of the SOA in negative answers. Default 60. */
  negativeTTL?: number;
}

export interface LoggedQuery {
  /** Question name as received (case preserved), without trailing dot. */
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
  id: number;
  /** Source port of the query. */
  port: number;
  rd: boolean;
  ad: boolean;
  /** EDNS UDP payload size, undefined without an OPT record. */
  udpSize?: number;
}

export interface DNSServer {
  /** "127.0.0.1:PORT" or "[::1]:PORT", usable as a StubResolver server. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Every query received, in order. Tests may clear it with `dns.queries.length = 0`. */
  readonly queries: LoggedQuery[];
  authentic: boolean;
  set<K extends keyof RecordSets>(name: string, key: K, value: RecordSets[K]): void;
  /** Adds a behaviour for the name ('*' for all) for the next `times` queries (default: all); null clears. */
  behave(name: string, behaviour: Behaviour | null, times?: number): void;
  close(): Promise<void>;
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 };

function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

export async function startDNSServer(opts: DNSServerOptions = {}): Promise<DNSServer> {
  const host = opts.host ?? '127.0.0.1';
  const defaultTTL = opts.ttl ?? 300;
  const negativeTTL = opts.negativeTTL ?? 60;
  const zone = new Map<string, RecordSets>();
  for (const [name, sets] of Object.entries(opts.records ?? {})) zone.set(norm(name), { ...sets });
  const behaviours = new Map<string, { behaviour: Behaviour; left: number }[]>();
  const queries: LoggedQuery[] = [];
  const conns = new Set<net.Socket>();

  const exists = (name: string) => zone.has(name) || [...zone.keys()].some((k) => k.endsWith('.' + name));

  // Behaviours for this query, consuming one use of each limited one.
  function active(name: string): Set<Behaviour> {
    const out = new Set<Behaviour>();
    for (const key of [name, '*']) {
      const list = behaviours.get(key);
      if (!list) continue;
      for (const b of list) {
        out.add(b.behaviour);
        b.left--;
      }
      const left = list.filter((b) => b.left > 0);
      if (left.length > 0) behaviours.set(key, left);
      else behaviours.delete(key);
    }
    return out;
  }

  function records(owner: string, type: string, sets: RecordSets): dnsPacket.Answer[] {
    const ttl = sets.ttl ?? defaultTTL;
    const base = { name: owner, ttl };
    switch (type) {
      case 'A':
      case 'AAAA':
      case 'NS':
      case 'PTR':
        return (sets[type] ?? []).map((data) => ({ ...base, type, data }));
      case 'CNAME':
        return sets.CNAME === undefined ? [] : [{ ...base, type, data: sets.CNAME }];
      case 'MX':
        return (sets.MX ?? []).map((mx) => ({ ...base, type, data: { preference: mx.preference, exchange: mx.exchange || '.' } }));
      case 'SRV':
        return (sets.SRV ?? []).map((srv) => ({ ...base, type, data: srv }));
      case 'TLSA':
        return (sets.TLSA ?? []).map((t) => ({
          ...base,
          type,
          data: { ...t, certificate: typeof t.data === 'string' ? Buffer.from(t.data, 'hex') : t.data },
        }));
      case 'TXT':
        return (sets.TXT ?? []).map((txt) => ({ ...base, type, data: characterStrings(txt) }));
      default:
        return [];
    }
  }

  function answer(query: dnsPacket.DecodedPacket, transport: 'udp' | 'tcp', port: number): Buffer[] {
    const q = query.questions?.[0];
    const opt = query.additionals?.find((a) => a.type === 'OPT') as dnsPacket.OptAnswer | undefined;
    if (!q || query.questions!.length !== 1) return [encode(query, RCODE.FORMERR, [], [], false)];
    const qname = norm(q.name);
    queries.push({ name: q.name.replace(/\.$/, ''), type: q.type, transport, id: query.id ?? 0, port, rd: query.flag_rd, ad: query.flag_ad, udpSize: opt?.udpPayloadSize });
    const b = active(qname);
    const ad = b.has('ad') || (server.authentic && !b.has('noad'));
    if (b.has('timeout')) return [];
    if (b.has('servfail')) return [encode(query, RCODE.SERVFAIL, [], [], ad)];
    if (b.has('refused')) return [encode(query, RCODE.REFUSED, [], [], ad)];
    if (b.has('noedns') && opt) return [encode(query, RCODE.FORMERR, [], [], false, false)];

    const answers: dnsPacket.Answer[] = [];
    let name = qname;
    const seen = new Set<string>();
    for (;;) {
      seen.add(name);
      const sets = zone.get(name);
      const found = sets ? records(name, q.type, sets) : [];
      if (found.length > 0 || !sets?.CNAME || q.type === 'CNAME') {
        answers.push(...found);
        break;
      }
      answers.push(...records(name, 'CNAME', sets));
      name = norm(sets.CNAME);
      if (seen.has(name)) break;
    }
    const rcode = exists(name) ? RCODE.NOERROR : RCODE.NXDOMAIN;
    const soa: dnsPacket.Answer[] =
      answers.some((a) => a.type === q.type) || b.has('nosoa')
        ? []
        : [{ name: name.split('.').slice(-2).join('.'), type: 'SOA', ttl: negativeTTL, data: { mname: 'ns.invalid', rname: 'hostmaster.invalid', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: negativeTTL } }];
    if (b.has('upcase')) {
      q.name = q.name.toUpperCase();
      for (const a of answers) a.name = a.name.toUpperCase();
    }
    const full = encode(query, rcode, answers, soa, ad, !!opt);
    if (transport === 'tcp') return [full];
    const limit = Math.max(512, opt?.udpPayloadSize ?? 512);
    if (b.has('truncate') || full.length > limit) return [encode(query, rcode, [], [], ad, !!opt, true)];
    if (!b.has('spoof')) return [full];
    const wrongID = encode({ ...query, id: (query.id! + 1) & 0xffff }, rcode, [], [], ad);
    const wrongQuestion = encode({ ...query, questions: [{ ...q, name: 'other.' + q.name }] }, rcode, [], [], ad);
    return [Buffer.from([1, 2, 3]), wrongID, wrongQuestion, full];
  }

  const { udp, tcp, port } = await listenBoth(host);
  tcp.on('connection', (sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        for (const out of handle(msg, 'tcp', sock.remotePort ?? 0)) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          sock.write(Buffer.concat([len, out]));
        }
      }
    });
  });
  // Replies to clients that went away must not stop the server.
  udp.on('error', () => {});
  udp.on('message', (msg, rinfo) => {
    for (const out of handle(msg, 'udp', rinfo.port)) udp.send(out, rinfo.port, rinfo.address);
  });

  function handle(msg: Buffer, transport: 'udp' | 'tcp', port: number): Buffer[] {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return [];
    }
    return query.type === 'query' ? answer(query, transport, port) : [];
  }

  const server: DNSServer = {
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    host,
    port,
    queries,
    authentic: opts.authentic ?? false,
    set(name, key, value) {
      const n = norm(name);
      const sets = zone.get(n) ?? {};
      if (value === undefined) delete sets[key];
      else sets[key] = value;
      if (Object.keys(sets).length === 0) zone.delete(n);
      else zone.set(n, sets);
    },
    behave(name, behaviour, times = Infinity) {
      const n = name === '*' ? name : norm(name);
      if (behaviour === null) behaviours.delete(n);
      else behaviours.set(n, [...(behaviours.get(n) ?? []), { behaviour, left: times }]);
    },
    async close() {
      for (const c of conns) c.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
  return server;
}

function characterStrings(txt: string | string[]): Buffer[] {
  if (Array.isArray(txt)) {
    return txt.map((s) => {
      const b = Buffer.from(s);
      if (b.length > 255) throw new Error('TXT character-string longer than 255 bytes');
      return b;
    });
  }
  const b = Buffer.from(txt);
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += 255) out.push(b.subarray(i, i + 255));
  return out.length > 0 ? out : [Buffer.alloc(0)];
}

function encode(
  query: dnsPacket.DecodedPacket,
  rcode: number,
  answers: dnsPacket.Answer[],
  authorities: dnsPacket.Answer[],
  ad: boolean,
  edns = false,
  truncated = false,
): Buffer {
  let flags = rcode | dnsPacket.RECURSION_AVAILABLE | (query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0);
  if (ad) flags |= dnsPacket.AUTHENTIC_DATA;
  if (truncated) flags |= dnsPacket.TRUNCATED_RESPONSE;
  return dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags,
    questions: query.questions,
    answers,
    authorities,
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
  });
}

// UDP and TCP on the same port number: take a free UDP port, then try TCP on it.
async function listenBoth(host: string): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  for (let i = 0; i < 20; i++) {
    const udp = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const port = udp.address().port;
    const tcp = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
    if (ok) return { udp, tcp, port };
    await new Promise<void>((r) => udp.close(() => r()));
  }
  throw new Error('no free port for both UDP and TCP');
}
