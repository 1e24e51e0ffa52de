// Commands for junk filtering: retraining an account's filter, and checking DNS blocklists.
import type { Command } from './cli.js';
import { Config } from '../config/load.js';
import { ctlCall, ctlPath, isRunning } from '../ctl/ctl.js';
import { resolverFor } from '../server/resolver.js';
import { Store } from '../store/store.js';
import { Filter } from '../junk/filter.js';
import { Trainer } from '../junk/train.js';
import { junkSettings } from '../junk/settings.js';
import { checkHealth, lookup } from '../dnsbl/dnsbl.js';
import { systemClock } from '../limits/limiter.js';
import { Log } from '../log/log.js';
import path from 'node:path';

const out = (s: string) => process.stdout.write(s + '\n');

export const junkCommands: Command[] = [
  {
    name: 'retrain',
    args: 'account',
    nargs: [1, 1],
    help: `Rebuilds the junk filter of an account from its messages.

The filter forgets what it learned and learns again from every message that is classified:
$Junk or $NotJunk flags, messages in the not-junk mailboxes (JunkFilter NotJunkMailboxes,
default Archive and Sent), and messages kept long enough (JunkFilter KeptDays) in Inbox
(not junk) or Junk (junk). Useful after changing these settings or importing mail. With a
running server the work is done by the server; otherwise directly on the data directory.`,
    async run(ctx) {
      const config = Config.load(ctx.configFile);
      const name = ctx.args[0]!;
      if (!config.domains.Accounts[name]) throw new Error(`no account ${JSON.stringify(name)}`);
      const sock = ctlPath(config.dataDir);
      let r: { ham: number; spam: number };
      if (await isRunning(sock)) {
        r = (await ctlCall(sock, 'junk retrain', { account: name })) as typeof r;
      } else {
        const store = new Store(config.dataDir);
        const acc = store.account(name);
        const filter = new Filter(path.join(acc.dir, 'junkfilter.db'));
        const trainer = new Trainer(acc, filter, () => junkSettings(config.domains.Accounts[name]), systemClock, Log.pkg('junk').with({ account: name }));
        try {
          r = await trainer.retrain();
        } finally {
          trainer.close();
          filter.close();
          store.close();
        }
      }
      out(`retrained ${name}: ${r.ham} non-junk and ${r.spam} junk messages`);
    },
  },
  {
    name: 'dnsbl check',
    args: 'zone ip',
    nargs: [2, 2],
    help: `Looks up an IP address in a DNS blocklist zone (RFC 5782).

Prints "status: fail" with the zone's explanation when the IP is listed, "status: pass" when it
is not, and "status: temperror" when the zone gave no usable answer. Uses the configured
resolver.`,
    async run(ctx) {
      const resolver = resolverFor(Config.load(ctx.configFile).static_);
      const r = await lookup(resolver, ctx.args[0]!, ctx.args[1]!);
      out(`status: ${r.status}`);
      if (r.explanation) out(`explanation: ${r.explanation}`);
      if (r.error) out(`error: ${r.error}`);
    },
  },
  {
    name: 'dnsbl checkhealth',
    args: 'zone',
    nargs: [1, 1],
    help: `Checks that a DNS blocklist zone works: 127.0.0.2 must be listed and 127.0.0.1 not (RFC 5782 5).

Exits with status 1 when the zone is unhealthy. The server checks each configured zone like
this, at most every 4 hours, and does not use an unhealthy zone.`,
    async run(ctx) {
      const resolver = resolverFor(Config.load(ctx.configFile).static_);
      const problem = await checkHealth(resolver, ctx.args[0]!);
      out(problem ? `unhealthy: ${problem}` : 'healthy');
      return problem ? 1 : 0;
    },
  },
];
