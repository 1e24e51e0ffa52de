import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import * as tls from 'node:tls';
import { type ChannelBinding, channelBindingData, preferredChannelBinding, tlsServerEndPoint } from '../../src/sasl/channelbinding.js';
import { type ClientMechanism, clientMechanism, pickMechanism } from '../../src/sasl/client.js';
import { type StepResult, advertisedMechanisms, publicKeyFingerprint, serverMechanism } from '../../src/sasl/server.js';
import { type Account, PASSWORD, USERNAME, accountOptions, selfSigned } from './helpers.js';

// P-256 key, signed with ECDSA-SHA384: tls-server-end-point must hash with SHA-384.
const serverCert = selfSigned('ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha384');
const clientCert = selfSigned('ec', '-pkeyopt', 'ec_paramgen_curve:P-256');

interface Pair {
  server: tls.TLSSocket;
  client: tls.TLSSocket;
  close(): Promise<void>;
}

// A TLS connection over loopback between a node:tls server and client.
async function connect(options: { maxVersion?: tls.SecureVersion; cert?: { cert: string; key: string } } = {}): Promise<Pair> {
  const { cert, key } = await serverCert;
  const server = tls.createServer({ cert, key, requestCert: true, rejectUnauthorized: false });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
  const client = tls.connect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    ca: cert,
    maxVersion: options.maxVersion,
    ...options.cert,
  });
  await once(client, 'secureConnect');
  const [serverSocket] = await accepted;
  return {
    server: serverSocket,
    client,
    async close() {
      client.destroy();
      serverSocket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

function lineReader(socket: tls.TLSSocket): () => Promise<string> {
  const lines = createInterface({ input: socket, crlfDelay: Infinity })[Symbol.asyncIterator]();
  return async () => {
    const r = await lines.next();
    if (r.done) throw new Error('connection closed');
    return r.value;
  };
}

const b64 = (data: Buffer | undefined) => (data === undefined ? '' : data.toString('base64'));

// Server end of a tiny line protocol in the style of IMAP AUTHENTICATE: "MECH [initial]" from the
// client, "+ challenge", "OK data" or "NO reason data" from the server, base64 throughout.
async function serve(socket: tls.TLSSocket): Promise<StepResult<Account>> {
  const next = lineReader(socket);
  const [name, initial] = (await next()).split(' ');
  const options = await accountOptions({ channelBinding: (type) => channelBindingData(socket, type, 'server') });
  const mechanism = serverMechanism(name!, options)!;
  let r = await mechanism.step(initial === undefined || initial === '' ? undefined : Buffer.from(initial, 'base64'));
  while (r.type === 'challenge') {
    socket.write(`+ ${b64(r.data)}\n`);
    r = await mechanism.step(Buffer.from(await next(), 'base64'));
  }
  socket.write(r.type === 'success' ? `OK ${b64(r.data)}\n` : `NO ${r.reason} ${b64(r.data)}\n`);
  return r;
}

async function authenticate(socket: tls.TLSSocket, mechanism: ClientMechanism): Promise<string> {
  const next = lineReader(socket);
  socket.write(`${mechanism.name} ${b64(mechanism.initialResponse)}\n`);
  for (;;) {
    const line = await next();
    if (line.startsWith('+ ')) {
      socket.write(`${b64(await mechanism.step(Buffer.from(line.slice(2), 'base64')))}\n`);
      continue;
    }
    const [status, , data] = line.split(' ');
    if (status === 'OK') mechanism.finish(Buffer.from(line.slice(3), 'base64'));
    return status === 'OK' ? 'OK' : Buffer.from(data ?? '', 'base64').toString();
  }
}

async function scramOverTLS(pair: Pair, name: string, binding: ChannelBinding | undefined): Promise<[StepResult<Account>, string]> {
  const client = clientMechanism(name, { username: USERNAME, password: PASSWORD, channelBinding: binding });
  return Promise.all([serve(pair.server), authenticate(pair.client, client)]);
}

test('TLS 1.3: both ends compute the same channel binding data', async () => {
  const pair = await connect();
  try {
    assert.equal(pair.client.getProtocol(), 'TLSv1.3');
    const exporter = channelBindingData(pair.server, 'tls-exporter', 'server');
    assert.equal(exporter?.length, 32);
    assert.deepEqual(channelBindingData(pair.client, 'tls-exporter', 'client'), exporter);
    // RFC 5929 4.1 with the certificate's own hash, computed here independently.
    const expected = createHash('sha384').update((await serverCert).der).digest();
    assert.deepEqual(channelBindingData(pair.server, 'tls-server-end-point', 'server'), expected);
    assert.deepEqual(channelBindingData(pair.client, 'tls-server-end-point', 'client'), expected);
    assert.deepEqual(preferredChannelBinding(pair.client, 'client'), { type: 'tls-exporter', data: exporter });
  } finally {
    await pair.close();
  }
});

test('TLS 1.3: SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS succeed with tls-exporter and tls-server-end-point', async () => {
  for (const [name, type] of [['SCRAM-SHA-256-PLUS', 'tls-exporter'], ['SCRAM-SHA-1-PLUS', 'tls-server-end-point']] as const) {
    const pair = await connect();
    try {
      const offered = advertisedMechanisms({ tls: true, channelBinding: preferredChannelBinding(pair.server, 'server') !== undefined });
      assert.equal(pickMechanism(offered, { channelBinding: true }), 'SCRAM-SHA-256-PLUS');
      const data = channelBindingData(pair.client, type, 'client')!;
      const [result, clientOutcome] = await scramOverTLS(pair, name, { type, data });
      assert.equal(result.type === 'success' && result.username, USERNAME);
      assert.equal(clientOutcome, 'OK');
    } finally {
      await pair.close();
    }
  }
});

test('TLS 1.3: -PLUS fails when the client binds to a different channel', async () => {
  const other = await connect();
  const pair = await connect();
  try {
    const foreign = preferredChannelBinding(other.client, 'client')!;
    const [result, clientOutcome] = await scramOverTLS(pair, 'SCRAM-SHA-256-PLUS', foreign);
    assert.equal(result.type === 'failure' && result.reason, 'bad-credentials');
    assert.equal(clientOutcome, 'e=channel-bindings-dont-match');
  } finally {
    await pair.close();
    await other.close();
  }
});

test('TLS 1.3: a client signalling it saw no -PLUS offer is refused as a downgrade', async () => {
  const pair = await connect();
  try {
    const binding = preferredChannelBinding(pair.client, 'client');
    const [result, clientOutcome] = await scramOverTLS(pair, 'SCRAM-SHA-256', binding);
    assert.equal(result.type === 'failure' && result.reason, 'bad-credentials');
    assert.equal(clientOutcome, 'e=server-does-support-channel-binding');
  } finally {
    await pair.close();
  }
});

test('TLS 1.2: tls-exporter is not offered, tls-server-end-point binds', async () => {
  const pair = await connect({ maxVersion: 'TLSv1.2' });
  try {
    assert.equal(pair.client.getProtocol(), 'TLSv1.2');
    assert.equal(channelBindingData(pair.server, 'tls-exporter', 'server'), undefined);
    assert.equal(channelBindingData(pair.client, 'tls-exporter', 'client'), undefined);
    const binding = preferredChannelBinding(pair.client, 'client');
    assert.equal(binding?.type, 'tls-server-end-point');
    const [result] = await scramOverTLS(pair, 'SCRAM-SHA-256-PLUS', binding);
    assert.equal(result.type, 'success');
  } finally {
    await pair.close();
  }
});

test('TLS: plain SCRAM without binding still works on a connection that offers -PLUS', async () => {
  const pair = await connect();
  try {
    const [result, clientOutcome] = await scramOverTLS(pair, 'SCRAM-SHA-256', undefined);
    assert.equal(result.type, 'success');
    assert.equal(clientOutcome, 'OK');
  } finally {
    await pair.close();
  }
});

test('tls-server-end-point hash follows the signature algorithm (RFC 5929 4.1)', async () => {
  const cases: [string[], string | undefined][] = [
    [['rsa:2048', '-sha1'], 'sha256'],
    [['rsa:2048', '-md5'], 'sha256'],
    [['rsa:2048', '-sha512'], 'sha512'],
    [['rsa:2048', '-sha384', '-sigopt', 'rsa_padding_mode:pss'], 'sha384'],
    [['rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048'], 'sha256'],
    [['ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-sha224'], 'sha224'],
    [['ed25519'], undefined],
  ];
  for (const [args, hash] of cases) {
    const { der } = await selfSigned(...args);
    const expected = hash === undefined ? undefined : createHash(hash).update(der).digest();
    assert.deepEqual(tlsServerEndPoint(der), expected, args.join(' '));
  }
});

test('tls-server-end-point rejects malformed certificates without throwing', async () => {
  const { der } = await serverCert;
  assert.equal(tlsServerEndPoint(Buffer.alloc(0)), undefined);
  assert.equal(tlsServerEndPoint(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff])), undefined);
  assert.equal(tlsServerEndPoint(Buffer.from([0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9])), undefined);
  for (let n = 0; n < der.length; n += 7) assert.equal(tlsServerEndPoint(der.subarray(0, n)), undefined, `truncated at ${n}`);
  assert.equal(tlsServerEndPoint(Buffer.alloc(100_000, 0x30)), undefined);
});

test('EXTERNAL authenticates by a registered client certificate public key', async () => {
  const registered = await clientCert;
  // The fingerprint is the SHA-256 of the SubjectPublicKeyInfo, as openssl computes it.
  const opensslFingerprint = await new Promise<string>((resolve, reject) => {
    const pipeline = 'openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r';
    const child = execFile('sh', ['-c', pipeline], { timeout: 20_000 }, (err, out) =>
      err ? reject(err) : resolve(out.split(' ')[0]!),
    );
    child.stdin!.end(registered.cert);
  });
  const fingerprint = publicKeyFingerprint(new X509Certificate(registered.cert));
  assert.equal(fingerprint.toString('hex'), opensslFingerprint);

  const run = async (cert: { cert: string; key: string } | undefined, authzid: string) => {
    const pair = await connect({ cert });
    try {
      const options = await accountOptions({
        tlsClientCertificate: () => pair.server.getPeerX509Certificate(),
        lookupCertificate: async (fp) => (fp.equals(fingerprint) ? { username: USERNAME, account: { id: 1 } } : undefined),
      });
      assert.ok(advertisedMechanisms({ tls: true, channelBinding: true, clientCertificate: pair.server.getPeerX509Certificate() !== undefined }).includes('EXTERNAL') === (cert !== undefined));
      return await serverMechanism('EXTERNAL', options)!.step(Buffer.from(authzid));
    } finally {
      await pair.close();
    }
  };
  assert.deepEqual(await run(registered, ''), { type: 'success', username: USERNAME, account: { id: 1 } });
  assert.equal((await run(registered, USERNAME)).type, 'success');
  const other = await run(registered, 'boss@example.org');
  assert.equal(other.type === 'failure' && other.reason, 'not-authorized');
  const unregistered = await run(await selfSigned('ec', '-pkeyopt', 'ec_paramgen_curve:P-256'), '');
  assert.equal(unregistered.type === 'failure' && unregistered.reason, 'bad-credentials');
  const none = await run(undefined, '');
  assert.equal(none.type === 'failure' && none.reason, 'bad-credentials');
});
