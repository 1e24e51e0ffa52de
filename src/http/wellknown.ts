// Host-based services: MTA-STS policies and mail client autoconfiguration.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebContext } from './router.js';
import { normalizeDomain, splitAddress } from '../config/domains.js';
import { mtastsPolicy } from '../dnsrecords/dnsrecords.js';
import { autoconfigXML, autodiscoverRequestEmail, autodiscoverXML, clientSettings } from '../clientconfig/clientconfig.js';
import { readBody, sendText } from './util.js';

const xml = 'application/xml; charset=utf-8';

/** Configured domain of a host name below a prefix, e.g. "example.com" for "mta-sts.example.com". */
function domainBelow(ctx: WebContext, prefix: string): string | undefined {
  if (!ctx.host.startsWith(prefix)) return undefined;
  const d = normalizeDomain(ctx.host.slice(prefix.length));
  return d && ctx.app.config.domains.Domains[d] ? d : undefined;
}

function emailDomain(ctx: WebContext, email: string | null | undefined): string | undefined {
  const at = email ? splitAddress(email) : undefined;
  const d = at && normalizeDomain(at.domain);
  return d && ctx.app.config.domains.Domains[d] ? d : undefined;
}

/** RFC 8461 3.3: the policy is served as text/plain at a fixed path of the mta-sts host. */
export function mtastsHandler(_req: IncomingMessage, res: ServerResponse, ctx: WebContext): void {
  const d = domainBelow(ctx, 'mta-sts.');
  const policy = d && mtastsPolicy(ctx.app.config, d);
  if (!policy) return sendText(res, 404, 'no MTA-STS policy for this domain\n');
  sendText(res, 200, policy, 'text/plain; charset=utf-8', { 'Cache-Control': 'max-age=300' });
}

/** Thunderbird asks autoconfig.<domain>, adding ?emailaddress= (newer versions). */
export function autoconfigHandler(_req: IncomingMessage, res: ServerResponse, ctx: WebContext): void {
  const d = domainBelow(ctx, 'autoconfig.') ?? emailDomain(ctx, ctx.url.searchParams.get('emailaddress'));
  if (!d) return sendText(res, 404, 'unknown domain\n');
  sendText(res, 200, autoconfigXML(clientSettings(ctx.app.config), d), xml);
}

/** Outlook POSTs a request naming the email address; the answer names the servers. */
export async function autodiscoverHandler(req: IncomingMessage, res: ServerResponse, ctx: WebContext): Promise<void> {
  if (req.method !== 'POST') return sendText(res, 405, 'POST an autodiscover request\n', 'text/plain; charset=utf-8', { Allow: 'POST' });
  const email = autodiscoverRequestEmail((await readBody(req, 64 * 1024)).toString('utf8'));
  if (!email || !emailDomain(ctx, email)) return sendText(res, 404, 'unknown email address\n');
  sendText(res, 200, autodiscoverXML(clientSettings(ctx.app.config), email), xml);
}
