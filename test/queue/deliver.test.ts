// Outbound delivery from one Postern to another and to scripted servers on loopback: success
// with a DKIM signature the receiver verifies, retries after temporary failures, DSNs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, type TestServer } from '../helpers/server.js';
import { startFakeSMTP, type FakeServer } from '../helpers/smtpfake.js';
import { startReceiver, submit, waitFor, bobInbox, janeInbox, waitForSubject, queued, header, mx } from './helpers.js';
import { authResults } from '../smtpserver/helpers.js';

let receiver: TestServer;
let sender: TestServer;
const fakes: FakeServer[] = [];

before(async () => {
  receiver = await startReceiver();
  sender = await startServe({ dkim: true, queue: `SMTPPort: ${receiver.ports.smtp}` });
  mx(sender, 'remote.test', 'mx.remote.test');
  // The receiver verifies the sender's DKIM signatures with its own DNS.
  for (const [sel, txt] of Object.entries(sender.dkim)) receiver.dns.set(`${sel}._domainkey.example.test`, 'TXT', [txt]);
});

after(async () => {
  for (const f of fakes) await f.close();
  await sender?.close();
  await receiver?.close();
});

/** A scripted server on another loopback address, at the port the sender delivers to. */
async function fake(ip: string, domain: string, o: Omit<Parameters<typeof startFakeSMTP>[0], 'host' | 'port'>): Promise<FakeServer> {
  const f = await startFakeSMTP({ host: ip, port: receiver.ports.smtp, ...o });
  fakes.push(f);
  mx(sender, domain, `mx.${domain}`, ip);
  return f;
}

/** Moves the sender's clock past the next attempt of its queued messages and waits for the attempt. */
async function nextAttempt(to: string): Promise<void> {
  const before = (await queued(sender)).find((m) => m.recipient === to);
  assert.ok(before, `${to} not queued`);
  await sender.advanceClock(before.nextattempt - Date.now() + 1000);
  await waitFor(`attempt ${before.attempts + 1} for ${to}`, async () => {
    const m = (await queued(sender)).find((x) => x.recipient === to);
    return !m || m.attempts > before.attempts;
  });
}

test('a submitted message reaches the remote Postern, with a DKIM signature it verifies', async () => {
  await submit(sender, ['bob@remote.test'], 'plain delivery');
  const msg = await waitForSubject('message at bob', () => bobInbox(receiver), 'plain delivery');
  const ar = authResults(msg);
  assert.ok(ar.dkim.length >= 1 && ar.dkim.every((r) => r === 'pass'), ar.text);
  assert.match(msg.toString(), /Hello from the sender\./);
  await waitFor('queue empty', async () => (await queued(sender)).length === 0);
  const retired = (await sender.ctl('queue retired list')) as { recipient: string; success: number }[];
  assert.ok(retired.some((r) => r.recipient === 'bob@remote.test' && r.success === 1));
  // Nothing came back to the sender.
  assert.equal((await janeInbox(sender)).filter((m) => /mail deliver/.test(header(m, 'subject') ?? '')).length, 0);
  assert.ok((await sender.metric('postern_queue_deliveries_total', { result: 'delivered' })) >= 1);
  assert.ok((await sender.metric('postern_queue_tls_sessions_total', { policy: 'no-policy-found', result: 'success' })) >= 1);
});

test('NOTIFY=SUCCESS gives a "delivered" DSN in the sender\'s Inbox', async () => {
  await submit(sender, ['bob@remote.test'], 'notify success', { rcptParams: 'NOTIFY=SUCCESS,FAILURE' });
  await waitForSubject('message at bob', () => bobInbox(receiver), 'notify success');
  const dsn = await waitForSubject('delivered dsn', () => janeInbox(sender), 'mail delivered');
  const text = dsn.toString();
  assert.match(text, /Action: delivered/);
  assert.match(text, /Final-Recipient: rfc822;bob@remote\.test/);
  assert.match(text, /Subject: notify success/);
});

test('a 4xx reply is retried, and the message is delivered at a later attempt', async () => {
  let accept = false;
  const f = await fake('127.0.0.2', 'tempfail.test', { rcpt: () => (accept ? '250 2.1.5 ok' : '451 4.3.0 try again later') });
  await submit(sender, ['carol@tempfail.test'], 'retried');
  const q = await waitFor('first attempt', async () => (await queued(sender)).find((m) => m.recipient === 'carol@tempfail.test' && m.attempts === 1 && m.lasterror));
  assert.match(q.lasterror!, /try again later/);
  // About 7.5 minutes later.
  const wait = q.nextattempt - Date.now();
  assert.ok(wait > 7 * 60_000 && wait < 8 * 60_000 + 10_000, `next attempt in ${wait} ms`);
  assert.equal(f.received.length, 0);
  accept = true;
  await nextAttempt('carol@tempfail.test');
  await waitFor('delivered', () => f.received.length === 1);
  assert.deepEqual(f.received[0]!.rcpts, ['carol@tempfail.test']);
  assert.match(f.received[0]!.data.toString(), /Subject: retried/);
  assert.equal((await queued(sender)).filter((m) => m.recipient === 'carol@tempfail.test').length, 0);
});

test('a 5xx reply fails the message: a DSN with the remote reply lands in the sender\'s Inbox', async () => {
  await fake('127.0.0.3', 'reject.test', { rcpt: () => '550 5.1.1 no mailbox by that name here' });
  await submit(sender, ['dave@reject.test'], 'rejected');
  const dsn = (await waitForSubject('failure dsn', () => janeInbox(sender), 'mail delivery failed')).toString();
  assert.match(dsn, /Content-Type: multipart\/report; report-type=delivery-status/);
  assert.match(dsn, /550 5\.1\.1 no mailbox by that name here/);
  assert.match(dsn, /Final-Recipient: rfc822;dave@reject\.test/);
  assert.match(dsn, /Action: failed/);
  assert.match(dsn, /Status: 5\.1\.1/);
  assert.match(dsn, /Remote-MTA: dns; mx\.reject\.test/);
  assert.match(dsn, /Subject: rejected/);
  assert.match(dsn, /From: Mail Delivery Subsystem <postmaster@mail\.example\.test>/);
  assert.equal((await queued(sender)).filter((m) => m.recipient === 'dave@reject.test').length, 0);
});

test('recipients in one domain from one submission go in one transaction; 4xx and 5xx per recipient', async () => {
  const f = await fake('127.0.0.4', 'multi.test', { rcpt: (a) => (a.startsWith('gone') ? '550 5.1.1 gone' : '250 2.1.5 ok') });
  await submit(sender, ['a@multi.test', 'b@multi.test', 'gone@multi.test'], 'three');
  await waitFor('transaction', () => f.received.length === 1);
  assert.deepEqual(f.received[0]!.rcpts.sort(), ['a@multi.test', 'b@multi.test']);
  assert.equal(f.connections, 1);
  const dsn = await waitFor('dsn for one', async () => (await janeInbox(sender)).map(String).find((m) => m.includes('Final-Recipient: rfc822;gone@multi.test')));
  assert.match(dsn, /550 5\.1\.1 gone/);
  assert.ok(!dsn.includes('Final-Recipient: rfc822;a@multi.test'));
});

test('a null MX (RFC 7505) fails at once with a DSN', async () => {
  sender.dns.set('nullmx.test', 'MX', [{ preference: 0, exchange: '' }]);
  const before = (await janeInbox(sender)).length;
  await submit(sender, ['x@nullmx.test'], 'null mx');
  const dsn = await waitFor('null mx dsn', async () => (await janeInbox(sender)).slice(before).find((m) => m.toString().includes('x@nullmx.test')));
  assert.match(dsn.toString(), /Status: 5\.1\.10/);
});

test('a "delayed" DSN after the 5th failed attempt, a "failed" one after the last', async () => {
  const f = await fake('127.0.0.5', 'slow.test', { rcpt: () => '452 4.2.2 mailbox full' });
  const inbox = async () => (await janeInbox(sender)).filter((m) => m.toString().includes('erin@slow.test'));
  await submit(sender, ['erin@slow.test'], 'slowly');
  await waitFor('first attempt', async () => (await queued(sender)).find((m) => m.recipient === 'erin@slow.test' && m.attempts === 1 && m.lasterror));
  for (let i = 2; i <= 5; i++) await nextAttempt('erin@slow.test');
  const delayed = await waitFor('delayed dsn', async () => (await inbox()).find((m) => header(m, 'subject') === 'mail delivery delayed'));
  assert.match(delayed.toString(), /Action: delayed/);
  assert.match(delayed.toString(), /Will-Retry-Until: /);
  assert.match(delayed.toString(), /452 4\.2\.2 mailbox full/);
  for (let i = 6; i <= 8; i++) await nextAttempt('erin@slow.test');
  const failed = await waitFor('failed dsn', async () => (await inbox()).find((m) => header(m, 'subject') === 'mail delivery failed'));
  assert.match(failed.toString(), /Action: failed/);
  assert.equal((await queued(sender)).filter((m) => m.recipient === 'erin@slow.test').length, 0);
  assert.equal(f.connections, 8);
});

test('IDNA: the MX of a Unicode domain is looked up in ASCII form, and the RCPT uses it', async () => {
  const f = await fake('127.0.0.6', 'xn--bcher-kva.test', { extensions: ['SMTPUTF8'] });
  await submit(sender, ['x@bücher.test'], 'idna', { mailParams: 'SMTPUTF8' });
  await waitFor('delivered', () => f.received.length === 1);
  assert.deepEqual(f.received[0]!.rcpts, ['x@xn--bcher-kva.test']);
});

test('a message that needs SMTPUTF8 is not sent to a peer without it: DSN', async () => {
  const f = await fake('127.0.0.7', 'noutf8.test', {});
  await submit(sender, ['jürgen@noutf8.test'], 'utf8 localpart', { mailParams: 'SMTPUTF8' });
  const dsn = await waitFor('dsn', async () => (await janeInbox(sender)).map(String).find((m) => m.includes('jürgen@noutf8.test')));
  assert.match(dsn, /Status: 5\.6\.7/);
  assert.match(dsn, /Content-Type: multipart\/report; report-type=global-delivery-status/);
  assert.equal(f.received.length, 0);
});
