// SEARCH program parsing, evaluation over constructed messages, and SEARCH/ESEARCH responses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Parser } from '../../src/imapserver/parse.js';
import { No, Bad } from '../../src/imapserver/registry.js';
import { parseSearch, evaluate, searchResponse, sequenceSet, parseMessageDate, type SearchContext, type SearchProgram } from '../../src/imapserver/search.js';
import { parseMessage, type Part } from '../../src/message/part.js';
import { Flag } from '../../src/store/flags.js';
import type { MessageRow } from '../../src/store/account.js';

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
const at = (iso: string) => Date.parse(iso);

interface Fixture {
  uid: number;
  msg: Buffer;
  flags?: number;
  keywords?: string[];
  received: string;
  savedate?: string;
  modseq: number;
  /** Structure stored at delivery; without it the message is parsed when needed. */
  stored?: boolean;
}

const fixtures: Fixture[] = [
  {
    uid: 1,
    msg: crlf(`From: "Joe Q. Public" <joe@example.com>
To: Mary Smith <mary@x.test>
Cc: team@x.test
Subject: Quarterly report
Date: Tue, 1 Jul 2025 23:30:00 -0700
Message-ID: <q1@example.com>
Content-Type: text/plain; charset=us-ascii

The numbers are in.
See you Monday.
`),
    flags: Flag.Seen | Flag.Answered,
    keywords: ['$label1'],
    received: '2025-07-02T10:00:00Z',
    savedate: '2025-07-02T10:00:05Z',
    modseq: 5,
    stored: true,
  },
  {
    uid: 2,
    msg: crlf(`From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>
To: joe@example.com
Bcc: secret@x.test
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=
Date: 3 Jul 2025 08:00:00 +0200
X-Mailer: Foo =?utf-8?q?M=C3=A4iler?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Sch=C3=B6ne Gr=C3=BC=C3=9Fe vom Rhein
--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

${Buffer.from('<p>Hello <b>world</b> &amp; friends &#8364;</p>').toString('base64')}
--b1--
`),
    flags: Flag.Flagged,
    received: '2025-07-03T06:00:00Z',
    savedate: '2025-07-03T06:00:00Z',
    modseq: 9,
    stored: true,
  },
  {
    uid: 5,
    msg: crlf(`From: list@lists.test
To: Some Group: a@x.test, b@x.test;
Subject: [list] Re: Quarterly report
X-Spam: yes
Content-Type: multipart/mixed; boundary=mm

--mm
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

Caf\xe9 au lait
--mm
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

${Buffer.from('the numbers are hidden in here').toString('base64')}
--mm--
`),
    flags: Flag.Deleted | Flag.Draft,
    keywords: ['Work'],
    received: '2025-07-04T23:59:59Z',
    modseq: 12,
  },
  {
    uid: 7,
    msg: crlf(`From: Ann <ann@example.org>
To: joe@example.com
Subject: Fwd: thing
Date: Mon, 30 Jun 2025 12:00:00 +0000
Content-Type: multipart/mixed; boundary=fw

--fw
Content-Type: text/plain

see below
--fw
Content-Type: message/rfc822

From: Inner <inner@example.net>
Subject: Inner secret subject

inner body text
--fw--
`),
    received: '2025-06-30T12:00:00Z',
    savedate: '2025-07-10T08:00:00Z',
    modseq: 3,
    stored: true,
  },
];

function makeRow(f: Fixture, i: number): MessageRow {
  return {
    id: i + 1,
    mailboxId: 1,
    uid: f.uid,
    modseq: f.modseq,
    createmodseq: f.modseq,
    flags: f.flags ?? 0,
    keywords: f.keywords ?? [],
    size: f.msg.length,
    prefixSize: 0,
    received: at(f.received),
    savedate: f.savedate ? at(f.savedate) : null,
  };
}

interface Counting extends SearchContext {
  reads: number;
  parts: number;
  headers: number;
}

function context(list: { row: MessageRow; msg: Buffer; part?: Part }[], extra: Partial<SearchContext> = {}): Counting {
  const byId = new Map(list.map((m) => [m.row.id, m]));
  const ctx: Counting = {
    rows: list.map((m) => m.row),
    now: at('2025-07-05T00:00:00Z'),
    reads: 0,
    parts: 0,
    headers: 0,
    part(row) {
      ctx.parts++;
      return byId.get(row.id)!.part;
    },
    async read(row) {
      ctx.reads++;
      return byId.get(row.id)!.msg;
    },
    async header(row) {
      ctx.headers++;
      const m = byId.get(row.id)!.msg;
      const end = m.indexOf('\r\n\r\n');
      return m.subarray(0, end + 4);
    },
    ...extra,
  };
  return ctx;
}

const mailbox = () => context(fixtures.map((f, i) => ({ row: makeRow(f, i), msg: f.msg, part: f.stored ? parseMessage(f.msg) : undefined })));

function parse(args: string, utf8 = true): SearchProgram {
  return parseSearch(new Parser(Buffer.from(' ' + args, 'utf8'), utf8), { utf8 });
}

async function search(args: string, extra: Partial<SearchContext> = {}): Promise<number[]> {
  const ctx = mailbox();
  Object.assign(ctx, extra);
  return evaluate(parse(args), ctx);
}

test('flag keys', async () => {
  assert.deepEqual(await search('ALL'), [1, 2, 5, 7]);
  assert.deepEqual(await search('ANSWERED'), [1]);
  assert.deepEqual(await search('UNANSWERED'), [2, 5, 7]);
  assert.deepEqual(await search('DELETED'), [5]);
  assert.deepEqual(await search('UNDELETED'), [1, 2, 7]);
  assert.deepEqual(await search('DRAFT'), [5]);
  assert.deepEqual(await search('UNDRAFT'), [1, 2, 7]);
  assert.deepEqual(await search('FLAGGED'), [2]);
  assert.deepEqual(await search('UNFLAGGED'), [1, 5, 7]);
  assert.deepEqual(await search('SEEN'), [1]);
  assert.deepEqual(await search('unseen'), [2, 5, 7]);
  assert.deepEqual(await search('KEYWORD work'), [5]);
  assert.deepEqual(await search('KEYWORD $Label1'), [1]);
  assert.deepEqual(await search('UNKEYWORD Work'), [1, 2, 7]);
  assert.deepEqual(await search('KEYWORD $Forwarded'), []);
  assert.deepEqual(await search('UNKEYWORD $Forwarded'), [1, 2, 5, 7]);
});

test('NEW, OLD, RECENT, UNRECENT without \\Recent', async () => {
  assert.deepEqual(await search('NEW'), []);
  assert.deepEqual(await search('RECENT'), []);
  assert.deepEqual(await search('OLD'), [1, 2, 5, 7]);
  assert.deepEqual(await search('UNRECENT'), [1, 2, 5, 7]);
});

test('sequence sets, UID sets and the saved result', async () => {
  assert.deepEqual(await search('2:3'), [2, 5]);
  assert.deepEqual(await search('*'), [7]);
  assert.deepEqual(await search('3:*'), [5, 7]);
  assert.deepEqual(await search('1,4'), [1, 7]);
  // Numbers beyond the last message select nothing more; "10:*" is "4:10".
  assert.deepEqual(await search('10:*'), [7]);
  assert.deepEqual(await search('9'), []);
  assert.deepEqual(await search('UID 2:6'), [2, 5]);
  assert.deepEqual(await search('UID *'), [7]);
  assert.deepEqual(await search('UID 6:*'), [7]);
  assert.deepEqual(await search('UID 100:*'), [7]);
  assert.deepEqual(await search('UID 3,4,6'), []);
  assert.deepEqual(await search('$', { saved: [2, 7] }), [2, 7]);
  assert.deepEqual(await search('UID $', { saved: [5] }), [5]);
  assert.deepEqual(await search('$'), []);
  assert.deepEqual(await search('$ SEEN', { saved: [1, 2] }), [1]);
});

test('size, internal date, save date and WITHIN keys', async () => {
  const sizes = fixtures.map((f) => f.msg.length);
  const s2 = sizes[1]!;
  assert.deepEqual(await search(`LARGER ${s2}`), fixtures.filter((f) => f.msg.length > s2).map((f) => f.uid));
  assert.deepEqual(await search(`SMALLER ${s2}`), fixtures.filter((f) => f.msg.length < s2).map((f) => f.uid));
  assert.deepEqual(await search(`LARGER ${s2 - 1} SMALLER ${s2 + 1}`), [2]);
  // INTERNALDATE, by UTC date.
  assert.deepEqual(await search('ON 2-Jul-2025'), [1]);
  assert.deepEqual(await search('ON "4-Jul-2025"'), [5]);
  assert.deepEqual(await search('BEFORE 2-Jul-2025'), [7]);
  assert.deepEqual(await search('SINCE 3-Jul-2025'), [2, 5]);
  assert.deepEqual(await search('SINCE 5-Jul-2025'), []);
  // Save date; uid 5 has none and falls back to INTERNALDATE (RFC 8514 4.3).
  assert.deepEqual(await search('SAVEDON 10-Jul-2025'), [7]);
  assert.deepEqual(await search('SAVEDBEFORE 4-Jul-2025'), [1, 2]);
  assert.deepEqual(await search('SAVEDSINCE 4-Jul-2025'), [5, 7]);
  assert.deepEqual(await search('SAVEDATESUPPORTED'), [1, 2, 5, 7]);
  // now is 2025-07-05T00:00:00Z; uid 5 arrived one second before.
  assert.deepEqual(await search('YOUNGER 1'), [5]);
  assert.deepEqual(await search('OLDER 2'), [1, 2, 7]);
  assert.deepEqual(await search('OLDER 1'), [1, 2, 5, 7]);
  assert.deepEqual(await search('YOUNGER 172800'), [2, 5]);
});

test('sent date keys use the Date field as written, without zone adjustment', async () => {
  // uid 1: "1 Jul 2025 23:30 -0700" is 2 Jul in UTC but 1 Jul as written; uid 5 has no Date.
  assert.deepEqual(await search('SENTON 1-Jul-2025'), [1]);
  assert.deepEqual(await search('SENTON 2-Jul-2025'), []);
  assert.deepEqual(await search('SENTBEFORE 1-Jul-2025'), [7]);
  assert.deepEqual(await search('SENTSINCE 1-Jul-2025'), [1, 2]);
  assert.deepEqual(await search('NOT SENTSINCE 1-Jul-2025'), [5, 7]);
});

test('envelope keys: decoded text, addresses raw and displayed, groups', async () => {
  assert.deepEqual(await search('FROM joe'), [1]);
  assert.deepEqual(await search('FROM "joe q. public"'), [1]);
  assert.deepEqual(await search('FROM "Jürgen Müller"'), [2]);
  // The undecoded form is searchable too.
  assert.deepEqual(await search('FROM "=?utf-8?q?J=C3=BCrgen"'), [2]);
  assert.deepEqual(await search('FROM EXAMPLE.DE'), [2]);
  assert.deepEqual(await search('TO joe@example.com'), [2, 7]);
  assert.deepEqual(await search('TO "mary smith <mary@x.test>"'), [1]);
  assert.deepEqual(await search('TO "some group"'), [5]);
  assert.deepEqual(await search('TO b@x.test'), [5]);
  assert.deepEqual(await search('CC team'), [1]);
  assert.deepEqual(await search('BCC secret@'), [2]);
  assert.deepEqual(await search('SUBJECT quarterly'), [1, 5]);
  assert.deepEqual(await search('SUBJECT "grüße aus"'), [2]);
  assert.deepEqual(await search('SUBJECT GRÜSSE'), [2]);
  assert.deepEqual(await search('SUBJECT {7}\r\nkölner'), []);
  assert.deepEqual(await search('SUBJECT {5}\r\nköln'), [2]);
  // The inner message's subject is not the envelope's.
  assert.deepEqual(await search('SUBJECT inner'), []);
});

test('HEADER: substring of the decoded value, empty string for presence', async () => {
  assert.deepEqual(await search('HEADER X-Spam ""'), [5]);
  assert.deepEqual(await search('HEADER x-spam YES'), [5]);
  assert.deepEqual(await search('HEADER X-Spam no'), []);
  assert.deepEqual(await search('HEADER Message-ID <q1@example.com>'), [1]);
  assert.deepEqual(await search('HEADER X-Mailer Mäiler'), [2]);
  assert.deepEqual(await search('HEADER Content-Type multipart'), [2, 5, 7]);
  assert.deepEqual(await search('NOT HEADER Date ""'), [5]);
});

test('BODY and TEXT: decoded text parts, HTML text, encapsulated headers, no attachments', async () => {
  assert.deepEqual(await search('BODY numbers'), [1]);
  assert.deepEqual(await search('BODY "schöne grüße"'), [2]);
  assert.deepEqual(await search('BODY "hello world & friends €"'), [2]);
  assert.deepEqual(await search('BODY <b>'), []);
  // White space runs, line breaks included, match a single space.
  assert.deepEqual(await search('BODY "are in.  see you"'), [1]);
  assert.deepEqual(await search('BODY "ARE IN. SEE YOU"'), [1]);
  // Characters of regular expressions are plain text in a needle.
  assert.deepEqual(await search('BODY "are i..  see"'), []);
  assert.deepEqual(await search('BODY "are in.*you"'), []);
  assert.deepEqual(await search('BODY "café au"'), [5]);
  assert.deepEqual(await search('BODY hidden'), []);
  assert.deepEqual(await search('BODY "inner secret"'), [7]);
  assert.deepEqual(await search('BODY "inner body"'), [7]);
  assert.deepEqual(await search('BODY quarterly'), []);
  assert.deepEqual(await search('TEXT quarterly'), [1, 5]);
  assert.deepEqual(await search('TEXT "x-spam: yes"'), [5]);
  assert.deepEqual(await search('TEXT "grüße aus köln"'), [2]);
  assert.deepEqual(await search('TEXT "see below"'), [7]);
  assert.deepEqual(await search('TEXT nowhere-to-be-found'), []);
});

test('NOT, OR, parenthesized lists and nesting', async () => {
  assert.deepEqual(await search('NOT SEEN'), [2, 5, 7]);
  assert.deepEqual(await search('NOT NOT SEEN'), [1]);
  assert.deepEqual(await search('OR SEEN FLAGGED'), [1, 2]);
  assert.deepEqual(await search('OR (SEEN ANSWERED) DELETED'), [1, 5]);
  assert.deepEqual(await search('(UNSEEN UNDELETED)'), [2, 7]);
  assert.deepEqual(await search('OR OR SEEN FLAGGED BODY below'), [1, 2, 7]);
  assert.deepEqual(await search('NOT (OR FROM joe BODY "inner body")'), [2, 5]);
  assert.deepEqual(await search('OR NOT SUBJECT quarterly UID 1'), [1, 2, 7]);
  assert.deepEqual(await search('UNSEEN OR BODY café SUBJECT thing'), [5, 7]);
  assert.deepEqual(await search('((((2:4))) NOT (DELETED))'), [2, 7]);
});

test('content is loaded only when the index cannot decide', async () => {
  const ctx = mailbox();
  assert.deepEqual(await evaluate(parse('SEEN BODY numbers'), ctx), [1]);
  // Only the seen message was read.
  assert.equal(ctx.reads, 1);
  const c2 = mailbox();
  assert.deepEqual(await evaluate(parse('OR SEEN HEADER X-Spam ""'), c2), [1, 5]);
  assert.equal(c2.reads, 0);
  assert.equal(c2.headers, 3);
  const c3 = mailbox();
  assert.deepEqual(await evaluate(parse('FROM ann'), c3), [7]);
  // Stored structures answer envelope keys; uid 5 has none stored and is read.
  assert.equal(c3.parts, 4);
  assert.equal(c3.reads, 1);
  const c4 = mailbox();
  await evaluate(parse('UNSEEN UID 1:* LARGER 10 NOT KEYWORD x 1:* MODSEQ 1 SINCE 1-Jan-2020'), c4);
  assert.equal(c4.reads + c4.parts + c4.headers, 0);
});

test('loader errors fail the search', async () => {
  const ctx = mailbox();
  ctx.read = async () => {
    throw new Error('gone');
  };
  await assert.rejects(evaluate(parse('BODY x'), ctx), /gone/);
});

test('MODSEQ key with and without entry name', async () => {
  assert.deepEqual(await search('MODSEQ 9'), [2, 5]);
  assert.deepEqual(await search('MODSEQ "/flags/\\\\draft" all 5'), [1, 2, 5]);
  assert.deepEqual(await search('MODSEQ "/flags/$junk" priv 13'), []);
  assert.equal(parse('MODSEQ 1').modseq, true);
  assert.equal(parse('NOT MODSEQ 1').modseq, true);
  assert.equal(parse('ALL').modseq, false);
  assert.throws(() => parse('MODSEQ "/flags/\\\\draft" mine 5'));
  assert.throws(() => parse('MODSEQ "/other" all 5'));
});

test('CHARSET: UTF-8 and US-ASCII accepted, others NO [BADCHARSET]', async () => {
  assert.equal(parse('CHARSET UTF-8 ALL').charset, 'UTF-8');
  assert.equal(parse('CHARSET "us-ascii" SEEN').charset, 'US-ASCII');
  assert.deepEqual(await search('CHARSET utf-8 SUBJECT grüße'), [2]);
  assert.throws(
    () => parse('CHARSET ISO-8859-1 ALL'),
    (e: unknown) => e instanceof No && e.code === 'BADCHARSET (UTF-8 US-ASCII)',
  );
  assert.throws(() => parse('CHARSET KOI8-R TEXT x'), No);
});

test('syntax errors and non-UTF-8 strings', () => {
  for (const bad of ['', 'FOO', 'SEEN  UNSEEN', 'HEADER X', 'LARGER x', 'BEFORE 32-Foo-2020', 'OR SEEN', 'NOT', '()', '(SEEN', 'SEEN)', 'UID', 'KEYWORD \\Seen', 'OLDER 0', 'RETURN (MIN) ', 'RETURN (MIN', 'CHARSET']) {
    assert.throws(() => parse(bad), `should fail: ${bad}`);
  }
  assert.throws(() => parse('RETURN (PARTIAL) ALL'), Bad);
  assert.throws(() => parse('NOT '.repeat(200) + 'ALL'), /deeply/);
  const latin1 = Buffer.concat([Buffer.from(' SUBJECT {4}\r\n'), Buffer.from('K\xf6ln', 'latin1')]);
  assert.throws(() => parseSearch(new Parser(latin1, true), { utf8: true }), Bad);
  const p = parseSearch(new Parser(latin1, false), { utf8: false });
  assert.deepEqual(p.key, { type: 'envelope', field: 'subject', text: 'Köln' });
});

test('RETURN options parsed', () => {
  assert.equal(parse('ALL').returns, undefined);
  assert.deepEqual([...parse('RETURN () ALL').returns!], []);
  assert.deepEqual([...parse('RETURN (MIN max COUNT ALL SAVE) ALL').returns!], ['MIN', 'MAX', 'COUNT', 'ALL', 'SAVE']);
  const p = parse('RETURN (SAVE) CHARSET UTF-8 UNSEEN');
  assert.deepEqual([...p.returns!], ['SAVE']);
  assert.equal(p.charset, 'UTF-8');
});

test('sequenceSet compresses runs', () => {
  assert.equal(sequenceSet([]), '');
  assert.equal(sequenceSet([4]), '4');
  assert.equal(sequenceSet([1, 2, 3, 9]), '1:3,9');
  assert.equal(sequenceSet([1, 3, 4, 5, 7, 8]), '1,3:5,7:8');
});

test('SEARCH responses for IMAP4rev1', async () => {
  const ctx = mailbox();
  const o = { tag: 'a1', uid: false, rev2: false, rows: ctx.rows };
  const unseen = await evaluate(parse('UNSEEN'), ctx);
  assert.deepEqual(searchResponse(parse('UNSEEN'), unseen, o), { response: 'SEARCH 2 3 4' });
  assert.deepEqual(searchResponse(parse('UNSEEN'), unseen, { ...o, uid: true }), { response: 'SEARCH 2 5 7' });
  assert.deepEqual(searchResponse(parse('SEEN'), [], o), { response: 'SEARCH' });
  // RFC 7162 3.1.6: highest mod-sequence of the messages found.
  assert.deepEqual(searchResponse(parse('MODSEQ 4'), [1, 2, 5], o), { response: 'SEARCH 1 2 3 (MODSEQ 12)' });
  assert.deepEqual(searchResponse(parse('MODSEQ 400'), [], o), { response: 'SEARCH' });
  // With RETURN, ESEARCH (RFC 4731).
  assert.deepEqual(searchResponse(parse('RETURN () UNSEEN'), unseen, o), { response: 'ESEARCH (TAG "a1") ALL 2:4', save: undefined });
});

test('ESEARCH responses', async () => {
  const ctx = mailbox();
  const o = { tag: 'A282', uid: false, rev2: true, rows: ctx.rows };
  const uids = [2, 5, 7];
  const r = (args: string, found = uids, oo = o) => searchResponse(parse(args), found, oo).response;
  assert.equal(r('UNSEEN'), 'ESEARCH (TAG "A282") ALL 2:4');
  assert.equal(r('RETURN () UNSEEN'), 'ESEARCH (TAG "A282") ALL 2:4');
  assert.equal(r('RETURN (MIN COUNT) UNSEEN'), 'ESEARCH (TAG "A282") MIN 2 COUNT 3');
  assert.equal(r('RETURN (COUNT MAX MIN ALL) UNSEEN'), 'ESEARCH (TAG "A282") MIN 2 MAX 4 COUNT 3 ALL 2:4');
  assert.equal(r('RETURN (MIN MAX) UNSEEN', uids, { ...o, uid: true }), 'ESEARCH (TAG "A282") UID MIN 2 MAX 7');
  assert.equal(r('RETURN (ALL) 1:*', [1, 5, 7], { ...o, uid: true }), 'ESEARCH (TAG "A282") UID ALL 1,5,7');
  assert.equal(r('RETURN (ALL) 1:*', [1, 5, 7]), 'ESEARCH (TAG "A282") ALL 1,3:4');
  // No matches: MIN, MAX and ALL are left out, COUNT is always there.
  assert.equal(r('UNSEEN', []), 'ESEARCH (TAG "A282")');
  assert.equal(r('RETURN (MIN MAX ALL COUNT) UNSEEN', []), 'ESEARCH (TAG "A282") COUNT 0');
  assert.equal(r('RETURN (MIN) UNSEEN', [], { ...o, uid: true }), 'ESEARCH (TAG "A282") UID');
  // RFC 4731 3.2: MODSEQ of the messages returned.
  assert.equal(r('RETURN (ALL) MODSEQ 1', [1, 2, 5]), 'ESEARCH (TAG "A282") ALL 1:3 MODSEQ 12');
  assert.equal(r('RETURN (MIN) MODSEQ 1', [1, 2, 5]), 'ESEARCH (TAG "A282") MIN 1 MODSEQ 5');
  assert.equal(r('RETURN (MAX) MODSEQ 1', [2, 7]), 'ESEARCH (TAG "A282") MAX 4 MODSEQ 3');
  assert.equal(r('RETURN (MIN MAX) MODSEQ 1', [1, 2, 7]), 'ESEARCH (TAG "A282") MIN 1 MAX 4 MODSEQ 5');
  assert.equal(r('RETURN (MIN COUNT) MODSEQ 1', [1, 2, 5]), 'ESEARCH (TAG "A282") MIN 1 COUNT 3 MODSEQ 12');
  assert.equal(r('RETURN (COUNT) MODSEQ 1', []), 'ESEARCH (TAG "A282") COUNT 0');
});

test('SAVE: what is kept, and SAVE alone sends no ESEARCH', () => {
  const rows = mailbox().rows;
  const o = { tag: 't', uid: false, rev2: true, rows };
  const found = [2, 5, 7];
  const s = (args: string, f = found) => searchResponse(parse(args), f, o);
  assert.deepEqual(s('RETURN (SAVE) UNSEEN'), { save: [2, 5, 7] });
  assert.deepEqual(s('RETURN (SAVE) UNSEEN', []), { save: [] });
  assert.deepEqual(s('RETURN (SAVE MIN) UNSEEN'), { response: 'ESEARCH (TAG "t") MIN 2', save: [2] });
  assert.deepEqual(s('RETURN (SAVE MAX) UNSEEN'), { response: 'ESEARCH (TAG "t") MAX 4', save: [7] });
  assert.deepEqual(s('RETURN (SAVE MIN MAX) UNSEEN'), { response: 'ESEARCH (TAG "t") MIN 2 MAX 4', save: [2, 7] });
  assert.deepEqual(s('RETURN (SAVE MIN MAX) UNSEEN', [5]), { response: 'ESEARCH (TAG "t") MIN 3 MAX 3', save: [5] });
  assert.deepEqual(s('RETURN (SAVE MIN COUNT) UNSEEN'), { response: 'ESEARCH (TAG "t") MIN 2 COUNT 3', save: [2, 5, 7] });
  assert.deepEqual(s('RETURN (SAVE ALL) UNSEEN'), { response: 'ESEARCH (TAG "t") ALL 2:4', save: [2, 5, 7] });
  assert.equal(s('RETURN (ALL) UNSEEN').save, undefined);
  // rev1 with SAVE alone: no response either.
  assert.deepEqual(searchResponse(parse('RETURN (SAVE) UNSEEN'), found, { ...o, rev2: false }), { save: [2, 5, 7] });
});

test('parseMessageDate', () => {
  const d = (s: string) => {
    const r = parseMessageDate(s);
    return r && { day: new Date(r.day).toISOString().slice(0, 10), at: new Date(r.ms).toISOString() };
  };
  assert.deepEqual(d('Tue, 1 Jul 2025 23:30:00 -0700'), { day: '2025-07-01', at: '2025-07-02T06:30:00.000Z' });
  assert.deepEqual(d('31 Dec 2000 16:01:33 -0800'), { day: '2000-12-31', at: '2001-01-01T00:01:33.000Z' });
  assert.deepEqual(d('1 Jan 99 10:00 EST'), { day: '1999-01-01', at: '1999-01-01T15:00:00.000Z' });
  assert.deepEqual(d('Fri, 3 Mar 05 10:00:00 (CET) +0100 (CET)'), { day: '2005-03-03', at: '2005-03-03T09:00:00.000Z' });
  assert.deepEqual(d('5 May 2020 10:00:00 +9999'), { day: '2020-05-05', at: '2020-05-05T10:00:00.000Z' });
  assert.deepEqual(d('5 May 2020 25:00:00 +0200'), { day: '2020-05-05', at: '2020-05-04T22:00:00.000Z' });
  assert.deepEqual(d('5 May 2020'), { day: '2020-05-05', at: '2020-05-05T00:00:00.000Z' });
  assert.equal(d('31 Feb 2020 10:00 +0000'), undefined);
  assert.equal(d('yesterday'), undefined);
  assert.equal(d(''), undefined);
});

function bigMailbox(n: number): { ctx: Counting; body: (i: number) => Buffer } {
  const body = (i: number) =>
    crlf(`From: user${i}@example.com\nTo: me@example.org\nSubject: message ${i}\nDate: 1 Jul 2025 10:00:00 +0000\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nHello number ${i}, this is a short note about nothing much=2E\nRegards${i % 1000 === 0 ? ', needle' : ''}\n`);
  const list = Array.from({ length: n }, (_, i) => {
    const row: MessageRow = {
      id: i + 1,
      mailboxId: 1,
      uid: i + 1,
      modseq: i + 1,
      createmodseq: i + 1,
      flags: (i % 3 === 0 ? Flag.Seen : 0) | (i % 7 === 0 ? Flag.Flagged : 0) | (i % 11 === 0 ? Flag.Deleted : 0),
      keywords: i % 5 === 0 ? ['todo'] : [],
      size: 300 + (i % 100),
      prefixSize: 0,
      received: at('2025-01-01T00:00:00Z') + i * 60_000,
      savedate: null,
    };
    return { row, msg: body(i) };
  });
  return { ctx: context(list), body };
}

test('performance: flags-only search over 10,000 messages loads nothing', async (t) => {
  const { ctx } = bigMailbox(10_000);
  const prog = parse('UNSEEN FLAGGED NOT DELETED OR KEYWORD todo LARGER 350 SINCE 1-Jan-2025');
  await evaluate(prog, ctx); // warm up
  const start = process.hrtime.bigint();
  const runs = 5;
  let found: number[] = [];
  for (let i = 0; i < runs; i++) found = await evaluate(prog, ctx);
  const ms = Number(process.hrtime.bigint() - start) / 1e6 / runs;
  t.diagnostic(`flags-only search over 10000 rows: ${ms.toFixed(2)} ms`);
  const expect = ctx.rows.filter((r) => !(r.flags & Flag.Seen) && r.flags & Flag.Flagged && !(r.flags & Flag.Deleted) && (r.keywords.includes('todo') || r.size > 350)).map((r) => r.uid);
  assert.deepEqual(found, expect);
  assert.ok(found.length > 100);
  assert.ok(ms < 100, `took ${ms} ms`);
  assert.equal(ctx.reads + ctx.parts + ctx.headers, 0);
});

test('performance: BODY search over 10,000 small messages', async (t) => {
  const { ctx } = bigMailbox(10_000);
  const start = process.hrtime.bigint();
  const found = await evaluate(parse('BODY needle'), ctx);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  t.diagnostic(`BODY search over 10000 messages (parsed on demand): ${ms.toFixed(0)} ms`);
  assert.deepEqual(found, Array.from({ length: 10 }, (_, i) => i * 1000 + 1));
  assert.equal(ctx.reads, 10_000);
  assert.ok(ms < 10_000, `took ${ms} ms`);
});
