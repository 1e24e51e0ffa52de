// Let's Encrypt's ACME test server, pebble (Debian package "pebble"), on loopback ports, with its
// own HTTPS certificate, resolving names with a test DNS server.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { selfSigned } from '../../src/tls/selfsigned.js';
import { freePorts, tempDir } from '../helpers/server.js';

export const pebbleInstalled = fs.existsSync('/usr/bin/pebble');

export interface PebbleOptions {
  /** DNS server pebble resolves challenge names with, "127.0.0.1:port". */
  dns: string;
  /** Ports pebble validates http-01 and tls-alpn-01 challenges on. */
  httpPort: number;
  tlsPort: number;
  /** Seconds of validity of issued certificates. */
  validitySeconds?: number;
  /** External account binding keys, by key id; accounts then need one. */
  eab?: Record<string, string>;
}

export class Pebble {
  output = '';
  constructor(
    private readonly proc: ChildProcess,
    readonly directoryURL: string,
    readonly managementURL: string,
    /** The CA of pebble's own HTTPS listeners (PEM). */
    readonly httpsCA: string,
    readonly caFile: string,
  ) {}

  /** The root certificate pebble issues under; regenerated at each start. */
  root(): Promise<string> {
    return new Promise((resolve, reject) => {
      https
        .get(`${this.managementURL}/roots/0`, { ca: this.httpsCA }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`roots: ${res.statusCode}`))));
        })
        .on('error', reject);
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    await exited;
  }
}

export async function startPebble(o: PebbleOptions): Promise<Pebble> {
  const dir = tempDir('pebble-');
  const [port, mgmt] = await freePorts(2);
  const { keyPEM, certPEM } = selfSigned(['localhost'], ['127.0.0.1']);
  fs.writeFileSync(path.join(dir, 'key.pem'), keyPEM);
  fs.writeFileSync(path.join(dir, 'cert.pem'), certPEM);
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${port}`,
      managementListenAddress: `127.0.0.1:${mgmt}`,
      certificate: path.join(dir, 'cert.pem'),
      privateKey: path.join(dir, 'key.pem'),
      httpPort: o.httpPort,
      tlsPort: o.tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: o.eab !== undefined,
      externalAccountMACKeys: o.eab ?? {},
      ...(o.validitySeconds ? { certificateValidityPeriod: o.validitySeconds } : {}),
    },
  };
  fs.writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify(config));
  const proc = spawn('/usr/bin/pebble', ['-config', path.join(dir, 'pebble.json'), '-dnsserver', o.dns, '-strict=false'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // No random waits, no rejected nonces, and every order validated anew (for renewals).
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
  });
  const p = new Pebble(proc, `https://127.0.0.1:${port}/dir`, `https://127.0.0.1:${mgmt}`, certPEM, path.join(dir, 'cert.pem'));
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      p.output += d.toString();
      if (/Listening on: 127\.0\.0\.1:\d+/.test(p.output) && p.output.includes('ACME directory available')) resolve();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`pebble exited with ${code}:\n${p.output}`)));
    setTimeout(() => reject(new Error(`pebble did not start:\n${p.output}`)), 20_000).unref();
  });
  return p;
}
