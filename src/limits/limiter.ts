// Rate limits per IP address and the networks around it: each limit applies to three
// prefix lengths, so one host, a small network and a provider block each have a budget.
import { isIPv4 } from 'node:net';

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock that tests can move forward (POSTERN_TEST_CLOCK=1 and the "clock advance" control
 * command), so retries, expiry and reputation windows can be tested without waiting.
 */
export class AdjustableClock implements Clock {
  private offset = 0;
  private readonly listeners = new Set<() => void>();
  now(): number {
    return Date.now() + this.offset;
  }
  advance(ms: number): void {
    this.offset += ms;
    for (const l of this.listeners) l();
  }
  /** Called after each advance, e.g. to rerun timers. */
  onAdvance(l: () => void): void {
    this.listeners.add(l);
  }
}

/** Masks per class: IPv4 /32, /26, /21 and IPv6 /64, /48, /32. */
const v4Masks = [32, 26, 21];
const v6Masks = [64, 48, 32];

function expandV6(ip: string): number[] {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  if (t.length && t[t.length - 1]!.includes('.')) {
    // IPv4-mapped tail.
    const v4 = t.pop()!.split('.').map(Number);
    t.push(((v4[0]! << 8) | v4[1]!).toString(16), ((v4[2]! << 8) | v4[3]!).toString(16));
  }
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16) || 0);
}

/** The network prefix of an IP as text, e.g. "4/24/12625921" for an IPv4 /24. */
export function ipPrefix(ip: string, bits: number): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) ip = mapped[1]!;
  if (isIPv4(ip)) {
    const n = ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
    return `4/${bits}/${Math.floor(n / 2 ** (32 - bits))}`;
  }
  const g = expandV6(ip);
  const full = Math.floor(bits / 16);
  const parts = g.slice(0, full).map(String);
  if (bits % 16) parts.push(String(g[full]! >> (16 - (bits % 16))));
  return `6/${bits}/${parts.join(':')}`;
}

/** Network keys of an IP for the three mask classes. */
export function ipKeys(ip: string): string[] {
  const v4 = isIPv4(ip) || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip);
  return (v4 ? v4Masks : v6Masks).map((m) => ipPrefix(ip, m));
}

/** Prefixes for reputation: IPv4 /26, /21, /16; IPv6 /64, /48, /32. */
export function reputationPrefixes(ip: string): [string, string, string] {
  const v4 = isIPv4(ip) || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip);
  const [a, b, c] = (v4 ? [26, 21, 16] : [64, 48, 32]).map((m) => ipPrefix(ip, m));
  return [a!, b!, c!];
}

interface Window {
  periodMs: number;
  limits: [number, number, number];
}

/** Counts events in fixed time windows per network; refuses once any limit is reached. */
export class Limiter {
  private readonly counts = new Map<string, { start: number; n: number }>();

  constructor(
    private readonly windows: Window[],
    private readonly clock: Clock = systemClock,
  ) {}

  private entries(ip: string): { key: string; limit: number; periodMs: number }[] {
    const keys = ipKeys(ip);
    return this.windows.flatMap((w, wi) => keys.map((k, i) => ({ key: `${wi}/${k}`, limit: w.limits[i]!, periodMs: w.periodMs })));
  }

  private current(key: string, periodMs: number): { start: number; n: number } {
    const now = this.clock.now();
    const start = now - (now % periodMs);
    let c = this.counts.get(key);
    if (!c || c.start !== start) {
      c = { start, n: 0 };
      this.counts.set(key, c);
      if (this.counts.size > 100_000) this.prune();
    }
    return c;
  }

  private prune(): void {
    const now = this.clock.now();
    const maxPeriod = Math.max(...this.windows.map((w) => w.periodMs));
    for (const [k, c] of this.counts) if (c.start + maxPeriod < now) this.counts.delete(k);
  }

  canAdd(ip: string, n = 1): boolean {
    return this.entries(ip).every((e) => this.current(e.key, e.periodMs).n + n <= e.limit);
  }

  add(ip: string, n = 1): void {
    for (const e of this.entries(ip)) this.current(e.key, e.periodMs).n += n;
  }

  /** Events in the current window of the first (shortest) period for this exact IP. */
  count(ip: string): number {
    const e = this.entries(ip)[0]!;
    return this.current(e.key, e.periodMs).n;
  }
}

/** Concurrent connections per network. */
export class ConnectionLimiter {
  private readonly active = new Map<string, number>();

  constructor(private readonly limits: [number, number, number]) {}

  /** Registers a connection; returns a release function, or undefined when over the limit. */
  acquire(ip: string): (() => void) | undefined {
    const keys = ipKeys(ip);
    if (keys.some((k, i) => (this.active.get(k) ?? 0) >= this.limits[i]!)) return undefined;
    for (const k of keys) this.active.set(k, (this.active.get(k) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const k of keys) {
        const n = (this.active.get(k) ?? 1) - 1;
        if (n <= 0) this.active.delete(k);
        else this.active.set(k, n);
      }
    };
  }
}
