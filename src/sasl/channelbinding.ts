// TLS channel binding data for SCRAM-*-PLUS, computed the same way on both ends of a connection.
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

export type ChannelBindingType = 'tls-exporter' | 'tls-server-end-point';

export const CHANNEL_BINDING_TYPES: readonly ChannelBindingType[] = ['tls-exporter', 'tls-server-end-point'];

export interface ChannelBinding {
  type: ChannelBindingType;
  data: Buffer;
}

/**
 * Channel binding data of an established TLS connection, or undefined when the type is not
 * defined for it. `side` says which end `socket` is, to find the server's certificate.
 */
export function channelBindingData(socket: TLSSocket, type: ChannelBindingType, side: 'server' | 'client'): Buffer | undefined {
  if (!socket.encrypted || socket.getProtocol() == null) return undefined;
  if (type === 'tls-exporter') {
    // RFC 9266 3: only TLS 1.3 gives exporter values that are unique to the connection without
    // relying on the extended master secret, which node does not let us check.
    if (socket.getProtocol() !== 'TLSv1.3') return undefined;
    return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  }
  const cert = side === 'server' ? socket.getX509Certificate() : socket.getPeerX509Certificate();
  return cert === undefined ? undefined : tlsServerEndPoint(cert.raw);
}

/** The binding a client should use: tls-exporter on TLS 1.3, else tls-server-end-point. */
export function preferredChannelBinding(socket: TLSSocket, side: 'server' | 'client'): ChannelBinding | undefined {
  for (const type of CHANNEL_BINDING_TYPES) {
    const data = channelBindingData(socket, type, side);
    if (data !== undefined) return { type, data };
  }
  return undefined;
}

// Hash algorithms named by signature algorithm OIDs (RFC 3279, RFC 4055, RFC 5758).
const SIGNATURE_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5',
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha1',
  '2.16.840.1.101.3.4.3.1': 'sha224',
  '2.16.840.1.101.3.4.3.2': 'sha256',
};
const HASH_OID: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const RSASSA_PSS = '1.2.840.113549.1.1.10';

/**
 * RFC 5929 4.1: the certificate hashed with its signature algorithm's hash, MD5 and SHA-1 replaced
 * by SHA-256. Undefined when the algorithm has no single hash (e.g. Ed25519) or is unknown, in
 * which case the binding is undefined and -PLUS must not be offered with it.
 */
export function tlsServerEndPoint(certificateDER: Buffer): Buffer | undefined {
  const hash = signatureHash(certificateDER);
  if (hash === undefined) return undefined;
  return createHash(hash === 'md5' || hash === 'sha1' ? 'sha256' : hash)
    .update(certificateDER)
    .digest();
}

interface TLV {
  tag: number;
  start: number;
  end: number;
}

// Reads one DER element inside [offset, limit); undefined when it does not fit.
function readTLV(der: Buffer, offset: number, limit: number): TLV | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n < 1 || n > 4 || start + n > limit) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[start + i]!;
    start += n;
  }
  const end = start + length;
  return end <= limit ? { tag, start, end } : undefined;
}

function decodeOID(bytes: Buffer): string {
  const arcs: number[] = [];
  let value = 0;
  for (const b of bytes) {
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  const first = arcs.shift() ?? 0;
  const top = Math.min(Math.floor(first / 40), 2);
  return [top, first - 40 * top, ...arcs].join('.');
}

// Reads the OID of an AlgorithmIdentifier element and the position of its parameters.
function algorithm(der: Buffer, alg: TLV | undefined): { oid: string; params: number } | undefined {
  if (alg?.tag !== 0x30) return undefined;
  const oid = readTLV(der, alg.start, alg.end);
  if (oid?.tag !== 0x06) return undefined;
  return { oid: decodeOID(der.subarray(oid.start, oid.end)), params: oid.end };
}

// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } (RFC 5280 4.1).
function signatureHash(der: Buffer): string | undefined {
  const cert = readTLV(der, 0, der.length);
  if (cert?.tag !== 0x30) return undefined;
  const tbs = readTLV(der, cert.start, cert.end);
  if (tbs === undefined) return undefined;
  const sigAlg = readTLV(der, tbs.end, cert.end);
  const alg = algorithm(der, sigAlg);
  if (sigAlg === undefined || alg === undefined) return undefined;
  if (alg.oid !== RSASSA_PSS) return SIGNATURE_HASH[alg.oid];
  // RFC 4055 3.1: RSASSA-PSS-params starts with [0] hashAlgorithm, defaulting to SHA-1.
  const params = readTLV(der, alg.params, sigAlg.end);
  if (params?.tag !== 0x30) return 'sha1';
  const first = readTLV(der, params.start, params.end);
  if (first?.tag !== 0xa0) return 'sha1';
  const hashAlg = algorithm(der, readTLV(der, first.start, first.end));
  return hashAlg === undefined ? undefined : HASH_OID[hashAlg.oid];
}
