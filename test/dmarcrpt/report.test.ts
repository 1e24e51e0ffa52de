// Aggregate report XML (RFC 7489 appendix C): the fixtures in the shapes Google, Microsoft and
// Yahoo send, errors, and building reports from evaluations.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseRecord } from '../../src/dmarc/record.js';
import type { DMARCResult } from '../../src/dmarc/verify.js';
import { buildReport, parseReport, policyPublished, ReportError, reportRecords, type Evaluation, type Feedback } from '../../src/dmarcrpt/report.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/dmarcrpt/${name}`, import.meta.url));

test('Google: extra contact info, unknown elements, selector after result', () => {
  const f = parseReport(fixture('google.xml'));
  assert.deepEqual(f.reportMetadata, {
    orgName: 'google.com',
    email: 'noreply-dmarc-support@google.com',
    extraContactInfo: 'https://support.google.com/a/answer/2466580',
    reportID: '4821957736190357712',
    dateRange: { begin: 1717372800, end: 1717459199 },
    errors: [],
  });
  assert.equal(f.version, undefined);
  assert.deepEqual(f.policyPublished, { domain: 'example.org', adkim: 'r', aspf: 'r', p: 'quarantine', sp: 'quarantine', pct: 100 });
  assert.equal(f.records.length, 3);
  assert.deepEqual(f.records[0], {
    row: { sourceIP: '192.0.2.25', count: 14, policyEvaluated: { disposition: 'none', dkim: 'pass', spf: 'pass', reasons: [] } },
    identifiers: { headerFrom: 'example.org' },
    authResults: { dkim: [{ domain: 'example.org', selector: 'postern2024', result: 'pass' }], spf: [{ domain: 'example.org', result: 'pass' }] },
  });
  assert.equal(f.records[1]!.row.sourceIP, '2001:db8:4860::1a');
  assert.deepEqual(f.records[2]!.authResults, { dkim: [], spf: [{ domain: 'mail-sender.example', result: 'softfail' }] });
  assert.equal(f.records[2]!.row.policyEvaluated.disposition, 'quarantine');
  assert.equal(
    f.records.reduce((n, r) => n + r.row.count, 0),
    18,
  );
});

test('Microsoft: version, namespaces, CRLF lines, envelope identifiers and SPF scope', () => {
  const f = parseReport(fixture('microsoft.xml'));
  assert.equal(f.version, '1.0');
  assert.equal(f.reportMetadata.orgName, 'Enterprise Outlook');
  assert.equal(f.reportMetadata.extraContactInfo, undefined);
  assert.deepEqual(f.policyPublished, { domain: 'example.org', adkim: 'r', aspf: 's', p: 'reject', sp: 'reject', pct: 100, fo: '1' });
  assert.deepEqual(f.records[1], {
    row: { sourceIP: '198.51.100.14', count: 1, policyEvaluated: { disposition: 'reject', dkim: 'fail', spf: 'fail', reasons: [] } },
    identifiers: { envelopeTo: 'outlook.example', envelopeFrom: 'bounce.example.org', headerFrom: 'example.org' },
    authResults: {
      dkim: [{ domain: 'example.org', selector: 'postern2024', result: 'fail' }],
      spf: [{ domain: 'bounce.example.org', scope: 'mfrom', result: 'pass' }],
    },
  });
});

test('Yahoo: no sp, and a policy override reason with a comment', () => {
  const f = parseReport(fixture('yahoo.xml'));
  assert.equal(f.reportMetadata.reportID, '1717459382.483920');
  assert.equal(f.policyPublished.sp, undefined);
  assert.deepEqual(f.records[1]!.row.policyEvaluated.reasons, [{ type: 'forwarded', comment: 'arrived through a mailing list that rewrote the body & subject' }]);
});

test('each fixture builds back to XML that parses to the same report', () => {
  for (const name of ['google.xml', 'microsoft.xml', 'yahoo.xml']) {
    const f = parseReport(fixture(name));
    const again = parseReport(buildReport(f));
    assert.deepEqual(again, { ...f, version: f.version ?? '1.0' }, name);
  }
});

const sample: Feedback = {
  version: '1.0',
  reportMetadata: {
    orgName: 'postern.example',
    email: 'postmaster@postern.example',
    extraContactInfo: 'https://postern.example/dmarc?a=1&b=<2>',
    reportID: 'example.org.1717372800',
    dateRange: { begin: 1717372800, end: 1717459199 },
    errors: ['record for "x" & <y> could not be read'],
  },
  policyPublished: { domain: 'example.org', adkim: 's', aspf: 'r', p: 'reject', sp: 'none', pct: 50, fo: '0:d' },
  records: [
    {
      row: { sourceIP: '2001:db8::25', count: 2, policyEvaluated: { disposition: 'quarantine', dkim: 'fail', spf: 'fail', reasons: [{ type: 'sampled_out' }, { type: 'other', comment: 'ünïcödé' }] } },
      identifiers: { envelopeTo: 'postern.example', envelopeFrom: '', headerFrom: 'example.org' },
      authResults: { dkim: [{ domain: 'example.org', selector: 's1', result: 'permerror', humanResult: 'key <missing>' }], spf: [{ domain: 'mx.example.org', scope: 'helo', result: 'none' }] },
    },
  ],
};

test('build then parse gives the same report', () => {
  const xml = buildReport(sample);
  assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<feedback>\n  <version>1.0</version>\n  <report_metadata>\n'));
  assert.match(xml, /<extra_contact_info>https:\/\/postern\.example\/dmarc\?a=1&amp;b=&lt;2&gt;<\/extra_contact_info>/);
  const back = parseReport(xml);
  // An empty envelope_from (null reverse-path) reads back as absent.
  const { envelopeFrom: _, ...ids } = sample.records[0]!.identifiers;
  assert.deepEqual(back, { ...sample, records: [{ ...sample.records[0]!, identifiers: ids }] });
  assert.match(xml, /<envelope_from><\/envelope_from>/);
});

test('element order follows the schema', () => {
  const xml = buildReport(sample);
  const order = ['<version>', '<report_metadata>', '<org_name>', '<email>', '<extra_contact_info>', '<report_id>', '<date_range>', '<begin>', '<end>', '<error>', '<policy_published>', '<domain>', '<adkim>', '<aspf>', '<p>', '<sp>', '<pct>', '<fo>', '<record>', '<row>', '<source_ip>', '<count>', '<policy_evaluated>', '<disposition>', '<identifiers>', '<envelope_to>', '<envelope_from>', '<header_from>', '<auth_results>', '<selector>', '<human_result>', '<scope>'];
  const at = order.map((tag) => xml.indexOf(tag));
  assert.ok(at.every((i) => i >= 0));
  assert.deepEqual([...at].sort((a, b) => a - b), at);
});

test('values are read case-insensitively; SPF "unknown" and "error" are the old names of temperror and permerror', () => {
  const xml = buildReport(sample).replace('<disposition>quarantine<', '<disposition>Quarantine<').replace('<result>none</result>', '<result>unknown</result>');
  const f = parseReport(xml);
  assert.equal(f.records[0]!.row.policyEvaluated.disposition, 'quarantine');
  assert.equal(f.records[0]!.authResults.spf[0]!.result, 'temperror');
  assert.equal(parseReport(buildReport(sample).replace('<result>none</result>', '<result>error</result>')).records[0]!.authResults.spf[0]!.result, 'permerror');
});

test('a default namespace, as in newer reports, is accepted', () => {
  const xml = buildReport(sample).replace('<feedback>', '<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">');
  assert.equal(parseReport(xml).records.length, 1);
});

test('broken reports give errors that name the place', () => {
  const base = buildReport(sample);
  const bad: [string, RegExp][] = [
    ['<report/>', /root element is <report>/],
    ['<feedback/>', /feedback: missing <report_metadata>/],
    [base.replace(/<org_name>.*<\/org_name>/, ''), /report_metadata: missing <org_name>/],
    [base.replace('<begin>1717372800</begin>', '<begin>yesterday</begin>'), /date_range\/begin: not a number/],
    [base.replace('<p>reject</p>', '<p>block</p>'), /policy_published\/p: unknown value "block"/],
    [base.replace('<adkim>s</adkim>', '<adkim>x</adkim>'), /policy_published\/adkim: unknown value/],
    [base.replace('2001:db8::25', '2001:db8::zz'), /record 1: .*source_ip: not an IP address/],
    [base.replace('<count>2</count>', '<count>-2</count>'), /record 1: .*count: not a number/],
    [base.replace('<type>sampled_out</type>', '<type>whim</type>'), /record 1: .*reason\/type: unknown value "whim"/],
    [base.replace('<result>permerror</result>', '<result>great</result>'), /record 1: .*dkim\/result: unknown value/],
    [base.replace(/<header_from>.*<\/header_from>/, ''), /record 1: .*identifiers: missing <header_from>/],
    [base.replace('</feedback>', ''), /malformed XML/],
    ['<!DOCTYPE feedback [<!ENTITY e "x">]><feedback/>', /malformed XML: document type declarations/],
  ];
  for (const [xml, message] of bad) assert.throws(() => parseReport(xml), (e: unknown) => e instanceof ReportError && message.test(e.message), message.source);
});

test('policy_published from a DMARC record', () => {
  const { record } = parseRecord('v=DMARC1; p=reject; adkim=s; pct=20; fo=1:d');
  assert.deepEqual(policyPublished('example.org', record), { domain: 'example.org', adkim: 's', aspf: 'r', p: 'reject', sp: 'reject', pct: 20, fo: '1:d' });
});

test('records from evaluations: identical rows are counted together', () => {
  const { record } = parseRecord('v=DMARC1; p=reject; pct=50');
  const dmarc = (over: Partial<DMARCResult>): DMARCResult => ({
    status: 'fail',
    domain: 'example.org',
    recordDomain: 'example.org',
    record,
    policy: 'reject',
    disposition: 'reject',
    sampledOut: false,
    reject: true,
    alignedSPFPass: false,
    alignedDKIMPass: false,
    authentic: false,
    ...over,
  });
  const ev = (sourceIP: string, d: DMARCResult): Evaluation => ({
    sourceIP,
    dmarc: d,
    envelopeTo: 'postern.example',
    envelopeFrom: 'example.org',
    spf: [{ domain: 'example.org', scope: 'mfrom', result: d.alignedSPFPass ? 'pass' : 'fail' }],
    dkim: [{ domain: 'example.org', selector: 's1', result: d.alignedDKIMPass ? 'pass' : 'fail' }],
  });
  const pass = dmarc({ status: 'pass', disposition: 'none', reject: false, alignedSPFPass: true, alignedDKIMPass: true });
  const sampledOut = dmarc({ disposition: 'quarantine', sampledOut: true });
  const records = reportRecords([ev('192.0.2.1', pass), ev('192.0.2.1', pass), ev('192.0.2.1', pass), ev('203.0.113.5', dmarc({})), ev('203.0.113.5', sampledOut), ev('203.0.113.5', dmarc({}))]);
  assert.deepEqual(
    records.map((r) => [r.row.sourceIP, r.row.count, r.row.policyEvaluated.disposition, r.row.policyEvaluated.dkim, r.row.policyEvaluated.spf, r.row.policyEvaluated.reasons.map((x) => x.type).join()]),
    [
      ['192.0.2.1', 3, 'none', 'pass', 'pass', ''],
      ['203.0.113.5', 2, 'reject', 'fail', 'fail', ''],
      ['203.0.113.5', 1, 'quarantine', 'fail', 'fail', 'sampled_out'],
    ],
  );
  const report: Feedback = {
    reportMetadata: { orgName: 'postern.example', email: 'postmaster@postern.example', reportID: 'r1', dateRange: { begin: 0, end: 86399 }, errors: [] },
    policyPublished: policyPublished('example.org', record),
    records,
  };
  assert.deepEqual(parseReport(buildReport(report)), { ...report, version: '1.0' });
});
