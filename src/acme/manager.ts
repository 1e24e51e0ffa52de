// Certificates from an ACME certificate authority (RFC 8555), e.g. Let's Encrypt: an account,
// certificates obtained on demand for allowed names, kept in the data directory and renewed
// before they expire. Control of a name is proven with tls-alpn-01 (RFC 8737), answered by the
// TLS listeners, or http-01 (RFC 8555 8.3), answered by the web server on port 80.
import { EventEmitter } from 'node:events';
import { createPrivateKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import * as acme from 'acme-client';
import type { ACMEConfig } from '../config/static.js';
import { writeFileAtomic } from '../config/edit.js';
import { Log } from '../log/log.js';
import type { CertMaterial, CertProvider } from '../tls/certs.js';

const log = Log.pkg('acme');
const DAY = 86400_000;
/** After a failure, names are not requested again on demand for this long (CA rate limits). */
const FAILURE_PAUSE = 10 * 60_000;
/** Longest a TLS handshake waits for a certificate being obtained. */
const ON_DEMAND_WAIT = 20_000;

export type KeyType = 'ecdsap256' | 'rsa2048';

export interface AcmeOptions {
  /** Name of the provider in postern.conf. */
  name: string;
  config: ACMEConfig;
  /** Directory for the account and certificates, e.g. data/acme/<name>. */
  dir: string;
  /** CA certificates (PEM) trusted for the directory's HTTPS, besides the system roots. */
  caPEM?: string;
  /** Host names whose certificates use the host keys, so TLSA records stay valid. */
  hostnames: string[];
  /** Private keys (PEM) for the host names, at most one per key type. */
  hostKeys: string[];
  /** Names certificates may be requested for, lower-case A-labels; asked at each use. */
  allowed: () => Set<string>;
  now?: () => number;
}

interface Cached extends CertMaterial {
  notAfter: number;
}

export function keyType(key: KeyObject): KeyType | undefined {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec' && d?.namedCurve === 'prime256v1') return 'ecdsap256';
  if (key.asymmetricKeyType === 'rsa' && d?.modulusLength === 2048) return 'rsa2048';
  return undefined;
}

export function generateKey(type: KeyType): string {
  const pair = type === 'rsa2048' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
}

/** File name of a cached certificate: names are A-labels, safe in paths. */
function certFile(dir: string, name: string, type: KeyType): string {
  return path.join(dir, 'certs', `${name}.${type}.pem`);
}

const trusted = new Set<string>();

/**
 * acme-client sends its requests through one shared axios instance: extra CAs are added to
 * its agent for all providers.
 */
function trustCA(pem: string): void {
  if (trusted.has(pem)) return;
  trusted.add(pem);
  acme.axios.defaults.httpsAgent = new https.Agent({ ca: [...tls.rootCertificates, ...trusted] });
}

export class AcmeManager extends EventEmitter implements CertProvider {
  readonly name: string;
  private readonly certs = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<Cached | undefined>>();
  private readonly failed = new Map<string, number>();
  private readonly alpn = new Map<string, tls.SecureContext>();
  private readonly http = new Map<string, string>();
  private readonly hostKeys = new Map<KeyType, string>();
  private client?: Promise<acme.Client>;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly o: AcmeOptions) {
    super();
    this.name = o.name;
    this.now = o.now ?? Date.now;
    if (o.caPEM) trustCA(o.caPEM);
    for (const pem of o.hostKeys) {
      const t = keyType(createPrivateKey(pem));
      if (!t) throw new Error('host private keys must be RSA 2048 or ECDSA P-256');
      this.hostKeys.set(t, pem);
    }
    fs.mkdirSync(path.join(o.dir, 'certs'), { recursive: true, mode: 0o700 });
    this.load();
  }

  get defaultName(): string {
    return this.o.hostnames[0]!;
  }

  /** Reads the certificates kept from earlier runs. */
  private load(): void {
    const byName = new Map<string, { key: string; cert: string; notAfter: number }[]>();
    for (const f of fs.readdirSync(path.join(this.o.dir, 'certs'))) {
      const m = /^(.+)\.(ecdsap256|rsa2048)\.pem$/.exec(f);
      if (!m) continue;
      try {
        const e = parseCertFile(fs.readFileSync(path.join(this.o.dir, 'certs', f), 'utf8'));
        byName.set(m[1]!, [...(byName.get(m[1]!) ?? []), e]);
      } catch (err) {
        log.error('unusable cached certificate, ignoring', { file: f, err: err as Error });
      }
    }
    for (const [name, entries] of byName) {
      this.certs.set(name, { key: entries.map((e) => e.key), cert: entries.map((e) => e.cert), notAfter: Math.min(...entries.map((e) => e.notAfter)) });
    }
  }

  cached(name: string): CertMaterial | undefined {
    const c = this.certs.get(name);
    return c && c.notAfter > this.now() ? c : undefined;
  }

  /** The certificate for a name, requested now if the name is allowed and there is none. */
  async material(name: string): Promise<CertMaterial | undefined> {
    const have = this.cached(name);
    if (have) return have;
    if (!this.o.allowed().has(name)) return undefined;
    const failedAt = this.failed.get(name);
    if (failedAt !== undefined && this.now() - failedAt < FAILURE_PAUSE) return undefined;
    // A client waits in its handshake while the certificate is requested, but not for long: a
    // slow or unreachable CA gets the default certificate served meanwhile.
    let timer: NodeJS.Timeout | undefined;
    const wait = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ON_DEMAND_WAIT)));
    return Promise.race([this.obtain(name).catch(() => undefined), wait]).finally(() => clearTimeout(timer));
  }

  /** The tls-alpn-01 challenge certificate for a name being validated. */
  alpnChallenge(name: string): tls.SecureContext | undefined {
    return this.alpn.get(name);
  }

  hasALPNChallenges(): boolean {
    return this.alpn.size > 0;
  }

  /** The key authorization for an http-01 token (RFC 8555 8.3), while its challenge is pending. */
  httpChallenge(token: string): string | undefined {
    return this.http.get(token);
  }

  /** URI of the ACME account, for CAA accounturi (RFC 8657), once it was registered. */
  static accountURI(dir: string): string | undefined {
    try {
      return (JSON.parse(fs.readFileSync(path.join(dir, 'account.json'), 'utf8')) as { url?: string }).url;
    } catch {
      return undefined;
    }
  }

  /** Requests the host name's certificate if missing, and renews certificates when due. */
  start(): void {
    for (const h of this.o.hostnames) if (!this.cached(h) && this.o.allowed().has(h)) void this.obtain(h).catch(() => {});
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Obtains (or renews) the certificate of a name; concurrent requests share one order. */
  obtain(name: string): Promise<Cached | undefined> {
    let p = this.inflight.get(name);
    if (!p) {
      p = this.issue(name).finally(() => this.inflight.delete(name));
      this.inflight.set(name, p);
    }
    return p;
  }

  private async issue(name: string): Promise<Cached> {
    const types: KeyType[] = this.o.hostnames.includes(name) && this.hostKeys.size ? [...this.hostKeys.keys()] : ['ecdsap256'];
    try {
      const entries: { key: string; cert: string; notAfter: number }[] = [];
      for (const t of types) {
        const key = this.hostKeys.get(t) ?? (this.o.hostnames.includes(name) && !this.hostKeys.size ? this.keptKey(name, t) : generateKey(t));
        const cert = await this.order(name, key);
        writeFileAtomic(certFile(this.o.dir, name, t), key + cert, 0o600);
        entries.push({ key, cert, notAfter: parseCertFile(key + cert).notAfter });
      }
      const c: Cached = { key: entries.map((e) => e.key), cert: entries.map((e) => e.cert), notAfter: Math.min(...entries.map((e) => e.notAfter)) };
      this.certs.set(name, c);
      this.failed.delete(name);
      log.info('certificate obtained', { provider: this.name, name, notAfter: new Date(c.notAfter).toISOString() });
      this.emit('updated', name);
      this.schedule();
      return c;
    } catch (e) {
      this.failed.set(name, this.now());
      log.error('obtaining certificate failed', { provider: this.name, name, err: e as Error });
      throw e;
    }
  }

  /** Without configured host keys, the host name keeps the key of its previous certificate. */
  private keptKey(name: string, t: KeyType): string {
    try {
      return parseCertFile(fs.readFileSync(certFile(this.o.dir, name, t), 'utf8')).key;
    } catch {
      return generateKey(t);
    }
  }

  private account(): Promise<acme.Client> {
    this.client ??= (async () => {
      const keyFile = path.join(this.o.dir, 'account.key');
      if (!fs.existsSync(keyFile)) writeFileAtomic(keyFile, generateKey('ecdsap256'), 0o600);
      const eab = this.o.config.ExternalAccountBinding;
      const client = new acme.Client({
        directoryUrl: this.o.config.DirectoryURL,
        accountKey: fs.readFileSync(keyFile),
        externalAccountBinding: eab ? { kid: eab.KeyID, hmacKey: eab.HMACKey } : undefined,
        backoffMin: 500,
        backoffMax: 10_000,
        backoffAttempts: 12,
      });
      // Registering an existing key returns the existing account (RFC 8555 7.3.1).
      await client.createAccount({
        termsOfServiceAgreed: true,
        ...(this.o.config.ContactEmail ? { contact: [`mailto:${this.o.config.ContactEmail}`] } : {}),
      });
      writeFileAtomic(path.join(this.o.dir, 'account.json'), JSON.stringify({ url: client.getAccountUrl(), directory: this.o.config.DirectoryURL }) + '\n');
      log.info('acme account ready', { provider: this.name, url: client.getAccountUrl() });
      return client;
    })();
    this.client.catch(() => (this.client = undefined));
    return this.client;
  }

  /** One order for one name, trying the configured challenge types in turn. Returns the PEM chain. */
  private async order(name: string, key: string): Promise<string> {
    const client = await this.account();
    let last: Error | undefined;
    for (const type of this.o.config.ChallengeTypes) {
      try {
        const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
        for (const authz of await client.getAuthorizations(order)) {
          if (authz.status === 'valid') continue;
          const ch = authz.challenges.find((c) => c.type === type);
          if (!ch) throw new Error(`certificate authority offers no ${type} challenge`);
          const keyAuth = await client.getChallengeKeyAuthorization(ch);
          if (type === 'tls-alpn-01') {
            const [k, c] = await acme.crypto.createAlpnCertificate(authz, keyAuth);
            this.alpn.set(name, tls.createSecureContext({ key: k, cert: c }));
          } else this.http.set(ch.token, keyAuth);
          try {
            await client.completeChallenge(ch);
            await client.waitForValidStatus(ch);
          } finally {
            if (type === 'tls-alpn-01') this.alpn.delete(name);
            else this.http.delete(ch.token);
          }
        }
        const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, key);
        const done = await client.finalizeOrder(order, csr);
        return await client.getCertificate(done);
      } catch (e) {
        last = e as Error;
        log.info('acme order failed', { provider: this.name, name, challenge: type, err: last });
      }
    }
    throw last ?? new Error('no challenge types configured');
  }

  /** Renews certificates whose renewal time has come, and sets a timer for the next. */
  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const before = this.o.config.RenewBeforeDays * DAY;
    const allowed = this.o.allowed();
    let next = Infinity;
    for (const [name, c] of this.certs) if (allowed.has(name)) next = Math.min(next, c.notAfter - before);
    // A host name without certificate (its request failed) is tried again after a pause.
    for (const h of this.o.hostnames) if (!this.certs.has(h) && allowed.has(h)) next = Math.min(next, (this.failed.get(h) ?? this.now()) + FAILURE_PAUSE);
    if (next === Infinity) return;
    // Timers are capped so a changed clock or a long sleep is noticed within hours.
    const wait = Math.min(Math.max(next - this.now(), 1000), 6 * 3600_000);
    this.timer = setTimeout(() => void this.renew(), wait);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const before = this.o.config.RenewBeforeDays * DAY;
    const allowed = this.o.allowed();
    let failures = 0;
    for (const h of this.o.hostnames) {
      if (this.stopped) return;
      if (!this.certs.has(h) && allowed.has(h) && !this.inflight.has(h)) await this.obtain(h).catch(() => failures++);
    }
    for (const [name, c] of [...this.certs]) {
      if (this.stopped) return;
      if (!allowed.has(name) || c.notAfter - before > this.now()) continue;
      log.info('renewing certificate', { provider: this.name, name, notAfter: new Date(c.notAfter).toISOString() });
      await this.obtain(name).catch(() => failures++);
    }
    if (failures) {
      // Retried hourly; the old certificate is used until it expires.
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.renew(), 3600_000);
      this.timer.unref();
    } else this.schedule();
  }
}

/** The private key and certificate chain in a cached certificate file. */
export function parseCertFile(pem: string): { key: string; cert: string; notAfter: number } {
  const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----\n?/.exec(pem)?.[0];
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g);
  if (!key || !certs) throw new Error('no key or certificate');
  const leaf = new X509Certificate(certs[0]!);
  return { key, cert: certs.join(''), notAfter: Date.parse(leaf.validTo) };
}
