import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientMechanism } from '../../src/sasl/client.js';
import { serverMechanism, type StepResult } from '../../src/sasl/server.js';
import { type Account, PASSWORD, USERNAME, accountOptions, exchange, python } from './helpers.js';

const b = (s: string) => Buffer.from(s, 'utf8');

// An independent SCRAM client in Python: given the hash, password, client-first-message-bare,
// server-first-message and channel binding attribute bytes, prints client-final and the expected
// server-final message.
const PY_SCRAM = `
import sys, base64, hashlib, hmac
h, password, first_bare, server_first, cbind = sys.argv[1:6]
attrs = dict(a.split('=', 1) for a in server_first.split(','))
salted = hashlib.pbkdf2_hmac(h, password.encode(), base64.b64decode(attrs['s']), int(attrs['i']))
client_key = hmac.new(salted, b'Client Key', h).digest()
stored_key = hashlib.new(h, client_key).digest()
without_proof = 'c=' + base64.b64encode(cbind.encode()).decode() + ',r=' + attrs['r']
auth = ','.join([first_bare, server_first, without_proof]).encode()
proof = bytes(x ^ y for x, y in zip(client_key, hmac.new(stored_key, auth, h).digest()))
server_key = hmac.new(salted, b'Server Key', h).digest()
print(without_proof + ',p=' + base64.b64encode(proof).decode())
print('v=' + base64.b64encode(hmac.new(server_key, auth, h).digest()).decode())
`;

test('RFC 5802 5 SCRAM-SHA-1 example: client proof and server signature', async () => {
  const client = clientMechanism('SCRAM-SHA-1', { username: 'user', password: 'pencil', nonce: 'fyko+d2lbbFgONRv9qkxdawL' });
  assert.equal(client.initialResponse?.toString(), 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
  const final = await client.step(b('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'));
  assert.equal(final.toString(), 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
  client.finish(b('v=rmF9pqV8S7suAoZWja4dJRkFsKQ='));
});

test('RFC 7677 3 SCRAM-SHA-256 example: client proof and server signature', async () => {
  const client = clientMechanism('SCRAM-SHA-256', { username: 'user', password: 'pencil', nonce: 'rOprNGfwEbeRWgbNEkqO' });
  assert.equal(client.initialResponse?.toString(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  const final = await client.step(b(serverFirst));
  assert.equal(
    final.toString(),
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  );
  assert.deepEqual(await client.step(b('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')), Buffer.alloc(0));
  client.finish();
});

test('SCRAM client rejects a wrong server signature and success without one', async () => {
  const client = clientMechanism('SCRAM-SHA-1', { username: 'user', password: 'pencil', nonce: 'fyko+d2lbbFgONRv9qkxdawL' });
  await client.step(b('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'));
  assert.throws(() => client.finish(b('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=x')), /invalid SCRAM server-final/);
  assert.throws(() => client.finish(b('v=AmF9pqV8S7suAoZWja4dJRkFsKQ=')), /does not match/);
  assert.throws(() => client.finish(), /without proving/);
  await assert.rejects(client.step(b('e=invalid-proof')), /server error: invalid-proof/);
});

test('SCRAM client refuses hostile server-first messages', async () => {
  const cases: [string, RegExp][] = [
    ['r=abc,s=QSXCR+Q6sek8bf92,i=4096', /does not extend/],
    ['r=nonce,s=QSXCR+Q6sek8bf92,i=4096', /does not extend/],
    ['r=nonceXYZ,s=QSXCR+Q6sek8bf92,i=1', /iteration count/],
    ['r=nonceXYZ,s=QSXCR+Q6sek8bf92,i=4095', /iteration count/],
    ['r=nonceXYZ,s=QSXCR+Q6sek8bf92,i=99999999999', /iteration count/],
    ['r=nonceXYZ,s=QSXCR+Q6sek8bf92,i=-5', /iteration count/],
    ['r=nonceXYZ,s=not base64!,i=4096', /salt/],
    ['r=nonceXYZ,s=,i=4096', /salt/],
    ['m=ext,r=nonceXYZ,s=QSXCR+Q6sek8bf92,i=4096', /extension/],
    ['e=other-error', /server error/],
    ['s=QSXCR+Q6sek8bf92,r=nonceXYZ,i=4096', /invalid SCRAM server-first/],
    ['garbage', /invalid SCRAM server-first/],
  ];
  for (const [serverFirst, error] of cases) {
    const client = clientMechanism('SCRAM-SHA-256', { username: 'u', password: 'p', nonce: 'nonce' });
    await assert.rejects(client.step(b(serverFirst)), error, serverFirst);
  }
  const client = clientMechanism('SCRAM-SHA-256', { username: 'u', password: 'p' });
  await assert.rejects(client.step(Buffer.from([0xff, 0xfe])), /invalid SCRAM server-first/);
});

for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256']) {
  test(`${mechanism}: server and client authenticate each other`, async () => {
    const server = serverMechanism(mechanism, await accountOptions())!;
    const client = clientMechanism(mechanism, { username: USERNAME, password: PASSWORD });
    const r = await exchange(server, client);
    assert.equal(r.type, 'success');
    assert.equal(r.type === 'success' && r.username, USERNAME);
    assert.deepEqual(r.type === 'success' && r.account, { id: 1 });
  });

  test(`${mechanism}: server against an independent Python client`, async () => {
    const hash = mechanism === 'SCRAM-SHA-1' ? 'sha1' : 'sha256';
    for (const [password, expected] of [[PASSWORD, 'success'], ['pencils', 'failure']] as const) {
      const server = serverMechanism(mechanism, await accountOptions())!;
      const first = `n=${USERNAME},r=pyClientNonce0123`;
      const challenge = await server.step(b(`n,,${first}`));
      assert.equal(challenge.type, 'challenge');
      const serverFirst = challenge.type === 'challenge' ? challenge.data.toString() : '';
      assert.match(serverFirst, /^r=pyClientNonce0123[^,]+,s=[A-Za-z0-9+/=]+,i=4096$/);
      const [clientFinal, serverFinal] = (await python(PY_SCRAM, hash, password, first, serverFirst, 'n,,')).split('\n');
      const r = await server.step(b(clientFinal!));
      assert.equal(r.type, expected);
      if (r.type === 'success') assert.equal(r.data?.toString(), serverFinal);
      if (r.type === 'failure') {
        assert.equal(r.reason, 'bad-credentials');
        assert.equal(r.data?.toString(), 'e=invalid-proof');
      }
    }
  });
}

test('SCRAM with a wrong password or unknown user fails as bad credentials', async () => {
  for (const [username, password] of [[USERNAME, 'wrong'], ['nobody@example.org', PASSWORD]] as const) {
    const server = serverMechanism('SCRAM-SHA-256', await accountOptions())!;
    const r = await exchange(server, clientMechanism('SCRAM-SHA-256', { username, password }));
    assert.equal(r.type === 'failure' && r.reason, 'bad-credentials');
    assert.equal(r.type === 'failure' && r.data?.toString(), 'e=invalid-proof');
  }
});

test('SCRAM server-first for an unknown user is stable and looks like a real one', async () => {
  const salts = [];
  for (let i = 0; i < 2; i++) {
    const server = serverMechanism('SCRAM-SHA-1', await accountOptions())!;
    const r = await server.step(b('n,,n=ghost@example.org,r=abc'));
    assert.equal(r.type, 'challenge');
    salts.push(r.type === 'challenge' && /,s=([^,]+),i=4096$/.exec(r.data.toString())?.[1]);
  }
  assert.ok(salts[0]);
  assert.equal(salts[0], salts[1]);
});

test('SCRAM without initial response starts with an empty challenge', async () => {
  const server = serverMechanism('SCRAM-SHA-256', await accountOptions())!;
  const client = clientMechanism('SCRAM-SHA-256', { username: USERNAME, password: PASSWORD });
  const start = await server.step(undefined);
  assert.deepEqual(start, { type: 'challenge', data: Buffer.alloc(0) });
  let r = await server.step(client.initialResponse);
  r = await server.step(await client.step(r.type === 'challenge' ? r.data : Buffer.alloc(0)));
  assert.equal(r.type, 'success');
  client.finish(r.type === 'success' ? r.data : undefined);
});

test('SCRAM authzid must be empty or the user itself; escaped usernames are decoded', async () => {
  const run = async (first: string) => {
    const server = serverMechanism('SCRAM-SHA-1', await accountOptions({ lookup: async (u) => (await accountOptions()).lookup(u === 'a,b=c@example.org' ? USERNAME : u) }))!;
    const r = await server.step(b(first));
    const serverFirst = r.type === 'challenge' ? r.data.toString() : '';
    const bare = first.slice(first.indexOf(',', first.indexOf(',') + 1) + 1);
    const gs2 = first.slice(0, first.length - bare.length);
    const [clientFinal] = (await python(PY_SCRAM, 'sha1', PASSWORD, bare, serverFirst, gs2)).split('\n');
    return server.step(b(clientFinal!));
  };
  const ok = await run(`n,a=${USERNAME},n=${USERNAME},r=n1`);
  assert.equal(ok.type, 'success');
  const other = await run(`n,a=boss@example.org,n=${USERNAME},r=n2`);
  assert.equal(other.type === 'failure' && other.reason, 'not-authorized');
  const escaped = await run('n,,n=a=2Cb=3Dc@example.org,r=n3');
  assert.equal(escaped.type === 'success' && escaped.username, 'a,b=c@example.org');
});

test('SCRAM server rejects malformed client messages', async () => {
  const firstCases: [Buffer, string | undefined][] = [
    [Buffer.from([0x6e, 0x2c, 0x2c, 0xff]), 'e=invalid-encoding'],
    [b(''), 'e=other-error'],
    [b('x,,n=user,r=abc'), 'e=other-error'],
    [b('n,n=user,r=abc'), 'e=other-error'],
    [b('p=tls-exporter,,n=user,r=abc'), 'e=other-error'],
    [b('n,,m=ext,n=user,r=abc'), 'e=extensions-not-supported'],
    [b('n,,n=us=2Xer,r=abc'), 'e=invalid-username-encoding'],
    [b('n,a=x=y,n=user,r=abc'), 'e=invalid-username-encoding'],
    [b('n,,n=,r=abc'), 'e=invalid-username-encoding'],
    [b('n,,r=abc,n=user'), 'e=other-error'],
    [b('n,,n=user,r='), 'e=other-error'],
    [b('n,,n=user,r=a\u00e9'), 'e=other-error'],
    [b('n,,n=user'), 'e=other-error'],
    [b('n,,n=user,r=abc,junk'), 'e=other-error'],
    [b(`n,,n=${'u'.repeat(5000)},r=abc`), undefined],
  ];
  for (const [message, error] of firstCases) {
    const server = serverMechanism('SCRAM-SHA-256', await accountOptions())!;
    const r = await server.step(message);
    assert.equal(r.type === 'failure' && r.reason, 'malformed', message.toString());
    assert.equal(r.type === 'failure' && r.data?.toString(), error, message.toString());
  }

  const finals: ((nonce: string, proof: string) => string)[] = [
    (n, p) => `c=biws,r=${n}x,p=${p}`,
    (n) => `c=biws,r=${n}`,
    (n) => `c=biws,r=${n},p=not!base64`,
    (n) => `c=biws,r=${n},p=AAAA`,
    (n, p) => `r=${n},c=biws,p=${p}`,
    (n, p) => `c=bi!ws,r=${n},p=${p}`,
    (n, p) => `c=biws,r=${n},junk,p=${p}`,
  ];
  for (const final of finals) {
    const server = serverMechanism('SCRAM-SHA-256', await accountOptions())!;
    const r = await server.step(b(`n,,n=${USERNAME},r=abc`));
    const nonce = r.type === 'challenge' ? /^r=([^,]+)/.exec(r.data.toString())![1]! : '';
    const proof = Buffer.alloc(32, 1).toString('base64');
    const f = await server.step(b(final(nonce, proof)));
    assert.equal(f.type === 'failure' && f.reason, 'malformed', final(nonce, proof));
  }
});

test('SCRAM server: channel binding flags against what the server offers', async () => {
  const binding = Buffer.alloc(32, 7);
  const withBinding = await accountOptions({ channelBinding: (type) => (type === 'tls-exporter' ? binding : undefined) });
  const withoutBinding = await accountOptions({ channelBinding: () => undefined });
  const first = async (mechanism: string, options: typeof withBinding, message: string): Promise<StepResult<Account>> =>
    serverMechanism(mechanism, options)!.step(b(message));

  // RFC 5802 6: "y" while the server offers channel binding is a downgrade.
  const downgrade = await first('SCRAM-SHA-256', withBinding, `y,,n=${USERNAME},r=abc`);
  assert.equal(downgrade.type === 'failure' && downgrade.reason, 'bad-credentials');
  assert.equal(downgrade.type === 'failure' && downgrade.data?.toString(), 'e=server-does-support-channel-binding');
  assert.equal((await first('SCRAM-SHA-256', withoutBinding, `y,,n=${USERNAME},r=abc`)).type, 'challenge');
  assert.equal((await first('SCRAM-SHA-256', await accountOptions(), `y,,n=${USERNAME},r=abc`)).type, 'challenge');

  const plusWithN = await first('SCRAM-SHA-256-PLUS', withBinding, `n,,n=${USERNAME},r=abc`);
  assert.equal(plusWithN.type === 'failure' && plusWithN.reason, 'malformed');
  const unknownType = await first('SCRAM-SHA-256-PLUS', withBinding, `p=tls-unique,,n=${USERNAME},r=abc`);
  assert.equal(unknownType.type === 'failure' && unknownType.data?.toString(), 'e=unsupported-channel-binding-type');
  const unavailable = await first('SCRAM-SHA-256-PLUS', withBinding, `p=tls-server-end-point,,n=${USERNAME},r=abc`);
  assert.equal(unavailable.type === 'failure' && unavailable.data?.toString(), 'e=channel-binding-not-supported');

  for (const [data, expected] of [[binding, 'success'], [Buffer.alloc(32, 8), 'failure']] as const) {
    const server = serverMechanism('SCRAM-SHA-256-PLUS', withBinding)!;
    const client = clientMechanism('SCRAM-SHA-256-PLUS', { username: USERNAME, password: PASSWORD, channelBinding: { type: 'tls-exporter', data } });
    const r = await exchange(server, client);
    assert.equal(r.type, expected);
    if (r.type === 'failure') {
      assert.equal(r.reason, 'bad-credentials');
      assert.equal(r.data?.toString(), 'e=channel-bindings-dont-match');
    }
  }

  const python1 = serverMechanism('SCRAM-SHA-1-PLUS', withBinding)!;
  const bare = `n=${USERNAME},r=plusNonce`;
  const sf = await python1.step(b(`p=tls-exporter,,${bare}`));
  const cbind = `p=tls-exporter,,${binding.toString('latin1')}`;
  const [clientFinal] = (await python(PY_SCRAM, 'sha1', PASSWORD, bare, sf.type === 'challenge' ? sf.data.toString() : '', cbind)).split('\n');
  assert.equal((await python1.step(b(clientFinal!))).type, 'success');
});
