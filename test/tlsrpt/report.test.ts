import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { buildReport, parseReport, reportJSON, ReportError, type PolicyResult, type Report } from '../../src/tlsrpt/report.js';
import { parsePolicy, policyLines } from '../../src/mtasts/policy.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/tlsrpt/${name}`, import.meta.url));

const meta = {
  organizationName: 'Postern at mail.example.net',
  start: new Date('2024-03-10T00:00:00Z'),
  end: new Date('2024-03-11T00:00:00Z'),
  contactInfo: 'postmaster@example.net',
  reportId: '20240310.example.org.1',
};

const stsPolicy = {
  policyType: 'sts' as const,
  policyStrings: policyLines(parsePolicy('version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 86400\n')),
  policyDomain: 'example.org',
  mxHosts: ['mx.example.org'],
};

test('a report built from results survives JSON and reading back', () => {
  const results: PolicyResult[] = [
    { ...stsPolicy, successfulSessions: 10, failedSessions: 0, failures: [] },
    {
      policyType: 'tlsa',
      policyStrings: ['3 1 1 0A0B'],
      policyDomain: 'example.org',
      mxHosts: ['mx.example.org'],
      successfulSessions: 0,
      failedSessions: 1,
      failures: [{ resultType: 'dane-required', sendingMTAIP: '192.0.2.1', receivingMXHostname: 'mx.example.org', receivingIP: '192.0.2.25', receivingMXHelo: 'mx.example.org', failedSessionCount: 1, failureReasonCode: 'no match', additionalInformation: 'https://mail.example.net/tlsrpt' }],
    },
    { policyType: 'no-policy-found', policyDomain: 'example.org', successfulSessions: 3, failedSessions: 0, failures: [] },
  ];
  const report = buildReport(meta, results);
  assert.deepEqual(parseReport(reportJSON(report)), report);
  assert.deepEqual(parseReport(Buffer.from(reportJSON(report))), report);
  assert.deepEqual(parseReport(gzipSync(reportJSON(report))), report);
});

test('the JSON uses the field names and shapes of RFC 8460 4.4', () => {
  const report = buildReport(meta, [
    { ...stsPolicy, successfulSessions: 5, failedSessions: 1, failures: [{ resultType: 'starttls-not-supported', receivingMXHostname: 'mx.example.org', failedSessionCount: 1 }] },
    { policyType: 'no-policy-found', policyDomain: 'example.org', successfulSessions: 2, failedSessions: 0, failures: [] },
  ]);
  assert.deepEqual(JSON.parse(reportJSON(report)), {
    'organization-name': 'Postern at mail.example.net',
    'date-range': { 'start-datetime': '2024-03-10T00:00:00Z', 'end-datetime': '2024-03-11T00:00:00Z' },
    'contact-info': 'postmaster@example.net',
    'report-id': '20240310.example.org.1',
    policies: [
      {
        policy: {
          'policy-type': 'sts',
          'policy-string': ['version: STSv1', 'mode: enforce', 'mx: mx.example.org', 'max_age: 86400'],
          'policy-domain': 'example.org',
          'mx-host': ['mx.example.org'],
        },
        summary: { 'total-successful-session-count': 5, 'total-failure-session-count': 1 },
        'failure-details': [{ 'result-type': 'starttls-not-supported', 'receiving-mx-hostname': 'mx.example.org', 'failed-session-count': 1 }],
      },
      {
        policy: { 'policy-type': 'no-policy-found', 'policy-domain': 'example.org' },
        summary: { 'total-successful-session-count': 2, 'total-failure-session-count': 0 },
      },
    ],
  });
});

test('results for the same policy and the same failure are added up', () => {
  const fail = (ip: string) => ({ resultType: 'certificate-expired' as const, receivingIP: ip, receivingMXHostname: 'mx.example.org', failedSessionCount: 1 });
  const report = buildReport(meta, [
    { ...stsPolicy, successfulSessions: 1, failedSessions: 0, failures: [] },
    { ...stsPolicy, successfulSessions: 0, failedSessions: 1, failures: [fail('192.0.2.1')] },
    { ...stsPolicy, successfulSessions: 0, failedSessions: 1, failures: [fail('192.0.2.1')] },
    { ...stsPolicy, successfulSessions: 0, failedSessions: 1, failures: [fail('192.0.2.2')] },
    { ...stsPolicy, policyStrings: ['version: STSv1', 'mode: testing'], successfulSessions: 4, failedSessions: 0, failures: [] },
  ]);
  assert.equal(report.policies.length, 2);
  const p = report.policies[0]!;
  assert.equal(p.successfulSessions, 1);
  assert.equal(p.failedSessions, 3);
  assert.deepEqual(p.failures, [
    { ...fail('192.0.2.1'), failedSessionCount: 2 },
    { ...fail('192.0.2.2'), failedSessionCount: 1 },
  ]);
  assert.equal(report.policies[1]!.successfulSessions, 4);
});

test('a report in the shape Google sends', () => {
  const r = parseReport(fixture('google-style.json'));
  assert.equal(r.organizationName, 'Google Inc.');
  assert.equal(r.contactInfo, 'smtp-tls-reporting@google.com');
  assert.equal(r.start.toISOString(), '2024-03-10T00:00:00.000Z');
  assert.equal(r.end.toISOString(), '2024-03-10T23:59:59.000Z');
  assert.equal(r.policies.length, 1);
  const p = r.policies[0]!;
  assert.equal(p.policyType, 'sts');
  assert.deepEqual(p.mxHosts, ['mx1.example.org', 'mx2.example.org']);
  assert.equal(parsePolicy(p.policyStrings!.join('\n')).mode, 'enforce');
  assert.equal(p.successfulSessions, 482);
  assert.deepEqual(p.failures, [{ resultType: 'certificate-expired', sendingMTAIP: '209.85.220.41', receivingMXHostname: 'mx2.example.org', receivingIP: '192.0.2.25', failedSessionCount: 3 }]);
  // Gzipped, as sent in application/tlsrpt+gzip.
  assert.deepEqual(parseReport(gzipSync(fixture('google-style.json'))), r);
});

test('a report in the shape Microsoft sends, with an sts and a tlsa policy', () => {
  const r = parseReport(fixture('microsoft-style.json'));
  assert.equal(r.reportId, '133546176000000000+example.org');
  assert.deepEqual(
    r.policies.map((p) => [p.policyType, p.successfulSessions, p.failedSessions, p.failures.length]),
    [
      ['sts', 97, 0, 0],
      ['tlsa', 40, 2, 1],
    ],
  );
  assert.deepEqual(r.policies[1]!.failures[0], {
    resultType: 'validation-failure',
    sendingMTAIP: '2a01:111:f403:2c14::700',
    receivingMXHostname: 'mx1.example.org',
    receivingMXHelo: 'mx1.example.org',
    receivingIP: '2001:db8::25',
    failedSessionCount: 2,
    failureReasonCode: 'X509_V_ERR_CERT_SIGNATURE_FAILURE',
  });
});

test('the example of RFC 8460 appendix B, with mx-host as a single string', () => {
  const r = parseReport(fixture('rfc8460-appendix-b.json'));
  const p = r.policies[0]!;
  assert.deepEqual(p.mxHosts, ['*.mail.company-y.example']);
  assert.equal(p.failures.length, 3);
  assert.equal(p.failures.reduce((n, f) => n + f.failedSessionCount, 0), 303);
  assert.equal(p.failures[1]!.additionalInformation, 'https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported');
  // Written back, mx-host becomes a list (RFC 8460 errata 6241); read again, nothing changed.
  assert.deepEqual(parseReport(reportJSON(r)), r);
});

test('no-policy-found, time zone offsets, no contact-info, unknown fields ignored', () => {
  const r = parseReport(fixture('no-policy-found.json'));
  assert.equal(r.contactInfo, undefined);
  assert.equal(r.start.toISOString(), '2024-03-09T23:00:00.000Z');
  assert.equal(r.end.toISOString(), '2024-03-10T23:00:00.000Z');
  assert.deepEqual(r.policies[0], {
    policyType: 'no-policy-found',
    policyDomain: 'example.org',
    successfulSessions: 12,
    failedSessions: 1,
    failures: [{ resultType: 'starttls-not-supported', receivingMXHostname: 'mx.example.org', failedSessionCount: 1 }],
  });
});

test('malformed reports: the error says what and where', () => {
  const good = JSON.parse(fixture('google-style.json').toString()) as Record<string, unknown>;
  const edit = (f: (r: any) => void) => {
    const r = structuredClone(good);
    f(r);
    return JSON.stringify(r);
  };
  const cases: [string | Buffer, RegExp][] = [
    ['', /invalid JSON/],
    ['{"organization-name": ', /invalid JSON/],
    ['[]', /^report: expected an object$/],
    ['null', /^report: expected an object$/],
    [edit((r) => delete r['organization-name']), /^organization-name: expected a string$/],
    [edit((r) => (r['report-id'] = 42)), /^report-id: expected a string$/],
    [edit((r) => delete r['date-range']), /^date-range: expected an object$/],
    [edit((r) => (r['date-range']['start-datetime'] = '2024-03-10')), /^date-range\.start-datetime: "2024-03-10" is not an RFC 3339 date-time$/],
    [edit((r) => (r['date-range']['end-datetime'] = '2024-13-45T99:00:00Z')), /^date-range\.end-datetime: .* is not an RFC 3339 date-time$/],
    [edit((r) => (r['contact-info'] = ['x'])), /^contact-info: expected a string$/],
    [edit((r) => (r.policies = {})), /^policies: expected a list$/],
    [edit((r) => (r.policies[0].policy['policy-type'] = 'dmarc')), /^policies\[0\]\.policy\.policy-type: unknown type "dmarc"$/],
    [edit((r) => delete r.policies[0].policy['policy-domain']), /^policies\[0\]\.policy\.policy-domain: expected a string$/],
    [edit((r) => (r.policies[0].policy['mx-host'] = [1])), /^policies\[0\]\.policy\.mx-host\[0\]: expected a string$/],
    [edit((r) => (r.policies[0].policy['policy-string'] = 5)), /^policies\[0\]\.policy\.policy-string: expected a list$/],
    [edit((r) => delete r.policies[0].summary), /^policies\[0\]\.summary: expected an object$/],
    [edit((r) => (r.policies[0].summary['total-successful-session-count'] = -1)), /total-successful-session-count: expected a count/],
    [edit((r) => (r.policies[0].summary['total-failure-session-count'] = 1.5)), /total-failure-session-count: expected a count/],
    [edit((r) => (r.policies[0].summary['total-failure-session-count'] = '3')), /total-failure-session-count: expected a count/],
    [edit((r) => (r.policies[0].summary['total-failure-session-count'] = 1e300)), /expected a count/],
    [edit((r) => (r.policies[0]['failure-details'] = [{}])), /^policies\[0\]\.failure-details\[0\]\.result-type: expected a string$/],
    [edit((r) => (r.policies[0]['failure-details'][0]['result-type'] = '')), /result-type: empty/],
    [edit((r) => delete r.policies[0]['failure-details'][0]['failed-session-count']), /failed-session-count: expected a count/],
    [edit((r) => (r.policies[0]['failure-details'][0]['receiving-ip'] = {})), /^policies\[0\]\.failure-details\[0\]\.receiving-ip: expected a string$/],
    [Buffer.from([0x1f, 0x8b, 1, 2, 3]), /^bad gzip data/],
    [gzipSync('{"not": "a report"}'), /^organization-name: expected a string$/],
  ];
  for (const [input, re] of cases) {
    assert.throws(
      () => parseReport(input),
      (err: unknown) => err instanceof ReportError && re.test(err.message),
      typeof input === 'string' ? input.slice(0, 80) : 'buffer',
    );
  }
});

test('size limits hold before and after decompression', () => {
  const big = Buffer.from(JSON.stringify({ padding: 'x'.repeat(2 * 1024 * 1024) }));
  assert.throws(() => parseReport(big, { maxSize: 1024 * 1024 }), /report larger than 1048576 bytes$/);
  // A small gzip bomb: 64 MiB of zeros compress to about 64 KiB.
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
  assert.ok(bomb.length < 100 * 1024);
  const start = performance.now();
  assert.throws(() => parseReport(bomb), /report larger than 16777216 bytes after decompression/);
  assert.ok(performance.now() - start < 5000);
  // Within the limit, a valid report passes.
  const r: Report = buildReport(meta, [{ ...stsPolicy, successfulSessions: 1, failedSessions: 0, failures: [] }]);
  assert.deepEqual(parseReport(gzipSync(reportJSON(r)), { maxSize: 4096 }), r);
});

test('deeply nested JSON is parsed without trouble and rejected by shape', () => {
  const deep = '['.repeat(100000) + ']'.repeat(100000);
  assert.throws(() => parseReport(deep), { name: 'ReportError', message: 'report: expected an object' });
  const deepField = `{"organization-name": ${'['.repeat(100000)}${']'.repeat(100000)}}`;
  assert.throws(() => parseReport(deepField), { name: 'ReportError', message: 'organization-name: expected a string' });
});
