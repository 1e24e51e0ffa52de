// Domain name and IP address helpers shared across Postern.

import { domainToASCII, domainToUnicode } from 'node:url';
import { isIPv4, isIPv6 } from 'node:net';

/** A validated domain name in both IDNA forms, lower case, without trailing dot. */
export interface Domain {
  /** A-label form, e.g. "xn--bcher-kva.example". */
  ascii: string;
  /** U-label form, e.g. "bücher.example". Equal to ascii for names without IDN labels. */
  unicode: string;
}

export class DomainError extends Error {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid domain name ${JSON.stringify(input.length > 80 ? input.slice(0, 80) + '…' : input)}: ${reason}`);
    this.name = 'DomainError';
  }
}

// Longer input cannot become a valid name even after IDNA mapping; checked first to bound work.
const MAX_INPUT = 1024;
// IDNA label separators (UTS #46 section 4 maps these to ".").
const SEPARATORS = /[.\u3002\uff0e\uff61]/;

/**
 * Parses a host or mail domain name given in U-label or A-label form (RFC 5890, 5891).
 * Labels are letters, digits and hyphens, not starting or ending with a hyphen (RFC 1123 2.1),
 * and the top-level label is not all-numeric (RFC 3696 2). A single trailing dot is allowed.
 */
export function parseDomain(name: string): Domain {
  return parse(name, true);
}

/**
 * Like parseDomain, but for names that are looked up rather than used as hosts, such as
 * "_dmarc.example.org" or "sel._domainkey.example.org": underscores are allowed and the
 * hostname rules on hyphens and numeric top-level labels do not apply (RFC 2181 11).
 */
export function parseDNSName(name: string): Domain {
  return parse(name, false);
}

function parse(input: string, host: boolean): Domain {
  if (input.length > MAX_INPUT) throw new DomainError(input, 'too long');
  const name = input.endsWith('.') ? input.slice(0, -1) : input;
  if (name === '') throw new DomainError(input, 'empty name');
  const ascii: string[] = [];
  const unicode: string[] = [];
  for (const label of name.split(SEPARATORS)) {
    if (label === '') throw new DomainError(input, 'empty label');
    let a: string;
    let u: string;
    if (/^[\x00-\x7f]*$/.test(label)) {
      a = label.toLowerCase();
      u = a;
      if (a.startsWith('xn--')) {
        // RFC 5891 5.4: an A-label must decode to a valid U-label that encodes back to itself.
        u = domainToUnicode(a);
        if (u === '' || u.includes('.') || domainToASCII(u) !== a) throw new DomainError(input, `invalid A-label "${a}"`);
      }
    } else {
      // RFC 5891 5: UTS #46 mapping and Punycode encoding of a U-label.
      a = domainToASCII(label);
      if (a === '' || a.includes('.')) throw new DomainError(input, `invalid label "${label}"`);
      u = domainToUnicode(a);
    }
    const allowed = host ? /^[a-z0-9-]+$/ : /^[a-z0-9_-]+$/;
    if (!allowed.test(a)) throw new DomainError(input, `bad character in label "${label}"`);
    // RFC 1035 2.3.4
    if (a.length > 63) throw new DomainError(input, `label "${a.slice(0, 20)}…" longer than 63 octets`);
    // RFC 5891 4.2.3.1 for U-labels
    if (host && [a, u].some((l) => l.startsWith('-') || l.endsWith('-'))) throw new DomainError(input, `label "${label}" starts or ends with a hyphen`);
    ascii.push(a);
    unicode.push(u);
  }
  const result = { ascii: ascii.join('.'), unicode: unicode.join('.') };
  // RFC 1035 2.3.4 limits a name to 255 octets in wire form, i.e. 253 in text form.
  if (result.ascii.length > 253) throw new DomainError(input, 'longer than 253 octets');
  if (host && /^[0-9]+$/.test(ascii[ascii.length - 1]!)) throw new DomainError(input, 'all-numeric top-level label');
  return result;
}

/**
 * The 4 (IPv4) or 16 (IPv6) bytes of an IP address in text form, or undefined if it is not one.
 * IPv6 zone identifiers ("%eth0") are not accepted.
 */
export function ipBytes(ip: string): Buffer | undefined {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip) || ip.includes('%')) return undefined;
  let text = ip;
  const v4 = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    // RFC 4291 2.2 form 3: the low 32 bits written as a dotted quad.
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, v4.index + 1) + ((b[0]! << 8) | b[1]!).toString(16) + ':' + ((b[2]! << 8) | b[3]!).toString(16);
  }
  const [head = '', tail] = text.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

const V4_MAPPED = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/** The IPv4 address inside an IPv4-mapped IPv6 address (RFC 4291 2.5.5.2), else the bytes as they are. */
function unmap(b: Buffer): Buffer {
  return b.length === 16 && b.subarray(0, 12).equals(V4_MAPPED) ? b.subarray(12) : b;
}

/** True for 127.0.0.0/8 (RFC 1122 3.2.1.3), ::1 (RFC 4291 2.5.3) and IPv4-mapped loopback addresses. */
export function isLoopbackIP(ip: string): boolean {
  const raw = ipBytes(ip);
  if (!raw) return false;
  const b = unmap(raw);
  if (b.length === 4) return b[0] === 127;
  return b.subarray(0, 15).every((x) => x === 0) && b[15] === 1;
}

/**
 * The reverse lookup name of an IP address: "4.3.2.1.in-addr.arpa" (RFC 1035 3.5) or the
 * nibble form under ip6.arpa (RFC 3596 2.5). IPv4-mapped IPv6 addresses, as seen on dual-stack
 * sockets, give the in-addr.arpa name, where their PTR records live. Throws on invalid input.
 */
export function reverseName(ip: string): string {
  const raw = ipBytes(ip);
  if (!raw) throw new Error(`invalid IP address ${JSON.stringify(ip.slice(0, 64))}`);
  const b = unmap(raw);
  if (b.length === 4) return `${b[3]}.${b[2]}.${b[1]}.${b[0]}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) nibbles.push((b[i]! & 0xf).toString(16), (b[i]! >> 4).toString(16));
  return nibbles.join('.') + '.ip6.arpa';
}
