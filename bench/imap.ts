// IMAP server performance of Postern compared with Dovecot, in one run on the same messages:
// loading with MULTIAPPEND, FETCH of metadata and of whole messages, SEARCH BODY, STORE of
// flags, IDLE notification latency and memory per idle connection.
//
//   node --import tsx bench/imap.ts [--messages 10000] [--seed 1] [--batch 50] [--repeat 3]
//                                   [--samples 20] [--conns 1000]
//
// Dovecot (Debian package dovecot-imapd) runs through test/helpers/dovecot.ts and needs root;
// without it only Postern is measured. Both servers are used over plain IMAP on loopback
// (Postern with IMAP NoRequireSTARTTLS) by the same raw pipelining client, which parses
// little more than response boundaries and literals. Messages are generated from --seed:
// text, text with HTML alternative and messages with attachments, a few KB each; one word
// is in about 10% of them, for SEARCH BODY. Ratios are Postern/Dovecot.
//
// The idle connections of the memory measurement come from distinct loopback addresses
// (127.x.y.1), as both servers limit connections per address: Postern per network, Dovecot
// per user and address (mail_max_userip_connections).
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startServe, type TestServer } from '../test/helpers/server.js';
import { dovecotUnavailable, startDovecot, type Dovecot } from '../test/helpers/dovecot.js';
import { Raw, type SMTPReply } from '../test/helpers/raw.js';
import { fmt, now, numberFlags, printTable, processCPU, summarize, writeResult, type Summary } from './lib.js';

const opts = numberFlags({ messages: 10_000, seed: 1, batch: 50, repeat: 3, samples: 20, conns: 1000 });
const searchWord = 'pelican';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Messages

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const vocabulary = (
  'the a of to and in for on with is that this we you it be are as at from by our will can have not please ' +
  'project meeting agenda report budget quarter review schedule deadline invoice payment contract customer ' +
  'release version server update backup storage network security password account access support ticket ' +
  'question answer thanks regards team office travel hotel flight conference lunch dinner weekend holiday ' +
  'draft final document attached summary notes minutes proposal estimate delivery shipment order warehouse ' +
  'marketing campaign newsletter subscribers analytics dashboard metrics growth revenue forecast hiring ' +
  'interview candidate onboarding training workshop presentation slides feedback changes approved pending ' +
  'tomorrow yesterday monday tuesday wednesday thursday friday morning afternoon evening soon later ' +
  'café naïve résumé déjà Grüße Straße señor façade coöperate smörgåsbord jalapeño'
).split(' ');
const accented = vocabulary.slice(vocabulary.indexOf('café'));
const firstNames = 'Alice Bob Carol David Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Zoë Łukasz Søren'.split(' ');
const lastNames = 'Anderson Brown Clark Davis Evans Fischer García Hernández Ito Jansen Kowalski Larsen Müller Nakamura Okafor Petrov'.split(' ');
const domains = 'example.com example.org example.net mail.example mailer.example corp.example shop.example news.example'.split(' ');
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

const pad = (n: number) => String(n).padStart(2, '0');
/** RFC 5322 date-time. */
const mailDate = (d: Date) =>
  `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
/** IMAP date-time (RFC 9051 9), for APPEND. */
const imapDate = (d: Date) =>
  `"${pad(d.getUTCDate())}-${months[d.getUTCMonth()]}-${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000"`;

/** Quoted-printable (RFC 2045 6.7) of CRLF-separated text, lines soft-broken at 76 characters. */
function quotedPrintable(text: string): string {
  return text
    .split('\r\n')
    .map((line) => {
      const b = Buffer.from(line, 'utf8');
      const tokens: string[] = [];
      for (let i = 0; i < b.length; i++) {
        const c = b[i]!;
        const last = i === b.length - 1;
        tokens.push((c >= 33 && c <= 126 && c !== 61) || ((c === 32 || c === 9) && !last) ? String.fromCharCode(c) : '=' + c.toString(16).toUpperCase().padStart(2, '0'));
      }
      const out: string[] = [];
      let cur = '';
      for (const t of tokens) {
        if (cur.length + t.length > 75) {
          out.push(cur + '=');
          cur = '';
        }
        cur += t;
      }
      out.push(cur);
      return out.join('\r\n');
    })
    .join('\r\n');
}

const wrap76 = (s: string) => s.replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '');

interface Corpus {
  messages: Buffer[];
  /** APPEND flag list and date-time of each message, as sent. */
  appendArgs: string[];
  bytes: number;
  /** Messages whose body contains searchWord. */
  hits: number;
  kinds: Record<string, number>;
}

/** n messages from seed: the same bytes for every run with the same flags. */
function generate(n: number, seed: number): Corpus {
  const rnd = random(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(a: T[]): T => a[Math.floor(rnd() * a.length)]!;
  const person = () => {
    const f = pick(firstNames);
    const l = pick(lastNames);
    const addr = `${f}.${l}`.normalize('NFKD').replace(/[^A-Za-z.]/g, '').toLowerCase() + '@' + pick(domains);
    return { name: `${f} ${l}`, addr };
  };
  const encodeWord = (s: string) => (/^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s).toString('base64')}?=`);
  const mailbox = (p: { name: string; addr: string }) => `${/[^\x20-\x7e]/.test(p.name) ? encodeWord(p.name) : `"${p.name}"`} <${p.addr}>`;
  const line = () => {
    let l = pick(vocabulary);
    l = l[0]!.toUpperCase() + l.slice(1);
    const target = int(40, 72);
    while (l.length < target) l += ' ' + pick(vocabulary);
    return l + (rnd() < 0.3 ? '.' : '');
  };
  /** Plain text of about size bytes; with the search word on a short line of its own when hit. */
  const text = (size: number, hit: boolean) => {
    const lines: string[] = [`Hi ${pick(firstNames)},`, ''];
    let bytes = 0;
    while (bytes < size) {
      const para = int(2, 7);
      for (let i = 0; i < para; i++) {
        const l = line();
        lines.push(l);
        bytes += Buffer.byteLength(l) + 2;
      }
      lines.push('');
    }
    if (hit) lines.splice(int(2, lines.length - 1), 0, `See the ${searchWord} notes before ${pick(days)}.`);
    if (rnd() < 0.3) {
      lines.push(`On ${mailDate(new Date(Date.UTC(2025, 0, int(1, 28))))}, ${pick(firstNames)} wrote:`);
      for (let i = int(2, 6); i > 0; i--) lines.push('> ' + line());
      lines.push('');
    }
    lines.push('-- ', `${pick(firstNames)} ${pick(lastNames)}`, '');
    return lines.join('\r\n');
  };
  const html = (t: string) =>
    '<html><head><meta charset="utf-8"></head><body>\r\n' +
    t
      .split('\r\n\r\n')
      .map((p) => `<p>${p.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r\n/g, '<br>\r\n')}</p>`)
      .join('\r\n') +
    '\r\n</body></html>\r\n';

  const base = Date.UTC(2025, 0, 1);
  const messages: Buffer[] = [];
  const appendArgs: string[] = [];
  const ids: string[] = [];
  const kinds: Record<string, number> = {};
  let bytes = 0;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const date = new Date(base + i * 97_000 + int(0, 60_000));
    const from = person();
    const hit = rnd() < 0.1;
    if (hit) hits++;
    let subject = Array.from({ length: int(2, 7) }, () => pick(vocabulary)).join(' ');
    if (rnd() < 0.15) subject += ' ' + pick(accented);
    const reply = ids.length > 0 && rnd() < 0.25;
    const id = `<${seed}.${i}.${Math.floor(rnd() * 2 ** 32).toString(36)}@${from.addr.split('@')[1]}>`;
    const h = [
      `From: ${mailbox(from)}`,
      `To: "Jane Doe" <jane@example.test>`,
      ...(rnd() < 0.3 ? [`Cc: ${Array.from({ length: int(1, 3) }, () => mailbox(person())).join(', ')}`] : []),
      `Subject: ${reply ? 'Re: ' : ''}${encodeWord(subject)}`,
      `Date: ${mailDate(date)}`,
      `Message-ID: ${id}`,
    ];
    if (reply) {
      const parent = ids[Math.max(0, ids.length - int(1, 30))]!;
      h.push(`In-Reply-To: ${parent}`, `References: ${parent}`);
    }
    ids.push(id);
    if (rnd() < 0.4) h.push(`X-Mailer: ${pick(['Thunderbird 128.3', 'Apple Mail (2.3774)', 'Roundcube 1.6', 'K-9 Mail 6.8'])}`);
    h.push('MIME-Version: 1.0');
    const body = text(int(500, 4000), hit);
    const r = rnd();
    const boundary = `=_part_${seed}_${i}_${Math.floor(rnd() * 1e9).toString(36)}`;
    let kind: string;
    let content: string;
    if (r < 0.55) {
      kind = 'text';
      if (rnd() < 0.2) {
        h.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable');
        content = quotedPrintable(body);
      } else {
        h.push('Content-Type: text/plain; charset=utf-8; format=flowed', 'Content-Transfer-Encoding: 8bit');
        content = body;
      }
    } else if (r < 0.8) {
      kind = 'alternative';
      h.push(`Content-Type: multipart/alternative; boundary="${boundary}"`);
      content = [
        'This is a multi-part message in MIME format.',
        `--${boundary}`,
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        body,
        `--${boundary}`,
        'Content-Type: text/html; charset=utf-8',
        'Content-Transfer-Encoding: quoted-printable',
        '',
        quotedPrintable(html(body)),
        `--${boundary}--`,
        '',
      ].join('\r\n');
    } else {
      kind = 'attachment';
      h.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
      const parts = ['This is a multi-part message in MIME format.', `--${boundary}`, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', body];
      for (let a = rnd() < 0.25 ? 2 : 1; a > 0; a--) {
        const [type, ext] = pick([
          ['application/pdf', 'pdf'],
          ['image/png', 'png'],
          ['image/jpeg', 'jpg'],
          ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'xlsx'],
        ] as const);
        const raw = Buffer.alloc(int(800, 6000));
        for (let k = 0; k < raw.length; k++) raw[k] = Math.floor(rnd() * 256);
        const name = `${pick(['report', 'scan', 'photo', 'invoice', 'notes'])}-${i}.${ext}`;
        parts.push(`--${boundary}`, `Content-Type: ${type}; name="${name}"`, `Content-Disposition: attachment; filename="${name}"`, 'Content-Transfer-Encoding: base64', '', wrap76(raw.toString('base64')));
      }
      parts.push(`--${boundary}--`, '');
      content = parts.join('\r\n');
    }
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    const msg = Buffer.from(h.join('\r\n') + '\r\n\r\n' + content);
    messages.push(msg);
    bytes += msg.length;
    const f = rnd();
    const flags = f < 0.45 ? '(\\Seen)' : f < 0.55 ? '(\\Seen \\Answered)' : f < 0.6 ? '(\\Flagged)' : '()';
    appendArgs.push(`${flags} ${imapDate(date)}`);
  }
  return { messages, appendArgs, bytes, hits, kinds };
}

/** A small message for the IDLE measurements. */
function notice(n: number): Buffer {
  return Buffer.from(
    [
      'From: "Build Bot" <builds@ci.example>',
      'To: "Jane Doe" <jane@example.test>',
      `Subject: Build ${n} passed`,
      `Date: ${mailDate(new Date())}`,
      `Message-ID: <idle.${n}.${Date.now().toString(36)}@ci.example>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      `Build ${n} of the main branch passed all checks.`,
      '',
    ].join('\r\n'),
  );
}

// ---------------------------------------------------------------------------------------
// Client

interface Done {
  tag: string;
  /** Status and text after the tag, e.g. "OK FETCH completed". */
  status: string;
  ms: number;
  untagged: number;
}

interface Pending {
  tag: string;
  start: number;
  untagged: number;
  onUntagged?: (text: string, literalBytes: number) => void;
  onContinuation?: (text: string) => void;
  resolve: (d: Done) => void;
  reject: (e: Error) => void;
}

/**
 * A pipelining IMAP client that only finds response boundaries: lines, and literals, which it
 * counts without keeping. Each response goes to the oldest pending command as text with
 * literals left out.
 */
class Client {
  private partial: Buffer[] = [];
  private segments: string[] = [];
  private literalLeft = 0;
  private literalBytes = 0;
  private seq = 0;
  private readonly queue: Pending[] = [];
  private greeted?: (text: string) => void;
  private failure?: Error;
  /** Untagged responses while no command is pending. */
  onUntagged?: (text: string) => void;
  capabilities = new Set<string>();

  private constructor(private readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on('data', (b: Buffer) => this.data(b));
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const p of this.queue.splice(0)) p.reject(this.failure);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }

  static async connect(port: number, localAddress?: string): Promise<Client> {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const c = new Client(sock);
    const greeting = await new Promise<string>((resolve, reject) => {
      c.greeted = resolve;
      sock.once('close', () => reject(new Error('closed before greeting')));
    });
    if (!greeting.startsWith('* OK')) throw new Error(`greeting: ${greeting}`);
    c.caps(greeting);
    return c;
  }

  private caps(text: string): void {
    const m = /\[CAPABILITY ([^\]]*)\]/i.exec(text) ?? /^\* CAPABILITY (.*)$/i.exec(text);
    if (m) this.capabilities = new Set(m[1]!.toUpperCase().split(' '));
  }

  private data(b: Buffer): void {
    let i = 0;
    while (i < b.length) {
      if (this.literalLeft > 0) {
        const take = Math.min(this.literalLeft, b.length - i);
        this.literalLeft -= take;
        this.literalBytes += take;
        i += take;
        continue;
      }
      const nl = b.indexOf(10, i);
      if (nl < 0) {
        this.partial.push(b.subarray(i));
        break;
      }
      let line = b.subarray(i, nl + 1);
      i = nl + 1;
      if (this.partial.length) {
        this.partial.push(line);
        line = Buffer.concat(this.partial);
        this.partial = [];
      }
      const end = line.length - (line[line.length - 2] === 13 ? 2 : 1);
      if (line[end - 1] === 0x7d) {
        // "{n}" or "{n+}" at the end of the line: a literal follows.
        const open = line.lastIndexOf(0x7b, end - 1);
        const m = open >= 0 ? /^\{(\d+)\+?\}$/.exec(line.toString('latin1', open, end)) : null;
        if (m) {
          this.segments.push(line.toString('latin1', 0, end));
          this.literalLeft = Number(m[1]);
          continue;
        }
      }
      this.segments.push(line.toString('latin1', 0, end));
      const text = this.segments.length === 1 ? this.segments[0]! : this.segments.join('');
      const lit = this.literalBytes;
      this.segments = [];
      this.literalBytes = 0;
      this.response(text, lit);
    }
  }

  private response(text: string, literalBytes: number): void {
    if (this.greeted) {
      const g = this.greeted;
      this.greeted = undefined;
      g(text);
      return;
    }
    const p = this.queue[0];
    if (text.startsWith('* ')) {
      if (p) {
        p.untagged++;
        p.onUntagged?.(text, literalBytes);
      } else this.onUntagged?.(text);
      if (text.startsWith('* CAPABILITY ')) this.caps(text);
      return;
    }
    if (text.startsWith('+')) {
      p?.onContinuation?.(text);
      return;
    }
    const sp = text.indexOf(' ');
    const tag = text.slice(0, sp);
    const k = this.queue.findIndex((q) => q.tag === tag);
    if (k < 0) throw new Error(`unexpected response: ${text.slice(0, 200)}`);
    const [q] = this.queue.splice(k, 1);
    const status = text.slice(sp + 1);
    this.caps(status);
    const d = { tag, status, ms: now() - q!.start, untagged: q!.untagged };
    if (/^OK\b/i.test(status)) q!.resolve(d);
    else q!.reject(new Error(`${tag}: ${status}`));
  }

  /** Sends a command (the tag is added); resolves at its tagged OK, rejects on NO or BAD. */
  cmd(command: string | Buffer[], handlers: Pick<Pending, 'onUntagged' | 'onContinuation'> = {}): Promise<Done> {
    if (this.failure) return Promise.reject(this.failure);
    const tag = `b${++this.seq}`;
    return new Promise<Done>((resolve, reject) => {
      this.queue.push({ tag, start: now(), untagged: 0, resolve, reject, ...handlers });
      if (typeof command === 'string') this.sock.write(`${tag} ${command}\r\n`);
      else this.sock.write(Buffer.concat([Buffer.from(tag + ' '), ...command, Buffer.from('\r\n')]));
    });
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  close(): void {
    this.sock.destroy();
  }
}

const quote = (s: string) => `"${s.replace(/[\\"]/g, '\\$&')}"`;

/**
 * A logged-in connection: with LOGIN, or with AUTHENTICATE CRAM-MD5 when cheap is set and the
 * server offers it. Postern checks a LOGIN password against a bcrypt hash (cost 10) on its
 * main thread; the many connections of the memory measurement use CRAM-MD5 there instead,
 * whose stored HMAC state takes no such work.
 */
async function login(port: number, t: Target, how: { localAddress?: string; cheap?: boolean } = {}): Promise<Client> {
  const c = await Client.connect(port, how.localAddress);
  if (how.cheap && c.capabilities.has('AUTH=CRAM-MD5')) {
    await c.cmd('AUTHENTICATE CRAM-MD5', {
      onContinuation(text) {
        const challenge = Buffer.from(text.slice(2), 'base64');
        const digest = createHmac('md5', t.password).update(challenge).digest('hex');
        c.write(Buffer.from(`${t.user} ${digest}`).toString('base64') + '\r\n');
      },
    });
  } else await c.cmd(`LOGIN ${quote(t.user)} ${quote(t.password)}`);
  return c;
}

// ---------------------------------------------------------------------------------------
// Servers

interface ProcMem {
  /** Summed over processes, bytes. */
  rss: number;
  pss: number;
  processes: number;
  /** Processes named imap (Dovecot's per-connection processes). */
  imapProcesses: number;
}

function kB(text: string, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
}

function memoryOf(pids: number[]): ProcMem {
  const m: ProcMem = { rss: 0, pss: 0, processes: 0, imapProcesses: 0 };
  for (const pid of pids) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      m.rss += kB(status, 'VmRSS');
      m.pss += kB(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
      m.processes++;
      if (/^Name:\s+imap$/m.test(status)) m.imapProcesses++;
    } catch {
      // exited meanwhile
    }
  }
  return m;
}

/** The process and all its descendants. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const l = children.get(ppid) ?? [];
      l.push(Number(e));
      children.set(ppid, l);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** CPU time (user + system, ms) of a process, with that of its children it has waited for (Linux; USER_HZ is 100). */
function statCPU(pid: number | 'self', reapedChildren: boolean): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, from field 3 (state): utime, stime, cutime, cstime are fields 14 to 17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return (f[11]! + f[12]! + (reapedChildren ? f[13]! + f[14]! : 0)) * 10;
}

/**
 * CPU time of a process tree: of the processes alive, and of those that have exited, as far
 * as the root has waited for them (Dovecot's master waits for its per-connection processes).
 */
function treeCPU(root: number): number {
  let ms = 0;
  for (const pid of processTree(root)) {
    try {
      ms += statCPU(pid, pid === root);
    } catch {
      // exited meanwhile
    }
  }
  return ms;
}

/** CPU time (ms) the whole machine has been busy, over all CPUs, including time stolen by a hypervisor. */
function machineBusy(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is part of user)
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0)) * 10;
}

interface Target {
  name: 'Postern' | 'Dovecot';
  port: number;
  user: string;
  password: string;
  smtpPort?: number;
  memory(): ProcMem;
  /** CPU time (ms) used so far by the server's processes. */
  cpu(): number;
  /** Restarts a server that is one long-running process, to measure memory without garbage of earlier workloads. */
  restart?(): Promise<void>;
  /** Error lines of the server's log. */
  errors(): string[];
  stop(): Promise<void>;
}

async function postern(): Promise<Target> {
  const srv: TestServer = await startServe();
  try {
    // Plain IMAP login on loopback, as for Dovecot (ssl = no there).
    const conf = fs.readFileSync(srv.configFile, 'utf8');
    const patched = conf.replace(/(\n    IMAP:\n      Enabled: true\n      Port: \d+\n)/, '$1      NoRequireSTARTTLS: true\n');
    if (patched === conf) throw new Error('IMAP listener not found in the configuration');
    fs.writeFileSync(srv.configFile, patched);
    // No first-time sender delay (15 s by default once the junk filter has learned from the
    // loaded messages): the IDLE measurement with SMTP is about notification, not that policy.
    const domainsFile = path.join(path.dirname(srv.configFile), 'domains.conf');
    const domains = fs.readFileSync(domainsFile, 'utf8');
    const junk = domains.replace(/(\n  jane:\n    Domain: example\.test\n)/, '$1    JunkFilter:\n      FirstTimeSenderDelaySeconds: 0\n');
    if (junk === domains) throw new Error('account jane not found in domains.conf');
    fs.writeFileSync(domainsFile, junk);
    await srv.restart();
  } catch (e) {
    await srv.close();
    fs.rmSync(srv.dir, { recursive: true, force: true });
    throw e;
  }
  const pid = () => srv.proc!.pid!;
  return {
    name: 'Postern',
    port: srv.ports.imap,
    user: 'jane@example.test',
    password: 'secret-pass',
    smtpPort: srv.ports.smtp,
    memory: () => memoryOf([pid()]),
    cpu: () => processCPU(pid()),
    restart: () => srv.restart(),
    errors: () => srv.output.split('\n').filter((l) => /"level":(50|60)|"level":"(error|fatal)"/.test(l)),
    async stop() {
      await srv.close();
      fs.rmSync(srv.dir, { recursive: true, force: true });
    },
  };
}

async function dovecot(): Promise<Target> {
  const d: Dovecot = await startDovecot();
  const pidFile = path.join(d.dir, 'run', 'master.pid');
  const master = () => Number(fs.readFileSync(pidFile, 'utf8').trim());
  try {
    // The master writes its pid file shortly after it listens.
    for (let i = 0; !fs.existsSync(pidFile); i++) {
      if (i === 100) throw new Error(`dovecot wrote no ${pidFile}`);
      await sleep(50);
    }
    // Room for the idle connections: one imap process each.
    const limit = opts.conns + 100;
    if (limit > 1024) {
      const conf = path.join(d.dir, 'dovecot.conf');
      fs.appendFileSync(conf, `default_client_limit = ${limit * 2}\nservice imap {\n  process_limit = ${limit}\n}\n`);
      execFileSync('doveadm', ['-c', conf, 'reload']);
      await sleep(1000);
    }
  } catch (e) {
    await d.stop();
    throw e;
  }
  return {
    name: 'Dovecot',
    port: d.port,
    user: d.user,
    password: d.password,
    memory: () => memoryOf(processTree(master())),
    cpu: () => treeCPU(master()),
    errors: () => {
      const log = path.join(d.dir, 'dovecot.log');
      return fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter((l) => /\b(Error|Fatal|Panic):/.test(l)) : [];
    },
    stop: () => d.stop(),
  };
}

// ---------------------------------------------------------------------------------------
// Workloads

interface Figure {
  value: number;
  /** Server CPU time during the workload, ms. */
  cpu?: number;
  [k: string]: unknown;
}

type Results = Record<string, Figure>;

const median = (a: number[]) => summarize(a).p50;

async function timed<T>(t: Target, f: () => Promise<T>): Promise<{ result: T; ms: number; cpu: number }> {
  const cpu0 = t.cpu();
  const t0 = now();
  const result = await f();
  const ms = now() - t0;
  return { result, ms, cpu: t.cpu() - cpu0 };
}

/**
 * Waits until the server uses less than 5% of a core over half a second (at most a minute):
 * work it does in the background after answering, like Postern's junk filter training on
 * appended messages, is not to be counted in the next workload. Returns the time waited and
 * the CPU time used meanwhile.
 */
async function settle(t: Target): Promise<{ ms: number; cpu: number }> {
  const t0 = now();
  const cpu0 = t.cpu();
  for (let last = cpu0; now() - t0 < 60_000; ) {
    await sleep(500);
    const c = t.cpu();
    if (c - last <= 25) break;
    last = c;
  }
  return { ms: now() - t0, cpu: t.cpu() - cpu0 };
}

/** Loads the corpus with MULTIAPPEND commands of up to --batch messages, a few in flight. */
async function load(t: Target, corpus: Corpus): Promise<Figure> {
  const c = await login(t.port, t);
  try {
    for (const cap of ['MULTIAPPEND', 'LITERAL+']) if (!c.capabilities.has(cap)) throw new Error(`${t.name} does not announce ${cap}`);
    // Postern keeps small literals of one command in memory, up to 256 KB.
    const maxBytes = 192 * 1024;
    const batches: Buffer[][] = [];
    let cur: Buffer[] = [];
    let curBytes = 0;
    let count = 0;
    corpus.messages.forEach((m, i) => {
      if (count >= opts.batch || (count > 0 && curBytes + m.length > maxBytes)) {
        batches.push(cur);
        cur = [];
        curBytes = 0;
        count = 0;
      }
      if (count === 0) cur.push(Buffer.from('APPEND INBOX'));
      cur.push(Buffer.from(` ${corpus.appendArgs[i]} {${m.length}+}\r\n`), m);
      curBytes += m.length;
      count++;
    });
    if (count) batches.push(cur);
    const inFlight = 4;
    const { ms, cpu } = await timed(t, async () => {
      let next = 0;
      const lane = async () => {
        while (next < batches.length) await c.cmd(batches[next++]!);
      };
      await Promise.all(Array.from({ length: inFlight }, lane));
    });
    return { value: (corpus.messages.length * 1000) / ms, ms, cpu, mbPerSec: corpus.bytes / 1e3 / ms, commands: batches.length };
  } finally {
    c.close();
  }
}

interface FetchRun {
  ms: number;
  cpu: number;
  responses: number;
  literalBytes: number;
  sizes: number;
}

async function fetchAll(t: Target, c: Client, items: string): Promise<FetchRun> {
  let responses = 0;
  let literalBytes = 0;
  let sizes = 0;
  const { ms, cpu } = await timed(t, () =>
    c.cmd(`FETCH 1:* ${items}`, {
      onUntagged(text, lit) {
        if (!/^\* \d+ FETCH /.test(text)) return;
        responses++;
        literalBytes += lit;
        const m = /RFC822\.SIZE (\d+)/.exec(text);
        if (m) sizes += Number(m[1]);
      },
    }),
  );
  return { ms, cpu, responses, literalBytes, sizes };
}

function checkCount(what: string, t: Target, got: number, want: number, problems: string[]): void {
  if (got !== want) problems.push(`${t.name} ${what}: ${got}, expected ${want}`);
}

async function measure(t: Target, corpus: Corpus, problems: string[]): Promise<Results> {
  const r: Results = {};
  const n = corpus.messages.length;
  console.log(`\n${t.name}: loading ${n} messages (${fmt(corpus.bytes / 1e6)} MB)...`);
  r.append = await load(t, corpus);
  const after = await settle(t);
  r.append.afterMs = after.ms;
  r.append.afterCpu = after.cpu;
  console.log(`  APPEND: ${fmt(r.append.value)} msgs/s; then ${fmt(after.cpu)} ms CPU in the background, idle after ${fmt(after.ms / 1000)} s`);

  const c = await login(t.port, t);
  try {
    let exists = -1;
    const sel = await c.cmd('SELECT INBOX', {
      onUntagged(text) {
        const m = /^\* (\d+) EXISTS/.exec(text);
        if (m) exists = Number(m[1]);
      },
    });
    r.select = { value: sel.ms };
    checkCount('messages after APPEND', t, exists, n, problems);

    // Metadata: the first FETCH may build caches (Dovecot's dovecot.index.cache), later ones use them.
    const meta = 'FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE';
    const runs: FetchRun[] = [];
    for (let i = 0; i <= opts.repeat; i++) {
      const f = await fetchAll(t, c, `(${meta})`);
      checkCount('FETCH metadata responses', t, f.responses, n, problems);
      checkCount('sum of RFC822.SIZE', t, f.sizes, corpus.bytes, problems);
      runs.push(f);
    }
    const first = runs[0]!;
    const rest = runs.slice(1);
    r.fetchMetaFirst = { value: first.ms, cpu: first.cpu, msgsPerSec: (n * 1000) / first.ms };
    const restMs = median(rest.map((f) => f.ms));
    r.fetchMeta = { value: restMs, cpu: median(rest.map((f) => f.cpu)), msgsPerSec: (n * 1000) / restMs, runs: rest.map((f) => f.ms) };
    r.fetchMetaRate = { value: (n * 1000) / restMs };
    console.log(`  FETCH metadata: first ${fmt(first.ms)} ms, then ${fmt(restMs)} ms`);

    const bodies: FetchRun[] = [];
    for (let i = 0; i < opts.repeat; i++) {
      const f = await fetchAll(t, c, 'BODY.PEEK[]');
      checkCount('FETCH BODY.PEEK[] responses', t, f.responses, n, problems);
      checkCount('FETCH BODY.PEEK[] bytes', t, f.literalBytes, corpus.bytes, problems);
      bodies.push(f);
    }
    const bodyMs = median(bodies.map((f) => f.ms));
    r.fetchBody = { value: corpus.bytes / 1e3 / bodyMs, ms: bodyMs, cpu: median(bodies.map((f) => f.cpu)), msgsPerSec: (n * 1000) / bodyMs, runs: bodies.map((f) => f.ms) };
    console.log(`  FETCH BODY.PEEK[]: ${fmt(bodyMs)} ms, ${fmt(r.fetchBody.value)} MB/s`);

    const searches: { ms: number; cpu: number }[] = [];
    for (let i = 0; i < opts.repeat; i++) {
      let found = 0;
      const s = await timed(t, () =>
        c.cmd(`SEARCH BODY ${searchWord}`, {
          onUntagged(text) {
            if (text.startsWith('* SEARCH')) found += text.split(' ').length - 2;
          },
        }),
      );
      checkCount(`SEARCH BODY ${searchWord} results`, t, found, corpus.hits, problems);
      searches.push(s);
    }
    r.searchBody = { value: median(searches.map((s) => s.ms)), cpu: median(searches.map((s) => s.cpu)), runs: searches.map((s) => s.ms) };
    console.log(`  SEARCH BODY: ${fmt(r.searchBody.value)} ms`);

    const set: { ms: number; cpu: number }[] = [];
    const unset: { ms: number; cpu: number }[] = [];
    for (let i = 0; i < opts.repeat; i++) {
      set.push(await timed(t, () => c.cmd('STORE 1:* +FLAGS.SILENT (\\Seen)')));
      unset.push(await timed(t, () => c.cmd('STORE 1:* -FLAGS.SILENT (\\Seen)')));
    }
    let unseen = -1;
    await c.cmd('SEARCH UNSEEN', { onUntagged: (text) => text.startsWith('* SEARCH') && (unseen = text.split(' ').length - 2) });
    checkCount('unseen messages after STORE -FLAGS', t, unseen, n, problems);
    r.storeSeen = { value: median(set.map((s) => s.ms)), cpu: median(set.map((s) => s.cpu)), runs: set.map((s) => s.ms) };
    r.storeUnseen = { value: median(unset.map((s) => s.ms)), cpu: median(unset.map((s) => s.cpu)), runs: unset.map((s) => s.ms) };
    console.log(`  STORE +FLAGS.SILENT: ${fmt(r.storeSeen.value)} ms, -FLAGS.SILENT: ${fmt(r.storeUnseen.value)} ms`);
  } finally {
    c.close();
  }

  r.idleAppend = await idle(t, 'imap');
  console.log(`  IDLE, APPEND to EXISTS: median ${fmt(r.idleAppend.value)} ms`);
  if (t.smtpPort) {
    r.idleSMTP = await idle(t, 'smtp');
    console.log(`  IDLE, SMTP delivery to EXISTS: median ${fmt(r.idleSMTP.value)} ms`);
  }

  const logins: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = now();
    const c = await login(t.port, t);
    logins.push(now() - t0);
    c.close();
  }
  r.login = { value: median(logins), latency: summarize(logins) };
  console.log(`  connect and LOGIN: median ${fmt(r.login.value)} ms`);

  if (t.restart) {
    await t.restart();
    await settle(t);
  }
  r.memory = await connections(t);
  console.log(`  ${opts.conns} idle connections: ${fmt(r.memory.value / 1024)} KB RSS per connection`);
  return r;
}

function expect(r: SMTPReply, code: number, step: string): void {
  if (r.code !== code) throw new Error(`SMTP ${step}: expected ${code}, got ${r.code} ${r.text}`);
}

/**
 * A client idles in INBOX; another connection appends (or an SMTP client delivers) a
 * message, --samples times. Latency: from sending the message to the EXISTS at the idler.
 */
async function idle(t: Target, via: 'imap' | 'smtp'): Promise<Figure> {
  const idler = await login(t.port, t);
  const sender = via === 'imap' ? await login(t.port, t) : undefined;
  const smtp = via === 'smtp' ? await Raw.connect(t.smtpPort!) : undefined;
  try {
    if (smtp) {
      expect(await smtp.reply(), 220, 'greeting');
      expect(await smtp.cmd('EHLO client.ci.example'), 250, 'EHLO');
    }
    await idler.cmd('SELECT INBOX');
    let waiter: ((n: number) => void) | undefined;
    let started!: () => void;
    const continuation = new Promise<void>((r) => (started = r));
    const idling = idler.cmd('IDLE', {
      onContinuation: () => started(),
      onUntagged(text) {
        const m = /^\* (\d+) EXISTS/.exec(text);
        if (m) waiter?.(Number(m[1]));
      },
    });
    idling.catch(() => {}); // awaited below; a failure before then must not go unhandled
    await continuation;
    const latencies: number[] = [];
    const accepted: number[] = [];
    for (let i = 0; i < opts.samples + 2; i++) {
      const msg = notice(i);
      const exists = new Promise<number>((resolve, reject) => {
        waiter = resolve;
        setTimeout(() => reject(new Error(`${t.name}: no EXISTS within 60 s during IDLE`)), 60_000).unref();
      });
      let t0: number;
      let ack: Promise<unknown>;
      if (sender) {
        t0 = now();
        ack = sender.cmd([Buffer.from(`APPEND INBOX {${msg.length}+}\r\n`), msg]);
      } else {
        smtp!.write('MAIL FROM:<builds@ci.example>\r\nRCPT TO:<jane@example.test>\r\nDATA\r\n');
        expect(await smtp!.reply(), 250, 'MAIL');
        expect(await smtp!.reply(), 250, 'RCPT');
        expect(await smtp!.reply(), 354, 'DATA');
        t0 = now();
        smtp!.write(Buffer.concat([msg, Buffer.from('.\r\n')]));
        ack = smtp!.reply(30_000).then((r) => expect(r, 250, 'end of DATA'));
      }
      const [, ackMs] = await Promise.all([exists, ack.then(() => now() - t0)]);
      const ms = now() - t0;
      // The first two are warm-up.
      if (i >= 2) {
        latencies.push(ms);
        accepted.push(ackMs);
      }
      waiter = undefined;
      await sleep(20);
    }
    idler.write('DONE\r\n');
    await idling;
    const s = summarize(latencies);
    return { value: s.p50, latency: s, acknowledged: summarize(accepted) };
  } finally {
    idler.close();
    sender?.close();
    smtp?.close();
  }
}

/** Source address of idle connection i: a distinct loopback address, each in its own /21. */
const sourceAddress = (i: number) => `127.${1 + Math.floor(i / 32)}.${(i % 32) * 8}.1`;

/** Median of a few samples of the server's memory, half a second apart. */
async function memorySample(t: Target): Promise<ProcMem> {
  const samples: ProcMem[] = [];
  for (let i = 0; i < 5; i++) {
    if (i) await sleep(500);
    samples.push(t.memory());
  }
  const mid = (k: keyof ProcMem) => median(samples.map((s) => s[k]));
  return { rss: mid('rss'), pss: mid('pss'), processes: mid('processes'), imapProcesses: mid('imapProcesses') };
}

async function openIdle(t: Target, from: number, to: number, clients: Client[]): Promise<number> {
  const { ms } = await timed(t, async () => {
    let next = from;
    const lane = async () => {
      while (next < to) {
        const c = await login(t.port, t, { localAddress: sourceAddress(next++), cheap: true });
        clients.push(c);
        await c.cmd('SELECT INBOX');
      }
    };
    await Promise.all(Array.from({ length: 16 }, lane));
  });
  return ms;
}

/**
 * Opens --conns connections that log in and select INBOX; server memory before and after.
 * Postern is restarted first: in one process that has just fetched the whole mailbox, the
 * garbage collector would free memory while the connections are opened. A few connections
 * are opened and closed first, so code and caches that the first login and SELECT set up are
 * not counted per connection.
 */
async function connections(t: Target): Promise<Figure> {
  const clients: Client[] = [];
  try {
    await openIdle(t, opts.conns, opts.conns + 20, clients);
    for (const c of clients.splice(0)) c.close();
    await sleep(2000);
    const before = await memorySample(t);
    const openMs = await openIdle(t, 0, opts.conns, clients);
    await sleep(1000);
    const after = await memorySample(t);
    const n = clients.length;
    return {
      value: (after.rss - before.rss) / n,
      pssPerConn: (after.pss - before.pss) / n,
      before,
      after,
      openMs,
    };
  } finally {
    for (const c of clients) c.close();
    await sleep(1000);
  }
}

// ---------------------------------------------------------------------------------------
// Main

/** Raises this process's open file limit (inherited by the servers) to at least n. */
function ensureFileLimit(n: number): void {
  const limits = fs.readFileSync('/proc/self/limits', 'utf8');
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits);
  if (!m || m[1] === 'unlimited' || Number(m[1]) >= n) return;
  try {
    execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=${n}:${Math.max(n, m[2] === 'unlimited' ? n : Number(m[2]))}`]);
  } catch (e) {
    throw new Error(`open file limit ${m[1]} is below the ${n} needed, and raising it failed: ${(e as Error).message}`);
  }
}

interface Row {
  key: string;
  workload: string;
  unit: string;
  /** Whether a larger value is better. */
  higher: boolean;
  value: (r: Results) => number | undefined;
  cpu?: (r: Results) => number | undefined;
}

const rows: Row[] = [
  { key: 'append', workload: `APPEND (MULTIAPPEND of ${opts.batch}, LITERAL+)`, unit: 'msgs/s', higher: true, value: (r) => r.append?.value, cpu: (r) => r.append?.cpu },
  { key: 'appendMB', workload: 'APPEND', unit: 'MB/s', higher: true, value: (r) => r.append?.mbPerSec as number },
  { key: 'select', workload: 'SELECT INBOX after loading', unit: 'ms', higher: false, value: (r) => r.select?.value },
  { key: 'fetchMetaFirst', workload: 'FETCH 1:* metadata, first', unit: 'ms', higher: false, value: (r) => r.fetchMetaFirst?.value, cpu: (r) => r.fetchMetaFirst?.cpu },
  { key: 'fetchMeta', workload: 'FETCH 1:* metadata, again', unit: 'ms', higher: false, value: (r) => r.fetchMeta?.value, cpu: (r) => r.fetchMeta?.cpu },
  { key: 'fetchMetaRate', workload: 'FETCH 1:* metadata, again', unit: 'msgs/s', higher: true, value: (r) => r.fetchMetaRate?.value },
  { key: 'fetchBody', workload: 'FETCH 1:* BODY.PEEK[]', unit: 'MB/s', higher: true, value: (r) => r.fetchBody?.value, cpu: (r) => r.fetchBody?.cpu },
  { key: 'searchBody', workload: `SEARCH BODY (~10% match)`, unit: 'ms', higher: false, value: (r) => r.searchBody?.value, cpu: (r) => r.searchBody?.cpu },
  { key: 'storeSeen', workload: 'STORE 1:* +FLAGS.SILENT (\\Seen)', unit: 'ms', higher: false, value: (r) => r.storeSeen?.value, cpu: (r) => r.storeSeen?.cpu },
  { key: 'storeUnseen', workload: 'STORE 1:* -FLAGS.SILENT (\\Seen)', unit: 'ms', higher: false, value: (r) => r.storeUnseen?.value, cpu: (r) => r.storeUnseen?.cpu },
  { key: 'idleAppend', workload: 'IDLE: APPEND elsewhere to EXISTS, median', unit: 'ms', higher: false, value: (r) => r.idleAppend?.value },
  { key: 'idleSMTP', workload: 'IDLE: SMTP delivery to EXISTS, median', unit: 'ms', higher: false, value: (r) => r.idleSMTP?.value },
  { key: 'login', workload: 'connect + LOGIN, median of 10', unit: 'ms', higher: false, value: (r) => r.login?.value },
  { key: 'memory', workload: 'memory per idle selected connection, RSS', unit: 'KB', higher: false, value: (r) => (r.memory ? r.memory.value / 1024 : undefined) },
  { key: 'memoryPSS', workload: 'memory per idle selected connection, PSS', unit: 'KB', higher: false, value: (r) => (r.memory ? (r.memory.pssPerConn as number) / 1024 : undefined) },
];

const unavailable = dovecotUnavailable();
const loadBefore = os.loadavg();
ensureFileLimit(opts.conns * 2 + 1000);
const t0 = now();
const corpus = generate(opts.messages, opts.seed);
console.log(
  `IMAP benchmark: ${opts.messages} messages, ${fmt(corpus.bytes / 1e6)} MB (mean ${fmt(corpus.bytes / opts.messages / 1024)} KB; ` +
    `${Object.entries(corpus.kinds)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}), "${searchWord}" in ${corpus.hits}; generated in ${fmt(now() - t0)} ms`,
);
if (unavailable) console.log(`Dovecot not measured: ${unavailable}`);

const results: Partial<Record<'postern' | 'dovecot', Results>> = {};
const problems: string[] = [];
let exitCode = 0;
// CPU used by other processes during the run: the machine's busy time less this process's, its
// children's (the Postern processes, waited for once stopped) and Dovecot's (a daemon).
const busy0 = machineBusy();
const self0 = statCPU('self', true);
let daemonCPU = 0;
for (const [key, start] of [['postern', postern], ['dovecot', unavailable ? undefined : dovecot]] as const) {
  if (!start) continue;
  let t: Target | undefined;
  let cpu0 = 0;
  try {
    t = await start();
    if (key === 'dovecot') cpu0 = t.cpu();
    results[key] = await measure(t, corpus, problems);
  } catch (e) {
    console.error(`\nBENCHMARK FAILED (${key}):`, (e as Error).stack ?? e);
    const errors = t?.errors() ?? [];
    if (errors.length) console.error(`${t!.name} logged errors:\n${errors.slice(-10).join('\n')}`);
    exitCode = 1;
  } finally {
    if (t && key === 'dovecot') daemonCPU += t.cpu() - cpu0;
    await t?.stop();
  }
}
const runMs = now() - t0;
const otherCPU = Math.max(0, machineBusy() - busy0 - (statCPU('self', true) - self0) - daemonCPU);

const P = results.postern ?? {};
const D = results.dovecot ?? {};
const table = rows.map((row) => {
  const p = row.value(P);
  const d = row.value(D);
  const ratio = p !== undefined && d !== undefined ? p / d : undefined;
  let verdict = '';
  if (ratio !== undefined && Number.isFinite(ratio) && ratio > 0) {
    const good = row.higher ? ratio >= 1 : ratio <= 1;
    const word = row.unit === 'KB' ? (good ? 'less' : 'more') : good ? 'faster' : 'slower';
    verdict = `${fmt(ratio >= 1 ? ratio : 1 / ratio)}× ${word}`;
  }
  const cp = row.cpu?.(P);
  const cd = row.cpu?.(D);
  return {
    workload: row.workload,
    unit: row.unit,
    Postern: p ?? '',
    Dovecot: d ?? '',
    'Postern/Dovecot': ratio ?? '',
    Postern_is: verdict,
    'CPU ms P': cp ?? '',
    'CPU ms D': cd ?? '',
  };
});
printTable(`IMAP, ${opts.messages} messages (CPU: server CPU time during the workload, median run)`, table);
console.log(
  `\nMemory: Postern is one process (VmRSS of it); Dovecot forks an imap process per connection, so its figure is the sum over\n` +
    `its process tree (RSS counts shared library pages once per process; PSS divides them among the processes).\n` +
    `IDLE: Dovecot waits 500 ms after a change to the mailbox before it notifies (NOTIFY_DELAY_MSECS in its mailbox-watch.c).\n` +
    `LOGIN: Postern checks a bcrypt hash (cost 10, bcryptjs on its main thread); the Dovecot test instance stores {PLAIN} passwords.`,
);
// Dovecot's start-up before its CPU is first read is counted as other work: a fraction of a second.
const otherShare = otherCPU / (runMs * os.cpus().length);
console.log(`\nOther processes on this machine used ${fmt(otherCPU / 1000)} CPU seconds during the run (${fmt(otherShare * 100)}% of ${os.cpus().length} CPUs).`);
if (otherShare > 0.1) console.log('WARNING: the figures are disturbed by that other work.');
if (problems.length) {
  console.log('\nCHECKS FAILED:');
  for (const p of problems) console.log(`  ${p}`);
}
const file = writeResult('imap', {
  options: opts,
  corpus: { messages: opts.messages, bytes: corpus.bytes, kinds: corpus.kinds, searchWord, hits: corpus.hits },
  access: 'plain IMAP on 127.0.0.1, LOGIN',
  dovecot: unavailable ? { unavailable } : { version: execFileSync('dovecot', ['--version'], { encoding: 'utf8' }).trim() },
  results,
  table: rows.map((row, i) => ({ key: row.key, ...table[i] })),
  problems,
  otherWork: { cpuMs: otherCPU, share: otherShare, loadAverageBefore: loadBefore, loadAverageAfter: os.loadavg(), cpus: os.cpus().length },
  seconds: (now() - t0) / 1000,
});
console.log(`\nresults written to ${file} (total ${fmt((now() - t0) / 1000)} s)`);
process.exitCode = exitCode;
