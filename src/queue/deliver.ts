// The delivery worker: takes due messages from the queue, grouped per recipient domain and
// transport, and delivers them directly to the MX hosts (with MTA-STS and DANE) or through a
// configured transport. Retries with backoff, sends DSNs, and retires finished messages.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Socket } from 'node:net';
import type { App } from '../server/app.js';
import type { Transport, TransportSMTP } from '../config/static.js';
import { AdjustableClock } from '../limits/limiter.js';
import { SMTPClient, type ClientOptions, type RecipientResult, type TLSOptions, type Notify, type PeerCertificates } from '../smtpclient/client.js';
import { SMTPError } from '../smtpclient/error.js';
import { DNSError } from '../dns/types.js';
import { parseDomain } from '../dns/domain.js';
import { PolicyCache } from '../mtasts/cache.js';
import { matchesMX, policyLines, type Policy } from '../mtasts/policy.js';
import { lookupDANE } from '../dane/lookup.js';
import { verifyDANE } from '../dane/verify.js';
import { formatTLSA } from '../dane/tlsa.js';
import type { PolicyResult, ResultType } from '../tlsrpt/report.js';
import { parseMessage } from '../message/part.js';
import { Log } from '../log/log.js';
import { addressDomain, type QueueMsg } from './store.js';
import { chooseTransport, checkTransports, type Chosen } from './route.js';
import { dialSocks, dialTCP } from './dial.js';
import { composeDSN, type Action, type DSNRecipient } from './dsn.js';
import { recordTLSResult, sendTLSReports } from './tlsreports.js';
import { queueDeliveries, queueTLS } from '../metrics/metrics.js';
import { suppressionLookup } from './suppression.js';
import { deliveryResult } from '../webhook/events.js';

const log = Log.pkg('queue');

/** RFC 5321 4.5.4.1 suggests at least 30 minutes; mox starts at 7.5 and doubles. */
const FIRST_BACKOFF = 7.5 * 60_000;
/** A "delayed" DSN after this many failed attempts. */
const DELAY_DSN_ATTEMPTS = 5;
const HOUR = 3600_000;

/** The next attempt after `attempts` failed ones, with a few seconds of jitter against thundering herds. */
export function backoff(attempts: number): number {
  return FIRST_BACKOFF * 2 ** Math.max(0, attempts - 1) + Math.floor(Math.random() * 5000);
}

/** What happened to one recipient in an attempt. */
type Outcome =
  | { kind: 'delivered'; mta?: string; reply?: string }
  | { kind: 'permanent' | 'temporary'; status: string; diag: string; smtp: boolean; mta?: string; suppressed?: boolean };

type Failure = Extract<Outcome, { status: string }>;

function fromError(e: SMTPError, mta?: string): Failure {
  const reply = e.reply?.lines.map((l) => l.trim()).join(' ');
  return { kind: e.permanent ? 'permanent' : 'temporary', status: e.enhanced, diag: reply ?? e.message, smtp: reply !== undefined, mta };
}

type Settle = (ms: QueueMsg[], o: Outcome) => void;

const temporary = (status: string, diag: string, mta?: string): Outcome => ({ kind: 'temporary', status, diag, smtp: false, mta });

/** How TLS is to be used with one MX host, and what its sessions count for in TLS reports. */
interface TLSPlan {
  tls: TLSOptions;
  report: Omit<PolicyResult, 'successfulSessions' | 'failedSessions' | 'failures'>;
  dane?: boolean;
}

export class Delivery {
  private readonly busy = new Set<number>();
  private readonly busyKeys = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private reportTimer?: NodeJS.Timeout;
  private closed = false;
  readonly sts: PolicyCache;
  private readonly ca: string[];

  constructor(private readonly app: App) {
    const q = app.config.static_.Queue;
    app.queue.maxAttempts = q.MaxAttempts;
    const errors = checkTransports(app.config.static_);
    if (errors.length) throw new Error(`postern.conf: ${errors.join('; ')}`);
    this.ca = [...tls.rootCertificates, ...q.CAFiles.map((f) => fs.readFileSync(app.config.resolve(f), 'utf8'))];
    this.sts = new PolicyCache(path.join(app.queue.dir, 'mtasts.db'), {
      now: () => app.clock.now(),
      fetch: { port: q.MTASTSPort, ca: this.ca, resolver: app.resolver, timeout: 30_000 },
    });
    this.cleanFiles();
  }

  /** Message files without queue entries are left by a crash between retiring and removing. */
  private cleanFiles(): void {
    const used = new Set((this.app.queue.db.prepare('SELECT DISTINCT fileid FROM msg').pluck().all() as number[]).map(String));
    const dir = path.join(this.app.queue.dir, 'msg');
    for (const sub of fs.readdirSync(dir)) {
      for (const f of fs.readdirSync(path.join(dir, sub))) if (!used.has(f)) fs.rmSync(path.join(dir, sub, f), { force: true });
    }
  }

  start(): void {
    const q = this.app.queue;
    q.on('added', () => this.schedule());
    q.on('changed', () => this.schedule());
    if (this.app.clock instanceof AdjustableClock) {
      this.app.clock.onAdvance(() => {
        this.schedule();
        void this.reports();
      });
    }
    this.reportTimer = setInterval(() => void this.reports(), HOUR);
    this.reportTimer.unref();
    this.schedule();
  }

  private reporting = false;
  private lastRefresh = 0;
  /** Daily work: TLS reports, and refreshing cached MTA-STS policies before they expire (RFC 8461 3.3). */
  private async reports(): Promise<void> {
    if (this.reporting || this.closed) return;
    this.reporting = true;
    try {
      const now = this.app.clock.now();
      if (now - this.lastRefresh > 24 * HOUR) {
        this.lastRefresh = now;
        const r = await this.sts.refresh(this.app.resolver);
        if (r.refreshed || r.removed || r.failures.length) log.info('mta-sts policies refreshed', { refreshed: r.refreshed, removed: r.removed, failures: r.failures.length });
      }
      if (!this.app.config.static_.Queue.NoTLSReports) await sendTLSReports(this.app);
    } catch (e) {
      log.error('sending tls reports', e as Error);
    } finally {
      this.reporting = false;
    }
  }

  /** Starts due deliveries and sets a timer for the next. */
  schedule(): void {
    if (this.closed || this.app.config.static_.Queue.Paused) return;
    clearTimeout(this.timer);
    this.launch();
    const rows = this.app.queue.db.prepare('SELECT id, nextattempt FROM msg WHERE hold = 0 ORDER BY nextattempt').all() as { id: number; nextattempt: number }[];
    const next = rows.find((r) => !this.busy.has(r.id));
    if (!next) return;
    // Timers are bounded, so that a changed clock is noticed.
    const wait = Math.min(Math.max(next.nextattempt - this.app.clock.now(), 1000), 10 * 60_000);
    this.timer = setTimeout(() => this.schedule(), wait);
  }

  private launch(): void {
    const q = this.app.queue;
    const now = this.app.clock.now();
    const due = (q.db.prepare('SELECT * FROM msg WHERE hold = 0 AND nextattempt <= ? ORDER BY nextattempt, id').all(now) as QueueMsg[]).filter((m) => !this.busy.has(m.id));
    const groups = new Map<string, { chosen: Chosen; msgs: QueueMsg[] }>();
    for (const m of due) {
      let chosen: Chosen;
      try {
        chosen = chooseTransport(this.app.config, m);
      } catch (e) {
        chosen = { name: `\0${(e as Error).message}` };
      }
      const key = `${m.recipientdomain}\0${chosen.name}`;
      const g = groups.get(key) ?? { chosen, msgs: [] };
      g.msgs.push(m);
      groups.set(key, g);
    }
    for (const [key, g] of groups) {
      if (this.busyKeys.size >= this.app.config.static_.Queue.Concurrency) break;
      if (this.busyKeys.has(key)) continue;
      this.busyKeys.add(key);
      for (const m of g.msgs) this.busy.add(m.id);
      const p = this.attempt(g.msgs, g.chosen)
        .catch((e) => log.error('delivery attempt', e as Error))
        .finally(() => {
          this.busyKeys.delete(key);
          for (const m of g.msgs) this.busy.delete(m.id);
          this.running.delete(p);
          this.schedule();
        });
      this.running.add(p);
    }
  }

  /** One attempt for messages to one domain with one transport. */
  private async attempt(msgs: QueueMsg[], chosen: Chosen): Promise<void> {
    const q = this.app.queue;
    const now = this.app.clock.now();
    // Counted before the attempt, so a crash during it does not make it repeat at once.
    for (const m of msgs) {
      m.attempts++;
      m.lastattempt = now;
      q.update([m.id], { attempts: m.attempts, lastattempt: now, nextattempt: now + backoff(m.attempts) });
    }
    const domain = msgs[0]!.recipientdomain;
    const dlog = log.with({ domain, transport: chosen.name.startsWith('\0') ? 'invalid' : chosen.name || 'direct', n: msgs.length });
    dlog.info('delivery attempt', { ids: msgs.map((m) => m.id), attempts: msgs.map((m) => m.attempts) });
    const outcomes = new Map<number, Outcome>();
    const settle = (ms: QueueMsg[], o: Outcome) => {
      for (const m of ms) outcomes.set(m.id, o);
      // Recorded at once: a delivered message must not be sent again after a crash.
      this.record(ms, o);
    };
    // Recipients on the account's suppression list fail without an attempt.
    const suppressed = msgs.filter((m) => m.sender !== '' && suppressionLookup(q, m.account, m.recipient));
    if (suppressed.length) settle(suppressed, { kind: 'permanent', status: '5.7.1', diag: 'recipient address is on the suppression list of the account', smtp: false, suppressed: true });
    const send = msgs.filter((m) => !suppressed.includes(m));
    if (send.length === 0) return this.afterAttempt(msgs, outcomes);
    try {
      const t = chosen.transport;
      if (chosen.name.startsWith('\0')) settle(send, temporary('4.3.5', chosen.name.slice(1)));
      else if (t?.Fail) {
        const code = t.Fail.SMTPCode;
        settle(send, { kind: code >= 500 ? 'permanent' : 'temporary', status: `${Math.floor(code / 100)}.0.0`, diag: `${code} ${t.Fail.SMTPMessage}`, smtp: false });
      } else if (t?.Submissions || t?.Submission || t?.SMTP) await this.smarthost(send, t, settle);
      else await this.direct(domain, send, t, settle);
    } catch (e) {
      dlog.error('delivery failed unexpectedly', e as Error);
    }
    const left = msgs.filter((m) => !outcomes.has(m.id));
    if (left.length) settle(left, temporary('4.0.0', 'delivery not attempted'));
    await this.afterAttempt(msgs, outcomes);
  }

  /** Stores the outcome of an attempt for messages, synchronously. */
  private record(msgs: QueueMsg[], o: Outcome): void {
    const q = this.app.queue;
    const now = this.app.clock.now();
    const keep = this.app.config.static_.Queue.RetiredDays * 86400_000;
    const exist = msgs.filter((m) => q.get(m.id));
    if (o.kind === 'delivered') {
      queueDeliveries.inc({ result: 'delivered' }, exist.length);
      q.retire(exist, true, null, now, keep, false);
      for (const m of exist) log.info('delivered', { id: m.id, recipient: m.recipient, mta: o.mta });
      deliveryResult(this.app, exist, { kind: 'delivered', final: true, reply: o.reply });
      return;
    }
    const detail = JSON.stringify({ status: o.status, mta: o.mta, diag: o.diag, smtp: o.smtp });
    for (const m of exist) {
      const giveUp = o.kind === 'permanent' || m.attempts >= m.maxattempts;
      queueDeliveries.inc({ result: o.kind === 'permanent' ? 'permanent' : giveUp ? 'expired' : 'temporary' });
      m.lasterror = o.diag;
      m.lastdetail = detail;
      if (giveUp) q.retire([m], false, o.diag, now, keep, false);
      else q.update([m.id], { lasterror: o.diag, lastdetail: detail });
      log.info(giveUp ? 'delivery failed' : 'delivery deferred', { id: m.id, recipient: m.recipient, attempts: m.attempts, error: o.diag });
      deliveryResult(this.app, [m], { kind: o.kind, final: giveUp, suppressed: o.suppressed, status: o.status, diag: o.diag, smtp: o.smtp });
    }
  }

  /** DSNs for the outcomes that ask for one, then removal of message files no longer used. */
  private async afterAttempt(msgs: QueueMsg[], outcomes: Map<number, Outcome>): Promise<void> {
    const q = this.app.queue;
    const dsns: { m: QueueMsg; r: DSNRecipient }[] = [];
    for (const m of msgs) {
      const o = outcomes.get(m.id)!;
      const notify = m.dsnnotify?.split(',') ?? [];
      const wants = (n: Notify) => (m.dsnnotify === null ? n !== 'SUCCESS' : notify.includes(n));
      const base = { recipient: m.recipient, orcpt: m.dsnorcpt, remoteMTA: o.mta, lastAttempt: new Date(m.lastattempt ?? this.app.clock.now()) };
      if (o.kind === 'delivered') {
        if (wants('SUCCESS')) dsns.push({ m, r: { ...base, action: 'delivered', status: '2.0.0', diagnostic: o.reply, smtpDiagnostic: o.reply !== undefined } });
      } else if (o.kind === 'permanent' || m.attempts >= m.maxattempts) {
        if (wants('FAILURE')) dsns.push({ m, r: { ...base, action: 'failed', status: o.status.replace(/^4/, '5'), diagnostic: o.diag, smtpDiagnostic: o.smtp } });
      } else if (m.attempts === DELAY_DSN_ATTEMPTS && !m.delaydsn && q.get(m.id) && wants('DELAY')) {
        q.update([m.id], { delaydsn: 1 });
        let until = m.lastattempt ?? 0;
        for (let a = m.attempts; a < m.maxattempts; a++) until += FIRST_BACKOFF * 2 ** (a - 1);
        dsns.push({ m, r: { ...base, action: 'delayed', status: o.status, diagnostic: o.diag, smtpDiagnostic: o.smtp, willRetryUntil: new Date(until) } });
      }
    }
    const byFile = new Map<number, typeof dsns>();
    for (const d of dsns) byFile.set(d.m.fileid, [...(byFile.get(d.m.fileid) ?? []), d]);
    for (const list of byFile.values()) {
      try {
        await this.sendDSN(list[0]!.m, list.map((d) => d.r));
      } catch (e) {
        log.error('sending dsn', e as Error);
      }
    }
    q.dropUnusedFiles(msgs.map((m) => m.fileid));
  }

  /** Sends a DSN about a message to its sender: into the Inbox of a local sender, else through the queue. */
  async sendDSN(m: QueueMsg, recipients: DSNRecipient[]): Promise<void> {
    // RFC 3461 6.2, RFC 5321 4.5.5: nothing is sent about messages from the null sender.
    if (m.sender === '') return;
    const q = this.app.queue;
    const config = this.app.config;
    let file: Buffer;
    try {
      file = await fsp.readFile(q.filePath(m.fileid));
    } catch {
      file = Buffer.alloc(0);
    }
    const now = this.app.clock.now();
    const dsn = composeDSN({
      hostname: config.static_.Hostname,
      to: m.sender,
      envid: m.dsnenvid,
      arrival: new Date(m.created),
      recipients,
      original: Buffer.concat([m.prefix ?? q.prefix(m.id), file]),
      ret: m.dsnret,
      smtputf8: !!m.smtputf8,
      messageId: m.messageid,
      date: new Date(now),
    });
    const tmp = await this.app.store.writeTemp(dsn);
    try {
      const local = config.addresses.lookup(m.sender);
      const actions = recipients.map((r) => r.action).join(',');
      if (local || config.addresses.isLocalDomain(addressDomain(m.sender))) {
        const account = local?.account ?? m.account;
        await this.app.store.account(account).deliver(tmp, { mailbox: 'Inbox', received: now, part: parseMessage(dsn) });
        log.info('dsn delivered', { account, sender: m.sender, actions });
      } else {
        const domain = addressDomain(m.sender);
        q.enqueue(tmp, {
          account: m.account,
          sender: '',
          recipients: [{ address: m.sender, domain: asciiOr(domain) }],
          has8bit: dsn.some((b) => b > 127),
          smtputf8: !!m.smtputf8,
          // RFC 8689 4.4: a DSN about a REQUIRETLS message is sent with REQUIRETLS too.
          requireTLS: m.requiretls === 1 ? true : null,
          nextAttempt: now,
          subject: 'delivery status notification',
        });
        log.info('dsn queued', { sender: m.sender, actions });
      }
    } finally {
      await fsp.rm(tmp.path, { force: true });
    }
  }

  private message(msgs: QueueMsg[]) {
    const m = msgs[0]!;
    const q = this.app.queue;
    const prefix = m.prefix ?? q.prefix(m.id);
    const file = q.filePath(m.fileid);
    return {
      from: m.sender,
      recipients: msgs.map((r) => ({ address: r.recipient, notify: passNotify(r.dsnnotify), orcpt: r.dsnorcpt?.slice(r.dsnorcpt.indexOf(';') + 1) })),
      data: async function* () {
        if (prefix.length) yield prefix;
        for await (const b of fs.createReadStream(file)) yield b as Buffer;
      },
      size: m.size,
      body: m.has8bit ? ('8BITMIME' as const) : ('7BIT' as const),
      // RFC 6531 3.4: what needs SMTPUTF8 is non-ASCII addresses (the client checks those) and
      // UTF-8 header fields; a client asking for SMTPUTF8 does not make a message need it.
      smtputf8: !!m.smtputf8 && (utf8Header(prefix) || utf8Header(fileHead(file))),
      ret: (m.dsnret ?? undefined) as 'FULL' | 'HDRS' | undefined,
      envid: m.dsnenvid ?? undefined,
      requireTLS: m.requiretls === 1,
    };
  }

  /**
   * Delivers the messages over an open connection, one transaction per message file. Returns
   * the messages that failed temporarily, which may be tried at another host.
   */
  private async transactions(client: SMTPClient, msgs: QueueMsg[], mta: string, settle: Settle, temp: Map<number, Outcome>): Promise<QueueMsg[]> {
    const byFile = new Map<number, QueueMsg[]>();
    for (const m of msgs) byFile.set(m.fileid, [...(byFile.get(m.fileid) ?? []), m]);
    const retry: QueueMsg[] = [];
    for (const group of byFile.values()) {
      const results: RecipientResult[] = await client.deliver(this.message(group));
      group.forEach((m, i) => {
        const r = results[i]!;
        if (r.reply) settle([m], { kind: 'delivered', mta, reply: r.reply.lines.join(' ') });
        else if (r.error!.permanent) settle([m], fromError(r.error!, mta));
        else {
          temp.set(m.id, fromError(r.error!, mta));
          retry.push(m);
        }
      });
    }
    return retry;
  }

  private clientOptions(tlsOptions: TLSOptions, extra: Partial<ClientOptions> = {}): ClientOptions {
    return { hostname: this.app.config.static_.Hostname, tls: tlsOptions, timeouts: { greeting: 5 * 60_000 }, ...extra };
  }

  private connectTimeout(): number {
    return this.app.config.static_.Queue.ConnectTimeoutSeconds * 1000;
  }

  private async smarthost(msgs: QueueMsg[], t: Transport, settle: Settle): Promise<void> {
    const kind = t.Submissions ? 'Submissions' : t.Submission ? 'Submission' : 'SMTP';
    const s = (t.Submissions ?? t.Submission ?? t.SMTP) as TransportSMTP;
    const port = s.Port ?? (kind === 'Submissions' ? 465 : kind === 'Submission' ? 587 : 25);
    let ips: string[];
    try {
      ips = isIP(s.Host) ? [s.Host] : (await this.app.resolver.lookupIP(s.Host)).records;
    } catch (e) {
      return settle(msgs, temporary('4.4.3', `looking up smarthost ${s.Host}: ${(e as Error).message}`));
    }
    const auth = s.Auth && {
      username: s.Auth.Username,
      password: s.Auth.Password,
      mechanisms: s.Auth.Mechanisms.length ? s.Auth.Mechanisms : ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-1', 'CRAM-MD5', 'PLAIN'],
    };
    const tlsOptions: TLSOptions =
      kind === 'Submissions' || s.NoSTARTTLS ? { mode: 'none' } : { mode: s.STARTTLSInsecureSkipVerify ? 'required' : 'verified', name: s.Host, ca: this.ca };
    let pending = msgs;
    const temp = new Map<number, Outcome>();
    let lastError = temporary('4.4.1', `no address for smarthost ${s.Host}`);
    for (const ip of ips) {
      let socket: Socket;
      try {
        socket = await dialTCP(ip, port, this.connectTimeout());
        if (kind === 'Submissions') socket = await this.implicitTLS(socket, s);
      } catch (e) {
        lastError = temporary('4.4.1', (e as Error).message, s.Host);
        continue;
      }
      let client: SMTPClient;
      try {
        client = await SMTPClient.open(socket, this.clientOptions(tlsOptions, { auth }));
      } catch (e) {
        if (!(e instanceof SMTPError)) throw e;
        // A refused login or TLS problem is fixed in the configuration, not by the sender: retried.
        lastError = { ...fromError(e, s.Host), kind: 'temporary' };
        continue;
      }
      pending = await this.transactions(client, pending, s.Host, settle, temp);
      await client.quit();
      break;
    }
    for (const m of pending) settle([m], temp.get(m.id) ?? lastError);
  }

  private implicitTLS(socket: Socket, s: TransportSMTP): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const ts = tls.connect({ socket, servername: isIP(s.Host) ? undefined : s.Host, ca: this.ca, rejectUnauthorized: !s.STARTTLSInsecureSkipVerify });
      const timer = setTimeout(() => ts.destroy(new Error('TLS handshake timeout')), 60_000);
      ts.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(ts);
      });
      ts.once('error', (e) => {
        clearTimeout(timer);
        ts.destroy();
        reject(new Error(`TLS with ${s.Host}: ${e.message}`));
      });
    });
  }

  /** Direct delivery to the MX hosts of a domain, optionally through a SOCKS proxy (RFC 5321 5.1). */
  private async direct(domain: string, msgs: QueueMsg[], t: Transport | undefined, settle: Settle): Promise<void> {
    const r = this.app.resolver;
    const requireTLS = msgs.some((m) => m.requiretls === 1);
    const report = !msgs.some((m) => m.istlsreport);
    let hosts: string[];
    // DANE applies to MX hosts only when the MX records are DNSSEC-authentic (RFC 7672 2.2.1).
    let mxAuthentic = false;
    let implicit = false;
    const literal = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(domain)?.[1];
    if (literal) {
      hosts = [literal];
    } else {
      try {
        const mx = await r.lookupMX(domain);
        // RFC 7505 3: a single MX with the root as exchange says the domain takes no mail.
        if (mx.records.length === 1 && mx.records[0]!.exchange === '') {
          return settle(msgs, { kind: 'permanent', status: '5.1.10', diag: `domain ${domain} does not accept mail (null MX)`, smtp: false });
        }
        mxAuthentic = mx.authentic;
        // RFC 5321 5.1: by preference, in random order among equal preferences.
        hosts = mx.records
          .filter((x) => x.exchange !== '')
          .map((x) => ({ x, k: Math.random() }))
          .sort((a, b) => a.x.preference - b.x.preference || a.k - b.k)
          .map(({ x }) => x.exchange);
      } catch (e) {
        if (e instanceof DNSError && e.code === 'NXDOMAIN') {
          return settle(msgs, { kind: 'permanent', status: '5.1.2', diag: `domain ${domain} does not exist`, smtp: false });
        }
        if (!(e instanceof DNSError && e.notFound)) return settle(msgs, temporary('4.4.3', `looking up MX records of ${domain}: ${(e as Error).message}`));
        // RFC 5321 5.1: without MX records, the domain itself is the host (implicit MX).
        hosts = [domain];
        implicit = true;
      }
    }

    let policy: Policy | undefined;
    if (!literal) {
      try {
        const l = await this.sts.lookup(r, domain);
        policy = l.policy;
        if (l.failure && report) this.tlsResult({ policyType: 'sts', policyDomain: domain }, false, { resultType: l.failure.resultType, failureReasonCode: l.failure.message });
      } catch (e) {
        log.info('mta-sts lookup', { domain, err: e as Error });
      }
    }
    // RFC 8689 4.1: a REQUIRETLS message treats an MTA-STS policy in testing mode as enforced.
    const enforce = policy !== undefined && (policy.mode === 'enforce' || (policy.mode === 'testing' && requireTLS));
    const stsReport = policy && policy.mode !== 'none' ? { policyType: 'sts' as const, policyDomain: domain, policyStrings: policyLines(policy), mxHosts: policy.mx } : undefined;

    let pending = msgs;
    const temp = new Map<number, Outcome>();
    let lastError: Outcome = temporary('4.4.1', `no usable mail host for ${domain}`);
    const port = this.app.config.static_.Queue.SMTPPort;
    for (const host of hosts) {
      if (pending.length === 0) break;
      if (stsReport && !literal && !matchesMX(policy!, host)) {
        if (report) this.tlsResult(stsReport, false, { resultType: 'validation-failure', receivingMXHostname: host, failureReasonCode: 'mx host does not match mta-sts policy' });
        if (enforce) {
          lastError = temporary('4.7.5', `mx host ${host} does not match the MTA-STS policy of ${domain}`, host);
          continue;
        }
      }
      let addresses: string[];
      let plan: TLSPlan;
      const noPolicy = { policyType: 'no-policy-found' as const, policyDomain: domain };
      if (literal) {
        addresses = [host];
        plan = { tls: { mode: 'opportunistic', allowPlain: true }, report: noPolicy };
      } else if (mxAuthentic || implicit) {
        const d = await lookupDANE(r, host);
        if (d.status === 'temporary-failure') {
          lastError = temporary('4.4.3', d.reason, host);
          continue;
        }
        addresses = d.addresses;
        if (d.status === 'dane-required') {
          const names = mxAuthentic ? [...d.names, domain] : d.names;
          const records = d.records;
          plan = {
            dane: true,
            report: { policyType: 'tlsa', policyDomain: host, policyStrings: records.map(formatTLSA), mxHosts: [host] },
            tls: {
              mode: 'required',
              name: d.baseDomain,
              verify: (peer: PeerCertificates) => {
                const v = verifyDANE(records, peer.chain, { names, now: this.app.clock.now() });
                if (!v.verified) throw Object.assign(new Error(`DANE: ${v.reason}`), { resultType: v.resultType });
              },
            },
          };
        } else if (d.requireTLS) {
          // RFC 7672 2.2: authentic but unusable TLSA records still make STARTTLS mandatory.
          plan = { tls: { mode: 'required', name: host }, report: stsReport ?? noPolicy };
        } else plan = this.stsPlan(host, enforce, stsReport ?? noPolicy);
      } else {
        try {
          addresses = (await r.lookupIP(host)).records;
        } catch (e) {
          lastError = temporary('4.4.3', `looking up addresses of ${host}: ${(e as Error).message}`, host);
          continue;
        }
        plan = this.stsPlan(host, enforce, stsReport ?? noPolicy);
      }
      if (t?.Direct?.DisableIPv4) addresses = addresses.filter((a) => isIP(a) !== 4);
      if (t?.Direct?.DisableIPv6) addresses = addresses.filter((a) => isIP(a) !== 6);
      if (addresses.length === 0) lastError = temporary('4.4.1', `no addresses for ${host}`, host);
      for (const ip of addresses) {
        const res = await this.deliverHost(host, ip, port, plan, pending, requireTLS, report, t, settle, temp);
        if (res.error) lastError = res.error;
        if (res.connected) {
          pending = res.retry;
          break;
        }
      }
    }
    for (const m of pending) settle([m], temp.get(m.id) ?? lastError);
  }

  private stsPlan(host: string, enforce: boolean, report: TLSPlan['report']): TLSPlan {
    // RFC 8461 4.2: under an enforced policy the certificate must be PKIX-valid for the MX host.
    if (enforce) return { tls: { mode: 'verified', name: host, ca: this.ca }, report };
    return { tls: { mode: 'opportunistic', allowPlain: true, name: host, ca: this.ca }, report };
  }

  private tlsResult(p: TLSPlan['report'], ok: boolean, failure?: Omit<PolicyResult['failures'][number], 'failedSessionCount'>): void {
    queueTLS.inc({ policy: p.policyType, result: ok ? 'success' : (failure?.resultType ?? 'failure') });
    try {
      recordTLSResult(this.app.queue, this.app.clock.now(), {
        ...p,
        successfulSessions: ok ? 1 : 0,
        failedSessions: ok ? 0 : 1,
        failures: failure ? [{ ...failure, failedSessionCount: 1 }] : [],
      });
    } catch (e) {
      log.error('recording tls result', e as Error);
    }
  }

  /** Connects to one address of an MX host and delivers what it can. */
  private async deliverHost(
    host: string,
    ip: string,
    port: number,
    plan: TLSPlan,
    msgs: QueueMsg[],
    requireTLS: boolean,
    report: boolean,
    t: Transport | undefined,
    settle: Settle,
    temp: Map<number, Outcome>,
  ): Promise<{ connected: boolean; retry: QueueMsg[]; error?: Outcome }> {
    const socks = t?.Socks;
    const dial = () => (socks ? dialSocks(socks.Address, ip, port, this.connectTimeout()) : dialTCP(ip, port, this.connectTimeout()));
    const ehlo = socks ? socks.RemoteHostname : this.app.config.static_.Hostname;
    let tlsOptions = plan.tls;
    for (let fallback = false; ; fallback = true) {
      let socket: Socket;
      try {
        socket = await dial();
      } catch (e) {
        return { connected: false, retry: msgs, error: temporary('4.4.1', (e as Error).message, host) };
      }
      let client: SMTPClient;
      try {
        client = await SMTPClient.open(socket, this.clientOptions(tlsOptions, { hostname: ehlo }));
      } catch (e) {
        if (!(e instanceof SMTPError)) throw e;
        if (e.step === 'starttls' && report && tlsOptions.mode !== 'none') {
          this.tlsResult(plan.report, false, { resultType: tlsFailureType(e, !!plan.dane), receivingMXHostname: host, receivingIP: ip, failureReasonCode: e.text.slice(0, 200) });
        }
        // RFC 7435 style opportunistic TLS: a failed handshake is retried in plain text, once.
        if (e.step === 'starttls' && e.connection && tlsOptions.mode === 'opportunistic' && !requireTLS && !fallback) {
          tlsOptions = { mode: 'none' };
          continue;
        }
        return { connected: false, retry: msgs, error: fromError(e, host) };
      }
      if (report && client.tlsSocket) this.tlsResult(plan.report, true);
      else if (report && tlsOptions === plan.tls && plan.report.policyType === 'no-policy-found') {
        this.tlsResult(plan.report, false, { resultType: 'starttls-not-supported', receivingMXHostname: host, receivingIP: ip });
      }
      try {
        const retry = await this.transactions(client, msgs, host, settle, temp);
        return { connected: true, retry };
      } finally {
        await client.quit();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.reportTimer);
    // Running deliveries are not waited for long: what they did not record is retried later.
    await Promise.race([Promise.allSettled([...this.running]), new Promise((r) => setTimeout(r, 2000))]);
    this.sts.close();
  }
}

/** NOTIFY passed on: SUCCESS is reported by us (RFC 3461 5.2.2 lets a relay do so), the rest by the next hop. */
function passNotify(n: string | null): 'NEVER' | Notify[] | undefined {
  if (n === null) return undefined;
  if (n === 'NEVER') return 'NEVER';
  const rest = n.split(',').filter((x) => x !== 'SUCCESS') as Notify[];
  return rest.length ? rest : 'NEVER';
}

/** The start of a message file, enough for its header in practice. */
function fileHead(file: string): Buffer {
  const b = Buffer.alloc(256 * 1024);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    return b.subarray(0, fs.readSync(fd, b, 0, b.length, 0));
  } catch {
    return Buffer.alloc(0);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function utf8Header(b: Buffer): boolean {
  const end = b.indexOf('\r\n\r\n');
  const head = end < 0 ? b : b.subarray(0, end);
  return head.some((c) => c > 127);
}

/** The TLS report result type for a failed STARTTLS (RFC 8460 4.3.1), from the client's error. */
function tlsFailureType(e: SMTPError, dane: boolean): ResultType {
  const t = e.text;
  if (/does not offer STARTTLS/.test(t)) return 'starttls-not-supported';
  if (/expired/i.test(t)) return 'certificate-expired';
  // Messages of verifyDANE, and of node's checkServerIdentity.
  if (dane ? /is not for/.test(t) : /not valid for|does not match|Hostname\/IP/i.test(t)) return 'certificate-host-mismatch';
  if (/certificate|trusted/i.test(t)) return 'certificate-not-trusted';
  return 'validation-failure';
}

function asciiOr(d: string): string {
  try {
    return parseDomain(d).ascii;
  } catch {
    return d;
  }
}

export type { Action };
