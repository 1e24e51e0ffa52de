// The static configuration file, postern.conf: read at start, changed only with a restart.
import { isIP } from 'node:net';
import { bool, int, list, map, str, struct, type Spec, type StructSpec } from './schema.js';
import { levels } from '../log/log.js';

export interface KeyCert {
  CertFile: string;
  KeyFile: string;
}

export interface ServiceConfig {
  Enabled: boolean;
  Port: number;
}

export interface Listener {
  IPs: string[];
  Hostname?: string;
  TLS?: { KeyCerts: KeyCert[]; MinVersion: string };
  SMTP: ServiceConfig & { NoSTARTTLS: boolean; RequireSTARTTLS: boolean; MaxMessageSize: number };
  Submission: ServiceConfig & { NoRequireSTARTTLS: boolean };
  Submissions: ServiceConfig;
  IMAP: ServiceConfig & { NoRequireSTARTTLS: boolean };
  IMAPS: ServiceConfig;
}

export interface StaticConfig {
  Hostname: string;
  DataDir: string;
  LogLevel: string;
  PackageLogLevels: Record<string, string>;
  User?: string;
  Resolver?: string;
  Pedantic: boolean;
  AdminPasswordFile: string;
  Postmaster: { Account: string; Mailbox: string };
  Listeners: Record<string, Listener>;
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
            'Certificate and key pairs, in PEM files, relative to the directory of this file. The certificate is chosen by the TLS SNI name; the first pair is the default.',
            struct('Key and certificate.', {
              CertFile: str('Certificate chain in PEM.', 'mail.example.com.crt'),
              KeyFile: str('Private key in PEM.', 'mail.example.com.key'),
            }),
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
    }),
  ),
});

export const staticHeader = `Static configuration of Postern: postern.conf.
Changes take effect after a restart. The domains, accounts and addresses are in
domains.conf, next to this file, which is reloaded automatically when it changes.
Check both files with "postern config test".`;
