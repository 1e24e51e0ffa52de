// "postern quickstart": configuration for a public mail server on this machine, from one email
// address. It writes postern.conf and domains.conf, the account with a generated password, DKIM
// and host keys, a systemd unit, and tells what DNS records to create and what to check.
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcryptjs';
import type { Resolver } from '../dns/types.js';
import { writeFileAtomic } from '../config/edit.js';
import { Config } from '../config/load.js';
import { checkAccountName, normalizeDomain, splitAddress } from '../config/domains.js';
import { letsEncryptDirectory } from '../config/static.js';
import { genEd25519, genRSA } from '../dkim/keys.js';
import { deriveCredentials } from '../sasl/credentials.js';
import { Store } from '../store/store.js';
import { ensureHostKeys } from '../acme/hostkeys.js';
import { lookup as dnsblLookup } from '../dnsbl/dnsbl.js';
import { dialTCP } from '../queue/dial.js';
import { dnsZone } from './zone.js';

/** Blocklists many receivers consult; a listing here means mail will be refused. */
export const commonDNSBLs = ['sbl.spamhaus.org', 'bl.spamcop.net'];

export interface QuickstartOptions {
  /** The first email address, user@domain: the domain and account to create. */
  address: string;
  /** System user the server runs as (systemd User=); default "postern". */
  user?: string;
  hostname?: string;
  existingWebserver?: boolean;
  skipDial?: boolean;
  /** Directory that gets config/ and data/, and the systemd unit. */
  dir: string;
  resolver: Resolver;
  /** Written as Resolver in postern.conf when set. */
  resolverAddress?: string;
  /** IPs to listen on instead of the public addresses of this machine. */
  ips?: string[];
  out: (s: string) => void;
  now?: Date;
}

const privateRanges = new net.BlockList();
for (const [a, b] of [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['169.254.0.0', 16], ['127.0.0.0', 8], ['100.64.0.0', 10]] as const) privateRanges.addSubnet(a, b, 'ipv4');
for (const [a, b] of [['fc00::', 7], ['fe80::', 10], ['::1', 128]] as const) privateRanges.addSubnet(a, b, 'ipv6');

export function isPublicIP(ip: string): boolean {
  const v = net.isIP(ip);
  return v !== 0 && !privateRanges.check(ip, v === 4 ? 'ipv4' : 'ipv6');
}

/** Addresses of this machine that the internet can reach directly. */
export function machinePublicIPs(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((a) => a && !a.internal && isPublicIP(a.address))
    .map((a) => a!.address);
}

/** 16 characters without look-alikes (about 90 bits) in groups of four, easy to copy by hand. */
function generatePassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const chars = [...randomBytes(16)].map((b) => alphabet[b % alphabet.length]);
  return chars.join('').replace(/(.{4})(?!$)/g, '$1-');
}

/** The command that starts the server: bin/postern next to the sources or the build. */
export function posternBinary(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/postern');
}

/** A systemd unit that runs the server as an unprivileged user, allowed to bind ports below 1024. */
export function systemdUnit(dir: string, user: string): string {
  const abs = path.resolve(dir);
  return `[Unit]
Description=Postern mail server
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${user}
Group=${user}
WorkingDirectory=${abs}
ExecStart=${process.execPath} ${posternBinary()} serve
ExecStop=${process.execPath} ${posternBinary()} stop
Restart=always
RestartSec=5s
UMask=007
LimitNOFILE=65535
# Ports 25, 443, 465 and 993 without running as root.
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
# Only the config and data directories are writable; the rest of the system is read-only.
ProtectSystem=strict
ReadWritePaths=${path.join(abs, 'config')} ${path.join(abs, 'data')}
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
ProtectClock=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
`;
}

/** The host name to run as: the flag, else the machine's name if fully qualified, else its reverse DNS, else the name plus the mail domain. */
async function chooseHostname(o: QuickstartOptions, domain: string, ips: string[]): Promise<{ hostname: string; how: string }> {
  if (o.hostname) {
    const h = normalizeDomain(o.hostname.replace(/\.$/, ''));
    if (!h || !h.includes('.')) throw new Error(`invalid host name ${o.hostname}`);
    return { hostname: h, how: 'given with -hostname' };
  }
  const name = os.hostname().toLowerCase();
  if (name.includes('.') && normalizeDomain(name)) return { hostname: normalizeDomain(name)!, how: 'the name of this machine' };
  for (const ip of ips) {
    try {
      const ptr = (await o.resolver.lookupPTR(ip)).records[0];
      if (ptr && normalizeDomain(ptr.replace(/\.$/, ''))) return { hostname: normalizeDomain(ptr.replace(/\.$/, ''))!, how: `the reverse DNS of ${ip}` };
    } catch {
      // Next address, else the fallback.
    }
  }
  const label = name.split('.')[0]!.replace(/[^a-z0-9-]/g, '') || 'mail';
  return { hostname: `${label}.${domain}`, how: `the machine name "${name}" plus the mail domain` };
}

const yq = (s: string) => JSON.stringify(s);

function staticConfig(p: { hostname: string; account: string; email: string; ips: string[]; existingWebserver: boolean; resolver?: string; now: Date }): string {
  const { hostname } = p;
  const ips = p.ips.map((ip) => `      - ${yq(ip)}`).join('\n');
  const publicTLS = p.existingWebserver
    ? `    TLS:
      # Certificates for ${hostname}, e.g. from the existing web server's ACME client; the
      # file names are examples. Submissions, IMAPS and STARTTLS use them.
      KeyCerts:
        - CertFile: /etc/letsencrypt/live/${hostname}/fullchain.pem
          KeyFile: /etc/letsencrypt/live/${hostname}/privkey.pem`
    : `    TLS:
      ACME: lets-encrypt
      # Kept across certificate renewals, so the TLSA records of "postern config dnsrecords" stay valid.
      HostPrivateKeyFiles:
        - hostkeys/${hostname}.ecdsap256.pem
        - hostkeys/${hostname}.rsa2048.pem`;
  const publicWeb = p.existingWebserver
    ? ''
    : `
    # MTA-STS policies and mail client settings over HTTPS on port 443; tls-alpn-01 ACME
    # validations are answered there too.
    AutoconfigHTTPS:
      Enabled: true
    MTASTSHTTPS:
      Enabled: true`;
  const internalWeb = p.existingWebserver
    ? `
    # Behind the existing web server: it forwards https://mta-sts.<domain>/ and
    # https://autoconfig.<domain>/ to http://127.0.0.1:81/, keeping the Host header.
    AutoconfigHTTPS:
      Enabled: true
      Port: 81
      NonTLS: true
    MTASTSHTTPS:
      Enabled: true
      Port: 81
      NonTLS: true`
    : '';
  return `# Static configuration of Postern, written by "postern quickstart" on ${p.now.toISOString().slice(0, 10)}.
# See "postern config describe-static" for every field. Changes need a restart.
Hostname: ${hostname}
DataDir: ../data
LogLevel: info
AdminPasswordFile: adminpasswd
Postmaster:
  Account: ${p.account}
  Mailbox: Postmaster
${p.resolver ? `Resolver: ${yq(p.resolver)}\n` : `# A DNSSEC-validating resolver on this machine (e.g. unbound) makes DANE work:
# Resolver: "127.0.0.1:53"
`}${
    p.existingWebserver
      ? ''
      : `ACME:
  lets-encrypt:
    DirectoryURL: ${letsEncryptDirectory}
    ContactEmail: ${p.email}
`
  }Listeners:
  public:
    IPs:
${ips}
${publicTLS}
    SMTP:
      Enabled: true
    Submissions:
      Enabled: true
    IMAPS:
      Enabled: true${publicWeb}
  # Web pages for the admin and the account, on this machine only: reach them with
  # "ssh -L 8080:localhost:80 you@${hostname}" and http://localhost:8080/.
  internal:
    IPs:
      - "127.0.0.1"
      - "::1"
    Hostname: localhost
    AccountHTTP:
      Enabled: true
    AdminHTTP:
      Enabled: true
    WebmailHTTP:
      Enabled: true
    WebAPIHTTP:
      Enabled: true
    MetricsHTTP:
      Enabled: true${internalWeb}
# An update check is off unless set to true (with UpdatesName); Postern then looks up one
# DNS TXT record a day.
CheckUpdates: false
`;
}

function domainsConfig(p: { domain: string; account: string; localpart: string; hostname: string; selectors: { name: string; file: string }[]; sign: string[]; now: Date }): string {
  const policyID = p.now.toISOString().replace(/[-:]|\..*$/g, '');
  return `# Domains and accounts of Postern, written by "postern quickstart".
# Reloaded when it changes. See "postern config describe-domains" for every field.
Domains:
  ${yq(p.domain)}:
    LocalpartCatchallSeparator: "+"
    DKIM:
      Selectors:
${p.selectors.map((s) => `        ${yq(s.name)}:\n          PrivateKeyFile: ${s.file}`).join('\n')}
      # Two RSA selectors: the second is published but idle, for switching keys without a gap.
      Sign:
${p.sign.map((s) => `        - ${yq(s)}`).join('\n')}
    DMARC:
      Localpart: dmarcreports
      Account: ${p.account}
      Mailbox: DMARC
    TLSRPT:
      Localpart: tlsreports
      Account: ${p.account}
      Mailbox: TLSRPT
    # Raise MaxAge to weeks (e.g. 1209600) once mail flows: senders then insist on TLS for longer.
    MTASTS:
      PolicyID: ${yq(policyID)}
      Mode: enforce
      MaxAge: 86400
      MX:
        - ${p.hostname}
Accounts:
  ${p.account}:
    Domain: ${yq(p.domain)}
    Destinations:
      ${yq(`${p.localpart}@${p.domain}`)}: {}
`;
}

export interface QuickstartResult {
  configFile: string;
  password: string;
  adminPassword: string;
  hostname: string;
}

export async function quickstart(o: QuickstartOptions): Promise<QuickstartResult> {
  const out = o.out;
  const now = o.now ?? new Date();
  const at = splitAddress(o.address);
  const domain = at && normalizeDomain(at.domain);
  if (!at || !domain || at.localpart === '' || !domain.includes('.')) throw new Error(`invalid address ${o.address}: want user@domain`);
  const localpart = at.localpart;
  const account = localpart.toLowerCase().replace(/[^a-z0-9_.-]/g, '') || 'admin';
  if (checkAccountName(account)) throw new Error(`cannot make an account name from ${localpart}`);
  const user = o.user ?? 'postern';
  const dir = path.resolve(o.dir);
  const configDir = path.join(dir, 'config');
  const configFile = path.join(configDir, 'postern.conf');
  if (fs.existsSync(configFile)) throw new Error(`${configFile} exists already; quickstart only makes new configurations`);

  const machineIPs = machinePublicIPs();
  let ips = o.ips ?? machineIPs;
  const { hostname, how } = await chooseHostname(o, domain, machineIPs);
  out(`Host name: ${hostname} (${how}).`);
  if (o.hostname && !o.ips) {
    // RFC 5321 and most receivers want the host name to resolve to the addresses mail comes from.
    try {
      const named = (await o.resolver.lookupIP(hostname)).records;
      const local = named.filter((ip) => machineIPs.includes(ip));
      if (local.length) ips = local;
      else if (named.length) out(`Note: ${hostname} resolves to ${named.join(', ')}, not an address of this machine: behind NAT, forward the ports to it.`);
    } catch {
      // The name may not be in DNS yet.
    }
  }
  if (ips.length === 0) {
    out('This machine has no public IP address: listening on all addresses. Behind NAT, forward ports 25, 465, 993 and 443 to it.');
    ips = ['0.0.0.0', '::'];
  }

  fs.mkdirSync(path.join(configDir, 'dkim'), { recursive: true, mode: 0o750 });
  const year = now.getUTCFullYear();
  const selectors = [
    { name: `${year}a`, key: await genRSA(2048), kind: 'rsa2048' },
    { name: `${year}b`, key: await genRSA(2048), kind: 'rsa2048' },
    { name: `${year}e`, key: await genEd25519(), kind: 'ed25519' },
  ].map((s) => ({ ...s, file: `dkim/${s.name}._domainkey.${domain}.${s.kind}.pem` }));
  for (const s of selectors) writeFileAtomic(path.join(configDir, s.file), s.key, 0o600);

  const password = generatePassword();
  const adminPassword = generatePassword();
  writeFileAtomic(path.join(configDir, 'adminpasswd'), bcrypt.hashSync(adminPassword, 10) + '\n', 0o600);
  writeFileAtomic(
    path.join(configDir, 'domains.conf'),
    domainsConfig({ domain, account, localpart, hostname, selectors, sign: [`${year}a`, `${year}e`], now }),
    0o640,
  );
  const staticText = staticConfig({ hostname, account, email: o.address, ips, existingWebserver: !!o.existingWebserver, resolver: o.resolverAddress, now });
  // The host keys are referenced by the config, so they exist before it is read.
  writeFileAtomic(configFile + '.tmp', staticText, 0o640);
  fs.renameSync(configFile + '.tmp', configFile);
  const config = Config.load(configFile);
  ensureHostKeys(configDir, config.dataDir, config.static_);
  const store = new Store(config.dataDir);
  try {
    store.account(account).setCredentials(await deriveCredentials(password));
  } finally {
    store.close();
  }
  const unit = path.join(dir, 'postern.service');
  writeFileAtomic(unit, systemdUnit(dir, user));

  out(`
Wrote ${configFile}, ${path.join(configDir, 'domains.conf')}, DKIM keys in ${path.join(configDir, 'dkim')},
and the account "${account}" for ${localpart}@${domain}.

Account ${localpart}@${domain}, password (shown only now, write it down):

    ${password}

Admin password for the admin web pages (also only now):

    ${adminPassword}

`);

  out(await blocklistReport(o.resolver, ips.filter(isPublicIP)));
  if (!o.skipDial) out(await outgoingPort25(o.resolver));

  out(`DNS records to create. Every line has a comment saying what it is for; the zone text can be
pasted into most DNS providers' "import zone" function. Check them later with
"postern config dnscheck ${domain}".
`);
  out(await dnsZone(config, domain));

  const chown = process.getuid?.() === 0 ? `chown -R ${user}: ${configDir} ${path.join(dir, 'data')}` : undefined;
  out(`
Next steps:

  - Ask your hosting provider to set the reverse DNS (PTR) of ${ips.filter(isPublicIP).join(', ') || 'your public IPs'} to ${hostname}.
  - Create the DNS records above, and wait until "postern config dnscheck ${domain}" shows no errors.
${o.existingWebserver ? `  - Put certificates for ${hostname} where postern.conf names them, and configure the existing web
    server to forward https://mta-sts.${domain}/ and https://autoconfig.${domain}/ to http://127.0.0.1:81/.
` : `  - Make sure ports 25, 465, 993 and 443 are reachable; certificates come from Let's Encrypt on first use.
`}  - Run the server as a service, as root:

      id ${user} || useradd -r -d ${dir} -s /usr/sbin/nologin ${user}
      ${chown ?? `chown -R ${user}: ${configDir} ${path.join(dir, 'data')}`}
      cp ${unit} /etc/systemd/system/postern.service
      systemctl daemon-reload
      systemctl enable --now postern.service
      journalctl -fu postern.service

    Or try it in the foreground first: cd ${dir} && ${posternBinary()} serve

  - Mail clients: IMAP over TLS at ${hostname} port 993, submission over TLS at ${hostname} port 465,
    user name ${localpart}@${domain}.
`);
  if (chown) {
    try {
      const { execFileSync } = await import('node:child_process');
      execFileSync('chown', ['-R', `${user}:`, configDir, path.join(dir, 'data')], { stdio: 'ignore' });
    } catch {
      // The user may not exist yet; the printed commands do it.
    }
  }
  return { configFile, password, adminPassword, hostname };
}

/** Whether the public IPs are on common blocklists. */
export async function blocklistReport(resolver: Resolver, ips: string[], zones = commonDNSBLs): Promise<string> {
  if (ips.length === 0) return 'Blocklists: no public IP to check.\n';
  const lines: string[] = [];
  for (const ip of ips) {
    for (const zone of zones) {
      const r = await dnsblLookup(resolver, zone, ip);
      if (r.status === 'fail') lines.push(`  ${ip} is LISTED in ${zone}${r.explanation ? `: ${r.explanation}` : ''}; receivers using it will refuse your mail.`);
      else if (r.status === 'temperror') lines.push(`  ${ip}: could not check ${zone}: ${r.error}`);
    }
  }
  return `Blocklists (${zones.join(', ')}): ${lines.length ? '\n' + lines.join('\n') : `${ips.join(', ')} not listed.`}\n\n`;
}

/** Whether this machine can open SMTP connections to another mail server (many providers block port 25). */
export async function outgoingPort25(resolver: Resolver): Promise<string> {
  let host = 'gmail-smtp-in.l.google.com';
  try {
    const mx = (await resolver.lookupMX('gmail.com')).records.sort((a, b) => a.preference - b.preference)[0];
    if (mx?.exchange) host = mx.exchange;
  } catch {
    // Keep the usual name.
  }
  try {
    const s = await dialTCP(host, 25, 10_000);
    s.destroy();
    return `Outgoing SMTP (port 25) to ${host}: works.\n\n`;
  } catch (e) {
    return `Outgoing SMTP (port 25) to ${host} FAILED: ${(e as Error).message}. Many hosting providers block port 25 for new machines; ask them to open it, or configure a smarthost (Transports in postern.conf).\n\n`;
  }
}
