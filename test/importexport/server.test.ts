// Import and export with the command line against a running server: progress lines,
// messages and flags visible over IMAP, junk filter training from imported flags, the
// server's peak memory for 10,000 messages, and export of one mailbox and of all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { startServe, tempDir, python, type TestServer } from '../helpers/server.js';

let srv: TestServer;

before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.close();
});

/** Peak resident memory of the server process, from /proc, in MB. */
function serverPeakRSS(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${srv.proc!.pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 1024);
}

async function imap(): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user: 'jane@example.test', pass: 'secret-pass' }, logger: false });
  await c.connect();
  return c;
}

const hamWords = 'quarterly project review meeting agenda budget spreadsheet colleagues schedule deadline'.split(' ');
const spamWords = 'casino jackpot lottery winner unclaimed prize bitcoin guaranteed pharmacy discount'.split(' ');

test('a maildir of 10,000 messages imports through the server with progress, flags and junk training', async (t) => {
  const dir = tempDir();
  const md = path.join(dir, 'Maildir');
  for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(md, sub), { recursive: true });
  fs.writeFileSync(path.join(md, 'dovecot-keywords'), '0 $Junk\n1 $NotJunk\n2 receipts\n');
  const n = 10_000;
  let spam = 0;
  let ham = 0;
  for (let i = 0; i < n; i++) {
    // Every 100th message is junk, every 100th (offset 50) not junk; a few have a keyword.
    const info = i % 100 === 0 ? 'Sa' : i % 100 === 50 ? 'Sb' : i % 7 === 0 ? 'Fc' : 'S';
    if (info === 'Sa') spam++;
    if (info === 'Sb') ham++;
    const words = info === 'Sa' ? spamWords : hamWords;
    const body = Array.from({ length: 40 }, (_, j) => words[(i + j) % words.length]).join(' ');
    const f = path.join(md, 'cur', `${1650000000 + i}.M${i}.test:2,${info}`);
    fs.writeFileSync(f, `From: s${i}@example.org\nSubject: imported ${i}\nMessage-ID: <i${i}@example.org>\n\n${body}\n${'padding line\n'.repeat(100)}`);
    fs.utimesSync(f, 1650000000 + i, 1650000000 + i);
  }
  const before = serverPeakRSS();
  const t0 = Date.now();
  const r = await srv.cli(['import', 'maildir', 'jane', 'Imported/Old', md]);
  const ms = Date.now() - t0;
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(lines.slice(0, 10), Array.from({ length: 10 }, (_, i) => `imported ${(i + 1) * 1000} messages`));
  assert.equal(lines[lines.length - 1], `imported ${n} messages into Imported/Old`);
  const peak = serverPeakRSS();
  const line = `server import of ${n} messages: ${ms} ms, server peak RSS ${before} MB before, ${peak} MB after`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(peak - before < 150, line);

  // The junk filter learned from exactly the flagged messages.
  const stats = (await srv.ctl('junk stats', { account: 'jane', wait: true })) as { nham: number; nspam: number };
  assert.equal(stats.nspam, spam);
  assert.equal(stats.nham, ham);

  const c = await imap();
  try {
    const st = await c.status('Imported/Old', { messages: true, unseen: true });
    assert.ok(st);
    assert.equal(st.messages, n);
    assert.equal(st.unseen, [...Array(n).keys()].filter((i) => i % 7 === 0 && i % 100 !== 0 && i % 100 !== 50).length);
    await c.mailboxOpen('Imported/Old', { readOnly: true });
    const got = new Map<number, string[]>();
    for await (const m of c.fetch('1,51,8', { flags: true, envelope: true, internalDate: true })) {
      got.set(m.seq, [...(m.flags ?? [])].sort());
      if (m.seq === 51) assert.equal((m.internalDate as Date).getTime(), (1650000000 + 50) * 1000);
    }
    assert.deepEqual(got.get(1), ['$Junk', '\\Seen']);
    assert.deepEqual(got.get(51), ['$NotJunk', '\\Seen']);
    assert.deepEqual(got.get(8), ['\\Flagged', 'receipts']);
  } finally {
    await c.logout();
  }
});

test('an mbox imports through the server; export of one mailbox and of all, while the server runs', async () => {
  const dir = tempDir();
  const mbox = path.join(dir, 'python.mbox');
  await python(
    `import mailbox
mb = mailbox.mbox(${JSON.stringify(mbox)})
for i, flags in enumerate(['RO', 'O', 'ROA']):
    m = mailbox.mboxMessage('From: p%d@example.org\\nSubject: mbox %d\\n\\nhello\\n' % (i, i))
    m.set_flags(flags)
    mb.add(m)
mb.flush()
`,
  );
  const r = await srv.cli(['import', 'mbox', 'jane', 'From Python', mbox]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'imported 3 messages into From Python\n');
  const bad = await srv.cli(['import', 'mbox', 'nobody', 'X', mbox]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /account nobody not configured/);

  const accountPath = path.join(srv.dataDir, 'accounts', 'jane');
  const one = path.join(dir, 'one');
  let e = await srv.cli(['export', 'mbox', one, accountPath, 'From Python']);
  assert.equal(e.code, 0, e.stderr);
  assert.equal(e.stdout, 'exported 3 messages from 1 mailboxes\n');
  const text = fs.readFileSync(path.join(one, 'From Python.mbox'), 'utf8');
  assert.equal(text.match(/^From /gm)?.length, 3);
  assert.match(text, /Subject: mbox 2\nStatus: RO\nX-Status: A\n\nhello\n\n/);
  assert.deepEqual(fs.readdirSync(one), ['From Python.mbox']);

  const zip = path.join(dir, 'all.zip');
  e = await srv.cli(['export', 'maildir', zip, accountPath]);
  assert.equal(e.code, 0, e.stderr);
  const listing = JSON.parse(
    await python(`import zipfile, json, collections
z = zipfile.ZipFile(${JSON.stringify(zip)})
c = collections.Counter(n.split('/cur/')[0] for n in z.namelist() if '/cur/' in n and not n.endswith('/'))
print(json.dumps(c))`),
  ) as Record<string, number>;
  assert.equal(listing['From Python'], 3);
  assert.equal(listing['Imported/Old'], 10_000);
  assert.equal(listing['Inbox'], undefined, 'empty mailboxes have no message files');
});
