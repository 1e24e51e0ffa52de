// Trace header fields added when a message is received (RFC 5321 4.4, RFC 5322 3.6.7).

const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/** RFC 5322 3.3 date-time, in UTC. */
export function formatDate(d: Date): string {
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

/** Folds a header field at spaces so lines stay within 78 characters where possible (RFC 5322 2.2.3). */
export function foldHeader(name: string, words: string[]): string {
  let out = `${name}:`;
  let lineLen = out.length;
  for (const w of words) {
    if (lineLen + 1 + w.length > 78 && lineLen > 1) {
      out += '\r\n\t' + w;
      lineLen = 1 + w.length;
    } else {
      out += ' ' + w;
      lineLen += 1 + w.length;
    }
  }
  return out + '\r\n';
}

export interface ReceivedInfo {
  /** EHLO/HELO argument. */
  helo: string;
  /** Reverse DNS name of the remote IP, if verified. */
  remoteName?: string;
  remoteIP: string;
  hostname: string;
  localIP: string;
  /** RFC 3848 protocol: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTPS, ... */
  with: string;
  id: string;
  recipient?: string;
  /** IANA name of the TLS cipher suite (RFC 8314 4.3) and protocol version. */
  tlsCipher?: string;
  tlsVersion?: string;
  date: Date;
}

const literal = (ip: string) => (ip.includes(':') ? `[IPv6:${ip}]` : `[${ip}]`);

/** RFC 5321 4.4: final delivery records the reverse-path (MAIL FROM, empty for the null sender) at the top. */
export function returnPathHeader(mailFrom: string): string {
  return `Return-Path: <${mailFrom}>\r\n`;
}

export function receivedHeader(r: ReceivedInfo): string {
  const words = ['from', r.helo, r.remoteName ? `(${r.remoteName} ${literal(r.remoteIP)})` : `(${literal(r.remoteIP)})`];
  words.push('by', r.hostname, `(${literal(r.localIP)})`, 'with', r.with, 'id', r.id);
  if (r.recipient) words.push('for', `<${r.recipient}>`);
  if (r.tlsCipher) words.push('tls', r.tlsCipher + (r.tlsVersion ? ` (${r.tlsVersion})` : ''));
  words[words.length - 1] += ';';
  words.push(formatDate(r.date));
  return foldHeader('Received', words);
}

/** Address without the IPv4-mapped IPv6 prefix. */
export function plainIP(ip: string | undefined): string {
  if (!ip) return '0.0.0.0';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
