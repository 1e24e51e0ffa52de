// A server killed with SIGKILL during a delivery delivers the message after its restart, and
// never delivers it twice once the receiver's 250 reply was read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServe, freePorts, type TestServer } from '../helpers/server.js';
import { startFakeSMTP, type FakeServer } from '../helpers/smtpfake.js';
import { submit, waitFor, queued, mx } from './helpers.js';

let sender: TestServer;
let port: number;
const fakes: FakeServer[] = [];

before(async () => {
  [port] = (await freePorts(1)) as [number];
  sender = await startServe({ queue: `SMTPPort: ${port}` });
});

after(async () => {
  for (const f of fakes) await f.close();
  await sender?.close();
});

async function restart(): Promise<void> {
  await sender.kill9();
  await sender.start();
}

test('killed before the 250 after the data was read: delivered after the restart', async () => {
  // The first connection gets the whole message but never an answer.
  const f = await startFakeSMTP({ host: '127.0.0.21', port, data: (_m, conn) => (conn === 1 ? 'hang' : '250 2.0.0 ok') });
  fakes.push(f);
  mx(sender, 'crash1.test', 'mx.crash1.test', '127.0.0.21');
  await submit(sender, ['x@crash1.test'], 'crash before reply');
  await waitFor('data at the receiver', () => f.received.length === 1);
  await restart();
  // The attempt was counted before it started: the retry waits for its backoff.
  const q = (await queued(sender)).find((m) => m.recipient === 'x@crash1.test');
  assert.ok(q, 'message lost in the crash');
  assert.equal(q.attempts, 1);
  await sender.advanceClock(q.nextattempt - Date.now() + 1000);
  await waitFor('queue empty', async () => (await queued(sender)).length === 0);
  assert.equal(f.received.length, 2);
  assert.equal(f.connections, 2);
  assert.match(f.received[1]!.data.toString(), /Subject: crash before reply/);
});

test('killed after the 250 was read: not delivered again after the restart', async () => {
  // The message is accepted, then the server never answers QUIT, keeping the session open.
  const f = await startFakeSMTP({ host: '127.0.0.22', port, quit: () => 'hang' });
  fakes.push(f);
  mx(sender, 'crash2.test', 'mx.crash2.test', '127.0.0.22');
  await submit(sender, ['x@crash2.test'], 'crash after reply');
  await waitFor('data at the receiver', () => f.received.length === 1);
  await waitFor('queue empty', async () => (await queued(sender)).length === 0);
  await restart();
  await sender.advanceClock(86400_000);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await queued(sender)).length, 0);
  assert.equal(f.received.length, 1);
  assert.equal(f.connections, 1);
  const retired = (await sender.ctl('queue retired list')) as { recipient: string; success: number }[];
  assert.ok(retired.some((r) => r.recipient === 'x@crash2.test' && r.success === 1));
});
