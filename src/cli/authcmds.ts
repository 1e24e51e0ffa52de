// Command-line tools for message authentication: DKIM keys, signing and verification, SPF and
// DMARC evaluation, DMARC report destinations and aggregate reports, and plain DNS lookups.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { Command, Ctx } from './cli.js';
import { UsageError } from './cli.js';
import { Config, ConfigInvalid, configFiles, parseStatic } from '../config/load.js';
import { normalizeDomain, type DomainConfig } from '../config/domains.js';
import type { StaticConfig } from '../config/static.js';
import { resolverFor } from '../server/resolver.js';
import { StubResolver } from '../dns/stub.js';
import { DNSError, type Resolver } from '../dns/types.js';
import { DomainError, parseDNSName, parseDomain } from '../dns/domain.js';
import { genEd25519, genRSA, parseKeyRecord, recordPublicKey, txtRecord, zoneTXT } from '../dkim/keys.js';
import { sign, type SignOptions } from '../dkim/sign.js';
import { verify as dkimVerify, type DKIMResult } from '../dkim/verify.js';
import { parse as parseSPF, format as formatSPF, isSPFRecord, SPFSyntaxError } from '../spf/parse.js';
import { checkHost, verify as spfVerify } from '../spf/evaluate.js';
import { receivedSPF } from '../spf/header.js';
import { lookupRecord } from '../dmarc/lookup.js';
import { formatRecord } from '../dmarc/record.js';
import { verify as dmarcVerify, fromDomains, type DMARCResult } from '../dmarc/verify.js';
import { checkReportAddresses } from '../dmarc/reportaddr.js';
import { authenticationResults, type IprevResult } from '../dmarc/authres.js';
import { parseMessageReport } from '../dmarcrpt/message.js';
import { parseHeader } from '../message/header.js';

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A file's contents, or standard input for "-". */
async function readInput(file: string): Promise<Buffer> {
  if (file === '-') return readStdin();
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`reading ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/**
 * The static configuration when the config file exists, for its Resolver and Hostname. Commands
 * that only look things up in DNS also work without one, with the system's resolvers.
 */
function staticConfig(ctx: Ctx): StaticConfig | undefined {
  const file = configFiles(ctx.configFile).staticFile;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const s = parseStatic(file, text);
  if (!s.config) throw new ConfigInvalid(s.errors);
  return s.config;
}

function lookupEnv(ctx: Ctx): { resolver: Resolver; hostname: string } {
  const config = staticConfig(ctx);
  return {
    resolver: config ? resolverFor(config) : new StubResolver(),
    hostname: config?.Hostname ?? os.hostname(),
  };
}

/** A domain argument in A-label form. */
function domainArg(name: string, what = 'domain'): string {
  try {
    return parseDomain(name).ascii;
  } catch (e) {
    if (e instanceof DomainError) throw new UsageError(`${what}: ${e.message}`);
    throw e;
  }
}

function ipArg(ip: string): string {
  if (!net.isIP(ip)) throw new UsageError(`invalid IP address ${JSON.stringify(ip)}`);
  return ip;
}

function dnssec(authentic: boolean): string {
  return `dnssec: ${authentic ? 'authentic' : 'not authentic'}`;
}

/** Quotes a value for a key=value line when it is not a plain token. */
function q(v: string): string {
  return /^[\x21-\x7e]+$/.test(v) && !v.includes('"') ? v : JSON.stringify(v);
}

/** Text from DNS or a message, with control characters made visible. */
function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function notFoundError(e: unknown, what: string): Error {
  if (e instanceof DNSError && e.notFound) return new Error(`${what}: ${e.message}`);
  return e as Error;
}

function dkimLine(r: DKIMResult): string {
  const parts: string[] = [r.status];
  if (r.domain) parts.push(`domain=${q(r.domain)}`);
  if (r.selector) parts.push(`selector=${q(r.selector)}`);
  if (r.algorithm) parts.push(`algorithm=${q(r.algorithm)}`);
  if (r.identity) parts.push(`identity=${q(r.identity)}`);
  if (r.testing) parts.push('testing');
  if (r.status === 'pass' || r.authentic) parts.push(r.authentic ? 'dnssec=authentic' : 'dnssec=no');
  if (r.reason) parts.push(`reason=${JSON.stringify(r.reason)}`);
  return parts.join(' ');
}

/** Reverse DNS of the client confirmed by a forward lookup (RFC 8601 3, "iprev"). */
async function iprev(resolver: Resolver, ip: string): Promise<IprevResult> {
  let names: string[];
  try {
    names = (await resolver.lookupPTR(ip)).records;
  } catch (e) {
    return { result: e instanceof DNSError && e.notFound ? 'permerror' : 'temperror', ip };
  }
  for (const name of names.slice(0, 10)) {
    try {
      if ((await resolver.lookupIP(name)).records.includes(ip)) return { result: 'pass', ip, name };
    } catch {
      // the next name may confirm
    }
  }
  return { result: 'fail', ip, name: names[0] };
}

function dmarcLine(r: DMARCResult): string {
  const parts: string[] = [r.status];
  if (r.domain) parts.push(`from=${r.domain}`);
  if (r.recordDomain) parts.push(`record=_dmarc.${r.recordDomain}`);
  if (r.record) parts.push(`policy=${r.policy}`, `disposition=${r.disposition}`);
  if (r.sampledOut) parts.push('sampled-out');
  parts.push(`aligned-spf=${r.alignedSPFPass ? 'pass' : 'no'}`, `aligned-dkim=${r.alignedDKIMPass ? 'pass' : 'no'}`);
  if (r.reason) parts.push(`reason=${JSON.stringify(r.reason)}`);
  return parts.join(' ');
}

const DNS_TYPES = ['ptr', 'mx', 'cname', 'ips', 'a', 'aaaa', 'ns', 'txt', 'srv', 'tlsa'] as const;
type DNSType = (typeof DNS_TYPES)[number];

async function dnsLookup(resolver: Resolver, type: DNSType, name: string): Promise<{ lines: string[]; authentic: boolean }> {
  switch (type) {
    case 'ptr': {
      const r = await resolver.lookupPTR(ipArg(name));
      return { lines: r.records, authentic: r.authentic };
    }
    case 'mx': {
      const r = await resolver.lookupMX(name);
      // RFC 7505: a single MX with the root as exchange says the domain accepts no mail.
      const lines = [...r.records].sort((a, b) => a.preference - b.preference).map((m) => (m.exchange === '' ? `${m.preference} . (null MX: no mail accepted)` : `${m.preference} ${m.exchange}`));
      return { lines, authentic: r.authentic };
    }
    case 'cname': {
      const r = await resolver.lookupCNAME(name);
      return { lines: [r.records], authentic: r.authentic };
    }
    case 'ips':
    case 'a':
    case 'aaaa':
    case 'ns': {
      const fn = { ips: resolver.lookupIP, a: resolver.lookupA, aaaa: resolver.lookupAAAA, ns: resolver.lookupNS }[type];
      const r = await fn.call(resolver, name);
      return { lines: r.records, authentic: r.authentic };
    }
    case 'txt': {
      const r = await resolver.lookupTXT(name);
      return { lines: r.records.map(printable), authentic: r.authentic };
    }
    case 'srv': {
      const r = await resolver.lookupSRV(name);
      // RFC 2782: a target of "." means the service is not available at this domain.
      return { lines: r.records.map((s) => `${s.priority} ${s.weight} ${s.port} ${s.target || '.'}`), authentic: r.authentic };
    }
    case 'tlsa': {
      const r = await resolver.lookupTLSA(name);
      return { lines: r.records.map((t) => `${t.usage} ${t.selector} ${t.matchingType} ${t.data.toString('hex')}`), authentic: r.authentic };
    }
  }
}

const RESOLVER_NOTE = `DNS queries go to the Resolver of postern.conf (see --config), or, when there is no
config file, to the nameservers of /etc/resolv.conf.`;

const DNSSEC_NOTE = `An answer counts as DNSSEC-authentic only when the resolver set the AD bit and is on
this machine (a loopback address): an AD bit from elsewhere could have been set by anyone
on the path.`;

export const authCommands: Command[] = [
  {
    name: 'dkim genrsa',
    args: '',
    nargs: [0, 0],
    help: `Generates a 2048-bit RSA private key for DKIM signing, printed as PKCS#8 PEM.

Save it in a file (mode 0600), name it as PrivateKeyFile of a selector in domains.conf, and
publish its public key with "postern dkim txt". RSA keys work with every verifier; Ed25519
keys (RFC 8463) are much shorter but not yet verified everywhere, so domains often sign
with one key of each type.`,
    async run() {
      out(await genRSA(2048));
    },
  },
  {
    name: 'dkim gened25519',
    args: '',
    nargs: [0, 0],
    help: `Generates an Ed25519 private key for DKIM signing (RFC 8463), printed as PKCS#8 PEM.

Use it like a key from "postern dkim genrsa". Not every verifier knows Ed25519 yet: to be
safe, sign with an RSA key as well.`,
    async run() {
      out(await genEd25519());
    },
  },
  {
    name: 'dkim txt',
    args: '<privatekey.pem',
    nargs: [0, 0],
    help: `Prints the DNS TXT record that publishes the public half of a DKIM private key.

The PKCS#8 PEM private key (RSA or Ed25519) is read from standard input. Publish the
output at <selector>._domainkey.<domain>. It is written as in a zone file: quoted strings
of at most 255 bytes each, since a DNS TXT string cannot be longer (RFC 1035 3.3.14);
verifiers join the strings back together.`,
    async run() {
      const pem = await readStdin();
      if (pem.length === 0) throw new UsageError('no private key on standard input');
      let record: string;
      try {
        record = txtRecord(pem);
      } catch (e) {
        throw new Error(`reading private key: ${(e as Error).message}`);
      }
      out(zoneTXT(record));
    },
  },
  {
    name: 'dkim lookup',
    args: 'selector domain',
    nargs: [2, 2],
    help: `Looks up the DKIM key record at <selector>._domainkey.<domain> and prints its fields.

Shows the key type, the allowed hash algorithms and services, the flags (y: testing, s: no
subdomains in signatures), and the size of the key. Exits with status 1 if there is no
record or it cannot be used to verify signatures.

${RESOLVER_NOTE}`,
    async run(ctx) {
      const [selector, domain] = ctx.args as [string, string];
      let name: string;
      try {
        name = parseDNSName(`${selector}._domainkey.${domain}`).ascii;
      } catch (e) {
        if (e instanceof DomainError) throw new UsageError(e.message);
        throw e;
      }
      const { resolver } = lookupEnv(ctx);
      let txts: string[];
      let authentic: boolean;
      try {
        ({ records: txts, authentic } = await resolver.lookupTXT(name));
      } catch (e) {
        throw notFoundError(e, `no DKIM key record at ${name}`);
      }
      if (txts.length === 0) throw new Error(`no DKIM key record at ${name}`);
      let ok = txts.length === 1;
      for (const [i, txt] of txts.entries()) {
        if (i > 0) out('');
        out(`name: ${name}`);
        out(`record: ${printable(txt)}`);
        try {
          const rec = parseKeyRecord(txt);
          out(`key type: ${rec.keyType}`);
          out(`hashes: ${rec.hashes ? rec.hashes.join(', ') : 'any'}`);
          out(`services: ${rec.services.join(', ')}`);
          out(`flags: ${rec.flags.length ? rec.flags.join(', ') : 'none'}${rec.flags.includes('y') ? ' (testing)' : ''}`);
          if (rec.data.length === 0) {
            // RFC 6376 3.6.1: an empty p= means the key was revoked.
            out('public key: revoked (empty p=)');
            ok = false;
          } else {
            try {
              const key = recordPublicKey(rec);
              const bits = key.asymmetricKeyDetails?.modulusLength;
              out(`public key: ${key.asymmetricKeyType}${bits ? `, ${bits} bits` : ''}`);
            } catch (e) {
              out(`public key: unusable: ${(e as Error).message}`);
              ok = false;
            }
          }
        } catch (e) {
          out(`error: ${(e as Error).message}`);
          ok = false;
        }
      }
      out(dnssec(authentic));
      // RFC 6376 3.6.2.2: more than one record at a name makes verification results undefined.
      if (txts.length > 1) process.stderr.write(`postern: ${txts.length} records at ${name}; verifiers will refuse the key\n`);
      return ok ? 0 : 1;
    },
  },
  {
    name: 'dkim sign',
    args: 'message',
    nargs: [1, 1],
    help: `Signs a message file with the DKIM keys configured for its From domain.

The domain of the message's From address must be configured in domains.conf with DKIM
selectors listed under Sign; each of them adds a DKIM-Signature field with the selector's
canonicalization, header fields, oversigning and expiration. Prints the message with the
new fields at the top. A message file of "-" is read from standard input.`,
    async run(ctx) {
      const config = Config.load(ctx.configFile);
      const msg = await readInput(ctx.args[0]!);
      const from = fromDomains(parseHeader(msg));
      if (from.errors.length > 0 || from.domains.length !== 1) {
        throw new Error(`message needs a From address with one domain: ${from.errors.join('; ') || `${from.domains.length} domains`}`);
      }
      const ascii = from.domains[0]!;
      const domain = normalizeDomain(ascii) ?? ascii;
      const dc: DomainConfig | undefined = config.domains.Domains[domain];
      if (!dc) throw new Error(`From domain ${domain} is not configured in domains.conf`);
      if (dc.DKIM.Sign.length === 0) throw new Error(`domain ${domain} has no DKIM selectors to sign with (DKIM.Sign in domains.conf)`);
      const options: SignOptions[] = dc.DKIM.Sign.map((selector) => {
        const s = dc.DKIM.Selectors[selector]!;
        let privateKey: Buffer;
        try {
          privateKey = fs.readFileSync(config.resolve(s.PrivateKeyFile));
        } catch (e) {
          throw new Error(`reading key of selector ${selector}: ${(e as Error).message}`);
        }
        return {
          domain: ascii,
          selector,
          privateKey,
          headerCanon: s.HeaderCanon,
          bodyCanon: s.BodyCanon,
          headers: s.Headers.length ? s.Headers : undefined,
          oversign: !s.NoOversign,
          expiration: s.ExpirationSeconds,
        };
      });
      let fields = await sign(msg, options);
      // Keep the file's line ends: a message with bare LF gets the new fields with LF too.
      const eol = msg.indexOf('\n');
      if (eol >= 0 && msg[eol - 1] !== 0x0d) fields = fields.replace(/\r\n/g, '\n');
      process.stdout.write(Buffer.concat([Buffer.from(fields, 'latin1'), msg]));
    },
  },
  {
    name: 'dkim verify',
    args: 'message',
    nargs: [1, 1],
    help: `Verifies the DKIM signatures of a message file and prints one line per signature.

Each line has the result (pass, fail, neutral, policy, temperror, permerror, or none for
a failure under a testing key), then the signing domain, selector, algorithm and, for
anything but a plain pass, the reason. The exit status is 0 whatever the results; it is
non-zero only when the command could not run, e.g. the file cannot be read. A message
file of "-" is read from standard input.

${RESOLVER_NOTE}`,
    async run(ctx) {
      const msg = await readInput(ctx.args[0]!);
      const { resolver } = lookupEnv(ctx);
      const results = await dkimVerify(msg, resolver);
      if (results.length === 0) out('no DKIM signatures');
      for (const r of results) out(dkimLine(r));
    },
  },
  {
    name: 'spf check',
    args: 'domain ip',
    nargs: [2, 2],
    help: `Evaluates the SPF policy of a domain for a sending IP address.

Runs check_host() of RFC 7208 as for a message from that IP with MAIL FROM
postmaster@<domain> and the domain as HELO name. Prints the result (pass, fail, softfail,
neutral, none, temperror or permerror), the mechanism that matched, the explanation the
domain gives for a fail, and why the result was reached.

${RESOLVER_NOTE}`,
    async run(ctx) {
      const domain = domainArg(ctx.args[0]!);
      const ip = ipArg(ctx.args[1]!);
      const { resolver, hostname } = lookupEnv(ctx);
      const r = await checkHost({ ip, domain, sender: `postmaster@${domain}`, helo: domain, receivingHost: hostname }, resolver);
      out(`result: ${r.result}`);
      if (r.mechanism) out(`mechanism: ${r.mechanism}`);
      if (r.explanation) out(`explanation: ${printable(r.explanation)}`);
      if (r.reason) out(`reason: ${printable(r.reason)}`);
      out(`dns lookups: ${r.lookups}`);
      out(dnssec(r.authentic));
    },
  },
  {
    name: 'spf parse',
    args: 'txt',
    nargs: [1, -1],
    help: `Checks the syntax of an SPF record and prints it in normalized form.

Give the record as one argument, quoted for the shell, e.g.
  postern spf parse "v=spf1 mx ip4:192.0.2.0/24 -all"
(several arguments are joined with spaces, but "-all" would be taken for a flag unless
"--" comes first). The normalized form has lower-case mechanism names, no "+" qualifiers
and single spaces. On a syntax error, the error is printed and the exit status is 1: a
receiver would give a permerror for such a record (RFC 7208 4.6).`,
    run(ctx) {
      const txt = ctx.args.join(' ');
      try {
        out(formatSPF(parseSPF(txt)));
      } catch (e) {
        if (!(e instanceof SPFSyntaxError)) throw e;
        process.stderr.write(`postern: invalid SPF record: ${e.message}\n`);
        return 1;
      }
      return 0;
    },
  },
  {
    name: 'spf lookup',
    args: 'domain',
    nargs: [1, 1],
    help: `Prints the SPF record of a domain.

Looks up the domain's TXT records and prints those starting with "v=spf1". Exits with
status 1 if there is none. Problems receivers would refuse the policy for, several SPF
records or a syntax error, are reported on standard error.

${RESOLVER_NOTE}`,
    async run(ctx) {
      const domain = domainArg(ctx.args[0]!);
      const { resolver } = lookupEnv(ctx);
      let txts: string[];
      try {
        txts = (await resolver.lookupTXT(domain)).records;
      } catch (e) {
        throw notFoundError(e, `no SPF record for ${domain}`);
      }
      // RFC 7208 4.5: only records that begin with the version section count.
      const records = txts.filter(isSPFRecord);
      if (records.length === 0) throw new Error(`no SPF record for ${domain}`);
      for (const r of records) out(printable(r));
      if (records.length > 1) process.stderr.write(`postern: warning: ${records.length} SPF records; receivers give a permerror (RFC 7208 4.5)\n`);
      for (const r of records) {
        try {
          parseSPF(r);
        } catch (e) {
          if (!(e instanceof SPFSyntaxError)) throw e;
          process.stderr.write(`postern: warning: syntax error: ${e.message}\n`);
        }
      }
    },
  },
  {
    name: 'dmarc lookup',
    args: 'domain',
    nargs: [1, 1],
    help: `Finds the DMARC policy for a From domain and prints it with where it was found.

As receivers do (RFC 7489 6.6.3), the record is looked up at _dmarc.<domain>, and when the
domain has none, at _dmarc.<organizational domain>: the registered domain under its public
suffix, e.g. example.co.uk for mail.example.co.uk. Prints the record as published, in
normalized form with the values that apply, and warnings about ignored parts. Exits with
status 1 when no usable record is found.

${RESOLVER_NOTE}`,
    async run(ctx) {
      const domain = domainArg(ctx.args[0]!);
      const { resolver } = lookupEnv(ctx);
      const r = await lookupRecord(domain, resolver);
      if (r.status === 'none') throw new Error(`no DMARC record for ${domain}${r.domain !== domain ? ` or its organizational domain ${r.domain}` : ''}${r.reason && r.reason !== 'no DMARC record' ? `: ${r.reason}` : ''}`);
      if (r.status === 'temperror') throw new Error(`DMARC lookup for ${domain} failed: ${r.reason}`);
      out(`domain: ${domain}`);
      out(`found at: _dmarc.${r.domain}${r.domain === domain ? '' : ' (organizational domain)'}`);
      if (r.txt !== undefined) out(`record: ${printable(r.txt)}`);
      if (r.status === 'permerror') {
        process.stderr.write(`postern: ${r.reason}\n`);
        return 1;
      }
      const rec = r.record!;
      out(`normalized: ${formatRecord(rec)}`);
      out(`policy: ${rec.policy}, subdomains ${rec.subdomainPolicy ?? rec.policy}, ${rec.pct}%`);
      out(`alignment: dkim ${rec.adkim === 's' ? 'strict' : 'relaxed'}, spf ${rec.aspf === 's' ? 'strict' : 'relaxed'}`);
      for (const w of r.warnings) out(`warning: ${w}`);
      out(dnssec(r.authentic));
      return 0;
    },
  },
  {
    name: 'dmarc verify',
    args: 'remoteip mailfrom helodomain <message',
    nargs: [3, 3],
    help: `Evaluates SPF, DKIM and DMARC for a message as Postern does when receiving it.

The message is read from standard input. SPF is checked for the SMTP client at remoteip
with the given MAIL FROM address (use "" or "<>" for the null reverse-path) and HELO name,
the DKIM signatures of the message are verified, and DMARC combines the two for the
message's From domain. Prints each result, then the Authentication-Results and
Received-SPF header fields Postern would add to the message. The Hostname of postern.conf
is the authserv-id.

${RESOLVER_NOTE}`,
    async run(ctx) {
      const ip = ipArg(ctx.args[0]!);
      let mailFrom = ctx.args[1]!;
      if (mailFrom.startsWith('<') && mailFrom.endsWith('>')) mailFrom = mailFrom.slice(1, -1);
      const helo = ctx.args[2]!;
      const msg = await readStdin();
      if (msg.length === 0) throw new UsageError('no message on standard input');
      const { resolver, hostname } = lookupEnv(ctx);
      const [spf, dkim, rev] = await Promise.all([spfVerify({ ip, mailFrom, helo, receivingHost: hostname }, resolver), dkimVerify(msg, resolver), iprev(resolver, ip)]);
      // RFC 7489 4.1: SPF counts for DMARC with the MAIL FROM domain, or the HELO domain for the
      // null reverse-path; a failed HELO check leaves MAIL FROM unchecked.
      const spfForDMARC = spf.identity === 'mailfrom' || mailFrom === '' ? spf.result : undefined;
      const dmarc = await dmarcVerify({ from: parseHeader(msg), spf: spfForDMARC, dkim }, resolver);

      const s = spf.result;
      const spfParts = [s.result, `identity=${spf.identity}`, `domain=${q(s.domain)}`];
      if (s.mechanism) spfParts.push(`mechanism=${q(s.mechanism)}`);
      if (s.reason) spfParts.push(`reason=${JSON.stringify(s.reason)}`);
      out(`spf: ${spfParts.join(' ')}`);
      if (dkim.length === 0) out('dkim: none (no signatures)');
      for (const r of dkim) out(`dkim: ${dkimLine(r)}`);
      out(`dmarc: ${dmarcLine(dmarc)}`);
      out(`iprev: ${rev.result}${rev.name ? ` name=${rev.name}` : ''}`);
      out('');
      const headers =
        authenticationResults({ authservID: hostname, spf: { result: s, identity: spf.identity }, dkim, dmarc, iprev: rev }) +
        receivedSPF({ result: s, identity: spf.identity, sender: spf.sender, clientIP: ip, helo, receiver: hostname }) +
        '\r\n';
      process.stdout.write(headers.replace(/\r\n/g, '\n'));
    },
  },
  {
    name: 'dmarc checkreportaddrs',
    args: 'domain',
    nargs: [1, 1],
    help: `Checks that the report destinations in a domain's DMARC record accept its reports.

A destination outside the policy's organizational domain receives reports only if it
agreed to, with a TXT record "v=DMARC1" at <policy domain>._report._dmarc.<destination
domain> (RFC 7489 7.1); otherwise receivers, Postern among them, send it nothing. Prints,
for each rua (aggregate) and ruf (failure) address, whether it is internal, authorized,
unauthorized, could not be checked (temperror), or is not a mailto address. Exits with
status 1 if any destination would not get reports.

${RESOLVER_NOTE}`,
    async run(ctx) {
      const domain = domainArg(ctx.args[0]!);
      const { resolver } = lookupEnv(ctx);
      const r = await lookupRecord(domain, resolver);
      if (r.status !== 'found') throw new Error(r.status === 'none' ? `no DMARC record for ${domain}` : `DMARC record for ${domain}: ${r.reason}`);
      const rec = r.record!;
      out(`record at _dmarc.${r.domain}: ${printable(r.txt ?? '')}`);
      if (rec.rua.length + rec.ruf.length === 0) {
        out('no report destinations (rua, ruf)');
        return 0;
      }
      const checks = await checkReportAddresses(r.domain, rec, resolver);
      let ok = true;
      for (const [i, c] of checks.entries()) {
        const tag = i < rec.rua.length ? 'rua' : 'ruf';
        let line = `${tag} ${c.uri.uri}: ${c.status}`;
        if (c.status === 'authorized') line += ` by ${c.name}${c.authentic ? '' : ' (not DNSSEC-authentic)'}`;
        if (c.override?.length) line += `; reports go to ${c.override.map((u) => u.uri).join(', ')} instead`;
        if (c.reason) line += ` (${c.reason})`;
        out(line);
        if (c.status !== 'internal' && c.status !== 'authorized') ok = false;
      }
      return ok ? 0 : 1;
    },
  },
  {
    name: 'dmarc parsereportmsg',
    args: 'message ...',
    nargs: [1, -1],
    help: `Parses DMARC aggregate reports from message files and prints them as JSON.

Each file is an email message with a report as sent to rua addresses (RFC 7489 7.2): the
XML report as the body or as an attachment, plain, gzip or zip compressed. One JSON
document is printed per file. A file that holds no readable report is reported on
standard error and makes the exit status 1; the other files are still printed.`,
    async run(ctx) {
      let code = 0;
      for (const file of ctx.args) {
        try {
          out(JSON.stringify(parseMessageReport(await readInput(file)), null, 2));
        } catch (e) {
          process.stderr.write(`postern: ${file}: ${(e as Error).message}\n`);
          code = 1;
        }
      }
      return code;
    },
  },
  {
    name: 'dns lookup',
    args: 'type name',
    nargs: [2, 2],
    help: `Looks up DNS records and prints them, and whether the answer was DNSSEC-authentic.

Types:
  a, aaaa   IPv4 or IPv6 addresses
  ips       both IPv4 and IPv6 addresses
  mx        mail exchangers as "preference host", lowest first
  cname     the name's canonical name
  ns        name servers
  txt       text records, the strings of each record joined
  srv       "priority weight port target", e.g. for _submissions._tcp.<domain>
  tlsa      "usage selector matching-type data" (DANE), e.g. for _25._tcp.<mx host>
  ptr       the names of an IP address: give the address as name
Exits with status 1 when the name or records of the type do not exist.

${RESOLVER_NOTE}

${DNSSEC_NOTE}`,
    async run(ctx) {
      const type = ctx.args[0]!.toLowerCase() as DNSType;
      if (!DNS_TYPES.includes(type)) throw new UsageError(`unknown type ${JSON.stringify(ctx.args[0])}; one of ${DNS_TYPES.join(', ')}`);
      const { resolver } = lookupEnv(ctx);
      const r = await dnsLookup(resolver, type, ctx.args[1]!);
      for (const l of r.lines) out(l);
      out(dnssec(r.authentic));
    },
  },
];
