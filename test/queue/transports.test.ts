// Transports and routes: a smarthost over submission with authentication (STARTTLS and
// implicit TLS), a route that falls back to the smarthost after a failed direct attempt, direct
// delivery through a SOCKS5 proxy; and "postern sendmail".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startServe, freePorts, tempDir, type TestServer } from '../helpers/server.js';
import { startFakeSMTP, type FakeServer } from '../helpers/smtpfake.js';
import { startReceiver, submit, waitFor, queued, mx, bobInbox, mailbox, header } from './helpers.js';

let receiver: TestServer;
let sender: TestServer;
let port: number;
let socks: net.Server;
const socksRequests: string[] = [];
const fakes: FakeServer[] = [];

/** A SOCKS5 proxy without authentication (RFC 1928) that connects where asked. */
async function startSocks(): Promise<number> {
  socks = net.createServer((c) => {
    c.on('error', () => {});
    c.once('data', () => {
      c.write(Buffer.from([5, 0]));
      c.once('data', (req) => {
        const ip = req[3] === 1 ? [...req.subarray(4, 8)].join('.') : '';
        const p = req.readUInt16BE(req[3] === 1 ? 8 : 20);
        socksRequests.push(`${ip}:${p}`);
        const out = net.connect(p, ip, () => {
          c.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
          c.pipe(out).pipe(c);
        });
        out.on('error', () => c.destroy());
      });
    });
  });
  await new Promise<void>((r) => socks.listen(0, '127.0.0.1', r));
  return (socks.address() as net.AddressInfo).port;
}

before(async () => {
  receiver = await startReceiver();
  [port] = (await freePorts(1)) as [number];
  const socksPort = await startSocks();
  const dir = tempDir();
  const caFile = path.join(dir, 'receiver.pem');
  fs.writeFileSync(caFile, receiver.certPEM);
  // The receiver's jane account has the same address and password as the sender's.
  const auth = '      Auth:\n        Username: jane@example.test\n        Password: secret-pass\n';
  sender = await startServe({
    queue: `SMTPPort: ${port}\nCAFiles: ["${caFile}"]`,
    staticExtra: `Transports:
  relay:
    Submission:
      Host: 127.0.0.1
      Port: ${receiver.ports.submission}
${auth}  relay465:
    Submissions:
      Host: 127.0.0.1
      Port: ${receiver.ports.submissions}
${auth}  proxy:
    Socks:
      Address: 127.0.0.1:${socksPort}
      RemoteIPs: [127.0.0.1]
      RemoteHostname: proxy.example.test
Routes:
  - ToDomain: [remote.test]
    Transport: relay
  - ToDomain: [implicit.test]
    Transport: relay465
  - ToDomain: [fallback.test]
    MinimumAttempts: 1
    Transport: relay
  - ToDomain: [viasocks.test]
    Transport: proxy
`,
  });
});

after(async () => {
  for (const f of fakes) await f.close();
  socks?.close();
  await sender?.close();
  await receiver?.close();
});

test('a route sends mail through a smarthost with submission, STARTTLS and SCRAM', async () => {
  await submit(sender, ['bob@remote.test'], 'via relay');
  const msg = await waitFor('message at bob', async () => (await bobInbox(receiver)).find((m) => header(m, 'subject') === 'via relay'));
  // Received by the smarthost's submission service, authenticated (RFC 3848 "ESMTPSA").
  assert.match(msg.toString(), /with ESMTPSA/);
  assert.match(receiver.output, /"mechanism":"SCRAM-SHA-256(-PLUS)?","msg":"authenticated"/);
});

test('a smarthost over implicit TLS (submissions)', async () => {
  await submit(sender, ['x@implicit.test'], 'via 465');
  // The smarthost queues it for its own delivery (its queue is paused).
  await waitFor('queued at the smarthost', async () => ((await receiver.ctl('queue list')) as { recipient: string; account: string }[]).find((m) => m.recipient === 'x@implicit.test' && m.account === 'jane'));
  assert.equal((await queued(sender)).length, 0);
});

test('a route with MinimumAttempts falls back to the smarthost after a failed direct attempt', async () => {
  const f = await startFakeSMTP({ host: '127.0.0.42', port, rcpt: () => '451 4.3.0 not now' });
  fakes.push(f);
  mx(sender, 'fallback.test', 'mx.fallback.test', '127.0.0.42');
  await submit(sender, ['x@fallback.test'], 'fall back');
  const q = await waitFor('direct attempt', async () => (await queued(sender)).find((m) => m.recipient === 'x@fallback.test' && m.attempts === 1 && m.lasterror));
  assert.match(q.lasterror!, /not now/);
  assert.equal(f.connections, 1);
  await sender.advanceClock(q.nextattempt - Date.now() + 1000);
  await waitFor('queued at the smarthost', async () => ((await receiver.ctl('queue list')) as { recipient: string }[]).find((m) => m.recipient === 'x@fallback.test'));
  assert.equal(f.connections, 1);
});

test('direct delivery through a SOCKS5 proxy', async () => {
  const f = await startFakeSMTP({ host: '127.0.0.43', port });
  fakes.push(f);
  mx(sender, 'viasocks.test', 'mx.viasocks.test', '127.0.0.43');
  await submit(sender, ['x@viasocks.test'], 'via socks');
  await waitFor('delivered', () => f.received.length === 1);
  assert.deepEqual(socksRequests, [`127.0.0.43:${port}`]);
});

test('postern sendmail submits a message from standard input, with -t and -F', async () => {
  const dir = tempDir();
  const conf = path.join(dir, 'submit.conf');
  const ca = path.join(dir, 'ca.pem');
  fs.writeFileSync(ca, sender.certPEM);
  fs.writeFileSync(
    conf,
    `Host: 127.0.0.1\nPort: ${sender.ports.submission}\nTLS: false\nCAFile: ${ca}\nUsername: jane@example.test\nPassword: secret-pass\nFrom: jane@example.test\nDefaultDestination: jane@example.test\n`,
  );
  const input = 'To: root\nBcc: jane.archive@example.test\nSubject: cron output\n\nall is well\n.\nnot a terminator with -i\n';
  const r = await sender.cli(['sendmail', '-C', conf, '-t', '-i', '-FCron Daemon'], input);
  assert.equal(r.code, 0, r.stderr);
  const inbox = await waitFor('in the inbox', () => mailbox(sender, 'jane').find((m) => header(m, 'subject') === 'cron output'));
  const archived = await waitFor('bcc in archive', () => mailbox(sender, 'jane', 'Archive').find((m) => header(m, 'subject') === 'cron output'));
  for (const m of [inbox, archived]) {
    assert.equal(header(m, 'from'), '"Cron Daemon" <jane@example.test>');
    assert.equal(header(m, 'bcc'), undefined);
    assert.match(m.toString(), /\r\nall is well\r\n\.\r\nnot a terminator with -i\r\n/);
  }
});
