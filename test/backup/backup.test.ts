// Backup of a running server while mail arrives, verification of the backup, and a second
// server started on the backup; verifydata finding deleted and stray message files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startServe, freePorts, tempDir, postern, TestServer, type Ports } from '../helpers/server.js';
import { smtpSession, submissionSession, sendData, fetchMailbox } from '../smtpserver/helpers.js';

let srv: TestServer;

before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.close();
});

const msg = (subject: string, body = 'Hello.') =>
  `From: sender@remote.example\r\nTo: jane@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@remote.example>\r\n\r\n${body}\r\n`;

/** Delivers messages over SMTP, one session per sender, until stopped; returns how many were accepted. */
function deliveryLoad(senders: number, stop: () => boolean): Promise<number> {
  let n = 0;
  return Promise.all(
    Array.from({ length: senders }, async (_, s) => {
      const c = await smtpSession(srv.ports.smtp);
      try {
        for (let i = 0; !stop(); i++) {
          const r = await sendData(c, 'sender@remote.example', ['jane@example.test'], msg(`load ${s}-${i}`, 'x'.repeat(2000)));
          assert.equal(r.code, 250, r.text);
          n++;
        }
      } finally {
        c.close();
      }
    }),
  ).then(() => n);
}

/** A second server with a copy of the first's configuration, on the data directory dataDir. */
async function serverOn(dir: string): Promise<TestServer> {
  const cdir = path.join(dir, 'config');
  fs.cpSync(path.join(srv.dir, 'config'), cdir, { recursive: true });
  const [smtp, submission, submissions, imap, imaps] = await freePorts(5);
  const ports = { ...srv.ports, smtp: smtp!, submission: submission!, submissions: submissions!, imap: imap!, imaps: imaps! } as Ports;
  const file = path.join(cdir, 'postern.conf');
  let text = fs.readFileSync(file, 'utf8');
  for (const k of ['smtp', 'submission', 'submissions', 'imap', 'imaps'] as const) text = text.replace(`Port: ${srv.ports[k]}\n`, `Port: ${ports[k]}\n`);
  fs.writeFileSync(file, text);
  const s = new TestServer(dir, file, ports, srv.certPEM, ['--config', file, 'serve']);
  await s.start();
  return s;
}

let backupDir: string;

test('backup while mail arrives: verifydata passes, and a server on the backup serves the same messages and queue', async () => {
  // Some mail before, and messages in the (paused) outgoing queue.
  const c = await smtpSession(srv.ports.smtp);
  for (let i = 0; i < 20; i++) assert.equal((await sendData(c, 'sender@remote.example', ['jane@example.test'], msg(`before ${i}`))).code, 250);
  c.close();
  const sub = await submissionSession(srv);
  for (let i = 0; i < 3; i++) assert.equal((await sendData(sub, 'jane@example.test', ['bob@remote.example', 'carol@remote.example'], msg(`outgoing ${i}`).replace('To: jane@example.test', 'To: bob@remote.example').replace('From: sender@remote.example', 'From: jane@example.test'))).code, 250);
  sub.close();
  const queued = await srv.cli(['queue', 'list']);
  assert.equal(queued.code, 0, queued.stderr);

  let stopLoad = false;
  const load = deliveryLoad(4, () => stopLoad);
  // Let the load get going, then back up in the middle of it.
  while ((await fetchMailbox(srv)).length < 40) await new Promise((r) => setTimeout(r, 50));
  const dir = tempDir();
  backupDir = path.join(dir, 'data');
  const b = await srv.cli(['backup', '-verbose', backupDir]);
  stopLoad = true;
  const delivered = await load;
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stdout, /database accounts\/jane\/index\.db/);
  assert.match(b.stdout, /database queue\/index\.db/);
  assert.match(b.stdout, /\d+ databases, (\d+) message files linked, 0 copied/);
  assert.ok(delivered > 0);
  // Message files are hard links: the same inode as in the live data directory.
  const live = fs.statSync(path.join(srv.dataDir, 'accounts', 'jane', 'msg', '0', '1'));
  const copy = fs.statSync(path.join(backupDir, 'accounts', 'jane', 'msg', '0', '1'));
  assert.equal(copy.ino, live.ino);
  assert.ok(!fs.existsSync(path.join(backupDir, 'ctl')), 'no control socket in the backup');

  const v = await postern(['verifydata', backupDir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /\d+ databases, \d+ messages checked, 0 problems/);

  const all = await fetchMailbox(srv);
  const s2 = await serverOn(dir);
  try {
    const backedUp = await fetchMailbox(s2);
    // Everything before the backup, some of the load, none delivered after the backup ended.
    assert.ok(backedUp.length >= 40 && backedUp.length < all.length, `${backedUp.length} of ${all.length}`);
    for (const m of backedUp) {
      const orig = all.find((a) => a.uid === m.uid);
      assert.ok(orig, `uid ${m.uid} exists on the original`);
      assert.deepEqual(m.source, orig.source, `uid ${m.uid}`);
    }
    assert.deepEqual(
      backedUp.map((m) => m.uid),
      all.slice(0, backedUp.length).map((m) => m.uid),
    );
    const q2 = await s2.cli(['queue', 'list']);
    assert.equal(q2.stdout, queued.stdout);
    // The backup is a working data directory: new mail is stored after the old.
    const c2 = await smtpSession(s2.ports.smtp);
    assert.equal((await sendData(c2, 'sender@remote.example', ['jane@example.test'], msg('after restore'))).code, 250);
    c2.close();
    const after = await fetchMailbox(s2);
    assert.equal(after.length, backedUp.length + 1);
    assert.ok(after[after.length - 1]!.uid > backedUp[backedUp.length - 1]!.uid);
  } finally {
    await s2.stop();
  }
});

test('verifydata finds a deleted and a stray message file, bad sizes and UIDNEXT; -fix moves strays away', async () => {
  assert.ok(backupDir, 'runs after the backup test');
  const dir = path.join(tempDir(), 'data');
  const b = await srv.cli(['backup', dir]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, '', 'a clean backup prints nothing');
  const msgDir = path.join(dir, 'accounts', 'jane', 'msg', '0');
  fs.rmSync(path.join(msgDir, '3'));
  fs.writeFileSync(path.join(msgDir, '7000'), 'stray');
  fs.writeFileSync(path.join(dir, 'accounts', 'jane', 'msg', 'notes.txt'), 'stray too');
  const qfile = fs.readdirSync(path.join(dir, 'queue', 'msg', '0'))[0]!;
  fs.writeFileSync(path.join(dir, 'queue', 'msg', '0', String(Number(qfile) + 100)), 'stray queue file');
  const db = new Database(path.join(dir, 'accounts', 'jane', 'index.db'));
  db.prepare('UPDATE message SET size = size + 1 WHERE id = 5').run();
  const inbox = db.prepare("SELECT id, uidnext FROM mailbox WHERE name = 'Inbox'").get() as { id: number; uidnext: number };
  db.prepare('UPDATE mailbox SET uidnext = 2 WHERE id = ?').run(inbox.id);
  db.close();

  let v = await postern(['verifydata', dir]);
  assert.equal(v.code, 1);
  const out = v.stdout;
  assert.match(out, /account jane: mailbox Inbox: message UID 3 \(id 3\): message file missing/);
  assert.match(out, /accounts\/jane\/msg\/0\/7000: file not in the index \(use -fix to move it away\)/);
  assert.match(out, /accounts\/jane\/msg\/notes\.txt: file not in the index/);
  assert.match(out, new RegExp(`queue/msg/0/${Number(qfile) + 100}: file not in the index`));
  assert.match(out, /message UID 5 \(id 5\): size \d+ recorded, \d+ stored \(run fixmsgsize\)/);
  assert.match(out, /mailbox Inbox: message UID 2 not below UIDNEXT 2 \(run fixuidmeta\)/);

  v = await postern(['verifydata', '-fix', dir]);
  assert.equal(v.code, 1, 'the missing file and index problems remain');
  assert.match(v.stdout, /moved accounts\/jane\/msg\/0\/7000 -> moved\/accounts\/jane\/msg\/0\/7000/);
  assert.equal(fs.readFileSync(path.join(dir, 'moved', 'accounts', 'jane', 'msg', '0', '7000'), 'utf8'), 'stray');
  assert.ok(!fs.existsSync(path.join(msgDir, '7000')));
  assert.doesNotMatch(v.stdout, /file not in the index/);
  assert.match(v.stdout, /message file missing/);

  // With the file back and the index repaired offline, nothing is left.
  fs.linkSync(path.join(srv.dataDir, 'accounts', 'jane', 'msg', '0', '3'), path.join(msgDir, '3'));
  const conf = path.join(path.dirname(dir), 'config');
  fs.cpSync(path.join(srv.dir, 'config'), conf, { recursive: true });
  const cfg = path.join(conf, 'postern.conf');
  for (const cmd of ['fixmsgsize', 'fixuidmeta']) {
    const r = await postern(['--config', cfg, cmd, 'jane']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, cmd === 'fixmsgsize' ? /^Inbox UID 5: size \d+ -> \d+$/m : new RegExp(`^Inbox: UIDNEXT 2 -> ${inbox.uidnext}$`, 'm'));
  }
  v = await postern(['verifydata', dir]);
  assert.equal(v.code, 0, v.stdout);

  // Without a running server the command makes the backup itself.
  const offline = path.join(tempDir(), 'offline');
  const ob = await postern(['--config', cfg, 'backup', '-verbose', offline]);
  assert.equal(ob.code, 0, ob.stderr);
  assert.match(ob.stdout, /backup done: \d+ databases, \d+ message files linked/);
  v = await postern(['verifydata', offline]);
  assert.equal(v.code, 0, v.stdout);
  assert.equal((await postern(['verifydata', srv.dataDir])).code, 1, 'refused on a running server');
});
