// Other SMTP clients against Postern: Python's smtplib (SMTPUTF8 with a UTF-8 localpart, and
// BDAT chunks written by hand) and swaks (PIPELINING, STARTTLS, AUTH CRAM-MD5, 8-bit bodies).
// Messages are read back over IMAP and compared byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServe, python, tempDir, type TestServer } from '../helpers/server.js';
import { editDomains, findBySubject, headerValues } from './helpers.js';

const swaksMissing = spawnSync('swaks', ['--version']).error ? 'swaks is not installed (Debian package swaks)' : false;
const swaksHelp = swaksMissing ? '' : spawnSync('swaks', ['--help'], { encoding: 'utf8' }).stdout;

let srv: TestServer;
let work: string;
before(async () => {
  srv = await startServe();
  // A UTF-8 localpart for jane (RFC 6531).
  await editDomains(srv, '      jane@example.test: {}', '      ñandú@example.test: {}\n');
  work = tempDir('postern-clients-');
  fs.writeFileSync(path.join(work, 'ca.pem'), srv.certPEM);
});
after(async () => {
  await srv?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** The stored message ends with exactly the bytes sent, after header fields Postern added. */
function assertStoredAsSent(stored: Buffer, sent: Buffer): void {
  const tail = stored.subarray(stored.length - sent.length);
  assert.ok(tail.equals(sent), `stored:\n${stored.toString('utf8')}\nsent:\n${sent.toString('utf8')}`);
  const added = stored.subarray(0, stored.length - sent.length).toString('utf8');
  assert.match(added, /^Return-Path: <[^>]*>\r\nReceived: /u);
  assert.match(added, /^(?:[A-Za-z-]+:.*\r\n(?:[ \t].*\r\n)*)+$/u);
}

test('smtplib: SMTPUTF8 with a UTF-8 sender, recipient localpart and header fields', async () => {
  const msg = Buffer.from(
    [
      'From: Jörg Müller <jörg@bücher.example>',
      'To: Ñandú <ñandú@example.test>',
      'Subject: Grüße aus Köln ✉',
      'Message-ID: <ü1@bücher.example>',
      '',
      'Hällo wörld, 日本語のテキスト.',
      '',
    ].join('\r\n'),
  );
  const out = await python(
    `
import json, os, smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']), local_hostname='client.example')
s.ehlo()
res = {'smtputf8': s.has_extn('smtputf8'), 'eightbit': s.has_extn('8bitmime')}
msg = bytes.fromhex(os.environ['MSG'])
refused = s.sendmail('jörg@bücher.example', ['ñandú@example.test'], msg, mail_options=['SMTPUTF8', 'BODY=8BITMIME'])
res['refused'] = refused
# Without SMTPUTF8 a UTF-8 address is refused (RFC 6531 3.4).
s.command_encoding = 'utf-8'
res['plain_mail'] = s.docmd('MAIL', 'FROM:<jörg@bücher.example>')[0]
s.rset()
s.command_encoding = 'utf-8'
s.docmd('MAIL', 'FROM:<plain@sender.example>')
res['plain_rcpt'] = s.docmd('RCPT', 'TO:<ñandú@example.test>')[0]
s.quit()
print(json.dumps(res))
`,
    { PORT: srv.ports.smtp, MSG: msg.toString('hex'), PYTHONIOENCODING: 'utf-8' },
  );
  const res = JSON.parse(out) as Record<string, unknown>;
  assert.deepEqual(res, { smtputf8: true, eightbit: true, refused: {}, plain_mail: 553, plain_rcpt: 553 });
  const [stored] = await findBySubject(srv, 'Grüße aus Köln ✉');
  assert.ok(stored, 'delivered');
  assertStoredAsSent(stored, msg);
  const received = headerValues(stored, 'received')[0]!;
  assert.match(received, /with UTF8SMTP\b/);
  assert.match(received, /for <ñandú@example\.test>/);
  assert.match(headerValues(stored, 'received-spf')[0] ?? '', /jörg@bücher\.example|xn--bcher-kva\.example/);
});

test('smtplib: hand-written BDAT chunks, with LAST on the final chunk and as BDAT 0 LAST', async () => {
  const lines = ['From: chunky@sender.example', 'To: jane@example.test', 'Subject: bdat by python', 'Message-ID: <bdat1@sender.example>', ''];
  for (let i = 0; i < 400; i++) lines.push(i % 7 === 0 ? `.line ${i} starts with a dot` : i % 11 === 0 ? '.' : `line ${i} ${'abc'.repeat(i % 20)} ü`);
  const msg = Buffer.from(lines.join('\r\n') + '\r\n');
  const msg2 = Buffer.from('From: chunky@sender.example\r\nSubject: bdat zero last\r\n\r\n..not unstuffed\r\n');
  const out = await python(
    `
import json, os, smtplib
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']), local_hostname='client.example')
s.ehlo()
replies = {'chunking': s.has_extn('chunking')}
def transaction(msg, cuts, zero_last):
    out = []
    out.append(s.mail('chunky@sender.example')[0])
    out.append(s.rcpt('jane@example.test')[0])
    parts = [msg[a:b] for a, b in zip([0] + cuts, cuts + [len(msg)])]
    for i, p in enumerate(parts):
        last = ' LAST' if i == len(parts) - 1 and not zero_last else ''
        s.send(('BDAT %d%s\\r\\n' % (len(p), last)).encode() + p)
        out.append(s.getreply()[0])
    if zero_last:
        s.send(b'BDAT 0 LAST\\r\\n')
        out.append(s.getreply()[0])
    return out
msg = bytes.fromhex(os.environ['MSG'])
replies['first'] = transaction(msg, [1, 100, 4000, 4001], False)
replies['second'] = transaction(bytes.fromhex(os.environ['MSG2']), [10], True)
# A command other than BDAT in the middle of a BDAT transaction aborts it (RFC 3030 2).
s.mail('chunky@sender.example'); s.rcpt('jane@example.test')
s.send(b'BDAT 5\\r\\nSubje')
replies['partial'] = s.getreply()[0]
replies['mail_in_bdat'] = s.docmd('MAIL', 'FROM:<x@sender.example>')[0]
s.quit()
print(json.dumps(replies))
`,
    { PORT: srv.ports.smtp, MSG: msg.toString('hex'), MSG2: msg2.toString('hex') },
  );
  const replies = JSON.parse(out) as Record<string, unknown>;
  assert.deepEqual(replies, {
    chunking: true,
    first: [250, 250, 250, 250, 250, 250, 250],
    second: [250, 250, 250, 250, 250],
    partial: 250,
    mail_in_bdat: 503,
  });
  const [stored] = await findBySubject(srv, 'bdat by python');
  assert.ok(stored);
  assertStoredAsSent(stored, msg);
  const [stored2] = await findBySubject(srv, 'bdat zero last');
  assert.ok(stored2);
  assertStoredAsSent(stored2, msg2);
  assert.match(headerValues(stored, 'received')[0]!, /with ESMTP\b/);
});

function swaks(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('swaks', ['--server', '127.0.0.1', '--helo', 'client.example', '--timeout', '20', ...args], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

/** Lines the client sent ("->" or "~>" in swaks transcripts) or received ("<-", "<~"). */
const sent = (out: string) => out.split('\n').filter((l) => /^\s*[-~]> /.test(l)).map((l) => l.replace(/^\s*[-~]> /, ''));

test('swaks: PIPELINING and STARTTLS with certificate verification', { skip: swaksMissing }, async () => {
  const r = await swaks([
    '--port', String(srv.ports.smtp),
    '--from', 'alice@sender.example',
    '--to', 'jane@example.test',
    '--pipeline',
    '--tls',
    '--tls-verify',
    '--tls-ca-path', path.join(work, 'ca.pem'),
    '--header', 'Subject: swaks pipelined',
    '--body', 'pipelined over TLS',
  ]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /<- {2}250-PIPELINING/);
  assert.match(r.out, /TLS started with cipher/);
  // After STARTTLS, the transaction goes over TLS ("~>") and the client pipelines MAIL and RCPT.
  assert.match(r.out, /~> MAIL FROM:<alice@sender\.example>\r?\n\s*~> RCPT TO:<jane@example\.test>/);
  const [stored] = await findBySubject(srv, 'swaks pipelined');
  assert.ok(stored);
  assert.match(headerValues(stored, 'received')[0]!, /with ESMTPS\b/);
  assert.match(stored.toString(), /\r\n\r\npipelined over TLS\r\n/);
});

test('swaks: AUTH CRAM-MD5 on submission, STARTTLS and implicit TLS', { skip: swaksMissing }, async () => {
  // With SNI: see the next test for implicit TLS without it.
  for (const mode of [['--port', String(srv.ports.submission), '--tls'], ['--port', String(srv.ports.submissions), '--tls-on-connect', '--tls-sni', 'localhost']]) {
    const subject = `swaks cram ${mode[2]}`;
    const r = await swaks([
      ...mode,
      '--from', 'jane@example.test',
      '--to', 'jane@example.test',
      '--auth', 'CRAM-MD5',
      '--auth-user', 'jane@example.test',
      '--auth-password', 'secret-pass',
      '--header', `From: jane@example.test`,
      '--header', `Subject: ${subject}`,
      '--body', 'authenticated with CRAM-MD5',
    ]);
    assert.equal(r.code, 0, r.out);
    assert.ok(sent(r.out).includes('AUTH CRAM-MD5'), r.out);
    assert.match(r.out, /<~ {2}235 2\.7\.0 /);
    const [stored] = await findBySubject(srv, subject);
    assert.ok(stored, subject);
    assert.match(headerValues(stored, 'received')[0]!, /with ESMTPSA\b/);
    // Submission added what the client left out.
    assert.equal(headerValues(stored, 'message-id').length, 1);
  }
  // A wrong password fails.
  const bad = await swaks(['--port', String(srv.ports.submissions), '--tls-on-connect', '--tls-sni', 'localhost', '--to', 'jane@example.test', '--auth', 'CRAM-MD5', '--auth-user', 'jane@example.test', '--auth-password', 'nope']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /<~\* {1,2}535 /);
});

// Clients that connect by IP address or do not send SNI (swaks by default, openssl s_client to an
// IP, older libraries) must still get the default certificate, as they do after STARTTLS.
test('implicit TLS (port 465) works for clients without SNI', { skip: swaksMissing }, async () => {
  const r = await swaks(['--port', String(srv.ports.submissions), '--tls-on-connect', '--quit-after', 'EHLO']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /TLS started with cipher/);
});

test('swaks: 8-bit body, with BODY=8BITMIME where swaks supports it', { skip: swaksMissing }, async () => {
  // swaks before 20240103 has no --8bitmime and cannot add MAIL parameters: it then sends the
  // 8-bit body without BODY=8BITMIME, which Postern accepts as it is (like most servers).
  const has8bitmime = swaksHelp.includes('--8bitmime');
  const data = Buffer.from('From: alice@sender.example\r\nTo: jane@example.test\r\nSubject: swaks 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÄrger über Öl — ½ € ✓\r\nzweite Zeile\r\n');
  const file = path.join(work, '8bit.eml');
  // swaks ends the data with CRLF "." CRLF itself.
  fs.writeFileSync(file, data.subarray(0, -2));
  const r = await swaks(['--port', String(srv.ports.smtp), '--from', 'alice@sender.example', '--to', 'jane@example.test', '--data', file, ...(has8bitmime ? ['--8bitmime'] : [])]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /<- {2}250-8BITMIME/);
  if (has8bitmime) assert.ok(sent(r.out).some((l) => /^MAIL FROM:.* BODY=8BITMIME/.test(l)), r.out);
  const [stored] = await findBySubject(srv, 'swaks 8bit');
  assert.ok(stored);
  assertStoredAsSent(stored, data);
});
