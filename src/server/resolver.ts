// The DNS resolver a configuration names, for the server and the command line.
import { StubResolver } from '../dns/stub.js';
import type { Resolver } from '../dns/types.js';
import type { StaticConfig } from '../config/static.js';

/**
 * localserve must work without network or DNS: lookups give up quickly there, and the
 * checks that use them record a temporary error instead of delaying the message.
 */
export function resolverFor(config: StaticConfig, opts: { localserve?: boolean; now?: () => number } = {}): Resolver {
  return new StubResolver({
    servers: config.Resolver ? [config.Resolver] : undefined,
    timeout: opts.localserve ? 300 : 5000,
    attempts: opts.localserve ? 1 : 2,
    now: opts.now,
  });
}
