// SMTP AUTH on the submission ports: nodemailer with each mechanism it implements (over
// STARTTLS and over implicit TLS), and SCRAM with and without channel binding, driven by
// Postern's own SASL client over raw TLS sockets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls, { type TLSSocket } from 'node:tls';
import nodemailer from 'nodemailer';
import { startServe, type TestServer } from '../helpers/server.js';
import { Raw } from '../helpers/raw.js';
import { clientMechanism, type ClientOptions } from '../../src/sasl/client.js';
import { preferredChannelBinding, type ChannelBinding } from '../../src/sasl/channelbinding.js';
import { findBySubject, headerValues, smtpSession } from './helpers.js';

let srv: TestServer;
before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.close();
});

/** Log lines of successful logins with the mechanism used. */
function loginsWith(mechanism: string): number {
  return srv.output.split('\n').filter((l) => l.includes('"authenticated"') && l.includes(`"mechanism":"${mechanism}"`)).length;
}

for (const method of ['PLAIN', 'LOGIN', 'CRAM-MD5']) {
  for (const mode of ['starttls', 'implicit'] as const) {
    test(`nodemailer submits with AUTH ${method} over ${mode} TLS`, async () => {
      const before = loginsWith(method);
      const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port: mode === 'starttls' ? srv.ports.submission : srv.ports.submissions,
        secure: mode === 'implicit',
        requireTLS: mode === 'starttls',
        tls: { ca: srv.certPEM, servername: 'localhost' },
        auth: { user: 'jane@example.test', pass: 'secret-pass', method },
      });
      const subject = `nodemailer ${method} ${mode}`;
      try {
        const info = await transport.sendMail({
          from: 'Jane <jane@example.test>',
          to: 'jane@example.test',
          subject,
          text: `Sent with ${method}.\nSecond line.\n`,
        });
        assert.match(info.response, /^250 /);
        assert.deepEqual(info.accepted, ['jane@example.test']);
      } finally {
        transport.close();
      }
      assert.equal(loginsWith(method), before + 1, `a login with ${method} was logged`);
      const msgs = await findBySubject(srv, subject);
      assert.equal(msgs.length, 1);
      const msg = msgs[0]!.toString('utf8');
      assert.match(msg, /\r\n\r\nSent with [A-Z-0-9]+\.\r\nSecond line\.\r\n/);
      // Received: authenticated (A) over TLS (S) submission.
      assert.match(headerValues(msgs[0]!, 'received')[0]!, /with ESMTPSA/);
    });
  }
}

test('nodemailer with a wrong password gets 535', async () => {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: srv.ports.submissions,
    secure: true,
    tls: { ca: srv.certPEM, servername: 'localhost' },
    auth: { user: 'jane@example.test', pass: 'wrong-pass', method: 'CRAM-MD5' },
  });
  try {
    await assert.rejects(
      transport.sendMail({ from: 'jane@example.test', to: 'jane@example.test', subject: 'never', text: 'x' }),
      (e: Error & { responseCode?: number; code?: string }) => e.code === 'EAUTH' && e.responseCode === 535,
    );
  } finally {
    transport.close();
  }
});

/** Runs a SASL exchange with SMTP AUTH framing; returns the final reply code and the client's verdict on the server. */
async function saslAuth(c: Raw, mechanism: string, options: ClientOptions): Promise<{ code: number; text: string; serverVerified: boolean }> {
  const mech = clientMechanism(mechanism, options);
  const initial = mech.initialResponse;
  let r = await c.cmd(`AUTH ${mechanism}${initial ? ' ' + (initial.length ? initial.toString('base64') : '=') : ''}`);
  let serverVerified = false;
  while (r.code === 334) {
    const challenge = Buffer.from(r.text, 'base64');
    let answer: Buffer;
    try {
      answer = await mech.step(challenge);
    } catch (e) {
      c.write('*\r\n');
      await c.reply();
      throw e;
    }
    r = await c.cmd(answer.toString('base64'));
  }
  if (r.code === 235) {
    mech.finish();
    serverVerified = true;
  }
  return { code: r.code, text: r.text, serverVerified };
}

async function tlsSubmission(): Promise<Raw> {
  const c = await Raw.connectTLS(srv.ports.submissions, srv.certPEM);
  assert.equal((await c.reply()).code, 220);
  const ehlo = await c.cmd('EHLO client.example');
  assert.match(ehlo.text, /^AUTH .*SCRAM-SHA-256-PLUS/m);
  assert.match(ehlo.text, /^AUTH .*SCRAM-SHA-1(\s|$)/m);
  return c;
}

async function deliverAfterAuth(c: Raw, subject: string): Promise<void> {
  assert.equal((await c.cmd('MAIL FROM:<jane@example.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<jane@example.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  assert.equal((await c.cmd(`From: jane@example.test\r\nSubject: ${subject}\r\n\r\nbody\r\n.`)).code, 250);
}

const creds = { username: 'jane@example.test', password: 'secret-pass' };

test('SCRAM-SHA-256-PLUS with channel binding over implicit TLS', async () => {
  const c = await tlsSubmission();
  const binding = preferredChannelBinding(c.socket as TLSSocket, 'client');
  assert.ok(binding, 'channel binding available');
  const r = await saslAuth(c, 'SCRAM-SHA-256-PLUS', { ...creds, channelBinding: binding });
  assert.equal(r.code, 235, r.text);
  assert.ok(r.serverVerified);
  await deliverAfterAuth(c, 'scram plus');
  c.close();
  assert.equal((await findBySubject(srv, 'scram plus')).length, 1);
});

test('SCRAM-SHA-256-PLUS with channel binding after STARTTLS, tls-server-end-point too', async () => {
  for (const type of ['tls-exporter', 'tls-server-end-point'] as const) {
    const c = await smtpSession(srv.ports.submission);
    assert.equal((await c.cmd('STARTTLS')).code, 220);
    await c.startTLS(srv.certPEM);
    assert.match((await c.cmd('EHLO client.example')).text, /SCRAM-SHA-256-PLUS/);
    const { channelBindingData } = await import('../../src/sasl/channelbinding.js');
    const data = channelBindingData(c.socket as TLSSocket, type, 'client');
    assert.ok(data, `${type} available`);
    const r = await saslAuth(c, 'SCRAM-SHA-256-PLUS', { ...creds, channelBinding: { type, data } });
    assert.equal(r.code, 235, `${type}: ${r.text}`);
    c.close();
  }
});

test('SCRAM-SHA-256-PLUS with wrong channel binding data fails with 535', async () => {
  const c = await tlsSubmission();
  const real = preferredChannelBinding(c.socket as TLSSocket, 'client')!;
  const wrong: ChannelBinding = { type: real.type, data: Buffer.from(real.data.map((b) => b ^ 0xff)) };
  const r = await saslAuth(c, 'SCRAM-SHA-256-PLUS', { ...creds, channelBinding: wrong });
  assert.equal(r.code, 535, r.text);
  assert.match(r.text, /^5\.7\.8 /);
  assert.equal((await c.cmd('MAIL FROM:<jane@example.test>')).code, 530);
  c.close();
});

test('SCRAM without PLUS while the server offers PLUS: flag "y" is a downgrade and fails', async () => {
  // RFC 5802 6: "y" says the client could bind but thinks the server cannot; the server offered -PLUS.
  const c = await tlsSubmission();
  const binding = preferredChannelBinding(c.socket as TLSSocket, 'client')!;
  const r = await saslAuth(c, 'SCRAM-SHA-256', { ...creds, channelBinding: binding });
  assert.equal(r.code, 535, r.text);
  c.close();
});

for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256']) {
  test(`${mechanism} without channel binding succeeds`, async () => {
    const c = await tlsSubmission();
    const r = await saslAuth(c, mechanism, creds);
    assert.equal(r.code, 235, r.text);
    assert.ok(r.serverVerified);
    await deliverAfterAuth(c, `plain ${mechanism}`);
    c.close();
    assert.equal((await findBySubject(srv, `plain ${mechanism}`)).length, 1);
  });
}

test('SCRAM with a wrong password fails with 535', async () => {
  const c = await tlsSubmission();
  const r = await saslAuth(c, 'SCRAM-SHA-1', { ...creds, password: 'not-it' });
  assert.equal(r.code, 535, r.text);
  c.close();
});

// A client connecting by IP address sends no SNI (RFC 6066 3 forbids IP literals in it); it must
// get the default certificate on port 465 as it does after STARTTLS on port 587.
test('implicit TLS without SNI gets the default certificate', async () => {
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: srv.ports.submissions, ca: srv.certPEM, checkServerIdentity: () => undefined }, () => resolve(s));
    s.once('error', reject);
  });
  const c = new Raw(socket);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  c.close();
});
