// Shared set-up for the DMARC tests: the scriptable DNS server on loopback and a resolver for it.

import type { TestContext } from 'node:test';
import { verify, type VerifyOptions } from '../../src/dmarc/verify.js';
import { verify as dkimVerify } from '../../src/dkim/verify.js';
import { StubResolver } from '../../src/dns/stub.js';
import type { Resolver } from '../../src/dns/types.js';
import { parseHeader } from '../../src/message/header.js';
import { verify as spfVerify } from '../../src/spf/evaluate.js';
import { startDNSServer, type DNSServer, type RecordSets } from '../helpers/dnsserver.js';

export async function zone(t: TestContext, records: Record<string, RecordSets>): Promise<{ dns: DNSServer; resolver: StubResolver }> {
  const dns = await startDNSServer({ records });
  t.after(() => dns.close());
  // No cache, so tests may change records between lookups; short timeouts for the timeout cases.
  const resolver = new StubResolver({ servers: [dns.address], timeout: 200, attempts: 1, cacheSize: 0 });
  return { dns, resolver };
}

/** The names queried, lower case, in order. */
export function queried(dns: DNSServer): string[] {
  return dns.queries.map((q) => q.name.toLowerCase());
}

export interface Connection {
  ip: string;
  /** MAIL FROM address, "" for the null reverse-path. */
  mailFrom: string;
  helo: string;
}

/** What a receiving server does with a message: SPF, DKIM, then DMARC from their results. */
export async function authenticate(message: Buffer, conn: Connection, resolver: Resolver, opts: VerifyOptions = {}) {
  const spf = await spfVerify({ ...conn, receivingHost: 'mx.postern.example' }, resolver);
  const spfResult = spf.mailFrom ?? spf.result;
  const dkim = await dkimVerify(message, resolver);
  const dmarc = await verify({ from: parseHeader(message), spf: spfResult, dkim }, resolver, opts);
  return { spf, spfResult, dkim, dmarc };
}
