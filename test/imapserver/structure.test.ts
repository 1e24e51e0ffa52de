import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage } from '../../src/message/part.js';
import { textToBytes } from '../../src/message/header.js';
import { findPart, parseSection, renderBody, renderBodyStructure, renderEnvelope, sectionBytes, sectionRange, type Section } from '../../src/imapserver/structure.js';
import { parseImapData } from '../helpers/dovecot.js';

const crlf = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'), 'latin1');
const text = (b: Buffer) => b.toString('latin1');

const MIXED = crlf(`From: "Joe Q. Public" <john.q.public@example.com>
To: A Group:Ed Jones <c@a.test>,joe@where.test;, Mary <mary@x.test>
Subject: Test
Date: Tue, 1 Jul 2025 10:00:00 +0000
Message-ID: <1@example.com>
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; charset=utf-8

hello
world
--b
Content-Type: application/pdf; name=a.pdf
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=a.pdf
Content-Language: en

AAEC
--b--
`);

test('ENVELOPE with groups, defaults for Sender and Reply-To (RFC 9051 7.5.2)', () => {
  const root = parseMessage(MIXED);
  assert.equal(
    text(renderEnvelope(root.envelope)),
    '("Tue, 1 Jul 2025 10:00:00 +0000" "Test" (("Joe Q. Public" NIL "john.q.public" "example.com")) (("Joe Q. Public" NIL "john.q.public" "example.com")) (("Joe Q. Public" NIL "john.q.public" "example.com")) ((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")(NIL NIL NIL NIL)("Mary" NIL "mary" "x.test")) NIL NIL NIL "<1@example.com>")',
  );
  assert.equal(text(renderEnvelope(undefined)), '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)');
  const own = parseMessage(crlf('From: a@b.test\nSender: s@b.test\nReply-To: r@b.test\nTo: nohost, "" <@route.test:x@y.test>\n\n'));
  const env = parseImapData(renderEnvelope(own.envelope))[0] as unknown[];
  assert.deepEqual(env.slice(2, 6), [
    [[null, null, 'a', 'b.test']],
    [[null, null, 's', 'b.test']],
    [[null, null, 'r', 'b.test']],
    // a missing host is "" so that it does not read as a group marker
    [
      [null, null, 'nohost', ''],
      [null, '@route.test', 'x', 'y.test'],
    ],
  ]);
});

test('BODYSTRUCTURE and BODY of a multipart message', () => {
  const root = parseMessage(MIXED);
  assert.equal(
    text(renderBodyStructure(root)),
    '(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 4 NIL ("attachment" ("filename" "a.pdf")) ("en") NIL) "mixed" ("boundary" "b") NIL NIL NIL)',
  );
  assert.equal(text(renderBody(root)), '(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 1)("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 4) "mixed")');
});

test('single-part, message/rfc822 and empty multipart forms', () => {
  assert.equal(text(renderBodyStructure(parseMessage(crlf('Subject: x\n\nhi\n')))), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1 NIL NIL NIL NIL)');
  // RFC 2046 4.1.2: a text part without charset is US-ASCII
  assert.equal(text(renderBody(parseMessage(crlf('Content-Type: text/html; x=1\n\nhi')))), '("text" "html" ("x" "1" "charset" "us-ascii") NIL NIL "7bit" 2 0)');
  const rfc822 = parseMessage(crlf('Content-Type: message/rfc822\n\nSubject: in\nFrom: f@g.test\n\nbody\n'));
  assert.equal(
    text(renderBody(rfc822)),
    '("message" "rfc822" NIL NIL NIL "7bit" 37 (NIL "in" ((NIL NIL "f" "g.test")) ((NIL NIL "f" "g.test")) ((NIL NIL "f" "g.test")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1) 4)',
  );
  const encoded = parseMessage(crlf('Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA==\n'));
  assert.equal(
    text(renderBody(encoded)),
    '("message" "rfc822" NIL NIL NIL "base64" 18 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) 1)',
  );
  assert.equal(text(renderBody(parseMessage(crlf('Content-Type: multipart/mixed; boundary=x\n\nno parts\n')))), '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")');
});

test('message/global is an encapsulated message only for UTF-8 clients (RFC 9051, RFC 6532 3.7)', () => {
  const msg = crlf('Content-Type: message/global\n\nSubject: x\n\ny');
  const root = parseMessage(msg);
  assert.equal(text(renderBody(root)), '("message" "global" NIL NIL NIL "7bit" 15)');
  assert.equal(
    text(renderBody(root, { utf8: true })),
    '("message" "global" NIL NIL NIL "7bit" 15 (NIL "x" NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0) 2)',
  );
});

test('strings: quoted, escaped or literal as the grammar requires', () => {
  const subject = (raw: string, utf8 = false) => {
    const root = parseMessage(Buffer.from(`Subject: ${raw}\r\n\r\n`, 'latin1'));
    return text(renderEnvelope(root.envelope, { utf8 })).split(' NIL NIL NIL')[0]!.slice('(NIL '.length);
  };
  assert.equal(subject('say "hi" \\ bye'), '"say \\"hi\\" \\\\ bye"');
  const utf8 = textToBytes('Grüße');
  assert.equal(subject(utf8), `{7}\r\n${utf8}`); // RFC 3501: no 8-bit in quoted strings
  assert.equal(subject(utf8, true), `"${utf8}"`); // RFC 9051 / RFC 6855: UTF-8 may be quoted
  assert.equal(subject('caf\xe9', true), '{4}\r\ncaf\xe9'); // not UTF-8: literal even then
  assert.equal(subject('a\rb'), '{3}\r\na\rb');
  assert.equal(subject('nul\0byte'), '"nulbyte"');
  // every rendering parses back as IMAP data
  for (const s of ['say "hi" \\ bye', utf8, 'caf\xe9', 'a\rb']) assert.ok(parseImapData(subject(s)).length === 1);
});

test('RFC 2231 values: decoded for UTF-8 clients, RFC 2231 form otherwise', () => {
  const root = parseMessage(crlf("Content-Type: application/pdf; name*=utf-8''%E2%82%AC%20rate.pdf; x=\"a b\"\n\n"));
  assert.equal(text(renderBody(root)), '("application" "pdf" ("name*" "utf-8\'\'%E2%82%AC%20rate.pdf" "x" "a b") NIL NIL "7bit" 0)');
  assert.equal(text(renderBody(root, { utf8: true })), `("application" "pdf" ("name" "${textToBytes('€ rate.pdf')}" "x" "a b") NIL NIL "7bit" 0)`);
});

test('parseSection (RFC 9051 6.4.5 syntax)', () => {
  assert.deepEqual(parseSection(''), { part: [] });
  assert.deepEqual(parseSection('HEADER'), { part: [], text: 'HEADER' });
  assert.deepEqual(parseSection('1.2.3'), { part: [1, 2, 3] });
  assert.deepEqual(parseSection('4.2.text'), { part: [4, 2], text: 'TEXT' });
  assert.deepEqual(parseSection('1.MIME'), { part: [1], text: 'MIME' });
  assert.deepEqual(parseSection('HEADER.FIELDS (From "X-Odd Name" to)'), { part: [], text: 'HEADER.FIELDS', fields: ['From', 'X-Odd Name', 'to'] });
  assert.deepEqual(parseSection('2.HEADER.FIELDS.NOT (Subject)'), { part: [2], text: 'HEADER.FIELDS.NOT', fields: ['Subject'] });
  for (const bad of ['MIME', '0', '1.', '1..2', 'BODY', 'HEADER.FIELDS', 'HEADER.FIELDS ()', 'TEXT (a)', '1.x']) assert.equal(parseSection(bad), null, bad);
});

const NESTED = crlf(`Subject: top
Content-Type: multipart/mixed; boundary=o

--o
Content-Type: text/plain

one
--o
Content-Type: message/rfc822

Subject: inner
From: i@x.test
Content-Type: multipart/alternative; boundary=i

--i
Content-Type: text/plain

alt plain
--i
Content-Type: text/html

<p>alt</p>
--i--
--o
Content-Type: message/rfc822

Subject: single

single body
--o--
`);

test('BODY[section] ranges and part numbering (RFC 9051 6.4.5)', () => {
  const root = parseMessage(NESTED);
  const get = (spec: string) => {
    const s = parseSection(spec);
    assert.ok(s, spec);
    const b = sectionBytes(NESTED, root, s);
    return b && text(b);
  };
  assert.equal(get(''), text(NESTED));
  assert.equal(get('HEADER'), 'Subject: top\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n');
  assert.ok(get('TEXT')!.startsWith('--o\r\n'));
  assert.equal(get('1'), 'one');
  assert.equal(get('1.MIME'), 'Content-Type: text/plain\r\n\r\n');
  assert.equal(get('2.MIME'), 'Content-Type: message/rfc822\r\n\r\n');
  assert.equal(get('2.HEADER'), 'Subject: inner\r\nFrom: i@x.test\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n');
  assert.ok(get('2')!.startsWith('Subject: inner') && get('2')!.endsWith('--i--'));
  assert.equal(get('2.TEXT'), get('2')!.slice(get('2.HEADER')!.length));
  assert.equal(get('2.1'), 'alt plain');
  assert.equal(get('2.2'), '<p>alt</p>');
  assert.equal(get('2.2.MIME'), 'Content-Type: text/html\r\n\r\n');
  // a non-multipart encapsulated message has one part: its body
  assert.equal(get('3.1'), 'single body');
  assert.equal(get('3.TEXT'), 'single body');
  assert.equal(get('3.1.MIME'), 'Subject: single\r\n\r\n');
  assert.equal(get('2.HEADER.FIELDS (FROM)'), 'From: i@x.test\r\n\r\n');
  assert.equal(get('HEADER.FIELDS.NOT (content-type)'), 'Subject: top\r\n\r\n');
  assert.equal(get('HEADER.FIELDS (X-None)'), '\r\n');
  for (const missing of ['4', '1.1', '2.3', '2.1.1', '1.HEADER', '1.TEXT', '2.1.TEXT']) assert.equal(get(missing), null, missing);
});

test('a single-part message: part 1 is its body', () => {
  const msg = crlf('Subject: s\nContent-Type: text/plain\n\nthe body\n');
  const root = parseMessage(msg);
  assert.equal(findPart(root, [1]), root);
  assert.equal(findPart(root, [2]), null);
  assert.equal(findPart(root, [1, 1]), null);
  const range = (s: Section) => sectionRange(root, s);
  assert.deepEqual(range({ part: [1] }), { start: msg.indexOf('the body'), end: msg.length });
  assert.deepEqual(range({ part: [] , text: 'TEXT' }), range({ part: [1] }));
  assert.deepEqual(range({ part: [1], text: 'MIME' }), { start: 0, end: msg.indexOf('the body') });
});

test('HEADER.FIELDS: no blank line is added when the message has none', () => {
  const msg = Buffer.from('From: a@b.test\r\nSubject: s');
  const root = parseMessage(msg);
  assert.equal(text(sectionBytes(msg, root, { part: [], text: 'HEADER.FIELDS', fields: ['subject'] })!), 'Subject: s\r\n');
  assert.equal(text(sectionBytes(msg, root, { part: [], text: 'HEADER.FIELDS.NOT', fields: ['subject'] })!), 'From: a@b.test\r\n');
});
