// SASL EXTERNAL with a registered TLS client certificate, for IMAP and SMTP submission.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';
import { issueCert } from '../../src/tls/selfsigned.js';

let srv: TestServer;
const registered = issueCert({ names: ['jane-laptop'] });
const stranger = issueCert({ names: ['someone'] });

before(async () => {
  srv = await startServe();
  const file = path.join(srv.dir, 'client.pem');
  fs.writeFileSync(file, registered.certPEM);
  const r = await srv.cli(['config', 'tlspubkey', 'add', 'jane@example.test', file, 'laptop']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /added to account jane/);
  const list = await srv.cli(['config', 'tlspubkey', 'list']);
  assert.match(list.stdout, /^jane jane@example\.test \S{43} laptop$/m);
  // Wait for the running server to pick up the change.
  for (let i = 0; i < 100 && !srv.output.includes('domains.conf reloaded'); i++) await new Promise((res) => setTimeout(res, 50));
});
after(async () => {
  await srv?.close();
});

function connect(port: number, client: { keyPEM: string; certPEM: string }): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', ca: srv.certPEM, servername: 'localhost', key: client.keyPEM, cert: client.certPEM }, () => resolve(new Raw(s)));
    s.once('error', reject);
  });
}

test('IMAP AUTHENTICATE EXTERNAL with a registered client certificate', async () => {
  const c = await connect(srv.ports.imaps, registered);
  assert.match(await c.line(), /AUTH=EXTERNAL/);
  assert.match((await c.imap('a', 'AUTHENTICATE EXTERNAL =')).status, /^OK/);
  assert.match((await c.imap('b', 'SELECT INBOX')).status, /^OK/);
  c.close();
  const d = await connect(srv.ports.imaps, stranger);
  await d.line();
  assert.match((await d.imap('a', 'AUTHENTICATE EXTERNAL =')).status, /^NO \[AUTHENTICATIONFAILED\]/);
  d.close();
});

test('SMTP AUTH EXTERNAL on submissions', async () => {
  const c = await connect(srv.ports.submissions, registered);
  assert.equal((await c.reply()).code, 220);
  assert.match((await c.cmd('EHLO client.example')).text, /AUTH .*EXTERNAL/);
  assert.equal((await c.cmd('AUTH EXTERNAL =')).code, 235);
  assert.equal((await c.cmd('MAIL FROM:<jane@example.test>')).code, 250);
  c.close();
  const d = await connect(srv.ports.submissions, stranger);
  await d.reply();
  await d.cmd('EHLO client.example');
  assert.equal((await d.cmd('AUTH EXTERNAL =')).code, 535);
  d.close();
});
