// Authentication shared by SMTP submission, IMAP and (later) HTTP: account lookup by login
// address, SASL mechanisms with the account's stored secrets, and per-IP failure limits.
import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import type { Config } from '../config/load.js';
import type { Store } from '../store/store.js';
import { Limiter, type Clock, systemClock } from '../limits/limiter.js';
import { serverMechanism, advertisedMechanisms, type ServerMechanism } from '../sasl/server.js';
import { verifyPassword, type StoredCredentials } from '../sasl/credentials.js';
import { channelBindingData, type ChannelBindingType } from '../sasl/channelbinding.js';
import { authAttempts } from '../metrics/metrics.js';
import { Log } from '../log/log.js';

const log = Log.pkg('auth');

export interface AuthConn {
  protocol: 'smtp' | 'imap' | 'http';
  remoteIP: string;
  tls?: TLSSocket;
  cid: number;
  /** Plain-text mechanisms allowed without TLS (configured, or localserve on loopback). */
  plainAllowed?: boolean;
}

export class Auth {
  // Failed logins: 10/30/90 per minute and 50/150/450 per day per network.
  private readonly failures: Limiter;

  constructor(
    private readonly config: Config,
    private readonly store: Store,
    private readonly clock: Clock = systemClock,
  ) {
    this.failures = new Limiter(
      [
        { periodMs: 60_000, limits: [10, 30, 90] },
        { periodMs: 86_400_000, limits: [50, 150, 450] },
      ],
      clock,
    );
  }

  /** False when this network had too many failed logins recently. */
  allowed(ip: string): boolean {
    return this.failures.canAdd(ip);
  }

  /** Delay before answering a failed login: grows with recent failures from the IP. */
  failureDelay(ip: string): number {
    const n = this.failures.count(ip);
    return n <= 3 ? 0 : Math.min(15_000, (n - 3) * 1000);
  }

  fail(conn: AuthConn, username: string, mechanism: string, reason: string): void {
    this.failures.add(conn.remoteIP);
    authAttempts.inc({ protocol: conn.protocol, mechanism, result: 'fail' });
    log.info('authentication failed', { cid: conn.cid, protocol: conn.protocol, remote: conn.remoteIP, username, mechanism, reason });
  }

  succeed(conn: AuthConn, username: string, account: string, mechanism: string): void {
    authAttempts.inc({ protocol: conn.protocol, mechanism, result: 'ok' });
    log.info('authenticated', { cid: conn.cid, protocol: conn.protocol, remote: conn.remoteIP, username, account, mechanism });
  }

  /** Account and stored secrets for a login address. */
  lookup(username: string): { account: string; credentials: StoredCredentials } | undefined {
    const account = this.config.addresses.loginAccount(username);
    if (!account) return undefined;
    const credentials = this.store.account(account).credentials() as StoredCredentials | undefined;
    return credentials && { account, credentials };
  }

  mechanisms(conn: AuthConn): string[] {
    const tls = conn.tls !== undefined;
    return advertisedMechanisms({ tls: tls || !!conn.plainAllowed, channelBinding: tls, clientCertificate: tls && conn.tls!.getPeerX509Certificate() !== undefined });
  }

  mechanism(name: string, conn: AuthConn): ServerMechanism<string> | undefined {
    return serverMechanism<string>(name, {
      hostname: this.config.static_.Hostname,
      lookup: async (username) => this.lookup(username),
      channelBinding: conn.tls ? (type: ChannelBindingType) => channelBindingData(conn.tls!, type, 'server') : undefined,
      tlsClientCertificate: conn.tls ? () => conn.tls!.getPeerX509Certificate() as X509Certificate | undefined : undefined,
      lookupCertificate: async (fingerprint) => {
        const fp = fingerprint.toString('base64url');
        for (const [account, acc] of Object.entries(this.config.domains.Accounts)) {
          const k = acc.TLSPublicKeys.find((k) => k.Fingerprint === fp);
          if (k) return { username: k.LoginAddress, account };
        }
        return undefined;
      },
    });
  }

  /** Username and password check, for IMAP LOGIN. */
  async password(username: string, password: string): Promise<string | undefined> {
    const found = this.lookup(username.normalize('NFC'));
    if (!found) return undefined;
    return (await verifyPassword(found.credentials, password)) ? found.account : undefined;
  }
}
