// The SMTP client delivering to a private Postfix instance on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { type ClientOptions, SMTPClient } from '../../src/smtpclient/client.js';
import { issueCert } from '../../src/tls/selfsigned.js';
import { type Postfix, postfixUnavailable, startPostfix } from '../helpers/postfix.js';

const skip = postfixUnavailable();
const ca = issueCert({ names: ['Postern Test CA'], isCA: true });
const leaf = issueCert({ names: ['mx.postern.test'], issuer: { certDER: ca.certDER, key: ca.key, name: ca.name } });
let pf: Postfix;

before(async () => {
  if (!skip) pf = await startPostfix({ domain: 'postern.test', users: ['plain', 'other', 'tls', 'dsn', 'sender', 'jöran'], tls: leaf });
});
after(async () => {
  await pf?.stop();
});

async function open(options: Partial<ClientOptions> = {}): Promise<SMTPClient> {
  const socket = net.connect(pf.port, '127.0.0.1');
  await once(socket, 'connect');
  return SMTPClient.open(socket, { hostname: 'client.postern.test', timeouts: { greeting: 10_000, command: 10_000 }, ...options });
}

function message(to: string, body: string): Buffer {
  return Buffer.from(
    `From: <sender@postern.test>\r\nTo: <${to}>\r\nSubject: test\r\nMessage-ID: <${Math.random()}@postern.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n${body}`,
  );
}

// Postfix writes Maildir files with LF line endings.
const lf = (b: Buffer) => b.toString('utf8').replace(/\r\n/g, '\n');

test('delivers through Postfix in BDAT chunks, dot lines intact, unknown recipients refused', { skip }, async () => {
  const lines = Array.from({ length: 60_000 }, (_, i) => (i % 3 === 0 ? `.${i} dotted line` : `line ${i} ${'x'.repeat(40)}`));
  const data = message('plain@postern.test', `.\r\n${lines.join('\r\n')}\r\n.\r\n`);
  const c = await open();
  assert.equal(c.extensions.chunking, true);
  assert.equal(c.extensions.pipelining, true);
  const results = await c.deliver({
    from: 'sender@postern.test',
    recipients: [{ address: 'plain@postern.test' }, { address: 'unknown@postern.test' }, { address: 'other@postern.test' }],
    data,
  });
  assert.equal(results[0]!.error, undefined);
  assert.match(results[0]!.reply!.text, /queued as/);
  assert.equal(results[1]!.error?.code, 550);
  assert.equal(results[1]!.error?.enhanced, '5.1.1');
  assert.equal(results[1]!.error?.permanent, true);
  assert.equal(results[2]!.error, undefined);

  // The connection carries a second message; a transaction refused entirely is reset.
  const refused = await c.deliver({ from: 'sender@postern.test', recipients: [{ address: 'unknown@postern.test' }], data });
  assert.equal(refused[0]!.error?.code, 550);
  const second = await c.deliver({ from: 'sender@postern.test', recipients: [{ address: 'plain@postern.test' }], data: message('plain@postern.test', 'second\r\n') });
  assert.equal(second[0]!.error, undefined);
  await c.quit();

  const plain = (await pf.messages('plain', 2)).map(lf);
  assert.equal(plain.length, 2);
  assert.ok(plain.some((m) => m.endsWith(lf(data))), 'the delivered message ends with the sent one');
  assert.ok(plain.some((m) => m.endsWith('\nsecond\n')));
  assert.ok(lf((await pf.messages('other', 1))[0]!).endsWith(lf(data)));
});

test('STARTTLS verified with the CA; Postfix records ESMTPS', { skip }, async () => {
  const c = await open({ tls: { mode: 'verified', name: 'mx.postern.test', ca: ca.certPEM } });
  assert.equal(c.tlsVerified, true);
  const data = message('tls@postern.test', 'over TLS\r\n');
  const [r] = await c.deliver({ from: 'sender@postern.test', recipients: [{ address: 'tls@postern.test' }], data });
  assert.equal(r!.error, undefined);
  await c.quit();
  const got = lf((await pf.messages('tls', 1))[0]!);
  assert.match(got, /with ESMTPS id/);
  assert.ok(got.endsWith(lf(data)));
});

test('DSN: ENVID, ORCPT and NOTIFY=SUCCESS come back in the delivery report', { skip }, async () => {
  const c = await open();
  const [r] = await c.deliver({
    from: 'sender@postern.test',
    recipients: [{ address: 'dsn@postern.test', notify: ['SUCCESS'], orcpt: 'original+1@example.org' }],
    envid: 'queue=42',
    ret: 'HDRS',
    data: message('dsn@postern.test', 'report me\r\n'),
  });
  assert.equal(r!.error, undefined);
  await c.quit();
  const report = lf((await pf.messages('sender', 1))[0]!);
  assert.match(report, /^Original-Envelope-Id: queue=42$/m);
  assert.match(report, /^Original-Recipient: rfc822;original\+1@example.org$/m);
  assert.match(report, /^Action: delivered$/m);
});

test('SMTPUTF8: a UTF-8 localpart is delivered', { skip }, async () => {
  const c = await open();
  const data = message('jöran@postern.test', 'Grüße\r\n');
  const [r] = await c.deliver({ from: 'sender@postern.test', recipients: [{ address: 'jöran@postern.test' }], data });
  assert.equal(r!.error, undefined);
  await c.quit();
  const got = (await pf.messages('jöran', 1))[0]!.toString('utf8');
  assert.match(got, /^Delivered-To: jöran@postern.test$/m);
  assert.ok(got.endsWith(lf(data)));
});
