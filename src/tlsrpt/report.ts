// SMTP TLS reports (RFC 8460 4): building them from delivery results, writing and reading the
// JSON, plain or gzipped.

import { gunzipSync } from 'node:zlib';

/** Result types of RFC 8460 4.3, for failed sessions and for policies that could not be had. */
export const RESULT_TYPES = [
  // 4.3.1, negotiation failures
  'starttls-not-supported',
  'certificate-host-mismatch',
  'certificate-expired',
  'certificate-not-trusted',
  'validation-failure',
  // 4.3.2.1, DANE
  'tlsa-invalid',
  'dnssec-invalid',
  'dane-required',
  // 4.3.2.2, MTA-STS
  'sts-policy-fetch-error',
  'sts-policy-invalid',
  'sts-webpki-invalid',
] as const;
export type ResultType = (typeof RESULT_TYPES)[number];

export type PolicyType = 'sts' | 'tlsa' | 'no-policy-found';

export interface FailureDetail {
  /** One of RESULT_TYPES in reports Postern writes; others may appear in reports it reads. */
  resultType: ResultType | (string & {});
  sendingMTAIP?: string;
  receivingMXHostname?: string;
  receivingMXHelo?: string;
  receivingIP?: string;
  failedSessionCount: number;
  /** A URI with more information. */
  additionalInformation?: string;
  failureReasonCode?: string;
}

export interface PolicyResult {
  policyType: PolicyType;
  /** The policy as text: an MTA-STS policy's lines, or TLSA records in presentation form. */
  policyStrings?: string[];
  policyDomain: string;
  /** For MTA-STS, the policy's mx patterns; for DANE, the MX host. */
  mxHosts?: string[];
  successfulSessions: number;
  failedSessions: number;
  failures: FailureDetail[];
}

export interface Report {
  organizationName: string;
  start: Date;
  end: Date;
  /** Required by RFC 8460 4.4, but missing from some reports in the wild. */
  contactInfo?: string;
  reportId: string;
  policies: PolicyResult[];
}

export class ReportError extends Error {
  override name = 'ReportError';
}

/**
 * A report from results that may repeat a policy or a failure: results for the same policy are
 * added up, as are failure details that differ only in their count.
 */
export function buildReport(meta: Omit<Report, 'policies'>, results: PolicyResult[]): Report {
  const policies = new Map<string, PolicyResult>();
  for (const r of results) {
    const key = JSON.stringify([r.policyType, r.policyDomain, r.policyStrings ?? [], r.mxHosts ?? []]);
    const p = policies.get(key) ?? { ...r, successfulSessions: 0, failedSessions: 0, failures: [] };
    policies.set(key, p);
    p.successfulSessions += r.successfulSessions;
    p.failedSessions += r.failedSessions;
    for (const f of r.failures) {
      const same = p.failures.find((g) => sameFailure(f, g));
      if (same) same.failedSessionCount += f.failedSessionCount;
      else p.failures.push({ ...f });
    }
  }
  return { ...meta, policies: [...policies.values()] };
}

function sameFailure(a: FailureDetail, b: FailureDetail): boolean {
  return DETAIL_FIELDS.every(([key]) => a[key] === b[key]);
}

// Failure detail fields besides the count, with their JSON names (RFC 8460 4.4).
const DETAIL_FIELDS: [Exclude<keyof FailureDetail, 'failedSessionCount'>, string][] = [
  ['resultType', 'result-type'],
  ['sendingMTAIP', 'sending-mta-ip'],
  ['receivingMXHostname', 'receiving-mx-hostname'],
  ['receivingMXHelo', 'receiving-mx-helo'],
  ['receivingIP', 'receiving-ip'],
  ['additionalInformation', 'additional-information'],
  ['failureReasonCode', 'failure-reason-code'],
];

/** RFC 3339 date-time in UTC, without fractions when there are none. */
function dateTime(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

/** The report in the JSON format of RFC 8460 4.4. */
export function reportJSON(r: Report): string {
  return JSON.stringify({
    'organization-name': r.organizationName,
    'date-range': { 'start-datetime': dateTime(r.start), 'end-datetime': dateTime(r.end) },
    ...(r.contactInfo !== undefined && { 'contact-info': r.contactInfo }),
    'report-id': r.reportId,
    policies: r.policies.map((p) => ({
      policy: {
        'policy-type': p.policyType,
        ...(p.policyStrings?.length && { 'policy-string': p.policyStrings }),
        'policy-domain': p.policyDomain,
        // RFC 8460 errata 6241: a list, though the RFC's example shows a string.
        ...(p.mxHosts?.length && { 'mx-host': p.mxHosts }),
      },
      summary: { 'total-successful-session-count': p.successfulSessions, 'total-failure-session-count': p.failedSessions },
      ...(p.failures.length > 0 && {
        'failure-details': p.failures.map((f) => {
          const out: Record<string, string | number> = {};
          for (const [key, name] of DETAIL_FIELDS) if (f[key] !== undefined) out[name] = f[key]!;
          out['failed-session-count'] = f.failedSessionCount;
          return out;
        }),
      }),
    })),
  });
}

export interface ParseOptions {
  /** Largest report accepted, in bytes after decompression. Default 16 MiB. */
  maxSize?: number;
}

/**
 * Reads a report: JSON (application/tlsrpt+json) or gzipped JSON (application/tlsrpt+gzip),
 * told apart by the gzip magic number. Throws ReportError saying what is wrong and where.
 * Unknown fields are ignored.
 */
export function parseReport(input: Buffer | string, opts: ParseOptions = {}): Report {
  const max = opts.maxSize ?? 16 * 1024 * 1024;
  let data = typeof input === 'string' ? Buffer.from(input) : input;
  if (data[0] === 0x1f && data[1] === 0x8b) {
    try {
      data = gunzipSync(data, { maxOutputLength: max });
    } catch (err) {
      const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      throw new ReportError(tooLarge ? `report larger than ${max} bytes after decompression` : `bad gzip data: ${(err as Error).message}`);
    }
  }
  if (data.length > max) throw new ReportError(`report larger than ${max} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new ReportError(`invalid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  const root = object(json, 'report');
  const organizationName = string(root['organization-name'], 'organization-name');
  const range = object(root['date-range'], 'date-range');
  const report: Report = {
    organizationName,
    start: date(range['start-datetime'], 'date-range.start-datetime'),
    end: date(range['end-datetime'], 'date-range.end-datetime'),
    reportId: string(root['report-id'], 'report-id'),
    policies: array(root.policies, 'policies').map((p, i) => policyResult(p, `policies[${i}]`)),
  };
  if (root['contact-info'] !== undefined) report.contactInfo = string(root['contact-info'], 'contact-info');
  return report;
}

function policyResult(v: unknown, path: string): PolicyResult {
  const o = object(v, path);
  const policy = object(o.policy, `${path}.policy`);
  const summary = object(o.summary, `${path}.summary`);
  const type = string(policy['policy-type'], `${path}.policy.policy-type`);
  if (type !== 'sts' && type !== 'tlsa' && type !== 'no-policy-found') throw new ReportError(`${path}.policy.policy-type: unknown type ${JSON.stringify(type.slice(0, 50))}`);
  const result: PolicyResult = {
    policyType: type,
    policyDomain: string(policy['policy-domain'], `${path}.policy.policy-domain`),
    successfulSessions: count(summary['total-successful-session-count'], `${path}.summary.total-successful-session-count`),
    failedSessions: count(summary['total-failure-session-count'], `${path}.summary.total-failure-session-count`),
    failures: o['failure-details'] === undefined ? [] : array(o['failure-details'], `${path}.failure-details`).map((f, i) => failureDetail(f, `${path}.failure-details[${i}]`)),
  };
  const strings = stringList(policy['policy-string'], `${path}.policy.policy-string`);
  if (strings) result.policyStrings = strings;
  const mx = stringList(policy['mx-host'], `${path}.policy.mx-host`);
  if (mx) result.mxHosts = mx;
  return result;
}

function failureDetail(v: unknown, path: string): FailureDetail {
  const o = object(v, path);
  const f: FailureDetail = {
    resultType: string(o['result-type'], `${path}.result-type`),
    failedSessionCount: count(o['failed-session-count'], `${path}.failed-session-count`),
  };
  if (f.resultType === '') throw new ReportError(`${path}.result-type: empty`);
  for (const [key, name] of DETAIL_FIELDS.slice(1)) {
    if (o[name] !== undefined) f[key] = string(o[name], `${path}.${name}`);
  }
  return f;
}

function object(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ReportError(`${path}: expected an object`);
  return v as Record<string, unknown>;
}

function array(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new ReportError(`${path}: expected a list`);
  return v;
}

function string(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new ReportError(`${path}: expected a string`);
  return v;
}

/** A list of strings, also accepted as a single string as some reporters send it. */
function stringList(v: unknown, path: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return [v];
  return array(v, path).map((s, i) => string(s, `${path}[${i}]`));
}

function count(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ReportError(`${path}: expected a count, a whole number of at least 0`);
  return v;
}

// RFC 3339 5.6 date-time.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

function date(v: unknown, path: string): Date {
  const s = string(v, path);
  const d = new Date(s.toUpperCase().replace(' ', 'T'));
  if (!DATE_TIME.test(s) || Number.isNaN(d.getTime())) throw new ReportError(`${path}: ${JSON.stringify(s.slice(0, 50))} is not an RFC 3339 date-time`);
  return d;
}
