// Name resolution for Node's sockets and HTTP clients through Postern's own resolver, so that
// outgoing HTTPS (MTA-STS policies, TLS reports) uses the configured DNS server.
import { isIP, type LookupFunction } from 'node:net';
import type { LookupAddress } from 'node:dns';
import type { Resolver } from './types.js';

/** A lookup function for net.connect, tls.connect and http.request that asks the given resolver. */
export function resolverLookup(resolver: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    const want = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    resolver.lookupIP(hostname).then(
      (r) => {
        const all: LookupAddress[] = r.records.map((address) => ({ address, family: isIP(address) })).filter((a) => want === 0 || a.family === want);
        if (all.length === 0) return callback(Object.assign(new Error(`no addresses for ${hostname}`), { code: 'ENOTFOUND' }), '');
        if (options.all) callback(null, all);
        else callback(null, all[0]!.address, all[0]!.family);
      },
      (err: Error) => callback(err, ''),
    );
  };
}
