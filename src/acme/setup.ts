// The ACME providers of a running server: one manager per provider named by a listener, with
// the names it may request certificates for derived from the configuration at each use.
import fs from 'node:fs';
import path from 'node:path';
import { domainToASCII } from 'node:url';
import type { App } from '../server/app.js';
import type { Config } from '../config/load.js';
import { AcmeManager } from './manager.js';

const managers = new WeakMap<App, Map<string, AcmeManager>>();

/** Host names of the listeners that use the provider; the global Hostname first. */
export function providerHostnames(config: Config, provider: string): string[] {
  const names = new Set<string>();
  for (const l of Object.values(config.static_.Listeners)) {
    if (l.TLS?.ACME === provider) names.add(ascii(l.Hostname ?? config.static_.Hostname));
  }
  return [...names].sort((a, b) => Number(b === ascii(config.static_.Hostname)) - Number(a === ascii(config.static_.Hostname)));
}

function ascii(name: string): string {
  return (domainToASCII(name.toLowerCase()) || name).toLowerCase();
}

/**
 * Names certificates are requested for: the host names, and per domain the names mail clients and
 * senders look up over HTTPS or TLS: mta-sts. (RFC 8461 3.3), autoconfig. and autodiscover.
 * (client settings), and the domain's client settings host name.
 */
export function allowedNames(config: Config, provider: string): Set<string> {
  const names = new Set(providerHostnames(config, provider));
  for (const [domain, d] of Object.entries(config.domains.Domains)) {
    const a = ascii(domain);
    for (const prefix of ['mta-sts', 'autoconfig', 'autodiscover']) names.add(`${prefix}.${a}`);
    if (d.ClientSettingsDomain) names.add(ascii(d.ClientSettingsDomain));
  }
  // Sites of the web server.
  for (const h of config.domains.WebHandlers) names.add(ascii(h.Domain));
  for (const d of Object.keys(config.domains.WebDomainRedirects)) names.add(ascii(d));
  return names;
}

/** The host private keys configured for the provider's listeners, as PEM. */
function hostKeys(config: Config, provider: string): string[] {
  const files = new Set<string>();
  for (const l of Object.values(config.static_.Listeners)) {
    if (l.TLS?.ACME === provider) for (const f of l.TLS.HostPrivateKeyFiles) files.add(config.resolve(f));
  }
  return [...files].map((f) => fs.readFileSync(f, 'utf8'));
}

/** Directory of a provider's account and certificates. */
export function acmeDir(config: Config, provider: string): string {
  return path.join(config.dataDir, 'acme', provider);
}

/** The manager of a provider, created at first use. */
export function acmeManager(app: App, provider: string): AcmeManager {
  let m = managers.get(app);
  if (!m) managers.set(app, (m = new Map()));
  let a = m.get(provider);
  if (!a) {
    const config = app.config;
    const c = config.static_.ACME[provider];
    if (!c) throw new Error(`no ACME provider ${provider}`);
    a = new AcmeManager({
      name: provider,
      config: c,
      dir: acmeDir(config, provider),
      caPEM: c.CAFile ? fs.readFileSync(config.resolve(c.CAFile), 'utf8') : undefined,
      hostnames: providerHostnames(config, provider),
      hostKeys: hostKeys(config, provider),
      allowed: () => allowedNames(app.config, provider),
      now: () => app.clock.now(),
    });
    m.set(provider, a);
  }
  return a;
}

/** Starts requesting and renewing certificates, once the listeners answer challenges. */
export function startACME(app: App): void {
  for (const a of acmeManagers(app)) a.start();
}

/** The running managers of a server. */
export function acmeManagers(app: App): AcmeManager[] {
  return [...(managers.get(app)?.values() ?? [])];
}

export function stopACME(app: App): void {
  for (const a of acmeManagers(app)) a.stop();
}

/** The key authorization for an http-01 request path (RFC 8555 8.3), from any provider. */
export function httpChallengeResponse(app: App, urlPath: string): string | undefined {
  const m = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(urlPath);
  if (!m) return undefined;
  for (const a of acmeManagers(app)) {
    const r = a.httpChallenge(m[1]!);
    if (r) return r;
  }
  return undefined;
}
