// Outgoing DMARC aggregate reports (RFC 7489 7.2): at the end of each report interval, the
// evaluations kept per sender policy domain become one report for each of its rua addresses,
// gzipped XML in a message from postmaster@<hostname>, DKIM-signed and queued.
import fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { App } from '../server/app.js';
import { AdjustableClock } from '../limits/limiter.js';
import { buildReport, policyPublished, reportRecords, type Feedback } from '../dmarcrpt/report.js';
import { checkReportAddress, mailtoAddress } from '../dmarc/reportaddr.js';
import type { ReportURI } from '../dmarc/record.js';
import { formatDate, foldHeader } from '../smtp/received.js';
import { intervalHours, intervalStart, reportStore } from './incoming.js';
import { dkimSignatures } from './dkimsign.js';
import { Log } from '../log/log.js';

const log = Log.pkg('reports');
const HOUR = 3600_000;
const DAY = 24 * HOUR;

export interface ReportMessage {
  from: string;
  to: string;
  submitter: string;
  policyDomain: string;
  feedback: Feedback;
  date: Date;
}

/** The report message (RFC 7489 7.2.1.1), CRLF line endings, with the report as gzip attachment. */
export function composeDMARCReportMessage(m: ReportMessage): Buffer {
  const f = m.feedback;
  const gz = gzipSync(buildReport(f));
  const boundary = `dmarc-${randomBytes(12).toString('hex')}`;
  // RFC 7489 7.2.1.1: filename = receiver "!" policy-domain "!" begin-timestamp "!" end-timestamp "." extension
  const filename = `${m.submitter}!${m.policyDomain}!${f.reportMetadata.dateRange.begin}!${f.reportMetadata.dateRange.end}.xml.gz`;
  const head = [
    `From: ${m.from}\r\n`,
    `To: ${m.to}\r\n`,
    `Date: ${formatDate(m.date)}\r\n`,
    // RFC 7489 7.2.1.1: the subject names the policy domain, the submitter and the report id.
    foldHeader('Subject', ['Report', 'Domain:', m.policyDomain, 'Submitter:', m.submitter, 'Report-ID:', `<${f.reportMetadata.reportID}>`]),
    `Message-ID: <${randomBytes(16).toString('hex')}@${m.submitter}>\r\n`,
    'MIME-Version: 1.0\r\n',
    `Content-Type: multipart/mixed; boundary="${boundary}"\r\n`,
    '\r\n',
  ].join('');
  const begin = new Date(f.reportMetadata.dateRange.begin * 1000).toISOString();
  const end = new Date((f.reportMetadata.dateRange.end + 1) * 1000).toISOString();
  const body = [
    'This is a multipart message in MIME format.\r\n',
    `\r\n--${boundary}\r\n`,
    'Content-Type: text/plain; charset="us-ascii"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n',
    `This is an aggregate DMARC report from ${m.submitter} about messages with a From\r\naddress in ${m.policyDomain}, received from ${begin} to ${end}.\r\n`,
    `\r\n--${boundary}\r\n`,
    'Content-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n',
    `Content-Disposition: attachment;\r\n\tfilename="${filename}"\r\n\r\n`,
    gz.toString('base64').replace(/.{1,76}/g, '$&\r\n'),
    `\r\n--${boundary}--\r\n`,
  ];
  return Buffer.from(head + body.join(''));
}

/** Sends the aggregate reports of intervals that have ended; returns the number of messages queued. */
export async function sendDMARCReports(app: App): Promise<number> {
  const store = reportStore(app);
  const now = app.clock.now();
  const hours = intervalHours(app.config.static_.OutgoingDMARCReportIntervalHours);
  const hostname = app.config.static_.Hostname;
  const from = `postmaster@${hostname}`;
  let queued = 0;
  for (const { policyDomain, interval } of store.dueIntervals(intervalStart(now, hours))) {
    const evals = store.intervalEvaluations(policyDomain, interval);
    if (evals.length === 0) continue;
    // The record as seen with the last message says where reports go and what was published.
    const record = evals[evals.length - 1]!.record;
    const end = interval + hours * HOUR;
    const feedback: Feedback = {
      version: '1.0',
      reportMetadata: {
        orgName: hostname,
        email: from,
        reportID: `${new Date(interval).toISOString().slice(0, 13).replace('T', '.')}.${policyDomain}`,
        dateRange: { begin: interval / 1000, end: end / 1000 - 1 },
        errors: [],
      },
      policyPublished: policyPublished(policyDomain, record),
      records: reportRecords(evals.map((e) => e.evaluation)),
    };
    let retry = false;
    const destinations: { address: string; uri: ReportURI }[] = [];
    for (const uri of record.rua) {
      const c = await checkReportAddress(policyDomain, uri, app.resolver);
      if (c.status === 'temperror') retry = true;
      if (c.status !== 'internal' && c.status !== 'authorized') {
        log.info('not sending dmarc report to address', { policydomain: policyDomain, uri: uri.uri, status: c.status, reason: c.reason });
        continue;
      }
      for (const u of c.override ?? [uri]) {
        const address = c.override ? mailtoAddress(u.uri)?.address : c.address;
        if (address && !destinations.some((d) => d.address === address)) destinations.push({ address, uri: u });
      }
    }
    // Temporary DNS trouble: try again at the next run, for up to three days.
    if (retry && destinations.length === 0 && now - end < 3 * DAY) continue;
    store.removeEvaluations(policyDomain, interval);
    for (const d of destinations) {
      const msg = composeDMARCReportMessage({ from, to: d.address, submitter: hostname, policyDomain, feedback, date: new Date(now) });
      // RFC 7489 6.2: a size limit of the destination ("!10m") is respected by not sending.
      if (d.uri.maxBytes !== undefined && msg.length > d.uri.maxBytes) {
        log.info('dmarc report larger than destination allows, not sent', { policydomain: policyDomain, to: d.address, size: msg.length, max: d.uri.maxBytes });
        continue;
      }
      const signatures = await dkimSignatures(app.config, hostname, msg, new Date(now));
      const file = await app.store.writeTemp(msg);
      try {
        const at = d.address.lastIndexOf('@');
        // The null sender: an undeliverable report causes no bounce (RFC 7489 7.2.1.1 leaves it open).
        app.queue.enqueue(file, {
          account: app.config.static_.Postmaster.Account,
          sender: '',
          recipients: [{ address: d.address, domain: d.address.slice(at + 1).toLowerCase() }],
          prefix: Buffer.from(signatures),
          requireTLS: false,
          nextAttempt: now,
          subject: `DMARC report for ${policyDomain}`,
        });
        queued++;
        log.info('dmarc report queued', { policydomain: policyDomain, to: d.address, records: feedback.records.length, messages: evals.length });
      } finally {
        await fsp.rm(file.path, { force: true });
      }
    }
  }
  return queued;
}

/** Runs sendDMARCReports at each interval boundary (and when a test clock is moved). */
export class DMARCReporter {
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = false;

  constructor(private readonly app: App) {}

  start(): void {
    if (this.app.localserve || this.app.config.static_.NoOutgoingDMARCReports) return;
    if (this.app.clock instanceof AdjustableClock) this.app.clock.onAdvance(() => void this.run());
    this.schedule();
    void this.run();
  }

  private schedule(): void {
    if (this.stopped) return;
    const now = this.app.clock.now();
    const hours = intervalHours(this.app.config.static_.OutgoingDMARCReportIntervalHours);
    // A few minutes after the boundary, so messages in transit at the boundary are counted.
    const next = intervalStart(now, hours) + hours * HOUR + 5 * 60_000;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), Math.min(next - now, HOUR));
    this.timer.unref();
  }

  async run(): Promise<number> {
    if (this.running || this.stopped) return 0;
    this.running = true;
    try {
      return await sendDMARCReports(this.app);
    } catch (e) {
      log.error('sending dmarc reports', e as Error);
      return 0;
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
