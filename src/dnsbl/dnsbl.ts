// DNS blocklists (RFC 5782): is an IP listed in a zone, and does the zone answer sanely.
import { isIPv4, isIPv6 } from 'node:net';
import type { Resolver } from '../dns/types.js';
import type { Clock } from '../limits/limiter.js';
import { expandV6 } from './ip.js';

export type DNSBLStatus = 'pass' | 'fail' | 'temperror';

export interface DNSBLResult {
  /** fail: the IP is listed; pass: it is not; temperror: no answer now. */
  status: DNSBLStatus;
  /** The zone's TXT record for a listed IP, if any (RFC 5782 2.1). */
  explanation?: string;
  error?: string;
}

/** The name to query: IPv4 octets reversed (RFC 5782 2.1), IPv6 nibbles reversed (RFC 5782 2.4). */
export function queryName(ip: string, zone: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1] ?? ip;
  if (isIPv4(v4)) return `${v4.split('.').reverse().join('.')}.${zone}`;
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  const nibbles = expandV6(ip)
    .map((g) => g.toString(16).padStart(4, '0'))
    .join('')
    .split('');
  return `${nibbles.reverse().join('.')}.${zone}`;
}

export async function lookup(resolver: Resolver, zone: string, ip: string): Promise<DNSBLResult> {
  const name = queryName(ip, zone.replace(/\.$/, ''));
  let addrs: string[];
  try {
    addrs = (await resolver.lookupA(name)).records;
  } catch (e) {
    if ((e as { notFound?: boolean }).notFound) return { status: 'pass' };
    return { status: 'temperror', error: (e as Error).message };
  }
  // RFC 5782 2.1: listings are A records in 127.0.0.0/8; anything else is a broken zone.
  if (!addrs.some((a) => a.startsWith('127.'))) return { status: 'temperror', error: `unexpected answer ${addrs.join(', ')}` };
  let explanation: string | undefined;
  try {
    explanation = (await resolver.lookupTXT(name)).records.join(' ') || undefined;
  } catch {
    // The explanation is optional.
  }
  return { status: 'fail', explanation };
}

/**
 * Checks a zone as RFC 5782 5 asks of every zone: 127.0.0.2 is listed, 127.0.0.1 is not. A
 * zone that lists everything (e.g. after its domain lapsed) would otherwise refuse all mail.
 * Returns undefined when healthy, else what is wrong.
 */
export async function checkHealth(resolver: Resolver, zone: string): Promise<string | undefined> {
  const listed = await lookup(resolver, zone, '127.0.0.2');
  if (listed.status !== 'fail') return `127.0.0.2 should be listed, got ${listed.status}${listed.error ? `: ${listed.error}` : ''}`;
  const clean = await lookup(resolver, zone, '127.0.0.1');
  if (clean.status !== 'pass') return `127.0.0.1 should not be listed, got ${clean.status}${clean.error ? `: ${clean.error}` : ''}`;
  return undefined;
}

const healthTTL = 4 * 3600_000;

/** The configured zones, each used only while its last health check (at most 4 hours old) passed. */
export class DNSBLs {
  private readonly health = new Map<string, { at: number; problem?: string }>();

  constructor(
    private readonly resolver: Resolver,
    readonly zones: string[],
    private readonly clock: Clock,
  ) {}

  async healthy(zone: string): Promise<boolean> {
    const now = this.clock.now();
    let h = this.health.get(zone);
    if (!h || now - h.at > healthTTL) {
      h = { at: now, problem: await checkHealth(this.resolver, zone) };
      this.health.set(zone, h);
    }
    return h.problem === undefined;
  }

  /** The first healthy zone listing the IP, if any; zones are asked one after another. */
  async listed(ip: string): Promise<{ zone: string; explanation?: string } | undefined> {
    for (const zone of this.zones) {
      if (!(await this.healthy(zone))) continue;
      const r = await lookup(this.resolver, zone, ip);
      if (r.status === 'fail') return { zone, explanation: r.explanation };
    }
    return undefined;
  }
}
