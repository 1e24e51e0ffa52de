// DANE checks on real TLS handshakes over loopback: a node TLS server presents certificates, the
// client side checks what it received. openssl s_client, with its own DANE implementation, judges
// the same handshakes as an independent oracle.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type net from 'node:net';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { verifyDANE } from '../../src/dane/verify.js';
import { lookupDANE } from '../../src/dane/lookup.js';
import { formatTLSA, spkiOf } from '../../src/dane/tlsa.js';
import { StubResolver } from '../../src/dns/stub.js';
import type { TLSARecord } from '../../src/dns/types.js';
import type { Issued } from '../../src/tls/selfsigned.js';
import { startDNSServer } from '../helpers/dnsserver.js';
import { intermediate, issueCert, leaf, leafUnder, root, selfSigned, selfSignedFor, tlsa } from './certs.js';

interface Server {
  port: number;
  servernames: (string | undefined)[];
  close(): Promise<void>;
}

async function serve(cert: Issued, chain: Issued[] = []): Promise<Server> {
  const servernames: (string | undefined)[] = [];
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key: cert.keyPEM, cert: [cert, ...chain].map((c) => c.certPEM).join('') }, (s) => {
    servernames.push(s.servername || undefined);
    s.end();
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    servernames,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The chain as node links it, leaf first, as the SMTP client passes it to its verify hook. */
function peerChain(s: tls.TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  for (let c: tls.DetailedPeerCertificate | undefined = s.getPeerCertificate(true); c?.raw && out.length < 16; c = c.issuerCertificate) {
    out.push(c.raw);
    if (c.issuerCertificate === c) break;
  }
  return out;
}

/** Handshakes without PKIX checks and returns the presented chain once the server hung up. */
function handshake(port: number, servername: string, opts: tls.ConnectionOptions = {}): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    let chain: Buffer[] = [];
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ...opts }, () => (chain = peerChain(s)));
    s.on('error', reject);
    s.on('close', () => resolve(chain));
    s.resume();
  });
}

const chainServer = await serve(leaf, [intermediate]);
const selfServer = await serve(selfSigned);
const expiredSelf = selfSignedFor(['mx.example.org'], -1);
const expiredSelfServer = await serve(expiredSelf);
const expiredLeafServer = await serve(leafUnder(intermediate, ['mx.example.org'], -1), [intermediate]);
const caLeaf = issueCert({ names: ['mx.example.org'], isCA: true });
const caLeafServer = await serve(caLeaf);
after(() => Promise.all([chainServer, selfServer, expiredSelfServer, expiredLeafServer, caLeafServer].map((s) => s.close())));

const names = ['mx.example.org'];
const full = (usage: number, selector: number, c: Issued): TLSARecord => ({ usage, selector, matchingType: 0, data: selector === 0 ? c.certDER : spkiOf(c.certDER) });

interface Case {
  name: string;
  server: Server;
  records: TLSARecord[];
  /** The TLSA base domain, the name DANE-TA certificates must match. */
  domain: string;
  ok: boolean;
}

const cases: Case[] = [
  { name: 'DANE-EE 3 1 1, self-signed', server: selfServer, records: [tlsa(3, 1, 1, selfSigned)], domain: 'mx.example.org', ok: true },
  { name: 'DANE-EE 3 0 1 under another name', server: selfServer, records: [tlsa(3, 0, 1, selfSigned)], domain: 'other.example', ok: true },
  { name: 'DANE-EE 3 1 2, expired', server: expiredSelfServer, records: [tlsa(3, 1, 2, expiredSelf)], domain: 'mx.example.org', ok: true },
  { name: 'DANE-EE 3 1 1 for another key', server: selfServer, records: [tlsa(3, 1, 1, leaf)], domain: 'mx.example.org', ok: false },
  { name: 'DANE-EE 3 1 1 for the CA-signed leaf', server: chainServer, records: [tlsa(3, 1, 1, leaf)], domain: 'mx.example.org', ok: true },
  { name: 'DANE-TA 2 0 1 for the intermediate', server: chainServer, records: [tlsa(2, 0, 1, intermediate)], domain: 'mx.example.org', ok: true },
  { name: 'DANE-TA 2 1 1 for the intermediate, wrong name', server: chainServer, records: [tlsa(2, 1, 1, intermediate)], domain: 'mx.example.net', ok: false },
  { name: 'DANE-TA 2 0 1 for a root the server does not send', server: chainServer, records: [tlsa(2, 0, 1, root)], domain: 'mx.example.org', ok: false },
  { name: 'DANE-TA 2 0 0, the root in full', server: chainServer, records: [full(2, 0, root)], domain: 'mx.example.org', ok: true },
  { name: 'DANE-TA 2 1 0, the root key in full', server: chainServer, records: [full(2, 1, root)], domain: 'mx.example.org', ok: true },
  { name: 'DANE-TA 2 1 0, wrong name', server: chainServer, records: [full(2, 1, root)], domain: 'example.org', ok: false },
  { name: 'DANE-TA 2 0 1 over an expired leaf', server: expiredLeafServer, records: [tlsa(2, 0, 1, intermediate)], domain: 'mx.example.org', ok: false },
  { name: 'DANE-TA 2 0 0 naming the self-signed leaf', server: caLeafServer, records: [full(2, 0, caLeaf)], domain: 'mx.example.org', ok: false },
  { name: 'DANE-TA 2 1 0 naming the key of the self-signed leaf', server: caLeafServer, records: [full(2, 1, caLeaf)], domain: 'mx.example.org', ok: true },
  { name: 'DANE-TA 2 1 0 naming the key of the self-signed leaf, wrong name', server: caLeafServer, records: [full(2, 1, caLeaf)], domain: 'mx.example.net', ok: false },
  { name: 'DANE-TA 2 1 0 naming the key of a self-signed leaf that is no CA', server: selfServer, records: [full(2, 1, selfSigned)], domain: 'mx.example.org', ok: true },
  { name: 'DANE-EE 3 1 0 for the same self-signed leaf', server: caLeafServer, records: [full(3, 1, caLeaf)], domain: 'mx.example.org', ok: true },
  { name: 'PKIX-EE 1 1 1 only', server: chainServer, records: [tlsa(1, 1, 1, leaf)], domain: 'mx.example.org', ok: false },
  { name: 'an unusable record beside a matching one', server: chainServer, records: [tlsa(0, 0, 1, root), tlsa(3, 1, 1, leaf)], domain: 'mx.example.org', ok: true },
];

for (const c of cases) {
  test(`handshake: ${c.name}`, async () => {
    const chain = await handshake(c.server.port, c.domain);
    const v = verifyDANE(c.records, chain, { names: [c.domain] });
    assert.equal(v.verified, c.ok, v.verified ? 'verified' : v.reason);
  });
}

test('handshake: a chain completed from the client trust anchors reaches a root the server does not send', async () => {
  const chain = await handshake(chainServer.port, 'mx.example.org', { ca: root.certPEM });
  assert.equal(chain.length, 3);
  assert.equal(verifyDANE([tlsa(2, 0, 1, root)], chain, { names }).verified, true);
});

test('handshake: from the MX host name through DNS to a verified connection', async () => {
  const dns = await startDNSServer({
    authentic: true,
    records: {
      'mx.example.org': { A: ['127.0.0.1'] },
      '_25._tcp.mx.example.org': { TLSA: [tlsa(3, 1, 1, selfSigned), tlsa(2, 0, 1, intermediate)] },
      'alias.example.org': { CNAME: 'mx.example.org' },
    },
  });
  try {
    const resolver = new StubResolver({ servers: [dns.address], cacheSize: 0 });
    for (const [host, server, ok] of [
      ['mx.example.org', selfServer, true],
      ['mx.example.org', chainServer, true],
      ['alias.example.org', chainServer, true],
      ['mx.example.org', expiredLeafServer, false],
    ] as const) {
      const found = await lookupDANE(resolver, host);
      assert.equal(found.status, 'dane-required');
      if (found.status !== 'dane-required') continue;
      const chain = await handshake(server.port, found.baseDomain, { host: found.addresses[0] });
      assert.equal(server.servernames.at(-1), 'mx.example.org');
      assert.equal(verifyDANE(found.records, chain, { names: found.names }).verified, ok, `${host} ${ok}`);
    }
  } finally {
    await dns.close();
  }
});

const openssl = ['/usr/bin/openssl', '/usr/local/bin/openssl'].find(existsSync);
const run = promisify(execFile);

for (const c of cases) {
  test(`openssl agrees: ${c.name}`, { skip: openssl ? false : 'needs openssl' }, async () => {
    // RFC 7672 3.1.1: no name checks for DANE-EE, which openssl does only when told.
    const args = ['s_client', '-connect', `127.0.0.1:${c.server.port}`, '-servername', c.domain, '-brief', '-verify_return_error', '-dane_ee_no_namechecks', '-dane_tlsa_domain', c.domain];
    for (const r of c.records) args.push('-dane_tlsa_rrdata', formatTLSA(r));
    let ok: boolean;
    try {
      const { stderr } = await run(openssl!, args, { timeout: 10_000 });
      ok = /Verification: OK/.test(stderr);
    } catch {
      ok = false;
    }
    assert.equal(ok, c.ok);
  });
}
