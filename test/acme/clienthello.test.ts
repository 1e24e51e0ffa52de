// Reading SNI and ALPN from a ClientHello before the handshake, and handing the bytes back so
// the handshake still succeeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { peekClientHello, parseClientHello, type ClientHello } from '../../src/acme/clienthello.js';
import { selfSigned } from '../../src/tls/selfsigned.js';
import { intervalHours, intervalStart } from '../../src/reports/incoming.js';

/** A server that peeks, then completes a TLS handshake on the same socket. */
async function server(): Promise<{ port: number; hellos: (ClientHello | null)[]; close: () => void }> {
  const { keyPEM, certPEM } = selfSigned(['localhost']);
  const hellos: (ClientHello | null)[] = [];
  const srv = net.createServer(async (sock) => {
    hellos.push(await peekClientHello(sock, 2000));
    const t = new tls.TLSSocket(sock, { isServer: true, key: keyPEM, cert: certPEM, ALPNProtocols: ['acme-tls/1', 'imap'] });
    t.on('secure', () => t.end('done'));
    t.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as net.AddressInfo).port, hellos, close: () => srv.close() };
}

function connect(port: number, o: tls.ConnectionOptions): Promise<{ data: string; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...o });
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('end', () => resolve({ data, alpn: s.alpnProtocol ?? false }));
    s.on('error', reject);
  });
}

test('SNI and ALPN are read from the ClientHello and the handshake completes afterwards', async () => {
  const s = await server();
  try {
    const a = await connect(s.port, { servername: 'Mail.Example.test', ALPNProtocols: ['acme-tls/1'] });
    assert.deepEqual(s.hellos[0], { serverName: 'mail.example.test', alpn: ['acme-tls/1'] });
    assert.equal(a.data, 'done');
    assert.equal(a.alpn, 'acme-tls/1');
    // TLS 1.2 without SNI or ALPN.
    const b = await connect(s.port, { maxVersion: 'TLSv1.2' });
    assert.deepEqual(s.hellos[1], { alpn: [] });
    assert.equal(b.data, 'done');
  } finally {
    s.close();
  }
});

test('what is not a ClientHello is no ClientHello', async () => {
  assert.equal(parseClientHello(Buffer.from([1, 0, 0, 1, 3])), null);
  const s = await server();
  try {
    await new Promise<void>((resolve) => {
      const c = net.connect(s.port, '127.0.0.1', () => c.write('EHLO not tls\r\n'));
      c.on('error', () => {});
      c.on('close', () => resolve());
      setTimeout(() => c.destroy(), 3000);
    });
    assert.equal(s.hellos[0], null);
  } finally {
    s.close();
  }
});

test('report intervals divide the day', () => {
  assert.deepEqual([1, 2, 5, 7, 9, 13, 24, 30].map(intervalHours), [1, 2, 4, 6, 8, 12, 24, 24]);
  const t = Date.UTC(2026, 0, 2, 13, 45);
  assert.equal(intervalStart(t, 24), Date.UTC(2026, 0, 2));
  assert.equal(intervalStart(t, 6), Date.UTC(2026, 0, 2, 12));
});
