// The identity flow for a received message: HELO (RFC 7208 2.3), then MAIL FROM (RFC 7208 2.4).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verify } from '../../src/spf/evaluate.js';
import { FakeResolver, type Zone } from './fakeresolver.js';
import { IP4 } from './helpers.js';

const params = { ip: IP4, mailFrom: 'user@example.com', helo: 'mx.example.org', receivingHost: 'mx.postern.example' };

const zone = (helo: string, mailFrom: string): Zone => ({
  'mx.example.org': { TXT: [`v=spf1 ${helo}`] },
  'example.com': { TXT: [`v=spf1 ${mailFrom}`] },
});

test('a failing HELO identity decides and MAIL FROM is not checked', async () => {
  const resolver = new FakeResolver(zone('-all', '+all'));
  const v = await verify(params, resolver);
  assert.equal(v.identity, 'helo');
  assert.equal(v.sender, 'postmaster@mx.example.org');
  assert.equal(v.result.result, 'fail');
  assert.equal(v.result.domain, 'mx.example.org');
  assert.equal(v.mailFrom, undefined);
  assert.ok(!resolver.queries.includes('TXT example.com'));
});

test('after a HELO pass, MAIL FROM is checked and decides', async () => {
  const v = await verify(params, new FakeResolver(zone('+all', '-all')));
  assert.equal(v.identity, 'mailfrom');
  assert.equal(v.sender, 'user@example.com');
  assert.equal(v.helo?.result, 'pass');
  assert.equal(v.result.result, 'fail');
  assert.equal(v.result.domain, 'example.com');
  assert.equal(v.mailFrom, v.result);
});

test('HELO results other than fail leave MAIL FROM to decide', async () => {
  for (const helo of ['~all', '?all', 'foo']) {
    const v = await verify(params, new FakeResolver(zone(helo, 'ip4:192.0.2.0/24 -all')));
    assert.equal(v.identity, 'mailfrom', helo);
    assert.equal(v.result.result, 'pass', helo);
  }
  const none = await verify(params, new FakeResolver({ 'example.com': { TXT: ['v=spf1 -all'] } }));
  assert.equal(none.helo?.result, 'none');
  assert.equal(none.result.result, 'fail');
});

test('a null reverse-path is checked as postmaster@<helo>, with one evaluation', async () => {
  const resolver = new FakeResolver(zone('ip4:192.0.2.3 -all', '-all'));
  const v = await verify({ ...params, mailFrom: '' }, resolver);
  assert.equal(v.identity, 'mailfrom');
  assert.equal(v.sender, 'postmaster@mx.example.org');
  assert.equal(v.result.result, 'pass');
  assert.equal(v.result.domain, 'mx.example.org');
  assert.equal(resolver.queries.filter((q) => q === 'TXT mx.example.org').length, 1);
});

test('an address-literal HELO is not checked, MAIL FROM still is', async () => {
  const v = await verify({ ...params, helo: '[192.0.2.3]' }, new FakeResolver(zone('-all', 'ip4:192.0.2.3 -all')));
  assert.equal(v.helo, undefined);
  assert.equal(v.result.result, 'pass');
});

test('a null reverse-path with an address-literal HELO has no identity to check', async () => {
  const v = await verify({ ...params, helo: '[192.0.2.3]', mailFrom: '' }, new FakeResolver({}));
  assert.equal(v.helo, undefined);
  assert.equal(v.result.result, 'none');
});

test('a single-label HELO is not checked', async () => {
  const v = await verify({ ...params, helo: 'localhost' }, new FakeResolver({ localhost: { TXT: ['v=spf1 -all'] }, ...zone('-all', '+all') }));
  assert.equal(v.helo, undefined);
  assert.equal(v.result.result, 'pass');
});
