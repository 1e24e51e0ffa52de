// SPF, DKIM and DMARC on incoming mail (port 25), end to end: records on the server's test DNS
// server, messages DKIM-signed here, the Authentication-Results field read back over IMAP, and
// the verdicts compared with mailauth's authenticate() on the same message, connection and zone.
//
// Differences with mailauth that cases below rely on, as documented in test/dkim/mailauth.test.ts
// and test/dmarc/oracle.test.ts:
// - body hash mismatch: mailauth dkim=neutral, Postern dkim=fail. RFC 6376 6.1.3 makes it a failed
//   verification (PERMFAIL "body hash did not verify"), which RFC 8601 2.7.1 reports as fail.
// - a temporary DNS error for the only aligned signature's key: mailauth dmarc=fail, Postern
//   dmarc=temperror. RFC 7489 11.2: temperror when a later attempt might produce a final result.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate as mailauth } from 'mailauth';
import { genEd25519, genRSA, txtRecord, txtStrings } from '../../src/dkim/keys.js';
import { sign } from '../../src/dkim/sign.js';
import { startServe, type TestServer } from '../helpers/server.js';
import { authResults, editDomains, findBySubject, headerValues, smtpSession } from './helpers.js';

type Entry = { TXT?: string[]; A?: string[]; PTR?: string[] } | 'SERVFAIL';
type Zone = Record<string, Entry>;

let ED = '';
let RSA = '';
const zone: Zone = {};
let srv: TestServer;

const SPF_LOCAL = 'v=spf1 ip4:127.0.0.1 -all';

function baseZone(): Zone {
  return {
    // iprev: 127.0.0.1 has a PTR whose name resolves back to it.
    '1.0.0.127.in-addr.arpa': { PTR: ['client.example'] },
    'client.example': { A: ['127.0.0.1'] },
    'aligned.example': { TXT: [SPF_LOCAL] },
    '_dmarc.aligned.example': { TXT: ['v=DMARC1; p=reject'] },
    'ed._domainkey.aligned.example': { TXT: [txtRecord(ED)] },
    'rsa._domainkey.aligned.example': { TXT: [txtRecord(RSA)] },
    'spfonly.example': { TXT: [SPF_LOCAL] },
    '_dmarc.spfonly.example': { TXT: ['v=DMARC1; p=reject'] },
    'dkimonly.example': { TXT: ['v=spf1 -all'] },
    '_dmarc.dkimonly.example': { TXT: ['v=DMARC1; p=reject'] },
    'ed._domainkey.dkimonly.example': { TXT: [txtRecord(ED)] },
    'softfail.example': { TXT: ['v=spf1 ~all'] },
    '_dmarc.softfail.example': { TXT: ['v=DMARC1; p=none'] },
    'ed._domainkey.softfail.example': { TXT: [txtRecord(ED)] },
    'helo.example': { TXT: [SPF_LOCAL] },
    '_dmarc.helo.example': { TXT: ['v=DMARC1; p=reject'] },
    'permerror.example': { TXT: ['v=spf1 ip4:127.0.0.1 bogus -all'] },
    '_dmarc.permerror.example': { TXT: ['v=DMARC1; p=none'] },
    // The sender's provider passes SPF and DKIM for itself, which does not align with the author.
    'esp.example': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    'ed._domainkey.esp.example': { TXT: [txtRecord(ED)] },
    '_dmarc.strict.example': { TXT: ['v=DMARC1; p=reject'] },
    'quarantine.example': { TXT: ['v=spf1 ?all'] },
    '_dmarc.quarantine.example': { TXT: ['v=DMARC1; p=quarantine'] },
    // The key lookup fails temporarily.
    'flaky.example': { TXT: ['v=spf1 -all'] },
    '_dmarc.flaky.example': { TXT: ['v=DMARC1; p=reject'] },
    'ed._domainkey.flaky.example': 'SERVFAIL',
  };
}

before(async () => {
  [ED, RSA] = await Promise.all([genEd25519(), genRSA(2048)]);
  Object.assign(zone, baseZone());
  srv = await startServe({ domains: '  lenient.test:\n    AcceptDMARCRejects: true\n' });
  for (const [name, e] of Object.entries(zone)) {
    if (e === 'SERVFAIL') {
      srv.dns.set(name, 'A', ['192.0.2.1']);
      srv.dns.behave(name, 'servfail');
      continue;
    }
    if (e.TXT) srv.dns.set(name, 'TXT', e.TXT.map(txtStrings));
    if (e.A) srv.dns.set(name, 'A', e.A);
    if (e.PTR) srv.dns.set(name, 'PTR', e.PTR);
  }
  await editDomains(srv, '      jane@example.test: {}', '      jane@lenient.test: {}\n');
});
after(async () => {
  await srv?.close();
});

/** The zone as node:dns's resolve() answers, for mailauth. */
async function nodeResolve(name: string, type: string): Promise<string[] | string[][]> {
  const fail = (code: string) => Object.assign(new Error(`${type} ${name}: ${code}`), { code });
  const e = zone[name.toLowerCase().replace(/\.$/, '')];
  if (e === undefined) throw fail('ENOTFOUND');
  if (e === 'SERVFAIL') throw fail('ESERVFAIL');
  if (type === 'TXT' && e.TXT) return e.TXT.map(txtStrings);
  if (type === 'A' && e.A) return e.A;
  if (type === 'PTR' && e.PTR) return e.PTR;
  throw fail('ENODATA');
}

interface Verdicts {
  spf?: string;
  dkim: string[];
  dmarc?: string;
}

interface Case {
  name: string;
  from: string;
  /** MAIL FROM; "" for the null sender. */
  mailFrom: string;
  helo?: string;
  /** [domain, selector] pairs that sign. */
  signers?: [string, 'ed' | 'rsa'][];
  /** Change the body after signing. */
  tamper?: boolean;
  rcpt?: string;
  expect: Verdicts;
  /** SMTP reply code after the data; default 250. */
  reply?: number;
  mailbox?: string;
  /** mailauth's verdicts where they differ, with the reason (see the top of the file). */
  mailauth?: Partial<Verdicts>;
}

const cases: Case[] = [
  {
    name: 'aligned SPF and two aligned signatures (Ed25519, RSA): all pass',
    from: 'alice@aligned.example',
    mailFrom: 'bounce@aligned.example',
    signers: [['aligned.example', 'ed'], ['aligned.example', 'rsa']],
    expect: { spf: 'pass', dkim: ['pass', 'pass'], dmarc: 'pass' },
  },
  { name: 'aligned SPF pass, unsigned', from: 'bob@spfonly.example', mailFrom: 'bob@spfonly.example', expect: { spf: 'pass', dkim: ['none'], dmarc: 'pass' } },
  {
    name: 'SPF fail, aligned DKIM pass',
    from: 'carol@dkimonly.example',
    mailFrom: 'carol@dkimonly.example',
    signers: [['dkimonly.example', 'ed']],
    expect: { spf: 'fail', dkim: ['pass'], dmarc: 'pass' },
  },
  {
    name: 'SPF softfail and a broken signature under p=none: delivered with dmarc=fail',
    from: 'dave@softfail.example',
    mailFrom: 'dave@softfail.example',
    signers: [['softfail.example', 'ed']],
    tamper: true,
    expect: { spf: 'softfail', dkim: ['fail'], dmarc: 'fail' },
    mailauth: { dkim: ['neutral'] },
  },
  { name: 'no records at all', from: 'erin@nothing.example', mailFrom: 'erin@nothing.example', expect: { spf: 'none', dkim: ['none'], dmarc: 'none' } },
  { name: 'null sender: SPF of the HELO name aligns', from: 'mailer-daemon@helo.example', mailFrom: '', helo: 'helo.example', expect: { spf: 'pass', dkim: ['none'], dmarc: 'pass' } },
  { name: 'SPF permerror under p=none', from: 'frank@permerror.example', mailFrom: 'frank@permerror.example', expect: { spf: 'permerror', dkim: ['none'], dmarc: 'fail' } },
  {
    name: 'SPF and DKIM pass for the provider only, p=reject: refused',
    from: 'ceo@strict.example',
    mailFrom: 'bounce@esp.example',
    signers: [['esp.example', 'ed']],
    expect: { spf: 'pass', dkim: ['pass'], dmarc: 'fail' },
    reply: 550,
  },
  {
    name: 'the same for a domain with AcceptDMARCRejects: delivered to Junk',
    from: 'ceo@strict.example',
    mailFrom: 'bounce@esp.example',
    signers: [['esp.example', 'ed']],
    rcpt: 'jane@lenient.test',
    expect: { spf: 'pass', dkim: ['pass'], dmarc: 'fail' },
    mailbox: 'Junk',
  },
  // Like mox, a failing message under p=quarantine is refused unless configured otherwise.
  { name: 'SPF neutral under p=quarantine: refused', from: 'gina@quarantine.example', mailFrom: 'gina@quarantine.example', expect: { spf: 'neutral', dkim: ['none'], dmarc: 'fail' }, reply: 550 },
];

async function message(c: Case, subject: string): Promise<Buffer> {
  const msg = [`From: ${c.from}`, 'To: jane@example.test', `Subject: ${subject}`, 'Date: Mon, 3 Jun 2024 10:00:00 +0200', `Message-ID: <${subject.replace(/\W/g, '')}@example.org>`, '', 'The quarterly numbers are attached.', ''].join('\r\n');
  const keys = { ed: ED, rsa: RSA };
  const signers = (c.signers ?? []).map(([domain, selector]) => ({ domain, selector, privateKey: keys[selector] }));
  const header = signers.length ? await sign(Buffer.from(msg), signers) : '';
  const out = header + msg;
  return Buffer.from(c.tamper ? out.replace('quarterly numbers are', 'new bank details are') : out);
}

async function theirs(c: Case, msg: Buffer): Promise<Verdicts> {
  const res = await mailauth(msg, {
    ip: '127.0.0.1',
    helo: c.helo ?? 'client.example',
    sender: c.mailFrom || undefined,
    mta: 'mail.example.test',
    resolver: nodeResolve,
    disableArc: true,
    disableBimi: true,
  });
  const dkim = (res.dkim?.results ?? []).map((r: { status: { result: string } }) => r.status.result);
  return { spf: res.spf ? res.spf.status.result : undefined, dkim: dkim.length ? dkim : ['none'], dmarc: res.dmarc ? res.dmarc.status.result : undefined };
}

/** Postern's verdicts from its "message authentication" log line for a message it refused. */
function fromLog(before: number): Verdicts {
  const line = srv.output.slice(before).split('\n').find((l) => l.includes('"message authentication"'));
  assert.ok(line, 'authentication logged');
  const j = JSON.parse(line) as { spf: string; dkim: string[]; dmarc: string };
  return { spf: j.spf, dkim: j.dkim.length ? j.dkim.map((d) => d.split(':')[0]!) : ['none'], dmarc: j.dmarc.split(':')[0] };
}

async function send(c: Case, msg: Buffer): Promise<{ code: number; text: string }> {
  const s = await smtpSession(srv.ports.smtp, c.helo ?? 'client.example');
  try {
    assert.equal((await s.cmd(`MAIL FROM:<${c.mailFrom}>`)).code, 250);
    assert.equal((await s.cmd(`RCPT TO:<${c.rcpt ?? 'jane@example.test'}>`)).code, 250);
    assert.equal((await s.cmd('DATA')).code, 354);
    s.write(Buffer.concat([msg, Buffer.from('.\r\n')]));
    return await s.reply();
  } finally {
    s.close();
  }
}

const sorted = (l: string[]) => [...l].sort();

for (const [i, c] of cases.entries()) {
  test(`authentication: ${c.name}`, async () => {
    const subject = `auth case ${i}`;
    const msg = await message(c, subject);
    const logStart = srv.output.length;
    const [reply, other] = await Promise.all([send(c, msg), theirs(c, msg)]);
    const expectReply = c.reply ?? 250;
    assert.equal(reply.code, expectReply, reply.text);
    let ours: Verdicts;
    if (expectReply === 250) {
      const [stored] = await findBySubject(srv, subject, c.mailbox ?? 'INBOX');
      assert.ok(stored, `delivered to ${c.mailbox ?? 'INBOX'}`);
      const ar = authResults(stored);
      assert.equal(ar.authserv, 'mail.example.test');
      assert.equal(ar.iprev, 'pass', ar.text);
      ours = { spf: ar.spf, dkim: ar.dkim, dmarc: ar.dmarc };
      // Received-SPF agrees with Authentication-Results.
      assert.match(headerValues(stored, 'received-spf')[0] ?? '', new RegExp(`^${ar.spf} `));
      // The added fields come before the message as sent, which is intact.
      assert.ok(stored.subarray(stored.length - msg.length).equals(msg));
    } else {
      assert.match(reply.text, /^5\.7\.1 DMARC policy of [a-z.]+ says to reject/);
      ours = fromLog(logStart);
    }
    assert.deepEqual({ ...ours, dkim: sorted(ours.dkim) }, { ...c.expect, dkim: sorted(c.expect.dkim) }, 'Postern');
    const want = { ...c.expect, ...c.mailauth };
    assert.deepEqual({ ...other, dkim: sorted(other.dkim) }, { ...want, dkim: sorted(want.dkim) }, 'mailauth');
  });
}

test('DMARC temperror (aligned key lookup fails temporarily) gets a temporary refusal', async () => {
  const c: Case = { name: 'temperror', from: 'hank@flaky.example', mailFrom: 'hank@flaky.example', signers: [['flaky.example', 'ed']], expect: { spf: 'fail', dkim: ['temperror'], dmarc: 'temperror' } };
  const msg = await message(c, 'auth temperror');
  const logStart = srv.output.length;
  const [reply, other] = await Promise.all([send(c, msg), theirs(c, msg)]);
  // mailauth says fail where Postern says temperror (see the top of the file).
  assert.deepEqual(other, { spf: 'fail', dkim: ['temperror'], dmarc: 'fail' });
  assert.deepEqual(fromLog(logStart), c.expect);
  // RFC 7489 6.6.3 leaves it to the receiver; Postern's dmarc.delivery() asks for a temporary failure.
  assert.equal(reply.code, 451, reply.text);
  assert.deepEqual(await findBySubject(srv, 'auth temperror'), []);
});

// RFC 8601 5: an MTA must delete (or obscure) Authentication-Results fields that carry its own
// authserv-id but did not come from a trusted host, before adding its own; fields of other
// authserv-ids stay. Otherwise a forged "dmarc=pass" from mail.example.test reaches the user.
test('a forged Authentication-Results field with our authserv-id is removed', async () => {
  const forged = 'Authentication-Results: mail.example.test; spf=pass smtp.mailfrom=bank.example;\r\n\tdkim=pass header.d=bank.example; dmarc=pass header.from=bank.example\r\n';
  const other = 'Authentication-Results: mx.other.example; spf=pass smtp.mailfrom=nothing.example\r\n';
  const msg = Buffer.from(`${forged}${other}From: support@nothing.example\r\nTo: jane@example.test\r\nSubject: forged results\r\n\r\nPlease log in.\r\n`);
  const c: Case = { name: 'forged', from: 'support@nothing.example', mailFrom: 'support@nothing.example', expect: { dkim: [] } };
  const reply = await send(c, msg);
  assert.equal(reply.code, 250, reply.text);
  const [stored] = await findBySubject(srv, 'forged results');
  assert.ok(stored);
  const fields = headerValues(stored, 'authentication-results');
  assert.equal(authResults(stored).dmarc, 'none');
  assert.deepEqual(
    fields.map((f) => f.split(';')[0]),
    ['mail.example.test', 'mx.other.example'],
    JSON.stringify(fields),
  );
});

// RFC 5321 6.1: with its 250 reply to the data, the server takes responsibility for delivering
// the message to every accepted recipient (or reporting failure). With one DATA reply for all
// recipients, a DMARC reject that only some recipient domains waive leaves two consistent
// choices: refuse the whole message, or deliver it to all; not a 250 that drops some of them.
test('DMARC reject waived for one recipient domain only: no recipient is silently dropped', async () => {
  await editDomains(srv, 'Accounts:', '  bob:\n    Domain: example.test\n    Destinations:\n      bob@example.test: {}\n');
  const set = await srv.cli(['setaccountpassword', 'bob'], 'bobs-pass\n');
  assert.equal(set.code, 0, set.stderr);
  const c: Case = { name: 'mixed', from: 'ceo@strict.example', mailFrom: 'bounce@esp.example', signers: [['esp.example', 'ed']], expect: { dkim: [] } };
  const msg = await message(c, 'auth mixed recipients');
  const s = await smtpSession(srv.ports.smtp);
  assert.equal((await s.cmd(`MAIL FROM:<${c.mailFrom}>`)).code, 250);
  assert.equal((await s.cmd('RCPT TO:<jane@lenient.test>')).code, 250);
  assert.equal((await s.cmd('RCPT TO:<bob@example.test>')).code, 250);
  assert.equal((await s.cmd('DATA')).code, 354);
  s.write(Buffer.concat([msg, Buffer.from('.\r\n')]));
  const reply = await s.reply();
  s.close();
  const bob = { user: 'bob@example.test', pass: 'bobs-pass' };
  const bobs = [...(await findBySubject(srv, 'auth mixed recipients', 'INBOX', bob)), ...(await findBySubject(srv, 'auth mixed recipients', 'Junk', bob))];
  const janes = await findBySubject(srv, 'auth mixed recipients', 'Junk');
  if (reply.code === 250) {
    assert.equal(janes.length, 1, 'jane (AcceptDMARCRejects) has it in Junk');
    assert.equal(bobs.length, 1, 'bob was accepted with 250 and must get the message');
  } else {
    assert.equal(reply.code, 550, reply.text);
    assert.deepEqual([janes.length, bobs.length], [0, 0]);
  }
});
