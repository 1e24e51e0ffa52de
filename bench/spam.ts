// Delivery rate with the junk checks (reputation, Bayesian filter) into an empty account and
// into one that already holds many messages, to show that the checks do not slow down as an
// account grows: every lookup goes through an index and reads a bounded number of rows.
//
//   node --import tsx bench/spam.ts [--messages 100000] [--seconds 15] [--warmup 3] [--conns 8]
//
// The earlier messages are written through the store API while the server is stopped. They
// come from the same From domains and IP networks as the benchmark's messages and are recent
// and unclassified, the worst case: every reputation step reads its full window of rows and
// finds nothing, so every message also goes through the Bayesian filter, which was trained on
// the SpamAssassin sample in test/fixtures/junk. First-time senders are not delayed here
// (FirstTimeSenderDelaySeconds: 0): the benchmark measures the work, not the tarpit.
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import os from 'node:os';
import zlib from 'node:zlib';
import { startServe, root, type TestServer } from '../test/helpers/server.js';
import { Raw, type SMTPReply } from '../test/helpers/raw.js';
import { Store } from '../src/store/store.js';
import { Filter } from '../src/junk/filter.js';
import { tokenize } from '../src/junk/tokenize.js';
import { reputationPrefixes } from '../src/limits/limiter.js';
import { now, numberFlags, printTable, processCPU, summarize, writeResult, type Summary } from './lib.js';

const opts = numberFlags({ messages: 100_000, seconds: 15, warmup: 3, conns: 8 });
const domains = 50;
const words = 'the release notes describe the new build of the mail server with fixes for the queue index and the report of last week about the meeting and the project schedule'.split(' ');

/** Loopback source address k of connection c: one /21 per connection, spread over its /24s. */
const sourceIP = (c: number, k: number) => `127.${20 + c}.${k % 8}.${10 + (Math.floor(k / 8) % 200)}`;
const ipsPerConn = 400;

function body(seed: number): string {
  const lines: string[] = [];
  for (let l = 0; l < 20; l++) {
    const w: string[] = [];
    for (let i = 0; i < 12; i++) w.push(words[(seed * 31 + l * 7 + i * 13) % words.length]!);
    lines.push(w.join(' '));
  }
  return lines.join('\r\n');
}

function message(from: string, n: number): string {
  return `From: <${from}>\r\nTo: <jane@example.test>\r\nSubject: build report ${n}\r\nMessage-ID: <${n}.${Date.now()}@bench.example>\r\nDate: ${new Date().toUTCString()}\r\n\r\n${body(n)}\r\n`;
}

/** A stopped server whose account jane has a trained filter and `prior` earlier messages. */
async function setup(prior: number): Promise<TestServer> {
  const srv = await startServe();
  await srv.stop();
  const domainsFile = path.join(path.dirname(srv.configFile), 'domains.conf');
  const conf = fs.readFileSync(domainsFile, 'utf8');
  fs.writeFileSync(domainsFile, conf.replace('        Mailbox: Archive\n', '        Mailbox: Archive\n    JunkFilter:\n      FirstTimeSenderDelaySeconds: 0\n'));

  const store = new Store(srv.dataDir);
  const acc = store.account('jane');
  const filter = new Filter(path.join(acc.dir, 'junkfilter.db'));
  const corpus = zlib.gunzipSync(fs.readFileSync(path.join(root, 'test/fixtures/junk/spamassassin.jsonl.gz'))).toString('utf8').trim().split('\n');
  filter.db.transaction(() => {
    for (const l of corpus) {
      const s = JSON.parse(l) as { label: string; text: string };
      filter.train(tokenize(Buffer.from(s.text)), s.label === 'spam', 1);
    }
    filter.setMeta('created', Date.now());
  })();
  filter.close();

  const t0 = now();
  let file = await store.writeTemp(Buffer.from(message('x@sender0.example', 0)));
  const at = Date.now();
  for (let i = 0; i < prior; i += 1000) {
    // A file can have only so many hard links.
    if (i % 20_000 === 0) file = await store.writeTemp(Buffer.from(message(`x@sender${i % domains}.example`, i)));
    await Promise.all(
      Array.from({ length: Math.min(1000, prior - i) }, (_, j) => {
        const n = i + j;
        const ip = sourceIP(n % opts.conns, Math.floor(n / opts.conns) % ipsPerConn);
        const domain = `sender${n % domains}.example`;
        return acc.deliver(file, {
          mailbox: 'Inbox',
          received: at - (n % 48) * 3600_000,
          meta: { remoteIP: ip, remoteIPMasks: reputationPrefixes(ip), ehloDomain: `mail.${domain}`, mailFrom: `bounce@${domain}`, mailFromDomain: domain, msgFrom: `user${n % 5000}@${domain}`, msgFromDomain: domain, msgFromOrgDomain: domain, messageId: `<${n}@bench>` },
        });
      }),
    );
  }
  if (prior) console.log(`wrote ${prior} earlier messages in ${((now() - t0) / 1000).toFixed(1)} s`);
  store.close();
  await srv.start();
  for (let c = 0; c < opts.conns; c++) {
    for (let k = 0; k < ipsPerConn; k++) {
      const ip = sourceIP(c, k);
      srv.dns.set(`${ip.split('.').reverse().join('.')}.in-addr.arpa`, 'PTR', [`h${c}-${k}.bench.example`]);
      srv.dns.set(`h${c}-${k}.bench.example`, 'A', [ip]);
    }
  }
  return srv;
}

interface Run {
  prior: number;
  /** Time the junk checks took per message in the server, from its log, ms. */
  checkMs: Summary;
  accepted: number;
  junked: number;
  refused: number;
  msgsPerSec: number;
  latency: Summary;
  serverCPU: number;
}

async function connectFrom(port: number, ip: string): Promise<Raw> {
  const s = await new Promise<net.Socket>((resolve, reject) => {
    const c = net.connect({ port, host: '127.0.0.1', localAddress: ip }, () => resolve(c));
    c.once('error', reject);
  });
  return new Raw(s);
}

function expect(r: SMTPReply, code: number, step: string): void {
  if (r.code !== code) throw new Error(`${step}: expected ${code}, got ${r.code} ${r.text}`);
}

async function run(srv: TestServer, prior: number): Promise<Run> {
  const start = now() + opts.warmup * 1000;
  const end = start + opts.seconds * 1000;
  const latencies: number[] = [];
  let refused = 0;
  let cpu0 = 0;
  const timer = setTimeout(() => (cpu0 = processCPU(srv.proc!.pid!)), start - now());
  const loop = async (c: number) => {
    for (let k = 0; now() < end; k++) {
      // A new source address every 50 messages keeps each network below the delivery rate limits.
      const conn = await connectFrom(srv.ports.smtp, sourceIP(c, k % ipsPerConn));
      try {
        expect(await conn.reply(), 220, 'greeting');
        expect(await conn.cmd(`EHLO h${c}-${k % ipsPerConn}.bench.example`), 250, 'EHLO');
        for (let i = 0; i < 50 && now() < end; i++) {
          const n = (c * 1_000_000 + k * 50 + i) * 7;
          const from = `new${c}-${k}-${i}@sender${n % domains}.example`;
          conn.write(`MAIL FROM:<${from}>\r\nRCPT TO:<jane@example.test>\r\nDATA\r\n`);
          expect(await conn.reply(), 250, 'MAIL');
          expect(await conn.reply(), 250, 'RCPT');
          expect(await conn.reply(), 354, 'DATA');
          conn.write(message(from, n).replace(/^\./gm, '..') + '.\r\n');
          const t0 = now();
          const r = await conn.reply(30_000);
          const t1 = now();
          if (r.code === 451) refused++;
          else expect(r, 250, 'end of DATA');
          if (t1 >= start && t1 < end) latencies.push(t1 - t0);
        }
        await conn.cmd('QUIT');
      } finally {
        conn.close();
      }
    }
  };
  await Promise.all(Array.from({ length: opts.conns }, (_, c) => loop(c)));
  clearTimeout(timer);
  const cpu = processCPU(srv.proc!.pid!) - cpu0;
  const verdicts = srv.output.split('\n').filter((l) => l.includes('"junk verdict"'));
  return {
    prior,
    checkMs: summarize(verdicts.map((l) => (JSON.parse(l) as { ms: number }).ms)),
    accepted: verdicts.filter((l) => l.includes('"action":"accept"')).length,
    junked: verdicts.filter((l) => l.includes('"action":"junk"')).length,
    refused,
    msgsPerSec: latencies.length / opts.seconds,
    latency: summarize(latencies),
    serverCPU: (cpu * 100) / (opts.seconds * 1000),
  };
}

let exitCode = 0;
const runs: Run[] = [];
console.log(`Postern junk-check benchmark: ${opts.conns} connections, ${opts.warmup} s warm-up + ${opts.seconds} s per run`);
for (const prior of [0, opts.messages]) {
  const srv = await setup(prior);
  try {
    process.stdout.write(`\naccount with ${prior} messages: running...`);
    const r = await run(srv, prior);
    console.log(` ${r.accepted} accepted, ${r.junked} to Junk, ${r.refused} refused (load average ${os.loadavg()[0]!.toFixed(1)})`);
    if (r.refused) throw new Error('benchmark messages were refused; the measurement would include slowed senders');
    runs.push(r);
  } catch (e) {
    console.error('\nBENCHMARK FAILED:', (e as Error).message);
    exitCode = 1;
  } finally {
    await srv.close();
    fs.rmSync(srv.dir, { recursive: true, force: true });
  }
  if (exitCode) break;
}
if (!exitCode) {
  printTable(
    'SMTP delivery with junk checks (latency from end of DATA to reply, in ms; CPU in % of one core)',
    runs.map((r) => ({
      'messages in account': r.prior,
      'msgs/s': r.msgsPerSec,
      p50: r.latency.p50,
      p90: r.latency.p90,
      p99: r.latency.p99,
      'server CPU': r.serverCPU,
      'checks mean': r.checkMs.mean,
      'checks p99': r.checkMs.p99,
    })),
  );
  const [empty, full] = runs as [Run, Run];
  console.log(
    `\n${full.prior} messages: ${((full.msgsPerSec / empty.msgsPerSec) * 100).toFixed(0)}% of the empty account's rate; ` +
      `junk checks ${full.checkMs.mean.toFixed(2)} ms per message vs ${empty.checkMs.mean.toFixed(2)} ms (load average ${os.loadavg()[0]!.toFixed(1)})`,
  );
  console.log(`results written to ${writeResult('spam', { options: opts, runs })}`);
}
process.exitCode = exitCode;
