// DMARC policy records: the TXT record at _dmarc.<domain>, parsed and formatted (RFC 7489 6.3, 6.4).

export type Policy = 'none' | 'quarantine' | 'reject';
export type Alignment = 'r' | 's';

export interface ReportURI {
  /** The URI as published, e.g. "mailto:dmarc@example.org". */
  uri: string;
  /** Largest report to send there, in bytes, from a "!50m" suffix (RFC 7489 6.2). */
  maxBytes?: number;
}

export interface DMARCRecord {
  /** p: what the Domain Owner asks receivers to do with failing mail. */
  policy: Policy;
  /** sp: the policy for subdomains of the Organizational Domain; absent means p applies. */
  subdomainPolicy?: Policy;
  adkim: Alignment;
  aspf: Alignment;
  /** Percentage of failing messages the policy is applied to, 0 to 100. */
  pct: number;
  /** Aggregate report destinations. */
  rua: ReportURI[];
  /** Failure report destinations. */
  ruf: ReportURI[];
  /** Failure reporting options: "0", "1", "d", "s". */
  fo: string[];
  /** Failure report formats, e.g. "afrf". */
  rf: string[];
  /** Seconds between aggregate reports. */
  ri: number;
}

export interface ParsedRecord {
  record: DMARCRecord;
  /** Problems that were ignored in favour of defaults (RFC 7489 6.3), for operators. */
  warnings: string[];
}

export class DMARCRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DMARCRecordError';
  }
}

/** RFC 7489 6.3: the defaults of the optional tags. */
export const DEFAULTS: Omit<DMARCRecord, 'policy'> = { adkim: 'r', aspf: 'r', pct: 100, rua: [], ruf: [], fo: ['0'], rf: ['afrf'], ri: 86400 };

// RFC 7489 6.4 dmarc-version; "v" is a case-insensitive literal, "DMARC1" is given in hex and so
// is case-sensitive (RFC 5234 2.3). WSP is space and tab only.
const VERSION = /^[ \t]*[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)/;
const TAG_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const POLICIES = new Set(['none', 'quarantine', 'reject']);
const UNITS = ['', 'k', 'm', 'g', 't'];

/** RFC 7489 6.6.3 step 2: a TXT record is a DMARC record when it starts with v=DMARC1. */
export function isDMARCRecord(txt: string): boolean {
  return VERSION.test(txt);
}

/**
 * Parses a DMARC record. A record whose p (or sp) is missing or invalid but that names a valid
 * rua destination reads as p=none (RFC 7489 6.6.3 step 6); without one it is refused, unless
 * `policyRequired` is false, as for the records that authorize report destinations (RFC 7489
 * 7.1). Bad values of other tags give their defaults and a warning (RFC 7489 6.3). Throws
 * DMARCRecordError.
 */
export function parseRecord(txt: string, opts: { policyRequired?: boolean } = {}): ParsedRecord {
  const version = VERSION.exec(txt);
  if (!version) throw new DMARCRecordError('record does not start with v=DMARC1');
  const record: DMARCRecord = { policy: 'none', ...DEFAULTS, rua: [], ruf: [] };
  const warnings: string[] = [];
  const seen = new Set<string>();
  let policy: string | undefined;
  let subdomainPolicy: string | undefined;
  for (const spec of txt.slice(version[0].length).split(';')) {
    if (trimWSP(spec) === '') continue;
    const eq = spec.indexOf('=');
    const rawName = trimWSP(spec.slice(0, Math.max(eq, 0)));
    if (!TAG_NAME.test(rawName)) {
      warnings.push(`ignored malformed tag ${JSON.stringify(clip(trimWSP(spec)))}`);
      continue;
    }
    const name = rawName.toLowerCase();
    const value = trimWSP(spec.slice(eq + 1));
    // RFC 7489 6.3 takes its tag-value syntax from DKIM, where a repeated tag voids the list (RFC 6376 3.2).
    if (seen.has(name)) throw new DMARCRecordError(`duplicate tag ${name}`);
    seen.add(name);
    const bad = () => warnings.push(`ignored invalid ${name}=${JSON.stringify(clip(value))}`);
    switch (name) {
      case 'v':
        throw new DMARCRecordError('v= must be the first and only version tag');
      case 'p':
        policy = value.toLowerCase();
        break;
      case 'sp':
        subdomainPolicy = value.toLowerCase();
        break;
      case 'adkim':
      case 'aspf': {
        const a = value.toLowerCase();
        if (a === 'r' || a === 's') record[name] = a;
        else bad();
        break;
      }
      case 'pct':
        if (/^[0-9]{1,3}$/.test(value) && Number(value) <= 100) record.pct = Number(value);
        else bad();
        break;
      case 'ri':
        if (/^[0-9]{1,10}$/.test(value) && Number(value) <= 0xffffffff) record.ri = Number(value);
        else bad();
        break;
      case 'fo': {
        const list = colonList(value);
        if (list.every((o) => /^[01ds]$/.test(o))) record.fo = list;
        else bad();
        break;
      }
      case 'rf': {
        // RFC 7489 6.4 dmarc-rfmt: Keyword of RFC 5321 4.1.2.
        const list = colonList(value);
        if (list.every((f) => /^[a-z0-9](?:-?[a-z0-9])*$/.test(f))) record.rf = list;
        else bad();
        break;
      }
      case 'rua':
      case 'ruf':
        for (const item of value.split(',')) {
          const uri = parseURI(trimWSP(item));
          if (typeof uri === 'string') warnings.push(`ignored ${name} destination: ${uri}`);
          else record[name].push(uri);
        }
        break;
      // RFC 7489 6.3: unknown tags are ignored.
    }
  }
  const validPolicy = policy !== undefined && POLICIES.has(policy);
  const validSub = subdomainPolicy === undefined || POLICIES.has(subdomainPolicy);
  if (validPolicy && validSub) {
    record.policy = policy as Policy;
    if (subdomainPolicy !== undefined) record.subdomainPolicy = subdomainPolicy as Policy;
  } else if (opts.policyRequired !== false) {
    const problem = !validPolicy ? (policy === undefined ? 'missing p=' : `invalid p=${clip(policy)}`) : `invalid sp=${clip(subdomainPolicy!)}`;
    // RFC 7489 6.6.3 step 6
    if (record.rua.length === 0) throw new DMARCRecordError(`${problem} and no valid rua=`);
    warnings.push(`${problem}: treated as p=none because rua= is valid`);
  }
  return { record, warnings };
}

/** Removes WSP (space and tab) at both ends; a loop, as trimming regexes can take quadratic time. */
function trimWSP(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s[a] === ' ' || s[a] === '\t')) a++;
  while (b > a && (s[b - 1] === ' ' || s[b - 1] === '\t')) b--;
  return s.slice(a, b);
}

function colonList(value: string): string[] {
  return value.split(':').map((s) => trimWSP(s).toLowerCase());
}

function clip(s: string): string {
  return s.length > 60 ? s.slice(0, 60) + '…' : s;
}

/**
 * RFC 7489 6.4 dmarc-uri: a URI (RFC 3986 3) with an optional "!" size and unit. Commas and "!"
 * inside the URI must be percent-encoded (RFC 7489 6.2), so the last "!" starts the size.
 * Returns the reason as a string when invalid.
 */
function parseURI(s: string): ReportURI | string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:[^!]+)(?:!([0-9]{1,15})([kmgtKMGT]?))?$/.exec(s);
  if (!m) return `malformed URI ${JSON.stringify(clip(s))}`;
  const uri = m[1]!;
  if (!/^[A-Za-z0-9\-._~:/?#[\]@$&'()*+=%]+$/.test(uri) || /%(?![0-9A-Fa-f]{2})/.test(uri)) {
    return `invalid characters in URI ${JSON.stringify(clip(uri))}`;
  }
  if (m[2] === undefined) return { uri };
  // RFC 7489 6.2: units are powers of two.
  return { uri, maxBytes: Number(m[2]) * 1024 ** UNITS.indexOf(m[3]!.toLowerCase()) };
}

/** A size limit with the largest unit that divides it exactly. */
function formatSize(bytes: number): string {
  let unit = 0;
  let n = bytes;
  while (unit < UNITS.length - 1 && n > 0 && n % 1024 === 0) {
    n /= 1024;
    unit++;
  }
  return `${n}${UNITS[unit]}`;
}

function formatURIs(list: ReportURI[]): string {
  return list
    .map((u) => {
      // RFC 7489 6.2: "," and "!" in URIs are percent-encoded; ";" and white space would end the tag.
      const uri = u.uri.replace(/[,!; \t]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
      return u.maxBytes === undefined ? uri : `${uri}!${formatSize(u.maxBytes)}`;
    })
    .join(',');
}

/**
 * The TXT record text for a policy, e.g. "v=DMARC1; p=reject; rua=mailto:dmarc@example.org".
 * Tags with default values are left out; the order is that of RFC 7489 6.4.
 */
export function formatRecord(r: Partial<DMARCRecord> & Pick<DMARCRecord, 'policy'>): string {
  const tags = ['v=DMARC1', `p=${r.policy}`];
  const add = (name: string, value: string | undefined, def?: string) => {
    if (value !== undefined && value !== def) tags.push(`${name}=${value}`);
  };
  add('sp', r.subdomainPolicy);
  add('adkim', r.adkim, DEFAULTS.adkim);
  add('aspf', r.aspf, DEFAULTS.aspf);
  add('ri', r.ri?.toString(), String(DEFAULTS.ri));
  add('fo', r.fo?.join(':'), DEFAULTS.fo.join(':'));
  add('pct', r.pct?.toString(), String(DEFAULTS.pct));
  add('rf', r.rf?.join(':'), DEFAULTS.rf.join(':'));
  if (r.rua?.length) add('rua', formatURIs(r.rua));
  if (r.ruf?.length) add('ruf', formatURIs(r.ruf));
  return tags.join('; ');
}
