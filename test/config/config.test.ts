// Configuration files: checking with line numbers, annotated examples, edits that keep
// comments, and live reload of domains.conf in a running server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { postern, startServe, tempDir, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

function writeConfig(dir: string, staticText: string, domainsText: string): string {
  fs.writeFileSync(path.join(dir, 'postern.conf'), staticText);
  fs.writeFileSync(path.join(dir, 'domains.conf'), domainsText);
  return path.join(dir, 'postern.conf');
}

test('describe-static and describe-domains print a valid, documented configuration', async () => {
  const dir = tempDir();
  const st = await postern(['config', 'describe-static']);
  const dm = await postern(['config', 'describe-domains']);
  assert.equal(st.code, 0);
  for (const field of ['Hostname:', 'DataDir:', 'Listeners:', 'KeyCerts:', 'Resolver:', 'LogLevel:', 'Submissions:', 'IMAPS:']) assert.ok(st.stdout.includes(field), field);
  for (const field of ['Domains:', 'LocalpartCatchallSeparator:', 'Accounts:', 'Destinations:', 'Mailbox:']) assert.ok(dm.stdout.includes(field), field);
  // Every field has a comment line before it.
  const lines = st.stdout.split('\n');
  lines.forEach((l, i) => {
    if (/^\s*[A-Za-z]+:/.test(l) && !/^\s*(public|smtpserver):/.test(l)) assert.match(lines[i - 1]!, /^\s*#/, `no documentation before line ${i + 1}: ${l}`);
  });
  const file = writeConfig(dir, st.stdout, dm.stdout);
  // The example's DKIM key file must exist and be a usable key.
  const keyFile = /PrivateKeyFile: (\S+)/.exec(dm.stdout)![1]!;
  let r = await postern(['--config', file, 'config', 'test']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /PrivateKeyFile: cannot use key/);
  fs.mkdirSync(path.join(dir, path.dirname(keyFile)), { recursive: true });
  fs.writeFileSync(path.join(dir, keyFile), generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
  r = await postern(['--config', file, 'config', 'test']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /config OK/);
});

test('config test reports every error with file, line and field', async () => {
  const dir = tempDir();
  const file = writeConfig(
    dir,
    `Hostname: mail.example.test
Postmaster:
  Account: jane
Listeners:
  one:
    IPs: ["127.0.0.1"]
    SMTP:
      Enabled: true
      Port: twentyfive
    Hostnme: typo.example
`,
    `Domains:
  example.test: {}
Accounts:
  jane:
    Domain: example.test
    Destinations:
      jane@example.test: {}
      bob@other.test: {}
`,
  );
  const r = await postern(['--config', file, 'config', 'test']);
  assert.equal(r.code, 1);
  const errs = r.stderr.trim().split('\n');
  assert.ok(errs.some((e) => e.startsWith(`${file}:9: Listeners.one.SMTP.Port: must be an integer`)), r.stderr);
  assert.ok(errs.some((e) => e.startsWith(`${file}:10: Listeners.one.Hostnme: unknown field`)), r.stderr);
  assert.ok(errs.some((e) => e.startsWith(`${path.join(dir, 'domains.conf')}:8: Accounts.jane.Destinations.bob@other.test: domain other.test not configured`)), r.stderr);

  // YAML syntax errors too.
  fs.writeFileSync(path.join(dir, 'domains.conf'), 'Domains:\n  example.test: {}\nAccounts:\n  jane:\n   Domain: [unclosed\n');
  const r2 = await postern(['--config', file, 'config', 'test']);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /domains\.conf:\d+: /);
});

test('config domain/account/address commands edit domains.conf and keep comments', async () => {
  const dir = tempDir();
  const file = writeConfig(
    dir,
    'Hostname: mail.example.test\nPostmaster:\n  Account: jane\nListeners: {}\n',
    `# Our domains.
Domains:
  example.test: # the main one
    LocalpartCatchallSeparator: "+"
# People.
Accounts:
  jane:
    Domain: example.test
    Destinations:
      jane@example.test: {} # Jane's own
`,
  );
  const run = async (...args: string[]) => {
    const r = await postern(['-config', file, ...args]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  };
  await run('config', 'domain', 'add', 'other.example', 'bob');
  await run('config', 'account', 'add', 'carol', 'carol@example.test');
  await run('config', 'address', 'add', 'jane.doe@other.example', 'jane');
  await run('config', 'address', 'add', '@other.example', 'carol');
  let text = fs.readFileSync(path.join(dir, 'domains.conf'), 'utf8');
  for (const c of ['# Our domains.', '# the main one', '# People.', "# Jane's own"]) assert.ok(text.includes(c), `lost comment ${c}`);
  assert.match(text, /bob@other\.example/);
  assert.match(text, /carol@example\.test/);
  // Refused edits leave the file alone.
  const dup = await postern(['--config', file, 'config', 'address', 'add', 'jane@example.test', 'carol']);
  assert.equal(dup.code, 1);
  const rm = await postern(['--config', file, 'config', 'domain', 'rm', 'other.example']);
  assert.equal(rm.code, 1);
  assert.match(rm.stderr, /still used/);
  assert.equal(fs.readFileSync(path.join(dir, 'domains.conf'), 'utf8'), text);
  await run('config', 'address', 'rm', 'jane.doe@other.example');
  await run('config', 'address', 'rm', '@other.example');
  await run('config', 'account', 'rm', 'bob');
  await run('config', 'domain', 'rm', 'other.example');
  text = fs.readFileSync(path.join(dir, 'domains.conf'), 'utf8');
  assert.doesNotMatch(text, /other\.example/);
  assert.ok(text.includes("# Jane's own"));
  const t = await postern(['--config', file, 'config', 'test']);
  assert.equal(t.code, 0, t.stderr);
});

async function rcptCode(srv: TestServer, addr: string): Promise<number> {
  const c = await Raw.connect(srv.ports.smtp);
  await c.reply();
  await c.cmd('EHLO x.example');
  await c.cmd('MAIL FROM:<a@example.org>');
  const code = (await c.cmd(`RCPT TO:<${addr}>`)).code;
  c.close();
  return code;
}

async function eventually(fn: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a running server reloads domains.conf, and keeps the old config when the new one is invalid', async () => {
  const srv = await startServe();
  servers.push(srv);
  assert.equal(await rcptCode(srv, 'new@example.test'), 550);
  const r = await srv.cli(['config', 'address', 'add', 'new@example.test', 'jane']);
  assert.equal(r.code, 0, r.stderr);
  await eventually(async () => (await rcptCode(srv, 'new@example.test')) === 250);

  const domainsFile = path.join(srv.dir, 'config', 'domains.conf');
  const good = fs.readFileSync(domainsFile, 'utf8');
  fs.writeFileSync(domainsFile, good.replace('Accounts:', 'Accounts:\n  broken: [').replace('new@example.test', 'other@example.test'));
  await eventually(async () => srv.output.includes('invalid domains.conf, keeping current configuration'));
  assert.equal(await rcptCode(srv, 'new@example.test'), 250);
  assert.equal(await rcptCode(srv, 'jane@example.test'), 250);
  assert.equal(await rcptCode(srv, 'other@example.test'), 550);
  // A corrected file is taken.
  fs.writeFileSync(domainsFile, good.replace('new@example.test', 'other@example.test'));
  await eventually(async () => (await rcptCode(srv, 'other@example.test')) === 250);
  assert.equal(await rcptCode(srv, 'new@example.test'), 550);
});

test('setaccountpassword, loglevels and stop work against a running server', async () => {
  const srv = await startServe();
  servers.push(srv);
  const login = async (pass: string) => {
    const c = await Raw.connectTLS(srv.ports.imaps, srv.certPEM);
    await c.line();
    const r = await c.imap('a', `LOGIN jane@example.test ${pass}`);
    c.close();
    return r.status.split(' ')[0];
  };
  assert.equal(await login('secret-pass'), 'OK');
  const r = await srv.cli(['setaccountpassword', 'jane'], 'a-new-password\n');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await login('a-new-password'), 'OK');
  assert.equal(await login('secret-pass'), 'NO');
  const bad = await srv.cli(['setaccountpassword', 'nobody'], 'x\n');
  assert.notEqual(bad.code, 0);

  assert.doesNotMatch(srv.output, /"level":"trace"/);
  const lv = await postern(['loglevels', 'trace', 'smtpserver'], { env: { POSTERNCONF: srv.configFile } });
  assert.equal(lv.code, 0, lv.stderr);
  assert.match(lv.stdout, /default: info\nsmtpserver: trace/);
  await rcptCode(srv, 'jane@example.test');
  await eventually(async () => /"level":"trace","time":"[^"]+","pkg":"smtpserver".*"line":"RCPT TO:<jane@example.test>"/.test(srv.output));

  const exited = new Promise<number | null>((res) => srv.proc!.once('exit', (code) => res(code)));
  const stop = await srv.cli(['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(await exited, 0);
  const again = await srv.cli(['stop']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /no server running/);
});

test('help prints usage and help text of commands; unknown commands fail', async () => {
  const all = await postern(['help']);
  assert.equal(all.code, 0);
  for (const c of ['localserve', 'serve', 'stop', 'config test', 'setaccountpassword', 'loglevels']) assert.ok(all.stdout.includes(c), c);
  const one = await postern(['help', 'localserve']);
  assert.match(one.stdout, /^usage: postern localserve \[--dir DIR\] \[--ip IP\] \[--initonly\]/);
  assert.match(one.stdout, /temperror/);
  const flag = await postern(['config', 'test', '--help']);
  assert.match(flag.stdout, /^usage: postern config test/);
  const bad = await postern(['frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command/);
});
