// The DNS resolver a configuration names, for the server and the command line.
import { StubResolver } from '../dns/stub.js';
import { DNSError, type Resolver } from '../dns/types.js';
import type { StaticConfig } from '../config/static.js';

/**
 * localserve must work without network or DNS: lookups give up quickly there, and once the
 * resolver has not answered, lookups fail at once for a minute, so the checks that use them
 * record a temporary error instead of delaying each message.
 */
export function resolverFor(config: StaticConfig, opts: { localserve?: boolean; now?: () => number } = {}): Resolver {
  const stub = new StubResolver({
    servers: config.Resolver ? [config.Resolver] : undefined,
    timeout: opts.localserve ? 300 : 5000,
    attempts: opts.localserve ? 1 : 2,
    now: opts.now,
  });
  return opts.localserve ? failFast(stub, opts.now ?? Date.now) : stub;
}

function failFast(r: Resolver, now: () => number): Resolver {
  let downUntil = 0;
  const wrap =
    <A extends unknown[], T>(fn: (...a: A) => Promise<T>) =>
    async (...a: A): Promise<T> => {
      if (now() < downUntil) throw new DNSError('TIMEOUT', String(a[0]), '', 'resolver not answering');
      try {
        return await fn(...a);
      } catch (e) {
        if (e instanceof DNSError && (e.code === 'TIMEOUT' || e.code === 'NETWORK')) downUntil = now() + 60_000;
        throw e;
      }
    };
  return {
    lookupTXT: wrap((n) => r.lookupTXT(n)),
    lookupMX: wrap((n) => r.lookupMX(n)),
    lookupA: wrap((n) => r.lookupA(n)),
    lookupAAAA: wrap((n) => r.lookupAAAA(n)),
    lookupIP: wrap((n) => r.lookupIP(n)),
    lookupPTR: wrap((n) => r.lookupPTR(n)),
    lookupCNAME: wrap((n) => r.lookupCNAME(n)),
    lookupNS: wrap((n) => r.lookupNS(n)),
    lookupSRV: wrap((n) => r.lookupSRV(n)),
    lookupTLSA: wrap((n) => r.lookupTLSA(n)),
  };
}
