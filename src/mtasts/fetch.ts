// Fetching an MTA-STS policy over HTTPS (RFC 8461 3.3).

import http from 'node:http';
import tls from 'node:tls';
import { parseDomain } from '../dns/domain.js';
import type { Resolver } from '../dns/types.js';
import { resolverLookup } from '../dns/lookup.js';
import { MAX_POLICY_SIZE, parsePolicy, type Policy } from './policy.js';

export interface FetchOptions {
  /** Host name or IP address to connect to instead of mta-sts.<domain>; TLS still checks mta-sts.<domain>. */
  host?: string;
  /** Default 443. */
  port?: number;
  /** Trusted CA certificates; node's bundled roots when absent. */
  ca?: tls.SecureContextOptions['ca'];
  /** Resolves the host name; the system resolver when absent. */
  resolver?: Resolver;
  /** Milliseconds for the whole fetch, from name lookup to the last byte. Default 30000. */
  timeout?: number;
}

/** Why a policy could not be had, as the TLS report result type for it (RFC 8460 4.3.2). */
export type PolicyFailureType = 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid';

export class PolicyFetchError extends Error {
  override name = 'PolicyFetchError';
  constructor(
    readonly resultType: PolicyFailureType,
    message: string,
  ) {
    super(message);
  }
}

export interface FetchedPolicy {
  policy: Policy;
  /** The policy file as served. */
  text: string;
}

/** Fetches and parses the policy of a domain; throws PolicyFetchError. */
export async function fetchPolicy(domain: string, opts: FetchOptions = {}): Promise<FetchedPolicy> {
  const name = `mta-sts.${parseDomain(domain).ascii}`;
  const url = `https://${name}/.well-known/mta-sts.txt`;
  const timeout = opts.timeout ?? 30_000;
  const text = await new Promise<string>((resolve, reject) => {
    let finished = false;
    let req: http.ClientRequest | undefined;
    const finish = (err: PolicyFetchError | undefined, body?: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req?.destroy();
      socket.destroy();
      if (err) reject(err);
      else resolve(body!);
    };
    const fetchError = (msg: string) => new PolicyFetchError('sts-policy-fetch-error', `${url}: ${msg}`);
    const invalid = (msg: string) => new PolicyFetchError('sts-policy-invalid', `${url}: ${msg}`);
    const timer = setTimeout(() => finish(fetchError(`no complete response within ${timeout} ms`)), timeout);
    const socket = tls.connect({
      host: opts.host ?? name,
      port: opts.port ?? 443,
      servername: name,
      ca: opts.ca,
      ALPNProtocols: ['http/1.1'],
      lookup: opts.resolver && resolverLookup(opts.resolver),
      // Checked below, so that certificate problems are told apart from others (RFC 8460 4.3.2).
      rejectUnauthorized: false,
    });
    socket.on('error', (err) => finish(fetchError(err.message)));
    socket.once('secureConnect', () => {
      // RFC 8461 3.3: the certificate must be valid for the policy host (RFC 6125).
      const pkix = socket.authorized ? tls.checkServerIdentity(name, socket.getPeerCertificate())?.message : `certificate not valid: ${socket.authorizationError}`;
      if (pkix !== undefined) return finish(new PolicyFetchError('sts-webpki-invalid', `${url}: ${pkix}`));
      req = http.request(
        {
          createConnection: () => socket,
          method: 'GET',
          path: '/.well-known/mta-sts.txt',
          headers: { Host: name, Accept: 'text/plain', 'User-Agent': 'Postern' },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          // RFC 8461 3.3: only 200 counts, and redirects are not followed.
          if (status !== 200) {
            const location = status >= 300 && status < 400 && res.headers.location;
            return finish(fetchError(location ? `HTTP status ${status}, redirect to ${JSON.stringify(location.slice(0, 200))} not followed` : `HTTP status ${status}`));
          }
          // RFC 8461 3.2: the policy is text/plain; parameters such as charset do not matter.
          const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
          if (type !== 'text/plain') return finish(invalid(`content type ${JSON.stringify(type.slice(0, 100))}, expected text/plain`));
          if (Number(res.headers['content-length'] ?? 0) > MAX_POLICY_SIZE) return finish(invalid(`policy larger than ${MAX_POLICY_SIZE} bytes`));
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_POLICY_SIZE) return finish(invalid(`policy larger than ${MAX_POLICY_SIZE} bytes`));
            chunks.push(chunk);
          });
          res.on('end', () => finish(undefined, Buffer.concat(chunks).toString('utf8')));
          res.on('aborted', () => finish(fetchError('connection closed before the end of the response')));
          res.on('error', (err) => finish(fetchError(err.message)));
        },
      );
      req.on('error', (err) => finish(fetchError(err.message)));
      req.end();
    });
  });
  try {
    return { policy: parsePolicy(text), text };
  } catch (err) {
    throw new PolicyFetchError('sts-policy-invalid', `${url}: ${(err as Error).message}`);
  }
}
