// DANE lookups against a real validating resolver: a private unbound on a loopback port serving
// zones signed here with ldns-signzone (Debian packages unbound and ldnsutils), then a TLS
// handshake with the host the records describe.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { StubResolver } from '../../src/dns/stub.js';
import { lookupDANE } from '../../src/dane/lookup.js';
import { verifyDANE } from '../../src/dane/verify.js';
import { formatTLSA } from '../../src/dane/tlsa.js';
import { selfSigned, leaf, tlsa } from './certs.js';

const findBinary = (name: string) =>
  [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin'].map((d) => join(d, name)).find((p) => existsSync(p));
const unbound = findBinary('unbound');
const keygen = findBinary('ldns-keygen');
const signzone = findBinary('ldns-signzone');
const skip = !unbound || !keygen || !signzone ? 'needs the Debian packages unbound and ldnsutils' : false;

const good = formatTLSA(tlsa(3, 1, 1, selfSigned));
// Signed as written, then changed in the signed zone file so that its signature fails.
const tampered = formatTLSA(tlsa(3, 1, 1, leaf));

const zones: Record<string, string> = {
  'signed.test': `
mx.signed.test. IN A 127.0.0.1
_25._tcp.mx.signed.test. IN TLSA ${good}
plain.signed.test. IN A 127.0.0.1
alias.signed.test. IN CNAME mx.signed.test.
bad.signed.test. IN A 127.0.0.1
_25._tcp.bad.signed.test. IN TLSA ${tampered}
`,
  'unsigned.test': `
mx.unsigned.test. IN A 127.0.0.1
_25._tcp.mx.unsigned.test. IN TLSA ${good}
`,
};

let dir = '';
let server: ChildProcess | undefined;
let resolver: StubResolver;

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-dane-unbound-'));
  const anchors: string[] = [];
  for (const [name, body] of Object.entries(zones)) {
    writeFileSync(join(dir, `${name}.zone`), `$TTL 300\n${name}. IN SOA ns.${name}. hostmaster.${name}. 1 3600 600 86400 60\n${name}. IN NS ns.${name}.\nns.${name}. IN A 127.0.0.1\n${body}`);
    if (name === 'unsigned.test') continue;
    const key = execFileSync(keygen!, ['-a', 'ECDSAP256SHA256', '-k', name], { cwd: dir, encoding: 'utf8' }).trim();
    execFileSync(signzone!, ['-i', String(Math.floor(Date.now() / 1000) - 3600), `${name}.zone`, key], { cwd: dir });
    anchors.push(join(dir, `${key}.ds`));
  }
  const signed = join(dir, 'signed.test.zone.signed');
  const hex = tampered.split(' ')[3]!;
  const text = readFileSync(signed, 'utf8');
  // ldns writes the data in lower case.
  assert.ok(text.toLowerCase().includes(hex.toLowerCase()));
  writeFileSync(signed, text.replace(new RegExp(hex, 'i'), hex.replace(/^./, (c) => (c === '0' ? '1' : '0'))));

  const port = await freePort();
  // Root hints naming only 127.0.0.1, which unbound never queries: nothing leaves this host.
  writeFileSync(join(dir, 'root.hints'), '. 3600000 NS localroot.\nlocalroot. 3600000 A 127.0.0.1\n');
  const conf = [
    'server:',
    '  interface: 127.0.0.1',
    `  port: ${port}`,
    '  do-ip6: no',
    '  outgoing-interface: 127.0.0.1',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    '  pidfile: ""',
    '  use-syslog: no',
    `  logfile: "${join(dir, 'unbound.log')}"`,
    '  num-threads: 1',
    '  trust-anchor-signaling: no',
    '  root-key-sentinel: no',
    '  module-config: "validator iterator"',
    '  local-zone: "test." nodefault',
    `  root-hints: "${join(dir, 'root.hints')}"`,
    ...anchors.map((a) => `  trust-anchor-file: "${a}"`),
    ...Object.keys(zones).flatMap((name) => [
      'auth-zone:',
      `  name: "${name}."`,
      `  zonefile: "${join(dir, name === 'unsigned.test' ? `${name}.zone` : `${name}.zone.signed`)}"`,
      '  for-downstream: no',
      '  for-upstream: yes',
    ]),
    'remote-control:',
    '  control-enable: no',
  ].join('\n');
  writeFileSync(join(dir, 'unbound.conf'), conf + '\n');
  server = spawn(unbound!, ['-d', '-c', join(dir, 'unbound.conf')], { stdio: 'ignore' });
  resolver = new StubResolver({ servers: [`127.0.0.1:${port}`], timeout: 2000, attempts: 1, cacheSize: 0 });
  const probe = new StubResolver({ servers: [`127.0.0.1:${port}`], timeout: 200, attempts: 1, cacheSize: 0 });
  for (let i = 0; ; i++) {
    try {
      await probe.lookupA('mx.unsigned.test');
      break;
    } catch (err) {
      if (i >= 50 || server.exitCode !== null) throw new Error(`unbound did not start: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a signed host with TLSA records requires DANE, and the handshake verifies', { skip }, async () => {
  const found = await lookupDANE(resolver, 'mx.signed.test');
  assert.equal(found.status, 'dane-required');
  if (found.status !== 'dane-required') return;
  assert.deepEqual(found.addresses, ['127.0.0.1']);
  assert.deepEqual(found.records, [tlsa(3, 1, 1, selfSigned)]);

  const srv = tls.createServer({ key: selfSigned.keyPEM, cert: selfSigned.certPEM }, (s) => s.end());
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    const chain = await new Promise<Buffer[]>((resolve, reject) => {
      const s = tls.connect({ host: found.addresses[0], port: (srv.address() as net.AddressInfo).port, servername: found.baseDomain, rejectUnauthorized: false }, () => {
        resolve([s.getPeerCertificate(true).raw]);
        s.destroy();
      });
      s.on('error', reject);
    });
    assert.equal(verifyDANE(found.records, chain, { names: found.names }).verified, true);
    assert.equal(verifyDANE(found.records, [leaf.certDER], { names: found.names }).verified, false);
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
});

test('a signed CNAME leads to the records of its target', { skip }, async () => {
  const found = await lookupDANE(resolver, 'alias.signed.test');
  assert.equal(found.status, 'dane-required');
  assert.equal(found.status === 'dane-required' && found.baseDomain, 'mx.signed.test');
  assert.deepEqual(found.status === 'dane-required' && found.names, ['mx.signed.test', 'alias.signed.test']);
});

test('a signed host without TLSA records: no DANE', { skip }, async () => {
  const found = await lookupDANE(resolver, 'plain.signed.test');
  assert.equal(found.status, 'no-dane');
  assert.equal(found.status === 'no-dane' && found.requireTLS, false);
});

test('an unsigned host: its TLSA records do not count', { skip }, async () => {
  const found = await lookupDANE(resolver, 'mx.unsigned.test');
  assert.equal(found.status, 'no-dane');
  assert.match(found.status === 'no-dane' ? found.reason : '', /not DNSSEC-signed/);
});

test('bogus TLSA records make the host unusable for now', { skip }, async () => {
  const found = await lookupDANE(resolver, 'bad.signed.test');
  assert.equal(found.status, 'temporary-failure');
  assert.match(found.status === 'temporary-failure' ? found.reason : '', /SERVFAIL|rcode 2/);
});
