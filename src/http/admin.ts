// The admin web application: domains, accounts, addresses, passwords and quota, DNS records and
// their check, the outbound queue, received reports, log levels and the handlers of the web server.
// Configuration changes go through the same comment-keeping edits of domains.conf as the CLI, and
// the running server reloads the file at once so they take effect without restart.
import { BlockList, isIP } from 'node:net';
import type { WebContext, WebHandler } from './router.js';
import type { WebState } from './services.js';
import { webApp, argStr, argInt, type ApiMethod } from './webapp.js';
import { checkAdminPassword } from './session.js';
import { HTTPError, attachment } from './util.js';
import { addAccount, addAddress, addDomain, rmAccount, rmAddress, rmDomain, setQuota } from '../config/edit.js';
import { checkAccountName } from '../config/domains.js';
import { deriveCredentials } from '../sasl/credentials.js';
import { quotaUsage } from '../store/mailboxops.js';
import { dnsCheck, dnsRecords, mtastsPolicy, zoneText } from '../dnsrecords/dnsrecords.js';
import { getLevels, isLevel, levels, setLevel } from '../log/log.js';
import { plainIP } from '../smtp/received.js';
import { storedReports } from './reports.js';
import { setWebserverConfig } from '../webserver/config.js';

const blockLists = new WeakMap<string[], BlockList>();

/** Whether a client IP is in a listener's AdminIPs. */
export function adminAllowed(ip: string, allowed: string[]): boolean {
  let bl = blockLists.get(allowed);
  if (!bl) {
    bl = new BlockList();
    for (const n of allowed) {
      const [addr, bits] = n.split('/') as [string, string | undefined];
      const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
      bl.addSubnet(addr, bits === undefined ? (type === 'ipv4' ? 32 : 128) : Number(bits), type);
    }
    blockLists.set(allowed, bl);
  }
  const p = plainIP(ip);
  return bl.check(p, isIP(p) === 4 ? 'ipv4' : 'ipv6');
}

/** Applies an edit of domains.conf and makes the running server use it now. */
function edit(ctx: WebContext, fn: (staticFile: string) => void): void {
  fn(ctx.app.config.files.staticFile);
  ctx.app.config.reload();
}

function accountInfo(ctx: WebContext, name: string) {
  const acc = ctx.app.config.domains.Accounts[name];
  if (!acc) throw new Error(`no account ${name}`);
  const a = ctx.app.store.account(name);
  return {
    name,
    domain: acc.Domain,
    fullName: acc.FullName ?? '',
    description: acc.Description ?? '',
    destinations: Object.entries(acc.Destinations).map(([key, d]) => ({ key, mailbox: d.Mailbox, rules: d.Rulesets.length })),
    quota: acc.QuotaMessageSize,
    usage: quotaUsage(a),
    hasPassword: a.credentials() !== undefined,
  };
}

const queueCall = async (s: WebState, name: string, args: Record<string, unknown>) => {
  const h = s.queue.get(name);
  if (!h) throw new Error('the queue is not available');
  return h(args, () => {});
};

const ids = (args: Record<string, unknown>) => {
  const v = args.ids;
  if (!Array.isArray(v) || v.length === 0 || v.some((n) => !Number.isSafeInteger(n))) throw new Error('select messages by id');
  return v as number[];
};

function methods(s: WebState): Record<string, ApiMethod> {
  return {
    overview: (_a, _s, ctx) => {
      const cfg = ctx.app.config.domains;
      return {
        hostname: ctx.app.config.static_.Hostname,
        domains: Object.entries(cfg.Domains).map(([name, d]) => ({
          name,
          description: d.Description ?? '',
          accounts: Object.entries(cfg.Accounts)
            .filter(([, a]) => a.Domain === name)
            .map(([n]) => n),
        })),
        accounts: Object.keys(cfg.Accounts).map((n) => accountInfo(ctx, n)),
      };
    },
    domainAdd: (a, _s, ctx) => edit(ctx, (f) => addDomain(f, argStr(a, 'domain'), argStr(a, 'account', true) || undefined, argStr(a, 'localpart', true) || undefined)),
    domainRemove: (a, _s, ctx) => edit(ctx, (f) => rmDomain(f, argStr(a, 'domain'))),
    domain: (a, _s, ctx) => {
      const domain = argStr(a, 'domain');
      const d = ctx.app.config.domains.Domains[domain];
      if (!d) throw new Error(`no domain ${domain}`);
      const records = dnsRecords(ctx.app.config, domain);
      const addresses = Object.entries(ctx.app.config.domains.Accounts).flatMap(([account, acc]) =>
        Object.keys(acc.Destinations)
          .filter((k) => (k.includes('@') ? k.slice(k.lastIndexOf('@') + 1) === domain : acc.Domain === domain))
          .map((address) => ({ address, account })),
      );
      return { name: domain, description: d.Description ?? '', dkimSelectors: Object.keys(d.DKIM.Selectors), mtasts: d.MTASTS ?? null, mtastsPolicy: mtastsPolicy(ctx.app.config, domain) ?? '', addresses, records, zone: zoneText(records) };
    },
    dnsCheck: (a, _s, ctx) => dnsCheck(ctx.app.config, ctx.app.resolver, argStr(a, 'domain')),
    accountAdd: (a, _s, ctx) => {
      const name = argStr(a, 'account');
      const msg = checkAccountName(name);
      if (msg) throw new Error(msg);
      edit(ctx, (f) => addAccount(f, name, argStr(a, 'address')));
    },
    accountRemove: (a, _s, ctx) => {
      const name = argStr(a, 'account');
      edit(ctx, (f) => rmAccount(f, name));
      s.sessions.deleteAccount(name);
    },
    account: (a, _s, ctx) => accountInfo(ctx, argStr(a, 'account')),
    addressAdd: (a, _s, ctx) => edit(ctx, (f) => addAddress(f, argStr(a, 'address'), argStr(a, 'account'))),
    addressRemove: (a, _s, ctx) => edit(ctx, (f) => rmAddress(f, argStr(a, 'address'))),
    setPassword: async (a, _s, ctx) => {
      const name = argStr(a, 'account');
      if (!ctx.app.config.domains.Accounts[name]) throw new Error(`no account ${name}`);
      ctx.app.store.account(name).setCredentials(await deriveCredentials(argStr(a, 'password')));
      s.sessions.deleteAccount(name);
    },
    setQuota: (a, _s, ctx) => edit(ctx, (f) => setQuota(f, argStr(a, 'account'), argInt(a, 'bytes'))),
    queueList: () => queueCall(s, 'queue list', {}),
    queueKick: (a) => queueCall(s, 'queue kick', { ids: ids(a) }),
    queueDrop: (a) => queueCall(s, 'queue drop', { ids: ids(a) }),
    queueHold: (a) => queueCall(s, a.hold === false ? 'queue unhold' : 'queue hold', { ids: ids(a) }),
    queueRetired: () => queueCall(s, 'queue retired list', {}),
    reports: (_a, _s, ctx) => storedReports(ctx.app),
    webserver: (_a, _s, ctx) => ({ WebDomainRedirects: ctx.app.config.domains.WebDomainRedirects, WebHandlers: ctx.app.config.domains.WebHandlers }),
    webserverSave: (a, _s, ctx) => edit(ctx, (f) => setWebserverConfig(f, a.WebDomainRedirects ?? {}, a.WebHandlers ?? [])),
    logLevels: () => ({ ...getLevels(), levels }),
    setLogLevel: (a) => {
      const level = argStr(a, 'level');
      if (!isLevel(level)) throw new Error(`unknown level ${level}`);
      setLevel(level, argStr(a, 'pkg', true));
      return getLevels();
    },
  };
}

const apps = new WeakMap<WebState, WebHandler>();

export function adminApp(s: WebState): WebHandler {
  let h = apps.get(s);
  if (!h) {
    h = webApp({
      auth: s.admin,
      name: 'admin',
      guard: (ctx) => {
        if (!adminAllowed(ctx.remoteIP, ctx.listener.AdminIPs)) {
          ctx.log.info('admin request from IP not in AdminIPs refused', { remote: ctx.remoteIP });
          throw new HTTPError(403, 'admin not available from your IP address');
        }
      },
      check: async (c, ctx) => ((await checkAdminPassword(ctx.app.config.resolve(ctx.app.config.static_.AdminPasswordFile), c.password)) ? { account: '' } : undefined),
      methods: methods(s),
      downloads: {
        queuedump: async (req, res, _s, ctx) => {
          const id = Number(ctx.url.searchParams.get('id'));
          const msg = Buffer.from((await queueCall(s, 'queue dump', { id })) as string, 'base64');
          res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Disposition': attachment(`queue-${id}.eml`), 'Content-Length': msg.length });
          res.end(req.method === 'HEAD' ? undefined : msg);
        },
      },
    });
    apps.set(s, h);
  }
  return h;
}
