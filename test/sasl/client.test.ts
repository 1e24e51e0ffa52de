import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_MECHANISMS, clientMechanism, pickMechanism } from '../../src/sasl/client.js';
import { serverMechanism } from '../../src/sasl/server.js';
import { PASSWORD, USERNAME, accountOptions, exchange } from './helpers.js';

const ALL = [...CLIENT_MECHANISMS, 'EXTERNAL', 'XOAUTH2'];

test('pickMechanism prefers the strongest offered mechanism', () => {
  assert.equal(pickMechanism(ALL, { channelBinding: true }), 'SCRAM-SHA-256-PLUS');
  assert.equal(pickMechanism(ALL, { channelBinding: false }), 'SCRAM-SHA-256');
  assert.equal(pickMechanism(['login', 'plain', 'scram-sha-1-plus', 'SCRAM-SHA-1'], { channelBinding: true }), 'SCRAM-SHA-1-PLUS');
  assert.equal(pickMechanism(['LOGIN', 'PLAIN', 'CRAM-MD5'], { channelBinding: true }), 'CRAM-MD5');
  assert.equal(pickMechanism(['LOGIN', 'PLAIN'], { channelBinding: false }), 'PLAIN');
  assert.equal(pickMechanism(['LOGIN'], { channelBinding: false }), 'LOGIN');
  assert.equal(pickMechanism(['XOAUTH2', 'GSSAPI'], { channelBinding: true }), undefined);
});

test('pickMechanism honours the allowed list', () => {
  assert.equal(pickMechanism(ALL, { channelBinding: true, allowed: ['PLAIN', 'scram-sha-1'] }), 'SCRAM-SHA-1');
  assert.equal(pickMechanism(ALL, { channelBinding: true, allowed: ['LOGIN'] }), 'LOGIN');
  assert.equal(pickMechanism(['PLAIN'], { channelBinding: true, allowed: ['LOGIN'] }), undefined);
  assert.equal(pickMechanism(ALL, { channelBinding: true, allowed: [] }), undefined);
});

test('every client mechanism authenticates against the server, and fails with a wrong password', async () => {
  for (const name of ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'CRAM-MD5', 'PLAIN', 'LOGIN']) {
    for (const [password, expected] of [[PASSWORD, 'success'], ['Pencil', 'failure']]) {
      const r = await exchange(serverMechanism(name, await accountOptions())!, clientMechanism(name, { username: USERNAME, password: password! }));
      assert.equal(r.type, expected, `${name} ${password}`);
      if (r.type === 'success') assert.equal(r.username, USERNAME);
      if (r.type === 'failure') assert.equal(r.reason, 'bad-credentials');
    }
  }
});

test('PLAIN client answers an empty challenge once when no initial response was sent', async () => {
  const client = clientMechanism('PLAIN', { username: 'tim', password: 'secret' });
  assert.equal(client.initialResponse?.toString(), '\0tim\0secret');
  assert.equal((await client.step(Buffer.alloc(0))).toString(), '\0tim\0secret');
  await assert.rejects(client.step(Buffer.alloc(0)), /unexpected PLAIN challenge/);
  await assert.rejects(clientMechanism('PLAIN', { username: 'u', password: 'p' }).step(Buffer.from('x')), /unexpected/);
});

test('LOGIN client answers username then password, nothing more', async () => {
  const client = clientMechanism('LOGIN', { username: 'tim', password: 'secret' });
  assert.equal(client.initialResponse, undefined);
  assert.equal((await client.step(Buffer.from('Username:'))).toString(), 'tim');
  assert.equal((await client.step(Buffer.from('Password:'))).toString(), 'secret');
  await assert.rejects(client.step(Buffer.from('Again:')), /unexpected LOGIN challenge/);
});

test('CRAM-MD5 client reproduces the RFC 2195 example', async () => {
  const client = clientMechanism('CRAM-MD5', { username: 'tim', password: 'tanstaaftanstaaf' });
  assert.equal(client.initialResponse, undefined);
  const response = await client.step(Buffer.from('<1896.697170952@postoffice.reston.mci.net>'));
  assert.equal(response.toString(), 'tim b913a602c7eda7a495b4e6e7334d3890');
  await assert.rejects(client.step(Buffer.from('<again@x>')), /unexpected/);
});

test('clientMechanism refuses unknown mechanisms, -PLUS without binding and bad passwords', () => {
  assert.throws(() => clientMechanism('GSSAPI', { username: 'u', password: 'p' }), /unsupported/);
  assert.throws(() => clientMechanism('SCRAM-SHA-256-PLUS', { username: 'u', password: 'p' }), /channel binding/);
  assert.throws(() => clientMechanism('SCRAM-SHA-256', { username: 'u', password: 'a\u0007' }), /password/);
  assert.throws(() => clientMechanism('SCRAM-SHA-1', { username: 'u', password: 'p', nonce: 'a,b' }), /nonce/);
});

test('SCRAM client escapes special characters in the username and picks the gs2 flag', () => {
  const data = Buffer.alloc(32);
  const n = clientMechanism('SCRAM-SHA-1', { username: 'a,b=c', password: 'p', nonce: 'x' });
  assert.equal(n.initialResponse?.toString(), 'n,,n=a=2Cb=3Dc,r=x');
  const y = clientMechanism('SCRAM-SHA-1', { username: 'u', password: 'p', nonce: 'x', channelBinding: { type: 'tls-exporter', data } });
  assert.equal(y.initialResponse?.toString(), 'y,,n=u,r=x');
  const p = clientMechanism('SCRAM-SHA-256-PLUS', { username: 'u', password: 'p', nonce: 'x', channelBinding: { type: 'tls-server-end-point', data } });
  assert.equal(p.initialResponse?.toString(), 'p=tls-server-end-point,,n=u,r=x');
});
