// Reading the server name and ALPN protocols of a TLS ClientHello before the handshake starts.
// Node chooses the certificate from the SNI name alone, but a tls-alpn-01 validation (RFC 8737)
// must get the challenge certificate only when it offers ALPN "acme-tls/1", so the ClientHello is
// looked at first, and the bytes are handed back to the socket for the real handshake.
import type net from 'node:net';

export interface ClientHello {
  serverName?: string;
  alpn: string[];
}

/** Largest ClientHello read; larger ones are handled as not-a-challenge. */
const MAX_HELLO = 32 * 1024;

/**
 * The handshake message from the TLS records at the start of `buf` (RFC 8446 5.1: a handshake
 * message may span records). Undefined while incomplete; null when it is no ClientHello.
 */
function handshakeMessage(buf: Buffer): Buffer | undefined | null {
  const parts: Buffer[] = [];
  let have = 0;
  let need = -1;
  for (let at = 0; ; ) {
    if (buf.length < at + 5) return undefined;
    if (buf[at] !== 22 || buf[at + 1] !== 3) return null; // handshake record, TLS 1.x
    const len = buf.readUInt16BE(at + 3);
    if (buf.length < at + 5 + len) return undefined;
    parts.push(buf.subarray(at + 5, at + 5 + len));
    have += len;
    at += 5 + len;
    if (need < 0) {
      const first = parts[0]!;
      if (first.length < 4) return null;
      if (first[0] !== 1) return null; // client_hello
      need = 4 + first.readUIntBE(1, 3);
      if (need > MAX_HELLO) return null;
    }
    if (have >= need) return Buffer.concat(parts).subarray(0, need);
  }
}

/** Parses a ClientHello handshake message (RFC 8446 4.1.2; SNI RFC 6066 3; ALPN RFC 7301 3.1). */
export function parseClientHello(msg: Buffer): ClientHello | null {
  try {
    let p = 4 + 2 + 32; // header, legacy_version, random
    p += 1 + msg[p]!; // legacy_session_id
    p += 2 + msg.readUInt16BE(p); // cipher_suites
    p += 1 + msg[p]!; // legacy_compression_methods
    const hello: ClientHello = { alpn: [] };
    if (p >= msg.length) return hello;
    const end = p + 2 + msg.readUInt16BE(p);
    p += 2;
    while (p + 4 <= end) {
      const type = msg.readUInt16BE(p);
      const len = msg.readUInt16BE(p + 2);
      const data = msg.subarray(p + 4, p + 4 + len);
      p += 4 + len;
      if (type === 0 && data.length >= 5 && data[2] === 0) {
        hello.serverName = data.subarray(5, 5 + data.readUInt16BE(3)).toString('latin1').toLowerCase();
      } else if (type === 16 && data.length >= 2) {
        const listEnd = Math.min(data.length, 2 + data.readUInt16BE(0));
        for (let q = 2; q < listEnd; ) {
          const n = data[q]!;
          hello.alpn.push(data.subarray(q + 1, q + 1 + n).toString('latin1'));
          q += 1 + n;
        }
      }
    }
    return hello;
  } catch {
    return null;
  }
}

/**
 * Reads the ClientHello from a fresh connection and puts the bytes back, so a TLS socket
 * created afterwards sees them (Node feeds data already buffered on the socket to TLS).
 * Resolves null for anything that is not a readable ClientHello within the timeout.
 */
export function peekClientHello(socket: net.Socket, timeoutMs = 10_000): Promise<ClientHello | null> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (h: ClientHello | null) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (buf.length) socket.unshift(buf);
      resolve(h);
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const msg = handshakeMessage(buf);
      if (msg === undefined && buf.length < MAX_HELLO + 1024) return;
      done(msg ? parseClientHello(msg) : null);
    };
    const onEnd = () => done(null);
    const timer = setTimeout(() => done(null), timeoutMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}
