// Delivery rulesets: envelope and header conditions choose the mailbox.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

let srv: TestServer;
before(async () => {
  srv = await startServe({
    accounts: `  bob:
    Domain: example.test
    Destinations:
      bob@example.test:
        Rulesets:
          - HeadersRegexp:
              list-id: dev\\.lists\\.example\\.org
            Mailbox: Lists/dev
          - SMTPMailFromRegexp: "^billing@"
            MsgFromRegexp: "@bank\\\\.example$"
            Mailbox: Bank
          - VerifiedDomain: trusted.example
            Mailbox: Trusted
`,
    passwords: { bob: 'bob-password' },
  });
  srv.dns.set('trusted.example', 'TXT', ['v=spf1 ip4:127.0.0.1 -all']);
});
after(async () => {
  await srv?.close();
});

async function send(from: string, header: string): Promise<void> {
  const c = await Raw.connect(srv.ports.smtp);
  await c.reply();
  await c.cmd('EHLO sender.example');
  await c.cmd(`MAIL FROM:<${from}>`);
  await c.cmd('RCPT TO:<bob@example.test>');
  await c.cmd('DATA');
  assert.equal((await c.cmd(`${header}\r\n\r\nbody\r\n.`)).code, 250);
  c.close();
}

test('rules choose the mailbox, the first match wins, and others go to the default', async () => {
  await send('someone@lists.example.org', 'From: a@lists.example.org\r\nList-Id: Dev <dev.lists.example.org>\r\nSubject: list');
  await send('billing@bank.example', 'From: Bank <alerts@bank.example>\r\nSubject: statement');
  await send('info@bank.example', 'From: alerts@bank.example\r\nSubject: mail-from-mismatch');
  await send('news@trusted.example', 'From: news@trusted.example\r\nSubject: verified');
  const c = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user: 'bob@example.test', pass: 'bob-password' }, logger: false });
  await c.connect();
  try {
    const subjects = async (mb: string) => {
      const st = await c.status(mb, { messages: true });
      if (!st || !st.messages) return [];
      await c.mailboxOpen(mb);
      const out: string[] = [];
      for await (const m of c.fetch('1:*', { envelope: true })) out.push(m.envelope!.subject!);
      return out;
    };
    assert.deepEqual(await subjects('Lists/dev'), ['list']);
    assert.deepEqual(await subjects('Bank'), ['statement']);
    assert.deepEqual(await subjects('Trusted'), ['verified']);
    assert.deepEqual(await subjects('INBOX'), ['mail-from-mismatch']);
  } finally {
    await c.logout();
  }
});
