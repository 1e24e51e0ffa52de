import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatServerAddress, parseResolvConf, parseServerAddress, systemServers } from '../../src/dns/config.js';

test('parseServerAddress accepts IPv4 and IPv6 with and without port', () => {
  assert.deepEqual(parseServerAddress('127.0.0.1:53'), { host: '127.0.0.1', port: 53 });
  assert.deepEqual(parseServerAddress('127.0.0.1'), { host: '127.0.0.1', port: 53 });
  assert.deepEqual(parseServerAddress('[::1]:5353'), { host: '::1', port: 5353 });
  assert.deepEqual(parseServerAddress('[::1]'), { host: '::1', port: 53 });
  assert.deepEqual(parseServerAddress('2001:db8::53'), { host: '2001:db8::53', port: 53 });
  for (const bad of ['', 'dns.example:53', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:x', '[127.0.0.1]:53', '::1:53:x', '1.2.3.4:53:53']) {
    assert.throws(() => parseServerAddress(bad), /invalid DNS server address/, bad);
  }
  assert.equal(formatServerAddress({ host: '::1', port: 53 }), '[::1]:53');
  assert.equal(formatServerAddress({ host: '10.0.0.1', port: 5353 }), '10.0.0.1:5353');
});

test('parseResolvConf takes up to three nameserver lines', () => {
  const conf = [
    '# generated',
    'search example.org',
    'nameserver 127.0.0.53',
    '  nameserver   ::1  # local',
    'nameserver dns.example.org',
    ';nameserver 10.9.9.9',
    'options edns0 trust-ad',
    'nameserver 192.0.2.1',
    'nameserver 192.0.2.2',
  ].join('\n');
  assert.deepEqual(parseResolvConf(conf), ['127.0.0.53:53', '[::1]:53', '192.0.2.1:53']);
  assert.deepEqual(parseResolvConf(''), []);
});

test('systemServers falls back to the local name server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-dns-'));
  try {
    const path = join(dir, 'resolv.conf');
    writeFileSync(path, 'nameserver 192.0.2.53\n');
    assert.deepEqual(systemServers(path), ['192.0.2.53:53']);
    writeFileSync(path, 'search example.org\n');
    assert.deepEqual(systemServers(path), ['127.0.0.1:53', '[::1]:53']);
    assert.deepEqual(systemServers(join(dir, 'missing')), ['127.0.0.1:53', '[::1]:53']);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
