// SMTP delivery throughput: messages per second accepted on the SMTP (port 25) listener from
// clients sending in a loop with PIPELINING, compared with the disk's rate of durable file
// writes on the same filesystem, the limit for deliveries that are not batched.
//
//   node --import tsx bench/smtp.ts [--seconds 20] [--warmup 3] [--conns 8] [--size 10240]
//
// Runs with --conns connections, then with one. Every 250 reply to DATA is checked against
// the account's index at the end of each run.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startServe, type TestServer } from '../test/helpers/server.js';
import { Raw, type SMTPReply } from '../test/helpers/raw.js';
import { fsyncRate, now, numberFlags, printTable, processCPU, processMemory, summarize, writeResult, fmt, type Summary } from './lib.js';

const opts = numberFlags({ seconds: 20, warmup: 3, conns: 8, size: 10 * 1024 });
const sender = 'newsletter@bench.example';
const rcpt = 'jane@example.test';

const words = 'the mail server accepted message delivery queue index commit durable disk group batch report weekly update team meeting notes café naïve Grüße'.split(' ');

/** Header of message n of connection c, with the empty line that ends it. */
function header(c: number, n: number): string {
  const date = new Date();
  return [
    `From: Bench Newsletter <${sender}>`,
    `To: Jane Doe <${rcpt}>`,
    `Subject: Weekly update ${n} for connection ${c}`,
    `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${date.getTime().toString(36)}.${c}.${n}@bench.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    'List-Id: Bench updates <updates.bench.example>',
    'List-Unsubscribe: <mailto:unsubscribe@bench.example?subject=unsubscribe>',
    'User-Agent: postern-bench/1',
    '',
    '',
  ].join('\r\n');
}

/** Text of at least size bytes in CRLF lines of words, with paragraphs and lines starting with a dot. */
function bodyText(size: number): string {
  let seed = 1;
  const word = () => words[((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) % words.length]!;
  let text = '';
  for (let i = 0; Buffer.byteLength(text) < size; i++) {
    let line = i % 10 === 9 ? '' : i % 25 === 12 ? '.' : i % 25 === 20 ? '..and a line starting with dots' : word();
    while (line.length > 1 && line.length < 66) line += ' ' + word();
    text += line + '\r\n';
  }
  return text;
}

/** RFC 5321 4.5.2: a dot starting a line is doubled. */
const dotStuff = (text: string) => text.replace(/^\./gm, '..');

const text = bodyText(opts.size - Buffer.byteLength(header(0, 0)));
const stuffed = dotStuff(text);
const textSize = Buffer.byteLength(text);

/** Message n of connection c, dot-stuffed and ending in CRLF.CRLF; size is unstuffed. */
function message(c: number, n: number): { data: Buffer; size: number } {
  const h = header(c, n);
  return { data: Buffer.from(h + stuffed + '.\r\n'), size: Buffer.byteLength(h) + textSize };
}

function expect(r: SMTPReply, code: number, step: string): void {
  if (r.code !== code) throw new Error(`${step}: expected ${code}, got ${r.code} ${r.text}`);
}

interface Run {
  conns: number;
  messages: number;
  msgsPerSec: number;
  mbPerSec: number;
  /** DATA end to 250 reply, ms. */
  latency: Summary;
  /** Share of one core used by the server during the measured window, %. */
  serverCPU: number;
  clientCPU: number;
  rss: number;
  peakRSS: number;
  /** All 250 replies to DATA, including the warm-up. */
  accepted: number;
  /** Index commits that added the accepted messages. */
  commits: number;
}

/**
 * Sends with conns connections for warmup + seconds; counts what completes in the measured
 * window. Fails unless the index gained exactly one message per 250 reply.
 */
async function run(srv: TestServer, conns: number): Promise<Run> {
  const pid = srv.proc!.pid!;
  const { maxModseq } = indexCounts(srv);
  const start = now() + opts.warmup * 1000;
  const end = start + opts.seconds * 1000;
  const latencies: number[] = [];
  let bytes = 0;
  let accepted = 0;
  let failed = false;
  let cpu0 = { server: 0, client: 0 };
  const sample = () => {
    const { user, system } = process.cpuUsage();
    return { server: processCPU(pid), client: (user + system) / 1000 };
  };
  const timer = setTimeout(() => (cpu0 = sample()), start - now());

  const loop = async (c: number) => {
    const conn = await Raw.connect(srv.ports.smtp);
    try {
      expect(await conn.reply(), 220, 'greeting');
      const ehlo = await conn.cmd('EHLO client.bench.example');
      expect(ehlo, 250, 'EHLO');
      if (!ehlo.lines.includes('PIPELINING')) throw new Error('PIPELINING not offered');
      for (let n = 0; !failed && now() < end; n++) {
        conn.write(`MAIL FROM:<${sender}>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n`);
        expect(await conn.reply(), 250, 'MAIL');
        expect(await conn.reply(), 250, 'RCPT');
        expect(await conn.reply(), 354, 'DATA');
        const msg = message(c, n);
        conn.write(msg.data);
        const t0 = now();
        expect(await conn.reply(30_000), 250, 'end of DATA');
        const t1 = now();
        accepted++;
        if (t1 >= start && t1 < end) {
          latencies.push(t1 - t0);
          bytes += msg.size;
        }
      }
      expect(await conn.cmd('QUIT'), 221, 'QUIT');
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      conn.close();
    }
  };
  const results = await Promise.allSettled(Array.from({ length: conns }, (_, c) => loop(c)));
  clearTimeout(timer);
  const cpu1 = sample();
  const err = results.find((r) => r.status === 'rejected');
  if (err) throw (err as PromiseRejectedResult).reason;
  const stored = indexCounts(srv, maxModseq);
  if (stored.messages !== accepted) throw new Error(`the index gained ${stored.messages} messages, but ${accepted} deliveries were acknowledged with 250`);
  const ms = opts.seconds * 1000;
  return {
    conns,
    messages: latencies.length,
    msgsPerSec: latencies.length / opts.seconds,
    mbPerSec: bytes / 1e6 / opts.seconds,
    latency: summarize(latencies),
    serverCPU: ((cpu1.server - cpu0.server) * 100) / ms,
    clientCPU: ((cpu1.client - cpu0.client) * 100) / ms,
    ...processMemory(pid),
    accepted,
    commits: stored.commits,
  };
}

/**
 * Messages in the account's index with a modseq above the given one, and the number of
 * distinct modseqs among them: each commit of a group of deliveries uses one modseq.
 */
function indexCounts(srv: TestServer, aboveModseq = 0): { messages: number; commits: number; maxModseq: number } {
  const db = new Database(path.join(srv.dataDir, 'accounts', 'jane', 'index.db'), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare('SELECT count(*) AS messages, count(DISTINCT modseq) AS commits, coalesce(max(modseq), 0) AS maxModseq FROM message WHERE modseq > ?')
      .get(aboveModseq) as { messages: number; commits: number; maxModseq: number };
  } finally {
    db.close();
  }
}

const srv = await startServe();
let exitCode = 0;
try {
  console.log(`Postern SMTP benchmark: ${opts.size}-byte messages, ${opts.warmup} s warm-up + ${opts.seconds} s per run, data in ${srv.dataDir}`);
  const fsyncDir = fsyncRate(srv.dataDir, { seconds: 3, size: opts.size, dirSync: true });
  const fsyncOnly = fsyncRate(srv.dataDir, { seconds: 3, size: opts.size, dirSync: false });
  printTable('Disk: new file, write, fsync (ops/s, latency in ms)', [
    { op: 'write+fsync+dirsync', 'ops/s': fsyncDir.perSecond, p50: fsyncDir.latency.p50, p90: fsyncDir.latency.p90, p99: fsyncDir.latency.p99 },
    { op: 'write+fsync', 'ops/s': fsyncOnly.perSecond, p50: fsyncOnly.latency.p50, p90: fsyncOnly.latency.p90, p99: fsyncOnly.latency.p99 },
  ]);

  const runs: Run[] = [];
  for (const conns of [opts.conns, 1]) {
    process.stdout.write(`\nrunning with ${conns} connection${conns > 1 ? 's' : ''}...`);
    const r = await run(srv, conns);
    console.log(` ${r.accepted} messages acknowledged, all in the index, added in ${r.commits} commits`);
    runs.push(r);
  }
  printTable(
    'SMTP delivery (latency from end of DATA to 250, in ms; CPU in % of one core; RSS in MB at the end)',
    runs.map((r) => ({
      conns: r.conns,
      'msgs/s': r.msgsPerSec,
      'MB/s': r.mbPerSec,
      'msgs/commit': r.accepted / r.commits,
      p50: r.latency.p50,
      p90: r.latency.p90,
      p99: r.latency.p99,
      'server CPU': r.serverCPU,
      'client CPU': r.clientCPU,
      RSS: r.rss / 2 ** 20,
      'peak RSS': r.peakRSS / 2 ** 20,
    })),
  );

  const many = runs[0]!;
  const one = runs[1]!;
  const ratio = (r: Run) => r.msgsPerSec / fsyncDir.perSecond;
  const batching = `${fmt(many.accepted / many.commits)} msgs per index commit`;
  const why = ratio(many) > 1 ? `thanks to group commit: ${batching}` : `below it, with ${batching}`;
  console.log(
    `\nfsync+dirsync: ${fmt(fsyncDir.perSecond)}/s (write+fsync: ${fmt(fsyncOnly.perSecond)}/s); ` +
      `Postern ${many.conns} conns: ${fmt(many.msgsPerSec)} msgs/s (= ${fmt(ratio(many))}× the single-fsync rate, ${why}); ` +
      `1 conn: ${fmt(one.msgsPerSec)} msgs/s (${fmt(ratio(one))}×)`,
  );
  const file = writeResult('smtp', { options: opts, fsync: { withDirSync: fsyncDir, fileOnly: fsyncOnly }, runs });
  console.log(`results written to ${file}`);
} catch (e) {
  console.error('\nBENCHMARK FAILED:', (e as Error).message);
  exitCode = 1;
} finally {
  await srv.stop();
  fs.rmSync(srv.dir, { recursive: true, force: true });
}
process.exitCode = exitCode;
