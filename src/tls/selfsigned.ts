// Self-signed and CA-signed X.509 certificates (RFC 5280), for localserve, client
// certificates and tests. A small DER writer suffices; keys and signatures come from node:crypto.
import { createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const c = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(c.length), c]);
};
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const int = (b: Buffer) => tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s));
const ctx = (n: number, constructed: boolean, ...c: Buffer[]) => tlv((constructed ? 0xa0 : 0x80) | n, ...c);

function oid(s: string): Buffer {
  const p = s.split('.').map(Number);
  const out = [40 * p[0]! + p[1]!];
  for (const v of p.slice(2)) {
    const enc = [v & 0x7f];
    for (let x = v >> 7; x > 0; x >>= 7) enc.unshift((x & 0x7f) | 0x80);
    out.push(...enc);
  }
  return tlv(0x06, Buffer.from(out));
}

// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime after.
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

const name = (cn: string) => seq(set(seq(oid('2.5.4.3'), utf8(cn))));

export interface CertOptions {
  names: string[];
  ips?: string[];
  /** Validity in days from an hour ago. */
  days?: number;
  isCA?: boolean;
  /** Signing CA; self-signed when absent. */
  issuer?: { certDER: Buffer; key: KeyObject; name: string };
  key?: KeyObject;
}

export interface Issued {
  key: KeyObject;
  keyPEM: string;
  certDER: Buffer;
  certPEM: string;
  name: string;
}

/** Issues an ECDSA P-256 certificate. */
export function issueCert(o: CertOptions): Issued {
  const key = o.key ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const spkiDER = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const subject = o.names[0] ?? o.ips?.[0] ?? 'localhost';
  const now = Date.now();
  const sigAlg = seq(oid('1.2.840.10045.4.3.2')); // ecdsa-with-SHA256
  const san = seq(...o.names.map((n) => ctx(2, false, Buffer.from(n))), ...(o.ips ?? []).map((ip) => ctx(7, false, ipBytes(ip))));
  const ext = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
  const extensions = [
    ext('2.5.29.19', true, seq(...(o.isCA ? [bool(true)] : []))),
    // digitalSignature, plus keyCertSign for CAs.
    ext('2.5.29.15', true, o.isCA ? tlv(0x03, Buffer.from([1, 0x84])) : tlv(0x03, Buffer.from([7, 0x80]))),
    ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'))),
    ...(o.names.length || o.ips?.length ? [ext('2.5.29.17', false, san)] : []),
  ];
  // RFC 5280 4.1.2.2: a positive serial; a first byte of 1..0x7f keeps the DER minimal.
  const serial = randomBytes(12);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const tbs = seq(
    ctx(0, true, int(Buffer.from([2]))),
    int(serial),
    sigAlg,
    name(o.issuer?.name ?? subject),
    seq(time(new Date(now - 3600_000)), time(new Date(now + (o.days ?? 3650) * 86400_000))),
    name(subject),
    spkiDER,
    ctx(3, true, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, o.issuer?.key ?? key);
  const certDER = seq(tbs, sigAlg, bits(signature));
  const b64 = certDER.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return {
    key,
    keyPEM: key.export({ format: 'pem', type: 'pkcs8' }) as string,
    certDER,
    certPEM: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
    name: subject,
  };
}

/** Self-signed certificate for names and IPs, e.g. localhost, 127.0.0.1 and ::1. */
export function selfSigned(names: string[], ips: string[] = []): { keyPEM: string; certPEM: string } {
  const c = issueCert({ names, ips });
  return { keyPEM: c.keyPEM, certPEM: c.certPEM };
}
