// mbsync (Debian package isync, 1.4) synchronizes the account with a local Maildir: every
// mailbox, including a nested one and one with a non-ASCII name, with message contents and
// flags. Then both sides change and a second run carries the changes both ways; a third run
// changes nothing on either side.
//
// Compared after normalizing what mbsync does by design:
// - Maildir files have LF line endings, the server CRLF (mbsync converts).
// - mbsync adds an "X-TUID" header to the messages it copies, to find them again; it is
//   removed on both sides before comparing.
// - Flags are compared as Maildir info letters: D \Draft, F \Flagged, P $Forwarded,
//   R \Answered, S \Seen, T \Deleted. mbsync 1.4 does not synchronize other keywords.
// - Mailbox names on disk are the IMAP4rev1 names: modified UTF-7 (RFC 3501 5.1.3), since
//   mbsync 1.4 does not convert them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServe, tempDir, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';
import { findBinary } from '../helpers/dovecot.js';

const skip = findBinary('mbsync') ? false : 'needs mbsync (Debian package isync)';

let srv: TestServer;
let dir: string;
let imap: Imap;
/** stdout and stderr of every mbsync run. */
const runs: { code: number | null; output: string }[] = [];

/** A raw IMAP session that reads literals. */
class Imap {
  private tag = 0;
  constructor(readonly raw: Raw) {}

  static async open(): Promise<Imap> {
    const raw = await Raw.connectTLS(srv.ports.imaps, srv.certPEM);
    await raw.line();
    const c = new Imap(raw);
    await c.ok('LOGIN jane@example.test secret-pass');
    return c;
  }

  private async response(): Promise<string> {
    let out = '';
    for (;;) {
      const l = await this.raw.line();
      out += l;
      const m = /\{(\d+)\+?\}$/.exec(l);
      if (!m) return out;
      out += '\r\n' + (await this.raw.bytes(Number(m[1]))).toString('latin1');
    }
  }

  /** Runs a command; returns the untagged responses; fails unless it ends in OK. */
  async ok(command: string | Buffer): Promise<string[]> {
    const tag = `m${++this.tag}`;
    this.raw.write(Buffer.concat([Buffer.from(`${tag} `), Buffer.from(command), Buffer.from('\r\n')]));
    const untagged: string[] = [];
    for (;;) {
      const r = await this.response();
      if (r.startsWith(tag + ' ')) {
        assert.match(r, new RegExp(`^${tag} OK`), `${command.toString().slice(0, 100)}: ${r}`);
        return untagged;
      }
      untagged.push(r);
    }
  }
}

const MESSAGES: { mailbox: string; flags: string; id: string; subject: string; body: string }[] = [
  { mailbox: 'INBOX', flags: '\\Seen', id: 'inbox-1', subject: 'Seen message', body: 'First line.\r\nSecond line.\r\n' },
  { mailbox: 'INBOX', flags: '', id: 'inbox-2', subject: 'Unread message', body: 'Nobody read this yet.\r\n' },
  { mailbox: 'INBOX', flags: '\\Flagged \\Answered', id: 'inbox-3', subject: 'Flagged and answered', body: 'Grüße, schön – UTF-8 in 8bit.\r\n' },
  { mailbox: 'INBOX', flags: '\\Seen $Forwarded $Custom', id: 'inbox-4', subject: 'Forwarded', body: 'Passed on.\r\n' },
  { mailbox: 'Lists/dev', flags: '\\Seen', id: 'dev-1', subject: '[dev] release', body: 'Release notes.\r\n' },
  { mailbox: 'Lists/dev', flags: '', id: 'dev-2', subject: '[dev] question', body: 'A question.\r\n' },
  { mailbox: 'Sent', flags: '\\Seen', id: 'sent-1', subject: 'Sent by me', body: 'Outgoing.\r\n' },
  { mailbox: 'B&APw-ro', flags: '\\Flagged \\Draft', id: 'buero-1', subject: 'Office', body: 'In the Büro mailbox.\r\n' },
];

function message(id: string, subject: string, body: string): string {
  return `From: Sender <sender@example.org>\r\nTo: jane@example.test\r\nSubject: ${subject}\r\nDate: Mon, 3 Mar 2025 10:00:00 +0000\r\nMessage-ID: <${id}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}`;
}

before(async () => {
  if (skip) return;
  srv = await startServe();
  dir = tempDir('postern-mbsync-');
  fs.mkdirSync(path.join(dir, 'mail'));
  fs.writeFileSync(path.join(dir, 'server.pem'), srv.certPEM);
  fs.writeFileSync(
    path.join(dir, 'mbsyncrc'),
    `IMAPAccount postern
Host localhost
Port ${srv.ports.imaps}
User jane@example.test
Pass secret-pass
SSLType IMAPS
CertificateFile ${dir}/server.pem

IMAPStore remote
Account postern

MaildirStore local
Path ${dir}/mail/
Inbox ${dir}/mail/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`,
  );
  imap = await Imap.open();
  await imap.ok('CREATE Lists/dev');
  await imap.ok('CREATE B&APw-ro'); // "Büro"
  for (const m of MESSAGES) {
    const data = Buffer.from(message(m.id, m.subject, m.body));
    await imap.ok(Buffer.concat([Buffer.from(`APPEND ${m.mailbox} (${m.flags}) {${data.length}+}\r\n`), data]));
  }
});

after(async () => {
  imap?.raw.close();
  await srv?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs mbsync on the channel; HOME is the test directory, so no user configuration is read. */
function mbsync(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('mbsync', ['-c', path.join(dir, 'mbsyncrc'), '-V', 'all'], { env: { ...process.env, HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mbsync did not finish:\n${output}`));
    }, 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      runs.push({ code, output });
      resolve({ code, output });
    });
  });
}

const FLAG_LETTERS: [string, string][] = [
  ['\\Draft', 'D'],
  ['\\Flagged', 'F'],
  ['$Forwarded', 'P'],
  ['\\Answered', 'R'],
  ['\\Seen', 'S'],
  ['\\Deleted', 'T'],
];

/** Contents as compared: LF line endings, without mbsync's X-TUID header. */
function normalize(content: string): string {
  return content.replace(/\r\n/g, '\n').replace(/^X-TUID: .*\n/m, '');
}

function messageId(content: string): string {
  const m = /^Message-ID:\s*<([^>]+)>/im.exec(content);
  assert.ok(m, `no Message-ID in ${JSON.stringify(content.slice(0, 200))}`);
  return m[1]!;
}

interface Msg {
  flags: string;
  content: string;
}

/** Mailbox name to messages by Message-ID. */
type Side = Map<string, Map<string, Msg>>;

interface LocalFile {
  mailbox: string;
  /** Path relative to the Maildir root. */
  file: string;
  flags: string;
}

/** The Maildir folders (with cur/), relative to the Maildir root. */
function maildirs(): string[] {
  const root = path.join(dir, 'mail');
  const out: string[] = [];
  const walk = (rel: string) => {
    if (fs.existsSync(path.join(root, rel, 'cur'))) out.push(rel);
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      if (e.isDirectory() && !['cur', 'new', 'tmp'].includes(e.name)) walk(rel ? path.join(rel, e.name) : e.name);
    }
  };
  walk('');
  return out.sort();
}

/** The message files of the Maildir tree. */
function localFiles(): LocalFile[] {
  const root = path.join(dir, 'mail');
  const out: LocalFile[] = [];
  for (const mailbox of maildirs()) {
    for (const sub of ['cur', 'new']) {
      for (const f of fs.readdirSync(path.join(root, mailbox, sub))) {
        const info = /:2,([A-Za-z]*)$/.exec(f);
        out.push({ mailbox, file: path.join(mailbox, sub, f), flags: info ? [...info[1]!].sort().join('') : '' });
      }
    }
  }
  return out.sort((a, b) => (a.file < b.file ? -1 : 1));
}

function localSide(): Side {
  const side: Side = new Map(maildirs().map((m) => [m, new Map<string, Msg>()]));
  for (const f of localFiles()) {
    const content = normalize(fs.readFileSync(path.join(dir, 'mail', f.file), 'latin1'));
    side.get(f.mailbox)!.set(messageId(content), { flags: f.flags, content });
  }
  return side;
}

interface ServerMailbox {
  uidvalidity: number;
  uidnext: number;
  highestmodseq: number;
  /** UID, flags as sent, MODSEQ, and contents of each message. */
  messages: { uid: number; flags: string[]; modseq: number; content: string }[];
}

/** Everything about the account's mailboxes, read without changing anything (EXAMINE, BODY.PEEK). */
async function serverState(): Promise<Map<string, ServerMailbox>> {
  const out = new Map<string, ServerMailbox>();
  const names = (await imap.ok('LIST "" "*"')).map((l) => {
    const m = /^\* LIST \([^)]*\) "\/" (.*)$/.exec(l);
    assert.ok(m, l);
    return m[1]!.replace(/^"(.*)"$/, '$1');
  });
  for (const name of names.sort()) {
    const sel = (await imap.ok(`EXAMINE "${name}" (CONDSTORE)`)).join('\n');
    const num = (re: RegExp) => Number(re.exec(sel)![1]);
    const box: ServerMailbox = { uidvalidity: num(/UIDVALIDITY (\d+)/), uidnext: num(/UIDNEXT (\d+)/), highestmodseq: num(/HIGHESTMODSEQ (\d+)/), messages: [] };
    if (!/\* 0 EXISTS/.test(sel)) {
      for (const r of await imap.ok('FETCH 1:* (UID FLAGS MODSEQ BODY.PEEK[])')) {
        const m = /^\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\) BODY\[\] \{(\d+)\}\r\n/.exec(r);
        assert.ok(m, r.slice(0, 200));
        const content = Buffer.from(r.slice(m[0].length, m[0].length + Number(m[4])), 'latin1').toString('latin1');
        box.messages.push({ uid: Number(m[1]), flags: m[2]!.split(' ').filter(Boolean).sort(), modseq: Number(m[3]), content });
      }
    }
    out.set(name === 'INBOX' ? 'INBOX' : name, box);
  }
  await imap.ok('UNSELECT');
  return out;
}

function serverSide(state: Map<string, ServerMailbox>): Side {
  const side: Side = new Map();
  for (const [name, box] of state) {
    const msgs = new Map<string, Msg>();
    for (const m of box.messages) {
      const content = normalize(m.content);
      const flags = FLAG_LETTERS.filter(([f]) => m.flags.includes(f))
        .map(([, l]) => l)
        .sort()
        .join('');
      msgs.set(messageId(content), { flags, content });
    }
    side.set(name, msgs);
  }
  return side;
}

/** Both sides hold the same mailboxes with the same messages and flags. */
async function assertInSync(): Promise<Side> {
  const server = serverSide(await serverState());
  const local = localSide();
  assert.deepEqual([...local.keys()].sort(), [...server.keys()].sort(), 'mailboxes');
  for (const [name, msgs] of server) {
    const mine = local.get(name)!;
    assert.deepEqual([...mine.keys()].sort(), [...msgs.keys()].sort(), `messages in ${name}`);
    for (const [id, m] of msgs) assert.deepEqual(mine.get(id), m, `${id} in ${name}`);
  }
  return server;
}

/** Delivers a message over SMTP, as from the outside. */
async function smtpDeliver(id: string, subject: string): Promise<void> {
  const c = await Raw.connect(srv.ports.smtp);
  await c.reply();
  await c.cmd('EHLO sender.example');
  await c.cmd('MAIL FROM:<news@example.org>');
  await c.cmd('RCPT TO:<jane@example.test>');
  await c.cmd('DATA');
  assert.equal((await c.cmd(`${message(id, subject, 'Delivered while offline.\r\n')}.`)).code, 250);
  c.close();
}

test('first sync: every mailbox with contents and flags', { skip }, async () => {
  const r = await mbsync();
  assert.equal(r.code, 0, r.output);
  const server = await assertInSync();
  // What the comparison covered.
  assert.deepEqual([...server.keys()].sort(), ['Archive', 'B&APw-ro', 'Drafts', 'INBOX', 'Junk', 'Lists', 'Lists/dev', 'Sent', 'Trash']);
  const local = localSide();
  assert.equal(local.get('INBOX')!.size, 4);
  assert.equal(local.get('INBOX')!.get('inbox-1@example.org')!.flags, 'S');
  assert.equal(local.get('INBOX')!.get('inbox-2@example.org')!.flags, '');
  assert.equal(local.get('INBOX')!.get('inbox-3@example.org')!.flags, 'FR');
  assert.equal(local.get('INBOX')!.get('inbox-4@example.org')!.flags, 'PS');
  assert.equal(local.get('B&APw-ro')!.get('buero-1@example.org')!.flags, 'DF');
  assert.equal(local.get('Lists/dev')!.size, 2);
  assert.ok(fs.existsSync(path.join(dir, 'mail', 'Lists', 'dev', 'cur')));
  // The contents are the bytes on the server (8-bit UTF-8 included), with LF line endings.
  const m3 = MESSAGES[2]!;
  assert.equal(local.get('INBOX')!.get('inbox-3@example.org')!.content, Buffer.from(message(m3.id, m3.subject, m3.body).replace(/\r\n/g, '\n')).toString('latin1'));
});

let beforeThird: { files: LocalFile[]; server: Map<string, ServerMailbox> };

test('second sync: changes on both sides go both ways', { skip }, async () => {
  const root = path.join(dir, 'mail');
  // Local: a new message in INBOX (unread, in new/), one in Lists/dev (read), and flags set.
  fs.writeFileSync(path.join(root, 'INBOX', 'new', `${Math.floor(Date.now() / 1000)}.local1.test`), message('local-1', 'Written locally', 'Composed offline.\r\n').replace(/\r\n/g, '\n'));
  fs.writeFileSync(path.join(root, 'Lists', 'dev', 'cur', `${Math.floor(Date.now() / 1000)}.local2.test:2,S`), message('local-2', '[dev] reply', 'A reply, read.\r\n').replace(/\r\n/g, '\n'));
  const unread = localFiles().find((f) => f.mailbox === 'INBOX' && fs.readFileSync(path.join(root, f.file), 'latin1').includes('<inbox-2@example.org>'))!;
  const base = path.basename(unread.file).replace(/:2,.*$/, '');
  fs.renameSync(path.join(root, unread.file), path.join(root, 'INBOX', 'cur', `${base}:2,FS`));

  // Server: a message expunged, one delivered, flags changed.
  await imap.ok('SELECT Lists/dev');
  const found = (await imap.ok('UID SEARCH HEADER Message-ID dev-1')).join(' ');
  const uid = /^\* SEARCH (\d+)$/.exec(found)![1];
  await imap.ok(`UID STORE ${uid} +FLAGS.SILENT (\\Deleted)`);
  await imap.ok(`UID EXPUNGE ${uid}`);
  await imap.ok('SELECT INBOX');
  const three = /^\* SEARCH (\d+)$/.exec((await imap.ok('UID SEARCH HEADER Message-ID inbox-3')).join(' '))![1];
  await imap.ok(`UID STORE ${three} FLAGS.SILENT (\\Seen \\Answered)`);
  await imap.ok('UNSELECT');
  await smtpDeliver('delivered-1', 'Arrived on the server');

  const r = await mbsync();
  assert.equal(r.code, 0, r.output);
  const server = await assertInSync();
  const inbox = server.get('INBOX')!;
  assert.equal(inbox.get('local-1@example.org')?.flags, '', 'pushed unread');
  assert.match(inbox.get('local-1@example.org')!.content, /Composed offline/);
  assert.equal(server.get('Lists/dev')!.get('local-2@example.org')?.flags, 'S', 'pushed read');
  assert.equal(inbox.get('inbox-2@example.org')!.flags, 'FS', 'local flags pushed');
  assert.equal(inbox.get('inbox-3@example.org')!.flags, 'RS', 'server flags pulled');
  assert.ok(inbox.has('delivered-1@example.org'), 'delivered message pulled');
  assert.ok(!server.get('Lists/dev')!.has('dev-1@example.org'), 'expunged on the server');
  assert.deepEqual([...server.get('Lists/dev')!.keys()].sort(), ['dev-2@example.org', 'local-2@example.org']);
  // And the local file of the expunged message is gone (Expunge Both).
  assert.ok(!localFiles().some((f) => fs.readFileSync(path.join(root, f.file), 'latin1').includes('<dev-1@example.org>')));
  beforeThird = { files: localFiles(), server: await serverState() };
});

test('third sync changes nothing on either side', { skip }, async () => {
  assert.ok(beforeThird, 'second sync ran');
  const r = await mbsync();
  assert.equal(r.code, 0, r.output);
  // Same file names (flags are in the names), same UIDs, flags, MODSEQs, UIDNEXT and HIGHESTMODSEQ.
  assert.deepEqual(localFiles(), beforeThird.files);
  assert.deepEqual(await serverState(), beforeThird.server);
  await assertInSync();
});

test('mbsync logs out without an error', { skip }, () => {
  assert.ok(runs.length >= 1);
  for (const r of runs) assert.doesNotMatch(r.output, /IMAP error/);
});
