// The commands of the postern program. Each command's help text is its documentation.
import fs from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import type { Command, Ctx } from './cli.js';
import { UsageError } from './cli.js';
import { Config, testConfig } from '../config/load.js';
import { describe, formatError } from '../config/schema.js';
import { staticSpec, staticHeader } from '../config/static.js';
import { domainsSpec, domainsHeader, checkAccountName } from '../config/domains.js';
import { addDomain, rmDomain, addAccount, rmAccount, addAddress, rmAddress, addTLSPublicKey, rmTLSPublicKey, writeFileAtomic } from '../config/edit.js';
import { X509Certificate } from 'node:crypto';
import { publicKeyFingerprint } from '../sasl/server.js';
import { serve } from '../server/serve.js';
import { ctlCall, ctlPath } from '../ctl/ctl.js';
import { deriveCredentials } from '../sasl/credentials.js';
import { Store } from '../store/store.js';
import { flush } from '../log/log.js';
import {
  defaultLocalserveDir,
  initLocalserve,
  localserveConfigFile,
  localserveAddress,
  localservePassword,
  localserveAdminPassword,
} from '../server/localserve.js';

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

function loadConfig(ctx: Ctx): Config {
  return Config.load(ctx.configFile);
}

function ctl(ctx: Ctx, cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
  return ctlCall(ctlPath(loadConfig(ctx).dataDir), cmd, args);
}

async function readSecret(prompt: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(prompt);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (process.stdin.isTTY && Buffer.concat(chunks).includes(10)) break;
  }
  const s = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (s === '') throw new UsageError('empty password');
  return s;
}

/** Runs a server until stopped by "postern stop", SIGTERM or SIGINT. */
async function runServer(configFile: string, localserve: boolean, onStart?: (r: Awaited<ReturnType<typeof serve>>) => void): Promise<number> {
  const r = await serve(configFile, { localserve });
  onStart?.(r);
  const onSignal = () => void r.stop();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await r.stopped;
  flush();
  // Whatever timers or sockets remain, the server is done.
  setTimeout(() => process.exit(0), 100).unref();
  return 0;
}

function edit(fn: () => void, done: string): void {
  fn();
  out(done);
}

export const commands: Command[] = [
  {
    name: 'serve',
    args: '',
    nargs: [0, 0],
    help: `Starts the mail server with the configuration files.

Listens on the configured IPs and ports, serves the CLI commands that need a running
server on a control socket in the data directory, and reloads domains.conf when it
changes. Stops cleanly on "postern stop", SIGTERM or SIGINT: idle connections are closed
at once, connections in the middle of a command get a few seconds.`,
    run: (ctx) => runServer(ctx.configFile, false),
  },
  {
    name: 'localserve',
    args: '',
    nargs: [0, 0],
    flags: {
      dir: { type: 'string', help: 'directory with configuration and data', default: defaultLocalserveDir() },
      ip: { type: 'string', help: 'IP to listen on instead of 127.0.0.1 and ::1; used when the directory is initialized' },
      initonly: { type: 'bool', help: 'only initialize the directory, do not start' },
    },
    help: `Starts a local mail server for developing and testing software that sends email.

On first start, the directory is initialized with configuration files (config/postern.conf
and config/domains.conf), a self-signed certificate for localhost, an account
"${localserveAddress}" with password "${localservePassword}", and admin password
"${localserveAdminPassword}". Other commands reach this instance with
"postern --config DIR/config/postern.conf ...".

It listens on 127.0.0.1 and ::1 on the standard ports plus 1000: SMTP 1025, submission
1587 (STARTTLS), submissions 1465 (TLS), IMAP 1143 (STARTTLS), IMAPS 1993, HTTP 1080 and
HTTPS 1443 (account pages at /, admin at /admin/, webmail at /webmail/, Prometheus metrics
at /metrics). Passwords may be sent without TLS from loopback.

All mail to any address is accepted and delivered to the account's Inbox, except for
recipients whose localpart ends in:
  temperror    fail with a temporary error (451)
  permerror    fail with a permanent error (550)
  [45][0-9][0-9]  fail with that code
  timeout      no reply, for an hour
The failure comes after DATA; when the recipient localpart begins with "rcptto" it comes
at RCPT TO, and when the MAIL FROM localpart begins with "mailfrom" (and ends in one of
the above) at MAIL FROM.`,
    async run(ctx) {
      const dir = path.resolve(ctx.flags.dir as string);
      const ips = typeof ctx.flags.ip === 'string' ? [ctx.flags.ip] : ['127.0.0.1', '::1'];
      const created = await initLocalserve(dir, ips);
      if (created) out(`initialized ${dir}`);
      if (ctx.flags.initonly) return 0;
      return runServer(localserveConfigFile(dir), true, (r) => {
        const by = new Map<string, string[]>();
        for (const l of r.listening) by.set(l.service, [...(by.get(l.service) ?? []), l.ip.includes(':') ? `[${l.ip}]:${l.port}` : `${l.ip}:${l.port}`]);
        const notes: Record<string, string> = {
          smtp: 'plain or STARTTLS, no authentication',
          submission: 'STARTTLS or plain from loopback, authentication required',
          submissions: 'TLS, authentication required',
          imap: 'STARTTLS or plain from loopback',
          imaps: 'TLS',
          http: 'web: account /, admin /admin/, webmail /webmail/, metrics /metrics',
          https: 'web over TLS, autoconfig, MTA-STS',
        };
        const lines = [`postern localserve running, directory ${dir}`, `  account ${localserveAddress}, password ${localservePassword}; admin password ${localserveAdminPassword}`];
        for (const [svc, addrs] of by) lines.push(`  ${svc.padEnd(12)} ${addrs.join(', ')}  (${notes[svc]})`);
        const web = r.listening.find((l) => l.service === 'http' && !l.ip.includes(':')) ?? r.listening.find((l) => l.service === 'http');
        if (web) {
          const host = web.ip.includes(':') ? `[${web.ip}]` : web.ip;
          lines.push(`  account page http://${host}:${web.port}/`, `  admin page   http://${host}:${web.port}/admin/`);
        }
        lines.push(`  certificate ${path.join(dir, 'config', 'localhost.crt')}`, '  mail to any address is accepted; see "postern help localserve" for error injection');
        process.stderr.write(lines.join('\n') + '\n');
      });
    },
  },
  {
    name: 'stop',
    args: '',
    nargs: [0, 0],
    help: 'Stops the running server, giving open connections a few seconds to finish.',
    async run(ctx) {
      await ctl(ctx, 'stop');
      out('stopping');
    },
  },
  {
    name: 'loglevels',
    args: '[level [pkg]]',
    nargs: [0, 2],
    help: `Prints the log levels of the running server, or changes one.

Levels: error, warn, info, debug, trace. Without pkg the default level is set, with pkg
the level of that package (e.g. smtpserver, imapserver, store, auth, config). Changes last
until restart; set LogLevel and PackageLogLevels in postern.conf to keep them.`,
    async run(ctx) {
      const [level, pkg] = ctx.args;
      const r = (await ctl(ctx, 'loglevels', { level, pkg })) as { root: string; packages: Record<string, string> };
      out(`default: ${r.root}`);
      for (const [k, v] of Object.entries(r.packages)) out(`${k}: ${v}`);
    },
  },
  {
    name: 'setaccountpassword',
    args: 'account',
    nargs: [1, 1],
    help: `Sets the password of an account, read from standard input.

Works whether or not the server is running. Only derived secrets are stored: salted
SCRAM-SHA-1 and SCRAM-SHA-256 keys, CRAM-MD5 HMAC state and a bcrypt hash.`,
    async run(ctx) {
      const config = loadConfig(ctx);
      const account = ctx.args[0]!;
      if (!config.domains.Accounts[account]) throw new UsageError(`account ${account} not configured`);
      const creds = await deriveCredentials(await readSecret('new password: '));
      const store = new Store(config.dataDir);
      try {
        store.account(account).setCredentials(creds);
      } finally {
        store.close();
      }
      out('password set');
    },
  },
  {
    name: 'setadminpassword',
    args: '',
    nargs: [0, 0],
    help: 'Sets the password for the web admin, read from standard input. Only a bcrypt hash is stored, in the file AdminPasswordFile.',
    async run(ctx) {
      const config = loadConfig(ctx);
      const hash = bcrypt.hashSync(await readSecret('new admin password: '), 10);
      writeFileAtomic(config.resolve(config.static_.AdminPasswordFile), hash + '\n', 0o600);
      out('admin password set');
    },
  },
  {
    name: 'config test',
    args: '',
    nargs: [0, 0],
    help: 'Checks postern.conf and domains.conf and prints every error with file, line and field. Exits with status 1 if any.',
    run(ctx) {
      const errors = testConfig(ctx.configFile);
      if (errors.length === 0) {
        out('config OK');
        return 0;
      }
      for (const e of errors) process.stderr.write(formatError(e) + '\n');
      return 1;
    },
  },
  {
    name: 'config describe-static',
    args: '',
    nargs: [0, 0],
    help: 'Prints an annotated example of postern.conf documenting every field.',
    run: () => out(describe(staticSpec, staticHeader)),
  },
  {
    name: 'config describe-domains',
    args: '',
    nargs: [0, 0],
    help: 'Prints an annotated example of domains.conf documenting every field.',
    run: () => out(describe(domainsSpec, domainsHeader)),
  },
  {
    name: 'config domain add',
    args: 'domain [account [localpart]]',
    nargs: [1, 3],
    help: `Adds a domain to domains.conf.

With an account, the address localpart@domain is added to it (localpart defaults to the
account name); the account is created if it does not exist. A running server picks the
change up at once.`,
    run: (ctx) => edit(() => addDomain(ctx.configFile, ctx.args[0]!, ctx.args[1], ctx.args[2]), `domain ${ctx.args[0]} added`),
  },
  {
    name: 'config domain rm',
    args: 'domain',
    nargs: [1, 1],
    help: 'Removes a domain from domains.conf. Refused while accounts still use it.',
    run: (ctx) => edit(() => rmDomain(ctx.configFile, ctx.args[0]!), `domain ${ctx.args[0]} removed`),
  },
  {
    name: 'config account add',
    args: 'account address',
    nargs: [2, 2],
    help: 'Adds an account with one address. Set its password with "postern setaccountpassword".',
    run(ctx) {
      const msg = checkAccountName(ctx.args[0]!);
      if (msg) throw new UsageError(msg);
      edit(() => addAccount(ctx.configFile, ctx.args[0]!, ctx.args[1]!), `account ${ctx.args[0]} added`);
    },
  },
  {
    name: 'config account rm',
    args: 'account',
    nargs: [1, 1],
    help: 'Removes an account from domains.conf. Its messages stay in the data directory.',
    run: (ctx) => edit(() => rmAccount(ctx.configFile, ctx.args[0]!), `account ${ctx.args[0]} removed`),
  },
  {
    name: 'config address add',
    args: 'address account',
    nargs: [2, 2],
    help: 'Adds an address to an account. "@domain" adds a catch-all for the domain.',
    run: (ctx) => edit(() => addAddress(ctx.configFile, ctx.args[0]!, ctx.args[1]!), `address ${ctx.args[0]} added`),
  },
  {
    name: 'config address rm',
    args: 'address',
    nargs: [1, 1],
    help: 'Removes an address from its account.',
    run: (ctx) => edit(() => rmAddress(ctx.configFile, ctx.args[0]!), `address ${ctx.args[0]} removed`),
  },
  {
    name: 'config tlspubkey add',
    args: 'address certificate.pem [name]',
    nargs: [2, 3],
    help: `Registers the public key of a TLS client certificate for logins with SASL EXTERNAL.

A mail client presenting this certificate during the TLS handshake can then log in to IMAP
and SMTP submission as the address without a password. Only the SHA-256 fingerprint of the
certificate's public key is stored, in domains.conf; the certificate may be self-signed.`,
    run(ctx) {
      const cert = new X509Certificate(fs.readFileSync(ctx.args[1]!));
      const fp = publicKeyFingerprint(cert).toString('base64url');
      const account = addTLSPublicKey(ctx.configFile, ctx.args[0]!, fp, ctx.args[2]);
      out(`key ${fp} added to account ${account}`);
    },
  },
  {
    name: 'config tlspubkey list',
    args: '',
    nargs: [0, 0],
    help: 'Lists the TLS client certificate keys registered for SASL EXTERNAL, per account.',
    run(ctx) {
      for (const [name, acc] of Object.entries(loadConfig(ctx).domains.Accounts)) {
        for (const k of acc.TLSPublicKeys) out(`${name} ${k.LoginAddress} ${k.Fingerprint}${k.Name ? ' ' + k.Name : ''}`);
      }
    },
  },
  {
    name: 'config tlspubkey rm',
    args: 'fingerprint',
    nargs: [1, 1],
    help: 'Removes a registered TLS client certificate key.',
    run: (ctx) => edit(() => rmTLSPublicKey(ctx.configFile, ctx.args[0]!), `key ${ctx.args[0]} removed`),
  },
  {
    name: 'version',
    args: '',
    nargs: [0, 0],
    help: 'Prints the version of Postern.',
    run() {
      const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
      out(pkg.version);
    },
  },
];

