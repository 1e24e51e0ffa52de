// localserve classifies and logs like a real server, but every message lands in the Inbox at
// once: software under development must never be throttled or see its mail refused.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startLocalserve, type TestServer } from '../helpers/server.js';
import { smtpSession, sendData } from '../smtpserver/helpers.js';

let srv: TestServer | undefined;
after(async () => {
  await srv?.close();
});

const hamText = (i: number) => `From: <colleague${i}@work.example>\r\nSubject: status ${i}\r\n\r\nquarterly project review meeting agenda budget schedule deadline minutes proposal\r\n`;
const spamText = (i: number) => `From: <promo${i}@spam.example>\r\nSubject: winner ${i}\r\n\r\nviagra casino jackpot lottery winner unclaimed prize bitcoin guaranteed pharmacy discount\r\n`;

test('localserve: a trained filter classifies and logs, but does not refuse, delay or divert', async () => {
  srv = await startLocalserve();
  const c = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user: 'postern@localhost', pass: 'posternpostern' }, logger: false });
  await c.connect();
  try {
    await c.mailboxOpen('INBOX');
    for (let i = 0; i < 50; i++) await c.append('INBOX', hamText(i));
    await c.messageFlagsAdd('1:50', ['$NotJunk']);
    for (let i = 0; i < 5; i++) await c.append('INBOX', spamText(i));
    await c.messageFlagsAdd('51:55', ['$Junk']);
    assert.deepEqual(await srv.ctl('junk stats', { account: 'postern', wait: true }), { nham: 50, nspam: 5, backlog: 0 });

    const s = await smtpSession(srv.ports.smtp);
    const t0 = Date.now();
    const r = await sendData(s, 'promo@spam.example', ['anyone@localhost'], spamText(99).replace('winner 99', 'winner again'));
    const ms = Date.now() - t0;
    s.close();
    assert.equal(r.code, 250, r.text);
    assert.ok(ms < 3000, `not delayed (${ms} ms)`);
    await c.mailboxOpen('INBOX');
    const subjects: string[] = [];
    for await (const m of c.fetch('1:*', { envelope: true })) subjects.push(m.envelope?.subject ?? '');
    assert.ok(subjects.includes('winner again'));
    assert.match(srv.output, /"action":"reject".*"localserve":true.*"prob":(1|0\.9\d*).*"junk verdict"/);
  } finally {
    await c.logout();
  }
});
