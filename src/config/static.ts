// The static configuration file, postern.conf: read at start, changed only with a restart.
import { isIP } from 'node:net';
import { bool, int, list, map, str, struct, type Spec, type StructSpec } from './schema.js';
import { levels } from '../log/log.js';
import { routeSpec, type Route } from './domains.js';

export interface KeyCert {
  CertFile: string;
  KeyFile: string;
}

export interface ListenerTLS {
  KeyCerts: KeyCert[];
  /** Name of an ACME provider in StaticConfig.ACME. */
  ACME?: string;
  HostPrivateKeyFiles: string[];
  MinVersion: string;
}

/** A certificate authority speaking ACME (RFC 8555). */
export interface ACMEConfig {
  DirectoryURL: string;
  ContactEmail?: string;
  RenewBeforeDays: number;
  IssuerDomainName: string;
  ChallengeTypes: ('tls-alpn-01' | 'http-01')[];
  ExternalAccountBinding?: { KeyID: string; HMACKey: string };
  CAFile?: string;
}

export const letsEncryptDirectory = 'https://acme-v02.api.letsencrypt.org/directory';

export interface ServiceConfig {
  Enabled: boolean;
  Port: number;
}

/** A web application on a listener: plain HTTP or HTTPS on a port, under a path prefix. */
export interface WebService extends ServiceConfig {
  Path: string;
}

/** A service on fixed paths that is normally served over HTTPS. */
export interface TLSWebService extends ServiceConfig {
  NonTLS: boolean;
}

export interface Listener {
  IPs: string[];
  Hostname?: string;
  TLS?: ListenerTLS;
  SMTP: ServiceConfig & { NoSTARTTLS: boolean; RequireSTARTTLS: boolean; MaxMessageSize: number };
  Submission: ServiceConfig & { NoRequireSTARTTLS: boolean };
  Submissions: ServiceConfig;
  IMAP: ServiceConfig & { NoRequireSTARTTLS: boolean };
  IMAPS: ServiceConfig;
  AccountHTTP: WebService;
  AccountHTTPS: WebService;
  AdminHTTP: WebService;
  AdminHTTPS: WebService;
  WebmailHTTP: WebService;
  WebmailHTTPS: WebService;
  WebAPIHTTP: WebService;
  WebAPIHTTPS: WebService;
  MetricsHTTP: WebService;
  AutoconfigHTTPS: TLSWebService;
  MTASTSHTTPS: TLSWebService;
  WebserverHTTP: ServiceConfig;
  WebserverHTTPS: ServiceConfig;
  AdminIPs: string[];
}

/** The web services of a listener, by config field name. */
export const webServices = ['AccountHTTP', 'AccountHTTPS', 'AdminHTTP', 'AdminHTTPS', 'WebmailHTTP', 'WebmailHTTPS', 'WebAPIHTTP', 'WebAPIHTTPS', 'MetricsHTTP'] as const;
export type WebServiceName = (typeof webServices)[number];

/** Loopback and private networks (RFC 1918, RFC 4193, link-local): where admins usually are. */
export const defaultAdminIPs = ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7', 'fe80::/10'];

export interface TransportAuth {
  Username: string;
  Password: string;
  Mechanisms: string[];
}

/** A smarthost reached over SMTP (port 25 style), submission with STARTTLS, or submission over implicit TLS. */
export interface TransportSMTP {
  Host: string;
  Port?: number;
  STARTTLSInsecureSkipVerify: boolean;
  NoSTARTTLS: boolean;
  Auth?: TransportAuth;
}

export interface TransportSocks {
  Address: string;
  RemoteIPs: string[];
  RemoteHostname: string;
}

export interface Transport {
  Submissions?: TransportSMTP;
  Submission?: TransportSMTP;
  SMTP?: TransportSMTP;
  Socks?: TransportSocks;
  Direct?: { DisableIPv4: boolean; DisableIPv6: boolean };
  Fail?: { SMTPCode: number; SMTPMessage: string };
}

export interface QueueConfig {
  MaxAttempts: number;
  Concurrency: number;
  SMTPPort: number;
  ConnectTimeoutSeconds: number;
  CAFiles: string[];
  MTASTSPort?: number;
  RetiredDays: number;
  NoTLSReports: boolean;
  Paused: boolean;
}

export interface StaticConfig {
  Hostname: string;
  DataDir: string;
  LogLevel: string;
  PackageLogLevels: Record<string, string>;
  User?: string;
  Resolver?: string;
  Pedantic: boolean;
  MaxConnectionsPerIP: number;
  AdminPasswordFile: string;
  Postmaster: { Account: string; Mailbox: string };
  Listeners: Record<string, Listener>;
  Queue: QueueConfig;
  Transports: Record<string, Transport>;
  Routes: Route[];
  DNSBL?: { Zones: string[] };
  ACME: Record<string, ACMEConfig>;
  NoOutgoingDMARCReports: boolean;
  OutgoingDMARCReportIntervalHours: number;
  CheckUpdates: boolean;
  UpdatesName?: string;
}

export const defaultMaxMessageSize = 100 * 1024 * 1024;

function checkHostPort(v: string): string | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:]+):(\d+)$/.exec(v);
  if (!m || !isIP(m[1]!) || Number(m[2]) < 1 || Number(m[2]) > 65535) return 'must be IP:port, e.g. 127.0.0.1:53 or [::1]:53';
  return undefined;
}

function checkIP(v: string): string | undefined {
  return isIP(v) ? undefined : 'must be an IPv4 or IPv6 address';
}

function checkCIDR(v: string): string | undefined {
  const [ip, bits, extra] = v.split('/');
  const max = isIP(ip ?? '') === 4 ? 32 : 128;
  if (!isIP(ip ?? '') || extra !== undefined || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) return 'must be an IP address or network, e.g. 192.168.0.0/16';
  return undefined;
}

function checkPath(v: string): string | undefined {
  return /^\/[\x21-\x7e]*$/.test(v) && !v.includes('//') && !v.includes('?') && !v.includes('#') ? undefined : 'must be a URL path starting with "/", e.g. /admin/';
}

const webService = (what: string, port: number, path: string) =>
  struct(
    `${what}.`,
    {
      Enabled: bool('Serve it on this listener.', { example: true }),
      Port: int('Port to listen on; services on the same port share one web server.', port, { optional: true, default: port, min: 1, max: 65535 }),
      Path: str('URL path it is served under.', path, { optional: true, default: path, check: checkPath }),
    },
    { optional: true, default: { Enabled: false, Port: port, Path: path } },
  );

const tlsWebService = (what: string) =>
  struct(
    `${what}.`,
    {
      Enabled: bool('Serve it on this listener.', { example: true }),
      Port: int('Port to listen on; services on the same port share one web server.', 443, { optional: true, default: 443, min: 1, max: 65535 }),
      NonTLS: bool('Serve it over plain HTTP instead of HTTPS, e.g. behind a TLS-terminating proxy or in local testing.'),
    },
    { optional: true, default: { Enabled: false, Port: 443, NonTLS: false } },
  );

const service = (name: string, port: number, extra: Record<string, Spec> = {}) =>
  struct(
    `${name}.`,
    {
      Enabled: bool('Serve it on this listener.', { example: true }),
      Port: int('Port to listen on.', port, { optional: true, default: port, min: 1, max: 65535 }),
      ...extra,
    },
    { optional: true, default: { Enabled: false, Port: port, ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, v.default])) } },
  );

const smtpTransport = (what: string, port: number) =>
  struct(
    what,
    {
      Host: str('Host name of the server; its certificate must be valid for this name.', 'smtp.example.net'),
      Port: int(`Port. Default ${port}.`, port, { optional: true, min: 1, max: 65535 }),
      STARTTLSInsecureSkipVerify: bool('Do not verify the server certificate of STARTTLS or implicit TLS. Dangerous: anyone on the path can read the mail and the password.'),
      NoSTARTTLS: bool('Do not use STARTTLS: mail and password cross the network in plain text. Only for SMTP and Submission.'),
      Auth: struct(
        'Authentication with the server. The strongest mechanism offered that is allowed is used.',
        {
          Username: str('User name.', 'jane@example.net'),
          Password: str('Password.', 'secret'),
          Mechanisms: list('Allowed mechanisms; default SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5 and PLAIN (PLAIN only over TLS).', str('Mechanism.', 'SCRAM-SHA-256', {
            values: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-1', 'CRAM-MD5', 'PLAIN', 'LOGIN'],
          }), { optional: true, examples: ['SCRAM-SHA-256'] }),
        },
        { optional: true },
      ),
    },
    { optional: true },
  );

const transportSpec = struct('Transport: exactly one of the kinds below.', {
  Submissions: smtpTransport('Submission over implicit TLS (RFC 8314) to a smarthost.', 465),
  Submission: smtpTransport('Submission with STARTTLS (RFC 6409) to a smarthost.', 587),
  SMTP: smtpTransport('SMTP with opportunistic STARTTLS to a smarthost, e.g. a relay of the provider.', 25),
  Socks: struct(
    'Direct delivery through a SOCKS5 proxy (RFC 1928).',
    {
      Address: str('Address of the proxy as host:port.', '127.0.0.1:1080'),
      RemoteIPs: list('IP addresses the proxy connects from, for SPF and reverse DNS.', str('IP address.', '198.51.100.1', { check: checkIP })),
      RemoteHostname: str('Host name for the IPs of the proxy, used in EHLO.', 'proxy.example.com'),
    },
    { optional: true },
  ),
  Direct: struct(
    'Direct delivery to the MX hosts of the recipient domain, as without transport, with options.',
    {
      DisableIPv4: bool('Do not connect to IPv4 addresses.'),
      DisableIPv6: bool('Do not connect to IPv6 addresses.'),
    },
    { optional: true },
  ),
  Fail: struct(
    'Fail delivery at once, e.g. for domains that must not get mail; the sender gets a DSN.',
    {
      SMTPCode: int('SMTP reply code for the DSN, 4xx or 5xx: a 4xx code is retried until the attempts run out.', 554, { optional: true, default: 554, min: 400, max: 599 }),
      SMTPMessage: str('Text for the DSN.', 'delivery to this domain is not allowed', { optional: true, default: 'delivery not allowed by configuration' }),
    },
    { optional: true },
  ),
});

export const staticSpec: StructSpec = struct('Static configuration.', {
  Hostname: str('Fully qualified domain name of this machine, used in SMTP greetings, Received headers and as TLS name.', 'mail.example.com'),
  DataDir: str('Directory with the mail store, queue and other state, relative to the directory of this file.', '../data', {
    optional: true,
    default: '../data',
  }),
  LogLevel: str('Default log level.', 'info', { optional: true, default: 'info', values: levels }),
  PackageLogLevels: map('Log levels per package, overriding LogLevel, e.g. smtpserver, imapserver, store.', 'smtpserver', str('Level.', 'debug', { values: levels }), {
    optional: true,
  }),
  User: str('Unprivileged system user to run as after binding ports, when started as root.', 'postern', { optional: true }),
  Resolver: str(
    'DNS resolver to send queries to, as IP:port. Use a DNSSEC-validating resolver on the same machine (e.g. unbound on 127.0.0.1:53): its AD bit is trusted for DANE. Default: the first nameserver of /etc/resolv.conf.',
    '127.0.0.1:53',
    { optional: true, check: checkHostPort },
  ),
  Pedantic: bool('Refuse protocol violations that are commonly accepted in the wild.'),
  MaxConnectionsPerIP: int(
    'Concurrent SMTP connections, and separately IMAP connections, allowed from one IP address; three times as many from its /26 (IPv4) or /48 (IPv6) network and nine times from its /21 or /32. localserve does not limit loopback clients.',
    30,
    { optional: true, default: 30, min: 1 },
  ),
  AdminPasswordFile: str('File with the bcrypt hash of the web admin password, relative to the directory of this file. Set it with "postern setadminpassword".', 'adminpasswd', {
    optional: true,
    default: 'adminpasswd',
  }),
  Postmaster: struct('Where mail to postmaster is delivered, for any configured domain without an explicit postmaster address (RFC 5321 4.5.1).', {
    Account: str('Account name.', 'jane'),
    Mailbox: str('Mailbox in that account.', 'Postmaster', { optional: true, default: 'Inbox' }),
  }),
  Listeners: map(
    'Listeners: groups of IP addresses with the services served on them. Typically one "public" listener on the public IPs and one "internal" on loopback.',
    'public',
    struct('Listener.', {
      IPs: list('IP addresses to listen on; 0.0.0.0 and :: listen on all.', str('IP address.', '0.0.0.0', { check: checkIP }), { examples: ['0.0.0.0', '::'] }),
      Hostname: str('Host name for this listener, if other than the global Hostname.', 'mail.example.com', { optional: true }),
      TLS: struct(
        'TLS configuration. Needed for STARTTLS, implicit TLS services and authentication.',
        {
          KeyCerts: list(
            'Certificate and key pairs, in PEM files, relative to the directory of this file. The certificate is chosen by the TLS SNI name; the first pair is the default. With ACME, these are used for the names they cover and ACME for the others.',
            struct('Key and certificate.', {
              CertFile: str('Certificate chain in PEM.', 'mail.example.com.crt'),
              KeyFile: str('Private key in PEM.', 'mail.example.com.key'),
            }),
            { optional: true },
          ),
          ACME: str(
            'Name of an ACME provider (under ACME) to get certificates from, on demand: for the host name, and for each domain its mta-sts., autoconfig. and client settings names.',
            'lets-encrypt',
            { optional: true },
          ),
          HostPrivateKeyFiles: list(
            'Private keys (PKCS#8 PEM, an RSA 2048 and an ECDSA P-256 key) used for every ACME certificate of the host name, so that DANE TLSA records (3 1 1) of the host stay valid across renewals. Relative to the directory of this file. "postern config ensureacmehostprivatekeys" makes them. Without them, a new key comes with each certificate.',
            str('PEM file.', 'hostkeys/mail.example.com.ecdsap256.pem'),
            { optional: true, examples: ['hostkeys/mail.example.com.ecdsap256.pem', 'hostkeys/mail.example.com.rsa2048.pem'] },
          ),
          MinVersion: str('Minimum TLS version.', 'TLSv1.2', { optional: true, default: 'TLSv1.2', values: ['TLSv1.2', 'TLSv1.3'] }),
        },
        { optional: true },
      ),
      SMTP: service('SMTP for incoming mail from the internet (MX)', 25, {
        NoSTARTTLS: bool('Do not offer STARTTLS.'),
        RequireSTARTTLS: bool('Refuse mail delivered without TLS.'),
        MaxMessageSize: int('Maximum message size in bytes, announced with the SIZE extension.', defaultMaxMessageSize, {
          optional: true,
          default: defaultMaxMessageSize,
          min: 1024,
        }),
      }),
      Submission: service('Message submission with STARTTLS for mail clients', 587, {
        NoRequireSTARTTLS: bool('Allow authentication and submission without TLS. Dangerous: passwords cross the network in the clear.'),
      }),
      Submissions: service('Message submission over implicit TLS for mail clients', 465),
      IMAP: service('IMAP with STARTTLS', 143, {
        NoRequireSTARTTLS: bool('Allow login without TLS. Dangerous: passwords cross the network in the clear.'),
      }),
      IMAPS: service('IMAP over implicit TLS', 993),
      AccountHTTP: webService('Account web pages (password, addresses, delivery rules, import and export of mail) over plain HTTP', 80, '/'),
      AccountHTTPS: webService('Account web pages over HTTPS', 443, '/'),
      AdminHTTP: webService('Admin web pages (domains, accounts, DNS records, queue) over plain HTTP; only for clients in AdminIPs', 80, '/admin/'),
      AdminHTTPS: webService('Admin web pages over HTTPS; only for clients in AdminIPs', 443, '/admin/'),
      WebmailHTTP: webService('Webmail over plain HTTP', 80, '/webmail/'),
      WebmailHTTPS: webService('Webmail over HTTPS', 443, '/webmail/'),
      WebAPIHTTP: webService('HTTP API for sending and receiving mail, over plain HTTP', 80, '/webapi/'),
      WebAPIHTTPS: webService('HTTP API over HTTPS', 443, '/webapi/'),
      MetricsHTTP: webService('Prometheus metrics over plain HTTP; typically on an internal listener only', 8010, '/metrics'),
      AutoconfigHTTPS: tlsWebService(
        'Mail client settings: Thunderbird autoconfig at autoconfig.<domain>/mail/config-v1.1.xml and Microsoft autodiscover at autodiscover.<domain>/autodiscover/autodiscover.xml. The certificate must cover those names',
      ),
      MTASTSHTTPS: tlsWebService('MTA-STS policies (RFC 8461) at mta-sts.<domain>/.well-known/mta-sts.txt. The certificate must cover those names'),
      WebserverHTTP: service(
        'Web server over plain HTTP for the WebHandlers and WebDomainRedirects of domains.conf: static files, redirects and reverse proxies, tried before the services on the same port. Requests matching a handler are redirected to HTTPS unless the handler says otherwise',
        80,
      ),
      WebserverHTTPS: service('Web server over HTTPS for the WebHandlers and WebDomainRedirects of domains.conf', 443),
      AdminIPs: list(
        'Client IP addresses or networks allowed to use the admin web pages of this listener. Default: loopback and private networks.',
        str('IP address or network.', '192.168.0.0/16', { check: checkCIDR }),
        { optional: true, default: defaultAdminIPs, examples: ['127.0.0.0/8', '::1/128', '192.168.0.0/16'] },
      ),
    }),
  ),
  Queue: struct(
    'Outbound delivery of submitted messages to other domains.',
    {
      MaxAttempts: int('Delivery attempts before a message fails with a DSN to the sender. Retries wait 7.5 minutes, doubling each time: 8 attempts take about 16 hours.', 8, {
        optional: true,
        default: 8,
        min: 1,
        max: 20,
      }),
      Concurrency: int('Deliveries (connections) at the same time.', 10, { optional: true, default: 10, min: 1, max: 1000 }),
      SMTPPort: int('Port of the MX hosts for direct delivery. Only other than 25 for testing.', 25, { optional: true, default: 25, min: 1, max: 65535 }),
      ConnectTimeoutSeconds: int('Seconds to wait for a TCP connection to an MX host or smarthost.', 30, { optional: true, default: 30, min: 1, max: 600 }),
      CAFiles: list('PEM files with CA certificates trusted besides the system roots, for MTA-STS, PKIX verification of MX hosts and smarthosts. Relative to the directory of this file.', str('File.', 'ca.pem'), {
        optional: true,
      }),
      MTASTSPort: int('Port to fetch MTA-STS policies from instead of 443. Only for testing.', 443, { optional: true, min: 1, max: 65535 }),
      RetiredDays: int('Days to keep delivered and failed messages in the retired list, for "postern queue retired".', 7, { optional: true, default: 7, min: 0, max: 365 }),
      NoTLSReports: bool('Do not send daily TLS reports (RFC 8460) to recipient domains that ask for them.'),
      Paused: bool('Keep submitted messages in the queue without attempting delivery, e.g. while setting up; the queue commands still work.'),
    },
    { optional: true, default: { MaxAttempts: 8, Concurrency: 10, SMTPPort: 25, ConnectTimeoutSeconds: 30, CAFiles: [], RetiredDays: 7, NoTLSReports: false, Paused: false } },
  ),
  Transports: map('Named ways to deliver outbound mail other than directly, used by Routes.', 'isp-relay', transportSpec, { optional: true }),
  Routes: list('Routes for all accounts, evaluated after those of the account and of the sender domain in domains.conf; the first that matches chooses the transport. Without a match, delivery is direct.', routeSpec, {
    optional: true,
  }),
  ACME: map(
    'Certificate authorities that issue certificates with ACME (RFC 8555), by name; listeners refer to them in TLS.ACME. The account key and certificates are kept in the data directory under acme/<name>.',
    'lets-encrypt',
    struct('ACME provider.', {
      DirectoryURL: str("URL of the ACME directory. Let's Encrypt's staging directory, https://acme-staging-v02.api.letsencrypt.org/directory, is for trying things out.", letsEncryptDirectory, {
        optional: true,
        default: letsEncryptDirectory,
        check: (v) => (/^https:\/\/[^\s/]+/.test(v) ? undefined : 'must be an https URL'),
      }),
      ContactEmail: str('Address the certificate authority may write to about the account and its certificates, e.g. before a certificate expires.', 'admin@example.com', {
        optional: true,
      }),
      RenewBeforeDays: int('Days before expiry a certificate is renewed.', 30, { optional: true, default: 30, min: 1, max: 89 }),
      IssuerDomainName: str('Domain name of the certificate authority in CAA records (RFC 8659), printed by "postern config dnsrecords".', 'letsencrypt.org', {
        optional: true,
        default: 'letsencrypt.org',
      }),
      ChallengeTypes: list(
        'Challenge types to prove control of a name, in order of preference; a failed one is followed by the next. tls-alpn-01 (RFC 8737) needs this server on port 443 of the name, http-01 (RFC 8555 8.3) on port 80.',
        str('Challenge type.', 'tls-alpn-01', { values: ['tls-alpn-01', 'http-01'] }),
        { optional: true, default: ['tls-alpn-01', 'http-01'], examples: ['tls-alpn-01', 'http-01'] },
      ),
      ExternalAccountBinding: struct(
        'External account binding (RFC 8555 7.3.4), for certificate authorities that require an existing account with them.',
        {
          KeyID: str('Key identifier given by the certificate authority.', 'kid-1'),
          HMACKey: str('MAC key given by the certificate authority, base64url.', 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W'),
        },
        { optional: true },
      ),
      CAFile: str(
        'PEM file with CA certificates trusted for the HTTPS connections to the directory, besides the system roots, e.g. for a test certificate authority. Relative to the directory of this file.',
        'pebble-ca.pem',
        { optional: true },
      ),
    }),
    { optional: true },
  ),
  NoOutgoingDMARCReports: bool('Do not send DMARC aggregate reports (RFC 7489 7.2) to the domains of incoming mail that ask for them.'),
  OutgoingDMARCReportIntervalHours: int(
    'Hours covered by each outgoing DMARC aggregate report, 1 to 24, rounded down to a divisor of 24 so that reports are aligned to UTC days.',
    24,
    { optional: true, default: 24, min: 1, max: 24 },
  ),
  CheckUpdates: bool(
    'Check once a day whether a newer version of Postern is published: a DNS TXT lookup of UpdatesName. Off by default; nothing is looked up unless this is true.',
  ),
  UpdatesName: str('DNS name with a TXT record "v=UPDATES0; l=<version>" announcing the latest version; needed for CheckUpdates.', '_updates.example.org', { optional: true }),
  DNSBL: struct(
    'DNS blocklists (RFC 5782) for incoming mail. They are asked about a connecting IP only when its sender has no reputation with the account and the content looks fine, and only while the zone is healthy (127.0.0.2 listed, 127.0.0.1 not). Check with "postern dnsbl check" and "postern dnsbl checkhealth".',
    { Zones: list('Zones, e.g. sbl.spamhaus.org; mind their terms of use.', str('Zone.', 'sbl.spamhaus.org')) },
    { optional: true },
  ),
});

export const staticHeader = `Static configuration of Postern: postern.conf.
Changes take effect after a restart. The domains, accounts and addresses are in
domains.conf, next to this file, which is reloaded automatically when it changes.
Check both files with "postern config test".`;
