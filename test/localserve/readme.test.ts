// The README's set-up commands: the built program (bin/postern, as "npm ci" leaves it)
// initializes and runs localserve, which accepts mail and serves it over IMAP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { root, tempDir, freePorts } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';

test('README starts with the two set-up commands', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const head = readme.split('\n').slice(0, 15).join('\n');
  assert.ok(head.includes('npm ci && ./bin/postern localserve'));
  assert.ok(head.includes('npm test'));
});

test('bin/postern localserve initializes a directory and serves mail', async () => {
  const bin = path.join(root, 'bin', 'postern');
  assert.ok(fs.existsSync(path.join(root, 'dist', 'cli', 'main.js')), 'dist not built: npm ci runs the build');
  const dir = path.join(tempDir(), 'ls');
  const out = execFileSync(bin, ['localserve', '--dir', dir, '--initonly', '--ip', '127.0.0.1'], { encoding: 'utf8' });
  assert.match(out, /initialized/);
  const conf = path.join(dir, 'config', 'postern.conf');
  const [smtp, imap, a, b, c] = await freePorts(5);
  let text = fs.readFileSync(conf, 'utf8');
  const ports: Record<string, number> = { SMTP: smtp!, IMAP: imap!, Submission: a!, Submissions: b!, IMAPS: c! };
  text = text.replace(/\n    (SMTP|Submission|Submissions|IMAP|IMAPS):\n      Enabled: true\n      Port: \d+/g, (m, svc: string) => m.replace(/\d+$/, String(ports[svc])));
  fs.writeFileSync(conf, text);
  const proc = spawn(bin, ['localserve', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let err = '';
    await new Promise<void>((resolve, reject) => {
      proc.stderr.on('data', (d: Buffer) => {
        err += d;
        if (err.includes('postern localserve running')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
    });
    assert.match(err, /postern@localhost, password posternpostern/);
    const s = await Raw.connect(smtp!);
    assert.equal((await s.reply()).code, 220);
    await s.cmd('EHLO readme.example');
    await s.cmd('MAIL FROM:<dev@example.org>');
    await s.cmd('RCPT TO:<test@example.com>');
    await s.cmd('DATA');
    assert.equal((await s.cmd('Subject: readme\r\n\r\nit works\r\n.')).code, 250);
    s.close();
    const i = await Raw.connect(imap!);
    await i.line();
    assert.match((await i.imap('1', 'LOGIN postern@localhost posternpostern')).status, /^OK/);
    const sel = await i.imap('2', 'SELECT INBOX');
    assert.ok(sel.untagged.includes('* 1 EXISTS'));
    i.close();
  } finally {
    proc.kill('SIGTERM');
  }
});
