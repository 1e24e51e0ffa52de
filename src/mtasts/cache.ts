// A persistent cache of MTA-STS policies (RFC 8461 3.3, 5.1). A cached policy keeps protecting
// deliveries while an attacker blocks the DNS lookup or the HTTPS fetch of the current one.

import Database from 'better-sqlite3';
import { parseDomain } from '../dns/domain.js';
import type { Resolver } from '../dns/types.js';
import { fetchPolicy, PolicyFetchError, type FetchOptions, type PolicyFailureType } from './fetch.js';
import { parsePolicy, type Policy } from './policy.js';
import { lookupSTSRecord } from './record.js';

export interface PolicyCacheOptions {
  /** How policies are fetched, e.g. a test CA and address. */
  fetch?: FetchOptions;
  /** Clock in milliseconds. Default Date.now. */
  now?: () => number;
}

export interface PolicyLookup {
  /** The policy to apply; absent means delivery goes on as if the domain had no MTA-STS. */
  policy?: Policy;
  /** Where the policy came from: fetched now, from the cache, or none applies. */
  source: 'fetched' | 'cache' | 'none';
  /** Why the current policy could not be fetched, for TLS reports; a cached policy may still apply. */
  failure?: { resultType: PolicyFailureType; message: string };
  /** The TXT record lookup failed temporarily and nothing was cached: delivery may be deferred. */
  dnsError?: string;
}

export interface RefreshResult {
  refreshed: number;
  /** Policies dropped because no delivery used them for 180 days. */
  removed: number;
  /** Refreshes that failed, except for policies in mode none (RFC 8461 3.3). */
  failures: { domain: string; error: string }[];
}

interface Row {
  domain: string;
  record_id: string;
  policy: string;
  valid_end: number;
  last_update: number;
  last_use: number;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;
// RFC 8461 3.3: after a failed fetch, wait at least five minutes before trying that id again.
const FETCH_BACKOFF = 5 * 60_000;
const MAX_BACKOFF_ENTRIES = 10_000;
// Refresh ages and the unused period are as in mox.
const REFRESH_AGE = 12 * HOUR;
const UNUSED_AGE = 180 * DAY;
const REFRESH_CONCURRENCY = 4;

const SCHEMA = `
  CREATE TABLE policy (
    domain TEXT PRIMARY KEY,
    -- Id of the TXT record the policy was fetched or last confirmed for.
    record_id TEXT NOT NULL,
    -- The policy file as served.
    policy TEXT NOT NULL,
    -- Milliseconds since the epoch; the policy applies until valid_end.
    valid_end INTEGER NOT NULL,
    last_update INTEGER NOT NULL,
    last_use INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX policy_last_use ON policy (last_use);
  CREATE INDEX policy_last_update ON policy (last_update);
`;

export class PolicyCache {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly fetchOptions: FetchOptions;
  /** Recent fetch failures per domain, for the backoff; not worth keeping across restarts. */
  private readonly failed = new Map<string, { id: string; at: number; resultType: PolicyFailureType; message: string }>();
  private readonly inflight = new Map<string, Promise<PolicyLookup>>();
  private readonly stmts;

  constructor(file: string, opts: PolicyCacheOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.fetchOptions = opts.fetch ?? {};
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > 1) throw new Error(`MTA-STS cache ${file} has schema version ${version}, newer than this Postern`);
    if (version === 0) {
      this.db.transaction(() => {
        this.db.exec(SCHEMA);
        this.db.pragma('user_version = 1');
      })();
    }
    this.stmts = {
      get: this.db.prepare<[string], Row>('SELECT * FROM policy WHERE domain = ?'),
      upsert: this.db.prepare(
        `INSERT INTO policy (domain, record_id, policy, valid_end, last_update, last_use) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (domain) DO UPDATE SET record_id = excluded.record_id, policy = excluded.policy,
           valid_end = excluded.valid_end, last_update = excluded.last_update, last_use = excluded.last_use`,
      ),
      touch: this.db.prepare('UPDATE policy SET last_use = ? WHERE domain = ?'),
      confirm: this.db.prepare('UPDATE policy SET valid_end = ?, last_update = ? WHERE domain = ?'),
      stale: this.db.prepare<[number], Row>('SELECT * FROM policy WHERE last_update < ? ORDER BY domain'),
      removeUnused: this.db.prepare('DELETE FROM policy WHERE last_use < ?'),
    };
  }

  /**
   * The policy for a recipient domain: the cached one while the TXT record's id is unchanged,
   * else a freshly fetched one, else a cached one that has not expired. Throws for a name that
   * is not a valid domain.
   */
  lookup(resolver: Resolver, domain: string): Promise<PolicyLookup> {
    const d = parseDomain(domain).ascii;
    let pending = this.inflight.get(d);
    if (!pending) {
      pending = this.lookupDomain(resolver, d).finally(() => this.inflight.delete(d));
      this.inflight.set(d, pending);
    }
    return pending;
  }

  private async lookupDomain(resolver: Resolver, domain: string): Promise<PolicyLookup> {
    const cached = this.cached(domain);
    const rec = await lookupSTSRecord(resolver, domain);
    // RFC 8461 3.3, 5.1: without a current record, an unexpired cached policy still applies.
    if (rec.status !== 'found') {
      if (cached) return this.use(domain, cached.policy);
      return rec.status === 'temporary-failure' ? { source: 'none', dnsError: rec.reason } : { source: 'none' };
    }
    const id = rec.record.id;
    if (cached && cached.id === id) return this.use(domain, cached.policy);
    const recent = this.failed.get(domain);
    if (recent && recent.id === id && this.now() - recent.at < FETCH_BACKOFF) {
      const failure = { resultType: recent.resultType, message: recent.message };
      return cached ? { ...this.use(domain, cached.policy), failure } : { source: 'none', failure };
    }
    try {
      const { policy, text } = await fetchPolicy(domain, this.fetchOptions);
      const now = this.now();
      this.stmts.upsert.run(domain, id, text, now + policy.maxAge * 1000, now, now);
      this.failed.delete(domain);
      return { policy, source: 'fetched' };
    } catch (err) {
      if (!(err instanceof PolicyFetchError)) throw err;
      const failure = { resultType: err.resultType, message: err.message };
      this.failed.delete(domain);
      this.failed.set(domain, { id, at: this.now(), ...failure });
      for (const oldest of this.failed.keys()) {
        if (this.failed.size <= MAX_BACKOFF_ENTRIES) break;
        this.failed.delete(oldest);
      }
      return cached ? { ...this.use(domain, cached.policy), failure } : { source: 'none', failure };
    }
  }

  /** The unexpired cached policy of a domain with its record id. */
  private cached(domain: string): { policy: Policy; id: string } | undefined {
    const row = this.stmts.get.get(domain);
    if (!row || row.valid_end <= this.now()) return undefined;
    try {
      return { policy: parsePolicy(row.policy), id: row.record_id };
    } catch {
      return undefined;
    }
  }

  private use(domain: string, policy: Policy): PolicyLookup {
    this.stmts.touch.run(this.now(), domain);
    return { policy, source: 'cache' };
  }

  /**
   * Refreshes policies last fetched or confirmed more than 12 hours ago, so that they do not
   * expire between deliveries (RFC 8461 3.3), and drops those unused for 180 days. Meant to run
   * about daily.
   */
  async refresh(resolver: Resolver): Promise<RefreshResult> {
    const now = this.now();
    const removed = this.stmts.removeUnused.run(now - UNUSED_AGE).changes;
    const rows = this.stmts.stale.all(now - REFRESH_AGE);
    const result: RefreshResult = { refreshed: 0, removed, failures: [] };
    const worker = async () => {
      for (let row = rows.shift(); row; row = rows.shift()) {
        const error = await this.refreshOne(resolver, row);
        if (error === undefined) result.refreshed++;
        else if (error !== '') result.failures.push({ domain: row.domain, error });
      }
    };
    await Promise.all(Array.from({ length: Math.min(REFRESH_CONCURRENCY, rows.length) }, worker));
    return result;
  }

  /** Undefined on success, else the error, or "" for a failure not worth reporting. */
  private async refreshOne(resolver: Resolver, row: Row): Promise<string | undefined> {
    let stored: Policy | undefined;
    try {
      stored = parsePolicy(row.policy);
    } catch {
      // A stored policy that no longer parses is replaced by a fresh one below.
    }
    const rec = await lookupSTSRecord(resolver, row.domain);
    if (stored && rec.status === 'found' && rec.record.id === row.record_id) {
      const now = this.now();
      this.stmts.confirm.run(now + stored.maxAge * 1000, now, row.domain);
      return undefined;
    }
    // A changed id means a new policy; a failed or empty lookup may be DNS trouble, and the
    // fetch tells whether the policy host still serves one.
    try {
      const { policy, text } = await fetchPolicy(row.domain, this.fetchOptions);
      const now = this.now();
      const id = rec.status === 'found' ? rec.record.id : row.record_id;
      this.stmts.upsert.run(row.domain, id, text, now + policy.maxAge * 1000, now, row.last_use);
      return undefined;
    } catch (err) {
      if (!(err instanceof PolicyFetchError)) throw err;
      return stored?.mode === 'none' ? '' : err.message;
    }
  }

  close(): void {
    this.db.close();
  }
}
