// SORT and THREAD (RFC 5256, RFC 5957): base subjects, sort orders, threading algorithms and
// their responses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Parser } from '../../src/imapserver/parse.js';
import { No, Bad } from '../../src/imapserver/registry.js';
import { evaluate, type MessageSource } from '../../src/imapserver/search.js';
import { baseSubject, subjectInfo, parseSort, sortMessages, sortResponse } from '../../src/imapserver/sort.js';
import { parseThread, threadMessages, threadResponse, messageIds } from '../../src/imapserver/thread.js';
import { parseMessage } from '../../src/message/part.js';
import type { MessageRow } from '../../src/store/account.js';

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');

test('base subject (RFC 5256 2.1)', () => {
  const cases: [string, string, boolean][] = [
    ['foo', 'foo', false],
    ['Re: foo', 'foo', true],
    ['re: Re: RE: foo', 'foo', true],
    ['Fwd: foo', 'foo', true],
    ['Fw: foo', 'foo', true],
    ['FWD:foo', 'foo', true],
    ['Re [2]: foo', 'foo', true],
    ['Re[3]: Fwd : foo', 'foo', true],
    ['[list] Re: foo', 'foo', true],
    ['Re: [list] foo', 'foo', true],
    ['[list] foo', 'foo', false],
    ['[a][b] foo', 'foo', false],
    ['[PATCH]', '[PATCH]', false],
    ['[a] [b]', '[b]', false],
    ['Re: [PATCH]', '[PATCH]', true],
    ['foo (fwd)', 'foo', true],
    ['foo (FWD) (fwd)  ', 'foo', true],
    ['foo(fwd)bar', 'foo(fwd)bar', false],
    ['[Fwd: foo]', 'foo', true],
    ['[fwd: Re: foo (fwd)]', 'foo', true],
    ['Re: [fwd: [list] Re: foo]', 'foo', true],
    ['[fwd: foo] bar', 'bar', false],
    ['[fwd: foo', '[fwd: foo', false],
    ['Re:', '', true],
    ['   ', '', false],
    ['', '', false],
    ['  Re:   foo \t  bar  ', 'foo bar', true],
    ['Reply: foo', 'Reply: foo', false],
    ['Re foo', 'Re foo', false],
    ['Ré: foo', 'Ré: foo', false],
    ['=?UTF-8?Q?Re=3A_caf=C3=A9?=', 'café', true],
    ['=?utf-8?b?W2xpc3RdIFJlOiBow6lsbG8=?= (fwd)', 'héllo', true],
  ];
  for (const [s, base, reply] of cases) {
    assert.deepEqual(subjectInfo(s), { base, replyOrForward: reply }, JSON.stringify(s));
    assert.equal(baseSubject(s), base);
  }
  // A folded raw header value: line breaks and tabs are spaces.
  assert.equal(baseSubject('Re: a\r\n\tb'), 'a b');
  // UTF-8 bytes in the header (RFC 6532) as the header byte string.
  assert.equal(baseSubject(Buffer.from('Re: Grüße', 'utf8').toString('latin1')), 'Grüße');
});

interface M {
  uid: number;
  headers: string;
  size?: number;
  received: string;
}

function source(ms: M[]): MessageSource & { reads: number } {
  const msgs = ms.map((m, i) => {
    const buf = crlf(`${m.headers.trim()}\n\nbody ${i}\n`);
    const row: MessageRow = {
      id: i + 1,
      mailboxId: 1,
      uid: m.uid,
      modseq: 10 + i,
      createmodseq: 1,
      flags: 0,
      keywords: [],
      size: m.size ?? buf.length,
      prefixSize: 0,
      received: Date.parse(m.received),
      savedate: null,
    };
    return { row, buf, part: parseMessage(buf) };
  });
  const byId = new Map(msgs.map((m) => [m.row.id, m]));
  const src = {
    reads: 0,
    rows: msgs.map((m) => m.row),
    part: (row: MessageRow) => byId.get(row.id)!.part,
    read: async (row: MessageRow) => {
      src.reads++;
      return byId.get(row.id)!.buf;
    },
  };
  return src;
}

// seq: uid
const sortSet: M[] = [
  { uid: 10, headers: 'From: "Zed" <alice@example.com>\nTo: bob@x.test\nCc: carol@x.test\nSubject: Re: Lunch\nDate: Wed, 2 Jul 2025 12:00:00 +0000', size: 500, received: '2025-07-02T12:05:00Z' },
  { uid: 11, headers: 'From: Bob <bob@x.test>\nTo: alice@example.com\nSubject: lunch\nDate: Wed, 2 Jul 2025 11:00:00 +0000', size: 300, received: '2025-07-02T11:00:01Z' },
  { uid: 12, headers: 'From: carol@x.test\nTo: "Álvaro" <alvaro@x.test>\nSubject: [team] Budget\nDate: Wed, 2 Jul 2025 13:00:00 +0200', size: 300, received: '2025-07-01T00:00:00Z' },
  { uid: 13, headers: 'From: =?utf-8?q?=C3=81lvaro?= <alvaro@x.test>\nTo: Team: bob@x.test;\nSubject: Budget (fwd)\nDate: not a date', size: 700, received: '2025-07-02T09:00:00Z' },
  { uid: 14, headers: 'Subject: \nCc: aaron@x.test', size: 300, received: '2025-07-03T00:00:00Z' },
];

async function sorted(criteria: string, uids = sortSet.map((m) => m.uid)): Promise<number[]> {
  const src = source(sortSet);
  const { criteria: cs } = parseSort(new Parser(Buffer.from(` (${criteria}) UTF-8 ALL`)), { utf8: true });
  return sortMessages(cs, uids, src);
}

test('SORT criteria, REVERSE, multiple criteria, ties in sequence order', async () => {
  assert.deepEqual(await sorted('ARRIVAL'), [12, 13, 11, 10, 14]);
  assert.deepEqual(await sorted('REVERSE ARRIVAL'), [14, 10, 11, 13, 12]);
  // Sent date in UTC: uid 12 is 11:00Z; no valid Date: INTERNALDATE (uid 13, 14).
  assert.deepEqual(await sorted('DATE'), [13, 11, 12, 10, 14]);
  // Ties on SIZE stay in sequence order, also reversed (RFC 5256 3).
  assert.deepEqual(await sorted('SIZE'), [11, 12, 14, 10, 13]);
  assert.deepEqual(await sorted('REVERSE SIZE'), [13, 10, 11, 12, 14]);
  assert.deepEqual(await sorted('SIZE REVERSE ARRIVAL'), [14, 11, 12, 10, 13]);
  // Base subjects: "" < BUDGET < LUNCH, then by date.
  assert.deepEqual(await sorted('SUBJECT'), [14, 12, 13, 10, 11]);
  assert.deepEqual(await sorted('SUBJECT DATE'), [14, 13, 12, 11, 10]);
  assert.deepEqual(await sorted('SUBJECT REVERSE DATE'), [14, 12, 13, 10, 11]);
  assert.deepEqual(await sorted('REVERSE SUBJECT'), [10, 11, 12, 13, 14]);
  // addr-mailbox of the first address; missing is the empty string, first.
  assert.deepEqual(await sorted('FROM'), [14, 10, 13, 11, 12]);
  // The first To of uid 13 is a group: its name is the addr-mailbox.
  assert.deepEqual(await sorted('TO'), [14, 11, 12, 10, 13]);
  assert.deepEqual(await sorted('CC'), [11, 12, 13, 14, 10]);
  // RFC 5957: display names decoded, else the address; i;unicode-casemap.
  assert.deepEqual(await sorted('DISPLAYFROM'), [14, 13, 11, 12, 10]);
  assert.deepEqual(await sorted('DISPLAYTO'), [14, 11, 12, 10, 13]);
  assert.deepEqual(await sorted('SUBJECT', [13, 10]), [13, 10]);
  assert.deepEqual(await sorted('SIZE', []), []);
});

test('SORT without envelope criteria reads nothing', async () => {
  const src = source(sortSet);
  let parts = 0;
  const part = src.part;
  src.part = (row) => {
    parts++;
    return part(row);
  };
  await sortMessages([{ key: 'SIZE', reverse: true }, { key: 'ARRIVAL', reverse: false }], [10, 11, 12], src);
  assert.equal(parts + src.reads, 0);
});

test('SORT command parsing and response', async () => {
  const p = (s: string) => parseSort(new Parser(Buffer.from(' ' + s)), { utf8: true });
  const cmd = p('(SUBJECT REVERSE DATE) UTF-8 SINCE 1-Feb-1994');
  assert.deepEqual(cmd.criteria, [
    { key: 'SUBJECT', reverse: false },
    { key: 'DATE', reverse: true },
  ]);
  assert.equal(cmd.program.charset, 'UTF-8');
  assert.deepEqual(cmd.program.key, { type: 'date', field: 'internal', op: 'since', date: Date.UTC(1994, 1, 1) });
  assert.deepEqual(p('(displayfrom reverse displayto) us-ascii ALL').criteria, [
    { key: 'DISPLAYFROM', reverse: false },
    { key: 'DISPLAYTO', reverse: true },
  ]);
  for (const bad of ['(SUBJECT) ALL', '() UTF-8 ALL', '(REVERSE) UTF-8 ALL', '(REVERSE REVERSE DATE) UTF-8 ALL', '(FOO) UTF-8 ALL', '(DATE) UTF-8', 'DATE UTF-8 ALL']) {
    assert.throws(() => p(bad), `should fail: ${bad}`);
  }
  assert.throws(() => p('(DATE) ISO-8859-1 ALL'), No);

  const src = source(sortSet);
  const prog = p('(REVERSE ARRIVAL) UTF-8 MODSEQ 12').program;
  const found = await evaluate(prog, { ...src, now: Date.now() });
  const order = await sortMessages([{ key: 'ARRIVAL', reverse: true }], found, src);
  assert.deepEqual(order, [14, 13, 12]);
  assert.equal(sortResponse(prog, order, { uid: true, rows: src.rows }), 'SORT 14 13 12 (MODSEQ 14)');
  assert.equal(sortResponse(prog, order, { uid: false, rows: src.rows }), 'SORT 5 4 3 (MODSEQ 14)');
  assert.equal(sortResponse(prog, [], { uid: false, rows: src.rows }), 'SORT');
  assert.equal(sortResponse(p('(DATE) UTF-8 ALL').program, [11, 10], { uid: false, rows: src.rows }), 'SORT 2 1');
});

test('message IDs are normalized and comments skipped', () => {
  assert.deepEqual(messageIds('<"01KF8JCEOCBS0045PS"@xxx.yyy.com>'), ['01KF8JCEOCBS0045PS@xxx.yyy.com']);
  assert.deepEqual(messageIds('<01KF8JCEOCBS0045PS@xxx.yyy.com>'), ['01KF8JCEOCBS0045PS@xxx.yyy.com']);
  assert.deepEqual(messageIds(' <a@b>\r\n\t<c@d> (a comment <x@y>) <"e\\"f"@g>'), ['a@b', 'c@d', 'e"f@g']);
  assert.deepEqual(messageIds('<a@b> (Joe\'s message of "Mon, 1 Jan")'), ['a@b']);
  assert.deepEqual(messageIds('<broken <a@b>'), ['a@b']);
  assert.deepEqual(messageIds('no ids here, <>'), []);
});

// A mailing-list conversation: replies with References, one with In-Reply-To only, replies to
// messages not in the mailbox, a subject-only reply, a duplicate Message-ID and a reference loop.
const day = (n: number, h = 10) => `${n} Jul 2025 ${String(h).padStart(2, '0')}:00:00 +0000`;
const conversation: M[] = [
  { uid: 101, headers: `Message-ID: <a@x>\nSubject: Release plan\nDate: ${day(1)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 102, headers: `Message-ID: <b@x>\nSubject: Re: Release plan\nReferences: <a@x>\nDate: ${day(2)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 103, headers: `Message-ID: <c@x>\nSubject: Re: Release plan\nReferences: <a@x>\n <b@x>\nIn-Reply-To: <b@x>\nDate: ${day(3)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 104, headers: `Message-ID: <d@x>\nSubject: Re: Release plan\nIn-Reply-To: <a@x> (Joe's message)\nDate: ${day(1, 12)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 105, headers: `Message-ID: <e@x>\nSubject: RE: Release plan\nReferences: <missing@x>\nDate: ${day(5)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 106, headers: `Message-ID: <f@x>\nSubject: Lunch?\nDate: ${day(6)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 107, headers: `Message-ID: <g@x>\nSubject: Re: Lunch?\nDate: ${day(7)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 108, headers: `Message-ID: <b@x>\nSubject: Re: Release plan\nReferences: <a@x>\nDate: ${day(8)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 109, headers: `Message-ID: <h@x>\nSubject: Re: Release plan\nReferences: <a@x> <b@x> <gone@x>\nDate: ${day(9)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 110, headers: `Message-ID: <i@x>\nSubject: Other\nReferences: <m1@x> <m2@x>\nDate: ${day(10)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 111, headers: `Message-ID: <j@x>\nSubject: Re: Other\nReferences: <m1@x> <m3@x>\nDate: ${day(11)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 112, headers: `Message-ID: <k@x>\nSubject: Loop\nReferences: <l@x>\nDate: ${day(12)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 113, headers: `Message-ID: <l@x>\nSubject: Re: Loop\nReferences: <k@x>\nDate: ${day(13)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 114, headers: `Subject: Release plan\nDate: ${day(14)}`, received: '2025-07-20T00:00:00Z' },
  { uid: 115, headers: `Message-ID: <n@x>\nSubject: \nReferences: <nothing-here@x>`, received: '2025-06-01T00:00:00Z' },
];

async function threads(alg: 'REFERENCES' | 'ORDEREDSUBJECT', uid = false, only?: number[]): Promise<string> {
  const src = source(conversation);
  const t = await threadMessages(alg, only ?? conversation.map((m) => m.uid), src);
  return threadResponse(t, { uid, rows: src.rows });
}

test('THREAD=REFERENCES over a mailing-list conversation', async () => {
  // 1 has children 4 (earlier date than 2), 2 (with 3 and, through a missing parent, 9), 5
  // (a reply whose parent is not in the mailbox, joined by subject), 8 (duplicate Message-ID
  // of 2), and 14 (same subject, not a reply: both under a dummy). 6-7 by subject only; 10-11
  // siblings under a missing parent; 12-13 reference each other; 15 has no subject and no date.
  assert.equal(await threads('REFERENCES'), 'THREAD (15)((1 (4)(2 (3)(9))(5)(8))(14))(6 7)((10)(11))(13 12)');
  assert.equal(await threads('REFERENCES', true), 'THREAD (115)((101 (104)(102 (103)(109))(105)(108))(114))(106 107)((110)(111))(113 112)');
});

test('THREAD=REFERENCES over part of the mailbox', async () => {
  // Without 1, its replies are siblings under a dummy; 8 is now the first with Message-ID
  // <b@x>, so 3 and 9 are its children.
  assert.equal(await threads('REFERENCES', false, [103, 104, 109, 105, 108]), 'THREAD ((4)(5)(8 (3)(9)))');
  assert.equal(await threads('REFERENCES', false, []), 'THREAD');
});

test('THREAD=ORDEREDSUBJECT', async () => {
  assert.equal(await threads('ORDEREDSUBJECT'), 'THREAD (15)(1 (4)(2)(3)(5)(8)(9)(14))(6 7)(10 11)(12 13)');
  assert.equal(await threads('ORDEREDSUBJECT', true, [106, 112]), 'THREAD (106)(112)');
});

test('THREAD=ORDEREDSUBJECT reads no message files', async () => {
  const src = source(conversation);
  await threadMessages('ORDEREDSUBJECT', conversation.map((m) => m.uid), src);
  assert.equal(src.reads, 0);
});

test('THREAD command parsing', () => {
  const p = (s: string) => parseThread(new Parser(Buffer.from(' ' + s)), { utf8: true });
  const t = p('references UTF-8 SINCE 5-MAR-2000');
  assert.equal(t.algorithm, 'REFERENCES');
  assert.equal(t.program.charset, 'UTF-8');
  assert.equal(p('ORDEREDSUBJECT US-ASCII TEXT "gewp"').algorithm, 'ORDEREDSUBJECT');
  assert.throws(() => p('REFS UTF-8 ALL'), Bad);
  // The charset is mandatory: here ALL is taken as one.
  assert.throws(() => p('REFERENCES ALL'), No);
  assert.throws(() => p('REFERENCES'), /expected space/);
  assert.throws(() => p('REFERENCES BIG5 ALL'), No);
});

test('deep reply chains and long References do not exhaust the stack', async () => {
  const n = 20_000;
  const chain: M[] = Array.from({ length: n }, (_, i) => ({
    uid: i + 1,
    headers: `Message-ID: <m${i}@x>\nSubject: Re: deep\nDate: 1 Jul 2025 10:00:00 +0000${i ? `\nIn-Reply-To: <m${i - 1}@x>` : ''}`,
    received: '2025-07-01T10:00:00Z',
  }));
  // And one message referencing a long chain of missing messages.
  chain.push({ uid: n + 1, headers: `Message-ID: <z@x>\nSubject: other\nReferences: ${Array.from({ length: 5000 }, (_, i) => `<r${i}@x>`).join(' ')}`, received: '2025-07-01T10:00:00Z' });
  const src = source(chain);
  const t = await threadMessages('REFERENCES', chain.map((m) => m.uid), src);
  const out = threadResponse(t, { uid: true, rows: src.rows });
  assert.equal(out, `THREAD (${Array.from({ length: n }, (_, i) => i + 1).join(' ')})(${n + 1})`);
});
