import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SPFResult } from '../../src/spf/evaluate.js';
import { authResultsSPF, receivedSPF, type ReceivedSPFParams } from '../../src/spf/header.js';

const result = (r: Partial<SPFResult>): SPFResult => ({ result: 'pass', domain: 'example.com', authentic: false, lookups: 0, ...r });

const params = (r: Partial<SPFResult>, p: Partial<ReceivedSPFParams> = {}): ReceivedSPFParams => ({
  result: result(r),
  identity: 'mailfrom',
  sender: 'myname@example.com',
  clientIP: '192.0.2.1',
  helo: 'foo.example.com',
  receiver: 'mybox.example.org',
  ...p,
});

const unfold = (h: string) => h.replace(/\r\n\t/g, ' ');

test('Received-SPF for pass carries the RFC 7208 9.1 keys', () => {
  const h = receivedSPF(params({ mechanism: 'ip4:192.0.2.0/24' }));
  assert.equal(
    unfold(h),
    'Received-SPF: pass (mybox.example.org: domain of myname@example.com designates 192.0.2.1 as permitted sender) ' +
      'client-ip=192.0.2.1; envelope-from="myname@example.com"; helo=foo.example.com; receiver=mybox.example.org; ' +
      'identity=mailfrom; mechanism="ip4:192.0.2.0/24"',
  );
});

test('Received-SPF is folded into lines of at most 78 characters', () => {
  const h = receivedSPF(params({ mechanism: '-all', result: 'fail' }));
  for (const line of h.split('\r\n')) assert.ok(line.length <= 78, line);
  assert.ok(h.includes('\r\n\t'));
  assert.ok(!h.endsWith('\r\n'));
});

test('each result has its own comment', () => {
  const comments = {
    pass: 'designates 192.0.2.1 as permitted sender',
    fail: 'does not designate 192.0.2.1 as permitted sender',
    softfail: 'domain of transitioning myname@example.com does not designate',
    neutral: '192.0.2.1 is neither permitted nor denied by domain of myname@example.com',
    none: 'does not designate permitted sender hosts',
    temperror: 'temporary error',
    permerror: 'permanent error',
  } as const;
  for (const [r, text] of Object.entries(comments)) {
    const h = unfold(receivedSPF(params({ result: r as SPFResult['result'] })));
    assert.ok(h.startsWith(`Received-SPF: ${r} (mybox.example.org: `), h);
    assert.ok(h.includes(text), h);
  }
});

test('errors carry a problem key; other results do not', () => {
  const perm = unfold(receivedSPF(params({ result: 'permerror', reason: 'more than 10 DNS-querying terms' })));
  assert.ok(perm.endsWith('identity=mailfrom; problem="more than 10 DNS-querying terms"'), perm);
  const fail = unfold(receivedSPF(params({ result: 'fail', reason: 'example.com matched -all', mechanism: '-all' })));
  assert.ok(!fail.includes('problem='));
  assert.ok(fail.endsWith('mechanism=-all'));
});

test('the HELO identity and an IPv6 client', () => {
  const h = unfold(receivedSPF(params({ result: 'none', domain: 'foo.example.com' }, { identity: 'helo', sender: 'postmaster@foo.example.com', clientIP: '2001:db8::1' })));
  assert.ok(h.includes('client-ip="2001:db8::1";'));
  assert.ok(h.includes('identity=helo'));
});

test('hostile values cannot break out of the header field, a quoted-string or a comment', () => {
  const h = receivedSPF(
    params(
      { result: 'permerror', reason: 'bad "record"\r\nX-Injected: yes \\' },
      { sender: 'a"b)\r\nX-Evil: 1@example.com', helo: 'evil (helo)\nX: y' },
    ),
  );
  const lines = h.split('\r\n');
  assert.ok(lines.slice(1).every((l) => l.startsWith('\t')), h);
  assert.ok(!/[\r\n](?!\t)/.test(h.replace(/\r\n\t/g, '')));
  assert.ok(h.includes('problem="bad \\"record\\"  X-Injected: yes \\\\"'), h);
  assert.ok(unfold(h).includes('(mybox.example.org: permanent error in the SPF policy of the domain of a"b\\)  X-Evil: 1@example.com)'), h);
  assert.ok(unfold(h).includes('helo="evil (helo) X: y"'), h);
});

test('neutral without a matching mechanism names the "default" mechanism', () => {
  assert.ok(unfold(receivedSPF(params({ result: 'neutral' }))).endsWith('identity=mailfrom; mechanism=default'));
  assert.ok(unfold(receivedSPF(params({ result: 'neutral', mechanism: '?all' }))).endsWith('mechanism=?all'));
  assert.ok(!unfold(receivedSPF(params({ result: 'none' }))).includes('mechanism='));
});

test('empty values are left out', () => {
  const h = unfold(receivedSPF(params({ result: 'none' }, { helo: '' })));
  assert.ok(!h.includes('helo='));
});

test('Authentication-Results spf method (RFC 8601 2.7.2)', () => {
  assert.equal(authResultsSPF(result({ result: 'pass', domain: 'example.org' }), 'mailfrom'), 'spf=pass smtp.mailfrom=example.org');
  assert.equal(authResultsSPF(result({ result: 'fail', domain: 'mx.example.org' }), 'helo'), 'spf=fail smtp.helo=mx.example.org');
  assert.equal(authResultsSPF(result({ result: 'none', domain: '' }), 'mailfrom'), 'spf=none smtp.mailfrom=""');
  assert.equal(authResultsSPF(result({ result: 'none', domain: 'a;b' }), 'mailfrom'), 'spf=none smtp.mailfrom="a;b"');
});
