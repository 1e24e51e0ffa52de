// Commands about mail clients and the web services.
import type { Command } from './cli.js';
import { UsageError } from './cli.js';
import { Config } from '../config/load.js';
import { normalizeDomain } from '../config/domains.js';
import { autoconfigXML, clientSettings, settingsText } from '../clientconfig/clientconfig.js';

export const webCommands: Command[] = [
  {
    name: 'clientconfig',
    args: 'domain',
    nargs: [1, 1],
    flags: { xml: { type: 'bool', help: 'print the Thunderbird autoconfig XML instead' } },
    help: `Prints the settings mail clients need for addresses in a domain.

The host names and ports come from the listeners in postern.conf: IMAP and submission over
TLS first (RFC 8314), then with STARTTLS. Clients that support autoconfiguration fetch the
same settings from https://autoconfig.DOMAIN/mail/config-v1.1.xml (Thunderbird) or
autodiscover.DOMAIN (Microsoft) when a listener has AutoconfigHTTPS; the account web page
offers an Apple configuration profile.`,
    run(ctx) {
      const config = Config.load(ctx.configFile);
      const domain = normalizeDomain(ctx.args[0]!);
      if (!domain || !config.domains.Domains[domain]) throw new UsageError(`domain ${ctx.args[0]} not configured`);
      const s = clientSettings(config);
      process.stdout.write(ctx.flags.xml ? autoconfigXML(s, domain) : settingsText(s, domain));
    },
  },
];
