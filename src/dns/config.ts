// Resolver addresses: "host:port" strings as used in the configuration, and the system defaults.

import { readFileSync } from 'node:fs';
import { isIP, isIPv6 } from 'node:net';

export interface ServerAddress {
  /** IP address literal, IPv6 without brackets. */
  host: string;
  port: number;
}

/**
 * Parses "127.0.0.1", "127.0.0.1:53", "[::1]:5353" or a bare IPv6 address "::1". The port
 * defaults to 53. Only IP literals are accepted: a resolver's address cannot itself be resolved.
 */
export function parseServerAddress(s: string): ServerAddress {
  let host = s;
  let port = '53';
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2] ?? port;
    if (!isIPv6(host)) throw new Error(`invalid DNS server address ${JSON.stringify(s)}: not an IPv6 address`);
  } else if (!isIPv6(s)) {
    const m = /^([^:]+):(\d+)$/.exec(s);
    if (m) [, host = '', port = ''] = m;
  }
  const n = Number(port);
  if (!isIP(host)) throw new Error(`invalid DNS server address ${JSON.stringify(s)}: not an IP address`);
  if (!/^\d{1,5}$/.test(port) || n < 1 || n > 65535) throw new Error(`invalid DNS server address ${JSON.stringify(s)}: bad port`);
  return { host, port: n };
}

export function formatServerAddress(a: ServerAddress): string {
  return isIPv6(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

// resolv.conf(5): at most MAXNS (3) name servers are used.
const MAXNS = 3;

/** The "nameserver" addresses of a resolv.conf(5) file, as "host:port" strings; invalid entries are skipped. */
export function parseResolvConf(text: string): string[] {
  const servers: string[] = [];
  for (const line of text.split('\n')) {
    const [keyword, value] = line.replace(/[#;].*/, '').trim().split(/\s+/);
    if (keyword !== 'nameserver' || !value || servers.length >= MAXNS) continue;
    if (isIP(value)) servers.push(formatServerAddress({ host: value, port: 53 }));
  }
  return servers;
}

/**
 * The system's resolvers from /etc/resolv.conf. Without any, resolv.conf(5) says the name
 * server on the local machine is used.
 */
export function systemServers(path = '/etc/resolv.conf'): string[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // A missing file means the local default below.
  }
  const servers = parseResolvConf(text);
  return servers.length > 0 ? servers : ['127.0.0.1:53', '[::1]:53'];
}
