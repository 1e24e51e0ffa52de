// The account web application: password, addresses, delivery rules, client settings.
import type { WebContext, WebHandler } from './router.js';
import type { WebState } from './services.js';
import { webApp, argStr, type ApiMethod } from './webapp.js';
import { attachment } from './util.js';
import { setRulesets, setWebhooks } from '../config/edit.js';
import { outgoingEvents, splitAddress, type AccountConfig, type Ruleset } from '../config/domains.js';
import { deriveCredentials, verifyPassword, type StoredCredentials } from '../sasl/credentials.js';
import { quotaUsage } from '../store/mailboxops.js';
import { clientSettings, mobileconfig, settingsText } from '../clientconfig/clientconfig.js';
import { exportAccount, importArchive, type ArchiveFormat, type MailFormat } from '../importexport/index.js';

/** Checks a ruleset from the browser; the config validation checks the regular expressions. */
function ruleset(v: unknown): Ruleset {
  if (typeof v !== 'object' || v === null) throw new Error('a rule must be an object');
  const r = v as Record<string, unknown>;
  const s = (k: string) => {
    const x = r[k];
    if (x !== undefined && typeof x !== 'string') throw new Error(`${k} must be a string`);
    return x === '' ? undefined : x;
  };
  const headers: Record<string, string> = {};
  if (r.HeadersRegexp !== undefined) {
    if (typeof r.HeadersRegexp !== 'object' || r.HeadersRegexp === null) throw new Error('HeadersRegexp must be an object');
    for (const [k, x] of Object.entries(r.HeadersRegexp)) {
      if (typeof x !== 'string') throw new Error('header regular expressions must be strings');
      if (k.trim()) headers[k.trim().toLowerCase()] = x;
    }
  }
  const mailbox = s('Mailbox');
  if (!mailbox) throw new Error('a rule needs a mailbox');
  const out: Ruleset = { Mailbox: mailbox, HeadersRegexp: headers };
  for (const k of ['SMTPMailFromRegexp', 'MsgFromRegexp', 'VerifiedDomain'] as const) {
    const x = s(k);
    if (x !== undefined) out[k] = x;
  }
  return out;
}

function overview(ctx: WebContext, account: string, loginAddress: string) {
  const cfg = ctx.app.config;
  const acc = cfg.domains.Accounts[account]!;
  const a = ctx.app.store.account(account);
  const domain = splitAddress(loginAddress)?.domain ?? acc.Domain;
  return {
    account,
    loginAddress,
    fullName: acc.FullName ?? '',
    quota: acc.QuotaMessageSize,
    usage: quotaUsage(a),
    destinations: Object.entries(acc.Destinations).map(([key, d]) => ({ key, mailbox: d.Mailbox, rulesets: d.Rulesets })),
    addresses: cfg.addresses.addressesOf(account),
    mailboxes: a.mailboxes().map((m) => ({ name: m.name, ...a.counts(m.id) })),
    clientSettings: settingsText(clientSettings(cfg), domain),
    webhooks: webhooks(acc),
  };
}

function webhooks(acc: AccountConfig) {
  return {
    outgoing: acc.OutgoingWebhook ? { URL: acc.OutgoingWebhook.URL, Authorization: acc.OutgoingWebhook.Authorization ?? '', Events: acc.OutgoingWebhook.Events } : null,
    incoming: acc.IncomingWebhook ? { URL: acc.IncomingWebhook.URL, Authorization: acc.IncomingWebhook.Authorization ?? '' } : null,
    fromIDLoginAddresses: acc.FromIDLoginAddresses,
  };
}

/** A webhook from the browser: an empty URL removes it. */
function hook(v: unknown, events: boolean): { URL: string; Authorization?: string; Events?: string[] } | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') throw new Error('webhook must be an object');
  const o = v as Record<string, unknown>;
  const text = (k: string) => {
    if (o[k] !== undefined && typeof o[k] !== 'string') throw new Error(`${k} must be a string`);
    return ((o[k] as string | undefined) ?? '').trim();
  };
  if (!text('URL')) return null;
  const ev = o.Events ?? [];
  if (!events && o.Events !== undefined) throw new Error('incoming webhooks have no events');
  if (!Array.isArray(ev) || ev.some((e) => !(outgoingEvents as readonly unknown[]).includes(e))) throw new Error(`Events must be a list of: ${outgoingEvents.join(', ')}`);
  return { URL: text('URL'), Authorization: text('Authorization') || undefined, ...(events && { Events: ev as string[] }) };
}

function methods(s: WebState): Record<string, ApiMethod> {
  return {
    overview: (_a, sess, ctx) => overview(ctx, sess.account, sess.loginAddress),
    setPassword: async (a, sess, ctx) => {
      const acc = ctx.app.store.account(sess.account);
      const creds = acc.credentials() as StoredCredentials | undefined;
      if (!creds || !(await verifyPassword(creds, argStr(a, 'current')))) throw new Error('current password is wrong');
      const password = argStr(a, 'password');
      if (password.length < 8) throw new Error('choose a password of at least 8 characters');
      acc.setCredentials(await deriveCredentials(password));
      // Other sessions of the account end; this one stays.
      s.sessions.deleteAccount(sess.account, sess.id);
      sess.credentialsAt = acc.credentialsChanged();
    },
    setRulesets: (a, sess, ctx) => {
      const list = a.rulesets;
      if (!Array.isArray(list)) throw new Error('rulesets must be a list');
      setRulesets(ctx.app.config.files.staticFile, sess.account, argStr(a, 'destination'), list.map(ruleset));
      ctx.app.config.reload();
      return overview(ctx, sess.account, sess.loginAddress).destinations;
    },
    setWebhooks: (a, sess, ctx) => {
      const ids = a.fromIDLoginAddresses ?? [];
      if (!Array.isArray(ids) || ids.some((x) => typeof x !== 'string')) throw new Error('fromIDLoginAddresses must be a list of addresses');
      setWebhooks(ctx.app.config.files.staticFile, sess.account, { outgoing: hook(a.outgoing, true), incoming: hook(a.incoming, false), fromIDLoginAddresses: ids as string[] });
      ctx.app.config.reload();
      return webhooks(ctx.app.config.domains.Accounts[sess.account]!);
    },
  };
}

const apps = new WeakMap<WebState, WebHandler>();

export function accountApp(s: WebState): WebHandler {
  let h = apps.get(s);
  if (!h) {
    h = webApp({
      auth: s.account,
      name: 'account',
      check: async (c, ctx) => {
        const account = await ctx.app.auth.password(c.username, c.password);
        return account ? { account } : undefined;
      },
      methods: methods(s),
      uploads: {
        // The archive is the request body, imported as it arrives. Progress goes back as lines of
        // JSON while the import runs, so the page can show it for large archives.
        import: async (req, res, sess, ctx) => {
          const acc = ctx.app.store.account(sess.account);
          res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
          const line = (v: unknown) => res.write(JSON.stringify(v) + '\n');
          try {
            const r = await importArchive(acc, req as AsyncIterable<Buffer>, {
              quota: ctx.app.config.domains.Accounts[sess.account]!.QuotaMessageSize,
              progressEvery: 100,
              onProgress: (p) => line(p),
            });
            line({ done: true, messages: r.messages, mailboxes: r.mailboxes, skipped: r.skipped.length });
          } catch (e) {
            ctx.log.info('import failed', { account: sess.account, err: e as Error });
            line({ error: (e as Error).message });
            // The rest of the upload is not needed; close instead of reading it.
            res.end(() => req.destroy());
            return;
          }
          res.end();
        },
      },
      downloads: {
        export: async (req, res, sess, ctx) => {
          const q = ctx.url.searchParams;
          const format = (q.get('format') ?? 'maildir') as MailFormat;
          const archive = (q.get('archive') ?? 'zip') as ArchiveFormat;
          const mailbox = q.get('mailbox') || undefined;
          if (!['maildir', 'mbox'].includes(format) || !['zip', 'tgz'].includes(archive)) throw new Error('format must be maildir or mbox, archive zip or tgz');
          const acc = ctx.app.store.account(sess.account);
          if (mailbox && !acc.mailbox(mailbox)) throw new Error(`no mailbox ${mailbox}`);
          const name = `${sess.account}${mailbox ? '-' + mailbox.replace(/\//g, '-') : ''}-${format}.${archive === 'zip' ? 'zip' : 'tgz'}`;
          res.writeHead(200, { 'Content-Type': archive === 'zip' ? 'application/zip' : 'application/gzip', 'Content-Disposition': attachment(name), 'Cache-Control': 'no-store' });
          if (req.method === 'HEAD') return void res.end();
          try {
            await exportAccount(acc, { format, archive, mailbox }, res);
          } catch (e) {
            // Headers are sent: breaking the connection tells the browser the download failed.
            ctx.log.error('export failed', { account: sess.account, err: e as Error });
            res.destroy();
          }
        },
        // An Apple configuration profile: opened on iOS or macOS, it sets up the mail account.
        mobileconfig: (req, res, sess, ctx) => {
          const acc = ctx.app.config.domains.Accounts[sess.account]!;
          const email = ctx.url.searchParams.get('address') || sess.loginAddress;
          if (ctx.app.config.addresses.loginAccount(email) !== sess.account) throw new Error('not an address of this account');
          const body = mobileconfig(clientSettings(ctx.app.config), { email, fullName: acc.FullName, domain: splitAddress(email)!.domain });
          res.writeHead(200, { 'Content-Type': 'application/x-apple-aspen-config; charset=utf-8', 'Content-Disposition': attachment(`${email}.mobileconfig`), 'Content-Length': Buffer.byteLength(body) });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
      },
    });
    apps.set(s, h);
  }
  return h;
}
