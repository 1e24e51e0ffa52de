// The first mail path end to end: messages sent with independent SMTP clients are read back
// with independent IMAP clients, survive restarts and kill -9.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import Database from 'better-sqlite3';
import { startLocalserve, python, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

let srv: TestServer;

before(async () => {
  srv = await startLocalserve();
});
after(async () => {
  await srv?.close();
});

const submitted = 'From: postern@localhost\r\nTo: friend@example.org\r\nSubject: via submission\r\nMessage-ID: <sub-1@localhost>\r\n\r\nHello over submission.\r\n.a line with a leading dot\r\n..two dots\r\n';
const incoming = 'From: sender@example.org\r\nTo: anyone@localhost\r\nSubject: via smtp\r\nMessage-ID: <in-1@example.org>\r\n\r\nPlain SMTP delivery.\r\n\r\nLast line without much.\r\n';

async function imapflowClient(): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port: srv.ports.imap,
    secure: false,
    doSTARTTLS: true,
    tls: { ca: srv.certPEM, servername: 'localhost' },
    auth: { user: 'postern@localhost', pass: 'posternpostern' },
    logger: false,
  });
  await c.connect();
  return c;
}

/** All messages of the Inbox with imaplib, as {uid, data}. */
async function imaplibFetchAll(): Promise<{ uid: number; data: Buffer }[]> {
  const out = await python(
    `
import imaplib, ssl, os, json, base64
ctx = ssl.create_default_context(cafile=os.environ['CA'])
m = imaplib.IMAP4('127.0.0.1', int(os.environ['PORT']))
m.starttls(ssl_context=ctx)
m.login('postern@localhost', 'posternpostern')
typ, data = m.select('INBOX')
assert typ == 'OK'
typ, data = m.uid('FETCH', '1:*', '(UID BODY.PEEK[])')
res = []
for item in data:
    if isinstance(item, tuple):
        import re
        uid = int(re.search(rb'UID (\\d+)', item[0]).group(1))
        res.append({'uid': uid, 'data': base64.b64encode(item[1]).decode()})
m.logout()
print(json.dumps(res))
`,
    { CA: path.join(srv.dir, 'config', 'localhost.crt'), PORT: srv.ports.imap },
  );
  return (JSON.parse(out) as { uid: number; data: string }[]).map((r) => ({ uid: r.uid, data: Buffer.from(r.data, 'base64') }));
}

/** Stored message = header lines added at delivery + the message exactly as sent. */
function assertStored(data: Buffer, sent: string): void {
  const s = data.toString('utf8');
  assert.ok(s.endsWith(sent), `message not stored as sent:\n${s}`);
  const prefix = s.slice(0, s.length - sent.length);
  // RFC 5321 4.4: the reverse-path first, then the trace of this hop.
  assert.match(prefix, /^Return-Path: <[^>]*>\r\nReceived: from .* by localhost/s);
  assert.ok(prefix.endsWith('\r\n'));
}

test('smtplib submits with STARTTLS and AUTH PLAIN, and delivers plainly to the SMTP port', async () => {
  await python(
    `
import smtplib, ssl, os
ctx = ssl.create_default_context(cafile=os.environ['CA'])
s = smtplib.SMTP('127.0.0.1', int(os.environ['SUB']))
s.ehlo('client.example')
s.starttls(context=ctx)
s.ehlo('client.example')
assert 'PLAIN' in s.esmtp_features['auth'], s.esmtp_features
s.login('postern@localhost', 'posternpostern')
r = s.sendmail('postern@localhost', ['friend@example.org'], os.environ['MSG1'].encode())
assert r == {}, r
s.quit()
s = smtplib.SMTP('127.0.0.1', int(os.environ['SMTP']))
s.ehlo('mx.example.org')
r = s.sendmail('sender@example.org', ['anyone@localhost'], os.environ['MSG2'].encode())
assert r == {}, r
s.quit()
`,
    { CA: path.join(srv.dir, 'config', 'localhost.crt'), SUB: srv.ports.submission, SMTP: srv.ports.smtp, MSG1: submitted, MSG2: incoming },
  );
  // smtplib dot-stuffs lines starting with "."; the server must unstuff them exactly.
  const msgs = await imaplibFetchAll();
  assert.equal(msgs.length, 2);
  assertStored(msgs[0]!.data, submitted);
  assertStored(msgs[1]!.data, incoming);
  assert.match(msgs[0]!.data.toString().replace(/\r\n\t/g, ' '), /with ESMTPSA id \S+ for <friend@example.org> tls TLS_/);
});

test('imapflow reads the same bytes, with flags, size and dates', async () => {
  const c = await imapflowClient();
  try {
    const lock = await c.getMailboxLock('INBOX');
    try {
      const list: { uid: number; size: number; flags: Set<string>; source: Buffer; internalDate: Date }[] = [];
      for await (const m of c.fetch('1:*', { uid: true, size: true, flags: true, source: true, internalDate: true })) {
        list.push({ uid: m.uid, size: m.size!, flags: m.flags!, source: m.source!, internalDate: m.internalDate as Date });
      }
      assert.equal(list.length, 2);
      assertStored(list[0]!.source, submitted);
      assertStored(list[1]!.source, incoming);
      assert.equal(list[0]!.size, list[0]!.source.length);
      assert.equal(list[0]!.flags.size, 0);
      assert.ok(Math.abs(list[0]!.internalDate.getTime() - Date.now()) < 120_000);
      // Marking as read and flagged is stored.
      await c.messageFlagsAdd({ uid: list[1]!.uid }, ['\\Seen', '\\Flagged'], { uid: true });
      const m = await c.fetchOne(String(list[1]!.uid), { flags: true }, { uid: true });
      assert.ok(m);
      assert.deepEqual([...m.flags!].sort(), ['\\Flagged', '\\Seen']);
      const status = await c.status('INBOX', { messages: true, unseen: true, uidNext: true });
      assert.ok(status);
      assert.equal(status.messages, 2);
      assert.equal(status.unseen, 1);
      assert.equal(status.uidNext, 3);
    } finally {
      lock.release();
    }
    const boxes = await c.list();
    const byUse = Object.fromEntries(boxes.filter((b) => b.specialUse).map((b) => [b.specialUse, b.path]));
    assert.deepEqual(byUse, { '\\Inbox': 'INBOX', '\\Sent': 'Sent', '\\Archive': 'Archive', '\\Drafts': 'Drafts', '\\Trash': 'Trash', '\\Junk': 'Junk' });
  } finally {
    await c.logout();
  }
});

test('an idling imapflow client sees a new message at once', async () => {
  const c = await imapflowClient();
  try {
    await c.mailboxOpen('INBOX');
    const before = c.mailbox && typeof c.mailbox !== 'boolean' ? c.mailbox.exists : 0;
    const seen = new Promise<number>((resolve) => c.on('exists', (d: { count: number }) => resolve(d.count)));
    const idle = c.idle();
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    const raw = await Raw.connect(srv.ports.smtp);
    await raw.reply();
    await raw.cmd('EHLO test.example');
    await raw.cmd('MAIL FROM:<a@example.org>');
    await raw.cmd('RCPT TO:<idle@localhost>');
    await raw.cmd('DATA');
    const r = await raw.cmd('Subject: idle\r\n\r\nnew\r\n.');
    assert.equal(r.code, 250);
    const count = await seen;
    assert.equal(count, before + 1);
    assert.ok(Date.now() - t0 < 2000);
    raw.close();
    await c.noop();
    void idle;
  } finally {
    await c.logout();
  }
});

test('messages survive a restart', async () => {
  const before = await imaplibFetchAll();
  await srv.restart();
  const after = await imaplibFetchAll();
  assert.deepEqual(
    after.map((m) => [m.uid, m.data.toString('base64')]),
    before.map((m) => [m.uid, m.data.toString('base64')]),
  );
  // Flags set before the restart were kept.
  const c = await imapflowClient();
  try {
    await c.mailboxOpen('INBOX');
    const m = await c.fetchOne('2', { flags: true }, { uid: true });
    assert.ok(m && m.flags!.has('\\Flagged'));
  } finally {
    await c.logout();
  }
});

/** Checks that every indexed message has its file and every file an index entry. */
function assertIndexMatchesFiles(dir: string): number {
  const acc = path.join(dir, 'data', 'accounts', 'postern');
  const db = new Database(path.join(acc, 'index.db'), { readonly: true });
  const ids = new Set((db.prepare('SELECT id FROM message').pluck().all() as number[]).map(String));
  db.close();
  const files = new Set<string>();
  for (const g of fs.readdirSync(path.join(acc, 'msg'))) for (const f of fs.readdirSync(path.join(acc, 'msg', g))) files.add(f);
  assert.deepEqual([...files].sort(), [...ids].sort());
  return ids.size;
}

test('kill -9 right after 250 replies loses nothing, and index and files agree', async () => {
  const countBefore = (await imaplibFetchAll()).length;
  // Four connections deliver concurrently; the server is killed as soon as enough 250s are in.
  const conns = await Promise.all([0, 1, 2, 3].map(() => Raw.connect(srv.ports.smtp)));
  for (const c of conns) {
    await c.reply();
    await c.cmd('EHLO test.example');
  }
  const acked: string[] = [];
  let kill: () => void;
  const killed = new Promise<void>((r) => (kill = r));
  const senders = conns.map(async (c, ci) => {
    for (let i = 0; ; i++) {
      const id = `${ci}-${i}`;
      try {
        c.write(`MAIL FROM:<k@example.org>\r\nRCPT TO:<k@localhost>\r\nDATA\r\n`);
        await c.reply();
        await c.reply();
        if ((await c.reply()).code !== 354) return;
        const r = await c.cmd(`Subject: kill ${id}\r\nMessage-ID: <${id}@x>\r\n\r\nbody ${id}\r\n.`);
        if (r.code !== 250) return;
        acked.push(id);
        if (acked.length === 10) {
          await srv.kill9();
          kill();
        }
      } catch {
        return;
      }
    }
  });
  await killed;
  await Promise.all(senders);
  conns.forEach((c) => c.close());
  await srv.start();
  const msgs = await imaplibFetchAll();
  const subjects = new Set(msgs.map((m) => /Subject: kill (\S+)/.exec(m.data.toString())?.[1]).filter(Boolean));
  for (const id of acked) assert.ok(subjects.has(id), `acknowledged message ${id} lost`);
  assert.ok(msgs.length >= countBefore + acked.length);
  // UIDs stay unique and increasing.
  const uids = msgs.map((m) => m.uid);
  assert.deepEqual(uids, [...uids].sort((a, b) => a - b));
  assert.equal(new Set(uids).size, uids.length);
  await srv.stop();
  assert.equal(assertIndexMatchesFiles(srv.dir), msgs.length);
  await srv.start();
});
