// Shared helpers for benchmarks: flags, timing, percentiles, figures of a process from
// /proc, the disk's fsync rate, a printed result table and JSON results in bench/results.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

/** Milliseconds since an arbitrary origin, with sub-millisecond resolution. */
export const now = (): number => performance.now();

/** Positive numeric flags "--name N", with defaults; unknown flags are an error. */
export function numberFlags<T extends Record<string, number>>(defaults: T, args = process.argv.slice(2)): T {
  const options = Object.fromEntries(Object.keys(defaults).map((k) => [k, { type: 'string' as const }]));
  const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
  const out: Record<string, number> = { ...defaults };
  for (const [k, v] of Object.entries(values)) {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new Error(`--${k}: expected a positive number, got ${JSON.stringify(v)}`);
    out[k] = n;
  }
  return out as T;
}

export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile (0 < p <= 100) of ascending values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

export function summarize(values: number[]): Summary {
  const a = [...values].sort((x, y) => x - y);
  return {
    n: a.length,
    mean: a.length ? a.reduce((x, y) => x + y, 0) / a.length : NaN,
    p50: percentile(a, 50),
    p90: percentile(a, 90),
    p99: percentile(a, 99),
    max: a.length ? a[a.length - 1]! : NaN,
  };
}

/** Resident set size and its peak, in bytes, of a process (Linux). */
export function processMemory(pid: number): { rss: number; peakRSS: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kB = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kB('VmRSS'), peakRSS: kB('VmHWM') };
}

/** CPU time (user + system) a process has used, in ms (Linux; USER_HZ is 100). */
export function processCPU(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name in parentheses, starting with field 3 (state); utime and stime are fields 14 and 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

export interface FsyncResult {
  ops: number;
  perSecond: number;
  /** Per operation, in ms. */
  latency: Summary;
}

/**
 * Durable writes per second in a fresh directory under dir: each creates a new file,
 * writes size bytes, fsyncs and closes it and, with dirSync, fsyncs the directory.
 */
export function fsyncRate(dir: string, opts: { seconds: number; size: number; dirSync: boolean }): FsyncResult {
  const work = fs.mkdtempSync(path.join(dir, 'fsync-'));
  const data = Buffer.alloc(opts.size, 'x');
  const dirFd = fs.openSync(work, 'r');
  const latencies: number[] = [];
  try {
    const start = now();
    const end = start + opts.seconds * 1000;
    let t = start;
    for (let i = 0; t < end; i++) {
      const fd = fs.openSync(path.join(work, String(i)), 'wx');
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      if (opts.dirSync) fs.fsyncSync(dirFd);
      const t1 = now();
      latencies.push(t1 - t);
      t = t1;
    }
    return { ops: latencies.length, perSecond: (latencies.length * 1000) / (t - start), latency: summarize(latencies) };
  } finally {
    fs.closeSync(dirFd);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** A number for display: integers as they are, others with 0 to 2 decimals by magnitude. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return String(n);
  const a = Math.abs(n);
  return n.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2);
}

/** Prints rows as a table, columns in order of first appearance, numbers right-aligned. */
export function printTable(title: string, rows: Record<string, string | number>[]): void {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => cols.map((c) => (typeof r[c] === 'number' ? fmt(r[c]) : (r[c] ?? ''))));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (vals: string[], right: (i: number) => boolean) =>
    vals.map((v, i) => (right(i) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  console.log(`\n${title}`);
  console.log(line(cols, () => false));
  console.log(line(widths.map((w) => '-'.repeat(w)), () => false));
  for (let r = 0; r < rows.length; r++) console.log(line(cells[r]!, (i) => typeof rows[r]![cols[i]!] === 'number'));
}

/** Writes results with a description of this machine to bench/results/<name>-<timestamp>.json; returns the path. */
export function writeResult(name: string, results: object): string {
  const date = new Date();
  const file = path.join(resultsDir, `${name}-${date.toISOString().replace(/[:.]/g, '-')}.json`);
  const host = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memory: os.totalmem(), platform: os.platform(), release: os.release(), node: process.version };
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ name, date: date.toISOString(), host, ...results }, null, 2) + '\n');
  return file;
}
