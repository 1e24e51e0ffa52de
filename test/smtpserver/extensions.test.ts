// ESMTP extensions and limits over raw sockets: line length, RCPTMAX, SIZE, relaying, BINARYMIME
// with BDAT and DATA, DSN parameters, REQUIRETLS and FUTURERELEASE; queued messages are checked
// in the outbound queue's database, opened read-only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startServe, type TestServer } from '../helpers/server.js';
import type { Raw } from '../helpers/raw.js';
import type { QueueMsg } from '../../src/queue/store.js';
import { findBySubject, sendData, smtpSession, submissionSession } from './helpers.js';

const MAX_SIZE = 20_000;
let srv: TestServer;

before(async () => {
  srv = await startServe();
  // The listener's MaxMessageSize is in postern.conf under the SMTP service: set it and restart.
  await srv.stop();
  const text = fs.readFileSync(srv.configFile, 'utf8');
  const edited = text.replace(/(\n    SMTP:\n      Enabled: true\n      Port: \d+\n)/, `$1      MaxMessageSize: ${MAX_SIZE}\n`);
  assert.notEqual(edited, text);
  fs.writeFileSync(srv.configFile, edited);
  await srv.start();
});
after(async () => {
  await srv?.close();
});

/** Queue rows, read from the server's queue database opened read-only. */
function queueRows(): QueueMsg[] {
  const db = new Database(path.join(srv.dataDir, 'queue', 'index.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT * FROM msg ORDER BY id').all() as QueueMsg[];
  } finally {
    db.close();
  }
}

async function mailRcpt(c: Raw, mail: string, rcpt = 'jane@example.test'): Promise<void> {
  const m = await c.cmd(mail);
  assert.equal(m.code, 250, m.text);
  const r = await c.cmd(`RCPT TO:<${rcpt}>`);
  assert.equal(r.code, 250, r.text);
}

test('EHLO lists the extensions with their parameters', async () => {
  const c = await smtpSession(srv.ports.smtp);
  const ehlo = await c.cmd('EHLO client.example');
  for (const ext of ['PIPELINING', `SIZE ${MAX_SIZE}`, 'STARTTLS', 'ENHANCEDSTATUSCODES', '8BITMIME', 'BINARYMIME', 'CHUNKING', 'DSN', 'LIMITS RCPTMAX=1000', 'SMTPUTF8']) {
    assert.ok(ehlo.lines.includes(ext), `${ext} in ${JSON.stringify(ehlo.lines)}`);
  }
  // RFC 8689 4: REQUIRETLS only over TLS; RFC 4865: FUTURERELEASE only on submission.
  assert.ok(!ehlo.lines.some((l) => /^(REQUIRETLS|FUTURERELEASE|AUTH)\b/.test(l)));
  c.close();
});

test('command line length: 998 octets accepted, 999 refused with 500, session goes on', async () => {
  const c = await smtpSession(srv.ports.smtp);
  assert.equal((await c.cmd('NOOP ' + 'x'.repeat(998 - 5))).code, 250);
  const long = await c.cmd('NOOP ' + 'x'.repeat(999 - 5));
  assert.equal(long.code, 500);
  assert.match(long.text, /^5\.5\.2 .*too long/);
  const mail = await c.cmd(`MAIL FROM:<${'a'.repeat(5000)}@sender.example>`);
  assert.equal(mail.code, 500);
  // Nothing of the long line was taken as a command.
  assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 503);
  assert.equal((await c.cmd('NOOP')).code, 250);
  c.close();
});

test('1000 recipients accepted, the 1001st gets 452, the message is delivered once', async () => {
  const c = await smtpSession(srv.ports.smtp);
  // Pipelined (RFC 2920): all recipients in one write.
  const rcpts = Array.from({ length: 1001 }, (_, i) => `RCPT TO:<jane+r${i}@example.test>\r\n`).join('');
  c.write(`MAIL FROM:<list@sender.example>\r\n${rcpts}`);
  assert.equal((await c.reply()).code, 250);
  for (let i = 0; i < 1000; i++) {
    const r = await c.reply();
    assert.equal(r.code, 250, `recipient ${i}: ${r.text}`);
  }
  const last = await c.reply();
  assert.equal(last.code, 452);
  assert.match(last.text, /^4\.5\.3 /);
  assert.equal((await c.cmd('DATA')).code, 354);
  assert.equal((await c.cmd('Subject: thousand\r\n\r\nx\r\n.')).code, 250);
  c.close();
  assert.equal((await findBySubject(srv, 'thousand')).length, 1);
});

test('SIZE: announced limit enforced at MAIL and after the data', async () => {
  const c = await smtpSession(srv.ports.smtp);
  const over = await c.cmd(`MAIL FROM:<big@sender.example> SIZE=${MAX_SIZE + 1}`);
  assert.equal(over.code, 552);
  assert.match(over.text, /^5\.3\.4 /);
  assert.equal((await c.cmd('MAIL FROM:<big@sender.example> SIZE=x')).code, 501);
  // A SIZE within the limit, then more data than announced and allowed.
  await mailRcpt(c, `MAIL FROM:<big@sender.example> SIZE=${MAX_SIZE}`);
  assert.equal((await c.cmd('DATA')).code, 354);
  const body = ('y'.repeat(76) + '\r\n').repeat(Math.ceil((MAX_SIZE + 100) / 78));
  c.write(`Subject: too big data\r\n\r\n${body}.\r\n`);
  const r = await c.reply();
  assert.equal(r.code, 552);
  assert.match(r.text, /^5\.3\.4 /);
  // Same with BDAT chunks: refused at LAST.
  await mailRcpt(c, 'MAIL FROM:<big@sender.example>');
  const chunk = `Subject: too big bdat\r\n\r\n${body}`;
  c.write(`BDAT ${chunk.length}\r\n${chunk}`);
  assert.equal((await c.reply()).code, 250);
  c.write('BDAT 5 LAST\r\nend\r\n');
  const b = await c.reply();
  assert.equal(b.code, 552);
  // Just under the limit is fine (the stored message gets headers added; the limit is on what is sent).
  await mailRcpt(c, 'MAIL FROM:<big@sender.example>');
  assert.equal((await c.cmd('DATA')).code, 354);
  const head = 'Subject: just fits\r\n\r\n';
  const fits = head + 'z'.repeat(MAX_SIZE - head.length - 2) + '\r\n';
  assert.equal(fits.length, MAX_SIZE);
  c.write(`${fits}.\r\n`);
  assert.equal((await c.reply()).code, 250);
  c.close();
  assert.equal((await findBySubject(srv, 'too big data')).length, 0);
  assert.equal((await findBySubject(srv, 'too big bdat')).length, 0);
  assert.equal((await findBySubject(srv, 'just fits')).length, 1);
});

test('relaying refused on port 25, also with a local sender address', async () => {
  const c = await smtpSession(srv.ports.smtp);
  for (const from of ['stranger@sender.example', 'jane@example.test']) {
    assert.equal((await c.cmd(`MAIL FROM:<${from}>`)).code, 250);
    const r = await c.cmd('RCPT TO:<victim@elsewhere.example>');
    assert.equal(r.code, 550);
    assert.match(r.text, /^5\.7\.1 /);
    // Source-routed and percent-hack forms are not a way around it.
    const pct = await c.cmd('RCPT TO:<victim%elsewhere.example@example.test>');
    assert.equal(pct.code, 550);
    assert.equal((await c.cmd('DATA')).code, 503);
    assert.equal((await c.cmd('RSET')).code, 250);
  }
  c.close();
});

test('BODY=BINARYMIME: refused with DATA, stored byte for byte with BDAT', async () => {
  const c = await smtpSession(srv.ports.smtp);
  await mailRcpt(c, 'MAIL FROM:<bin@sender.example> BODY=BINARYMIME');
  const d = await c.cmd('DATA');
  assert.equal(d.code, 503);
  assert.match(d.text, /^5\.5\.1 .*BDAT/);
  assert.equal((await c.cmd('RSET')).code, 250);
  await mailRcpt(c, 'MAIL FROM:<bin@sender.example> BODY=BINARYMIME');
  const head = Buffer.from('Subject: binary\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n');
  const bin = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));
  const msg = Buffer.concat([head, bin, Buffer.from('\r\n')]);
  const first = msg.subarray(0, 1000);
  const rest = msg.subarray(1000);
  c.write(Buffer.concat([Buffer.from(`BDAT ${first.length}\r\n`), first]));
  assert.equal((await c.reply()).code, 250);
  c.write(Buffer.concat([Buffer.from(`BDAT ${rest.length} LAST\r\n`), rest]));
  assert.equal((await c.reply()).code, 250);
  c.close();
  const [stored] = await findBySubject(srv, 'binary');
  assert.ok(stored);
  assert.ok(stored.subarray(stored.length - msg.length).equals(msg), 'binary content intact');
});

test('BDAT out of order: the chunk is read and dropped (RFC 3030 2), not run as commands', async () => {
  const c = await smtpSession(srv.ports.smtp);
  const chunk = 'QUIT\r\n';
  const r = await c.cmd(`BDAT ${chunk.length} LAST\r\n${chunk}`.slice(0, -2));
  assert.equal(r.code, 503);
  // The QUIT inside the chunk was not executed.
  assert.equal((await c.cmd('NOOP')).code, 250);
  // A BDAT whose size cannot be parsed cannot be skipped: the connection is closed.
  const bad = await c.cmd('BDAT ten LAST');
  assert.equal(bad.code, 501);
  await assert.rejects(c.line(2000), /closed/);
});

test('BODY values: 8BITMIME and 7BIT accepted, others refused', async () => {
  const c = await smtpSession(srv.ports.smtp);
  for (const v of ['8BITMIME', '7BIT', '8bitmime']) {
    assert.equal((await c.cmd(`MAIL FROM:<a@sender.example> BODY=${v}`)).code, 250, v);
    assert.equal((await c.cmd('RSET')).code, 250);
  }
  assert.equal((await c.cmd('MAIL FROM:<a@sender.example> BODY=9BIT')).code, 501);
  c.close();
});

test('DSN parameters accepted and kept with the queued message; bad ones refused', async () => {
  const c = await smtpSession(srv.ports.smtp);
  // Port 25: accepted for local delivery.
  await mailRcpt(c, 'MAIL FROM:<dsn@sender.example> RET=HDRS ENVID=QQ+2B314', 'jane@example.test');
  assert.equal((await c.cmd('RCPT TO:<jane.archive@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;jane.archive+2Bx@example.test')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<jane+n@example.test> NOTIFY=NEVER')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  assert.equal((await c.cmd('Subject: dsn local\r\n\r\nx\r\n.')).code, 250);
  const bad: [string, number][] = [
    ['MAIL FROM:<dsn@sender.example> RET=ALL', 501],
    ['MAIL FROM:<dsn@sender.example> RET', 501],
    ['MAIL FROM:<dsn@sender.example> ENVID=a+zz', 501],
    ['MAIL FROM:<dsn@sender.example> ENVID=has=equals', 501],
    [`MAIL FROM:<dsn@sender.example> ENVID=${'e'.repeat(101)}`, 501],
  ];
  for (const [cmd, code] of bad) assert.equal((await c.cmd(cmd)).code, code, cmd);
  c.close();
  // A new connection: 10 errors end a session.
  const c2 = await smtpSession(srv.ports.smtp);
  assert.equal((await c2.cmd('MAIL FROM:<dsn@sender.example>')).code, 250);
  const badRcpt = [
    'NOTIFY=NEVER,SUCCESS',
    'NOTIFY=SUCCESS,SUCCESS',
    'NOTIFY=SOMETIMES',
    'NOTIFY=',
    'ORCPT=jane@example.test',
    'ORCPT=rfc822;bad+zzhex',
    'ORCPT=rfc822;' + 'o'.repeat(500),
  ];
  for (const p of badRcpt) assert.equal((await c2.cmd(`RCPT TO:<jane@example.test> ${p}`)).code, 501, p);
  c2.close();
  assert.equal((await findBySubject(srv, 'dsn local')).length, 1);

  // Submission to a remote address: the parameters end up in the queue.
  const s = await submissionSession(srv);
  // Held, so the row stays in the queue whatever the queue does with due messages.
  assert.equal((await s.cmd('MAIL FROM:<jane@example.test> RET=FULL ENVID=env+2Bid HOLDFOR=86400')).code, 250);
  assert.equal((await s.cmd('RCPT TO:<bob@remote.example> NOTIFY=DELAY,FAILURE ORCPT=rfc822;Bob+40Remote@remote.example')).code, 250);
  assert.equal((await s.cmd('DATA')).code, 354);
  assert.equal((await s.cmd('From: jane@example.test\r\nSubject: dsn queued\r\n\r\nx\r\n.')).code, 250);
  s.close();
  const row = queueRows().find((r) => r.subject === 'dsn queued');
  assert.ok(row, 'queued');
  assert.equal(row.recipient, 'bob@remote.example');
  assert.equal(row.dsnret, 'FULL');
  assert.equal(row.dsnenvid, 'env+id');
  assert.equal(row.dsnnotify, 'DELAY,FAILURE');
  assert.equal(row.dsnorcpt, 'rfc822;Bob@Remote@remote.example');
});

test('REQUIRETLS: refused without TLS, accepted after STARTTLS', async () => {
  const c = await smtpSession(srv.ports.smtp);
  const r = await c.cmd('MAIL FROM:<tls@sender.example> REQUIRETLS');
  assert.equal(r.code, 530);
  assert.match(r.text, /^5\.7\.10 /);
  assert.equal((await c.cmd('STARTTLS')).code, 220);
  await c.startTLS(srv.certPEM);
  const ehlo = await c.cmd('EHLO client.example');
  assert.ok(ehlo.lines.includes('REQUIRETLS'));
  assert.ok(!ehlo.lines.includes('STARTTLS'));
  assert.equal((await c.cmd('MAIL FROM:<tls@sender.example> REQUIRETLS=yes')).code, 501);
  assert.equal((await sendData(c, 'tls@sender.example', ['jane@example.test'], 'Subject: requiretls\r\n\r\nx\r\n', 'REQUIRETLS')).code, 250);
  c.close();
  const [msg] = await findBySubject(srv, 'requiretls');
  assert.ok(msg);
  assert.match(msg.toString(), /^Return-Path: <tls@sender\.example>\r\nReceived: [^]*with ESMTPS/);

  // Submission: kept with the queued message for the outgoing delivery.
  const s = await submissionSession(srv);
  assert.equal((await sendData(s, 'jane@example.test', ['carol@remote.example'], 'From: jane@example.test\r\nSubject: requiretls queued\r\n\r\nx\r\n', 'REQUIRETLS HOLDFOR=86400')).code, 250);
  // RFC 8689 5: "TLS-Required: No" asks for delivery even without (verified) TLS; neither gives NULL.
  assert.equal((await sendData(s, 'jane@example.test', ['carol@remote.example'], 'From: jane@example.test\r\nTLS-Required: No\r\nSubject: tls optional\r\n\r\nx\r\n', 'HOLDFOR=86400')).code, 250);
  assert.equal((await sendData(s, 'jane@example.test', ['carol@remote.example'], 'From: jane@example.test\r\nSubject: tls default\r\n\r\nx\r\n', 'HOLDFOR=86400')).code, 250);
  s.close();
  const rows = queueRows();
  assert.equal(rows.find((q) => q.subject === 'requiretls queued')?.requiretls, 1);
  assert.equal(rows.find((q) => q.subject === 'tls optional')?.requiretls, 0);
  const plain = rows.find((q) => q.subject === 'tls default');
  assert.ok(plain);
  assert.equal(plain.requiretls, null);
});

test('STARTTLS: commands pipelined after it in plain text are discarded, not run inside TLS', async () => {
  const c = await smtpSession(srv.ports.smtp);
  // CVE-2011-0411 style injection: the MAIL command must not survive the switch to TLS.
  c.write('STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n');
  assert.equal((await c.reply()).code, 220);
  await c.startTLS(srv.certPEM);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  const r = await c.cmd('RCPT TO:<jane@example.test>');
  assert.equal(r.code, 503, `RCPT after TLS: ${r.text}`);
  assert.equal((await c.cmd('STARTTLS')).code, 503);
  c.close();
});

test('FUTURERELEASE: HOLDFOR and HOLDUNTIL on submission set the first attempt; refused on port 25', async () => {
  const s = await submissionSession(srv);
  const ehlo = await s.cmd('EHLO client.example');
  const fr = ehlo.lines.find((l) => l.startsWith('FUTURERELEASE '));
  assert.match(fr ?? '', /^FUTURERELEASE 5184000 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const t0 = Date.now();
  assert.equal((await sendData(s, 'jane@example.test', ['dave@remote.example'], 'From: jane@example.test\r\nSubject: held for\r\n\r\nlater\r\n', 'HOLDFOR=3600')).code, 250);
  const t1 = Date.now();
  const until = new Date(Date.now() + 2 * 86400_000);
  until.setUTCMilliseconds(0);
  const untilText = until.toISOString().replace('.000Z', 'Z');
  assert.equal((await sendData(s, 'jane@example.test', ['erin@remote.example'], 'From: jane@example.test\r\nSubject: held until\r\n\r\nlater\r\n', `HOLDUNTIL=${untilText}`)).code, 250);
  const tooFar = await s.cmd('MAIL FROM:<jane@example.test> HOLDFOR=5184001');
  assert.equal(tooFar.code, 554);
  assert.equal((await s.cmd('MAIL FROM:<jane@example.test> HOLDFOR=10 HOLDUNTIL=' + untilText)).code, 501);
  assert.equal((await s.cmd('MAIL FROM:<jane@example.test> HOLDFOR=-5')).code, 501);
  assert.equal((await s.cmd('MAIL FROM:<jane@example.test> HOLDUNTIL=tomorrow')).code, 501);
  s.close();

  const rows = queueRows();
  const held = rows.find((r) => r.subject === 'held for');
  assert.ok(held);
  assert.equal(held.recipient, 'dave@remote.example');
  assert.equal(held.futurerelease, 'HOLDFOR=3600');
  assert.ok(held.nextattempt >= t0 + 3600_000 - 1000 && held.nextattempt <= t1 + 3600_000 + 1000, `nextattempt ${held.nextattempt - t0}ms after start`);
  assert.equal(held.attempts, 0);
  const heldUntil = rows.find((r) => r.subject === 'held until');
  assert.equal(heldUntil?.futurerelease, `HOLDUNTIL=${untilText}`);
  assert.equal(heldUntil?.nextattempt, until.getTime());

  const c = await smtpSession(srv.ports.smtp);
  const r = await c.cmd('MAIL FROM:<x@sender.example> HOLDFOR=60');
  assert.equal(r.code, 555);
  c.close();
});
