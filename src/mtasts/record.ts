// The MTA-STS TXT record at _mta-sts.<domain> (RFC 8461 3.1).

import { DNSError, type Resolver } from '../dns/types.js';

export interface STSRecord {
  version: 'STSv1';
  /** Changes whenever the policy changes; up to 32 letters and digits. */
  id: string;
  /** Extension fields, which RFC 8461 3.1 says to ignore; kept for display. */
  extensions: Record<string, string>;
}

export class STSRecordError extends Error {
  override name = 'STSRecordError';
}

const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
// RFC 8461 3.1: visible characters except "=" and ";".
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

/** Parses one record's text; throws STSRecordError naming the first problem. */
export function parseSTSRecord(text: string): STSRecord {
  // RFC 8461 3.1: fields are separated by ";" with optional WSP around it, and may end with one.
  // Space at either end is tolerated too: it is invisible in most DNS tools.
  const fields = text.split(';').map(trimWSP);
  if (fields.length > 1 && fields[fields.length - 1] === '') fields.pop();
  if (fields[0] !== 'v=STSv1') throw new STSRecordError(`record must start with "v=STSv1", got ${show(fields[0] ?? '')}`);
  let id: string | undefined;
  const extensions: Record<string, string> = {};
  for (const field of fields.slice(1)) {
    const eq = field.indexOf('=');
    if (eq < 0) throw new STSRecordError(`field ${show(field)} is not name=value`);
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (name === 'id') {
      if (id !== undefined) throw new STSRecordError('duplicate id field');
      if (!/^[A-Za-z0-9]{1,32}$/.test(value)) throw new STSRecordError(`id ${show(value)} must be 1 to 32 letters and digits`);
      id = value;
    } else if (name === 'v') {
      throw new STSRecordError('duplicate v field');
    } else {
      if (!EXT_NAME.test(name)) throw new STSRecordError(`invalid field name ${show(name)}`);
      if (!EXT_VALUE.test(value)) throw new STSRecordError(`invalid value for field ${show(name)}`);
      extensions[name] = value;
    }
  }
  if (id === undefined) throw new STSRecordError('missing id field');
  return { version: 'STSv1', id, extensions };
}

export type RecordLookup =
  | { status: 'found'; record: STSRecord }
  /** The domain does not publish (a usable) MTA-STS record. */
  | { status: 'none'; reason: string }
  /** The lookup failed in a way a later retry may fix. */
  | { status: 'temporary-failure'; reason: string };

/** Looks up and parses the MTA-STS record of a domain given in A-label form. */
export async function lookupSTSRecord(resolver: Resolver, domain: string): Promise<RecordLookup> {
  let texts: string[];
  try {
    texts = (await resolver.lookupTXT(`_mta-sts.${domain}`)).records;
  } catch (err) {
    if (err instanceof DNSError && err.notFound) return { status: 'none', reason: 'no MTA-STS record' };
    return { status: 'temporary-failure', reason: err instanceof Error ? err.message : String(err) };
  }
  // RFC 8461 3.1: other TXT records are discarded; anything but exactly one remaining record
  // means no policy, as does a syntax error in it.
  const candidates = texts.filter((t) => /^v=STSv1(?![A-Za-z0-9])/.test(t));
  if (candidates.length === 0) return { status: 'none', reason: 'no MTA-STS record' };
  if (candidates.length > 1) return { status: 'none', reason: `${candidates.length} MTA-STS records` };
  try {
    return { status: 'found', record: parseSTSRecord(candidates[0]!) };
  } catch (err) {
    return { status: 'none', reason: `invalid MTA-STS record: ${(err as Error).message}` };
  }
}

/** Strips spaces and tabs at both ends, in linear time on any input. */
export function trimWSP(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && (s[start] === ' ' || s[start] === '\t')) start++;
  while (end > start && (s[end - 1] === ' ' || s[end - 1] === '\t')) end--;
  return s.slice(start, end);
}

/** Quoted and shortened for error messages about hostile input. */
export function show(s: string): string {
  return JSON.stringify(s.length > 64 ? s.slice(0, 64) + '…' : s);
}
