import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyCache } from '../../src/mtasts/cache.js';
import { StubResolver } from '../../src/dns/stub.js';
import { startDNSServer } from '../helpers/dnsserver.js';
import { ca, enforcePolicy, leafFor, startPolicyServer } from './helpers.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

const dir = mkdtempSync(join(tmpdir(), 'postern-mtasts-'));
const srv = await startPolicyServer(leafFor(['mta-sts.example.org']));
const dns = await startDNSServer();
const resolver = new StubResolver({ servers: [dns.address], cacheSize: 0, timeout: 300, attempts: 1 });
after(async () => {
  await Promise.all([srv.close(), dns.close()]);
  rmSync(dir, { recursive: true, force: true });
});

let served = enforcePolicy;
let status = 200;
let clock = Date.UTC(2030, 0, 1);
let dbCount = 0;

beforeEach(() => {
  served = enforcePolicy;
  status = 200;
  dns.set('_mta-sts.example.org', 'TXT', ['v=STSv1; id=1']);
  srv.handle = (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'text/plain' });
    res.end(served);
  };
});

function newCache(file = join(dir, `cache${++dbCount}.db`)): PolicyCache {
  return new PolicyCache(file, { now: () => clock, fetch: { host: '127.0.0.1', port: srv.port, ca: ca.certPEM, timeout: 5000 } });
}

const fetches = () => srv.seen.length;
const testingPolicy = 'version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 86400\n';

test('the first lookup fetches; later ones use the cache while the id is unchanged', async () => {
  const cache = newCache();
  const n = fetches();
  const first = await cache.lookup(resolver, 'example.org');
  assert.equal(first.source, 'fetched');
  assert.equal(first.policy?.mode, 'enforce');
  assert.equal(fetches(), n + 1);
  clock += HOUR;
  served = testingPolicy;
  const second = await cache.lookup(resolver, 'Example.ORG');
  assert.equal(second.source, 'cache');
  assert.equal(second.policy?.mode, 'enforce');
  assert.equal(fetches(), n + 1);
  cache.close();
});

test('a new id makes the next lookup fetch the new policy', async () => {
  const cache = newCache();
  await cache.lookup(resolver, 'example.org');
  served = testingPolicy;
  dns.set('_mta-sts.example.org', 'TXT', ['v=STSv1; id=2']);
  const r = await cache.lookup(resolver, 'example.org');
  assert.equal(r.source, 'fetched');
  assert.equal(r.policy?.mode, 'testing');
  assert.equal((await cache.lookup(resolver, 'example.org')).source, 'cache');
  cache.close();
});

test('a failed fetch keeps the unexpired cached policy and reports the failure; retries wait five minutes', async () => {
  const cache = newCache();
  await cache.lookup(resolver, 'example.org');
  dns.set('_mta-sts.example.org', 'TXT', ['v=STSv1; id=2']);
  status = 500;
  const n = fetches();
  const r = await cache.lookup(resolver, 'example.org');
  assert.equal(r.source, 'cache');
  assert.equal(r.policy?.mode, 'enforce');
  assert.equal(r.failure?.resultType, 'sts-policy-fetch-error');
  assert.match(r.failure?.message ?? '', /HTTP status 500/);
  assert.equal(fetches(), n + 1);

  clock += 4 * 60_000;
  const again = await cache.lookup(resolver, 'example.org');
  assert.equal(again.policy?.mode, 'enforce');
  assert.equal(again.failure?.resultType, 'sts-policy-fetch-error');
  assert.equal(fetches(), n + 1);

  clock += 2 * 60_000;
  status = 200;
  served = testingPolicy;
  const later = await cache.lookup(resolver, 'example.org');
  assert.equal(later.source, 'fetched');
  assert.equal(later.policy?.mode, 'testing');
  assert.equal(later.failure, undefined);
  assert.equal(fetches(), n + 2);
  cache.close();
});

test('without a cached policy, a failed fetch means no policy, with the failure for reports', async () => {
  const cache = newCache();
  served = 'version: STSv1\nmode: enforce\nmax_age: 86400\n';
  const r = await cache.lookup(resolver, 'example.org');
  assert.equal(r.source, 'none');
  assert.equal(r.policy, undefined);
  assert.equal(r.failure?.resultType, 'sts-policy-invalid');
  cache.close();
});

test('an expired policy is not used', async () => {
  const cache = newCache();
  await cache.lookup(resolver, 'example.org');
  clock += DAY + 1;
  status = 503;
  const r = await cache.lookup(resolver, 'example.org');
  assert.equal(r.source, 'none');
  assert.equal(r.policy, undefined);
  assert.equal(r.failure?.resultType, 'sts-policy-fetch-error');
  cache.close();
});

test('a removed or unreachable TXT record leaves the cached policy in force', async () => {
  const cache = newCache();
  await cache.lookup(resolver, 'example.org');
  dns.set('_mta-sts.example.org', 'TXT', undefined);
  const gone = await cache.lookup(resolver, 'example.org');
  assert.equal(gone.source, 'cache');
  assert.equal(gone.policy?.mode, 'enforce');
  dns.behave('_mta-sts.example.org', 'servfail', 1);
  const broken = await cache.lookup(resolver, 'example.org');
  assert.equal(broken.policy?.mode, 'enforce');
  assert.equal(broken.dnsError, undefined);
  cache.close();
});

test('without a cached policy: no record means none, a DNS failure is reported', async () => {
  const cache = newCache();
  dns.set('_mta-sts.example.org', 'TXT', undefined);
  const n = fetches();
  assert.deepEqual(await cache.lookup(resolver, 'example.org'), { source: 'none' });
  dns.set('_mta-sts.example.org', 'TXT', ['v=STSv1; id=1', 'v=STSv1; id=2']);
  assert.deepEqual(await cache.lookup(resolver, 'example.org'), { source: 'none' });
  dns.behave('_mta-sts.example.org', 'servfail', 1);
  const r = await cache.lookup(resolver, 'example.org');
  assert.equal(r.policy, undefined);
  assert.match(r.dnsError ?? '', /SERVFAIL|rcode 2/);
  assert.equal(fetches(), n);
  cache.close();
});

test('policies survive reopening the database', async () => {
  const file = join(dir, 'persist.db');
  const one = newCache(file);
  await one.lookup(resolver, 'example.org');
  one.close();
  const n = fetches();
  const two = newCache(file);
  const r = await two.lookup(resolver, 'example.org');
  assert.equal(r.source, 'cache');
  assert.equal(r.policy?.mode, 'enforce');
  assert.equal(fetches(), n);
  two.close();
});

test('concurrent lookups for a domain share one fetch', async () => {
  const cache = newCache();
  const n = fetches();
  const all = await Promise.all([1, 2, 3, 4].map(() => cache.lookup(resolver, 'example.org')));
  assert.ok(all.every((r) => r.policy?.mode === 'enforce'));
  assert.equal(fetches(), n + 1);
  cache.close();
});

test('refresh confirms unchanged policies, so that they outlive their max_age', async () => {
  const cache = newCache();
  await cache.lookup(resolver, 'example.org');
  clock += 11 * HOUR;
  assert.deepEqual(await cache.refresh(resolver), { refreshed: 0, removed: 0, failures: [] });
  clock += 2 * HOUR;
  const n = fetches();
  assert.deepEqual(await cache.refresh(resolver), { refreshed: 1, removed: 0, failures: [] });
  assert.equal(fetches(), n);
  // 25 h after the fetch, 12 h after the refresh: still valid, though the server is down.
  clock += 12 * HOUR;
  status = 500;
  const r = await cache.lookup(resolver, 'example.org');
  assert.equal(r.source, 'cache');
  assert.equal(r.policy?.mode, 'enforce');
  cache.close();
});

test('refresh fetches the policy when the id changed, and reports failures', async () => {
  const cache = newCache();
  await cache.lookup(resolver, 'example.org');
  clock += 13 * HOUR;
  dns.set('_mta-sts.example.org', 'TXT', ['v=STSv1; id=2']);
  served = testingPolicy;
  assert.deepEqual(await cache.refresh(resolver), { refreshed: 1, removed: 0, failures: [] });
  const r = await cache.lookup(resolver, 'example.org');
  assert.equal(r.source, 'cache');
  assert.equal(r.policy?.mode, 'testing');

  clock += 13 * HOUR;
  dns.set('_mta-sts.example.org', 'TXT', ['v=STSv1; id=3']);
  status = 500;
  const failed = await cache.refresh(resolver);
  assert.equal(failed.refreshed, 0);
  assert.deepEqual(
    failed.failures.map((f) => f.domain),
    ['example.org'],
  );
  assert.match(failed.failures[0]!.error, /HTTP status 500/);
  cache.close();
});

test('refresh does not report failures for policies in mode none', async () => {
  const cache = newCache();
  served = 'version: STSv1\nmode: none\nmax_age: 86400\n';
  assert.equal((await cache.lookup(resolver, 'example.org')).policy?.mode, 'none');
  clock += 13 * HOUR;
  dns.set('_mta-sts.example.org', 'TXT', undefined);
  status = 404;
  assert.deepEqual(await cache.refresh(resolver), { refreshed: 0, removed: 0, failures: [] });
  cache.close();
});

test('refresh drops policies unused for 180 days; use keeps them', async () => {
  const cache = newCache();
  await cache.lookup(resolver, 'example.org');
  served = 'version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 31557600\n';
  dns.set('_mta-sts.example.org', 'TXT', ['v=STSv1; id=long']);
  await cache.lookup(resolver, 'example.org');
  clock += 100 * DAY;
  assert.equal((await cache.lookup(resolver, 'example.org')).source, 'cache');
  clock += 100 * DAY;
  assert.equal((await cache.refresh(resolver)).removed, 0);
  clock += 81 * DAY;
  assert.equal((await cache.refresh(resolver)).removed, 1);
  // Gone from the cache: the next lookup fetches again.
  const n = fetches();
  assert.equal((await cache.lookup(resolver, 'example.org')).source, 'fetched');
  assert.equal(fetches(), n + 1);
  cache.close();
});
