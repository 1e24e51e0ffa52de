// Message submission: the From header must be the account's, Message-ID and Date are added when
// missing, and messages are DKIM-signed with each configured selector; the signatures are checked
// with independent verifiers (mailauth, and dkimpy from Debian's python3-dkim when installed) on
// the message as queued for a remote recipient and as delivered locally.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { startServe, type TestServer } from '../helpers/server.js';
import type { QueueMsg } from '../../src/queue/store.js';
import { findBySubject, headerValues, sendData, submissionSession } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const dkimpyMissing = spawnSync(PYTHON, ['-c', 'import dkim, nacl']).status === 0 ? false : 'python3-dkim is not installed';

let srv: TestServer;
let records: Record<string, string>;
before(async () => {
  srv = await startServe({ dkim: true });
  records = { 'ed._domainkey.example.test': srv.dkim.ed!, 'rsa._domainkey.example.test': srv.dkim.rsa! };
  for (const [name, txt] of Object.entries(records)) srv.dns.set(name, 'TXT', [txt]);
});
after(async () => {
  await srv?.close();
});

/** The message as the queue would send it: the row's prefix, then the message file (both read-only). */
function queuedMessage(subject: string): { row: QueueMsg; msg: Buffer } {
  const db = new Database(path.join(srv.dataDir, 'queue', 'index.db'), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT * FROM msg WHERE subject = ?').get(subject) as (QueueMsg & { prefix: Buffer }) | undefined;
    assert.ok(row, `queued: ${subject}`);
    const file = path.join(srv.dataDir, 'queue', 'msg', String(Math.floor(row.fileid / 8192)), String(row.fileid));
    return { row, msg: Buffer.concat([row.prefix, fs.readFileSync(file)]) };
  } finally {
    db.close();
  }
}

async function mailauthVerdicts(msg: Buffer): Promise<string[]> {
  const res = await dkimVerify(msg, {
    resolver: async (name: string, type: string) => {
      const r = type === 'TXT' ? records[name.toLowerCase().replace(/\.$/, '')] : undefined;
      if (r === undefined) throw Object.assign(new Error(`${type} ${name}: ENOTFOUND`), { code: 'ENOTFOUND' });
      return [[r]];
    },
  });
  return res.results.map((r) => `${r.signingDomain}/${r.selector ?? ''}=${r.status.result}`).sort();
}

// dkimpy offline: its DNS lookups are answered from the records given.
const DKIMPY = `
import json, sys, dkim
msg = sys.stdin.buffer.read()
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    r = records.get(name.decode().rstrip('.'))
    return r.encode() if r is not None else None
d = dkim.DKIM(msg)
n = sum(1 for k, _ in d.headers if k.lower() == b'dkim-signature')
out = []
for i in range(n):
    try:
        out.append(dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc))
    except dkim.DKIMException as e:
        out.append(str(e))
print(json.dumps(out))
`;

function dkimpyVerdicts(msg: Buffer): unknown[] {
  const r = spawnSync(PYTHON, ['-c', DKIMPY, JSON.stringify(records)], { input: msg, timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr.toString());
  return JSON.parse(r.stdout.toString()) as unknown[];
}

test('a foreign From header or sender is refused with 550 5.7.1', async () => {
  const c = await submissionSession(srv);
  const cases = [
    'From: ceo@bank.example\r\nSubject: forged',
    'From: Jane <jane@example.test>, Boss <boss@example.test>\r\nSubject: one of two foreign',
    'From: jane@example.test\r\nFrom: mallory@evil.example\r\nSubject: two from fields',
    'Sender: jane@example.test\r\nFrom: ceo@bank.example\r\nSubject: sender is not enough',
  ];
  for (const body of cases) {
    const r = await sendData(c, 'jane@example.test', ['jane.archive@example.test'], body + '\r\n\r\nx\r\n');
    assert.equal(r.code, 550, body);
    assert.match(r.text, /^5\.7\.1 /, body);
  }
  const mail = await c.cmd('MAIL FROM:<ceo@bank.example>');
  assert.equal(mail.code, 550);
  assert.match(mail.text, /^5\.7\.1 /);
  // The account's other address, in any case, with a display name, is fine.
  const ok = await sendData(c, 'jane@example.test', ['jane.archive@example.test'], 'From: "Jane A." <Jane.Archive@EXAMPLE.test>\r\nSubject: own other address\r\n\r\nx\r\n');
  assert.equal(ok.code, 250, ok.text);
  c.close();
  assert.equal((await findBySubject(srv, 'own other address', 'Archive')).length, 1);
  for (const s of ['forged', 'one of two foreign', 'two from fields', 'sender is not enough']) assert.deepEqual(await findBySubject(srv, s, 'Archive'), [], s);
});

test('Message-ID and Date are added when missing, and kept when present', async () => {
  const c = await submissionSession(srv);
  const t0 = Date.now();
  assert.equal((await sendData(c, 'jane@example.test', ['jane.archive@example.test'], 'From: jane@example.test\r\nSubject: bare\r\n\r\nno id, no date\r\n')).code, 250);
  const given = 'From: jane@example.test\r\nSubject: complete\r\nMessage-ID: <given.1@example.test>\r\nDate: Tue, 4 Jun 2024 09:30:00 +0200\r\n\r\nall there\r\n';
  assert.equal((await sendData(c, 'jane@example.test', ['jane.archive@example.test'], given)).code, 250);
  c.close();
  const [bare] = await findBySubject(srv, 'bare', 'Archive');
  assert.ok(bare);
  const ids = headerValues(bare, 'message-id');
  assert.equal(ids.length, 1);
  assert.match(ids[0]!, /^<[A-Za-z0-9_-]+@mail\.example\.test>$/);
  const dates = headerValues(bare, 'date');
  assert.equal(dates.length, 1);
  const when = Date.parse(dates[0]!);
  assert.ok(Math.abs(when - t0) < 60_000, `Date ${dates[0]}`);
  assert.match(dates[0]!, /^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/);
  const [complete] = await findBySubject(srv, 'complete', 'Archive');
  assert.ok(complete);
  assert.deepEqual(headerValues(complete, 'message-id'), ['<given.1@example.test>']);
  assert.deepEqual(headerValues(complete, 'date'), ['Tue, 4 Jun 2024 09:30:00 +0200']);
  assert.ok(complete.toString().endsWith(given));
});

const toRemote = [
  'From: Jane <jane@example.test>',
  'To: Bob <bob@remote.example>',
  'Subject: signed for remote',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hello Bob,',
  '',
  '.a line with a leading dot',
  'Grüße, Jane',
  '',
].join('\r\n');

test('mail to a remote address is queued with Ed25519 and RSA signatures that verify', async () => {
  const c = await submissionSession(srv);
  // Held, so the message stays in the queue whatever the queue does with due messages.
  assert.equal((await sendData(c, 'jane@example.test', ['bob@remote.example'], toRemote, 'HOLDFOR=86400')).code, 250);
  c.close();
  const { row, msg } = queuedMessage('signed for remote');
  assert.equal(row.recipient, 'bob@remote.example');
  assert.equal(row.sender, 'jane@example.test');
  const sigs = headerValues(msg, 'dkim-signature');
  assert.equal(sigs.length, 2);
  const tags = sigs.map((s) => Object.fromEntries(s.split(';').map((t) => t.trim().split('=')).filter((kv) => kv.length >= 2).map(([k, ...v]) => [k!, v.join('=').replace(/\s+/g, '')])));
  assert.deepEqual(tags.map((t) => `${t.d}/${t.s}/${t.a}`).sort(), ['example.test/ed/ed25519-sha256', 'example.test/rsa/rsa-sha256']);
  for (const t of tags) assert.match(t.h!, /(^|:)from(:|$)/i);
  // The message Postern queued ends with what was submitted.
  assert.ok(msg.toString().endsWith(toRemote));

  assert.deepEqual(await mailauthVerdicts(msg), ['example.test/ed=pass', 'example.test/rsa=pass']);
  const tampered = Buffer.from(msg.toString().replace('Hello Bob', 'Hello Eve'));
  assert.deepEqual(await mailauthVerdicts(tampered), ['example.test/ed=neutral', 'example.test/rsa=neutral']);
});

test('dkimpy verifies both signatures of the queued message', { skip: dkimpyMissing }, () => {
  const { msg } = queuedMessage('signed for remote');
  assert.deepEqual(dkimpyVerdicts(msg), [true, true]);
  const tampered = Buffer.from(msg.toString().replace('Grüße', 'Gruesse'));
  const verdicts = dkimpyVerdicts(tampered);
  assert.equal(verdicts.length, 2);
  for (const v of verdicts) assert.ok(v === false || /body hash mismatch/.test(String(v)), String(v));
});

test('the Debian dkimverify command accepts the locally delivered copy', { skip: dkimpyMissing || (fs.existsSync('/usr/bin/dkimverify') ? false : 'dkimverify missing') }, async () => {
  const c = await submissionSession(srv);
  const body = toRemote.replace('Subject: signed for remote', 'Subject: signed for archive');
  assert.equal((await sendData(c, 'jane@example.test', ['jane.archive@example.test'], body)).code, 250);
  c.close();
  const [stored] = await findBySubject(srv, 'signed for archive', 'Archive');
  assert.ok(stored);
  assert.equal(headerValues(stored, 'dkim-signature').length, 2);
  assert.deepEqual(await mailauthVerdicts(stored), ['example.test/ed=pass', 'example.test/rsa=pass']);
  assert.deepEqual(dkimpyVerdicts(stored), [true, true]);
  // dkimverify's main() looks keys up in DNS; offline, its DKIM.verify gets our records instead.
  const script = `
import json, sys, dkim
from dkim.dkimverify import main
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    r = records.get(name.decode().rstrip('.'))
    return r.encode() if r is not None else None
verify = dkim.DKIM.verify
dkim.DKIM.verify = lambda self, idx=0, dnsfunc_=None: verify(self, idx, dnsfunc=dnsfunc)
sys.argv = ['dkimverify', '--index', sys.argv[2]]
main()
`;
  for (const index of ['0', '1']) {
    const r: SpawnSyncReturns<Buffer> = spawnSync(PYTHON, ['-c', script, JSON.stringify(records), index], { input: stored, timeout: 30_000 });
    assert.equal(r.status, 0, r.stdout.toString() + r.stderr.toString());
    assert.equal(r.stdout.toString(), 'signature ok\n');
  }
});
