// Parsing and formatting of DMARC policy records (RFC 7489 6.3, 6.4, 6.6.3).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, DMARCRecordError, formatRecord, isDMARCRecord, parseRecord } from '../../src/dmarc/record.js';

test('a minimal record gets the defaults of RFC 7489 6.3', () => {
  const { record, warnings } = parseRecord('v=DMARC1; p=reject');
  assert.deepEqual(record, { policy: 'reject', ...DEFAULTS });
  assert.deepEqual(warnings, []);
  assert.equal(record.subdomainPolicy, undefined);
});

test('every tag is read', () => {
  const { record, warnings } = parseRecord(
    'v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=s; pct=25; rua=mailto:agg@example.org!10m,mailto:agg@rep.example; ruf=mailto:f@example.org; fo=1:d; rf=afrf; ri=3600',
  );
  assert.deepEqual(warnings, []);
  assert.deepEqual(record, {
    policy: 'quarantine',
    subdomainPolicy: 'reject',
    adkim: 's',
    aspf: 's',
    pct: 25,
    rua: [{ uri: 'mailto:agg@example.org', maxBytes: 10 * 1024 * 1024 }, { uri: 'mailto:agg@rep.example' }],
    ruf: [{ uri: 'mailto:f@example.org' }],
    fo: ['1', 'd'],
    rf: ['afrf'],
    ri: 3600,
  });
});

test('tag names and keyword values are case-insensitive, DMARC1 is not', () => {
  const { record } = parseRecord('V=DMARC1; P=Reject; SP=NONE; ADKIM=S; Pct=50; FO=D');
  assert.equal(record.policy, 'reject');
  assert.equal(record.subdomainPolicy, 'none');
  assert.equal(record.adkim, 's');
  assert.equal(record.pct, 50);
  assert.deepEqual(record.fo, ['d']);
  // RFC 7489 6.4 writes DMARC1 in hex, which makes it case-sensitive (RFC 5234 2.3).
  assert.equal(isDMARCRecord('v=dmarc1; p=reject'), false);
  assert.throws(() => parseRecord('v=dmarc1; p=reject'), DMARCRecordError);
});

test('white space around "=", ";" and "," is allowed; a trailing ";" too', () => {
  const { record, warnings } = parseRecord('v = DMARC1 ;\tp = none ; rua = mailto:a@example.org , mailto:b@example.org ;  ');
  assert.deepEqual(warnings, []);
  assert.equal(record.policy, 'none');
  assert.deepEqual(
    record.rua.map((u) => u.uri),
    ['mailto:a@example.org', 'mailto:b@example.org'],
  );
  assert.ok(isDMARCRecord('v=DMARC1'));
  assert.ok(isDMARCRecord('  v=DMARC1;p=none'));
});

test('only records starting with v=DMARC1 are DMARC records', () => {
  for (const txt of ['', 'p=reject; v=DMARC1', 'v=DMARC10; p=reject', 'v=DMARC1p=reject', 'v=spf1 -all', 'xv=DMARC1; p=none', 'v=DMARC2; p=none']) {
    assert.equal(isDMARCRecord(txt), false, txt);
    assert.throws(() => parseRecord(txt), DMARCRecordError, txt);
  }
});

test('a missing or invalid p without rua is refused', () => {
  for (const txt of ['v=DMARC1', 'v=DMARC1;', 'v=DMARC1; sp=reject', 'v=DMARC1; p=block', 'v=DMARC1; p=', 'v=DMARC1; p=reject; sp=bogus']) {
    assert.throws(() => parseRecord(txt), /p=/, txt);
  }
});

test('a missing or invalid p with a valid rua reads as p=none (RFC 7489 6.6.3 step 6)', () => {
  for (const txt of ['v=DMARC1; rua=mailto:d@example.org', 'v=DMARC1; p=block; rua=mailto:d@example.org', 'v=DMARC1; p=reject; sp=x; rua=mailto:d@example.org']) {
    const { record, warnings } = parseRecord(txt);
    assert.equal(record.policy, 'none', txt);
    assert.equal(record.subdomainPolicy, undefined, txt);
    assert.equal(record.rua.length, 1);
    assert.match(warnings.join(), /treated as p=none/);
  }
  // An rua with only invalid URIs does not save the record.
  assert.throws(() => parseRecord('v=DMARC1; rua=not a uri'), /no valid rua/);
});

test('p need not come right after v', () => {
  assert.equal(parseRecord('v=DMARC1; rua=mailto:d@example.org; p=reject').record.policy, 'reject');
});

test('bad values of optional tags give defaults and warnings (RFC 7489 6.3)', () => {
  const { record, warnings } = parseRecord('v=DMARC1; p=reject; adkim=x; aspf=; pct=101; ri=-1; fo=2; rf=a_b; garbage; =x');
  assert.equal(record.adkim, 'r');
  assert.equal(record.aspf, 'r');
  assert.equal(record.pct, 100);
  assert.equal(record.ri, 86400);
  assert.deepEqual(record.fo, ['0']);
  assert.deepEqual(record.rf, ['afrf']);
  assert.equal(warnings.length, 8);
  for (const pct of ['abc', '1000', '-5', '50.5', '']) assert.equal(parseRecord(`v=DMARC1; p=none; pct=${pct}`).record.pct, 100, pct);
  assert.equal(parseRecord('v=DMARC1; p=none; pct=0').record.pct, 0);
  assert.equal(parseRecord('v=DMARC1; p=none; pct=007').record.pct, 7);
});

test('unknown tags are ignored', () => {
  const { record, warnings } = parseRecord('v=DMARC1; p=reject; np=none; psd=n; t=y; x_future=1');
  assert.equal(record.policy, 'reject');
  assert.deepEqual(warnings, []);
});

test('a repeated tag voids the record (RFC 6376 3.2)', () => {
  assert.throws(() => parseRecord('v=DMARC1; p=none; p=reject'), /duplicate tag p/);
  assert.throws(() => parseRecord('v=DMARC1; p=none; PCT=5; pct=6'), /duplicate tag pct/);
  assert.throws(() => parseRecord('v=DMARC1; v=DMARC1; p=none'), /version/);
});

test('report URIs: size units are powers of two; bad URIs are dropped', () => {
  const { record, warnings } = parseRecord(
    'v=DMARC1; p=none; rua=mailto:a@example.org!100,mailto:b@example.org!2K,mailto:c@example.org!3g,mailto:d@example.org!1t,https://r.example/x?a=b;',
  );
  assert.deepEqual(
    record.rua.map((u) => u.maxBytes),
    [100, 2048, 3 * 2 ** 30, 2 ** 40, undefined],
  );
  assert.deepEqual(warnings, []);
  const bad = parseRecord('v=DMARC1; p=none; rua=mailto:a@example.org!, nouri, mailto:b@example.org!5x, mailto:c@exa mple.org, mailto:%zz@example.org, :x, mailto:ok@example.org');
  assert.deepEqual(
    bad.record.rua.map((u) => u.uri),
    ['mailto:ok@example.org'],
  );
  assert.equal(bad.warnings.length, 6);
  // "!" and "," inside a URI must be encoded (RFC 7489 6.2), so they always split.
  assert.deepEqual(
    parseRecord('v=DMARC1; p=none; rua=mailto:a%21b%2Cc@example.org').record.rua,
    [{ uri: 'mailto:a%21b%2Cc@example.org' }],
  );
});

test('hostile input is handled in linear time', () => {
  const spaces = ' '.repeat(200_000);
  const t0 = process.hrtime.bigint();
  assert.throws(() => parseRecord(`v=DMARC1;${spaces}x${spaces}y`), DMARCRecordError);
  const { record } = parseRecord(`v=DMARC1; p=none; rua=mailto:a@example.org${'!'.repeat(100_000)}; ruf=${'a'.repeat(100_000)}:${spaces}x`);
  assert.equal(record.rua.length, 0);
  parseRecord(`v=DMARC1; p=reject; ${Array.from({ length: 50_000 }, (_, i) => `x${i}=1;`).join('')}`);
  assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 2000);
});

test('formatRecord leaves out defaults and parses back', () => {
  assert.equal(formatRecord({ policy: 'reject' }), 'v=DMARC1; p=reject');
  assert.equal(formatRecord({ policy: 'none', ...DEFAULTS }), 'v=DMARC1; p=none');
  const full = {
    policy: 'quarantine' as const,
    subdomainPolicy: 'reject' as const,
    adkim: 's' as const,
    aspf: 's' as const,
    pct: 10,
    rua: [{ uri: 'mailto:dmarc@example.org', maxBytes: 10 * 1024 * 1024 }, { uri: 'mailto:x@example.org', maxBytes: 1000 }],
    ruf: [{ uri: 'mailto:forensic@example.org' }],
    fo: ['1', 's'],
    rf: ['afrf'],
    ri: 3600,
  };
  const txt = formatRecord(full);
  assert.equal(
    txt,
    'v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=s; ri=3600; fo=1:s; pct=10; rua=mailto:dmarc@example.org!10m,mailto:x@example.org!1000; ruf=mailto:forensic@example.org',
  );
  assert.deepEqual(parseRecord(txt), { record: full, warnings: [] });
});

test('formatRecord encodes characters that would split the record', () => {
  const txt = formatRecord({ policy: 'none', rua: [{ uri: 'mailto:a,b!c;d@example.org' }] });
  assert.equal(txt, 'v=DMARC1; p=none; rua=mailto:a%2Cb%21c%3Bd@example.org');
  assert.equal(parseRecord(txt).record.rua.length, 1);
});
