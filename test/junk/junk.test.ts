// Junk handling end to end, over real sockets: training with $Junk/$NotJunk and moves over
// IMAP (imapflow), deliveries over SMTP from different loopback addresses (each its own sender
// network), known correspondents, delays and refusals with the Rejects mailbox and its expiry,
// and DNS blocklists served by the test DNS server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ImapFlow } from 'imapflow';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw, type SMTPReply } from '../helpers/raw.js';
import { plainAuth, sendData } from '../smtpserver/helpers.js';

let srv: TestServer;

const accounts = `  bob:
    Domain: example.test
    Destinations:
      bob@example.test: {}
  carol:
    Domain: example.test
    Destinations:
      carol@example.test: {}
    JunkFilter:
      MinHam: 5
      FirstTimeSenderDelaySeconds: 2
`;
const passwords = { bob: 'bob-secret', carol: 'carol-secret' };

// Sender networks: the IPs differ in their /21, so each has its own reputation.
const IP = { train: '127.1.0.1', friend: '127.2.0.1', stranger: '127.3.0.1', listed: '127.4.0.9', clean: '127.5.0.1' };

before(async () => {
  srv = await startServe({ accounts, passwords, staticExtra: 'DNSBL:\n  Zones: [bl.test]\n' });
  // Valid reverse DNS for every sender IP (iprev pass).
  for (const [name, ip] of Object.entries(IP)) {
    srv.dns.set(`${ip.split('.').reverse().join('.')}.in-addr.arpa`, 'PTR', [`${name}.sender.example`]);
    srv.dns.set(`${name}.sender.example`, 'A', [ip]);
  }
  // A healthy blocklist (RFC 5782 5) that lists one of them.
  srv.dns.set('2.0.0.127.bl.test', 'A', ['127.0.0.2']);
  srv.dns.set('9.0.4.127.bl.test', 'A', ['127.0.0.2']);
  srv.dns.set('9.0.4.127.bl.test', 'TXT', ['listed for testing']);
});
after(async () => {
  await srv?.close();
});

const hamWords = 'quarterly project review meeting agenda budget spreadsheet colleagues schedule deadline minutes proposal draft roadmap milestone'.split(' ');
const spamWords = 'viagra casino jackpot lottery winner unclaimed prize bitcoin guaranteed pharmacy discount cheap pills wealthy bonus'.split(' ');

let seq = 0;
function text(vocab: string[], n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(vocab[(seq * 7 + i * 3) % vocab.length]!);
  seq++;
  return out.join(' ');
}

function message(from: string, to: string, subject: string, body: string, messageId = `<${Date.now()}.${++seq}@${from.split('@')[1]}>`): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nMessage-ID: ${messageId}\r\nDate: ${new Date().toUTCString()}\r\n\r\n${body}\r\n`;
}
const ham = (from: string, to: string, subject: string) => message(from, to, subject, `${text(hamWords, 12)}\r\n${text(hamWords, 10)}`);
const spam = (from: string, to: string, subject: string, id?: string) => message(from, to, subject, `${text(spamWords, 12)}\r\n${text(spamWords, 10)}`, id);

/** An SMTP session to port 25 from the given loopback address. */
async function smtpFrom(ip: string): Promise<Raw> {
  const s = await new Promise<net.Socket>((resolve, reject) => {
    const c = net.connect({ port: srv.ports.smtp, host: '127.0.0.1', localAddress: ip }, () => resolve(c));
    c.once('error', reject);
  });
  const r = new Raw(s);
  assert.equal((await r.reply()).code, 220);
  assert.equal((await r.cmd(`EHLO ${Object.entries(IP).find(([, v]) => v === ip)![0]}.sender.example`)).code, 250);
  return r;
}

/** Delivers a message; returns the final reply and the time it took after the data was sent. */
async function deliver(ip: string, from: string, to: string, msg: string): Promise<SMTPReply & { ms: number }> {
  const c = await smtpFrom(ip);
  try {
    const t0 = Date.now();
    const r = await sendData(c, from, [to], msg);
    return { ...r, ms: Date.now() - t0 };
  } finally {
    c.close();
  }
}

async function imap(user: string, pass: string): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port: srv.ports.imaps, secure: true, tls: { ca: srv.certPEM, servername: 'localhost' }, auth: { user, pass }, logger: false });
  await c.connect();
  return c;
}

/** Subjects of the messages in a mailbox. */
async function subjects(c: ImapFlow, mailbox: string): Promise<string[]> {
  const mb = await c.mailboxOpen(mailbox, { readOnly: true });
  const out: string[] = [];
  if (mb.exists) for await (const m of c.fetch('1:*', { envelope: true })) out.push(m.envelope?.subject ?? '');
  return out;
}

async function stats(account: string): Promise<{ nham: number; nspam: number }> {
  return (await srv.ctl('junk stats', { account, wait: true })) as { nham: number; nspam: number };
}

/** Appends messages to INBOX and flags them; returns their UIDs. */
async function train(c: ImapFlow, msgs: string[], flag: '$Junk' | '$NotJunk'): Promise<number[]> {
  await c.mailboxOpen('INBOX');
  const uids: number[] = [];
  for (const m of msgs) uids.push((await c.append('INBOX', m)) as unknown as number);
  const res = await c.search({ all: true }, { uid: true });
  const fresh = (res || []).slice(-msgs.length);
  await c.messageFlagsAdd(fresh, [flag], { uid: true });
  return fresh;
}

test('training with $Junk and $NotJunk over IMAP decides where new mail goes', async () => {
  const c = await imap('bob@example.test', passwords.bob);
  try {
    await train(c, Array.from({ length: 8 }, (_, i) => ham(`colleague${i}@work.example`, 'bob@example.test', 'project update')), '$NotJunk');
    await train(c, Array.from({ length: 8 }, (_, i) => spam(`promo${i}@spam.example`, 'bob@example.test', 'you have won')), '$Junk');
    assert.deepEqual(await stats('bob'), { nham: 8, nspam: 8, backlog: 0 });

    // Not yet 50 non-junk messages: the filter sends spam to Junk rather than refusing it.
    const s = await deliver(IP.train, 'news@offers.example', 'bob@example.test', spam('news@offers.example', 'bob@example.test', 'exclusive offer'));
    assert.equal(s.code, 250, s.text);
    const h = await deliver(IP.train, 'alice@partner.example', 'bob@example.test', ham('alice@partner.example', 'bob@example.test', 'meeting notes'));
    assert.equal(h.code, 250, h.text);
    assert.ok((await subjects(c, 'Junk')).includes('exclusive offer'));
    assert.ok(!(await subjects(c, 'INBOX')).includes('exclusive offer'));
    assert.ok((await subjects(c, 'INBOX')).includes('meeting notes'));
    assert.match(srv.output, /"action":"junk".*"prob":(1|0\.9\d*),"words":\["[a-z ]+:0\.9\d+".*"junk verdict"/);

    // Moving a message into Junk marks it $Junk and trains it; moving one out marks it $NotJunk.
    await c.mailboxOpen('INBOX');
    const [uid] = (await c.search({ subject: 'meeting notes' }, { uid: true })) || [];
    await c.messageMove(String(uid), 'Junk', { uid: true });
    await stats('bob');
    await c.mailboxOpen('Junk');
    let flags = [...((await c.fetchOne('*', { flags: true })) || { flags: new Set<string>() }).flags!];
    assert.ok(flags.includes('$Junk'), flags.join(' '));
    assert.deepEqual(await stats('bob'), { nham: 8, nspam: 9, backlog: 0 });
    await c.messageMove('*', 'INBOX');
    await stats('bob');
    await c.mailboxOpen('INBOX');
    flags = [...((await c.fetchOne('*', { flags: true })) || { flags: new Set<string>() }).flags!];
    assert.ok(flags.includes('$NotJunk') && !flags.includes('$Junk'), flags.join(' '));
    assert.deepEqual(await stats('bob'), { nham: 9, nspam: 8, backlog: 0 });

    // Removing the flag untrains; expunging untrains too.
    const trainedHam = (await c.search({ keyword: '$NotJunk' }, { uid: true })) || [];
    await c.messageFlagsRemove(String(trainedHam[0]), ['$NotJunk'], { uid: true });
    assert.deepEqual(await stats('bob'), { nham: 8, nspam: 8, backlog: 0 });
    await c.messageDelete(String(trainedHam[1]), { uid: true });
    assert.deepEqual(await stats('bob'), { nham: 7, nspam: 8, backlog: 0 });
  } finally {
    await c.logout();
  }
});

async function carolTrained(c: ImapFlow): Promise<void> {
  const st = await stats('carol');
  if (st.nham >= 6) return;
  await train(c, Array.from({ length: 6 }, (_, i) => ham(`team${i}@work.example`, 'carol@example.test', 'status report')), '$NotJunk');
  await train(c, Array.from({ length: 6 }, (_, i) => spam(`deals${i}@spam.example`, 'carol@example.test', 'claim your prize')), '$Junk');
  assert.deepEqual(await stats('carol'), { nham: 6, nspam: 6, backlog: 0 });
}

test('a known correspondent gets through with spammy words', async () => {
  const c = await imap('carol@example.test', passwords.carol);
  try {
    await carolTrained(c);
    // Carol writes to a friend (submission; the queue is paused, the recipient is recorded).
    const sub = await Raw.connect(srv.ports.submission);
    assert.equal((await sub.reply()).code, 220);
    await sub.cmd('EHLO client.example');
    assert.equal((await sub.cmd('STARTTLS')).code, 220);
    await sub.startTLS(srv.certPEM);
    await sub.cmd('EHLO client.example');
    assert.equal((await sub.cmd('AUTH PLAIN ' + plainAuth('carol@example.test', passwords.carol))).code, 235);
    assert.equal((await sendData(sub, 'carol@example.test', ['friend@friend.example'], ham('carol@example.test', 'friend@friend.example', 'hello'))).code, 250);
    sub.close();

    const r = await deliver(IP.friend, 'friend@friend.example', 'carol@example.test', spam('friend@friend.example', 'carol@example.test', 'won the lottery, really'));
    assert.equal(r.code, 250, r.text);
    assert.ok(r.ms < 1500, `known correspondents are not delayed (${r.ms} ms)`);
    assert.ok((await subjects(c, 'INBOX')).includes('won the lottery, really'));
    assert.match(srv.output, /"action":"accept".*"reputation":"msgtofull","conclusive":true.*"junk verdict"/);
  } finally {
    await c.logout();
  }
});

test('a DNSBL listing refuses mail from the listed IP only', async () => {
  const r = await deliver(IP.listed, 'someone@elsewhere.example', 'jane@example.test', ham('someone@elsewhere.example', 'jane@example.test', 'from a listed ip'));
  assert.equal(r.code, 451, r.text);
  assert.match(r.text, /^4\.3\.0 /);
  assert.match(srv.output, /"action":"reject","reason":"dns-blocklisted bl\.test".*"junk verdict"/);
  const ok = await deliver(IP.clean, 'someone@elsewhere.example', 'jane@example.test', ham('someone@elsewhere.example', 'jane@example.test', 'from a clean ip'));
  assert.equal(ok.code, 250, ok.text);

  const check = await srv.cli(['dnsbl', 'check', 'bl.test', IP.listed]);
  assert.equal(check.stdout, 'status: fail\nexplanation: listed for testing\n', check.stderr);
  assert.equal((await srv.cli(['dnsbl', 'check', 'bl.test', IP.clean])).stdout, 'status: pass\n');
  const health = await srv.cli(['dnsbl', 'checkhealth', 'bl.test']);
  assert.deepEqual([health.code, health.stdout], [0, 'healthy\n']);
  const bad = await srv.cli(['dnsbl', 'checkhealth', 'nothing.test']);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /^unhealthy: 127\.0\.0\.2 should be listed/);
});

test('a sender without reputation and spammy content is delayed, refused and kept in Rejects until expiry', async () => {
  const c = await imap('carol@example.test', passwords.carol);
  try {
    await carolTrained(c);
    const id = '<refused.1@stranger.example>';
    const r = await deliver(IP.stranger, 'stranger@stranger.example', 'carol@example.test', spam('stranger@stranger.example', 'carol@example.test', 'act now', id));
    assert.equal(r.code, 451, r.text);
    assert.match(r.text, /^4\.3\.0 /);
    assert.ok(r.ms >= 1900, `first-time sender delayed by the configured 2 s (${r.ms} ms)`);
    assert.deepEqual(await subjects(c, 'Rejects'), ['act now']);
    assert.ok(!(await subjects(c, 'INBOX')).includes('act now'));

    // The same message again: one copy.
    assert.equal((await deliver(IP.stranger, 'stranger@stranger.example', 'carol@example.test', spam('stranger@stranger.example', 'carol@example.test', 'act now', id))).code, 451);
    assert.deepEqual(await subjects(c, 'Rejects'), ['act now']);

    // A non-spammy message from the same network is answered slowly after the refusal.
    const later = await deliver(IP.stranger, 'other@stranger.example', 'carol@example.test', ham('other@stranger.example', 'carol@example.test', 'about the agenda'));
    assert.equal(later.code, 250, later.text);
    assert.ok(later.ms >= 2900, `slow after a refusal (${later.ms} ms)`);

    const second = await deliver(IP.stranger, 'stranger2@stranger.example', 'carol@example.test', spam('stranger2@stranger.example', 'carol@example.test', 'last chance'));
    assert.equal(second.code, 451);
    assert.deepEqual((await subjects(c, 'Rejects')).sort(), ['act now', 'last chance']);

    // Accepted later (the sender became a correspondent): its refused copy goes.
    const sub = await Raw.connect(srv.ports.submission);
    await sub.reply();
    await sub.cmd('EHLO client.example');
    await sub.cmd('STARTTLS');
    await sub.startTLS(srv.certPEM);
    await sub.cmd('EHLO client.example');
    await sub.cmd('AUTH PLAIN ' + plainAuth('carol@example.test', passwords.carol));
    assert.equal((await sendData(sub, 'carol@example.test', ['stranger@stranger.example'], ham('carol@example.test', 'stranger@stranger.example', 'who are you'))).code, 250);
    sub.close();
    assert.equal((await deliver(IP.stranger, 'stranger@stranger.example', 'carol@example.test', spam('stranger@stranger.example', 'carol@example.test', 'act now', id))).code, 250);
    assert.deepEqual(await subjects(c, 'Rejects'), ['last chance']);

    // After the retention time (14 days) the copy is removed by itself.
    await srv.advanceClock(13 * 86400_000);
    await new Promise((res) => setTimeout(res, 300));
    assert.deepEqual(await subjects(c, 'Rejects'), ['last chance']);
    await srv.advanceClock(2 * 86400_000);
    for (let i = 0; i < 50 && (await subjects(c, 'Rejects')).length; i++) await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(await subjects(c, 'Rejects'), []);
  } finally {
    await c.logout();
  }
});

test('retrain rebuilds the filter from the flags and mailboxes, as trained incrementally', async () => {
  // The clock moved past KeptDays: what was kept in Inbox counts as not junk, what the filter
  // delivered to Junk and stayed there as junk (learned by the periodic scan).
  const incremental = await stats('bob');
  const r = await srv.cli(['retrain', 'bob']);
  assert.equal(r.code, 0, r.stderr);
  const m = /^retrained bob: (\d+) non-junk and (\d+) junk messages\n$/.exec(r.stdout);
  assert.ok(m, r.stdout);
  const rebuilt = await stats('bob');
  assert.deepEqual([rebuilt.nham, rebuilt.nspam], [Number(m[1]), Number(m[2])]);
  assert.deepEqual(rebuilt, incremental);
  // 8 flagged $Junk, and "exclusive offer" kept in Junk.
  assert.equal(rebuilt.nspam, 9);
  // 8 flagged $NotJunk, one of them deleted, one unflagged but kept, plus "meeting notes" moved out of Junk.
  assert.equal(rebuilt.nham, 8);
});
