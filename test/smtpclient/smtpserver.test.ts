// The SMTP client against smtp-server, an independent receiver, on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { SMTPServer, type SMTPServerAddress, type SMTPServerEnvelope, type SMTPServerOptions } from 'smtp-server';
import { type ClientOptions, type Message, SMTPClient } from '../../src/smtpclient/client.js';
import { SMTPError } from '../../src/smtpclient/error.js';
import { issueCert } from '../../src/tls/selfsigned.js';

const ca = issueCert({ names: ['Postern Test CA'], isCA: true });
const leaf = issueCert({ names: ['mx.postern.test'], ips: ['127.0.0.1'], issuer: { certDER: ca.certDER, key: ca.key, name: ca.name } });

interface Received {
  envelope: SMTPServerEnvelope;
  data: Buffer;
  secure: boolean;
}

interface Peer {
  port: number;
  received: Received[];
  mails: SMTPServerAddress[];
  rcpts: SMTPServerAddress[];
  auths: string[];
  connections: number;
  close(): Promise<void>;
}

async function peer(options: SMTPServerOptions = {}): Promise<Peer> {
  const p: Peer = { port: 0, received: [], mails: [], rcpts: [], auths: [], connections: 0, close: async () => {} };
  const server = new SMTPServer({
    logger: false,
    key: leaf.keyPEM,
    cert: leaf.certPEM,
    authOptional: true,
    disabledCommands: ['AUTH'],
    onConnect(_session, cb) {
      p.connections++;
      cb();
    },
    onMailFrom(address, _session, cb) {
      p.mails.push(address);
      cb();
    },
    onRcptTo(address, _session, cb) {
      p.rcpts.push(address);
      const err = /^(perm|temp)/.exec(address.address)?.[1];
      if (err === undefined) return cb();
      cb(Object.assign(new Error(err === 'perm' ? 'no such user' : 'try later'), { responseCode: err === 'perm' ? 550 : 451 }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        p.received.push({ envelope: session.envelope, data: Buffer.concat(chunks), secure: session.secure });
        cb();
      });
    },
    ...options,
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  p.port = (server.server.address() as AddressInfo).port;
  p.close = () => new Promise((resolve) => server.close(() => resolve()));
  return p;
}

async function open(p: Peer, options: Partial<ClientOptions> = {}): Promise<SMTPClient> {
  const socket = net.connect(p.port, '127.0.0.1');
  await once(socket, 'connect');
  return SMTPClient.open(socket, { hostname: 'client.postern.test', timeouts: { greeting: 5000, command: 5000 }, ...options });
}

async function openError(p: Peer, options: Partial<ClientOptions>): Promise<SMTPError> {
  const err = await open(p, options).then(
    () => assert.fail('open succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SMTPError, String(err));
  return err;
}

const verified = { mode: 'verified', name: 'mx.postern.test', ca: ca.certPEM } as const;

const simple = (to: string[], extra: Partial<Message> = {}): Message => ({
  from: 'sender@example.org',
  recipients: to.map((address) => ({ address })),
  data: Buffer.from('Subject: test\r\n\r\nhello\r\n'),
  ...extra,
});

// Lines starting with dots, a lone dot that would end the data unstuffed, a dot after a bare LF.
const dotty = Buffer.from(
  'From: <sender@example.org>\r\nSubject: dots\r\n\r\n.\r\n..two\r\n.leading\r\nmid.dle\r\n\r\n.\r\nbare\n.lf\r\n...\r\nend\r\n',
);

async function* bytewise(b: Buffer): AsyncIterable<Buffer> {
  for (let i = 0; i < b.length; i++) yield b.subarray(i, i + 1);
}

test('delivers exact bytes with dot-stuffing, from a buffer and byte by byte, reusing the connection', async () => {
  const p = await peer({ size: 1_000_000 });
  try {
    const c = await open(p);
    for (const data of [dotty, () => bytewise(dotty)]) {
      const results = await c.deliver({ ...simple(['rcpt@example.org']), data, size: dotty.length });
      assert.equal(results[0]!.error, undefined);
      assert.equal(results[0]!.reply?.code, 250);
    }
    // Without a final CRLF, the client adds one before the end of data.
    const results = await c.deliver(simple(['rcpt@example.org'], { data: Buffer.from('Subject: x\r\n\r\n.no end') }));
    assert.equal(results[0]!.error, undefined);
    await c.quit();
    assert.equal(p.connections, 1);
    assert.equal(p.received.length, 3);
    assert.deepEqual(p.received[0]!.data, dotty);
    assert.deepEqual(p.received[1]!.data, dotty);
    assert.equal(p.received[2]!.data.toString(), 'Subject: x\r\n\r\n.no end\r\n');
    assert.equal(p.received[0]!.envelope.mailFrom && p.received[0]!.envelope.mailFrom.address, 'sender@example.org');
    assert.equal(p.mails[1]!.args && p.mails[1]!.args.SIZE, String(dotty.length));
  } finally {
    await p.close();
  }
});

test('per-recipient results: accepted, permanent and temporary failures', async () => {
  const p = await peer({ hideENHANCEDSTATUSCODES: false });
  try {
    const c = await open(p);
    assert.ok(c.extensions.enhancedStatusCodes);
    const [ok, perm, temp] = await c.deliver(simple(['ok@example.org', 'perm@example.org', 'temp@example.org']));
    assert.equal(ok!.error, undefined);
    assert.equal(ok!.reply?.code, 250);
    assert.equal(perm!.error?.step, 'rcpt');
    assert.equal(perm!.error?.code, 550);
    assert.equal(perm!.error?.enhanced, '5.1.1');
    assert.equal(perm!.error?.text, 'no such user');
    assert.equal(perm!.error?.permanent, true);
    assert.equal(temp!.error?.code, 451);
    assert.equal(temp!.error?.permanent, false);
    assert.equal(temp!.error?.connection, false);
    assert.deepEqual(
      p.received[0]!.envelope.rcptTo.map((r) => r.address),
      ['ok@example.org'],
    );
    // All recipients refused: no data is sent, and the connection stays usable after RSET.
    const refused = await c.deliver(simple(['perm1@example.org']));
    assert.equal(refused[0]!.error?.code, 550);
    const again = await c.deliver(simple(['ok2@example.org']));
    assert.equal(again[0]!.error, undefined);
    assert.equal(p.received.length, 2);
    await c.quit();
  } finally {
    await p.close();
  }
});

test('STARTTLS verified against a CA, with EHLO repeated over TLS', async () => {
  const p = await peer({ hideREQUIRETLS: false });
  try {
    const c = await open(p, { tls: verified });
    assert.ok(c.tlsSocket);
    assert.equal(c.tlsVerified, true);
    // smtp-server announces REQUIRETLS only over TLS: this is the second EHLO's answer.
    assert.equal(c.extensions.requireTLS, true);
    assert.equal(c.extensions.startTLS, false);
    const [r] = await c.deliver(simple(['rcpt@example.org'], { requireTLS: true }));
    assert.equal(r!.error, undefined);
    await c.quit();
    assert.equal(p.received[0]!.secure, true);
    assert.equal(p.received[0]!.envelope.requireTLS, true);
  } finally {
    await p.close();
  }
});

test('STARTTLS verified refuses an untrusted certificate and a wrong name before sending anything', async () => {
  const p = await peer();
  try {
    const untrusted = await openError(p, { tls: { mode: 'verified', name: 'mx.postern.test' } });
    assert.equal(untrusted.step, 'starttls');
    assert.equal(untrusted.permanent, false);
    assert.match(untrusted.text, /not trusted/);
    const wrongName = await openError(p, { tls: { ...verified, name: 'other.postern.test' } });
    assert.equal(wrongName.step, 'starttls');
    assert.match(wrongName.text, /other\.postern\.test/);
    assert.equal(p.mails.length, 0);
  } finally {
    await p.close();
  }
});

test('opportunistic TLS accepts an unverified certificate; plain text only when allowed', async () => {
  const p = await peer({ hideREQUIRETLS: false });
  const noTLS = await peer({ hideSTARTTLS: true });
  try {
    const c = await open(p, { tls: { mode: 'opportunistic' } });
    assert.ok(c.tlsSocket);
    assert.equal(c.tlsVerified, false);
    const [r] = await c.deliver(simple(['rcpt@example.org']));
    assert.equal(r!.error, undefined);
    // REQUIRETLS needs a verified certificate (RFC 8689 4.1).
    const [req] = await c.deliver(simple(['rcpt@example.org'], { requireTLS: true }));
    assert.equal(req!.error?.enhanced, '5.7.30');
    assert.equal(req!.error?.permanent, true);
    await c.quit();
    assert.equal(p.received.length, 1);
    assert.equal(p.received[0]!.secure, true);

    const refused = await openError(noTLS, { tls: { mode: 'opportunistic' } });
    assert.equal(refused.step, 'starttls');
    const plain = await open(noTLS, { tls: { mode: 'opportunistic', allowPlain: true } });
    assert.equal(plain.tlsSocket, undefined);
    const [pr] = await plain.deliver(simple(['rcpt@example.org']));
    assert.equal(pr!.error, undefined);
    // Over plain text REQUIRETLS fails without MAIL being sent.
    const mails = noTLS.mails.length;
    const [req2] = await plain.deliver(simple(['rcpt@example.org'], { requireTLS: true }));
    assert.equal(req2!.error?.enhanced, '5.7.30');
    assert.equal(noTLS.mails.length, mails);
    await plain.quit();
    assert.equal(noTLS.received[0]!.secure, false);
  } finally {
    await p.close();
    await noTLS.close();
  }
});

test('REQUIRETLS fails when the server does not offer it', async () => {
  const p = await peer();
  try {
    const c = await open(p, { tls: verified });
    assert.equal(c.extensions.requireTLS, false);
    const [r] = await c.deliver(simple(['rcpt@example.org'], { requireTLS: true }));
    assert.equal(r!.error?.enhanced, '5.7.30');
    assert.equal(r!.error?.step, 'mail');
    assert.equal(p.mails.length, 0);
    await c.quit();
  } finally {
    await p.close();
  }
});

test('AUTH picks the strongest offered mechanism: CRAM-MD5, or PLAIN when only that is allowed', async () => {
  const methods: string[] = [];
  const p = await peer({
    disabledCommands: [],
    authOptional: false,
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
    onAuth(auth, _session, cb) {
      methods.push(auth.method);
      const ok = auth.username === 'user' && (auth.method === 'CRAM-MD5' ? auth.validatePassword('secret') : auth.password === 'secret');
      cb(ok ? null : new Error('bad credentials'), ok ? { user: auth.username } : undefined);
    },
  });
  try {
    const c = await open(p, { tls: verified, auth: { username: 'user', password: 'secret' } });
    assert.equal(c.authMechanism, 'CRAM-MD5');
    const [r] = await c.deliver(simple(['rcpt@example.org']));
    assert.equal(r!.error, undefined);
    await c.quit();

    const plain = await open(p, { tls: verified, auth: { username: 'user', password: 'secret', mechanisms: ['PLAIN'] } });
    assert.equal(plain.authMechanism, 'PLAIN');
    await plain.quit();

    const bad = await openError(p, { tls: verified, auth: { username: 'user', password: 'wrong' } });
    assert.equal(bad.step, 'auth');
    assert.equal(bad.code, 535);
    assert.equal(bad.permanent, true);
    assert.deepEqual(methods, ['CRAM-MD5', 'PLAIN', 'CRAM-MD5']);
    assert.equal(p.received.length, 1);
  } finally {
    await p.close();
  }
});

test('AUTH does not send a password in plain text', async () => {
  const methods: string[] = [];
  const p = await peer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    onAuth(auth, _session, cb) {
      methods.push(auth.method);
      cb(null, { user: auth.username });
    },
  });
  try {
    const err = await openError(p, { auth: { username: 'user', password: 'secret' } });
    assert.equal(err.step, 'auth');
    assert.match(err.text, /PLAIN LOGIN/);
    const c = await open(p, { auth: { username: 'user', password: 'secret', allowPlaintext: true } });
    assert.equal(c.authMechanism, 'PLAIN');
    await c.quit();
    assert.deepEqual(methods, ['PLAIN']);
  } finally {
    await p.close();
  }
});

test('DSN parameters reach the server only when it offers DSN', async () => {
  const withDSN = await peer({ hideDSN: false });
  const without = await peer();
  try {
    const msg: Message = {
      ...simple([]),
      recipients: [
        { address: 'a@example.org', notify: ['SUCCESS', 'FAILURE'], orcpt: 'orig+x=y@example.org' },
        { address: 'b@example.org', notify: 'NEVER' },
      ],
      ret: 'HDRS',
      envid: 'queue 17+1',
    };
    const c = await open(withDSN);
    assert.equal(c.extensions.dsn, true);
    const results = await c.deliver(msg);
    assert.deepEqual(
      results.map((r) => r.error),
      [undefined, undefined],
    );
    await c.quit();
    const env = withDSN.received[0]!.envelope;
    assert.equal(env.dsn?.ret, 'HDRS');
    // smtp-server decodes the xtext.
    assert.equal(env.dsn?.envid, 'queue 17+1');
    assert.deepEqual(env.rcptTo[0]!.dsn, { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;orig+x=y@example.org' });
    assert.deepEqual(env.rcptTo[1]!.dsn, { notify: ['NEVER'] });

    const d = await open(without);
    assert.equal(d.extensions.dsn, false);
    const r2 = await d.deliver(msg);
    assert.equal(r2[0]!.error, undefined);
    await d.quit();
    assert.equal(without.mails[0]!.args, false);
    assert.equal(without.rcpts[0]!.args, false);
  } finally {
    await withDSN.close();
    await without.close();
  }
});

test('SMTPUTF8: sent when a localpart needs it, a permanent error when the server lacks it', async () => {
  const utf8 = await peer();
  const ascii = await peer({ hideSMTPUTF8: true });
  try {
    const c = await open(utf8);
    const [r] = await c.deliver(simple(['jöran@bücher.example']));
    assert.equal(r!.error, undefined);
    await c.quit();
    assert.equal(utf8.received[0]!.envelope.smtpUtf8, true);

    const d = await open(ascii);
    const [bad] = await d.deliver(simple(['jöran@example.org']));
    const [good] = await d.deliver(simple(['user@bücher.example']));
    assert.equal(bad!.error?.step, 'mail');
    assert.equal(bad!.error?.permanent, true);
    assert.equal(bad!.error?.enhanced, '5.6.7');
    // An IDN domain alone goes out in ASCII form without SMTPUTF8.
    assert.equal(good!.error, undefined);
    const headers = await d.deliver(simple(['user@example.org'], { smtputf8: true }));
    assert.equal(headers[0]!.error?.enhanced, '5.6.9');
    await d.quit();
    assert.equal(ascii.received.length, 1);
    assert.equal(ascii.received[0]!.envelope.smtpUtf8, false);
  } finally {
    await utf8.close();
    await ascii.close();
  }
});

test('8-bit data goes with BODY=8BITMIME, and fails permanently without 8BITMIME', async () => {
  const eight = await peer();
  const seven = await peer({ hide8BITMIME: true });
  const data = Buffer.from('Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n', 'latin1');
  try {
    const c = await open(eight);
    const [r] = await c.deliver(simple(['rcpt@example.org'], { data }));
    assert.equal(r!.error, undefined);
    await c.quit();
    assert.equal(eight.received[0]!.envelope.bodyType, '8bitmime');
    assert.deepEqual(eight.received[0]!.data, data);

    const d = await open(seven);
    const [bad] = await d.deliver(simple(['rcpt@example.org'], { data }));
    assert.equal(bad!.error?.enhanced, '5.6.3');
    assert.equal(bad!.error?.permanent, true);
    const [ok] = await d.deliver(simple(['rcpt@example.org']));
    assert.equal(ok!.error, undefined);
    await d.quit();
    assert.equal(seven.mails.length, 1);
    assert.equal(seven.received[0]!.envelope.bodyType, '7bit');
  } finally {
    await eight.close();
    await seven.close();
  }
});

test('SIZE: declared on MAIL, and a message over the limit is not sent', async () => {
  const p = await peer({ size: 100 });
  try {
    const c = await open(p);
    assert.equal(c.extensions.size, 100);
    const [big] = await c.deliver(simple(['rcpt@example.org'], { data: Buffer.alloc(200, 'a') }));
    assert.equal(big!.error?.enhanced, '5.3.4');
    assert.equal(big!.error?.permanent, true);
    assert.equal(p.mails.length, 0);
    const [streamed] = await c.deliver(simple(['rcpt@example.org'], { data: () => bytewise(Buffer.alloc(10, 'a')), size: 10 }));
    assert.equal(streamed!.error, undefined);
    await c.quit();
    assert.equal(p.mails[0]!.args && p.mails[0]!.args.SIZE, '10');
  } finally {
    await p.close();
  }
});

test('implicit TLS: a TLS socket from the caller counts as TLS for AUTH and REQUIRETLS', async () => {
  const p = await peer({
    secure: true,
    hideREQUIRETLS: false,
    disabledCommands: [],
    authMethods: ['PLAIN'],
    onAuth(auth, _session, cb) {
      cb(null, { user: auth.username });
    },
  });
  try {
    const socket = tls.connect({ host: '127.0.0.1', port: p.port, servername: 'mx.postern.test', ca: ca.certPEM });
    await once(socket, 'secureConnect');
    const c = await SMTPClient.open(socket, { hostname: 'client.postern.test', tls: verified, auth: { username: 'user', password: 'secret' } });
    assert.equal(c.tlsVerified, true);
    assert.equal(c.authMechanism, 'PLAIN');
    const [r] = await c.deliver(simple(['rcpt@example.org'], { requireTLS: true }));
    assert.equal(r!.error, undefined);
    await c.quit();
    assert.equal(p.received[0]!.secure, true);
    assert.equal(p.received[0]!.envelope.requireTLS, true);
  } finally {
    await p.close();
  }
});
