// Operations of a running server: "postern cid" against the logs, command latency and queue
// metrics, index repairs through the server, and running as an unprivileged user.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { ImapFlow } from 'imapflow';
import { startServe, type TestServer } from '../helpers/server.js';
import { smtpSession, submissionSession, sendData, fetchMailbox, headerValues } from '../smtpserver/helpers.js';
import { Raw } from '../helpers/raw.js';

let srv: TestServer;

before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.close();
});

const msg = (subject: string, to = 'jane@example.test', from = 'sender@remote.example') =>
  `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@x.example>\r\n\r\nHello.\r\n`;

async function imap(): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user: 'jane@example.test', pass: 'secret-pass' }, logger: false });
  await c.connect();
  return c;
}

test('postern cid turns the Received id into the cid of the connection in the log', async () => {
  const c = await smtpSession(srv.ports.smtp);
  assert.equal((await sendData(c, 'sender@remote.example', ['jane@example.test'], msg('cid test'))).code, 250);
  c.close();
  const stored = (await fetchMailbox(srv)).find((m) => m.source.includes('Subject: cid test'))!;
  const received = headerValues(stored.source, 'received')[0]!;
  const id = / id ([0-9a-z]+-[0-9a-z]+)/.exec(received.replace(/\s+/g, ' '))![1]!;
  const r = await srv.cli(['cid', id]);
  assert.equal(r.code, 0, r.stderr);
  const cid = Number(/^cid (\d+)$/m.exec(r.stdout)![1]);
  const when = Date.parse(/^received (\S+)$/m.exec(r.stdout)![1]!);
  // The log lines of that connection carry the cid; one of them records the delivery.
  const lines = srv.output.split('\n').filter((l) => l.includes(`"cid":${cid},`) || l.includes(`"cid":${cid}}`));
  assert.ok(lines.some((l) => l.includes('"msg":"delivered"')), `no delivery logged for cid ${cid}`);
  assert.ok(Math.abs(when - Date.parse(JSON.parse(lines[0]!).time)) < 60_000);
  assert.equal((await srv.cli(['cid', 'not-an-id!'])).code, 2);
});

/** Sum of a metric's samples whose labels include the given ones. */
async function sample(name: string, labels: Record<string, string>): Promise<number> {
  const text = (await srv.ctl('metrics')) as string;
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) n += Number(m[3]);
  }
  return n;
}

/** IMAP logins handled, with LOGIN or AUTHENTICATE. */
async function logins(): Promise<number> {
  const n = (c: string) => sample('postern_imapserver_command_duration_seconds_count', { command: c });
  return (await n('LOGIN')) + (await n('AUTHENTICATE'));
}

test('metrics: SMTP and IMAP command latency histograms, rejects, authentications and queue size', async () => {
  const before = {
    ehlo: await sample('postern_smtpserver_command_duration_seconds_count', { kind: 'smtp', command: 'EHLO' }),
    data: await sample('postern_smtpserver_command_duration_seconds_count', { kind: 'smtp', command: 'DATA' }),
    other: await sample('postern_smtpserver_command_duration_seconds_count', { kind: 'smtp', command: 'other' }),
    login: await logins(),
    fetch: await sample('postern_imapserver_command_duration_seconds_count', { command: 'UID FETCH' }),
    imapOther: await sample('postern_imapserver_command_duration_seconds_count', { command: 'other' }),
    authFail: await sample('postern_authentications_total', { protocol: 'imap', result: 'fail' }),
    rejects: await sample('postern_smtpserver_rejects_total', { kind: 'smtp' }),
  };
  const c = await smtpSession(srv.ports.smtp);
  assert.equal((await sendData(c, 'sender@remote.example', ['jane@example.test'], msg('metrics'))).code, 250);
  assert.equal((await c.cmd('XYZZY')).code, 500);
  assert.equal((await c.cmd('MAIL FROM:<a@remote.example>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<nobody@example.test>')).code, 550);
  c.close();
  const sub = await submissionSession(srv);
  assert.equal((await sendData(sub, 'jane@example.test', ['x@remote.example', 'y@remote.example'], msg('queued', 'x@remote.example', 'jane@example.test'))).code, 250);
  sub.close();

  const bad = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user: 'jane@example.test', pass: 'wrong' }, logger: false });
  await assert.rejects(bad.connect());
  const raw = await Raw.connect(srv.ports.imap);
  await raw.line();
  assert.match((await raw.imap('b', 'FROBNICATE')).status, /^BAD/);
  raw.close();
  const im = await imap();
  await im.mailboxOpen('INBOX');
  for await (const _ of im.fetch('1:*', { uid: true, flags: true }, { uid: true }));
  await im.logout();

  assert.equal(await sample('postern_smtpserver_command_duration_seconds_count', { kind: 'smtp', command: 'EHLO' }), before.ehlo + 1);
  assert.equal(await sample('postern_smtpserver_command_duration_seconds_count', { kind: 'smtp', command: 'DATA' }), before.data + 1);
  assert.equal(await sample('postern_smtpserver_command_duration_seconds_count', { kind: 'smtp', command: 'other' }), before.other + 1);
  assert.ok((await sample('postern_smtpserver_command_duration_seconds_sum', { kind: 'smtp', command: 'DATA' })) > 0);
  assert.ok((await sample('postern_smtpserver_command_duration_seconds_bucket', { kind: 'smtp', command: 'DATA', le: '+Inf' })) >= 1);
  // imapflow's failed and successful login.
  assert.equal(await logins(), before.login + 2);
  assert.equal(await sample('postern_imapserver_command_duration_seconds_count', { command: 'other' }), before.imapOther + 1);
  assert.ok((await sample('postern_imapserver_command_duration_seconds_count', { command: 'UID FETCH' })) > before.fetch);
  assert.equal(await sample('postern_authentications_total', { protocol: 'imap', result: 'fail' }), before.authFail + 1);
  assert.equal(await sample('postern_smtpserver_rejects_total', { kind: 'smtp' }), before.rejects + 1);
  // The queue is paused in tests: both recipients wait.
  const q = await srv.cli(['queue', 'list']);
  const waiting = q.stdout.trim().split('\n').filter(Boolean).length;
  assert.ok(waiting >= 2);
  assert.equal(await sample('postern_queue_recipients', { held: 'false' }), waiting);
  assert.equal(await sample('postern_queue_recipients', { held: 'true' }), 0);
  assert.ok((await sample('postern_queue_size_bytes', {})) > 0);
});

test('repairs through the running server: UIDVALIDITY, UIDs, counts, threads, sizes', async () => {
  const c = await smtpSession(srv.ports.smtp);
  for (let i = 0; i < 6; i++) assert.equal((await sendData(c, 'sender@remote.example', ['jane.archive@example.test'], msg(`archived ${i}`))).code, 250);
  c.close();
  const im = await imap();
  let closed = false;
  try {
    const mb = await im.mailboxOpen('Archive');
    const validity = Number(mb.uidValidity);
    // Expunge two messages: UIDs get a gap.
    await im.messageFlagsAdd('2,4', ['\\Deleted'], { uid: true });
    await im.messageFlagsAdd('1', ['custom-kw'], { uid: true });
    await im.mailboxClose();
    await im.mailboxOpen('Archive');
    im.on('close', () => (closed = true));

    let r = await srv.cli(['bumpuidvalidity', 'jane', 'Archive']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Archive: UIDVALIDITY ${validity} -> (\\d+)\\n1 IMAP sessions of the account ended`));
    const bumped = Number(/-> (\d+)/.exec(r.stdout)![1]);
    assert.ok(bumped > validity);
    for (let i = 0; i < 50 && !closed; i++) await new Promise((res) => setTimeout(res, 50));
    assert.ok(closed, 'the open session was ended');
  } finally {
    if (!closed) await im.logout();
  }

  let r = await srv.cli(['reassignuids', 'jane', 'Archive']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Archive: 4 messages renumbered, UIDNEXT 7 -> 5, UIDVALIDITY \d+ -> \d+$/m);
  const im2 = await imap();
  try {
    const mb = await im2.mailboxOpen('Archive', { readOnly: true });
    assert.equal(Number(mb.uidNext), 5);
    const uids: number[] = [];
    const subjects: string[] = [];
    for await (const m of im2.fetch('1:*', { uid: true, envelope: true })) {
      uids.push(m.uid);
      subjects.push(m.envelope!.subject!);
    }
    assert.deepEqual(uids, [1, 2, 3, 4]);
    assert.deepEqual(subjects, ['archived 0', 'archived 2', 'archived 4', 'archived 5']);
  } finally {
    await im2.logout();
  }

  r = await srv.cli(['recalculatemailboxcounts', 'jane']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Archive: 4 messages, 4 unseen, 0 deleted, \d+ bytes$/m);
  assert.match(r.stdout, /^account: \d+ bytes in all mailboxes$/m);

  // Damage the index behind the server's back, as a bug or a restore could.
  const db = new Database(path.join(srv.dataDir, 'accounts', 'jane', 'index.db'));
  const archive = db.prepare("SELECT id, uidnext FROM mailbox WHERE name = 'Archive'").get() as { id: number; uidnext: number };
  db.prepare("UPDATE message SET subject = '', messageid = '' WHERE mailbox_id = ? AND uid = 1").run(archive.id);
  db.prepare("UPDATE mailbox SET keywords = '[]', uidnext = 3 WHERE id = ?").run(archive.id);
  db.prepare('UPDATE message SET part = NULL WHERE mailbox_id = ?').run(archive.id);
  db.close();

  r = await srv.cli(['reassignthreads', 'jane']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\d+ messages, 1 changed$/m);
  r = await srv.cli(['fixuidmeta', 'jane']);
  assert.equal(r.stdout, 'Archive: UIDNEXT 3 -> 5\n');
  r = await srv.cli(['recalculatemailboxcounts', 'jane']);
  assert.match(r.stdout, /^Archive: keywords added to the mailbox's list: custom-kw$/m);
  r = await srv.cli(['reparse', 'jane']);
  assert.match(r.stdout, /^\d+ messages parsed$/m);
  const check = new Database(path.join(srv.dataDir, 'accounts', 'jane', 'index.db'), { readonly: true });
  try {
    assert.equal(check.prepare('SELECT count(*) FROM message WHERE part IS NULL').pluck().get(), 0);
    assert.equal(check.prepare('SELECT subject FROM message WHERE mailbox_id = ? AND uid = 1').pluck().get(archive.id), 'archived 0');
  } finally {
    check.close();
  }
  // Nothing left to fix.
  r = await srv.cli(['fixmsgsize']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  r = await srv.cli(['reassignuids', 'jane', 'NoSuchBox']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no mailbox "NoSuchBox"/);
});

test('started as root with User set, the server binds, then runs as that user with its data directory owned by it', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
  const s = await startServe();
  try {
    await s.stop();
    const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim());
    fs.appendFileSync(s.configFile, 'User: nobody\n');
    // The unprivileged user must be able to reach the data directory (and read the config).
    fs.chmodSync(s.dir, 0o755);
    fs.writeFileSync(path.join(s.dataDir, 'accounts', 'jane', 'leftover'), 'x', { mode: 0o644 });
    // Read at start as root, but not readable later, when config changes are reloaded.
    fs.chmodSync(s.configFile, 0o600);
    await s.start();
    assert.match(s.output, new RegExp(`"file":"${s.configFile}".*"msg":"file not readable by the unprivileged user`));
    const status = fs.readFileSync(`/proc/${s.proc!.pid}/status`, 'utf8');
    assert.deepEqual(/^Uid:\s+(.*)$/m.exec(status)![1]!.split(/\s+/).map(Number), [uid, uid, uid, uid]);
    assert.deepEqual(/^Gid:\s+(.*)$/m.exec(status)![1]!.split(/\s+/).map(Number), [gid, gid, gid, gid]);
    assert.equal(/^Groups:\s*(.*)$/m.exec(status)![1]!.trim(), String(gid));
    assert.match(s.output, /"running as unprivileged user"/);
    const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [path.join(d, e.name), ...walk(path.join(d, e.name))] : [path.join(d, e.name)]));
    for (const p of [s.dataDir, ...walk(s.dataDir)]) {
      const st = fs.lstatSync(p);
      assert.equal(st.uid, uid, p);
      assert.equal(st.mode & 0o777, st.isDirectory() ? 0o700 : 0o600, p);
    }
    // It still works: mail is delivered and stored by the unprivileged process.
    const c = await smtpSession(s.ports.smtp);
    assert.equal((await sendData(c, 'sender@remote.example', ['jane@example.test'], msg('as nobody'))).code, 250);
    c.close();
    const got = await fetchMailbox(s);
    assert.ok(got.some((m) => m.source.includes('Subject: as nobody')));
    const newest = walk(path.join(s.dataDir, 'accounts', 'jane', 'msg')).filter((p) => fs.statSync(p).isFile()).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0]!;
    assert.equal(fs.statSync(newest).uid, uid);
    assert.equal((await s.cli(['stop'])).code, 0);
    await new Promise((r) => s.proc!.once('exit', r));

    // A user that does not exist stops the start with an error.
    const text = fs.readFileSync(s.configFile, 'utf8').replace('User: nobody\n', 'User: no-such-user-here\n');
    fs.writeFileSync(s.configFile, text);
    await assert.rejects(s.start(), /user no-such-user-here \(postern.conf User\) does not exist/);
  } finally {
    await s.close();
  }
});
