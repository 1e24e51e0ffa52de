// TLS reports as mail (RFC 8460 5.3): composing the report message, and finding the report in
// one received.

import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { formatDate, foldHeader } from '../smtp/received.js';
import { allParts, parseMessage } from '../message/part.js';
import { decodedBody } from '../message/decode.js';
import { getParam } from '../message/params.js';
import { parseReport, reportJSON, ReportError, type ParseOptions, type Report } from './report.js';

export interface ReportMessage {
  from: string;
  to: string;
  date?: Date;
  /** Domain of the reporting organization or MTA (TLS-Report-Submitter). */
  submitter: string;
  /** The domain the report is about (TLS-Report-Domain). Default: the first policy's domain. */
  policyDomain?: string;
  report: Report;
  /** Default: a random id at the submitter's domain. */
  messageId?: string;
  /** Send application/tlsrpt+gzip rather than application/tlsrpt+json. Default true. */
  gzip?: boolean;
}

/** Header field text from values that may come from elsewhere: no line breaks or controls. */
const clean = (s: string) => s.replace(/[\x00-\x1f\x7f]+/g, ' ');

/** The report message, CRLF line endings, ready for DKIM signing and delivery. */
export function composeReportMessage(m: ReportMessage): Buffer {
  const policyDomain = clean(m.policyDomain ?? m.report.policies[0]?.policyDomain ?? '');
  if (policyDomain === '') throw new Error('report message needs a policy domain');
  const submitter = clean(m.submitter);
  const gzip = m.gzip ?? true;
  const json = Buffer.from(reportJSON(m.report));
  const body = gzip ? gzipSync(json) : json;
  const boundary = `tlsrpt-${randomBytes(12).toString('hex')}`;
  const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
  // RFC 8460 5.1: sender!policy-domain!begin!end[!unique-id].extension
  const filename = `${submitter}!${policyDomain}!${seconds(m.report.start)}!${seconds(m.report.end)}.${gzip ? 'json.gz' : 'json'}`;
  const reportId = clean(m.report.reportId);

  const head = [
    `From: ${clean(m.from)}\r\n`,
    `To: ${clean(m.to)}\r\n`,
    `Date: ${formatDate(m.date ?? new Date())}\r\n`,
    // RFC 8460 5.3: the subject names the domain, the submitter and the report id.
    foldHeader('Subject', ['Report', 'Domain:', policyDomain, 'Submitter:', submitter, 'Report-ID:', `<${reportId}>`]),
    `Message-ID: <${clean(m.messageId ?? `${randomBytes(16).toString('hex')}@${submitter}`)}>\r\n`,
    `TLS-Report-Domain: ${policyDomain}\r\n`,
    `TLS-Report-Submitter: ${submitter}\r\n`,
    // RFC 8460 5.3: reports go out despite TLS failures; the TLS-Required field (RFC 8689)
    // tells the delivery so.
    'TLS-Required: No\r\n',
    'MIME-Version: 1.0\r\n',
    `Content-Type: multipart/report; report-type="tlsrpt";\r\n\tboundary="${boundary}"\r\n`,
    '\r\n',
  ].join('');
  const text =
    `This is an aggregate TLS report from ${submitter} about ${policyDomain},\r\n` +
    `for ${m.report.start.toISOString()} to ${m.report.end.toISOString()}.\r\n`;
  const base64 = body.toString('base64').replace(/.{1,76}/g, '$&\r\n');
  const parts = [
    'This is a multipart message in MIME format.\r\n',
    `\r\n--${boundary}\r\n`,
    'Content-Type: text/plain; charset="us-ascii"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n',
    text,
    `\r\n--${boundary}\r\n`,
    `Content-Type: application/tlsrpt+${gzip ? 'gzip' : 'json'}\r\n`,
    'Content-Transfer-Encoding: base64\r\n',
    `Content-Disposition: attachment;\r\n\tfilename="${filename.replace(/["\\]/g, '')}"\r\n\r\n`,
    base64,
    `\r\n--${boundary}--\r\n`,
  ];
  return Buffer.from(head + parts.join(''), 'utf8');
}

/**
 * The report in a received report message: the first application/tlsrpt+gzip or
 * application/tlsrpt+json part, or failing that a part whose file name ends in .json or .json.gz.
 */
export function reportFromMessage(msg: Buffer, opts: ParseOptions = {}): Report {
  const parts = allParts(parseMessage(msg)).filter((p) => !p.parts);
  const named = (p: (typeof parts)[number]) => getParam(p.dispositionParams, 'filename') ?? getParam(p.params, 'name') ?? '';
  const part =
    parts.find((p) => p.type === 'application' && (p.subtype === 'tlsrpt+gzip' || p.subtype === 'tlsrpt+json')) ??
    parts.find((p) => /\.json(\.gz)?$/i.test(named(p)));
  if (!part) throw new ReportError('no TLS report in the message');
  return parseReport(decodedBody(msg, part), opts);
}
