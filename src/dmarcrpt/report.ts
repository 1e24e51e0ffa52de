// DMARC aggregate feedback reports (RFC 7489 7.2 and appendix C): reading the XML that other
// receivers send, and writing it for Postern's own reports.

import { isIP } from 'node:net';
import type { DKIMStatus } from '../dkim/verify.js';
import type { DMARCRecord, Policy } from '../dmarc/record.js';
import type { DMARCResult } from '../dmarc/verify.js';
import type { SPFStatus } from '../spf/evaluate.js';
import { escapeXML, localName, parseXML, XMLError, type XMLElement, type XMLLimits } from './xml.js';

export type Alignment = 'r' | 's';
export type DMARCVerdict = 'pass' | 'fail';
export type OverrideType = 'forwarded' | 'sampled_out' | 'trusted_forwarder' | 'mailing_list' | 'local_policy' | 'other';

export interface Feedback {
  version?: string;
  reportMetadata: ReportMetadata;
  policyPublished: PolicyPublished;
  records: ReportRecord[];
}

export interface ReportMetadata {
  orgName: string;
  email: string;
  extraContactInfo?: string;
  reportID: string;
  /** Seconds since the epoch, UTC. */
  dateRange: { begin: number; end: number };
  errors: string[];
}

export interface PolicyPublished {
  /** Where the DMARC record was found. */
  domain: string;
  adkim?: Alignment;
  aspf?: Alignment;
  p: Policy;
  sp?: Policy;
  pct?: number;
  fo?: string;
}

export interface ReportRecord {
  row: {
    sourceIP: string;
    count: number;
    policyEvaluated: {
      disposition: Policy;
      dkim: DMARCVerdict;
      spf: DMARCVerdict;
      reasons: { type: OverrideType; comment?: string }[];
    };
  };
  identifiers: { envelopeTo?: string; envelopeFrom?: string; headerFrom: string };
  authResults: {
    dkim: { domain: string; selector?: string; result: DKIMStatus; humanResult?: string }[];
    spf: { domain: string; scope?: 'helo' | 'mfrom'; result: SPFStatus }[];
  };
}

export class ReportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportError';
  }
}

const POLICIES: readonly Policy[] = ['none', 'quarantine', 'reject'];
const ALIGNMENTS: readonly Alignment[] = ['r', 's'];
const VERDICTS: readonly DMARCVerdict[] = ['pass', 'fail'];
const OVERRIDES: readonly OverrideType[] = ['forwarded', 'sampled_out', 'trusted_forwarder', 'mailing_list', 'local_policy', 'other'];
const DKIM_RESULTS: readonly DKIMStatus[] = ['none', 'pass', 'fail', 'policy', 'neutral', 'temperror', 'permerror'];
const SPF_RESULTS: readonly SPFStatus[] = ['none', 'neutral', 'pass', 'fail', 'softfail', 'temperror', 'permerror'];
// RFC 7489 appendix C: temperror is "commonly implemented as unknown", permerror as "error".
const SPF_ALIASES: Record<string, SPFStatus> = { unknown: 'temperror', error: 'permerror' };
const SCOPES = ['helo', 'mfrom'] as const;

/** Reading of one element's children by local name, naming the path in errors. */
class Reader {
  constructor(
    private readonly e: XMLElement,
    private readonly path: string,
  ) {}

  all(name: string): Reader[] {
    return this.e.children.filter((c) => localName(c) === name).map((c) => new Reader(c, `${this.path}/${name}`));
  }
  child(name: string): Reader {
    const c = this.all(name)[0];
    if (!c) throw new ReportError(`${this.path}: missing <${name}>`);
    return c;
  }
  text(): string {
    return this.e.text.trim();
  }
  string(name: string): string {
    return this.child(name).text();
  }
  optional(name: string): string | undefined {
    const c = this.all(name)[0];
    const t = c?.text();
    return t === '' ? undefined : t;
  }
  integer(name: string): number {
    const t = this.string(name);
    if (!/^[0-9]{1,15}$/.test(t)) throw new ReportError(`${this.path}/${name}: not a number: ${JSON.stringify(t.slice(0, 40))}`);
    return Number(t);
  }
  oneOf<T extends string>(name: string, allowed: readonly T[], aliases: Record<string, T> = {}): T {
    return this.check(name, this.string(name), allowed, aliases);
  }
  optionalOneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const t = this.optional(name);
    return t === undefined ? undefined : this.check(name, t, allowed, {});
  }
  private check<T extends string>(name: string, value: string, allowed: readonly T[], aliases: Record<string, T>): T {
    const v = value.toLowerCase();
    const known = allowed.find((a) => a === v) ?? aliases[v];
    if (!known) throw new ReportError(`${this.path}/${name}: unknown value ${JSON.stringify(value.slice(0, 40))}`);
    return known;
  }
}

/** Reads the XML of an aggregate report (RFC 7489 appendix C). Throws ReportError. */
export function parseReport(xml: string | Buffer, limits?: XMLLimits): Feedback {
  let root: XMLElement;
  try {
    root = parseXML(xml, limits);
  } catch (e) {
    if (e instanceof XMLError) throw new ReportError(`malformed XML: ${e.message}`);
    throw e;
  }
  if (localName(root) !== 'feedback') throw new ReportError(`root element is <${root.name}>, not <feedback>`);
  const f = new Reader(root, 'feedback');
  const meta = f.child('report_metadata');
  const range = meta.child('date_range');
  const pub = f.child('policy_published');
  const feedback: Feedback = {
    reportMetadata: {
      orgName: meta.string('org_name'),
      email: meta.string('email'),
      reportID: meta.string('report_id'),
      dateRange: { begin: range.integer('begin'), end: range.integer('end') },
      errors: meta.all('error').map((e) => e.text()),
    },
    policyPublished: { domain: pub.string('domain'), p: pub.oneOf('p', POLICIES) },
    records: f.all('record').map((r, i) => {
      try {
        return record(r);
      } catch (e) {
        if (e instanceof ReportError) throw new ReportError(`record ${i + 1}: ${e.message}`);
        throw e;
      }
    }),
  };
  const version = f.optional('version');
  if (version !== undefined) feedback.version = version;
  const extra = meta.optional('extra_contact_info');
  if (extra !== undefined) feedback.reportMetadata.extraContactInfo = extra;
  const p = feedback.policyPublished;
  const adkim = pub.optionalOneOf('adkim', ALIGNMENTS);
  const aspf = pub.optionalOneOf('aspf', ALIGNMENTS);
  const sp = pub.optionalOneOf('sp', POLICIES);
  const pct = pub.optional('pct') === undefined ? undefined : pub.integer('pct');
  const fo = pub.optional('fo');
  if (adkim) p.adkim = adkim;
  if (aspf) p.aspf = aspf;
  if (sp) p.sp = sp;
  if (pct !== undefined) p.pct = pct;
  if (fo !== undefined) p.fo = fo;
  return feedback;
}

function record(r: Reader): ReportRecord {
  const row = r.child('row');
  const sourceIP = row.string('source_ip');
  if (!isIP(sourceIP)) throw new ReportError(`record/row/source_ip: not an IP address: ${JSON.stringify(sourceIP.slice(0, 60))}`);
  const pe = row.child('policy_evaluated');
  const ids = r.child('identifiers');
  const auth = r.child('auth_results');
  const identifiers: ReportRecord['identifiers'] = { headerFrom: ids.string('header_from') };
  const envelopeTo = ids.optional('envelope_to');
  const envelopeFrom = ids.optional('envelope_from');
  if (envelopeTo !== undefined) identifiers.envelopeTo = envelopeTo;
  if (envelopeFrom !== undefined) identifiers.envelopeFrom = envelopeFrom;
  return {
    row: {
      sourceIP,
      count: row.integer('count'),
      policyEvaluated: {
        disposition: pe.oneOf('disposition', POLICIES),
        dkim: pe.oneOf('dkim', VERDICTS),
        spf: pe.oneOf('spf', VERDICTS),
        reasons: pe.all('reason').map((x) => {
          const comment = x.optional('comment');
          return { type: x.oneOf('type', OVERRIDES), ...(comment !== undefined ? { comment } : {}) };
        }),
      },
    },
    identifiers,
    authResults: {
      dkim: auth.all('dkim').map((d) => {
        const selector = d.optional('selector');
        const humanResult = d.optional('human_result');
        return {
          domain: d.string('domain'),
          ...(selector !== undefined ? { selector } : {}),
          result: d.oneOf('result', DKIM_RESULTS),
          ...(humanResult !== undefined ? { humanResult } : {}),
        };
      }),
      spf: auth.all('spf').map((s) => {
        const scope = s.optionalOneOf('scope', SCOPES);
        return { domain: s.string('domain'), ...(scope ? { scope } : {}), result: s.oneOf('result', SPF_RESULTS, SPF_ALIASES) };
      }),
    },
  };
}

/** XML elements as nested [name, content] pairs; undefined content leaves the element out. */
type Node = [string, string | number | undefined | Node[]];

function render(nodes: Node[], indent: string): string {
  let out = '';
  for (const [name, content] of nodes) {
    if (content === undefined) continue;
    if (Array.isArray(content)) out += `${indent}<${name}>\n${render(content, indent + '  ')}${indent}</${name}>\n`;
    else out += `${indent}<${name}>${escapeXML(String(content))}</${name}>\n`;
  }
  return out;
}

/** The XML of an aggregate report, in the element order of the RFC 7489 appendix C schema. */
export function buildReport(f: Feedback): string {
  const m = f.reportMetadata;
  const p = f.policyPublished;
  const tree: Node[] = [
    ['version', f.version ?? '1.0'],
    [
      'report_metadata',
      [
        ['org_name', m.orgName],
        ['email', m.email],
        ['extra_contact_info', m.extraContactInfo],
        ['report_id', m.reportID],
        [
          'date_range',
          [
            ['begin', m.dateRange.begin],
            ['end', m.dateRange.end],
          ],
        ],
        ...m.errors.map((e): Node => ['error', e]),
      ],
    ],
    [
      'policy_published',
      [
        ['domain', p.domain],
        ['adkim', p.adkim],
        ['aspf', p.aspf],
        ['p', p.p],
        ['sp', p.sp],
        ['pct', p.pct],
        ['fo', p.fo],
      ],
    ],
    ...f.records.map((r): Node => {
      const pe = r.row.policyEvaluated;
      return [
        'record',
        [
          [
            'row',
            [
              ['source_ip', r.row.sourceIP],
              ['count', r.row.count],
              [
                'policy_evaluated',
                [
                  ['disposition', pe.disposition],
                  ['dkim', pe.dkim],
                  ['spf', pe.spf],
                  ...pe.reasons.map((x): Node => [
                    'reason',
                    [
                      ['type', x.type],
                      ['comment', x.comment],
                    ],
                  ]),
                ],
              ],
            ],
          ],
          [
            'identifiers',
            [
              ['envelope_to', r.identifiers.envelopeTo],
              ['envelope_from', r.identifiers.envelopeFrom],
              ['header_from', r.identifiers.headerFrom],
            ],
          ],
          [
            'auth_results',
            [
              ...r.authResults.dkim.map((d): Node => [
                'dkim',
                [
                  ['domain', d.domain],
                  ['selector', d.selector],
                  ['result', d.result],
                  ['human_result', d.humanResult],
                ],
              ]),
              ...r.authResults.spf.map((s): Node => [
                'spf',
                [
                  ['domain', s.domain],
                  ['scope', s.scope],
                  ['result', s.result],
                ],
              ]),
            ],
          ],
        ],
      ];
    }),
  ];
  return `<?xml version="1.0" encoding="UTF-8"?>\n<feedback>\n${render(tree, '  ')}</feedback>\n`;
}

/** The policy_published element for a record found at `domain`. */
export function policyPublished(domain: string, r: DMARCRecord): PolicyPublished {
  return { domain, adkim: r.adkim, aspf: r.aspf, p: r.policy, sp: r.subdomainPolicy ?? r.policy, pct: r.pct, fo: r.fo.join(':') };
}

/** One received message, as Postern keeps it for its outgoing aggregate reports. */
export interface Evaluation {
  sourceIP: string;
  dmarc: DMARCResult;
  /** Domain of the recipient. */
  envelopeTo?: string;
  /** Domain of the MAIL FROM address, "" for the null reverse-path. */
  envelopeFrom: string;
  spf: { domain: string; scope: 'helo' | 'mfrom'; result: SPFStatus }[];
  dkim: { domain: string; selector?: string; result: DKIMStatus }[];
}

/**
 * Report records for the evaluations under one policy domain, identical rows counted together
 * (RFC 7489 7.2: records aggregate messages with the same source and authentication results).
 */
export function reportRecords(evaluations: Evaluation[]): ReportRecord[] {
  const rows = new Map<string, ReportRecord>();
  for (const ev of evaluations) {
    const d = ev.dmarc;
    const rec: ReportRecord = {
      row: {
        sourceIP: ev.sourceIP,
        count: 1,
        policyEvaluated: {
          disposition: d.disposition,
          dkim: d.alignedDKIMPass ? 'pass' : 'fail',
          spf: d.alignedSPFPass ? 'pass' : 'fail',
          // RFC 7489 appendix C PolicyOverrideType sampled_out: the pct setting exempted the message.
          reasons: d.sampledOut ? [{ type: 'sampled_out' }] : [],
        },
      },
      identifiers: { ...(ev.envelopeTo ? { envelopeTo: ev.envelopeTo } : {}), envelopeFrom: ev.envelopeFrom, headerFrom: d.domain },
      authResults: { dkim: ev.dkim.map((x) => ({ ...x })), spf: ev.spf.map((x) => ({ ...x })) },
    };
    const key = JSON.stringify({ ...rec, row: { ...rec.row, count: 0 } });
    const seen = rows.get(key);
    if (seen) seen.row.count++;
    else rows.set(key, rec);
  }
  return [...rows.values()];
}
