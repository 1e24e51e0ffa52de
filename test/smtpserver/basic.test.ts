// SMTP server behaviour with a regular configuration: recipients, relaying, authentication
// and malformed input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';
import { editDomains } from './helpers.js';

let srv: TestServer;
before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.close();
});

async function session(port = srv.ports.smtp): Promise<Raw> {
  const c = await Raw.connect(port);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

async function submission(): Promise<Raw> {
  const c = await session(srv.ports.submission);
  assert.equal((await c.cmd('STARTTLS')).code, 220);
  await c.startTLS(srv.certPEM);
  const ehlo = await c.cmd('EHLO client.example');
  assert.match(ehlo.text, /AUTH .*PLAIN/);
  return c;
}

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

async function deliver(c: Raw, from: string, rcpts: string[], body: string): Promise<number> {
  await c.cmd(`MAIL FROM:<${from}>`);
  for (const r of rcpts) assert.equal((await c.cmd(`RCPT TO:<${r}>`)).code, 250, r);
  await c.cmd('DATA');
  return (await c.cmd(body + '\r\n.')).code;
}

async function mailboxSubjects(mailbox: string): Promise<string[]> {
  const c = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user: 'jane@example.test', pass: 'secret-pass' }, logger: false });
  await c.connect();
  try {
    await c.mailboxOpen(mailbox);
    const out: string[] = [];
    for await (const m of c.fetch('1:*', { envelope: false, headers: ['subject'] })) out.push(m.headers!.toString().trim());
    return out;
  } catch (e) {
    if (/Invalid messageset|No messages/i.test(String(e))) return [];
    throw e;
  } finally {
    await c.logout();
  }
}

test('EHLO advertises extensions; STARTTLS offered; AUTH only on submission after TLS', async () => {
  const c = await session();
  const ehlo = await c.cmd('EHLO client.example');
  assert.match(ehlo.text, /^PIPELINING$/m);
  assert.match(ehlo.text, /^SIZE \d+$/m);
  assert.match(ehlo.text, /^STARTTLS$/m);
  assert.match(ehlo.text, /^ENHANCEDSTATUSCODES$/m);
  assert.doesNotMatch(ehlo.text, /AUTH/);
  assert.equal((await c.cmd('AUTH PLAIN ' + plain('jane@example.test', 'secret-pass'))).code, 503);
  c.close();
  const s = await session(srv.ports.submission);
  assert.doesNotMatch((await s.cmd('EHLO x.example')).text, /AUTH/);
  assert.deepEqual([(await s.cmd('AUTH PLAIN ' + plain('jane@example.test', 'secret-pass'))).code], [538]);
  assert.equal((await s.cmd('MAIL FROM:<jane@example.test>')).code, 530);
  s.close();
});

test('recipients: exact, subaddress, destination mailbox, postmaster, unknown, relay', async () => {
  const c = await session();
  assert.equal(await deliver(c, 'x@example.org', ['jane@example.test'], 'Subject: exact'), 250);
  assert.equal(await deliver(c, 'x@example.org', ['Jane+news@Example.TEST'], 'Subject: tagged'), 250);
  assert.equal(await deliver(c, 'x@example.org', ['jane.archive@example.test'], 'Subject: archived'), 250);
  assert.equal(await deliver(c, 'x@example.org', ['postmaster@example.test'], 'Subject: postmaster'), 250);
  await c.cmd('MAIL FROM:<x@example.org>');
  const unknown = await c.cmd('RCPT TO:<nobody@example.test>');
  assert.equal(unknown.code, 550);
  assert.match(unknown.text, /^5\.1\.1 /);
  const relay = await c.cmd('RCPT TO:<someone@elsewhere.example>');
  assert.equal(relay.code, 550);
  assert.match(relay.text, /^5\.7\.1 /);
  assert.equal((await c.cmd('DATA')).code, 503);
  c.close();
  assert.equal(await srv.metric('postern_smtpserver_rejects_total', { kind: 'smtp', reason: 'unknown-user' }), 1);
  assert.equal(await srv.metric('postern_smtpserver_rejects_total', { kind: 'smtp', reason: 'relay' }), 1);
  assert.equal(await srv.metric('postern_smtpserver_messages_total', { kind: 'smtp', result: 'delivered' }), 4);
  assert.deepEqual(await mailboxSubjects('INBOX'), ['Subject: exact', 'Subject: tagged', 'Subject: postmaster']);
  assert.deepEqual(await mailboxSubjects('Archive'), ['Subject: archived']);
});

test('submission: wrong password refused, foreign sender refused, own address accepted', async () => {
  const c = await submission();
  const bad = await c.cmd('AUTH PLAIN ' + plain('jane@example.test', 'wrong'));
  assert.equal(bad.code, 535);
  assert.match(bad.text, /^5\.7\.8 /);
  assert.equal((await c.cmd('AUTH PLAIN ' + plain('jane@example.test', 'secret-pass'))).code, 235);
  const foreign = await c.cmd('MAIL FROM:<ceo@bank.example>');
  assert.equal(foreign.code, 550);
  // The From header must hold the account's addresses too.
  assert.equal(await deliver(c, 'jane@example.test', ['jane.archive@example.test'], 'From: ceo@bank.example\r\nSubject: forged'), 550);
  assert.equal(await deliver(c, 'jane@example.test', ['jane.archive@example.test'], 'Subject: no from'), 550);
  assert.equal(await deliver(c, 'jane@example.test', ['jane.archive@example.test'], 'From: Jane <jane@example.test>\r\nSubject: to myself'), 250);
  c.close();
  assert.ok(srv.output.includes('"authentication failed"'));
  assert.match(srv.output, /"authentication failed".*"remote":"127\.0\.0\.1"|"remote":"127\.0\.0\.1".*"authentication failed"/);
});

test('malformed input: unknown command, over-long line, bad order, bad syntax', async () => {
  const c = await session();
  const unknown = await c.cmd('FROB');
  assert.equal(unknown.code, 500);
  assert.match(unknown.text, /^5\.5\.2 /);
  const long = await c.cmd('NOOP ' + 'x'.repeat(2000));
  assert.equal(long.code, 500);
  assert.match(long.text, /too long/);
  assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 503);
  assert.equal((await c.cmd('MAIL FROM:jane')).code, 501);
  assert.equal((await c.cmd('MAIL FROM:<a@example.org> FOO=BAR')).code, 555);
  assert.equal((await c.cmd('MAIL FROM:<a@example.org> SIZE=999999999999')).code, 552);
  // Still serving.
  assert.equal((await c.cmd('NOOP')).code, 250);
  assert.equal((await c.cmd('QUIT')).code, 221);
  c.close();
});

test('too many errors end the session', async () => {
  const c = await session();
  let last = 0;
  for (let i = 0; i < 12 && !c.closed; i++) {
    try {
      last = (await c.cmd('BOGUS')).code;
    } catch {
      break;
    }
  }
  assert.equal(last, 421);
});

test('pipelined commands get replies in order', async () => {
  const c = await session();
  c.write('MAIL FROM:<p@example.org>\r\nRCPT TO:<jane@example.test>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\n');
  assert.equal((await c.reply()).code, 250);
  assert.equal((await c.reply()).code, 250);
  assert.equal((await c.reply()).code, 550);
  assert.equal((await c.reply()).code, 354);
  assert.equal((await c.cmd('Subject: pipelined\r\n\r\nx\r\n.')).code, 250);
  c.close();
});

test('submission to a remote address is queued; "postern queue list" shows it', async () => {
  const empty = await srv.cli(['queue', 'list']);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stdout, /queue empty/);
  const c = await submission();
  assert.equal((await c.cmd('AUTH PLAIN ' + plain('jane@example.test', 'secret-pass'))).code, 235);
  await c.cmd('MAIL FROM:<jane@example.test>');
  assert.equal((await c.cmd('RCPT TO:<friend@remote.example> NOTIFY=SUCCESS,FAILURE')).code, 250);
  await c.cmd('DATA');
  assert.equal((await c.cmd('From: jane@example.test\r\nTo: friend@remote.example\r\nSubject: out\r\n\r\nhello\r\n.')).code, 250);
  c.close();
  const r = await srv.cli(['queue', 'list']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\d+ jane <jane@example\.test> -> <friend@remote\.example> \d+ bytes, 0 attempts, next \S+Z\n$/);
});

test('an account over its quota gets 452 4.2.2 for new mail', async () => {
  await editDomains(srv, '    Domain: example.test', '    QuotaMessageSize: 5000\n');
  const c = await session();
  const big = 'Subject: big\r\n\r\n' + 'x'.repeat(6000);
  await c.cmd('MAIL FROM:<x@example.org>');
  await c.cmd('RCPT TO:<jane@example.test>');
  await c.cmd('DATA');
  const r = await c.cmd(big + '\r\n.');
  assert.equal(r.code, 452);
  assert.match(r.text, /^4\.2\.2 /);
  c.close();
});
