// The DNS records a domain needs for mail with Postern, and a check of what is published.
//
//   dnsRecords(config, domain, opts?) -> DNSRecord[]
//       Records to create, each with owner name, type, value in zone-file syntax, a purpose key
//       (e.g. "mx", "spf", "dkim:2026a", "srv:_imaps._tcp") and an explanation.
//   zoneText(records) -> string
//       The records as zone-file lines, each group preceded by its explanation as comments.
//   mtastsPolicy(config, domain) -> string | undefined
//       The policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt.
//   dnsCheck(config, resolver, domain, opts?) -> Promise<DNSCheck>
//       Looks the records up with the resolver and compares: errors for what breaks delivery or
//       authentication, warnings for what is missing but optional or differs from the advice.
//
// Owner names and host names in values are absolute ("example.com."), so the text can be pasted
// into any zone. Only configuration is read; nothing is changed.
import fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { Config } from '../config/load.js';
import type { Listener } from '../config/static.js';
import { txtRecord, zoneTXT } from '../dkim/keys.js';
import { parseRecord as parseDMARC, isDMARCRecord } from '../dmarc/record.js';
import { associationData } from '../dane/tlsa.js';
import { DNSError, type Resolver } from '../dns/types.js';
import { clientSettings, publicListeners } from '../clientconfig/clientconfig.js';
import { domainToASCII } from 'node:url';

export type RecordType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME' | 'SRV' | 'CAA' | 'TLSA';

export interface DNSRecord {
  /** Owner name, absolute with trailing dot, in A-label (ASCII) form. */
  name: string;
  type: RecordType;
  /** Record data in zone-file syntax, e.g. "10 mail.example.com." or "\"v=spf1 mx -all\"". */
  value: string;
  /** What the record is for, stable for programs: "mx", "spf", "dkim:<selector>", ... */
  purpose: string;
  /** Explanation for people, shown as comment. */
  comment: string;
}

export interface RecordOptions {
  /** ACME certificates: the CA's domain for CAA issue (e.g. "letsencrypt.org") and the account URI (RFC 8657). */
  acme?: { caDomain: string; accountURI?: string };
}

const fqdn = (n: string) => `${domainToASCII(n) || n}.`;
const quoted = (s: string) => zoneTXT(s);

/** Public IPs of the listeners, for A/AAAA and the SPF check. */
function publicIPs(config: Config): string[] {
  const priv = new BlockList();
  for (const n of ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16']) priv.addSubnet(n.split('/')[0]!, Number(n.split('/')[1]), 'ipv4');
  for (const n of ['::1/128', 'fc00::/7', 'fe80::/10', '::/128']) priv.addSubnet(n.split('/')[0]!, Number(n.split('/')[1]), 'ipv6');
  const ips = new Set<string>();
  for (const l of Object.values(config.static_.Listeners)) {
    for (const ip of l.IPs) {
      const v = isIP(ip);
      if (ip === '0.0.0.0' || ip === '::' || !v) continue;
      if (!priv.check(ip, v === 4 ? 'ipv4' : 'ipv6')) ips.add(ip);
    }
  }
  return [...ips];
}

/** Reporting address in the domain: a configured one by its usual name, else postmaster (always accepted, RFC 5321 4.5.1). */
function reportAddress(config: Config, domain: string, localparts: string[]): string {
  for (const lp of localparts) {
    const a = `${lp}@${domain}`;
    if (config.addresses.lookup(a)?.key.startsWith(lp)) return a;
  }
  return `postmaster@${domain}`;
}

/** The SMTP listener whose certificate senders see, for TLSA. */
function smtpListener(config: Config): Listener | undefined {
  return publicListeners(config).find((l) => l.SMTP.Enabled && l.TLS?.KeyCerts.length);
}

/** The policy file of a domain's MTA-STS configuration (RFC 8461 3.2), lines ending in CRLF. */
export function mtastsPolicy(config: Config, domain: string): string | undefined {
  const m = config.domains.Domains[domain]?.MTASTS;
  if (!m) return undefined;
  const mx = m.MX.length ? m.MX : [config.static_.Hostname];
  return ['version: STSv1', `mode: ${m.Mode}`, ...mx.map((h) => `mx: ${h}`), `max_age: ${m.MaxAge}`, ''].join('\r\n');
}

export function dnsRecords(config: Config, domain: string, opts: RecordOptions = {}): DNSRecord[] {
  const d = config.domains.Domains[domain];
  if (!d) throw new Error(`domain ${domain} not configured`);
  const host = config.static_.Hostname;
  const dn = fqdn(domain);
  const hn = fqdn(host);
  const out: DNSRecord[] = [];
  const add = (name: string, type: RecordType, value: string, purpose: string, comment: string) => out.push({ name, type, value, purpose, comment });

  const ips = publicIPs(config);
  for (const ip of ips) {
    add(hn, isIP(ip) === 4 ? 'A' : 'AAAA', ip, 'host-ip', `Address of the mail server ${host}. Also ask your hosting provider for reverse DNS (PTR) of ${ip} pointing to ${host}: many receivers refuse mail without it.`);
  }
  add(dn, 'MX', `10 ${hn}`, 'mx', `Mail for ${domain} is delivered to ${host} (RFC 5321 5.1).`);
  add(dn, 'TXT', quoted('v=spf1 mx -all'), 'spf', `SPF (RFC 7208): only the MX hosts of ${domain} send its mail; others fail.`);
  add(hn, 'TXT', quoted('v=spf1 a -all'), 'spf-host', `SPF for the host name itself, checked for bounces (empty MAIL FROM) and the EHLO name (RFC 7208 2.3).`);
  for (const [sel, s] of Object.entries(d.DKIM.Selectors)) {
    let txt: string;
    try {
      txt = txtRecord(fs.readFileSync(config.resolve(s.PrivateKeyFile)));
    } catch (e) {
      throw new Error(`DKIM selector ${sel}: ${(e as Error).message}`);
    }
    add(`${sel}._domainkey.${dn}`, 'TXT', quoted(txt), `dkim:${sel}`, `DKIM public key of selector ${sel} (RFC 6376 3.6.2)${d.DKIM.Sign.includes(sel) ? ', used for signing' : ', not used for signing now'}.`);
  }
  const rua = reportAddress(config, domain, ['dmarc-reports', 'dmarcreports', 'dmarc']);
  add(
    `_dmarc.${dn}`,
    'TXT',
    quoted(`v=DMARC1; p=reject; rua=mailto:${rua}`),
    'dmarc',
    `DMARC (RFC 7489): receivers reject mail with a From of ${domain} that passes neither SPF nor DKIM aligned with it, and send daily aggregate reports to ${rua}.${d.DKIM.Sign.length ? '' : ' No DKIM selector signs yet: configure one before publishing p=reject.'}`,
  );
  const tlsrpt = reportAddress(config, domain, ['tls-reports', 'tlsreports', 'tlsrpt']);
  add(`_smtp._tls.${dn}`, 'TXT', quoted(`v=TLSRPTv1; rua=mailto:${tlsrpt}`), 'tlsrpt', `TLS reporting (RFC 8460): senders report TLS failures with ${domain}'s MX (MTA-STS) to ${tlsrpt}.`);
  add(`_smtp._tls.${hn}`, 'TXT', quoted(`v=TLSRPTv1; rua=mailto:${tlsrpt}`), 'tlsrpt-host', `TLS reporting for the host ${host}, for failures with DANE (RFC 8460 3).`);
  const m = d.MTASTS;
  if (m) {
    add(`_mta-sts.${dn}`, 'TXT', quoted(`v=STSv1; id=${m.PolicyID}`), 'mtasts', `MTA-STS (RFC 8461 3.1): a policy exists; its id changes with the policy. Mode ${m.Mode}.`);
  } else {
    add(
      `_mta-sts.${dn}`,
      'TXT',
      quoted(`v=STSv1; id=${new Date().toISOString().replace(/[-:]|\..*$/g, '')}`),
      'mtasts',
      `MTA-STS (RFC 8461): not configured for ${domain} yet. Add MTASTS with this PolicyID to the domain in domains.conf, then publish this record.`,
    );
  }
  add(`mta-sts.${dn}`, 'CNAME', hn, 'mtasts-host', `Host serving the MTA-STS policy over HTTPS: a listener needs MTASTSHTTPS and a certificate for mta-sts.${domain}.`);
  add(`autoconfig.${dn}`, 'CNAME', hn, 'autoconfig', `Thunderbird and others fetch client settings from https://autoconfig.${domain}/mail/config-v1.1.xml (AutoconfigHTTPS).`);
  add(`_autodiscover._tcp.${dn}`, 'SRV', `0 1 443 ${hn}`, 'autodiscover', 'Microsoft clients find the autodiscover service through this record.');

  // RFC 6186 and RFC 8314 5.1: client settings; a target of "." says the service is not offered.
  const cs = clientSettings(config);
  const srv = (name: string, port: number | undefined, h: string | undefined, what: string) =>
    add(`${name}.${dn}`, 'SRV', port === undefined ? '0 0 0 .' : `0 1 ${port} ${fqdn(h!)}`, `srv:${name}`, port === undefined ? `${what}: not offered.` : `${what} for mail clients (RFC 6186, RFC 8314).`);
  const find = (list: typeof cs.imap, sec: 'tls' | 'starttls') => list.find((e) => e.security === sec);
  const subs = find(cs.submission, 'tls');
  const sub = find(cs.submission, 'starttls');
  const imaps = find(cs.imap, 'tls');
  const imap = find(cs.imap, 'starttls');
  srv('_submissions._tcp', subs?.port, subs?.host, 'Submission over TLS');
  srv('_submission._tcp', sub?.port, sub?.host, 'Submission with STARTTLS');
  srv('_imaps._tcp', imaps?.port, imaps?.host, 'IMAP over TLS');
  srv('_imap._tcp', imap?.port, imap?.host, 'IMAP with STARTTLS');
  srv('_pop3s._tcp', undefined, undefined, 'POP3 over TLS');
  srv('_pop3._tcp', undefined, undefined, 'POP3');

  // RFC 8659: only the named CA may issue certificates for the domain and its subdomains (the
  // host name too when it is below the domain); RFC 8657 binds issuance to the ACME account.
  const ca = opts.acme?.caDomain ?? 'letsencrypt.org';
  const caValue = opts.acme?.accountURI ? `${ca}; accounturi=${opts.acme.accountURI}` : ca;
  add(dn, 'CAA', `0 issue ${JSON.stringify(caValue)}`, 'caa', `Only ${ca} may issue certificates for ${domain} (RFC 8659)${opts.acme ? '' : '; put the domain of your certificate authority here if it is another one'}.`);
  if (!host.endsWith(`.${domain}`) && host !== domain) add(hn, 'CAA', `0 issue ${JSON.stringify(caValue)}`, 'caa-host', `The same for the host name ${host}, which is outside ${domain}.`);

  const l = smtpListener(config);
  if (l) {
    try {
      const der = new X509Certificate(fs.readFileSync(config.resolve(l.TLS!.KeyCerts[0]!.CertFile))).raw;
      const data = associationData(der, 1, 1).toString('hex');
      add(
        `_${l.SMTP.Port === 25 ? 25 : l.SMTP.Port}._tcp.${hn}`,
        'TLSA',
        `3 1 1 ${data}`,
        'tlsa',
        'DANE (RFC 7672): the SHA-256 of the public key of the SMTP certificate. Only with DNSSEC; publish a new record before changing the key.',
      );
    } catch {
      // Without a readable certificate there is nothing to pin.
    }
  }
  return out;
}

/** Records as zone-file text with their explanations as comments. */
export function zoneText(records: DNSRecord[]): string {
  const lines: string[] = [];
  for (const r of records) {
    lines.push(...r.comment.match(/.{1,95}(\s|$)/g)!.map((l) => `; ${l.trim()}`));
    lines.push(`${r.name.padEnd(40)} IN ${r.type.padEnd(5)} ${r.value}`, '');
  }
  return lines.join('\n');
}

export type CheckStatus = 'ok' | 'warning' | 'error';

export interface CheckResult {
  purpose: string;
  name: string;
  type: RecordType;
  status: CheckStatus;
  expected: string;
  /** What the resolver returned, one entry per record. */
  found: string[];
  message: string;
}

export interface DNSCheck {
  domain: string;
  results: CheckResult[];
  errors: string[];
  warnings: string[];
}

/** Text of a TXT value in zone syntax, unquoted and joined. */
function unquote(v: string): string {
  return [...v.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1')).join('');
}

async function lookup<T>(f: () => Promise<{ records: T }>): Promise<{ records?: T; error?: string }> {
  try {
    return { records: (await f()).records };
  } catch (e) {
    if (e instanceof DNSError && e.notFound) return {};
    return { error: (e as Error).message };
  }
}

const trim = (n: string) => n.replace(/\.$/, '').toLowerCase();

/** Purposes whose absence only warrants a warning. */
const optional = (purpose: string) => purpose.startsWith('srv:') || optionalPurposes.has(purpose);
const optionalPurposes = new Set(['tlsrpt', 'tlsrpt-host', 'mtasts', 'mtasts-host', 'autoconfig', 'autodiscover', 'caa', 'caa-host', 'tlsa', 'spf-host', 'host-ip']);

export async function dnsCheck(config: Config, resolver: Resolver, domain: string, opts: RecordOptions = {}): Promise<DNSCheck> {
  const expected = dnsRecords(config, domain, opts);
  const results: CheckResult[] = [];
  for (const r of expected) {
    const name = trim(r.name);
    const res: CheckResult = { purpose: r.purpose, name: r.name, type: r.type, status: 'ok', expected: r.value, found: [], message: '' };
    const missing = (msg: string) => {
      res.status = optional(r.purpose) ? 'warning' : 'error';
      res.message = msg;
    };
    const differs = (msg: string, severe = false) => {
      res.status = severe && !optional(r.purpose) ? 'error' : 'warning';
      res.message = msg;
    };
    switch (r.type) {
      case 'MX': {
        const { records, error } = await lookup(() => resolver.lookupMX(name));
        res.found = (records ?? []).map((m) => `${m.preference} ${m.exchange}.`);
        if (error) differs(`lookup failed: ${error}`, true);
        else if (!records?.length) missing('no MX record: mail for the domain goes nowhere, or to its A record');
        else if (!records.some((m) => m.exchange === trim(r.value.split(' ')[1]!))) differs(`the MX records do not name ${trim(r.value.split(' ')[1]!)}`, true);
        break;
      }
      case 'TXT': {
        const { records, error } = await lookup(() => resolver.lookupTXT(name));
        const want = unquote(r.value);
        const all = records ?? [];
        const tag = want.split(';')[0]!.split(' ')[0]!.toLowerCase();
        const relevant = r.purpose.startsWith('dkim:') ? all : all.filter((t) => t.toLowerCase().startsWith(tag));
        res.found = relevant;
        if (error) differs(`lookup failed: ${error}`, true);
        else if (relevant.length === 0) missing(`no ${tag.replace(/^v=/, '')} record`);
        else if (relevant.length > 1 && !r.purpose.startsWith('dkim:')) differs(`${relevant.length} records: receivers treat more than one as an error`, true);
        else if (r.purpose.startsWith('dkim:')) {
          const p = (t: string) => /(?:^|;)\s*p=([^;]*)/.exec(t)?.[1]?.replace(/\s/g, '');
          if (!relevant.some((t) => p(t) === p(want))) differs('the published key differs from the configured one: signatures fail', true);
        } else if (r.purpose === 'dmarc') {
          if (!isDMARCRecord(relevant[0]!)) differs('not a valid DMARC record', true);
          else {
            try {
              const pol = parseDMARC(relevant[0]!).record.policy;
              if (pol !== 'reject') differs(`policy is ${pol}; p=reject protects the domain from spoofing once DKIM and SPF are in place`);
            } catch (e) {
              differs(`invalid DMARC record: ${(e as Error).message}`, true);
            }
          }
        } else if (r.purpose === 'mtasts') {
          const id = config.domains.Domains[domain]?.MTASTS?.PolicyID;
          if (id && !relevant[0]!.includes(`id=${id}`)) differs(`id differs from the configured PolicyID ${id}: senders keep an old policy`);
          if (!id) differs('MTA-STS record published, but no MTASTS policy configured for the domain', true);
        } else if (relevant[0] !== want) differs('differs from the suggested record');
        break;
      }
      case 'CNAME': {
        const { records, error } = await lookup(() => resolver.lookupCNAME(name));
        if (records) res.found = [`${records}.`];
        if (error) differs(`lookup failed: ${error}`);
        else if (!records) {
          // An A record for the name may serve as well; check that it reaches this host.
          const ips = (await lookup(() => resolver.lookupIP(name))).records ?? [];
          const hostIPs = (await lookup(() => resolver.lookupIP(trim(r.value)))).records ?? [];
          res.found = ips;
          if (ips.length === 0) missing('no record');
          else if (hostIPs.length && !ips.some((ip) => hostIPs.includes(ip))) differs('the name does not resolve to the mail server');
        } else if (trim(records) !== trim(r.value)) differs(`points to ${records} instead`);
        break;
      }
      case 'SRV': {
        const { records, error } = await lookup(() => resolver.lookupSRV(name));
        res.found = (records ?? []).map((s) => `${s.priority} ${s.weight} ${s.port} ${s.target || '.'}${s.target ? '.' : ''}`);
        const [, , port, target] = r.value.split(' ');
        if (error) differs(`lookup failed: ${error}`);
        else if (!records?.length) missing('no record; clients fall back to guessing');
        else if (!records.some((s) => String(s.port) === port && trim(s.target || '.') === trim(target!))) differs('differs from the suggested record');
        break;
      }
      case 'A':
      case 'AAAA': {
        const { records, error } = await lookup(() => (r.type === 'A' ? resolver.lookupA(name) : resolver.lookupAAAA(name)));
        res.found = records ?? [];
        if (error) differs(`lookup failed: ${error}`);
        else if (!records?.includes(r.value)) missing(`${r.value} not among the addresses`);
        break;
      }
      case 'TLSA': {
        const { records, error } = await lookup(() => resolver.lookupTLSA(name));
        res.found = (records ?? []).map((t) => `${t.usage} ${t.selector} ${t.matchingType} ${t.data.toString('hex')}`);
        if (error) differs(`lookup failed: ${error}`);
        else if (!records?.length) missing('no TLSA record (DANE is optional and needs DNSSEC)');
        else if (!res.found.includes(r.value)) differs('no record matches the current certificate key: DANE senders will fail to deliver', true);
        break;
      }
      case 'CAA':
        // CAA lookups are not in the resolver interface; the record is advice only.
        res.status = 'warning';
        res.message = 'not checked; look it up with a DNS tool';
        break;
    }
    results.push(res);
  }
  return {
    domain,
    results,
    errors: results.filter((r) => r.status === 'error').map((r) => `${r.type} ${r.name}: ${r.message}`),
    warnings: results.filter((r) => r.status === 'warning' && r.type !== 'CAA').map((r) => `${r.type} ${r.name}: ${r.message}`),
  };
}
