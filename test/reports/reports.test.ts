// Reports end to end: DMARC and TLS reports shaped like Google's, Microsoft's and Yahoo's sent by
// SMTP to the configured report addresses are verified, stored and listed; unverified ones are
// delivered but not stored; DMARC evaluations of incoming mail become an aggregate report, sent
// DKIM-signed when its interval has ended.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { startServe, type TestServer } from '../helpers/server.js';
import { smtpSession, sendData, fetchMailbox } from '../smtpserver/helpers.js';
import { makeZip } from '../dmarcrpt/ziptool.js';
import { genEd25519, txtRecord } from '../../src/dkim/keys.js';
import { sign } from '../../src/dkim/sign.js';
import { verify as dkimVerify } from '../../src/dkim/verify.js';
import { StubResolver } from '../../src/dns/stub.js';
import { parseMessageReport } from '../../src/dmarcrpt/message.js';
import { composeReportMessage } from '../../src/tlsrpt/message.js';
import { parseReport as parseTLSReport } from '../../src/tlsrpt/report.js';

const fixture = (dir: string, name: string) => readFileSync(new URL(`../fixtures/${dir}/${name}`, import.meta.url));
/** The fixtures are about example.org; ours is example.test. */
const aboutUs = (b: Buffer) => Buffer.from(b.toString('utf8').replaceAll('example.org', 'example.test'));

const b64 = (b: Buffer) => b.toString('base64').replace(/.{76}/g, '$&\r\n');

function dmarcMessage(style: 'google' | 'microsoft' | 'yahoo', from: string, id: string): Buffer {
  const xml = aboutUs(fixture('dmarcrpt', `${style}.xml`));
  const head = [`From: ${from}`, 'To: dmarcreports@example.test', `Subject: Report Domain: example.test Submitter: ${style} Report-ID: ${id}`, 'Date: Tue, 4 Jun 2024 03:12:45 +0000', `Message-ID: <${id}@${from.split('@')[1]}>`, 'MIME-Version: 1.0'];
  if (style === 'google') {
    // A single part: the zip file is the body.
    const name = `google.com!example.test!1717372800!1717459199.zip`;
    const zip = makeZip([{ name: name.replace(/\.zip$/, '.xml'), data: xml }]);
    return Buffer.from([...head, `Content-Type: application/zip; name="${name}"`, `Content-Disposition: attachment; filename="${name}"`, 'Content-Transfer-Encoding: base64', '', b64(zip), ''].join('\r\n'));
  }
  const b = '_000_boundary_';
  const name = style === 'microsoft' ? 'enterprise.protection.outlook.com!example.test!1717372800!1717459200.xml.gz' : 'yahoo.com!example.test!1717372800!1717459199.xml.gz';
  return Buffer.from(
    [
      ...head,
      `Content-Type: multipart/mixed; boundary="${b}"`,
      '',
      `--${b}`,
      'Content-Type: text/plain; charset="us-ascii"',
      '',
      'This is a DMARC aggregate report.',
      `--${b}`,
      `Content-Type: application/gzip; name="${name}"`,
      `Content-Disposition: attachment; filename="${name}"`,
      'Content-Transfer-Encoding: base64',
      '',
      b64(gzipSync(xml)),
      `--${b}--`,
      '',
    ].join('\r\n'),
  );
}

let srv: TestServer;
const reporterKey = await genEd25519();

before(async () => {
  srv = await startServe({
    dkim: true,
    domains: '    DMARC:\n      Localpart: dmarcreports\n      Account: jane\n    TLSRPT:\n      Localpart: tlsreports\n      Account: jane\n      Mailbox: TLS Reports\n',
  });
  const dns = srv.dns;
  // Reporting organizations whose mail passes DMARC: SPF for our loopback client, and a DKIM key.
  for (const d of ['reports.example', 'tls.reports.example', 'sender.example']) dns.set(d, 'TXT', ['v=spf1 ip4:127.0.0.1 -all']);
  dns.set('_dmarc.reports.example', 'TXT', ['v=DMARC1; p=reject']);
  dns.set('rpt._domainkey.reports.example', 'TXT', [txtRecord(reporterKey)]);
  // A sender that asks for aggregate reports, at an address in its own domain.
  dns.set('_dmarc.sender.example', 'TXT', ['v=DMARC1; p=none; rua=mailto:dmarc-rua@sender.example']);
  // Our own DKIM keys, for checking the signature of our outgoing report.
  for (const [sel, rec] of Object.entries(srv.dkim)) dns.set(`${sel}._domainkey.example.test`, 'TXT', [rec]);
});

after(async () => {
  await srv?.close();
});

async function deliver(from: string, to: string, msg: Buffer): Promise<void> {
  const c = await smtpSession(srv.ports.smtp);
  const r = await sendData(c, from, [to], msg);
  assert.equal(r.code, 250, r.text);
  await c.cmd('QUIT');
  c.close();
}

test('DMARC reports in Google, Microsoft and Yahoo style are stored once and listed; a failing sender is not believed', async () => {
  for (const [i, style] of (['google', 'microsoft', 'yahoo'] as const).entries()) {
    await deliver(`noreply-${style}@reports.example`, 'dmarcreports@example.test', dmarcMessage(style, `noreply-${style}@reports.example`, `id-${i}`));
  }
  // The same report again (a retry after a temporary error): kept once.
  await deliver('noreply-google@reports.example', 'dmarcreports@example.test', dmarcMessage('google', 'noreply-google@reports.example', 'id-0'));
  // From a domain without SPF or DMARC pass: delivered, but not stored.
  await deliver('forger@unverified.example', 'dmarcreports+x@example.test', dmarcMessage('yahoo', 'forger@unverified.example', 'forged'));

  const list = await srv.cli(['dmarc', 'reports']);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.equal(lines.length, 3, list.stdout);
  for (const org of ['google.com', 'Enterprise Outlook', 'Yahoo']) assert.ok(lines.some((l) => l.includes(org)), `${org} in\n${list.stdout}`);
  assert.ok(lines.every((l) => / example\.test from /.test(l)));
  assert.ok(!list.stdout.includes('unverified.example'));
  // The full report, as JSON.
  const id = lines.find((l) => l.includes('google.com'))!.split(' ')[0]!;
  const one = await srv.cli(['dmarc', 'reports', '--id', id]);
  const stored = JSON.parse(one.stdout) as { domain: string; report: { records: unknown[]; policyPublished: { domain: string } } };
  assert.equal(stored.report.policyPublished.domain, 'example.test');
  assert.ok(stored.report.records.length > 0);
  // All five were delivered to the report mailbox.
  const box = await fetchMailbox(srv, 'DMARC');
  assert.equal(box.length, 5);
});

test('TLS reports with a DKIM signature of the reporting domain are stored; unsigned ones are not', async () => {
  for (const [i, name] of ['google-style.json', 'microsoft-style.json'].entries()) {
    const report = parseTLSReport(aboutUs(fixture('tlsrpt', name)));
    const msg = composeReportMessage({ from: 'tls-reports@tls.reports.example', to: 'tlsreports@example.test', submitter: 'tls.reports.example', report, messageId: `tls-${i}@tls.reports.example` });
    const sig = await sign(msg, { domain: 'reports.example', selector: 'rpt', privateKey: reporterKey });
    await deliver('tls-reports@tls.reports.example', 'tlsreports@example.test', Buffer.concat([Buffer.from(sig), msg]));
  }
  const unsigned = composeReportMessage({ from: 'x@tls.reports.example', to: 'tlsreports@example.test', submitter: 'x', report: parseTLSReport(aboutUs(fixture('tlsrpt', 'no-policy-found.json'))) });
  await deliver('x@tls.reports.example', 'tlsreports@example.test', unsigned);

  const list = await srv.cli(['tlsrpt', 'reports', 'example.test']);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.equal(lines.length, 2, list.stdout);
  assert.ok(lines.some((l) => l.includes('Google Inc.') && /482 successful, 3 failed/.test(l)), list.stdout);
  assert.equal((await fetchMailbox(srv, 'TLS Reports')).length, 3);
});

test('DMARC evaluations of incoming mail become a DKIM-signed aggregate report after the interval', async () => {
  const msg = (n: number) => Buffer.from(`From: Sam <sam@sender.example>\r\nTo: jane@example.test\r\nSubject: hello ${n}\r\nMessage-ID: <${n}@sender.example>\r\nDate: Tue, 4 Jun 2024 03:12:45 +0000\r\n\r\nHi.\r\n`);
  for (const n of [1, 2, 3]) await deliver('sam@sender.example', 'jane@example.test', msg(n));
  // Reports are not sent before the day (the default interval) has ended.
  await srv.ctl('reports dmarc send');
  assert.equal(((await srv.ctl('queue list')) as unknown[]).length, 0);
  await srv.advanceClock(25 * 3600_000);
  let queued: { id: number; recipient: string; sender: string }[] = [];
  for (let i = 0; i < 100 && queued.length === 0; i++) {
    queued = (await srv.ctl('queue list')) as typeof queued;
    if (!queued.length) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(queued.length, 1, srv.output.slice(-3000));
  assert.equal(queued[0]!.recipient, 'dmarc-rua@sender.example');
  assert.equal(queued[0]!.sender, '');
  const raw = Buffer.from((await srv.ctl('queue dump', { id: queued[0]!.id })) as string, 'base64');
  // Signed by example.test, the parent of the host name the report comes from.
  const results = await dkimVerify(raw, new StubResolver({ servers: [srv.dns.address] }));
  assert.ok(results.length >= 1 && results.every((r) => r.status === 'pass' && r.domain === 'example.test'), JSON.stringify(results));
  assert.match(raw.toString(), /^From: postmaster@mail\.example\.test\r$/m);
  assert.match(raw.toString(), /Subject: Report Domain: sender\.example Submitter: mail\.example\.test/);
  const f = parseMessageReport(raw);
  assert.equal(f.policyPublished.domain, 'sender.example');
  assert.equal(f.policyPublished.p, 'none');
  assert.equal(f.reportMetadata.orgName, 'mail.example.test');
  assert.equal(f.records.length, 1);
  const rec = f.records[0]!;
  assert.equal(rec.row.count, 3);
  assert.equal(rec.row.sourceIP, '127.0.0.1');
  assert.equal(rec.row.policyEvaluated.spf, 'pass');
  assert.equal(rec.identifiers.headerFrom, 'sender.example');
  assert.ok(rec.authResults.spf.some((s) => s.scope === 'mfrom' && s.result === 'pass' && s.domain === 'sender.example'));
  // The day runs from 00:00 UTC for 24 hours.
  assert.equal(f.reportMetadata.dateRange.begin % 86400, 0);
  assert.equal(f.reportMetadata.dateRange.end - f.reportMetadata.dateRange.begin, 86399);
  // Sent evaluations are gone: nothing more is queued.
  await srv.ctl('reports dmarc send');
  assert.equal(((await srv.ctl('queue list')) as unknown[]).length, 1);
});
