// The webapi over HTTP with Node's fetch: Send with uploaded and base64 files reaching another
// Postern DKIM-signed with the composed structure, queue options, suppressed recipients, errors,
// the message methods, the method pages and the OpenAPI document.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServe, root, type TestServer } from '../helpers/server.js';
import { startReceiver, bobInbox, queued, mx, waitFor } from '../queue/helpers.js';
import { authResults } from '../smtpserver/helpers.js';
import { parseMessage, type Part } from '../../src/message/part.js';
import { decodedBody, decodedText } from '../../src/message/decode.js';
import { getParam } from '../../src/message/params.js';
import { decodeHeaderText } from '../../src/message/header.js';
import { openapi } from '../../src/webapi/openapi.js';
import { api, enableWebAPI, janeAuth, storedMessages } from './helpers.js';

let receiver: TestServer;
let sender: TestServer;

before(async () => {
  receiver = await startReceiver();
  sender = await startServe({ dkim: true, queue: `SMTPPort: ${receiver.ports.smtp}` });
  await enableWebAPI(sender);
  mx(sender, 'remote.test', 'mx.remote.test');
  for (const [sel, txt] of Object.entries(sender.dkim)) receiver.dns.set(`${sel}._domainkey.example.test`, 'TXT', [txt]);
});

after(async () => {
  await sender?.close();
  await receiver?.close();
});

const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
const pdf = Buffer.from('%PDF-1.4\n% test\n');

const types = (p: Part): unknown => (p.parts ? [`${p.type}/${p.subtype}`, p.parts.map(types)] : `${p.type}/${p.subtype}`);

test('Send with multipart upload and base64 files arrives at the other Postern, DKIM-signed, with the composed structure', async () => {
  const form = new FormData();
  form.append(
    'request',
    JSON.stringify({
      To: [{ Name: 'Bob Börk', Address: 'bob@remote.test' }],
      Subject: 'Your order ✓',
      Text: 'Hello Bob,\nyour order has shipped.\n',
      HTML: '<p>Hello Bob, <img src="cid:logo"></p>',
      InlineFiles: [{ Name: 'logo.png', ContentType: 'image/png', ContentID: 'logo', Data: png.toString('base64') }],
      Headers: [['List-Unsubscribe', '<https://shop.example/unsubscribe>']],
      Extra: { orderid: '12345' },
    }),
  );
  form.append('attachedfile', new Blob([pdf], { type: 'application/pdf' }), 'invoice.pdf');
  form.append('attachedfile', new Blob(['line one\n'], { type: 'text/plain' }), 'notes.txt');
  const r = await api(sender, 'Send', undefined, { body: form });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const subs = r.json.Submissions as { Address: string; QueueMsgID: number; FromID: string }[];
  assert.equal(subs.length, 1);
  assert.equal(subs[0]!.Address, 'bob@remote.test');
  const q = (await queued(sender)).find((m) => m.id === subs[0]!.QueueMsgID) as unknown as { extra: string; sender: string } | undefined;
  assert.ok(q, 'queued with the returned id');
  assert.deepEqual(JSON.parse(q.extra), { orderid: '12345' });
  assert.equal(q.sender, 'jane@example.test');

  const body = await waitFor('message at bob', async () => (await bobInbox(receiver)).find((m) => m.toString().includes(r.json.MessageID as string)));
  assert.equal(decodeHeaderText(parseMessage(body).envelope!.subject!), 'Your order ✓');
  const ar = authResults(body);
  assert.ok(ar.dkim.length >= 1 && ar.dkim.every((x) => x === 'pass'), ar.text);
  assert.ok(body.toString().includes(`Message-ID: ${r.json.MessageID as string}`));
  const root = parseMessage(body);
  assert.deepEqual(types(root), [
    'multipart/mixed',
    [['multipart/related', [['multipart/alternative', ['text/plain', 'text/html']], 'image/png']], 'application/pdf', 'text/plain'],
  ]);
  const [related, invoice, notes] = root.parts!;
  const [alt, logo] = related!.parts!;
  assert.equal(decodedText(body, alt!.parts![0]!), 'Hello Bob,\r\nyour order has shipped.\r\n');
  assert.match(decodedText(body, alt!.parts![1]!), /cid:logo/);
  assert.equal(logo!.id, '<logo>');
  assert.equal(logo!.disposition, 'inline');
  assert.deepEqual(decodedBody(body, logo!), png);
  assert.equal(invoice!.disposition, 'attachment');
  assert.equal(getParam(invoice!.dispositionParams, 'filename'), 'invoice.pdf');
  assert.deepEqual(decodedBody(body, invoice!), pdf);
  assert.equal(decodedText(body, notes!), 'line one\n');
  assert.match(body.toString(), /List-Unsubscribe: <https:\/\/shop\.example\/unsubscribe>/);
  assert.match(body.toString(), /To: =\?UTF-8\?B\?[^?]+\?= <bob@remote\.test>/);
});

test('an inline file uploaded with a Content-ID header, and the queue options', async () => {
  const boundary = 'xyzBOUNDARYzyx';
  const release = new Date(Date.now() + 3600_000);
  const request = JSON.stringify({ To: [{ Address: 'bob@remote.test' }], Subject: 'release later', HTML: '<img src="cid:pic">', RequireTLS: true, FutureRelease: release.toISOString() });
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n${request}\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="inlinefile"; filename="pic.png"\r\nContent-Type: image/png\r\nContent-ID: <pic>\r\n\r\n`),
    png,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const r = await api(sender, 'Send', undefined, { body: body.toString('latin1'), contentType: `multipart/form-data; boundary=${boundary}` });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const id = (r.json.Submissions as { QueueMsgID: number }[])[0]!.QueueMsgID;
  const q = (await queued(sender)).find((m) => m.id === id) as unknown as { nextattempt: number; requiretls: number; futurerelease: string };
  assert.equal(q.requiretls, 1);
  assert.ok(Math.abs(q.nextattempt - release.getTime()) < 1000, `next attempt ${q.nextattempt} vs ${release.getTime()}`);
  assert.match(q.futurerelease, /^HOLDUNTIL=/);
  const dump = Buffer.from((await sender.ctl('queue dump', { id })) as string, 'base64');
  const root = parseMessage(dump);
  assert.deepEqual(types(root), ['multipart/related', ['text/html', 'image/png']]);
  assert.equal(root.parts![1]!.id, '<pic>');
  await sender.ctl('queue drop', { ids: [id] });
});

test('errors: credentials, unknown fields, bad addresses, and a suppressed recipient with the documented code', async () => {
  let r = await api(sender, 'Send', { To: [{ Address: 'bob@remote.test' }], Text: 'x' }, { auth: '' });
  assert.equal(r.status, 401);
  assert.equal(r.json.Code, 'unauthorized');
  assert.match(r.headers.get('www-authenticate') ?? '', /^Basic /);
  r = await api(sender, 'Send', { To: [{ Address: 'bob@remote.test' }], Text: 'x' }, { auth: 'Basic ' + Buffer.from('jane@example.test:wrong').toString('base64') });
  assert.equal(r.status, 401);
  r = await api(sender, 'Send', { To: [{ Address: 'bob@remote.test' }], Txt: 'typo' });
  assert.equal(r.status, 400);
  assert.equal(r.json.Code, 'user');
  assert.match(r.json.Message as string, /unknown request field Txt/);
  r = await api(sender, 'Send', { To: [{ Address: 'not an address' }], Text: 'x' });
  assert.equal(r.json.Code, 'badAddress');
  r = await api(sender, 'Send', { From: [{ Address: 'someone@remote.test' }], To: [{ Address: 'bob@remote.test' }], Text: 'x' });
  assert.equal(r.status, 400);
  assert.match(r.json.Message as string, /not an address of the account/);
  r = await api(sender, 'NoSuchMethod', {});
  assert.equal(r.status, 404);
  // A form post from another site with the browser's cached credentials is refused.
  const res = await fetch(`http://127.0.0.1:${sender.ports.http}/webapi/v0/SuppressionList`, {
    method: 'POST',
    headers: { Authorization: janeAuth, 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'https://evil.example' },
    body: 'request={}',
  });
  assert.equal(res.status, 400);

  assert.equal((await api(sender, 'SuppressionPresent', { EmailAddress: 'Carol.Smith+news@Remote.test' })).json.Present, false);
  assert.equal((await api(sender, 'SuppressionAdd', { EmailAddress: 'carol.smith@remote.test', Manual: true, Reason: 'asked' })).status, 200);
  // The base address covers variants of the address.
  assert.equal((await api(sender, 'SuppressionPresent', { EmailAddress: 'Carol.Smith+news@Remote.test' })).json.Present, true);
  const list = (await api(sender, 'SuppressionList', {})).json.Suppressions as { BaseAddress: string; Manual: boolean; Reason: string }[];
  assert.deepEqual(
    list.map((s) => [s.BaseAddress, s.Manual, s.Reason]),
    [['carolsmith@remote.test', true, 'asked']],
  );
  const before = (await queued(sender)).length;
  r = await api(sender, 'Send', { To: [{ Address: 'bob@remote.test' }], CC: [{ Address: 'carol.smith+x@remote.test' }], Text: 'x' });
  assert.equal(r.status, 400);
  assert.equal(r.json.Code, 'recipientSuppressed');
  assert.equal((await queued(sender)).length, before, 'nothing queued for any recipient');
  assert.equal((await api(sender, 'SuppressionRemove', { EmailAddress: 'carol.smith@remote.test' })).status, 200);
  assert.equal((await api(sender, 'SuppressionRemove', { EmailAddress: 'carol.smith@remote.test' })).json.Code, 'notFound');
  // The command line sees the same list.
  assert.equal((await sender.cli(['queue', 'suppress', 'add', 'jane', 'dave@remote.test'])).code, 0);
  assert.equal((await api(sender, 'SuppressionPresent', { EmailAddress: 'dave@remote.test' })).json.Present, true);
});

test('message methods: get, raw, part, flags, move and delete of a locally delivered message; Sent copy', async () => {
  const r = await api(sender, 'Send', { To: [{ Address: 'jane@example.test' }], Subject: 'to myself', Text: 'plain', HTML: '<b>rich</b>', SaveSent: true });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const subs = r.json.Submissions as { Address: string; QueueMsgID: number; FromID: string }[];
  assert.deepEqual(subs.map((x) => [x.Address, x.FromID]), [['jane@example.test', '']]);
  // Delivered at once, and recorded so: the queue id names it in webhooks and the retired list.
  assert.ok(subs[0]!.QueueMsgID > 0);
  const retired = (await sender.ctl('queue retired list')) as { id: number; recipient: string; success: number }[];
  assert.deepEqual(retired.filter((x) => x.id === subs[0]!.QueueMsgID).map((x) => [x.recipient, x.success]), [['jane@example.test', 1]]);
  const inbox = await waitFor('local delivery', () => storedMessages(sender, 'jane').find((m) => m.msg.includes('Subject: to myself')));
  assert.ok(storedMessages(sender, 'jane', 'Sent').some((m) => m.msg.includes('Subject: to myself')), 'copy in Sent');

  const g = await api(sender, 'MessageGet', { MsgID: inbox.id });
  assert.equal(g.status, 200, JSON.stringify(g.json));
  const m = g.json.Message as { Subject: string; Text: string; HTML: string; From: { Address: string }[]; MessageID: string };
  assert.equal(m.Subject, 'to myself');
  assert.equal(m.Text, 'plain');
  assert.equal(m.HTML, '<b>rich</b>');
  assert.equal(m.From[0]!.Address, 'jane@example.test');
  assert.equal(m.MessageID, r.json.MessageID);
  const st = g.json.Structure as { ContentType: string; Parts: { ContentType: string; DecodedSize: number }[] };
  assert.equal(st.ContentType, 'multipart/alternative');
  assert.deepEqual(
    st.Parts.map((p) => [p.ContentType, p.DecodedSize]),
    [
      ['text/plain', 5],
      ['text/html', 11],
    ],
  );
  assert.equal((g.json.Meta as { MailboxName: string }).MailboxName, 'Inbox');

  const raw = await fetch(`http://127.0.0.1:${sender.ports.http}/webapi/v0/MessageRawGet`, { method: 'POST', headers: { Authorization: janeAuth, 'Content-Type': 'application/json' }, body: JSON.stringify({ MsgID: inbox.id }) });
  assert.equal(raw.headers.get('content-type'), 'message/rfc822');
  assert.equal(await raw.text(), inbox.msg);
  const part = await fetch(`http://127.0.0.1:${sender.ports.http}/webapi/v0/MessagePartGet`, { method: 'POST', headers: { Authorization: janeAuth, 'Content-Type': 'application/json' }, body: JSON.stringify({ MsgID: inbox.id, PartPath: [1] }) });
  assert.match(part.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(await part.text(), '<b>rich</b>');

  assert.equal((await api(sender, 'MessageFlagsAdd', { MsgID: inbox.id, Flags: ['\\Seen', 'processed'] })).status, 200);
  assert.deepEqual(((await api(sender, 'MessageGet', { MsgID: inbox.id })).json.Meta as { Flags: string[] }).Flags, ['\\Seen', 'processed']);
  assert.equal((await api(sender, 'MessageFlagsRemove', { MsgID: inbox.id, Flags: ['processed'] })).status, 200);
  assert.deepEqual(((await api(sender, 'MessageGet', { MsgID: inbox.id })).json.Meta as { Flags: string[] }).Flags, ['\\Seen']);
  assert.equal((await api(sender, 'MessageMove', { MsgID: inbox.id, DestMailboxName: 'Archive' })).status, 200);
  assert.equal(((await api(sender, 'MessageGet', { MsgID: inbox.id })).json.Meta as { MailboxName: string }).MailboxName, 'Archive');
  assert.equal((await api(sender, 'MessageMove', { MsgID: inbox.id, DestMailboxName: 'Nonexistent' })).json.Code, 'notFound');
  assert.equal((await api(sender, 'MessageDelete', { MsgID: inbox.id })).status, 200);
  const gone = await api(sender, 'MessageGet', { MsgID: inbox.id });
  assert.equal(gone.status, 400);
  assert.equal(gone.json.Code, 'notFound');
});

test('method pages with an example form, the index, and the OpenAPI document kept in the repository', async () => {
  const base = `http://127.0.0.1:${sender.ports.http}/webapi/`;
  let res = await fetch(base, { redirect: 'manual' });
  assert.equal(res.status, 308);
  res = await fetch(base + 'v0/');
  assert.match(await res.text(), /href="MessagePartGet"/);
  res = await fetch(base + 'v0/Send');
  const html = await res.text();
  assert.equal(res.status, 200);
  assert.match(html, /<form method="post" action="Send" enctype="multipart\/form-data">/);
  assert.match(html, /<textarea name="request"[^>]*>\{\n  &#34;To&#34;/);
  res = await fetch(base + 'v0/openapi.json');
  const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown>; webhooks: Record<string, unknown> };
  assert.equal(doc.openapi, '3.1.0');
  assert.equal(Object.keys(doc.paths).length, 12);
  assert.ok(doc.webhooks.outgoing && doc.webhooks.incoming);
  const file = JSON.parse(fs.readFileSync(path.join(root, 'docs', 'webapi-openapi.json'), 'utf8')) as unknown;
  assert.deepEqual(file, openapi(), 'docs/webapi-openapi.json is out of date: write it with "postern webapi openapi"');
  assert.deepEqual(doc, file);
});

test('postern webapi lists methods, prints examples and calls a method with the request from stdin', async () => {
  let r = await sender.cli(['webapi']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Send\n/m);
  r = await sender.cli(['webapi', 'SuppressionAdd']);
  assert.match(r.stdout, /"EmailAddress"/);
  const url = `http://jane%40example.test:secret-pass@127.0.0.1:${sender.ports.http}/webapi/v0/`;
  r = await sender.cli(['webapi', 'SuppressionPresent', url], JSON.stringify({ EmailAddress: 'dave@remote.test' }));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { Present: true });
  r = await sender.cli(['webapi', 'MessageGet', url], JSON.stringify({ MsgID: 999999 }));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /notFound/);
});

test('verified credentials are remembered only until the password changes', async () => {
  assert.equal((await api(sender, 'SuppressionList', {})).status, 200);
  assert.equal((await sender.cli(['setaccountpassword', 'jane'], 'new-pass\n')).code, 0);
  assert.equal((await api(sender, 'SuppressionList', {})).status, 401);
  const r = await api(sender, 'SuppressionList', {}, { auth: 'Basic ' + Buffer.from('jane@example.test:new-pass').toString('base64') });
  assert.equal(r.status, 200);
});
