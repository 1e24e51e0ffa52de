// Outbound delivery to Postfix (Debian's package, a private instance on a loopback port).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, type TestServer } from '../helpers/server.js';
import { postfixUnavailable, startPostfix, type Postfix } from '../helpers/postfix.js';
import { submit, waitFor, janeInbox, mx } from './helpers.js';

const skip = postfixUnavailable();
let pf: Postfix;
let sender: TestServer;

before(async () => {
  if (skip) return;
  pf = await startPostfix({ domain: 'pf.test', users: ['alice'] });
  sender = await startServe({ dkim: true, queue: `SMTPPort: ${pf.port}` });
  mx(sender, 'pf.test', 'mx.pf.test');
});

after(async () => {
  await sender?.close();
  await pf?.stop();
});

test('a submitted message reaches Postfix, signed', { skip }, async () => {
  await submit(sender, ['alice@pf.test'], 'to postfix', { body: 'line one\r\n.line with a dot\r\n' });
  const [msg] = await pf.messages('alice', 1);
  const text = msg!.toString();
  assert.match(text, /Subject: to postfix/);
  assert.match(text, /\r?\n\.line with a dot\r?\n/);
  assert.match(text, /DKIM-Signature: .*d=example\.test/s);
});

test('Postfix refuses an unknown user: the DSN has its reply', { skip }, async () => {
  await submit(sender, ['nobody@pf.test'], 'to nobody');
  const dsn = await waitFor('dsn', async () => (await janeInbox(sender)).map(String).find((m) => m.includes('Final-Recipient: rfc822;nobody@pf.test')));
  assert.match(dsn, /Action: failed/);
  assert.match(dsn, /Diagnostic-Code: smtp; 550 5\.1\.1 .*nobody@pf\.test/);
  assert.match(dsn, /Remote-MTA: dns; mx\.pf\.test/);
});
