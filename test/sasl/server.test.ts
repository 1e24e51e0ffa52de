import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_CLIENT_MESSAGE, advertisedMechanisms, normalizeUsername, serverMechanism } from '../../src/sasl/server.js';
import { PASSWORD, USERNAME, accountOptions, python } from './helpers.js';

const b = (s: string) => Buffer.from(s, 'utf8');

test('PLAIN accepts the right password, with and without initial response', async () => {
  const r = await serverMechanism('plain', await accountOptions())!.step(b(`\0${USERNAME}\0${PASSWORD}`));
  assert.deepEqual(r, { type: 'success', username: USERNAME, account: { id: 1 } });

  const m = serverMechanism('PLAIN', await accountOptions())!;
  assert.deepEqual(await m.step(undefined), { type: 'challenge', data: Buffer.alloc(0) });
  assert.equal((await m.step(b(`${USERNAME}\0${USERNAME}\0${PASSWORD}`))).type, 'success');
});

test('PLAIN rejects wrong passwords and unknown users as bad credentials', async () => {
  for (const message of [`\0${USERNAME}\0pencil2`, `\0${USERNAME}\0PENCIL`, `\0nobody@example.org\0${PASSWORD}`]) {
    const r = await serverMechanism('PLAIN', await accountOptions())!.step(b(message));
    assert.equal(r.type === 'failure' && r.reason, 'bad-credentials', message);
  }
});

test('PLAIN: authzid must be empty or the authenticating user', async () => {
  const r = await serverMechanism('PLAIN', await accountOptions())!.step(b(`admin@example.org\0${USERNAME}\0${PASSWORD}`));
  assert.equal(r.type === 'failure' && r.reason, 'not-authorized');
  const wrong = await serverMechanism('PLAIN', await accountOptions())!.step(b(`admin@example.org\0${USERNAME}\0bad`));
  assert.equal(wrong.type === 'failure' && wrong.reason, 'bad-credentials');
});

test('PLAIN rejects malformed messages', async () => {
  const cases = [
    b(''),
    b(`${USERNAME}${PASSWORD}`),
    b(`\0${USERNAME}${PASSWORD}`),
    b(`\0${USERNAME}\0${PASSWORD}\0`),
    b(`\0\0${PASSWORD}`),
    b(`\0${USERNAME}\0`),
    Buffer.concat([b(`\0${USERNAME}\0`), Buffer.from([0xc3, 0x28])]),
    Buffer.concat([b('\0'), Buffer.from([0xff]), b(`\0${PASSWORD}`)]),
    b(`\0us\u0001er\0${PASSWORD}`),
    b(`\0${'a'.repeat(400)}\0${PASSWORD}`),
    b(`\0${USERNAME}\0${'p'.repeat(MAX_CLIENT_MESSAGE)}`),
  ];
  for (const message of cases) {
    const r = await serverMechanism('PLAIN', await accountOptions())!.step(message);
    assert.equal(r.type === 'failure' && r.reason, 'malformed', JSON.stringify(message.toString()));
  }
});

test('PLAIN compares passwords after SASLprep and usernames after NFC', async () => {
  const r = await serverMechanism('PLAIN', await accountOptions())!.step(b(`\0${USERNAME}\0pen\u00ADcil`));
  assert.equal(r.type, 'success');
  const composed = await accountOptions({
    lookup: async (u) => (u === 'j\u00f6rg@example.org' ? (await accountOptions()).lookup(USERNAME) : undefined),
  });
  const nfd = await serverMechanism('PLAIN', composed)!.step(b(`\0jo\u0308rg@example.org\0${PASSWORD}`));
  assert.equal(nfd.type === 'success' && nfd.username, 'j\u00f6rg@example.org');
});

test('LOGIN prompts for username and password', async () => {
  const m = serverMechanism('LOGIN', await accountOptions())!;
  assert.deepEqual(await m.step(undefined), { type: 'challenge', data: b('Username:') });
  assert.deepEqual(await m.step(b(USERNAME)), { type: 'challenge', data: b('Password:') });
  assert.deepEqual(await m.step(b(PASSWORD)), { type: 'success', username: USERNAME, account: { id: 1 } });

  const withInitial = serverMechanism('LOGIN', await accountOptions())!;
  assert.deepEqual(await withInitial.step(b(USERNAME)), { type: 'challenge', data: b('Password:') });
  const wrong = await withInitial.step(b('pencil!'));
  assert.equal(wrong.type === 'failure' && wrong.reason, 'bad-credentials');
});

test('LOGIN rejects malformed answers', async () => {
  for (const [user, pass] of [[b(''), b(PASSWORD)], [b(USERNAME), b('')], [Buffer.from([0xfe]), b(PASSWORD)], [b(USERNAME), Buffer.from([0x80])], [b('a\0b'), b(PASSWORD)]]) {
    const m = serverMechanism('LOGIN', await accountOptions())!;
    await m.step(undefined);
    await m.step(user!);
    const r = await m.step(pass!);
    assert.equal(r.type === 'failure' && r.reason, 'malformed', `${user} ${pass}`);
  }
});

test('steps after the end, missing answers and over-long messages fail cleanly', async () => {
  const m = serverMechanism('LOGIN', await accountOptions())!;
  await m.step(undefined);
  const missing = await m.step(undefined);
  assert.equal(missing.type === 'failure' && missing.reason, 'malformed');
  const again = await m.step(b(USERNAME));
  assert.equal(again.type === 'failure' && again.message, 'exchange already finished');

  const long = await serverMechanism('LOGIN', await accountOptions())!.step(Buffer.alloc(MAX_CLIENT_MESSAGE + 1, 0x61));
  assert.equal(long.type === 'failure' && long.message, 'client message too long');
});

test('a failing account lookup rejects the step and ends the exchange', async () => {
  const m = serverMechanism('PLAIN', await accountOptions({ lookup: async () => Promise.reject(new Error('store down')) }))!;
  await assert.rejects(m.step(b(`\0${USERNAME}\0${PASSWORD}`)), /store down/);
  const r = await m.step(b('x'));
  assert.equal(r.type === 'failure' && r.reason, 'malformed');
});

// Computes the CRAM-MD5 response with Python's hmac module, independent of Postern's MD5.
const PY_CRAM = `
import hmac, sys
print(sys.argv[1] + ' ' + hmac.new(sys.argv[2].encode(), sys.argv[3].encode(), 'md5').hexdigest())
`;

test('CRAM-MD5 against Python hmac as client', async () => {
  for (const [username, password, expected] of [
    [USERNAME, PASSWORD, 'success'],
    [USERNAME, 'pencil ', 'bad-credentials'],
    ['nobody@example.org', PASSWORD, 'bad-credentials'],
  ]) {
    const m = serverMechanism('CRAM-MD5', await accountOptions())!;
    const challenge = await m.step(undefined);
    assert.equal(challenge.type, 'challenge');
    const text = challenge.type === 'challenge' ? challenge.data.toString() : '';
    // RFC 2195 2: the challenge has the form of a msg-id.
    assert.match(text, /^<\d+\.\d+@mail\.example\.org>$/);
    const r = await m.step(b(await python(PY_CRAM, username!, password!, text)));
    if (expected === 'success') assert.deepEqual(r, { type: 'success', username, account: { id: 1 } });
    else assert.equal(r.type === 'failure' && r.reason, expected);
  }
});

test('CRAM-MD5 challenges differ and malformed responses are rejected', async () => {
  const a = await serverMechanism('CRAM-MD5', await accountOptions())!.step(undefined);
  const c = await serverMechanism('CRAM-MD5', await accountOptions())!.step(undefined);
  assert.notDeepEqual(a, c);
  const initial = await serverMechanism('CRAM-MD5', await accountOptions())!.step(b('x'));
  assert.equal(initial.type === 'failure' && initial.reason, 'malformed');
  for (const response of [b(''), b(USERNAME), b(`${USERNAME} 1234`), b(`${USERNAME} ${'g'.repeat(32)}`), b(` ${'0'.repeat(32)}`), Buffer.from([0xff, 0x20, 0x30])]) {
    const m = serverMechanism('CRAM-MD5', await accountOptions())!;
    await m.step(undefined);
    const r = await m.step(response);
    assert.equal(r.type === 'failure' && r.reason, 'malformed', response.toString());
  }
});

test('mechanisms to advertise depend on TLS, channel binding and client certificates', () => {
  assert.deepEqual(advertisedMechanisms({ tls: false, channelBinding: false }), ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'CRAM-MD5']);
  assert.deepEqual(advertisedMechanisms({ tls: true, channelBinding: false }), ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'CRAM-MD5', 'PLAIN', 'LOGIN']);
  assert.deepEqual(advertisedMechanisms({ tls: true, channelBinding: true, clientCertificate: true }), [
    'SCRAM-SHA-256-PLUS',
    'SCRAM-SHA-1-PLUS',
    'SCRAM-SHA-256',
    'SCRAM-SHA-1',
    'CRAM-MD5',
    'PLAIN',
    'LOGIN',
    'EXTERNAL',
  ]);
});

test('unknown mechanisms and ones lacking their callbacks are not started', async () => {
  const options = await accountOptions();
  assert.equal(serverMechanism('GSSAPI', options), undefined);
  assert.equal(serverMechanism('__proto__', options), undefined);
  assert.equal(serverMechanism('SCRAM-SHA-256-PLUS', options), undefined);
  assert.equal(serverMechanism('EXTERNAL', options), undefined);
  assert.equal(serverMechanism('scram-sha-1', options)?.name, 'SCRAM-SHA-1');
});

test('usernames are NFC-normalized and control characters refused', () => {
  assert.equal(normalizeUsername('e\u0301@example.org'), '\u00e9@example.org');
  assert.equal(normalizeUsername(''), undefined);
  assert.equal(normalizeUsername('a\u0085b'), undefined);
  assert.equal(normalizeUsername('x'.repeat(321)), undefined);
});
