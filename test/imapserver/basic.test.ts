// IMAP server basics over raw sockets: states, TLS requirements, authentication, limits and
// malformed commands.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

let srv: TestServer;
before(async () => {
  srv = await startServe();
  // One message to fetch.
  const c = await Raw.connect(srv.ports.smtp);
  await c.reply();
  await c.cmd('EHLO x.example');
  await c.cmd('MAIL FROM:<a@example.org>');
  await c.cmd('RCPT TO:<jane@example.test>');
  await c.cmd('DATA');
  assert.equal((await c.cmd('From: A <a@example.org>\r\nSubject: first\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n.')).code, 250);
  c.close();
});
after(async () => {
  await srv?.close();
});

async function greeted(tls = true): Promise<Raw> {
  const c = tls ? await Raw.connectTLS(srv.ports.imaps, srv.certPEM) : await Raw.connect(srv.ports.imap);
  assert.match(await c.line(), /^\* OK \[CAPABILITY .*IMAP4rev2.*\]/);
  return c;
}

async function loggedIn(): Promise<Raw> {
  const c = await greeted();
  assert.match((await c.imap('a', 'LOGIN jane@example.test secret-pass')).status, /^OK/);
  return c;
}

test('without TLS: LOGINDISABLED, LOGIN refused, STARTTLS then login works', async () => {
  const c = await greeted(false);
  const cap = await c.imap('1', 'CAPABILITY');
  assert.match(cap.untagged[0]!, /LOGINDISABLED/);
  assert.match(cap.untagged[0]!, /STARTTLS/);
  assert.match((await c.imap('2', 'LOGIN jane@example.test secret-pass')).status, /^NO \[PRIVACYREQUIRED\]/);
  assert.match((await c.imap('3', 'STARTTLS')).status, /^OK/);
  await c.startTLS(srv.certPEM);
  const cap2 = await c.imap('4', 'CAPABILITY');
  assert.doesNotMatch(cap2.untagged[0]!, /STARTTLS|LOGINDISABLED/);
  assert.match(cap2.untagged[0]!, /AUTH=PLAIN/);
  assert.match((await c.imap('5', 'LOGIN jane@example.test secret-pass')).status, /^OK \[CAPABILITY/);
  c.close();
});

test('commands need the right state', async () => {
  const c = await greeted();
  assert.match((await c.imap('1', 'SELECT INBOX')).status, /^BAD/);
  assert.match((await c.imap('2', 'FETCH 1 FLAGS')).status, /^BAD/);
  assert.match((await c.imap('3', 'LOGIN jane@example.test secret-pass')).status, /^OK/);
  assert.match((await c.imap('4', 'FETCH 1 FLAGS')).status, /^BAD/);
  assert.match((await c.imap('5', 'LOGIN jane@example.test secret-pass')).status, /^BAD/);
  c.close();
});

test('wrong password gets AUTHENTICATIONFAILED, for LOGIN and AUTHENTICATE', async () => {
  const c = await greeted();
  assert.match((await c.imap('1', 'LOGIN jane@example.test wrong')).status, /^NO \[AUTHENTICATIONFAILED\]/);
  assert.match((await c.imap('2', 'LOGIN nobody@example.test secret-pass')).status, /^NO \[AUTHENTICATIONFAILED\]/);
  const bad = Buffer.from('\0jane@example.test\0nope').toString('base64');
  assert.match((await c.imap('3', `AUTHENTICATE PLAIN ${bad}`)).status, /^NO \[AUTHENTICATIONFAILED\]/);
  const good = Buffer.from('\0jane@example.test\0secret-pass').toString('base64');
  c.write('4 AUTHENTICATE PLAIN\r\n');
  assert.equal(await c.line(), '+ ');
  c.write(good + '\r\n');
  assert.match((await c.imapUntil('4')).status, /^OK/);
  c.close();
});

test('malformed commands get BAD and the session continues', async () => {
  const c = await loggedIn();
  assert.match((await c.imap('1', 'FROBNICATE')).status, /^BAD/);
  assert.match((await c.imap('2', 'SELECT')).status, /^BAD/);
  assert.match((await c.imap('3', 'SELECT "unterminated')).status, /^BAD/);
  assert.match((await c.imap('4', 'SELECT INBOX')).status, /^OK \[READ-WRITE\]/);
  assert.match((await c.imap('5', 'FETCH 1 (FLAGS')).status, /^BAD/);
  assert.match((await c.imap('6', 'FETCH 0 FLAGS')).status, /^BAD/);
  assert.match((await c.imap('7', 'FETCH 99 FLAGS')).status, /^BAD/);
  assert.match((await c.imap('8', 'FETCH 1 (BOGUS)')).status, /^BAD/);
  assert.match((await c.imap('9', 'STORE 1 FLAGS (\\Bogus)')).status, /^BAD/);
  const ok = await c.imap('10', 'FETCH 1 (FLAGS UID)');
  assert.match(ok.status, /^OK/);
  assert.deepEqual(ok.untagged, ['* 1 FETCH (FLAGS () UID 1)']);
  c.close();
});

test('over-long command lines and literals are refused with TOOBIG', async () => {
  const c = await loggedIn();
  c.write(`1 NOOP ${'x'.repeat(70 * 1024)}\r\n`);
  assert.match((await c.imapUntil('1')).status, /^BAD \[TOOBIG\]/);
  c.write('2 LOGIN {999999999}\r\n');
  assert.match((await c.imapUntil('2')).status, /^BAD \[TOOBIG\]/);
  assert.match((await c.imap('3', 'NOOP')).status, /^OK/);
  c.close();
});

test('fetch of structure and sections; EXAMINE is read-only', async () => {
  const c = await loggedIn();
  await c.imap('1', 'EXAMINE INBOX');
  const r = await c.imap('2', 'FETCH 1 (ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY[TEXT])');
  assert.match(r.status, /^OK/);
  const all = r.untagged.join('\n');
  assert.match(all, /ENVELOPE \(NIL "first" \(\("A" NIL "a" "example.org"\)\)/);
  assert.match(all, /BODYSTRUCTURE \("text" "plain" \("charset" "utf-8"\) NIL NIL "7bit" 7 1 NIL NIL NIL NIL\)/);
  assert.match(all, /BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{\d+\}/);
  assert.ok(r.untagged.includes('Subject: first'));
  // Read-only: no \Seen set by BODY[TEXT], and STORE refused.
  assert.doesNotMatch(all, /\\Seen/);
  assert.match((await c.imap('3', 'STORE 1 +FLAGS (\\Seen)')).status, /^NO \[READ-ONLY\]/);
  c.close();
});

test('two sessions: flags and expunge of one show up in the other', async () => {
  const a = await loggedIn();
  const b = await loggedIn();
  await a.imap('1', 'SELECT INBOX');
  await b.imap('1', 'SELECT INBOX');
  await a.imap('2', 'STORE 1 +FLAGS.SILENT (\\Deleted)');
  const noop = await b.imap('2', 'NOOP');
  assert.ok(noop.untagged.some((l) => /^\* 1 FETCH \(UID 1 FLAGS \(.*\\Deleted.*\)\)$/.test(l)), noop.untagged.join('\n'));
  // During FETCH, the expunge by the other session is held back (RFC 9051 7.5.1).
  const ex = await a.imap('3', 'EXPUNGE');
  assert.deepEqual(ex.untagged, ['* 1 EXPUNGE']);
  const f = await b.imap('3', 'FETCH 1 FLAGS');
  assert.ok(!f.untagged.some((l) => /EXPUNGE/.test(l)));
  const n = await b.imap('4', 'NOOP');
  assert.ok(n.untagged.includes('* 1 EXPUNGE'), n.untagged.join('\n'));
  a.close();
  b.close();
});
