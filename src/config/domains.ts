// The dynamic configuration file, domains.conf: domains, accounts and their addresses.
// It is reloaded when it changes; see load.ts.
import { domainToASCII, domainToUnicode } from 'node:url';
import { bool, int, list, map, str, struct, type StructSpec } from './schema.js';

export interface Ruleset {
  SMTPMailFromRegexp?: string;
  MsgFromRegexp?: string;
  VerifiedDomain?: string;
  HeadersRegexp: Record<string, string>;
  Mailbox: string;
}

export interface Destination {
  Mailbox: string;
  FullName?: string;
  Rulesets: Ruleset[];
}

export interface DKIMSelector {
  PrivateKeyFile: string;
  HeaderCanon: 'relaxed' | 'simple';
  BodyCanon: 'relaxed' | 'simple';
  Headers: string[];
  NoOversign: boolean;
  ExpirationSeconds: number;
}

export interface Route {
  FromDomain: string[];
  ToDomain: string[];
  MinimumAttempts: number;
  Transport: string;
}

export interface DomainConfig {
  Description?: string;
  LocalpartCatchallSeparator?: string;
  LocalpartCaseSensitive: boolean;
  DKIM: { Selectors: Record<string, DKIMSelector>; Sign: string[] };
  AcceptDMARCRejects: boolean;
  Routes: Route[];
  MTASTS?: MTASTSConfig;
  ClientSettingsDomain?: string;
  DMARC?: ReportAddress;
  TLSRPT?: ReportAddress;
}

/** An address of a domain where reports are received, with the account and mailbox they go to. */
export interface ReportAddress {
  Localpart: string;
  Account: string;
  Mailbox: string;
}

/** The MTA-STS policy published for a domain (RFC 8461). */
export interface MTASTSConfig {
  PolicyID: string;
  Mode: 'enforce' | 'testing' | 'none';
  MaxAge: number;
  MX: string[];
}

export interface AccountConfig {
  Domain: string;
  Description?: string;
  FullName?: string;
  Destinations: Record<string, Destination>;
  QuotaMessageSize: number;
  TLSPublicKeys: TLSPublicKey[];
  Routes: Route[];
  JunkFilter?: JunkFilterConfig;
  OutgoingWebhook?: OutgoingWebhook;
  IncomingWebhook?: IncomingWebhook;
  FromIDLoginAddresses: string[];
  KeepRetiredWebhookPeriod?: string;
}

/** Where events about the account's outgoing messages are posted; see src/webhook. */
export interface OutgoingWebhook {
  URL: string;
  Authorization?: string;
  /** Events to post; all when empty. */
  Events: string[];
}

/** Where the account's incoming messages are posted. */
export interface IncomingWebhook {
  URL: string;
  Authorization?: string;
}

/** A handler of the configurable web server; exactly one of the Web* kinds is set. */
export interface WebHandler {
  LogName?: string;
  Domain: string;
  PathRegexp: string;
  DontRedirectPlainHTTP: boolean;
  Compress: boolean;
  WebStatic?: { StripPrefix?: string; Root: string; ListFiles: boolean; ContinueNotFound: boolean; ResponseHeaders: Record<string, string> };
  WebRedirect?: { BaseURL?: string; OrigPathRegexp?: string; ReplacePath?: string; StatusCode: number };
  WebForward?: { StripPath: boolean; URL: string; ResponseHeaders: Record<string, string> };
  WebInternal?: { BasePath: string; Service: 'admin' | 'account' | 'webmail' | 'webapi' };
}

/** Junk filtering of incoming mail for an account; see src/junk. */
export interface JunkFilterConfig {
  Threshold?: string;
  RejectThreshold?: string;
  MinHam?: number;
  FirstTimeSenderDelaySeconds?: number;
  NotJunkMailboxes?: string[];
  KeptDays?: number;
  RejectsMailbox?: string;
  KeepRejectsDays?: number;
  MaxRejects?: number;
  IntroboxMailbox?: string;
  SubjectPassHours?: number;
}

/** A TLS client certificate key that logs in with SASL EXTERNAL (RFC 4422 appendix A). */
export interface TLSPublicKey {
  Name?: string;
  /** SHA-256 of the certificate's SubjectPublicKeyInfo, base64url without padding. */
  Fingerprint: string;
  /** Address the key logs in as. */
  LoginAddress: string;
}

export interface DomainsConfig {
  Domains: Record<string, DomainConfig>;
  Accounts: Record<string, AccountConfig>;
  WebDomainRedirects: Record<string, string>;
  WebHandlers: WebHandler[];
}

/** Account names become directory names: keep them plain. */
export function checkAccountName(name: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name) || name.includes('..')) {
    return 'account name must be 1-64 characters of letters, digits, "_", "-" and "." (not starting with "." or containing "..")';
  }
  return undefined;
}

/** Normalizes a domain to its lower-case Unicode form (IDNA, RFC 5891), or undefined if invalid. */
export function normalizeDomain(d: string): string | undefined {
  if (d === '' || d.length > 253 || d.endsWith('.')) return undefined;
  const ascii = domainToASCII(d.toLowerCase());
  if (ascii === '' || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(ascii) || ascii.split('.').some((l) => l.length > 63 || l.startsWith('-') || l.endsWith('-'))) {
    return undefined;
  }
  return domainToUnicode(ascii);
}

export function checkDomain(d: string): string | undefined {
  const n = normalizeDomain(d);
  if (n === undefined) return 'invalid domain name';
  if (n !== d) return `domain must be written in lower-case Unicode form: ${n}`;
  return undefined;
}

function checkRegexp(v: string): string | undefined {
  try {
    new RegExp(v, 'iu');
    return undefined;
  } catch (e) {
    return `invalid regular expression: ${(e as Error).message}`;
  }
}

/** Milliseconds of a duration such as "90s", "30m", "72h" or "7d", or undefined. */
export function durationMs(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(s);
  return m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3600_000, d: 86400_000 }[m[2] as 's' | 'm' | 'h' | 'd'] : undefined;
}

const checkHTTPURL = (v: string) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname ? undefined : 'must be an http or https URL';
  } catch {
    return 'must be an http or https URL';
  }
};

/** Header values must not break the response they are added to. */
const checkHeaderValue = (v: string) => (/[\r\n\0]/.test(v) ? 'must not contain line breaks' : undefined);
const checkHeaderName = (k: string) => (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) ? undefined : 'invalid header field name (RFC 9110 5.1)');

export const outgoingEvents = ['delivered', 'suppressed', 'delayed', 'failed', 'relayed', 'expanded', 'canceled', 'unrecognized'] as const;

/** A route chooses a transport for outbound messages, per delivery attempt. */
export const routeSpec = struct('Route: when all given conditions match, the message is delivered with the transport.', {
  FromDomain: list('Sender (MAIL FROM) domains, any matching; empty for all. A leading "." matches subdomains.', str('Domain.', 'example.com'), { optional: true }),
  ToDomain: list('Recipient domains, any matching; empty for all. A leading "." matches subdomains.', str('Domain.', 'example.net'), { optional: true }),
  MinimumAttempts: int('Match only from this many earlier failed attempts on, e.g. to fall back to a smarthost.', 0, { optional: true, default: 0, min: 0 }),
  Transport: str('Name of a transport in postern.conf Transports.', 'isp-relay'),
});

const ruleset = struct('Rule: a message matching all given conditions is delivered to the rule\'s mailbox.', {
  SMTPMailFromRegexp: str('Regular expression (case-insensitive) matched against the SMTP MAIL FROM address.', '^bank@', { optional: true, check: checkRegexp }),
  MsgFromRegexp: str('Regular expression (case-insensitive) matched against the address in the message From header.', '@example\\.org$', {
    optional: true,
    check: checkRegexp,
  }),
  VerifiedDomain: str('Domain that must have been verified for the message: SPF pass for the MAIL FROM domain or a passing DKIM signature.', 'example.org', {
    optional: true,
  }),
  HeadersRegexp: map(
    'Header fields that must match: field name (case-insensitive) to regular expression (case-insensitive) on the unfolded value.',
    'list-id',
    str('Regular expression.', 'dev\\.lists\\.example\\.org', { check: checkRegexp }),
    { optional: true },
  ),
  Mailbox: str('Mailbox to deliver to when the rule matches.', 'Lists/dev'),
});

const destination = struct('Destination for an address.', {
  Mailbox: str('Mailbox to deliver to.', 'Inbox', { optional: true, default: 'Inbox' }),
  FullName: str('Name used in the From header when sending from this address with the webmail.', 'Jane Doe', { optional: true }),
  Rulesets: list('Rules evaluated in order; the first that matches chooses the mailbox, else Mailbox is used.', ruleset, { optional: true }),
});

const canon = (what: string) =>
  str(`Canonicalization of the ${what} (RFC 6376 3.4).`, 'relaxed', { optional: true, default: 'relaxed', values: ['relaxed', 'simple'] });

const dkim = struct(
  'DKIM signing of messages submitted with a From address in this domain.',
  {
    Selectors: map(
      'Selectors with their keys. Make keys with "postern dkim genrsa" or "postern dkim gened25519", and publish "postern dkim txt" at <selector>._domainkey.<domain>.',
      '2026a',
      struct('Selector.', {
        PrivateKeyFile: str('PKCS#8 PEM private key (RSA or Ed25519), relative to the directory of this file.', 'dkim/2026a.example.com.rsa2048.pem'),
        HeaderCanon: canon('header'),
        BodyCanon: canon('body'),
        Headers: list('Header fields to sign; default: From, To, Cc, Bcc, Reply-To, References, In-Reply-To, Subject, Date, Message-ID, Content-Type.', str('Field name.', 'From'), {
          optional: true,
          examples: ['From', 'To', 'Subject', 'Date', 'Message-ID'],
        }),
        NoOversign: bool('Do not sign each header field one more time than it occurs (oversigning prevents adding fields).'),
        ExpirationSeconds: int('Signature validity in seconds (x=); 0 for none.', 259200, { optional: true, default: 259200, min: 0 }),
      }),
    ),
    Sign: list('Selectors to sign with; each adds a signature.', str('Selector name.', '2026a')),
  },
  { optional: true, default: { Selectors: {}, Sign: [] } },
);

const probability = (doc: string, example: string) =>
  str(doc, example, { optional: true, check: (v) => (/^(0(\.\d+)?|1(\.0+)?)$/.test(v) ? undefined : 'must be a number from 0 to 1, e.g. 0.95') });

const junkFilterSpec = struct(
  'Junk filtering of incoming mail: sender reputation from earlier messages, a Bayesian filter that learns from the $Junk and $NotJunk flags and from moves into and out of the Junk mailbox, and DNS blocklists (postern.conf DNSBL).',
  {
    Threshold: probability('Spam probability above which the Bayesian filter delivers a message from a sender without reputation to Junk. Default 0.95.', '0.95'),
    RejectThreshold: probability(
      'Spam probability above which such a message is refused (451, so a legitimate sender hears of it), once the filter has learned from MinHam messages. Default 0.99; 1 never refuses on content.',
      '0.99',
    ),
    MinHam: int('Non-junk messages the filter must have learned from before its verdict refuses mail or slows senders. Default 50.', 50, { optional: true, min: 0 }),
    FirstTimeSenderDelaySeconds: int('Seconds to wait before answering a sender without reputation, once the filter has learned from MinHam messages. Default 15; 0 for none.', 15, {
      optional: true,
      min: 0,
      max: 300,
    }),
    NotJunkMailboxes: list('Mailboxes whose messages are not junk: the filter learns them as such. Default Archive and Sent.', str('Mailbox.', 'Archive'), {
      optional: true,
      examples: ['Archive', 'Sent'],
    }),
    KeptDays: int('Messages kept this many days in Inbox count as not junk, and those kept in Junk as junk. Default 7; 0 never.', 7, { optional: true, min: 0 }),
    RejectsMailbox: str('Mailbox keeping copies of refused messages, so a legitimate one can be found. Default Rejects; "-" for none.', 'Rejects', { optional: true }),
    KeepRejectsDays: int('Days to keep refused messages in the Rejects mailbox. Default 14.', 14, { optional: true, min: 1 }),
    MaxRejects: int('Most messages kept in the Rejects mailbox; the oldest go first. Default 1000.', 1000, { optional: true, min: 1 }),
    IntroboxMailbox: str('Mailbox for accepted mail from first-time senders that would go to Inbox, e.g. Introbox. Default none.', 'Introbox', { optional: true }),
    SubjectPassHours: int(
      'Hours a subject pass token is valid: a sender without reputation whose message is refused as mildly spammy is told a token; a retry with it in the Subject is accepted. Default 12; 0 off.',
      12,
      { optional: true, min: 0 },
    ),
  },
  { optional: true },
);

const reportAddress = (doc: string, localpart: string, mailbox: string) =>
  struct(
    `Address for ${doc}`,
    {
      Localpart: str('Localpart of the address in this domain; it must not be an address of an account too.', localpart),
      Account: str('Account the reports are delivered to.', 'jane'),
      Mailbox: str('Mailbox in that account.', mailbox, { optional: true, default: mailbox }),
    },
    { optional: true },
  );

export const domainsSpec: StructSpec = struct('Domains configuration.', {
  Domains: map(
    'Domains Postern accepts mail for. Names in lower-case Unicode form (IDNA U-labels).',
    'example.com',
    struct('Domain.', {
      Description: str('Free-form description.', 'Personal domain', { optional: true }),
      LocalpartCatchallSeparator: str(
        'Separator in localparts for subaddressing: with "+", mail for "user+anything@" goes to "user@". Empty: none.',
        '+',
        { optional: true, check: (v) => (v.length === 1 && v !== '@' && v !== '"' ? undefined : 'must be a single character, not @ or "') },
      ),
      LocalpartCaseSensitive: bool('Treat localparts case-sensitively. By default "User@" and "user@" are the same address.'),
      DKIM: dkim,
      AcceptDMARCRejects: bool(
        'Accept incoming messages that fail DMARC while the sender domain asks to reject them, and deliver them to the Junk mailbox instead of refusing them.',
      ),
      Routes: list('Routes for messages with a sender address in this domain, evaluated after those of the account and before the global ones.', routeSpec, { optional: true }),
      ClientSettingsDomain: str(
        'Host name mail clients connect to for IMAP and submission, e.g. "mail.example.com", pointing to this server. It gets an ACME certificate, and the SRV records and client settings name it. Default: the Hostname of postern.conf.',
        'mail.example.com',
        { optional: true, check: checkDomain },
      ),
      DMARC: reportAddress(
        'DMARC aggregate reports (RFC 7489 7.2) about this domain: publish the address as rua in the _dmarc TXT record. Reports that arrive there, from a sender passing DMARC, are parsed and kept for "postern dmarc reports" and the admin pages, besides being delivered.',
        'dmarcreports',
        'DMARC',
      ),
      TLSRPT: reportAddress(
        'TLS reports (RFC 8460) about this domain: publish the address as rua in the _smtp._tls TXT record. Reports that arrive there with a valid DKIM signature of the reporting domain are parsed and kept for "postern tlsrpt reports" and the admin pages, besides being delivered.',
        'tlsreports',
        'TLSRPT',
      ),
      MTASTS: struct(
        'MTA-STS policy (RFC 8461): tells other servers to deliver only over TLS with a valid certificate. Served at https://mta-sts.<domain>/.well-known/mta-sts.txt by listeners with MTASTSHTTPS; publish its id in the TXT record _mta-sts.<domain>.',
        {
          PolicyID: str('Id of the policy, also in the TXT record; change it whenever the policy changes. 1 to 32 letters and digits.', '20260101T000000', {
            check: (v) => (/^[A-Za-z0-9]{1,32}$/.test(v) ? undefined : 'must be 1 to 32 letters and digits'),
          }),
          Mode: str('enforce: deliver only with valid TLS; testing: deliver anyway and report failures; none: withdraw the policy.', 'enforce', {
            optional: true,
            default: 'enforce',
            values: ['enforce', 'testing', 'none'],
          }),
          MaxAge: int('Seconds senders may cache the policy (RFC 8461 3.2).', 86400, { optional: true, default: 86400, min: 1, max: 31557600 }),
          MX: list('MX host names the policy allows, e.g. "mail.example.com" or "*.example.com". Default: the Hostname of postern.conf.', str('Host name.', 'mail.example.com'), {
            optional: true,
          }),
        },
        { optional: true },
      ),
    }),
    { keyCheck: checkDomain },
  ),
  Accounts: map(
    'Accounts: each has its own mailboxes and password, and receives mail for its addresses.',
    'jane',
    struct('Account.', {
      Domain: str('Default domain of the account: destinations given as bare localpart are in this domain.', 'example.com'),
      Description: str('Free-form description.', 'Jane', { optional: true }),
      FullName: str('Full name, for the From header of messages sent with the webmail.', 'Jane Doe', { optional: true }),
      Destinations: map(
        'Addresses delivered to this account: "localpart" (in the account\'s Domain), "localpart@domain", or "@domain" for a catch-all of that domain.',
        'jane@example.com',
        destination,
      ),
      QuotaMessageSize: int('Maximum total size in bytes of all messages in the account; 0 for no limit. Enforced for IMAP APPEND and incoming mail, reported with the IMAP QUOTA extension.', 0, {
        optional: true,
        default: 0,
        min: 0,
      }),
      TLSPublicKeys: list(
        'TLS client certificates that log in to IMAP and SMTP submission with SASL EXTERNAL instead of a password. Add them with "postern config tlspubkey add".',
        struct('Client certificate key.', {
          Name: str('Description, e.g. the device.', 'laptop', { optional: true }),
          Fingerprint: str('SHA-256 of the certificate\'s public key (SubjectPublicKeyInfo), base64url.', 'q5o2s7Dk3u8N0zJxUu3e2J2FxC9wK0uF7sQnI3k1nQU', {
            check: (v) => (/^[A-Za-z0-9_-]{43}$/.test(v) ? undefined : 'must be 43 base64url characters (a SHA-256 hash)'),
          }),
          LoginAddress: str('Address of this account the key logs in as.', 'jane@example.com'),
        }),
        { optional: true },
      ),
      Routes: list('Routes for messages submitted by this account, evaluated first.', routeSpec, { optional: true }),
      JunkFilter: junkFilterSpec,
      OutgoingWebhook: struct(
        'Webhook for events about outgoing messages of this account: delivery, failure (also from incoming DSNs), delays and more, posted as JSON with the queue message id, Message-ID, SMTP codes and the Extra data of the submission. Failed posts are retried for about a day. See docs/webapi.md.',
        {
          URL: str('URL the events are posted to.', 'https://app.example.com/postern/outgoing', { check: checkHTTPURL }),
          Authorization: str('Value of the Authorization header of the posts, e.g. "Basic <base64>" with credentials of the application.', 'Basic dXNlcjpwYXNzd29yZA==', {
            optional: true,
            check: checkHeaderValue,
          }),
          Events: list(`Events to post, all when empty: ${outgoingEvents.join(', ')}.`, str('Event.', 'failed', { values: outgoingEvents }), {
            optional: true,
            examples: ['delivered', 'failed'],
          }),
        },
        { optional: true },
      ),
      IncomingWebhook: struct(
        'Webhook for messages delivered to this account: each is posted as JSON with its SMTP envelope, parsed header, MIME structure and first text and HTML part. Fetch the rest with the webapi. DSNs about messages sent with FromIDLoginAddresses are not posted here but become outgoing events.',
        {
          URL: str('URL the messages are posted to.', 'https://app.example.com/postern/incoming', { check: checkHTTPURL }),
          Authorization: str('Value of the Authorization header of the posts.', 'Basic dXNlcjpwYXNzd29yZA==', { optional: true, check: checkHeaderValue }),
        },
        { optional: true },
      ),
      FromIDLoginAddresses: list(
        'Login addresses of this account whose messages sent with the webapi or SMTP submission (authenticated with that address) get a unique SMTP MAIL FROM address per recipient: the localpart, the catch-all separator of the domain and a random id, e.g. jane+k3x9q2...@example.com. A DSN sent back to it is matched with the message and recipient: it becomes a webhook event and, for a permanent failure, puts the recipient on the suppression list. The domain needs a LocalpartCatchallSeparator.',
        str('Address.', 'jane@example.com'),
        { optional: true },
      ),
      KeepRetiredWebhookPeriod: str('How long delivered and failed webhook posts are kept for "postern queue webhook retired list", e.g. 72h or 7d. Default: Queue.RetiredDays of postern.conf.', '7d', {
        optional: true,
        check: (v) => (durationMs(v) === undefined ? 'must be a duration like 30m, 72h or 7d' : undefined),
      }),
    }),
    { keyCheck: checkAccountName },
  ),
  WebDomainRedirects: map(
    'Whole domains redirected to another domain by the web server (WebserverHTTP/WebserverHTTPS of a listener in postern.conf), keeping path and query, with a permanent redirect to HTTPS.',
    'example.com',
    str('Domain to redirect to.', 'www.example.com', { check: checkDomain }),
    { optional: true, keyCheck: checkDomain },
  ),
  WebHandlers: list(
    'Handlers of the web server (WebserverHTTP/WebserverHTTPS of a listener in postern.conf), tried in order on the domain and path of each request, after ACME, MTA-STS and autoconfig and before the services of the port. Changes apply at once.',
    struct(
      'Handler: exactly one of WebStatic, WebRedirect, WebForward and WebInternal.',
      {
        LogName: str('Name in log lines; default the index in this list.', 'website', { optional: true }),
        Domain: str('Host name the request must be for.', 'www.example.com', { check: checkDomain }),
        PathRegexp: str('Regular expression the request path must match; it must start with "^", e.g. "^/" for all paths.', '^/', {
          check: (v) => (v.startsWith('^') ? checkRegexp(v) : 'must start with ^'),
        }),
        DontRedirectPlainHTTP: bool('Serve plain HTTP requests instead of redirecting them to HTTPS.'),
        Compress: bool('Compress responses with gzip when the client accepts it and the content type is compressible (text, JSON, XML, JavaScript, SVG).'),
        WebStatic: struct(
          'Serve static files.',
          {
            StripPrefix: str('Path prefix removed from the request path before it is looked up in Root, e.g. "/files/".', '/files/', { optional: true }),
            Root: str('Directory with the files, relative to the directory of this file.', 'web/www.example.com'),
            ListFiles: bool('List the files of a directory without index.html.'),
            ContinueNotFound: bool('When the file does not exist, try the next handler instead of answering 404.'),
            ResponseHeaders: map('Header fields added to responses.', 'Cache-Control', str('Value.', 'max-age=3600', { check: checkHeaderValue }), {
              optional: true,
              keyCheck: checkHeaderName,
            }),
          },
          { optional: true },
        ),
        WebRedirect: struct(
          'Redirect the request.',
          {
            BaseURL: str('URL with scheme and host (no path) to redirect to; the request path (or its replacement) and query are kept.', 'https://www.example.org', {
              optional: true,
              check: (v) => checkHTTPURL(v) ?? (/^[a-z]+:\/\/[^/?#]+\/?$/i.test(v) ? undefined : 'must not have a path, query or fragment'),
            }),
            OrigPathRegexp: str('Regular expression on the request path; with ReplacePath the path is rewritten, and requests not matching get 404.', '^/old/(.*)$', {
              optional: true,
              check: (v) => (v.startsWith('^') ? checkRegexp(v) : 'must start with ^'),
            }),
            ReplacePath: str('Replacement path, with $1 for the first group of OrigPathRegexp and so on.', '/new/$1', { optional: true }),
            StatusCode: int('Status code: 301, 302, 303, 307 or 308.', 308, { optional: true, default: 308, min: 301, max: 308 }),
          },
          { optional: true },
        ),
        WebForward: struct(
          'Reverse proxy: forward the request to a web server, WebSocket connections included, with X-Forwarded-For, X-Forwarded-Host and X-Forwarded-Proto.',
          {
            StripPath: bool('Remove the part of the path matched by PathRegexp before forwarding.'),
            URL: str('URL of the backend; the request path is appended to its path.', 'http://127.0.0.1:8080/', { check: checkHTTPURL }),
            ResponseHeaders: map('Header fields added to responses.', 'X-Frame-Options', str('Value.', 'DENY', { check: checkHeaderValue }), {
              optional: true,
              keyCheck: checkHeaderName,
            }),
          },
          { optional: true },
        ),
        WebInternal: struct(
          'Serve one of Postern\'s own applications at another path, e.g. the webmail at https://www.example.com/mail/.',
          {
            BasePath: str('Path the application is mounted at, starting and ending with "/"; PathRegexp should match it, e.g. "^/mail/".', '/mail/', {
              check: (v) => (/^\/([^/?#\s]+\/)*$/.test(v) ? undefined : 'must start and end with "/"'),
            }),
            Service: str('Application.', 'webmail', { values: ['admin', 'account', 'webmail', 'webapi'] }),
          },
          { optional: true },
        ),
      },
      { oneOf: ['WebStatic', 'WebRedirect', 'WebForward', 'WebInternal'] },
    ),
    { optional: true },
  ),
});

/** Checks across fields of the additions for webhooks, unique MAIL FROM addresses and the web server. */
export function checkWebConfig(config: DomainsConfig, index: AddressIndex, error: (path: string, message: string) => void): void {
  for (const [name, acc] of Object.entries(config.Accounts)) {
    acc.FromIDLoginAddresses.forEach((a, i) => {
      const p = `Accounts.${name}.FromIDLoginAddresses.${i}`;
      if (index.loginAccount(a) !== name) error(p, `${a} is not an address of account ${name}`);
      else if (!config.Domains[normalizeDomain(splitAddress(a)!.domain)!]?.LocalpartCatchallSeparator) error(p, 'the domain of the address needs a LocalpartCatchallSeparator');
    });
  }
  config.WebHandlers.forEach((h, i) => {
    const r = h.WebRedirect;
    if (r && !r.BaseURL && !(r.OrigPathRegexp && r.ReplacePath !== undefined)) error(`WebHandlers.${i}.WebRedirect`, 'needs BaseURL, or OrigPathRegexp with ReplacePath');
    if (r && (r.OrigPathRegexp === undefined) !== (r.ReplacePath === undefined)) error(`WebHandlers.${i}.WebRedirect`, 'OrigPathRegexp and ReplacePath go together');
    if (r && ![301, 302, 303, 307, 308].includes(r.StatusCode)) error(`WebHandlers.${i}.WebRedirect.StatusCode`, 'must be 301, 302, 303, 307 or 308');
  });
}

export const domainsHeader = `Dynamic configuration of Postern: domains.conf.
Postern reloads this file when it changes; an invalid version is refused and the
previous one kept. Edit it by hand or with "postern config domain|account|address".`;

export interface Resolved {
  account: string;
  destination: Destination;
  /** Key of the matching destination, e.g. "jane@example.com" or "@example.com". */
  key: string;
}

/** Splits an address at its last "@" (localparts may contain quoted "@"). */
export function splitAddress(addr: string): { localpart: string; domain: string } | undefined {
  const i = addr.lastIndexOf('@');
  if (i < 0) return undefined;
  return { localpart: addr.slice(0, i), domain: addr.slice(i + 1) };
}

/** Address lookup tables derived from a validated DomainsConfig. */
export class AddressIndex {
  private readonly addrs = new Map<string, Resolved>();

  constructor(
    readonly config: DomainsConfig,
    private readonly postmaster: { Account: string; Mailbox: string },
  ) {
    for (const [account, acc] of Object.entries(config.Accounts)) {
      for (const [key, destination] of Object.entries(acc.Destinations)) {
        const canon = this.canonicalKey(key, acc.Domain);
        if (canon) this.addrs.set(canon, { account, destination, key });
      }
    }
    for (const [domain, d] of Object.entries(config.Domains)) {
      for (const r of [d.DMARC, d.TLSRPT]) {
        if (!r || !config.Accounts[r.Account]) continue;
        const key = `${r.Localpart}@${domain}`;
        const canon = this.canonicalKey(key, domain);
        if (canon && !this.addrs.has(canon)) this.addrs.set(canon, { account: r.Account, destination: { Mailbox: r.Mailbox, Rulesets: [] }, key });
      }
    }
  }

  /** Canonical form of a destination key, or undefined if its domain is not configured. */
  canonicalKey(key: string, accountDomain: string): string | undefined {
    const at = splitAddress(key);
    const localpart = at ? at.localpart : key;
    const domain = normalizeDomain(at ? at.domain : accountDomain);
    if (!domain || !this.config.Domains[domain]) return undefined;
    return `${this.normalizeLocalpart(localpart, domain, false)}@${domain}`;
  }

  normalizeLocalpart(localpart: string, domain: string, stripSeparator: boolean): string {
    const d = this.config.Domains[domain];
    let lp = localpart.normalize('NFC');
    if (stripSeparator && d?.LocalpartCatchallSeparator) {
      const i = lp.indexOf(d.LocalpartCatchallSeparator);
      if (i > 0) lp = lp.slice(0, i);
    }
    return d?.LocalpartCaseSensitive ? lp : lp.toLowerCase();
  }

  isLocalDomain(domain: string): boolean {
    const d = normalizeDomain(domain);
    return d !== undefined && this.config.Domains[d] !== undefined;
  }

  /** Finds the account for a recipient address: exact address, subaddress, postmaster, catch-all. */
  lookup(address: string): Resolved | undefined {
    const at = splitAddress(address);
    if (!at) {
      // RFC 5321 4.5.1: "postmaster" without domain must be accepted.
      if (address.toLowerCase() === 'postmaster') return this.postmasterDest('postmaster');
      return undefined;
    }
    const domain = normalizeDomain(at.domain);
    if (!domain || !this.config.Domains[domain]) return undefined;
    const exact = this.addrs.get(`${this.normalizeLocalpart(at.localpart, domain, false)}@${domain}`);
    if (exact) return exact;
    const stripped = this.addrs.get(`${this.normalizeLocalpart(at.localpart, domain, true)}@${domain}`);
    if (stripped) return stripped;
    if (at.localpart.toLowerCase() === 'postmaster') return this.postmasterDest(`postmaster@${domain}`);
    return this.addrs.get(`@${domain}`);
  }

  /** Account for a login name: exactly a configured address, not a catch-all or subaddress. */
  loginAccount(address: string): string | undefined {
    const at = splitAddress(address);
    const domain = at && normalizeDomain(at.domain);
    if (!at || at.localpart === '' || !domain || !this.config.Domains[domain]) return undefined;
    return this.addrs.get(`${this.normalizeLocalpart(at.localpart, domain, false)}@${domain}`)?.account;
  }

  private postmasterDest(key: string): Resolved | undefined {
    if (!this.config.Accounts[this.postmaster.Account]) return undefined;
    return { account: this.postmaster.Account, destination: { Mailbox: this.postmaster.Mailbox, Rulesets: [] }, key };
  }

  /** Addresses of an account in canonical form (catch-alls as "@domain"). */
  addressesOf(account: string): string[] {
    return [...this.addrs.entries()].filter(([, r]) => r.account === account).map(([a]) => a);
  }
}
