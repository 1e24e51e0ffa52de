// Webmail lists of a mailbox with 10,000 messages: pages come from the index without loading the
// mailbox, conversations and search work at that size. Times are reported as test diagnostics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Store } from '../../src/store/store.js';
import type { Account, MailboxRow } from '../../src/store/account.js';
import { parseMessage } from '../../src/message/part.js';
import { listConversations, listPage, messageView, searchPage } from '../../src/webmail/messages.js';
import { tempDir } from '../helpers/server.js';

const conversations = 2000;
const perConversation = 5;
const total = conversations * perConversation;
let dir: string;
let store: Store;
let acc: Account;
let inbox: MailboxRow;

/** Message k (0-based) of conversation t; replies refer to all earlier ones (RFC 5322 3.6.4). */
function message(t: number, k: number): Buffer {
  const id = (x: number) => `<c${t}-m${x}@remote.example>`;
  const refs = Array.from({ length: k }, (_, x) => id(x));
  const lines = [
    `From: Person ${t % 50} <person${t % 50}@remote.example>`,
    'To: jane@example.test',
    `Subject: ${k ? 'Re: ' : ''}Topic ${t}`,
    `Date: ${new Date(Date.UTC(2026, 0, 1) + (k * conversations + t) * 60_000).toUTCString()}`,
    `Message-ID: ${id(k)}`,
    ...(k ? [`In-Reply-To: ${id(k - 1)}`, `References: ${refs.join(' ')}`] : []),
  ];
  if (t % 10 === 0) {
    lines.push('MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', `Body of message ${k} in conversation ${t}.`, '--b');
    lines.push('Content-Type: application/octet-stream; name="data.bin"', 'Content-Transfer-Encoding: base64', '', 'AAECAwQ=', '--b--', '');
  } else lines.push('', `Body of message ${k} in conversation ${t}.`, '');
  return Buffer.from(lines.join('\r\n'));
}

before(async () => {
  dir = tempDir('postern-webmail-list-');
  store = new Store(dir);
  acc = store.account('jane');
  // Conversations interleave as mail arrives: first messages of all, then the first replies, ...
  const deliveries: Promise<unknown>[] = [];
  for (let k = 0; k < perConversation; k++) {
    for (let t = 0; t < conversations; t++) {
      const msg = message(t, k);
      const file = path.join(store.tmpDir, `m${t}-${k}`);
      fs.writeFileSync(file, msg);
      deliveries.push(acc.deliver({ path: file, size: msg.length }, { mailbox: 'Inbox', part: parseMessage(msg), received: Date.UTC(2026, 0, 1) + (k * conversations + t) * 60_000 }));
    }
  }
  await Promise.all(deliveries);
  inbox = acc.mailbox('Inbox')!;
});

after(() => {
  store?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}

test('pages of 50 come newest first from the (mailbox, uid) index, at any offset', async (t) => {
  // The page query walks the index: no sort of the whole mailbox, no table scan.
  const plan = (acc.db.prepare('EXPLAIN QUERY PLAN SELECT uid FROM message WHERE mailbox_id = ? ORDER BY uid DESC LIMIT ? OFFSET ?').all(inbox.id, 50, 0) as { detail: string }[]).map((r) => r.detail).join('; ');
  assert.match(plan, /USING (COVERING )?INDEX/, plan);
  assert.doesNotMatch(plan, /TEMP B-TREE|SCAN message(?! USING)/, plan);

  const times: string[] = [];
  for (const offset of [0, 5000, total - 50]) {
    const [page, ms] = await timed(() => listPage(acc, inbox, offset, 50));
    const [again, warm] = await timed(() => listPage(acc, inbox, offset, 50));
    times.push(`offset ${offset}: ${ms.toFixed(1)} ms, again ${warm.toFixed(1)} ms`);
    assert.equal(page.total, total);
    assert.deepEqual(page.items.map((i) => i.uid), Array.from({ length: 50 }, (_, i) => total - offset - i));
    assert.deepEqual(again.items, page.items);
    // Summaries: sender, subject, preview from the text part, attachment marker.
    const it = page.items[0]!;
    const conv = (it.uid - 1) % conversations;
    assert.equal(it.subject, `${it.uid > conversations ? 'Re: ' : ''}Topic ${conv}`);
    assert.equal(it.from[0]!.address, `person${conv % 50}@remote.example`);
    assert.match(it.preview, /^Body of message \d in conversation \d+\.$/);
    assert.equal(it.attachments, conv % 10 === 0);
    // A page is far from loading the mailbox: generous bounds for a busy shared machine.
    assert.ok(ms < 1000 && warm < 250, `page at offset ${offset} took ${ms} ms (again ${warm} ms)`);
  }
  t.diagnostic(`list page of 50 in a mailbox of ${total}: ${times.join('; ')}`);
});

test('conversations of the mailbox: newest first, each with its messages', async (t) => {
  const [cold, coldMs] = await timed(() => listConversations(acc, inbox, 0, 50));
  const [warm, warmMs] = await timed(() => listConversations(acc, inbox, 1950, 50));
  t.diagnostic(`conversations of ${total} messages: first page ${coldMs.toFixed(0)} ms (threading all), another page ${warmMs.toFixed(1)} ms`);
  assert.equal(cold.total, conversations);
  // The conversation with the newest message is the last one that got its last reply.
  const first = cold.items[0]!;
  assert.equal(first.uid, total);
  assert.equal(first.thread!.count, perConversation);
  assert.deepEqual(first.thread!.uids, Array.from({ length: perConversation }, (_, k) => k * conversations + conversations));
  assert.deepEqual(first.thread!.unread, first.thread!.uids);
  assert.equal(warm.items.at(-1)!.thread!.uids[0], 1);
  assert.ok(warmMs < 500, `conversation page took ${warmMs} ms`);
  // A new reply moves its conversation to the top.
  const msg = message(7, perConversation);
  const file = path.join(store.tmpDir, 'late');
  fs.writeFileSync(file, msg);
  const d = await acc.deliver({ path: file, size: msg.length }, { mailbox: 'Inbox', part: parseMessage(msg) });
  const [after, afterMs] = await timed(() => listConversations(acc, acc.mailbox('Inbox')!, 0, 1));
  t.diagnostic(`after a new message: ${afterMs.toFixed(0)} ms`);
  assert.deepEqual(after.items[0]!.thread!.uids, [8, 2008, 4008, 6008, 8008, d.uid]);
  acc.expunge(inbox.id, [d.uid]);
});

test('search by field and by text, newest first, paged', async (t) => {
  const [bySubject, subjMs] = await timed(() => searchPage(acc, inbox, 'subject:"Topic 1234"', 0, 50, Date.now()));
  assert.deepEqual(bySubject.items.map((i) => i.uid), [9235, 7235, 5235, 3235, 1235]);
  const [byText, textMs] = await timed(() => searchPage(acc, inbox, 'from:person7 "message 4"', 0, 10, Date.now()));
  assert.equal(byText.total, conversations / 50);
  assert.ok(byText.items.every((i) => i.from[0]!.address === 'person7@remote.example' && i.uid > 4 * conversations));
  acc.storeFlags(inbox.id, [9235], '+', ['\\Seen']);
  const unread = await searchPage(acc, inbox, 'subject:"Topic 1234" is:unread', 0, 50, Date.now());
  assert.deepEqual(unread.items.map((i) => i.uid), [7235, 5235, 3235, 1235]);
  t.diagnostic(`search of ${total} messages: subject ${subjMs.toFixed(0)} ms, sender and body text ${textMs.toFixed(0)} ms`);
});

test('a message view: text, conversation data and attachment', async () => {
  const v = await messageView(acc, acc.message(inbox.id, 2001)!);
  assert.equal(v.subject, 'Re: Topic 0');
  assert.equal(v.text.trim(), 'Body of message 1 in conversation 0.');
  assert.equal(v.inReplyTo, '<c0-m0@remote.example>');
  assert.deepEqual(v.references, ['<c0-m0@remote.example>']);
  assert.deepEqual(v.attachments, [{ path: '1', name: 'data.bin', type: 'application/octet-stream', size: 5 }]);
  assert.equal(v.html, false);
});
