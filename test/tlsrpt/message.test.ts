import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { composeReportMessage, reportFromMessage } from '../../src/tlsrpt/message.js';
import { buildReport, parseReport, reportJSON, ReportError } from '../../src/tlsrpt/report.js';
import { allParts, parseMessage } from '../../src/message/part.js';
import { decodedBody } from '../../src/message/decode.js';
import { getParam } from '../../src/message/params.js';

const report = buildReport(
  {
    organizationName: 'Postern at mail.example.net',
    start: new Date('2024-03-10T00:00:00Z'),
    end: new Date('2024-03-11T00:00:00Z'),
    contactInfo: 'postmaster@example.net',
    reportId: '20240310.example.org.1',
  },
  [
    {
      policyType: 'sts',
      policyStrings: ['version: STSv1', 'mode: enforce', 'mx: mx.example.org', 'max_age: 86400'],
      policyDomain: 'example.org',
      mxHosts: ['mx.example.org'],
      successfulSessions: 7,
      failedSessions: 1,
      failures: [{ resultType: 'certificate-host-mismatch', receivingMXHostname: 'mx.example.org', receivingIP: '192.0.2.25', failedSessionCount: 1 }],
    },
  ],
);

const base = {
  from: 'tlsrpt@mail.example.net',
  to: 'tls-reports@example.org',
  date: new Date('2024-03-11T01:02:03Z'),
  submitter: 'mail.example.net',
  report,
  messageId: 'report-1@mail.example.net',
};

function header(msg: Buffer, name: string): string | undefined {
  const head = msg.toString('utf8').split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ');
  return head.split('\r\n').find((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'))?.slice(name.length + 1).trim();
}

test('the report message has the header fields of RFC 8460 5.3', () => {
  const msg = composeReportMessage(base);
  assert.equal(header(msg, 'From'), 'tlsrpt@mail.example.net');
  assert.equal(header(msg, 'To'), 'tls-reports@example.org');
  assert.equal(header(msg, 'Date'), 'Mon, 11 Mar 2024 01:02:03 +0000');
  assert.equal(header(msg, 'Subject'), 'Report Domain: example.org Submitter: mail.example.net Report-ID: <20240310.example.org.1>');
  assert.equal(header(msg, 'Message-ID'), '<report-1@mail.example.net>');
  assert.equal(header(msg, 'TLS-Report-Domain'), 'example.org');
  assert.equal(header(msg, 'TLS-Report-Submitter'), 'mail.example.net');
  assert.equal(header(msg, 'TLS-Required'), 'No');
  assert.equal(header(msg, 'MIME-Version'), '1.0');
  assert.match(header(msg, 'Content-Type') ?? '', /^multipart\/report; report-type="tlsrpt"; boundary="[^"]+"$/);
  // Lines end in CRLF and stay short.
  const text = msg.toString('latin1');
  assert.ok(!/[^\r]\n/.test(text));
  assert.ok(text.split('\r\n').every((l) => l.length <= 78), 'line longer than 78');
});

test('the MIME structure: a text part and the gzipped report with its file name (RFC 8460 5.1, 5.3)', () => {
  const msg = composeReportMessage(base);
  const root = parseMessage(msg);
  assert.equal(`${root.type}/${root.subtype}`, 'multipart/report');
  assert.equal(getParam(root.params, 'report-type'), 'tlsrpt');
  const [text, attachment] = root.parts ?? [];
  assert.equal(`${text?.type}/${text?.subtype}`, 'text/plain');
  assert.match(decodedBody(msg, text!).toString(), /aggregate TLS report from mail\.example\.net about example\.org/);
  assert.equal(`${attachment?.type}/${attachment?.subtype}`, 'application/tlsrpt+gzip');
  assert.equal(attachment?.disposition, 'attachment');
  assert.equal(getParam(attachment?.dispositionParams, 'filename'), 'mail.example.net!example.org!1710028800!1710115200.json.gz');
  const json = gunzipSync(decodedBody(msg, attachment!)).toString();
  assert.deepEqual(parseReport(json), report);
  assert.deepEqual(reportFromMessage(msg), report);
});

test('uncompressed reports are application/tlsrpt+json', () => {
  const msg = composeReportMessage({ ...base, gzip: false });
  const part = allParts(parseMessage(msg)).find((p) => p.subtype.startsWith('tlsrpt'));
  assert.equal(part?.subtype, 'tlsrpt+json');
  assert.equal(getParam(part?.dispositionParams, 'filename'), 'mail.example.net!example.org!1710028800!1710115200.json');
  assert.equal(decodedBody(msg, part!).toString(), reportJSON(report));
  assert.deepEqual(reportFromMessage(msg), report);
});

test('values cannot break out of their header fields', () => {
  const msg = composeReportMessage({ ...base, submitter: 'mail.example.net\r\nBcc: x@example.com', report: { ...report, reportId: 'id\r\nX-Injected: 1' } });
  const head = msg.toString().split('\r\n\r\n')[0]!;
  assert.ok(!/^Bcc:/m.test(head));
  assert.ok(!/^X-Injected:/m.test(head));
});

test('the policy domain defaults to the first policy and is required', () => {
  assert.throws(() => composeReportMessage({ ...base, report: { ...report, policies: [] } }), /needs a policy domain/);
  const msg = composeReportMessage({ ...base, report: { ...report, policies: [] }, policyDomain: 'example.com' });
  assert.equal(header(msg, 'TLS-Report-Domain'), 'example.com');
});

test('a report message as large senders send it', () => {
  const gz = gzipSync(readFileSync(new URL('../fixtures/tlsrpt/google-style.json', import.meta.url)));
  const msg = Buffer.from(
    [
      'Return-Path: <noreply-smtp-tls-reporting@google.com>',
      'From: noreply-smtp-tls-reporting@google.com',
      'To: tls-reports@example.org',
      'Subject: Report Domain: example.org Submitter: google.com Report-ID: <2024-03-10T00:00:00Z_example.org@google.com>',
      'TLS-Report-Domain: example.org',
      'TLS-Report-Submitter: google.com',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; boundary="000000000000a1b2c3"; report-type=tlsrpt',
      '',
      '--000000000000a1b2c3',
      'Content-Type: text/plain; charset="UTF-8"',
      '',
      'This is an aggregate TLS report from google.com',
      '',
      '--000000000000a1b2c3',
      'Content-Type: application/tlsrpt+gzip; name="google.com!example.org!1710028800!1710115199!001.json.gz"',
      'Content-Disposition: attachment; filename="google.com!example.org!1710028800!1710115199!001.json.gz"',
      'Content-Transfer-Encoding: base64',
      '',
      gz.toString('base64').replace(/.{76}/g, '$&\r\n'),
      '--000000000000a1b2c3--',
      '',
    ].join('\r\n'),
  );
  const r = reportFromMessage(msg);
  assert.equal(r.organizationName, 'Google Inc.');
  assert.equal(r.policies[0]!.failedSessions, 3);
});

test('a report attached under a generic type is found by its file name', () => {
  const json = readFileSync(new URL('../fixtures/tlsrpt/microsoft-style.json', import.meta.url));
  const msg = Buffer.from(
    [
      'From: reports@example.com',
      'Content-Type: multipart/mixed; boundary=b',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'hello',
      '--b',
      'Content-Type: application/octet-stream',
      'Content-Disposition: attachment; filename="example.com!example.org!1710028800!1710115199.json"',
      'Content-Transfer-Encoding: base64',
      '',
      json.toString('base64'),
      '--b--',
      '',
    ].join('\r\n'),
  );
  assert.equal(reportFromMessage(msg).organizationName, 'Microsoft Corporation');
});

test('messages without a report, or with a bad one, give clear errors', () => {
  assert.throws(() => reportFromMessage(Buffer.from('From: a@example.org\r\nSubject: hi\r\n\r\nno report here\r\n')), (err: unknown) => err instanceof ReportError && /no TLS report/.test(err.message));
  const broken = Buffer.from('Content-Type: application/tlsrpt+json\r\n\r\n{"organization-name": 1}\r\n');
  assert.throws(() => reportFromMessage(broken), (err: unknown) => err instanceof ReportError && /organization-name: expected a string/.test(err.message));
  const bomb = gzipSync(Buffer.alloc(32 * 1024 * 1024, ' '));
  const big = Buffer.from(`Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n${bomb.toString('base64')}\r\n`);
  assert.throws(() => reportFromMessage(big, { maxSize: 1024 * 1024 }), /larger than 1048576 bytes after decompression/);
});
