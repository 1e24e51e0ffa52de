// Web sessions and CSRF protection for the admin, account and webmail applications.
//
// A session is a random id in a cookie (HttpOnly, SameSite=Strict, Secure over HTTPS, Path of
// the application) with its state kept in memory on the server. Every request that changes
// something must carry the session's CSRF token in the X-Postern-CSRF header: a page of another
// site can make a browser send the cookie (with older browsers or same-site subdomains) but cannot
// read the token. Logins are limited and slowed per network with the same failure limiter as
// IMAP and SMTP.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import bcrypt from 'bcryptjs';
import type { Clock } from '../limits/limiter.js';
import type { WebContext } from './router.js';
import { HTTPError, cookie, readJSON, sendJSON, sleep } from './util.js';

export type SessionKind = 'admin' | 'account';

export interface Session {
  id: string;
  csrf: string;
  kind: SessionKind;
  /** Account name, for account sessions. */
  account: string;
  /** Address used to log in. */
  loginAddress: string;
  created: number;
  lastUsed: number;
  /** When the account's password was set, at login: a later change ends the session. */
  credentialsAt: number;
}

export const csrfHeader = 'x-postern-csrf';

/** In-memory sessions; they end at restart, after a day unused, or after a week. */
export class Sessions {
  private readonly byId = new Map<string, Session>();

  constructor(
    private readonly clock: Clock,
    private readonly idleMs = 86400_000,
    private readonly maxAgeMs = 7 * 86400_000,
    private readonly max = 10_000,
  ) {}

  create(kind: SessionKind, account = '', loginAddress = '', credentialsAt = 0): Session {
    const now = this.clock.now();
    const id = randomBytes(24).toString('base64url');
    const s: Session = { id, csrf: randomBytes(24).toString('base64url'), kind, account, loginAddress, created: now, lastUsed: now, credentialsAt };
    // Bounded memory: drop the least recently created sessions first.
    while (this.byId.size >= this.max) this.byId.delete(this.byId.keys().next().value!);
    this.byId.set(s.id, s);
    return s;
  }

  get(id: string | undefined, kind: SessionKind): Session | undefined {
    const s = id ? this.byId.get(id) : undefined;
    if (!s || s.kind !== kind) return undefined;
    const now = this.clock.now();
    if (now - s.lastUsed > this.idleMs || now - s.created > this.maxAgeMs) {
      this.byId.delete(s.id);
      return undefined;
    }
    s.lastUsed = now;
    return s;
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  /** Ends all sessions of an account, e.g. after its password changed elsewhere. */
  deleteAccount(account: string, except?: string): void {
    for (const [id, s] of this.byId) if (s.kind === 'account' && s.account === account && id !== except) this.byId.delete(id);
  }
}

function sameToken(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** What a login form sends. */
interface Credentials {
  username: string;
  password: string;
}

/** Login, logout and session checks of one application. */
export class WebAuth {
  constructor(
    private readonly sessions: Sessions,
    readonly kind: SessionKind,
    readonly cookieName: string,
  ) {}

  private setCookie(res: ServerResponse, ctx: WebContext, value: string, expire = false): void {
    const attrs = [`${this.cookieName}=${value}`, `Path=${ctx.base}`, 'HttpOnly', 'SameSite=Strict'];
    if (ctx.tls) attrs.push('Secure');
    if (expire) attrs.push('Max-Age=0');
    res.setHeader('Set-Cookie', attrs.join('; '));
  }

  /**
   * Refuses requests that may come from another site: a changing request must be a same-origin
   * POST with the session's CSRF token. Browsers send Sec-Fetch-Site; where they do, it must not
   * name another site.
   */
  private checkOrigin(req: IncomingMessage): void {
    if (req.method !== 'POST') throw new HTTPError(405, 'method not allowed');
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new HTTPError(403, 'cross-site request refused');
  }

  /** The session of a request, or an HTTP 401 error. For POSTs the CSRF token is required too. */
  session(req: IncomingMessage, ctx: WebContext, opts: { csrf: boolean }): Session {
    const s = this.sessions.get(cookie(req, this.cookieName), this.kind);
    if (!s) throw new HTTPError(401, 'not logged in');
    if (this.kind === 'account') {
      // Removed accounts and changed passwords end sessions.
      const acc = ctx.app.config.domains.Accounts[s.account];
      if (!acc || ctx.app.store.account(s.account).credentialsChanged() !== s.credentialsAt) {
        this.sessions.delete(s.id);
        throw new HTTPError(401, 'session ended, log in again');
      }
    }
    if (opts.csrf) {
      this.checkOrigin(req);
      if (!sameToken(req.headers[csrfHeader] as string | undefined, s.csrf)) throw new HTTPError(403, 'missing or wrong CSRF token');
    }
    return s;
  }

  /**
   * Handles POST login with {username, password}. Failures count against the client's network
   * like failed IMAP and SMTP logins, and are answered only after a delay that grows with them.
   */
  async login(req: IncomingMessage, res: ServerResponse, ctx: WebContext, check: (c: Credentials) => Promise<{ account: string } | undefined>): Promise<void> {
    this.checkOrigin(req);
    const args = await readJSON(req, 16 * 1024);
    const username = typeof args.username === 'string' ? args.username : '';
    const password = typeof args.password === 'string' ? args.password : '';
    const auth = ctx.app.auth;
    const conn = { protocol: 'http' as const, remoteIP: ctx.remoteIP, cid: ctx.cid };
    if (!auth.allowed(ctx.remoteIP)) throw new HTTPError(429, 'too many failed logins from your network, try again later');
    const ok = password !== '' ? await check({ username, password }) : undefined;
    if (!ok) {
      auth.fail(conn, username, `web-${this.kind}`, 'bad credentials');
      await sleep(auth.failureDelay(ctx.remoteIP));
      throw new HTTPError(401, 'wrong username or password');
    }
    auth.succeed(conn, username, ok.account, `web-${this.kind}`);
    const s = this.sessions.create(this.kind, ok.account, username, this.kind === 'account' ? ctx.app.store.account(ok.account).credentialsChanged() : 0);
    this.setCookie(res, ctx, s.id);
    sendJSON(res, 200, { csrf: s.csrf, account: s.account, loginAddress: s.loginAddress });
  }

  logout(req: IncomingMessage, res: ServerResponse, ctx: WebContext): void {
    const s = this.session(req, ctx, { csrf: true });
    this.sessions.delete(s.id);
    this.setCookie(res, ctx, '', true);
    sendJSON(res, 200, true);
  }
}

/** Checks the admin password against the bcrypt hash in AdminPasswordFile, read at each login. */
export async function checkAdminPassword(file: string, password: string): Promise<boolean> {
  let hash: string;
  try {
    hash = (await fs.promises.readFile(file, 'utf8')).trim();
  } catch {
    return false;
  }
  return hash !== '' && bcrypt.compare(password, hash);
}
