// SEARCH, ESEARCH, SEARCHRES, SORT, THREAD and multi-mailbox ESEARCH over a real session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

let srv: TestServer;
let c: Raw;

async function append(mailbox: string, msg: string, flags = ''): Promise<void> {
  const b = Buffer.from(msg.replace(/\n/g, '\r\n'));
  c.write(`a APPEND ${mailbox} (${flags}) {${b.length}+}\r\n`);
  c.write(b);
  c.write('\r\n');
  assert.match((await c.imapUntil('a')).status, /^OK/);
}

before(async () => {
  srv = await startServe();
  c = await Raw.connectTLS(srv.ports.imaps, srv.certPEM);
  await c.line();
  await c.imap('l', 'LOGIN jane@example.test secret-pass');
  await append('INBOX', 'From: Alice <alice@example.org>\nTo: jane@example.test\nSubject: Lunch plans\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <1@x>\n\nShall we eat pasta?\n', '\\Seen');
  await append('INBOX', 'From: Bob <bob@example.org>\nTo: jane@example.test\nSubject: Re: Lunch plans\nDate: Tue, 2 Jan 2024 10:00:00 +0000\nMessage-ID: <2@x>\nIn-Reply-To: <1@x>\nReferences: <1@x>\n\nPizza instead.\n', '\\Flagged');
  await append('INBOX', 'From: Carol <carol@example.org>\nTo: jane@example.test\nSubject: Invoice\nDate: Wed, 3 Jan 2024 10:00:00 +0000\nMessage-ID: <3@x>\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nVG90YWw6IDQyIGV1cm8sIGdyw7zDn2U=\n');
  await append('Archive', 'From: Alice <alice@example.org>\nSubject: old pasta recipe\n\npasta\n');
  await c.imap('s', 'SELECT INBOX');
});
after(async () => {
  c?.close();
  await srv?.close();
});

test('SEARCH keys, decoded bodies, and rev1 results', async () => {
  assert.deepEqual((await c.imap('1', 'SEARCH FROM alice')).untagged, ['* SEARCH 1']);
  assert.deepEqual((await c.imap('2', 'SEARCH UNSEEN')).untagged, ['* SEARCH 2 3']);
  assert.deepEqual((await c.imap('3', 'SEARCH OR FLAGGED SEEN')).untagged, ['* SEARCH 1 2']);
  assert.deepEqual((await c.imap('4', 'SEARCH CHARSET UTF-8 BODY "GRÜSSE"')).untagged, ['* SEARCH 3']);
  assert.deepEqual((await c.imap('5', 'SEARCH SUBJECT lunch NOT FROM bob')).untagged, ['* SEARCH 1']);
  assert.deepEqual((await c.imap('6', 'UID SEARCH SENTSINCE 2-Jan-2024')).untagged, ['* SEARCH 2 3']);
  assert.match((await c.imap('7', 'SEARCH CHARSET KOI8-R TEXT x')).status, /^NO \[BADCHARSET/);
});

test('ESEARCH and SEARCHRES', async () => {
  assert.deepEqual((await c.imap('1', 'SEARCH RETURN (MIN MAX COUNT) ALL')).untagged, ['* ESEARCH (TAG "1") MIN 1 MAX 3 COUNT 3']);
  assert.deepEqual((await c.imap('2', 'UID SEARCH RETURN (SAVE) FROM example.org NOT FROM carol')).untagged, []);
  const f = await c.imap('3', 'FETCH $ (UID)');
  assert.deepEqual(f.untagged, ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 2)']);
});

test('SORT and THREAD', async () => {
  assert.deepEqual((await c.imap('1', 'SORT (REVERSE DATE) UTF-8 ALL')).untagged, ['* SORT 3 2 1']);
  assert.deepEqual((await c.imap('2', 'SORT (SUBJECT) UTF-8 ALL')).untagged, ['* SORT 3 1 2']);
  assert.deepEqual((await c.imap('3', 'THREAD REFERENCES UTF-8 ALL')).untagged, ['* THREAD (1 2)(3)']);
  assert.deepEqual((await c.imap('4', 'UID THREAD ORDEREDSUBJECT UTF-8 ALL')).untagged, ['* THREAD (1 2)(3)']);
});

test('multi-mailbox ESEARCH', async () => {
  const r = await c.imap('m', 'ESEARCH IN (personal) RETURN (COUNT) BODY pasta');
  const lines = r.untagged.sort();
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^\* ESEARCH \(TAG "m" MAILBOX "Archive" UIDVALIDITY \d+\) UID COUNT 1$/);
  assert.match(lines[1]!, /^\* ESEARCH \(TAG "m" MAILBOX "INBOX" UIDVALIDITY \d+\) UID COUNT 1$/);
});
