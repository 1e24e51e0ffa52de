// Commands for setting up and operating a public server: quickstart, the systemd unit, ACME
// host keys, DNS records and their check, stored reports, and lookup tools for MTA-STS, TLS
// reporting, DANE and messages.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Command, Ctx } from './cli.js';
import { UsageError } from './cli.js';
import { Config, ConfigInvalid, configFiles, parseStatic } from '../config/load.js';
import type { StaticConfig } from '../config/static.js';
import { normalizeDomain } from '../config/domains.js';
import { resolverFor } from '../server/resolver.js';
import { StubResolver } from '../dns/stub.js';
import type { Resolver } from '../dns/types.js';
import { DomainError, parseDomain } from '../dns/domain.js';
import { lookupSTSRecord } from '../mtasts/record.js';
import { fetchPolicy, PolicyFetchError } from '../mtasts/fetch.js';
import { policyLines } from '../mtasts/policy.js';
import { lookupTLSRPTRecord } from '../tlsrpt/record.js';
import { reportFromMessage } from '../tlsrpt/message.js';
import { reportJSON } from '../tlsrpt/report.js';
import { lookupDANE } from '../dane/lookup.js';
import { verifyDANE } from '../dane/verify.js';
import { formatTLSA, makeTLSARecord, MatchingType, Selector, Usage } from '../dane/tlsa.js';
import { parseMessage } from '../message/part.js';
import { dnsCheck } from '../dnsrecords/dnsrecords.js';
import { lookup as dnsblLookup } from '../dnsbl/dnsbl.js';
import { ensureHostKeys } from '../acme/hostkeys.js';
import { acmeRecordOptions, dnsZone, domainRecords } from '../quickstart/zone.js';
import { commonDNSBLs, isPublicIP, quickstart, systemdUnit } from '../quickstart/quickstart.js';
import { ReportStore } from '../reports/store.js';

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

async function readInput(file: string): Promise<Buffer> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`reading ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/** The static config if the file exists: lookup tools work without one, with the system resolver. */
function staticConfig(ctx: Ctx): StaticConfig | undefined {
  const file = configFiles(ctx.configFile).staticFile;
  if (!fs.existsSync(file)) return undefined;
  const s = parseStatic(file, fs.readFileSync(file, 'utf8'));
  if (!s.config) throw new ConfigInvalid(s.errors);
  return s.config;
}

function resolver(ctx: Ctx): Resolver {
  const c = staticConfig(ctx);
  return c ? resolverFor(c) : new StubResolver();
}

function domainArg(name: string): string {
  try {
    return parseDomain(name.replace(/\.$/, '')).ascii;
  } catch (e) {
    if (e instanceof DomainError) throw new UsageError(`domain: ${e.message}`);
    throw e;
  }
}

/** A configured domain, by its Unicode or ASCII name. */
function configuredDomain(config: Config, name: string): string {
  const d = normalizeDomain(name.replace(/\.$/, ''));
  if (!d || !config.domains.Domains[d]) throw new UsageError(`domain ${name} is not configured in domains.conf`);
  return d;
}

/** Public addresses of the listeners, for reverse DNS and blocklist checks. */
function listenerPublicIPs(config: Config): string[] {
  return [...new Set(Object.values(config.static_.Listeners).flatMap((l) => l.IPs.filter(isPublicIP)))];
}

function readStore(ctx: Ctx): ReportStore {
  const config = Config.load(ctx.configFile);
  if (!fs.existsSync(path.join(config.dataDir, 'reports.db'))) throw new Error('no reports stored yet');
  return new ReportStore(config.dataDir, { readonly: true });
}

const date = (ms: number) => new Date(ms).toISOString().replace('.000', '');

/** Reads the SMTP replies of one command: lines until one without "-" after the code. */
function smtpReply(sock: net.Socket | tls.TLSSocket, state: { buf: string }): Promise<{ code: number; text: string }> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const lines = state.buf.split('\r\n');
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3} /.test(lines[i]!) || /^\d{3}$/.test(lines[i]!)) {
          const text = lines.slice(0, i + 1).join('\n');
          state.buf = lines.slice(i + 1).join('\r\n');
          sock.off('data', onData);
          sock.off('error', onError);
          resolve({ code: Number(lines[i]!.slice(0, 3)), text });
          return true;
        }
      }
      return false;
    };
    const onData = (d: Buffer) => {
      state.buf += d.toString('latin1');
      check();
    };
    const onError = (e: Error) => reject(e);
    if (check()) return;
    sock.on('data', onData);
    sock.once('error', onError);
  });
}

/** Copies standard input to the connection and the connection to standard output until either ends. */
function relay(sock: net.Socket | tls.TLSSocket): Promise<void> {
  return new Promise((resolve) => {
    sock.pipe(process.stdout, { end: false });
    process.stdin.pipe(sock);
    const done = () => {
      process.stdin.unpipe(sock);
      process.stdin.pause();
      resolve();
    };
    sock.once('close', done);
    process.stdin.once('end', () => sock.end());
  });
}

const USAGES: Record<string, number> = { 'pkix-ta': Usage.PKIX_TA, 'pkix-ee': Usage.PKIX_EE, 'dane-ta': Usage.DANE_TA, 'dane-ee': Usage.DANE_EE };
const SELECTORS: Record<string, number> = { cert: Selector.CERT, spki: Selector.SPKI };
const MATCHTYPES: Record<string, number> = { full: MatchingType.FULL, 'sha2-256': MatchingType.SHA256, 'sha2-512': MatchingType.SHA512 };

function tlsaParam(v: string, names: Record<string, number>, what: string): number {
  if (/^\d$/.test(v) && Object.values(names).includes(Number(v))) return Number(v);
  const n = names[v.toLowerCase()];
  if (n === undefined) throw new UsageError(`unknown ${what} ${v}: one of ${Object.entries(names).map(([k, x]) => `${k} (${x})`).join(', ')}`);
  return n;
}

export const setupCommands: Command[] = [
  {
    name: 'quickstart',
    args: 'user@domain [user | uid]',
    nargs: [1, 2],
    flags: {
      'existing-webserver': { type: 'bool', help: 'a web server already uses ports 80 and 443: configure certificate files and a reverse proxy setup instead of ACME' },
      hostname: { type: 'string', help: 'host name the server runs as; by default the name of this machine, its reverse DNS, or its name in the mail domain' },
      skipdial: { type: 'bool', help: 'do not check whether outgoing connections to port 25 work' },
      dir: { type: 'string', help: 'directory for config/, data/ and the systemd unit', default: '.' },
      resolver: { type: 'string', help: 'DNS resolver IP:port to use and to write into postern.conf' },
      ips: { type: 'string', help: 'comma-separated IPs to listen on instead of the public addresses of this machine' },
    },
    help: `Writes the configuration for a public mail server on this machine and tells what else to do.

For the domain of the address it creates domains.conf with DKIM keys (two RSA 2048
selectors, one signing and one for rotation, and an Ed25519 selector), MTA-STS in enforce
mode, and addresses for DMARC and TLS reports; an account for the address with a generated
password, printed once; and postern.conf with a "public" listener on this machine's public
IPs (SMTP 25, submission over TLS 465, IMAPS 993, MTA-STS and client settings over HTTPS
443) whose certificates come from Let's Encrypt with ACME, and an "internal" listener on
localhost for the admin and account web pages. The admin password is printed once too.

It then checks this machine's IPs against common DNS blocklists, whether outgoing
connections to port 25 work (unless -skipdial), prints the DNS records to create with an
explanation of each, writes a systemd unit (postern.service, see "postern config
printservice") and prints the commands to start the server.

The user (default "postern") is the system user the service runs as.

With -existing-webserver, ports 80 and 443 are left to the web server already running:
postern.conf names certificate files for the host name instead of ACME, and serves
MTA-STS and client settings on 127.0.0.1 port 81 for the web server to forward to.`,
    async run(ctx) {
      const r = typeof ctx.flags.resolver === 'string' ? new StubResolver({ servers: [ctx.flags.resolver] }) : new StubResolver();
      await quickstart({
        address: ctx.args[0]!,
        user: ctx.args[1],
        hostname: ctx.flags.hostname as string | undefined,
        existingWebserver: !!ctx.flags['existing-webserver'],
        skipDial: !!ctx.flags.skipdial,
        dir: ctx.flags.dir as string,
        resolver: r,
        resolverAddress: ctx.flags.resolver as string | undefined,
        ips: typeof ctx.flags.ips === 'string' ? ctx.flags.ips.split(',').map((s) => s.trim()) : undefined,
        out,
      });
    },
  },
  {
    name: 'config printservice',
    args: '',
    nargs: [0, 0],
    flags: { user: { type: 'string', help: 'system user to run as', default: 'postern' } },
    help: `Prints a systemd unit that runs the server.

The same file quickstart writes: the server runs in the directory with config/ and data/
(the current directory) as an unprivileged user allowed to bind ports below 1024, with
the rest of the system read-only. Install it as /etc/systemd/system/postern.service.`,
    run(ctx) {
      out(systemdUnit(path.dirname(path.dirname(path.resolve(ctx.configFile))), ctx.flags.user as string));
    },
  },
  {
    name: 'config ensureacmehostprivatekeys',
    args: '',
    nargs: [0, 0],
    help: `Makes sure the listeners with ACME have host private keys, for DANE.

A TLSA record of type 3 1 1 pins the public key of the SMTP server's certificate. If
each ACME renewal came with a new key, the record would break at every renewal; with
host keys listed in TLS.HostPrivateKeyFiles the key stays. For each listener with
TLS.ACME this writes an RSA 2048 and an ECDSA P-256 key to config/hostkeys/ when missing:
the key of a certificate already obtained, so existing TLSA records stay valid, or else a
new one. It prints the HostPrivateKeyFiles lines to put in postern.conf. Then restart,
and publish the TLSA records of "postern config dnsrecords".`,
    run(ctx) {
      const config = Config.load(ctx.configFile);
      const keys = ensureHostKeys(config.dir, config.dataDir, config.static_);
      if (keys.length === 0) return out('no listener uses ACME');
      for (const k of keys) out(`listener ${k.listener}: ${k.hostname} ${k.type}: ${k.file} (${k.source})`);
      const missing = keys.filter((k) => k.source !== 'configured');
      if (missing.length === 0) return out('all host keys configured');
      out('\nAdd to postern.conf, under each listener\'s TLS:');
      for (const l of new Set(missing.map((k) => k.listener))) {
        out(`  Listeners.${l}.TLS:\n      HostPrivateKeyFiles:`);
        for (const k of keys.filter((x) => x.listener === l)) out(`        - ${k.file}`);
      }
    },
  },
  {
    name: 'config dnsrecords',
    args: 'domain',
    nargs: [1, 1],
    help: `Prints the DNS records a configured domain needs, as a zone file with comments.

MX, SPF for the domain and the host name, DKIM keys of each selector, DMARC with the
report address, TLS reporting, MTA-STS, SRV records for mail clients (RFC 6186), the
autoconfig name, CAA limiting certificates to the configured certificate authority (with
the ACME account, RFC 8657, once it exists), and TLSA records for DANE of the SMTP
certificate or the ACME host keys. Each record is preceded by what it is for.`,
    async run(ctx) {
      const config = Config.load(ctx.configFile);
      out(await dnsZone(config, configuredDomain(config, ctx.args[0]!)));
    },
  },
  {
    name: 'config dnscheck',
    args: 'domain',
    nargs: [1, 1],
    help: `Checks the DNS records of a configured domain and the server's IPs, printing every problem.

The records of "postern config dnsrecords" are looked up and compared: errors for what
breaks delivery or authentication, warnings for what is missing but optional or differs
from the advice. The public IPs of the listeners are checked for reverse DNS that
resolves back to them (many receivers refuse mail otherwise) and for listings on DNS
blocklists (postern.conf DNSBL, or common ones). Exit status 1 when there are errors.`,
    async run(ctx) {
      const config = Config.load(ctx.configFile);
      const domain = configuredDomain(config, ctx.args[0]!);
      const r = resolverFor(config.static_);
      const check = await dnsCheck(config, r, domain, acmeRecordOptions(config));
      const lines: { status: 'ok' | 'warning' | 'error'; text: string }[] = [];
      const covered = new Set(check.results.map((x) => `${x.type} ${x.name} ${x.expected}`));
      for (const x of check.results) {
        lines.push({ status: x.status, text: `${x.type} ${x.name}${x.message ? `: ${x.message}` : ''}${x.status !== 'ok' ? `\n    expected: ${x.expected}${x.found.length ? `\n    found: ${x.found.join(' | ')}` : ''}` : ''}` });
      }
      // TLSA of the ACME host keys, which the record list gives when no certificate file is configured.
      for (const t of domainRecords(config, domain).filter((x) => x.type === 'TLSA' && !covered.has(`TLSA ${x.name} ${x.value}`))) {
        let found: string[] = [];
        try {
          found = (await r.lookupTLSA(t.name.replace(/\.$/, ''))).records.map((x) => `${x.usage} ${x.selector} ${x.matchingType} ${x.data.toString('hex')}`);
        } catch {
          // Missing: a warning below.
        }
        if (found.includes(t.value)) lines.push({ status: 'ok', text: `TLSA ${t.name}` });
        else lines.push({ status: 'warning', text: `TLSA ${t.name}: ${found.length ? 'no record matches the host key: DANE senders will fail to deliver' : 'no TLSA record (DANE is optional and needs DNSSEC)'}\n    expected: ${t.value}` });
      }
      const host = config.static_.Hostname;
      const ips = listenerPublicIPs(config);
      for (const ip of ips) {
        // RFC 8601 iprev, as receivers check it: the PTR name must resolve back to the IP.
        let names: string[] = [];
        try {
          names = (await r.lookupPTR(ip)).records.map((n) => n.replace(/\.$/, '').toLowerCase());
        } catch {
          // No reverse DNS.
        }
        if (names.length === 0) lines.push({ status: 'error', text: `reverse DNS of ${ip}: none; ask the provider of the IP to set it to ${host}` });
        else if (!names.includes(host.toLowerCase())) lines.push({ status: 'warning', text: `reverse DNS of ${ip}: ${names.join(', ')}, not ${host}` });
        else {
          let forward: string[] = [];
          try {
            forward = (await r.lookupIP(host)).records;
          } catch {
            // Reported below.
          }
          lines.push(forward.includes(ip) ? { status: 'ok', text: `reverse DNS of ${ip}: ${host}` } : { status: 'error', text: `reverse DNS of ${ip} is ${host}, but ${host} does not resolve to ${ip}` });
        }
        const zones = config.static_.DNSBL?.Zones.length ? config.static_.DNSBL.Zones : commonDNSBLs;
        for (const zone of zones) {
          const b = await dnsblLookup(r, zone, ip);
          if (b.status === 'fail') lines.push({ status: 'error', text: `${ip} is listed in blocklist ${zone}${b.explanation ? `: ${b.explanation}` : ''}` });
          else if (b.status === 'temperror') lines.push({ status: 'warning', text: `blocklist ${zone} could not be checked for ${ip}: ${b.error}` });
          else lines.push({ status: 'ok', text: `${ip} not listed in ${zone}` });
        }
      }
      if (ips.length === 0) lines.push({ status: 'warning', text: 'no public IP in the listeners: reverse DNS and blocklists not checked' });
      for (const l of lines) out(`${l.status === 'ok' ? 'ok     ' : l.status === 'warning' ? 'warning' : 'ERROR  '} ${l.text}`);
      const errors = lines.filter((l) => l.status === 'error').length;
      const warnings = lines.filter((l) => l.status === 'warning').length;
      out(`\n${errors} error(s), ${warnings} warning(s)`);
      return errors ? 1 : 0;
    },
  },
  {
    name: 'dmarc reports',
    args: '[domain]',
    nargs: [0, 1],
    flags: { id: { type: 'string', help: 'print the stored report with this id as JSON' } },
    help: `Lists the DMARC aggregate reports received about our domains.

Reports arrive at a domain's DMARC address in domains.conf; those from senders passing
DMARC are parsed and kept. Each line shows the id, the period, the domain, the reporting
organization, and the messages that passed and failed DMARC. With -id, the full report
is printed as JSON.`,
    run(ctx) {
      const s = readStore(ctx);
      try {
        if (typeof ctx.flags.id === 'string') {
          const r = s.dmarcReport(Number(ctx.flags.id));
          if (!r) throw new Error(`no report with id ${ctx.flags.id}`);
          return out(JSON.stringify(r, null, 2));
        }
        const list = s.dmarcReports(ctx.args[0] ? domainArg(ctx.args[0]) : undefined);
        if (list.length === 0) out('(no reports)');
        for (const r of list) {
          const f = r.report;
          const count = (pass: boolean) => f.records.filter((x) => (x.row.policyEvaluated.dkim === 'pass' || x.row.policyEvaluated.spf === 'pass') === pass).reduce((n, x) => n + x.row.count, 0);
          out(
            `${r.id} ${date(f.reportMetadata.dateRange.begin * 1000)} - ${date(f.reportMetadata.dateRange.end * 1000)} ${r.domain} from ${f.reportMetadata.orgName} (${r.sender}): ${count(true)} pass, ${count(false)} fail, report-id ${f.reportMetadata.reportID}`,
          );
        }
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'tlsrpt reports',
    args: '[domain]',
    nargs: [0, 1],
    flags: { id: { type: 'string', help: 'print the stored report with this id as JSON' } },
    help: `Lists the TLS reports (RFC 8460) received about our domains.

Reports arrive at a domain's TLSRPT address in domains.conf; those with a valid DKIM
signature of the reporting domain are parsed and kept. Each line shows the id, the
period, the domains, the reporting organization and the successful and failed TLS
sessions. With -id, the full report is printed as JSON.`,
    run(ctx) {
      const s = readStore(ctx);
      try {
        if (typeof ctx.flags.id === 'string') {
          const r = s.tlsReport(Number(ctx.flags.id));
          if (!r) throw new Error(`no report with id ${ctx.flags.id}`);
          return out(JSON.stringify({ ...r, report: JSON.parse(reportJSON(r.report)) as unknown }, null, 2));
        }
        const list = s.tlsReports(ctx.args[0] ? domainArg(ctx.args[0]) : undefined);
        if (list.length === 0) out('(no reports)');
        for (const r of list) {
          const ok = r.report.policies.reduce((n, p) => n + p.successfulSessions, 0);
          const failed = r.report.policies.reduce((n, p) => n + p.failedSessions, 0);
          out(`${r.id} ${date(r.report.start.getTime())} - ${date(r.report.end.getTime())} ${r.domains.join(',')} from ${r.report.organizationName} (${r.sender}): ${ok} successful, ${failed} failed sessions, report-id ${r.report.reportId}`);
        }
      } finally {
        s.close();
      }
    },
  },
  {
    name: 'tlsrpt lookup',
    args: 'domain',
    nargs: [1, 1],
    help: `Looks up and prints the TLS reporting record of a domain (RFC 8460 3).

The TXT record at _smtp._tls.<domain> says where senders report the TLS results of their
deliveries to the domain's mail servers: successes, and failures such as invalid
certificates or failed STARTTLS.`,
    async run(ctx) {
      const domain = domainArg(ctx.args[0]!);
      const r = await lookupTLSRPTRecord(resolver(ctx), domain);
      if (r.status !== 'found') throw new Error(`_smtp._tls.${domain}: ${r.reason}`);
      out(`v=${r.record.version}; rua=${r.record.rua.map((d) => d.uri).join(',')}`);
      for (const d of r.record.rua) out(`report to: ${d.type === 'mailto' ? d.address : d.url.href} (${d.type})`);
      for (const [k, v] of Object.entries(r.record.extensions)) out(`extension: ${k}=${v}`);
    },
  },
  {
    name: 'tlsrpt parsereportmsg',
    args: 'message ...',
    nargs: [1, -1],
    help: `Parses TLS reports from message files and prints them as JSON.

Each file is an email message with a TLS report as sent to rua addresses (RFC 8460 5.3):
an application/tlsrpt+gzip or application/tlsrpt+json part, or a .json(.gz) attachment.
A file without a readable report is reported on standard error and makes the exit
status 1; the other files are still printed.`,
    async run(ctx) {
      let code = 0;
      for (const file of ctx.args) {
        try {
          out(reportJSON(reportFromMessage(await readInput(file))));
        } catch (e) {
          process.stderr.write(`postern: ${file}: ${(e as Error).message}\n`);
          code = 1;
        }
      }
      return code;
    },
  },
  {
    name: 'mtasts lookup',
    args: 'domain',
    nargs: [1, 1],
    help: `Looks up the MTA-STS record of a domain and fetches its policy (RFC 8461).

A domain with a TXT record at _mta-sts.<domain> has a policy at
https://mta-sts.<domain>/.well-known/mta-sts.txt. The policy says whether senders must use
TLS with a valid certificate (enforce), only report failures (testing) or not (none), for
which MX hosts, and for how long they may cache it.`,
    async run(ctx) {
      const domain = domainArg(ctx.args[0]!);
      const r = resolver(ctx);
      const rec = await lookupSTSRecord(r, domain);
      if (rec.status !== 'found') throw new Error(`_mta-sts.${domain}: ${rec.reason}`);
      out(`record: v=${rec.record.version}; id=${rec.record.id}`);
      for (const [k, v] of Object.entries(rec.record.extensions)) out(`extension: ${k}=${v}`);
      const cfg = staticConfig(ctx);
      const ca = cfg ? [...tls.rootCertificates, ...cfg.Queue.CAFiles.map((f) => fs.readFileSync(path.resolve(path.dirname(configFiles(ctx.configFile).staticFile), f), 'utf8'))] : undefined;
      try {
        const p = await fetchPolicy(domain, { resolver: r, ca, port: cfg?.Queue.MTASTSPort });
        out('policy:');
        for (const l of policyLines(p.policy)) out(`  ${l}`);
      } catch (e) {
        if (e instanceof PolicyFetchError) throw new Error(`policy: ${e.message} (${e.resultType})`);
        throw e;
      }
    },
  },
  {
    name: 'dane dial',
    args: 'host:port',
    nargs: [1, 1],
    flags: { usages: { type: 'string', help: 'allowed TLSA usages, comma-separated', default: 'pkix-ta,pkix-ee,dane-ta,dane-ee' } },
    help: `Connects with TLS to host:port and verifies the certificate with DANE (RFC 6698, RFC 7671).

The TLSA records at _<port>._tcp.<host> must be DNSSEC-authentic (see the Resolver of
postern.conf). Once verified, standard input is sent to the connection and what the
server sends is written to standard output, until either side closes.`,
    async run(ctx) {
      const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(ctx.args[0]!);
      if (!m) throw new UsageError('want host:port');
      const host = domainArg(m[1]!);
      const port = Number(m[2]);
      const allowed = (ctx.flags.usages as string).split(',').map((u) => tlsaParam(u.trim(), USAGES, 'usage'));
      const d = await lookupDANE(resolver(ctx), host, { port });
      if (d.status !== 'dane-required') throw new Error(`no DANE for ${host} port ${port}: ${d.reason}`);
      const records = d.records.filter((x) => allowed.includes(x.usage));
      if (records.length === 0) throw new Error('no TLSA records with an allowed usage');
      const sock = await connectTLS(d.addresses, port, d.baseDomain);
      verifyConnection(sock, records, d.names);
      await relay(sock);
    },
  },
  {
    name: 'dane dialmx',
    args: 'domain [destination-host]',
    nargs: [1, 2],
    flags: { ehlohostname: { type: 'string', help: 'host name for EHLO', default: 'localhost' } },
    help: `Connects to the MX hosts of a domain with STARTTLS verified by DANE (RFC 7672).

Without a destination host, the MX records of the domain are used in order of
preference (the domain itself when it has none), as for delivery. Each host is tried
until one has DNSSEC-authentic TLSA records and presents a certificate that matches them
after EHLO and STARTTLS. Then standard input is sent to the connection and the server's
output written to standard output.`,
    async run(ctx) {
      const domain = domainArg(ctx.args[0]!);
      const r = resolver(ctx);
      let hosts: string[];
      if (ctx.args[1]) hosts = [domainArg(ctx.args[1])];
      else {
        try {
          const mx = (await r.lookupMX(domain)).records.sort((a, b) => a.preference - b.preference);
          if (mx.length === 1 && mx[0]!.exchange === '') throw new Error(`${domain} accepts no mail (null MX)`);
          hosts = mx.map((x) => x.exchange);
        } catch (e) {
          if ((e as { notFound?: boolean }).notFound) hosts = [domain];
          else throw e;
        }
      }
      const port = staticConfig(ctx)?.Queue.SMTPPort ?? 25;
      const ehlo = ctx.flags.ehlohostname as string;
      for (const host of hosts) {
        const d = await lookupDANE(r, host, { port });
        if (d.status !== 'dane-required') {
          process.stderr.write(`${host}: no DANE: ${d.reason}\n`);
          continue;
        }
        for (const ip of d.addresses) {
          try {
            const plain = await new Promise<net.Socket>((resolve, reject) => {
              const s = net.connect({ host: ip, port }, () => resolve(s));
              s.once('error', reject);
              s.setTimeout(30_000, () => s.destroy(new Error('timeout')));
            });
            const st = { buf: '' };
            const expect = async (code: number, cmd?: string) => {
              if (cmd) plain.write(`${cmd}\r\n`);
              const rep = await smtpReply(plain, st);
              if (rep.code !== code) throw new Error(`${cmd ?? 'greeting'}: ${rep.text}`);
              return rep;
            };
            await expect(220);
            await expect(250, `EHLO ${ehlo}`);
            await expect(220, 'STARTTLS');
            const sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
              const t = tls.connect({ socket: plain, servername: d.baseDomain, rejectUnauthorized: false }, () => resolve(t));
              t.once('error', reject);
            });
            verifyConnection(sock, d.records, [...d.names, domain]);
            process.stderr.write(`connected to ${host} (${ip}) port ${port}, verified with DANE; say EHLO again\n`);
            await relay(sock);
            return 0;
          } catch (e) {
            process.stderr.write(`${host} (${ip}): ${(e as Error).message}\n`);
          }
        }
      }
      throw new Error('no MX host could be reached with DANE');
    },
  },
  {
    name: 'dane makerecord',
    args: 'usage selector matchtype certificate.pem|publickey.pem|privatekey.pem',
    nargs: [4, 4],
    help: `Prints a TLSA record (RFC 6698) for a certificate or key.

usage: pkix-ta (0), pkix-ee (1), dane-ta (2), dane-ee (3)
selector: cert (0), spki (1)
matchtype: full (0), sha2-256 (1), sha2-512 (2)

For SMTP servers, "dane-ee spki sha2-256" (3 1 1) is usual: it pins the public key, which
stays the same across certificate renewals when the key is kept. A zone file line:
_25._tcp.mail.example.com. TLSA 3 1 1 <hex>. The first certificate or key in the file
counts; selector cert needs a certificate.`,
    async run(ctx) {
      const [u, s, m, file] = ctx.args as [string, string, string, string];
      const rec = makeTLSARecord(tlsaParam(u, USAGES, 'usage'), tlsaParam(s, SELECTORS, 'selector'), tlsaParam(m, MATCHTYPES, 'matchtype'), await readInput(file));
      out(formatTLSA(rec));
    },
  },
  {
    name: 'message parse',
    args: 'message',
    nargs: [1, 1],
    help: `Parses a message file and prints its MIME structure as JSON.

Every part with its byte offsets, media type and parameters, transfer encoding and
disposition, and for the message and attached messages the envelope fields (date,
subject, addresses, message-id) as IMAP shows them. Use "-" for standard input.`,
    async run(ctx) {
      out(JSON.stringify(parseMessage(await readInput(ctx.args[0]!)), null, 2));
    },
  },
];

async function connectTLS(addresses: string[], port: number, servername: string): Promise<tls.TLSSocket> {
  let last: Error | undefined;
  for (const ip of addresses) {
    try {
      return await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ host: ip, port, servername, rejectUnauthorized: false }, () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      last = e as Error;
      process.stderr.write(`${ip}: ${last.message}\n`);
    }
  }
  throw last ?? new Error('no addresses');
}

function verifyConnection(sock: tls.TLSSocket, records: Parameters<typeof verifyDANE>[0], names: string[]): void {
  const chain: Buffer[] = [];
  let c: tls.DetailedPeerCertificate | undefined = sock.getPeerCertificate(true);
  while (c?.raw && !chain.some((x) => x.equals(c!.raw))) {
    chain.push(c.raw);
    c = c.issuerCertificate;
  }
  const v = verifyDANE(records, chain, { names });
  if (!v.verified) {
    sock.destroy();
    throw new Error(`DANE verification failed: ${v.reason}`);
  }
  process.stderr.write(`verified with TLSA record ${formatTLSA(v.record)}\n`);
}

