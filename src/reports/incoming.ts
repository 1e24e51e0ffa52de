// What incoming mail contributes to reporting: the DMARC evaluation of each message, kept for
// the aggregate report to the sender domain (RFC 7489 7.2), and reports about our own domains
// arriving at the configured DMARC and TLS report addresses, verified, parsed and kept.
import { domainToASCII } from 'node:url';
import type { App } from '../server/app.js';
import type { Analysis } from '../smtpserver/analyze.js';
import type { Evaluation } from '../dmarcrpt/report.js';
import { parseMessageReport } from '../dmarcrpt/message.js';
import { reportFromMessage } from '../tlsrpt/message.js';
import { fromAddresses } from '../smtpserver/rules.js';
import { splitAddress, normalizeDomain } from '../config/domains.js';
import { ReportStore } from './store.js';
import { Log } from '../log/log.js';

const log = Log.pkg('reports');
const HOUR = 3600_000;

const stores = new WeakMap<App, ReportStore>();

/** The report database of a running server, opened at first use. */
export function reportStore(app: App): ReportStore {
  let s = stores.get(app);
  if (!s) stores.set(app, (s = new ReportStore(app.config.dataDir)));
  return s;
}

export function closeReportStore(app: App): void {
  stores.get(app)?.close();
  stores.delete(app);
}

/** Hours per outgoing report: the configured value rounded down to a divisor of 24, so intervals tile UTC days. */
export function intervalHours(configured: number): number {
  let h = Math.min(Math.max(Math.floor(configured), 1), 24);
  while (24 % h !== 0) h--;
  return h;
}

/** Start of the report interval containing a time. */
export function intervalStart(now: number, hours: number): number {
  return now - (now % (hours * HOUR));
}

const ascii = (d: string) => (domainToASCII(d.toLowerCase()) || d).toLowerCase();

export interface IncomingInput {
  remoteIP: string;
  /** MAIL FROM address, '' for the null reverse-path. */
  mailFrom: string;
  /** Recipient addresses. */
  recipients: string[];
  msg: Buffer;
  analysis: Analysis;
}

type ReportKind = 'DMARC' | 'TLSRPT';

/** The report address kind and our domain of a recipient, if it is a configured report address. */
function reportAddress(app: App, rcpt: string): { kind: ReportKind; domain: string } | undefined {
  const at = splitAddress(rcpt);
  const domain = at && normalizeDomain(at.domain);
  const d = domain ? app.config.domains.Domains[domain] : undefined;
  if (!at || !domain || !d) return undefined;
  const lp = app.config.addresses.normalizeLocalpart(at.localpart, domain, true);
  for (const kind of ['DMARC', 'TLSRPT'] as const) {
    const r = d[kind];
    if (r && app.config.addresses.normalizeLocalpart(r.Localpart, domain, false) === lp) return { kind, domain };
  }
  return undefined;
}

/** Whether a report names one of our domains, or a subdomain of the one it was sent to. */
function aboutUs(app: App, reportDomain: string, addressDomain: string): boolean {
  const r = ascii(reportDomain.replace(/\.$/, ''));
  const a = ascii(addressDomain);
  if (r === a || r.endsWith(`.${a}`)) return true;
  return Object.keys(app.config.domains.Domains).some((d) => ascii(d) === r);
}

/**
 * Records what an accepted or refused incoming message means for reporting. Called once per
 * message after its authentication was analyzed; never throws.
 */
export function recordIncoming(app: App, i: IncomingInput): void {
  if (app.localserve) return;
  try {
    const targets = i.recipients.map((r) => reportAddress(app, r)).filter((t) => t !== undefined);
    if (targets.length === 0) recordEvaluation(app, i);
    const now = app.clock.now();
    const sender = fromAddresses(i.analysis.header)[0] ?? '';
    for (const kind of new Set(targets.map((t) => t.kind))) {
      const domains = targets.filter((t) => t.kind === kind).map((t) => t.domain);
      if (kind === 'DMARC') storeDMARCReport(app, i, domains, sender, now);
      else storeTLSReport(app, i, domains, sender, now);
    }
  } catch (e) {
    log.error('recording incoming message for reports', e as Error);
  }
}

function recordEvaluation(app: App, i: IncomingInput): void {
  const d = i.analysis.dmarc;
  // Only senders that ask for aggregate reports get them; reports are about a record's domain.
  if (app.config.static_.NoOutgoingDMARCReports || !d.record || !d.recordDomain || d.record.rua.length === 0) return;
  if (d.status === 'none' || d.status === 'temperror' || d.status === 'permerror') return;
  const spf = i.analysis.spf;
  const mailFromDomain = i.mailFrom ? (splitAddress(i.mailFrom)?.domain ?? '') : '';
  const ev: Evaluation = {
    sourceIP: i.remoteIP,
    dmarc: d,
    envelopeTo: i.recipients[0] ? ascii(splitAddress(i.recipients[0])?.domain ?? '') : undefined,
    envelopeFrom: ascii(mailFromDomain),
    // RFC 7489 appendix C: the SPF results with the scope each was checked for.
    spf: [
      ...(spf.helo ? [{ domain: spf.helo.domain, scope: 'helo' as const, result: spf.helo.result }] : []),
      ...(spf.mailFrom ? [{ domain: spf.mailFrom.domain, scope: 'mfrom' as const, result: spf.mailFrom.result }] : []),
    ],
    dkim: i.analysis.dkim.filter((k) => k.domain).map((k) => ({ domain: k.domain, ...(k.selector ? { selector: k.selector } : {}), result: k.status })),
  };
  const now = app.clock.now();
  reportStore(app).addEvaluation(d.recordDomain, intervalStart(now, intervalHours(app.config.static_.OutgoingDMARCReportIntervalHours)), now, d.record, ev);
}

function storeDMARCReport(app: App, i: IncomingInput, domains: string[], sender: string, now: number): void {
  // Anyone can send mail to the address: only reports whose sender passes DMARC are believed.
  if (i.analysis.dmarc.status !== 'pass') {
    log.info('dmarc report not stored: sender does not pass dmarc', { from: sender, dmarc: i.analysis.dmarc.status });
    return;
  }
  let f;
  try {
    f = parseMessageReport(i.msg);
  } catch (e) {
    log.info('dmarc report not stored: unreadable', { from: sender, err: e as Error });
    return;
  }
  const domain = f.policyPublished.domain;
  if (!domains.some((d) => aboutUs(app, domain, d))) {
    log.info('dmarc report not stored: about another domain', { from: sender, domain });
    return;
  }
  const added = reportStore(app).addDMARCReport(now, ascii(domain), sender, f);
  log.info('dmarc report stored', { from: sender, domain, org: f.reportMetadata.orgName, reportid: f.reportMetadata.reportID, duplicate: !added });
}

function storeTLSReport(app: App, i: IncomingInput, domains: string[], sender: string, now: number): void {
  // RFC 8460 5.3: reports are DKIM-signed by the reporting domain; the From domain may be a subdomain of it.
  const fromDomain = ascii(splitAddress(sender)?.domain ?? '');
  const signed = i.analysis.dkim.some((k) => k.status === 'pass' && (fromDomain === k.domain || fromDomain.endsWith(`.${k.domain}`)));
  if (!signed) {
    log.info('tls report not stored: no valid DKIM signature of the sender domain', { from: sender });
    return;
  }
  let r;
  try {
    r = reportFromMessage(i.msg);
  } catch (e) {
    log.info('tls report not stored: unreadable', { from: sender, err: e as Error });
    return;
  }
  const ours = [...new Set(r.policies.map((p) => p.policyDomain).filter((p) => domains.some((d) => aboutUs(app, p, d))))];
  if (ours.length === 0) {
    log.info('tls report not stored: about another domain', { from: sender, domains: r.policies.map((p) => p.policyDomain) });
    return;
  }
  const added = reportStore(app).addTLSReport(now, ours.map(ascii), sender, r);
  log.info('tls report stored', { from: sender, domains: ours, org: r.organizationName, reportid: r.reportId, duplicate: !added });
}
