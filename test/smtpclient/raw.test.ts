// The SMTP client against scripted servers: CHUNKING, LIMITS, pipelining, broken and hostile
// replies, timeouts, and the TLS verification hook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { channelBindingData } from '../../src/sasl/channelbinding.js';
import { deriveCredentials } from '../../src/sasl/credentials.js';
import { serverMechanism } from '../../src/sasl/server.js';
import { type ClientOptions, type Message, type PeerCertificates, SMTPClient, type Timeouts } from '../../src/smtpclient/client.js';
import { SMTPError } from '../../src/smtpclient/error.js';
import { selfSigned } from '../../src/tls/selfsigned.js';
import { type RawServer, type RawSession, ehloReply, rawServer, receive } from './rawserver.js';

const fast: Timeouts = { greeting: 2000, command: 2000, mail: 2000, rcpt: 2000, dataInit: 2000, dataBlock: 2000, dataEnd: 2000, tls: 2000 };

async function open(srv: RawServer, options: Partial<ClientOptions> = {}): Promise<SMTPClient> {
  const socket = net.connect(srv.port, '127.0.0.1');
  await once(socket, 'connect');
  return SMTPClient.open(socket, { hostname: 'client.postern.test', timeouts: fast, ...options });
}

async function openError(srv: RawServer, options: Partial<ClientOptions> = {}): Promise<SMTPError> {
  const err = await open(srv, options).then(
    () => assert.fail('open succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SMTPError, String(err));
  return err;
}

// Runs a script against one client connection and returns what the script returned.
async function withServer<T>(script: (s: RawSession) => Promise<T>, client: (srv: RawServer) => Promise<void>): Promise<T> {
  let result: T | undefined;
  const srv = await rawServer(async (s) => {
    result = await script(s);
  });
  try {
    await client(srv);
    await srv.sessions[0];
    return result!;
  } finally {
    await srv.close();
  }
}

// Serves one transaction up to the 354 reply to DATA.
async function untilData(s: RawSession): Promise<void> {
  s.write('220 raw.test\r\n');
  await s.line();
  s.write(ehloReply());
  for (const reply of ['250 ok', '250 ok', '354 go']) {
    await s.line();
    s.write(`${reply}\r\n`);
  }
}

const text = Buffer.from('Subject: hi\r\n\r\nhello\r\n');
const message = (n: number, extra: Partial<Message> = {}): Message => ({
  from: 'sender@example.org',
  recipients: Array.from({ length: n }, (_, i) => ({ address: `r${i}@example.org` })),
  data: text,
  ...extra,
});

test('BDAT: binary data in 1 MiB chunks, the last marked LAST', async () => {
  const data = randomBytes(2.5 * 1024 * 1024);
  const txns = await withServer(
    (s) => receive(s, ['PIPELINING', 'CHUNKING', 'BINARYMIME', 'SIZE 10000000']),
    async (srv) => {
      const c = await open(srv);
      const [r] = await c.deliver(message(1, { data, body: 'BINARYMIME' }));
      assert.equal(r!.error, undefined);
      assert.equal(r!.reply?.text, 'queued as 2');
      await c.quit();
    },
  );
  assert.equal(txns[0]!.mail, `MAIL FROM:<sender@example.org> SIZE=${data.length} BODY=BINARYMIME`);
  assert.deepEqual(txns[0]!.bdat, ['BDAT 1048576', 'BDAT 1048576', 'BDAT 524288 LAST']);
  assert.ok(txns[0]!.data.equals(data));
});

test('BDAT: streamed data, no dot-stuffing, an empty LAST chunk after a full one', async () => {
  const data = Buffer.alloc(1024 * 1024, '.\r\n');
  async function* pieces() {
    for (let i = 0; i < data.length; i += 65536) yield data.subarray(i, i + 65536);
  }
  const txns = await withServer(
    (s) => receive(s, ['CHUNKING']),
    async (srv) => {
      const c = await open(srv);
      const [r] = await c.deliver(message(1, { data: pieces }));
      assert.equal(r!.error, undefined);
      const [binary] = await c.deliver(message(1, { body: 'BINARYMIME' }));
      assert.equal(binary!.error?.enhanced, '5.6.3');
      await c.quit();
    },
  );
  assert.deepEqual(txns[0]!.bdat, ['BDAT 1048576', 'BDAT 0 LAST']);
  assert.ok(txns[0]!.data.equals(data));
  assert.equal(txns.length, 1);
});

test('BDAT: a refused chunk ends the transaction without further chunks, then RSET', async () => {
  const lines = await withServer(
    async (s) => {
      const seen: string[] = [];
      s.write('220 raw.test\r\n');
      for (;;) {
        const l = await s.line();
        seen.push(l);
        if (l.startsWith('EHLO')) s.write(ehloReply('CHUNKING'));
        else if (l.startsWith('BDAT')) {
          await s.bytes(Number(l.split(' ')[1]));
          s.write('552 5.3.4 message too big\r\n');
        } else if (l === 'QUIT') {
          s.write('221 bye\r\n');
          return seen;
        } else s.write('250 ok\r\n');
      }
    },
    async (srv) => {
      const c = await open(srv);
      const [r] = await c.deliver(message(1, { data: Buffer.alloc(3 * 1024 * 1024, 'a') }));
      assert.equal(r!.error?.step, 'data');
      assert.equal(r!.error?.code, 552);
      assert.equal(r!.error?.permanent, true);
      assert.equal(c.closed, false);
      await c.quit();
    },
  );
  assert.deepEqual(lines.slice(1), ['MAIL FROM:<sender@example.org>', 'RCPT TO:<r0@example.org>', 'BDAT 1048576', 'RSET', 'QUIT']);
});

test('PIPELINING: MAIL and all RCPTs are sent before any reply', async () => {
  await withServer(
    async (s) => {
      s.write(`220 raw.test\r\n`);
      await s.line();
      s.write(ehloReply('PIPELINING'));
      const group = [await s.line(), await s.line(), await s.line(), await s.line()];
      assert.deepEqual(group, ['MAIL FROM:<sender@example.org>', 'RCPT TO:<r0@example.org>', 'RCPT TO:<r1@example.org>', 'RCPT TO:<r2@example.org>']);
      s.write('250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n');
      assert.equal(await s.line(), 'DATA');
      s.write('354 go\r\n');
      assert.deepEqual(await s.dotted(), text);
      s.write('250 queued\r\n');
      assert.equal(await s.line(), 'QUIT');
      s.write('221 bye\r\n');
    },
    async (srv) => {
      const c = await open(srv);
      const results = await c.deliver(message(3));
      assert.deepEqual(
        results.map((r) => r.error?.code),
        [undefined, 550, undefined],
      );
      await c.quit();
    },
  );
});

test('without PIPELINING each command waits for its reply', async () => {
  await withServer(
    async (s) => {
      s.write(`220 raw.test\r\n`);
      await s.line();
      s.write(ehloReply('8BITMIME'));
      for (const expect of ['MAIL FROM:<sender@example.org>', 'RCPT TO:<r0@example.org>', 'RCPT TO:<r1@example.org>', 'DATA']) {
        assert.equal(await s.line(), expect);
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(s.buffered, 0);
        s.write(expect === 'DATA' ? '354 go\r\n' : '250 ok\r\n');
      }
      await s.dotted();
      s.write('250 queued\r\n');
      await s.line();
      s.write('221 bye\r\n');
    },
    async (srv) => {
      const c = await open(srv);
      const results = await c.deliver(message(2));
      assert.deepEqual(
        results.map((r) => r.error),
        [undefined, undefined],
      );
      await c.quit();
    },
  );
});

test('LIMITS RCPTMAX splits recipients over transactions; MAILMAX bounds them', async () => {
  const txns = await withServer(
    (s) => receive(s, ['PIPELINING', 'LIMITS RCPTMAX=2']),
    async (srv) => {
      const c = await open(srv);
      assert.equal(c.extensions.rcptMax, 2);
      const results = await c.deliver(message(5));
      assert.ok(results.every((r) => r.error === undefined && r.reply?.code === 250));
      await c.quit();
    },
  );
  assert.deepEqual(
    txns.map((t) => t.rcpts.length),
    [2, 2, 1],
  );
  assert.ok(txns.every((t) => t.data.equals(text)));

  const limited = await withServer(
    (s) => receive(s, ['LIMITS RCPTMAX=2 MAILMAX=2']),
    async (srv) => {
      const c = await open(srv);
      const results = await c.deliver(message(5));
      assert.deepEqual(
        results.map((r) => r.error?.enhanced),
        [undefined, undefined, undefined, undefined, '4.5.3'],
      );
      assert.equal(results[4]!.error?.permanent, false);
      await c.quit();
    },
  );
  assert.equal(limited.length, 2);
});

test('recipients refused with 452 after others were accepted go in the next transaction', async () => {
  const txns = await withServer(
    (s) => receive(s, ['PIPELINING'], { rcpt: (_, n) => (n >= 2 ? '452 4.5.3 too many recipients' : undefined) }),
    async (srv) => {
      const c = await open(srv);
      const results = await c.deliver(message(5));
      assert.ok(results.every((r) => r.error === undefined));
      await c.quit();
    },
  );
  assert.deepEqual(
    txns.map((t) => t.rcpts.map((l) => /<r(\d)@/.exec(l)![1]).join('')),
    ['01', '23', '4'],
  );
});

test('multi-line replies keep all lines; enhanced codes are split from the text', async () => {
  await withServer(
    (s) =>
      receive(s, ['PIPELINING', 'ENHANCEDSTATUSCODES'], {
        greeting: '220-raw.test first\r\n220-second\r\n220 third\r\n',
        rcpt: (address) => (address.startsWith('r1') ? '550-5.1.1 mailbox\r\n550-5.1.1 does not\r\n550 5.1.1 exist' : undefined),
      }),
    async (srv) => {
      const c = await open(srv);
      assert.deepEqual(c.greeting?.lines, ['220-raw.test first', '220-second', '220 third']);
      assert.equal(c.greeting?.text, 'raw.test first\nsecond\nthird');
      const [ok, bad] = await c.deliver(message(2));
      assert.equal(ok!.error, undefined);
      assert.equal(ok!.reply?.enhanced, '2.0.0');
      assert.equal(ok!.reply?.text, 'queued as 1');
      assert.equal(bad!.error?.code, 550);
      assert.equal(bad!.error?.enhanced, '5.1.1');
      assert.equal(bad!.error?.text, 'mailbox\ndoes not\nexist');
      assert.deepEqual(bad!.error?.reply?.lines, ['550-5.1.1 mailbox', '550-5.1.1 does not', '550 5.1.1 exist']);
      await c.quit();
    },
  );
});

for (const [name, greeting, pattern] of [
  ['garbage', 'hello there\r\n', /malformed reply line "hello there"/],
  ['changing codes', '220-a\r\n250 b\r\n', /reply code changes/],
  ['an over-long line', `220 ${'x'.repeat(100_000)}\r\n`, /longer than 4096 bytes/],
  ['too many lines', '220-x\r\n'.repeat(300), /longer than 256 lines/],
] as const) {
  test(`a greeting with ${name} is a temporary connection error`, async () => {
    await withServer(
      async (s) => {
        s.write(greeting);
        await s.closed();
      },
      async (srv) => {
        const err = await openError(srv);
        assert.equal(err.step, 'greeting');
        assert.equal(err.connection, true);
        assert.equal(err.permanent, false);
        assert.equal(err.code, 0);
        assert.match(err.text, pattern);
      },
    );
  });
}

test('a garbled reply to MAIL breaks the connection; later deliveries fail at once', async () => {
  await withServer(
    async (s) => {
      s.write('220 raw.test\r\n');
      await s.line();
      s.write(ehloReply('PIPELINING'));
      await s.line();
      s.write('2X0 what\r\n');
      await s.closed();
    },
    async (srv) => {
      const c = await open(srv);
      const results = await c.deliver(message(2));
      for (const r of results) {
        assert.equal(r.error?.step, 'mail');
        assert.equal(r.error?.connection, true);
        assert.equal(r.error?.permanent, false);
      }
      assert.equal(c.closed, true);
      const [again] = await c.deliver(message(1));
      assert.equal(again!.error, results[0]!.error);
    },
  );
});

test('421 and 554 greetings', async () => {
  await withServer(
    async (s) => {
      s.write('421 4.3.2 shutting down\r\n');
    },
    async (srv) => {
      const err = await openError(srv);
      assert.equal(err.step, 'greeting');
      assert.equal(err.code, 421);
      assert.equal(err.enhanced, '4.3.2');
      assert.equal(err.permanent, false);
      assert.equal(err.connection, true);
    },
  );
  const quit = await withServer(
    async (s) => {
      s.write('554 5.7.1 no service for you\r\n');
      const l = await s.line();
      s.write('221 bye\r\n');
      return l;
    },
    async (srv) => {
      const err = await openError(srv);
      assert.equal(err.code, 554);
      assert.equal(err.permanent, true);
      assert.equal(err.text, 'no service for you');
    },
  );
  assert.equal(quit, 'QUIT');
});

test('timeouts: a silent server, a trickling server, no reply after the data', async () => {
  await withServer(
    (s) => s.closed(),
    async (srv) => {
      const start = Date.now();
      const err = await openError(srv, { timeouts: { greeting: 300 } });
      assert.equal(err.step, 'greeting');
      assert.match(err.text, /timed out after 0.3s/);
      assert.ok(Date.now() - start < 2000);
    },
  );
  await withServer(
    async (s) => {
      s.write('220 ');
      const timer = setInterval(() => s.write('x'), 20);
      await s.closed();
      clearInterval(timer);
    },
    async (srv) => {
      const start = Date.now();
      const err = await openError(srv, { timeouts: { greeting: 400 } });
      assert.match(err.text, /timed out/);
      assert.ok(Date.now() - start < 2000);
    },
  );
  await withServer(
    async (s) => {
      await untilData(s);
      await s.dotted();
      await s.closed();
    },
    async (srv) => {
      const c = await open(srv, { timeouts: { ...fast, dataEnd: 300 } });
      const [r] = await c.deliver(message(1));
      assert.equal(r!.error?.step, 'data');
      assert.equal(r!.error?.connection, true);
      assert.equal(r!.error?.permanent, false);
      assert.match(r!.error!.text, /timed out/);
    },
  );
});

test('a connection dropped during DATA fails the recipients temporarily', async () => {
  await withServer(
    async (s) => {
      await untilData(s);
      await s.bytes(1000);
      s.socket.destroy();
    },
    async (srv) => {
      const c = await open(srv);
      const [r] = await c.deliver(message(1, { data: Buffer.alloc(8 * 1024 * 1024, 'a') }));
      assert.equal(r!.error?.step, 'data');
      assert.equal(r!.error?.connection, true);
      assert.equal(r!.error?.permanent, false);
      assert.equal(c.closed, true);
    },
  );
});

test('a message source that fails abandons the data without ending it', async () => {
  const srv = await rawServer((s) => receive(s, []).then(() => undefined));
  try {
    const c = await open(srv);
    const [r] = await c.deliver(
      message(1, {
        async *data() {
          yield Buffer.from('Subject: x\r\n\r\npart one\r\n');
          throw new Error('disk on fire');
        },
      }),
    );
    assert.equal(r!.error?.step, 'data');
    assert.match(r!.error!.text, /reading message: disk on fire/);
    assert.equal(c.closed, true);
    await assert.rejects(srv.sessions[0]!, /client closed the connection/);
  } finally {
    await srv.close();
  }
});

test('HELO after a refused EHLO: no extensions, so no 8-bit data', async () => {
  const txns = await withServer(
    (s) => receive(s, null),
    async (srv) => {
      const c = await open(srv);
      assert.equal(c.extensions.pipelining, false);
      const [eight] = await c.deliver(message(1, { data: Buffer.from('Subject: \xe9\r\n\r\n', 'latin1') }));
      assert.equal(eight!.error?.enhanced, '5.6.3');
      const [ok] = await c.deliver(message(1));
      assert.equal(ok!.error, undefined);
      await c.quit();
    },
  );
  assert.equal(txns.length, 1);
  assert.equal(txns[0]!.mail, 'MAIL FROM:<sender@example.org>');
});

test('parameters on the wire: ASCII domains, SMTPUTF8, DSN values in xtext and utf-8-addr form', async () => {
  const txns = await withServer(
    (s) => receive(s, ['PIPELINING', 'DSN', 'SMTPUTF8', '8BITMIME']),
    async (srv) => {
      const c = await open(srv);
      const base = { data: text, ret: 'FULL', envid: 'a+b=c d' } as const;
      const utf8 = await c.deliver({
        ...base,
        from: 'sender@bücher.example',
        recipients: [{ address: 'user@bücher.example', notify: ['DELAY', 'FAILURE'], orcpt: 'jöran@bücher.example' }, { address: 'ß@example.org' }],
      });
      assert.ok(utf8.every((r) => r.error === undefined));
      const ascii = await c.deliver({ ...base, from: '', recipients: [{ address: 'Postmaster', orcpt: 'jöran+1@example.org' }] });
      assert.equal(ascii[0]!.error, undefined);
      await c.quit();
    },
  );
  assert.equal(txns[0]!.mail, 'MAIL FROM:<sender@xn--bcher-kva.example> SMTPUTF8 RET=FULL ENVID=a+2Bb+3Dc+20d');
  assert.deepEqual(txns[0]!.rcpts, ['RCPT TO:<user@xn--bcher-kva.example> NOTIFY=DELAY,FAILURE ORCPT=utf-8;jöran@bücher.example', 'RCPT TO:<ß@example.org>']);
  assert.equal(txns[1]!.mail, 'MAIL FROM:<> RET=FULL ENVID=a+2Bb+3Dc+20d');
  assert.deepEqual(txns[1]!.rcpts, ['RCPT TO:<Postmaster> ORCPT=utf-8;j\\x{F6}ran\\x{2B}1@example.org']);
});

test('addresses that cannot be sent fail before MAIL', async () => {
  const txns = await withServer(
    (s) => receive(s, ['PIPELINING']),
    async (srv) => {
      const c = await open(srv);
      const results = await c.deliver({
        from: 'sender@example.org',
        recipients: [{ address: 'a@example.org\r\nRSET' }, { address: 'b@-bad-.example' }, { address: 'ok@example.org' }],
        data: text,
      });
      assert.deepEqual(
        results.map((r) => r.error?.enhanced),
        ['5.1.3', '5.1.3', undefined],
      );
      const [sender] = await c.deliver({ ...message(1), from: 'nobody' });
      assert.equal(sender!.error?.enhanced, '5.1.7');
      await c.quit();
    },
  );
  assert.equal(txns.length, 1);
  assert.deepEqual(txns[0]!.rcpts, ['RCPT TO:<ok@example.org>']);
});

const serverCert = selfSigned(['mx.postern.test']);
const serverDER = new X509Certificate(serverCert.certPEM).raw;

// Greets with STARTTLS, upgrades, then serves EHLO and QUIT over TLS; returns the bytes received over TLS.
async function tlsScript(s: RawSession, after?: (s: RawSession) => Promise<void>): Promise<number> {
  s.write('220 raw.test\r\n');
  await s.line();
  s.write(ehloReply('STARTTLS'));
  assert.equal(await s.line(), 'STARTTLS');
  s.write('220 go ahead\r\n');
  await s.startTLS({ key: serverCert.keyPEM, cert: serverCert.certPEM });
  try {
    await after?.(s);
  } catch {
    // The client hung up.
  }
  return s.tlsBytes;
}

test('the TLS hook sees the certificate chain before anything is sent, and can refuse it', async () => {
  let seen: PeerCertificates | undefined;
  const bytes = await withServer(
    (s) => tlsScript(s, async (s) => void (await s.line())),
    async (srv) => {
      const err = await openError(srv, {
        tls: {
          mode: 'required',
          name: 'mx.postern.test',
          verify: (peer) => {
            seen = peer;
            throw new Error('TLSA record does not match');
          },
        },
      });
      assert.equal(err.step, 'starttls');
      assert.equal(err.permanent, false);
      assert.match(err.text, /certificate rejected: TLSA record does not match/);
    },
  );
  assert.equal(bytes, 0);
  assert.ok(seen!.chain[0]!.equals(serverDER));
  assert.equal(seen!.pkixValid, false);
  assert.match(seen!.pkixError!, /not trusted/);

  const accepted = await withServer(
    (s) =>
      tlsScript(s, async (s) => {
        assert.match(await s.line(), /^EHLO /);
        s.write(ehloReply('REQUIRETLS'));
        assert.equal(await s.line(), 'QUIT');
        s.write('221 bye\r\n');
      }),
    async (srv) => {
      const c = await open(srv, { tls: { mode: 'required', verify: (peer) => assert.ok(peer.chain[0]!.equals(serverDER)) } });
      assert.equal(c.tlsVerified, true);
      assert.equal(c.extensions.requireTLS, true);
      await c.quit();
    },
  );
  assert.ok(accepted > 0);
});

test('a refused STARTTLS continues in plain text only when allowed', async () => {
  const script = async (s: RawSession) => {
    s.write('220 raw.test\r\n');
    await s.line();
    s.write(ehloReply('STARTTLS'));
    await s.line();
    s.write('454 4.7.0 TLS not available\r\n');
    assert.equal(await s.line(), 'QUIT');
    s.write('221 bye\r\n');
  };
  await withServer(script, async (srv) => {
    const err = await openError(srv, { tls: { mode: 'opportunistic' } });
    assert.equal(err.code, 454);
    assert.equal(err.step, 'starttls');
    assert.equal(err.connection, false);
  });
  await withServer(script, async (srv) => {
    const c = await open(srv, { tls: { mode: 'opportunistic', allowPlain: true } });
    assert.equal(c.tlsSocket, undefined);
    assert.equal(c.extensions.startTLS, true);
    await c.quit();
  });
});

test('AUTH SCRAM-SHA-256-PLUS with channel binding over STARTTLS', async () => {
  const credentials = await deriveCredentials('secret');
  const mechanisms: string[] = [];
  await withServer(
    (s) =>
      tlsScript(s, async (s) => {
        await s.line();
        s.write(ehloReply('AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256 CRAM-MD5 PLAIN'));
        const [, name, initial] = (await s.line()).split(' ');
        mechanisms.push(name!);
        const mech = serverMechanism(name!, {
          hostname: 'raw.test',
          lookup: async (u) => (u === 'user@example.org' ? { account: 1, credentials } : undefined),
          channelBinding: (type) => channelBindingData(s.socket as TLSSocket, type, 'server'),
        })!;
        let r = await mech.step(Buffer.from(initial!, 'base64'));
        while (r.type === 'challenge') {
          s.write(`334 ${r.data.toString('base64')}\r\n`);
          r = await mech.step(Buffer.from(await s.line(), 'base64'));
        }
        assert.equal(r.type, 'success');
        // RFC 4954 4: additional data on success goes in a challenge with an empty answer.
        if (r.data) {
          s.write(`334 ${r.data.toString('base64')}\r\n`);
          assert.equal(await s.line(), '');
        }
        s.write('235 2.7.0 authenticated\r\n');
        assert.equal(await s.line(), 'QUIT');
        s.write('221 bye\r\n');
      }),
    async (srv) => {
      const c = await open(srv, { tls: { mode: 'opportunistic' }, auth: { username: 'user@example.org', password: 'secret' } });
      assert.equal(c.authMechanism, 'SCRAM-SHA-256-PLUS');
      await c.quit();
    },
  );
  assert.deepEqual(mechanisms, ['SCRAM-SHA-256-PLUS']);
});

test('AUTH is cancelled with "*" when the server sends a bad challenge', async () => {
  const cancel = await withServer(
    async (s) => {
      s.write('220 raw.test\r\n');
      await s.line();
      s.write(ehloReply('AUTH CRAM-MD5'));
      assert.equal(await s.line(), 'AUTH CRAM-MD5');
      s.write('334 \r\n');
      const l = await s.line();
      s.write('501 5.7.0 cancelled\r\n');
      return l;
    },
    async (srv) => {
      const err = await openError(srv, { auth: { username: 'user', password: 'secret' } });
      assert.equal(err.step, 'auth');
      assert.match(err.text, /authentication aborted: unexpected CRAM-MD5 challenge/);
    },
  );
  assert.equal(cancel, '*');
});
