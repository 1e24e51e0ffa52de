// Settings for mail clients, from the listeners in postern.conf, in the formats clients fetch:
//
//   clientSettings(config)         host names, ports and TLS modes of IMAP and submission
//   autoconfigXML(s, domain)       Thunderbird autoconfig (clientConfig version 1.1)
//   autodiscoverXML(s, email)      Microsoft autodiscover, "POX" response schema 2006a
//   mobileconfig(s, opts)          Apple configuration profile (a property list)
//   settingsText(s, domain)        plain text for people, as printed by "postern clientconfig"
//
// Implicit TLS is listed first: RFC 8314 3 prefers it over STARTTLS for both submission and IMAP.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/load.js';
import type { Listener } from '../config/static.js';
import { isLoopbackIP } from '../dns/domain.js';

export type Security = 'tls' | 'starttls';

export interface Endpoint {
  host: string;
  port: number;
  security: Security;
}

export interface ClientSettings {
  imap: Endpoint[];
  submission: Endpoint[];
}

/** Listeners reachable from outside the machine; all listeners when every one is loopback-only (localserve). */
export function publicListeners(config: Config): Listener[] {
  const all = Object.values(config.static_.Listeners);
  const pub = all.filter((l) => l.IPs.some((ip) => !isLoopbackIP(ip)));
  return pub.length ? pub : all;
}

export function clientSettings(config: Config): ClientSettings {
  const s: ClientSettings = { imap: [], submission: [] };
  const add = (list: Endpoint[], e: Endpoint) => {
    if (!list.some((x) => x.host === e.host && x.port === e.port)) list.push(e);
  };
  for (const l of publicListeners(config)) {
    const host = l.Hostname ?? config.static_.Hostname;
    if (l.IMAPS.Enabled) add(s.imap, { host, port: l.IMAPS.Port, security: 'tls' });
    if (l.Submissions.Enabled) add(s.submission, { host, port: l.Submissions.Port, security: 'tls' });
  }
  for (const l of publicListeners(config)) {
    const host = l.Hostname ?? config.static_.Hostname;
    if (l.IMAP.Enabled) add(s.imap, { host, port: l.IMAP.Port, security: 'starttls' });
    if (l.Submission.Enabled) add(s.submission, { host, port: l.Submission.Port, security: 'starttls' });
  }
  return s;
}

export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Thunderbird autoconfig, https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat. */
export function autoconfigXML(s: ClientSettings, domain: string): string {
  const server = (tag: string, type: string, e: Endpoint) =>
    `    <${tag} type="${type}">
      <hostname>${xmlEscape(e.host)}</hostname>
      <port>${e.port}</port>
      <socketType>${e.security === 'tls' ? 'SSL' : 'STARTTLS'}</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </${tag}>
`;
  const d = xmlEscape(domain);
  return `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="${d}">
    <domain>${d}</domain>
    <displayName>${d}</displayName>
    <displayShortName>${d}</displayShortName>
${s.imap.map((e) => server('incomingServer', 'imap', e)).join('')}${s.submission.map((e) => server('outgoingServer', 'smtp', e)).join('')}  </emailProvider>
</clientConfig>
`;
}

export const autodiscoverRequestNS = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006';
export const autodiscoverResponseNS = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';

/** The email address of an autodiscover POX request, or undefined. */
export function autodiscoverRequestEmail(xml: string): string | undefined {
  const m = /<(?:\w+:)?EMailAddress>\s*([^<\s]+)\s*<\/(?:\w+:)?EMailAddress>/i.exec(xml);
  return m?.[1]?.replace(/&amp;/g, '&');
}

/**
 * Autodiscover POX response (MS-OXDSCLI, schema 2006a). Encryption "SSL" is implicit TLS and "TLS"
 * is STARTTLS; only the first endpoint of each protocol is given, as Outlook uses one.
 */
export function autodiscoverXML(s: ClientSettings, email: string): string {
  const proto = (type: string, e: Endpoint | undefined) =>
    e
      ? `      <Protocol>
        <Type>${type}</Type>
        <Server>${xmlEscape(e.host)}</Server>
        <Port>${e.port}</Port>
        <LoginName>${xmlEscape(email)}</LoginName>
        <SSL>on</SSL>
        <Encryption>${e.security === 'tls' ? 'SSL' : 'TLS'}</Encryption>
        <SPA>off</SPA>
        <AuthRequired>on</AuthRequired>
      </Protocol>
`
      : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="${autodiscoverResponseNS}">
    <User>
      <EMailAddress>${xmlEscape(email)}</EMailAddress>
    </User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
${proto('IMAP', s.imap[0])}${proto('SMTP', s.submission[0])}    </Account>
  </Response>
</Autodiscover>
`;
}

/** Apple configuration profile for one account (com.apple.mail.managed payload), without password. */
export function mobileconfig(s: ClientSettings, o: { email: string; fullName?: string; domain: string }): string {
  const imap = s.imap[0];
  const smtp = s.submission[0];
  if (!imap || !smtp) throw new Error('no IMAP or submission service configured');
  const reverse = o.domain.split('.').reverse().join('.');
  const str = (k: string, v: string) => `\t\t\t<key>${k}</key>\n\t\t\t<string>${xmlEscape(v)}</string>\n`;
  const int = (k: string, v: number) => `\t\t\t<key>${k}</key>\n\t\t\t<integer>${v}</integer>\n`;
  const bool = (k: string, v: boolean) => `\t\t\t<key>${k}</key>\n\t\t\t<${v}/>\n`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadContent</key>
	<array>
		<dict>
${str('EmailAccountDescription', o.email)}${str('EmailAccountName', o.fullName ?? '')}${str('EmailAccountType', 'EmailTypeIMAP')}${str('EmailAddress', o.email)}${str('IncomingMailServerAuthentication', 'EmailAuthPassword')}${str('IncomingMailServerHostName', imap.host)}${int('IncomingMailServerPortNumber', imap.port)}${bool('IncomingMailServerUseSSL', true)}${str('IncomingMailServerUsername', o.email)}${str('OutgoingMailServerAuthentication', 'EmailAuthPassword')}${str('OutgoingMailServerHostName', smtp.host)}${int('OutgoingMailServerPortNumber', smtp.port)}${bool('OutgoingMailServerUseSSL', true)}${str('OutgoingMailServerUsername', o.email)}${bool('OutgoingPasswordSameAsIncomingPassword', true)}${str('PayloadDescription', `Mail account ${o.email}`)}${str('PayloadDisplayName', o.email)}${str('PayloadIdentifier', `${reverse}.email.${o.email}.account`)}${str('PayloadType', 'com.apple.mail.managed')}${str('PayloadUUID', randomUUID().toUpperCase())}${int('PayloadVersion', 1)}		</dict>
	</array>
	<key>PayloadDisplayName</key>
	<string>${xmlEscape(o.email)}</string>
	<key>PayloadIdentifier</key>
	<string>${xmlEscape(`${reverse}.email.${o.email}`)}</string>
	<key>PayloadType</key>
	<string>Configuration</string>
	<key>PayloadUUID</key>
	<string>${randomUUID().toUpperCase()}</string>
	<key>PayloadVersion</key>
	<integer>1</integer>
</dict>
</plist>
`;
}

/** Human-readable settings, for "postern clientconfig DOMAIN" and the account page. */
export function settingsText(s: ClientSettings, domain: string): string {
  const line = (what: string, e: Endpoint) => `${what.padEnd(11)} ${e.host} port ${e.port}, ${e.security === 'tls' ? 'TLS' : 'STARTTLS'}, password (PLAIN or SCRAM)`;
  const lines = [`Mail client settings for addresses @${domain}; the user name is the full email address.`, ''];
  for (const e of s.imap) lines.push(line('IMAP', e));
  for (const e of s.submission) lines.push(line('Submission', e));
  if (s.imap.length === 0 && s.submission.length === 0) lines.push('No IMAP or submission service is enabled in postern.conf.');
  return lines.join('\n') + '\n';
}
