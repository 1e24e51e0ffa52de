// IP address handling for SPF: parsing, CIDR matching and the textual forms used by macros.

import { isIPv4, isIPv6 } from 'node:net';

export interface IP {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/** Parses an IPv4 or IPv6 address (no zone, no brackets); undefined if invalid. */
export function parseIP(text: string): IP | undefined {
  if (isIPv4(text)) return { family: 4, bytes: Uint8Array.from(text.split('.'), Number) };
  if (!isIPv6(text) || text.includes('%')) return undefined;
  const bytes = new Uint8Array(16);
  let s = text;
  // RFC 4291 2.2 form 3: trailing dotted IPv4 part.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  const groups: number[] = [];
  if (tail?.[1]) {
    const v4 = tail[1].split('.').map(Number);
    s = s.slice(0, -tail[1].length) + ((v4[0]! << 8) | v4[1]!).toString(16) + ':' + ((v4[2]! << 8) | v4[3]!).toString(16);
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const parse = (p: string) => (p === '' ? [] : p.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  if (rest === undefined) groups.push(...left);
  else {
    const right = parse(rest);
    groups.push(...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right);
  }
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return { family: 6, bytes };
}

/** RFC 4291 2.5.5.2: ::ffff:a.b.c.d is an IPv4 client; SPF treats it as IPv4 (RFC 7208 5). */
export function unmapIPv4(ip: IP): IP {
  if (ip.family === 6 && ip.bytes.subarray(0, 10).every((b) => b === 0) && ip.bytes[10] === 0xff && ip.bytes[11] === 0xff) {
    return { family: 4, bytes: ip.bytes.slice(12) };
  }
  return ip;
}

/** True if both addresses are of one family and agree in their first `bits` bits. */
export function inPrefix(a: IP, b: IP, bits: number): boolean {
  if (a.family !== b.family) return false;
  const full = bits >> 3;
  for (let i = 0; i < full; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  const rem = bits & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (a.bytes[full]! & mask) === (b.bytes[full]! & mask);
}

/** Dotted quad, or for IPv6 the 32 nibbles separated by dots (RFC 7208 7.3, "i" macro). */
export function dottedIP(ip: IP): string {
  if (ip.family === 4) return ip.bytes.join('.');
  return Array.from(ip.bytes, (b) => `${(b >> 4).toString(16)}.${(b & 15).toString(16)}`).join('.');
}

/** Dotted quad, or RFC 5952 4 canonical IPv6 text. */
export function formatIP(ip: IP): string {
  if (ip.family === 4) return ip.bytes.join('.');
  const groups = Array.from({ length: 8 }, (_, i) => (ip.bytes[2 * i]! << 8) | ip.bytes[2 * i + 1]!);
  // RFC 5952 4.2: shorten the longest run of two or more zero groups, the first if tied.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
