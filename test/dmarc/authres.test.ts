// The Authentication-Results header field (RFC 8601 2.2).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authenticationResults } from '../../src/dmarc/authres.js';
import type { DMARCResult } from '../../src/dmarc/verify.js';
import type { DKIMResult } from '../../src/dkim/verify.js';
import type { SPFResult } from '../../src/spf/evaluate.js';

const spf: SPFResult = { result: 'pass', domain: 'esp.example', authentic: false, lookups: 1 };
const dkim = (domain: string, status: DKIMResult['status'], reason?: string): DKIMResult => ({
  status,
  domain,
  selector: 'sel2024',
  algorithm: 'rsa-sha256',
  headerCanon: 'relaxed',
  bodyCanon: 'relaxed',
  authentic: false,
  headerB: 'abcdefgh',
  ...(reason ? { reason } : {}),
});
const dmarc: DMARCResult = {
  status: 'fail',
  domain: 'example.org',
  recordDomain: 'example.org',
  record: { policy: 'reject', adkim: 'r', aspf: 'r', pct: 100, rua: [], ruf: [], fo: ['0'], rf: ['afrf'], ri: 86400 },
  policy: 'reject',
  disposition: 'reject',
  sampledOut: false,
  reject: true,
  alignedSPFPass: false,
  alignedDKIMPass: false,
  authentic: false,
};

/** RFC 5322 2.2.3 unfolding. */
const unfold = (s: string) => s.replace(/\r\n(?=[ \t])/g, '');

test('results in the order spf, dkim, dmarc, iprev, one per line', () => {
  const h = authenticationResults({
    authservID: 'mx.postern.example',
    spf: { result: spf, identity: 'mailfrom' },
    dkim: [dkim('example.org', 'fail'), dkim('esp.example', 'pass')],
    dmarc,
    iprev: { result: 'pass', ip: '192.0.2.1', name: 'mail.esp.example' },
  });
  assert.equal(
    h,
    'Authentication-Results: mx.postern.example;\r\n' +
      '\tspf=pass smtp.mailfrom=esp.example;\r\n' +
      '\tdkim=fail header.d=example.org header.s=sel2024 header.a=rsa-sha256\r\n header.b=abcdefgh;\r\n' +
      '\tdkim=pass header.d=esp.example header.s=sel2024 header.a=rsa-sha256\r\n header.b=abcdefgh;\r\n' +
      '\tdmarc=fail (p=reject dis=reject) header.from=example.org;\r\n' +
      '\tiprev=pass policy.iprev=192.0.2.1 (mail.esp.example)\r\n',
  );
});

test('without results the field says none (RFC 8601 2.2 no-result)', () => {
  assert.equal(authenticationResults({ authservID: 'mx.postern.example' }), 'Authentication-Results: mx.postern.example; none\r\n');
  // An empty DKIM list is a result: no signatures.
  assert.equal(authenticationResults({ authservID: 'mx.postern.example', dkim: [] }), 'Authentication-Results: mx.postern.example;\r\n\tdkim=none\r\n');
});

test('long results are folded at spaces to 78 characters, and unfold to the same text', () => {
  const reason = 'body hash did not verify because a mailing list added a footer to the message on its way';
  const h = authenticationResults({ authservID: 'mx.postern.example', dkim: [dkim('a-rather-long-signing-domain.example.org', 'fail', reason)], dmarc });
  assert.ok(h.endsWith('\r\n'));
  const lines = h.slice(0, -2).split('\r\n');
  assert.ok(lines.length > 3);
  for (const l of lines) assert.ok(l.length <= 78, `${l.length}: ${l}`);
  for (const l of lines.slice(1)) assert.match(l, /^[ \t]\S/);
  const unfolded = unfold(h.slice(0, -2));
  assert.ok(unfolded.includes(`reason="${reason}"`), unfolded);
  assert.ok(unfolded.includes('header.d=a-rather-long-signing-domain.example.org'));
});

test('values that are not tokens are quoted', () => {
  const h = authenticationResults({ authservID: 'mx postern', iprev: { result: 'fail', ip: '2001:db8::1', name: 'host(1).example' } });
  assert.equal(h, 'Authentication-Results: "mx postern";\r\n\tiprev=fail policy.iprev="2001:db8::1" (host\\(1\\).example)\r\n');
});

test('control characters cannot break the field apart', () => {
  const h = authenticationResults({ authservID: 'mx.postern.example', dmarc: { ...dmarc, status: 'permerror', record: undefined, reason: 'bad\r\nInjected: yes' } });
  assert.equal(h.split('\r\n').length, 3);
  assert.ok(!/\r\nInjected/.test(h));
});
