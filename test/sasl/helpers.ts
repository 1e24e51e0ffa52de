// Shared fixtures for the SASL tests.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ClientMechanism } from '../../src/sasl/client.js';
import { type StoredCredentials, deriveCredentials } from '../../src/sasl/credentials.js';
import type { ServerMechanism, ServerOptions, StepResult } from '../../src/sasl/server.js';

export const USERNAME = 'user@example.org';
export const PASSWORD = 'pencil';

export interface Account {
  id: number;
}

let credentials: Promise<StoredCredentials> | undefined;

/** Server options with one account, USERNAME / PASSWORD. */
export async function accountOptions(extra: Partial<ServerOptions<Account>> = {}): Promise<ServerOptions<Account>> {
  credentials ??= deriveCredentials(PASSWORD);
  const creds = await credentials;
  return {
    hostname: 'mail.example.org',
    lookup: async (username) => (username === USERNAME ? { account: { id: 1 }, credentials: creds } : undefined),
    ...extra,
  };
}

/** Runs a whole exchange in memory; the client verifies the server's success data. */
export async function exchange(server: ServerMechanism<Account>, client: ClientMechanism): Promise<StepResult<Account>> {
  let r = await server.step(client.initialResponse);
  for (let i = 0; r.type === 'challenge'; i++) {
    if (i > 10) throw new Error('exchange does not end');
    r = await server.step(await client.step(r.data));
  }
  if (r.type === 'success') client.finish(r.data);
  return r;
}

/** Runs python3 with a script and arguments, returning its stdout without the final newline. */
export async function python(script: string, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('python3', ['-c', script, ...args], { timeout: 20_000 });
  return stdout.replace(/\n$/, '');
}

/**
 * A self-signed certificate for localhost and 127.0.0.1 made by the openssl command;
 * `newkey` holds the `-newkey` value and any further options, e.g. ['ec', '-pkeyopt', ...].
 */
export async function selfSigned(...newkey: string[]): Promise<{ cert: string; key: string; der: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-sasl-'));
  try {
    const [keyFile, certFile] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
    await promisify(execFile)(
      'openssl',
      ['req', '-x509', '-newkey', ...newkey, '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { timeout: 60_000 },
    );
    const cert = await readFile(certFile, 'utf8');
    return { cert, key: await readFile(keyFile, 'utf8'), der: new X509Certificate(cert).raw };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
