// A full client session with imapflow: special-use LIST, QRESYNC, FETCH, IDLE with a
// message delivered over SMTP, MOVE, flags, APPEND, all over a compressed connection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

let srv: TestServer;
before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.close();
});

async function smtpDeliver(subject: string): Promise<void> {
  const c = await Raw.connect(srv.ports.smtp);
  await c.reply();
  await c.cmd('EHLO sender.example');
  await c.cmd('MAIL FROM:<news@example.org>');
  await c.cmd('RCPT TO:<jane@example.test>');
  await c.cmd('DATA');
  assert.equal((await c.cmd(`From: News <news@example.org>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n\r\nText of ${subject}.\r\n.`)).code, 250);
  c.close();
}

test('imapflow client flow', async () => {
  await smtpDeliver('first');
  const sent: string[] = [];
  const logger = {
    debug: (o: { msg?: string; src?: string }) => {
      if (o.src === 'c' && o.msg) sent.push(o.msg);
    },
    trace: () => {},
    info: () => {},
    warn: () => {},
    error: () => {},
  };
  const c = new ImapFlow({
    host: '127.0.0.1',
    port: srv.ports.imaps,
    secure: true,
    tls: { ca: srv.certPEM, servername: 'localhost' },
    auth: { user: 'jane@example.test', pass: 'secret-pass' },
    logger,
    qresync: true,
  } as ConstructorParameters<typeof ImapFlow>[0]);
  await c.connect();
  try {
    assert.ok(c.capabilities.has('COMPRESS=DEFLATE'));
    assert.ok(sent.some((l) => /COMPRESS DEFLATE/.test(l)), 'imapflow did not turn on compression');
    assert.ok(c.enabled.has('QRESYNC') || c.enabled.has('CONDSTORE'));

    const list = await c.list();
    const byUse = Object.fromEntries(list.filter((b) => b.specialUse).map((b) => [b.specialUse, b.path]));
    assert.equal(byUse['\\Sent'], 'Sent');
    assert.equal(byUse['\\Junk'], 'Junk');

    const mb = await c.mailboxOpen('INBOX');
    assert.equal(mb.exists, 1);
    assert.ok(mb.highestModseq && mb.highestModseq > 0n);

    const m = await c.fetchOne('1', { envelope: true, bodyStructure: true, flags: true, size: true, source: true });
    assert.ok(m);
    assert.equal(m.envelope?.subject, 'first');
    assert.equal(m.envelope?.from?.[0]?.address, 'news@example.org');
    assert.equal(m.bodyStructure?.type, 'text/plain');
    assert.ok(m.source?.toString().includes('Text of first.'));

    // IDLE sees a message delivered over SMTP.
    const exists = new Promise<number>((resolve) => c.on('exists', (d: { count: number }) => resolve(d.count)));
    const idle = c.idle();
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await smtpDeliver('second');
    assert.equal(await exists, 2);
    const latency = Date.now() - t0;
    assert.ok(latency < 2000, `idle notification took ${latency} ms`);
    await c.noop();
    void idle;

    // Flags.
    await c.messageFlagsAdd('2', ['\\Flagged', '$Important']);
    const f = await c.fetchOne('2', { flags: true });
    assert.ok(f && f.flags?.has('\\Flagged') && f.flags.has('$Important'));

    // MOVE.
    const moved = await c.messageMove('1', 'Archive');
    assert.ok(moved && moved.uidMap && moved.uidMap.size === 1);
    const st = await c.status('Archive', { messages: true });
    assert.equal(st && st.messages, 1);

    // APPEND.
    const appended = await c.append('Drafts', 'From: jane@example.test\r\nSubject: draft\r\n\r\nunfinished\r\n', ['\\Draft']);
    assert.ok(appended && appended.uid && appended.uidValidity);
    const d = await c.mailboxOpen('Drafts');
    assert.equal(d.exists, 1);
    const dm = await c.fetchOne('*', { flags: true, source: true });
    assert.ok(dm && dm.flags?.has('\\Draft'));
    assert.equal(dm.source?.toString(), 'From: jane@example.test\r\nSubject: draft\r\n\r\nunfinished\r\n');
  } finally {
    await c.logout();
  }
});

test('a submitted message without Message-ID and Date has both in its ENVELOPE, and body sections are exact', async () => {
  const sub = await Raw.connect(srv.ports.submission);
  await sub.reply();
  await sub.cmd('EHLO client.example');
  await sub.cmd('STARTTLS');
  await sub.startTLS(srv.certPEM);
  await sub.cmd('EHLO client.example');
  assert.equal((await sub.cmd('AUTH PLAIN ' + Buffer.from('\0jane@example.test\0secret-pass').toString('base64'))).code, 235);
  await sub.cmd('MAIL FROM:<jane@example.test>');
  await sub.cmd('RCPT TO:<jane@example.test>');
  await sub.cmd('DATA');
  assert.equal((await sub.cmd('From: jane@example.test\r\nSubject: to self\r\n\r\nexact body\r\n.')).code, 250);
  sub.close();
  const c = await Raw.connectTLS(srv.ports.imaps, srv.certPEM);
  await c.line();
  await c.imap('l', 'LOGIN jane@example.test secret-pass');
  await c.imap('s', 'EXAMINE INBOX');
  const r = await c.imap('f', 'FETCH * (ENVELOPE BODY[TEXT])');
  const all = r.untagged.join('\n');
  assert.match(all, /ENVELOPE \("[A-Z][a-z]{2}, \d+ [A-Z][a-z]{2} \d{4} [^"]+" "to self" .* "<[^"]+@mail\.example\.test>"\)/);
  assert.match(all, /BODY\[TEXT\] \{12\}\nexact body\n/);
  c.close();
});
