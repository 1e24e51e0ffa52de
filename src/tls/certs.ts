// TLS server configuration: certificates from key/certificate files chosen by SNI, and
// certificates from a provider such as ACME for the names the files do not cover.
import fs from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { KeyCert } from '../config/static.js';
import { peekClientHello } from '../acme/clienthello.js';
import { selfSigned } from './selfsigned.js';
import { Log } from '../log/log.js';

const log = Log.pkg('tls');

interface Entry {
  names: string[];
  context: tls.SecureContext;
  cert: Buffer;
  key: Buffer;
}

/** Keys with their certificate chains, one chain per key (e.g. an ECDSA and an RSA pair). */
export interface CertMaterial {
  key: string[];
  cert: string[];
}

/** Certificates obtained elsewhere, e.g. from an ACME certificate authority. */
export interface CertProvider {
  /** The name whose certificate serves clients without SNI. */
  readonly defaultName: string;
  /** Certificate for a name, obtained first if needed; undefined for names not served. */
  material(name: string): Promise<CertMaterial | undefined>;
  cached(name: string): CertMaterial | undefined;
  /** Context answering a pending tls-alpn-01 validation of the name (RFC 8737). */
  alpnChallenge(name: string): tls.SecureContext | undefined;
  hasALPNChallenges(): boolean;
  on(event: 'updated', fn: (name: string) => void): unknown;
}

/** RFC 8737 3: the ALPN protocol of tls-alpn-01 validations. */
const ACME_TLS = 'acme-tls/1';

export class CertStore {
  private readonly entries: Entry[] = [];
  private readonly contexts = new WeakMap<CertMaterial, tls.SecureContext>();
  private readonly servers = new Set<tls.Server>();
  private placeholder?: Entry;

  constructor(
    pairs: KeyCert[],
    resolve: (p: string) => string,
    readonly minVersion: tls.SecureVersion = 'TLSv1.2',
    readonly provider?: CertProvider,
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
    if (this.entries.length === 0 && !provider) throw new Error('no certificates');
    provider?.on('updated', (name) => {
      if (name !== provider.defaultName || this.entries.length) return;
      // Clients without SNI get the server's default context: replace it everywhere.
      const d = this.defaultMaterial();
      for (const s of this.servers) s.setSecureContext({ key: d.key, cert: d.cert, minVersion: this.minVersion });
    });
  }

  private contextOf(m: CertMaterial): tls.SecureContext {
    let c = this.contexts.get(m);
    if (!c) {
      c = tls.createSecureContext({ key: m.key, cert: m.cert, minVersion: this.minVersion });
      this.contexts.set(m, c);
    }
    return c;
  }

  /**
   * Key and certificate for clients without SNI: the first file pair, else the provider's
   * certificate of its default name, else a self-signed one until that certificate exists.
   */
  private defaultMaterial(): { key: Buffer | string[]; cert: Buffer | string[]; context: tls.SecureContext } {
    const first = this.entries[0];
    if (first) return first;
    const m = this.provider!.cached(this.provider!.defaultName);
    if (m) return { key: m.key, cert: m.cert, context: this.contextOf(m) };
    if (!this.placeholder) {
      const { keyPEM, certPEM } = selfSigned([this.provider!.defaultName]);
      const [key, cert] = [Buffer.from(keyPEM), Buffer.from(certPEM)];
      this.placeholder = { names: [], key, cert, context: tls.createSecureContext({ key, cert, minVersion: this.minVersion }) };
    }
    return this.placeholder;
  }

  /** Context from the file pairs for an SNI name: exact, then wildcard. */
  private fileContext(n: string): tls.SecureContext | undefined {
    const wild = `*.${n.slice(n.indexOf('.') + 1)}`;
    return (this.entries.find((e) => e.names.includes(n)) ?? this.entries.find((e) => e.names.includes(wild)))?.context;
  }

  /** Context for an SNI name from the file pairs; the default for other names. */
  contextFor(servername: string | undefined): tls.SecureContext {
    const n = servername?.toLowerCase();
    return (n && this.fileContext(n)) || this.defaultMaterial().context;
  }

  /** Context for an SNI name: file pairs, then the provider (which may obtain one), then the default. */
  async contextForName(servername: string | undefined): Promise<tls.SecureContext> {
    const n = servername?.toLowerCase().replace(/\.$/, '');
    if (n) {
      const f = this.fileContext(n);
      if (f) return f;
      const m = await this.provider?.material(n);
      if (m) return this.contextOf(m);
    }
    return this.defaultMaterial().context;
  }

  /** Options for tls.createServer or a server-side TLSSocket. */
  serverOptions(extra: tls.TlsOptions = {}): tls.TlsOptions {
    const d = this.defaultMaterial();
    return {
      // tls.createServer takes the default certificate from cert and key, for clients without SNI.
      cert: d.cert,
      key: d.key,
      secureContext: d.context,
      SNICallback: this.provider
        ? (name, cb) => {
            this.contextForName(name).then(
              (c) => cb(null, c),
              (e: Error) => cb(e),
            );
          }
        : (name, cb) => cb(null, this.contextFor(name)),
      minVersion: this.minVersion,
      ...extra,
    };
  }

  /**
   * Prepares an implicit-TLS server created with serverOptions: its default certificate follows
   * the provider's, and while a tls-alpn-01 validation is pending, connections that offer ALPN
   * "acme-tls/1" for that name get the challenge certificate (RFC 8737 3) instead of the
   * server's handshake. Plain servers are left alone.
   */
  attach(server: net.Server): void {
    if (!(server instanceof tls.Server) || !this.provider) return;
    this.servers.add(server);
    server.once('close', () => this.servers.delete(server));
    const provider = this.provider;
    const handlers = server.listeners('connection') as ((s: net.Socket) => void)[];
    server.removeAllListeners('connection');
    const pass = (s: net.Socket) => {
      for (const h of handlers) h.call(server, s);
    };
    server.on('connection', (socket: net.Socket) => {
      if (!provider.hasALPNChallenges()) return pass(socket);
      void peekClientHello(socket).then((hello) => {
        const ctx = hello?.serverName && hello.alpn.includes(ACME_TLS) ? provider.alpnChallenge(hello.serverName) : undefined;
        if (!ctx) return pass(socket);
        answerALPNChallenge(socket, ctx, hello!.serverName!);
      });
    });
  }
}

/** Completes the validation handshake; RFC 8737 3: no application data follows. */
function answerALPNChallenge(socket: net.Socket, ctx: tls.SecureContext, name: string): void {
  socket.on('error', () => {});
  const ts = new tls.TLSSocket(socket, { isServer: true, secureContext: ctx, ALPNProtocols: [ACME_TLS] });
  ts.on('error', (e) => log.debug('tls-alpn-01 handshake failed', { name, err: e }));
  ts.once('secure', () => {
    log.info('tls-alpn-01 challenge answered', { name, remote: socket.remoteAddress });
    ts.end();
  });
  setTimeout(() => ts.destroy(), 30_000).unref();
}
