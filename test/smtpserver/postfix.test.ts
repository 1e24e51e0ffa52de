// Postfix as the sending MTA: a private Postfix instance relays messages to Postern's SMTP port
// over STARTTLS; they arrive in jane's Inbox with Postern's Received and Authentication-Results
// header fields above Postfix's own Received field.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { genEd25519, txtRecord } from '../../src/dkim/keys.js';
import { sign } from '../../src/dkim/sign.js';
import { startServe, type TestServer } from '../helpers/server.js';
import { postfixUnavailable, startPostfixRelay, type PostfixRelay } from '../helpers/postfix-relay.js';
import { authResults, findBySubject, headerValues, sendData, smtpSession } from './helpers.js';

const skip = postfixUnavailable() ?? false;
let srv: TestServer;
let pf: PostfixRelay;
let key = '';

before(async () => {
  if (skip) return;
  key = await genEd25519();
  srv = await startServe();
  srv.dns.set('relayed.example', 'TXT', ['v=spf1 ip4:127.0.0.1 -all']);
  srv.dns.set('_dmarc.relayed.example', 'TXT', ['v=DMARC1; p=reject']);
  srv.dns.set('pf._domainkey.relayed.example', 'TXT', [txtRecord(key)]);
  srv.dns.set('1.0.0.127.in-addr.arpa', 'PTR', ['mx.relay.test']);
  srv.dns.set('mx.relay.test', 'A', ['127.0.0.1']);
  pf = await startPostfixRelay({ host: '127.0.0.1', port: srv.ports.smtp, hostname: 'mx.relay.test', tls: 'encrypt' });
});
after(async () => {
  await pf?.stop();
  await srv?.close();
});

test('Postfix relays a signed message to Postern over TLS; it arrives authenticated', { skip }, async () => {
  const body = ['From: Sender <sender@relayed.example>', 'To: Jane <jane@example.test>', 'Subject: via postfix', 'Date: Mon, 3 Jun 2024 10:00:00 +0200', 'Message-ID: <pf1@relayed.example>', '', 'Relayed by Postfix.', '.leading dot line', ''].join('\r\n');
  const signature = await sign(Buffer.from(body), { domain: 'relayed.example', selector: 'pf', privateKey: key });
  const msg = signature + body;
  const c = await smtpSession(pf.port);
  const r = await sendData(c, 'sender@relayed.example', ['jane@example.test'], msg);
  assert.equal(r.code, 250, r.text);
  assert.equal((await c.cmd('QUIT')).code, 221);
  c.close();

  const log = await pf.relayed('pf1@relayed.example');
  assert.match(log, new RegExp(`relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${srv.ports.smtp}.*status=sent \\(250 2\\.0\\.0 ok`));
  const tls = await pf.log();
  assert.match(tls, /TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]/);

  const [stored] = await findBySubject(srv, 'via postfix');
  assert.ok(stored, 'in the Inbox');
  const text = stored.toString();
  // Top down: the envelope sender (RFC 5321 4.4), Postern's Received, its authentication results, then Postfix's Received, then the message.
  const names = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n').filter((l) => /^\S/.test(l)).map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
  assert.deepEqual(names.slice(0, 5), ['return-path', 'received', 'authentication-results', 'received-spf', 'received']);
  const [ours, theirs] = headerValues(stored, 'received');
  assert.match(ours!, /^from mx\.relay\.test \(\S*\[127\.0\.0\.1\]\) by mail\.example\.test .*with ESMTPS id \S+ for <jane@example\.test>/);
  assert.match(ours!, /tls|TLS/);
  assert.match(theirs!, /by mx\.relay\.test \(Postfix\) with E?SMTP id /);
  const ar = authResults(stored);
  assert.equal(ar.authserv, 'mail.example.test');
  assert.deepEqual({ spf: ar.spf, dkim: ar.dkim, dmarc: ar.dmarc, iprev: ar.iprev }, { spf: 'pass', dkim: ['pass'], dmarc: 'pass', iprev: 'pass' });
  assert.match(ar.text, /smtp\.mailfrom=relayed\.example/);
  assert.match(ar.text, /header\.d=relayed\.example/);
  // The message as sent to Postfix is intact after the Received field Postfix added.
  assert.ok(text.endsWith(msg), text);
});

test('Postfix relays an SMTPUTF8 message with 8-bit content', { skip }, async () => {
  const body = ['From: Jörg <jörg@relayed.example>', 'To: jane@example.test', 'Subject: über Postfix ✓', 'Date: Mon, 3 Jun 2024 10:00:00 +0200', 'Message-ID: <pf2@relayed.example>', 'Content-Type: text/plain; charset=utf-8', '', 'Grüße — 日本語', ''].join('\r\n');
  const c = await smtpSession(pf.port);
  assert.equal((await c.cmd('MAIL FROM:<jörg@relayed.example> SMTPUTF8 BODY=8BITMIME')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write(Buffer.from(body + '.\r\n'));
  assert.equal((await c.reply()).code, 250);
  c.close();
  await pf.relayed('pf2@relayed.example');
  const [stored] = await findBySubject(srv, 'über Postfix ✓');
  assert.ok(stored);
  assert.ok(stored.toString().endsWith(body));
  const [ours] = headerValues(stored, 'received');
  assert.match(ours!, /with UTF8SMTPS id /);
  assert.equal(authResults(stored).spf, 'pass');
});
