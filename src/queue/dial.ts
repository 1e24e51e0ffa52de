// Outbound TCP connections for deliveries: direct with a connect timeout, or through a SOCKS5
// proxy (RFC 1928, no authentication).
import net from 'node:net';
import { ipBytes } from '../dns/domain.js';

export class DialError extends Error {
  override name = 'DialError';
}

/** Connects to host:port; rejects with a DialError after timeoutMs. */
export function dialTCP(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new DialError(`connecting to ${host} port ${port}: timeout after ${timeoutMs / 1000}s`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      s.destroy();
      reject(new DialError(`connecting to ${host} port ${port}: ${e.message}`));
    });
  });
}

/** Reads exactly n bytes; the proxy's replies are short and come in one piece or a few. */
function readN(s: net.Socket, n: number, state: { buf: Buffer }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (state.buf.length < n) return false;
      const out = state.buf.subarray(0, n);
      state.buf = state.buf.subarray(n);
      s.off('data', onData);
      s.off('close', onClose);
      resolve(out);
      return true;
    };
    const onData = (d: Buffer) => {
      state.buf = Buffer.concat([state.buf, d]);
      check();
    };
    const onClose = () => reject(new DialError('SOCKS proxy closed the connection'));
    if (check()) return;
    s.on('data', onData);
    s.once('close', onClose);
  });
}

const socksErrors = ['succeeded', 'general failure', 'connection not allowed by ruleset', 'network unreachable', 'host unreachable', 'connection refused', 'TTL expired', 'command not supported', 'address type not supported'];

/** Connects to ip:port through the SOCKS5 proxy at proxy ("host:port"). */
export async function dialSocks(proxy: string, ip: string, port: number, timeoutMs: number): Promise<net.Socket> {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(proxy);
  if (!m) throw new DialError(`bad SOCKS proxy address ${proxy}`);
  const s = await dialTCP(m[1]!, Number(m[2]), timeoutMs);
  const timer = setTimeout(() => s.destroy(new DialError('SOCKS proxy timeout')), timeoutMs);
  s.on('error', () => {});
  try {
    const st = { buf: Buffer.alloc(0) };
    // RFC 1928 3: version 5, one method, "no authentication required".
    s.write(Buffer.from([5, 1, 0]));
    const hello = await readN(s, 2, st);
    if (hello[0] !== 5 || hello[1] !== 0) throw new DialError('SOCKS proxy wants authentication');
    // RFC 1928 4: CONNECT to an IPv4 (1) or IPv6 (4) address.
    const v4 = net.isIPv4(ip);
    const addr = ipBytes(ip);
    if (!addr) throw new DialError(`not an IP address: ${ip}`);
    const portB = Buffer.alloc(2);
    portB.writeUInt16BE(port);
    s.write(Buffer.concat([Buffer.from([5, 1, 0, v4 ? 1 : 4]), addr, portB]));
    const head = await readN(s, 4, st);
    if (head[0] !== 5 || head[1] !== 0) throw new DialError(`SOCKS proxy: ${socksErrors[head[1]!] ?? `error ${head[1]}`} for ${ip} port ${port}`);
    // RFC 1928 6: the bound address and port follow.
    const len = head[3] === 1 ? 4 : head[3] === 4 ? 16 : (await readN(s, 1, st))[0]!;
    await readN(s, len + 2, st);
    clearTimeout(timer);
    if (st.buf.length) s.unshift(st.buf);
    s.removeAllListeners('error');
    return s;
  } catch (e) {
    clearTimeout(timer);
    s.destroy();
    throw e instanceof DialError ? e : new DialError(`SOCKS proxy: ${(e as Error).message}`);
  }
}
