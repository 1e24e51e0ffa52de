// The TLS reporting TXT record at _smtp._tls.<domain> (RFC 8460 3).

import { parseDomain } from '../dns/domain.js';
import { DNSError, type Resolver } from '../dns/types.js';
import { show, trimWSP } from '../mtasts/record.js';

/** Where reports go: by mail or by HTTPS POST (RFC 8460 3, 5.3, 5.4). */
export type ReportDestination = { uri: string; type: 'mailto'; address: string } | { uri: string; type: 'https'; url: URL };

export interface TLSRPTRecord {
  version: 'TLSRPTv1';
  /** In the order given; URIs of other schemes are left out. */
  rua: ReportDestination[];
  /** Extension fields, ignored by RFC 8460 3; kept for display. */
  extensions: Record<string, string>;
}

export class TLSRPTRecordError extends Error {
  override name = 'TLSRPTRecordError';
}

const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

/** Parses one record's text; throws TLSRPTRecordError naming the first problem. */
export function parseTLSRPTRecord(text: string): TLSRPTRecord {
  // RFC 8460 3: fields separated by ";" with optional WSP around it, and maybe one at the end.
  const fields = text.split(';').map(trimWSP);
  if (fields.length > 1 && fields[fields.length - 1] === '') fields.pop();
  if (fields[0] !== 'v=TLSRPTv1') throw new TLSRPTRecordError(`record must start with "v=TLSRPTv1", got ${show(fields[0] ?? '')}`);
  let rua: ReportDestination[] | undefined;
  const extensions: Record<string, string> = {};
  for (const field of fields.slice(1)) {
    const eq = field.indexOf('=');
    if (eq < 0) throw new TLSRPTRecordError(`field ${show(field)} is not name=value`);
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (name === 'rua') {
      if (rua !== undefined) throw new TLSRPTRecordError('duplicate rua field');
      rua = value.split(',').map(trimWSP).flatMap(destination);
      if (rua.length === 0) throw new TLSRPTRecordError('rua has no mailto: or https: URI');
    } else if (name === 'v') {
      throw new TLSRPTRecordError('duplicate v field');
    } else {
      if (!EXT_NAME.test(name)) throw new TLSRPTRecordError(`invalid field name ${show(name)}`);
      if (!EXT_VALUE.test(value)) throw new TLSRPTRecordError(`invalid value for field ${show(name)}`);
      extensions[name] = value;
    }
  }
  if (rua === undefined) throw new TLSRPTRecordError('missing rua field');
  return { version: 'TLSRPTv1', rua, extensions };
}

/** The destination a URI names; none for other schemes (RFC 8460 3 defines only these two). */
function destination(uri: string): ReportDestination[] {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) throw new TLSRPTRecordError(`rua ${show(uri)} is not a URI`);
  if (scheme === 'mailto') {
    // RFC 6068 2: percent-encoded addr-spec, maybe followed by header fields after "?".
    let address: string;
    try {
      address = decodeURIComponent(uri.slice(7).split('?')[0]!);
    } catch {
      throw new TLSRPTRecordError(`rua ${show(uri)}: bad percent-encoding`);
    }
    const at = address.lastIndexOf('@');
    if (at <= 0 || /[\s,<>]/.test(address)) throw new TLSRPTRecordError(`rua ${show(uri)} has no valid address`);
    try {
      address = `${address.slice(0, at)}@${parseDomain(address.slice(at + 1)).ascii}`;
    } catch (err) {
      throw new TLSRPTRecordError(`rua ${show(uri)}: ${(err as Error).message}`);
    }
    return [{ uri, type: 'mailto', address }];
  }
  if (scheme === 'https') {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new TLSRPTRecordError(`rua ${show(uri)} is not a valid URL`);
    }
    if (url.hostname === '') throw new TLSRPTRecordError(`rua ${show(uri)} has no host`);
    return [{ uri, type: 'https', url }];
  }
  return [];
}

export type TLSRPTLookup =
  | { status: 'found'; record: TLSRPTRecord }
  | { status: 'none'; reason: string }
  | { status: 'temporary-failure'; reason: string };

/** Looks up and parses the TLS reporting record of a policy domain in A-label form. */
export async function lookupTLSRPTRecord(resolver: Resolver, domain: string): Promise<TLSRPTLookup> {
  let texts: string[];
  try {
    texts = (await resolver.lookupTXT(`_smtp._tls.${domain}`)).records;
  } catch (err) {
    if (err instanceof DNSError && err.notFound) return { status: 'none', reason: 'no TLSRPT record' };
    return { status: 'temporary-failure', reason: err instanceof Error ? err.message : String(err) };
  }
  // RFC 8460 3: other TXT records are discarded; not exactly one left means no reporting.
  const candidates = texts.filter((t) => /^v=TLSRPTv1(?![A-Za-z0-9])/.test(t));
  if (candidates.length === 0) return { status: 'none', reason: 'no TLSRPT record' };
  if (candidates.length > 1) return { status: 'none', reason: `${candidates.length} TLSRPT records` };
  try {
    return { status: 'found', record: parseTLSRPTRecord(candidates[0]!) };
  } catch (err) {
    return { status: 'none', reason: `invalid TLSRPT record: ${(err as Error).message}` };
  }
}
