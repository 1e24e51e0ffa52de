// Queue control through "postern queue ..." against a running server: hold rules, hold and
// release, rescheduling, kick with a transport, fail with DSN, drop, dump; FUTURERELEASE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, freePorts, type TestServer } from '../helpers/server.js';
import { startFakeSMTP, type FakeServer } from '../helpers/smtpfake.js';
import { submit, waitFor, queued, mx, janeInbox } from './helpers.js';

let sender: TestServer;
let f: FakeServer;
let accept = true;

before(async () => {
  const [port] = (await freePorts(1)) as [number];
  f = await startFakeSMTP({ host: '127.0.0.31', port, rcpt: () => (accept ? '250 2.1.5 ok' : '451 4.3.0 not now') });
  sender = await startServe({
    queue: `SMTPPort: ${port}`,
    staticExtra: 'Transports:\n  never:\n    Fail:\n      SMTPCode: 554\n      SMTPMessage: mail to this domain is not allowed\n',
  });
  for (const d of ['held.test', 'ctl.test', 'later.test']) mx(sender, d, 'mx.ctl.test', '127.0.0.31');
});

after(async () => {
  await f?.close();
  await sender?.close();
});

async function cli(...args: string[]): Promise<string> {
  const r = await sender.cli(['queue', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

const delivered = (rcpt: string) => f.received.filter((m) => m.rcpts.includes(rcpt)).length;

test('hold rules hold new messages until released', async () => {
  assert.match(await cli('holdrules', 'add', '-recipientdomain', 'held.test'), /hold rule (\d+) added/);
  const rules = await cli('holdrules', 'list');
  const id = /^(\d+) account \*, sender domain \*, recipient domain held\.test$/m.exec(rules)?.[1];
  assert.ok(id, rules);
  await submit(sender, ['x@held.test'], 'held message');
  await submit(sender, ['y@ctl.test'], 'not held');
  await waitFor('unheld delivered', () => delivered('y@ctl.test') === 1);
  assert.match(await cli('list', '-todomain', 'held.test'), /<x@held\.test> \d+ bytes, 0 attempts, next \S+ held/);
  assert.equal(delivered('x@held.test'), 0);
  assert.match(await cli('holdrules', 'remove', id), /removed/);
  assert.match(await cli('unhold', '-todomain', 'held.test'), /1 message released/);
  await waitFor('released delivered', () => delivered('x@held.test') === 1);
});

test('schedule and kick move the next attempt; hold keeps a message back', async () => {
  accept = false;
  await submit(sender, ['z@ctl.test'], 'kicked');
  const q = await waitFor('first attempt', async () => (await queued(sender)).find((m) => m.recipient === 'z@ctl.test' && m.attempts === 1 && m.lasterror));
  assert.match(await cli('schedule', '-id', String(q.id), '2h'), /1 message rescheduled/);
  const moved = (await queued(sender)).find((m) => m.id === q.id)!;
  assert.equal(moved.nextattempt - q.nextattempt, 2 * 3600_000);
  assert.match(await cli('hold', '-id', String(q.id)), /1 message held/);
  accept = true;
  // Kicking does not release a held message.
  await cli('kick', '-id', String(q.id));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(delivered('z@ctl.test'), 0);
  await cli('unhold', '-id', String(q.id));
  await cli('kick', '-recipient', 'z@ctl.test');
  await waitFor('kicked delivered', () => delivered('z@ctl.test') === 1);
});

test('dump shows the message as it will be sent; drop removes it without DSN; fail sends a DSN', async () => {
  await cli('holdrules', 'add', '-account', 'jane');
  try {
    await submit(sender, ['d1@ctl.test'], 'to drop');
    await submit(sender, ['d2@ctl.test'], 'to fail', { rcptParams: 'NOTIFY=FAILURE' });
    const list = await queued(sender);
    const drop = list.find((m) => m.recipient === 'd1@ctl.test')!;
    const fail = list.find((m) => m.recipient === 'd2@ctl.test')!;
    const dump = await cli('dump', String(drop.id));
    assert.match(dump, /^Received: from /);
    assert.match(dump, /\r\nSubject: to drop\r\n/);
    assert.match(dump, /Hello from the sender\.\r\n$/);
    // Changing commands need a filter.
    const all = await sender.cli(['queue', 'drop']);
    assert.notEqual(all.code, 0);
    assert.match(all.stderr, /filter/);
    const inbox = (await janeInbox(sender)).length;
    assert.match(await cli('drop', '-id', String(drop.id)), /1 message dropped/);
    assert.match(await cli('fail', '-recipient', 'd2@ctl.test'), /1 message failed/);
    const dsn = await waitFor('dsn', async () => (await janeInbox(sender)).slice(inbox).map(String).find((m) => m.includes('d2@ctl.test')));
    assert.match(dsn, /failed by the administrator/);
    assert.ok(!(await janeInbox(sender)).slice(inbox).some((m) => m.includes('d1@ctl.test')));
    assert.equal((await queued(sender)).filter((m) => m.id === drop.id || m.id === fail.id).length, 0);
    assert.match(await cli('retired', 'list'), /<d2@ctl\.test> failed/);
  } finally {
    const rules = await cli('holdrules', 'list');
    for (const [, id] of rules.matchAll(/^(\d+) account jane/gm)) await cli('holdrules', 'remove', id!);
  }
});

test('kick with a transport: the Fail transport fails the message with its text', async () => {
  await cli('holdrules', 'add', '-recipientdomain', 'later.test');
  await submit(sender, ['w@later.test'], 'failing transport');
  const q = (await queued(sender)).find((m) => m.recipient === 'w@later.test')!;
  assert.ok(q.hold);
  // The transport is set on the held message; it goes out when released.
  await cli('kick', '-id', String(q.id), '-transport', 'never');
  assert.match(await cli('list', '-id', String(q.id)), / held transport never$/m);
  await cli('unhold', '-id', String(q.id));
  const dsn = await waitFor('dsn', async () => (await janeInbox(sender)).map(String).find((m) => m.includes('Final-Recipient: rfc822;w@later.test')));
  assert.match(dsn, /mail to this domain is not allowed/);
  assert.equal(delivered('w@later.test'), 0);
});

test('FUTURERELEASE: a held-for message waits until its time', async () => {
  await submit(sender, ['fr@ctl.test'], 'future', { mailParams: 'HOLDFOR=3600' });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(delivered('fr@ctl.test'), 0);
  const q = (await queued(sender)).find((m) => m.recipient === 'fr@ctl.test')!;
  assert.equal(q.attempts, 0);
  await sender.advanceClock(3600_000 + 1000);
  await waitFor('released at its time', () => delivered('fr@ctl.test') === 1);
});
