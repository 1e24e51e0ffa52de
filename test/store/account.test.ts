// The account store's delivery path: message files linked under ids handed out before the
// index commit, directories fsynced, then the index; deliveries arriving during a commit go
// into the next; files a crash left without index entries are removed when the account opens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Account } from '../../src/store/account.js';
import { writeTemp } from '../../src/store/tempfile.js';
import { tempDir } from '../helpers/server.js';

async function temp(dir: string, text: string) {
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  return writeTemp(path.join(dir, 'tmp'), Buffer.from(`Subject: ${text}\r\n\r\n${text}\r\n`));
}

test('deliveries arriving while a commit is under way all commit, in order, with their files', async () => {
  const dir = tempDir();
  const acc = new Account('a', path.join(dir, 'acc'));
  const results: Promise<{ id: number; uid: number }>[] = [];
  for (let i = 0; i < 60; i++) {
    results.push(acc.deliver(await temp(dir, `m${i}`), { mailbox: 'Inbox' }));
    // Some arrive together, some while the previous commit waits for the disk.
    if (i % 7 === 0) await new Promise((r) => setImmediate(r));
  }
  const done = await Promise.all(results);
  assert.deepEqual(
    done.map((d) => d.uid),
    Array.from({ length: 60 }, (_, i) => i + 1),
  );
  assert.equal(new Set(done.map((d) => d.id)).size, 60);
  for (const [i, d] of done.entries()) assert.equal(fs.readFileSync(acc.messagePath(d.id), 'utf8'), `Subject: m${i}\r\n\r\nm${i}\r\n`);
  acc.close();
  const again = new Account('a', path.join(dir, 'acc'));
  assert.equal(again.messages(again.mailbox('Inbox')!.id).length, 60);
  again.close();
});

test('files without index entries are removed when the account opens; expunged files wait for their time', async () => {
  const dir = tempDir();
  let acc = new Account('a', path.join(dir, 'acc'));
  const ds = [];
  for (const t of ['one', 'two', 'three']) ds.push(await acc.deliver(await temp(dir, t), { mailbox: 'Inbox' }));
  const inbox = acc.mailbox('Inbox')!.id;
  acc.expunge(inbox, [ds[0]!.uid]);
  // A crash while a delivery's files were linked under reserved ids: one id below the last
  // committed one (a copy committed meanwhile), one above.
  acc.db.prepare('DELETE FROM message WHERE id = ?').run(ds[1]!.id);
  const above = acc.messagePath(ds[2]!.id + 1);
  fs.linkSync(acc.messagePath(ds[2]!.id), above);
  acc.close();

  acc = new Account('a', path.join(dir, 'acc'));
  assert.ok(fs.existsSync(acc.messagePath(ds[0]!.id)), 'expunged message file kept until its removal time');
  assert.ok(!fs.existsSync(acc.messagePath(ds[1]!.id)), 'file below the last id without index entry removed');
  assert.ok(!fs.existsSync(above), 'file above the last id removed');
  assert.ok(fs.existsSync(acc.messagePath(ds[2]!.id)));
  // New deliveries do not reuse ids.
  const d = await acc.deliver(await temp(dir, 'four'), { mailbox: 'Inbox' });
  assert.ok(d.id > ds[2]!.id);
  assert.equal(fs.readFileSync(acc.messagePath(d.id), 'utf8'), 'Subject: four\r\n\r\nfour\r\n');
  acc.close();
});
