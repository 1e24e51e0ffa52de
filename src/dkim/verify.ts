// DKIM verification, RFC 6376 6, with RFC 8301 and RFC 8463; results as in RFC 8601.

import { createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';

import { DNSError, type Resolver } from '../dns/types.js';
import { type BodyHashResult, type Canon, canonHeader, hashBody, signedFields } from './canon.js';
import { type KeyRecord, MAX_RSA_BITS, MIN_RSA_BITS, parseKeyRecord, recordPublicKey } from './keys.js';
import { type HeaderField, type MessageInput, MessageError, MessageReader } from './message.js';
import { colonList, decodeBase64, decodeQP, DOMAIN, FIELD_NAME, parseTags, quote, TagError, withoutSignature } from './tags.js';

export type DKIMStatus = 'pass' | 'fail' | 'neutral' | 'policy' | 'temperror' | 'permerror' | 'none';

export interface DKIMResult {
  status: DKIMStatus;
  /** d=, lower case; '' if unreadable. */
  domain: string;
  /** s=; '' if unreadable. */
  selector: string;
  /** i=, decoded, if present. */
  identity?: string;
  /** a= as written, e.g. "ed25519-sha256". */
  algorithm: string;
  /** From c=: "simple" or "relaxed", or as written when not understood. */
  headerCanon: string;
  bodyCanon: string;
  /** The key record was DNSSEC-validated. */
  authentic: boolean;
  /** Why the status is not pass, or a note on a pass. */
  reason?: string;
  /** Leading chars of b=, unique among the message's signatures (RFC 6008 2). */
  headerB: string;
  /** The key is in testing mode (t=y, RFC 6376 3.6.1): results must not change how the message is treated. */
  testing?: boolean;
}

export interface VerifyOptions {
  /** Time to check x= against; default now. */
  now?: Date;
  /** Smallest RSA key accepted; keys below it get "policy". Default and floor 1024 (RFC 8301 3.2). */
  minRSABits?: number;
  /** Signatures verified per message; default MAX_SIGNATURES. */
  maxSignatures?: number;
}

/** Signatures beyond this many are not verified: each costs a DNS lookup and a hash of the message. */
export const MAX_SIGNATURES = 10;


interface Signature {
  index: number;
  keyType: 'rsa' | 'ed25519';
  headerCanon: Canon;
  bodyCanon: Canon;
  domain: string;
  selector: string;
  identityDomain: string;
  headers: string[];
  bodyHash: Buffer;
  signature: Buffer;
  length?: number;
}

type KeyLookup = { record: KeyRecord; authentic: boolean } | { status: DKIMStatus; reason: string; authentic: boolean };

class Refusal extends Error {
  constructor(
    readonly status: DKIMStatus,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Verifies every DKIM-Signature field of a message, reading the message once. Returns one
 * result per signature, in header order; none for an unsigned message.
 */
export async function verify(message: MessageInput, resolver: Resolver, opts: VerifyOptions = {}): Promise<DKIMResult[]> {
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const minRSABits = Math.max(opts.minRSABits ?? MIN_RSA_BITS, MIN_RSA_BITS);
  const max = opts.maxSignatures ?? MAX_SIGNATURES;
  const reader = new MessageReader(message);
  try {
    let fields: HeaderField[];
    try {
      fields = await reader.header();
    } catch (e) {
      if (e instanceof MessageError) return [emptyResult('permerror', e.message)];
      throw e;
    }
    const indexes = fields.flatMap((f, i) => (f.key === 'dkim-signature' ? [i] : []));
    const checks = indexes.slice(0, max).map((i) => check(fields[i]!.raw, i, now));

    const lookups = new Map<string, Promise<KeyLookup>>();
    const pending = checks.flatMap(({ result, sig }) => {
      if (!sig) return [];
      const name = `${sig.selector}._domainkey.${sig.domain}`;
      let key = lookups.get(name);
      if (!key) lookups.set(name, (key = lookupKey(resolver, name)));
      return [{ result, sig, key }];
    });
    if (pending.length) {
      const bodies = await hashBody(
        reader.body(),
        pending.map(({ sig }) => ({ canon: sig.bodyCanon, limit: sig.length })),
      );
      for (const [i, p] of pending.entries()) {
        const k = await p.key;
        p.result.authentic = k.authentic;
        try {
          if ('status' in k) throw new Refusal(k.status, k.reason);
          if (k.record.flags.includes('y')) p.result.testing = true;
          p.result.reason = checkSignature(p.sig, fields, k.record, bodies[i]!, minRSABits);
          p.result.status = 'pass';
        } catch (e) {
          if (!(e instanceof Refusal)) throw e;
          p.result.status = e.status;
          p.result.reason = e.message;
        }
        // RFC 6376 3.6.1 t=y: a failure under a testing key counts as no signature.
        if (p.result.testing && p.result.status !== 'pass' && p.result.status !== 'temperror') {
          p.result.status = 'none';
          p.result.reason = `testing key: ${p.result.reason}`;
        }
      }
    }
    const results = checks.map((c) => c.result);
    setHeaderB(results, checks.map((c) => c.b));
    if (indexes.length > max) {
      results.push(emptyResult('policy', `${indexes.length - max} more DKIM-Signature fields not verified: limit is ${max}`));
    }
    return results;
  } finally {
    await reader.close();
  }
}

function emptyResult(status: DKIMStatus, reason: string): DKIMResult {
  return { status, domain: '', selector: '', algorithm: '', headerCanon: '', bodyCanon: '', authentic: false, reason, headerB: '' };
}

/** Validates a signature field's tags (RFC 6376 6.1.1). */
function check(raw: string, index: number, now: number): { result: DKIMResult; sig?: Signature; b: string } {
  const result = emptyResult('permerror', '');
  let b = '';
  try {
    let tags: Map<string, string>;
    try {
      tags = parseTags(raw.slice(raw.indexOf(':') + 1));
    } catch (e) {
      throw new Refusal('permerror', `signature syntax error: ${(e as TagError).message}`);
    }
    b = (tags.get('b') ?? '').replace(/[ \t\r\n]+/g, '');
    result.domain = (tags.get('d') ?? '').toLowerCase();
    result.selector = (tags.get('s') ?? '').toLowerCase();
    result.algorithm = tags.get('a') ?? '';
    const c = (tags.get('c') ?? 'simple/simple').toLowerCase().split('/');
    result.headerCanon = c[0]!;
    result.bodyCanon = c[1] ?? 'simple';
    const i = tags.get('i');
    try {
      if (i !== undefined) result.identity = Buffer.from(decodeQP(i, 'i'), 'latin1').toString('utf8');
    } catch (e) {
      throw new Refusal('permerror', (e as TagError).message);
    }

    // RFC 6376 6.1.1: version first, then the required tags.
    if (tags.has('v') && tags.get('v') !== '1') throw new Refusal('permerror', `incompatible version v=${quote(tags.get('v')!)}`);
    const missing = ['v', 'a', 'b', 'bh', 'd', 'h', 's'].filter((t) => !tags.has(t));
    if (missing.length) throw new Refusal('permerror', `missing required tag ${missing.map((t) => t + '=').join(' ')}`);

    const algorithm = result.algorithm.toLowerCase();
    // RFC 8301 3.1: rsa-sha1 signatures must not be considered valid.
    if (algorithm === 'rsa-sha1') throw new Refusal('fail', 'rsa-sha1 is no longer accepted (RFC 8301 3.1)');
    if (algorithm !== 'rsa-sha256' && algorithm !== 'ed25519-sha256') throw new Refusal('permerror', `unsupported algorithm a=${quote(result.algorithm)}`);
    if (c.length > 2 || !isCanon(result.headerCanon) || !isCanon(result.bodyCanon)) {
      throw new Refusal('permerror', `unsupported canonicalization c=${quote(tags.get('c')!)}`);
    }
    if (!DOMAIN.test(result.domain)) throw new Refusal('permerror', 'invalid d= domain');
    if (!DOMAIN.test(result.selector)) throw new Refusal('permerror', 'invalid s= selector');

    // RFC 6376 3.5 i=: defaults to "@" d=, and must be at d= or below it.
    const identity = result.identity ?? '@' + result.domain;
    const at = identity.lastIndexOf('@');
    const identityDomain = identity.slice(at + 1).toLowerCase();
    if (at < 0 || (identityDomain !== result.domain && !identityDomain.endsWith('.' + result.domain))) {
      throw new Refusal('permerror', `i= ${quote(identity)} is not within d= ${result.domain}`);
    }

    const headers = colonList(tags.get('h')!);
    if (headers.some((h) => !FIELD_NAME.test(h))) throw new Refusal('permerror', 'invalid h= field name');
    // RFC 6376 6.1.1: From must be signed.
    if (!headers.some((h) => h.toLowerCase() === 'from')) throw new Refusal('permerror', 'From field not signed');

    let length: number | undefined;
    const l = tags.get('l');
    if (l !== undefined) {
      length = Number(l);
      if (!/^\d{1,76}$/.test(l) || !Number.isSafeInteger(length)) throw new Refusal('permerror', 'invalid l= body length');
    }
    const time = timestamp(tags.get('t'), 't');
    const expires = timestamp(tags.get('x'), 'x');
    // RFC 6376 3.5 x=: later than t=; past it the signature is expired (6.1.1).
    if (expires !== undefined && time !== undefined && expires <= time) throw new Refusal('permerror', 'x= is not after t=');
    if (expires !== undefined && expires < now) {
      throw new Refusal('permerror', `signature expired at ${new Date(expires * 1000).toISOString()}`);
    }
    // RFC 6376 3.5 q=: dns/txt is the only query method.
    const q = tags.get('q');
    if (q !== undefined && !colonList(q.toLowerCase()).includes('dns/txt')) throw new Refusal('permerror', `unsupported query method q=${quote(q)}`);

    let bodyHash: Buffer;
    let signature: Buffer;
    try {
      bodyHash = decodeBase64(tags.get('bh')!, 'bh');
      signature = decodeBase64(tags.get('b')!, 'b');
    } catch (e) {
      throw new Refusal('permerror', (e as TagError).message);
    }
    const sig: Signature = {
      index,
      keyType: algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519',
      headerCanon: result.headerCanon as Canon,
      bodyCanon: result.bodyCanon as Canon,
      domain: result.domain,
      selector: result.selector,
      identityDomain,
      headers,
      bodyHash,
      signature,
      length,
    };
    result.status = 'neutral';
    result.reason = undefined;
    return { result, sig, b };
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    result.status = e.status;
    result.reason = e.message;
    return { result, b };
  }
}

function isCanon(c: string): c is Canon {
  return c === 'simple' || c === 'relaxed';
}

function timestamp(value: string | undefined, tag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,12}$/.test(value)) throw new Refusal('permerror', `invalid ${tag}= timestamp`);
  return Number(value);
}

/** Fetches the key record (RFC 6376 6.1.2 steps 1 to 5); never rejects. */
async function lookupKey(resolver: Resolver, name: string): Promise<KeyLookup> {
  let txts: string[];
  let authentic: boolean;
  try {
    ({ records: txts, authentic } = await resolver.lookupTXT(name));
  } catch (e) {
    if (e instanceof DNSError && e.notFound) return { status: 'permerror', reason: `no key record at ${name}`, authentic: false };
    return { status: 'temperror', reason: `key lookup at ${name} failed: ${(e as Error).message}`, authentic: false };
  }
  const records: KeyRecord[] = [];
  let error = '';
  for (const txt of txts) {
    try {
      records.push(parseKeyRecord(txt));
    } catch (e) {
      error = (e as Error).message;
    }
  }
  // RFC 6376 3.6.2.2: more than one record at a selector gives undefined results.
  if (records.length > 1) return { status: 'permerror', reason: `multiple key records at ${name}`, authentic };
  if (records[0]) return { record: records[0], authentic };
  return { status: 'permerror', reason: error ? `key record syntax error: ${error}` : `no key record at ${name}`, authentic };
}

/** Checks the key record, body hash and signature (RFC 6376 6.1.2, 6.1.3); returns a note or throws a Refusal. */
function checkSignature(sig: Signature, fields: HeaderField[], record: KeyRecord, body: BodyHashResult, minRSABits: number): string | undefined {
  if (record.hashes && !record.hashes.includes('sha256')) throw new Refusal('permerror', 'key record does not allow sha256 (h=)');
  // RFC 6376 3.6.1 s=: the key must be for email or for any service.
  if (!record.services.includes('*') && !record.services.includes('email')) throw new Refusal('permerror', 'key record is not for email (s=)');
  if (record.data.length === 0) throw new Refusal('permerror', 'key revoked');
  if (record.keyType !== sig.keyType) throw new Refusal('permerror', `key type k=${quote(record.keyType)} does not match a=`);
  let key: KeyObject;
  try {
    key = recordPublicKey(record);
  } catch (e) {
    throw new Refusal('permerror', `key record syntax error: ${(e as Error).message}`);
  }
  if (sig.keyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    // RFC 8301 3.2: signatures with RSA keys below 1024 bits must not be considered valid.
    if (bits < MIN_RSA_BITS) throw new Refusal('fail', `RSA key of ${bits} bits is too small (RFC 8301 3.2)`);
    if (bits < minRSABits) throw new Refusal('policy', `RSA key of ${bits} bits is below the local minimum of ${minRSABits}`);
    if (bits > MAX_RSA_BITS) throw new Refusal('policy', `RSA key of ${bits} bits is larger than ${MAX_RSA_BITS}`);
  }
  // RFC 6376 3.10 and 3.6.1 t=s: the i= domain must be d= itself.
  if (record.flags.includes('s') && sig.identityDomain !== sig.domain) throw new Refusal('permerror', 'key record does not allow i= subdomains (t=s)');

  // RFC 6376 6.1.3: body hash first, then the header signature.
  if (sig.length !== undefined && body.length < sig.length) throw new Refusal('fail', `body is shorter than l=${sig.length}`);
  if (!body.hash.equals(sig.bodyHash)) throw new Refusal('fail', 'body hash did not verify');
  const raw = fields[sig.index]!.raw;
  const data = Buffer.from(
    signedFields(fields, sig.headers, sig.index, sig.headerCanon) + canonHeader(withoutSignature(raw), sig.headerCanon).slice(0, -2),
    'latin1',
  );
  let ok = false;
  try {
    ok =
      sig.keyType === 'rsa'
        ? cryptoVerify('sha256', data, key, sig.signature)
        : // RFC 8463 3: Ed25519 signs the SHA-256 hash of the data.
          cryptoVerify(null, createHash('sha256').update(data).digest(), key, sig.signature);
  } catch {
    // a malformed signature value does not verify
  }
  if (!ok) throw new Refusal('fail', 'signature did not verify');
  // RFC 6376 8.2: content after l= bytes is not covered.
  if (sig.length !== undefined && body.length > sig.length) return `l= covers ${sig.length} of ${body.length} body bytes`;
  return undefined;
}

/** RFC 6008 2: header.b is at least 8 chars, and long enough to tell the signatures apart. */
function setHeaderB(results: DKIMResult[], bs: string[]): void {
  const sorted = bs.filter((b) => b !== '').sort();
  const common = (a = '', b = '') => {
    let n = 0;
    while (n < a.length && a[n] === b[n]) n++;
    return n;
  };
  results.forEach((r, i) => {
    const b = bs[i]!;
    const at = sorted.indexOf(b);
    const n = Math.max(8, common(b, sorted[at - 1]) + 1, common(b, sorted[at + 1]) + 1);
    r.headerB = b.slice(0, n);
  });
}

/** The dkim= resinfo entries for Authentication-Results (RFC 8601 2.7.1); "dkim=none" when unsigned. */
export function authResults(results: DKIMResult[]): string[] {
  if (results.length === 0) return ['dkim=none'];
  return results.map((r) => {
    let s = `dkim=${r.status}`;
    if (r.reason) s += ` reason=${quoted(r.reason)}`;
    const props: [string, string | undefined][] = [
      ['header.d', r.domain],
      ['header.i', r.identity],
      ['header.s', r.selector],
      ['header.a', r.algorithm],
      ['header.b', r.headerB],
    ];
    for (const [name, value] of props) if (value) s += ` ${name}=${pvalue(value)}`;
    return s;
  });
}

/** RFC 8601 2.2 pvalue: a token, an address or domain as is, anything else quoted. */
function pvalue(v: string): string {
  if (/^[!#$%&'*+\-.^_`{|}~A-Za-z0-9]+$/.test(v)) return v;
  if (/^[!#$%&'*+\-./=?^_`{|}~A-Za-z0-9]*@[A-Za-z0-9_.-]+$/.test(v)) return v;
  return quoted(v);
}

function quoted(v: string): string {
  return '"' + v.replace(/[^\x20-\x7e]/g, '?').replace(/[\\"]/g, '\\$&') + '"';
}
