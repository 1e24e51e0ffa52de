// The stub resolver against a real validating resolver: a private unbound on a loopback port,
// serving zones signed here with ldns-signzone (Debian packages unbound and ldnsutils).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import net from 'node:net';
import { StubResolver } from '../../src/dns/stub.js';
import { DNSError } from '../../src/dns/types.js';

function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin'];
  return dirs.map((d) => join(d, name)).find((p) => existsSync(p));
}

const unbound = findBinary('unbound');
const keygen = findBinary('ldns-keygen');
const signzone = findBinary('ldns-signzone');
const skip = !unbound || !keygen || !signzone ? 'needs the Debian packages unbound and ldnsutils' : false;

let dir = '';
let server: ChildProcess | undefined;
let address = '';

const zones: Record<string, string> = {
  'signed.test': `
signed.test. IN A 192.0.2.10
signed.test. IN MX 10 mx.signed.test.
mx.signed.test. IN A 192.0.2.11
_25._tcp.mx.signed.test. IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`,
  'bogus.test': `
bogus.test. IN A 192.0.2.20
bogus.test. IN TXT "v=spf1 -all"
`,
  'unsigned.test': `
unsigned.test. IN A 192.0.2.30
`,
};

function zoneFile(name: string, body: string): string {
  return `$TTL 300\n${name}. IN SOA ns.${name}. hostmaster.${name}. 1 3600 600 86400 60\n${name}. IN NS ns.${name}.\nns.${name}. IN A 127.0.0.1\n${body}`;
}

// A port free for both UDP and TCP on 127.0.0.1, chosen by the system among the high ones.
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-unbound-'));
  const anchors: string[] = [];
  for (const [name, body] of Object.entries(zones)) {
    writeFileSync(join(dir, `${name}.zone`), zoneFile(name, body));
    if (name === 'unsigned.test') continue;
    const key = execFileSync(keygen!, ['-a', 'ECDSAP256SHA256', '-k', name], { cwd: dir, encoding: 'utf8' }).trim();
    // Inception an hour back so that clock differences cannot make the signatures not yet valid.
    execFileSync(signzone!, ['-i', String(Math.floor(Date.now() / 1000) - 3600), `${name}.zone`, key], { cwd: dir });
    anchors.push(join(dir, `${key}.ds`));
  }
  // Changing signed data after signing makes its RRSIG fail to verify: the zone is bogus.
  const bogus = join(dir, 'bogus.test.zone.signed');
  writeFileSync(bogus, readFileSync(bogus, 'utf8').replace('192.0.2.20', '192.0.2.21'));

  const port = await freePort();
  address = `127.0.0.1:${port}`;
  // Root hints naming only 127.0.0.1, which unbound never queries (do-not-query-localhost), and a
  // loopback outgoing interface: the resolver cannot reach beyond this host.
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
    '  verbosity: 1',
    '  val-log-level: 2',
    '  num-threads: 1',
    '  trust-anchor-signaling: no',
    '  root-key-sentinel: no',
    '  module-config: "validator iterator"',
    // RFC 6761 6.2: unbound answers NXDOMAIN for test. unless told otherwise.
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

  // Wait until it answers.
  const probe = new StubResolver({ servers: [address], timeout: 200, attempts: 1, cacheSize: 0 });
  for (let i = 0; ; i++) {
    try {
      await probe.lookupA('unsigned.test');
      break;
    } catch (err) {
      if (i >= 50 || server.exitCode !== null) {
        const log = existsSync(join(dir, 'unbound.log')) ? readFileSync(join(dir, 'unbound.log'), 'utf8') : '';
        throw new Error(`unbound did not start: ${String(err)}\n${log}`);
      }
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

test('answers from a signed zone are authentic', { skip }, async () => {
  const r = new StubResolver({ servers: [address], timeout: 2000 });
  assert.deepEqual(await r.lookupA('signed.test'), { records: ['192.0.2.10'], authentic: true });
  assert.deepEqual(await r.lookupMX('signed.test'), { records: [{ preference: 10, exchange: 'mx.signed.test' }], authentic: true });
  const tlsa = await r.lookupTLSA('_25._tcp.mx.signed.test');
  assert.equal(tlsa.authentic, true);
  assert.equal(tlsa.records[0]?.data.toString('hex'), '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
  assert.equal((await r.lookupIP('mx.signed.test')).authentic, true);
  await assert.rejects(r.lookupA('nx.signed.test'), (err: DNSError) => err.code === 'NXDOMAIN');
  await assert.rejects(r.lookupTXT('signed.test'), (err: DNSError) => err.code === 'NODATA');
});

test('answers from an unsigned zone are not authentic', { skip }, async () => {
  const r = new StubResolver({ servers: [address], timeout: 2000 });
  assert.deepEqual(await r.lookupA('unsigned.test'), { records: ['192.0.2.30'], authentic: false });
});

test('a bogus signature gives SERVFAIL', { skip }, async () => {
  const r = new StubResolver({ servers: [address], timeout: 2000 });
  await assert.rejects(r.lookupA('bogus.test'), (err: DNSError) => err instanceof DNSError && err.code === 'SERVFAIL' && err.temporary);
});
