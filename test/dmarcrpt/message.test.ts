// Finding, unpacking and reading the report in report messages shaped like those Google,
// Microsoft and Yahoo send; zip and gzip bombs and broken archives.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { extractReportXML, parseMessageReport } from '../../src/dmarcrpt/message.js';
import { parseReport, ReportError } from '../../src/dmarcrpt/report.js';
import { zipEntries, zipRead, ZipError } from '../../src/dmarcrpt/zip.js';
import { makeZip } from './ziptool.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/dmarcrpt/${name}`, import.meta.url));
const GOOGLE_ZIP = 'google.com!example.org!1717372800!1717459199.zip';
const MICROSOFT_GZ = 'enterprise.protection.outlook.com!example.org!1717372800!1717459200.xml.gz';
const YAHOO_GZ = 'yahoo.com!example.org!1717372800!1717459199.xml.gz';

const base64 = (b: Buffer) => b.toString('base64').replace(/.{76}/g, '$&\r\n');

function header(from: string, subject: string, more: string[]): string[] {
  return [`From: ${from}`, 'To: dmarc@example.org', `Subject: ${subject}`, 'Date: Tue, 4 Jun 2024 03:12:45 +0000', `Message-ID: <${subject.length}.${from}>`, 'MIME-Version: 1.0', ...more];
}

/** A single-part message whose body is the attachment, as Google sends them. */
function singlePart(type: string, name: string, data: Buffer): Buffer {
  const lines = header('noreply-dmarc-support@google.com', 'Report domain: example.org Submitter: google.com Report-ID: 4821957736190357712', [
    `Content-Type: ${type}; name="${name}"`,
    `Content-Disposition: attachment; filename="${name}"`,
    'Content-Transfer-Encoding: base64',
  ]);
  return Buffer.from([...lines, '', base64(data), ''].join('\r\n'));
}

/** A text part and the attachment, as Microsoft and Yahoo send them. */
function multipart(from: string, type: string, name: string, data: Buffer): Buffer {
  const b = '_000_report_boundary_';
  const lines = header(from, 'Report Domain: example.org Submitter: receiver Report-ID: <x>', [`Content-Type: multipart/mixed; boundary="${b}"`]);
  return Buffer.from(
    [
      ...lines,
      '',
      `--${b}`,
      'Content-Type: text/plain; charset="us-ascii"',
      '',
      'This is a DMARC aggregate report for example.org.',
      '',
      `--${b}`,
      `Content-Type: ${type}; name="${name}"`,
      `Content-Disposition: attachment; filename="${name}"; size=${data.length}`,
      'Content-Transfer-Encoding: base64',
      '',
      base64(data),
      `--${b}--`,
      '',
    ].join('\r\n'),
  );
}

test('Google: a single-part application/zip message', () => {
  const msg = singlePart('application/zip', GOOGLE_ZIP, fixture(GOOGLE_ZIP));
  assert.deepEqual(parseMessageReport(msg), parseReport(fixture('google.xml')));
});

test('Microsoft: multipart with an application/gzip attachment', () => {
  const msg = multipart('dmarcreport@microsoft.com', 'application/gzip', MICROSOFT_GZ, fixture(MICROSOFT_GZ));
  assert.deepEqual(parseMessageReport(msg), parseReport(fixture('microsoft.xml')));
});

test('Yahoo: multipart with a gzip attachment', () => {
  const msg = multipart('noreply@dmarc.yahoo.com', 'application/gzip', YAHOO_GZ, fixture(YAHOO_GZ));
  assert.equal(parseMessageReport(msg).reportMetadata.orgName, 'Yahoo');
});

test('the archive fixtures, made by other tools, unpack to the XML fixtures', () => {
  const zip = fixture(GOOGLE_ZIP);
  const entries = zipEntries(zip);
  assert.deepEqual(
    entries.map((e) => e.name),
    ['google.com!example.org!1717372800!1717459199.xml'],
  );
  assert.deepEqual(zipRead(zip, entries[0]!, 1 << 20), fixture('google.xml'));
  assert.deepEqual(extractReportXML(multipart('x@example.net', 'application/gzip', YAHOO_GZ, fixture(YAHOO_GZ))), fixture('yahoo.xml'));
});

test('other shapes: XML in the body, octet-stream with a file name, x- types, mislabelled content', () => {
  const xml = fixture('yahoo.xml');
  const want = parseReport(xml);
  const inline = Buffer.from([...header('r@example.net', 'Report', ['Content-Type: text/xml; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable']), '', xml.toString().replace(/=/g, '=3D').replace(/\n/g, '\r\n'), ''].join('\r\n'));
  assert.deepEqual(parseMessageReport(inline), want);
  assert.deepEqual(parseMessageReport(multipart('r@example.net', 'application/octet-stream', 'r!example.org!1!2.xml.gz', gzipSync(xml))), want);
  assert.deepEqual(parseMessageReport(multipart('r@example.net', 'application/x-zip-compressed', 'report.zip', makeZip([{ name: 'report.xml', data: xml }]))), want);
  assert.deepEqual(parseMessageReport(multipart('r@example.net', 'application/xml', 'report.xml', xml)), want);
  // The content's magic number wins over a wrong label.
  assert.deepEqual(parseMessageReport(multipart('r@example.net', 'application/gzip', 'report.xml.gz', makeZip([{ name: 'report.xml', data: xml }]))), want);
  // A zip with a readme next to the report.
  const two = makeZip([
    { name: 'README.txt', data: Buffer.from('see the xml') },
    { name: 'dir/', data: Buffer.alloc(0), method: 0 },
    { name: 'report.XML', data: xml, method: 0 },
  ]);
  assert.deepEqual(parseMessageReport(singlePart('application/zip', 'r.zip', two)), want);
});

test('a report forwarded as an attached message is found', () => {
  const inner = multipart('dmarcreport@microsoft.com', 'application/gzip', MICROSOFT_GZ, fixture(MICROSOFT_GZ)).toString();
  const outer = Buffer.from(
    [...header('admin@example.org', 'Fwd: report', ['Content-Type: multipart/mixed; boundary=outer']), '', '--outer', 'Content-Type: text/plain', '', 'FYI', '--outer', 'Content-Type: message/rfc822', '', inner, '--outer--', ''].join('\r\n'),
  );
  assert.equal(parseMessageReport(outer).reportMetadata.orgName, 'Enterprise Outlook');
});

test('messages without a report', () => {
  const plain = Buffer.from([...header('a@example.net', 'hello', ['Content-Type: text/plain']), '', 'no report here', ''].join('\r\n'));
  assert.throws(() => parseMessageReport(plain), (e: unknown) => e instanceof ReportError && /no report in message/.test(e.message));
  const notXML = multipart('a@example.net', 'application/gzip', 'x.xml.gz', gzipSync('just text'));
  assert.throws(() => parseMessageReport(notXML), (e: unknown) => e instanceof ReportError && /malformed XML/.test(e.message));
  const badGzip = multipart('a@example.net', 'application/gzip', 'x.xml.gz', Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from('garbage')]));
  assert.throws(() => parseMessageReport(badGzip), (e: unknown) => e instanceof ReportError && /^gzip:/.test(e.message));
});

test('gzip bombs stop at the size limit', () => {
  const bomb = gzipSync(Buffer.alloc(21 * 1024 * 1024, 0x20));
  assert.ok(bomb.length < 100_000);
  const t0 = performance.now();
  assert.throws(() => extractReportXML(singlePart('application/gzip', 'r.xml.gz', bomb)), (e: unknown) => e instanceof ReportError && /^gzip: .*20971520/.test(e.message));
  assert.throws(() => extractReportXML(singlePart('application/gzip', 'r.xml.gz', gzipSync(Buffer.alloc(2000, 0x20))), { maxBytes: 1000 }), /gzip: .*1000/);
  // Concatenated members count together.
  const members = Buffer.concat([gzipSync(Buffer.alloc(800, 0x20)), gzipSync(Buffer.alloc(800, 0x20))]);
  assert.throws(() => extractReportXML(singlePart('application/gzip', 'r.xml.gz', members), { maxBytes: 1000 }), /gzip/);
  assert.ok(performance.now() - t0 < 5000);
});

test('zip bombs: a declared size over the limit, and a stream that unpacks to more than it declares', () => {
  const big = Buffer.alloc(21 * 1024 * 1024, 0x20);
  const declared = makeZip([{ name: 'r.xml', data: big }]);
  assert.throws(() => extractReportXML(singlePart('application/zip', 'r.zip', declared)), /zip: r\.xml: 22020096 bytes unpacked, limit is 20971520/);
  const lying = makeZip([{ name: 'r.xml', data: big, size: 100 }]);
  assert.throws(() => extractReportXML(singlePart('application/zip', 'r.zip', lying)), (e: unknown) => e instanceof ReportError && /zip: r\.xml: .*20971520/.test(e.message));
  const small = makeZip([{ name: 'r.xml', data: Buffer.alloc(5000, 0x20), size: 100 }]);
  assert.throws(() => extractReportXML(singlePart('application/zip', 'r.zip', small)), /zip: r\.xml: .*(5000|100)/);
});

test('broken and unsupported zip archives give clear errors', () => {
  const xml = fixture('yahoo.xml');
  const good = makeZip([{ name: 'r.xml', data: xml }]);
  const cases: [Buffer, RegExp][] = [
    [Buffer.from('PK\x03\x04 not really a zip'), /no end of central directory/],
    [good.subarray(0, good.length - 30), /no end of central directory|central directory/],
    [makeZip([{ name: 'r.xml', data: xml, flags: 1 }]), /encrypted/],
    [makeZip([{ name: 'r.xml', data: xml, method: 12 }]), /compression method 12/],
    [makeZip([{ name: 'r.xml', data: xml, crc: 1234 }]), /CRC-32 mismatch/],
    [makeZip([{ name: 'r.xml', data: xml, method: 0, size: xml.length - 1 }]), /bytes unpacked/],
    [makeZip([{ name: 'r.xml', data: xml }], { entryCount: 0xffff }), /zip64/],
    [makeZip([{ name: 'r.xml', data: xml }], { dirOffset: 5 }), /central directory/],
    [makeZip([{ name: 'a.xml', data: xml }, { name: 'b.xml', data: xml }]), /2 XML files/],
    [makeZip([]), /0 files/],
  ];
  for (const [zip, message] of cases) {
    assert.throws(() => extractReportXML(singlePart('application/zip', 'r.zip', zip)), (e: unknown) => e instanceof ReportError && message.test(e.message), message.source);
  }
  // A local header offset pointing past the end.
  const entries = zipEntries(good);
  assert.throws(() => zipRead(good, { ...entries[0]!, offset: good.length - 10 }, 1 << 20), ZipError);
});

test('damaged reports never crash: random corruption gives a report or a ReportError', () => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  const sources = [fixture(GOOGLE_ZIP), fixture(MICROSOFT_GZ), fixture('yahoo.xml')];
  let parsed = 0;
  for (let i = 0; i < 300; i++) {
    const data = Buffer.from(sources[i % sources.length]!);
    for (let n = 1 + Math.floor(random() * 4); n > 0; n--) data[Math.floor(random() * data.length)] = Math.floor(random() * 256);
    const cut = random() < 0.2 ? data.subarray(0, Math.floor(random() * data.length)) : data;
    try {
      parseMessageReport(singlePart(['application/zip', 'application/gzip', 'text/xml'][i % 3]!, 'r', cut));
      parsed++;
    } catch (e) {
      assert.ok(e instanceof ReportError, String(e));
    }
  }
  assert.ok(parsed < 300);
});
