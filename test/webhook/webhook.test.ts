// Webhooks of a sending Postern, posted to a receiver started by the test: delivered and failed
// events for messages sent with the webapi, retries after a 500 (with the server's clock moved
// forward), never an older event after a newer one, DSNs to unique MAIL FROM addresses that put
// the recipient on the suppression list, incoming messages, and canceled messages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServe, type TestServer } from '../helpers/server.js';
import { startFakeSMTP, type FakeServer } from '../helpers/smtpfake.js';
import { startReceiver, mx, queued, waitFor, bobInbox, submit } from '../queue/helpers.js';
import { editDomains, sendData, smtpSession } from '../smtpserver/helpers.js';
import { composeDSN } from '../../src/queue/dsn.js';
import { api, enableWebAPI } from '../webapi/helpers.js';

interface Post {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
  status: number;
}

let receiver: TestServer;
let sender: TestServer;
let hooks: http.Server;
const posts: Post[] = [];
let status = 200;
const fakes: FakeServer[] = [];

before(async () => {
  hooks = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  const port = (hooks.address() as AddressInfo).port;
  receiver = await startReceiver();
  sender = await startServe({ dkim: true, queue: `SMTPPort: ${receiver.ports.smtp}` });
  await enableWebAPI(sender);
  await editDomains(
    sender,
    '  jane:',
    `    OutgoingWebhook:
      URL: http://127.0.0.1:${port}/out
      Authorization: Basic aG9vazpzZWNyZXQ=
    IncomingWebhook:
      URL: http://127.0.0.1:${port}/in
    FromIDLoginAddresses: [jane@example.test]
`,
  );
  mx(sender, 'remote.test', 'mx.remote.test');
  for (const [sel, txt] of Object.entries(sender.dkim)) receiver.dns.set(`${sel}._domainkey.example.test`, 'TXT', [txt]);
});

after(async () => {
  for (const f of fakes) await f.close();
  await sender?.close();
  await receiver?.close();
  await new Promise((r) => hooks?.close(r));
});

async function fake(ip: string, domain: string, o: Omit<Parameters<typeof startFakeSMTP>[0], 'host' | 'port'>): Promise<FakeServer> {
  const f = await startFakeSMTP({ host: ip, port: receiver.ports.smtp, ...o });
  fakes.push(f);
  mx(sender, domain, `mx.${domain}`, ip);
  return f;
}

async function send(to: string, subject: string, extra: Record<string, string> = {}): Promise<{ id: number; fromId: string; messageId: string }> {
  const r = await api(sender, 'Send', { To: [{ Address: to }], Subject: subject, Text: 'hello\n', Extra: extra });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const s = (r.json.Submissions as { QueueMsgID: number; FromID: string }[])[0]!;
  return { id: s.QueueMsgID, fromId: s.FromID, messageId: r.json.MessageID as string };
}

const eventsOf = (id: number) => posts.filter((p) => p.path === '/out' && p.body.QueueMsgID === id);
const waitPost = (what: string, f: (p: Post) => boolean) => waitFor(what, () => posts.find(f));

test('a delivered event with the queue id, Message-ID, SMTP code, Extra and FromID, with authorization and attempt headers', async () => {
  const m = await send('bob@remote.test', 'webhook delivered', { orderid: '77' });
  assert.match(m.fromId, /^[a-z0-9]{20}$/);
  const p = await waitPost('delivered event', (x) => x.body.QueueMsgID === m.id && x.body.Event === 'delivered');
  assert.equal(p.headers.authorization, 'Basic aG9vazpzZWNyZXQ=');
  assert.equal(p.headers['x-postern-webhook-attempt'], '1');
  assert.match(String(p.headers['x-postern-webhook-id']), /^\d+$/);
  assert.match(String(p.headers['content-type']), /^application\/json/);
  assert.equal(p.body.MessageID, m.messageId);
  assert.equal(p.body.Subject, 'webhook delivered');
  assert.equal(p.body.SMTPCode, 250);
  assert.equal(p.body.FromID, m.fromId);
  assert.equal(p.body.DSN, false);
  assert.deepEqual(p.body.Extra, { orderid: '77' });
  // The unique MAIL FROM address went to the receiving server.
  const retired = (await sender.ctl('queue retired list')) as { id: number; sender: string }[];
  assert.equal(retired.find((r) => r.id === m.id)?.sender, `jane+${m.fromId}@example.test`);
  assert.ok((await bobInbox(receiver)).some((x) => x.toString().includes('webhook delivered')));
});

test('messages submitted over SMTP give events too, with Extra from X-Postern-Extra header fields and a unique MAIL FROM per recipient', async () => {
  await submit(sender, ['bob@remote.test', 'nouser@remote.test'], 'smtp submitted', { headers: 'X-Postern-Extra-Ticket: 42\r\n' });
  const p = await waitPost('delivered event', (x) => x.body.Subject === 'smtp submitted' && x.body.Event === 'delivered');
  assert.deepEqual(p.body.Extra, { Ticket: '42' });
  // The client logged in as jane@example.test, listed in FromIDLoginAddresses.
  assert.match(p.body.FromID as string, /^[a-z0-9]{20}$/);
  const f = await waitPost('failed event', (x) => x.body.Subject === 'smtp submitted' && x.body.Event === 'failed');
  assert.match(f.body.FromID as string, /^[a-z0-9]{20}$/);
  assert.notEqual(f.body.FromID, p.body.FromID);
  assert.notEqual(f.body.QueueMsgID, p.body.QueueMsgID);
  const retired = (await sender.ctl('queue retired list')) as { id: number; sender: string; recipient: string }[];
  assert.equal(retired.find((r) => r.id === p.body.QueueMsgID)?.sender, `jane+${p.body.FromID as string}@example.test`);
  assert.equal(retired.find((r) => r.id === f.body.QueueMsgID)?.recipient, 'nouser@remote.test');
  // The receiving server saw the unique address as the envelope sender.
  const got = await waitFor('message at receiver', async () => (await bobInbox(receiver)).find((x) => x.toString().includes('Subject: smtp submitted')));
  assert.ok(got.toString().includes(`envelope-from="jane+${p.body.FromID as string}@example.test"`), got.toString().slice(0, 1500));
});

test('local recipients of Send and of SMTP submission have queue ids and delivered events', async () => {
  const r = await api(sender, 'Send', { To: [{ Address: 'jane@example.test' }, { Address: 'bob@remote.test' }], Subject: 'to myself', Text: 'note\n', Extra: { k: 'v' } });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const subs = r.json.Submissions as { Address: string; QueueMsgID: number; FromID: string }[];
  const local = subs.find((x) => x.Address === 'jane@example.test')!;
  const remote = subs.find((x) => x.Address === 'bob@remote.test')!;
  assert.ok(local.QueueMsgID > 0 && remote.QueueMsgID > 0 && local.QueueMsgID !== remote.QueueMsgID, JSON.stringify(subs));
  assert.equal(local.FromID, '');
  const p = await waitPost('local delivered event', (x) => x.body.QueueMsgID === local.QueueMsgID);
  assert.equal(p.body.Event, 'delivered');
  assert.equal(p.body.SMTPCode, 250);
  assert.equal(p.body.MessageID, r.json.MessageID);
  assert.deepEqual(p.body.Extra, { k: 'v' });
  await waitPost('remote delivered event', (x) => x.body.QueueMsgID === remote.QueueMsgID && x.body.Event === 'delivered');
  const retired = (await sender.ctl('queue retired list')) as { id: number; recipient: string; success: number; transport: string }[];
  assert.deepEqual(
    retired.filter((x) => x.id === local.QueueMsgID).map((x) => [x.recipient, x.success, x.transport]),
    [['jane@example.test', 1, 'local']],
  );

  await submit(sender, ['jane@example.test'], 'smtp to myself');
  const s = await waitPost('delivered event of local SMTP submission', (x) => x.body.Subject === 'smtp to myself');
  assert.equal(s.body.Event, 'delivered');
  assert.ok((s.body.QueueMsgID as number) > 0);
  assert.equal(s.body.FromID, '');
});

test('a failed event for a permanent refusal, putting the address on the suppression list; sending to it again is refused', async () => {
  const m = await send('nobody@remote.test', 'webhook failed');
  const p = await waitPost('failed event', (x) => x.body.QueueMsgID === m.id && x.body.Event === 'failed');
  assert.equal(p.body.SMTPCode, 550);
  assert.equal(p.body.SMTPEnhancedCode, '5.1.1');
  assert.equal(p.body.Suppressing, true);
  assert.match(p.body.Error as string, /no such user/);
  const again = await api(sender, 'Send', { To: [{ Address: 'nobody@remote.test' }], Text: 'again' });
  assert.equal(again.status, 400);
  assert.equal(again.json.Code, 'recipientSuppressed');
  const list = (await api(sender, 'SuppressionList', {})).json.Suppressions as { OriginalAddress: string; Manual: boolean }[];
  assert.ok(list.some((s) => s.OriginalAddress === 'nobody@remote.test' && !s.Manual));
});

test('a webhook answered with 500 is retried after a minute of the server clock, not before', async () => {
  status = 500;
  const m = await send('bob@remote.test', 'webhook retried');
  await waitPost('first attempt', (x) => x.body.QueueMsgID === m.id && x.headers['x-postern-webhook-attempt'] === '1');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(eventsOf(m.id).length, 1, 'no retry before its time');
  const waiting = (await sender.ctl('queue webhook list', {})) as { id: number; queuemsgid: number; attempts: number; nextattempt: number }[];
  const h = waiting.find((x) => x.queuemsgid === m.id)!;
  assert.equal(h.attempts, 1);
  const wait = h.nextattempt - Date.now();
  assert.ok(wait > 55_000 && wait < 61_000, `retry in ${wait} ms`);
  status = 200;
  await sender.advanceClock(61_000);
  const p = await waitPost('second attempt', (x) => x.body.QueueMsgID === m.id && x.headers['x-postern-webhook-attempt'] === '2');
  assert.equal(p.body.Event, 'delivered');
  assert.equal(p.headers['x-postern-webhook-id'], String(h.id));
  const retired = (await sender.ctl('queue webhook retired list', {})) as { id: number; success: number; attempts: number }[];
  await waitFor('retired as delivered', async () => ((await sender.ctl('queue webhook retired list', {})) as typeof retired).find((x) => x.id === h.id && x.success === 1 && x.attempts === 2));
});

test('only the newest event of a message is posted: a waiting "delayed" is superseded by "delivered", never posted after it', async () => {
  let accept = false;
  await fake('127.0.0.3', 'tempfail.test', { rcpt: () => (accept ? '250 2.1.5 ok' : '451 4.3.0 try again later') });
  status = 500;
  const m = await send('carol@tempfail.test', 'webhook newest');
  await waitPost('delayed event', (x) => x.body.QueueMsgID === m.id && x.body.Event === 'delayed');
  assert.equal(eventsOf(m.id)[0]!.body.SMTPCode, 451);
  accept = true;
  const q = (await queued(sender)).find((x) => x.id === m.id)!;
  await sender.advanceClock(q.nextattempt - Date.now() + 1000);
  await waitPost('delivered event', (x) => x.body.QueueMsgID === m.id && x.body.Event === 'delivered');
  status = 200;
  await sender.advanceClock(61_000);
  await waitFor('delivered event accepted', () => eventsOf(m.id).find((x) => x.body.Event === 'delivered' && x.status === 200));
  // Later retries would have had their time by now.
  await sender.advanceClock(3600_000);
  await new Promise((r) => setTimeout(r, 1000));
  const events = eventsOf(m.id).map((x) => x.body.Event);
  const firstDelivered = events.indexOf('delivered');
  assert.ok(!events.slice(firstDelivered).includes('delayed'), `events in order: ${events.join(', ')}`);
  assert.equal(eventsOf(m.id).filter((x) => x.status === 200).length, 1);
  const retired = (await sender.ctl('queue webhook retired list', {})) as { queuemsgid: number; event: string; success: number; supersededby: number }[];
  const delayed = retired.find((x) => x.queuemsgid === m.id && x.event === 'delayed');
  assert.ok(delayed && delayed.success === 0 && delayed.supersededby > 0, JSON.stringify(retired.filter((x) => x.queuemsgid === m.id)));
});

test('a DSN to the unique MAIL FROM address becomes a failed event and suppresses the recipient; other mail there is unrecognized', async () => {
  await fake('127.0.0.4', 'bounce.test', {});
  const m = await send('eve@bounce.test', 'bounced later');
  await waitPost('delivered to the next hop', (x) => x.body.QueueMsgID === m.id && x.body.Event === 'delivered');
  const dsn = composeDSN({
    hostname: 'mx.bounce.test',
    to: `jane+${m.fromId}@example.test`,
    arrival: new Date(),
    recipients: [{ recipient: 'eve@bounce.test', action: 'failed', status: '5.1.1', remoteMTA: 'store.bounce.test', diagnostic: '550 5.1.1 mailbox unknown', smtpDiagnostic: true }],
    original: Buffer.from(`Subject: bounced later\r\nMessage-ID: ${m.messageId}\r\n\r\nhello\r\n`),
    smtputf8: false,
    date: new Date(),
  });
  const c = await smtpSession(sender.ports.smtp, 'mx.bounce.test');
  assert.equal((await sendData(c, '', [`jane+${m.fromId}@example.test`], dsn)).code, 250);
  c.close();
  const p = await waitPost('failed event from the DSN', (x) => x.body.QueueMsgID === m.id && x.body.Event === 'failed');
  assert.equal(p.body.DSN, true);
  assert.equal(p.body.Suppressing, true);
  assert.equal(p.body.SMTPCode, 550);
  assert.equal(p.body.SMTPEnhancedCode, '5.1.1');
  assert.equal(p.body.FromID, m.fromId);
  assert.equal((await api(sender, 'SuppressionPresent', { EmailAddress: 'eve@bounce.test' })).json.Present, true);
  // The DSN is not an incoming message for the application.
  assert.ok(!posts.some((x) => x.path === '/in' && x.body.Subject === 'mail delivery failed'));

  const c2 = await smtpSession(sender.ports.smtp, 'mx.bounce.test');
  assert.equal((await sendData(c2, 'eve@bounce.test', [`jane+${m.fromId}@example.test`], 'From: eve@bounce.test\r\nSubject: out of office\r\n\r\nI am away.\r\n')).code, 250);
  c2.close();
  const u = await waitPost('unrecognized event', (x) => x.body.QueueMsgID === m.id && x.body.Event === 'unrecognized');
  assert.match(u.body.Error as string, /not a DSN/);
});

test('incoming messages are posted with envelope, text and structure, and can be fetched with the webapi', async () => {
  const c = await smtpSession(sender.ports.smtp, 'mx.remote.test');
  const msg = 'From: Bob <bob@remote.test>\r\nTo: jane@example.test\r\nSubject: incoming hook\r\nMessage-ID: <in1@remote.test>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nHi Jane.\r\n';
  assert.equal((await sendData(c, 'bob@remote.test', ['jane@example.test'], msg)).code, 250);
  c.close();
  const p = await waitPost('incoming post', (x) => x.path === '/in' && x.body.Subject === 'incoming hook');
  assert.equal(p.headers.authorization, undefined);
  assert.deepEqual(p.body.From, [{ Name: 'Bob', Address: 'bob@remote.test' }]);
  assert.equal(p.body.Text, 'Hi Jane.\n');
  assert.equal(p.body.MessageID, '<in1@remote.test>');
  assert.equal(p.body.Date, '2026-03-02T10:00:00.000Z');
  assert.equal((p.body.Structure as { ContentType: string }).ContentType, 'text/plain');
  const meta = p.body.Meta as { MsgID: number; RcptTo: string; MailFrom: string; MailboxName: string; RemoteIP: string };
  assert.equal(meta.RcptTo, 'jane@example.test');
  assert.equal(meta.MailFrom, 'bob@remote.test');
  assert.equal(meta.MailboxName, 'Inbox');
  assert.equal(meta.RemoteIP, '127.0.0.1');
  const g = await api(sender, 'MessageGet', { MsgID: meta.MsgID });
  assert.equal((g.json.Message as { Subject: string }).Subject, 'incoming hook');
});

test('a message dropped from the queue gives a canceled event', async () => {
  // The server's clock was moved forward by earlier tests.
  const release = new Date((await sender.advanceClock(0)) + 3600_000).toISOString();
  const r = await api(sender, 'Send', { To: [{ Address: 'bob@remote.test' }], Subject: 'never sent', Text: 'x', FutureRelease: release });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const id = (r.json.Submissions as { QueueMsgID: number }[])[0]!.QueueMsgID;
  const drop = await sender.cli(['queue', 'drop', '-id', String(id)]);
  assert.match(drop.stdout, /^1 message dropped/);
  const p = await waitPost('canceled event', (x) => x.body.QueueMsgID === id && x.body.Event === 'canceled');
  assert.equal(p.body.Subject, 'never sent');
  const r2 = await sender.cli(['queue', 'webhook', 'retired', 'list']);
  assert.match(r2.stdout, new RegExp(`canceled queuemsg ${id} .* delivered`));
});
