// SMTP smuggling and the DATA stream: end-of-data look-alikes with bare CR or LF that hide a second
// transaction inside the first are refused as a whole; dot-unstuffing and bare-LF line endings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServe, type TestServer } from '../helpers/server.js';
import { fetchMailbox, findBySubject, headerSection, sendData, smtpSession } from './helpers.js';

let srv: TestServer;
before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.close();
});

const sequences: [string, string][] = [
  ['LF . LF', '\n.\n'],
  ['CRLF . LF', '\r\n.\n'],
  ['LF . CRLF', '\n.\r\n'],
  ['CR . CR', '\r.\r'],
  ['bare CR', '\r'],
];

/** All subjects in jane's mailboxes that contain the marker. */
async function subjectsWith(marker: string): Promise<string[]> {
  const out: string[] = [];
  for (const box of ['INBOX', 'Archive', 'Junk']) {
    for (const m of await fetchMailbox(srv, box)) {
      const s = /^Subject: (.*)$/im.exec(headerSection(m.source));
      if (s && s[1]!.includes(marker)) out.push(s[1]!);
    }
  }
  return out;
}

for (const [i, [name, seq]] of sequences.entries()) {
  test(`smuggling with ${name} is refused, and no smuggled message appears`, async () => {
    const marker = `smug${i}`;
    const c = await smtpSession(srv.ports.smtp);
    assert.equal((await c.cmd('MAIL FROM:<alice@sender.example>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const smuggled =
      'MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<jane.archive@example.test>\r\nDATA\r\n' +
      `From: ceo@bank.example\r\nSubject: ${marker} smuggled\r\n\r\nPlease wire the money.\r\n`;
    c.write(`From: alice@sender.example\r\nSubject: ${marker} carrier\r\n\r\nHello${seq}${smuggled}\r\n.\r\n`);
    const r = await c.reply();
    assert.equal(r.code, 500, r.text);
    assert.match(r.text, /^5\.5\.2 .*smuggling/);
    // The smuggled commands were read as data: the next reply is the one to NOOP.
    const noop = await c.cmd('NOOP');
    assert.equal(noop.code, 250);
    assert.match(noop.text, /^2\.0\.0 ok$/);
    // A transaction after the refused one works on the same connection.
    assert.equal((await sendData(c, 'alice@sender.example', ['jane@example.test'], `Subject: ${marker} after\r\n\r\nok\r\n`)).code, 250);
    assert.equal((await c.cmd('QUIT')).code, 221);
    c.close();
    assert.deepEqual(await subjectsWith(marker), [`${marker} after`]);
  });
}

test('smuggling sequence split over TCP segments is still found', async () => {
  const c = await smtpSession(srv.ports.smtp);
  assert.equal((await c.cmd('MAIL FROM:<alice@sender.example>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write('Subject: split smuggle\r\n\r\nHello\r\n');
  await sleep(30);
  c.write('.');
  await sleep(30);
  c.write('\nMAIL FROM:<x@bank.example>\r\nRCPT TO:<jane@example.test>\r\nDATA\r\nSubject: split smuggled\r\n\r\nx\r\n');
  await sleep(30);
  c.write('\r\n.');
  await sleep(30);
  c.write('\r\n');
  const r = await c.reply();
  assert.equal(r.code, 500);
  assert.match(r.text, /smuggling/);
  c.close();
  assert.deepEqual(await subjectsWith('split smuggle'), []);
});

test('end of data split over TCP segments ends the message', async () => {
  const c = await smtpSession(srv.ports.smtp);
  assert.equal((await c.cmd('MAIL FROM:<alice@sender.example>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write('Subject: split end\r\n\r\nbody\r');
  await sleep(30);
  c.write('\n.\r');
  await sleep(30);
  c.write('\n');
  assert.equal((await c.reply()).code, 250);
  c.close();
  const [msg] = await findBySubject(srv, 'split end');
  assert.ok(msg);
  assert.ok(msg.toString().endsWith('\r\nSubject: split end\r\n\r\nbody\r\n'));
});

test('dot-unstuffing is exact', async () => {
  const c = await smtpSession(srv.ports.smtp);
  assert.equal((await c.cmd('MAIL FROM:<alice@sender.example>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  // As sent on the wire (RFC 5321 4.5.2 transparency), and as it must be stored.
  const wire = ['Subject: dots', '', '..', '...', '..leading', 'a.b', ' .space', '....four', '..', '.', ''].join('\r\n');
  const stored = ['Subject: dots', '', '.', '..', '.leading', 'a.b', ' .space', '...four', '.'].join('\r\n') + '\r\n';
  c.write(wire);
  assert.equal((await c.reply()).code, 250);
  c.close();
  const [msg] = await findBySubject(srv, 'dots');
  assert.ok(msg);
  const tail = msg.subarray(msg.length - stored.length);
  assert.equal(tail.toString('latin1'), stored);
  // Only header fields were added before it.
  assert.match(msg.subarray(0, msg.length - stored.length).toString(), /^(?:[A-Za-z-]+:.*\r\n(?:[ \t].*\r\n)*)+$/);
});

test('a message with bare LF line endings is stored with CRLF', async () => {
  const c = await smtpSession(srv.ports.smtp);
  assert.equal((await c.cmd('MAIL FROM:<alice@sender.example>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write('From: alice@sender.example\nSubject: bare lf\n\nline one\n..stuffed\nline three\r\n.\r\n');
  const r = await c.reply();
  assert.equal(r.code, 250, r.text);
  c.close();
  const [msg] = await findBySubject(srv, 'bare lf');
  assert.ok(msg);
  const expect = 'From: alice@sender.example\r\nSubject: bare lf\r\n\r\nline one\r\n.stuffed\r\nline three\r\n';
  assert.ok(msg.toString('latin1').endsWith(expect), JSON.stringify(msg.toString('latin1')));
  assert.equal(msg.toString('latin1').replace(/\r\n/g, '').includes('\n'), false, 'no bare LF stored');
});

test('BDAT is not dot-unstuffed and keeps lines as sent', async () => {
  const c = await smtpSession(srv.ports.smtp);
  const msg = 'Subject: bdat dots\r\n\r\n..two dots\r\n.\r\n.one\r\n';
  assert.equal((await c.cmd('MAIL FROM:<alice@sender.example>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 250);
  c.write(`BDAT ${Buffer.byteLength(msg)} LAST\r\n${msg}`);
  assert.equal((await c.reply()).code, 250);
  c.close();
  const [stored] = await findBySubject(srv, 'bdat dots');
  assert.ok(stored?.toString().endsWith(msg));
});

test('BDAT with a bare CR is refused as smuggling', async () => {
  const c = await smtpSession(srv.ports.smtp);
  const msg = 'Subject: bdat cr\r\n\r\nhello\rMAIL FROM:<x@bank.example>\r\n';
  assert.equal((await c.cmd('MAIL FROM:<alice@sender.example>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 250);
  c.write(`BDAT ${Buffer.byteLength(msg)} LAST\r\n${msg}`);
  const r = await c.reply();
  assert.equal(r.code, 500);
  assert.match(r.text, /smuggling/);
  assert.equal((await c.cmd('NOOP')).code, 250);
  c.close();
  assert.deepEqual(await findBySubject(srv, 'bdat cr'), []);
});
