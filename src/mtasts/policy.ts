// MTA-STS policies (RFC 8461 3.2), MX host matching (RFC 8461 4.1) and what they mean for a
// delivery (RFC 8461 5).

import { parseDomain } from '../dns/domain.js';
import { show, trimWSP } from './record.js';

export type STSMode = 'enforce' | 'testing' | 'none';

export interface Policy {
  version: 'STSv1';
  mode: STSMode;
  /** MX host patterns, A-label form, lower case: "mx.example.org" or "*.example.org". */
  mx: string[];
  /** Seconds the policy may be cached. */
  maxAge: number;
}

/** RFC 8461 3.2: the largest max_age, about a year. */
export const MAX_AGE_LIMIT = 31557600;
/** Policies are small; RFC 8461 3.3 lets senders limit the size, and 64 KiB is ample. */
export const MAX_POLICY_SIZE = 64 * 1024;

export class STSPolicyError extends Error {
  override name = 'STSPolicyError';
}

const FIELD_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

/** Parses a policy file; throws STSPolicyError naming the line and the problem. */
export function parsePolicy(text: string): Policy {
  if (text.length > MAX_POLICY_SIZE) throw new STSPolicyError(`policy larger than ${MAX_POLICY_SIZE} bytes`);
  let version: string | undefined;
  let mode: STSMode | undefined;
  let maxAge: number | undefined;
  const mx: string[] = [];
  // RFC 8461 3.2: lines end in CRLF or LF. Blank lines are tolerated.
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    if (trimWSP(line) === '') continue;
    const fail = (msg: string): never => {
      throw new STSPolicyError(`line ${i + 1}: ${msg}`);
    };
    const colon = line.indexOf(':');
    if (colon < 0) fail(`${show(line)} is not "name: value"`);
    const name = line.slice(0, colon);
    const value = trimWSP(line.slice(colon + 1));
    // RFC 8461 3.2: field names and the version and mode values are case-sensitive.
    switch (name) {
      case 'version':
        if (version !== undefined) fail('duplicate version field');
        if (value !== 'STSv1') fail(`version must be "STSv1", got ${show(value)}`);
        version = value;
        break;
      case 'mode':
        if (mode !== undefined) fail('duplicate mode field');
        if (value !== 'enforce' && value !== 'testing' && value !== 'none') fail(`mode must be enforce, testing or none, got ${show(value)}`);
        mode = value as STSMode;
        break;
      case 'max_age':
        if (maxAge !== undefined) fail('duplicate max_age field');
        if (!/^[0-9]{1,10}$/.test(value)) fail(`max_age must be 1 to 10 digits, got ${show(value)}`);
        maxAge = Math.min(Number(value), MAX_AGE_LIMIT);
        break;
      case 'mx': {
        const wildcard = value.startsWith('*.');
        let host = '';
        try {
          host = parseDomain(wildcard ? value.slice(2) : value).ascii;
        } catch (err) {
          fail(`mx ${show(value)}: ${(err as Error).message}`);
        }
        const pattern = wildcard ? `*.${host}` : host;
        if (!mx.includes(pattern)) mx.push(pattern);
        break;
      }
      default:
        // RFC 8461 3.2: unknown fields are ignored, but must be well-formed.
        if (!FIELD_NAME.test(name)) fail(`invalid field name ${show(name)}`);
    }
  }
  if (version === undefined) throw new STSPolicyError('missing version field');
  if (mode === undefined) throw new STSPolicyError('missing mode field');
  if (maxAge === undefined) throw new STSPolicyError('missing max_age field');
  if (mode !== 'none' && mx.length === 0) throw new STSPolicyError(`mode ${mode} needs at least one mx field`);
  return { version: 'STSv1', mode, mx, maxAge };
}

/** The policy as lines of text, as in a policy file and in TLS reports (RFC 8460 4.4). */
export function policyLines(p: Policy): string[] {
  return [`version: ${p.version}`, `mode: ${p.mode}`, ...p.mx.map((m) => `mx: ${m}`), `max_age: ${p.maxAge}`];
}

/**
 * Whether an MX host name matches one of the policy's patterns. RFC 8461 4.1: a "*." wildcard
 * stands for exactly one label, so "*.example.org" matches "mx.example.org" but neither
 * "example.org" nor "a.mx.example.org".
 */
export function matchesMX(policy: Policy, host: string): boolean {
  let h: string;
  try {
    h = parseDomain(host).ascii;
  } catch {
    return false;
  }
  return policy.mx.some((p) => {
    if (!p.startsWith('*.')) return p === h;
    const suffix = p.slice(1);
    const label = h.slice(0, h.length - suffix.length);
    return h.endsWith(suffix) && label !== '' && !label.includes('.');
  });
}

export interface DeliveryRules {
  /** The policy that applies, if any. */
  policy?: Policy;
  mode: STSMode;
  /**
   * Whether mail may go to this MX host. Only enforce mode limits the hosts (RFC 8461 5); in
   * testing mode a host that does not match is used anyway and the failure is reported.
   */
  mxAllowed(host: string): boolean;
  /** RFC 8461 4.2, 5: STARTTLS with a certificate that is PKIX-valid for the MX host name. */
  requireVerifiedTLS: boolean;
}

/** What a delivery to a recipient domain must do under its policy, or under none. */
export function deliveryRules(policy: Policy | undefined): DeliveryRules {
  const mode = policy?.mode ?? 'none';
  return {
    policy,
    mode,
    mxAllowed: (host) => mode !== 'enforce' || matchesMX(policy!, host),
    requireVerifiedTLS: mode === 'enforce',
  };
}
