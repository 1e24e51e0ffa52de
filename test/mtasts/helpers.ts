// An HTTPS server on loopback standing in for mta-sts.<domain>, with certificates from a test CA.

import https from 'node:https';
import type http from 'node:http';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Issued } from '../../src/tls/selfsigned.js';
import { issueCert } from '../dane/certs.js';

export const ca = issueCert({ names: ['Postern Test CA'], isCA: true });
export const otherCA = issueCert({ names: ['Other Test CA'], isCA: true });

export function leafFor(names: string[], issuer: Issued = ca, days?: number): Issued {
  return issueCert({ names, days, issuer: { certDER: issuer.certDER, key: issuer.key, name: issuer.name } });
}

export interface Seen {
  path: string;
  host: string | undefined;
  servername: string | undefined;
}

export interface PolicyServer {
  port: number;
  /** Requests received, in order. */
  seen: Seen[];
  /** Replaces the request handler. */
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  close(): Promise<void>;
}

/** Serves `policy` as text/plain until `handle` is replaced. */
export async function startPolicyServer(cert: Issued, policy = ''): Promise<PolicyServer> {
  const sockets = new Set<net.Socket>();
  const srv: PolicyServer = {
    port: 0,
    seen: [],
    handle: (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(policy);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = https.createServer({ key: cert.keyPEM, cert: cert.certPEM }, (req, res) => {
    srv.seen.push({ path: req.url ?? '', host: req.headers.host, servername: (req.socket as tls.TLSSocket).servername || undefined });
    srv.handle(req, res);
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Failed handshakes are expected in tests of bad certificates.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  srv.port = (server.address() as net.AddressInfo).port;
  return srv;
}

export const enforcePolicy = 'version: STSv1\nmode: enforce\nmx: mx.example.org\nmx: *.backup.example.org\nmax_age: 86400\n';
