// TLS server configuration from key/certificate files, with the certificate chosen by SNI.
import fs from 'node:fs';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { KeyCert } from '../config/static.js';

interface Entry {
  names: string[];
  context: tls.SecureContext;
  cert: Buffer;
  key: Buffer;
}

export class CertStore {
  private readonly entries: Entry[] = [];

  constructor(
    pairs: KeyCert[],
    resolve: (p: string) => string,
    readonly minVersion: tls.SecureVersion = 'TLSv1.2',
  ) {
    for (const p of pairs) {
      const cert = fs.readFileSync(resolve(p.CertFile));
      const key = fs.readFileSync(resolve(p.KeyFile));
      const x = new X509Certificate(cert);
      const names = (x.subjectAltName ?? '')
        .split(', ')
        .filter((s) => s.startsWith('DNS:'))
        .map((s) => s.slice(4).toLowerCase());
      const cn = /CN=([^\n,]+)/.exec(x.subject)?.[1];
      if (names.length === 0 && cn) names.push(cn.toLowerCase());
      this.entries.push({ names, context: tls.createSecureContext({ cert, key, minVersion }), cert, key });
    }
    if (this.entries.length === 0) throw new Error('no certificates');
  }

  /** Context for an SNI name: exact, then wildcard, then the first pair. */
  contextFor(servername: string | undefined): tls.SecureContext {
    const n = servername?.toLowerCase();
    if (n) {
      const wild = `*.${n.slice(n.indexOf('.') + 1)}`;
      const e = this.entries.find((e) => e.names.includes(n)) ?? this.entries.find((e) => e.names.includes(wild));
      if (e) return e.context;
    }
    return this.entries[0]!.context;
  }

  /** Options for tls.createServer or a server-side TLSSocket. */
  serverOptions(extra: tls.TlsOptions = {}): tls.TlsOptions {
    const first = this.entries[0]!;
    return {
      // tls.createServer takes the default certificate from cert and key, for clients without SNI.
      cert: first.cert,
      key: first.key,
      secureContext: first.context,
      SNICallback: (name, cb) => cb(null, this.contextFor(name)),
      minVersion: this.minVersion,
      ...extra,
    };
  }
}
